"""The `RoutingDataset` Python API refuses a bad argument with a one-line `DataError`.

Each test states one rule a library user meets when building, narrowing, splitting or saving
a dataset in code (rather than through `trouter import`): the error names the argument and
what to do, never a pandas, numpy or pydantic exception.
"""

from __future__ import annotations

import numpy as np
import pytest

from factories import toy_dataset
from trouter.data.dataset import RoutingDataset
from trouter.errors import DataError


def matrices(**overrides: object) -> dict[str, object]:
    """`from_matrices` arguments of two queries and two models, with `overrides` applied."""
    args: dict[str, object] = {
        "query_ids": ["q1", "q2"],
        "queries": ["What is 2+2?", "Prove it."],
        "models": ["small", "big"],
        "scores": [[1.0, 1.0], [0.0, 1.0]],
    }
    return args | overrides


# ---------------------------------------------------------------------- from_matrices shapes
def test_well_shaped_matrices_build_a_dataset():
    ds = RoutingDataset.from_matrices(
        **matrices(costs=[[0.1, 0.2], [0.1, 0.2]], tokens_in=[10, 20], splits=["train", "test"])
    )
    assert ds.scores.tolist() == [[1.0, 1.0], [0.0, 1.0]]
    assert ds.tokens_in.tolist() == [[10.0, 10.0], [20.0, 20.0]]  # a per-query count is shared


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"queries": ["only one"]}, r"queries has 1 entries but query_ids has 2"),
        ({"tasks": ["math", "math", "code"]}, r"tasks has 3 entries but query_ids has 2"),
        ({"splits": ["train"]}, r"splits has 1 entries but query_ids has 2"),
        ({"scores": [[1.0, 0.0]]}, r"scores has shape \(1, 2\) but needs \(2, 2\)"),
        ({"scores": [[1.0], [0.0]]}, r"scores has shape \(2, 1\) but needs \(2, 2\)"),
        ({"scores": [1.0, 0.0]}, r"scores has shape \(2,\) but needs \(2, 2\)"),
        ({"costs": [[0.1, 0.2, 0.3]] * 2}, r"costs has shape \(2, 3\) but needs \(2, 2\)"),
        ({"tokens_in": [10, 20, 30]}, r"tokens_in has shape \(3,\) but needs \(2, 2\) or \(2,\)"),
        ({"scores": [[1.0, 0.0], [1.0]]}, r"scores is not a numeric matrix"),
        ({"scores": [["yes", "no"], ["no", "yes"]]}, r"scores is not a numeric matrix"),
        ({"query_ids": "q1"}, r"query_ids is a single string; pass a list"),
        ({"queries": "What is 2+2?"}, r"queries is a single string; pass a list"),
    ],
)
def test_from_matrices_names_the_argument_of_the_wrong_length(override, message):
    with pytest.raises(DataError, match=message):
        RoutingDataset.from_matrices(**matrices(**override))


def test_from_matrices_says_what_each_row_and_column_stands_for():
    with pytest.raises(DataError) as caught:
        RoutingDataset.from_matrices(**matrices(models=["small", "big", "huge"]))
    message = str(caught.value)
    assert "\n" not in message
    assert "one row per query_id (2) and one column per model (3)" in message


# ---------------------------------------------------------------------- model selections
def test_a_single_model_name_selects_that_model():
    ds = toy_dataset(n_per_task=3)
    one = ds.select_models("small")
    assert one.models == ("small",)
    assert one.scores.tolist() == ds.select_models(["small"]).scores.tolist()
    assert one.pool is not None and one.pool.names == ("small",)


def test_a_single_model_name_is_one_model_wherever_a_model_list_is_taken():
    ds = RoutingDataset.from_matrices(**matrices(models="small", scores=[[1.0], [0.0]]))
    assert ds.models == ("small",)
    assert RoutingDataset(ds.frame, models="small").models == ("small",)


def test_a_single_query_id_is_a_subset_of_that_query():
    ds = toy_dataset(n_per_task=3)
    one = ds.subset(ds.query_ids[4])
    assert one.query_ids == [ds.query_ids[4]]


@pytest.mark.parametrize("pooled", [True, False])
def test_selecting_no_model_is_refused(pooled):
    ds = toy_dataset(n_per_task=3)
    if not pooled:
        ds = RoutingDataset(ds.frame, name="toy")
    with pytest.raises(
        DataError,
        match=r"toy: select_models got no model names; name at least one of small, medium, large",
    ):
        ds.select_models([])


def test_selecting_a_model_twice_is_refused():
    with pytest.raises(DataError, match="toy: select_models names small more than once"):
        toy_dataset(n_per_task=3).select_models(["small", "large", "small"])


# ---------------------------------------------------------------------- saving and loading
def test_an_empty_dataset_is_refused_at_save_and_nothing_is_written(tmp_path):
    empty = toy_dataset(n_per_task=3).subset([])  # e.g. a filter that kept no query
    out = tmp_path / "empty.parquet"
    with pytest.raises(DataError, match=r"toy: the dataset has no queries; nothing to save"):
        empty.save(out)
    assert list(tmp_path.iterdir()) == []


def test_loading_a_file_of_no_rows_names_the_file(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "empty.parquet"  # as an earlier trouter saved an empty subset
    frame = toy_dataset(n_per_task=3).frame.iloc[:0]
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), out)
    with pytest.raises(DataError, match=f"{out}: the dataset file has no rows"):
        RoutingDataset.load(out)


# ---------------------------------------------------------------------- splits
@pytest.mark.parametrize("seed", [None, "7", 1.5, True, -1])
def test_a_split_needs_a_whole_number_seed(seed):
    ds = toy_dataset(n_per_task=5)
    with pytest.raises(
        DataError, match=f"split seed must be a whole number of 0 or more, not {seed!r}"
    ):
        ds.split(seed=seed)
    with pytest.raises(DataError, match="split seed must be a whole number"):
        ds.holdout(0.2, seed=seed)


def test_a_numpy_integer_seed_splits_like_the_same_int():
    ds = toy_dataset(n_per_task=5)
    assert ds.split(seed=np.int64(3)).test.query_ids == ds.split(seed=3).test.query_ids


def test_a_path_starting_with_a_tilde_is_in_the_home_folder(tmp_path, monkeypatch):
    from trouter.data.importer import import_file
    from trouter.data.loaders import load_dataset

    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(cwd)
    ds = toy_dataset(n_per_task=3)
    assert ds.save("~/data/toy.parquet") == home / "data" / "toy.parquet"
    assert list(cwd.iterdir()) == []  # no folder literally named "~"
    assert RoutingDataset.load("~/data/toy.parquet").query_ids == ds.query_ids
    (home / "mine.csv").write_text("query,model,score\na?,small,1\na?,big,0\n")
    assert import_file("~/mine.csv").models == ("small", "big")
    assert load_dataset("~/mine.csv").models == ("small", "big")  # `--data ~/mine.csv`


def test_a_subset_naming_an_unknown_query_id_is_refused():
    ds = toy_dataset(n_per_task=3)
    with pytest.raises(DataError, match=r"1 query id\(s\) the dataset does not hold \('nope'\)"):
        ds.subset([ds.query_ids[0], "nope"])
    assert ds.subset([]).n_queries == 0  # an empty selection is still a (empty) subset
