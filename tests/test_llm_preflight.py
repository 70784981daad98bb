"""Preflight names the model and the variable or URL at fault, before anything is spent."""

from __future__ import annotations

import socket

import pytest

from trouter.llm import PreflightError, preflight, raise_for_problems
from trouter.pool import ModelSpec
from trouter.testing import FakeOpenAI


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def server():
    with FakeOpenAI(models=("fake-model",), api_key="sk-right") as s:
        yield s


async def test_a_reachable_endpoint_with_a_good_key_passes(server, monkeypatch):
    monkeypatch.setenv("PF_KEY", "sk-right")
    spec = ModelSpec(name="ok", model="fake-model", base_url=server.url, api_key_env="PF_KEY")
    assert await preflight([spec]) == []
    assert server.completions == []  # GET /models only: nothing spent


async def test_each_problem_names_the_model_and_the_variable_or_url(server, monkeypatch):
    monkeypatch.delenv("PF_UNSET", raising=False)
    monkeypatch.setenv("PF_WRONG", "sk-wrong")
    dead = f"http://127.0.0.1:{free_port()}/v1"
    specs = [
        ModelSpec(name="nokey", base_url=server.url, api_key_env="PF_UNSET"),
        ModelSpec(name="badkey", base_url=server.url, api_key_env="PF_WRONG"),
        ModelSpec(name="down", base_url=dead),
    ]
    problems = {p.model: p for p in await preflight(specs, timeout_s=2.0)}
    assert problems["nokey"].what == "key" and "PF_UNSET" in problems["nokey"].message
    assert problems["badkey"].what == "key" and "PF_WRONG" in problems["badkey"].message
    assert problems["down"].what == "endpoint" and dead in problems["down"].message
    with pytest.raises(PreflightError, match="nothing was spent") as info:
        raise_for_problems(list(problems.values()))
    for name in ("'nokey'", "'badkey'", "'down'"):
        assert name in str(info.value)
    assert server.completions == []


async def test_an_unlisted_model_id_is_a_warning_only(monkeypatch):
    with FakeOpenAI(models=("other-model",)) as s:
        problems = await preflight([ModelSpec(name="x", model="fake-model", base_url=s.url)])
    [p] = problems
    assert not p.fatal and "fake-model" in p.message
    raise_for_problems(problems)  # warnings do not stop a run
