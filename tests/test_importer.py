"""`import_file`: a user's CSV / JSONL / Parquet in the long or wide layout, with clear errors."""

import json

import numpy as np
import pandas as pd
import pytest

from trouter.data.dataset import RoutingDataset
from trouter.data.importer import import_file
from trouter.data.loaders import load_dataset
from trouter.errors import DataError
from trouter.pool import Pool

LONG = pd.DataFrame(
    {
        "query_id": ["q1", "q1", "q2", "q2"],
        "query": [
            "What is 2+2?",
            "What is 2+2?",
            "Prove Fermat's little theorem.",
            "Prove Fermat's little theorem.",
        ],
        "task": ["math/arithmetic", "math/arithmetic", "math/proof", "math/proof"],
        "model": ["small", "big", "small", "big"],
        "score": [1.0, 1.0, 0.0, 1.0],
        "cost": [0.001, 0.01, 0.002, 0.03],
        "split": ["train", "train", "test", "test"],
    }
)
WIDE = pd.DataFrame(
    {
        "query": ["What is 2+2?", "Prove Fermat's little theorem."],
        "task": ["math/arithmetic", "math/proof"],
        "small": [1, 0],
        "big": [1, 1],
        "small|cost": [0.001, 0.002],
        "big|cost": [0.01, 0.03],
        "big|model_response": ["4", "Let p be prime..."],  # ignored, like RouterBench's
    }
)
POOL = Pool.from_prices({"small": (0.1, 0.4), "big": (2.0, 8.0)})


def write(frame: pd.DataFrame, path):
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in frame.to_dict("records")))
    else:
        frame.to_parquet(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_long_and_wide_files_give_the_same_dataset(tmp_path, suffix):
    long = import_file(write(LONG, tmp_path / f"long{suffix}"))
    wide = import_file(write(WIDE, tmp_path / f"wide{suffix}"))
    assert long.models == wide.models == ("small", "big")
    np.testing.assert_array_equal(long.scores, wide.scores)
    np.testing.assert_allclose(long.costs, wide.costs)
    assert long.tasks == wide.tasks == ["math/arithmetic", "math/proof"]
    assert long.splits == ["train", "test"]
    assert long.name == "long" and long.cost_note == "as given in the file"


def test_missing_query_ids_become_a_stable_hash_of_the_text(tmp_path):
    a = import_file(write(WIDE, tmp_path / "a.csv"))
    b = import_file(write(WIDE.iloc[::-1], tmp_path / "b.csv"))
    assert a.query_ids[0].startswith("q-")
    assert sorted(a.query_ids) == sorted(b.query_ids)
    long = import_file(write(LONG.drop(columns="query_id"), tmp_path / "c.csv"))
    assert long.query_ids == a.query_ids


def test_layout_is_detected_and_can_be_forced(tmp_path):
    path = write(WIDE, tmp_path / "wide.csv")
    with pytest.raises(DataError, match=r"missing column\(s\) model, score for the long layout"):
        import_file(path, layout="long")
    assert import_file(write(LONG, tmp_path / "long.csv"), layout="long").n_queries == 2


def test_common_column_names_are_accepted(tmp_path):
    frame = WIDE.rename(columns={"query": "prompt", "task": "eval_name"})
    frame.insert(0, "sample_id", ["s1", "s2"])
    ds = import_file(write(frame, tmp_path / "routerbench_like.csv"))
    assert ds.query_ids == ["s1", "s2"] and ds.tasks[0] == "math/arithmetic"


def test_booleans_are_scores(tmp_path):
    frame = WIDE.assign(small=[True, False], big=[True, True])
    ds = import_file(write(frame, tmp_path / "bools.jsonl"))
    np.testing.assert_array_equal(ds.scores, [[1.0, 1.0], [0.0, 1.0]])


def test_a_pool_prices_tokens_where_the_cost_is_missing(tmp_path):
    frame = WIDE.drop(columns=["small|cost", "big|cost"]).assign(
        **{"tokens_in": [10, 20], "small|tokens_out": [5, 100], "big|tokens_out": [4, 300]}
    )
    ds = import_file(write(frame, tmp_path / "tokens.csv"), pool=POOL)
    expected = POOL.cost([10, 20], [[5, 4], [100, 300]])
    np.testing.assert_allclose(ds.costs_raw, expected)
    assert ds.pool is not None and ds.pool.names == ("small", "big")
    assert "4 of 4 costs computed as pool price x tokens" in ds.cost_note


def test_input_tokens_are_estimated_from_the_text_when_absent(tmp_path):
    frame = LONG.drop(columns="cost").assign(tokens_out=[1, 1, 50, 80])
    ds = import_file(write(frame, tmp_path / "no_in.csv"), pool=POOL)
    assert (ds.tokens_in > 0).all() and (ds.costs_raw > 0).all()
    assert "estimated from the query text" in ds.cost_note


def test_a_saved_dataset_round_trips_through_the_importer(tmp_path):
    original = RoutingDataset(LONG, name="mine", pool=POOL, cost_note="measured")
    loaded = import_file(original.save(tmp_path / "mine.parquet"))
    assert (loaded.name, loaded.cost_note, loaded.models) == ("mine", "measured", original.models)
    assert loaded.pool == original.pool
    np.testing.assert_array_equal(loaded.costs, original.costs)


def test_load_dataset_accepts_a_path(tmp_path):
    assert load_dataset(str(write(WIDE, tmp_path / "w.csv"))).n_queries == 2


# ---------------------------------------------------------------- errors, each one line
@pytest.mark.parametrize(
    ("frame", "kwargs", "message"),
    [
        (
            LONG.drop(columns="score"),
            {"layout": "long"},
            r"missing column\(s\) score .* needs query, model, score",
        ),
        (WIDE.drop(columns="query"), {}, "missing column query for the wide layout"),
        (WIDE[["query", "task"]], {}, "no model score columns found"),
        (
            LONG.assign(score=[1, "high", 0, 1]),
            {},
            r"column 'score' has non-numeric values in rows 2 \(e.g. 'high'\)",
        ),
        (
            WIDE.assign(big=["1", "good"]),
            {},
            r"column 'big' has non-numeric values in rows 2 .*--ignore big",
        ),
        (
            LONG.assign(model=["small", "small", "small", "big"]),
            {},
            r"duplicate \(query_id, model\) rows 1, 2",
        ),
        (pd.concat([WIDE, WIDE.iloc[:1]]), {}, "rows 1, 3 repeat the same query text"),
        (
            LONG,
            {"pool": Pool.from_prices({"small": (1, 1)})},
            r"model\(s\) big not in the pool \(small\)",
        ),
        (LONG.assign(score=[1, 5, 0, 1]), {}, r"\[0, 1\]; rows 2 do not"),
        (LONG.assign(cost=[0.1, -1, 0.1, 0.1]), {}, "'cost' is negative in rows 2"),
        (LONG.assign(split=["train", "dev", "test", "test"]), {}, "split must be one of .* rows 2"),
        (WIDE.rename(columns={"big": "large"}), {}, r"big\|cost have no score column big"),
    ],
)
def test_bad_files_raise_one_line_errors_naming_the_problem(tmp_path, frame, kwargs, message):
    with pytest.raises(DataError, match=message) as info:
        import_file(write(frame, tmp_path / "bad.csv"), **kwargs)
    assert "\n" not in str(info.value)


def test_empty_unreadable_and_unsupported_files(tmp_path):
    (tmp_path / "empty.csv").write_text("")
    (tmp_path / "header.csv").write_text("query,model,score\n")
    (tmp_path / "broken.jsonl").write_text('{"query": "a", "model": "m", "score": 1}\n{oops\n')
    (tmp_path / "broken.parquet").write_bytes(b"PAR1 not really")
    (tmp_path / "data.xlsx").write_bytes(b"")
    cases = {
        "empty.csv": "the file is empty",
        "header.csv": "no data rows",
        "broken.jsonl": "line 2 is not valid JSON",
        "broken.parquet": "not a readable Parquet file",
        "data.xlsx": "unsupported file type .xlsx",
        "absent.csv": "file not found",
    }
    for name, message in cases.items():
        with pytest.raises(DataError, match=message):
            import_file(tmp_path / name)


# ---------------------------------------------------------------- the CLI
def test_trouter_import_writes_a_dataset_file(tmp_path, capsys):
    from trouter.cli import run

    pool = tmp_path / "pool.yaml"
    POOL.save(pool)
    source = write(WIDE, tmp_path / "mine.csv")
    out = tmp_path / "mine.parquet"
    assert run(["import", str(source), "--out", str(out), "--pool", str(pool)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out.replace("\n", "")
    ds = RoutingDataset.load(out)
    assert ds.models == ("small", "big") and ds.pool == POOL


def test_trouter_import_errors_are_one_line_and_exit_2(tmp_path, capsys):
    from trouter.cli import run

    source = write(LONG.assign(score=[1, "high", 0, 1]), tmp_path / "bad.csv")
    assert run(["import", str(source), "--out", str(tmp_path / "x.parquet")]) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1
    assert "non-numeric values in rows 2" in err
    assert not (tmp_path / "x.parquet").exists()
