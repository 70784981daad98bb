"""The gateway load benchmark runs end to end and prints its table (tiny settings, toy data)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gateway_load.py"


@pytest.mark.slow
def test_gateway_load_benchmark_prints_its_table(tmp_path):
    out = tmp_path / "rows.json"
    cmd = [
        sys.executable, str(SCRIPT), "--data", "toy", "--encoders", "hashing:256",
        "--concurrency", "1,4", "--seconds", "0.4", "--warmup", "0.1", "--out", str(out),
    ]  # fmt: skip
    env = {**os.environ, "TROUTER_HOME": str(tmp_path / "home")}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| trouter (hashing:256) | 4 |" in done.stdout
    rows = json.loads(out.read_text())["rows"]
    assert {r["target"] for r in rows} == {"direct (upstream)", "trouter (hashing:256)"}
    assert all(r["requests"] > 0 and r["errors"] == 0 for r in rows)
