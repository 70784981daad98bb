"""`trouter adapt`: correct a trained TRouter's quality estimates from scored live traffic.

    trouter adapt --router my-router --data feedback.jsonl --out my-router-adapted
    trouter adapt --router my-router --db gateway.sqlite --out my-router-adapted

The feedback is a routing dataset, or the gateway's decision log with the scores clients sent to
POST /v1/feedback; nothing is retrained (trouter.routers.trouter.adapt).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from trouter.cli.app import app, console
from trouter.errors import ConfigError, DataError
from trouter.paths import make_dir


@app.command("adapt")
def adapt_command(
    router: Annotated[
        Path, typer.Option("--router", help="A TRouter directory written by `trouter train`.")
    ],
    out: Annotated[Path, typer.Option("--out", help="The adapted router directory to write.")],
    data: Annotated[
        str | None,
        typer.Option(
            "--data",
            help="Feedback from a file: logged queries with the scores the models that answered "
            "them earned (any file `trouter import` reads; an unscored model is simply not told).",
        ),
    ] = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="Or the gateway's store (URL or SQLite file): the requests clients scored with "
            "POST /v1/feedback, except those an earlier adaptation used.",
        ),
    ] = None,
    since: Annotated[
        str | None, typer.Option("--since", help="With --db: only feedback since 30m, 7d, a date.")
    ] = None,
    min_z: Annotated[
        float | None,
        typer.Option(
            "--min-z",
            # 2 and 0.5% are adapt.MIN_Z and MIN_RELATIVE_GAIN, spelt out: importing them would
            # load numpy for every command.
            help="Standard errors of cross-validated gain a correction needs (default 2; 0 acts "
            "on any gain of at least 0.5% of the router's Brier score on the feedback, which routed "
            "worse where nothing had shifted: benchmarks/RESULTS-trouter.md). "
            "With --db, raised as feedback that changed nothing is read again with what arrived "
            "since.",
        ),
    ] = None,
) -> None:
    """Adapt a trained TRouter to outcomes observed on live traffic (no retraining)."""
    from trouter.routers.registry import load_router
    from trouter.routers.trouter import TRouter
    from trouter.routers.trouter.adapt import MIN_Z, is_look, sequential_z

    if (data is None) == (db is None):
        raise ConfigError(
            "give the feedback as either --data FILE or --db STORE, not both or neither"
        )
    if since is not None and db is None:
        raise ConfigError("--since selects gateway feedback; it needs --db")
    if out.resolve() == router.resolve():
        raise ConfigError("--out must differ from --router: the router you adapt is kept as it is")
    model = load_router(router)
    if not isinstance(model, TRouter):
        raise ConfigError(
            f"{router}: a {model.name} router cannot adapt; retrain it with `trouter train` on "
            "its training data plus the feedback"
        )
    feedback, source = _feedback(model, data, db, since)
    # Each look again at feedback that changed nothing raises the bar as the feedback grows
    # (see `sequential_z`); a look at no new feedback could only act on noise.
    reads = _unused_reads(model, source.store) if source is not None else []
    if reads and feedback.n_queries <= reads[-1]["queries"]:
        raise DataError(
            f"no new feedback since the last `trouter adapt` looked at it "
            f"({reads[-1]['queries']} queries, changed nothing; {feedback.n_queries} now): score "
            "more requests with POST /v1/feedback first"
        )
    sizes = [*(r["queries"] for r in reads if is_look(r)), feedback.n_queries]
    rule = sequential_z(MIN_Z if min_z is None else min_z, sizes)
    if len(sizes) > 1:
        console.print(
            f"look {len(sizes)} at this feedback ({sizes[0]} queries at the first, "
            f"{sizes[-1]} now; the earlier looks changed nothing): a correction needs "
            f"{round(rule, 2):g} standard errors"
        )
    with console.status(f"adapting to {feedback.n_queries} queries of feedback"):
        model.adapt(feedback, min_z=rule)
    step = model.adaptation_[-1]
    if source is not None:
        # Feedback that changed nothing stays unused, so the next call reads it again with what
        # arrives meanwhile: rounds too small to clear the gate add up to a decision.
        step["feedback_through" if step["models"] else "feedback_read"] = source.through
        step["feedback_store"] = source.store
    model.save(make_dir(out))  # only now: a refused adaptation leaves no folder
    moved = [f"{model.models_[j]} ({step['scores'][j]} scores)" for j in step["models"]]
    console.print(
        f"adapted to {feedback.n_queries} queries; corrected: {', '.join(moved) or 'nothing'}"
        f"; saved to [bold]{out}[/]"
    )
    gain = step.get("cv_gain")
    if gain and gain["standard_error"] > 0:
        z = gain["brier_gain"] / gain["standard_error"]
        console.print(
            f"[dim]cross-validated Brier gain of the best correction: {gain['brier_gain']:+.2g} "
            f"± {gain['standard_error']:.2g} ({z:.1f} standard errors; needed {round(rule, 2):g})[/]"
        )
    if not moved:
        pending = (
            ". This feedback stays unused: the next `trouter adapt --db` on the saved router "
            "reads it again with what has arrived since"
        )
        console.print(
            f"[dim]nothing changed: {_why_not(step, rule)}{pending if source is not None else ''}[/]"
        )


def _why_not(step: dict[str, Any], rule: float) -> str:
    """Why an adaptation (its `check` record) kept no correction, `rule` the standard errors
    it needed: a gain clear of noise but below the floor, or none clear of noise."""
    from trouter.routers.trouter.adapt import MIN_SCORES

    gain = step.get("cv_gain") or {}
    if "floor" in gain and rule * gain["standard_error"] < gain["brier_gain"] < gain["floor"]:
        return (
            f"gain {gain['brier_gain']:.2g} below the floor {gain['floor']:.2g} "
            f"({step['min_gain'] * 100:g}% of the router's Brier score on the feedback, "
            f"{gain['baseline_brier']:.2g}); not kept"
        )
    return (
        "a correction is made only when it beats the router's own estimates by "
        f"{round(rule, 2):g} standard errors in cross-validation on the feedback, on models with "
        f"at least {MIN_SCORES} scores (more feedback, or it agrees with the router)"
    )


def _unused_reads(model: Any, store: str) -> list[dict[str, Any]]:
    """The latest adaptations that read this store's feedback and changed nothing, oldest first."""
    reads: list[dict[str, Any]] = []
    for step in reversed(getattr(model, "adaptation_", [])):
        if "feedback_read" not in step:
            break
        if _read_from(step, store):
            reads.insert(0, step)
    return reads


def _read_from(step: dict[str, Any], store: str) -> bool:
    # Routers adapted before stores had an identity recorded none: their marks are taken to be
    # this store's, as they were then.
    return step.get("feedback_store", store) == store


@dataclass(frozen=True)
class _Source:
    """Where gateway feedback came from: the store's identity and the last feedback id read."""

    store: str
    through: int


def _feedback(
    model: Any, data: str | None, db: str | None, since: str | None
) -> tuple[Any, _Source | None]:
    """(the feedback dataset, where it came from, or None for a file)."""
    from trouter.data.loaders import load_dataset

    if data is not None:
        return load_dataset(data), None
    assert db is not None  # the command takes exactly one of the two
    from trouter.serve.feedback import feedback_dataset
    from trouter.serve.log_summary import parse_since
    from trouter.store import Store, url_for

    after = parse_since(since) if since else None
    store = Store(url_for(db), must_exist=True)
    try:
        identity = store.identity()
        used = max(
            (
                a.get("feedback_through", 0)
                for a in getattr(model, "adaptation_", [])
                if _read_from(a, identity)
            ),
            default=0,
        )
        dataset, through = feedback_dataset(store, model.models_, after=used, since=after)
        return dataset, _Source(identity, through)
    finally:
        store.close()
