"""The router contract: `fit` on a `RoutingDataset`, `predict` quality and cost, `route` by a trade-off.

Every router follows scikit-learn's shape: the constructor only stores hyper-parameters, `fit`
learns state into attributes whose names end in "_", `predict` is pure. A subclass implements
`_fit` and `_predict`; encoding, calibration, routing, and save / load are written once here.

A saved router is a directory (see `routers.directory`): a config and the weights. Loading
needs no training data, and a loaded router makes exactly the same decisions.
"""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt

from trouter.data.dataset import RoutingDataset
from trouter.encode import Embeddings, Encoder, load_encoder
from trouter.errors import DataError, TrouterError
from trouter.pool import Pool
from trouter.routers.directory import read_router, write_router
from trouter.routers.layout import Layout
from trouter.tradeoff import Calibration, Tradeoff, choose

CALIBRATION_QUERIES = 2000

FloatMatrix = npt.NDArray[np.float64]


class QueryError(TrouterError):
    """A query the router cannot route (empty, not text)."""


@dataclass(frozen=True, slots=True)
class ModelEstimate:
    """One pool model's predicted quality, dollar cost and utility for one query."""

    model: str
    quality: float
    cost: float
    utility: float


@dataclass(frozen=True, slots=True)
class TaskType:
    name: str
    probability: float


@dataclass(frozen=True, slots=True)
class Decision:
    """Which model answers a query, why, and who answers if it fails.

    `fallbacks` lists the other models by decreasing utility; `estimates` covers every pool
    model in pool order; `task_types` holds a task-aware router's top task types.
    """

    model: str
    quality: float
    cost: float
    utility: float
    lam: float
    fallbacks: tuple[str, ...]
    estimates: tuple[ModelEstimate, ...]
    task_types: tuple[TaskType, ...] = ()

    @property
    def chain(self) -> tuple[str, ...]:
        """The chosen model followed by its fallbacks."""
        return (self.model, *self.fallbacks)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Estimates:
    """Predicted quality in [0, 1] and dollar cost, [n, m] in the router's model order."""

    models: tuple[str, ...]
    quality: FloatMatrix
    cost: FloatMatrix
    tokens_out: FloatMatrix | None = None
    task_probs: FloatMatrix | None = None
    task_names: tuple[str, ...] | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        shape = (self.quality.shape[0], len(self.models))
        if self.quality.shape != shape or self.cost.shape != shape:
            raise ValueError(
                f"quality {self.quality.shape} and cost {self.cost.shape} must both be {shape}"
            )
        if self.task_probs is not None and (
            self.task_names is None or self.task_probs.shape != (shape[0], len(self.task_names))
        ):
            raise ValueError("task_probs needs task_names, one column per task type")

    def __len__(self) -> int:
        return int(self.quality.shape[0])

    def choose(self, lam: float) -> npt.NDArray[np.intp]:
        """Index of the chosen model per query for a given lam."""
        return choose(self.quality, self.cost, lam)

    def decisions(self, lam: float, top_tasks: int = 3) -> list[Decision]:
        utility = self.quality - lam * self.cost
        # Order by utility, then by cost, so ties fall back to the cheaper model first.
        order = (
            np.lexsort((self.cost, -utility), axis=1)
            if utility.size
            else np.zeros_like(utility, dtype=np.intp)
        )
        top_t: npt.NDArray[np.intp] | None = None
        if self.task_probs is not None:
            top_t = np.argsort(-self.task_probs, axis=1, kind="stable")[:, :top_tasks]
        out = []
        for i in range(len(self)):
            q, c, u = self.quality[i], self.cost[i], utility[i]
            estimates = tuple(
                ModelEstimate(m, float(q[j]), float(c[j]), float(u[j]))
                for j, m in enumerate(self.models)
            )
            best = int(order[i, 0])
            tasks: tuple[TaskType, ...] = ()
            if top_t is not None and self.task_probs is not None and self.task_names is not None:
                tasks = tuple(
                    TaskType(self.task_names[t], float(self.task_probs[i, t])) for t in top_t[i]
                )
            out.append(
                Decision(
                    model=self.models[best],
                    quality=float(q[best]),
                    cost=float(c[best]),
                    utility=float(u[best]),
                    lam=float(lam),
                    fallbacks=tuple(self.models[j] for j in order[i, 1:]),
                    estimates=estimates,
                    task_types=tasks,
                )
            )
        return out


def check_dataset(value: object, role: str, method: str = "fit") -> RoutingDataset:
    """`value` if it is a RoutingDataset, else a DataError saying how to make one."""
    if isinstance(value, RoutingDataset):
        return value
    raise DataError(
        f"{method} takes a RoutingDataset as {role}, not {type(value).__name__}; build one with "
        "RoutingDataset.from_matrices(query_ids=..., queries=..., models=..., scores=...) or "
        "load one with trouter.data.loaders.load_dataset(name or path)"
    )


def check_queries(queries: Sequence[str] | str) -> list[str]:
    """Validate queries for routing; a clear error names the first bad one."""
    if isinstance(queries, str):
        raise QueryError("pass a list of queries, not a single string")
    out = list(queries)
    if not out:
        raise QueryError("no queries to route")
    for i, q in enumerate(out):
        if not isinstance(q, str):
            raise QueryError(f"query {i} is {type(q).__name__}, not text")
        if not q.strip():
            raise QueryError(f"query {i} is empty; a router needs some text to route")
    return out


class Router(ABC):
    """Base class of every router. See the module docstring for the contract."""

    name: ClassVar[str] = ""
    uses_encoder: ClassVar[bool] = True
    #: True for routers that must see the true outcomes of the very queries they route.
    evaluation_only: ClassVar[bool] = False

    def __init__(self, *, encoder: str | Encoder = "minilm", seed: int = 0) -> None:
        self.encoder = encoder
        self.seed = seed

    # ------------------------------------------------------------------ hyper-parameters
    def get_params(self) -> dict[str, Any]:
        """Constructor arguments, as given (an Encoder instance is reported by its spec)."""
        params: dict[str, Any] = {}
        for cls in type(self).__mro__:
            if "__init__" not in cls.__dict__ or cls is object:
                continue
            for name, p in inspect.signature(cls.__dict__["__init__"]).parameters.items():
                if (
                    name != "self"
                    and p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)
                    and name not in params
                ):
                    params[name] = getattr(self, name)
        if not isinstance(params.get("encoder", ""), str):
            params["encoder"] = params["encoder"].spec
        return params

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ------------------------------------------------------------------ encoding
    @property
    def encoder_(self) -> Encoder:
        """The resolved encoder (loaded on first use, then kept)."""
        resolved = getattr(self, "_encoder_obj", None)
        if resolved is None:
            resolved = load_encoder(self.encoder)
            self._encoder_obj = resolved
        return resolved

    def _embed(self, queries: Sequence[str]) -> Embeddings | None:
        return self.encoder_.encode(list(queries)) if self.uses_encoder else None

    # ------------------------------------------------------------------ the contract
    def fit(self, train: RoutingDataset, val: RoutingDataset | None = None) -> Self:
        """Learn from `train`; `val` (optional) is for early stopping / model selection only."""
        check_dataset(train, "train")
        if val is not None:
            check_dataset(val, "val")
        if train.n_queries == 0:
            raise TrouterError(f"{train.name}: cannot fit a router on an empty training set")
        if val is not None and val.models != train.models:
            raise DataError(
                f"{val.name}: the validation set's models ({', '.join(val.models)}) are not the "
                f"training set's ({', '.join(train.models)}); split one dataset into both"
            )
        self.models_: tuple[str, ...] = train.models
        self.pool_: Pool | None = train.pool
        self._before_embedding(train)
        has_val = val is not None and val.n_queries > 0
        x = self._embed(train.queries)
        x_val = self._embed(val.queries) if has_val and val is not None else None
        self._fit(train, x, val if has_val else None, x_val)
        self._calibrate(train)
        return self

    def _before_embedding(self, train: RoutingDataset) -> None:
        """Learn what embedding the queries needs from `train` (nothing, by default)."""
        return None

    def _calibrate(self, train: RoutingDataset) -> Estimates:
        """Store the estimates on a reference sample of the training queries (and return them)."""
        rng = np.random.default_rng(self.seed)
        n = train.n_queries
        pick = np.sort(rng.choice(n, size=min(n, CALIBRATION_QUERIES), replace=False))
        every_query = train.queries  # a fresh list per access: read it once, not per pick
        queries = [every_query[i] for i in pick]
        est = self._predict(queries, self._embed(queries))
        self.calibration_ = Calibration(quality=est.quality.copy(), cost=est.cost.copy())
        return est

    def predict(self, queries: Sequence[str]) -> Estimates:
        """Predicted quality and dollar cost of every pool model on each query."""
        self._check_fitted()
        checked = check_queries(queries)
        return self._predict(checked, self._embed(checked))

    def route(
        self, queries: Sequence[str], tradeoff: Tradeoff | str | float | None = None
    ) -> list[Decision]:
        """One explained `Decision` per query. `tradeoff` defaults to the `balanced` preset."""
        self._check_fitted()
        if tradeoff is None:
            tradeoff = Tradeoff.from_preset("balanced")
        elif isinstance(tradeoff, str):
            tradeoff = Tradeoff.parse(tradeoff)
        elif not isinstance(tradeoff, Tradeoff):  # a number (numpy's too) is a lambda
            tradeoff = Tradeoff.from_lambda(tradeoff)
        lam = tradeoff.resolve(getattr(self, "calibration_", None))
        return self.predict(queries).decisions(lam)

    @abstractmethod
    def _fit(
        self,
        train: RoutingDataset,
        x: Embeddings | None,
        val: RoutingDataset | None,
        x_val: Embeddings | None,
    ) -> None:
        """Learn the fitted state. `x` are the train query embeddings (None if unused)."""

    @abstractmethod
    def _predict(self, queries: list[str], x: Embeddings | None) -> Estimates:
        """Estimates for already-validated queries (and their embeddings)."""

    def _check_fitted(self) -> None:
        if not hasattr(self, "models_"):
            raise TrouterError(
                f"this {type(self).__name__} is not fitted yet; call fit() or load a saved router"
            )

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> tuple[dict[str, npt.NDArray[Any]], dict[str, Any]]:
        """Fitted state as (arrays, JSON values). Default: every attribute ending in '_'."""
        arrays: dict[str, npt.NDArray[Any]] = {}
        meta: dict[str, Any] = {}
        for key, value in vars(self).items():
            if (
                not key.endswith("_")
                or key.startswith("_")
                or key in ("models_", "pool_", "calibration_")
            ):
                continue
            if isinstance(value, np.ndarray):
                arrays[key] = value
            else:
                meta[key] = value
        return arrays, meta

    def _set_state(self, arrays: dict[str, npt.NDArray[Any]], meta: dict[str, Any]) -> None:
        for key, value in {**meta, **arrays}.items():
            setattr(self, key, value)

    def _layout(self, meta: dict[str, Any], dim: int | None) -> Layout | None:
        """The state arrays (names without the `state.` prefix, and shapes) that the saved config
        implies, given its JSON state `meta` and encoder dimension `dim`; `models_` and `pool_`
        are set. None: not declared, and only the calibration arrays are checked on load."""
        return None

    def save(self, directory: str | Path) -> Path:
        """Write the router to a directory (created if needed; files replaced atomically).

        The config holds the weights' SHA-256: a weights file changed on disk, or left from
        another save (a crash between the two files' writes), is refused on load.
        """
        self._check_fitted()
        return write_router(self, directory)

    @classmethod
    def _from_config(cls, config: dict[str, Any], directory: Path) -> Self:
        return read_router(cls, config, directory)

    @classmethod
    def load(cls, directory: str | Path) -> Router:
        """Load any saved router (the class is read from its config)."""
        from trouter.routers.registry import load_router

        return load_router(directory)
