"""`trouter label` reruns and options: a rerun with other request options (max tokens,
temperature, system prompt) asks again instead of keeping answers to another request, and bad
options are one-line errors before any call."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from trouter.cli import run
from trouter.synth.items import ItemsFile, SynthItem
from trouter.testing import FakeOpenAI, FakeRequest, Reply

MODELS = ("cheap", "dear")


def answer(req: FakeRequest) -> Reply:
    if req.model == "judge":
        return Reply(content="Score: 8/10")
    words = req.last_user.split()
    return Reply(content=f"The answer is {int(words[2]) * 2}.")


@pytest.fixture
def setup(tmp_path: Path):
    with FakeOpenAI(answer, models=(*MODELS, "judge")) as server:
        items = [
            SynthItem(
                query=f"What is {i} + {i}?",
                reference=str(2 * i),
                answer_format="numeric",
                path="math/arithmetic",
                generator="gen",
                prompt_version="test/1",
            )
            for i in range(5)
        ]
        ItemsFile(tmp_path / "items.jsonl").append(items)
        pool = {
            "models": [
                {"name": n, "base_url": server.url, "input_price": 1.0, "output_price": 2.0}
                for n in MODELS
            ]
        }
        (tmp_path / "pool.yaml").write_text(yaml.safe_dump(pool))
        yield server, tmp_path


def label_args(tmp: Path, *extra: str) -> list[str]:
    return [
        "label",
        str(tmp / "items.jsonl"),
        "--pool",
        str(tmp / "pool.yaml"),
        "--out",
        str(tmp / "out" / "labels.parquet"),
        *extra,
    ]


@pytest.mark.parametrize(
    "changed",
    [["--max-tokens", "5"], ["--temperature", "0.7"], ["--system", "Answer in French."]],
)
def test_a_rerun_with_other_request_options_asks_again(setup, capsys, changed):
    server, tmp = setup
    assert run(label_args(tmp)) == 0
    before = len(server.completions)
    assert run(label_args(tmp, *changed)) == 0
    out = capsys.readouterr().out
    assert len(server.completions) - before == 5 * len(MODELS)
    assert "10 redone because the request changed" in out
    assert run(label_args(tmp, *changed)) == 0  # the same options again: all kept
    assert len(server.completions) - before == 5 * len(MODELS)
