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

from dataclasses import replace
from typing import Any, Self

import numpy as np
import numpy.typing as npt

from trouter.data.dataset import RoutingDataset
from trouter.encode import Embeddings, Encoder, sums_tokens
from trouter.errors import ConfigError
from trouter.routers.base import Estimates, Router, check_dataset
from trouter.routers.layout import Layout
from trouter.routers.selection import Fold, make_fold
from trouter.routers.trouter.adapt import MIN_Z, Adaptation, feedback_scores, fit_adaptation
from trouter.routers.trouter.config import check_params
from trouter.routers.trouter.cost import dollars, raw_targets
from trouter.routers.trouter.fitting import (
    CostHead,
    Ensemble,
    Inputs,
    Parts,
    Tasks,
    check_mlp_residual,
    fit_linear_residuals,
    fit_tasks,
    kept_residuals,
    member_shapes,
    train_ensemble,
    training_record,
)
from trouter.routers.trouter.persistence import pack_state, state_layout, unpack_state
from trouter.routers.trouter.residual import ensemble_forward, residual_inputs, residual_quality
from trouter.routers.trouter.structure import TaskStructure
from trouter.routers.trouter.views import (
    Boilerplate,
    embed_view,
    has_question,
    log_length,
    split_view,
)
from trouter.taxonomy import Taxonomy

FloatMatrix = npt.NDArray[np.float64]
#: The state `adapt` adds (and `fit` drops).
_ADAPTATION = ("adapt_coef_", "adaptation_")
#: State that only some fits set (the linear residuals if kept, each cost route's own): a refit
#: drops it first, so a router saves only what its last fit made.
_OPTIONAL_STATE = (
    *("residual_coef_", "residual_intercept_", "question_coef_", "question_intercept_"),
    *("question_means_", "cost_scale_", "cost_model_", "cost_targets_"),
)


class TRouter(Router):
    """Task-type-aware router: task-type mixture + residual, taxonomy prior, hierarchical decoders.

    >>> from trouter.routers.trouter import TRouter
    >>> TRouter(encoder="hashing:256").residual, TRouter(encoder="hashing:256").residual_hidden
    (True, 0)
    """

    name = "trouter"
    # Set only when kept on validation (see `fitting.kept_residuals`).
    residual_coef_: FloatMatrix
    residual_intercept_: FloatMatrix
    question_coef_: FloatMatrix
    question_intercept_: FloatMatrix
    question_means_: FloatMatrix

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
        for stale in _OPTIONAL_STATE:
            self.__dict__.pop(stale, None)
        fold = make_fold(train, x, val, x_val, self.seed)
        tasks = self._fit_tasks(fold.full, fold.x_full)
        self._fit_length_scale(fold.full.queries)
        cost = self._fit_cost(fold)
        shapes = member_shapes(self, tasks, train.n_models, cost.route)
        inputs = Inputs(tasks, cost, self.text_view, self.prior_smoothing, self._features)
        parts = Parts.of(fold, inputs)
        ensemble = train_ensemble(self, shapes, tasks, parts, fold)
        self.members_: list[dict[str, FloatMatrix]] = ensemble.members
        residual_check = self._fit_residuals(ensemble, parts, fold)
        if cost.targets is not None:
            self.cost_targets_ = cost.targets
            head = self._network(fold.full.queries, fold.x_full)[2]
            cost.targets.calibrate(head, raw_targets(fold.full, cost.route))
        self.training_: dict[str, Any] = training_record(fold, tasks, ensemble, residual_check)

    def _fit_tasks(self, data: RoutingDataset, x: Embeddings) -> Tasks:
        """The task structure and its leaf vectors, kept as the fitted taxonomy."""
        tasks = fit_tasks(self, data, split_view(np.asarray(x, np.float64), self.text_view)[0])
        self.latent_ = tasks.latent
        self.leaf_vectors_: FloatMatrix = tasks.leaf_vectors
        self.taxonomy_: dict[str, Any] = tasks.structure.taxonomy.to_dict()
        self.leaves_: list[str] = list(tasks.structure.leaves)
        self.path_matrix_ = tasks.structure.path_matrix
        return tasks

    def _fit_length_scale(self, queries: list[str]) -> None:
        """The training queries' mean and spread of log length, to standardise `_features`."""
        raw = log_length(queries)
        self.feature_mean_ = np.asarray([raw.mean()])
        self.feature_std_ = np.asarray([max(float(raw.std()), 1e-6)])

    def _fit_cost(self, fold: Fold) -> CostHead:
        """The cost route and what the cost head learns; the shared cost model, if used."""
        cost = CostHead.fit(self.cost_model, fold)
        self.cost_route_ = cost.route
        if cost.route == "direct":
            self.cost_scale_ = np.asarray([cost.scale])
        elif cost.model is not None:
            self.cost_model_ = cost.model
        return cost

    def _fit_residuals(self, ensemble: Ensemble, parts: Parts, fold: Fold) -> dict[str, Any] | None:
        """Judge the MLP residual, then fit the linear ones; what was decided (None: nothing)."""
        check = check_mlp_residual(self._fixed(), ensemble, parts, fold)
        self.members_ = ensemble.members
        residuals = fit_linear_residuals(self, self._fixed(), ensemble, parts, fold)
        if residuals is None:
            return check
        for key, value in kept_residuals(residuals).items():  # those not kept stay absent
            setattr(self, key, value)
        return {**(check or {}), **residuals.check}

    def _fixed(self) -> dict[str, FloatMatrix]:
        return {"E": self.leaf_vectors_, "P": self.path_matrix_}

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
        zero and at least MIN_RELATIVE_GAIN of the estimates' Brier score on the feedback
        (trouter.routers.trouter.adapt has the rule). Pass new feedback each time: a second call
        adds to the first.
        """
        self._check_fitted()
        check_dataset(feedback, "feedback", "adapt")
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
        return None if dim is None else state_layout(self, meta, dim)

    def _get_state(self) -> tuple[dict[str, npt.NDArray[Any]], dict[str, Any]]:
        return pack_state(self, *super()._get_state())

    def _set_state(self, arrays: dict[str, npt.NDArray[Any]], meta: dict[str, Any]) -> None:
        parts, arrays, meta = unpack_state(arrays, meta)
        for key, value in parts.items():
            setattr(self, key, value)
        super()._set_state(arrays, meta)


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
