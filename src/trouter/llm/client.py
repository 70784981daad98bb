"""`LLMClient`: the one async client for OpenAI-compatible chat completions.

Per model (a `ModelSpec`): a lazily created `AsyncOpenAI` for its endpoint, at most
`max_concurrency` requests in flight (`ModelSpec.batch_concurrency`), optional
`requests_per_minute` pacing, and the spec's timeout. Per request: a cache lookup in the store
(a rerun or a resumed run pays nothing twice), the budget guard, then retries with exponential
backoff and jitter on 429 / 5xx / timeouts / dropped connections / malformed bodies, honouring
Retry-After (the SDK's own retries are off, so this is the only retry policy). Every outcome is written to the store (`llm_calls`) and summed in
`client.usage`.

    client = LLMClient(Store("sqlite:///run.sqlite"), run="synth:acme", budget_usd=5.0)
    done = await client.chat(spec, [{"role": "user", "content": "2+2?"}], max_tokens=10)
    done.text, done.tokens_in, done.cost, done.cached
    print(client.usage.summary())
    await client.aclose()
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import math
import random
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar, cast

from pydantic import BaseModel

from trouter.llm.cache import CallLog, request_key
from trouter.llm.endpoint import base_url_of, resolve_endpoint
from trouter.llm.errors import (
    BudgetExceeded,
    ErrorKind,
    LLMCallError,
    classify,
    retry_after_of,
    short,
    status_of,
)
from trouter.llm.limits import Lane, RetryPolicy
from trouter.llm.usage import Budget, Usage
from trouter.llm.wire import fetch, fetch_stream, usage_of
from trouter.pool import ModelSpec
from trouter.store import Store

if TYPE_CHECKING:
    from openai import AsyncOpenAI

    from trouter.llm.preflight import PreflightProblem
    from trouter.llm.structured import StructuredResult

T = TypeVar("T", bound=BaseModel)
Messages = Sequence[dict[str, Any]]


@dataclass(frozen=True)
class Completion:
    """One answered request. `response` is the endpoint's chat-completion JSON (for a streamed
    request, the equivalent full completion). `cost` is the call's $ price from its token usage,
    even when served from the cache (then nothing was paid in this run: see `cached`)."""

    model: str
    response: dict[str, Any]
    tokens_in: int
    tokens_out: int
    cost: float
    cached: bool
    attempts: int
    latency_s: float
    key: str

    @property
    def message(self) -> dict[str, Any]:
        return cast(dict[str, Any], self.response["choices"][0].get("message") or {})

    @property
    def text(self) -> str:
        return str(self.message.get("content") or "")

    @property
    def finish_reason(self) -> str:
        return str(self.response["choices"][0].get("finish_reason") or "")


@dataclass
class _LoopState:
    """Objects bound to one event loop (SDK connection pools, semaphores, in-flight futures)."""

    loop: asyncio.AbstractEventLoop
    sdks: dict[tuple[str, str], AsyncOpenAI] = field(default_factory=dict)
    lanes: dict[str, Lane] = field(default_factory=dict)
    inflight: dict[str, asyncio.Future[Completion]] = field(default_factory=dict)


class LLMClient:
    """See the module docstring.

    Args:
        store: where responses are cached and calls logged (None: no cache, no log).
        run: a label written on every call row; `Budget` resumes from what this run id spent.
        budget_usd: hard $ cap on paid calls (None: no cap).
        resume_budget: count money already spent under `run` (in the store) against the cap.
        retry: the retry policy.
        cache: read and write the response cache.
        stream: fetch completions as SSE streams (then assembled); useful for long generations.
        default_max_tokens: output bound assumed by the budget guard when a request sets none.
        on_call: called after each finished call (a `Completion`) or failure (an `LLMCallError`),
            e.g. to advance a progress bar.
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        run: str = "",
        budget_usd: float | None = None,
        resume_budget: bool = True,
        retry: RetryPolicy | None = None,
        cache: bool = True,
        stream: bool = False,
        default_max_tokens: int = 1024,
        seed: int = 0,
        on_call: Callable[[Completion | LLMCallError], None] | None = None,
    ) -> None:
        self.store = store
        self.log = CallLog(store, run) if store is not None else None
        self.retry = retry or RetryPolicy()
        self.cache = cache and store is not None
        self.stream = stream
        self.default_max_tokens = default_max_tokens
        self.on_call = on_call
        self.usage = Usage()
        spent = self.log.spent() if (self.log is not None and resume_budget and run) else 0.0
        self.budget = Budget(budget_usd, spent=spent)
        self._rng = random.Random(seed)
        self._state: _LoopState | None = None
        # Endpoints that rejected `response_format`: structured calls there use the prompt only.
        self.no_response_format: set[str] = set()

    # ------------------------------------------------------------------ per-loop resources
    def _loop_state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        if self._state is None or self._state.loop is not loop:
            # A new event loop (e.g. a second asyncio.run): loop-bound objects start afresh.
            self._state = _LoopState(loop=loop)
        return self._state

    def sdk(self, spec: ModelSpec) -> AsyncOpenAI:
        """The `AsyncOpenAI` for a spec's endpoint (created on first use, SDK retries off).

        Raises `MissingKeyError` naming the model and variable when its key is not set."""
        from openai import AsyncOpenAI

        endpoint = resolve_endpoint(spec)
        state = self._loop_state()
        key = (endpoint.base_url, endpoint.api_key)
        if key not in state.sdks:
            state.sdks[key] = AsyncOpenAI(
                base_url=endpoint.base_url,
                api_key=endpoint.api_key,
                max_retries=0,
                timeout=spec.timeout_s,
            )
        return state.sdks[key]

    def _lane(self, spec: ModelSpec) -> Lane:
        state = self._loop_state()
        name = f"{spec.name}\x00{spec.base_url}\x00{spec.model}"
        if name not in state.lanes:
            rpm = spec.requests_per_minute
            state.lanes[name] = Lane(
                semaphore=asyncio.Semaphore(spec.batch_concurrency()),
                interval=60.0 / rpm if rpm else 0.0,
            )
        return state.lanes[name]

    async def aclose(self) -> None:
        """Write pending call-log rows and close the HTTP connection pools of this loop."""
        if self.log is not None:
            self.log.flush()
        state = self._state
        self._state = None
        if state is not None:
            for sdk in state.sdks.values():
                await sdk.close()

    async def __aenter__(self) -> LLMClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ calls
    async def chat(
        self,
        spec: ModelSpec,
        messages: Messages,
        *,
        purpose: str = "",
        tag: str = "",
        cache: bool | None = None,
        **params: Any,
    ) -> Completion:
        """Ask `spec` to complete `messages`; `params` are any chat-completions parameters
        (temperature, max_tokens, response_format, seed, ...). See `complete`."""
        body = {"messages": [dict(m) for m in messages], **params}
        return await self.complete(spec, body, purpose=purpose, tag=tag, cache=cache)

    async def complete(
        self,
        spec: ModelSpec,
        body: dict[str, Any],
        *,
        purpose: str = "",
        tag: str = "",
        cache: bool | None = None,
        stream: bool | None = None,
    ) -> Completion:
        """Send a chat-completions request body (its `model` is replaced by `spec.model`).

        Returns a `Completion`, from the cache when the identical request was answered before.
        Raises `LLMCallError` when the call fails for good (after retries for transient
        errors), `MissingKeyError` when the key variable is unset, `BudgetExceeded` when the
        call could pass the budget cap. Nothing is sent in the last two cases."""
        request = {**body, "model": spec.model}
        url = base_url_of(spec)
        key = request_key(url, request, tag)
        use_cache = self.cache if cache is None else (cache and self.log is not None)
        state = self._loop_state()
        if use_cache:
            hit = self._lookup(spec, key, purpose)
            if hit is not None:
                return hit
            pending = state.inflight.get(key)
            if pending is not None:  # the same request is already on its way: share its answer
                first = await asyncio.shield(pending)
                shared = dataclasses.replace(first, cached=True, attempts=0, latency_s=0.0)
                # A hit like one read from the store: in the usage and in the call log alike,
                # so "cached this run" and "cached over every run" count the same things.
                if self.log is not None:
                    self.log.record_hit(key, spec.name, purpose, first.tokens_in, first.tokens_out)
                self.usage.add_hit(spec.name, first.cost)
                if self.on_call is not None:
                    self.on_call(shared)
                return shared
        if not use_cache:
            return await self._call(spec, request, key, url, purpose, use_cache, stream)
        future: asyncio.Future[Completion] = state.loop.create_future()
        state.inflight[key] = future
        try:
            done = await self._call(spec, request, key, url, purpose, use_cache, stream)
            future.set_result(done)
            return done
        except asyncio.CancelledError:
            future.cancel()
            raise
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            state.inflight.pop(key, None)

    def _lookup(self, spec: ModelSpec, key: str, purpose: str) -> Completion | None:
        assert self.log is not None
        entry = self.log.lookup(key)
        if entry is None:
            return None
        cost = spec.call_cost(entry.tokens_in, entry.tokens_out)
        done = Completion(
            model=spec.name,
            response=entry.response,
            tokens_in=entry.tokens_in,
            tokens_out=entry.tokens_out,
            cost=cost,
            cached=True,
            attempts=0,
            latency_s=0.0,
            key=key,
        )
        self.log.record_hit(key, spec.name, purpose, entry.tokens_in, entry.tokens_out)
        self.usage.add_hit(spec.name, cost)
        if self.on_call is not None:
            self.on_call(done)
        return done

    def forget(self, *keys: str) -> None:
        """Take answers out of the response cache (by `Completion.key`) because the caller found
        them unusable (a reply that never validated, a verdict without a score): a rerun, or a
        `--force`, then asks afresh instead of replaying them. What they cost stays counted."""
        if self.log is not None:
            self.log.forget([k for k in dict.fromkeys(keys) if k])

    def estimate_cost(self, spec: ModelSpec, body: dict[str, Any]) -> float:
        """Worst-case $ of a request: a generous prompt-token estimate plus max_tokens out."""
        prompt_chars = len(json.dumps(body.get("messages", []), ensure_ascii=False))
        tokens_in = math.ceil(prompt_chars / 3) + 16
        out = body.get("max_completion_tokens") or body.get("max_tokens")
        tokens_out = int(out) if out else self.default_max_tokens
        return spec.call_cost(tokens_in, tokens_out)

    async def _call(
        self,
        spec: ModelSpec,
        request: dict[str, Any],
        key: str,
        url: str,
        purpose: str,
        use_cache: bool,
        stream: bool | None,
    ) -> Completion:
        sdk = self.sdk(spec)  # raises MissingKeyError before anything is spent
        estimate = self.estimate_cost(spec, request)
        await self.budget.acquire(estimate, spec.name)
        lane = self._lane(spec)
        started = time.monotonic()
        attempts = 0
        notes: list[str] = []
        streamed = self.stream if stream is None else stream
        actual = 0.0
        try:
            async with lane.semaphore:
                while True:
                    attempts += 1
                    await lane.pace()
                    try:
                        response = await (
                            fetch_stream(sdk, request, spec.timeout_s)
                            if streamed
                            else fetch(sdk, request, spec.timeout_s)
                        )
                        break
                    except (BudgetExceeded, asyncio.CancelledError):
                        raise
                    except Exception as exc:
                        kind = classify(exc)
                        if kind is None:
                            raise
                        notes.append(f"{kind.value}: {short(exc, 120)}")
                        if not kind.retryable or attempts >= self.retry.max_attempts:
                            raise self._failed(
                                spec, url, kind, attempts, exc, key, purpose, started, notes
                            ) from exc
                        self.usage.add_retry(spec.name)
                        await asyncio.sleep(
                            self.retry.delay(attempts, retry_after_of(exc), self._rng)
                        )
            tokens_in, tokens_out = usage_of(response, request)
            actual = spec.call_cost(tokens_in, tokens_out)
        finally:
            self.budget.settle(estimate, actual)
        latency = time.monotonic() - started
        done = Completion(
            model=spec.name,
            response=response,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost=actual,
            cached=False,
            attempts=attempts,
            latency_s=latency,
            key=key,
        )
        if self.log is not None:
            self.log.record_ok(
                key,
                spec.name,
                purpose,
                request,
                response,
                (tokens_in, tokens_out, actual),
                attempts,
                latency,
                "; ".join(notes),  # the transient errors that were retried
                use_cache,
            )
        self.usage.add_call(spec.name, tokens_in, tokens_out, actual)
        if self.on_call is not None:
            self.on_call(done)
        return done

    def _failed(
        self,
        spec: ModelSpec,
        url: str,
        kind: ErrorKind,
        attempts: int,
        exc: Exception,
        key: str,
        purpose: str,
        started: float,
        notes: list[str],
    ) -> LLMCallError:
        error = LLMCallError(spec.name, url, kind, attempts, short(exc), status_of(exc))
        self.usage.add_failure(spec.name)
        if self.log is not None:
            self.log.record_error(
                key, spec.name, purpose, attempts, time.monotonic() - started, "; ".join(notes)
            )
        if self.on_call is not None:
            self.on_call(error)
        return error

    # ------------------------------------------------------------------ streaming pass-through
    async def stream_chunks(
        self, spec: ModelSpec, body: dict[str, Any], *, purpose: str = "stream"
    ) -> AsyncIterator[dict[str, Any]]:
        """Stream a request's chunks (dicts as on the wire) to a caller such as the gateway.

        Transient failures before the first chunk are retried like `complete`; once a chunk has
        been yielded, a failure raises `LLMCallError` (the caller decides: the gateway cannot
        retry a half-sent answer). Not cached. Usage is taken from the final usage chunk when
        the body asks for one (`stream_options.include_usage`), else estimated from the text."""
        from trouter.llm.streaming import stream_with_retries

        async for chunk in stream_with_retries(self, spec, body, purpose):
            yield chunk

    # ------------------------------------------------------------------ helpers built on calls
    async def structured(
        self,
        spec: ModelSpec,
        messages: Messages,
        schema: type[T],
        *,
        purpose: str = "",
        max_attempts: int = 3,
        tag: str = "",
        **params: Any,
    ) -> StructuredResult[T]:
        """Ask for JSON matching `schema`; see `trouter.llm.structured.structured`."""
        from trouter.llm.structured import structured

        return await structured(
            self,
            spec,
            messages,
            schema,
            purpose=purpose,
            max_attempts=max_attempts,
            tag=tag,
            **params,
        )

    async def check(
        self, specs: Sequence[ModelSpec], *, timeout_s: float = 10.0
    ) -> list[PreflightProblem]:
        """Preflight: see `trouter.llm.preflight.preflight`."""
        from trouter.llm.preflight import preflight

        return await preflight(specs, timeout_s=timeout_s)
