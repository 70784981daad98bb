"""Typed results of the cold-start steps; each is stored in `coldstart.json` when its step
finishes, so a skipped step still reports what it did, and `summary.json` is their union."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class TaxonomyResult(BaseModel):
    leaves: int
    levels: list[str]
    structured_failures: int = 0
    childless: list[str] = Field(default_factory=list)  # parents the generator failed for
    short: list[str] = Field(default_factory=list)  # parents with fewer than min_nodes


class ItemsResult(BaseModel):
    total: int
    per_leaf: dict[str, int]
    wanted_per_leaf: int
    short_leaves: list[str] = Field(default_factory=list)
    # What synthesis rejected ("dropped"): unanswerable, near-duplicates, invalid drafts.
    dropped: dict[str, int] = Field(default_factory=dict)
    structured_failures: int = 0
    stray: int = 0  # items set aside because their leaf is no longer in the taxonomy


class LabelsResult(BaseModel):
    items: int
    observations: int
    reused: int  # stored by an earlier (interrupted) invocation and kept
    observed: int  # made by this invocation
    cache_hits: int  # of those, answered from the LLM cache
    call_failures: dict[str, int] = Field(default_factory=dict)
    score_failures: dict[str, int] = Field(default_factory=dict)
    mean_score: dict[str, float] = Field(default_factory=dict)
    cost_usd: dict[str, float] = Field(default_factory=dict)  # $ of the dataset's answers
    judge: str | None = None
    judge_id: str = ""  # the judge's model and endpoint: another one regrades judged answers
    judge_calls: int = 0
    changed: int = 0  # answers asked again because the request changed (e.g. --max-tokens)
    regraded: int = 0  # judged answers graded again because the judge changed
    warnings: list[str] = Field(default_factory=list)  # e.g. a model whose calls often failed


class RouterResult(BaseModel):
    directory: str
    router: str
    encoder: str
    n_train: int
    n_val: int
    n_test: int
    holdout: float
    seed: int
    epochs: int | None = None
    fit_seconds: float


class Outcome(BaseModel):
    """Routing (at a preset), a single model, or the oracle on the held-out synthetic queries:
    mean true score, mean $ per query, and the share of queries each model answers."""

    name: str
    kind: Literal["preset", "model", "oracle"]
    quality: float
    cost: float
    mix: dict[str, float]
    lam: float | None = None


class ReportResult(BaseModel):
    n_test: int
    presets: list[Outcome]
    models: list[Outcome]
    oracle: Outcome
    aiq: float
    gap_recovered: float | None
    # The gap's bootstrap standard error over the held-out queries (None: no gap to recover).
    gap_se: float | None = None
    # Per preset, per held-out leaf: the share of that leaf's queries each model gets.
    by_leaf: dict[str, dict[str, dict[str, float]]] = Field(default_factory=dict)


class ModelCalls(BaseModel):
    """One model's LLM calls for this job: over every invocation (paid) and this one (cached)."""

    model: str
    roles: list[str]
    paid_calls: int  # answered and paid for, over every invocation of this job
    tokens_in: int
    tokens_out: int
    cost_usd: float  # paid over every invocation
    failed_calls: int  # calls that failed after retries, over every invocation
    cached_calls: int = 0  # answered from the cache, over every invocation
    calls_now: int = 0  # this invocation: answered (paid or cached)
    cached_now: int = 0  # this invocation: answered from the cache
    cost_now: float = 0.0  # this invocation: paid
    retries_now: int = 0


class Summary(BaseModel):
    """`summary.json`: everything a user needs to judge the run (see `trouter coldstart`)."""

    profile: str
    out: str
    store: str
    router_dir: str
    budget_usd: float | None
    spent_total_usd: float  # over every invocation of this job
    spent_now_usd: float  # this invocation
    saved_now_usd: float  # this invocation: cached answers' worth
    cache_hits_now: int
    cache_hits_total: int  # over every invocation of this job
    steps: dict[str, str]  # step -> "ran" | "skipped" (this invocation)
    taxonomy: TaxonomyResult
    items: ItemsResult
    labels: LabelsResult
    router: RouterResult
    report: ReportResult
    calls: list[ModelCalls]
    structured_failures_now: int = 0
