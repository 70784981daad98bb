"""Benchmark reports: a rich table on the terminal, `report.json` (a contract) and `report.md`.

`report.json` is read by other tools:

    {"meta": {...run settings...},
     "rows": [{"dataset", "protocol", "fold", "router", "aiq", "gap_recovered",
               "reward_quality", "reward_balanced", "reward_cost", "mean_score", "mean_cost",
               ...extras}, ...],
     "folds": [{"fold", "n_train", "n_test", "models": [{"model", "mean_cost", "mean_score"}]}],
     "summary": [{"router", "folds", "aiq", "gap_recovered", "gap_se", ...}, ...],
     "comparisons": [{"router", "other", "difference", "low", "high", "verdict"}, ...]}

One row per router per fold (`fold` is the held-out task for leave-task-out, "test" otherwise),
plus the "zero" and "oracle" rows; "summary" is the mean over folds (`SummaryRow`), with each
gap's bootstrap standard error, and "comparisons" the leading router against each other one
(`Comparison`; empty without resamples). Undefined values (a gap of zero width) are null.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from rich import box
from rich.table import Table

from trouter.eval.results import (
    REFERENCE_ROWS,
    BenchResult,
    ResultRow,
    RunInfo,
    finite_or_none,
)
from trouter.eval.summary import SummaryRow, leader_comparisons, summarise
from trouter.paths import atomic_write_text

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
    "preset. zero: the best single model (per column); oracle: picks by the true score and cost. "
    "± s.e.: the gap's standard error over bootstrap resamples of the test queries (the picks "
    "fixed; the spread over training seeds is not in it). The paired comparisons score every "
    "router on the same resamples; their intervals are bias-corrected percentiles."
)


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
# The terminal's headers are no wider than their numbers, so that at 80 columns a router name
# as long as "trouter-paper" keeps one line.
SHORT_HEADERS = ("router", "AIQ", "gap", "Rq", "Rb", "Rc", "Rb*", "score", "$/q")
SE_HEADER, SHORT_SE_HEADER = "± s.e.", "s.e."


def _with_se(headers: Sequence[str], shown: bool, se_header: str = SE_HEADER) -> list[str]:
    """The headers with the gap's standard-error column right after "gap", when there is one."""
    at = list(headers).index("gap") + 1
    return [*headers[:at], se_header, *headers[at:]] if shown else list(headers)


def _has_se(rows: Sequence[ResultRow | SummaryRow]) -> bool:
    return any(r.gap_se is not None and r.router not in REFERENCE_ROWS for r in rows)


def _cells(row: ResultRow | SummaryRow, se: bool = False) -> list[str]:
    cells = [
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
    if se:
        cells.insert(3, "" if row.router in REFERENCE_ROWS else _f(row.gap_se))
    return cells


def _two_model(rows: Sequence[ResultRow | SummaryRow]) -> bool:
    return any(r.apgr is not None for r in rows)


def rich_table(result: BenchResult) -> Table:
    """The terminal view: the single fold, or the mean over folds. Light borders, and each
    number column as wide as its widest value, so a table piped or on an 80-column terminal
    keeps every digit (a long router name wraps instead)."""
    many = len(result.folds) > 1
    title = f"{result.dataset} · {result.protocol}" + (
        f" · mean over {len(result.folds)} folds" if many else ""
    )
    rows: Sequence[ResultRow | SummaryRow] = summarise(result) if many else result.rows
    se = _has_se(rows)
    two = _two_model(rows)
    cells = [_cells(row, se) + ([_f(row.apgr)] if two else []) for row in rows]
    headers = _with_se(SHORT_HEADERS, se, SHORT_SE_HEADER) + (["APGR"] if two else [])
    table = Table(
        title=title,
        title_justify="left",
        caption="gap: AIQ gap recovered"
        + (" (s.e.: its bootstrap standard error over the test queries)" if se else "")
        + " · Rq/Rb/Rc: reward at the quality/balanced/cost preset · "
        "Rb*: best balanced reward on the sweep · score, $/q at balanced (see report.md)",
        caption_justify="left",
        box=box.SIMPLE_HEAD,
        padding=(0, 1, 0, 0),
        pad_edge=False,
        show_edge=False,
    )
    table.add_column(headers[0], overflow="fold")
    for k, header in enumerate(headers[1:], start=1):
        widest = max((len(c[k]) for c in cells), default=0)
        table.add_column(header, justify="right", min_width=widest, overflow="fold")
    for row, line in zip(rows, cells, strict=True):
        table.add_row(*line, style="dim" if row.router in REFERENCE_ROWS else None)
    return table


def comparison_lines(result: BenchResult | Sequence[ResultRow]) -> list[str]:
    """The leading router against each other one, paired over the same resamples (or nothing)."""
    rows = result.rows if isinstance(result, BenchResult) else list(result)
    found = leader_comparisons(rows)
    if not found:
        return []
    draws = next(len(r.aiq_draws) for r in rows if r.aiq_draws is not None)
    return [
        f"Paired bootstrap, {draws} resamples of the test queries"
        + (" (within each fold)" if len({r.fold for r in rows}) > 1 else "")
        + ": the leader's gap minus each other router's, with its 95% interval.",
        "",
        *[f"- {c.text()}" for c in found],
    ]


def _md_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return lines


def markdown_table(rows: Sequence[ResultRow | SummaryRow]) -> list[str]:
    """One Markdown table of result or summary rows (APGR / CPT columns on two-model data)."""
    two, se = _two_model(rows), _has_se(rows)
    headers = _with_se(HEADERS, se) + (["APGR", "CPT(50%)", "CPT(80%)"] if two else [])

    def extra(row: ResultRow | SummaryRow) -> list[str]:
        return [_f(row.apgr), _f(row.cpt50), _f(row.cpt80)] if two else []

    return _md_table(headers, [_cells(r, se) + extra(r) for r in rows])


def markdown_tables(result: BenchResult, per_fold: bool = True) -> list[str]:
    """Markdown lines: the summary table (several folds), one table per fold, and the paired
    comparisons (after the summary, or after the one fold's table)."""
    lines: list[str] = []
    if len(result.folds) > 1:
        lines += [
            f"Mean over {len(result.folds)} folds (gap recovered from the mean AIQs):",
            "",
            *markdown_table(summarise(result)),
            "",
        ]
    comparisons = comparison_lines(result)
    if len(result.folds) > 1 and comparisons:
        lines += [*comparisons, ""]
    if per_fold:
        for fold in result.folds:
            if len(result.folds) > 1:
                lines.append(
                    f"Fold `{fold.fold}` (train {fold.n_train}, test {fold.n_test} queries):"
                )
                lines.append("")
            lines += [*markdown_table(fold.rows), ""]
    if len(result.folds) == 1 and comparisons:
        lines += [*comparisons, ""]
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


def _json_ready(record: Any) -> dict[str, Any]:
    """A dataclass as a JSON-ready dict: NaN (an undefined ratio) becomes None."""
    return {k: finite_or_none(v) for k, v in asdict(record).items()}


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
        "summary": [_json_ready(s) for s in summarise(result)],
        "comparisons": [
            {**_json_ready(c), "verdict": c.verdict()} for c in leader_comparisons(result.rows)
        ],
    }


def write_json(result: BenchResult, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_JSON
    atomic_write_text(path, json.dumps(to_json(result), indent=2, allow_nan=False) + "\n")
    return path


def write_markdown(result: BenchResult, out_dir: Path) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / REPORT_MD
    atomic_write_text(path, render_markdown(result))
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
