"""`trouter annotate`: real queries are placed in the taxonomy top-down, one structured LLM
choice per level, by a scripted labelling model on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import pandas as pd
import pytest
import yaml

from trouter.cli import run
from trouter.data.dataset import RoutingDataset
from trouter.label.annotate import TaxonomyAnnotator
from trouter.llm import LLMClient, RetryPolicy
from trouter.pool import ModelSpec
from trouter.prompts import parse_marker
from trouter.store import Store
from trouter.taxonomy import Taxonomy, TaxonomyNode
from trouter.testing import FakeOpenAI, FakeRequest, Reply


def node(name: str, *children: TaxonomyNode, definition: str = "") -> TaxonomyNode:
    return TaxonomyNode(
        name=name, definition=definition or f"{name} queries", children=list(children)
    )


TAXONOMY = Taxonomy(
    levels=["domain", "subcategory", "difficulty"],
    roots=[
        node("math", node("algebra", node("easy"), node("hard")), node("geometry", node("any"))),
        node("chat", node("smalltalk"), node("advice")),
        node("code", node("python")),
    ],
)


def choose(query: str, level: str, path: str) -> str:
    q = query.lower()
    if level == "domain":
        if "poem" in q:
            return "none"
        if "python" in q:
            return "code"
        return "math" if ("solve" in q or "triangle" in q) else "chat"
    if path == "math":
        return "geometry" if "triangle" in q else "algebra"
    if path == "chat":
        return "advice" if "should i" in q else "smalltalk"
    return "hard" if "hard" in q else "easy"


def labeller(req: FakeRequest) -> Reply:
    marker = parse_marker(req.prompt_text)
    assert marker is not None and marker[0] == "annotate/1"
    meta = marker[1]
    first_user = next(m["content"] for m in req.messages if m["role"] == "user")
    query = first_user.split("<<<", 1)[1].split(">>>", 1)[0].strip()
    if "broken" in query:
        return Reply(content="I think it is about numbers, probably.")
    pick = choose(query, meta["level"], meta["path"])
    repairing = any(m["role"] == "assistant" for m in req.messages)
    if "ambiguous" in query and not repairing:
        pick = "Mathematics"  # not an option: the client sends the validation error back
    if "shout" in query:
        pick = pick.upper()  # wrong case: accepted as the option it names
    return Reply(content=json.dumps({"category": pick}))


QUERIES = {
    "Solve x^2 - 1 = 0.": "math/algebra/easy",
    "A hard one: solve x^5 - x + 1 = 0 exactly.": "math/algebra/hard",
    "What is the area of a triangle with sides 3, 4, 5?": "math/geometry/any",
    "Write python code to reverse a list.": "code/python",
    "Hello! How was your weekend?": "chat/smalltalk",
    "Should I take the job offer?": "chat/advice",
    "ambiguous: solve 2x = 4": "math/algebra/easy",
    "SHOUT: solve 3x = 9 NOW": "math/algebra/easy",
    "Write a poem about autumn.": "",
    "broken query": "",
}


@pytest.fixture
def server():
    with FakeOpenAI(labeller, models=("labeller",)) as s:
        yield s


def annotate(server: FakeOpenAI, queries: list[str], store: Store | None = None):
    async def go():
        client = LLMClient(store, retry=RetryPolicy(max_attempts=2, base_delay=0.01))
        annotator = TaxonomyAnnotator(
            client, ModelSpec(name="labeller", base_url=server.url), TAXONOMY
        )
        try:
            return await annotator.annotate_all(queries)
        finally:
            await client.aclose()

    return asyncio.run(go())


def test_queries_descend_the_taxonomy_level_by_level(server):
    found = annotate(server, list(QUERIES))
    assert [a.path for a in found] == list(QUERIES.values())
    by_query = {a.query: a for a in found}
    assert by_query["Solve x^2 - 1 = 0."].complete
    assert by_query["Solve x^2 - 1 = 0."].calls == 3
    # a level with a single option needs no call
    assert by_query["Write python code to reverse a list."].calls == 1
    assert by_query["What is the area of a triangle with sides 3, 4, 5?"].calls == 2
    poem = by_query["Write a poem about autumn."]
    assert not poem.complete and poem.stopped.startswith("none")
    broken = by_query["broken query"]
    assert not broken.complete and broken.stopped.startswith("no valid choice")


def test_each_request_offers_only_that_levels_options_as_an_enum(server):
    annotate(server, ["Solve x^2 - 1 = 0."])
    enums = [
        r.body["response_format"]["json_schema"]["schema"]["properties"]["category"]["enum"]
        for r in server.requests
    ]
    assert enums == [
        ["math", "chat", "code", "none"],
        ["algebra", "geometry", "none"],
        ["easy", "hard", "none"],
    ]
    assert all(r.body["temperature"] == 0 for r in server.requests)
    assert "domain = math > subcategory = algebra" in server.requests[2].last_user


def test_duplicates_are_asked_once_and_a_rerun_is_answered_from_the_cache(server, tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    queries = ["Hello! How was your weekend?"] * 5 + ["Should I take the job offer?"]
    first = annotate(server, queries, store)
    assert [a.path for a in first] == ["chat/smalltalk"] * 5 + ["chat/advice"]
    asked = len(server.requests)
    assert asked == 4
    annotate(server, queries, store)
    assert len(server.requests) == asked


def test_cli_labels_a_plain_query_file(server, tmp_path):
    (tmp_path / "pool.yaml").write_text(
        yaml.safe_dump({"models": [{"name": "labeller", "base_url": server.url}]})
    )
    TAXONOMY.save(tmp_path / "taxonomy.yaml")
    pd.DataFrame({"id": range(3), "query": list(QUERIES)[:3]}).to_json(
        tmp_path / "queries.jsonl", orient="records", lines=True
    )
    code = run(
        [
            "annotate",
            str(tmp_path / "queries.jsonl"),
            "--taxonomy",
            str(tmp_path / "taxonomy.yaml"),
            "--model",
            "labeller",
            "--pool",
            str(tmp_path / "pool.yaml"),
            "--out",
            str(tmp_path / "out.jsonl"),
        ]
    )
    assert code == 0
    out = pd.read_json(tmp_path / "out.jsonl", lines=True)
    assert out["task"].tolist() == list(QUERIES.values())[:3]
    assert out["id"].tolist() == [0, 1, 2]


def test_cli_gives_a_routing_dataset_task_paths(server, tmp_path):
    (tmp_path / "pool.yaml").write_text(
        yaml.safe_dump({"models": [{"name": "labeller", "base_url": server.url}]})
    )
    TAXONOMY.save(tmp_path / "taxonomy.json")
    queries = list(QUERIES)[4:6]
    RoutingDataset.from_matrices(
        query_ids=["q1", "q2"], queries=queries, models=["a", "b"], scores=[[1, 0], [0, 1]]
    ).save(tmp_path / "data.parquet")
    code = run(
        [
            "annotate",
            str(tmp_path / "data.parquet"),
            "--taxonomy",
            str(tmp_path / "taxonomy.json"),
            "--model",
            "labeller",
            "--pool",
            str(tmp_path / "pool.yaml"),
            "--out",
            str(tmp_path / "labelled.parquet"),
        ]
    )
    assert code == 0
    labelled = RoutingDataset.load(tmp_path / "labelled.parquet")
    assert labelled.tasks == ["chat/smalltalk", "chat/advice"]
    assert labelled.scores.tolist() == [[1, 0], [0, 1]]


def test_cli_names_a_missing_query_column(server, tmp_path):
    (tmp_path / "pool.yaml").write_text(
        yaml.safe_dump({"models": [{"name": "labeller", "base_url": server.url}]})
    )
    TAXONOMY.save(tmp_path / "taxonomy.yaml")
    pd.DataFrame({"text": ["hi"]}).to_csv(tmp_path / "q.csv", index=False)
    code = run(
        [
            "annotate",
            str(tmp_path / "q.csv"),
            "--taxonomy",
            str(tmp_path / "taxonomy.yaml"),
            "--model",
            "labeller",
            "--pool",
            str(tmp_path / "pool.yaml"),
            "--out",
            str(tmp_path / "o.csv"),
        ]
    )
    assert code == 2 and server.requests == []
