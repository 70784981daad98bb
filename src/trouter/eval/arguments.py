"""What a benchmark run may be asked, checked before any fit: each router once and none under a
reference row's name, hyper-parameters only for routers of the run, and bootstrap resamples
enough to place an interval. Each check raises a one-line `ConfigError`; `run_benchmark` and
`trouter bench` run the same ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from numbers import Integral
from typing import Any

from trouter.errors import ConfigError
from trouter.eval.bootstrap import MIN_DRAWS
from trouter.eval.results import ORACLE, REFERENCE_ROWS, ZERO

_REFERENCE_MEANING = {ZERO: "the best single model", ORACLE: "picks by the true outcomes"}
#: Arguments every router of a run shares, given to `run_benchmark` itself, never per router.
RUN_LEVEL = ("encoder", "seed")


def check_run(
    routers: Sequence[str],
    router_params: Mapping[str, Mapping[str, Any]] | None,
    draws: int,
) -> None:
    """All of this module's checks on one run's arguments."""
    check_router_names(routers)
    check_router_params(routers, router_params)
    check_draws(draws)


def check_draws(draws: int, *, name: str = "draws") -> None:
    """0 (no resampling) or at least `MIN_DRAWS` resamples; `name` is how the caller spells the
    option in the message (the CLI's `--resamples`)."""
    if (
        isinstance(draws, bool)
        or not isinstance(draws, Integral)  # numpy's integers too
        or not (draws == 0 or draws >= MIN_DRAWS)
    ):
        given = f"{name} {draws!r}" if name.startswith("-") else f"{name}={draws!r}"
        raise ConfigError(
            f"{given}: give 0 (none) or at least {MIN_DRAWS} bootstrap resamples; fewer cannot "
            "place the ends of a 95% interval"
        )


def check_router_names(routers: Sequence[str]) -> None:
    """Each router once, and none under a reference row's name: rows are told apart by name."""
    if isinstance(routers, str):
        raise ConfigError(f"routers must be a list of names, e.g. [{routers!r}], not one string")
    if taken := [n for n in routers if n in REFERENCE_ROWS]:
        raise ConfigError(
            f"the {taken[0]!r} row ({_REFERENCE_MEANING[taken[0]]}) is in every report already; "
            f"leave the {taken[0]!r} router out, its row would share that name"
        )
    if twice := sorted({n for n in routers if list(routers).count(n) > 1}):
        raise ConfigError(f"router {twice[0]!r} is listed twice; list each router once")


def check_router_params(
    routers: Sequence[str], router_params: Mapping[str, Mapping[str, Any]] | None
) -> None:
    """Every key of `router_params` a router of the run, each value a mapping of its
    hyper-parameters, none of them a run-level argument (`RUN_LEVEL`): params for a router not
    in the run would be dropped unseen (a typo running the defaults)."""
    for name, params in (router_params or {}).items():
        if name not in routers:
            raise ConfigError(
                f"router_params names {name!r}, which is not in this run "
                f"({', '.join(routers)}); fix the name or add the router to the run"
            )
        if not isinstance(params, Mapping):
            raise ConfigError(
                f"router_params[{name!r}] must map parameter names to values, "
                f"e.g. {{'k': 10}}, not {params!r}"
            )
        if shared := [key for key in RUN_LEVEL if key in params]:
            raise ConfigError(
                f"router_params[{name!r}]: {shared[0]!r} is a run-level argument, the same for "
                f"every router; pass run_benchmark(..., {shared[0]}=...) instead"
            )
