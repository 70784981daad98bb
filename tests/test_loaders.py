"""The loaders of the shared benchmark data reproduce each folder's PROVENANCE.md figures."""

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from trouter.data.dataset import RoutingDataset
from trouter.data.loaders import LOADERS, load_dataset
from trouter.data.sources import llmrouter, routellm, routerbench
from trouter.errors import DataError


@pytest.fixture(scope="module")
def loaded(shared_data: Path) -> dict[str, RoutingDataset]:
    return {name: load(shared_data) for name, load in LOADERS.items()}


def model_accuracy(ds: RoutingDataset, model: str, mask: np.ndarray) -> float:
    """Mean score with missing scores as 0, the reading of the PROVENANCE figures."""
    return float(ds.scores[mask, ds.models.index(model)].mean())


def assert_cost_is_price_times_tokens(ds: RoutingDataset) -> None:
    assert ds.pool is not None
    p_in, p_out = ds.pool.prices()
    expected = (ds.tokens_in * p_in + ds.tokens_out * p_out) / 1e6
    np.testing.assert_allclose(ds.costs_raw, expected, rtol=1e-12)


def test_a_dataset_name_loads_through_load_dataset(shared_data, loaded):
    ds = load_dataset("llmrouter_9models", data_root=shared_data)
    assert ds.query_ids == loaded["llmrouter_9models"].query_ids
    assert set(LOADERS) == {"routerbench_subset", "llmrouter_9models", "routellm_evals"}


def test_an_unknown_name_or_missing_root_is_a_one_line_error(tmp_path):
    with pytest.raises(DataError, match="unknown dataset 'nope'"):
        load_dataset("nope")
    with pytest.raises(DataError, match="--data-root"):
        load_dataset("llmrouter_9models", data_root=tmp_path)


# ---------------------------------------------------------------- routerbench_subset
def test_routerbench_keeps_its_rows_split_and_real_costs(loaded):
    ds = loaded["routerbench_subset"]
    assert (ds.n_queries, ds.models) == (3178, routerbench.MODELS)
    assert Counter(ds.tasks) == {"arc-challenge": 1484, "mbpp": 427, "winogrande": 1267}
    split = ds.own_split()
    assert split is not None
    assert (split.train.n_queries, split.val.n_queries, split.test.n_queries) == (2225, 0, 953)
    assert ds.query_ids[0].startswith("rb-")
    assert "real $" in ds.cost_note
    # Recorded dollars, not an estimate: the mean ranges from mistral-7b to gpt-4.
    assert 3e-5 < ds.costs.mean(axis=0).min() < 1e-4
    assert ds.costs.mean(axis=0).argmax() == ds.models.index("gpt-4-1106-preview")


def test_routerbench_token_estimates_reproduce_the_recorded_gpt4_costs(loaded):
    # RouterBench's cost is cl100k tokens x $10 / $30 per 1M; ours are estimates of those tokens.
    ds = loaded["routerbench_subset"]
    j = ds.models.index("gpt-4-1106-preview")
    estimated = (ds.tokens_in[:, j] * 10.0 + ds.tokens_out[:, j] * 30.0) / 1e6
    assert ds.has_tokens
    assert estimated.sum() / ds.costs_raw[:, j].sum() == pytest.approx(1.0, abs=0.08)


def test_routerbench_sanity_accuracies(loaded):
    ds = loaded["routerbench_subset"]
    test = np.asarray(ds.splits) == "test"
    tasks = np.asarray(ds.tasks)
    arc, wino = test & (tasks == "arc-challenge"), test & (tasks == "winogrande")
    assert model_accuracy(ds, "gpt-4-1106-preview", arc) == pytest.approx(0.94, abs=0.01)
    assert model_accuracy(ds, "claude-v1", arc) == pytest.approx(0.91, abs=0.01)
    assert model_accuracy(ds, "mistralai/mistral-7b-chat", arc) == pytest.approx(0.66, abs=0.01)
    assert model_accuracy(ds, "gpt-4-1106-preview", wino) == pytest.approx(0.86, abs=0.01)
    assert model_accuracy(ds, "claude-v2", wino) == pytest.approx(0.48, abs=0.01)


# ---------------------------------------------------------------- llmrouter_9models
def test_llmrouter_joins_fourteen_tasks_and_dedups_the_test_side(loaded):
    ds = loaded["llmrouter_9models"]
    assert (ds.n_queries, ds.models) == (5989, llmrouter.MODELS)
    assert len(ds.task_names) == 14
    split = ds.own_split()
    assert split is not None
    assert (split.train.n_queries, split.test.n_queries) == (5608, 500 - 119)
    assert not set(split.test.queries) & set(split.train.queries)
    train = Counter(split.train.tasks)
    # PROVENANCE counts, plus the six two-label questions under their source benchmark.
    assert train["math"] == 504 and train["gpqa"] == 448 and train["human_eval"] == 164
    assert (train["arc_challenge"], train["openbook_qa"], train["mmlu"]) == (500, 500, 494)
    assert sum(train.values()) == 5608


def test_llmrouter_cost_is_list_price_times_estimated_tokens(loaded):
    ds = loaded["llmrouter_9models"]
    assert ds.pool is not None
    prices = dict(zip(ds.pool.names, ds.pool.prices()[0], strict=True))
    assert prices["gemma-2-9b-it"] == 0.1
    assert prices["qwen2.5-7b-instruct"] == prices["llama-3.1-8b-instruct"] == 0.2
    assert prices["llama3-chatqa-1.5-70b"] == prices["llama-3.3-nemotron-super-49b-v1"] == 0.9
    assert_cost_is_price_times_tokens(ds)
    assert (ds.costs_raw > 0).all()
    tasks = np.asarray(ds.tasks)
    out = ds.tokens_out[:, 0]
    assert out[tasks == "mmlu"].max() < out[tasks == "gsm8k"].min() < out[tasks == "math"].min()
    assert "output length" in ds.cost_note


def test_llmrouter_scores_lie_in_unit_interval_for_every_model(loaded):
    ds = loaded["llmrouter_9models"]
    assert not np.isnan(ds.scores_raw).any()
    assert ((ds.scores >= 0) & (ds.scores <= 1)).all()
    best = ds.models[int(ds.scores.mean(axis=0).argmax())]
    assert best == "llama-3.1-nemotron-51b-instruct"


# ---------------------------------------------------------------- routellm_evals
def test_routellm_has_three_benchmarks_with_hierarchical_tasks(loaded):
    ds = loaded["routellm_evals"]
    assert (ds.n_queries, ds.models) == (15441, routellm.MODELS)
    assert ds.splits is None  # no shipped split
    top = Counter(t.split("/")[0] for t in ds.tasks)
    assert top == {"mmlu": 14042, "gsm8k": 1319, "mt_bench": 80}
    mmlu = [t.split("/") for t in ds.tasks if t.startswith("mmlu/")]
    assert len({p[2] for p in mmlu}) == 57
    assert Counter(p[1] for p in mmlu) == {
        "humanities": 4705,
        "social_sciences": 3077,
        "stem": 3018,
        "other": 3242,
    }
    assert len({t for t in ds.tasks if t.startswith("mt_bench/")}) == 8


def test_routellm_sanity_accuracies(loaded):
    ds = loaded["routellm_evals"]
    tasks = np.asarray(ds.tasks)
    mmlu = np.char.startswith(tasks.astype(str), "mmlu/")
    gsm, mt = tasks == "gsm8k", np.char.startswith(tasks.astype(str), "mt_bench/")
    gpt4, mixtral = routellm.GPT4, routellm.MIXTRAL
    assert model_accuracy(ds, gpt4, mmlu) == pytest.approx(0.806, abs=0.001)
    assert model_accuracy(ds, mixtral, mmlu) == pytest.approx(0.681, abs=0.001)
    assert model_accuracy(ds, gpt4, gsm) == pytest.approx(0.857, abs=0.001)
    assert model_accuracy(ds, mixtral, gsm) == pytest.approx(0.638, abs=0.001)
    # MT-Bench grades 1-10 were rescaled as (g - 1) / 9.
    assert 1 + 9 * model_accuracy(ds, gpt4, mt) == pytest.approx(9.23, abs=0.01)
    assert 1 + 9 * model_accuracy(ds, mixtral, mt) == pytest.approx(8.34, abs=0.01)


def test_routellm_cost_uses_the_stated_list_prices(loaded):
    ds = loaded["routellm_evals"]
    assert ds.pool is not None
    assert ds.pool[routellm.GPT4].input_price == 10.0
    assert ds.pool[routellm.GPT4].output_price == 30.0
    assert ds.pool[routellm.MIXTRAL].input_price == 0.24
    assert_cost_is_price_times_tokens(ds)
    assert (ds.costs_raw[:, 0] > ds.costs_raw[:, 1]).all()  # GPT-4 costs more on every query
    tasks = np.asarray(ds.tasks)
    assert (ds.tokens_out[np.char.startswith(tasks.astype(str), "mmlu/")] == 1).all()
    gsm_out = ds.tokens_out[tasks == "gsm8k"]  # estimated from each model's recorded answer
    assert (gsm_out > 0).all() and 80 < gsm_out.mean() < 160
    assert len(np.unique(gsm_out)) > 100
    assert "$10/$30" in ds.cost_note and "$0.24/$0.24" in ds.cost_note
