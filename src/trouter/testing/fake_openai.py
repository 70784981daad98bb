"""A real OpenAI-compatible HTTP server on 127.0.0.1 that answers, or misbehaves, on script.

It speaks just enough HTTP/1.1 (keep-alive, Content-Length bodies) and the chat-completions
protocol (JSON and SSE streaming, `usage`, `stream_options.include_usage`, `GET /v1/models`) for
the `openai` SDK, httpx and the gateway, and it gives the test full control of the bytes on the
wire: malformed JSON, 429 with Retry-After, 500s, hangs past a timeout, connections dropped before
or in the middle of a stream, slow streams.

    def answer(req: FakeRequest) -> Reply:
        return Reply(content="4" if "2+2" in req.last_user else "no idea")

    with FakeOpenAI(answer) as server:          # server.url == "http://127.0.0.1:PORT/v1"
        server.script(Status(429, retry_after=0.1), Malformed())   # the next two requests fail
        ...

Scripted actions are consumed first-in first-out (optionally per model); then the handler answers.
The server runs its own event loop in a daemon thread, or standalone:
`python -m trouter.testing.fake_openai --port 8001` answers every request instantly.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import threading
import time
from collections import deque
from typing import Any

# The script's vocabulary has its own module; importing it from here keeps working.
from trouter.testing.script import (
    Action,
    Drop,
    FakeRequest,
    Handler,
    Hang,
    Malformed,
    Reply,
    Status,
)

_REASONS = {
    200: "OK",
    400: "Bad Request",
    401: "Unauthorized",
    404: "Not Found",
    408: "Request Timeout",
    413: "Payload Too Large",
    422: "Unprocessable Entity",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


def _count_tokens(text: str) -> int:
    return max(1, len(text.split()))


# ---------------------------------------------------------------------------------- server


class FakeOpenAI:
    """See the module docstring. Thread-safe to script while running."""

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        models: tuple[str, ...] = ("fake-model",),
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fake server only listens on loopback")
        self.handler: Handler = handler or (lambda req: Reply(content=f"echo: {req.last_user}"))
        self.models = models
        self.api_key = api_key
        self.host = host
        self.port = port
        self.requests: list[FakeRequest] = []
        self._script: deque[tuple[str | None, Action]] = deque()
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.base_events.Server | None = None
        self._thread: threading.Thread | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    # -------------------------------------------------------------- scripting
    def script(self, *actions: Action, model: str | None = None) -> None:
        """Queue actions for the next requests (only those for `model`, if given)."""
        with self._lock:
            self._script.extend((model, a) for a in actions)

    def _next_action(self, req: FakeRequest) -> Action:
        with self._lock:
            for i, (model, action) in enumerate(self._script):
                if model is None or model == req.model:
                    del self._script[i]
                    return action
        return self.handler(req)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/v1"

    @property
    def completions(self) -> list[FakeRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    # -------------------------------------------------------------- lifecycle
    def start(self) -> FakeOpenAI:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            self._server = loop.run_until_complete(
                asyncio.start_server(self._serve, self.host, self.port, backlog=1024)
            )
            self.port = self._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-openai", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake OpenAI server did not start")
        return self

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            if self._server is not None:
                self._server.close()
            for writer in list(self._writers):
                writer.close()
            for task in asyncio.all_tasks(loop):
                if task is not asyncio.current_task():
                    task.cancel()

        with contextlib.suppress(RuntimeError):
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
            loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    def __enter__(self) -> FakeOpenAI:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -------------------------------------------------------------- HTTP
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                keep_alive = await self._dispatch(request, writer)
                if not keep_alive:
                    return
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return
        finally:
            self._writers.discard(writer)
            with contextlib.suppress(Exception):
                writer.close()

    async def _dispatch(self, req: FakeRequest, writer: asyncio.StreamWriter) -> bool:
        self.requests.append(req)
        if (
            self.api_key is not None
            and req.headers.get("authorization") != f"Bearer {self.api_key}"
        ):
            await _send_json(writer, 401, _error("invalid api key", "invalid_request_error"))
            return True
        if req.method == "GET" and req.path.rstrip("/").endswith("/models"):
            data = [
                {"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in self.models
            ]
            await _send_json(writer, 200, {"object": "list", "data": data})
            return True
        if req.method != "POST" or not req.path.rstrip("/").endswith("/chat/completions"):
            await _send_json(writer, 404, _error(f"no route {req.method} {req.path}", "not_found"))
            return True
        if "_invalid_json" in req.body:
            await _send_json(
                writer, 400, _error("request body is not JSON", "invalid_request_error")
            )
            return True
        action = self._next_action(req)
        return await self._act(action, req, writer)

    async def _act(self, action: Action, req: FakeRequest, writer: asyncio.StreamWriter) -> bool:
        if isinstance(action, Drop):
            writer.transport.abort()
            return False
        if isinstance(action, Hang):
            await asyncio.sleep(action.seconds)
            writer.transport.abort()
            return False
        if isinstance(action, Status):
            headers = (
                {"retry-after": f"{action.retry_after:g}"} if action.retry_after is not None else {}
            )
            body = (
                action.body
                if action.body is not None
                else json.dumps(_error(action.message, _error_type(action.code)))
            )
            await _send(writer, action.code, body.encode(), "application/json", headers)
            return True
        stream = bool(req.body.get("stream"))
        if isinstance(action, Malformed):
            if stream:
                await _send_head(writer, 200, "text/event-stream", {})
                writer.write(f"data: {action.text}\n\n".encode())
                await writer.drain()
                return False
            await _send(writer, 200, action.text.encode(), "application/json", {})
            return True
        if action.delay:
            await asyncio.sleep(action.delay)
        completion_id = f"chatcmpl-fake{next(self._ids)}"
        prompt_tokens = (
            action.prompt_tokens
            if action.prompt_tokens is not None
            else _count_tokens(req.prompt_text)
        )
        completion_tokens = (
            action.completion_tokens
            if action.completion_tokens is not None
            else _count_tokens(action.content)
        )
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        if not stream:
            message: dict[str, Any] = {"role": "assistant", "content": action.content}
            if action.tool_calls:
                message["tool_calls"] = action.tool_calls
                message["content"] = None
            payload: dict[str, Any] = {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": req.model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "finish_reason": "tool_calls"
                        if action.tool_calls
                        else action.finish_reason,
                    }
                ],
                "usage": usage,
            }
            await _send_json(writer, 200, payload, action.headers)
            return True
        return await self._stream(action, req, writer, completion_id, usage)

    async def _stream(
        self,
        action: Reply,
        req: FakeRequest,
        writer: asyncio.StreamWriter,
        completion_id: str,
        usage: dict[str, int],
    ) -> bool:
        await _send_head(
            writer, 200, "text/event-stream", {**action.headers, "transfer-encoding": "chunked"}
        )
        base = {
            "id": completion_id,
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": req.model,
        }
        pieces = [w + " " for w in action.content.split(" ")] if action.content else [""]
        pieces[-1] = pieces[-1].rstrip(" ")
        chunks = [
            {
                **base,
                "choices": [
                    {
                        "index": 0,
                        "delta": {"role": "assistant", "content": ""},
                        "finish_reason": None,
                    }
                ],
            }
        ]
        chunks += [
            {**base, "choices": [{"index": 0, "delta": {"content": p}, "finish_reason": None}]}
            for p in pieces
        ]
        chunks.append(
            {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": action.finish_reason}]}
        )
        options = req.body.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            chunks.append({**base, "choices": [], "usage": usage})
        for i, chunk in enumerate(chunks):
            if action.drop_after_chunks is not None and i >= action.drop_after_chunks:
                writer.transport.abort()
                return False
            await _write_chunk(writer, f"data: {json.dumps(chunk)}\n\n".encode())
            if action.chunk_delay:
                await asyncio.sleep(action.chunk_delay)
        await _write_chunk(writer, b"data: [DONE]\n\n")
        await _write_chunk(writer, b"")
        return True


def _error(message: str, kind: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": None, "code": None}}


def _error_type(code: int) -> str:
    return {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}.get(
        code, "server_error" if code >= 500 else "invalid_request_error"
    )


async def _read_request(reader: asyncio.StreamReader) -> FakeRequest | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = ([*lines[0].split(" ", 2), "", ""])[:3]
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            key, value = line.split(":", 1)
            headers[key.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    raw = await reader.readexactly(length) if length else b""
    try:
        body = json.loads(raw) if raw else {}
    except json.JSONDecodeError:
        body = {"_invalid_json": True}
    if not isinstance(body, dict):
        body = {"_invalid_json": True}
    return FakeRequest(method=method, path=path.split("?", 1)[0], headers=headers, body=body)


async def _send_head(
    writer: asyncio.StreamWriter, status: int, content_type: str, headers: dict[str, str]
) -> None:
    lines = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", f"content-type: {content_type}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()


async def _write_chunk(writer: asyncio.StreamWriter, data: bytes) -> None:
    writer.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
    await writer.drain()


async def _send(
    writer: asyncio.StreamWriter,
    status: int,
    body: bytes,
    content_type: str,
    headers: dict[str, str],
) -> None:
    await _send_head(writer, status, content_type, {**headers, "content-length": str(len(body))})
    writer.write(body)
    await writer.drain()


async def _send_json(
    writer: asyncio.StreamWriter,
    status: int,
    payload: dict[str, Any],
    headers: dict[str, str] | None = None,
) -> None:
    await _send(writer, status, json.dumps(payload).encode(), "application/json", headers or {})


def main() -> None:
    parser = argparse.ArgumentParser(description="An instant OpenAI-compatible server on loopback.")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--models", default="fake-model")
    args = parser.parse_args()
    server = FakeOpenAI(models=tuple(args.models.split(",")), port=args.port).start()
    print(f"fake OpenAI server at {server.url}", flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        server.stop()


if __name__ == "__main__":
    main()
