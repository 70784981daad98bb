"""LLM judge: a small model grades a response against the reference on a rubric.

The paper grades open answers with a small judge at temperature 0; so does this. The reply is
free text ending in "Score: N" (prompt `judge`); `parse_judge_score` reads the grade in the
forms judges actually write ("Score: 8/10", "**Rating:** 7 out of 10", `{"score": 9}`,
"eight") and returns None for anything else, which the judge records as a failure with the raw
reply, never as a crash and never as a silent 0.

    >>> parse_judge_score("Mostly right but misses the edge case.\\nScore: 8/10")
    0.8
    >>> parse_judge_score("I cannot grade this.") is None
    True
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from trouter.label.down import ANSWERED, CACHED, FAILED
from trouter.label.scorers.base import Reference, Score
from trouter.label.scorers.numeric import _WORDS

if TYPE_CHECKING:
    from trouter.llm import LLMClient
    from trouter.pool import ModelSpec

JUDGE_CALL_FAILED = "judge call failed: "  # how a judge's failed call starts its score's error
DEFAULT_RUBRIC = "Correct and complete with respect to the reference answer."
_NUM = r"(-?\d+(?:\.\d+)?)"
_OUT_OF = r"(?:\s*(?:/|out\s+of|of)\s*(\d+(?:\.\d+)?))?"
_LABELLED = re.compile(
    r"\b(?:final\s+)?(?:score|rating|grade|mark)\b\s*(?:\*\*|__)?\s*(?:is\s*)?[:=]?\s*(?:\*\*|__)?\s*"
    + _NUM
    + _OUT_OF,
    re.IGNORECASE,
)
_FRACTION = re.compile(_NUM + r"\s*(?:/|out\s+of)\s*(\d+(?:\.\d+)?)", re.IGNORECASE)
_LABELLED_WORD = re.compile(
    r"\b(?:score|rating|grade)\b\s*(?:is\s*)?[:=]?\s*\**\s*([a-z]+)\b", re.IGNORECASE
)


def parse_judge_score(reply: str, scale: float = 10.0) -> float | None:
    """The grade in a judge's reply as a fraction in [0, 1], or None when there is none.

    A stated denominator wins ("4/5" -> 0.8); otherwise the grade is out of `scale`. A grade
    outside its range (11/10, -1) is None, not clipped: the judge did not follow the format.
    """
    text = reply.strip()
    if not text:
        return None
    for value, out_of in _candidates(text):
        denominator = out_of if out_of is not None else scale
        if denominator > 0 and 0 <= value <= denominator:
            return value / denominator
        return None  # the judge's own last word on the grade is out of range
    return None


def _candidates(text: str) -> list[tuple[float, float | None]]:
    """(value, denominator) read from the reply, most authoritative first."""
    found: list[tuple[float, float | None]] = []
    as_json = _json_score(text)
    if as_json is not None:
        found.append((as_json, None))
    labelled = list(_LABELLED.finditer(text))
    if labelled:
        m = labelled[-1]  # the final "Score: N" line, after any discussion of other numbers
        found.append((float(m.group(1)), float(m.group(2)) if m.group(2) else None))
    fractions = list(_FRACTION.finditer(text))
    if fractions:
        m = fractions[-1]
        found.append((float(m.group(1)), float(m.group(2))))
    bare = re.fullmatch(r"\**\s*" + _NUM + r"\s*\**\.?", text)
    if bare:
        found.append((float(bare.group(1)), None))
    word = _LABELLED_WORD.search(text) or re.fullmatch(r"\s*([a-zA-Z]+)\.?\s*", text)
    if word and word.group(1).lower() in _WORDS:
        found.append((float(_WORDS[word.group(1).lower()]), None))
    return found


def _json_score(text: str) -> float | None:
    start, end = text.find("{"), text.rfind("}")
    if start < 0 or end <= start:
        return None
    try:
        data = json.loads(text[start : end + 1])
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for key in ("score", "rating", "grade"):
        value = data.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
    return None


def judge_id(spec: ModelSpec) -> str:
    """Who grades, as `Judge.id` says it, from the judge's spec alone."""
    return f"{spec.name}={spec.model}@{spec.base_url or ''}"


class Judge:
    """Grades with `spec` through the one LLM client, at temperature 0, out of `scale`."""

    name = "judge"

    def __init__(
        self,
        client: LLMClient,
        spec: ModelSpec,
        *,
        scale: float = 10.0,
        max_tokens: int = 400,
        prompt: str = "judge",
    ) -> None:
        self.client = client
        self.spec = spec
        self.scale = scale
        self.max_tokens = max_tokens
        self.prompt = prompt

    @property
    def id(self) -> str:
        """Who grades: name, model and endpoint (another one gives other verdicts)."""
        return judge_id(self.spec)

    def request_key(self, response: str, reference: Reference) -> str:
        """The cache key of the call `score` makes to grade `response` (an estimate prices a
        verdict the cache holds at nothing)."""
        from trouter.llm.cache import request_key
        from trouter.llm.endpoint import base_url_of

        body = {"messages": self.messages(response, reference), **self._params()}
        return request_key(base_url_of(self.spec), {**body, "model": self.spec.model})

    def _params(self) -> dict[str, Any]:
        return {"temperature": 0, "max_tokens": self.max_tokens}

    def messages(self, response: str, reference: Reference) -> list[dict[str, Any]]:
        from trouter.prompts import load_prompt

        template = load_prompt(self.prompt)
        return template.render(
            meta={"judge": self.spec.name},
            question=reference.query or "(not given)",
            reference=reference.answer or "(none: grade on the rubric alone)",
            rubric=reference.rubric or DEFAULT_RUBRIC,
            response=response,
        )

    async def score(self, response: str, reference: Reference) -> Score:
        from trouter.llm import LLMCallError

        if not response.strip():
            return Score.of(False, None, "empty response")
        try:
            done = await self.client.chat(
                self.spec, self.messages(response, reference), purpose="judge", **self._params()
            )
        except LLMCallError as exc:
            return Score.failure(f"{JUDGE_CALL_FAILED}{exc}", retry=True, call=FAILED)
        reply = done.text or ""
        value = parse_judge_score(reply, self.scale)
        call = CACHED if done.cached else ANSWERED  # an unusable reply is a reply all the same
        if value is None:
            # Not a verdict to replay: out of the cache, so a rerun (or a forced regrade) asks
            # the judge again instead of reading the same unusable reply.
            self.client.forget(done.key)
            return Score.failure(
                "the judge's reply holds no usable score", reply[:500], retry=True, call=call
            )
        return Score(value, None, "", reply[:500], call=call)
