"""TRouter's training loop: the loss, AdamW, and early stopping on a validation split.

Loss per batch (means over the batch's queries):

    quality loss   BCE (or the paper's MSE) of predicted quality against the scores
  + cost loss      MSE of the direct cost head against scaled $ (direct cost only)
  + beta * KL(prior || q(t|x))    over the queries with a task label
  + hier_l2 * |node offsets|^2 / n_train   (hierarchical decoders: a Gaussian prior on deltas)

Early stopping watches the validation error (Brier score of quality, plus the cost MSE when the
network predicts cost), keeps the best epoch's weights, and reports the epoch count so a caller
can retrain on all its data for exactly that long. Deterministic for a seed: everything runs in
`torch.random.fork_rng` with a seeded batch-order generator, and the caller's global RNG is left
alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from trouter.routers.trouter.network import Arrays, TorchOps, forward, initial_parameters

FloatMatrix = npt.NDArray[np.float64]
#: Parameters with their own penalty (or none), left out of AdamW's weight decay.
NO_DECAY = frozenset({"Nq", "Nc", "leaf_bias", "log_scale", "dq", "dc", "r1", "r2", "E"})


@dataclass(frozen=True)
class Part:
    """The arrays of one set of queries: inputs, targets and the task prior."""

    x: FloatMatrix  # [n, d]
    f: FloatMatrix  # [n, k]
    y: FloatMatrix  # [n, M] scores in [0, 1]
    cost: FloatMatrix | None  # [n, M] scaled $ (direct cost only)
    prior: FloatMatrix  # [n, T]
    labelled: FloatMatrix  # [n]

    def __len__(self) -> int:
        return len(self.x)


@dataclass(frozen=True)
class Settings:
    """Loss and optimiser settings (the router's hyper-parameters, resolved)."""

    residual: bool
    quality_loss: str  # "bce" or "mse"
    beta: float
    hier_l2: float
    cost_weight: float
    dropout: float
    lr: float
    weight_decay: float
    batch_size: int
    max_epochs: int
    patience: int
    learn_leaves: bool  # latent types: the leaf vectors are parameters too


@dataclass(frozen=True)
class Trained:
    params: Arrays
    epochs: int
    val_error: float | None


def run_training(
    init: Arrays,
    fixed: Arrays,
    data: Part,
    settings: Settings,
    seed: int,
    val: Part | None = None,
    epochs: int | None = None,
) -> Trained:
    """Train from `init` (numpy parameters) with `fixed` inputs (E, P); see the module docstring.

    With `val`, stop early on it (at most `max_epochs`); without, run exactly `epochs`.
    """
    import torch

    ops = TorchOps()
    threads = torch.get_num_threads()
    # Batches are small: extra threads only add synchronisation (and make timings noisy).
    torch.set_num_threads(1)
    try:
        return _train(torch, ops, init, fixed, data, settings, seed, val, epochs)
    finally:
        torch.set_num_threads(threads)


def _train(
    torch: Any,
    ops: TorchOps,
    init: Arrays,
    fixed: Arrays,
    data: Part,
    settings: Settings,
    seed: int,
    val: Part | None,
    epochs: int | None,
) -> Trained:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        order = torch.Generator().manual_seed(seed)

        def tensor(a: Any) -> Any:
            return torch.as_tensor(np.asarray(a, dtype=np.float32))

        params = {k: torch.nn.Parameter(tensor(v)) for k, v in init.items()}
        consts = {k: tensor(v) for k, v in fixed.items()}
        if settings.learn_leaves:
            params["E"] = torch.nn.Parameter(consts.pop("E"))
        groups = [
            {"params": [v for k, v in params.items() if k not in NO_DECAY]},
            {"params": [v for k, v in params.items() if k in NO_DECAY], "weight_decay": 0.0},
        ]
        optimiser = torch.optim.AdamW(groups, lr=settings.lr, weight_decay=settings.weight_decay)
        dropout = torch.nn.Dropout(settings.dropout) if settings.dropout > 0 else None
        tensors = _tensors(data, tensor)
        val_tensors = _tensors(val, tensor) if val is not None else None
        n_train = float(len(data))

        def loss_of(batch: dict[str, Any], training: bool) -> tuple[Any, Any]:
            p = {**consts, **params}
            q, quality, cost = forward(
                p,
                batch["x"],
                batch["f"],
                ops,
                residual=settings.residual,
                dropout=dropout if training else None,
            )
            if settings.quality_loss == "bce":
                fit = torch.nn.functional.binary_cross_entropy(
                    quality.clamp(1e-6, 1 - 1e-6), batch["y"]
                )
            else:
                fit = ((quality - batch["y"]) ** 2).mean()
            error = ((quality - batch["y"]) ** 2).mean()
            if cost is not None:
                cost_error = ((cost - batch["cost"]) ** 2).mean()
                fit = fit + settings.cost_weight * cost_error
                error = error + settings.cost_weight * cost_error
            prior = batch["prior"]
            kl = (prior * (torch.log(prior.clamp_min(1e-12)) - torch.log(q.clamp_min(1e-12)))).sum(
                1
            )
            loss = fit + settings.beta * (kl * batch["labelled"]).mean()
            for name in ("Nq", "Nc"):
                if name in params:
                    loss = loss + settings.hier_l2 * (params[name] ** 2).sum() / n_train
            return loss, error

        n_epochs = settings.max_epochs if val_tensors is not None else max(int(epochs or 1), 1)
        best_error, best_epoch = float("inf"), 0
        best_state: dict[str, Any] | None = None
        for epoch in range(1, n_epochs + 1):
            for rows in torch.randperm(len(data), generator=order).split(settings.batch_size):
                optimiser.zero_grad()
                loss, _ = loss_of({k: v[rows] for k, v in tensors.items()}, training=True)
                loss.backward()
                optimiser.step()
            if val_tensors is None:
                continue
            with torch.no_grad():
                _, error_t = loss_of(val_tensors, training=False)
            error = float(error_t)
            if error < best_error - 1e-7:
                best_error, best_epoch = error, epoch
                best_state = {k: v.detach().clone() for k, v in params.items()}
            elif epoch - best_epoch >= settings.patience:
                break
        final = best_state if best_state is not None else {k: v.detach() for k, v in params.items()}
        out = {k: v.numpy().astype(np.float32) for k, v in final.items()}
    if val_tensors is None:
        return Trained(out, n_epochs, None)
    return Trained(out, max(best_epoch, 1), best_error)


def _tensors(part: Part, tensor: Any) -> dict[str, Any]:
    out = {
        "x": tensor(part.x),
        "f": tensor(part.f),
        "y": tensor(part.y),
        "prior": tensor(part.prior),
        "labelled": tensor(part.labelled),
    }
    if part.cost is not None:
        out["cost"] = tensor(part.cost)
    return out


__all__ = ["Part", "Settings", "Trained", "initial_parameters", "run_training"]
