"""A pool file may list a router's models in any order: models are matched by name."""

from __future__ import annotations

import httpx
import pytest

from factories import toy_dataset
from trouter.errors import ConfigError
from trouter.pool import Pool
from trouter.routers.registry import load_router, make_router
from trouter.serve import GatewayConfig, create_app
from trouter.serve.testing import GatewayServer, pool_at
from trouter.store import Store
from trouter.testing import FakeOpenAI, Reply


@pytest.fixture(scope="module")
def router_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("router") / "r"
    make_router("knn", encoder="hashing:64").fit(toy_dataset(n_per_task=10)).save(out)
    return out


def _reversed(pool: Pool) -> Pool:
    return Pool.of(reversed(pool.models))


def test_ordered_as_reorders_the_same_models_and_refuses_others():
    pool = Pool.from_prices({"a": (1.0, 2.0), "b": (3.0, 4.0)})
    assert pool.ordered_as(["b", "a"]).names == ("b", "a")
    assert pool.ordered_as(["b", "a"]).models[0] == pool.models[1]
    assert pool.ordered_as(["a", "c"]) is None and pool.ordered_as(["a"]) is None


def test_a_router_loads_and_serves_with_its_pool_listed_in_another_order(router_dir, tmp_path):
    router = load_router(router_dir)
    shuffled = _reversed(router.pool_)
    assert load_router(router_dir, expect_models=shuffled.names).models_ == router.models_
    with FakeOpenAI(lambda req: Reply(content=f"answered by {req.model}")) as fake:
        app = create_app(
            router,
            pool_at(shuffled, fake.url),
            GatewayConfig(api_keys=()),
            Store(f"sqlite:///{tmp_path / 'gw.sqlite'}"),
        )
        assert app.state.gateway.pool.names == router.models_
        with GatewayServer(app) as gw, httpx.Client(base_url=gw.url) as client:
            body = {"model": "trouter", "messages": [{"role": "user", "content": "2+2?"}]}
            reply = client.post("/chat/completions", json=body)
    assert reply.status_code == 200, reply.text
    chosen = reply.headers["x-trouter-model"]
    assert reply.json()["choices"][0]["message"]["content"] == f"answered by {chosen}-id"


def test_a_pool_with_other_models_is_still_refused(router_dir):
    with pytest.raises(ConfigError, match="retrain it for this pool"):
        load_router(router_dir, expect_models=("gpt-x", "gpt-y", "gpt-z"))
