"""Where named datasets are looked for: --data-root, TROUTER_DATA_ROOT, then the usual places."""

from __future__ import annotations

from pathlib import Path

import pytest

from trouter.cli import run
from trouter.data.loaders import find_data_root, load_dataset
from trouter.errors import DataError
from trouter.paths import data_root_candidates

REPO = Path(__file__).resolve().parents[1]


def test_datasets_takes_a_data_root(tmp_path, capsys):
    (tmp_path / "routerbench_subset").mkdir()
    assert run(["datasets", "--data-root", str(tmp_path)]) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert lines["routerbench_subset"].endswith(str(tmp_path / "routerbench_subset"))
    assert lines["llmrouter_9models"].endswith(f"not found in {tmp_path}")
    assert lines["bundled"].endswith("inside the package")


def test_a_missing_named_dataset_lists_the_places_searched(tmp_path, monkeypatch):
    monkeypatch.setenv("TROUTER_DATA_ROOT", str(tmp_path / "env"))
    with pytest.raises(DataError, match=f"searched {tmp_path / 'env' / 'routellm_evals'}\\)"):
        load_dataset("routellm_evals")
    with pytest.raises(DataError, match="not found \\(searched /nowhere/routellm_evals\\)"):
        load_dataset("routellm_evals", "/nowhere")


def test_without_the_variable_the_cwd_then_the_source_checkout_are_searched(tmp_path, monkeypatch):
    monkeypatch.delenv("TROUTER_DATA_ROOT", raising=False)
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    candidates = data_root_candidates()
    assert candidates[:2] == [tmp_path / "a" / "shared" / "data", work / "shared" / "data"]
    assert REPO.parent / "shared" / "data" in candidates  # tests run from a source checkout
    (tmp_path / "a" / "shared" / "data" / "llmrouter_9models").mkdir(parents=True)
    assert find_data_root("llmrouter_9models") == tmp_path / "a" / "shared" / "data"
