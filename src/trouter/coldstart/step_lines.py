"""One line per finished cold-start step, from its typed result: what the pipeline gives its
reporter (`Reporter.done`) when a step finishes."""

from __future__ import annotations

from pydantic import BaseModel

from trouter.coldstart.results import (
    ItemsResult,
    LabelsResult,
    ReportResult,
    RouterResult,
    TaxonomyResult,
)


def lines(step: str, result: BaseModel) -> list[str]:
    """What `step` did, in a line or two, from its result (what the reporter shows when the
    step finishes); [] for a result without one (the summary)."""
    if isinstance(result, TaxonomyResult):
        return [f"{result.leaves} leaves over levels {' > '.join(result.levels)}"]
    if isinstance(result, ItemsResult):
        dropped = ", ".join(f"{v} {k}" for k, v in result.dropped.items())
        invalid = (
            f"; {result.structured_failures} generator replies never matched the schema "
            "(not cached: a rerun asks again)"
            if result.structured_failures
            else ""
        )
        return [
            f"{result.total} items over {len(result.per_leaf)} leaves "
            f"({len(result.short_leaves)} leaves short of {result.wanted_per_leaf}); "
            f"dropped: {dropped}{invalid}"
        ]
    if isinstance(result, LabelsResult):
        return [
            f"{result.observations} observations ({result.reused} kept from before, "
            f"{result.observed} made now, {result.cache_hits} from the cache"
            + (f", {result.changed} asked again: the request changed" if result.changed else "")
            + (f", {result.regraded} answers regraded by the new judge" if result.regraded else "")
            + "); "
            f"{sum(result.call_failures.values())} calls failed, "
            f"{sum(result.score_failures.values())} answers not scorable"
        ]
    if isinstance(result, RouterResult):
        return [
            f"TRouter fitted on {result.n_train} queries (+{result.n_val} validation) in "
            f"{result.fit_seconds:.1f} s; {result.n_test} held out; saved to {result.directory}"
        ]
    if isinstance(result, ReportResult):
        gap = "n/a" if result.gap_recovered is None else f"{result.gap_recovered:.2f}"
        if result.gap_recovered is not None and result.gap_se is not None:
            gap += f" ± {result.gap_se:.2f} (bootstrap standard error)"
        return [f"AIQ {result.aiq:.3f}, gap recovered {gap} on {result.n_test} held-out queries"]
    return []
