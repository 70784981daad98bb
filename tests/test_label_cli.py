"""`trouter label` as a user runs it: killed part-way with SIGKILL and rerun, it finishes with
every observation exactly once and re-uses the answers it had already paid for."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from trouter.label.testing import LabelAnswerer, arithmetic_items, summary_item, write_pool
from trouter.label.testing import label_args as label_command
from trouter.synth.items import ItemsFile, SynthItem
from trouter.testing import FakeOpenAI, FakeRequest

N_ITEMS = 40
MODELS = ("cheap", "mid", "dear")


def make_items() -> list[SynthItem]:
    the_cat = summary_item("Summarise: the cat sat on the mat.", "A cat sat on a mat.")
    return [*arithmetic_items(N_ITEMS - 1), the_cat]


def trouter(*args: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", "from trouter.cli import main; main()", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture
def setup(tmp_path):
    # The judge gives 8/10 to every answer; cheap is off by one on arithmetic.
    answer = LabelAnswerer({"judge": "Score: 8/10"}, off_by={"cheap": 1}, delay=0.03)
    with FakeOpenAI(answer, models=(*MODELS, "judge")) as server:
        ItemsFile(tmp_path / "items.jsonl").append(make_items())
        prices = {n: (p, 2 * p) for n, p in zip(MODELS, (0.1, 1.0, 10.0), strict=True)}
        write_pool(tmp_path / "pool.yaml", server.url, prices, max_concurrency=2)
        write_pool(tmp_path / "judge.yaml", server.url, ["judge"])
        env = {**os.environ, "TROUTER_HOME": str(tmp_path / "home")}
        yield server, tmp_path, env


def label_args(tmp: Path) -> list[str]:
    return label_command(tmp, judge="judge", judge_pool="judge.yaml", skip_check=False)


def chat_requests(server: FakeOpenAI) -> list[FakeRequest]:
    return [r for r in server.requests if r.path.endswith("/chat/completions")]


def test_kill_and_rerun_loses_nothing_duplicates_nothing_and_reuses_paid_calls(setup):
    server, tmp, env = setup
    proc = trouter(*label_args(tmp), env=env)
    deadline = time.monotonic() + 60
    while len(chat_requests(server)) < 45 and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    answered_before_kill = len(chat_requests(server))
    assert answered_before_kill < N_ITEMS * len(MODELS)  # really killed part-way

    rerun = trouter(*label_args(tmp), env=env)
    output, _ = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, output

    frame = pd.read_parquet(tmp / "out" / "labels.parquet")
    assert len(frame) == N_ITEMS * len(MODELS)
    assert not frame.duplicated(["query_id", "model"]).any()
    lines = (tmp / "out" / "labels.observations.jsonl").read_text().splitlines()
    assert len(lines) == N_ITEMS * len(MODELS)
    # Each pool call is paid once; the kill can only cost the calls in flight at that moment.
    pool_calls = [r for r in chat_requests(server) if r.model in MODELS]
    in_flight = 2 * len(MODELS)
    assert len(pool_calls) <= N_ITEMS * len(MODELS) + in_flight
    assert "kept from earlier runs" in output
    scores = frame.pivot(index="query_id", columns="model", values="score")
    assert scores["cheap"].sum() == pytest.approx(0.8)  # off by one on arithmetic; judged 8/10
    assert scores["dear"].sum() == pytest.approx(N_ITEMS - 1 + 0.8)


def test_dry_run_prints_the_plan_and_calls_nothing(setup):
    server, tmp, env = setup
    proc = trouter(*label_args(tmp), "--dry-run", env=env)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, output
    assert "labelling estimate: 40 items" in output and "dear" in output
    assert server.requests == []


def test_free_text_without_a_judge_is_a_one_line_user_error(setup):
    server, tmp, env = setup
    args = label_args(tmp)
    del args[args.index("--judge") : args.index("--judge") + 4]
    proc = trouter(*args, env=env)
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode == 2
    assert "judge" in output and "Traceback" not in output
    assert chat_requests(server) == []


def test_a_second_run_on_the_same_output_is_refused_before_any_call(setup):
    # Two label runs on one output would pay twice for the same answers.
    server, tmp, env = setup
    other = subprocess.Popen(["sleep", "60"])
    try:
        (tmp / "out").mkdir()
        (tmp / "out" / ".labels.parquet.lock").write_text(f"{other.pid}\n")
        proc = trouter(*label_args(tmp), env=env)
        output, _ = proc.communicate(timeout=60)
        assert proc.returncode == 2, output
        assert f"is in use by pid {other.pid} (another trouter label)" in output
        assert server.requests == []
    finally:
        other.kill()
        other.wait()
