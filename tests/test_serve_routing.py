"""How the gateway reads `model` and routes: the name grammar, batching, and a loop that never blocks."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import openai
import pytest

from factories import toy_dataset
from trouter.routers.registry import make_router
from trouter.routers.simple import RandomRouter
from trouter.serve import GatewayConfig, create_app
from trouter.serve.errors import GatewayError
from trouter.serve.naming import ModelNames
from trouter.serve.testing import GatewayServer, pool_at
from trouter.store import Store
from trouter.testing import FakeOpenAI, Reply
from trouter.tradeoff import Tradeoff

POOL = ("small", "medium", "large")


@pytest.fixture(scope="module")
def names():
    return ModelNames(POOL, Tradeoff.from_preset("balanced"))


@pytest.mark.parametrize(
    ("value", "tradeoff", "model"),
    [
        ("trouter", Tradeoff.from_preset("balanced"), None),
        ("trouter:quality", Tradeoff.from_preset("quality"), None),
        ("trouter:cost", Tradeoff.from_preset("cost"), None),
        ("trouter:lambda=200", Tradeoff.from_lambda(200), None),
        ("trouter:lam=0", Tradeoff.from_lambda(0), None),
        ("trouter:budget=0.5", Tradeoff.from_budget(0.5), None),
        ("trouter:budget=$2", Tradeoff.from_budget(2), None),
        ("medium", None, "medium"),
    ],
)
def test_model_names_select_a_tradeoff_or_a_pool_model(names, value, tradeoff, model):
    target = names.parse(value)
    assert (target.tradeoff, target.model, target.routed) == (tradeoff, model, model is None)


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("gpt-4o", 404),
        ("trouter:", 404),
        ("trouter:fast", 404),
        ("TROUTER", 404),
        ("trouter:lambda=x", 400),
        ("trouter:budget=-1", 400),
    ],
)
def test_other_names_are_404s_listing_valid_ones_or_400s(names, value, status):
    with pytest.raises(GatewayError) as err:
        names.parse(value)
    assert err.value.status == status and err.value.param == "model"
    if status == 404:
        assert (
            "trouter:lambda=NUMBER" in err.value.message
            and "small, medium, large" in err.value.message
        )


def test_parsing_is_cached_and_bounded(names):
    for i in range(2000):
        names.parse(f"trouter:lambda={i}")
    assert len(names._cache) <= 512
    assert names.parse("trouter:lambda=1999") is names.parse("trouter:lambda=1999")


@pytest.fixture(scope="module")
def fake():
    with FakeOpenAI(lambda req: Reply(content="ok")) as server:
        yield server


def test_concurrent_requests_are_batched_yet_each_gets_its_own_decision(fake, tmp_path):
    router = make_router("random", seed=3).fit(toy_dataset(10))
    queries = [
        f"question number {i} about {w}"
        for i, w in enumerate(["sums", "proofs", "python", "coffee"] * 10)
    ]
    app = create_app(
        router,
        pool_at(router.pool_, fake.url),
        GatewayConfig(),
        Store(f"sqlite:///{tmp_path}/l.db"),
    )
    lam = Tradeoff.from_lambda(5000.0)
    expected = {q: router.route([q], lam)[0] for q in queries}

    async def ask_all(url):
        async with openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0) as c:
            return await asyncio.gather(
                *(
                    c.chat.completions.with_raw_response.create(
                        model="trouter:lambda=5000", messages=[{"role": "user", "content": q}]
                    )
                    for q in queries
                )
            )

    with GatewayServer(app) as gw:
        responses = asyncio.run(ask_all(gw.url))
    for q, raw in zip(queries, responses, strict=True):
        assert raw.headers["x-trouter-routed-model"] == expected[q].model
        assert float(raw.headers["x-trouter-predicted-quality"]) == pytest.approx(
            expected[q].quality, abs=1e-4
        )


class SlowRouter(RandomRouter):
    """A router whose every prediction takes a second: an encoder on a bad day."""

    name = "random"

    def _predict(self, queries, x):
        time.sleep(1.0)
        return super()._predict(queries, x)


def test_a_slow_routing_call_never_blocks_other_requests(fake, tmp_path):
    router = SlowRouter().fit(toy_dataset(5))
    app = create_app(
        router,
        pool_at(router.pool_, fake.url),
        GatewayConfig(),
        Store(f"sqlite:///{tmp_path}/l.db"),
    )
    with GatewayServer(app) as gw:
        slow = threading.Thread(
            target=lambda: httpx.post(
                f"{gw.url}/chat/completions",
                json={"model": "trouter", "messages": [{"role": "user", "content": "slow one"}]},
                timeout=10,
            )
        )
        slow.start()
        time.sleep(0.1)  # the slow request is now routing
        started = time.monotonic()
        assert httpx.get(f"{gw.root}/health").status_code == 200
        bypass = httpx.post(
            f"{gw.url}/chat/completions",
            json={"model": "large", "messages": [{"role": "user", "content": "hi"}]},
        )
        assert bypass.status_code == 200
        assert time.monotonic() - started < 0.5
        slow.join()


def test_route_turns_chooses_what_the_router_reads(fake, tmp_path):
    router = make_router("random").fit(toy_dataset(5))
    store = Store(f"sqlite:///{tmp_path}/l.db")
    conversation = [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {
            "role": "user",
            "content": [{"type": "text", "text": "second"}, {"type": "text", "text": "question"}],
        },
    ]
    for turns, expected in ((1, "second question"), (0, "first question\nsecond question")):
        app = create_app(
            router, pool_at(router.pool_, fake.url), GatewayConfig(route_turns=turns), store
        )
        with GatewayServer(app) as gw:
            r = httpx.post(
                f"{gw.url}/chat/completions", json={"model": "trouter", "messages": conversation}
            )
        from trouter.store import DecisionLog

        with store.session() as s:
            row = s.query(DecisionLog).filter_by(request_id=r.headers["x-trouter-request-id"]).one()
        assert row.query == expected


def test_routing_text_keeps_the_newest_turn_from_its_beginning():
    from trouter.serve.request import parse_chat_request

    def chat(*turns):
        body = {"model": "trouter", "messages": [{"role": "user", "content": t} for t in turns]}
        return parse_chat_request(json.dumps(body).encode())

    assert chat("a" * 50 + "b" * 50).routing_text(1, max_chars=60) == "a" * 50 + "b" * 10
    assert chat("old question", "new").routing_text(0, max_chars=10) == "old qu\nnew"
    assert chat("old", "newest turn is long").routing_text(0, max_chars=8) == "newest t"
