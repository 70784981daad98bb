"""`trouter coldstart` end to end, as the issue's acceptance test asks: local OpenAI-compatible
servers on 127.0.0.1 play a generator, a judge and three pool models of different skill and
price, deterministically, with injected failures (429 with Retry-After, 500, malformed JSON, a
dropped connection, a refused request). The router that comes out must prefer the cheap model
where the cheap model is scripted to be as good, and the expensive one where it is not; every
observation's $ cost must be the server's reported usage times the price; and a run killed with
SIGKILL at several points must finish on rerun with no duplicate or lost observation, reusing
the answers it had already paid for."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sqlalchemy import func, select

from trouter.cli import run
from trouter.coldstart.testing import (
    KeyPointJudge,
    PoolAnswerer,
    SkillGenerator,
    difficulty_of,
    job_servers,
    write_job_files,
)
from trouter.routers.base import Router
from trouter.routers.registry import load_router
from trouter.store import LabelObservation, LLMCall, Store, sqlite_url
from trouter.synth.items import read_items
from trouter.testing import FakeOpenAI
from trouter.testing.fake_openai import Drop, Malformed, Status

ITEMS_PER_LEAF = 16
DOMAINS = 2
LEAVES = DOMAINS * 3  # x easy / medium / hard
N_ITEMS = LEAVES * ITEMS_PER_LEAF
POOL = {  # name: ($ per 1M in, $ per 1M out, difficulties it answers right)
    "cheap": (0.10, 0.20, ("easy",)),
    "mid": (2.00, 6.00, ("easy", "medium")),
    "dear": (10.00, 30.00, ("easy", "medium", "hard")),
}
N_OBS = N_ITEMS * len(POOL)
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@dataclass
class Setup:
    tmp: Path
    profile: Path
    pool: Path
    generator: FakeOpenAI
    judge: FakeOpenAI
    models: dict[str, FakeOpenAI]
    answers: PoolAnswerer

    def args(self, out: Path, *extra: str) -> list[str]:
        return [
            "coldstart",
            str(self.profile),
            "--pool",
            str(self.pool),
            "--out",
            str(out),
            "--encoder",
            "hashing:256",
            *extra,
        ]

    def pool_requests(self) -> int:
        return sum(len(s.completions) for s in self.models.values())


@pytest.fixture(autouse=True)
def _one_blas_thread() -> Iterator[None]:
    """Two cores are shared by everyone: BLAS threads fighting over them slow fits tenfold."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        yield


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    answers = PoolAnswerer({name: skill for name, (_, _, skill) in POOL.items()})
    with job_servers(SkillGenerator(), KeyPointJudge(), answers, POOL) as servers:
        cfg = tmp_path / "cfg"
        profile = {
            "name": "e2e-support",
            "description": "The support assistant of a small SaaS product: billing and access.",
            "levels": [
                {"name": "domain", "min_nodes": DOMAINS, "max_nodes": DOMAINS},
                {"name": "difficulty", "nodes": ["easy", "medium", "hard"]},
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
            },
        }
        urls = {name: server.url for name, server in servers.items()}
        # The profile's own pool holds the generator and the judge; --pool is what to route.
        write_job_files(
            cfg, urls, {name: (p_in, p_out) for name, (p_in, p_out, _) in POOL.items()}, profile
        )
        yield Setup(
            tmp_path,
            cfg / "profile.yaml",
            cfg / "pool.yaml",
            servers["generator"],
            servers["judge"],
            {name: servers[name] for name in POOL},
            answers,
        )


def observations(out: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in (out / "observations.jsonl").read_text().splitlines()]


def stored_observations(out: Path) -> int:
    store = Store(sqlite_url(out / "trouter.sqlite"))
    try:
        with store.session() as s:
            return int(s.scalar(select(func.count()).select_from(LabelObservation)) or 0)
    finally:
        store.close()


def paid_twice(out: Path) -> list[str]:
    """Request keys the store shows were paid for more than once."""
    store = Store(sqlite_url(out / "trouter.sqlite"))
    try:
        with store.session() as s:
            rows = s.execute(
                select(LLMCall.key, func.count())
                .where(LLMCall.cached.is_(False), LLMCall.status == "ok")
                .group_by(LLMCall.key)
                .having(func.count() > 1)
            ).all()
        return [key for key, _ in rows]
    finally:
        store.close()


def choices(router: Router, queries: list[str], preset: str) -> dict[str, Counter[str]]:
    """The router's picks at a preset, counted per difficulty."""
    out: dict[str, Counter[str]] = {}
    for query, decision in zip(queries, router.route(queries, preset), strict=True):
        out.setdefault(difficulty_of(query), Counter())[decision.model] += 1
    return out


def share(counts: Counter[str], model: str) -> float:
    return counts[model] / max(1, sum(counts.values()))


def test_coldstart_trains_a_router_that_earns_its_choices_from_labels(setup, capsys):
    s = setup
    # Injected failures: each is retried (or, for the 400, recorded as a failed observation).
    s.generator.script(Status(429, retry_after=0.05))
    s.judge.script(Malformed(), Status(429, retry_after=0.05))
    s.models["cheap"].script(Status(500))
    s.models["mid"].script(Malformed(), Status(400, "context length exceeded"))
    s.models["dear"].script(Drop())
    out = s.tmp / "run"

    started = time.perf_counter()
    assert run(s.args(out)) == 0
    output = capsys.readouterr().out
    seconds = time.perf_counter() - started
    print(f"cold start: {seconds:.1f} s")

    for name in ("taxonomy.yaml", "items.jsonl", "dataset.parquet", "observations.jsonl",
                 "report.json", "report.md", "report.png", "summary.json"):  # fmt: skip
        assert (out / name).is_file(), name
    items = read_items(out / "items.jsonl")
    assert len(items) == N_ITEMS
    assert Counter(it.path for it in items) == {
        p: ITEMS_PER_LEAF for p in {it.path for it in items}
    }

    # Every observation once; its $ is the usage this server reported times the pool's price.
    rows = observations(out)
    assert len(rows) == N_OBS
    assert len({(r["item_id"], r["model"]) for r in rows}) == N_OBS
    failed = [r for r in rows if r["status"] == "call_failed"]
    assert len(failed) == 1 and failed[0]["model"] == "mid"
    for r in rows:
        if r["status"] == "call_failed":
            continue
        p_in, p_out, _ = POOL[str(r["model"])]
        reported = s.answers.usage[
            (str(r["model"]), next(i.query for i in items if i.id == r["item_id"]))
        ]
        assert (r["tokens_in"], r["tokens_out"]) == reported
        assert r["cost"] == pytest.approx(
            (reported[0] * p_in + reported[1] * p_out) / 1e6, rel=1e-12
        )
    frame = pd.read_parquet(out / "dataset.parquet")
    assert len(frame) == N_OBS and not frame.duplicated(["query_id", "model"]).any()

    # The summary: items, calls per model, $, failures, the router, and what each preset buys.
    summary = json.loads((out / "summary.json").read_text())
    assert summary["items"]["total"] == N_ITEMS
    assert summary["labels"]["call_failures"] == {"mid": 1}
    calls = {m["model"]: m for m in summary["calls"]}
    assert set(calls) == {"generator", "judge", *POOL}
    assert calls["judge"]["roles"] == ["judge"] and calls["dear"]["roles"] == ["pool"]
    assert calls["mid"]["failed_calls"] == 1
    assert summary["spent_now_usd"] == pytest.approx(summary["spent_total_usd"])
    assert summary["spent_total_usd"] == pytest.approx(sum(m["cost_usd"] for m in calls.values()))
    report = summary["report"]
    assert [p["name"] for p in report["presets"]] == ["quality", "balanced", "cost"]
    singles = {m["name"]: m for m in report["models"]}
    assert singles["dear"]["quality"] > singles["mid"]["quality"] > singles["cheap"]["quality"]
    quality = report["presets"][0]
    # Routing at `quality` keeps (nearly) the dear model's quality at a fraction of its cost.
    assert quality["quality"] >= singles["dear"]["quality"] - 0.1
    assert quality["cost"] < 0.8 * singles["dear"]["cost"]
    assert "trouter:quality" in output and "always dear" in output
    # The gap comes with its sampling error on the (small) held-out set.
    assert 0.0 < report["gap_se"] < 0.5
    assert "(bootstrap standard error)" in output

    # Decisions, on the held-out queries and on fresh ones: the dear model where only it is
    # right (hard), the cheap one where it is as good (easy), the mid one in between.
    router = load_router(out / "router")
    split = json.loads((out / "router" / "coldstart-split.json").read_text())
    held = {it.id for it in items} & set(split["test"])
    queries = [it.query for it in items if it.id in held]
    for difficulty in ("easy", "medium", "hard"):
        queries += [x["query"] for x in SkillGenerator().sample(f"new/{difficulty}", 6)]
    picks = {p: choices(router, queries, p) for p in ("quality", "balanced", "cost")}
    print({p: {d: dict(c) for d, c in by.items()} for p, by in picks.items()})
    assert share(picks["quality"]["hard"], "dear") >= 0.9
    assert share(picks["quality"]["medium"], "mid") >= 0.9
    assert share(picks["balanced"]["easy"], "cheap") >= 0.75
    assert share(picks["cost"]["easy"], "cheap") >= 0.9
    for preset in picks:  # never the dear model where the cheap one is as good
        assert picks[preset]["easy"]["dear"] == 0

    # A rerun finds every step complete: no call, nothing rewritten but the summary.
    before = len(s.generator.completions), s.pool_requests(), len(s.judge.completions)
    mtime = (out / "router" / "weights.safetensors").stat().st_mtime_ns
    assert run(s.args(out)) == 0
    again = capsys.readouterr().out
    assert (len(s.generator.completions), s.pool_requests(), len(s.judge.completions)) == before
    assert (out / "router" / "weights.safetensors").stat().st_mtime_ns == mtime
    assert again.count("skipped (output complete)") == 5
    assert paid_twice(out) == []

    # --from-step labels regrades every answer from the cache; only the failed call is retried.
    pool_before, judge_before = s.pool_requests(), len(s.judge.completions)
    assert run(s.args(out, "--from-step", "labels")) == 0
    redone = capsys.readouterr().out
    assert f"{N_OBS} made now, {N_OBS - 1} from the cache" in redone
    assert s.pool_requests() == pool_before + 1
    assert len(s.judge.completions) <= judge_before + 1
    assert json.loads((out / "summary.json").read_text())["labels"]["call_failures"] == {}
    assert paid_twice(out) == []


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """`trouter ARGS` as a separate process, its output to a file (a full pipe would block it)."""
    with log.open("wb") as fh:
        return subprocess.Popen(
            [sys.executable, "-c", "from trouter.cli import main; main()", *args],
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, "COLUMNS": "160", "PYTHONUNBUFFERED": "1", **ONE_THREAD},
        )


def kill_when(
    proc: subprocess.Popen[bytes],
    ready: Callable[[], bool],
    what: str,
    sig: signal.Signals = signal.SIGKILL,
) -> None:
    deadline = time.monotonic() + 60
    while not ready():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)
    proc.send_signal(sig)
    proc.wait(timeout=60)


def test_sigkill_at_several_steps_then_rerun_loses_nothing_and_pays_nothing_twice(setup, capsys):
    s = setup
    # Slow servers, so that each kill lands in the middle of its step.
    s.generator.handler = SkillGenerator(delay=0.02)
    s.answers.delay = 0.01
    s.models["dear"].script(Status(500), Drop())
    out = s.tmp / "run"
    args = s.args(out, "--concurrency", "2")

    qa_calls = lambda: sum("qa-generate/" in r.prompt_text for r in s.generator.completions)  # noqa: E731
    kill_when(spawn(args, s.tmp / "1.log"), lambda: qa_calls() >= 8, "synthesis")
    items_before = len(read_items(out / "items.jsonl"))
    assert 0 < items_before < N_ITEMS

    kill_when(spawn(args, s.tmp / "2.log"), lambda: s.pool_requests() >= 90, "labelling")
    assert len(read_items(out / "items.jsonl")) == N_ITEMS
    assert not (out / "dataset.parquet").exists()

    # Ctrl-C (SIGINT) in labelling: a clean stop that says what is saved and how to resume.
    interrupted = spawn(args, s.tmp / "ctrl-c.log")
    kill_when(interrupted, lambda: s.pool_requests() >= 150, "labelling", signal.SIGINT)
    assert interrupted.returncode == 130
    told = (s.tmp / "ctrl-c.log").read_text()
    assert "interrupted during step 'labels'; saved so far:" in told, told[-2000:]
    assert "items: done" in told and "rerun the same command to resume" in told
    kept = stored_observations(out)
    assert kept < N_OBS

    log = s.tmp / "3.log"
    kill_when(spawn(args, log), lambda: "step 4/6 · router" in log.read_text(), "training")
    assert not (out / "report.json").exists()
    third = log.read_text()
    # The run after the kill in labelling kept every stored observation and made the rest.
    made = re.search(r"(\d+) observations \((\d+) kept from before, (\d+) made now", third)
    assert made, third[-3000:]
    assert [int(g) for g in made.groups()] == [N_OBS, kept, N_OBS - kept]

    requests_before = s.pool_requests()
    assert run(args) == 0
    output = capsys.readouterr().out
    assert output.count("skipped (output complete)") == 3  # taxonomy, items, labels
    # Cached answers were reused: the synthesis replay after the first kill, the lost
    # observations after the second (the count is over every run of the job).
    reused = re.search(r"cached responses reused: (\d+) this run .*, (\d+) over every run", output)
    assert reused, output[-3000:]
    assert int(reused.group(1)) == 0 and int(reused.group(2)) >= 2  # the batches done before kill 1

    items = read_items(out / "items.jsonl")
    assert len(items) == N_ITEMS == len({it.id for it in items})
    rows = observations(out)
    assert len(rows) == N_OBS == len({(r["item_id"], r["model"]) for r in rows})
    assert stored_observations(out) == N_OBS
    assert all(r["status"] == "ok" for r in rows)
    assert paid_twice(out) == []
    # Only the answers in flight at the two stops in labelling could be paid twice.
    assert s.pool_requests() <= N_OBS + 2 * 4 * len(POOL) + 2  # + the scripted dear failures
    assert s.pool_requests() == requests_before  # the last run asked the pool nothing
    assert json.loads((out / "summary.json").read_text())["items"]["total"] == N_ITEMS
    assert (out / "router" / "config.json").is_file() and not list(out.glob(".router.*"))


def test_dry_run_prints_the_plan_and_estimate_and_touches_nothing(setup, capsys):
    s = setup
    out = s.tmp / "run"
    assert run(s.args(out, "--dry-run")) == 0
    output = capsys.readouterr().out
    for step in ("taxonomy", "items", "labels", "router", "report", "summary"):
        assert step in output
    assert "estimate: about $" in output and "budget cap $2.00" in output
    assert "judge" in output  # free-text answers will be graded: the judge's calls are counted
    assert not out.exists()
    assert all(not server.requests for server in (s.generator, s.judge, *s.models.values()))


def test_preflight_names_each_model_and_its_variable_or_url_and_spends_nothing(
    setup, capsys, monkeypatch
):
    s = setup
    monkeypatch.delenv("TROUTER_TEST_DEAR_KEY", raising=False)
    pool = yaml.safe_load(s.pool.read_text())
    pool["models"][2]["api_key_env"] = "TROUTER_TEST_DEAR_KEY"
    s.pool.write_text(yaml.safe_dump(pool))
    helpers = s.profile.parent / "models.yaml"
    models = yaml.safe_load(helpers.read_text())
    models["models"][1]["base_url"] = "http://127.0.0.1:9/v1"  # the judge: nothing listens there
    helpers.write_text(yaml.safe_dump(models))

    assert run(s.args(s.tmp / "run")) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    error = [line for line in err.splitlines() if "error:" in line]
    assert len(error) == 1, err
    assert "'dear'" in error[0] and "TROUTER_TEST_DEAR_KEY" in error[0]
    assert "'judge'" in error[0] and "127.0.0.1:9" in error[0]
    assert all(not server.completions for server in (s.generator, s.judge, *s.models.values()))


def test_a_budget_stop_says_what_is_saved_and_a_rerun_with_more_budget_finishes(setup, capsys):
    s = setup
    out = s.tmp / "run"
    assert run(s.args(out, "--budget", "0.05")) == 2
    err = capsys.readouterr().err
    assert "is above what the budget has left" in err  # warned before any call
    assert "budget cap $0.0500 reached" in err
    assert "stopped during step 'labels'" in err and "rerun the same command" in err
    assert "items: done" in err
    store = Store(sqlite_url(out / "trouter.sqlite"))
    with store.session() as session:
        spent = session.scalar(select(func.sum(LLMCall.cost)).where(LLMCall.cached.is_(False)))
    store.close()
    assert 0 < float(spent or 0) <= 0.05

    assert run(s.args(out)) == 0  # the profile's $2 cap, counting what was spent already
    output = capsys.readouterr().out
    assert "labels (interrupted before)" in output
    rows = observations(out)
    assert len(rows) == N_OBS == len({(r["item_id"], r["model"]) for r in rows})
    assert paid_twice(out) == []
