"""`trouter label` reruns and options: a rerun with other request options (max tokens,
temperature, system prompt) asks again instead of keeping answers to another request, and bad
options are one-line errors before any call."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trouter.cli import run
from trouter.label.testing import LabelAnswerer, arithmetic_items, write_pool
from trouter.label.testing import label_args as label_command
from trouter.synth.items import ItemsFile
from trouter.testing import FakeOpenAI

MODELS = ("cheap", "dear")


@pytest.fixture
def setup(tmp_path: Path):
    answer = LabelAnswerer({"judge": "Score: 8/10"})
    with FakeOpenAI(answer, models=(*MODELS, "judge")) as server:
        ItemsFile(tmp_path / "items.jsonl").append(arithmetic_items(5))
        write_pool(tmp_path / "pool.yaml", server.url, dict.fromkeys(MODELS, (1.0, 2.0)))
        yield server, tmp_path


def label_args(tmp: Path, *extra: str) -> list[str]:
    return label_command(tmp, *extra, skip_check=False)


@pytest.mark.parametrize(
    "changed",
    [["--max-tokens", "5"], ["--temperature", "0.7"], ["--system", "Answer in French."]],
)
def test_a_rerun_with_other_request_options_asks_again(setup, capsys, changed):
    server, tmp = setup
    assert run(label_args(tmp)) == 0
    before = len(server.completions)
    assert run(label_args(tmp, *changed)) == 0
    out = capsys.readouterr().out
    assert len(server.completions) - before == 5 * len(MODELS)
    assert "10 redone because the request changed" in out
    assert run(label_args(tmp, *changed)) == 0  # the same options again: all kept
    assert len(server.completions) - before == 5 * len(MODELS)


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err and len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--budget", "-1"], "--budget must be a positive number of dollars, got -1.0"),
        (["--budget", "0"], "--budget must be a positive number of dollars, got 0.0"),
        (["--max-tokens", "0"], "--max-tokens must be at least 1, got 0"),
        (["--temperature", "-3"], "--temperature must be between 0 and 2, got -3.0"),
        (["--code-timeout", "0"], "--code-timeout must be a positive number of seconds"),
    ],
)
def test_bad_label_options_are_one_line_errors_before_any_call(setup, capsys, extra, message):
    server, tmp = setup
    assert run(label_args(tmp, *extra)) == 2
    assert message in one_line_error(capsys.readouterr().err)
    assert server.completions == []


@pytest.mark.parametrize(
    "command",
    [
        ["synthesize", "profile.yaml", "--taxonomy", "t.yaml", "--out", "items.jsonl"],
        ["taxonomy", "build", "profile.yaml", "--out", "t.yaml"],
        ["coldstart", "profile.yaml", "--out", "run"],
    ],
)
def test_a_budget_that_is_not_positive_is_the_same_error_everywhere(tmp_path, capsys, command):
    for budget in ("-1", "0"):
        assert run([*command, "--budget", budget]) == 2
        err = capsys.readouterr().err
        assert "--budget must be a positive number of dollars" in one_line_error(err), err


def test_annotate_refuses_an_output_it_cannot_write_before_calling_anyone(setup, capsys):
    from trouter.taxonomy import Taxonomy, TaxonomyNode

    server, tmp = setup
    Taxonomy(levels=["task"], roots=[TaxonomyNode(name="math"), TaxonomyNode(name="code")]).save(
        tmp / "t.yaml"
    )
    (tmp / "q.csv").write_text("query\nWhat is 2 + 2?\n")
    args = ["annotate", str(tmp / "q.csv"), "--taxonomy", str(tmp / "t.yaml"), "--model"]
    args += ["cheap", "--pool", str(tmp / "pool.yaml"), "--skip-check"]
    assert run([*args, "--out", str(tmp / "a.txt")]) == 2
    assert "write a .csv, .jsonl or .parquet file" in one_line_error(capsys.readouterr().err)
    assert run([*args, "--out", str(tmp / "a.csv"), "--budget", "-1"]) == 2
    assert "--budget must be a positive" in one_line_error(capsys.readouterr().err)
    assert server.completions == []


def test_synthesize_refuses_an_items_file_of_another_kind(tmp_path, capsys):
    args = ["synthesize", "profile.yaml", "--taxonomy", "t.yaml", "--out", "items.csv"]
    assert run(args) == 2
    assert "write items to a .jsonl (append-only) or .parquet file" in one_line_error(
        capsys.readouterr().err
    )


def test_raw_observations_are_repriced_with_the_pool_like_the_dataset(setup):
    import json

    import pandas as pd

    _, tmp = setup
    assert run(label_args(tmp)) == 0
    pool = yaml.safe_load((tmp / "pool.yaml").read_text())
    for model in pool["models"]:
        model["input_price"], model["output_price"] = 3.0, 7.0
    (tmp / "pool.yaml").write_text(yaml.safe_dump(pool))
    assert run(label_args(tmp)) == 0
    rows = [
        json.loads(x) for x in (tmp / "out" / "labels.observations.jsonl").read_text().splitlines()
    ]
    frame = pd.read_parquet(tmp / "out" / "labels.parquet")
    for row in rows:
        expected = (row["tokens_in"] * 3.0 + row["tokens_out"] * 7.0) / 1e6
        assert row["cost"] == pytest.approx(expected)
        same = frame[(frame.query_id == row["item_id"]) & (frame.model == row["model"])]
        assert same.cost.iloc[0] == pytest.approx(expected)
