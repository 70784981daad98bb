"""Where labelling results live: store rows while running, a RoutingDataset and JSONL after.

Rows are upserted into `label_observations` keyed by (run, item, model), in small batches; a
kill loses at most the last batch, and those answers are still in the LLM cache, so the rerun
re-reads them for free. The primary key makes a duplicate impossible.

`label_judges` records, per run, the judge whose verdicts the stored observations hold, so a
rerun with another judge (`trouter label` or `trouter coldstart`) knows to regrade them.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, delete, insert, select

from trouter.label.down import FAILED
from trouter.label.scorers.judge import JUDGE_CALL_FAILED
from trouter.paths import atomic_target
from trouter.store import LabelJudge, LabelObservation, Store

if TYPE_CHECKING:
    import pandas as pd

    from trouter.data.dataset import RoutingDataset
    from trouter.pool import Pool
    from trouter.synth.items import SynthItem

OK, CALL_FAILED, SCORE_FAILED = "ok", "call_failed", "score_failed"


@dataclass(frozen=True)
class Observation:
    """One model's answer to one item: what it said, what it cost, how it scored."""

    item_id: str
    model: str
    task: str
    answer_format: str
    status: str  # ok | call_failed | score_failed
    score: float | None = None
    response: str | None = None
    extracted: str = ""
    detail: str = ""
    error: str = ""
    tokens_in: int | None = None
    tokens_out: int | None = None
    cost: float | None = None
    latency_s: float | None = None
    cached: bool = False
    attempts: int = 0
    request_key: str = ""
    retry: bool = False  # redo this one on the next run (e.g. the call failed)
    # What became of the judge's call for this answer (trouter.label.down's ANSWERED, CACHED,
    # FAILED); "" when no judge was asked, or in a row stored before trouter kept it.
    judge_call: str = ""


def judge_call_failed(observation: Observation) -> bool:
    """Whether the judge's call for this answer failed (after the client's retries): its
    `judge_call`, or for a row stored before trouter kept that, its error's prefix."""
    if observation.judge_call:
        return observation.judge_call == FAILED
    return observation.error.startswith(JUDGE_CALL_FAILED)


def judge_call_error(observation: Observation) -> str:
    """The error of the judge's failed call, without the prefix the judge gives it."""
    return observation.error.removeprefix(JUDGE_CALL_FAILED)


def change_judge(
    store: Store, run: str, judge: str, name: str, judged: Sequence[str]
) -> tuple[str, int]:
    """Make `judge` the run's judge. When another judge graded the stored observations, those of
    the `judged` item ids are deleted (their answers stay in the LLM cache, so the rerun pays the
    new judge only). Returns (the earlier judge's name, observations deleted). Both happen in
    one transaction: a crash leaves either the old verdicts and judge, or neither."""
    runs = cast(Table, LabelJudge.__table__)
    with store.engine.begin() as conn:
        row = conn.execute(select(runs.c.judge, runs.c.name).where(runs.c.run == run)).first()
        if row is not None and row.judge == judge:
            return row.name, 0
        dropped = 0
        if row is not None:
            table = _table()
            for start in range(0, len(judged), 500):
                dropped += conn.execute(
                    delete(table).where(
                        table.c.run == run, table.c.item_id.in_(judged[start : start + 500])
                    )
                ).rowcount
            conn.execute(delete(runs).where(runs.c.run == run))
        # No record (a new run, or a store from before judges were recorded): the stored
        # verdicts are taken as this judge's, as they always were.
        conn.execute(insert(runs), [{"run": run, "judge": judge, "name": name}])
        return (row.name if row is not None else name), dropped


def recorded_judge(store: Store, run: str) -> str | None:
    """The judge recorded for `run` (its `Judge.id`, "" for none), or None when none is: the
    one `change_judge` compares with, read without writing anything (for an estimate)."""
    runs = cast(Table, LabelJudge.__table__)
    if not store.has_table(runs.name):  # a store opened to read, from before judges were kept
        return None
    with store.engine.connect() as conn:
        judge = conn.execute(select(runs.c.judge).where(runs.c.run == run)).scalar()
    return None if judge is None else str(judge)


def adopt_judge(store: Store, run: str, judge: str, name: str) -> None:
    """Record `judge` as the one that graded the run's stored observations, unless a judge is
    recorded already (for runs whose judge was known elsewhere before the store kept it)."""
    runs = cast(Table, LabelJudge.__table__)
    with store.engine.begin() as conn:
        if conn.execute(select(runs.c.run).where(runs.c.run == run)).first() is None:
            conn.execute(insert(runs), [{"run": run, "judge": judge, "name": name}])


class ObservationWriter:
    """Batched upserts of observations for one run; `flush` commits whatever is pending."""

    def __init__(
        self, store: Store, run: str, flush_every: int = 64, flush_interval_s: float = 0.5
    ) -> None:
        self.store = store
        self.run = run
        self.flush_every = flush_every
        self.flush_interval_s = flush_interval_s
        self._pending: dict[tuple[str, str], dict[str, Any]] = {}
        self._last_flush = time.monotonic()
        self.written = 0

    def add(self, observation: Observation) -> None:
        row = asdict(observation)
        row["run"] = self.run
        self._pending[(observation.item_id, observation.model)] = row
        if (
            len(self._pending) >= self.flush_every
            or time.monotonic() - self._last_flush >= self.flush_interval_s
        ):
            self.flush()

    def flush(self) -> None:
        self._last_flush = time.monotonic()
        if not self._pending:
            return
        rows = list(self._pending.values())
        self._pending.clear()
        table = _table()
        keys = ["item_id", "model", "run"]
        with self.store.engine.begin() as conn:
            dialect = conn.dialect.name
            if dialect == "sqlite":
                from sqlalchemy.dialects import sqlite

                lite = sqlite.insert(table)
                update = {
                    c.name: lite.excluded[c.name] for c in table.columns if c.name not in keys
                }
                conn.execute(lite.on_conflict_do_update(index_elements=keys, set_=update), rows)
            elif dialect == "postgresql":
                from sqlalchemy.dialects import postgresql

                pg = postgresql.insert(table)
                update = {c.name: pg.excluded[c.name] for c in table.columns if c.name not in keys}
                conn.execute(pg.on_conflict_do_update(index_elements=keys, set_=update), rows)
            else:  # any other database: delete then insert, in one transaction
                for row in rows:
                    conn.execute(
                        delete(table).where(
                            table.c.run == row["run"],
                            table.c.item_id == row["item_id"],
                            table.c.model == row["model"],
                        )
                    )
                conn.execute(insert(table), rows)
        self.written += len(rows)


def _table() -> Table:
    return cast(Table, LabelObservation.__table__)


def load_observations(store: Store, run: str) -> dict[tuple[str, str], Observation]:
    """Every stored observation of `run`, keyed by (item id, model). A store opened to read that
    an older trouter wrote may lack newer columns: they read as their defaults."""
    fields = list(Observation.__dataclass_fields__)
    table = _table()
    out: dict[tuple[str, str], Observation] = {}
    if not store.has_table(table.name):  # a store opened to read that no labelling wrote
        return out
    with store.engine.connect() as conn:
        result = conn.execute(
            select(*store.columns(table, fields)).where(table.c.run == run)
        ).mappings()
        for row in result:
            obs = Observation(**dict(row))
            out[(obs.item_id, obs.model)] = obs
    return out


def to_frame(
    observations: dict[tuple[str, str], Observation], items: Sequence[SynthItem], pool: Pool
) -> pd.DataFrame:
    """The long RoutingDataset table (item order, then pool order); failures have NaN scores.

    Cost is recomputed from the stored token counts with the pool's prices (the one formula),
    so it always matches the pool the dataset is saved with.
    """
    import numpy as np
    import pandas as pd

    cols: dict[str, list[Any]] = {
        k: []
        for k in (
            "query_id",
            "query",
            "task",
            "model",
            "score",
            "cost",
            "tokens_in",
            "tokens_out",
            "latency",
        )
    }
    nan = float("nan")
    for item in items:
        for spec in pool:
            obs = observations.get((item.id, spec.name))
            if obs is None:
                continue
            has_usage = obs.tokens_in is not None and obs.tokens_out is not None
            cols["query_id"].append(item.id)
            cols["query"].append(item.query)
            cols["task"].append(item.path)
            cols["model"].append(spec.name)
            cols["score"].append(obs.score if obs.score is not None else nan)
            cols["cost"].append(
                spec.call_cost(obs.tokens_in or 0, obs.tokens_out or 0) if has_usage else nan
            )
            cols["tokens_in"].append(obs.tokens_in if obs.tokens_in is not None else nan)
            cols["tokens_out"].append(obs.tokens_out if obs.tokens_out is not None else nan)
            cols["latency"].append(obs.latency_s if obs.latency_s is not None else nan)
    frame = pd.DataFrame(cols)
    for col in ("score", "cost", "tokens_in", "tokens_out", "latency"):
        frame[col] = frame[col].astype(np.float64)
    return frame


def to_dataset(
    observations: dict[tuple[str, str], Observation],
    items: Sequence[SynthItem],
    pool: Pool,
    name: str,
) -> RoutingDataset:
    from trouter.data.dataset import RoutingDataset

    return RoutingDataset(
        to_frame(observations, items, pool), name=name, models=list(pool.names), pool=pool
    )


def write_jsonl(
    observations: dict[tuple[str, str], Observation],
    items: Sequence[SynthItem],
    pool: Pool,
    path: str | Path,
) -> Path:
    """The raw observations (response, tokens, $, latency, errors) as JSON Lines, atomically;
    `cost` is priced with `pool`'s prices, as in the dataset."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_target(path) as tmp, tmp.open("w", encoding="utf-8") as fh:
        for item in items:
            for spec in pool:
                obs = observations.get((item.id, spec.name))
                if obs is None:
                    continue
                row = asdict(obs)
                row["query"] = item.query
                if obs.tokens_in is not None and obs.tokens_out is not None:
                    # Repriced like `to_frame`: the pool's prices now, not those at call time.
                    row["cost"] = spec.call_cost(obs.tokens_in, obs.tokens_out)
                for key, value in row.items():
                    if isinstance(value, float) and math.isnan(value):
                        row[key] = None
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    return path
