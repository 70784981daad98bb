"""A labelling run stores what became of the judge's call for each answer (`judge_call`:
answered, cached, failed), and the summary and the rerun read it; a row stored before trouter
kept it (the field empty) is told a judge failure by its error text, as before."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import replace

import pytest

from trouter.label.down import ANSWERED, CACHED, FAILED
from trouter.label.observations import (
    OK,
    SCORE_FAILED,
    Observation,
    ObservationWriter,
    judge_call_failed,
    load_observations,
    write_jsonl,
)
from trouter.label.runner import LabelOptions, label_items, pending
from trouter.label.scorers import JUDGE_CALL_FAILED, Judge
from trouter.label.summary import LabelSummary, fill_totals
from trouter.label.testing import LabelAnswerer, arithmetic_items, summary_items
from trouter.llm import LLMClient, RetryPolicy
from trouter.pool import ModelSpec, Pool
from trouter.store import Store
from trouter.synth.items import SynthItem
from trouter.testing import FakeOpenAI

JUDGE = "strict"


@pytest.fixture
def server():
    handler = LabelAnswerer({JUDGE: "Score: 8/10"})
    with FakeOpenAI(handler, models=("cheap", JUDGE)) as s:
        yield s, handler


def pool_at(url: str) -> Pool:
    return Pool.of([ModelSpec(name="cheap", base_url=url, input_price=1.0, output_price=2.0)])


def label(url: str, store: Store, run: str, items: list[SynthItem]) -> LabelSummary:
    async def go() -> LabelSummary:
        client = LLMClient(store, run=run, retry=RetryPolicy(max_attempts=2, base_delay=0.0))
        judge = Judge(client, ModelSpec(name=JUDGE, base_url=url))
        try:
            return await label_items(items, pool_at(url), client, store=store, run=run, judge=judge)
        finally:
            await client.aclose()

    return asyncio.run(go())


def judge_calls(store: Store, run: str) -> dict[str, str]:
    return {item: obs.judge_call for (item, _), obs in load_observations(store, run).items()}


def test_each_stored_answer_says_what_became_of_its_judge_call(server, tmp_path):
    fake, handler = server
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    free, numeric = summary_items(3), arithmetic_items(1)
    items = free + numeric
    handler.down[JUDGE] = 1  # the judge grades one answer, then every call fails
    summary = label(fake.url, store, "a", items)
    calls = judge_calls(store, "a")
    assert calls[numeric[0].id] == ""  # no judge asked
    assert sorted(calls[it.id] for it in free) == [ANSWERED, FAILED, FAILED]
    assert (summary.judge_asked, summary.judge_failed) == (3, 2)

    # The judge is back: the rerun grades the two answers it failed (the pool's answers come
    # from the cache) and keeps the verdict it had.
    handler.down.clear()
    summary = label(fake.url, store, "a", items)
    assert summary.reused == 2 and summary.judge_failed == 0
    assert [judge_calls(store, "a")[it.id] for it in free] == [ANSWERED] * 3

    # Another run asking the same: answers and verdicts all come from the cache.
    label(fake.url, store, "b", items)
    assert [judge_calls(store, "b")[it.id] for it in free] == [CACHED] * 3

    path = write_jsonl(
        load_observations(store, "a"), items, pool_at(fake.url), tmp_path / "o.jsonl"
    )
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert [row["judge_call"] for row in rows] == [ANSWERED] * 3 + [""]
    store.close()


def observation(item: SynthItem, **fields: object) -> Observation:
    base = Observation(item.id, "cheap", item.path, item.answer_format, OK, response="A cat.")
    return replace(base, **fields)


def test_judge_failures_are_read_from_the_field_and_from_the_error_of_rows_from_before(tmp_path):
    items = summary_items(4)
    path = tmp_path / "old.sqlite"
    url = f"sqlite:///{path}"
    # Rows an older trouter wrote: a verdict, and a judge call that failed (its error text only).
    store = Store(url)
    writer = ObservationWriter(store, "r")
    writer.add(observation(items[0], score=0.8))
    failed_before = f"{JUDGE_CALL_FAILED}upstream crashed"
    writer.add(observation(items[1], status=SCORE_FAILED, error=failed_before, retry=True))
    writer.flush()
    store.close()
    with sqlite3.connect(path) as conn:  # the older layout: no judge_call column
        conn.execute("ALTER TABLE label_observations DROP COLUMN judge_call")
    before = path.read_bytes()

    # Read (trouter label --dry-run's kind of read, from a store opened to read): nothing added.
    reader = Store(url, must_exist=True)
    old = load_observations(reader, "r")
    reader.close()
    assert [old[it.id, "cheap"].judge_call for it in items[:2]] == ["", ""]
    assert judge_call_failed(old[items[1].id, "cheap"]) and path.read_bytes() == before

    # Written: the column is added, and this version's rows say what became of the call, the
    # field deciding whatever the error says.
    store = Store(url)
    writer = ObservationWriter(store, "r")
    went = "the judge's endpoint went away"
    writer.add(observation(items[2], status=SCORE_FAILED, error=went, judge_call=FAILED))
    no_score = "the judge's reply holds no usable score"
    writer.add(observation(items[3], status=SCORE_FAILED, error=no_score, judge_call=ANSWERED))
    writer.flush()
    stored = load_observations(store, "r")
    assert [stored[it.id, "cheap"].judge_call for it in items] == ["", "", FAILED, ANSWERED]

    summary = LabelSummary(run="r", items=len(items), models=("cheap",), judge=JUDGE)
    fill_totals(summary, stored, items, pool_at("http://127.0.0.1:9"))
    assert (summary.judge_asked, summary.judge_failed) == (4, 2)
    assert summary.judge_error in ("upstream crashed", went)

    # The rerun grades again the answers whose judge call failed, those from before included;
    # an answer the judge did grade (without a usable score) is kept unless marked to retry.
    todo, kept, _ = pending(items, pool_at("http://127.0.0.1:9"), stored, LabelOptions())
    assert [it.id for it in todo["cheap"]] == [items[1].id, items[2].id] and kept == 2
    store.close()
