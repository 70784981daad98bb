"""Killing `trouter synthesize` (SIGKILL) part-way and rerunning it loses nothing, duplicates
nothing, and reuses every response the killed run had already paid for."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import func, select

from trouter.cli import run
from trouter.store import LLMCacheEntry, LLMCall, Store, sqlite_url
from trouter.synth.items import read_items
from trouter.synth.testing import FakeGenerator, profile_against
from trouter.taxonomy import Taxonomy
from trouter.testing import FakeOpenAI

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "support-profile.yaml"
ITEMS_PER_LEAF = 4


def synthesize_args(profile: Path, taxonomy: Path, out: Path, *extra: str) -> list[str]:
    return [
        "synthesize",
        str(profile),
        "--taxonomy",
        str(taxonomy),
        "--out",
        str(out),
        "--encoder",
        "hashing:256",
        *extra,
    ]


def count_lines(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.is_file() else 0


@pytest.mark.slow
def test_sigkill_then_rerun_finishes_with_no_duplicate_no_gap_and_every_cache_hit(tmp_path, capsys):
    with FakeOpenAI(FakeGenerator(duplicate_every=7, unanswerable_every=9)) as server:
        profile = profile_against(
            EXAMPLE,
            server.url,
            tmp_path / "cfg",
            items_per_leaf=ITEMS_PER_LEAF,
            synthesis={"batch_size": 2, "max_batch_factor": 3},
            levels=[
                {"name": "domain", "min_nodes": 3, "max_nodes": 3},
                {"name": "subcategory", "min_nodes": 2, "max_nodes": 2},
                {"name": "difficulty", "nodes": ["easy", "medium", "hard"]},
            ],
        )
        taxonomy_path = tmp_path / "taxonomy.yaml"
        assert run(["taxonomy", "build", str(profile), "--out", str(taxonomy_path)]) == 0
        taxonomy = Taxonomy.load(taxonomy_path)
        expected = ITEMS_PER_LEAF * len(taxonomy.leaf_paths())

        # A slow server so that the kill lands in the middle of the run.
        server.handler = FakeGenerator(duplicate_every=7, unanswerable_every=9, delay=0.05)
        out = tmp_path / "run" / "items.jsonl"
        child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from trouter.cli import main; main()",
                *synthesize_args(profile, taxonomy_path, out, "--concurrency", "4"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, "COLUMNS": "200"},
        )
        deadline = time.monotonic() + 60
        while count_lines(out) < expected // 4 and time.monotonic() < deadline:
            assert child.poll() is None, child.stderr.read().decode() if child.stderr else ""
            time.sleep(0.01)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        written = count_lines(out)
        assert 0 < written < expected, "the kill should land part-way"

        db = Store(sqlite_url(tmp_path / "run" / "trouter.sqlite"))
        with db.session() as s:
            cached_before = set(s.scalars(select(LLMCacheEntry.key)))
            last_call = s.scalar(select(func.max(LLMCall.id))) or 0
        assert cached_before

        server.handler = FakeGenerator(duplicate_every=7, unanswerable_every=9)
        capsys.readouterr()
        assert run(synthesize_args(profile, taxonomy_path, out)) == 0
        printed = capsys.readouterr().out
        reused = int(re.search(r"cached responses reused: (\d+)", printed).group(1))
        assert reused >= len(cached_before)
        with db.session() as s:
            hits = set(s.scalars(select(LLMCall.key).where(LLMCall.id > last_call, LLMCall.cached)))
        assert cached_before <= hits  # every response paid for before the kill was reused
        db.close()

        # The reference: the same job, uninterrupted, into a fresh file and store.
        clean = tmp_path / "clean" / "items.jsonl"
        assert run(synthesize_args(profile, taxonomy_path, clean)) == 0

    items = read_items(out)
    ids = [item.id for item in items]
    assert len(ids) == len(set(ids)), "no duplicate"
    assert Counter(item.path for item in items) == dict.fromkeys(
        taxonomy.leaf_paths(), ITEMS_PER_LEAF
    ), "no missing item"
    assert set(ids) == {item.id for item in read_items(clean)}
