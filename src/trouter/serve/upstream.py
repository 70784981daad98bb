"""Forwarding to upstream models, with fallback along the decision's chain.

A proxy, not a batch client: the body goes through untouched except `model` (set to the pool
member's model id); an upstream 5xx, 429, 408/409, timeout, connection error, unreadable 200,
or 401/403/404 (the gateway's key, URL or model id for that model is wrong) moves on to the next
model at once (no backoff), until one answers or the total deadline passes; any other 4xx is the
client's problem and is returned as is. A stream counts as answered once its
first body byte arrives; before that it falls back like any other request.

Each pool model's `max_concurrency` and `requests_per_minute` hold here too (see `admission`):
a model that cannot take a request in time counts as a 429 of that model; a request that
waited its `max_queue_s` there moves on too, except at the last model of its chain.

Upstream API keys are read once at start-up (by `trouter.llm`'s resolver, from each model's
`api_key_env`) and only ever go into the upstream request's Authorization header; upstream
error bodies passed to clients are scrubbed of them.
"""

from __future__ import annotations

import asyncio
import functools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp

from trouter.llm.endpoint import resolve_endpoint
from trouter.llm.errors import ErrorKind, kind_of_status
from trouter.pool import Pool
from trouter.serve.admission import Admission, ClientLeft


@dataclass(frozen=True)
class Endpoint:
    """Where and how to call one pool model. `repr` hides the headers (they hold the key)."""

    name: str
    model_id: str
    url: str
    timeout_s: float
    headers: dict[str, str] = field(repr=False)
    secret: str | None = field(default=None, repr=False)

    def scrub(self, text: bytes) -> bytes:
        """`text` with this endpoint's key (if any) removed."""
        if self.secret and self.secret.encode() in text:
            return text.replace(self.secret.encode(), b"[redacted]")
        return text


def resolve_endpoints(pool: Pool) -> dict[str, Endpoint]:
    """Each pool model's URL, headers and key, via `trouter.llm`'s one resolver (keys are read
    now, so a missing key fails at start-up with a message naming its variable, not later)."""
    endpoints = {}
    for spec in pool:
        resolved = resolve_endpoint(spec)
        headers = {"content-type": "application/json", "accept": "application/json"}
        key = resolved.api_key if resolved.key_env is not None else None
        if key:  # a keyless local server gets no Authorization header at all
            headers.update(resolved.headers)
        endpoints[spec.name] = Endpoint(
            name=spec.name,
            model_id=spec.model,
            url=resolved.chat_url,
            timeout_s=spec.timeout_s,
            headers=headers,
            secret=key,
        )
    return endpoints


# ---------------------------------------------------------------------------------- outcomes

TIMEOUT = ErrorKind.TIMEOUT.value
CONNECTION = ErrorKind.CONNECTION.value
MALFORMED = ErrorKind.MALFORMED.value
RATE_LIMIT = ErrorKind.RATE_LIMIT.value


@dataclass(frozen=True, slots=True)
class Failure:
    """One failed attempt: which model, and its `ErrorKind` value (rate_limit, server, timeout,
    connection, malformed, auth, not_found)."""

    model: str
    kind: str
    message: str
    status: int | None = None
    retry_after: str | None = None


@dataclass(slots=True)
class Answer:
    """A successful non-streaming response, body untouched."""

    model: str
    status: int
    body: bytes
    content_type: str
    usage: dict[str, Any] | None


@dataclass(slots=True)
class Refusal:
    """Any other 4xx from the upstream: the client's error, returned as is."""

    model: str
    status: int
    body: bytes
    content_type: str


def _nothing() -> None:
    pass


@dataclass(slots=True)
class OpenStream:
    """A streaming response whose first body bytes have arrived; `close()` it when done."""

    model: str
    response: aiohttp.ClientResponse
    chunks: AsyncIterator[bytes]
    first: bytes
    content_type: str
    release: Callable[[], None] = _nothing  # gives the model's concurrency slot back

    def close(self) -> None:
        """Close the upstream response (a no-op after a full read) and free the model's slot."""
        self.response.close()
        release, self.release = self.release, _nothing
        release()


@dataclass(slots=True)
class Attempts:
    """The failed attempts of one request, in order, and whether the deadline cut it short."""

    failures: list[Failure] = field(default_factory=list)
    deadline_hit: bool = False
    client_left: bool = False  # the client went away while the request waited for a model


def falls_back(status: int) -> bool:
    """Whether an upstream error status moves the request on to the next model.

    `trouter.llm`'s one error table decides: 429, 5xx, 408/409, and 401/403/404 (the gateway's
    own key, URL or model id is wrong for that model, which is no fault of the client's) fall
    back; any other 4xx is the client's error and is returned as is.
    """
    kind = kind_of_status(status)
    return kind is not None and kind.fallback


#: What one attempt along a chain gives: an answer or an open stream, a refusal, or None.
_Outcome = TypeVar("_Outcome", bound="Answer | OpenStream | Refusal | None")


class Forwarder:
    """Sends a request along a chain of pool models through one pooled `aiohttp.ClientSession`.

    aiohttp rather than httpx: on this machine httpx spent 0.6 ms (1 client) to 2 ms (128
    clients) of CPU per proxied request against aiohttp's 0.1 ms, and a gateway's added latency
    and throughput are mostly that number.
    """

    def __init__(
        self,
        endpoints: dict[str, Endpoint],
        session: aiohttp.ClientSession,
        admission: Admission | None = None,
    ) -> None:
        self.endpoints = endpoints
        self.session = session
        self.admission = admission

    async def _admit(
        self,
        name: str,
        deadline: float,
        attempts: Attempts,
        left: ClientLeft | None,
        spill: bool,
    ) -> bool:
        """Whether a request may start at `name` now (then `_release(name)` after); if not,
        the 429-like failure is recorded (or that the client left, which is no failure).
        `spill`: a model follows in the chain, so the wait here is bounded by `max_queue_s`."""
        if self.admission is None:
            return True
        refused = await self.admission.enter(name, deadline, left, spill=spill)
        if refused is None:
            return True
        if refused.client_left:
            attempts.client_left = True
            return False
        attempts.deadline_hit = attempts.deadline_hit or refused.deadline_hit
        attempts.failures.append(
            Failure(name, RATE_LIMIT, refused.message, status=429, retry_after=refused.retry_after)
        )
        return False

    def _release(self, name: str) -> None:
        if self.admission is not None:
            self.admission.leave(name)

    def _payload(self, body: dict[str, Any], endpoint: Endpoint) -> bytes:
        payload = {**body, "model": endpoint.model_id}
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

    async def _along(
        self,
        chain: Sequence[str],
        deadline: float,
        attempts: Attempts,
        once: Callable[[str], Awaitable[_Outcome]],
        left: ClientLeft | None,
    ) -> _Outcome | None:
        """`once(name)` at each model of `chain` in turn, each within its admission, until one
        gives an outcome; None when every model failed, time ran out, or the client left while
        waiting for a model. An open stream keeps its model's slot until it is closed; any
        other outcome gives it back at once."""
        for i, name in enumerate(chain):
            if deadline - time.monotonic() <= 0:
                attempts.deadline_hit = True
                return None
            if not await self._admit(name, deadline, attempts, left, i < len(chain) - 1):
                if attempts.client_left:
                    return None
                continue
            try:
                outcome = await once(name)
            except BaseException:
                self._release(name)
                raise
            if isinstance(outcome, OpenStream) and self.admission is not None:
                outcome.release = functools.partial(self._release, name)
            else:
                self._release(name)
            if outcome is not None:
                return outcome
        return None

    async def complete(
        self,
        body: dict[str, Any],
        chain: Sequence[str],
        deadline: float,
        attempts: Attempts,
        left: ClientLeft | None = None,
    ) -> Answer | Refusal | None:
        """The first usable answer along `chain`; None when every model failed or time ran out
        (or, `left` given, the client left while the request waited for a model's admission)."""

        async def once(name: str) -> Answer | Refusal | None:
            return await self._complete_once(name, body, deadline, attempts)

        return await self._along(chain, deadline, attempts, once, left)

    async def _complete_once(
        self, name: str, body: dict[str, Any], deadline: float, attempts: Attempts
    ) -> Answer | Refusal | None:
        """One attempt at `name`: its answer or refusal, or None (the failure recorded)."""
        endpoint = self.endpoints[name]
        if (timeout := _time_left(endpoint, deadline, attempts)) is None:
            return None
        try:
            async with (
                asyncio.timeout(timeout),
                self.session.post(
                    endpoint.url,
                    data=self._payload(body, endpoint),
                    headers=endpoint.headers,
                    timeout=aiohttp.ClientTimeout(total=timeout),
                ) as response,
            ):
                status = response.status
                content = await response.read()
        except TimeoutError:
            attempts.failures.append(_timeout(name, timeout))
            return None
        except aiohttp.ClientError as exc:
            attempts.failures.append(_transport(name, exc))
            return None
        content_type = response.headers.get("content-type", "application/json")
        if status >= 400:
            if falls_back(status):
                attempts.failures.append(_status_failure(name, response))
                return None
            return Refusal(name, status, endpoint.scrub(content), content_type)
        try:
            parsed = json.loads(content)
            if not isinstance(parsed, dict) or "choices" not in parsed:
                raise ValueError("no choices")
        except ValueError:
            attempts.failures.append(
                Failure(name, MALFORMED, f"{name} returned an unreadable response body")
            )
            return None
        usage = parsed.get("usage")
        return Answer(
            name, status, content, content_type, usage if isinstance(usage, dict) else None
        )

    async def open_stream(
        self,
        body: dict[str, Any],
        chain: Sequence[str],
        deadline: float,
        attempts: Attempts,
        left: ClientLeft | None = None,
    ) -> OpenStream | Refusal | None:
        """Like `complete`, for `stream: true`: succeeds once the first body bytes arrive.
        The stream holds its model's slot until it is closed."""

        async def once(name: str) -> OpenStream | Refusal | None:
            return await self._open_once(name, body, deadline, attempts)

        return await self._along(chain, deadline, attempts, once, left)

    async def _open_once(
        self, name: str, body: dict[str, Any], deadline: float, attempts: Attempts
    ) -> OpenStream | Refusal | None:
        """One attempt to open a stream at `name`; None (the failure recorded) if it failed."""
        endpoint = self.endpoints[name]
        if (timeout := _time_left(endpoint, deadline, attempts)) is None:
            return None
        response: aiohttp.ClientResponse | None = None
        try:
            async with asyncio.timeout(timeout):
                response = await self.session.post(
                    endpoint.url,
                    data=self._payload(body, endpoint),
                    headers=endpoint.headers,
                    # After the first byte, each read may wait up to the model's own timeout.
                    timeout=aiohttp.ClientTimeout(
                        total=None, sock_connect=timeout, sock_read=endpoint.timeout_s
                    ),
                )
                status = response.status
                content_type = response.headers.get("content-type", "text/event-stream")
                if status >= 400:
                    content = await response.read()
                    response.release()
                    if falls_back(status):
                        attempts.failures.append(_status_failure(name, response))
                        return None
                    return Refusal(name, status, endpoint.scrub(content), content_type)
                first = await response.content.readany()
                if first:
                    return OpenStream(name, response, _chunks(response), first, content_type)
                attempts.failures.append(
                    Failure(name, CONNECTION, f"{name} closed the stream before any data")
                )
        except TimeoutError:
            attempts.failures.append(_timeout(name, timeout))
        except aiohttp.ClientError as exc:
            attempts.failures.append(_transport(name, exc))
        if response is not None:
            response.close()
        return None


def _time_left(endpoint: Endpoint, deadline: float, attempts: Attempts) -> float | None:
    """The timeout of one attempt at `endpoint`: its own, cut to what the deadline leaves
    (None, noted, when nothing is left: waiting for a slot may have used it up)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        attempts.deadline_hit = True
        return None
    return min(endpoint.timeout_s, remaining)


async def _chunks(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The rest of a streaming body, as it arrives; the connection goes back to the pool after."""
    async for chunk in response.content.iter_any():
        yield chunk
    response.release()


def _timeout(name: str, seconds: float) -> Failure:
    return Failure(name, TIMEOUT, f"{name} did not answer within {seconds:.3g} s")


def _transport(name: str, exc: aiohttp.ClientError) -> Failure:
    if isinstance(exc, aiohttp.ClientConnectorError):
        return Failure(name, CONNECTION, f"cannot connect to {name}")
    return Failure(name, CONNECTION, f"{name} broke the connection ({type(exc).__name__})")


def _status_failure(name: str, response: aiohttp.ClientResponse) -> Failure:
    kind = kind_of_status(response.status) or ErrorKind.SERVER
    return Failure(
        name,
        kind.value,
        f"{name} answered HTTP {response.status}",
        status=response.status,
        retry_after=response.headers.get("retry-after"),
    )


def new_session(connections: int) -> aiohttp.ClientSession:
    """The gateway's one upstream session (create it inside the running event loop)."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(
            limit=connections, limit_per_host=0, keepalive_timeout=30, ttl_dns_cache=300
        ),
        timeout=aiohttp.ClientTimeout(total=None),
        trust_env=False,  # no per-request proxy / netrc lookups (they ran in a thread pool)
        auto_decompress=True,
    )
