"""Benchmark reports: a rich table on the terminal, `report.json` (a contract) and `report.md`.

`report.json` is read by other tools:

    {"meta": {...run settings...},
     "rows": [{"dataset", "protocol", "fold", "router", "aiq", "gap_recovered",
               "reward_quality", "reward_balanced", "reward_cost", "mean_score", "mean_cost",
               ...extras}, ...],
     "folds": [{"fold", "n_train", "n_test", "models": [{"model", "mean_cost", "mean_score"}]}]}

One row per router per fold (`fold` is the held-out task for leave-task-out, "test" otherwise),
plus the "zero" and "oracle" rows. Undefined values (a gap of zero width) are null.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from trouter.eval.runner import REFERENCE_ROWS, BenchResult, ResultRow, RunInfo

REPORT_JSON = "report.json"
REPORT_MD = "report.md"

COLUMN_NOTES = (
    "AIQ: mean of the non-decreasing upper convex hull of the router's lambda-sweep curve and the "
    "single-model points, over [cheapest, dearest single model's mean cost]. "
    "Gap: (AIQ - AIQ zero) / (AIQ oracle - AIQ zero). "
    "R-quality / R-balanced / R-cost: mean reward w_q * score - w_c * cost_norm with weights "
    "0.8/0.2, 0.5/0.5, 0.2/0.8, cost min-max normalised over every (query, model) cell of the test "
    "set, each router at the lambda its own trade-off preset (quality / balanced / cost) resolves "
    "to; Best R-balanced: the best balanced reward over the whole sweep (lambda chosen on the "
    "test set, so optimistic). Score and $/query: mean true score and cost at the balanced "
    "preset. zero: the best single model (per column); oracle: picks by the true score and cost."
)


@dataclass(frozen=True)
class SummaryRow:
    """A router's mean over folds. `gap_recovered` is computed from the mean AIQs (a mean of
    per-fold ratios is unstable when a fold's zero-to-oracle gap is small)."""

    router: str
    folds: int
    aiq: float
    gap_recovered: float | None
    reward_quality: float
    reward_balanced: float
    reward_cost: float
    best_reward_balanced: float | None
    mean_score: float
    mean_cost: float
    apgr: float | None
    cpt50: float | None
    cpt80: float | None


def _mean(values: Sequence[float | None]) -> float | None:
    kept = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(kept)) if kept else None


def summarise(result: BenchResult | Sequence[ResultRow]) -> list[SummaryRow]:
    """Per-router means over folds (one row per router in run order, then zero and oracle)."""
    rows_in = result.rows if isinstance(result, BenchResult) else list(result)
    by_router: dict[str, list[ResultRow]] = {}
    for row in rows_in:
        by_router.setdefault(row.router, []).append(row)
    order = [n for n in by_router if n not in REFERENCE_ROWS] + [
        n for n in REFERENCE_ROWS if n in by_router
    ]
    aiq = {name: float(np.mean([r.aiq for r in rows])) for name, rows in by_router.items()}
    zero, oracle = aiq.get("zero"), aiq.get("oracle")
    out = []
    for name in order:
        rows = by_router[name]
        gap = None
        if zero is not None and oracle is not None and oracle - zero > 1e-12:
            gap = (aiq[name] - zero) / (oracle - zero)
        out.append(
            SummaryRow(
                router=name,
                folds=len(rows),
                aiq=aiq[name],
                gap_recovered=gap,
                reward_quality=float(np.mean([r.reward_quality for r in rows])),
                reward_balanced=float(np.mean([r.reward_balanced for r in rows])),
                reward_cost=float(np.mean([r.reward_cost for r in rows])),
                best_reward_balanced=_mean([r.best_reward_balanced for r in rows]),
                mean_score=float(np.mean([r.mean_score for r in rows])),
                mean_cost=float(np.mean([r.mean_cost for r in rows])),
                apgr=_mean([r.apgr for r in rows]),
                cpt50=_mean([r.cpt50 for r in rows]),
                cpt80=_mean([r.cpt80 for r in rows]),
            )
        )
    return out


# ---------------------------------------------------------------------- formatting
def _f(value: float | None, digits: int = 3) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.{digits}f}"


def _dollars(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.3g}"


HEADERS = (
    "router",
    "AIQ",
    "gap",
    "R-quality",
    "R-balanced",
    "R-cost",
    "best R-bal.",
    "score",
    "$/query",
)


def _cells(row: ResultRow | SummaryRow) -> list[str]:
    return [
        row.router,
        _f(row.aiq, 4),
        _f(row.gap_recovered),
        _f(row.reward_quality),
        _f(row.reward_balanced),
        _f(row.reward_cost),
        _f(row.best_reward_balanced),
        _f(row.mean_score),
        _dollars(row.mean_cost),
    ]


def _two_model(rows: Sequence[ResultRow | SummaryRow]) -> bool:
    return any(r.apgr is not None for r in rows)


SHORT_HEADERS = ("router", "AIQ", "gap", "Rq", "Rb", "Rc", "best Rb", "score", "$/q")


def rich_table(result: BenchResult) -> Table:
    """The terminal view: the single fold, or the mean over folds."""
    many = len(result.folds) > 1
    title = f"{result.dataset} · {result.protocol}" + (
        f" · mean over {len(result.folds)} folds" if many else ""
    )
    table = Table(
        *SHORT_HEADERS,
        title=title,
        title_justify="left",
        caption="gap: AIQ gap recovered · Rq/Rb/Rc: reward at the quality/balanced/cost preset · "
        "best Rb: best balanced reward on the sweep · score, $/q at balanced (see report.md)",
        caption_justify="left",
    )
    rows: Sequence[ResultRow | SummaryRow] = summarise(result) if many else result.rows
    two = _two_model(rows)
    if two:
        table.add_column("APGR")
    for row in rows:
        cells = _cells(row) + ([_f(row.apgr)] if two else [])
        style = "dim" if row.router in REFERENCE_ROWS else None
        table.add_row(*cells, style=style)
    return table


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def markdown_table(rows: Sequence[ResultRow | SummaryRow]) -> list[str]:
    """One Markdown table of result or summary rows (APGR / CPT columns on two-model data)."""
    two = _two_model(rows)
    headers = [*HEADERS] + (["APGR", "CPT(50%)", "CPT(80%)"] if two else [])

    def extra(row: ResultRow | SummaryRow) -> list[str]:
        return [_f(row.apgr), _f(row.cpt50), _f(row.cpt80)] if two else []

    return _md_table(headers, [_cells(r) + extra(r) for r in rows])


def markdown_tables(result: BenchResult, per_fold: bool = True) -> list[str]:
    """Markdown lines: the summary table (several folds) and one table per fold."""
    lines: list[str] = []
    if len(result.folds) > 1:
        lines += [
            f"Mean over {len(result.folds)} folds (gap recovered from the mean AIQs):",
            "",
            *markdown_table(summarise(result)),
            "",
        ]
    if per_fold:
        for fold in result.folds:
            if len(result.folds) > 1:
                lines.append(
                    f"Fold `{fold.fold}` (train {fold.n_train}, test {fold.n_test} queries):"
                )
                lines.append("")
            lines += [*markdown_table(fold.rows), ""]
    return lines


def render_markdown(result: BenchResult) -> str:
    info = result.info
    out = [
        f"# trouter bench: {info.dataset}, {info.protocol}",
        "",
        f"- date: {info.started} · seed {info.seed} · encoder `{info.encoder}` ({info.encoder_id})",
        f"- data: {info.n_queries} queries x {len(info.models)} models; cost: {info.cost_note or 'as given in the data'}",
        f"- folds: {info.folds}"
        + (f" (tasks cut at level {info.task_level})" if info.task_level else "")
        + f" · run time {info.seconds:.1f} s",
    ]
    if info.command:
        out.append(f"- command: `{info.command}`")
    out += ["", COLUMN_NOTES, ""]
    if len(result.folds) == 1:
        fold = result.folds[0]
        out += [f"Test set: {fold.n_test} queries (train {fold.n_train}).", ""]
    out += markdown_tables(result)
    if len(result.folds) == 1:
        fold = result.folds[0]
        out += ["Single models on the test set:", ""]
        out += _md_table(
            ["model", "mean score", "$/query"],
            [
                [m, _f(p[1]), _dollars(p[0])]
                for m, p in zip(fold.models, fold.single_points, strict=True)
            ],
        )
        out.append("")
    return "\n".join(out)


def to_json(result: BenchResult) -> dict[str, Any]:
    return {
        "meta": asdict(result.info),
        "rows": [row.to_dict() for row in result.rows],
        "folds": [
            {
                "fold": fold.fold,
                "n_train": fold.n_train,
                "n_test": fold.n_test,
                "models": [
                    {"model": m, "mean_cost": float(p[0]), "mean_score": float(p[1])}
                    for m, p in zip(fold.models, fold.single_points, strict=True)
                ],
            }
            for fold in result.folds
        ],
    }


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(result: BenchResult, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_JSON
    _atomic_write_text(path, json.dumps(to_json(result), indent=2, allow_nan=False) + "\n")
    return path


def write_markdown(result: BenchResult, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_MD
    _atomic_write_text(path, render_markdown(result))
    return path


@dataclass(frozen=True)
class SavedReport:
    """A `report.json` read back: the run settings and the typed rows."""

    info: RunInfo
    rows: tuple[ResultRow, ...]


def read_report(path: Path) -> SavedReport:
    """Read a `report.json` written by `write_json`."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    meta = raw["meta"]
    meta["models"] = tuple(meta["models"])
    meta["routers"] = tuple(meta["routers"])
    known = set(ResultRow.__dataclass_fields__)
    rows = tuple(ResultRow(**{k: v for k, v in r.items() if k in known}) for r in raw["rows"])
    return SavedReport(RunInfo(**meta), rows)
