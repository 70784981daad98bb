"""TRouter's network, written once for two backends: torch (training) and numpy (routing).

Notation: x [n, d] query embeddings, f [n, k] extra query features (log length), E [T, d] leaf
vectors (the encoder's embedding of each leaf's text), P [T, N] leaf-to-path incidence.

    key_t   = unit(E_t Wk)                       leaf representation        [T, h]
    q(t|x)  = softmax_t(scale * unit(x Wq) . key_t + bias_t)  task-type posterior  [n, T]
    L_q     = key Dq + dq (+ P Nq)                per-leaf quality logits    [T, M]
    mixture = q(t|x) @ sigmoid(L_q)               task-type mixture          [n, M]
    quality = sigmoid(logit(mixture) + residual([x, f, q]))  with the residual on, else mixture
    cost    = q(t|x) @ softplus(key Dc + dc (+ P Nc))   the paper's direct cost head (scaled $)
         or q(t|x) @ (key Dc + dc (+ P Nc)) + f Wf     the log-scale head (standardised log $ or
                                                       log tokens; see `cost`)

`residual` here is the optional one-hidden-layer MLP (`residual_hidden` > 0) whose output layer
starts at zero, so training starts from the pure mixture; TRouter's default linear residual is
fitted outside the network on the ensemble's mixture (see `residual`). The node offsets Nq / Nc
(hierarchical decoders) start at zero and carry an L2 penalty in the loss, so a leaf's decoder
is its parent's plus a small, data-paid-for delta.

Routing runs the numpy backend on float64 copies of the weights, so a loaded router never
imports torch and a single query costs a few small matrix products.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

Arrays = dict[str, npt.NDArray[Any]]
CLIP = 1e-4  # keeps logit(mixture) finite


class NumpyOps:
    """The few non-linear ops the forward pass needs, in numpy."""

    @staticmethod
    def unit(a: Any) -> Any:
        return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-12)

    @staticmethod
    def softmax(a: Any) -> Any:
        z = np.exp(a - a.max(axis=-1, keepdims=True))
        return z / z.sum(axis=-1, keepdims=True)

    @staticmethod
    def sigmoid(a: Any) -> Any:
        return 0.5 * (1.0 + np.tanh(0.5 * a))

    @staticmethod
    def logit(p: Any) -> Any:
        p = np.clip(p, CLIP, 1.0 - CLIP)
        return np.log(p) - np.log1p(-p)

    @staticmethod
    def relu(a: Any) -> Any:
        return np.maximum(a, 0.0)

    @staticmethod
    def softplus(a: Any) -> Any:
        return np.logaddexp(0.0, a)

    @staticmethod
    def exp(a: Any) -> Any:
        return np.exp(a)

    @staticmethod
    def cat(parts: list[Any]) -> Any:
        return np.concatenate(parts, axis=1)


class TorchOps:
    """The same ops in torch (imported lazily: only fitting needs torch)."""

    def __init__(self) -> None:
        import torch

        self.torch = torch

    def unit(self, a: Any) -> Any:
        return self.torch.nn.functional.normalize(a, dim=-1, eps=1e-12)

    def softmax(self, a: Any) -> Any:
        return self.torch.softmax(a, dim=-1)

    def sigmoid(self, a: Any) -> Any:
        return self.torch.sigmoid(a)

    def logit(self, p: Any) -> Any:
        return self.torch.logit(p.clamp(CLIP, 1.0 - CLIP))

    def relu(self, a: Any) -> Any:
        return self.torch.relu(a)

    def softplus(self, a: Any) -> Any:
        return self.torch.nn.functional.softplus(a)

    def exp(self, a: Any) -> Any:
        return self.torch.exp(a)

    def cat(self, parts: list[Any]) -> Any:
        return self.torch.cat(parts, dim=1)


def forward(
    p: dict[str, Any], x: Any, f: Any, ops: Any, *, residual: bool, dropout: Any = None
) -> tuple[Any, Any, Any]:
    """(q [n, T], quality [n, M], scaled direct cost [n, M] or None) for either backend.

    `p` holds the parameters by name (see `parameter_shapes`); absent optional parts (node
    offsets, cost head, residual) are simply not in `p`. `dropout` (training only) is applied to
    the residual's hidden layer.
    """
    key = ops.unit(p["E"] @ p["Wk"])
    scores = ops.exp(p["log_scale"]) * (ops.unit(x @ p["Wq"]) @ key.T) + p["leaf_bias"]
    q = ops.softmax(scores)
    logits = key @ p["Dq"] + p["dq"]
    if "Nq" in p:
        logits = logits + p["P"] @ p["Nq"]
    quality = q @ ops.sigmoid(logits)
    if residual:
        hidden = ops.relu(ops.cat([x, f, q]) @ p["R1"] + p["r1"])
        if dropout is not None:
            hidden = dropout(hidden)
        out = hidden @ p["R2"] if "V" not in p else (hidden @ p["R2"]) @ p["V"]
        quality = ops.sigmoid(ops.logit(quality) + out + p["r2"])
    cost = None
    if "Dc" in p:
        cost_logits = key @ p["Dc"] + p["dc"]
        if "Nc" in p:
            cost_logits = cost_logits + p["P"] @ p["Nc"]
        # A log-scale head adds a per-model slope on the query features; the direct head is a
        # mixture of non-negative per-leaf costs.
        cost = q @ cost_logits + f @ p["Wf"] if "Wf" in p else q @ ops.softplus(cost_logits)
    return q, quality, cost


def parameter_shapes(
    *,
    d: int,
    k: int,
    leaves: int,
    nodes: int,
    models: int,
    hidden: int,
    residual_hidden: int,
    hierarchical: bool,
    cost_head: str,
    cost_outputs: int,
    residual_rank: int = 0,
) -> dict[str, tuple[int, ...]]:
    """Every learnable parameter's shape for one configuration (E and P are fixed inputs).

    `cost_head` is "direct", "log" or "none" (cost predicted outside the network), with
    `cost_outputs` columns.
    """
    shapes: dict[str, tuple[int, ...]] = {
        "Wq": (d, hidden),
        "Wk": (d, hidden),
        "log_scale": (),
        "leaf_bias": (leaves,),
        "Dq": (hidden, models),
        "dq": (models,),
    }
    if hierarchical:
        shapes["Nq"] = (nodes, models)
    if cost_head != "none":
        shapes["Dc"] = (hidden, cost_outputs)
        shapes["dc"] = (cost_outputs,)
        if hierarchical:
            shapes["Nc"] = (nodes, cost_outputs)
        if cost_head == "log":
            shapes["Wf"] = (k, cost_outputs)
    if residual_hidden > 0:
        shapes["R1"] = (d + k + leaves, residual_hidden)
        shapes["r1"] = (residual_hidden,)
        shapes["r2"] = (models,)
        if 0 < residual_rank < models:
            # Low rank: a few query factors ("difficulty") that each model weighs differently.
            shapes["R2"] = (residual_hidden, residual_rank)
            shapes["V"] = (residual_rank, models)
        else:
            shapes["R2"] = (residual_hidden, models)
    return shapes


def initial_parameters(
    shapes: dict[str, tuple[int, ...]], rng: np.random.Generator, scale: float = 10.0
) -> Arrays:
    """Initial values: the query and key projections start equal (q(t|x) starts as a softmax of
    projected cosines), decoders small, node offsets and the residual's output layer at zero."""
    out: Arrays = {}
    for name, shape in shapes.items():
        if name in ("Wq", "Wk", "R1", "Dq", "Dc", "V"):
            out[name] = rng.normal(0.0, 1.0 / np.sqrt(shape[0]), size=shape)
        elif name == "log_scale":
            out[name] = np.asarray(np.log(scale))
        else:
            out[name] = np.zeros(shape)
    out["Wk"] = out["Wq"].copy()
    return {k: v.astype(np.float32) for k, v in out.items()}
