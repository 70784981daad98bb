"""Scorers: each grades a response against a `Reference` with a score in [0, 1].

`scorer_for(answer_format)` picks the scorer for an item's answer format:

| format (aliases)                                          | scorer            |
| --- | --- |
| exact, exact_match, short, short_answer, text, entity      | `ExactMatch`      |
| numeric, number, math, integer, float                      | `Numeric`         |
| multiple_choice, mcq, mc, choice                           | `MultipleChoice`  |
| code, python, program                                      | `Code` (sandbox)  |
| free_text, free, open, open_ended, long, essay, judge      | `Judge` (an LLM)  |

    >>> scorer_for("mcq").name
    'multiple_choice'
"""

from __future__ import annotations

from trouter.errors import ConfigError
from trouter.label.scorers.base import Reference, Score, Scorer, SyncScorer, score_many
from trouter.label.scorers.choice import MultipleChoice, choice_letter
from trouter.label.scorers.code import Code, extract_code
from trouter.label.scorers.judge import JUDGE_CALL_FAILED, Judge, judge_id, parse_judge_score
from trouter.label.scorers.numeric import Numeric, answer_number, parse_number
from trouter.label.scorers.text import ExactMatch, final_answer, normalise

FORMATS: dict[str, tuple[str, ...]] = {
    "exact": ("exact", "exact_match", "short", "short_answer", "text", "string", "entity"),
    "numeric": ("numeric", "number", "math", "integer", "float"),
    "multiple_choice": ("multiple_choice", "mcq", "mc", "choice", "multiple-choice"),
    "code": ("code", "python", "program"),
    "judge": ("free_text", "free", "open", "open_ended", "long", "long_form", "essay", "judge"),
}
_CANONICAL = {alias: name for name, aliases in FORMATS.items() for alias in aliases}


def canonical_format(answer_format: str) -> str:
    """The scorer family of an answer format (see the table above); ConfigError if unknown."""
    key = answer_format.strip().lower().replace(" ", "_")
    if key not in _CANONICAL:
        raise ConfigError(
            f"unknown answer format {answer_format!r}; use one of: {', '.join(_CANONICAL)}"
        )
    return _CANONICAL[key]


def scorer_for(
    answer_format: str, *, judge: Judge | None = None, code: Code | None = None
) -> Scorer:
    """The scorer for `answer_format`. Code uses `code` (or a default sandbox scorer); free-text
    formats need `judge`, since they cannot be scored without one."""
    family = canonical_format(answer_format)
    if family == "exact":
        return ExactMatch()
    if family == "numeric":
        return Numeric()
    if family == "multiple_choice":
        return MultipleChoice()
    if family == "code":
        return code or Code()
    if judge is None:
        raise ConfigError(
            f"items with answer format {answer_format!r} are graded by an LLM judge; "
            "name a judge model (e.g. --judge MODEL)"
        )
    return judge


__all__ = [
    "FORMATS",
    "JUDGE_CALL_FAILED",
    "Code",
    "ExactMatch",
    "Judge",
    "MultipleChoice",
    "Numeric",
    "Reference",
    "Score",
    "Scorer",
    "SyncScorer",
    "answer_number",
    "canonical_format",
    "choice_letter",
    "extract_code",
    "final_answer",
    "judge_id",
    "normalise",
    "parse_judge_score",
    "parse_number",
    "score_many",
    "scorer_for",
]
