"""Adapting to live traffic: a fraction of a test split's outcomes fed back, the rest evaluated.

For each dataset's in-domain split, a seeded fraction f of the test queries (per task) plays the
role of logged traffic with outcomes ("feedback"); every router is scored on the other 1 - f only
(gap recovered, `trouter.eval.metrics`). Rows:

- `R`: router R fitted on the training split only (what serving starts with);
- `R + refit`: R refitted on the training split plus the feedback with every model's score (what a
  team with fully labelled feedback can do with any router);
- `trouter + adapt (all)`: TRouter fitted on the training split, then `TRouter.adapt` on the
  feedback with every model's score (no refit: seconds);
- `trouter + adapt (routed)`: the same, told only the score of the model TRouter itself routed
  each feedback query to (trade-off `balanced`), as a gateway would log;
- `trouter + adapt (random)`: told only the score of one model drawn at random per feedback
  query, what a gateway exploring on that traffic would log (partial, but not picked by the
  router);
- `adapt (...) changed the router`: in how many draws `adapt` made a correction at all (it makes
  none unless the feedback's cross-validated gain is clear).

Nothing is chosen on the evaluated queries: `adapt` picks its penalty by cross-validation on the
feedback. Three draws of the feedback (seeds 1-3), mean gap.

`--protocol validation` is how `adapt`'s rule was chosen, on the training splits only and so
without any shift: 3 folds (25% of each task held out, seeds 100-102; TRouter fitted on the
rest), each held-out part cut twice (seeds 1-2) into 30% feedback and 70% evaluated; rows are
TRouter and `adapt` with each `min_z` (how many standard errors of cross-validated gain a
correction needs), the change in gap per cut (mean, worst). With `--shift` the held-out parts
get a made-up outcome shift (`swapped`), to see what each rule gains when something did move.
With `--rounds K` (either protocol) the feedback also arrives in K equal rounds, `adapt` (default
rule) after each, read two ways: each call told only the round's new feedback, or (`pooled`,
what `trouter adapt --db` does) everything since the last call that made a correction, the bar
raised as that feedback grows.

    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/trouter_feedback.py --out runs/trouter-feedback
    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/trouter_feedback.py --protocol validation \
        --out runs/trouter-feedback-validation
    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/trouter_feedback.py --protocol validation \
        --shift --out runs/trouter-feedback-validation-shift
    OMP_NUM_THREADS=1 nice -n 5 python benchmarks/trouter_feedback.py --protocol validation \
        [--shift] --rounds 5 --out runs/trouter-feedback-rounds
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from trouter.data.dataset import DatasetSplit, RoutingDataset
from trouter.data.loaders import load_dataset
from trouter.routers.base import Router
from trouter.routers.registry import make_router
from trouter.routers.trouter import TRouter
from trouter.routers.trouter.adapt import MIN_Z, is_look, sequential_z

sys.path.insert(0, str(Path(__file__).resolve().parent))
from trouter_ablation import MemoEncoder
from trouter_selection import gap as aiq_and_gap
from trouter_selection import training_part

BASELINES = ("mf", "linear", "knn")
DRAWS = (1, 2, 3)
#: `adapt`'s rule, from eager to its default (2): how many standard errors of cross-validated
#: gain a correction needs.
MIN_ZS = (0.0, 1.0, 2.0)
ROUNDS_ACTED = "rounds that changed it"


def in_domain(name: str) -> DatasetSplit:
    data = load_dataset(name)
    return data.own_split() or data.split(seed=0)


def combined(a: RoutingDataset, *more: RoutingDataset) -> RoutingDataset:
    frame = pd.concat([a.frame, *(b.frame for b in more)], ignore_index=True)
    return RoutingDataset(frame, name=f"{a.name}+feedback", models=a.models, pool=a.pool)


def routed_only(feedback: RoutingDataset, router: Router) -> RoutingDataset:
    """The feedback with only the score of the model `router` picks for each query."""
    picks = [d.model for d in router.route(feedback.queries, "balanced")]
    return only(feedback, picks, "routed")


def random_only(feedback: RoutingDataset, seed: int) -> RoutingDataset:
    """The feedback with only the score of one model drawn at random for each query (what
    exploring on every query would log: partial, but not chosen by the router)."""
    rng = np.random.default_rng(seed)
    picks = [feedback.models[i] for i in rng.integers(feedback.n_models, size=feedback.n_queries)]
    return only(feedback, picks, "random")


def only(feedback: RoutingDataset, picks: list[str], kind: str) -> RoutingDataset:
    """The feedback with only the score of `picks[i]` for query i."""
    chosen = dict(zip(feedback.query_ids, picks, strict=True))
    frame = feedback.frame
    keep = frame["model"].to_numpy() == frame["query_id"].map(chosen).to_numpy()
    scored = set(frame.loc[keep, "model"])  # a model never picked has no score: not listed
    return RoutingDataset(
        frame[keep].reset_index(drop=True),
        name=f"{feedback.name}:{kind}",
        models=[m for m in feedback.models if m in scored],
        pool=feedback.pool,
    )


def gap(router: Router, test: RoutingDataset) -> float:
    """Gap recovered of a fitted router on `test` (`trouter_selection.gap`'s second half)."""
    return aiq_and_gap(router, test)[1]


def adapted_rows(
    base: TRouter,
    feedback: RoutingDataset,
    rest: RoutingDataset,
    encoder: MemoEncoder,
    min_z: tuple[float, ...],
) -> dict[str, float]:
    """Gap on `rest` of `base` adapted to all of `feedback`, to its routed part and to one random
    model's score per query, and whether each adaptation changed anything, for each rule in
    `min_z`."""
    out: dict[str, float] = {}
    kinds = (
        ("all", feedback),
        ("routed", routed_only(feedback, base)),
        ("random", random_only(feedback, seed=0)),
    )
    for kind, told in kinds:
        for z in min_z:
            label = f"{kind}, min_z={z:g}"
            adapted = copy.deepcopy(base, memo={id(encoder): encoder}).adapt(told, min_z=z)
            out[f"trouter + adapt ({label})"] = gap(adapted, rest)
            changed = adapted.adaptation_[-1]["alpha"] is not None
            out[f"adapt ({label}) changed the router"] = float(changed)
    return out


def rounds_rows(
    base: TRouter,
    feedback: RoutingDataset,
    rest: RoutingDataset,
    encoder: MemoEncoder,
    rounds: int,
) -> dict[str, float]:
    """Gap on `rest` after `feedback` arrives in `rounds` equal parts, `adapt` (default rule)
    called after each, told every model's score, the routed model's or a random model's. Two
    bookkeepings: each call reads only the feedback that arrived since the last call (`new
    only`), or every score since the last call that made a correction (`pooled`, with
    `sequential_z`'s bar, which rises as the pooled feedback grows), so that rounds too small to
    clear the gate add up."""
    order = np.random.default_rng(len(feedback)).permutation(feedback.query_ids)
    parts = [feedback.subset(ids) for ids in np.array_split(order, rounds)]
    out: dict[str, float] = {}
    for kind in ("all", "routed", "random"):
        for pooled in (False, True):
            router = copy.deepcopy(base, memo={id(encoder): encoder})
            pending: list[RoutingDataset] = []
            looks: list[int] = []  # pooled sizes at the earlier looks that could have acted
            acted = 0
            for k, part in enumerate(parts):
                if kind == "routed":  # what the router serving this round routed to
                    part = routed_only(part, router)
                elif kind == "random":
                    part = random_only(part, seed=k)
                pending = [*pending, part] if pooled else [part]
                # what `trouter adapt --db` does: a bar that rises as the pooled feedback grows
                told = combined(*pending)
                bar = sequential_z(MIN_Z, [*looks, told.n_queries])
                router.adapt(told, min_z=bar)
                step = router.adaptation_[-1]
                if step["models"]:
                    acted += 1
                    pending, looks = [], []
                elif pooled and is_look(step):
                    looks.append(told.n_queries)
            label = f"{kind}, {rounds} rounds, {'pooled' if pooled else 'new only'}"
            out[f"trouter + adapt ({label})"] = gap(router, rest)
            out[f"adapt ({label}): {ROUNDS_ACTED}"] = float(acted)
    return out


def swapped(held: RoutingDataset, rest: RoutingDataset) -> RoutingDataset:
    """`held` with a made-up outcome shift: on its largest task, the scores of that task's best
    and worst model (by their mean on `rest`) trade places."""
    tasks = np.asarray(held.tasks)
    names, counts = np.unique(tasks, return_counts=True)
    task = names[np.argmax(counts)]
    means = rest.scores[np.asarray(rest.tasks) == task].mean(axis=0)
    best, worst = int(np.argmax(means)), int(np.argmin(means))
    scores = held.scores_raw.copy()
    rows = tasks == task
    scores[np.ix_(rows, [best, worst])] = scores[np.ix_(rows, [worst, best])]
    return RoutingDataset.from_matrices(
        query_ids=held.query_ids,
        queries=held.queries,
        models=held.models,
        scores=scores,
        costs=held.costs_raw,
        tasks=held.tasks,
        tokens_in=held.tokens_in,
        tokens_out=held.tokens_out,
        name=f"{held.name}:swapped",
        pool=held.pool,
    )


def is_count(row: str) -> bool:
    """Whether a row counts adaptations that acted (rather than giving a gap)."""
    return row.endswith(("changed the router", ROUNDS_ACTED))


def run_validation(
    name: str, encoder: MemoEncoder, shift: bool, rounds: int
) -> dict[str, list[float]]:
    train = training_part(load_dataset(name))
    rows: dict[str, list[float]] = {}
    for fold in range(3):
        rest, held = train.holdout(0.25, seed=100 + fold)
        held = swapped(held, rest) if shift else held
        base = TRouter(encoder=encoder, seed=0).fit(rest)
        for cut in (1, 2):
            evaluated, feedback = held.holdout(0.3, seed=cut)
            before = gap(base, evaluated)
            rows.setdefault("trouter", []).append(before)
            found = adapted_rows(base, feedback, evaluated, encoder, MIN_ZS)
            if rounds:
                found |= rounds_rows(base, feedback, evaluated, encoder, rounds)
            for key, value in found.items():
                delta = value if is_count(key) else value - before
                rows.setdefault(key, []).append(delta)
        print(f"  {name} fold {fold}: " + _last(rows), flush=True)
    return rows


def _last(rows: dict[str, list[float]]) -> str:
    return ", ".join(f"{k} {v[-1]:.3f}" for k, v in rows.items())


def run(name: str, fraction: float, encoder: MemoEncoder, rounds: int) -> dict[str, list[float]]:
    split = in_domain(name)
    fitted = {
        r: make_router(r, encoder=encoder, seed=0).fit(split.train) for r in ("trouter", *BASELINES)
    }
    rows: dict[str, list[float]] = {}
    for draw in DRAWS:
        rest, feedback = split.test.holdout(fraction, seed=draw)
        for r, router in fitted.items():
            rows.setdefault(r, []).append(gap(router, rest))
            refit = make_router(r, encoder=encoder, seed=0).fit(combined(split.train, feedback))
            rows.setdefault(f"{r} + refit", []).append(gap(refit, rest))
        base = fitted["trouter"]
        assert isinstance(base, TRouter)
        found = adapted_rows(base, feedback, rest, encoder, MIN_ZS)
        if rounds:
            found |= rounds_rows(base, feedback, rest, encoder, rounds)
        for key, value in found.items():
            rows.setdefault(key, []).append(value)
        print(f"  {name} f={fraction} draw {draw}: " + _last(rows), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="llmrouter_9models,routellm_evals,routerbench_subset")
    parser.add_argument("--fractions", default="0.1,0.25")
    parser.add_argument("--protocol", choices=("test", "validation"), default="test")
    parser.add_argument(
        "--shift",
        action="store_true",
        help="validation: swap the best and worst model's scores on the held-out part's largest "
        "task (a made-up outcome shift)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=0,
        help="also feed the feedback in this many rounds, `adapt` after each",
    )
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--out", type=Path, default=Path("runs/trouter-feedback"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    encoder = MemoEncoder(args.encoder)
    results: dict[str, dict[str, list[float]]] = {}
    deltas = args.protocol == "validation"
    cells = [(n, float(f)) for n in args.data.split(",") for f in args.fractions.split(",")]
    if deltas:
        cells = [(n, 0.3) for n in args.data.split(",")]
    for name, fraction in cells:
        start = time.perf_counter()
        if deltas:
            label = "validation, shifted" if args.shift else "validation"
            results[f"{name} {label}"] = run_validation(name, encoder, args.shift, args.rounds)
        else:
            results[f"{name} f={fraction}"] = run(name, fraction, encoder, args.rounds)
        print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)
        (args.out / "rows.json").write_text(json.dumps(results, indent=1))
    lines = ["| router | " + " | ".join(results) + " |", "| --- |" + " ---: |" * len(results)]
    for row in next(iter(results.values())):
        cells_md = [_cell(results[c][row], row, deltas) for c in results]
        lines.append(f"| {row} | " + " | ".join(cells_md) + " |")
    (args.out / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


def _cell(values: list[float], row: str, deltas: bool) -> str:
    """A table cell: a count for "changed" rows, a mean and the worst change for the validation
    protocol's adapt rows (changes in gap), else a mean gap."""
    if row.endswith(ROUNDS_ACTED):
        return f"{int(sum(values))} in {len(values)} cuts"
    if is_count(row):
        return f"{int(sum(values))} of {len(values)}"
    if deltas and row.startswith("trouter + adapt"):
        return f"{np.mean(values):+.4f} (worst {np.min(values):+.4f})"
    return f"{np.mean(values):.3f}"


if __name__ == "__main__":
    main()
