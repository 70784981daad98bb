"""TRouter's fitting procedure, one step per function: the task structure, the cost head's
targets, the network's inputs for each part of the data, the ensemble's training loop, and the
residual stages judged on the validation part.

`TRouter._fit` (in `router`) runs these steps in order and keeps what they return as its fitted
state; the loss and the optimiser are `training`'s, the residuals' fits `residual`'s.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from trouter.data.dataset import RoutingDataset
from trouter.encode import Embeddings
from trouter.errors import ConfigError
from trouter.routers.costmodel import CostModel
from trouter.routers.selection import Fold
from trouter.routers.trouter.config import resolve_taxonomy
from trouter.routers.trouter.cost import CostTargets, raw_targets, resolve_route
from trouter.routers.trouter.network import initial_parameters, parameter_shapes
from trouter.routers.trouter.residual import (
    Residuals,
    Stage,
    fit_residuals,
    mixture_quality,
    routes_better,
    types_and_quality,
)
from trouter.routers.trouter.structure import TaskStructure, latent_structure
from trouter.routers.trouter.training import Part, Settings, fit_in_stages, without_residual
from trouter.routers.trouter.views import leaf_view, split_view
from trouter.taxonomy import Taxonomy

if TYPE_CHECKING:
    from trouter.routers.trouter.router import TRouter

FloatMatrix = npt.NDArray[np.float64]
Member = dict[str, FloatMatrix]
#: Each query's task label for the prior, from the dataset and its network input.
Labeller = Callable[[RoutingDataset, FloatMatrix], list[str]]
#: Epochs when there is nothing to validate on (a tiny training set and no validation set).
DEFAULT_EPOCHS = 60


def auto_latent_types(n_queries: int) -> int:
    """Latent types when the data has no task labels: about sqrt(n / 10), between 2 and 24."""
    return int(min(24, max(2, round(math.sqrt(n_queries / 10)))))


# ---------------------------------------------------------------------- task structure
@dataclass(frozen=True)
class Tasks:
    """The fitted task structure, how a query gets its label for the prior, and leaf vectors."""

    structure: TaskStructure
    labeller: Labeller
    leaf_vectors: FloatMatrix
    latent: bool


def fit_tasks(router: TRouter, data: RoutingDataset, x: FloatMatrix) -> Tasks:
    """The given taxonomy, the data's task labels as one, or latent types found by k-means."""
    taxonomy = resolve_taxonomy(router.taxonomy)
    if taxonomy is None and (router.latent_types is not None or not data.has_tasks):
        return latent_tasks(router, data, x)
    if taxonomy is None:
        taxonomy = Taxonomy.from_task_names(data.task_names)
    structure = TaskStructure.from_taxonomy(taxonomy)
    if data.has_tasks and not any(structure.match(t) for t in data.task_names):
        raise ConfigError(
            f"trouter: none of the data's task labels (e.g. {data.task_names[0]!r}) is a path "
            f"of the taxonomy (e.g. {structure.leaves[0]!r}); label the data with leaf paths"
        )
    vectors = leaf_view(router.encoder_, structure.leaf_texts(), router.text_view)
    return Tasks(structure, lambda part, xs: part.tasks, vectors, latent=False)


def latent_tasks(router: TRouter, data: RoutingDataset, x: FloatMatrix) -> Tasks:
    """Latent types: k-means centres as leaf vectors; a query's label is its nearest centre."""
    k = router.latent_types or auto_latent_types(data.n_queries)
    structure, _, centres = latent_structure(data.queries, x, k, router.seed)
    leaves = list(structure.leaves)

    def nearest(part: RoutingDataset, xs: FloatMatrix) -> list[str]:
        picks = np.argmax(np.asarray(xs, np.float64) @ centres.T, axis=1)
        return [leaves[j] for j in picks]

    return Tasks(structure, nearest, centres, latent=True)


# ---------------------------------------------------------------------- cost head
@dataclass(frozen=True)
class CostHead:
    """What the network's cost head learns on a cost route (see `cost`): `$ / scale` (direct),
    standardised logs (`targets`: log, tokens), or nothing (shared: the `model` outside)."""

    route: str
    scale: float = 1.0
    targets: CostTargets | None = None
    model: CostModel | None = None

    @classmethod
    def fit(cls, cost_model: str, fold: Fold) -> CostHead:
        route = resolve_route(cost_model, fold.full)
        if route == "direct":
            scale = float(np.asarray(fold.full.costs).mean(axis=0).max())
            return cls(route, scale=scale if scale > 0 else 1.0)
        if route == "shared":
            return cls(route, model=CostModel.fit(fold))
        return cls(route, targets=CostTargets.fit(raw_targets(fold.full, route)))

    def of(self, data: RoutingDataset) -> FloatMatrix | None:
        """The head's training targets on `data` (None: cost is not in the network)."""
        if self.route == "direct":
            return np.asarray(data.costs) / np.float64(self.scale)
        if self.targets is not None:
            return self.targets.transform(raw_targets(data, self.route))
        return None


def network_shapes(
    router: TRouter, *, d: int, leaves: int, nodes: int, models: int, route: str
) -> dict[str, tuple[int, ...]]:
    """The shapes of one ensemble member's parameters for the router's hyper-parameters."""
    return parameter_shapes(
        d=d,
        k=1,
        leaves=leaves,
        nodes=nodes,
        models=models,
        hidden=router.hidden,
        residual_hidden=router.residual_hidden if router.residual else 0,
        hierarchical=router.hierarchical,
        cost_head={"direct": "direct", "shared": "none"}.get(route, "log"),
        cost_outputs=models * (2 if route == "tokens" else 1),
        residual_rank=router.residual_rank,
    )


def member_shapes(
    router: TRouter, tasks: Tasks, models: int, route: str
) -> dict[str, tuple[int, ...]]:
    """The shapes of one ensemble member's parameters for the fitted task structure."""
    structure = tasks.structure
    return network_shapes(
        router,
        d=tasks.leaf_vectors.shape[1],
        leaves=structure.n_leaves,
        nodes=len(structure.nodes),
        models=models,
        route=route,
    )


# ---------------------------------------------------------------------- network inputs
@dataclass(frozen=True)
class Inputs:
    """Turns a dataset and its embeddings into the network's `Part`."""

    tasks: Tasks
    cost: CostHead
    text_view: str
    prior_smoothing: float
    features: Callable[[list[str]], FloatMatrix]

    def part(self, data: RoutingDataset, xs: Embeddings) -> Part:
        x_net, extra = split_view(np.asarray(xs, dtype=np.float64), self.text_view)
        labels = self.tasks.labeller(data, x_net)
        prior, labelled = self.tasks.structure.prior(labels, self.prior_smoothing)
        return Part(
            x=x_net,
            f=self.features(data.queries),
            extra=extra,
            y=np.asarray(data.scores, dtype=np.float64),
            cost=self.cost.of(data),
            prior=prior,
            labelled=labelled,
        )


@dataclass(frozen=True)
class Parts:
    """The network's inputs for the whole training data and, with a validation part, for the
    fold's training and validation parts."""

    full: Part
    train: Part | None
    val: Part | None

    @classmethod
    def of(cls, fold: Fold, inputs: Inputs) -> Parts:
        has_val = fold.val is not None and fold.x_val is not None
        full = inputs.part(fold.full, fold.x_full)
        train = inputs.part(fold.train, fold.x_train) if has_val else None
        val = (
            inputs.part(fold.val, fold.x_val)
            if fold.val is not None and fold.x_val is not None
            else None
        )
        return cls(full, train, val)


# ---------------------------------------------------------------------- the ensemble
@dataclass
class Ensemble:
    """The members fitted on all the training data, the same members as trained on the fold's
    training part alone (to judge residuals on its validation part), and each run's record."""

    members: list[Member] = field(default_factory=list)
    val_members: list[Member] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)


def training_settings(router: TRouter) -> Settings:
    """The loss and optimiser settings from the router's hyper-parameters."""
    return Settings(
        residual=router.residual and router.residual_hidden > 0,
        quality_loss=router.quality_loss,
        beta=router.beta,
        hier_l2=router.hier_l2 if router.hierarchical else 0.0,
        cost_weight=1.0,
        dropout=router.dropout,
        lr=router.lr,
        weight_decay=router.weight_decay,
        batch_size=router.batch_size,
        max_epochs=router.max_epochs,
        patience=router.patience,
    )


def train_ensemble(
    router: TRouter, shapes: dict[str, tuple[int, ...]], tasks: Tasks, parts: Parts, fold: Fold
) -> Ensemble:
    """Train `router.ensemble` members, each from its own seed (see `training.fit_in_stages`)."""
    settings = training_settings(router)
    fixed = {"P": tasks.structure.path_matrix}
    if not tasks.latent:
        fixed["E"] = tasks.leaf_vectors
    ensemble = Ensemble()
    for k in range(router.ensemble):
        seed = router.seed + 1000 * k
        init = initial_parameters(shapes, np.random.default_rng(seed))
        if tasks.latent:  # latent types have no text: their vectors are learned, from k-means
            init["E"] = tasks.leaf_vectors.astype(np.float32)
        params, info, trained = fit_in_stages(
            init,
            fixed,
            settings,
            seed,
            full=parts.full,
            train=parts.train,
            val=parts.val,
            carved=fold.carved,
            default_epochs=DEFAULT_EPOCHS,
        )
        ensemble.runs.append(info)
        ensemble.members.append({k: np.asarray(v, dtype=np.float64) for k, v in params.items()})
        if trained is not None:
            ensemble.val_members.append({k: np.asarray(v, np.float64) for k, v in trained.items()})
    return ensemble


# ---------------------------------------------------------------------- residual stages
def check_mlp_residual(
    fixed: dict[str, FloatMatrix], ensemble: Ensemble, parts: Parts, fold: Fold
) -> dict[str, Any] | None:
    """Keep the MLP residual only if it routes better on the validation part; else drop it from
    every member. None when there is no MLP residual or nothing to judge it on."""
    if parts.val is None or fold.val is None or not any("R1" in m for m in ensemble.val_members):
        return None
    check = routes_better(
        types_and_quality(fixed, ensemble.val_members, parts.val)[1],
        mixture_quality(fixed, ensemble.val_members, parts.val),
        fold.val,
    )
    if not check["kept"]:
        ensemble.members = [without_residual(m) for m in ensemble.members]
        ensemble.val_members = [without_residual(m) for m in ensemble.val_members]
    return check


def fit_linear_residuals(
    router: TRouter,
    fixed: dict[str, FloatMatrix],
    ensemble: Ensemble,
    parts: Parts,
    fold: Fold,
) -> Residuals | None:
    """The linear residual and the question residual on top of the ensemble (see `residual`),
    or None when neither is asked for or there is no validation part to choose them on."""
    linear = router.residual and router.residual_hidden == 0
    question = router.text_view == "question"
    if not (linear or question) or parts.train is None or parts.val is None or fold.val is None:
        return None
    stage = Stage(
        fixed,
        ensemble.val_members,
        ensemble.members,
        parts.train,
        parts.val,
        fold.val,
        parts.full if fold.carved else None,
    )
    return fit_residuals(stage, linear, question)


def kept_residuals(residuals: Residuals) -> dict[str, FloatMatrix]:
    """The router attributes of the linear residuals that were kept: their coefficients, and
    the question residual's per-type mean questions."""
    kept: dict[str, FloatMatrix] = {}
    if residuals.main is not None and residuals.main.coef is not None:
        kept["residual_coef_"], kept["residual_intercept_"] = residuals.main.coef
    question, means = residuals.question, residuals.question_means
    if question is not None and question.coef is not None and means is not None:
        kept["question_coef_"], kept["question_intercept_"] = question.coef
        kept["question_means_"] = means
    return kept


def training_record(
    fold: Fold, tasks: Tasks, ensemble: Ensemble, residual_check: dict[str, Any] | None
) -> dict[str, Any]:
    """What fitting did, as JSON saved with the router: where it validated, the first member's
    epochs, the residuals' checks, and every member's run when there are several."""
    record = {"source": fold.source, "leaves": tasks.structure.n_leaves, **ensemble.runs[0]}
    if residual_check is not None:
        record["residual_check"] = residual_check
    if len(ensemble.runs) > 1:
        record["members"] = ensemble.runs
    return record


__all__ = [
    "DEFAULT_EPOCHS",
    "CostHead",
    "Ensemble",
    "Inputs",
    "Parts",
    "Tasks",
    "auto_latent_types",
    "check_mlp_residual",
    "fit_linear_residuals",
    "fit_tasks",
    "kept_residuals",
    "member_shapes",
    "network_shapes",
    "train_ensemble",
    "training_record",
    "training_settings",
]
