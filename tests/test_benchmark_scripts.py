"""Benchmark scripts: the ablation runs end to end and prints what RESULTS-trouter.md quotes;
bench_memory.py tells its own options from those it passes to `trouter bench`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from factories import toy_dataset

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SCRIPT = BENCHMARKS / "trouter_ablation.py"


def test_the_ablation_script_writes_its_tables_and_the_paired_comparisons(tmp_path):
    data = tmp_path / "toy.parquet"
    toy_dataset(n_per_task=30, seed=4).save(data)
    out = tmp_path / "out"
    command = [sys.executable, str(SCRIPT), "--data", str(data), "--protocols", "in-domain"]
    command += [
        "--variants",
        "trouter,trouter-paper,mf,knn",
        "--encoder",
        "hashing:64",
        "--out",
        str(out),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = (out / "summary.md").read_text()
    assert "| router | AIQ | gap | ± s.e. |" in summary
    assert "Paired bootstrap, 1000 resamples of the test queries" in summary
    assert "TRouter against the best baseline: trouter - " in summary
    assert "TRouter against the paper-faithful TRouter: trouter - trouter-paper: " in summary
    assert (out / "rows.json").exists()


def _bench_memory(*args: str) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, str(BENCHMARKS / "bench_memory.py"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def test_bench_memory_help_is_its_own_and_trouter_bench_help_comes_after_the_separator():
    # --help was passed to `trouter bench`, so the script's own usage was never shown.
    own = _bench_memory("--help")
    assert own.returncode == 0, own.stderr[-2000:]
    assert "Peak memory" in own.stdout and "bench_memory.py" in own.stdout
    assert "Benchmark routers" not in own.stdout
    passed_on = _bench_memory("--", "--help")
    assert passed_on.returncode == 0, passed_on.stderr[-2000:]
    assert "Benchmark routers" in passed_on.stdout


def test_bench_memory_refuses_bench_options_before_the_separator():
    done = _bench_memory("--data", "no_such_dataset")
    assert done.returncode == 2
    assert "after --" in done.stderr and "Traceback" not in done.stderr
