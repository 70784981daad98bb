"""Reference routers that learn nothing about the query: random, a single model, and the oracle."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from trouter.data.dataset import RoutingDataset
from trouter.encode import Embeddings, Encoder
from trouter.errors import ConfigError, TrouterError
from trouter.routers.base import Estimates, Router
from trouter.routers.layout import Layout


def _mean_costs(train: RoutingDataset) -> np.ndarray:
    return np.asarray(train.costs.mean(axis=0), dtype=np.float64)


class RandomRouter(Router):
    """Quality estimates drawn uniformly at random per (query, model), seeded by the query text.

    The lambda sweep therefore moves from a random model per query towards the cheapest model:
    the floor any learned router must beat.
    """

    name = "random"
    uses_encoder = False

    def __init__(self, *, encoder: str | Encoder = "minilm", seed: int = 0) -> None:
        super().__init__(encoder=encoder, seed=seed)

    def _fit(
        self,
        train: RoutingDataset,
        x: Embeddings | None,
        val: RoutingDataset | None,
        x_val: Embeddings | None,
    ) -> None:
        self.mean_cost_ = _mean_costs(train)

    def _layout(self, meta: dict[str, Any], dim: int | None) -> Layout:
        return Layout({"mean_cost_": (len(self.models_),)})

    def _predict(self, queries: list[str], x: Embeddings | None) -> Estimates:
        m = len(self.models_)
        quality = np.empty((len(queries), m))
        for i, q in enumerate(queries):
            rng = np.random.default_rng([self.seed, zlib.crc32(q.encode("utf-8"))])
            quality[i] = rng.random(m)
        cost = np.repeat(self.mean_cost_[None, :], len(queries), axis=0)
        return Estimates(self.models_, quality, cost)


class SingleModelRouter(Router):
    """Always sends every query to one model.

    The other models are reported unavailable (quality 0, one dollar dearer than the chosen
    model), so the choice holds for every trade-off.
    """

    name = "single"
    uses_encoder = False

    def __init__(
        self, model: str = "", *, encoder: str | Encoder = "minilm", seed: int = 0
    ) -> None:
        super().__init__(encoder=encoder, seed=seed)
        self.model = model

    def _fit(
        self,
        train: RoutingDataset,
        x: Embeddings | None,
        val: RoutingDataset | None,
        x_val: Embeddings | None,
    ) -> None:
        if self.model not in train.models:
            raise ConfigError(
                f"single-model router: {self.model!r} is not one of {', '.join(train.models)}"
            )
        self.index_ = train.models.index(self.model)
        self.quality_ = float(train.scores[:, self.index_].mean())
        self.cost_ = float(train.costs[:, self.index_].mean())

    def _layout(self, meta: dict[str, Any], dim: int | None) -> Layout:
        return Layout({})  # its state is three numbers in the config

    def _predict(self, queries: list[str], x: Embeddings | None) -> Estimates:
        n, m = len(queries), len(self.models_)
        quality = np.zeros((n, m))
        cost = np.full((n, m), self.cost_ + 1.0)
        quality[:, self.index_] = self.quality_
        cost[:, self.index_] = self.cost_
        return Estimates(self.models_, quality, cost)


class OracleRouter(Router):
    """Knows the true score and cost of the queries it was fitted on. For evaluation only:
    fit it on the very set you evaluate, to draw the best curve any router could reach."""

    name = "oracle"
    uses_encoder = False
    evaluation_only = True

    def __init__(self, *, encoder: str | Encoder = "minilm", seed: int = 0) -> None:
        super().__init__(encoder=encoder, seed=seed)

    def _fit(
        self,
        train: RoutingDataset,
        x: Embeddings | None,
        val: RoutingDataset | None,
        x_val: Embeddings | None,
    ) -> None:
        self.queries_ = list(train.queries)
        self.scores_ = np.asarray(train.scores, dtype=np.float64)
        self.costs_ = np.asarray(train.costs, dtype=np.float64)

    def _layout(self, meta: dict[str, Any], dim: int | None) -> Layout:
        shape = (len(meta.get("queries_", [])), len(self.models_))
        return Layout({"scores_": shape, "costs_": shape})

    def _set_state(self, arrays: dict[str, np.ndarray], meta: dict[str, object]) -> None:
        super()._set_state(arrays, meta)
        self.queries_ = list(self.queries_)

    def _predict(self, queries: list[str], x: Embeddings | None) -> Estimates:
        position = {q: i for i, q in enumerate(self.queries_)}
        unknown = [q for q in queries if q not in position]
        if unknown:
            raise TrouterError(
                f"the oracle only knows the queries it was fitted on; unknown: {unknown[0][:60]!r}"
            )
        rows = [position[q] for q in queries]
        return Estimates(self.models_, self.scores_[rows], self.costs_[rows])
