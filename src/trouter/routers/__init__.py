"""Routers: the `Router` contract, baselines, TRouter, and the one registry."""

from trouter.routers.base import Decision, Estimates, ModelEstimate, Router, TaskType
from trouter.routers.registry import load_router, make_router, router_class, router_names

__all__ = [
    "Decision",
    "Estimates",
    "ModelEstimate",
    "Router",
    "TaskType",
    "load_router",
    "make_router",
    "router_class",
    "router_names",
]
