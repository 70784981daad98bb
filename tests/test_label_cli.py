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
import yaml

from trouter.synth.items import ItemsFile, SynthItem
from trouter.testing import FakeOpenAI, FakeRequest, Reply

N_ITEMS = 40
MODELS = ("cheap", "mid", "dear")


def make_items() -> list[SynthItem]:
    items = [
        SynthItem(
            query=f"What is {i} + {i}?",
            reference=str(2 * i),
            answer_format="numeric",
            path="math/arithmetic",
            generator="gen",
            prompt_version="test/1",
        )
        for i in range(N_ITEMS - 1)
    ]
    items.append(
        SynthItem(
            query="Summarise: the cat sat on the mat.",
            reference="A cat sat on a mat.",
            answer_format="free_text",
            path="writing/summary",
            generator="gen",
            prompt_version="test/1",
        )
    )
    return items


def answer(req: FakeRequest) -> Reply:
    if req.model == "judge":
        return Reply(content="Score: 8/10")
    words = req.last_user.split()
    if words[0] == "What":
        total = int(words[2]) * 2 + (1 if req.model == "cheap" else 0)  # cheap is off by one
        return Reply(content=f"The answer is {total}.", delay=0.03)
    return Reply(content="The cat sat on the mat.", delay=0.03)


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
    with FakeOpenAI(answer, models=(*MODELS, "judge")) as server:
        ItemsFile(tmp_path / "items.jsonl").append(make_items())
        pool = {
            "models": [
                {
                    "name": name,
                    "base_url": server.url,
                    "input_price": price,
                    "output_price": 2 * price,
                    "max_concurrency": 2,
                }
                for name, price in zip(MODELS, (0.1, 1.0, 10.0), strict=True)
            ]
        }
        (tmp_path / "pool.yaml").write_text(yaml.safe_dump(pool))
        judge = {"models": [{"name": "judge", "base_url": server.url}]}
        (tmp_path / "judge.yaml").write_text(yaml.safe_dump(judge))
        env = {**os.environ, "TROUTER_HOME": str(tmp_path / "home")}
        yield server, tmp_path, env


def label_args(tmp: Path) -> list[str]:
    return [
        "label",
        str(tmp / "items.jsonl"),
        "--pool",
        str(tmp / "pool.yaml"),
        "--judge",
        "judge",
        "--judge-pool",
        str(tmp / "judge.yaml"),
        "--out",
        str(tmp / "out" / "labels.parquet"),
    ]


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
