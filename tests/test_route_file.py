"""`trouter route`: query files (text or JSONL, BOMs, stdin), --out, and valid JSON output."""

from __future__ import annotations

import io
import json
import math
import os
import sys
import threading

import numpy as np
import pytest

from factories import TOY_MODELS, toy_dataset
from trouter.cli import run
from trouter.data.dataset import RoutingDataset
from trouter.routers.registry import make_router

QUERY = "prove the lemma by induction, rigorous axiom"


@pytest.fixture(scope="module")
def router_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("router") / "knn"
    make_router("knn", encoder="hashing:64").fit(toy_dataset(n_per_task=10, seed=1)).save(out)
    return out


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err, err
    return err


def routed(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [json.loads(line)["query"] for line in capsys.readouterr().out.splitlines()]


# ---------------------------------------------------------------------- 1. valid JSON only
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # the cost model on inf costs
def test_route_json_prints_null_not_nan_for_an_unknown_cost(tmp_path, capsys):
    """A router fitted (bypassing the checks) on an infinite cost predicts NaN for that model."""
    toy = toy_dataset(n_per_task=5, seed=2)
    frame = toy.frame.copy()
    frame.loc[frame["model"] == "medium", "cost"] = np.inf
    broken = RoutingDataset(frame, models=TOY_MODELS, validate=False)
    out = tmp_path / "r"
    make_router("knn", encoder="hashing:64").fit(broken).save(out)
    assert run(["route", QUERY, "--router", str(out), "--json", "--tradeoff", "lambda=1"]) == 0
    text = capsys.readouterr().out
    decision = json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in JSON output"))
    medium = next(e for e in decision["estimates"] if e["model"] == "medium")
    assert medium["cost"] is None and medium["utility"] is None
    assert all(math.isfinite(e["quality"]) for e in decision["estimates"])
    queries = tmp_path / "q.txt"
    queries.write_text(QUERY + "\n")
    assert run(["route", "--file", str(queries), "--router", str(out), "--tradeoff", "1"]) == 0
    line = capsys.readouterr().out.strip()
    json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} in JSON output"))
    # presets need a finite calibration: a one-line error, not everything routed to one model
    assert run(["route", QUERY, "--router", str(out)]) == 2
    assert "non-finite predicted cost" in one_error_line(capsys)


# ---------------------------------------------------------------------- 3. encodings
def route_file(path, router_dir, *extra: str) -> int:
    return run(["route", "--file", str(path), "--router", str(router_dir), *extra])


def test_a_file_that_is_not_utf8_is_a_one_line_error(router_dir, tmp_path, capsys):
    path = tmp_path / "latin1.txt"
    path.write_bytes("café olé\n".encode("latin-1"))
    assert route_file(path, router_dir) == 2
    assert "not UTF-8 text (byte 0xe9 at offset 3); save the file as UTF-8" in one_error_line(
        capsys
    )


def test_a_bom_is_not_part_of_the_first_query(router_dir, tmp_path, capsys):
    text = tmp_path / "q.txt"
    text.write_bytes("\ufeffWhat is 2+2?\nhello\n".encode())
    assert route_file(text, router_dir) == 0
    assert routed(capsys) == ["What is 2+2?", "hello"]
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_bytes('\ufeff{"query": "hi"}\n'.encode())
    assert route_file(jsonl, router_dir) == 0
    assert routed(capsys) == ["hi"]
    json_in_txt = tmp_path / "j.txt"  # every line a JSON object: read as JSONL
    json_in_txt.write_bytes('\ufeff{"query": "hi"}\n'.encode())
    assert route_file(json_in_txt, router_dir) == 0
    assert routed(capsys) == ["hi"]


# ---------------------------------------------------------------------- 4. formats, stdin, --out
def test_a_text_query_may_start_with_a_brace(router_dir, tmp_path, capsys):
    path = tmp_path / "q.txt"
    path.write_text("{x | x > 0} is what set?\nWhat is 2+2\n")
    assert route_file(path, router_dir) == 0
    assert routed(capsys) == ["{x | x > 0} is what set?", "What is 2+2"]


def test_a_jsonl_error_names_the_file_line_blank_lines_counted(router_dir, tmp_path, capsys):
    path = tmp_path / "q.jsonl"
    path.write_text('{"query": "hi"}\n\n{broken\n')
    assert route_file(path, router_dir) == 2
    assert "q.jsonl:3: not a JSON object" in one_error_line(capsys)


def test_dash_reads_the_queries_from_stdin(router_dir, monkeypatch, capsys):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"hello\nadd the sum\n")))
    assert route_file("-", router_dir) == 0
    assert routed(capsys) == ["hello", "add the sum"]


def test_a_named_pipe_is_read_like_a_file(router_dir, tmp_path, capsys):
    fifo = tmp_path / "queries"
    os.mkfifo(fifo)
    writer = threading.Thread(target=fifo.write_text, args=("hello from a pipe\n",), daemon=True)
    writer.start()
    assert route_file(fifo, router_dir) == 0
    writer.join()
    assert routed(capsys) == ["hello from a pipe"]


def test_a_single_query_with_out_writes_its_decision_there(router_dir, tmp_path, capsys):
    out = tmp_path / "one.jsonl"
    assert run(["route", QUERY, "--router", str(router_dir), "--out", str(out)]) == 0
    assert capsys.readouterr().out == ""
    [line] = out.read_text().splitlines()
    assert json.loads(line)["query"] == QUERY


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("adir", "is a directory; give a file path"),
        ("missing/x.jsonl", "missing is not an existing folder; create it first"),
        ("afile/x.jsonl", "afile is not an existing folder"),
    ],
)
def test_an_out_path_that_cannot_be_written_fails_before_routing(
    router_dir, tmp_path, capsys, where, message
):
    (tmp_path / "adir").mkdir()
    (tmp_path / "afile").write_text("keep")
    queries = tmp_path / "q.txt"
    queries.write_text("hello\n")
    assert route_file(queries, router_dir, "--out", str(tmp_path / where)) == 2
    assert message in one_error_line(capsys)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["adir", "afile", "q.txt"]


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_an_out_path_in_proc_is_a_one_line_error(router_dir, tmp_path, capsys):
    queries = tmp_path / "q.txt"
    queries.write_text("hello\n")
    assert route_file(queries, router_dir, "--out", "/proc/x.jsonl") == 2
    assert "--out /proc/x.jsonl cannot be written" in one_error_line(capsys)


def test_a_failed_run_keeps_the_old_out_file_and_leaves_no_temp_file(router_dir, tmp_path, capsys):
    out = tmp_path / "decisions.jsonl"
    out.write_text("old\n")
    queries = tmp_path / "q.jsonl"
    queries.write_text('{"query": "hello"}\n{"query": "   "}\n')  # an empty query: refused
    assert route_file(queries, router_dir, "--out", str(out)) == 2
    assert "empty" in one_error_line(capsys)
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["decisions.jsonl", "q.jsonl"]
