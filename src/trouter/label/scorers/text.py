"""Exact match after normalisation, and the answer extraction the other scorers share.

>>> normalise("  The Eiffel Tower!  ")
'eiffel tower'
>>> final_answer("Let me think... 2 + 2 = 4.\\nFinal answer: **4**")
'4'
>>> ExactMatch().grade("Answer: the Eiffel tower.", Reference(answer="Eiffel Tower")).value
1.0
"""

from __future__ import annotations

import re
import unicodedata

from trouter.label.scorers.base import Reference, Score, SyncScorer

_ARTICLES = re.compile(r"\b(a|an|the)\b")
_SPACES = re.compile(r"\s+")
# Markers after which a model states its answer; the last one in a response wins.
_MARKERS = re.compile(
    r"(?:\bfinal\s+answer(?:\s+is)?\s*[:：]?|\banswer\s+is\s*[:：]?|\banswer\s*[:：])\s*",
    re.IGNORECASE,
)
_LATEX_WRAPPERS = re.compile(r"\\(?:text|mathrm|textbf|mathbf|operatorname)\{([^{}]*)\}")
_HASHES = re.compile(r"^\s*####\s*(.+)$", re.MULTILINE)
_EMPHASIS = re.compile(r"(\*\*|__|\*|`)")


def normalise(text: str) -> str:
    """Lower case, no punctuation, no articles, single spaces (SQuAD-style normalisation)."""
    text = unicodedata.normalize("NFKC", text).lower()
    text = "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in text)
    text = _ARTICLES.sub(" ", text)
    return _SPACES.sub(" ", text).strip()


def boxed(text: str) -> str | None:
    """The content of the last \\boxed{...} (or \\fbox{...}), braces balanced, or None."""
    start = max(text.rfind("\\boxed{"), text.rfind("\\fbox{"))
    if start < 0:
        return None
    i = text.index("{", start) + 1
    depth = 1
    for j in range(i, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return text[i:j].strip()
    return None  # unbalanced: a truncated response


def final_answer(text: str) -> str | None:
    """The answer a response states explicitly, or None when it states none.

    In order: the last `\\boxed{...}`, the last GSM8K-style `#### ...` line, then the rest of the
    line after the last marker ("Final answer:", "The answer is", "Answer:"), with markdown
    emphasis and a trailing full stop removed.
    """
    found = boxed(text)
    if found is not None:
        return _clean(found)
    hashes = _HASHES.findall(text)
    if hashes:
        return _clean(hashes[-1])
    matches = list(_MARKERS.finditer(text))
    for match in reversed(matches):
        rest = text[match.end() :].split("\n", 1)[0]
        if not rest.strip() and "\n" in text[match.end() :]:
            # "Final answer:\n\n42": the answer is on the next non-empty line
            rest = next((ln for ln in text[match.end() :].splitlines() if ln.strip()), "")
        cleaned = _clean(rest)
        if cleaned:
            return cleaned
    return None


def _clean(text: str) -> str:
    text = _LATEX_WRAPPERS.sub(r"\1", text)
    text = _EMPHASIS.sub("", text).strip().strip("$").strip()
    text = text.strip("\"'“”‘’ ")
    return text.rstrip(".。").strip()


def _first_line(text: str) -> str:
    return next((ln for ln in text.splitlines() if ln.strip()), "")


class ExactMatch(SyncScorer):
    """1 when the response's answer equals the reference (or an alias) after `normalise`.

    The answer is what the response states after a marker ("Final answer: ...", `\\boxed{}`,
    `####`) when it has one; otherwise the whole response or its first line (the answer-first
    habit: "Paris.\\n\\nParis is the capital of France"). A response that lists several guesses
    on its first line does not match.
    """

    name = "exact"

    def __init__(self, extract: bool = True) -> None:
        self.extract = extract

    def grade(self, response: str, reference: Reference) -> Score:
        targets = {normalise(t) for t in (reference.answer, *reference.aliases)} - {""}
        if not targets:
            return Score.failure("the item has no reference answer to match")
        stated = final_answer(response) if self.extract else None
        candidates = [stated] if stated is not None else [response, _first_line(response)]
        for candidate in candidates:
            if normalise(_clean(candidate)) in targets:
                return Score.of(True, candidate)
        return Score.of(False, candidates[0][:200])
