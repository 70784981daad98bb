"""What a test tells the fake OpenAI server (`trouter.testing.fake_openai`): the actions it may
script for the next requests (`Reply`, or a misbehaviour: `Status`, `Malformed`, `Hang`, `Drop`)
and the request a handler sees (`FakeRequest`); a `Handler` answers what no script covers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Action", "Drop", "FakeRequest", "Handler", "Hang", "Malformed", "Reply", "Status"]


@dataclass(frozen=True)
class Reply:
    """A successful completion. Usage defaults to whitespace-token counts of prompt and answer."""

    content: str = "ok"
    tool_calls: list[dict[str, Any]] | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str = "stop"
    delay: float = 0.0  # seconds before the response starts
    chunk_delay: float = 0.0  # seconds between stream chunks (a slow stream)
    drop_after_chunks: int | None = None  # streaming: drop the connection after this many chunks
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Status:
    """An HTTP error with an OpenAI-style error body (or `body` verbatim)."""

    code: int
    message: str = "scripted error"
    retry_after: float | None = None
    body: str | None = None


@dataclass(frozen=True)
class Malformed:
    """HTTP 200 whose body is not valid JSON (or, for streams, a broken SSE data line)."""

    text: str = '{"id": "chatcmpl-broken", "choices": [{"message": {"content": "trunc'


@dataclass(frozen=True)
class Hang:
    """Accept the request and say nothing for `seconds` (longer than the client's timeout)."""

    seconds: float = 30.0


@dataclass(frozen=True)
class Drop:
    """Close the connection without any response."""


Action = Reply | Status | Malformed | Hang | Drop


@dataclass
class FakeRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]

    @property
    def model(self) -> str:
        return str(self.body.get("model", ""))

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The request's messages that are objects (a fake must answer odd bodies, not crash)."""
        messages = self.body.get("messages")
        return [m for m in messages if isinstance(m, dict)] if isinstance(messages, list) else []

    @property
    def last_user(self) -> str:
        for message in reversed(self.messages):
            if message.get("role") == "user":
                content = message.get("content", "")
                if isinstance(content, list):
                    return " ".join(
                        str(text)
                        for p in content
                        if isinstance(p, dict) and (text := p.get("text")) is not None
                    )
                return str(content)
        return ""

    @property
    def prompt_text(self) -> str:
        return "\n".join(str(m.get("content", "")) for m in self.messages)


Handler = Callable[[FakeRequest], Action]
