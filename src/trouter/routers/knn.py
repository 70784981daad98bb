"""`KNNRouter`: a query's quality per model is the mean score of its k most similar training queries.

The classic non-parametric routing baseline (RouterBench's and RouterDC's kNN router). Similarity
is the cosine of the unit-length query embeddings. k is chosen on the validation fold from
`K_GRID` unless given; cost comes from the shared `CostModel`.

Neighbour ranking is made independent of the batch a query arrives in: similarities are rounded
to 1e-5 (far above float32 matmul noise) and ties go to the earlier training query, so a query
gets the same neighbours alone or in a batch of thousands.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from trouter.encode import Embeddings, Encoder
from trouter.errors import ConfigError
from trouter.routers.learned import FloatMatrix, LearnedRouter, targets
from trouter.routers.selection import Fold, brier, select

#: Candidate neighbourhood sizes (capped at the training-set size).
K_GRID = (5, 10, 20, 40, 80, 160)
DEFAULT_K = 20
_ROUND = 1e5  # similarity resolution used for ranking
_CHUNK = 256  # queries per similarity block, to bound memory on big batches


def neighbours(x: Embeddings, index: npt.NDArray[np.float32], k: int) -> npt.NDArray[np.intp]:
    """[n, k] rows of `index` most similar to each row of `x`, most similar first."""
    n_index = index.shape[0]
    k = min(k, n_index)
    out = np.empty((x.shape[0], k), dtype=np.intp)
    order = np.arange(n_index, dtype=np.int64)
    for start in range(0, x.shape[0], _CHUNK):
        sims = np.asarray(x[start : start + _CHUNK], dtype=np.float32) @ index.T
        # One unique integer key per (similarity, position): ranks are total and reproducible.
        key = -np.rint(sims * _ROUND).astype(np.int64) * n_index + order
        if k < n_index:
            top = np.argpartition(key, k - 1, axis=1)[:, :k]
        else:
            top = np.broadcast_to(order, key.shape).copy()
        top_key = np.take_along_axis(key, top, axis=1)
        out[start : start + _CHUNK] = np.take_along_axis(top, np.argsort(top_key, axis=1), axis=1)
    return out


class KNNRouter(LearnedRouter):
    """k-nearest-neighbour quality estimates; `k=None` chooses k on the validation fold.

    >>> from trouter.routers.knn import KNNRouter
    >>> KNNRouter(k=10, encoder="hashing:256")
    KNNRouter(k=10, encoder='hashing:256', seed=0)
    """

    name = "knn"

    def __init__(
        self, k: int | None = None, *, encoder: str | Encoder = "minilm", seed: int = 0
    ) -> None:
        super().__init__(encoder=encoder, seed=seed)
        self.k = k

    def _fit_quality(self, fold: Fold) -> dict[str, Any]:
        if self.k is not None and self.k < 1:
            raise ConfigError(f"knn: k must be at least 1, got {self.k}")
        k = self.k
        chosen: dict[str, Any] = {}
        if k is None and fold.val is not None and fold.x_val is not None:
            grid = sorted({min(c, fold.train.n_queries) for c in K_GRID})
            index = np.ascontiguousarray(fold.x_train, dtype=np.float32)
            near = neighbours(fold.x_val, index, max(grid))
            y_train, y_val = targets(fold.train), targets(fold.val)
            # Neighbour lists are ranked, so every k in the grid reads a prefix of one search.
            running = np.cumsum(y_train[near], axis=1)

            def error(c: int) -> float:
                return brier(running[:, c - 1] / c, y_val)

            selection = select(grid, error, fold.source)
            k = int(selection.best)
            chosen = {"k_errors": selection.errors}
        self.k_ = int(min(k if k is not None else DEFAULT_K, fold.full.n_queries))
        self.index_ = np.ascontiguousarray(fold.x_full, dtype=np.float32)
        self.scores_ = targets(fold.full)
        return {"k": self.k_, **chosen}

    def _predict_quality(self, x: Embeddings) -> FloatMatrix:
        near = neighbours(x, self.index_, self.k_)
        mean: FloatMatrix = self.scores_[near].mean(axis=1)
        return mean

    def _set_state(self, arrays: dict[str, npt.NDArray[Any]], meta: dict[str, Any]) -> None:
        super()._set_state(arrays, meta)
        self.k_ = int(self.k_)
