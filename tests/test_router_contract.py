"""The shared contract every registered router must satisfy (scikit-learn's check_estimator idea).

Routers are fitted on a small synthetic dataset with the hashing encoder, so the whole suite runs
in seconds. Router-specific constructor arguments go in CONTRACT_PARAMS.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pytest

from factories import TOY_MODELS, toy_dataset
from trouter.errors import ConfigError, DataError, TrouterError
from trouter.routers.base import Decision, QueryError
from trouter.routers.registry import load_router, make_router, router_class, router_names
from trouter.tradeoff import Tradeoff

ENCODER = "hashing:256"
CONTRACT_PARAMS: dict[str, dict[str, object]] = {
    "single": {"model": "medium"},
}


def build(name: str):
    return make_router(name, encoder=ENCODER, seed=0, **CONTRACT_PARAMS.get(name, {}))


@pytest.fixture(scope="module")
def split():
    return toy_dataset(n_per_task=30, seed=1).split(seed=0)


@pytest.fixture(scope="module")
def fitted(split):
    cache = {}

    def get(name):
        if name not in cache:
            router = build(name)
            # Evaluation-only routers see the set they are evaluated on.
            train = split.test if router.evaluation_only else split.train
            cache[name] = router.fit(train, val=split.val)
        return cache[name]

    return get


ALL = router_names()


@pytest.mark.parametrize("name", ALL)
def test_constructor_only_stores_hyper_parameters(name):
    router = build(name)
    assert not [k for k in vars(router) if k.endswith("_") and not k.startswith("_")]
    params = router.get_params()
    assert params["encoder"] == ENCODER
    assert type(router)(**params).get_params() == params


@pytest.mark.parametrize("name", ALL)
def test_predict_gives_quality_in_unit_interval_and_non_negative_cost(name, fitted, split):
    est = fitted(name).predict(split.test.queries)
    assert est.models == TOY_MODELS
    assert est.quality.shape == est.cost.shape == (split.test.n_queries, len(TOY_MODELS))
    assert np.all((est.quality >= 0) & (est.quality <= 1))
    assert np.all(est.cost >= 0) and np.all(np.isfinite(est.cost))


@pytest.mark.parametrize("name", ALL)
def test_predict_is_pure_and_row_independent(name, fitted, split):
    router = fitted(name)
    queries = split.test.queries[:12]
    a = router.predict(queries)
    b = router.predict(queries[::-1])
    np.testing.assert_allclose(a.quality, b.quality[::-1], atol=1e-6)
    np.testing.assert_allclose(a.cost, b.cost[::-1], rtol=1e-6, atol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_route_returns_explained_decisions_with_a_full_fallback_chain(name, fitted, split):
    decisions = fitted(name).route(split.test.queries[:5], Tradeoff.from_preset("balanced"))
    assert len(decisions) == 5
    for d in decisions:
        assert isinstance(d, Decision)
        assert sorted(d.chain) == sorted(TOY_MODELS)
        assert [e.model for e in d.estimates] == list(TOY_MODELS)
        best = max(d.estimates, key=lambda e: e.utility)
        assert d.utility == pytest.approx(best.utility)
        utilities = {e.model: e.utility for e in d.estimates}
        chain_utilities = [utilities[m] for m in d.chain]
        assert chain_utilities == sorted(chain_utilities, reverse=True)
        json.dumps(d.to_dict())


@pytest.mark.parametrize("name", ALL)
def test_higher_lambda_never_raises_predicted_cost(name, fitted, split):
    est = fitted(name).predict(split.test.queries)
    rows = np.arange(len(est))
    costs = [est.cost[rows, est.choose(lam)].mean() for lam in (0.0, 1.0, 100.0, 1e4, 1e6)]
    assert all(a >= b - 1e-12 for a, b in itertools.pairwise(costs))


@pytest.mark.parametrize("name", ALL)
def test_presets_and_budget_resolve_through_the_saved_calibration(name, fitted, split):
    router = fitted(name)
    for preset in ("quality", "balanced", "cost"):
        assert router.route(split.test.queries[:2], preset)[0].lam >= 0
    generous = router.route(split.test.queries[:2], Tradeoff.from_budget(1e6))
    assert generous[0].lam == 0.0


@pytest.mark.parametrize("name", ALL)
def test_save_load_round_trips_exactly(name, fitted, split, tmp_path):
    router = fitted(name)
    router.save(tmp_path / name)
    loaded = load_router(tmp_path / name)
    assert type(loaded) is type(router)
    a, b = router.predict(split.test.queries), loaded.predict(split.test.queries)
    np.testing.assert_array_equal(a.quality, b.quality)
    np.testing.assert_array_equal(a.cost, b.cost)
    assert [d.model for d in router.route(split.test.queries, "balanced")] == [
        d.model for d in loaded.route(split.test.queries, "balanced")
    ]


@pytest.mark.parametrize("name", ALL)
def test_fit_is_deterministic_for_a_seed(name, split):
    train = split.test if router_class(name).evaluation_only else split.train
    a = build(name).fit(train, val=split.val).predict(split.test.queries)
    b = build(name).fit(train, val=split.val).predict(split.test.queries)
    np.testing.assert_array_equal(a.quality, b.quality)
    np.testing.assert_array_equal(a.cost, b.cost)


@pytest.mark.parametrize("name", ALL)
def test_bad_queries_are_clear_errors(name, fitted):
    router = fitted(name)
    with pytest.raises(QueryError, match="query 1 is empty"):
        router.predict(["fine", "   "])
    with pytest.raises(QueryError, match="no queries"):
        router.predict([])


@pytest.mark.parametrize("name", ALL)
def test_unfitted_router_says_so(name):
    with pytest.raises(TrouterError, match="not fitted"):
        build(name).predict(["hello"])
    with pytest.raises(TrouterError, match="not fitted"):  # not "no calibration"
        build(name).route(["hello"], "balanced")


def test_a_validation_set_over_other_models_is_refused(split):
    other = split.val.select_models(list(split.val.models[:2]))
    with pytest.raises(DataError, match="validation set's models"):
        build("knn").fit(split.train, val=other)


def test_loading_into_the_wrong_pool_is_refused(fitted, tmp_path):
    fitted("random").save(tmp_path / "r")
    with pytest.raises(ConfigError, match="trained for models small, medium, large"):
        load_router(tmp_path / "r", expect_models=("a", "b"))


def test_corrupted_weights_are_a_clear_error(fitted, tmp_path):
    fitted("random").save(tmp_path / "r")
    (tmp_path / "r" / "weights.safetensors").write_bytes(b"\x00garbage")
    with pytest.raises(ConfigError, match="corrupted"):
        load_router(tmp_path / "r")


def test_weights_changed_on_disk_or_from_another_save_are_refused(fitted, tmp_path):
    # A flipped byte still parses as safetensors; a crash between the weights' and the
    # config's writes leaves one file from another save. The config's SHA-256 catches both.
    fitted("random").save(tmp_path / "r")
    weights = tmp_path / "r" / "weights.safetensors"
    flipped = bytearray(weights.read_bytes())
    flipped[-1] ^= 0xFF
    weights.write_bytes(bytes(flipped))
    with pytest.raises(ConfigError, match="does not match the SHA-256"):
        load_router(tmp_path / "r")
    fitted("knn").save(tmp_path / "knn")
    weights.write_bytes((tmp_path / "knn" / "weights.safetensors").read_bytes())
    with pytest.raises(ConfigError, match="corrupted"):
        load_router(tmp_path / "r")


def test_a_saved_router_decides_identically_in_a_fresh_process(fitted, split, tmp_path):
    router = fitted("random")
    router.save(tmp_path / "r")
    queries = split.test.queries[:20]
    code = (
        "import json, sys; from trouter.routers.registry import load_router; "
        f"r = load_router({str(tmp_path / 'r')!r}); "
        "print(json.dumps([d.model for d in r.route(json.load(sys.stdin), 'balanced')]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        input=json.dumps(queries),
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(out.stdout) == [d.model for d in router.route(queries, "balanced")]


def test_a_numpy_number_is_a_lambda_and_a_flag_is_no_trade_off(fitted):
    router = fitted("random")
    assert router.route(["hello"], np.int64(3))[0].lam == 3.0  # was an AttributeError
    with pytest.raises(ConfigError, match="must be a number"):
        router.route(["hello"], True)  # was taken as lambda = 1
