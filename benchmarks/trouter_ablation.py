"""TRouter against the baselines, and the ablation of our additions, on the shared routing data.

For each dataset and protocol, the eval harness's folds (`trouter.eval.protocols`: in-domain is
the dataset's own split or a seeded 70/10/20 split; leave-task-out is one fold per task, with
routellm_evals cut at task level 2 as in RESULTS.md) and its scoring (`trouter.eval.runner`:
AIQ, gap recovered, rewards): every variant is fitted on the fold's train (+ validation) part
and scored on its test part. Nothing is tuned here: each variant runs with fixed settings.

Variant groups (`--variants`, comma-separated group or variant names):

- `headline`: TRouter (our defaults), the paper-faithful TRouter, and the baselines;
- `ablation`: the paper-faithful TRouter plus one of our additions at a time, and all of them;
- `all`: both.

Protocols: `in-domain`, `leave-task-out`, and `resplit` (supplementary: three seeded 70/10/20
splits of the whole dataset, for data whose shipped test split is small).

    OMP_NUM_THREADS=1 nice -n 10 python benchmarks/trouter_ablation.py --out runs/trouter-ablation
    nice -n 10 python benchmarks/trouter_ablation.py --data routerbench_subset \
        --protocols in-domain --variants headline

Writes OUT/rows.json (every fold's rows, rewritten after each fold, so an interrupted run keeps
what it finished) and OUT/summary.md (per dataset and protocol: the mean over folds, gap
recovered from the mean AIQs, and for leave-task-out the gap per held-out task).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from trouter.data.loaders import load_dataset
from trouter.encode import Embeddings, load_encoder
from trouter.eval import metrics
from trouter.eval.protocols import Fold, make_folds
from trouter.eval.report import comparison_lines, markdown_table
from trouter.eval.results import ORACLE, ResultRow
from trouter.eval.runner import evaluate_router, reference_rows, with_bootstrap
from trouter.eval.summary import compare, summarise
from trouter.routers.registry import make_router

DATASETS = ("routerbench_subset", "llmrouter_9models", "routellm_evals")
PROTOCOLS = ("in-domain", "leave-task-out")
#: A supplementary protocol: three seeded 70/10/20 splits of the whole dataset (per task), for
#: data whose shipped test split is small (llmrouter_9models: 381 queries, 8 of 14 tasks).
RESPLIT = "resplit"
RESPLIT_SEEDS = (1, 2, 3)
TASK_LEVEL = {"routellm_evals": 2}
BASELINES = ("knn", "linear", "mlp", "mf")

#: Our additions to the paper's method, each as the setting that switches it on.
ADDITIONS: dict[str, dict[str, Any]] = {
    "smoothed prior": {"prior_smoothing": 0.2},
    "hierarchical decoders": {"hierarchical": True},
    "residual": {"residual": True},
    "token-priced cost": {"cost_model": "tokens"},
    "bce loss": {"quality_loss": "bce"},
    "ensemble of 5": {"ensemble": 5},
    "question view": {"text_view": "question"},
}
#: Options measured but not in our defaults (an alternative to the question view).
ALTERNATIVES: dict[str, dict[str, Any]] = {"head+tail view": {"text_view": "head+tail"}}


def variants() -> dict[str, tuple[str, dict[str, Any]]]:
    """label -> (registry name, parameters)."""
    out: dict[str, tuple[str, dict[str, Any]]] = {
        "trouter": ("trouter", {}),
        "trouter, full view": ("trouter", {"text_view": "full"}),
        "trouter-paper": ("trouter-paper", {}),
    }
    out.update({name: (name, {}) for name in BASELINES})
    for label, params in {**ADDITIONS, **ALTERNATIVES}.items():
        out[f"paper + {label}"] = ("trouter-paper", params)
    return out


GROUPS = {
    "headline": ["trouter", "trouter, full view", "trouter-paper", *BASELINES],
    "ablation": ["trouter-paper", *[f"paper + {a}" for a in {**ADDITIONS, **ALTERNATIVES}]],
}
GROUPS["all"] = list(dict.fromkeys(GROUPS["headline"] + GROUPS["ablation"]))


class MemoEncoder:
    """The on-disk embedding cache plus an in-process memo: each text is encoded once per run."""

    def __init__(self, spec: str) -> None:
        self.inner = load_encoder(spec, cache=True)
        self.id, self.spec, self.dim = self.inner.id, self.inner.spec, self.inner.dim
        self.memo: dict[str, np.ndarray] = {}

    def encode(self, texts: Sequence[str]) -> Embeddings:
        todo = [t for t in dict.fromkeys(texts) if t not in self.memo]
        if todo:
            self.memo.update(zip(todo, self.inner.encode(todo), strict=True))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.memo[t] for t in texts]).astype(np.float32)


def resolve(names: str) -> list[str]:
    table = variants()
    out: list[str] = []
    for name in names.split(","):
        name = name.strip()
        chosen = GROUPS.get(name, [name])
        for label in chosen:
            if label not in table:
                raise SystemExit(f"unknown variant {label!r}; choose from {', '.join(table)}")
        out.extend(chosen)
    return list(dict.fromkeys(out))


def run(
    dataset_name: str,
    protocol: str,
    labels: list[str],
    encoder: MemoEncoder,
    seed: int,
    on_fold: Callable[[list[ResultRow]], None],
) -> list[ResultRow]:
    table = variants()
    dataset = load_dataset(dataset_name)
    if protocol == RESPLIT:
        folds = []
        for s in RESPLIT_SEEDS:
            parts = dataset.split(seed=s)
            folds.append(Fold(f"seed{s}", parts.train, parts.val, parts.test))
    else:
        folds = make_folds(dataset, protocol, seed=seed, task_level=TASK_LEVEL.get(dataset_name))
    rows: list[ResultRow] = []
    for fold in folds:
        lams = metrics.lambda_grid(fold.test.costs)
        zero, oracle, oracle_curve = reference_rows(
            fold, lams, dataset=dataset_name, protocol=protocol
        )
        fold_rows: list[ResultRow] = []
        curves = {ORACLE: oracle_curve}
        for label in labels:
            name, params = table[label]
            router = make_router(name, encoder=encoder, seed=seed, **params)
            start = time.perf_counter()
            router.fit(fold.train, val=fold.val)
            seconds = time.perf_counter() - start
            row, crv = evaluate_router(
                router,
                fold,
                lams,
                (zero.aiq, oracle.aiq),
                dataset=dataset_name,
                protocol=protocol,
                fit_seconds=seconds,
            )
            fold_rows.append(replace(row, router=label))
            curves[label] = crv.curve
            print(
                f"{dataset_name} {protocol} {fold.name}: {label:28s} AIQ {row.aiq:.4f} "
                f"gap {row.gap_recovered if row.gap_recovered is not None else float('nan'):.3f} "
                f"({seconds:.1f} s)",
                flush=True,
            )
        rows.extend(with_bootstrap(fold, [*fold_rows, zero, oracle], curves, seed=seed))
        on_fold(rows)
    return rows


def against_best_baseline(rows: list[ResultRow]) -> list[str]:
    """TRouter minus the baseline with the highest gap, and minus the paper-faithful TRouter, on
    the same bootstrap resamples."""
    gaps = {s.router: s.gap_recovered for s in summarise(rows)}
    if "trouter" not in gaps:
        return []
    others = {"the paper-faithful TRouter": "trouter-paper"}
    if ran := [b for b in BASELINES if gaps.get(b) is not None]:
        others["the best baseline"] = max(ran, key=lambda name: gaps[name] or 0.0)
    lines = []
    for what, other in others.items():
        if other in gaps and (found := compare(rows, "trouter", other)):
            lines += ["", f"TRouter against {what}: {found.text()}"]
    return lines


def summary_markdown(rows: list[ResultRow]) -> str:
    lines: list[str] = []
    keys = list(dict.fromkeys((r.dataset, r.protocol) for r in rows))
    for dataset, protocol in keys:
        part = [r for r in rows if (r.dataset, r.protocol) == (dataset, protocol)]
        folds = list(dict.fromkeys(r.fold for r in part))
        lines += ["", f"### {dataset} · {protocol} ({len(folds)} fold{'s' * (len(folds) > 1)})", ""]
        lines += markdown_table(summarise(part))
        lines += ["", *comparison_lines(part), *against_best_baseline(part)]
        if len(folds) > 1 and protocol != RESPLIT:
            labels = [r for r in dict.fromkeys(r.router for r in part) if r not in ("zero",)]
            lines += ["", "Gap recovered per held-out task:", ""]
            header = ["router", *folds]
            lines.append("| " + " | ".join(header) + " |")
            lines.append("|" + "|".join(" --- " for _ in header) + "|")
            for label in labels:
                gaps = {r.fold: r.gap_recovered for r in part if r.router == label}
                cells = [f"{gaps[f]:.2f}" if gaps.get(f) is not None else "-" for f in folds]
                lines.append("| " + " | ".join([label, *cells]) + " |")
    return "\n".join(lines) + "\n"


def write(out: Path, rows: list[ResultRow], meta: dict[str, Any]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (
        ("rows.json", json.dumps({"meta": meta, "rows": [r.to_dict() for r in rows]}, indent=1)),
        ("summary.md", summary_markdown(rows)),
    ):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(out / name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=",".join(DATASETS))
    parser.add_argument("--protocols", default=",".join(PROTOCOLS))
    parser.add_argument(
        "--variants", default="all", help="groups (headline, ablation, all) or labels"
    )
    parser.add_argument("--encoder", default="minilm")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/trouter-ablation"))
    args = parser.parse_args()

    labels = resolve(args.variants)
    encoder = MemoEncoder(args.encoder)
    meta = {
        "command": "python benchmarks/trouter_ablation.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items()),
        "encoder": encoder.id,
        "load_average": os.getloadavg()[0],
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    rows: list[ResultRow] = []
    start = time.perf_counter()
    for dataset in args.data.split(","):
        for protocol in args.protocols.split(","):
            finished = list(rows)

            def save(done: list[ResultRow], finished: list[ResultRow] = finished) -> None:
                meta["seconds"] = round(time.perf_counter() - start, 1)
                write(args.out, finished + done, meta)

            rows += run(dataset, protocol, labels, encoder, args.seed, save)
    print(summary_markdown(rows))


if __name__ == "__main__":
    main()
