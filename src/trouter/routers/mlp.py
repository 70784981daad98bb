"""`MLPRouter`: a one-hidden-layer network from the query embedding to every model's quality.

embedding [d] -> Linear(d, hidden) -> ReLU -> Dropout -> Linear(hidden, m) -> sigmoid, trained
with per-model binary cross-entropy on the scores (one shared hidden layer, so models that fail on
the same queries share features), Adam, and early stopping on the validation fold's Brier score.
The hidden size is chosen on the validation fold from `HIDDEN_GRID` unless given. Cost is the
shared `CostModel`. Training uses torch (see `neural`); prediction is numpy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from trouter.encode import Embeddings, Encoder
from trouter.errors import ConfigError
from trouter.routers.layout import Layout
from trouter.routers.learned import FloatMatrix, LearnedRouter, sigmoid
from trouter.routers.neural import Builder, TrainConfig, fit_network
from trouter.routers.selection import Fold

HIDDEN_GRID = (256, 64)  # the first is the default when there is nothing to validate on


def mlp_builder(hidden: int, dropout: float) -> Builder:
    def build(d: int, m: int) -> Any:
        import torch

        return torch.nn.Sequential(
            torch.nn.Linear(d, hidden),
            torch.nn.ReLU(),
            torch.nn.Dropout(dropout),
            torch.nn.Linear(hidden, m),
        )

    return build


class MLPRouter(LearnedRouter):
    """Multi-output MLP quality estimates; `hidden=None` chooses the hidden size on validation.

    >>> from trouter.routers.mlp import MLPRouter
    >>> MLPRouter(hidden=128, encoder="hashing:256").hidden
    128
    """

    name = "mlp"

    def __init__(
        self,
        hidden: int | None = None,
        dropout: float = 0.1,
        lr: float = 3e-3,
        weight_decay: float = 1e-5,
        max_epochs: int = 200,
        patience: int = 10,
        batch_size: int = 256,
        *,
        encoder: str | Encoder = "minilm",
        seed: int = 0,
    ) -> None:
        super().__init__(encoder=encoder, seed=seed)
        self.hidden = hidden
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.max_epochs = max_epochs
        self.patience = patience
        self.batch_size = batch_size

    def _fit_quality(self, fold: Fold) -> dict[str, Any]:
        if self.hidden is not None and self.hidden < 1:
            raise ConfigError(f"mlp: hidden must be at least 1, got {self.hidden}")
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError(f"mlp: dropout must be in [0, 1), got {self.dropout}")
        grid = (self.hidden,) if self.hidden is not None else HIDDEN_GRID
        config = TrainConfig(
            max_epochs=self.max_epochs,
            patience=self.patience,
            lr=self.lr,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
        )
        params, hidden, info = fit_network(
            {h: mlp_builder(h, self.dropout) for h in grid}, fold, config, self.seed
        )
        self.w1_, self.b1_ = params["0.weight"], params["0.bias"]
        self.w2_, self.b2_ = params["3.weight"], params["3.bias"]
        return {"hidden": hidden, **info}

    def _predict_quality(self, x: Embeddings) -> FloatMatrix:
        hidden = np.maximum(np.asarray(x, dtype=np.float32) @ self.w1_.T + self.b1_, 0.0)
        return sigmoid(hidden @ self.w2_.T + self.b2_)

    def _quality_layout(self, meta: dict[str, Any], dim: int) -> Layout:
        m, h = len(self.models_), meta.get("selection_", {}).get("hidden")
        return Layout({"w1_": (h, dim), "b1_": (h,), "w2_": (m, h), "b2_": (m,)})
