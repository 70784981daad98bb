"""What every scorer takes and returns: a `Reference` in, a `Score` out.

A score is a number in [0, 1], or `None` when the response could not be scored at all (a judge
whose reply held no grade, a sandbox that failed to start); `None` is recorded as a failure with
its reason, never silently turned into 0 or dropped.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field


class Reference(BaseModel):
    """Everything a scorer may compare a response with; each scorer reads the fields it needs."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    answer: str = Field(default="", description="The reference answer (text, number, letter).")
    aliases: tuple[str, ...] = Field(default=(), description="Other accepted answers.")
    choices: tuple[str, ...] = Field(default=(), description="Options A, B, C, ... in order.")
    tests: tuple[str, ...] = Field(default=(), description="Python test snippets (asserts).")
    cases: tuple[tuple[str, str], ...] = Field(
        default=(), description="(stdin, expected stdout) pairs for script-style code."
    )
    entry_point: str | None = Field(default=None, description="Function a `check` test calls.")
    rubric: str = Field(default="", description="What a judge should look for.")
    rel_tol: float | None = Field(default=None, ge=0.0, description="Numeric relative tolerance.")
    query: str = Field(default="", description="The question, for scorers that read it (judge).")


@dataclass(frozen=True)
class Score:
    """A score in [0, 1], or None with `error` saying why no score could be given."""

    value: float | None
    extracted: str | None = None  # what the scorer read as the answer (letter, number, code)
    error: str = ""
    detail: str = ""  # e.g. "3/4 tests passed", the judge's raw reply
    retry: bool = False  # no score now, but asking again may give one (a judge's failure)
    # What became of the scorer's own LLM call (a judge's): "" for none, else one of
    # trouter.label.down's ANSWERED, CACHED, FAILED, so the run can tell a judge that is down.
    call: str = ""

    @classmethod
    def of(cls, ok: bool, extracted: str | None = None, detail: str = "") -> Score:
        return cls(1.0 if ok else 0.0, extracted, "", detail)

    @classmethod
    def failure(cls, error: str, detail: str = "", *, retry: bool = False, call: str = "") -> Score:
        return cls(None, None, error, detail, retry, call)


class Scorer(Protocol):
    """Grades one response against its reference."""

    name: str

    async def score(self, response: str, reference: Reference) -> Score: ...


class SyncScorer:
    """A scorer that is a pure function of (response, reference); `score` wraps `grade`."""

    name = "sync"

    def grade(self, response: str, reference: Reference) -> Score:
        raise NotImplementedError

    async def score(self, response: str, reference: Reference) -> Score:
        return self.grade(response, reference)


async def score_many(
    scorer: Scorer, pairs: list[tuple[str, Reference]], concurrency: int = 8
) -> list[Score]:
    """Score several responses with at most `concurrency` in flight (order kept)."""
    gate = asyncio.Semaphore(concurrency)

    async def one(response: str, reference: Reference) -> Score:
        async with gate:
            return await scorer.score(response, reference)

    return list(await asyncio.gather(*(one(r, ref) for r, ref in pairs)))
