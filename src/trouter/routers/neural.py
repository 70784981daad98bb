"""The training loop shared by the torch baselines (`mlp`, `mf`): per-model BCE, Adam, early stopping.

A network maps query embeddings [n, d] to one logit per pool model [n, m]; the loss is the binary
cross-entropy of sigmoid(logit) against the scores (soft targets, missing scores as 0), averaged
over every (query, model) cell. Training stops when the validation Brier score has not improved
for `patience` epochs, and the best epoch's weights are kept. When the validation part was carved
out of the training set, the chosen architecture is retrained on the whole training set for the
best epoch count (see `selection`).

Torch is imported here only, and only while fitting: the routers predict from plain numpy copies
of the weights, so loading a saved router and routing a query never import torch. Training is
deterministic for a seed and thread count: it runs inside `torch.random.fork_rng` (the caller's
global RNG state is left alone) with a seeded generator for the batch order.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from trouter.encode import Embeddings
from trouter.routers.learned import targets
from trouter.routers.selection import Fold, select

Arrays = dict[str, npt.NDArray[np.float32]]
#: Builds a fresh, randomly initialised torch module (d inputs -> m logits) for one candidate.
Builder = Callable[[int, int], Any]


@dataclass(frozen=True)
class TrainConfig:
    """Optimiser settings shared by every candidate of one router."""

    max_epochs: int = 200
    patience: int = 10
    lr: float = 3e-3
    weight_decay: float = 1e-5
    batch_size: int = 256
    #: Epochs when there is nothing to validate on (a tiny training set, no validation set).
    default_epochs: int = 50
    #: Std of Gaussian noise added to the embeddings while training (RouteLLM's MF uses it).
    input_noise: float = 0.0


@dataclass(frozen=True)
class TrainResult:
    params: Arrays
    epochs: int
    val_error: float | None


def train_network(
    build: Builder,
    x: Embeddings,
    y: npt.NDArray[np.float64],
    config: TrainConfig,
    seed: int,
    val: tuple[Embeddings, npt.NDArray[np.float64]] | None = None,
    epochs: int | None = None,
) -> TrainResult:
    """Train one network; with `val`, early-stop on it, else run exactly `epochs` epochs."""
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        order_rng = torch.Generator().manual_seed(seed)
        xt = torch.as_tensor(np.asarray(x, dtype=np.float32))
        yt = torch.as_tensor(np.asarray(y, dtype=np.float32))
        net = build(xt.shape[1], yt.shape[1])
        optimiser = torch.optim.Adam(
            net.parameters(), lr=config.lr, weight_decay=config.weight_decay, foreach=True
        )
        loss_fn = torch.nn.BCEWithLogitsLoss()
        x_val = torch.as_tensor(np.asarray(val[0], dtype=np.float32)) if val else None
        y_val = torch.as_tensor(np.asarray(val[1], dtype=np.float32)) if val else None
        n_epochs = config.max_epochs if val else (epochs or config.default_epochs)
        best_error, best_epoch, best_state = float("inf"), 0, None
        for epoch in range(1, n_epochs + 1):
            net.train()
            for rows in torch.randperm(len(xt), generator=order_rng).split(config.batch_size):
                inputs = xt[rows]
                if config.input_noise > 0:
                    inputs = inputs + config.input_noise * torch.randn_like(inputs)
                optimiser.zero_grad()
                loss_fn(net(inputs), yt[rows]).backward()
                optimiser.step()
            if x_val is None or y_val is None:
                continue
            net.eval()
            with torch.no_grad():
                error = float(((torch.sigmoid(net(x_val)) - y_val) ** 2).mean())
            if error < best_error - 1e-7:
                best_error, best_epoch = error, epoch
                best_state = {k: v.detach().clone() for k, v in net.state_dict().items()}
            elif epoch - best_epoch >= config.patience:
                break
        if best_state is not None:
            net.load_state_dict(best_state)
        params = {
            k: v.detach().cpu().numpy().astype(np.float32) for k, v in net.state_dict().items()
        }
    if val is None:
        return TrainResult(params, n_epochs, None)
    return TrainResult(params, max(best_epoch, 1), best_error)


def fit_network(
    builders: dict[Hashable, Builder],
    fold: Fold,
    config: TrainConfig,
    seed: int,
    order: Sequence[Hashable] | None = None,
) -> tuple[Arrays, Hashable, dict[str, Any]]:
    """Choose among candidate architectures on the fold, then train the final network.

    Returns (weights, chosen candidate, what was chosen as JSON). The first candidate is the
    default when there is nothing to validate on.
    """
    candidates = list(order or builders)
    if fold.val is None or fold.x_val is None:
        result = train_network(
            builders[candidates[0]], fold.x_full, targets(fold.full), config, seed
        )
        return result.params, candidates[0], {"epochs": result.epochs}
    y_train, y_val = targets(fold.train), targets(fold.val)
    results = {
        c: train_network(builders[c], fold.x_train, y_train, config, seed, val=(fold.x_val, y_val))
        for c in candidates
    }

    def error(candidate: Hashable) -> float:
        return float(results[candidate].val_error or 0.0)

    selection = select(candidates, error, fold.source)
    best = results[selection.best]
    info = {"epochs": best.epochs, "val_brier": best.val_error, "errors": selection.errors}
    if not fold.carved:
        return best.params, selection.best, info
    final = train_network(
        builders[selection.best], fold.x_full, targets(fold.full), config, seed, epochs=best.epochs
    )
    return final.params, selection.best, info
