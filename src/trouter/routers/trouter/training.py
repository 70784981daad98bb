"""TRouter's training loop: the loss, AdamW, and early stopping on a validation split.

Loss per batch (means over the batch's queries):

    quality loss   BCE (or the paper's MSE) of predicted quality against the scores
  + cost loss      MSE of the cost head against its targets (scaled $, or standardised logs)
  + beta * KL(prior || q(t|x))    over the queries with a task label
  + hier_l2 * |node offsets|^2 / n_train   (hierarchical decoders: a Gaussian prior on deltas)

Early stopping watches the validation Brier score of quality (what routing consumes; the cost
head is low-capacity and settles within a few epochs, and its much larger squared error would
otherwise decide when quality stops learning), keeps the best epoch's weights (epoch 0, the starting point, included:
a stage that does not improve on validation changes nothing), and reports the epoch count so a
caller can retrain on all its data for exactly that long. `trainable` names the parameters a
stage may change; the others are used as they are (the router fits the task-type mixture first,
then the residual on top of it). Deterministic for a seed: everything runs in
`torch.random.fork_rng` with a seeded batch-order generator, and the caller's global RNG is left
alone.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import numpy.typing as npt

from trouter.routers.trouter.network import Arrays, TorchOps, forward, initial_parameters

FloatMatrix = npt.NDArray[np.float64]
#: Parameters with their own penalty (or none), left out of AdamW's weight decay.
NO_DECAY = frozenset({"Nq", "Nc", "leaf_bias", "log_scale", "dq", "dc", "r1", "r2", "E", "Wf"})
RESIDUAL = frozenset({"R1", "r1", "R2", "r2", "V"})


@dataclass(frozen=True)
class Part:
    """The arrays of one set of queries: inputs, targets and the task prior."""

    x: FloatMatrix  # [n, d] the network's input
    f: FloatMatrix  # [n, k]
    extra: FloatMatrix  # [n, e] what only the question residual reads (e = 0: nothing)
    y: FloatMatrix  # [n, M] scores in [0, 1]
    cost: FloatMatrix | None  # [n, M'] the cost head's targets (None: cost is not in the network)
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
    trainable: frozenset[str] | None = None,
) -> Trained:
    """Train from `init` (numpy parameters) with `fixed` inputs (P, and E unless it is learned).

    With `val`, stop early on it (at most `max_epochs`); without, run exactly `epochs`.
    `trainable` (default: every parameter in `init`) names what this stage may change.
    """
    import torch

    ops = TorchOps()
    threads = torch.get_num_threads()
    # Batches are small: extra threads only add synchronisation (and make timings noisy).
    torch.set_num_threads(1)
    try:
        names = frozenset(init) if trainable is None else trainable & frozenset(init)
        return _train(torch, ops, init, fixed, data, settings, seed, val, epochs, names)
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
    trainable: frozenset[str],
) -> Trained:
    if val is None and not epochs:
        return Trained(dict(init), 0, None)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        order = torch.Generator().manual_seed(seed)

        def tensor(a: Any) -> Any:
            return torch.as_tensor(np.asarray(a, dtype=np.float32))

        params = {k: torch.nn.Parameter(tensor(v)) for k, v in init.items() if k in trainable}
        consts = {k: tensor(v) for k, v in {**fixed, **init}.items() if k not in trainable}
        groups = [
            {"params": [v for k, v in params.items() if k not in NO_DECAY]},
            {"params": [v for k, v in params.items() if k in NO_DECAY], "weight_decay": 0.0},
        ]
        optimiser = torch.optim.AdamW(groups, lr=settings.lr, weight_decay=settings.weight_decay)
        dropout = torch.nn.Dropout(settings.dropout) if settings.dropout > 0 else None
        objective = _Objective(torch, ops, consts, params, settings, dropout, float(len(data)))
        tensors = _tensors(data, tensor)
        val_tensors = _tensors(val, tensor) if val is not None else None
        if val_tensors is None:
            n_epochs = int(epochs or 0)
            for _ in range(n_epochs):
                _epoch(torch, objective, optimiser, tensors, order, settings.batch_size)
            best_state, best_epoch = {k: v.detach() for k, v in params.items()}, n_epochs
            best_error = None
        else:
            best_state, best_epoch, best_error = _early_stopped(
                torch, objective, optimiser, tensors, val_tensors, order, settings
            )
        out = {**init, **{k: v.numpy().astype(np.float32) for k, v in best_state.items()}}
    return Trained(out, best_epoch, best_error)


@dataclass(frozen=True)
class _Objective:
    """A batch's training loss, and the quality's squared error that early stopping watches."""

    torch: Any
    ops: TorchOps
    consts: dict[str, Any]
    params: dict[str, Any]
    settings: Settings
    dropout: Any
    n_train: float

    def __call__(self, batch: dict[str, Any], training: bool) -> tuple[Any, Any]:
        torch, settings, params = self.torch, self.settings, self.params
        q, quality, cost = forward(
            {**self.consts, **params},
            batch["x"],
            batch["f"],
            self.ops,
            residual=settings.residual,
            dropout=self.dropout if training else None,
        )
        if settings.quality_loss == "bce":
            fit = torch.nn.functional.binary_cross_entropy(
                quality.clamp(1e-6, 1 - 1e-6), batch["y"]
            )
        else:
            fit = ((quality - batch["y"]) ** 2).mean()
        error = ((quality - batch["y"]) ** 2).mean()
        if cost is not None:
            fit = fit + settings.cost_weight * ((cost - batch["cost"]) ** 2).mean()
        prior = batch["prior"]
        kl = (prior * (torch.log(prior.clamp_min(1e-12)) - torch.log(q.clamp_min(1e-12)))).sum(1)
        loss = fit + settings.beta * (kl * batch["labelled"]).mean()
        for name in ("Nq", "Nc"):
            if name in params:
                loss = loss + settings.hier_l2 * (params[name] ** 2).sum() / self.n_train
        return loss, error


def _epoch(
    torch: Any,
    objective: _Objective,
    optimiser: Any,
    tensors: dict[str, Any],
    order: Any,
    batch_size: int,
) -> None:
    """One pass over the data in a seeded random order."""
    for rows in torch.randperm(len(tensors["x"]), generator=order).split(batch_size):
        optimiser.zero_grad()
        loss, _ = objective({k: v[rows] for k, v in tensors.items()}, training=True)
        loss.backward()
        optimiser.step()


def _early_stopped(
    torch: Any,
    objective: _Objective,
    optimiser: Any,
    tensors: dict[str, Any],
    val_tensors: dict[str, Any],
    order: Any,
    settings: Settings,
) -> tuple[dict[str, Any], int, float]:
    """(the best epoch's parameters, that epoch, its validation error), epoch 0 included: at
    most `max_epochs`, stopping `patience` epochs after the last improvement."""
    params = objective.params
    best_state = {k: v.detach().clone() for k, v in params.items()}
    with torch.no_grad():
        best_error, best_epoch = float(objective(val_tensors, training=False)[1]), 0
    for epoch in range(1, settings.max_epochs + 1):
        _epoch(torch, objective, optimiser, tensors, order, settings.batch_size)
        with torch.no_grad():
            error = float(objective(val_tensors, training=False)[1])
        if error < best_error - 1e-7:
            best_error, best_epoch = error, epoch
            best_state = {k: v.detach().clone() for k, v in params.items()}
        elif epoch - best_epoch >= settings.patience:
            break
    return best_state, best_epoch, best_error


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


def fit_in_stages(
    init: Arrays,
    fixed: Arrays,
    settings: Settings,
    seed: int,
    *,
    full: Part,
    train: Part | None,
    val: Part | None,
    carved: bool,
    default_epochs: int,
) -> tuple[Arrays, dict[str, Any], Arrays | None]:
    """Fit the task-type mixture, then the residual on top of it.

    Returns (weights, what happened, the weights trained on `train` only, before the refit on
    `full`, or None without a validation part): the caller can judge the residual on `val`.

    Stage 1 trains everything but the residual; stage 2 trains only the residual, with the
    mixture frozen, so the residual is a correction of the mixture's errors and is kept only for
    the epochs that improve the validation error (none: it is dropped). With a validation part
    carved out of the training data (`carved`), both stages are then retrained on `full` for the
    epochs found. Without any validation part, the mixture trains for `default_epochs` and the
    residual is left out (nothing could tell whether it helps).
    """
    mixture = frozenset(init) - RESIDUAL
    plain = replace(settings, residual=False)
    info: dict[str, Any] = {}
    if val is None or train is None:
        params = run_training(
            init, fixed, full, plain, seed, epochs=default_epochs, trainable=mixture
        ).params
        info.update(mixture_epochs=default_epochs, residual_epochs=0, epochs=default_epochs)
        return without_residual(params), info, None
    first = run_training(init, fixed, train, plain, seed, val=val, trainable=mixture)
    info.update(mixture_epochs=first.epochs, mixture_val_error=first.val_error)
    params, residual_epochs, val_error = first.params, 0, first.val_error
    if settings.residual:
        second = run_training(params, fixed, train, settings, seed + 1, val=val, trainable=RESIDUAL)
        params, residual_epochs, val_error = second.params, second.epochs, second.val_error
    info.update(residual_epochs=residual_epochs, val_error=val_error)
    info["epochs"] = first.epochs + residual_epochs
    trained = params if residual_epochs else without_residual(params)
    if carved:
        params = run_training(
            init, fixed, full, plain, seed, epochs=first.epochs, trainable=mixture
        ).params
        if residual_epochs:
            params = run_training(
                params, fixed, full, settings, seed + 1, epochs=residual_epochs, trainable=RESIDUAL
            ).params
    return params if residual_epochs else without_residual(params), info, trained


def without_residual(params: Arrays) -> Arrays:
    """The weights with the MLP residual removed (the pure task-type mixture)."""
    return {k: v for k, v in params.items() if k not in RESIDUAL}


__all__ = [
    "Part",
    "Settings",
    "Trained",
    "fit_in_stages",
    "initial_parameters",
    "run_training",
    "without_residual",
]
