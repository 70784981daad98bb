"""`label_items`: three pool models of different skill and price plus a judge, all served by one
scripted OpenAI-compatible server on 127.0.0.1; every answer graded, every failure recorded."""

from __future__ import annotations

import asyncio
import math

import pytest
from sqlalchemy import func, select

from trouter.errors import ConfigError
from trouter.label.observations import load_observations, to_dataset, write_jsonl
from trouter.label.runner import LabelOptions, label_items, reference_of
from trouter.label.sandbox import SandboxLimits
from trouter.label.scorers import Code, Judge
from trouter.llm import LLMClient, RetryPolicy
from trouter.pool import ModelSpec, Pool
from trouter.store import LabelObservation, Store
from trouter.synth.items import SynthItem, format_choices
from trouter.testing import FakeOpenAI, FakeRequest, Reply, Status


def item(query: str, reference: str, fmt: str, path: str, **kw) -> SynthItem:
    return SynthItem(
        query=query,
        reference=reference,
        answer_format=fmt,  # type: ignore[arg-type]
        path=path,
        generator="gen",
        prompt_version="test/1",
        **kw,
    )


CHOICES = ["London", "Paris", "Rome"]
ITEMS = [
    item("What is 17 + 25?", "42", "numeric", "math/arithmetic"),
    item("A shirt costs $20 and is 25% off. What do you pay?", "15", "numeric", "math/arithmetic"),
    item(
        format_choices("Which city is the capital of France?", CHOICES),
        "B",
        "multiple_choice",
        "trivia/capitals",
        choices=CHOICES,
    ),
    item("Name the largest planet of the solar system.", "Jupiter", "exact", "trivia/planets"),
    item(
        "Write a Python function add(a, b) returning their sum.",
        "def add(a, b):\n    return a + b",
        "code",
        "code/python",
        tests="assert add(1, 2) == 3\nassert add(-1, 1) == 0",
        entry_point="add",
    ),
    item(
        "Summarise in one sentence: the cat sat on the mat all day.",
        "A cat sat on a mat all day.",
        "free_text",
        "writing/summary",
    ),
]
GOOD = {
    ITEMS[0].query: "17 + 25 = 42.\nFinal answer: 42",
    ITEMS[1].query: "25% of $20 is $5, so you pay $15.",
    ITEMS[2].query: "The answer is (B) Paris.",
    ITEMS[3].query: "Jupiter",
    ITEMS[4].query: "```python\ndef add(a, b):\n    return a + b\n```",
    ITEMS[5].query: "The cat sat on the mat all day.",
}
BAD = {
    ITEMS[
        4
    ].query: "```python\ndef add(a, b):\n    while True:\n        pass\n```",  # loops forever
    ITEMS[5].query: "???",  # the judge cannot grade this
}
PRICES = {"small": (0.1, 0.2), "large": (10.0, 30.0), "flaky": (1.0, 2.0)}


def answer(req: FakeRequest) -> Reply:
    if req.model == "judge":
        graded = req.last_user.split("<<<", 1)[-1]
        if "???" in graded:
            return Reply(content="I cannot grade this response.")
        return Reply(
            content="Close to the reference.\nScore: 9/10" if "cat sat" in graded else "Score: 2"
        )
    query = req.last_user
    if req.model == "small" and query in BAD:
        return Reply(content=BAD[query])
    return Reply(content=GOOD[query])


@pytest.fixture
def server():
    with FakeOpenAI(answer, models=("small", "large", "flaky", "judge")) as s:
        yield s


def make_pool(server: FakeOpenAI) -> Pool:
    return Pool.of(
        ModelSpec(
            name=n, base_url=server.url, input_price=p_in, output_price=p_out, max_concurrency=4
        )
        for n, (p_in, p_out) in PRICES.items()
    )


def run_label(server: FakeOpenAI, store: Store, **kw):
    async def go():
        client = LLMClient(store, run="t", retry=RetryPolicy(max_attempts=3, base_delay=0.01))
        judge = Judge(client, ModelSpec(name="judge", base_url=server.url))
        try:
            return await label_items(
                ITEMS,
                make_pool(server),
                client,
                store=store,
                run="t",
                judge=judge,
                code=Code(SandboxLimits(cpu_s=1, wall_s=1.0)),
                options=LabelOptions(flush_every=2),
                **kw,
            )
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_every_model_answers_every_item_and_each_answer_is_graded(server, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    summary = run_label(server, store)
    dataset = to_dataset(load_observations(store, "t"), ITEMS, make_pool(server), "t")
    assert dataset.n_queries == len(ITEMS) and dataset.models == ("small", "large", "flaky")
    assert dataset.tasks == [i.path for i in ITEMS]
    scores = dataset.scores_raw
    # large and flaky answer well everywhere; the judge gives the summary 9/10
    assert scores[:, 1].tolist() == [1, 1, 1, 1, 1, 0.9]
    # small loops forever on the code item (sandbox: 0) and writes "???" for the summary
    assert scores[:5, 0].tolist() == [1, 1, 1, 1, 0]
    assert math.isnan(scores[5, 0])
    assert summary.observations == 18 and summary.observed == 18 and summary.reused == 0
    assert summary.score_failures == {"small": 1} and not summary.call_failures
    assert summary.judge_calls == 3
    assert "netns" in summary.isolation or "hooks" in summary.isolation


def test_cost_is_the_servers_usage_times_the_pool_prices(server, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    run_label(server, store)
    frame = to_dataset(load_observations(store, "t"), ITEMS, make_pool(server), "t").frame
    usage = {}
    for req in server.requests:
        if req.model in PRICES:
            words = max(1, len(req.prompt_text.split()))
            usage[(req.last_user, req.model)] = words
    for row in frame.itertuples():
        query = next(i.query for i in ITEMS if i.id == row.query_id)
        assert row.tokens_in == usage[(query, row.model)]
        p_in, p_out = PRICES[row.model]
        assert row.cost == pytest.approx((row.tokens_in * p_in + row.tokens_out * p_out) / 1e6)


def test_failed_calls_are_recorded_counted_and_retried_on_the_next_run(server, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    server.script(Status(400, "bad request"), model="flaky")  # not retryable: fails for good
    server.script(Status(500), Status(503), model="large")  # retried, then answered
    first = run_label(server, store)
    assert first.call_failures == {"flaky": 1}
    failed = [o for o in load_observations(store, "t").values() if o.status == "call_failed"]
    assert len(failed) == 1 and failed[0].score is None and "bad_request" in failed[0].error
    assert failed[0].retry

    requests_before = len(server.requests)
    second = run_label(server, store)
    # The failed call and the verdict that held no score (small's "???") are redone, and
    # only they: small's answer comes from the cache, its judge is asked again.
    assert second.reused == 16 and second.observed == 2 and not second.call_failures
    assert len(server.requests) - requests_before == 2
    with store.session() as s:
        rows = s.scalar(select(func.count()).select_from(LabelObservation))
    assert rows == 18  # no duplicates


def test_raw_observations_keep_responses_and_errors(server, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    run_label(server, store)
    path = write_jsonl(
        load_observations(store, "t"), ITEMS, make_pool(server), tmp_path / "o.jsonl"
    )
    import json

    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 18
    garbled = next(r for r in rows if r["status"] == "score_failed")
    assert garbled["response"] == "???" and "no usable score" in garbled["error"]
    assert "cannot grade" in garbled["detail"]
    looping = next(r for r in rows if r["model"] == "small" and r["answer_format"] == "code")
    # An infinite loop under cpu_s=1, wall_s=1.0: whichever limit the machine's load makes first.
    assert looping["score"] == 0.0
    assert "wall-clock limit" in looping["detail"] or "CPU-time limit" in looping["detail"]


def test_free_text_items_need_a_judge_before_anything_is_spent(server, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")

    async def go():
        client = LLMClient(store, run="t")
        await label_items(ITEMS, make_pool(server), client, store=store, run="t")

    with pytest.raises(ConfigError, match="judge"):
        asyncio.run(go())
    assert server.requests == []


def test_reference_of_maps_the_item_schema_onto_scorer_references():
    ref = reference_of(ITEMS[4])
    assert ref.tests == ("assert add(1, 2) == 3", "assert add(-1, 1) == 0")
    assert ref.entry_point == "add"
    mc = reference_of(ITEMS[2])
    assert mc.choices == tuple(CHOICES) and mc.answer == "B"


def test_a_budget_stop_keeps_what_was_done_and_the_rerun_finishes_it(server, tmp_path):
    from trouter.llm import BudgetExceeded

    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    pool = make_pool(server)
    numeric = [i for i in ITEMS if i.answer_format == "numeric"]

    async def go(budget: float | None):
        client = LLMClient(store, run="b", budget_usd=budget)
        try:
            return await label_items(numeric, pool, client, store=store, run="b")
        finally:
            await client.aclose()

    # Room for the cheap model's answers, not for a worst-case one (1024 tokens at $30/M) from
    # the dear model: the run stops there, and the cheap answers in flight are kept.
    with pytest.raises(BudgetExceeded):
        asyncio.run(go(0.02))
    kept = load_observations(store, "b")
    assert kept and all(o.status == "ok" for o in kept.values())
    summary = asyncio.run(go(None))
    assert summary.reused == len(kept) and summary.observations == len(numeric) * len(pool)


def test_a_judge_call_the_budget_refuses_is_graded_on_the_rerun(server, tmp_path):
    from trouter.llm import BudgetExceeded

    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    pool = Pool.of([make_pool(server)["large"]])
    summary_item = [i for i in ITEMS if i.answer_format == "free_text"]

    async def go(budget: float | None):
        client = LLMClient(store, run="j", budget_usd=budget)
        judge = Judge(client, ModelSpec(name="judge", base_url=server.url, output_price=1000.0))
        try:
            return await label_items(summary_item, pool, client, store=store, run="j", judge=judge)
        finally:
            await client.aclose()

    # Room for large's answer, not for the judge's worst case: the cap stops the grading.
    # It was stored as a grading failure that no rerun retried, so the answer kept score 0.
    with pytest.raises(BudgetExceeded, match="next call to 'judge'"):
        asyncio.run(go(0.1))
    assert not [o for o in load_observations(store, "j").values() if o.status != "ok"]
    summary = asyncio.run(go(None))
    assert summary.observed == 1 and summary.cache_hits == 1  # the paid answer, read again
    (graded,) = load_observations(store, "j").values()
    assert graded.status == "ok" and graded.score == pytest.approx(0.9)
