"""Preflight: before anything is spent, check that every model can be called.

For each model: its API-key variable is set, and its endpoint answers `GET /models` with that
key (or, where an endpoint has no /models route, a 1-token completion). Each problem names the
model and the variable or URL at fault.

    problems = await preflight(pool.models)
    raise_for_problems(problems)   # PreflightError listing them all, or nothing
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from trouter.errors import ConfigError
from trouter.llm.endpoint import MissingKeyError, base_url_of, resolve_endpoint
from trouter.llm.errors import ErrorKind, classify, short, status_of
from trouter.pool import ModelSpec


@dataclass(frozen=True)
class PreflightProblem:
    model: str
    what: Literal["key", "endpoint", "model"]
    message: str
    fatal: bool = True


class PreflightError(ConfigError):
    """At least one model cannot be called; the message lists each one and why."""


async def _check_one(spec: ModelSpec, timeout_s: float) -> list[PreflightProblem]:
    from openai import AsyncOpenAI

    try:
        url = base_url_of(spec)
        endpoint = resolve_endpoint(spec)
    except MissingKeyError as exc:
        return [PreflightProblem(spec.name, "key", str(exc))]
    except ConfigError as exc:
        return [PreflightProblem(spec.name, "endpoint", str(exc))]
    sdk = AsyncOpenAI(
        base_url=endpoint.base_url, api_key=endpoint.api_key, max_retries=0, timeout=timeout_s
    )
    try:
        try:
            listed = [m.id async for m in sdk.models.list()]
        except Exception as exc:
            if status_of(exc) in (404, 405):
                # No /models route (some proxies): one 1-token completion proves the path.
                await sdk.chat.completions.create(
                    model=spec.model, messages=[{"role": "user", "content": "ping"}], max_tokens=1
                )
                return []
            raise
    except Exception as exc:
        return [_describe(spec, url, exc)]
    finally:
        await sdk.close()
    if listed and spec.model not in listed:
        shown = ", ".join(listed[:8]) + (", ..." if len(listed) > 8 else "")
        return [
            PreflightProblem(
                spec.name,
                "model",
                f"model {spec.name!r}: {url}/models does not list the model id {spec.model!r} "
                f"(it lists {shown}); calls may fail - check 'model' in the pool",
                fatal=False,
            )
        ]
    return []


def _describe(spec: ModelSpec, url: str, exc: BaseException) -> PreflightProblem:
    kind = classify(exc)
    status = status_of(exc)
    if kind is ErrorKind.AUTH:
        var = spec.api_key_env or "(no api_key_env: no key sent)"
        return PreflightProblem(
            spec.name,
            "key",
            f"model {spec.name!r}: {url} rejected the key from {var} (HTTP {status}); "
            "check the key or api_key_env in the pool",
        )
    if kind in (ErrorKind.CONNECTION, ErrorKind.TIMEOUT):
        return PreflightProblem(
            spec.name,
            "endpoint",
            f"model {spec.name!r}: cannot reach {url} ({kind.value}: {short(exc, 120)}); "
            "is the server up and base_url right?",
        )
    detail = f"HTTP {status}" if status else short(exc, 120)
    return PreflightProblem(
        spec.name,
        "endpoint",
        f"model {spec.name!r}: {url} did not answer GET /models properly ({detail}); "
        "check base_url in the pool",
    )


async def preflight(
    specs: Sequence[ModelSpec], *, timeout_s: float = 10.0
) -> list[PreflightProblem]:
    """Problems found with `specs` (deduplicated by model name), all checked concurrently."""
    unique = list({s.name: s for s in specs}.values())
    results = await asyncio.gather(*(_check_one(s, timeout_s) for s in unique))
    return [p for found in results for p in found]


def raise_for_problems(problems: Sequence[PreflightProblem]) -> None:
    """Raise `PreflightError` listing the fatal problems (warnings pass)."""
    fatal = [p for p in problems if p.fatal]
    if fatal:
        lines = "; ".join(p.message for p in fatal)
        raise PreflightError(f"preflight failed, nothing was spent: {lines}")
