"""When a labelling run stops because an endpoint is down: `DOWN_AFTER` failed calls in a row.

One rule for the pool models and the judge alike (`DownWatch`), so that a dead endpoint stops
the run soon instead of the pool answering (paid) while nothing can be used: a pool model that
no longer answers, or a judge that no longer grades. Light: the CLI reads `DOWN_AFTER` for its
help text.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from trouter.errors import ConfigError

# An endpoint whose calls fail this many times in a row (each after the client's retries), at
# the start of a run or part-way through it, is down: the run stops then, instead of paying
# every other model's answers and the judge before saying so.
DOWN_AFTER = 6

# What became of one call, as `DownWatch.record` counts it.
ANSWERED = "answered"  # the endpoint replied (whatever the reply held)
CACHED = "cached"  # read from the LLM cache: says nothing about the endpoint
FAILED = "failed"  # no reply after the client's retries


class DownWatch:
    """Counts, per endpoint name, the calls that failed in a row, in the order the calls come
    back (the workers share one event loop, so the counts change between awaits only and need
    no lock). A failure anywhere in the run counts, not only in the first calls: an endpoint
    that dies after 500 answers stops the run as one dead from the start does. Only an answer
    from the endpoint itself resets the count; one read from the cache says nothing about
    whether the endpoint is up. With several workers a call sent before the endpoint died may
    still come back fine after some failures and reset the count; there are at most
    `workers - 1` such calls, so that only delays the stop. A name with fewer calls `planned`
    than `after` is down when each of them failed; as `planned` is an upper bound (a judge is
    not asked about an empty answer, nor about a pool call that failed), the run's end checks
    that too (`stop_if_all_failed`)."""

    def __init__(self, planned: Mapping[str, int], after: int = DOWN_AFTER) -> None:
        self.planned = dict(planned)
        self.after = after
        self.streak: Counter[str] = Counter()  # the latest calls of each name that failed
        self.answered: set[str] = set()  # names whose endpoint answered in this run

    def record(self, name: str, outcome: str) -> bool:
        """Count one call of `name` (`ANSWERED`, `CACHED` or `FAILED`); True when this very
        failure makes `name` down."""
        if outcome == ANSWERED:
            self.answered.add(name)
            self.streak[name] = 0
        elif outcome == FAILED:
            self.streak[name] += 1
            return self.streak[name] == min(self.after, self.planned.get(name, self.after))
        return False

    def how(self, name: str) -> str:
        """ "in a row" when the endpoint answered earlier in the run, else "first"."""
        return "in a row" if name in self.answered else "first"


def stop_if_all_failed(
    name: str, calls: int, failed: int, error: str, *, judge: bool = False
) -> None:
    """The end-of-run rule, for the pool models and the judge alike: an endpoint every call of
    which failed (over the run's stored observations, those kept from earlier runs included)
    is down however few its calls were, fewer than `DOWN_AFTER` included, and `down_error`
    ("all") is raised; `error` is one of the failures' errors."""
    if calls and failed == calls:
        raise down_error(name, calls, error, "all", judge=judge)


def down_error(name: str, failed: int, error: str, how: str, *, judge: bool = False) -> ConfigError:
    """The one-line error of an endpoint found down; `how` is "first" (its first calls of the
    run failed), "in a row" (it answered, then failed) or "all" (every call of the run failed).
    A judge's names the judge and says the rerun grades the paid answers from the cache."""
    who = f"the judge {name!r}" if judge else repr(name)
    which = {
        "first": f"the first {failed} calls to {who}",
        "in a row": f"{failed} calls in a row to {who}",
        "all": f"all {failed} calls to {who}",
    }[how]
    error = error if len(error) <= 240 else error[:237] + "..."
    fix = (
        "fix its endpoint or name another judge (--judge), then rerun (the answers paid so far "
        "are kept, and the rerun grades them from the cache)"
        if judge
        else "fix its endpoint or remove it from the pool, then rerun (the answers paid so far "
        "are kept and reused)"
    )
    return ConfigError(f"{which} failed ({error or 'no error kept'}); {fix}")
