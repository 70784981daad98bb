"""`KNNRouter`: a query's quality per model is the (weighted) mean score of its k nearest queries.

The classic non-parametric routing baseline (RouterBench's and RouterDC's kNN router). Similarity
is the cosine of the unit-length query embeddings. Neighbours are weighted by
exp((sim - sim_nearest) / temperature), or equally when `temperature` is 0. k and the temperature
are chosen together from `K_GRID` x `TEMPERATURE_GRID` unless given: on the caller's validation
set when there is one, else by leave-one-out on the training set (one extra neighbour search,
and far steadier than a small holdout). On routing data large neighbourhoods win (per-query
outcomes are noisy 0/1 scores). Cost comes from the shared `CostModel`.

Neighbour ranking is made independent of the batch a query arrives in: similarities are rounded
to 1e-5 (far above float32 matmul noise) and ties go to the earlier training query, so a query
gets the same neighbours, and the same weights, alone or in a batch of thousands.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import numpy.typing as npt

from trouter.encode import Embeddings, Encoder
from trouter.errors import ConfigError
from trouter.routers.layout import Layout
from trouter.routers.learned import FloatMatrix, LearnedRouter, targets
from trouter.routers.selection import Fold, select

#: Candidate neighbourhood sizes (capped at the training-set size).
K_GRID = (10, 20, 40, 80, 160, 320, 640)
#: Candidate weighting temperatures; 0 means equal weights.
TEMPERATURE_GRID = (0.0, 0.1, 0.05)
DEFAULT_K = 80
DEFAULT_TEMPERATURE = 0.0
#: Training queries that vote in leave-one-out selection (a seeded sample on big sets).
LOO_QUERIES = 4000
_ROUND = 1e5  # similarity resolution used for ranking
_CHUNK = 256  # queries per similarity block, to bound memory on big batches


def neighbours(
    x: Embeddings,
    index: npt.NDArray[np.float32],
    k: int,
    exclude: npt.NDArray[np.intp] | None = None,
) -> tuple[npt.NDArray[np.intp], FloatMatrix]:
    """([n, k] rows of `index` most similar to each row of `x`, most similar first; their
    similarities, rounded to 1e-5). `exclude[i]` is a row of `index` never returned for query
    i (leave-one-out, when the queries are themselves in the index)."""
    n_index = index.shape[0]
    k = min(k, n_index - 1 if exclude is not None else n_index)
    out = np.empty((x.shape[0], k), dtype=np.intp)
    sims_out = np.empty((x.shape[0], k), dtype=np.float64)
    order = np.arange(n_index, dtype=np.int64)
    for start in range(0, x.shape[0], _CHUNK):
        rounded = np.rint(
            np.asarray(x[start : start + _CHUNK], dtype=np.float32) @ index.T * _ROUND
        )
        if exclude is not None:
            own = exclude[start : start + _CHUNK]
            rounded[np.arange(len(own)), own] = -3 * _ROUND  # below any cosine similarity
        # One unique integer key per (similarity, position): ranks are total and reproducible.
        key = -rounded.astype(np.int64) * n_index + order
        if k < n_index:
            top = np.argpartition(key, k - 1, axis=1)[:, :k]
        else:
            top = np.broadcast_to(order, key.shape).copy()
        top = np.take_along_axis(
            top, np.argsort(np.take_along_axis(key, top, axis=1), axis=1), axis=1
        )
        out[start : start + _CHUNK] = top
        sims_out[start : start + _CHUNK] = np.take_along_axis(rounded, top, axis=1) / _ROUND
    return out, sims_out


def neighbour_weights(sims: FloatMatrix, temperature: float) -> FloatMatrix:
    """[n, k] weights of ranked neighbours (the nearest gets 1)."""
    if temperature <= 0:
        return np.ones_like(sims)
    out: FloatMatrix = np.exp((sims - sims[:, :1]) / temperature)
    return out


def grid_errors(
    x: Embeddings,
    index: npt.NDArray[np.float32],
    y_index: FloatMatrix,
    y: FloatMatrix,
    grid: list[tuple[int, float]],
    exclude: npt.NDArray[np.intp] | None = None,
) -> dict[tuple[int, float], float]:
    """Brier score of every (k, temperature) in `grid` for queries `x` with true scores `y`.

    One neighbour search per chunk of queries serves the whole grid: neighbour lists are ranked,
    so every k reads a prefix of the longest one.
    """
    k_max = max(k for k, _ in grid)
    squared = dict.fromkeys(grid, 0.0)
    for start in range(0, len(x), _CHUNK):
        stop = start + _CHUNK
        near, sims = neighbours(
            x[start:stop], index, k_max, None if exclude is None else exclude[start:stop]
        )
        y_near = y_index[near]
        for t in {t for _, t in grid}:
            w = neighbour_weights(sims, t)
            num, den = np.cumsum(w[:, :, None] * y_near, axis=1), np.cumsum(w, axis=1)
            for k, tk in grid:
                if tk == t:
                    c = min(k, near.shape[1]) - 1
                    pred = num[:, c] / den[:, c, None]
                    squared[(k, t)] += float(np.sum((pred - y[start:stop]) ** 2))
    return {key: value / y.size for key, value in squared.items()}


class KNNRouter(LearnedRouter):
    """k-nearest-neighbour quality estimates; k and temperature left None are chosen on validation.

    >>> from trouter.routers.knn import KNNRouter
    >>> KNNRouter(k=10, temperature=0.0, encoder="hashing:256")
    KNNRouter(k=10, temperature=0.0, encoder='hashing:256', seed=0)
    """

    name = "knn"

    def __init__(
        self,
        k: int | None = None,
        temperature: float | None = None,
        *,
        encoder: str | Encoder = "minilm",
        seed: int = 0,
    ) -> None:
        super().__init__(encoder=encoder, seed=seed)
        self.k = k
        self.temperature = temperature

    def _fit_quality(self, fold: Fold) -> dict[str, Any]:
        if self.k is not None and self.k < 1:
            raise ConfigError(f"knn: k must be at least 1, got {self.k}")
        if self.temperature is not None and self.temperature < 0:
            raise ConfigError(
                f"knn: temperature must be >= 0 (0: equal weights), got {self.temperature}"
            )
        # Neighbourhoods larger than the set searched are all the same neighbourhood.
        n_index = fold.full.n_queries - 1 if fold.carved else fold.train.n_queries
        k_grid = [self.k] if self.k is not None else sorted({min(c, n_index) for c in K_GRID})
        t_grid = [self.temperature] if self.temperature is not None else list(TEMPERATURE_GRID)
        k = self.k if self.k is not None else DEFAULT_K
        temperature = self.temperature if self.temperature is not None else DEFAULT_TEMPERATURE
        chosen: dict[str, Any] = {}
        grid = list(itertools.product(k_grid, t_grid))
        if len(grid) > 1 and fold.val is not None and fold.x_val is not None:
            if fold.carved:
                # Leave-one-out costs one search over the training set, and thousands of
                # training queries vote, which is far steadier than a small holdout.
                n = fold.full.n_queries
                rows = np.random.default_rng(self.seed).permutation(n)[:LOO_QUERIES]
                index = np.ascontiguousarray(fold.x_full, dtype=np.float32)
                y_index = targets(fold.full)
                errors = grid_errors(index[rows], index, y_index, y_index[rows], grid, rows)
            else:
                index = np.ascontiguousarray(fold.x_train, dtype=np.float32)
                y_index = targets(fold.train)
                errors = grid_errors(fold.x_val, index, y_index, targets(fold.val), grid)
            source = "leave-one-out" if fold.carved else fold.source
            selection = select(grid, errors.__getitem__, source)
            k, temperature = selection.best
            chosen = {"errors": selection.errors, "chosen_on": source}
        self.k_ = int(min(k, fold.full.n_queries))
        self.temperature_ = float(temperature)
        self.index_ = np.ascontiguousarray(fold.x_full, dtype=np.float32)
        self.scores_ = targets(fold.full)
        return {"k": self.k_, "temperature": self.temperature_, **chosen}

    def _predict_quality(self, x: Embeddings) -> FloatMatrix:
        near, sims = neighbours(x, self.index_, self.k_)
        w = neighbour_weights(sims, self.temperature_)
        mean: FloatMatrix = np.einsum("nk,nkm->nm", w, self.scores_[near]) / w.sum(axis=1)[:, None]
        return mean

    def _quality_layout(self, meta: dict[str, Any], dim: int) -> Layout:
        return Layout({"index_": (None, dim), "scores_": (None, len(self.models_))})

    def _set_state(self, arrays: dict[str, npt.NDArray[Any]], meta: dict[str, Any]) -> None:
        super()._set_state(arrays, meta)
        self.k_ = int(self.k_)
        self.temperature_ = float(self.temperature_)
