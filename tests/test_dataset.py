import numpy as np
import pandas as pd
import pytest

from factories import TOY_MODELS, toy_dataset
from trouter.data.dataset import RoutingDataset
from trouter.errors import DataError


def long_rows(**overrides):
    frame = pd.DataFrame(
        {
            "query_id": ["q1", "q1", "q2", "q2"],
            "query": ["a?", "a?", "b?", "b?"],
            "task": ["t1", "t1", "t2", "t2"],
            "model": ["x", "y", "x", "y"],
            "score": [1.0, 0.0, np.nan, 1.0],
            "cost": [0.1, 0.2, 0.1, np.nan],
        }
    )
    for key, value in overrides.items():
        frame[key] = value
    return frame


def test_matrix_views_follow_query_and_model_order():
    ds = RoutingDataset(long_rows())
    assert ds.models == ("x", "y")
    assert ds.query_ids == ["q1", "q2"]
    np.testing.assert_array_equal(ds.scores, [[1.0, 0.0], [0.0, 1.0]])  # missing score counts as 0
    assert np.isnan(ds.scores_raw[1, 0])
    np.testing.assert_allclose(ds.costs, [[0.1, 0.2], [0.1, 0.2]])  # missing cost: model mean


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"score": [1.0, 2.0, 0.0, 0.0]}, r"\[0, 1\]; rows 1"),
        ({"score": [1.0, "high", 0.0, 0.0]}, "non-numeric values in rows 1"),
        ({"model": ["x", "x", "x", "y"]}, "duplicate .* rows 0, 1"),
        ({"cost": [0.1, -1.0, 0.1, 0.1]}, "negative in rows 1"),
        ({"query": ["a?", "other", "b?", "b?"]}, "q1 carry different query texts"),
    ],
)
def test_validation_names_the_offending_rows(override, message):
    with pytest.raises(DataError, match=message):
        RoutingDataset(long_rows(**override))


def test_missing_column_is_named():
    with pytest.raises(DataError, match=r"missing required column.*score"):
        RoutingDataset(long_rows().drop(columns="score"))


def test_seeded_split_is_stratified_and_reproducible():
    ds = toy_dataset(n_per_task=50)
    a, b = ds.split(seed=3), ds.split(seed=3)
    assert a.test.query_ids == b.test.query_ids
    assert (a.train.n_queries, a.val.n_queries, a.test.n_queries) == (140, 20, 40)
    assert set(a.test.tasks) == set(ds.task_names)
    assert not set(a.train.query_ids) & set(a.test.query_ids)
    assert ds.split(seed=4).test.query_ids != a.test.query_ids


def test_leave_task_out_matches_path_prefix():
    ds = toy_dataset(n_per_task=5)
    train, test = ds.leave_task_out("math")
    assert set(test.tasks) == {"math/arithmetic", "math/proof"}
    assert not any(t.startswith("math") for t in train.tasks)
    with pytest.raises(DataError, match="no queries with task 'poetry'"):
        ds.leave_task_out("poetry")


def test_parquet_round_trip_keeps_everything(tmp_path):
    ds = toy_dataset(n_per_task=5)
    path = ds.save(tmp_path / "toy.parquet")
    back = RoutingDataset.load(path)
    assert back.models == TOY_MODELS
    assert back.pool == ds.pool
    assert back.name == ds.name
    np.testing.assert_array_equal(back.scores, ds.scores)
    np.testing.assert_array_equal(back.costs, ds.costs)
    assert back.tasks == ds.tasks
    assert back.has_tokens


def test_corrupt_parquet_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="not a readable Parquet file"):
        RoutingDataset.load(path)
