"""`trouter coldstart` when its inputs or its models misbehave: a generator that answers with
no usable JSON, a judge whose verdicts hold no score, a rerun with changed options or profile,
a model whose every call fails, two runs on one directory. Local `FakeOpenAI` servers play the
generator (`SkillGenerator`, switchable to nonsense per prompt), the judge and two pool models;
the job is small (4 leaves x 4 items) so that each test runs in seconds."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from trouter.cli import run
from trouter.coldstart.testing import (
    KeyPointJudge,
    PoolAnswerer,
    SkillGenerator,
    job_servers,
    write_job_files,
)
from trouter.prompts import parse_marker
from trouter.synth.items import read_items
from trouter.testing import FakeOpenAI
from trouter.testing.fake_openai import FakeRequest, Reply, Status

POOL = {"cheap": (0.10, 0.20, ("easy",)), "dear": (10.0, 30.0, ("easy", "hard"))}
ITEMS_PER_LEAF = 4


@dataclass
class Breakable:
    """A handler that answers as `inner`, except for the prompts named in `broken` (a prompt
    version prefix such as "taxonomy-generate/" -> the reply text to give instead)."""

    inner: object
    broken: dict[str, str] = field(default_factory=dict)
    calls: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __call__(self, req: FakeRequest) -> Reply | Status:
        found = parse_marker(req.prompt_text)
        kind = found[0].split("/")[0] if found else "answer"
        with self._lock:
            self.calls[kind] = self.calls.get(kind, 0) + 1
        for prefix, text in self.broken.items():
            if found is not None and found[0].startswith(prefix):
                return Reply(content=text)
        return self.inner(req)  # type: ignore[operator,no-any-return]


@dataclass
class Job:
    tmp: Path
    cfg: Path
    generator: Breakable
    judge: Breakable
    answers: PoolAnswerer
    servers: dict[str, FakeOpenAI]

    def args(self, out: str = "run", *extra: str) -> list[str]:
        return [
            "coldstart",
            str(self.cfg / "profile.yaml"),
            "--pool",
            str(self.cfg / "pool.yaml"),
            "--out",
            str(self.tmp / out),
            "--encoder",
            "hashing:256",
            *extra,
        ]

    def edit_profile(self, **changes: object) -> None:
        path = self.cfg / "profile.yaml"
        profile = yaml.safe_load(path.read_text())
        for key, value in changes.items():
            if isinstance(value, dict):
                profile[key] = {**profile.get(key, {}), **value}
            else:
                profile[key] = value
        path.write_text(yaml.safe_dump(profile, sort_keys=False))


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Iterator[None]:
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture
def job(tmp_path: Path) -> Iterator[Job]:
    answers = PoolAnswerer({name: skill for name, (_, _, skill) in POOL.items()})
    generator, judge = Breakable(SkillGenerator()), Breakable(KeyPointJudge())
    with job_servers(generator, judge, answers, POOL) as servers:
        cfg = tmp_path / "cfg"
        profile = {
            "name": "hardening",
            "description": "The support assistant of a small SaaS product.",
            "levels": [
                {"name": "domain", "min_nodes": 2, "max_nodes": 2},
                {"name": "difficulty", "nodes": ["easy", "hard"]},
            ],
            "generator": "generator",
            "judge": "judge",
            "pool": "models.yaml",
            "items_per_leaf": ITEMS_PER_LEAF,
            "budget_usd": 2.0,
            "taxonomy": {"max_rounds": 1, "stable_rounds": 1},
            "synthesis": {
                "batch_size": 4,
                "answer_formats": ["numeric", "multiple_choice", "free_text"],
                "encoder": "hashing:256",
                "answerability_check": False,
            },
        }
        urls = {name: server.url for name, server in servers.items()}
        # The profile's own pool holds the generator and the judge; --pool is what to route.
        write_job_files(
            cfg, urls, {name: (p_in, p_out) for name, (p_in, p_out, _) in POOL.items()}, profile
        )
        yield Job(tmp_path, cfg, generator, judge, answers, servers)


def one_line_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip() and line.startswith("error")]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    return lines[0]


def observations(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "observations.jsonl").read_text().splitlines()]


# ---------------------------------------------------------------------------------- 1. taxonomy


@pytest.mark.parametrize("reply", ["Sorry, I cannot help with that.", '{"nodes": []}'])
def test_a_generator_without_usable_top_level_nodes_is_an_error_and_a_rerun_asks_again(
    job, capsys, reply
):
    job.generator.broken["taxonomy-generate/"] = reply
    assert run(job.args()) == 2
    err = capsys.readouterr().err
    line = one_line_error(err)
    assert "the generator gave no usable nodes for level 'domain'" in line
    asked = job.generator.calls["taxonomy-generate"]

    job.generator.broken.clear()  # the generator recovers: the rerun asks it again
    assert run(job.args()) == 0, capsys.readouterr().err
    assert job.generator.calls["taxonomy-generate"] > asked
    assert len(read_items(job.tmp / "run" / "items.jsonl")) == 4 * ITEMS_PER_LEAF


def test_taxonomy_build_says_the_same_in_one_line(job, capsys):
    job.generator.broken["taxonomy-generate/"] = '{"nodes": []}'
    args = ["taxonomy", "build", str(job.cfg / "profile.yaml"), "--out", str(job.tmp / "t.yaml")]
    assert run(args) == 2
    assert "no usable nodes for level 'domain'" in one_line_error(capsys.readouterr().err)
    job.generator.broken.clear()
    assert run(args) == 0
    assert (job.tmp / "t.yaml").is_file()


# ---------------------------------------------------------------------------------- 2. replies


def test_items_from_replies_that_are_not_json_fail_the_step_and_a_rerun_asks_again(job, capsys):
    job.generator.broken["qa-generate/"] = "Sure! no json here"
    assert run(job.args()) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "gave no usable items" in line and "no valid reply to" in line, line

    job.generator.broken.clear()
    assert run(job.args()) == 0, capsys.readouterr().err
    assert len(read_items(job.tmp / "run" / "items.jsonl")) == 4 * ITEMS_PER_LEAF


def test_some_invalid_batches_are_counted_in_the_items_line(job, capsys):
    calls = {"n": 0}
    inner = job.generator.inner

    def flaky(req: FakeRequest) -> Reply:
        found = parse_marker(req.prompt_text)
        if found and found[0].startswith("qa-generate/") and found[1]["path"].endswith("/hard"):
            calls["n"] += 1
            return Reply(content="no json")
        return inner(req)  # type: ignore[operator,no-any-return]

    job.generator.inner = flaky
    assert run(job.args()) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "generator replies never matched the schema" in out
    summary = json.loads((job.tmp / "run" / "summary.json").read_text())
    assert summary["items"]["structured_failures"] > 0


def test_verdicts_without_a_score_are_regraded_once_the_judge_recovers(job, capsys):
    job.judge.broken[""] = "The response looks reasonable to me."  # every judge prompt
    assert run(job.args()) == 0, capsys.readouterr().err
    rows = observations(job.tmp / "run")
    unscored = [r for r in rows if r["status"] == "score_failed"]
    assert unscored and all(r["answer_format"] == "free_text" for r in unscored)
    judged = job.judge.calls["judge"]

    job.judge.broken.clear()
    assert run(job.args("run", "--force", "labels")) == 0, capsys.readouterr().err
    rows = observations(job.tmp / "run")
    assert not [r for r in rows if r["status"] == "score_failed"]
    # Each unusable verdict is asked again (identical judge requests once); nothing else is.
    assert job.judge.calls["judge"] - judged == judged


# ---------------------------------------------------------------------------------- 3. changed inputs


def pool_requests(job: Job) -> int:
    return sum(len(job.servers[name].completions) for name in POOL)


def test_a_rerun_with_another_max_tokens_asks_the_pool_again(job, capsys):
    assert run(job.args()) == 0, capsys.readouterr().err
    before = pool_requests(job)
    seen = {n: len(job.servers[n].completions) for n in POOL}
    assert run(job.args("run", "--max-tokens", "64")) == 0, capsys.readouterr().err
    assert "asked again: the request changed" in capsys.readouterr().out
    assert pool_requests(job) - before == 4 * ITEMS_PER_LEAF * len(POOL)
    asked = [r.body["max_tokens"] for n in POOL for r in job.servers[n].completions[seen[n] :]]
    assert len(asked) == 4 * ITEMS_PER_LEAF * len(POOL) and set(asked) == {64}

    before = pool_requests(job)  # and back: the first answers are still in the cache
    assert run(job.args()) == 0, capsys.readouterr().err
    assert pool_requests(job) == before


def test_a_rerun_with_another_judge_regrades_the_judged_answers_only(job, capsys):
    assert run(job.args()) == 0, capsys.readouterr().err
    before = pool_requests(job)
    assert run(job.args("run", "--judge", "generator")) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "the judge changed (judge -> generator)" in out
    assert pool_requests(job) == before  # the answers come from the cache
    free_text = [it for it in read_items(job.tmp / "run" / "items.jsonl")]
    free_text = [it for it in free_text if it.answer_format == "free_text"]
    assert job.generator.calls.get("judge", 0) > 0
    summary = json.loads((job.tmp / "run" / "summary.json").read_text())
    assert summary["labels"]["regraded"] == len(free_text) * len(POOL)
    assert summary["labels"]["judge"] == "generator"


# ---------------------------------------------------------------------------------- 4. profile edits


def test_items_of_dropped_formats_or_past_a_lower_count_are_set_aside_and_replaced(job, capsys):
    assert run(job.args()) == 0, capsys.readouterr().err
    job.edit_profile(items_per_leaf=3, synthesis={"answer_formats": ["numeric", "multiple_choice"]})
    assert run(job.args()) == 0, capsys.readouterr().err
    assert "set aside" in capsys.readouterr().out

    out = job.tmp / "run"
    items = read_items(out / "items.jsonl")
    per_leaf: dict[str, int] = {}
    for it in items:
        per_leaf[it.path] = per_leaf.get(it.path, 0) + 1
    assert set(per_leaf.values()) == {3} and len(per_leaf) == 4
    assert {it.answer_format for it in items} <= {"numeric", "multiple_choice"}
    aside = read_items(out / "items.stray.jsonl")
    assert any(it.answer_format == "free_text" for it in aside)
    assert not {it.id for it in aside} & {it.id for it in items}
    assert {r["answer_format"] for r in observations(out)} <= {"numeric", "multiple_choice"}
    assert len(observations(out)) == len(items) * len(POOL)


# ---------------------------------------------------------------------------------- 5. a model down


def test_a_model_failing_every_call_stops_the_labels_early_with_the_cause(job, capsys):
    job.servers["dear"].handler = lambda req: Status(400, "model is offline")
    assert run(job.args()) == 2
    err = capsys.readouterr().err
    line = one_line_error(err)
    assert "calls to 'dear' failed" in line and "model is offline" in line, line
    assert "fix its endpoint or remove it from the pool" in line
    # Stopped early: dear was not asked about every item, and what cheap answered is kept.
    assert len(job.servers["dear"].completions) < 4 * ITEMS_PER_LEAF

    job.servers["dear"].handler = job.answers  # the endpoint is fixed: the rerun finishes
    assert run(job.args()) == 0, capsys.readouterr().err
    assert {r["status"] for r in observations(job.tmp / "run")} <= {"ok", "score_failed"}


def test_a_judge_failing_every_call_stops_the_labels_early_and_the_rerun_grades(job, capsys):
    job.servers["judge"].handler = lambda req: Status(400, "judge is offline")
    assert run(job.args()) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "calls to the judge 'judge' failed" in line and "judge is offline" in line, line
    assert "--judge" in line
    asked = pool_requests(job)  # (this job is too small for the pool to stop much sooner)

    job.servers["judge"].handler = job.judge  # the judge is back: what was paid is graded
    assert run(job.args()) == 0, capsys.readouterr().err
    assert pool_requests(job) == 4 * ITEMS_PER_LEAF * len(POOL)  # none asked twice
    assert asked > 0
    assert {r["status"] for r in observations(job.tmp / "run")} == {"ok"}


def test_a_model_failing_many_calls_gets_a_warning_in_the_summary(job, capsys):
    failing = {"n": 0}

    def shaky(req: FakeRequest) -> Reply | Status:
        failing["n"] += 1
        return Status(400, "flaky upstream") if failing["n"] % 2 == 0 else job.answers(req)

    job.servers["dear"].handler = shaky
    assert run(job.args()) == 0, capsys.readouterr().err
    captured = capsys.readouterr()
    assert "calls to 'dear' failed" in captured.err and "its quality rests on" in captured.err
    summary = json.loads((job.tmp / "run" / "summary.json").read_text())
    assert any("'dear'" in w for w in summary["labels"]["warnings"])


# ---------------------------------------------------------------------------------- 6. one run at a time


def test_a_second_run_on_a_directory_in_use_is_refused_and_a_stale_lock_is_taken_over(job, capsys):
    import subprocess

    other = subprocess.Popen(["sleep", "60"])
    try:
        out = job.tmp / "run"
        out.mkdir()
        (out / "coldstart.lock").write_text(f"{other.pid}\n")
        assert run(job.args()) == 2
        line = one_line_error(capsys.readouterr().err)
        assert f"is in use by pid {other.pid}" in line
        assert pool_requests(job) == 0 and not (out / "items.jsonl").exists()
    finally:
        other.kill()
        other.wait()
    assert run(job.args()) == 0, capsys.readouterr().err  # its process is gone: stale
    assert not (job.tmp / "run" / "coldstart.lock").exists()


def test_items_written_twice_are_labelled_once(job, capsys):
    assert run(job.args()) == 0, capsys.readouterr().err
    path = job.tmp / "run" / "items.jsonl"
    path.write_text(path.read_text() * 2)  # as two runs appending the same items would
    assert run(job.args()) == 0, capsys.readouterr().err
    rows = observations(job.tmp / "run")
    assert len(rows) == len({(r["item_id"], r["model"]) for r in rows}) == 4 * ITEMS_PER_LEAF * 2


# ---------------------------------------------------------------------------------- 9. tiny leaves


@pytest.mark.parametrize("holdout", [None, "0.5", "0.1"])
def test_leaves_too_small_to_split_are_refused_before_any_call(job, capsys, holdout):
    job.edit_profile(items_per_leaf=1)
    extra = ["--holdout", holdout] if holdout else []
    assert run(job.args("run", *extra)) == 2
    line = one_line_error(capsys.readouterr().err)
    assert "items_per_leaf 1 is too few" in line and "set items_per_leaf to at least" in line
    assert "--holdout" not in line
    assert job.generator.calls == {} and pool_requests(job) == 0


def test_the_smallest_leaf_size_it_asks_for_runs_to_the_end(job, capsys):
    job.edit_profile(items_per_leaf=1)
    assert run(job.args()) == 2
    need = int(one_line_error(capsys.readouterr().err).split("at least ")[1].split()[0])
    job.edit_profile(items_per_leaf=need)
    assert run(job.args()) == 0, capsys.readouterr().err


def test_the_dry_run_after_another_max_tokens_counts_the_answers_asked_again(job, capsys):
    # The labels step asks again when the request changed; its estimate counted them as kept.
    def planned_calls(*extra: str) -> int:
        assert run(job.args("run", "--dry-run", *extra)) == 0
        out = capsys.readouterr().out
        return int(re.search(r"total\s*│\s*│\s*(\d+)", out).group(1))

    assert run(job.args()) == 0, capsys.readouterr().err
    capsys.readouterr()
    assert planned_calls() == 0
    assert planned_calls("--max-tokens", "64") >= 4 * ITEMS_PER_LEAF * len(POOL)


def test_the_dry_run_finds_the_store_whatever_its_sqlite_url_says(job, capsys):
    db = ("--db", f"sqlite:///{job.tmp / 'elsewhere.sqlite'}?timeout=5")
    assert run(job.args("run", *db)) == 0, capsys.readouterr().err
    capsys.readouterr()
    # A forced labels step is answered from the store's cache: nothing to pay, if it is found.
    assert run(job.args("run", "--dry-run", "--force", "labels", *db)) == 0
    out = capsys.readouterr().out
    assert int(re.search(r"total\s*│\s*│\s*(\d+)", out).group(1)) == 0, out


def test_the_dry_run_reads_an_older_store_and_writes_nothing_to_it(job, capsys):
    import sqlite3

    assert run(job.args()) == 0, capsys.readouterr().err
    db = job.tmp / "run" / "trouter.sqlite"
    with sqlite3.connect(db) as conn:  # as a trouter from before the judge_call column left it
        conn.execute("ALTER TABLE label_observations DROP COLUMN judge_call")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    before = db.read_bytes()
    capsys.readouterr()
    assert run(job.args("run", "--dry-run", "--force", "labels")) == 0
    out = capsys.readouterr().out
    assert int(re.search(r"total\s*│\s*│\s*(\d+)", out).group(1)) == 0, out  # all cached
    with sqlite3.connect(db) as conn:  # a dry run calls nothing and writes nothing
        columns = {row[1] for row in conn.execute("PRAGMA table_info(label_observations)")}
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    assert "judge_call" not in columns and db.read_bytes() == before


def labels_estimate(job: Job, judge: str | None = None, force: tuple[str, ...] = ()):
    """The labels step of the plan `trouter coldstart --dry-run` prints for this job."""
    from trouter.coldstart import Coldstart, ColdstartOptions

    options = ColdstartOptions(
        out=job.tmp / "run",
        pool=job.cfg / "pool.yaml",
        encoder="hashing:256",
        judge=judge,
        force=force,
    )
    planned = Coldstart(job.cfg / "profile.yaml", options)
    try:
        return next(s for s in planned.plan().steps if s.step == "labels")
    finally:
        planned.close()


def spent_now(job: Job) -> float:
    return float(json.loads((job.tmp / "run" / "summary.json").read_text())["spent_now_usd"])


def test_the_dry_run_after_another_judge_prices_the_new_judges_calls_as_the_run_makes_them(
    job, capsys
):
    assert run(job.args()) == 0, capsys.readouterr().err
    graded_before = job.generator.calls.get("judge", 0)
    estimate = labels_estimate(job, judge="generator")

    assert run(job.args("run", "--judge", "generator")) == 0, capsys.readouterr().err
    judge_calls = job.generator.calls.get("judge", 0) - graded_before
    spent = spent_now(job)
    # Every free-text answer is graded again by the new judge (the estimate saw the answers
    # in the cache, so it knows which are the same request), and no pool answer is paid.
    assert estimate.calls == judge_calls > 0
    assert "generator" in estimate.models
    assert 0 < spent <= estimate.cost_max
    # The same calls, each priced from generous token counts (the prompt at 3 characters a
    # token, a typical verdict of 80 tokens where this judge writes a few): close above.
    assert spent <= estimate.cost <= 4 * spent


def test_the_dry_run_prices_what_the_cache_holds_at_nothing(job, capsys):
    assert run(job.args()) == 0, capsys.readouterr().err
    estimate = labels_estimate(job, force=("labels",))  # every answer and verdict is cached

    assert run(job.args("run", "--force", "labels")) == 0, capsys.readouterr().err
    assert spent_now(job) == 0.0
    assert (estimate.calls, estimate.cost, estimate.cost_max) == (0, 0.0, 0.0)
    assert "from the cache" in estimate.note
