"""What a stream cut short costs: the prompt, and the output the upstream had already sent.

A stream that ends before its usage chunk (the client left, the upstream dropped, a forced
shutdown) was still paid for upstream: for its prompt and for every token generated so far. The
gateway charges both, estimated with `trouter.tokens` from the request's messages and from the
text it relayed, at the model's prices, in the decision-log row and in Prometheus alike. When
the usage did arrive, it is used as is.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from trouter.tokens import estimate_message_tokens, estimate_tokens

if TYPE_CHECKING:
    from trouter.serve.app import Gateway
    from trouter.serve.trace import Trace

# Relayed events are kept as raw bytes and only parsed if the stream is cut, so a stream that
# ends well costs a list append per event; past this many bytes they are folded into text, so
# a long stream holds its text, not its (several times larger) JSON events.
_FOLD_AT = 1 << 20


class RelayedOutput:
    """The generated text of the chunks a stream has relayed, per choice, for an estimate of
    its output tokens."""

    __slots__ = ("_events", "_size", "_texts")

    def __init__(self) -> None:
        self._events: list[bytes] = []
        self._size = 0
        self._texts: dict[int, list[str]] = {}

    def add(self, data: bytes) -> None:
        """Note one relayed event's data (a JSON chunk)."""
        self._events.append(data)
        self._size += len(data)
        if self._size > _FOLD_AT:
            self._fold()

    def tokens(self) -> int:
        """Estimated tokens of the text relayed so far (each choice's text estimated whole, as
        a tokenizer sees it, not chunk by chunk)."""
        self._fold()
        return sum(estimate_tokens("".join(parts)) for parts in self._texts.values())

    def _fold(self) -> None:
        for data in self._events:
            try:
                chunk = json.loads(data)
            except ValueError:
                continue
            choices = chunk.get("choices") if isinstance(chunk, dict) else None
            for choice in choices if isinstance(choices, list) else ():
                if isinstance(choice, dict):
                    index = choice.get("index", 0)
                    texts = self._texts.setdefault(index if isinstance(index, int) else 0, [])
                    texts.extend(_generated(choice))
        self._events, self._size = [], 0


def _generated(choice: dict[str, Any]) -> Iterator[str]:
    """The generated text in a streamed choice: content, refusal, reasoning, tool calls' names
    and arguments (all billed as output), or a legacy completion's `text`."""
    delta = choice.get("delta")
    if not isinstance(delta, dict):
        delta = {"content": choice.get("text")}
    for key in ("content", "refusal", "reasoning_content", "reasoning"):
        if isinstance(value := delta.get(key), str):
            yield value
    calls = delta.get("tool_calls")
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if isinstance(function, dict):
            for key in ("name", "arguments"):
                if isinstance(value := function.get(key), str):
                    yield value


def charge_cut(
    gw: Gateway, trace: Trace, messages: list[dict[str, Any]], output: RelayedOutput
) -> None:
    """Charge a stream that did not finish: what its usage said, or else its prompt's and its
    relayed output's estimated tokens (said so in the row's error), in the row and Prometheus."""
    counted = trace.cost > 0  # the normal charge counted it already (cancelled in the final write)
    estimated = []
    if not trace.tokens_in:
        trace.tokens_in = estimate_message_tokens(messages)
        estimated.append(f"{trace.tokens_in} estimated prompt tokens")
    if not trace.usage_seen:
        trace.tokens_out = output.tokens()
        estimated.append(f"{trace.tokens_out} estimated output tokens relayed before the cut")
    if estimated:
        trace.error += f"; cost of {' and '.join(estimated)} charged"
    trace.cost = gw.pool[trace.final_model].call_cost(trace.tokens_in, trace.tokens_out)
    if not counted:
        gw.metrics.spent(trace.final_model, trace.tokens_in, trace.tokens_out, trace.cost)
