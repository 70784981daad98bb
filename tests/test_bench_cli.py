"""`trouter bench` end to end on a small dataset file, and its one-line errors on bad input."""

from __future__ import annotations

import json

import pytest

from factories import toy_dataset
from trouter.cli import run
from trouter.routers.registry import router_names

CONTRACT_KEYS = {
    "dataset",
    "protocol",
    "fold",
    "router",
    "aiq",
    "gap_recovered",
    "reward_quality",
    "reward_balanced",
    "reward_cost",
    "mean_score",
    "mean_cost",
}
# A learned router when one is registered, so the run fits something real.
ROUTERS = ["random", *[n for n in ("knn", "linear") if n in router_names()][:1]]


@pytest.fixture(scope="module")
def toy_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "toy.parquet"
    toy_dataset(n_per_task=25, seed=3).save(path)
    return path


def bench(*args: str) -> int:
    return run(["bench", "--encoder", "hashing:256", *args])


def test_bench_writes_report_json_markdown_and_plot(toy_file, tmp_path):
    out = tmp_path / "out"
    code = bench("--data", str(toy_file), "--routers", ",".join(ROUTERS), "--out", str(out))
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    rows = report["rows"]
    assert all(set(row) >= CONTRACT_KEYS for row in rows)
    assert [r["router"] for r in rows] == [*ROUTERS, "zero", "oracle"]
    assert {r["fold"] for r in rows} == {"test"}
    assert {r["protocol"] for r in rows} == {"in-domain"}
    by = {r["router"]: r for r in rows}
    assert by["zero"]["gap_recovered"] == 0.0 and by["oracle"]["gap_recovered"] == 1.0
    assert by["zero"]["aiq"] <= by["oracle"]["aiq"]
    for row in rows:
        assert by["zero"]["aiq"] - 1e-9 <= row["aiq"] <= by["oracle"]["aiq"] + 1e-9
    assert report["meta"]["encoder"] == "hashing:256" and report["meta"]["seed"] == 0
    markdown = (out / "report.md").read_text()
    assert "| oracle |" in markdown and "in-domain" in markdown
    assert "| gap | ± s.e. |" in markdown and "Paired bootstrap, 1000 resamples" in markdown
    assert all(by[name]["gap_se"] >= 0 for name in ROUTERS)
    assert (out / "cost_quality.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_resamples_0_skips_the_intervals(toy_file, tmp_path):
    out = tmp_path / "out"
    assert (
        bench("--data", str(toy_file), "--routers", "random", "--resamples", "0", "--out", str(out))
        == 0
    )
    rows = json.loads((out / "report.json").read_text())["rows"]
    assert all(row["gap_se"] is None for row in rows)
    assert "± s.e." not in (out / "report.md").read_text().split("Test set")[1]


def test_leave_task_out_has_one_fold_per_task_at_the_chosen_level(toy_file, tmp_path):
    out = tmp_path / "lto"
    code = bench(
        "--data",
        str(toy_file),
        "--routers",
        "random",
        "--protocol",
        "leave-task-out",
        "--task-level",
        "1",
        "--out",
        str(out),
    )
    assert code == 0
    rows = json.loads((out / "report.json").read_text())["rows"]
    # The toy tasks are math/arithmetic, math/proof, code/python, chat/smalltalk.
    assert sorted({r["fold"] for r in rows}) == ["chat", "code", "math"]
    assert len(rows) == 3 * 3  # random, zero, oracle per fold
    assert (out / "cost_quality.png").is_file()


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    return err


def test_unknown_dataset_name_is_a_one_line_error(tmp_path, capsys):
    assert bench("--data", "no_such_dataset", "--out", str(tmp_path)) == 2
    assert "unknown dataset 'no_such_dataset'" in _one_line_error(capsys)


def test_malformed_file_is_a_one_line_error(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("question,answer\nwhat?,yes\n")
    assert bench("--data", str(bad), "--out", str(tmp_path / "out")) == 2
    assert "column" in _one_line_error(capsys)


def test_empty_test_set_is_a_one_line_error(tmp_path, capsys):
    train_only = tmp_path / "train_only.parquet"
    ds = toy_dataset(n_per_task=5)
    frame = ds.frame.assign(split="train")
    type(ds)(frame, name="train_only", models=ds.models).save(train_only)
    assert bench("--data", str(train_only), "--routers", "random", "--out", str(tmp_path)) == 2
    assert "no test queries" in _one_line_error(capsys)


def test_unknown_router_is_a_one_line_error(toy_file, tmp_path, capsys):
    code = bench("--data", str(toy_file), "--routers", "random,telepathy", "--out", str(tmp_path))
    assert code == 2
    assert "unknown router 'telepathy'" in _one_line_error(capsys)
    assert not (tmp_path / "report.json").exists()


def test_the_oracle_router_is_a_one_line_error(toy_file, tmp_path, capsys):
    # Its row would share the name of the reference row every report has (it crashed the plot).
    code = bench("--data", str(toy_file), "--routers", "random,oracle", "--out", str(tmp_path))
    assert code == 2
    assert "in every report already; leave the 'oracle' router out" in _one_line_error(capsys)
    assert not (tmp_path / "report.json").exists()


def test_unknown_protocol_is_a_one_line_error(toy_file, tmp_path, capsys):
    assert bench("--data", str(toy_file), "--protocol", "cold", "--out", str(tmp_path)) == 2
    assert "unknown protocol 'cold'" in _one_line_error(capsys)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--out", "FILE"], "is a file; give a directory"),
        (["--resamples", "5"], "give 0 (none) or at least 100"),
        (["--routers", "single"], "router 'single' needs a model"),
    ],
)
def test_options_that_cannot_work_are_one_line_errors_before_any_fit(
    toy_file, tmp_path, capsys, args, message
):
    taken = tmp_path / "notes.txt"
    taken.write_text("keep me")
    args = [str(taken) if a == "FILE" else a for a in args]
    code = bench("--data", str(toy_file), "--routers", "random", "--out", str(tmp_path), *args)
    assert code == 2
    assert message in _one_line_error(capsys)
    assert taken.read_text() == "keep me" and not (tmp_path / "report.json").exists()


def test_the_terminal_table_keeps_every_digit_at_80_columns(toy_file, tmp_path, capsys):
    # Piped (and captured) output is 80 columns wide: numbers were cut to "0.77…".
    code = bench(
        "--data", str(toy_file), "--routers", "random,trouter-paper", "--out", str(tmp_path)
    )
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    out = capsys.readouterr().out
    assert "…" not in out
    for row in report["rows"]:
        assert f"{row['aiq']:.4f}" in out
    # and a router name as long as "trouter-paper" keeps one line ("trouter-pa" / "per")
    assert any(line.startswith("trouter-paper ") for line in out.splitlines()), out
