"""Behaviour of the learned baselines (knn, linear, mlp, mf) beyond the shared router contract."""

from __future__ import annotations

import numpy as np
import pytest

from factories import TOY_MODELS, toy_dataset
from trouter.encode import load_encoder
from trouter.errors import ConfigError
from trouter.routers.registry import make_router
from trouter.routers.selection import HOLDOUT_FRACTION
from trouter.tokens import estimate_tokens_many

ENCODER = "hashing:256"
LEARNED = ("knn", "linear", "mlp", "mf")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy():
    return toy_dataset(n_per_task=60, seed=3)


@pytest.fixture(scope="module")
def fitted(toy):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = make_router(name, encoder=ENCODER, seed=0).fit(toy)
        return cache[name]

    return get


# New queries in the factory's style: task vocabulary plus an unseen item number.
PROOF = "prove lemma induction rigorous theorem axiom item901?"
SMALLTALK = "hello favourite movie coffee weekend weather item902?"
ARITHMETIC = "add numbers sum digits total plus item903?"


@pytest.mark.parametrize("name", LEARNED)
def test_hard_tasks_go_to_the_large_model_and_easy_ones_to_the_small(name, fitted):
    # Truth in the factory: proof 0.1 / 0.4 / 0.9 (small / medium / large), smalltalk 0.95 /
    # 0.95 / 0.96, arithmetic 0.9 / 0.92 / 0.95; the large model costs ~300x the small one.
    router = fitted(name)
    queries = [PROOF, SMALLTALK, ARITHMETIC]

    def picks(tradeoff: str) -> list[str]:
        return [d.model for d in router.route(queries, tradeoff)]

    assert picks("quality")[0] == "large"
    assert picks("balanced")[0] != "small"
    assert picks("cost")[1:] == ["small", "small"]


@pytest.mark.parametrize("name", LEARNED)
def test_predicted_quality_follows_the_task(name, fitted):
    est = fitted(name).predict([PROOF, SMALLTALK])
    if name != "knn":  # a mean of 0/1 neighbours may be exactly 0 or 1; a sigmoid never is
        assert np.all((est.quality > 0) & (est.quality < 1))
    small, large = TOY_MODELS.index("small"), TOY_MODELS.index("large")
    assert est.quality[0, large] - est.quality[0, small] > 0.3  # proof: 0.9 vs 0.1 in truth
    assert abs(est.quality[1, large] - est.quality[1, small]) < 0.2  # smalltalk: 0.96 vs 0.95


def test_knn_with_k_1_reproduces_the_nearest_neighbours_scores(toy):
    split = toy.split(seed=0)
    router = make_router("knn", k=1, temperature=0.0, encoder=ENCODER).fit(split.train)
    encoder = load_encoder(ENCODER)
    sims = encoder.encode(split.test.queries) @ encoder.encode(split.train.queries).T
    nearest = sims.argmax(axis=1)
    est = router.predict(split.test.queries)
    np.testing.assert_array_equal(est.quality, np.asarray(split.train.scores)[nearest])


def test_knn_chooses_k_by_the_validation_error_of_each_candidate(toy):
    split = toy.split(seed=0)
    router = make_router("knn", encoder=ENCODER).fit(split.train, val=split.val)
    errors = router.selection_["errors"]
    assert router.selection_["chosen_on"] == "val"
    for k, t in [(10, 0.0), (40, 0.1)]:
        alone = make_router("knn", k=k, temperature=t, encoder=ENCODER).fit(split.train)
        quality = alone.predict(split.val.queries).quality
        brier = float(np.mean((quality - np.asarray(split.val.scores)) ** 2))
        assert errors[str((k, t))] == pytest.approx(brier, rel=1e-9)
    best = min(errors, key=errors.get)
    assert best == str((router.k_, router.temperature_))


@pytest.mark.parametrize("name", ["linear", "mlp", "mf"])
def test_without_a_validation_set_choices_are_made_on_a_holdout_of_train(name, toy):
    split = toy.split(seed=0)
    router = make_router(name, encoder=ENCODER).fit(split.train)
    chosen = router.selection_
    assert chosen["source"] == "holdout"
    assert chosen["n_train"] + chosen["n_val"] == split.train.n_queries
    assert chosen["n_val"] == pytest.approx(HOLDOUT_FRACTION * split.train.n_queries, abs=4)


@pytest.mark.parametrize("name", ["linear", "mlp", "mf"])
def test_a_given_validation_set_is_used_for_choices_and_not_trained_on(name, toy):
    split = toy.split(seed=0)
    a = make_router(name, encoder=ENCODER).fit(split.train, val=split.val)
    assert a.selection_["source"] == "val"
    assert a.selection_["n_train"] == split.train.n_queries
    assert a.selection_["n_val"] == split.val.n_queries


def test_linear_chooses_the_penalty_with_the_lowest_validation_error(toy):
    split = toy.split(seed=0)
    router = make_router("linear", encoder=ENCODER).fit(split.train, val=split.val)
    errors = router.selection_["alpha_errors"]
    assert router.alpha_ == float(min(errors, key=errors.get))
    fixed = make_router("linear", alpha=router.alpha_, encoder=ENCODER).fit(split.train)
    np.testing.assert_allclose(
        fixed.predict(split.test.queries).quality,
        router.predict(split.test.queries).quality,
        atol=2e-3,
    )


def test_cost_is_priced_from_predicted_tokens_when_the_data_has_them(fitted, toy):
    router = fitted("linear")
    assert router.selection_["cost_route"] == "tokens"
    est = router.predict(toy.queries)
    assert est.tokens_out is not None
    # Output lengths in the factory: about 60 / 100 / 150 tokens for small / medium / large.
    np.testing.assert_allclose(est.tokens_out.mean(axis=0), toy.tokens_out.mean(axis=0), rtol=0.1)
    tokens_in = estimate_tokens_many(toy.queries)[:, None] * router.cost_model_.input_ratio
    np.testing.assert_allclose(est.cost, toy.pool.cost(tokens_in, est.tokens_out), rtol=1e-12)
    np.testing.assert_allclose(est.cost.mean(axis=0), toy.costs.mean(axis=0), rtol=0.1)


def test_cost_is_predicted_in_dollars_without_token_counts():
    toy = toy_dataset(n_per_task=60, seed=3, with_tokens=False)
    router = make_router("knn", encoder=ENCODER).fit(toy)
    assert router.selection_["cost_route"] == "dollars"
    est = router.predict(toy.queries)
    assert est.tokens_out is None
    np.testing.assert_allclose(est.cost.mean(axis=0), toy.costs.mean(axis=0), rtol=0.15)


def test_a_much_longer_prompt_is_predicted_to_cost_more(fitted):
    router = fitted("knn")
    short = router.predict([SMALLTALK]).cost
    long = router.predict([" ".join([SMALLTALK] * 40)]).cost
    assert np.all(long > short)


def test_torch_training_leaves_the_global_random_state_alone(toy):
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    make_router("mlp", hidden=16, max_epochs=3, encoder=ENCODER).fit(toy)
    np.testing.assert_array_equal(torch.rand(3).numpy(), expected.numpy())


@pytest.mark.parametrize(
    ("name", "params", "message"),
    [
        ("knn", {"k": 0}, "k must be at least 1"),
        ("knn", {"temperature": -1.0}, "temperature must be >= 0"),
        ("linear", {"alpha": 0.0}, "alpha must be positive"),
        ("mlp", {"hidden": 0}, "hidden must be at least 1"),
        ("mf", {"dim": 0}, "dim must be at least 1"),
    ],
)
def test_bad_hyper_parameters_are_clear_errors(name, params, message, toy):
    with pytest.raises(ConfigError, match=message):
        make_router(name, encoder=ENCODER, **params).fit(toy)
