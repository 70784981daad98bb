"""What went wrong with an LLM call, and what to do about it: retry, fall back, or stop.

`classify` maps any exception raised while talking to an OpenAI-compatible endpoint (through the
`openai` SDK or raw httpx) to an `ErrorKind`. The client retries the `retryable` kinds; the
gateway falls back to the next model on the `fallback` kinds. One table, used by both.
"""

from __future__ import annotations

import email.utils
import enum
import json
import time
from collections.abc import Mapping
from typing import Any

from trouter.errors import ConfigError, TrouterError


class ErrorKind(enum.Enum):
    """A class of call failure. `retryable`: the same request may succeed later.
    `fallback`: another model may succeed where this one failed."""

    RATE_LIMIT = "rate_limit"  # 429
    SERVER = "server"  # 5xx
    TIMEOUT = "timeout"
    CONNECTION = "connection"  # refused, reset, dropped mid-response
    MALFORMED = "malformed"  # 2xx whose body is not a chat completion
    AUTH = "auth"  # 401 / 403
    NOT_FOUND = "not_found"  # 404: wrong URL or model id
    BAD_REQUEST = "bad_request"  # other 4xx: the request itself is refused
    CONFIG = "config"  # no API key, bad base URL: nothing was sent

    @property
    def retryable(self) -> bool:
        return self in _RETRYABLE

    @property
    def fallback(self) -> bool:
        # A bad request (e.g. a malformed body) fails on every upstream alike; everything else
        # is about this upstream, so the next model in the chain is worth trying.
        return self is not ErrorKind.BAD_REQUEST


_RETRYABLE = frozenset(
    {
        ErrorKind.RATE_LIMIT,
        ErrorKind.SERVER,
        ErrorKind.TIMEOUT,
        ErrorKind.CONNECTION,
        ErrorKind.MALFORMED,
    }
)


def kind_of_status(status: int) -> ErrorKind | None:
    """The kind of an HTTP status code (None for success)."""
    if status < 400:
        return None
    if status == 429:
        return ErrorKind.RATE_LIMIT
    if status in (408, 409) or status >= 500:  # request timeout / conflict: transient
        return ErrorKind.TIMEOUT if status == 408 else ErrorKind.SERVER
    if status in (401, 403):
        return ErrorKind.AUTH
    if status == 404:
        return ErrorKind.NOT_FOUND
    return ErrorKind.BAD_REQUEST


def classify(exc: BaseException) -> ErrorKind | None:
    """The `ErrorKind` of an exception, or None when it is not a call failure (a bug)."""
    import openai

    if isinstance(exc, LLMCallError):
        return exc.kind
    if isinstance(exc, ConfigError):
        return ErrorKind.CONFIG
    if isinstance(exc, openai.APITimeoutError):
        return ErrorKind.TIMEOUT
    if isinstance(exc, openai.APIConnectionError):
        return ErrorKind.CONNECTION
    if isinstance(exc, openai.APIStatusError):
        return kind_of_status(exc.status_code)
    if isinstance(exc, openai.APIResponseValidationError | json.JSONDecodeError | UnicodeError):
        return ErrorKind.MALFORMED
    if isinstance(exc, MalformedResponse):
        return ErrorKind.MALFORMED
    if isinstance(exc, TimeoutError):
        return ErrorKind.TIMEOUT
    name = type(exc).__module__.split(".")[0]
    if name in ("httpx", "httpx2", "httpcore"):  # raw transport errors (gateway pass-through)
        return ErrorKind.TIMEOUT if "Timeout" in type(exc).__name__ else ErrorKind.CONNECTION
    if isinstance(exc, ConnectionError):
        return ErrorKind.CONNECTION
    return None


def status_of(exc: BaseException) -> int | None:
    """The HTTP status carried by an exception, if any."""
    status = getattr(exc, "status_code", None)
    return status if isinstance(status, int) else None


def retry_after(headers: Mapping[str, str] | None, now: float | None = None) -> float | None:
    """Seconds to wait from `Retry-After` / `retry-after-ms` headers (None when absent)."""
    if not headers:
        return None
    lowered = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lowered:
        try:
            return max(0.0, float(lowered["retry-after-ms"]) / 1000.0)
        except ValueError:
            pass
    value = lowered.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        if parsed is None:
            return None
        return max(0.0, parsed.timestamp() - (now if now is not None else time.time()))


def retry_after_of(exc: BaseException) -> float | None:
    """The Retry-After delay of an HTTP error exception (None when it has none)."""
    response: Any = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    return retry_after(dict(headers)) if headers is not None else None


class MalformedResponse(ValueError):
    """A 2xx reply whose body is not a usable chat completion."""


class LLMCallError(TrouterError):
    """A call that failed for good: a non-retryable error, or retries exhausted."""

    def __init__(
        self,
        model: str,
        url: str,
        kind: ErrorKind,
        attempts: int,
        detail: str,
        status: int | None = None,
    ) -> None:
        self.model = model
        self.url = url
        self.kind = kind
        self.attempts = attempts
        self.detail = detail
        self.status = status
        tries = f" after {attempts} attempts" if attempts > 1 else ""
        hint = _HINTS.get(kind, "")
        super().__init__(f"model {model!r} at {url}: {kind.value} error{tries}: {detail}{hint}")


_HINTS = {
    ErrorKind.AUTH: "; check the API key variable named in the pool (api_key_env)",
    ErrorKind.NOT_FOUND: "; check base_url and the model id in the pool",
    ErrorKind.CONNECTION: "; is the endpoint up and the base_url right?",
    ErrorKind.RATE_LIMIT: "; lower max_concurrency / requests_per_minute for this model",
}


class BudgetExceeded(TrouterError):
    """The next call could push spending past the hard $ cap; nothing more is spent."""


def short(exc: BaseException, limit: int = 300) -> str:
    """A one-line description of an exception for logs and error rows."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."
