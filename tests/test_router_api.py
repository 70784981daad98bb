"""The Python API's edges: what a user passing the wrong thing, or an odd directory, gets back."""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
import torch

from factories import toy_dataset
from trouter.data.dataset import RoutingDataset
from trouter.errors import ConfigError, DataError
from trouter.routers.registry import load_router, make_router, router_names
from trouter.routers.trouter import TRouter

ENCODER = "hashing:256"
torch.set_num_threads(1)


@pytest.fixture(scope="module")
def split():
    return toy_dataset(n_per_task=20, seed=1).split(seed=0)


def build(name: str, **params: object):
    extra = {"model": "medium"} if name == "single" else {}
    return make_router(name, encoder=ENCODER, seed=0, **extra, **params)


def small_trouter(**params: object) -> TRouter:
    return TRouter(**{"encoder": ENCODER, "ensemble": 2, "max_epochs": 5, **params})


@pytest.fixture(scope="module")
def saved(split, tmp_path_factory) -> dict[str, Path]:
    """A saved directory per registered router and per TRouter that differs in one way."""
    root = tmp_path_factory.mktemp("saved")
    out = {}
    for name in router_names():
        router = build(name, **({"max_epochs": 5} if name.startswith("trouter") else {}))
        router.fit(split.test if router.evaluation_only else split.train, val=split.val)
        out[name] = router.save(root / name)
    variants = {
        "base": (small_trouter(), split.train),
        "other pool": (small_trouter(), split.train.select_models(["small", "large"])),
        "other taxonomy": (small_trouter(latent_types=3), split.train),
        "other size": (small_trouter(hidden=32), split.train),
        "other ensemble": (small_trouter(ensemble=1), split.train),
        "other encoder": (small_trouter(encoder="hashing:128"), split.train),
    }
    for name, (router, train) in variants.items():
        out[name] = router.fit(train).save(root / name)
    return out


def old_layout(own: Path, weights_from: Path, dest: Path) -> Path:
    """`own` as saved before config.json held the weights' SHA-256, with another's weights."""
    shutil.copytree(own, dest)
    config = json.loads((dest / "config.json").read_text())
    del config["weights_sha256"]
    (dest / "config.json").write_text(json.dumps(config))
    shutil.copy(weights_from / "weights.safetensors", dest / "weights.safetensors")
    return dest


@pytest.mark.parametrize("name", router_names())
def test_an_old_router_directory_with_another_kinds_weights_is_refused_at_load(
    name, saved, tmp_path
):
    donor = "knn" if name == "trouter" else "trouter"
    directory = old_layout(saved[name], saved[donor], tmp_path / "mixed")
    with pytest.raises(ConfigError, match=rf"^{re.escape(str(directory))}: .*retrain") as err:
        load_router(directory)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    "donor", ["other pool", "other taxonomy", "other size", "other ensemble", "other encoder"]
)
def test_an_old_trouter_directory_with_another_trouters_weights_is_refused_at_load(
    donor, saved, tmp_path
):
    directory = old_layout(saved["base"], saved[donor], tmp_path / "mixed")
    with pytest.raises(ConfigError, match=r"does not fit the router config\.json describes"):
        load_router(directory)


@pytest.mark.parametrize("name", [*router_names(), "base", "other taxonomy"])
def test_an_old_router_directory_with_its_own_weights_still_loads_and_routes(
    name, saved, split, tmp_path
):
    directory = old_layout(saved[name], saved[name], tmp_path / "old")
    queries = (split.test if name == "oracle" else split.val).queries
    expected = [d.chain for d in load_router(saved[name]).route(queries, "balanced")]
    assert [d.chain for d in load_router(directory).route(queries, "balanced")] == expected


def without_costs(with_tokens: bool):
    """The toy data as a user's own file may have it: scores (and token counts), no $ costs."""
    toy = toy_dataset(n_per_task=20, seed=1)
    tokens = {"tokens_in": toy.tokens_in, "tokens_out": toy.tokens_out} if with_tokens else {}
    return RoutingDataset.from_matrices(
        query_ids=toy.query_ids,
        queries=toy.queries,
        models=toy.models,
        scores=toy.scores,
        tasks=toy.tasks,
        **tokens,
    )


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("with_tokens", [False, True], ids=["no tokens", "tokens"])
@pytest.mark.parametrize("name", router_names())
def test_fitting_on_data_without_costs_warns_nothing(name, with_tokens):
    # It warned "All-NaN slice encountered": a median of the positive costs of a column with none.
    parts = without_costs(with_tokens).split(seed=0)
    router = build(name, **({"max_epochs": 5} if name.startswith("trouter") else {}))
    router.fit(parts.test if router.evaluation_only else parts.train, val=parts.val)
    decisions = router.route(parts.test.queries, "balanced")
    assert all(math.isfinite(d.cost) and math.isfinite(d.quality) for d in decisions)


@pytest.mark.parametrize("name", router_names())
@pytest.mark.parametrize(
    "given",
    [[("what is 2 + 2?", "small", 1.0)], {"queries": ["hi"]}, "data.csv", None],
    ids=["list", "dict", "path text", "None"],
)
def test_fit_given_anything_but_a_routing_dataset_says_how_to_make_one(name, given, split):
    # It raised AttributeError ('list' object has no attribute 'n_queries') deep inside fit.
    with pytest.raises(DataError, match=r"^fit takes a RoutingDataset as train, not ") as err:
        build(name).fit(given)
    assert "RoutingDataset.from_matrices" in str(err.value)
    assert "load_dataset" in str(err.value)
    with pytest.raises(DataError, match=r"^fit takes a RoutingDataset as val, not list"):
        build(name).fit(split.train, val=[split.val])


def test_a_trouter_refitted_with_another_cost_model_saves_only_its_new_state(split, tmp_path):
    # The first fit's cost state (the log route's target transform) was kept by the second
    # fit, saved with it, and refused on load as an array the config does not describe.
    router = small_trouter(cost_model="log").fit(split.train, val=split.val)
    router.cost_model = "direct"
    router.fit(split.train, val=split.val)
    loaded = load_router(router.save(tmp_path / "r"))
    queries = split.test.queries
    assert [d.chain for d in loaded.route(queries)] == [d.chain for d in router.route(queries)]
