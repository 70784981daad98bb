"""Structured output: schema in response_format, validation, repair, prompt-only fallback."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, Field

from trouter.llm import LLMClient, RetryPolicy, Structured, StructuredFailure, parse_json
from trouter.pool import ModelSpec
from trouter.store import Store
from trouter.testing import FakeOpenAI, FakeRequest, Reply, Status


class Answer(BaseModel):
    answer: int
    reason: str = Field(min_length=1)


ASK = [{"role": "system", "content": "You add."}, {"role": "user", "content": "2+2?"}]
GOOD = json.dumps({"answer": 4, "reason": "arithmetic"})


@pytest.fixture
def server():
    with FakeOpenAI(lambda req: Reply(content=GOOD)) as s:
        yield s


@pytest.fixture
def client():
    return LLMClient(Store("sqlite://"), retry=RetryPolicy(max_attempts=2, base_delay=0.01))


def spec_for(server: FakeOpenAI) -> ModelSpec:
    return ModelSpec(name="gen", model="fake-model", base_url=server.url, timeout_s=1.0)


async def test_sends_the_json_schema_and_returns_a_validated_value(server, client):
    out = await client.structured(spec_for(server), ASK, Answer, temperature=0.0)
    assert isinstance(out, Structured) and out.ok
    assert out.value == Answer(answer=4, reason="arithmetic") and out.attempts == 1
    fmt = server.completions[0].body["response_format"]
    assert fmt["type"] == "json_schema"
    assert fmt["json_schema"]["schema"]["required"] == ["answer", "reason"]


async def test_wrong_shape_is_sent_back_with_the_error_and_repaired(server, client):
    server.script(Reply(content='{"answer": "four"}'), Reply(content=f"```json\n{GOOD}\n```"))
    out = await client.structured(spec_for(server), ASK, Answer)
    assert isinstance(out, Structured) and out.attempts == 2
    repair = server.completions[1].messages
    assert repair[-2] == {"role": "assistant", "content": '{"answer": "four"}'}
    assert "answer" in repair[-1]["content"] and "integer" in repair[-1]["content"]


async def test_never_valid_output_is_a_counted_failure_not_a_crash(server, client):
    server.handler = lambda req: Reply(content="I think the answer is 4.")
    out = await client.structured(spec_for(server), ASK, Answer, max_attempts=3)
    assert isinstance(out, StructuredFailure) and not out.ok
    assert out.attempts == 3 and "not valid JSON" in out.error
    assert client.usage.structured_failures == 1
    assert len(server.completions) == 3


async def test_an_endpoint_refusing_response_format_gets_the_schema_in_the_prompt(server, client):
    def strict_server(req: FakeRequest) -> Reply | Status:
        if "response_format" in req.body:
            return Status(400, message="response_format is not supported")
        return Reply(content=GOOD)

    server.handler = strict_server
    spec = spec_for(server)
    out = await client.structured(spec, ASK, Answer)
    assert isinstance(out, Structured)
    fallback = server.completions[1]
    assert "response_format" not in fallback.body
    assert fallback.messages[0]["role"] == "system"
    assert "You add." in fallback.messages[0]["content"]
    assert '"answer"' in fallback.messages[0]["content"]  # the schema travels in the prompt
    await client.structured(spec, [{"role": "user", "content": "3+1?"}], Answer)
    assert len(server.completions) == 3  # remembered: no second refused attempt


def test_parse_json_tolerates_fences_and_surrounding_prose():
    assert parse_json('```json\n{"a": 1}\n```') == {"a": 1}
    assert parse_json('Sure! {"a": [1, 2]} Hope that helps.') == {"a": [1, 2]}
    with pytest.raises(json.JSONDecodeError):
        parse_json("no json here")
