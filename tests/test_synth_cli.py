"""`trouter synthesize` / `trouter taxonomy build` from the command line: preflight before any
spending, dry runs, the budget stop and the final summary."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from trouter.cli import run
from trouter.synth.items import read_items
from trouter.synth.testing import FakeGenerator, profile_against
from trouter.taxonomy import Taxonomy
from trouter.testing import FakeOpenAI

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "support-profile.yaml"
SMALL = {
    "levels": [
        {"name": "domain", "min_nodes": 2, "max_nodes": 2},
        {"name": "difficulty", "nodes": ["easy", "hard"]},
    ],
    "items_per_leaf": 4,
    "synthesis": {"batch_size": 2, "encoder": "hashing:256"},
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server():
    with FakeOpenAI(FakeGenerator(), models=("gpt-4o", "gpt-4o-mini", "llama-3.1-8b")) as s:
        yield s


@pytest.fixture
def taxonomy_file(tmp_path) -> Path:
    path = tmp_path / "taxonomy.yaml"
    Taxonomy.from_task_names(
        ["Billing/easy", "Billing/hard", "Access/easy", "Access/hard"],
        levels=["domain", "difficulty"],
    ).save(path)
    return path


def synth(profile: Path, taxonomy: Path, out: Path, *extra: str) -> int:
    return run(["synthesize", str(profile), "--taxonomy", str(taxonomy), "--out", str(out), *extra])


def test_a_missing_key_is_named_before_anything_is_spent(
    server, tmp_path, taxonomy_file, capsys, monkeypatch
):
    monkeypatch.delenv("ACME_TEST_KEY", raising=False)
    profile = profile_against(EXAMPLE, server.url, tmp_path, api_key_env="ACME_TEST_KEY", **SMALL)
    out = tmp_path / "items.jsonl"
    assert synth(profile, taxonomy_file, out) == 2
    err = capsys.readouterr().err
    assert "'gpt-4o'" in err and "ACME_TEST_KEY" in err and "nothing was spent" in err
    assert "Traceback" not in err
    assert server.requests == [] and not out.exists()


def test_an_unreachable_endpoint_is_named_before_anything_is_spent(tmp_path, taxonomy_file, capsys):
    dead = f"http://127.0.0.1:{free_port()}/v1"
    profile = profile_against(EXAMPLE, dead, tmp_path, **SMALL)
    assert run(["taxonomy", "build", str(profile), "--out", str(tmp_path / "t.yaml")]) == 2
    err = capsys.readouterr().err
    assert "'gpt-4o'" in err and dead in err and "cannot reach" in err
    assert not (tmp_path / "t.yaml").exists()


def test_check_only_checks(server, tmp_path, taxonomy_file, capsys):
    profile = profile_against(EXAMPLE, server.url, tmp_path, **SMALL)
    assert synth(profile, taxonomy_file, tmp_path / "items.jsonl", "--check") == 0
    assert "ok" in capsys.readouterr().out
    assert server.completions == [] and not (tmp_path / "items.jsonl").exists()


def test_dry_run_prints_the_plan_and_calls_nothing(server, tmp_path, taxonomy_file, capsys):
    profile = profile_against(EXAMPLE, server.url, tmp_path, **SMALL)
    assert synth(profile, taxonomy_file, tmp_path / "items.jsonl", "--dry-run") == 0
    printed = capsys.readouterr().out
    assert "QA" in printed and "answerability" in printed
    assert "4 leaves x 4 items = 16 items" in printed
    assert server.requests == []


def test_a_run_prints_its_summary_and_writes_parquet(server, tmp_path, taxonomy_file, capsys):
    profile = profile_against(EXAMPLE, server.url, tmp_path, **SMALL)
    out = tmp_path / "items.parquet"
    assert synth(profile, taxonomy_file, out) == 0
    printed = capsys.readouterr().out
    for label in ("LLM calls", "cached responses reused: 0", "tokens in / out", "spent"):
        assert label in printed
    assert "items: 16 in" in printed
    assert len(read_items(out)) == 16
    assert synth(profile, taxonomy_file, out) == 0  # nothing left to do, nothing paid
    assert "items: 16 in" in capsys.readouterr().out


def test_the_budget_cap_stops_the_run_with_a_clear_error_and_keeps_the_work(
    server, tmp_path, taxonomy_file, capsys
):
    profile = profile_against(
        EXAMPLE,
        server.url,
        tmp_path,
        **{**SMALL, "synthesis": {**SMALL["synthesis"], "max_tokens": 100}},
    )
    out = tmp_path / "items.jsonl"
    assert synth(profile, taxonomy_file, out, "--budget", "0.015", "--concurrency", "1") == 2
    captured = capsys.readouterr()
    assert "budget cap $0.0150 reached" in captured.err and "rerun to continue" in captured.err
    assert "spent" in captured.out  # the summary is printed even when the run stops
    kept = read_items(out)
    assert 0 < len(kept) < 16
    assert synth(profile, taxonomy_file, out, "--budget", "1") == 0
    assert read_items(out)[: len(kept)] == kept and len(read_items(out)) == 16
