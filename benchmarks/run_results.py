"""Run every baseline on the three shared datasets in both protocols and write benchmarks/RESULTS.md.

    nice -n 10 python benchmarks/run_results.py

Each (dataset, protocol) is one `trouter bench` run (the real CLI, in this process, sharing the
on-disk embedding cache) writing report.json / report.md / cost_quality.png under `--out`
(default runs/results/, not committed), and run.json (command, date, wall time per run; a
"resources" line may be added by hand, e.g. from `/usr/bin/time -v`). RESULTS.md is then
assembled from those files alone; `--tables-only` rebuilds it without running anything.

Leave-task-out cuts routellm_evals' task paths ("mmlu/<category>/<subject>") at level 2: six
folds, one per MMLU category (3,000-4,700 queries each), GSM8K and MT-Bench (its eight 10-query
categories merged by the protocol's 30-query minimum), instead of ~60 folds of one MMLU subject
each (about 100 queries, and 60 full refits); the other datasets have flat task names.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from trouter.cli import run
from trouter.eval.report import COLUMN_NOTES, markdown_table, read_report
from trouter.eval.results import ResultRow
from trouter.eval.summary import summarise

REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Job:
    dataset: str
    protocol: str
    task_level: int | None = None

    @property
    def slug(self) -> str:
        return f"{self.dataset}-{self.protocol}"


JOBS = (
    Job("routerbench_subset", "in-domain"),
    Job("routerbench_subset", "leave-task-out"),
    Job("llmrouter_9models", "in-domain"),
    Job("llmrouter_9models", "leave-task-out"),
    Job("routellm_evals", "in-domain"),
    Job("routellm_evals", "leave-task-out", task_level=2),
)


def bench_args(job: Job, args: argparse.Namespace) -> list[str]:
    argv = ["bench", "--data", job.dataset, "--protocol", job.protocol]
    argv += ["--encoder", args.encoder, "--seed", str(args.seed), "--out", str(args.out / job.slug)]
    argv += ["--routers", args.routers] if args.routers else []
    argv += ["--task-level", str(job.task_level)] if job.task_level else []
    argv += ["--data-root", str(args.data_root)] if args.data_root else []
    return argv


def gap_by_fold(rows: list[ResultRow], routers: list[str]) -> list[str]:
    """A compact routers x folds table of gap recovered (leave-task-out)."""
    folds = list(dict.fromkeys(r.fold for r in rows))
    n_test = {r.fold: r.n_test for r in rows}
    lines = [
        "| router | " + " | ".join(f"{f} ({n_test[f]})" for f in folds) + " |",
        "|" + " --- |" * (len(folds) + 1),
    ]
    for name in routers:
        cells = []
        for fold in folds:
            row = next((r for r in rows if r.router == name and r.fold == fold), None)
            gap = None if row is None else row.gap_recovered
            cells.append("-" if gap is None else f"{gap:.2f}")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


RUN_LOG = "run.json"


def load_run_log(out: Path) -> dict[str, Any]:
    """What the last run recorded: its command, date and per-job wall times."""
    path = out / RUN_LOG
    return json.loads(path.read_text()) if path.is_file() else {"timings": {}}


def save_run_log(out: Path, log: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / f".{RUN_LOG}.tmp"
    tmp.write_text(json.dumps(log, indent=2))
    tmp.replace(out / RUN_LOG)


def noise_note(rows: list[ResultRow]) -> str:
    """How much gap the random router shows: the floor below which a gap means nothing."""
    gaps = [r.gap_recovered for r in rows if r.router == "random" and r.gap_recovered is not None]
    if not gaps:
        return ""
    return (
        "Reading the numbers: the upper hull of a noisy curve sits a little above the chord "
        "between the single models, so even the random router shows a gap of up to "
        f"{max(gaps):.2f} on a single fold here (most visibly on the two-model data, whose zero "
        "hull is one chord). Treat gaps of that size as no gain. The zero row's rewards are those "
        "of the best single model chosen on the test set itself, a hindsight reference."
    )


def render(jobs: list[Job], args: argparse.Namespace, log: dict[str, Any]) -> str:
    timings: dict[str, float] = log.get("timings", {})
    paths = {job.slug: args.out / job.slug / "report.json" for job in jobs}
    missing = [slug for slug, path in paths.items() if not path.is_file()]
    if missing:
        sys.exit(f"no report for {', '.join(missing)} under {args.out}; run them first")
    reports = {slug: read_report(path) for slug, path in paths.items()}
    first = next(iter(reports.values())).info
    versions = ", ".join(f"{k} {v}" for k, v in first.versions.items())
    command = log.get("command", "nice -n 10 python benchmarks/run_results.py")
    date = log.get("date", datetime.now(UTC).date().isoformat())
    all_rows = [row for saved in reports.values() for row in saved.rows]
    out = [
        "# Results: baselines on the shared routing data",
        "",
        "TRouter and the paper-faithful TRouter, run against these same baselines on the same "
        "folds (identical baseline figures), the ablation and the analysis of where each "
        "remaining gap lies: [RESULTS-trouter.md](RESULTS-trouter.md).",
        "",
        f"- date: {date} · seed {first.seed} · encoder "
        f"`{first.encoder}` ({first.encoder_id}) · machine: {platform.machine()}, "
        f"{os.cpu_count()} CPU cores (shared with other jobs while this ran)",
        f"- command: `{command}` (one `trouter bench` run per table; its exact command is under "
        "each table)",
        f"- versions: {versions}",
        "- protocols: in-domain = the dataset's own split if it ships one, else a seeded 70/10/20 "
        "split per task; leave-task-out = one fold per task (train on every other task, 10% of "
        "them held out for validation, test on the held-out task), tables show the mean over "
        "folds with gap recovered computed from the mean AIQs. routellm_evals' tasks are cut at "
        "level 2 (mmlu/<category>, gsm8k, mt_bench); a task group under 30 queries is merged "
        "into its parent, so MT-Bench's eight 10-query categories form one fold.",
        "",
        COLUMN_NOTES,
        "",
        noise_note(all_rows),
        "",
    ]
    for dataset in dict.fromkeys(job.dataset for job in jobs):
        ds_jobs = [j for j in jobs if j.dataset == dataset]
        info = reports[ds_jobs[0].slug].info
        out += [
            f"## {dataset}",
            "",
            f"{info.n_queries} queries x {len(info.models)} models. Cost: "
            f"{info.cost_note or 'as given in the data'}.",
            "",
        ]
        for job in ds_jobs:
            saved = reports[job.slug]
            rows = list(saved.rows)
            n_folds = len({r.fold for r in rows})
            seconds = timings.get(job.slug, saved.info.seconds)
            title = f"### {dataset} · {job.protocol}"
            if n_folds > 1:
                title += f" (mean over {n_folds} folds)"
            out += [title, "", *markdown_table(summarise(rows)), ""]
            if n_folds == 1:
                r = rows[0]
                out.append(f"Train {r.n_train} queries, test {r.n_test}.")
            else:
                out += ["Gap recovered per held-out task (test queries):", ""]
                routers = [s.router for s in summarise(rows) if s.router not in ("zero", "oracle")]
                out += gap_by_fold(rows, routers)
            out += ["", f"`{saved.info.command}` · {seconds:.0f} s", ""]
    total = sum(timings.get(job.slug, 0.0) for job in jobs)
    if total:
        out.append(f"Total wall time of the six runs: {total / 60:.1f} min.")
    if log.get("resources"):
        out.append(log["resources"])
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--routers", default=None, help="default: every registered trainable router"
    )
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", type=Path, default=None)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "results")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "RESULTS.md")
    parser.add_argument("--only", default=None, help="comma-separated DATASET-PROTOCOL slugs")
    parser.add_argument("--tables-only", action="store_true", help="rebuild RESULTS.md only")
    args = parser.parse_args()

    jobs = [j for j in JOBS if not args.only or j.slug in args.only.split(",")]
    log = load_run_log(args.out)
    if not args.tables_only:
        log["command"] = "nice -n 10 python benchmarks/run_results.py" + (
            " " + shlex.join(sys.argv[1:]) if sys.argv[1:] else ""
        )
        log["date"] = datetime.now(UTC).date().isoformat()
        log.setdefault("timings", {})
        for job in jobs:
            argv = bench_args(job, args)
            print(f"\n=== trouter {shlex.join(argv)}", flush=True)
            start = time.perf_counter()
            code = run(argv)
            if code != 0:
                sys.exit(f"{job.slug} failed with exit code {code}")
            log["timings"][job.slug] = round(time.perf_counter() - start, 1)
            save_run_log(args.out, log)
    if args.only and not args.tables_only:
        print("(--only: RESULTS.md not rewritten; rerun with --tables-only to assemble it)")
        return
    args.results.write_text(render(list(JOBS), args, log))
    print(f"wrote {args.results}")


if __name__ == "__main__":
    main()
