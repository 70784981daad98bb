"""Routing data: the `RoutingDataset` table, loaders for public benchmark data, importers."""

from trouter.data.dataset import DatasetSplit, RoutingDataset

__all__ = ["DatasetSplit", "RoutingDataset"]
