"""`trouter route`: query files (text or JSONL, BOMs, stdin), --out, and valid JSON output."""

from __future__ import annotations

import json
import math

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
