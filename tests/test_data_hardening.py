"""Data that would corrupt routing is refused at the door, with a one-line `DataError`.

Each test states one rule of `RoutingDataset` / `import_file` (docs/data-format.md, "Checks").
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from trouter.data.dataset import RoutingDataset
from trouter.data.importer import import_file
from trouter.errors import ConfigError, DataError
from trouter.tradeoff import Calibration

HEADER = "query_id,query,task,model,score,cost\n"
ROWS = (
    "q1,What is 2+2?,math,small,1,1e-05\n"
    "q1,What is 2+2?,math,big,1,0.0002\n"
    "q2,Prove sqrt 2 irrational,math,small,0,4e-05\n"
    "q2,Prove sqrt 2 irrational,math,big,1,0.003\n"
)


def long_frame(**overrides: list[object]) -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "query_id": ["q1", "q1", "q2", "q2"],
            "query": ["a?", "a?", "b?", "b?"],
            "model": ["x", "y", "x", "y"],
            "score": [1.0, 0.0, 0.0, 1.0],
            "cost": [0.1, 0.2, 0.1, 0.2],
        }
    )
    for key, value in overrides.items():
        frame[key] = value
    return frame


def csv(tmp_path, text: str, name: str = "data.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------- 1. non-finite numbers
@pytest.mark.parametrize("column", ["cost", "tokens_in", "tokens_out", "latency"])
@pytest.mark.parametrize("value", [np.inf, -np.inf])
def test_an_infinite_cost_or_token_count_is_refused_like_a_negative_one(column, value):
    frame = long_frame(**{column: [0.1, value, 0.1, 0.2]})
    with pytest.raises(DataError, match=f"column '{column}' is (not finite|negative) in rows 1"):
        RoutingDataset(frame)


def test_import_names_the_file_row_of_an_infinite_cost(tmp_path):
    path = csv(tmp_path, HEADER + ROWS.replace("big,1,0.0002", "big,1,inf"))
    with pytest.raises(DataError, match=r"data.csv: column 'cost' is not finite in rows 2;"):
        import_file(path)


def test_a_missing_cost_stays_allowed():
    ds = RoutingDataset(long_frame(cost=[0.1, np.nan, 0.1, 0.2]))
    np.testing.assert_allclose(ds.costs[:, 1], [0.2, 0.2])


def test_a_calibration_with_non_finite_costs_refuses_presets_and_budgets():
    quality = np.array([[0.5, 0.9], [0.4, 0.8]])
    cal = Calibration(quality, np.array([[0.001, np.nan], [0.001, 0.01]]))
    with pytest.raises(ConfigError, match=r"non-finite predicted cost.*lambda=NUMBER"):
        cal.lambda_for_preset("balanced")
    with pytest.raises(ConfigError, match="non-finite"):
        cal.lambda_for_budget(1.0)
    finite = Calibration(quality, np.array([[0.001, 0.011], [0.001, 0.01]]))
    assert finite.lambda_for_preset("balanced") == pytest.approx(1 / 0.01)


# ---------------------------------------------------------------------- 2. unscored models
def test_a_model_without_any_score_is_refused():
    frame = long_frame(score=[1.0, np.nan, 0.0, np.nan])
    with pytest.raises(DataError, match="model 'y' has no scores; add scores, or drop its rows"):
        RoutingDataset(frame)


def test_a_model_in_the_model_list_without_rows_is_refused():
    with pytest.raises(DataError, match="model 'z' has no scores"):
        RoutingDataset(long_frame(), models=["x", "y", "z"])


def test_a_dataset_without_any_score_is_refused(tmp_path):
    with pytest.raises(DataError, match="no scores at all"):
        RoutingDataset(long_frame(score=[np.nan] * 4))
    path = csv(
        tmp_path,
        HEADER
        + "".join(r.replace(",1,", ",,").replace(",0,", ",,") for r in ROWS.splitlines(True)),
    )
    with pytest.raises(DataError, match=r"^data.csv: the dataset has no scores at all"):
        import_file(path)


def test_import_refuses_a_ghost_model_and_names_the_file(tmp_path):
    ghost = "q1,What is 2+2?,math,ghost,,0.1\nq2,Prove sqrt 2 irrational,math,ghost,,0.1\n"
    with pytest.raises(DataError, match=r"^data.csv: model 'ghost' has no scores"):
        import_file(csv(tmp_path, HEADER + ROWS + ghost))


def test_some_missing_scores_are_not_observed_and_count_as_zero(tmp_path):
    path = csv(tmp_path, HEADER + ROWS.replace("big,1,0.0002", "big,,0.0002"))
    ds = import_file(path)
    assert np.isnan(ds.scores_raw[0, 1]) and ds.scores[0, 1] == 0.0
    assert ds.scores.tolist() == [[1.0, 0.0], [0.0, 1.0]]


# ---------------------------------------------------------------------- 3. byte-order marks
@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".json"])
def test_a_file_with_a_byte_order_mark_imports(tmp_path, suffix):
    records = [
        {"query": "What is 2+2?", "model": "small", "score": 1},
        {"query": "What is 2+2?", "model": "big", "score": 0},
    ]
    if suffix == ".csv":
        text = "query,model,score\nWhat is 2+2?,small,1\nWhat is 2+2?,big,0\n"
    elif suffix == ".jsonl":
        text = "".join(json.dumps(r) + "\n" for r in records)
    else:
        text = json.dumps(records)
    path = tmp_path / f"bom{suffix}"
    path.write_bytes(b"\xef\xbb\xbf" + text.encode())
    ds = import_file(path)
    assert ds.models == ("small", "big") and ds.queries == ["What is 2+2?"]


# ---------------------------------------------------------------------- 5. import: columns and cells
def test_a_long_file_without_its_score_column_says_so(tmp_path):
    path = csv(tmp_path, "query_id,query,model,cost\nq1,a,m,0.1\n")
    with pytest.raises(DataError, match="missing column\\(s\\) score for the long layout"):
        import_file(path)


def test_csv_ids_queries_and_models_are_read_as_text(tmp_path):
    path = csv(
        tmp_path,
        "query_id,query,model,score\n01,None,NA,1\n1,null,7,0\n,2.50,NA,1\n",
    )
    ds = import_file(path)
    assert ds.query_ids[:2] == ["01", "1"]  # not merged, and not 1.0 although a cell is empty
    assert ds.queries == ["None", "null", "2.50"]
    assert ds.models == ("NA", "7")


def test_whole_number_ids_from_json_keep_their_spelling(tmp_path):
    path = tmp_path / "ids.jsonl"
    rows = [{"query_id": 1, "query": "a"}, {"query_id": None, "query": "b"}]
    path.write_text("".join(json.dumps({**r, "model": "m", "score": 1}) + "\n" for r in rows))
    assert import_file(path).query_ids[0] == "1"


def test_missing_numbers_and_flags_keep_their_documented_spellings(tmp_path):
    path = csv(tmp_path, "query,model,score,cost\na,m,1,NA\nb,m,true,null\nc,m,FALSE,n/a\nd,m,,\n")
    ds = import_file(path)
    np.testing.assert_array_equal(ds.scores_raw[:3, 0], [1.0, 1.0, 0.0])
    assert np.isnan(ds.scores_raw[3, 0]) and np.isnan(ds.costs_raw).all()


@pytest.mark.parametrize("value", [["a"], {"text": "a"}, 123, True])
def test_a_query_that_is_not_a_string_is_refused(tmp_path, value):
    path = tmp_path / "q.jsonl"
    rows = [{"query": "fine", "model": "m", "score": 1}, {"query": value, "model": "m", "score": 0}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DataError, match="column 'query' has values that are not text in rows 2"):
        import_file(path)


def test_one_query_id_with_two_tasks_is_refused(tmp_path):
    path = csv(tmp_path, "query_id,query,model,score,task\nq1,a,m,1,math\nq1,a,n,0,code\n")
    with pytest.raises(DataError, match="query_id\\(s\\) q1 carry different tasks"):
        import_file(path)
    with pytest.raises(DataError, match="q1 carry different tasks"):
        RoutingDataset(long_frame(task=["math", "code", "t", "t"]))


def test_a_task_given_on_some_rows_of_a_query_only_is_that_querys_task(tmp_path):
    path = csv(tmp_path, "query,model,score,task\na,m,1,\na,n,0,math\nb,m,1,code\nb,n,1,code\n")
    assert import_file(path).tasks == ["math", "code"]


def test_ignoring_a_column_the_file_does_not_have_is_an_error(tmp_path):
    path = csv(tmp_path, "query,small,big,notes\na,1,0,x\n")
    with pytest.raises(DataError, match="no column 'nosuchcol' to ignore"):
        import_file(path, ignore_columns=["nosuchcol"])
    assert import_file(path, ignore_columns=["notes"]).models == ("small", "big")


def test_a_csv_row_with_an_extra_field_is_named(tmp_path):
    for text, line in [
        ("query,model,score\na,m,1,extra\nb,m,0\n", 2),
        ("query,model,score\na,m,1\nb,m,0,x\n", 3),
    ]:
        path = csv(tmp_path, text)
        with pytest.raises(DataError, match=f"line {line} has 4 fields but the header has 3"):
            import_file(path)


@pytest.mark.parametrize(
    ("name", "text", "line", "fields"),
    [
        ("short.csv", "query,model,score\na,m,1\nb,m\n", 3, 2),
        ("short.csv", "query,model,score\na,m\nb,m,0\n", 2, 2),
        ("short.csv", "query,model,score\na,m,1\n\nb\n", 4, 1),  # a blank line is skipped
        ("short.tsv", "query\tmodel\tscore\na\tm\n", 2, 2),
    ],
)
def test_a_row_with_a_missing_field_is_named(tmp_path, name, text, line, fields):
    # Filled with empty cells, the row would import with a missing score, silently.
    with pytest.raises(DataError) as caught:
        import_file(csv(tmp_path, text, name))
    message = str(caught.value)
    assert f"{name}: line {line} has {fields} field" in message
    assert "the header has 3" in message and "\n" not in message


def test_empty_fields_written_out_are_not_missing_fields(tmp_path):
    path = csv(tmp_path, "query,model,score,cost\na,m,1,\nb,m,,\n\n")
    assert import_file(path).n_queries == 2
    leading_blank = csv(tmp_path, "\nquery,model,score\na,m,1\n", "blank.csv")
    assert import_file(leading_blank).n_queries == 1


def test_a_long_prompt_is_one_field_however_long(tmp_path):
    long = "word " * 40_000  # 200,000 characters, past the csv module's default field cap
    path = csv(tmp_path, f"query,model,score\n{long},m,1\n")
    assert import_file(path).queries == [long]


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("dup.csv", "query,model,score,score\na,m,1,0\n"),
        ("dup.jsonl", '{"query": "a", "model": "m", "score": 1, "score": 0}\n'),
    ],
)
def test_a_repeated_column_name_is_refused(tmp_path, name, text):
    with pytest.raises(DataError, match=r"'score' .*more than once"):
        import_file(csv(tmp_path, text, name))


# ---------------------------------------------------------------------- 6. the cost note
def test_data_without_costs_says_its_costs_are_missing(tmp_path, capsys):
    from trouter.cli import run

    path = csv(tmp_path, "query,model,score\na,small,1\na,big,0\n")
    assert run(["import", str(path), "--out", str(tmp_path / "d.parquet")]) == 0
    printed = capsys.readouterr().out
    assert "as given" not in printed
    assert "cost: missing (the data has no costs: every cost counts as $0" in printed
    assert RoutingDataset.load(tmp_path / "d.parquet").cost_note.startswith("missing")
    assert "as given" in import_file(csv(tmp_path, HEADER + ROWS)).cost_note


# ---------------------------------------------------------------------- 8. saving
def test_an_interrupted_save_keeps_the_old_file_and_leaves_no_temp_file(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    out = tmp_path / "d.parquet"
    RoutingDataset(long_frame(), name="old").save(out)
    real_write = pq.write_table

    def write_then_interrupt(table, where, **kwargs):
        real_write(table, where, **kwargs)  # the whole file is written ...
        raise KeyboardInterrupt  # ... and Ctrl-C arrives before the rename

    monkeypatch.setattr(pq, "write_table", write_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        RoutingDataset(long_frame(score=[0.0, 0.0, 0.0, 1.0]), name="new").save(out)
    assert RoutingDataset.load(out).name == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["d.parquet"]


def test_save_does_not_use_a_fixed_temp_name(tmp_path):
    out = tmp_path / "d.parquet"
    (tmp_path / "d.parquet.tmp").mkdir()  # e.g. left by another writer: not ours to touch
    RoutingDataset(long_frame()).save(out)
    assert RoutingDataset.load(out).n_queries == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.parquet", "d.parquet.tmp"]


# ---------------------------------------------------------------------- 9. Python API
@pytest.mark.parametrize("column", ["query_id", "query", "model"])
def test_a_missing_id_query_or_model_is_refused(column):
    frame = long_frame()
    frame[column] = frame[column].astype(object)
    frame.loc[2, column] = None
    with pytest.raises(DataError, match=f"column '{column}' is missing \\(None / NaN\\) in rows 2"):
        RoutingDataset(frame)


def test_a_model_list_with_repeats_is_refused():
    with pytest.raises(DataError, match="the model list names x more than once"):
        RoutingDataset(long_frame(), models=["x", "y", "x"])


# ---------------------------------------------------------------------- 11. the RouterBench recipe
def test_the_documented_routerbench_arc_recipe_imports_every_question(shared_data, tmp_path):
    """docs/data-format.md: ARC-C repeats sample_ids for different questions; the row index is
    the id to use instead."""
    folder = shared_data / "routerbench_subset" / "datasets" / "routerbench_zs"
    source = folder / "arc_challenge_train.csv"
    with pytest.raises(DataError, match="repeat the same query_id"):
        import_file(source, ignore_columns=["oracle_model_to_route_to"])
    frame = pd.read_csv(source).rename(columns={"Unnamed: 0": "query_id"})
    frame.to_csv(tmp_path / "arc_train.csv", index=False)
    ds = import_file(
        tmp_path / "arc_train.csv", ignore_columns=["sample_id", "oracle_model_to_route_to"]
    )
    assert ds.n_queries == len(frame) and ds.n_models == 11
