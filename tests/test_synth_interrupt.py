"""`trouter synthesize` stopped with Ctrl-C (SIGINT) says what it saved and how to resume."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from trouter.cli import run
from trouter.synth.testing import FakeGenerator, profile_against
from trouter.taxonomy import Taxonomy
from trouter.testing import FakeOpenAI

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "support-profile.yaml"


def lines(path: Path) -> int:
    return len(path.read_text().splitlines()) if path.is_file() else 0


def test_ctrl_c_says_how_many_items_are_saved_and_to_rerun(tmp_path):
    with FakeOpenAI(FakeGenerator(delay=0.05)) as server:
        profile = profile_against(
            EXAMPLE,
            server.url,
            tmp_path / "cfg",
            items_per_leaf=20,
            synthesis={"batch_size": 2, "encoder": "hashing:256", "answerability_check": False},
        )
        taxonomy = tmp_path / "taxonomy.yaml"
        Taxonomy.from_task_names(["Billing/easy", "Billing/hard"], ["domain", "level"]).save(
            taxonomy
        )
        out = tmp_path / "items.jsonl"
        args = ["synthesize", str(profile), "--taxonomy", str(taxonomy), "--out", str(out)]
        child = subprocess.Popen(
            [sys.executable, "-c", "from trouter.cli import main; main()", *args, "--skip-check"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "COLUMNS": "200"},
        )
        deadline = time.monotonic() + 60
        while lines(out) < 4 and time.monotonic() < deadline and child.poll() is None:
            time.sleep(0.01)
        child.send_signal(signal.SIGINT)
        _, err = child.communicate(timeout=30)
        text = err.decode()
        assert child.returncode == 130, text
        assert "Traceback" not in text
        saved = lines(out)
        assert f"interrupted; {saved} items saved in {out}" in " ".join(text.split()), text
        assert "rerun the same command to resume" in " ".join(text.split())
        assert run([*args, "--skip-check"]) == 0  # and the rerun finishes
        assert lines(out) == 40
