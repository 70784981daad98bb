"""The bundled dataset: shipped in the package, licensed, attributed, and equal to its loader."""

from importlib.resources import files

import numpy as np

from trouter.data.bundled import BUNDLED_FILE, load_bundled
from trouter.data.loaders import dataset_names, load_dataset
from trouter.data.sources import llmrouter

PACKAGE = files("trouter.data.bundled")


def test_bundled_data_loads_without_the_shared_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("TROUTER_DATA_ROOT", str(tmp_path))  # nothing there
    ds = load_dataset("bundled")
    assert ds.name == "llmrouter_9models"
    assert (ds.n_queries, ds.models, len(ds.task_names)) == (5989, llmrouter.MODELS, 14)
    split = ds.own_split()
    assert split is not None and (split.train.n_queries, split.test.n_queries) == (5608, 381)
    assert ds.pool is not None and ds.pool.names == llmrouter.MODELS
    assert ds.has_tokens and (ds.costs_raw > 0).all()
    assert ds.cost_note == llmrouter.COST_NOTE


def test_bundle_is_small_licensed_and_attributed():
    names = {p.name for p in PACKAGE.iterdir()}
    assert {BUNDLED_FILE, "LICENSE", "ATTRIBUTION.md"} <= names
    assert not any("routerbench" in n.lower() for n in names)  # unlicensed data is never bundled
    assert (PACKAGE / BUNDLED_FILE).stat().st_size < 3_000_000
    assert "MIT License" in (PACKAGE / "LICENSE").read_text(encoding="utf-8")
    attribution = (PACKAGE / "ATTRIBUTION.md").read_text(encoding="utf-8")
    assert "github.com/ulab-uiuc/LLMRouter" in attribution
    assert "4e7a796942ce26e9d5f2b93191c7c2585c99c2e3" in attribution


def test_bundled_equals_what_the_loader_builds(shared_data):
    bundled, fresh = load_bundled(), llmrouter.load_llmrouter_9models(shared_data)
    assert (bundled.name, bundled.models, bundled.pool) == (fresh.name, fresh.models, fresh.pool)
    assert bundled.query_ids == fresh.query_ids
    assert bundled.queries == fresh.queries
    assert bundled.tasks == fresh.tasks and bundled.splits == fresh.splits
    for view in ("scores_raw", "costs_raw", "tokens_in", "tokens_out"):
        np.testing.assert_array_equal(getattr(bundled, view), getattr(fresh, view), err_msg=view)
    assert bundled.cost_note == fresh.cost_note


def test_bundled_is_listed_among_dataset_names():
    assert "bundled" in dataset_names()


def test_trouter_data_show_summarises_the_bundled_data(capsys):
    from trouter.cli import run

    assert run(["data", "show", "bundled", "--task-level", "1"]) == 0
    out = capsys.readouterr().out
    assert "llmrouter_9models: 5989 queries x 9 models, 14 tasks" in out
    assert "gemma-2-9b-it" in out and "agentverse-mgsm" in out
    assert "cost: estimated" in out
