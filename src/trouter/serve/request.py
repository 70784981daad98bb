"""Reading a chat-completions request: body size, JSON, the fields the gateway itself uses.

The gateway is a proxy: it validates only what it reads (`model`, `messages`, `stream`,
`stream_options`) and passes every other field through untouched, so the upstream validates
those and its 400 reaches the client as is.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from trouter.serve.errors import GatewayError, bad_request

ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})

# A lone UTF-16 surrogate can only enter a body as a JSON escape (raw surrogate bytes are not
# UTF-8, so json.loads refuses them): bodies without one of these escapes skip the walk.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(slots=True)
class ChatRequest:
    """A validated request: the body as received plus what the gateway needs from it."""

    body: dict[str, Any]
    model: str
    stream: bool
    wants_usage: bool  # streaming only: did the client ask for the usage chunk itself?

    def routing_text(self, turns: int = 1, max_chars: int = 4000) -> str:
        """Text the router reads: the last `turns` user turns with text (0: all), oldest first.

        At most `max_chars` characters: the newest turn is kept first and from its beginning,
        as encoders truncate (so a long query is seen as it was in training); older turns fill
        what room is left.
        """
        # Turns without text (an image alone) are dropped before counting, so "the last turn"
        # is the last one the router can read.
        texts = [
            text
            for m in self.body["messages"]
            if isinstance(m, dict)
            and m.get("role") == "user"
            and (text := _text_of(m.get("content"))).strip()
        ]
        picked = texts if turns <= 0 else texts[-turns:]
        parts: list[str] = []
        room = max_chars
        for text in reversed(picked):
            if room <= 0:
                break
            parts.append(text[:room])
            room -= len(parts[-1]) + 1
        return "\n".join(reversed(parts))


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) anything over `limit` bytes before or while reading it."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            too_big = int(declared) > limit
        except ValueError:
            raise bad_request("Content-Length header is not a number") from None
        if too_big:
            raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> GatewayError:
    return GatewayError(
        413,
        f"request body is larger than this gateway's limit of {limit} bytes",
        code="request_too_large",
    )


def parse_json_object(raw: bytes, fields: str) -> dict[str, Any]:
    """The body as a JSON object; a 400 if it is empty, not JSON, or not an object (`fields`
    names what the object should hold, for the message)."""
    if not raw.strip():
        raise bad_request(f"request body is empty; send a JSON object with {fields}")
    try:
        body = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise bad_request(f"request body is not valid JSON ({exc})") from None
    if not isinstance(body, dict):
        raise bad_request(f"request body must be a JSON object, not {_kind(body)}")
    if _SURROGATE_ESCAPE.search(raw):
        _check_unicode(body)
    return body


def _check_unicode(body: dict[str, Any]) -> None:
    """A 400 naming the first string (value or key, at any depth) that is not valid Unicode:
    a lone surrogate cannot be encoded as UTF-8, so no tokenizer, upstream or log could take it."""
    stack: list[tuple[str, Any]] = [("", body)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, str):
            if _SURROGATE.search(value):
                raise bad_request(
                    f"{where} is not valid Unicode text (it holds a lone UTF-16 surrogate, "
                    "half of an escaped pair such as \\ud83d); send text that is valid UTF-8",
                    param=where,
                    code="invalid_unicode",
                )
        elif isinstance(value, dict):
            for key, item in reversed(value.items()):
                named = _printable(key)
                here = f"{where}.{named}" if where else named
                if _SURROGATE.search(key):
                    stack.append((here, key))
                else:
                    stack.append((here, item))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", item) for i, item in reversed(list(enumerate(value))))


def _printable(key: str) -> str:
    """A field name fit for a message and a log (a surrogate shown as its escape)."""
    return key.encode("utf-8", "backslashreplace").decode("utf-8")


def parse_chat_request(raw: bytes) -> ChatRequest:
    """Parse and check a chat-completions body; a 400 names the first bad field."""
    body = parse_json_object(raw, "model and messages")
    model = body.get("model")
    if model is None:
        raise bad_request("you must provide a model parameter", param="model")
    if not isinstance(model, str) or not model:
        raise bad_request(f"model must be a non-empty string, not {_kind(model)}", param="model")
    _check_messages(body.get("messages"))
    stream = body.get("stream", False)
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise bad_request(f"stream must be true or false, not {_kind(stream)}", param="stream")
    options = body.get("stream_options")
    wants_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise bad_request(
                f"stream_options must be an object, not {_kind(options)}", param="stream_options"
            )
        include = options.get("include_usage", False)
        if include is not None and not isinstance(include, bool):
            raise bad_request(
                f"stream_options.include_usage must be true or false, not {_kind(include)}",
                param="stream_options.include_usage",
            )
        wants_usage = bool(include)
    return ChatRequest(body=body, model=model, stream=stream, wants_usage=wants_usage)


def _check_messages(messages: Any) -> None:
    if messages is None:
        raise bad_request("you must provide a messages parameter", param="messages")
    if not isinstance(messages, list):
        raise bad_request(f"messages must be an array, not {_kind(messages)}", param="messages")
    if not messages:
        raise bad_request("messages must contain at least one message", param="messages")
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise bad_request(f"{where} must be an object, not {_kind(message)}", param=where)
        role = message.get("role")
        if role is None:
            raise bad_request(f"{where}.role is required", param=f"{where}.role")
        if role not in ROLES:
            raise bad_request(
                f"{where}.role must be one of {', '.join(sorted(ROLES))}, not {role!r}",
                param=f"{where}.role",
            )
        content = message.get("content")
        if content is not None and not isinstance(content, str | list):
            raise bad_request(
                f"{where}.content must be a string or an array of content parts, not {_kind(content)}",
                param=f"{where}.content",
            )
        if role == "user" and content is None:
            raise bad_request(
                f"{where}.content is required for a user message", param=f"{where}.content"
            )


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def _kind(value: Any) -> str:
    names = {dict: "an object", list: "an array", str: "a string", bool: "a boolean"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)
