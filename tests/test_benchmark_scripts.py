"""The ablation benchmark runs end to end and prints what RESULTS-trouter.md quotes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from factories import toy_dataset

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "trouter_ablation.py"


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
