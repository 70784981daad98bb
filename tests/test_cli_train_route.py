"""`trouter train` and `trouter route` end to end, and their one-line errors on bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from factories import TOY_MODELS, TOY_PRICES, toy_dataset
from trouter.cli import run
from trouter.routers.registry import load_router
from trouter.taxonomy import Taxonomy

QUERY = "prove the lemma by induction, rigorous axiom"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def toy_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "toy.parquet"
    toy_dataset(n_per_task=25, seed=4).save(path)
    return path


@pytest.fixture(scope="module")
def router_dir(toy_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("router") / "r"
    code = run(
        [
            "train",
            "--data",
            str(toy_file),
            "--encoder",
            "hashing:256",
            "--param",
            "ensemble=2",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out


def one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "\n" not in err and "Traceback" not in err
    return err


def test_train_writes_a_router_directory_with_its_hyper_parameters(router_dir):
    router = load_router(router_dir)
    assert router.name == "trouter" and router.models_ == TOY_MODELS
    assert router.get_params()["ensemble"] == 2
    assert (router_dir / "config.json").is_file() and (router_dir / "weights.safetensors").is_file()


def test_route_explains_the_decision(router_dir, capsys):
    assert run(["route", QUERY, "--router", str(router_dir), "--tradeoff", "quality"]) == 0
    out = capsys.readouterr().out
    assert "->" in out and "task types:" in out
    for model in TOY_MODELS:
        assert model in out


def test_route_json_names_model_estimates_and_top_three_task_types(router_dir, capsys):
    assert run(["route", QUERY, "--router", str(router_dir), "--json"]) == 0
    decision = json.loads(capsys.readouterr().out)
    assert decision["model"] in TOY_MODELS and decision["tradeoff"] == "balanced"
    assert [e["model"] for e in decision["estimates"]] == list(TOY_MODELS)
    assert len(decision["task_types"]) == 3
    assert decision["task_types"][0]["name"] == "math/proof"


def test_route_a_file_of_queries_text_or_jsonl(router_dir, tmp_path, capsys):
    text = tmp_path / "q.txt"
    text.write_text("add the sum of numbers\n\nhello, nice weather\n")
    assert run(["route", "--file", str(text), "--router", str(router_dir)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [json.loads(line)["query"] for line in lines] == [
        "add the sum of numbers",
        "hello, nice weather",
    ]
    jsonl = tmp_path / "q.jsonl"
    jsonl.write_text(json.dumps({"query": QUERY}) + "\n" + json.dumps({"prompt": "def loop"}))
    out = tmp_path / "decisions.jsonl"
    assert run(["route", "--file", str(jsonl), "--router", str(router_dir), "--out", str(out)]) == 0
    assert len(out.read_text().splitlines()) == 2


def test_train_accepts_an_explicit_taxonomy(toy_file, tmp_path):
    taxonomy = Taxonomy.from_task_names(toy_dataset(n_per_task=2).task_names)
    path = taxonomy.save(tmp_path / "taxonomy.yaml")
    out = tmp_path / "r"
    args = ["train", "--data", str(toy_file), "--encoder", "hashing:64"]
    assert run([*args, "--taxonomy", str(path), "--out", str(out)]) == 0
    assert load_router(out).task_structure().taxonomy == taxonomy


def test_a_saved_router_routes_identically_in_a_fresh_process(router_dir, tmp_path):
    queries = toy_dataset(n_per_task=5, seed=9).queries
    file = tmp_path / "q.txt"
    file.write_text("\n".join(queries))
    code = (
        "import sys; from trouter.cli import run; "
        f"sys.exit(run(['route', '--file', {str(file)!r}, '--router', {str(router_dir)!r}]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    fresh = [json.loads(line)["model"] for line in done.stdout.splitlines()]
    here = [d.model for d in load_router(router_dir).route(queries, "balanced")]
    assert fresh == here


# ---------------------------------------------------------------------- bad input
def test_an_empty_query_is_a_one_line_error(router_dir, capsys):
    assert run(["route", "   ", "--router", str(router_dir)]) == 2
    assert "empty" in one_error_line(capsys)


def test_an_unknown_tradeoff_preset_is_a_one_line_error(router_dir, capsys):
    assert run(["route", QUERY, "--router", str(router_dir), "--tradeoff", "cheapest"]) == 2
    assert "cannot read trade-off 'cheapest'" in one_error_line(capsys)


def test_a_router_from_a_different_pool_is_a_one_line_error(router_dir, tmp_path, capsys):
    pool = tmp_path / "pool.yaml"
    other = {"models": [{"name": n, "input_price": 1.0} for n in ("a", "b")]}
    pool.write_text(yaml.safe_dump(other))
    assert run(["route", QUERY, "--router", str(router_dir), "--pool", str(pool)]) == 2
    assert "trained for models small, medium, large" in one_error_line(capsys)
    same = {"models": [{"name": n, "input_price": TOY_PRICES[n][0]} for n in TOY_MODELS]}
    pool.write_text(yaml.safe_dump(same))
    assert run(["route", QUERY, "--router", str(router_dir), "--pool", str(pool)]) == 0


def test_corrupted_weights_are_a_one_line_error(router_dir, tmp_path, capsys):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.json").write_text((router_dir / "config.json").read_text())
    (broken / "weights.safetensors").write_bytes(b"\x00 not weights")
    assert run(["route", QUERY, "--router", str(broken)]) == 2
    assert "corrupted" in one_error_line(capsys)


def test_a_missing_router_or_a_bad_request_is_a_one_line_error(router_dir, tmp_path, capsys):
    assert run(["route", QUERY, "--router", str(tmp_path / "nowhere")]) == 2
    assert "not a router directory" in one_error_line(capsys)
    assert run(["route", "--router", str(router_dir)]) == 2
    assert "either a query" in one_error_line(capsys)
    assert run(["train", "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path)]) == 2
    assert "unknown dataset" in one_error_line(capsys)


def test_bad_param_syntax_is_a_one_line_error(toy_file, tmp_path, capsys):
    args = ["train", "--data", str(toy_file), "--encoder", "hashing:64", "--out", str(tmp_path)]
    assert run([*args, "--param", "beta"]) == 2
    assert "NAME=VALUE" in one_error_line(capsys)
    assert run([*args, "--param", "no_such_thing=1"]) == 2
    assert "no_such_thing" in one_error_line(capsys)


def test_quickstart_benchmarks_trains_and_explains_on_the_bundled_data(tmp_path, capsys):
    out = tmp_path / "qs"
    args = ["quickstart", "--out", str(out), "--encoder", "hashing:64", "--routers", "knn"]
    args += ["--param", "ensemble=1", "--param", "max_epochs=3"]  # a quick TRouter for the test
    assert run(args) == 0
    printed = capsys.readouterr().out
    assert "explained decisions" in printed and printed.count("task types:") == 4
    report = json.loads((out / "bench" / "report.json").read_text())
    assert {r["router"] for r in report["rows"]} == {"knn", "zero", "oracle"}
    assert (out / "bench" / "cost_quality.png").is_file()
    assert load_router(out / "router").name == "trouter"


def test_an_out_path_that_is_a_file_is_a_one_line_error_before_the_fit(toy_file, tmp_path, capsys):
    taken = tmp_path / "notes.txt"
    taken.write_text("keep me")
    args = ["train", "--data", str(toy_file), "--encoder", "hashing:64", "--out", str(taken)]
    assert run(args) == 2
    assert "is a file; give a directory" in capsys.readouterr().err
    assert taken.read_text() == "keep me"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--router", "knn", "--param", "k=abc"], "k must be int or None, got 'abc'"),
        (["--router", "knn", "--param", "k=1.5"], "k must be int or None, got 1.5"),
        (["--router", "knn", "--param", "temperature=nan"], "temperature must be float"),
        (["--router", "knn", "--param", "seed=1"], "give the seed with --seed"),
        (["--router", "oracle"], "is for evaluation only"),
    ],
)
def test_settings_that_cannot_work_are_one_line_errors_before_the_fit(
    toy_file, tmp_path, capsys, args, message
):
    out = tmp_path / "r"
    assert (
        run(["train", "--data", str(toy_file), "--encoder", "hashing:64", *args, "--out", str(out)])
        == 2
    )
    assert message in one_error_line(capsys)
    assert not out.exists()
