"""`trouter label` reruns: a rerun with another judge regrades the free-text answers (and only
those) without asking the pool again, and a model that dies part-way through a run stops it
soon, keeping every answer paid so far for the rerun that resumes once the endpoint is back;
answers read from the cache do not hide a dead endpoint; a judge that dies stops the run as
soon, and the rerun grades the answers paid so far from the cache."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from trouter.cli import run
from trouter.label.runner import DOWN_AFTER
from trouter.label.testing import (
    LabelAnswerer,
    arithmetic_items,
    label_args,
    summary_item,
    summary_items,
    write_pool,
)
from trouter.synth.items import ItemsFile, SynthItem
from trouter.testing import FakeOpenAI, Reply
from trouter.testing.fake_openai import Status

MODELS = ("cheap", "dear")
JUDGES = {"strict": "Score: 2/10", "lenient": "Score: 9/10"}
N_NUMERIC, N_FREE = 30, 4


def make_items() -> list[SynthItem]:
    return arithmetic_items(N_NUMERIC) + summary_items(N_FREE)


@pytest.fixture
def setup(tmp_path: Path):
    # Pool models that answer arithmetic right, judges with a fixed verdict, and a switch
    # (handler.down) that makes a model (or a judge) fail every call after its first requests.
    handler = LabelAnswerer(JUDGES)
    with FakeOpenAI(handler, models=(*MODELS, *JUDGES)) as server:
        ItemsFile(tmp_path / "items.jsonl").append(make_items())
        prices = dict.fromkeys(MODELS, (1.0, 2.0))
        write_pool(tmp_path / "pool.yaml", server.url, prices, max_concurrency=2)
        write_pool(tmp_path / "judges.yaml", server.url, list(JUDGES))
        yield server, handler, tmp_path


def requests_of(server: FakeOpenAI, *models: str) -> int:
    return sum(r.model in models for r in server.completions)


def scores(tmp: Path) -> pd.DataFrame:
    return pd.read_parquet(tmp / "out" / "labels.parquet")


def test_a_rerun_with_only_another_judge_regrades_the_free_text_answers(setup, capsys):
    server, _, tmp = setup
    assert run(label_args(tmp, judge="strict")) == 0, capsys.readouterr().err
    frame = scores(tmp)
    free = frame[frame.task == "writing/summary"]
    assert set(free.score) == {0.2}
    pool_before = requests_of(server, *MODELS)
    assert pool_before == (N_NUMERIC + N_FREE) * len(MODELS)
    capsys.readouterr()

    assert run(label_args(tmp, judge="lenient")) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    frame = scores(tmp)
    free = frame[frame.task == "writing/summary"]
    assert set(free.score) == {0.9}  # the new judge's verdicts, not the old ones
    assert set(frame[frame.task == "math/arithmetic"].score) == {1.0}
    assert requests_of(server, *MODELS) == pool_before  # the answers are reused: no pool call
    assert requests_of(server, "lenient") == N_FREE * len(MODELS)  # only free text regraded
    assert f"the judge changed (strict -> lenient): {N_FREE * len(MODELS)} answers" in out

    # The same judge again: nothing is regraded or asked.
    assert run(label_args(tmp, judge="lenient")) == 0, capsys.readouterr().err
    assert requests_of(server, *MODELS) == pool_before
    assert requests_of(server, "lenient") == N_FREE * len(MODELS)
    # And back to the first judge: its verdicts come from the cache, the pool is not asked.
    assert run(label_args(tmp, judge="strict")) == 0, capsys.readouterr().err
    assert set(scores(tmp)[lambda f: f.task == "writing/summary"].score) == {0.2}
    assert requests_of(server, *MODELS) == pool_before
    assert requests_of(server, "strict") == N_FREE * len(MODELS)


def test_a_model_that_dies_part_way_stops_the_run_and_the_rerun_resumes(setup, capsys):
    server, handler, tmp = setup
    handler.down["dear"] = 10  # answers 10 requests, then every call fails after retries
    assert run(label_args(tmp, judge="strict")) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"{DOWN_AFTER} calls in a row to 'dear' failed" in lines[0], lines[0]
    assert "upstream crashed" in lines[0] and "fix its endpoint" in lines[0]
    assert "kept" in lines[0]
    # Stopped soon after the failures began: dear was not asked about every item.
    items = N_NUMERIC + N_FREE
    dear_items = {r.last_user for r in server.completions if r.model == "dear"}
    assert len(dear_items) < items

    # What was paid is kept in the store: the rerun with dear healthy asks nobody again about
    # an item already answered, and finishes.
    from trouter.label.observations import load_observations
    from trouter.store import Store, url_for

    store = Store(url_for(tmp / "out" / "trouter.sqlite"))
    stored = load_observations(store, "label:items")
    store.close()
    answered = {k for k, obs in stored.items() if obs.status != "call_failed"}
    assert sum(model == "dear" for _, model in answered) >= 10
    first_run = len(server.completions)
    cheap_before = requests_of(server, "cheap")
    handler.down.clear()
    assert run(label_args(tmp, judge="strict")) == 0, capsys.readouterr().err
    again = {(r.model, r.last_user) for r in server.completions[first_run:]}
    by_id = {it.id: it.query for it in make_items()}
    assert not {(model, by_id[item_id]) for item_id, model in answered} & again
    new_cheap = requests_of(server, "cheap") - cheap_before
    assert new_cheap == items - sum(model == "cheap" for _, model in answered)
    frame = scores(tmp)
    assert len(frame) == items * len(MODELS) and frame.score.notna().all()


def test_answers_read_from_the_cache_do_not_reset_a_models_failure_count(setup, capsys):
    server, handler, tmp = setup
    # Every other item is labelled once under another run, so its answers are in the cache.
    items = make_items()
    ItemsFile(tmp / "half.jsonl").append(items[::2])
    half = label_args(tmp, "--run", "half", judge="strict")
    half[1] = str(tmp / "half.jsonl")
    assert run(half) == 0, capsys.readouterr().err
    before = len(server.completions)
    capsys.readouterr()

    # Then dear's endpoint dies. Its queue alternates a cached answer and a call that fails:
    # the cached answers say nothing about the endpoint, so the failures still add up.
    handler.down["dear"] = 0
    assert run(label_args(tmp, judge="strict")) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"first {DOWN_AFTER} calls to 'dear' failed" in lines[0], lines[0]
    uncached = len(items) - len(items[::2])
    asked = {r.last_user for r in server.completions[before:] if r.model == "dear"}
    assert len(asked) < uncached  # stopped before asking about every item the cache lacks


def test_a_judge_that_dies_stops_the_run_and_the_rerun_grades_from_the_cache(setup, capsys):
    server, handler, tmp = setup
    # More free-text items, and first, so that the judge is needed from the start of the run.
    more = [
        summary_item(f"Summarise: dog number {i} ran in the park.", f"Dog {i} ran in a park.")
        for i in range(8)
    ]
    items = more + make_items()[N_NUMERIC:] + make_items()[:N_NUMERIC]
    ItemsFile(tmp / "free_first.jsonl").append(items)
    args = label_args(tmp, judge="strict")
    args[1] = str(tmp / "free_first.jsonl")
    handler.down["strict"] = 1  # grades one answer, then every call fails after retries
    assert run(args) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"{DOWN_AFTER} calls in a row to the judge 'strict' failed" in lines[0], lines[0]
    assert "upstream crashed" in lines[0] and "--judge" in lines[0], lines[0]
    # The pool stopped answering soon after: nothing is paid that cannot be graded.
    first = [(r.model, r.last_user) for r in server.completions if r.model in MODELS]
    assert len(first) < len(items) * len(MODELS)
    strict_first = requests_of(server, "strict")

    # The judge is back: the rerun grades the answers already paid for from the cache (the pool
    # is not asked about them again) and finishes.
    handler.down.clear()
    seen = len(server.completions)
    assert run(args) == 0, capsys.readouterr().err
    again = [(r.model, r.last_user) for r in server.completions[seen:] if r.model in MODELS]
    assert not set(first) & set(again)
    assert len(first) + len(again) == len(items) * len(MODELS)
    assert requests_of(server, "strict") > strict_first
    frame = scores(tmp)
    assert len(frame) == len(items) * len(MODELS) and frame.score.notna().all()


@pytest.mark.parametrize(
    "one_less",
    [Reply(content=""), Status(400, "bad request")],
    ids=["an empty answer, which no judge grades", "a pool call that failed"],
)
def test_a_judge_failing_every_call_of_a_small_run_stops_it_at_the_end(setup, capsys, one_less):
    server, handler, tmp = setup
    # Two free-text items, so fewer judge calls than DOWN_AFTER are planned, and one answer
    # the judge is not asked about: the judge's calls never add up to the planned count.
    items = make_items()[N_NUMERIC : N_NUMERIC + 2] + make_items()[:4]
    ItemsFile(tmp / "small.jsonl").append(items)
    args = label_args(tmp, judge="strict")
    args[1] = str(tmp / "small.jsonl")
    handler.down["strict"] = 0
    handler.replies["dear", items[0].query] = one_less
    assert run(args) == 2
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert "all 3 calls to the judge 'strict' failed" in lines[0], lines[0]
    assert "upstream crashed" in lines[0] and "--judge" in lines[0], lines[0]
    assert not (tmp / "out" / "labels.parquet").exists()  # no dataset of ungraded answers

    # The judge is back: the rerun grades the answers paid for from the cache and finishes.
    handler.down.clear()
    handler.replies.clear()
    pool_before = {(r.model, r.last_user) for r in server.completions if r.model in MODELS}
    seen = len(server.completions)
    assert run(args) == 0, capsys.readouterr().err
    again = {(r.model, r.last_user) for r in server.completions[seen:] if r.model in MODELS}
    assert not again & (pool_before - {("dear", items[0].query)})
    assert requests_of(server, "strict") > 0
    frame = scores(tmp)
    assert len(frame) == len(items) * len(MODELS) and frame.score.notna().all()


def test_the_help_names_the_stop_rule_with_down_after(capsys):
    run(["label", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert f"A pool model, or the judge, whose calls fail {DOWN_AFTER} times in a row" in text


def test_the_summary_counts_the_judge_calls_that_failed(setup, capsys):
    _, handler, tmp = setup
    # The judge grades its first 3 answers, then every call fails: 5 failures in a row, fewer
    # than DOWN_AFTER, and not all of the run's, so the run finishes and prints its summary.
    handler.down["strict"] = 3
    assert run(label_args(tmp, judge="strict")) == 0, capsys.readouterr().err
    out = " ".join(capsys.readouterr().out.split())  # the console wraps long lines
    judged = N_FREE * len(MODELS)
    assert f"judge calls: {judged}, {judged - 3} of them failed" in out, out
    assert f"{judged - 3} answers could not be scored" in out, out
    assert f"{judged - 3} of them because the judge's call failed" in out, out
