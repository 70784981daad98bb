"""`POST /v1/chat/completions`: authenticate, read, route, forward with fallback, log, answer.

Streams: the gateway asks the upstream for the final usage chunk (`stream_options.include_usage`)
so every stream's tokens and cost are logged; a client that did not ask for that chunk does not
get it (its other chunks carry `"usage": null`, which OpenAI clients ignore). The stream's
`data: [DONE]` is held back until the decision-log row is committed.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import aiohttp
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from trouter.serve.cut import RelayedOutput, charge_cut
from trouter.serve.errors import (
    SERVER_ERROR,
    UPSTREAM_ERROR,
    GatewayError,
    bad_request,
    error_bytes,
)
from trouter.serve.request import ChatRequest, parse_chat_request, read_body
from trouter.serve.trace import Trace
from trouter.serve.upstream import Answer, Attempts, OpenStream, Refusal

if TYPE_CHECKING:
    from trouter.serve.app import Gateway


log = logging.getLogger("trouter.serve")

DONE = b"data: [DONE]"
CLIENT_CLOSED = 499  # nginx's code for "the client went away"
SHUT_DOWN = 503


async def chat_completions(gw: Gateway, request: Request) -> Response:
    try:  # 401 before reading anything; counted, but not logged (no row per stranger)
        client = gw.auth.check(request.headers.get("authorization"))
    except GatewayError as exc:
        gw.metrics.request(exc.status, 0.0)
        return exc.response()
    trace = Trace(requested="", client=client, stream=False)
    try:
        return await _answer(gw, request, trace)
    except asyncio.CancelledError:
        # Cancelled before it answered: uvicorn cancels a request only when the gateway is
        # forced to stop (a client leaving does not cancel it), so the row is written now.
        _cancelled(gw, trace, "before the request was answered")
        raise


async def _answer(gw: Gateway, request: Request, trace: Trace) -> Response:
    deadline = time.monotonic() + gw.config.deadline_s
    try:
        chat = parse_chat_request(await read_body(request, gw.config.max_body_bytes))
        trace.requested, trace.stream = chat.model, chat.stream
        chain = await _decide(gw, chat, trace)
        if chat.stream:
            return await _stream(gw, request, chat, chain, deadline, trace)
        return await _complete(gw, request, chat, chain, deadline, trace)
    except GatewayError as exc:
        trace.fail(exc.status, exc.message)
        await _finish(gw, trace)
        return exc.response(trace.headers())
    except Exception as exc:  # a bug of ours: still a logged row and an OpenAI-shaped 500
        log.exception("unhandled error in the gateway (request %s)", trace.request_id)
        failure = _crashed(exc)
        trace.fail(failure.status, failure.message)
        await _finish(gw, trace)
        return failure.response(trace.headers())


def _crashed(exc: Exception) -> GatewayError:
    return GatewayError(
        500,
        f"the gateway failed on this request ({type(exc).__name__}); see its log",
        kind=SERVER_ERROR,
    )


async def _decide(gw: Gateway, chat: ChatRequest, trace: Trace) -> tuple[str, ...]:
    target = gw.names.parse(chat.model)
    # Logged for bypass requests too, so a client's score for that answer can adapt the router.
    trace.query = chat.routing_text(gw.config.route_turns, gw.config.route_max_chars)
    if not target.routed:
        assert target.model is not None
        trace.final_model = target.model
        return (target.model,)  # bypass: the client named its model, so no fallback
    assert target.tradeoff is not None
    trace.tradeoff = str(target.tradeoff)
    if not trace.query.strip():
        raise bad_request(
            "the conversation has no user text to route on; send text, or name a pool model "
            "to bypass routing",
            param="messages",
        )
    decision, trace.overhead_ms = await gw.routing.decide(trace.query, target.tradeoff)
    trace.decision, trace.lam = decision, decision.lam
    gw.metrics.decision(decision.model, trace.overhead_ms / 1000.0)
    chain = decision.chain
    limit = gw.config.max_attempts
    return chain[:limit] if limit else chain


async def _complete(
    gw: Gateway,
    request: Request,
    chat: ChatRequest,
    chain: tuple[str, ...],
    deadline: float,
    trace: Trace,
) -> Response:
    outcome = await gw.forwarder.complete(
        chat.body, chain, deadline, trace.attempts, functools.partial(_client_left, request)
    )
    _count_failures(gw, trace.attempts)
    if isinstance(outcome, Answer):
        trace.final_model = outcome.model
        trace.set_usage(outcome.usage)
        _charge(gw, trace)
        await _finish(gw, trace)
        return Response(
            outcome.body, outcome.status, headers=trace.headers(), media_type=outcome.content_type
        )
    return await _unanswered(gw, trace, outcome)


async def _stream(
    gw: Gateway,
    request: Request,
    chat: ChatRequest,
    chain: tuple[str, ...],
    deadline: float,
    trace: Trace,
) -> Response:
    body = chat.body
    hide_usage = False
    if gw.config.stream_usage and not chat.wants_usage:
        options = body.get("stream_options") or {}
        body = {**body, "stream_options": {**options, "include_usage": True}}
        hide_usage = True
    opened = await gw.forwarder.open_stream(
        body, chain, deadline, trace.attempts, functools.partial(_client_left, request)
    )
    _count_failures(gw, trace.attempts)
    if isinstance(opened, OpenStream):
        trace.final_model = opened.model
        return _Relayed(gw, trace, opened, hide_usage, chat.body["messages"])
    return await _unanswered(gw, trace, opened)


class _Relayed(StreamingResponse):
    """A relayed stream that, however its sending ends, closes the upstream response (freeing
    its model's concurrency slot), even when the client left before the body was ever read;
    then no row was written yet, so it writes the client-closed one."""

    def __init__(
        self,
        gw: Gateway,
        trace: Trace,
        opened: OpenStream,
        hide_usage: bool,
        messages: list[dict[str, Any]],
    ) -> None:
        self.gw, self.trace, self.opened, self.messages = gw, trace, opened, messages
        self.output = RelayedOutput()  # what was relayed, to charge if the stream is cut
        self.started = False
        super().__init__(
            _relay(gw, trace, opened, hide_usage, self),
            headers={**trace.headers(), "cache-control": "no-cache"},
            media_type=opened.content_type,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.opened.close()
            if not self.started:
                _cut(self.gw, self.trace, self)


async def _relay(
    gw: Gateway, trace: Trace, opened: OpenStream, hide_usage: bool, relayed: _Relayed
) -> AsyncIterator[bytes]:
    """The upstream's SSE events as they arrive; usage read on the way; [DONE] after the log.

    A stream is complete only with its `data: [DONE]`: one that breaks, ends without it, or
    sends an event whose data is not a JSON object ends with an error event and an error row.
    """
    relayed.started = True
    pending = opened.first
    done = False
    broken = ""  # why the upstream's stream is unusable, once it is
    try:
        while not broken:
            if b"\r" in pending:
                pending = pending.replace(b"\r\n", b"\n")
            *events, pending = pending.split(b"\n\n")
            out = []
            for event in events:
                data = _data_of(event)
                if data is None:
                    out.append(event + b"\n\n")  # a comment or a keep-alive
                elif data == b"[DONE]":
                    done = True  # held back until the row is committed
                elif not (data.startswith(b"{") and data.endswith(b"}")):
                    broken = "sent an unreadable stream event"
                    break
                elif b'"prompt_tokens"' in data and _take_usage(trace, data) and hide_usage:
                    continue  # the usage chunk this client did not ask for
                else:
                    out.append(event + b"\n\n")
                    if not trace.usage_seen:
                        relayed.output.add(data)
            if out:
                yield b"".join(out)
            if broken:
                break
            try:
                pending += await anext(opened.chunks)
            except StopAsyncIteration:
                if not done:
                    broken = "ended the stream without data: [DONE]"
                break
    except (aiohttp.ClientError, TimeoutError) as exc:
        broken = f"failed mid-stream ({type(exc).__name__})"
    except Exception as exc:  # a bug of ours mid-stream: logged as an error, like the rest
        log.exception("unhandled error in the gateway (stream %s)", trace.request_id)
        failure = _crashed(exc)
        trace.fail(failure.status, failure.message)
        await _finish(gw, trace)
        yield b"data: " + failure.body() + b"\n\n"
        return
    except (asyncio.CancelledError, GeneratorExit):
        _cut(gw, trace, relayed)
        raise
    finally:
        opened.close()  # frees the model's slot now, before the row is written
    if broken:
        message = f"upstream model {opened.model!r} {broken}"
        trace.fail(502, message)
        charge_cut(gw, trace, relayed.messages, relayed.output)
        gw.metrics.failure(opened.model, "mid_stream", fell_back=False)
        await _finish(gw, trace)
        yield (
            b"data: " + error_bytes(message, UPSTREAM_ERROR, code="upstream_stream_error") + b"\n\n"
        )
        return
    if pending.strip():
        yield pending
    _charge(gw, trace)
    await _finish(gw, trace)
    yield DONE + b"\n\n"


def _cut(gw: Gateway, trace: Trace, relayed: _Relayed) -> None:
    """Log a stream cut short by the client leaving, or by a forced shutdown of the gateway
    (the only other way its task is cancelled). Cannot await: the task is being cancelled."""
    _cancelled(gw, trace, "during the stream", relayed)


def _cancelled(gw: Gateway, trace: Trace, when: str, relayed: _Relayed | None = None) -> None:
    """Log a request whose task was cancelled `when` (unless its row is queued already);
    `relayed`: a stream had begun, so its prompt and relayed output are charged. Cannot await."""
    if trace.logged:
        return
    if gw.forced_shutdown:
        trace.fail(SHUT_DOWN, f"the gateway was shut down (forced) {when}", status="shutdown")
    elif relayed is not None:
        trace.fail(CLIENT_CLOSED, "the client closed the stream", status="client_closed")
    else:
        trace.fail(CLIENT_CLOSED, f"cancelled {when}", status="client_closed")
    if relayed is not None:
        charge_cut(gw, trace, relayed.messages, relayed.output)
    trace.logged = True
    gw.decision_log.write_nowait(trace.row(gw.config.log_queries))
    gw.metrics.request(trace.http_status, trace.elapsed_s())


def _data_of(event: bytes) -> bytes | None:
    """An SSE event's data (its `data:` lines joined), or None when it has none."""
    if event.startswith(b"data:") and b"\n" not in event:  # nearly every event: one data line
        return event[5:].strip()
    lines = [line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


def _take_usage(trace: Trace, data: bytes) -> bool:
    """Read usage from a usage-bearing event's data; True if it is the usage-only chunk."""
    try:
        chunk = json.loads(data)
    except ValueError:
        return False
    if not isinstance(chunk, dict) or not isinstance(chunk.get("usage"), dict):
        return False
    trace.set_usage(chunk["usage"])
    return chunk.get("choices") == []


async def _unanswered(gw: Gateway, trace: Trace, refusal: Refusal | None) -> Response:
    """The response when the chain gave no answer (nor stream): a model's refusal returned as
    is, the client gone while it waited, or the error naming every failure."""
    if refusal is not None:
        return await _refused(gw, trace, refusal)
    if trace.attempts.client_left:
        return await _left(gw, trace)
    raise _exhausted(trace.attempts)


async def _refused(gw: Gateway, trace: Trace, refusal: Refusal) -> Response:
    trace.final_model = refusal.model
    trace.fail(refusal.status, refusal.body[:500].decode("utf-8", "replace"))
    await _finish(gw, trace)
    return Response(
        refusal.body, refusal.status, headers=trace.headers(), media_type=refusal.content_type
    )


async def _client_left(request: Request) -> None:
    """Returns once the client has closed its connection (its body is read by then, so the
    server has nothing else to tell)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def _left(gw: Gateway, trace: Trace) -> Response:
    """The client went away while its request waited for a model's admission: logged as
    client-closed, with nothing asked of any upstream since."""
    trace.fail(
        CLIENT_CLOSED,
        "the client left while the request waited for a model's max_concurrency or "
        "requests_per_minute",
        status="client_closed",
    )
    await _finish(gw, trace)
    return GatewayError(trace.http_status, trace.error, kind=UPSTREAM_ERROR).response(
        trace.headers()
    )


def _exhausted(attempts: Attempts) -> GatewayError:
    failures = attempts.failures
    detail = "; ".join(f.message for f in failures) or "no model was tried"
    if attempts.deadline_hit:
        detail += "; the gateway's deadline passed"
    if failures and all(f.status == 429 for f in failures):
        waits = [f.retry_after for f in failures if f.retry_after]
        return GatewayError(
            429,
            f"every model is rate-limited: {detail}",
            kind=UPSTREAM_ERROR,
            code="upstream_rate_limited",
            headers={"retry-after": min(waits, key=_seconds)} if waits else None,
        )
    timed_out = attempts.deadline_hit or (failures and failures[-1].kind == "timeout")
    return GatewayError(
        504 if timed_out else 502,
        f"no model could answer: {detail}",
        kind=UPSTREAM_ERROR,
        code="upstream_timeout" if timed_out else "upstream_unavailable",
    )


def _seconds(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        return float("inf")


def _count_failures(gw: Gateway, attempts: Attempts) -> None:
    for failure in attempts.failures:
        gw.metrics.failure(failure.model, failure.kind, fell_back=True)


def _charge(gw: Gateway, trace: Trace) -> None:
    spec = gw.pool[trace.final_model]
    trace.cost = spec.call_cost(trace.tokens_in, trace.tokens_out)
    gw.metrics.answer(trace.final_model, trace.tokens_in, trace.tokens_out, trace.cost)


async def _finish(gw: Gateway, trace: Trace) -> None:
    """Commit the row (durably) and count the request, before the client sees the end."""
    trace.logged = True  # queued at once: cancelled while waiting, it must not be logged twice
    await gw.decision_log.write(trace.row(gw.config.log_queries))
    gw.metrics.request(trace.http_status, trace.elapsed_s())
