"""The runner scores every router through the same contract; the reference rows come from S and C."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from factories import toy_dataset
from trouter.encode import load_encoder
from trouter.errors import ConfigError
from trouter.eval import metrics
from trouter.eval.protocols import group_labels, make_folds, task_groups
from trouter.eval.report import read_report, render_markdown, write_json
from trouter.eval.runner import evaluate_router, reference_rows, run_benchmark
from trouter.eval.summary import compare, leader_comparisons, summarise
from trouter.routers.registry import make_router


@pytest.fixture(scope="module")
def toy():
    return toy_dataset(n_per_task=20, seed=5)


def test_the_oracle_router_reproduces_the_oracle_row(toy):
    # The evaluation-only oracle router is fitted on the test set, as its class declares, and
    # goes through the same metric code as any router: it must land exactly on the oracle row.
    (fold,) = make_folds(toy, "in-domain", seed=0)
    lams = metrics.lambda_grid(fold.test.costs)
    zero, oracle_row, _ = reference_rows(fold, lams, dataset="toy", protocol="in-domain")
    router = make_router("oracle", encoder=load_encoder("hashing:64")).fit(fold.test)
    row, _ = evaluate_router(
        router, fold, lams, (zero.aiq, oracle_row.aiq), dataset="toy", protocol="in-domain"
    )
    assert row.aiq == pytest.approx(oracle_row.aiq)
    assert row.gap_recovered == pytest.approx(1.0)
    assert row.reward_balanced == pytest.approx(oracle_row.reward_balanced)
    result = run_benchmark(toy, "in-domain", ["random"], encoder=load_encoder("hashing:64"))
    assert [r.router for r in result.rows] == ["random", "zero", "oracle"]
    assert result.rows[-1].aiq == pytest.approx(oracle_row.aiq)
    assert result.rows[0].aiq < oracle_row.aiq


@pytest.mark.parametrize(
    ("routers", "message"),
    [
        (["random", "oracle"], "in every report already; leave the 'oracle' router out"),
        (["random", "random"], "router 'random' is listed twice"),
    ],
)
def test_rows_that_would_share_a_name_are_refused_before_any_fit(toy, routers, message):
    # Rows are told apart by router name: a second "oracle" row (or "random") was silently
    # merged with the first in summaries and crashed the plot.
    with pytest.raises(ConfigError, match=message):
        run_benchmark(toy, "in-domain", routers, encoder=load_encoder("hashing:64"))


def test_in_domain_uses_a_seeded_70_10_20_split_without_a_shipped_one(toy):
    (fold,) = make_folds(toy, "in-domain", seed=1)
    assert (fold.train.n_queries, fold.val.n_queries, fold.test.n_queries) == (56, 8, 16)
    assert make_folds(toy, "in-domain", seed=1)[0].test.query_ids == fold.test.query_ids


def test_leave_task_out_groups_tasks_by_path_level_and_never_leaks_the_held_out_task(toy):
    full = ["chat/smalltalk", "code/python", "math/arithmetic", "math/proof"]
    assert task_groups(toy, min_queries=1) == full
    assert task_groups(toy, 1) == ["chat", "code", "math"]
    folds = make_folds(toy, "leave-task-out", task_level=1)
    for fold in folds:
        seen = set(fold.train.tasks) | set(fold.val.tasks if fold.val else [])
        assert all(t.split("/")[0] == fold.name for t in fold.test.tasks)
        assert not any(t.split("/")[0] == fold.name for t in seen)
        assert (
            fold.train.n_queries + (fold.val.n_queries if fold.val else 0) + fold.test.n_queries
            == 80
        )


def test_report_json_round_trips_to_typed_rows(toy, tmp_path):
    result = run_benchmark(
        toy, "leave-task-out", ["random"], encoder=load_encoder("hashing:64"), task_level=1
    )
    saved = read_report(write_json(result, tmp_path))
    assert saved.rows == tuple(result.rows)
    assert saved.info.folds == 3
    summary = {s.router: s for s in summarise(saved.rows)}
    assert summary["zero"].gap_recovered == 0.0 and summary["oracle"].gap_recovered == 1.0


def test_groups_too_small_to_test_on_are_lifted_to_their_parent():
    # RouteLLM-like: MT-Bench has eight categories of 10 queries; MMLU categories are big.
    tasks = ["mmlu/stem/algebra"] * 40 + ["mmlu/other/law"] * 35
    tasks += [f"mt_bench/{c}" for c in ("math", "coding", "writing") for _ in range(10)]
    tasks += ["gsm8k"] * 12 + [""] * 3
    groups = Counter(group_labels(tasks, task_level=2, min_queries=30))
    assert groups == {"mmlu/stem": 40, "mmlu/other": 35, "mt_bench": 30, "gsm8k": 12, "": 3}
    # Small tasks whose siblings are big enough to stay are pooled beside them.
    tasks = ["a/big"] * 40 + ["a/x"] * 5 + ["a/y"] * 5
    assert Counter(group_labels(tasks, min_queries=30)) == {"a/big": 40, "a/(small tasks)": 10}


def test_every_row_carries_a_bootstrap_standard_error_and_report_json_keeps_only_that(
    toy, tmp_path
):
    enc = load_encoder("hashing:64")
    result = run_benchmark(
        toy, "leave-task-out", ["random", "linear"], encoder=enc, task_level=1, draws=200
    )
    for row in result.rows:
        assert row.aiq_draws is not None and len(row.aiq_draws) == 200
        if row.router not in ("zero", "oracle") and row.gap_recovered is not None:
            assert 0.0 <= row.gap_se < 0.5
    again = run_benchmark(
        toy, "leave-task-out", ["random", "linear"], encoder=enc, task_level=1, draws=200
    )
    assert [r.gap_se for r in again.rows] == [r.gap_se for r in result.rows]  # seeded

    # Over folds each resample's AIQs are averaged first, as the gap itself is.
    summary = {s.router: s for s in summarise(result)}
    assert (
        0.0 < summary["linear"].gap_se < max(r.gap_se for r in result.rows if r.router == "linear")
    )
    assert summary["oracle"].gap_se == summary["zero"].gap_se == 0.0

    raw = json.loads(write_json(result, tmp_path).read_text())
    assert "aiq_draws" not in raw["rows"][0] and "gap_se" in raw["rows"][0]
    # The summary over folds and the comparisons are in report.json too: the draws behind them
    # are not, so a reader could not rebuild them.
    saved = {s["router"]: s for s in raw["summary"]}
    assert saved["linear"]["gap_se"] == pytest.approx(summary["linear"].gap_se)
    (versus,) = raw["comparisons"]
    assert {versus["router"], versus["other"]} == {"random", "linear"}
    assert versus["low"] <= versus["difference"] <= versus["high"] and versus["verdict"]
    assert summarise(read_report(tmp_path / "report.json").rows)[0].gap_se is None


def test_the_leader_is_compared_with_every_other_router_on_the_same_resamples(toy):
    result = run_benchmark(
        toy, "in-domain", ["random", "linear"], encoder=load_encoder("hashing:64"), draws=300
    )
    gaps = {s.router: s.gap_recovered for s in summarise(result)}
    (versus,) = leader_comparisons(result.rows)
    leader = max(("random", "linear"), key=lambda name: gaps[name])
    other = "linear" if leader == "random" else "random"
    assert (versus.router, versus.other) == (leader, other)
    assert versus.difference == pytest.approx(gaps[leader] - gaps[other])
    assert versus.low <= versus.difference <= versus.high
    assert versus.verdict() in (f"{leader} ahead", "not separated")
    same = compare(result.rows, "random", "random")
    assert (same.difference, same.low, same.high) == (0.0, 0.0, 0.0)
    assert same.verdict() == "the same on every resample"
    assert "Paired bootstrap, 300 resamples" in render_markdown(result)
    unresampled = run_benchmark(
        toy, "in-domain", ["random", "linear"], encoder=load_encoder("hashing:64"), draws=0
    )
    assert leader_comparisons(unresampled.rows) == [] and unresampled.rows[0].gap_se is None


def test_the_library_takes_what_a_user_would_pass(toy):
    # An encoder spec as routers take it (was AttributeError), a whole BenchResult to compare
    # (was TypeError), and clear errors for one string of routers or a name not in the rows.
    result = run_benchmark(toy, "in-domain", ["random", "knn"], encoder="hashing:64", draws=200)
    assert result.info.encoder == "hashing:64"
    assert compare(result, "knn", "random") == compare(result.rows, "knn", "random")
    with pytest.raises(ConfigError, match="no router 'typo' in these rows"):
        compare(result, "knn", "typo")
    with pytest.raises(ConfigError, match="a list of names"):
        run_benchmark(toy, "in-domain", "knn", encoder="hashing:64")  # type: ignore[arg-type]


@pytest.mark.parametrize("draws", [5, 99, -1])
def test_too_few_resamples_are_refused_by_the_library_as_by_the_cli_before_any_fit(toy, draws):
    # `trouter bench --resamples 5` was refused, `run_benchmark(draws=5)` gave a zero-width
    # "interval" and a verdict from five resamples (and draws=-1 silently none).
    fitted: list[str] = []
    with pytest.raises(ConfigError, match=r"give 0 \(none\) or at least 100"):
        run_benchmark(
            toy,
            "in-domain",
            ["random"],
            encoder="hashing:64",
            draws=draws,
            on_step=lambda fold, router: fitted.append(router),
        )
    assert fitted == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        # params for a router not in the run were silently dropped: a typo ran the defaults
        ({"knnn": {"k": 3}}, "router_params names 'knnn', which is not in this run"),
        # the encoder given twice was a TypeError from deep inside the runner
        ({"knn": {"encoder": "hashing:32"}}, "'encoder' is a run-level argument"),
        ({"knn": {"seed": 3}}, "'seed' is a run-level argument"),
        ({"knn": 3}, "router_params\\['knn'\\] must map parameter names to values"),
    ],
)
def test_router_params_that_cannot_apply_are_refused_before_any_fit(toy, params, message):
    fitted: list[str] = []
    with pytest.raises(ConfigError, match=message):
        run_benchmark(
            toy,
            "in-domain",
            ["random", "knn"],
            encoder="hashing:64",
            draws=0,
            router_params=params,
            on_step=lambda fold, router: fitted.append(router),
        )
    assert fitted == []


def test_router_params_reach_the_router_they_name(toy):
    result = run_benchmark(
        toy, "in-domain", ["knn"], encoder="hashing:64", draws=0, router_params={"knn": {"k": 3}}
    )
    assert [r.router for r in result.rows] == ["knn", "zero", "oracle"]
    with pytest.raises(ConfigError, match="router 'knn'"):  # a wrong name reaches the router
        run_benchmark(
            toy,
            "in-domain",
            ["knn"],
            encoder="hashing:64",
            draws=0,
            router_params={"knn": {"kk": 3}},
        )
