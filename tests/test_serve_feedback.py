"""Outcome feedback through the gateway: POST /v1/feedback, then `trouter adapt --db`."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import pytest
from sqlalchemy import func, select

from factories import TOY_MODELS, toy_dataset
from trouter.cli import run
from trouter.errors import DataError
from trouter.routers.registry import load_router
from trouter.routers.trouter import TRouter
from trouter.routers.trouter.adapt import MIN_SCORES, sequential_z
from trouter.serve import GatewayConfig, create_app
from trouter.serve.feedback import feedback_dataset
from trouter.serve.log_summary import summarise
from trouter.serve.testing import GatewayServer, pool_at
from trouter.store import Feedback, Store
from trouter.testing import FakeOpenAI, Reply

pytestmark = pytest.mark.usefixtures("one_torch_thread")

KEY, OTHER = "sk-client-one", "sk-client-two"
CODE_WORDS = ["python", "function", "list", "loop", "return", "def"]
SCORED = 45  # Python answers scored 0: most go to one model, enough to correct it


@pytest.fixture(scope="module")
def router_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("router") / "r"
    TRouter(encoder="hashing:256", ensemble=1).fit(toy_dataset(n_per_task=40, seed=2)).save(out)
    return out


@contextmanager
def _gateway(router_dir: Path, db: Path) -> Iterator[tuple[GatewayServer, httpx.Client]]:
    router = load_router(router_dir)
    with FakeOpenAI(lambda req: Reply(content="an answer")) as fake:
        app = create_app(
            router,
            pool_at(router.pool_, fake.url),
            GatewayConfig(api_keys=(KEY, OTHER), default_tradeoff="quality"),
            Store(f"sqlite:///{db}"),
        )
        with GatewayServer(app) as gw, httpx.Client(base_url=gw.url) as client:
            yield gw, client


@pytest.fixture(scope="module")
def served(router_dir, tmp_path_factory):
    """A gateway whose answers to Python questions all get a score of 0 from the client."""
    db = tmp_path_factory.mktemp("store") / "gateway.sqlite"
    with _gateway(router_dir, db) as (gw, client):
        yield gw, client, db


def _ask(client: httpx.Client, text: str, key: str = KEY, model: str = "trouter") -> httpx.Response:
    body = {"model": model, "messages": [{"role": "user", "content": text}]}
    reply = client.post("/chat/completions", json=body, headers={"authorization": f"Bearer {key}"})
    assert reply.status_code == 200, reply.text
    return reply


def _score(client: httpx.Client, body: object, key: str = KEY) -> httpx.Response:
    return client.post("/feedback", json=body, headers={"authorization": f"Bearer {key}"})


def test_scored_answers_adapt_the_router_and_are_used_once(served, router_dir, tmp_path, capsys):
    _, client, db = served
    rng = np.random.default_rng(0)
    answered = []
    for k in range(SCORED):
        text = " ".join(rng.choice(CODE_WORDS, size=6)) + f" task{k}?"
        reply = _ask(client, text)
        answered.append(reply.headers["x-trouter-model"])
        scored = _score(client, {"request_id": reply.headers["x-trouter-request-id"], "score": 0})
        assert scored.status_code == 200, scored.text
        assert scored.json()["score"] == 0.0
    model = max(set(answered), key=answered.count)
    assert answered.count(model) >= MIN_SCORES
    question = "python function to return a list in a loop, def?"
    before = load_router(router_dir).route([question], "quality")[0]

    assert (
        run(["adapt", "--router", str(router_dir), "--db", str(db), "--out", str(tmp_path / "a")])
        == 0
    )
    assert f"{model} ({answered.count(model)} scores)" in capsys.readouterr().out
    adapted = load_router(tmp_path / "a")
    after = adapted.route([question], "quality")[0]
    quality = {e.model: e.quality for e in after.estimates}
    assert quality[model] < {e.model: e.quality for e in before.estimates}[model] - 0.2
    assert adapted.adaptation_[-1]["feedback_through"] == SCORED

    lines = summarise(Store(f"sqlite:///{db}")).models
    assert {(m.model, m.scored, m.mean_score) for m in lines if m.model == model} == {
        (model, answered.count(model), 0.0)
    }

    # the same feedback is not used twice
    again = [
        "adapt",
        "--router",
        str(tmp_path / "a"),
        "--db",
        str(db),
        "--out",
        str(tmp_path / "b"),
    ]
    assert run(again) != 0
    assert "no new feedback" in capsys.readouterr().err


def _score_python_answers(client: httpx.Client, start: int, stop: int) -> None:
    rng = np.random.default_rng(start)
    for k in range(start, stop):
        reply = _ask(client, " ".join(rng.choice(CODE_WORDS, size=6)) + f" task{k}?")
        rid = reply.headers["x-trouter-request-id"]
        assert _score(client, {"request_id": rid, "score": 0}).is_success


def _adapt(source: Path, db: Path, out: Path) -> dict:
    assert run(["adapt", "--router", str(source), "--db", str(db), "--out", str(out)]) == 0
    return load_router(out).adaptation_[-1]


def test_feedback_that_changed_nothing_is_read_again_with_the_next_round(
    router_dir, tmp_path, capsys
):
    db = tmp_path / "gateway.sqlite"
    with _gateway(router_dir, db) as (_, client):
        _score_python_answers(client, 0, 6)  # too few scores for any model to be corrected
        first = _adapt(router_dir, db, tmp_path / "a")
        assert first["models"] == [] and first["feedback_read"] == 6
        assert "feedback_through" not in first
        assert "stays unused" in capsys.readouterr().out
        # The same 6 again, nothing new: a second look could only act on noise.
        again = ["adapt", "--router", str(tmp_path / "a"), "--db", str(db)]
        assert run([*again, "--out", str(tmp_path / "b")]) != 0
        assert "no new feedback since the last `trouter adapt` looked" in capsys.readouterr().err
        _score_python_answers(client, 6, SCORED)
        second = _adapt(tmp_path / "a", db, tmp_path / "c")
    assert sum(second["scores"]) == SCORED  # the first round's 6 scores, read again, and the new
    assert second["models"] and second["feedback_through"] == SCORED
    # The first read could not have acted (no model had MIN_SCORES scores): it was no look.
    assert second["min_z"] == 2.0 and "look 2" not in capsys.readouterr().out


def test_a_look_again_needs_more_standard_errors_the_more_the_feedback_grew(
    router_dir, tmp_path, capsys
):
    # As if an earlier `adapt` had read 40 of these queries, enough to act on, and left them.
    model = load_router(router_dir)
    model.adaptation_ = [
        {"queries": 40, "scores": [40, 0, 0], "models": [], "feedback_read": 40, "min_z": 2.0}
    ]
    model.save(tmp_path / "read")
    db = tmp_path / "gateway.sqlite"
    with _gateway(router_dir, db) as (_, client):
        _score_python_answers(client, 0, SCORED)
        step = _adapt(tmp_path / "read", db, tmp_path / "out")
    assert step["min_z"] == pytest.approx(sequential_z(2.0, [40, SCORED]))
    assert step["min_z"] > 2.7  # 45 queries is not much more than 40
    assert (
        f"look 2 at this feedback (40 queries at the first, {SCORED} now" in capsys.readouterr().out
    )


def test_bad_feedback_is_a_clear_400_or_404(served):
    _, client, db = served
    reply = _ask(client, "hello, how was your weekend?")
    rid = reply.headers["x-trouter-request-id"]
    cases = [
        ({"request_id": rid, "score": 1.5}, 400, "score must be a number in [0, 1]"),
        ({"request_id": rid, "score": "good"}, 400, "score must be a number"),
        ({"score": 1}, 400, "request_id must be"),
        ({"request_id": "no-such-request", "score": 1}, 404, "no answered request"),
    ]
    for body, status, message in cases:
        answer = _score(client, body)
        assert answer.status_code == status, body
        assert message in answer.json()["error"]["message"]
    assert _score(client, {"request_id": rid, "score": True}, key=OTHER).status_code == 404
    assert _score(client, {"request_id": rid, "score": True}).status_code == 200
    assert client.post("/feedback", content=b"{not json").status_code == 401  # no key first
    bad = client.post("/feedback", content=b"{not json", headers={"authorization": f"Bearer {KEY}"})
    assert bad.status_code == 400 and "not valid JSON" in bad.json()["error"]["message"]
    with Store(f"sqlite:///{db}").session() as session:
        assert session.query(Feedback).filter(Feedback.request_id == rid).one().score == 1.0


def test_a_scored_answer_from_a_named_model_is_feedback_too(served):
    _, client, db = served
    store = Store(f"sqlite:///{db}")
    with store.session() as session:
        last = session.scalar(select(func.max(Feedback.id))) or 0
    text = "hello, any plans for the weekend?"
    reply = _ask(client, text, model="small")  # bypasses routing
    assert _score(
        client, {"request_id": reply.headers["x-trouter-request-id"], "score": 1}
    ).is_success
    data, through = feedback_dataset(store, TOY_MODELS, after=last)
    assert (data.queries, data.models, through) == ([text], ("small",), last + 1)


def test_feedback_marks_belong_to_the_store_they_were_read_from(router_dir, tmp_path, capsys):
    first, second = tmp_path / "first.sqlite", tmp_path / "second.sqlite"
    with _gateway(router_dir, first) as (_, client):
        _score_python_answers(client, 0, SCORED)
    step = _adapt(router_dir, first, tmp_path / "a")
    assert step["models"] and step["feedback_through"] == SCORED
    # A copy of a store is that store: its feedback was used.
    for suffix in ("", "-wal", "-shm"):  # WAL mode: the recent writes are in the -wal file
        if Path(f"{first}{suffix}").exists():
            shutil.copy(f"{first}{suffix}", f"{tmp_path / 'copy.sqlite'}{suffix}")
    again = ["adapt", "--router", str(tmp_path / "a"), "--out", str(tmp_path / "b")]
    assert run([*again, "--db", str(tmp_path / "copy.sqlite")]) != 0
    assert "no new feedback in the gateway's store after feedback id" in capsys.readouterr().err
    # Another store numbers its feedback from 1 again, and none of it was used: until stores
    # had an identity, its first SCORED scores were taken for the ones already used.
    with _gateway(router_dir, second) as (_, client):
        _score_python_answers(client, 100, 100 + SCORED)
    step = _adapt(tmp_path / "a", second, tmp_path / "c")
    assert sum(step["scores"]) == SCORED


def test_a_store_that_is_not_there_or_not_a_store_is_a_one_line_error(router_dir, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("not a database")
    for db, message in [
        (tmp_path / "typo.sqlite", "no store at"),
        (tmp_path / "notes.txt", "file is not a database"),
    ]:
        for command in (
            ["adapt", "--router", str(router_dir), "--out", str(tmp_path / "a")],
            ["logs"],
        ):
            assert run([*command, "--db", str(db)]) == 2
            assert message in capsys.readouterr().err
    assert not (tmp_path / "typo.sqlite").exists()  # a typo made no empty store


def test_feedback_for_models_outside_the_pool_says_so(served, tmp_path):
    _, client, db = served
    reply = _ask(client, "what is a python list?")
    assert _score(client, {"request_id": reply.headers["x-trouter-request-id"], "score": 1})
    with pytest.raises(DataError, match="none of them in this router's pool"):
        feedback_dataset(Store(f"sqlite:///{db}"), ("gpt-x", "gpt-y"))
