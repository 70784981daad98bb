"""Forwarding to upstream models, with fallback along the decision's chain.

A proxy, not a batch client: the body goes through untouched except `model` (set to the pool
member's model id); an upstream 5xx, 429, 408/409, timeout, connection error, unreadable 200,
or 401/403/404 (the gateway's key, URL or model id for that model is wrong) moves on to the next
model at once (no backoff), until one answers or the total deadline passes; any other 4xx is the
client's problem and is returned as is. A stream counts as answered once its
first body byte arrives; before that it falls back like any other request.

Upstream API keys are read once at start-up (by `trouter.llm`'s resolver, from each model's
`api_key_env`) and only ever go into the upstream request's Authorization header; upstream
error bodies passed to clients are scrubbed of them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx

from trouter.llm.endpoint import resolve_endpoint
from trouter.llm.errors import ErrorKind, kind_of_status
from trouter.pool import Pool


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


@dataclass(slots=True)
class OpenStream:
    """A streaming response whose first body bytes have arrived."""

    model: str
    response: httpx.Response
    chunks: AsyncIterator[bytes]
    first: bytes
    content_type: str


@dataclass(slots=True)
class Attempts:
    """The failed attempts of one request, in order, and whether the deadline cut it short."""

    failures: list[Failure] = field(default_factory=list)
    deadline_hit: bool = False


def falls_back(status: int) -> bool:
    """Whether an upstream error status moves the request on to the next model.

    `trouter.llm`'s one error table decides: 429, 5xx, 408/409, and 401/403/404 (the gateway's
    own key, URL or model id is wrong for that model, which is no fault of the client's) fall
    back; any other 4xx is the client's error and is returned as is.
    """
    kind = kind_of_status(status)
    return kind is not None and kind.fallback


class Forwarder:
    """Sends a request along a chain of pool models through one pooled `httpx.AsyncClient`."""

    def __init__(self, endpoints: dict[str, Endpoint], client: httpx.AsyncClient) -> None:
        self.endpoints = endpoints
        self.client = client

    def _payload(self, body: dict[str, Any], endpoint: Endpoint) -> bytes:
        payload = {**body, "model": endpoint.model_id}
        return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()

    async def complete(
        self, body: dict[str, Any], chain: Sequence[str], deadline: float, attempts: Attempts
    ) -> Answer | Refusal | None:
        """The first usable answer along `chain`; None when every model failed or time ran out."""
        for name in chain:
            endpoint = self.endpoints[name]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                attempts.deadline_hit = True
                return None
            timeout = min(endpoint.timeout_s, remaining)
            try:
                async with asyncio.timeout(timeout):
                    response = await self.client.post(
                        endpoint.url,
                        content=self._payload(body, endpoint),
                        headers=endpoint.headers,
                        timeout=timeout,
                    )
            except (TimeoutError, httpx.TimeoutException):
                attempts.failures.append(_timeout(name, timeout))
                continue
            except httpx.TransportError as exc:
                attempts.failures.append(_transport(name, exc))
                continue
            status = response.status_code
            content_type = response.headers.get("content-type", "application/json")
            if status >= 400:
                if falls_back(status):
                    attempts.failures.append(_status_failure(name, response))
                    continue
                return Refusal(name, status, _client_error_body(endpoint, response), content_type)
            try:
                parsed = json.loads(response.content)
                usage = parsed.get("usage") if isinstance(parsed, dict) else None
                if not isinstance(parsed, dict) or "choices" not in parsed:
                    raise ValueError("no choices")
            except ValueError:
                attempts.failures.append(
                    Failure(name, MALFORMED, f"{name} returned an unreadable response body")
                )
                continue
            return Answer(
                name,
                status,
                response.content,
                content_type,
                usage if isinstance(usage, dict) else None,
            )
        return None

    async def open_stream(
        self, body: dict[str, Any], chain: Sequence[str], deadline: float, attempts: Attempts
    ) -> OpenStream | Refusal | None:
        """Like `complete`, for `stream: true`: succeeds once the first body bytes arrive."""
        for name in chain:
            endpoint = self.endpoints[name]
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                attempts.deadline_hit = True
                return None
            timeout = min(endpoint.timeout_s, remaining)
            request = self.client.build_request(
                "POST",
                endpoint.url,
                content=self._payload(body, endpoint),
                headers=endpoint.headers,
                # After the first byte, each read may wait up to the model's own timeout.
                timeout=httpx.Timeout(endpoint.timeout_s, connect=timeout),
            )
            response: httpx.Response | None = None
            try:
                async with asyncio.timeout(timeout):
                    response = await self.client.send(request, stream=True)
                    status = response.status_code
                    content_type = response.headers.get("content-type", "text/event-stream")
                    if status >= 400:
                        await response.aread()
                        await response.aclose()
                        if falls_back(status):
                            attempts.failures.append(_status_failure(name, response))
                            continue
                        return Refusal(
                            name, status, _client_error_body(endpoint, response), content_type
                        )
                    chunks = response.aiter_raw()
                    first = b""
                    while not first:  # skip empty reads: the first real bytes decide
                        first = await anext(chunks)
            except (TimeoutError, httpx.TimeoutException):
                attempts.failures.append(_timeout(name, timeout))
            except StopAsyncIteration:
                attempts.failures.append(
                    Failure(name, CONNECTION, f"{name} closed the stream before sending anything")
                )
            except httpx.TransportError as exc:
                attempts.failures.append(_transport(name, exc))
            else:
                return OpenStream(name, response, chunks, first, content_type)
            if response is not None:
                await response.aclose()
        return None


def _timeout(name: str, seconds: float) -> Failure:
    return Failure(name, TIMEOUT, f"{name} did not answer within {seconds:.3g} s")


def _transport(name: str, exc: httpx.TransportError) -> Failure:
    if isinstance(exc, httpx.ConnectError):
        return Failure(name, CONNECTION, f"cannot connect to {name}")
    return Failure(name, CONNECTION, f"{name} broke the connection ({type(exc).__name__})")


def _status_failure(name: str, response: httpx.Response) -> Failure:
    kind = kind_of_status(response.status_code) or ErrorKind.SERVER
    return Failure(
        name,
        kind.value,
        f"{name} answered HTTP {response.status_code}",
        status=response.status_code,
        retry_after=response.headers.get("retry-after"),
    )


def _client_error_body(endpoint: Endpoint, response: httpx.Response) -> bytes:
    """The upstream's own 4xx body, minus anything that looks like our key."""
    return endpoint.scrub(response.content)
