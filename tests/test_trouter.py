"""TRouter's behaviour: what it learns about task types, its prior, its taxonomy, its cost routes.

The shared contract (fit / predict / route / save / load, determinism) is in
test_router_contract.py; these tests pin what is specific to the task-type-aware router.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from factories import toy_dataset, tricky_task
from trouter.errors import ConfigError
from trouter.routers.registry import load_router, make_router
from trouter.routers.trouter import PaperTRouter, TRouter
from trouter.routers.trouter.structure import TaskStructure
from trouter.routers.trouter.views import tail_text
from trouter.taxonomy import Taxonomy, TaxonomyNode

ENCODER = "hashing:256"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def split():
    return toy_dataset(n_per_task=40, seed=2).split(seed=0)


@pytest.fixture(scope="module")
def fitted(split):
    # The paper's one-hot prior: on these cleanly separated toy tasks it recovers every task
    # type's qualities; the default smoothed prior shrinks them toward the other types (below).
    return TRouter(encoder=ENCODER, ensemble=2, prior_smoothing=0.0).fit(split.train, val=split.val)


def test_task_types_are_recognised_and_explain_each_decision(fitted, split):
    est = fitted.predict(split.test.queries)
    assert sorted(est.task_names) == sorted(split.train.task_names)
    np.testing.assert_allclose(est.task_probs.sum(axis=1), 1.0, atol=1e-9)
    top = [est.task_names[i] for i in est.task_probs.argmax(axis=1)]
    assert np.mean([t == truth for t, truth in zip(top, split.test.tasks, strict=True)]) >= 0.9
    decision = fitted.route(split.test.queries[:1], "balanced")[0]
    probs = [t.probability for t in decision.task_types]
    assert len(decision.task_types) == 3 and probs == sorted(probs, reverse=True)


def test_routes_hard_tasks_up_and_easy_tasks_down(fitted, split):
    decisions = fitted.route(split.test.queries, "balanced")
    chosen = pd.Series([d.model for d in decisions]).groupby(np.asarray(split.test.tasks))
    share = chosen.agg(lambda s: (s == "small").mean())
    # The small model is as good as the large one on smalltalk and arithmetic, and poor at proofs.
    assert share["chat/smalltalk"] >= 0.8 and share["math/arithmetic"] >= 0.8
    assert share["math/proof"] <= 0.2


def test_a_smoothed_prior_shrinks_task_estimates_toward_the_other_types(fitted, split):
    smoothed = TRouter(encoder=ENCODER, ensemble=2, prior_smoothing=0.2).fit(
        split.train, val=split.val
    )
    tasks = np.asarray(split.test.tasks)
    sharp, blurred = fitted.predict(split.test.queries), smoothed.predict(split.test.queries)

    # q(t|x) keeps some mass on the other task types, so the spread of one model's quality
    # across task types narrows (here: the small model, 0.04 on proofs to 0.96 on arithmetic).
    def spread(est):
        means = [est.quality[tasks == t, 0].mean() for t in sorted(set(tasks))]
        return max(means) - min(means)

    assert spread(blurred) < spread(sharp)
    assert smoothed.predict(split.test.queries).task_probs.max(axis=1).mean() < 0.95


def test_paper_variant_is_one_configuration_of_the_same_router():
    paper = make_router("trouter-paper", encoder=ENCODER)
    assert isinstance(paper, PaperTRouter) and isinstance(paper, TRouter)
    params = paper.get_params()
    assert params["prior_smoothing"] == 0.0 and params["residual"] is False
    assert params["hierarchical"] is False and params["cost_model"] == "direct"
    assert type(paper)(**params).get_params() == params
    # Any of the paper settings can still be overridden, e.g. for an ablation.
    assert make_router("trouter-paper", residual=True).get_params()["residual"] is True


# ---------------------------------------------------------------------- the prior
def _tree() -> Taxonomy:
    return Taxonomy.from_task_names(
        ["math/algebra", "math/geometry", "math/calculus", "code/python", "chat"]
    )


def test_the_paper_prior_is_one_hot_on_the_query_leaf():
    structure = TaskStructure.from_taxonomy(_tree())
    prior, labelled = structure.prior(["math/geometry", "", "poetry"], smoothing=0.0)
    assert prior[0].tolist() == [0.0, 1.0, 0.0, 0.0, 0.0]
    assert labelled.tolist() == [1.0, 0.0, 0.0]  # unlabelled and unknown tasks get no prior
    assert prior[1:].sum() == 0.0


def test_a_smoothed_prior_shares_mass_with_siblings_before_other_branches():
    structure = TaskStructure.from_taxonomy(_tree())
    (row,), _ = structure.prior(["math/geometry"], smoothing=0.3)
    own, siblings, others = row[1], row[[0, 2]], row[[3, 4]]
    assert row.sum() == pytest.approx(1.0)
    assert own == pytest.approx(0.7)
    assert siblings == pytest.approx([0.105, 0.105])  # 0.3 * 0.7, split between two
    assert others == pytest.approx([0.045, 0.045])  # the remaining 0.09
    assert own > siblings.min() > others.max()


def test_a_label_at_an_inner_node_or_below_a_leaf_maps_onto_the_tree():
    structure = TaskStructure.from_taxonomy(_tree())
    prior, labelled = structure.prior(["math", "code/python/hard"], smoothing=0.0)
    assert prior[0].tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 0.0, 0.0])
    assert prior[1].tolist() == [0.0, 0.0, 0.0, 1.0, 0.0]
    assert labelled.tolist() == [1.0, 1.0]


def test_each_leaf_decoder_sums_the_offsets_along_its_path():
    structure = TaskStructure.from_taxonomy(_tree())
    geometry = structure.path_matrix[structure.leaves.index("math/geometry")]
    assert [n for n, on in zip(structure.nodes, geometry, strict=True) if on] == [
        "math",
        "math/geometry",
    ]


# ---------------------------------------------------------------------- taxonomy sources
def _taxonomy_with_definitions() -> Taxonomy:
    def leaf(name: str, definition: str) -> TaxonomyNode:
        return TaxonomyNode(name=name, definition=definition, example="")

    return Taxonomy(
        levels=["domain", "task"],
        roots=[
            TaxonomyNode(
                name="math",
                definition="Mathematics questions",
                children=[
                    leaf("arithmetic", "add numbers and sums"),
                    leaf("proof", "prove a theorem"),
                ],
            ),
            TaxonomyNode(name="code", children=[leaf("python", "write a python function")]),
            TaxonomyNode(name="chat", children=[leaf("smalltalk", "hello and the weather")]),
        ],
    )


def test_an_explicit_taxonomy_travels_with_the_saved_router(split, tmp_path):
    taxonomy = _taxonomy_with_definitions()
    router = make_router("trouter", taxonomy=taxonomy, encoder=ENCODER).fit(split.train)
    router.save(tmp_path / "r")
    loaded = load_router(tmp_path / "r")
    assert loaded.task_structure().taxonomy == taxonomy
    assert Taxonomy.from_dict(loaded.get_params()["taxonomy"]) == taxonomy
    a, b = router.predict(split.test.queries), loaded.predict(split.test.queries)
    np.testing.assert_array_equal(a.task_probs, b.task_probs)
    assert a.task_names == tuple(taxonomy.leaf_paths())


def test_task_labels_outside_the_taxonomy_are_a_clear_error(split):
    other = Taxonomy.from_task_names(["legal/contracts", "medical/diagnosis"])
    with pytest.raises(ConfigError, match="none of the data's task labels"):
        TRouter(taxonomy=other, encoder=ENCODER).fit(split.train)


def test_without_task_labels_latent_types_are_learned_and_named(split):
    unlabelled = split.train.with_tasks([""] * split.train.n_queries)
    router = TRouter(encoder=ENCODER, latent_types=4).fit(unlabelled)
    est = router.predict(split.test.queries)
    assert router.latent_ and len(est.task_names) == 4
    assert all(name.startswith("~") for name in est.task_names)
    # The clusters follow the tasks' vocabularies, so each test task lands mostly in one type.
    top = est.task_probs.argmax(axis=1)
    tasks = np.asarray(split.test.tasks)
    purity = [np.bincount(top[tasks == t]).max() / (tasks == t).sum() for t in set(tasks)]
    assert np.mean(purity) >= 0.7


# ---------------------------------------------------------------------- residual and cost
@pytest.mark.parametrize("residual_hidden", [0, 64], ids=["linear", "mlp"])
def test_the_residual_learns_what_the_task_type_cannot_tell(residual_hidden):
    data = tricky_task()
    train, test = data.subset(data.query_ids[:160]), data.subset(data.query_ids[160:])
    tricky = np.asarray(["tricky" in q for q in test.queries])
    router = TRouter(
        encoder=ENCODER, residual=True, residual_hidden=residual_hidden, ensemble=1
    ).fit(train)
    check = router.training_["residual_check"]  # kept because it routes better on validation
    assert check["kept"] and check["val_aiq_with"] > check["val_aiq_without"]
    if residual_hidden:
        assert router.training_["residual_epochs"] > 0
    else:  # the linear residual's penalty was chosen on validation: it beat the mixture alone
        assert check["alpha"] is not None
        assert check["alpha_errors"][str(check["alpha"])] < check["alpha_errors"]["none"]
    small = router.predict(test.queries).quality[:, 0]  # the small model, on unseen queries
    assert small[tricky].mean() < 0.3 < 0.7 < small[~tricky].mean()
    without = TRouter(encoder=ENCODER, residual=False, ensemble=1).fit(train)
    flat = without.predict(test.queries).quality[:, 0]
    assert abs(flat[tricky].mean() - flat[~tricky].mean()) < 0.1


def test_cost_routes_follow_the_data(split):
    with_tokens = TRouter(encoder=ENCODER, cost_model="tokens").fit(split.train)
    assert with_tokens.cost_route_ == "tokens"
    est = with_tokens.predict(split.test.queries)
    assert est.tokens_out is not None and est.tokens_out.shape == est.cost.shape
    # Priced with the pool: the large model's predicted cost is far above the small one's.
    assert np.all(est.cost[:, 2] > 5 * est.cost[:, 0])

    no_tokens = toy_dataset(n_per_task=40, seed=2, with_tokens=False).split(seed=0).train
    fallback = TRouter(encoder=ENCODER, cost_model="tokens").fit(no_tokens)
    assert fallback.cost_route_ == "log"
    true_mean = no_tokens.costs.mean(axis=0)
    predicted = fallback.predict(no_tokens.queries).cost.mean(axis=0)
    np.testing.assert_allclose(predicted, true_mean, rtol=0.25)


def test_long_prompts_get_a_second_embedding_of_their_end():
    long_query = "context " * 200 + "so what is the final question"
    assert tail_text(long_query, 40).endswith("final question")
    assert len(tail_text(long_query, 40)) <= 40
    router = TRouter(encoder=ENCODER, text_view="head+tail")
    x = router._embed(["short one", long_query])
    assert x.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(x[0, :256], x[0, 256:])  # short: both halves agree
    assert not np.allclose(x[1, :256], x[1, 256:])


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"cost_model": "magic"}, "cost_model must be one of"),
        ({"prior_smoothing": 1.0}, "prior_smoothing must be in"),
        ({"hidden": 0}, "hidden must be at least 1"),
        ({"dropout": 1.5}, "dropout must be in"),
        ({"residual_hidden": -1}, "residual_hidden must be 0"),
    ],
)
def test_bad_hyper_parameters_are_clear_errors(split, params, message):
    with pytest.raises(ConfigError, match=message):
        TRouter(encoder=ENCODER, **params).fit(split.train)
