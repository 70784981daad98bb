"""Encoders from their specs; `st:PATH` brings any local sentence-transformers model."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from factories import tiny_static_encoder, toy_dataset
from trouter.encode import MiniLMEncoder, _minilm_path, load_encoder
from trouter.errors import ConfigError
from trouter.routers.registry import load_router, make_router

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TEXTS = ["what is two plus two?", "write a haiku about the sea", ""]


def test_a_local_model_directory_embeds_like_the_packaged_minilm():
    own = load_encoder(f"st:{_minilm_path()}")
    assert own.dim == 384
    assert np.array_equal(own.encode(TEXTS), MiniLMEncoder().encode(TEXTS))
    assert own.encode([]).shape == (0, 384)
    assert load_encoder(own.spec).id == own.id


def test_the_cache_id_follows_the_model_directory_and_its_config(tmp_path: Path):
    tuned = tmp_path / "tuned"  # the id reads the config files only: no weights needed here
    tuned.mkdir()
    for name in ("config.json", "modules.json", "sentence_bert_config.json"):
        shutil.copy(Path(_minilm_path()) / name, tuned / name)
    same = load_encoder(f"st:{tuned}").id
    assert same != load_encoder(f"st:{_minilm_path()}").id
    config = tuned / "config.json"
    config.write_text(config.read_text().replace("{", '{"note": "fine-tuned", ', 1))
    assert load_encoder(f"st:{tuned}").id != same


def test_a_router_saved_with_a_local_encoder_loads_with_it(tmp_path: Path):
    spec = f"st:{_minilm_path()}"
    data = toy_dataset(n_per_task=10)
    router = make_router("linear", encoder=spec, seed=0).fit(data)
    again = load_router(router.save(tmp_path / "router"))
    assert again.encoder_.spec == spec
    assert again.route(data.queries) == router.route(data.queries)


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("st:/no/such/model", "no config.json"),
        ("st:", "choose one of minilm, static, hashing, st:PATH"),
        ("bert", "choose one of"),
        ("hashing:big", "must be an integer"),
    ],
)
def test_a_bad_spec_is_a_clear_error(spec: str, says: str):
    with pytest.raises(ConfigError, match=says):
        load_encoder(spec)


@pytest.fixture(scope="module")
def tiny_static(tmp_path_factory):
    return tiny_static_encoder(tmp_path_factory.mktemp("static"))


def test_the_static_encoder_is_model2vecs_embedding_summed_without_float16_rounding(tiny_static):
    from model2vec import StaticModel

    texts = ["What is the capital of France?", "def add(a, b):\n    return a + b", "", "x" * 9000]
    ours = tiny_static.encode(texts)
    theirs = StaticModel.from_pretrained(str(tiny_static.directory)).encode(texts)
    assert np.abs(ours[:2] - theirs[:2]).max() < 5e-3  # theirs is averaged in float16
    assert np.abs(ours[3] - theirs[3]).max() < 5e-3  # both cut the long text the same way
    assert not ours[2].any()
    sums, counts = tiny_static.token_sums(texts[:2])
    np.testing.assert_allclose(
        ours[:2], sums / np.linalg.norm(sums, axis=1, keepdims=True), atol=1e-6
    )
    assert list(counts) == [len(tiny_static._load().tokenize([t])[0]) for t in texts[:2]]


def test_a_text_cut_at_a_line_end_embeds_as_the_sum_of_its_parts(tiny_static):
    head, tail = "Answer like the examples.\nQ: 2+2?\nA: 4\n", "What is 3+3, exactly?"
    sums, _ = tiny_static.token_sums([head, tail, head + tail])
    np.testing.assert_allclose(sums[0] + sums[1], sums[2], atol=1e-4)
    assert tiny_static.reads_whole(100, 20) and not tiny_static.reads_whole(100, 600)


def test_a_router_saved_with_the_static_encoders_earlier_version_loads_with_a_warning(
    tiny_static, tmp_path
):
    import json

    assert tiny_static.spec == "static:16" and load_encoder("static:16").id == tiny_static.id
    router = make_router("trouter", encoder=tiny_static, ensemble=1).fit(toy_dataset(seed=1))
    router.save(tmp_path / "r")
    config_file = tmp_path / "r" / "config.json"
    config = json.loads(config_file.read_text())
    assert config["encoder"]["spec"] == "static:16"
    config["encoder"]["id"] = "static-minilm-16"  # saved by the float16-mean version
    config_file.write_text(json.dumps(config))
    with pytest.warns(UserWarning, match="earlier version of static-minilm-16-f32"):
        loaded = load_router(tmp_path / "r")
    assert loaded.models_ == router.models_
    config["encoder"]["id"] = "static-minilm-64"  # another encoder altogether
    config_file.write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="retrain it with `trouter train`"):
        load_router(tmp_path / "r")
