"""What a labelling run did: `LabelSummary`, the per-model totals and warnings the CLI and the
cold start print, filled from the stored observations."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from trouter.label.observations import (
    CALL_FAILED,
    SCORE_FAILED,
    Observation,
    judge_call_error,
    judge_call_failed,
)
from trouter.label.scorers import canonical_format

if TYPE_CHECKING:
    from trouter.pool import Pool
    from trouter.synth.items import SynthItem

SHAKY_SHARE = 0.2  # a model with at least this share of failed calls gets a warning


@dataclass
class LabelSummary:
    """What a labelling run did; `lines()` is the report the CLI prints."""

    run: str
    items: int
    models: tuple[str, ...]
    observations: int = 0
    reused: int = 0  # stored by an earlier (perhaps interrupted) run and kept
    observed: int = 0  # made by this run
    changed: int = 0  # of those, redone because the request changed (max_tokens, system, ...)
    cache_hits: int = 0  # of those, answered from the LLM cache (no new spend)
    call_failures: Counter[str] = field(default_factory=Counter)
    score_failures: Counter[str] = field(default_factory=Counter)
    mean_score: dict[str, float] = field(default_factory=dict)
    answers: Counter[str] = field(default_factory=Counter)  # observations per model
    call_errors: dict[str, str] = field(default_factory=dict)  # a failed call's error per model
    cost_usd: dict[str, float] = field(default_factory=dict)  # $ of the dataset's answers
    spent_usd: float = 0.0  # paid by this run, judge calls included
    judge_calls: int = 0  # made by this run, the failed ones included
    judge_call_failures: int = 0  # of those, failed after the client's retries
    judge: str = ""  # the judge's name ("" for none)
    judge_before: str = ""  # the judge that graded the stored observations before this run
    judge_asked: int = 0  # stored answers the judge was asked to grade (cached verdicts too)
    judge_failed: int = 0  # of those, the judge's call failed (graded by the next run)
    judge_error: str = ""  # the error of one failed judge call
    regraded: int = 0  # stored verdicts of another judge, dropped to be graded again
    isolation: tuple[str, ...] = ()

    @property
    def failures(self) -> int:
        return sum(self.call_failures.values()) + sum(self.score_failures.values())

    def shaky(self, retry: str = "rerun to retry them") -> list[str]:
        """A warning per model whose calls failed often enough to make its scores doubtful
        (a failed call counts as a wrong answer); `retry` says how to redo the failures."""
        out = []
        for model in self.models:
            failed, total = self.call_failures.get(model, 0), self.answers.get(model, 0)
            if total and failed >= SHAKY_SHARE * total:
                out.append(
                    f"{failed} of {total} calls to {model!r} failed "
                    f"({self.call_errors.get(model, 'no error kept')}); its quality rests on "
                    f"{total - failed} answers and the failures count as wrong; fix its "
                    f"endpoint and {retry}"
                )
        return out

    def judge_change(self) -> str | None:
        """What a change of judge redid, or None when nothing was regraded."""
        if not self.regraded:
            return None
        return (
            f"the judge changed ({self.judge_before} -> {self.judge}): {self.regraded} answers "
            "to judged items are graded again (the answers themselves come from the cache)"
        )

    def lines(self) -> list[str]:
        out: list[str] = [] if (change := self.judge_change()) is None else [change]
        out += [
            f"{self.items} items x {len(self.models)} models = {self.observations} observations "
            f"({self.reused} kept from earlier runs, {self.observed} made now, "
            f"{self.cache_hits} of them from the cache"
            + (f", {self.changed} redone because the request changed" if self.changed else "")
            + ")",
            f"failures: {sum(self.call_failures.values())} calls failed after retries, "
            f"{sum(self.score_failures.values())} answers could not be scored (stored, no score"
            + (
                f"; {self.judge_failed} of them because the judge's call failed"
                if self.judge_failed
                else ""
            )
            + ")",
        ]
        for model in self.models:
            mean = self.mean_score.get(model, math.nan)
            out.append(
                f"  {model}: mean score {mean:.3f}, ${self.cost_usd.get(model, 0.0):.4f}, "
                f"{self.call_failures.get(model, 0)} call failures, "
                f"{self.score_failures.get(model, 0)} scoring failures"
            )
        out.extend(f"warning: {line}" for line in self.shaky())
        failed = self.judge_call_failures
        out.append(
            f"spent now: ${self.spent_usd:.4f} (judge calls: {self.judge_calls}"
            + (f", {failed} of them failed" if failed else "")
            + ")"
        )
        if self.isolation:
            out.append(f"code sandbox: {', '.join(self.isolation)}")
        return out


def fill_totals(
    summary: LabelSummary,
    stored: dict[tuple[str, str], Observation],
    items: Sequence[SynthItem],
    pool: Pool,
) -> None:
    """Count `summary`'s observations, failures, mean scores and $ per model from `stored`,
    and the judge's calls (of `summary.judge`, when there is one)."""
    sums: dict[str, float] = {}
    counts: Counter[str] = Counter()
    for item in items:
        judged = bool(summary.judge) and canonical_format(item.answer_format) == "judge"
        for spec in pool:
            obs = stored.get((item.id, spec.name))
            if obs is None:
                continue
            # The judge is asked about every answer to a judged item but an empty one.
            if judged and obs.status != CALL_FAILED and (obs.response or "").strip():
                summary.judge_asked += 1
                if judge_call_failed(obs):
                    summary.judge_failed += 1
                    summary.judge_error = judge_call_error(obs)
            summary.observations += 1
            summary.answers[spec.name] += 1
            if obs.status == CALL_FAILED:
                summary.call_failures[spec.name] += 1
                summary.call_errors[spec.name] = obs.error
            elif obs.status == SCORE_FAILED:
                summary.score_failures[spec.name] += 1
            # A missing score counts as 0 (DESIGN.md's metric rule).
            sums[spec.name] = sums.get(spec.name, 0.0) + (obs.score or 0.0)
            counts[spec.name] += 1
            if obs.tokens_in is not None and obs.tokens_out is not None:
                summary.cost_usd[spec.name] = summary.cost_usd.get(spec.name, 0.0) + spec.call_cost(
                    obs.tokens_in, obs.tokens_out
                )
    summary.mean_score = {m: sums[m] / counts[m] for m in counts}
