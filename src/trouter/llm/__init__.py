"""The one LLM client for OpenAI-compatible chat-completions endpoints.

Public API:

- `LLMClient(store, run=..., budget_usd=...)`: `await client.chat(spec, messages, **params)` ->
  `Completion` (text, response JSON, tokens, $ cost, cached, attempts, latency);
  `client.complete(spec, body)` for a raw request body; `client.stream_chunks(spec, body)` to
  relay a stream; `client.structured(spec, messages, Schema)` -> `Structured` | `StructuredFailure`;
  `client.check(specs)` (preflight); `client.usage` (running `Usage`); `client.budget`.
- `RetryPolicy`: attempts and backoff.
- Errors: `LLMCallError` (`.kind`, `.model`, `.attempts`), `BudgetExceeded`, `MissingKeyError`,
  `PreflightError`; `classify(exc) -> ErrorKind` with `.retryable` / `.fallback`, and
  `retry_after(headers)`, shared with the gateway.
- `resolve_endpoint(spec) -> Endpoint` (base URL, key from `api_key_env`, auth headers).

Nothing here opens a connection or reads a key until the first call that needs it.
"""

from trouter.llm.client import Completion, LLMClient
from trouter.llm.endpoint import DEFAULT_BASE_URL, Endpoint, MissingKeyError, resolve_endpoint
from trouter.llm.errors import (
    BudgetExceeded,
    ErrorKind,
    LLMCallError,
    MalformedResponse,
    classify,
    kind_of_status,
    retry_after,
)
from trouter.llm.limits import RetryPolicy
from trouter.llm.preflight import PreflightError, PreflightProblem, preflight, raise_for_problems
from trouter.llm.structured import (
    Structured,
    StructuredFailure,
    StructuredResult,
    parse_as,
    parse_json,
    response_format,
)
from trouter.llm.usage import Budget, Usage
from trouter.llm.wire import check_completion

__all__ = [
    "DEFAULT_BASE_URL",
    "Budget",
    "BudgetExceeded",
    "Completion",
    "Endpoint",
    "ErrorKind",
    "LLMCallError",
    "LLMClient",
    "MalformedResponse",
    "MissingKeyError",
    "PreflightError",
    "PreflightProblem",
    "RetryPolicy",
    "Structured",
    "StructuredFailure",
    "StructuredResult",
    "Usage",
    "check_completion",
    "classify",
    "kind_of_status",
    "parse_as",
    "parse_json",
    "preflight",
    "raise_for_problems",
    "resolve_endpoint",
    "response_format",
    "retry_after",
]
