"""TRouter.adapt and `trouter adapt`: correcting a fitted router with outcomes from live traffic."""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pytest

from factories import TOY_MODELS, toy_dataset
from trouter.cli import run
from trouter.data.dataset import RoutingDataset
from trouter.errors import DataError
from trouter.routers.registry import load_router
from trouter.routers.trouter import TRouter
from trouter.routers.trouter.adapt import (
    ADAPT_GRID,
    MIN_RELATIVE_GAIN,
    MIN_Z,
    _choose,
    _clustered_se,
    sequential_z,
)
from trouter.store import Store

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CODE = "code/python"


@pytest.fixture(scope="module")
def fitted() -> TRouter:
    return TRouter(encoder="hashing:256", ensemble=1).fit(toy_dataset(n_per_task=40, seed=2))


def _copy(router: TRouter) -> TRouter:
    import copy

    return copy.deepcopy(router)


def _shifted(seed: int = 5, models: tuple[str, ...] = TOY_MODELS) -> RoutingDataset:
    """Fresh traffic on which the medium model now fails every Python query."""
    data = toy_dataset(n_per_task=40, seed=seed)
    scores = data.scores_raw.copy()
    scores[np.asarray(data.tasks) == CODE, TOY_MODELS.index("medium")] = 0.0
    keep = [TOY_MODELS.index(m) for m in models]
    return RoutingDataset.from_matrices(
        query_ids=[f"live-{q}" for q in data.query_ids],
        queries=data.queries,
        models=models,
        scores=scores[:, keep],
        costs=data.costs[:, keep],
        tasks=data.tasks,
        name="live",
    )


def _by_task(router: TRouter, data: RoutingDataset, model: str) -> dict[str, float]:
    quality = router.predict(data.queries).quality[:, TOY_MODELS.index(model)]
    tasks = np.asarray(data.tasks)
    return {t: float(quality[tasks == t].mean()) for t in set(data.tasks)}


def test_adapt_moves_the_shifted_task_type_and_follows_the_feedback_on_the_others(fitted):
    live, later = _shifted(seed=5), _shifted(seed=6)
    before = _by_task(fitted, later, "medium")
    adapted = _copy(fitted).adapt(live)
    after = _by_task(adapted, later, "medium")
    assert before[CODE] > 0.6 and after[CODE] < 0.3
    tasks, medium = np.asarray(live.tasks), live.scores_raw[:, TOY_MODELS.index("medium")]
    for task in set(later.tasks) - {CODE}:
        seen = medium[tasks == task].mean()
        assert abs(after[task] - seen) <= abs(before[task] - seen) + 0.05, task
    assert adapted.adaptation_[0]["queries"] == live.n_queries


def test_feedback_for_one_model_corrects_that_model_only(fitted):
    adapted = _copy(fitted).adapt(_shifted(models=("medium",)))
    later = _shifted(seed=6)
    before, after = fitted.predict(later.queries), adapted.predict(later.queries)
    for j, model in enumerate(TOY_MODELS):
        moved = np.abs(after.quality[:, j] - before.quality[:, j]).max()
        assert (moved > 0.2) if model == "medium" else (moved == 0.0), model
    np.testing.assert_array_equal(after.cost, before.cost)


def test_one_models_real_shift_does_not_move_the_models_whose_feedback_agrees(fitted):
    live = _shifted(seed=5)  # every model scored; only the medium model's outcomes moved
    adapted = _copy(fitted).adapt(live)
    step = adapted.adaptation_[0]
    assert step["alpha"] == "per model"
    assert step["models"] == [TOY_MODELS.index("medium")]
    later = _shifted(seed=6)
    before, after = fitted.predict(later.queries), adapted.predict(later.queries)
    for j, model in enumerate(TOY_MODELS):
        if model != "medium":
            np.testing.assert_array_equal(after.quality[:, j], before.quality[:, j])


def test_feedback_that_agrees_with_the_router_changes_nothing(fitted):
    agreeing = toy_dataset(n_per_task=40, seed=7)
    adapted = _copy(fitted).adapt(agreeing)
    assert adapted.adaptation_[0]["alpha"] is None  # no gain clearly above noise
    np.testing.assert_array_equal(
        adapted.predict(agreeing.queries).quality, fitted.predict(agreeing.queries).quality
    )


def test_the_rule_is_set_from_the_command_line(fitted, tmp_path, capsys):
    fitted.save(tmp_path / "r")
    _shifted().save(tmp_path / "live.parquet")
    base = ["adapt", "--router", str(tmp_path / "r"), "--data", str(tmp_path / "live.parquet")]
    assert run([*base, "--out", str(tmp_path / "default")]) == 0
    assert "corrected: medium" in capsys.readouterr().out
    assert run([*base, "--out", str(tmp_path / "strict"), "--min-z", "1000"]) == 0
    out = capsys.readouterr().out
    assert "corrected: nothing" in out and "1000 standard errors" in " ".join(out.split())
    assert "cross-validated Brier gain" in out and "needed 1000)" in " ".join(out.split())
    assert load_router(tmp_path / "strict").adaptation_[0]["alpha"] is None


def test_adaptations_add_up_are_saved_and_a_refit_drops_them(fitted, tmp_path):
    adapted = _copy(fitted).adapt(_shifted(seed=5)).adapt(_shifted(seed=8))
    assert len(adapted.adaptation_) == 2
    later = _shifted(seed=6)
    adapted.save(tmp_path / "r")
    loaded = load_router(tmp_path / "r")
    np.testing.assert_array_equal(
        loaded.predict(later.queries).quality, adapted.predict(later.queries).quality
    )
    assert not hasattr(_copy(adapted).fit(toy_dataset(n_per_task=40, seed=2)), "adapt_coef_")


def test_the_gate_counts_one_querys_scores_as_one_piece_of_evidence():
    rng = np.random.default_rng(0)
    per_query = rng.normal(0.01, 0.05, size=40)
    alone = _clustered_se(per_query, np.arange(40))
    assert alone == pytest.approx(per_query.std(ddof=1) / np.sqrt(40))
    # nine models' scores of the same 40 queries, each as good or bad as its query's: nine times
    # the rows, but no more evidence than the 40 queries hold
    copies = _clustered_se(np.repeat(per_query, 9), np.repeat(np.arange(40), 9))
    assert copies == pytest.approx(alone)
    assert np.repeat(per_query, 9).std() / np.sqrt(360) < alone / 2.5  # what counting rows gave


def _gain_table(gain: float, rows: int = 2000) -> tuple[np.ndarray, np.ndarray]:
    """`_choose`'s inputs for corrections that each lower a squared error of 0.2 by `gain`,
    give or take a little noise (the same noise whatever the gain): many standard errors clear."""
    before = np.full(rows, 0.2)
    after = before - gain + np.random.default_rng(0).normal(0.0, 0.002, rows)
    shared = np.column_stack([before, *[after] * len(ADAPT_GRID)])
    return shared, after


def test_a_gain_clearly_above_noise_but_below_the_floor_is_not_kept():
    # A Brier gain of 4e-6 at 2.3 standard errors on the router's own data was kept: significant
    # and negligible. The floor is a fraction of the estimates' own Brier score on the feedback.
    floor = MIN_RELATIVE_GAIN * 0.2
    below, verdict = _choose(*_gain_table(0.9 * floor), np.arange(2000), MIN_Z)
    assert below is None
    assert verdict["floor"] == pytest.approx(floor)
    assert verdict["baseline_brier"] == pytest.approx(0.2)
    assert verdict["brier_gain"] > 20 * verdict["standard_error"]  # the z gate alone would pass
    above, verdict = _choose(*_gain_table(1.1 * floor), np.arange(2000), MIN_Z)
    assert above == ADAPT_GRID[0] and verdict["brier_gain"] >= verdict["floor"]


def test_the_command_says_a_negligible_gain_is_below_the_floor_and_keeps_nothing(
    fitted, tmp_path, capsys
):
    # Feedback that agrees with the router: with --min-z 0 any positive gain passed the z gate,
    # and its best correction here gains 0.41% of the router's Brier score on it.
    fitted.save(tmp_path / "r")
    toy_dataset(n_per_task=40, seed=11).save(tmp_path / "agreeing.parquet")
    args = ["adapt", "--router", str(tmp_path / "r"), "--data", str(tmp_path / "agreeing.parquet")]
    assert run([*args, "--out", str(tmp_path / "a"), "--min-z", "0"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "corrected: nothing" in out
    assert "below the floor" in out and "not kept" in out
    step = load_router(tmp_path / "a").adaptation_[0]
    assert step["alpha"] is None and step["models"] == []
    assert 0 < step["cv_gain"]["brier_gain"] < step["cv_gain"]["floor"]


def test_the_bar_rises_with_the_feedback_looked_at_again_not_with_the_count_of_looks():
    from scipy.stats import norm

    weekly = [100 * k for k in range(1, 53)]  # rounds of equal size, none of which acted
    bars = [sequential_z(2.0, weekly[:k]) for k in range(1, 53)]
    assert bars[0] == 2.0 and bars[1] == pytest.approx(2.28, abs=0.01)
    assert all(a < b for a, b in itertools.pairwise(bars))
    assert bars[-1] < 4.5  # a bar raised at every look would need 8.5 by the 52nd
    # However many looks and however the feedback grows, at most twice one look's false alarms.
    for sizes in (weekly, [100 + k for k in range(500)], [100 * 2**k for k in range(30)]):
        rates = [norm.sf(sequential_z(2.0, sizes[:k])) for k in range(1, len(sizes) + 1)]
        assert sum(rates) <= 2 * norm.sf(2.0)
    # A look once the feedback doubled may spend half of what the first did.
    assert sequential_z(2.0, [50, 100]) == pytest.approx(norm.isf(norm.sf(2.0) / 2))
    assert sequential_z(2.0, [50, 100, 100]) == math.inf  # nothing new: nothing clears it
    with pytest.raises(ValueError, match="never shrink"):
        sequential_z(2.0, [100, 50])
    with pytest.raises(ValueError, match="positive"):
        sequential_z(2.0, [])


def test_adapt_updates_the_budget_calibration(fitted):
    adapted = _copy(fitted).adapt(_shifted())
    assert not np.array_equal(adapted.calibration_.quality, fitted.calibration_.quality)
    np.testing.assert_array_equal(adapted.calibration_.cost, fitted.calibration_.cost)


def test_feedback_for_an_unknown_model_or_without_scores_is_a_clear_error(fitted):
    stranger = _shifted()
    renamed = RoutingDataset.from_matrices(
        query_ids=stranger.query_ids,
        queries=stranger.queries,
        models=("small", "medium", "gigantic"),
        scores=stranger.scores_raw,
        costs=stranger.costs,
        name="live",
    )
    with pytest.raises(DataError, match="gigantic"):
        _copy(fitted).adapt(renamed)
    with pytest.raises(DataError, match="no scores"):  # refused as a dataset already
        empty = RoutingDataset.from_matrices(
            query_ids=stranger.query_ids,
            queries=stranger.queries,
            models=TOY_MODELS,
            scores=np.full(stranger.scores_raw.shape, np.nan),
            costs=stranger.costs,
            name="live",
        )
        _copy(fitted).adapt(empty)
    with pytest.raises(DataError, match="adapt takes a RoutingDataset as feedback, not list"):
        _copy(fitted).adapt(["a query"])  # type: ignore[arg-type]


def test_the_adapt_command_writes_an_adapted_router_and_keeps_the_original(
    fitted, tmp_path, capsys
):
    fitted.save(tmp_path / "r")
    live = _shifted()
    medium = TOY_MODELS.index("medium")
    rows = [  # only the medium model's outcomes were logged
        {"query": q, "model": "medium", "score": float(s)}
        for q, s in zip(live.queries, live.scores_raw[:, medium], strict=True)
    ]
    feedback = tmp_path / "feedback.jsonl"
    feedback.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    original = (tmp_path / "r" / "weights.safetensors").read_bytes()
    args = ["adapt", "--router", str(tmp_path / "r"), "--data", str(feedback)]
    assert run([*args, "--out", str(tmp_path / "a")]) == 0
    assert "corrected: medium" in capsys.readouterr().out
    assert (tmp_path / "r" / "weights.safetensors").read_bytes() == original
    adapted = load_router(tmp_path / "a")
    assert adapted.adaptation_[0]["queries"] == live.n_queries
    assert run([*args, "--out", str(tmp_path / "r")]) != 0
    assert "--out must differ" in capsys.readouterr().err


def test_only_trouter_adapts(tmp_path, capsys):
    from trouter.routers.registry import make_router

    make_router("knn", encoder="hashing:256").fit(toy_dataset(n_per_task=10)).save(tmp_path / "k")
    feedback = tmp_path / "f.parquet"
    _shifted().save(feedback)
    args = ["--router", str(tmp_path / "k"), "--data", str(feedback), "--out", str(tmp_path / "o")]
    assert run(["adapt", *args]) != 0
    assert "cannot adapt" in capsys.readouterr().err


def test_the_adapt_command_names_a_wrong_combination_of_options(fitted, tmp_path, capsys):
    fitted.save(tmp_path / "r")
    base = ["adapt", "--router", str(tmp_path / "r"), "--out", str(tmp_path / "a")]
    cases = [
        ([], "either --data FILE or --db STORE"),
        (["--data", "f.jsonl", "--db", "g.sqlite"], "either --data FILE or --db STORE"),
        (["--data", "f.jsonl", "--since", "7d"], "--since selects gateway feedback"),
        (["--db", str(tmp_path / "empty.sqlite")], "no new feedback"),
        (["--db", str(tmp_path / "typo.sqlite")], "no store at"),
        (["--data", str(tmp_path / "f.parquet"), "--min-z", "-1"], "min_z must be 0 or more"),
    ]
    _shifted().save(tmp_path / "f.parquet")
    Store(f"sqlite:///{tmp_path / 'empty.sqlite'}").close()  # a gateway's store, nothing scored
    for extra, message in cases:
        assert run([*base, *extra]) != 0
        assert message in capsys.readouterr().err
    assert not (tmp_path / "a").exists()
