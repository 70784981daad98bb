"""`TRouter`: the task-type-aware router (the paper's method plus our additions).

The paper's core (DESIGN.md, "TRouter"): a frozen query embedding x; one embedding per taxonomy
leaf (its path, definitions and example); q(t|x), a softmax over leaves of a learned query-leaf
matching score; per-model decoders from each leaf's representation; every metric predicted as
the q(t|x)-weighted mixture of the leaves' decoders; trained with MSE on quality and cost plus
beta * KL(prior || q), the prior one-hot on the query's taxonomy leaf.

Our additions, each a hyper-parameter (`PaperTRouter` switches them all off); the defaults were
chosen on validation folds carved from the training splits of the three shared datasets, the same
defaults for every dataset (benchmarks/RESULTS-trouter.md has the evidence):

- `prior_smoothing` (default 0.2): the prior shares mass with sibling and then more distant
  leaves, so q(t|x) keeps some mass on related task types; the mixture then shrinks each type's
  estimates toward its neighbours' (on real data this helped; on cleanly separated toy tasks it
  biases the estimates, and 0 recovers them exactly);
- `hierarchical` (on): each leaf's decoder is its parent's plus an L2-penalised delta (node
  offsets summed along the path), so sparse leaves borrow strength;
- `cost_model` (`tokens`): input and output tokens predicted per model on the log scale and priced
  with the pool, or `log` $ when the data has no token counts, instead of the paper's `direct` $
  head (see `cost`);
- `quality_loss` (`bce`): cross-entropy for the (mostly 0/1) scores;
- `ensemble` (5): members trained from different seeds, their probabilities averaged;
- `residual` (on) with `residual_hidden` (0: linear): a query-conditioned correction on the logit
  scale, the within-task-type, per-query signal the mixture cannot carry. With `residual_hidden`
  0 it is an L2 logistic regression on [x, log length] with the ensemble's mixture as offset
  (see `residual`), its penalty chosen on the validation part's Brier score; it is kept only if
  it also routes better there (AIQ). On validation folds it raised the gap recovered on all
  three shared datasets. `residual_hidden` > 0 gives the earlier MLP on [x, log length, q(t|x)],
  trained after the mixture with the mixture frozen (it routed worse on validation);
- `text_view` (`question`): besides the whole prompt's embedding, one of the question alone,
  without the boilerplate (few-shot examples, answer-format lines) it shares with training
  queries, read only by a second linear residual on the queries that had boilerplate (see
  `views` and `residual`). Few-shot prompts otherwise embed alike within a task (an encoder
  reads 256-512 tokens); on routerbench validation folds it lifted the gap in 6 of 6 folds.
  `full` reads the whole prompt only; `head+tail` adds an embedding of a long prompt's end.

A fitted router adapts to outcomes observed on live traffic with `adapt(feedback)`: a correction
of each model's quality per task type, learnt from logged queries and the scores the models that
answered them earned (see `adapt`). Refitting drops it.

Without task labels the task column becomes a taxonomy (`Taxonomy.from_task_names`); without any
task column, `latent_types` latent types are found by k-means on the embeddings and learned.
An explicit `taxonomy` (from the synthesis pipeline) may be given; the dataset's task labels are
then its leaf paths. The fitted taxonomy is saved with the router.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from trouter.data.dataset import RoutingDataset
from trouter.encode import Embeddings, Encoder, sums_tokens
from trouter.errors import ConfigError
from trouter.routers.base import Estimates, Router
from trouter.routers.costmodel import CostModel
from trouter.routers.layout import Layout
from trouter.routers.selection import make_fold
from trouter.routers.trouter.adapt import MIN_Z, Adaptation, feedback_scores, fit_adaptation
from trouter.routers.trouter.config import check_params, resolve_taxonomy
from trouter.routers.trouter.cost import (
    CostTargets,
    dollars,
    raw_targets,
    resolve_route,
)
from trouter.routers.trouter.network import (
    initial_parameters,
    parameter_shapes,
)
from trouter.routers.trouter.residual import (
    Residuals,
    Stage,
    ensemble_forward,
    fit_residuals,
    mixture_quality,
    residual_inputs,
    residual_quality,
    routes_better,
    types_and_quality,
)
from trouter.routers.trouter.structure import TaskStructure, latent_structure
from trouter.routers.trouter.training import (
    RESIDUAL,
    Part,
    Settings,
    fit_in_stages,
    without_residual,
)
from trouter.routers.trouter.views import (
    Boilerplate,
    embed_view,
    has_question,
    leaf_view,
    log_length,
    split_view,
)
from trouter.taxonomy import Taxonomy

FloatMatrix = npt.NDArray[np.float64]
#: Epochs when there is nothing to validate on (a tiny training set and no validation set).
DEFAULT_EPOCHS = 60
_NET = "net."
_COST = "cost."
_TARGETS = "cost_targets."
#: The state `adapt` adds (and `fit` drops).
_ADAPTATION = ("adapt_coef_", "adaptation_")


def auto_latent_types(n_queries: int) -> int:
    """Latent types when the data has no task labels: about sqrt(n / 10), between 2 and 24."""
    return int(min(24, max(2, round(math.sqrt(n_queries / 10)))))


class TRouter(Router):
    """Task-type-aware router: task-type mixture + residual, taxonomy prior, hierarchical decoders.

    >>> from trouter.routers.trouter import TRouter
    >>> TRouter(encoder="hashing:256").residual, TRouter(encoder="hashing:256").residual_hidden
    (True, 0)
    """

    name = "trouter"

    def __init__(
        self,
        taxonomy: Taxonomy | dict[str, Any] | str | None = None,
        *,
        text_view: str = "question",
        tail_chars: int = 600,
        hidden: int = 64,
        beta: float = 1.0,
        prior_smoothing: float = 0.2,
        residual: bool = True,
        residual_hidden: int = 0,
        residual_rank: int = 0,
        hierarchical: bool = True,
        hier_l2: float = 10.0,
        cost_model: str = "tokens",
        quality_loss: str = "bce",
        latent_types: int | None = None,
        dropout: float = 0.1,
        lr: float = 3e-3,
        weight_decay: float = 1e-4,
        batch_size: int = 128,
        max_epochs: int = 300,
        patience: int = 15,
        ensemble: int = 5,
        encoder: str | Encoder = "minilm",
        seed: int = 0,
    ) -> None:
        super().__init__(encoder=encoder, seed=seed)
        self.taxonomy = taxonomy
        self.text_view = text_view
        self.tail_chars = tail_chars
        self.hidden = hidden
        self.beta = beta
        self.prior_smoothing = prior_smoothing
        self.residual = residual
        self.residual_hidden = residual_hidden
        self.residual_rank = residual_rank
        self.hierarchical = hierarchical
        self.hier_l2 = hier_l2
        self.cost_model = cost_model
        self.quality_loss = quality_loss
        self.latent_types = latent_types
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.ensemble = ensemble

    def get_params(self) -> dict[str, Any]:
        params = super().get_params()
        if isinstance(params["taxonomy"], Taxonomy):
            params["taxonomy"] = params["taxonomy"].to_dict()
        return params

    # ------------------------------------------------------------------ checks and inputs
    def fit(self, train: RoutingDataset, val: RoutingDataset | None = None) -> Self:
        self._fitting = True
        try:
            return super().fit(train, val)
        finally:
            self._fitting = False

    def _before_embedding(self, train: RoutingDataset) -> None:
        # The `question` view strips boilerplate learned from the training queries, so it must
        # be learned before the base class embeds them.
        if self.text_view == "question":
            self.boilerplate_ = Boilerplate.learn(train.queries).to_dict()
        else:
            self.__dict__.pop("boilerplate_", None)
        for key in _ADAPTATION:
            self.__dict__.pop(key, None)

    def _embed(self, queries: Any) -> Embeddings | None:
        return embed_view(
            self.encoder_, list(queries), self.text_view, self.tail_chars, self._boilerplate()
        )

    def _boilerplate(self) -> Boilerplate:
        """What is cut to read a query's question: the learned boilerplate while fitting, and
        once fitted if the question residual was kept, or if the encoder sums token vectors
        (it then reads each prompt's boilerplate once, which is faster even when the question
        is not needed); else nothing, so a question is never encoded for nothing."""
        reads_question = (
            getattr(self, "_fitting", False)
            or hasattr(self, "question_coef_")
            or sums_tokens(self.encoder_)
        )
        return Boilerplate.from_dict(getattr(self, "boilerplate_", {}) if reads_question else {})

    def _features(self, queries: list[str]) -> FloatMatrix:
        """Log length, standardised with the training set's mean and spread: a query property the
        unit-length embedding cannot see."""
        return (log_length(queries)[:, None] - self.feature_mean_) / self.feature_std_

    # ------------------------------------------------------------------ fitting
    def _fit(
        self,
        train: RoutingDataset,
        x: Embeddings | None,
        val: RoutingDataset | None,
        x_val: Embeddings | None,
    ) -> None:
        if x is None:
            raise TypeError("TRouter needs query embeddings")
        check_params(self)
        for stale in (
            "residual_coef_",
            "residual_intercept_",
            "question_coef_",
            "question_intercept_",
            "question_means_",
        ):
            self.__dict__.pop(stale, None)
        fold = make_fold(train, x, val, x_val, self.seed)
        structure, labeller, leaf_vectors = self._structure(
            fold.full, split_view(np.asarray(fold.x_full, np.float64), self.text_view)[0]
        )
        self.leaf_vectors_: FloatMatrix = leaf_vectors
        self.taxonomy_: dict[str, Any] = structure.taxonomy.to_dict()
        self.leaves_: list[str] = list(structure.leaves)
        self.path_matrix_ = structure.path_matrix
        raw = log_length(fold.full.queries)
        self.feature_mean_ = np.asarray([raw.mean()])
        self.feature_std_ = np.asarray([max(float(raw.std()), 1e-6)])
        route = resolve_route(self.cost_model, fold.full)
        self.cost_route_ = route
        targets: CostTargets | None = None
        if route == "direct":
            scale = float(np.asarray(fold.full.costs).mean(axis=0).max())
            self.cost_scale_ = np.asarray([scale if scale > 0 else 1.0])
        elif route == "shared":
            self.cost_model_ = CostModel.fit(fold)
        else:
            targets = CostTargets.fit(raw_targets(fold.full, route))

        def cost_targets(data: RoutingDataset) -> FloatMatrix | None:
            if route == "direct":
                return np.asarray(data.costs) / self.cost_scale_[0]
            if targets is not None:
                return targets.transform(raw_targets(data, route))
            return None

        def part(data: RoutingDataset, xs: Embeddings) -> Part:
            x_net, extra = split_view(np.asarray(xs, dtype=np.float64), self.text_view)
            prior, labelled = structure.prior(labeller(data, x_net), self.prior_smoothing)
            return Part(
                x=x_net,
                f=self._features(data.queries),
                extra=extra,
                y=np.asarray(data.scores, dtype=np.float64),
                cost=cost_targets(data),
                prior=prior,
                labelled=labelled,
            )

        shapes = parameter_shapes(
            d=leaf_vectors.shape[1],
            k=1,
            leaves=structure.n_leaves,
            nodes=len(structure.nodes),
            models=train.n_models,
            hidden=self.hidden,
            residual_hidden=self.residual_hidden if self.residual else 0,
            hierarchical=self.hierarchical,
            cost_head={"direct": "direct", "shared": "none"}.get(route, "log"),
            cost_outputs=train.n_models * (2 if route == "tokens" else 1),
            residual_rank=self.residual_rank,
        )
        fixed = {"P": structure.path_matrix}
        if not self.latent_:
            fixed["E"] = leaf_vectors
        settings = Settings(
            residual=self.residual and self.residual_hidden > 0,
            quality_loss=self.quality_loss,
            beta=self.beta,
            hier_l2=self.hier_l2 if self.hierarchical else 0.0,
            cost_weight=1.0,
            dropout=self.dropout,
            lr=self.lr,
            weight_decay=self.weight_decay,
            batch_size=self.batch_size,
            max_epochs=self.max_epochs,
            patience=self.patience,
        )
        has_val = fold.val is not None and fold.x_val is not None
        full = part(fold.full, fold.x_full)
        train_part = part(fold.train, fold.x_train) if has_val else None
        val_part = (
            part(fold.val, fold.x_val) if fold.val is not None and fold.x_val is not None else None
        )
        self.members_: list[dict[str, FloatMatrix]] = []
        val_members: list[dict[str, FloatMatrix]] = []
        runs: list[dict[str, Any]] = []
        for k in range(self.ensemble):
            seed = self.seed + 1000 * k
            init = initial_parameters(shapes, np.random.default_rng(seed))
            if self.latent_:  # latent types have no text: their vectors are learned, from k-means
                init["E"] = leaf_vectors.astype(np.float32)
            params, info, trained = fit_in_stages(
                init,
                fixed,
                settings,
                seed,
                full=full,
                train=train_part,
                val=val_part,
                carved=fold.carved,
                default_epochs=DEFAULT_EPOCHS,
            )
            runs.append(info)
            self.members_.append({k: np.asarray(v, dtype=np.float64) for k, v in params.items()})
            if trained is not None:
                val_members.append({k: np.asarray(v, np.float64) for k, v in trained.items()})
        residual_check = None
        if val_part is not None and fold.val is not None and any("R1" in m for m in val_members):
            residual_check = routes_better(
                types_and_quality(self._fixed(), val_members, val_part)[1],
                mixture_quality(self._fixed(), val_members, val_part),
                fold.val,
            )
            if not residual_check["kept"]:
                self.members_ = [without_residual(m) for m in self.members_]
                val_members = [without_residual(m) for m in val_members]
        linear = self.residual and self.residual_hidden == 0
        question = self.text_view == "question"
        if (
            (linear or question)
            and train_part is not None
            and val_part is not None
            and fold.val is not None
        ):
            stage = Stage(
                self._fixed(),
                val_members,
                self.members_,
                train_part,
                val_part,
                fold.val,
                full if fold.carved else None,
            )
            residuals = fit_residuals(stage, linear, question)
            self._keep(residuals)
            residual_check = {**(residual_check or {}), **residuals.check}
        if targets is not None:
            self.cost_targets_ = targets
            targets.calibrate(
                self._network(fold.full.queries, fold.x_full)[2], raw_targets(fold.full, route)
            )
        self.training_: dict[str, Any] = {
            "source": fold.source,
            "leaves": structure.n_leaves,
            **runs[0],
        }
        if residual_check is not None:
            self.training_["residual_check"] = residual_check
        if self.ensemble > 1:
            self.training_["members"] = runs

    def _keep(self, residuals: Residuals) -> None:
        """Store the fitted linear residuals' coefficients (those not kept stay absent)."""
        if residuals.main is not None and residuals.main.coef is not None:
            self.residual_coef_, self.residual_intercept_ = residuals.main.coef
        question, means = residuals.question, residuals.question_means
        if question is not None and question.coef is not None and means is not None:
            self.question_coef_, self.question_intercept_ = question.coef
            self.question_means_ = means

    def _fixed(self) -> dict[str, FloatMatrix]:
        return {"E": self.leaf_vectors_, "P": self.path_matrix_}

    def _structure(
        self, data: RoutingDataset, x: FloatMatrix
    ) -> tuple[TaskStructure, Any, FloatMatrix]:
        """(task structure, a function giving each query's task label for the prior, leaf vectors)."""
        taxonomy = resolve_taxonomy(self.taxonomy)
        self.latent_ = bool(
            taxonomy is None and (self.latent_types is not None or not data.has_tasks)
        )
        if self.latent_:
            k = self.latent_types or auto_latent_types(data.n_queries)
            structure, _, centres = latent_structure(data.queries, x, k, self.seed)
            leaves = list(structure.leaves)

            def nearest(part: RoutingDataset, xs: Embeddings) -> list[str]:
                picks = np.argmax(np.asarray(xs, np.float64) @ centres.T, axis=1)
                return [leaves[j] for j in picks]

            return structure, nearest, centres
        if taxonomy is None:
            taxonomy = Taxonomy.from_task_names(data.task_names)
        structure = TaskStructure.from_taxonomy(taxonomy)
        if data.has_tasks and not any(structure.match(t) for t in data.task_names):
            raise ConfigError(
                f"trouter: none of the data's task labels (e.g. {data.task_names[0]!r}) is a path "
                f"of the taxonomy (e.g. {structure.leaves[0]!r}); label the data with leaf paths"
            )
        return (
            structure,
            lambda part, xs: part.tasks,
            leaf_view(self.encoder_, structure.leaf_texts(), self.text_view),
        )

    # ------------------------------------------------------------------ prediction
    def _predict(self, queries: list[str], x: Embeddings | None) -> Estimates:
        if x is None:
            raise TypeError("TRouter needs query embeddings")
        q, quality, head = self._network(queries, x)
        tokens_out = None
        if self.cost_route_ == "direct":
            cost = head * self.cost_scale_[0]
        elif self.cost_route_ == "shared":
            cost, tokens_out = self.cost_model_.predict(queries, x, self.pool_)
        else:
            cost, tokens_out = dollars(
                self.cost_route_, self.cost_targets_.inverse(head), self.pool_
            )
        return Estimates(
            self.models_,
            np.clip(quality, 0.0, 1.0),
            np.maximum(cost, 0.0),
            tokens_out=tokens_out,
            task_probs=q,
            task_names=tuple(self.leaves_),
        )

    def _network(self, queries: list[str], x: Embeddings) -> tuple[FloatMatrix, FloatMatrix, Any]:
        """(q(t|x), quality, cost head output or None), averaged over the ensemble's members."""
        xs, extra = split_view(np.asarray(x, dtype=np.float64), self.text_view)
        f = self._features(queries)
        q, quality, head = ensemble_forward(self._fixed(), self.members_, xs, f)
        if hasattr(self, "residual_coef_"):
            coef = (self.residual_coef_, self.residual_intercept_)
            quality = residual_quality(quality, residual_inputs(xs, f), coef)
        if hasattr(self, "question_coef_"):
            rows = has_question(extra)
            question = (extra - q @ self.question_means_)[rows]
            coef = (self.question_coef_, self.question_intercept_)
            quality[rows] = residual_quality(quality[rows], question, coef)
        if hasattr(self, "adapt_coef_"):
            quality = Adaptation(self.adapt_coef_, {}).apply(quality, q)
        return q, quality, head

    # ------------------------------------------------------------------ feedback
    def _calibrate(self, train: RoutingDataset) -> Estimates:
        est = super()._calibrate(train)
        # `adapt` corrects the reference estimates too, which needs their task types.
        assert est.task_probs is not None
        self.calibration_types_ = est.task_probs.astype(np.float32)
        return est

    def adapt(self, feedback: RoutingDataset, *, min_z: float = MIN_Z) -> Self:
        """Correct the quality estimates per task type with outcomes observed on live traffic.

        `feedback` holds logged queries and the scores (NaN: not scored) of the models that
        answered them, e.g. only the routed model's; its models must be in this router's pool.
        A correction is made only if its cross-validated gain is `min_z` standard errors above
        zero (trouter.routers.trouter.adapt has the rule). Pass new feedback each time: a second
        call adds to the first.
        """
        self._check_fitted()
        if not min_z >= 0:
            raise ConfigError(f"min_z must be 0 or more standard errors, got {min_z}")
        scores = feedback_scores(feedback, self.models_)
        est = self.predict(feedback.queries)
        assert est.task_probs is not None
        step = fit_adaptation(est.task_probs, est.quality, scores, self.seed, min_z)
        self.adapt_coef_ = step.coef + getattr(self, "adapt_coef_", 0.0)
        self.adaptation_ = [*getattr(self, "adaptation_", []), step.check]
        if hasattr(self, "calibration_types_"):
            types = self.calibration_types_.astype(np.float64)
            self.calibration_ = replace(
                self.calibration_, quality=step.apply(self.calibration_.quality, types)
            )
        return self

    def question_of(self, query: str) -> str | None:
        """The part of `query` this router reads on its own (the query without the boilerplate it
        shares with the training prompts), or None when it reads whole prompts only."""
        self._check_fitted()
        return self._boilerplate().strip(query) if hasattr(self, "question_coef_") else None

    def task_structure(self) -> TaskStructure:
        """The fitted taxonomy's structure (leaves, nodes), e.g. to inspect or explain."""
        self._check_fitted()
        return TaskStructure.from_taxonomy(Taxonomy.from_dict(self.taxonomy_))

    # ------------------------------------------------------------------ persistence
    def _layout(self, meta: dict[str, Any], dim: int | None) -> Layout | None:
        if dim is None:
            return None
        m, leaves = len(self.models_), len(meta.get("leaves_", []))
        nodes = len(TaskStructure.from_taxonomy(Taxonomy.from_dict(meta["taxonomy_"])).nodes)
        route = meta.get("cost_route_", "")
        shapes = parameter_shapes(
            d=dim,
            k=1,
            leaves=leaves,
            nodes=nodes,
            models=m,
            hidden=self.hidden,
            residual_hidden=self.residual_hidden if self.residual else 0,
            hierarchical=self.hierarchical,
            cost_head={"direct": "direct", "shared": "none"}.get(route, "log"),
            cost_outputs=m * (2 if route == "tokens" else 1),
            residual_rank=self.residual_rank,
        )
        # A scalar is saved as one element; latent types learn their vectors, E.
        net = {k: v or (1,) for k, v in shapes.items() if k not in RESIDUAL}
        if meta.get("latent_"):
            net["E"] = (leaves, dim)
        residual = {k: v for k, v in shapes.items() if k in RESIDUAL}
        member = Layout(net, residual)
        layout = Layout(
            {
                "leaf_vectors_": (leaves, dim),
                "path_matrix_": (leaves, nodes),
                "feature_mean_": (1,),
                "feature_std_": (1,),
            },
            {
                "residual_coef_": (None, m),
                "residual_intercept_": (m,),
                "question_coef_": (None, m),
                "question_intercept_": (m,),
                "question_means_": (leaves, None),
                "calibration_types_": (None, leaves),
                "adapt_coef_": (leaves, m),
            },
        )
        for k in range(self.ensemble):
            layout += member.prefixed(f"{_NET}{k}.")
        if route == "direct":
            layout += Layout({"cost_scale_": (1,)})
        elif route == "shared":
            layout += CostModel.layout(dim, m).prefixed(_COST)
        else:
            layout += CostTargets.layout(m * (2 if route == "tokens" else 1)).prefixed(_TARGETS)
        return layout

    def _get_state(self) -> tuple[dict[str, npt.NDArray[Any]], dict[str, Any]]:
        arrays, meta = super()._get_state()
        for key in ("members_", "cost_model_", "cost_targets_"):
            meta.pop(key, None)
        if hasattr(self, "cost_targets_"):
            arrays.update({_TARGETS + k: v for k, v in self.cost_targets_.to_arrays().items()})
        for k, member in enumerate(self.members_):
            arrays.update({f"{_NET}{k}.{name}": v for name, v in member.items()})
        if hasattr(self, "cost_model_"):
            cost_arrays, cost_meta = self.cost_model_.to_state()
            arrays.update({_COST + k: v for k, v in cost_arrays.items()})
            meta[_COST + "meta"] = cost_meta
        return arrays, meta

    def _set_state(self, arrays: dict[str, npt.NDArray[Any]], meta: dict[str, Any]) -> None:
        def strip(prefix: str) -> dict[str, npt.NDArray[Any]]:
            return {k.removeprefix(prefix): v for k, v in arrays.items() if k.startswith(prefix)}

        members: dict[int, dict[str, FloatMatrix]] = {}
        for key, value in strip(_NET).items():
            k, _, name = key.partition(".")
            members.setdefault(int(k), {})[name] = np.asarray(value, dtype=np.float64)
        self.members_ = [members[k] for k in sorted(members)]
        if _COST + "meta" in meta:
            self.cost_model_ = CostModel.from_state(strip(_COST), meta[_COST + "meta"])
        if any(k.startswith(_TARGETS) for k in arrays):
            self.cost_targets_ = CostTargets.from_arrays(strip(_TARGETS))
        rest = {k: v for k, v in arrays.items() if not k.startswith((_NET, _COST, _TARGETS))}
        super()._set_state(rest, {k: v for k, v in meta.items() if k != _COST + "meta"})


class PaperTRouter(TRouter):
    """The paper-faithful TRouter: one-hot prior, flat decoders, direct $ cost, MSE, one network.

    Every other hyper-parameter (and any of these, if given) passes through to `TRouter`.
    """

    name = "trouter-paper"
    PAPER: dict[str, Any] = {
        "text_view": "full",
        "prior_smoothing": 0.0,
        "residual": False,
        "hierarchical": False,
        "cost_model": "direct",
        "quality_loss": "mse",
        "ensemble": 1,
    }

    def __init__(self, **params: Any) -> None:
        super().__init__(**{**self.PAPER, **params})
