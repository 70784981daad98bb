"""Multiple choice: which option letter a response picks, in any of the usual answer styles.

    >>> choice_letter("I think it's C, not B.")
    'C'
    >>> choice_letter("**B**")
    'B'
    >>> choice_letter("Paris, of course.", choices=("London", "Paris", "Rome"))
    'B'
    >>> choice_letter("A or B, hard to say.") is None
    True

Rules, first that applies: the response is just a letter ("B", "(B)", "B)", "**B**"); the last
explicit statement ("Answer: B", "The answer is (B)", "it's C", "I choose D", "C is correct");
a leading option label ("B) Paris because ..."); the text of exactly one option when the choices
are known; exactly one distinct standalone letter. A letter after "not" is never the pick, and a
response that names several letters without committing to one gets no letter (score 0).
"""

from __future__ import annotations

import re
import unicodedata

from trouter.label.scorers.base import Reference, Score, SyncScorer
from trouter.label.scorers.text import final_answer, normalise

LETTERS = "ABCDEFGHIJ"
_EMPHASIS = re.compile(r"(\*\*|__|`)")
_L = r"[\(\[]?\s*([A-Ja-j])\s*[\)\]]?(?![\w'’])"  # a letter, maybe bracketed, not a word start
_BARE = re.compile(r"^\s*(?:option\s+|choice\s+)?[\(\[]?\s*([A-Ja-j])\s*[\)\]\.:]?\s*$", re.I)
_STATED = re.compile(
    r"(?:\b(?:answer|option|choice|pick|selection)\s*(?:is|would\s+be|will\s+be|should\s+be|[:：=])"
    r"|\b(?:it(?:'s|’s|\s+is|\s+must\s+be|\s+should\s+be)|I(?:'d|\s+would)?\s+(?:choose|pick|select|go\s+with)"
    r"|choose|select|go\s+with))"
    r"\s*[:：]?\s*(?:option\s+|choice\s+|letter\s+)?" + _L,
    re.IGNORECASE,
)
_CORRECT = re.compile(
    r"(?:option\s+|choice\s+)?[\(\[]?\b([A-J])\b[\)\]]?\s+is\s+(?:the\s+)?(?:correct|right|best|answer)",
)
_LEADING = re.compile(r"^\s*(?:option\s+)?[\(\[]?([A-J])[\)\]\.:]\s", re.I)
_LABELS = re.compile(r"(?<![\w'’])[\(\[]?[A-J][\)\]\.:]\s")
_NEGATED = re.compile(r"\b(?:not|isn't|isn’t|never)\s+(?:option\s+)?[\(\[]?([A-J])\b", re.I)
_STANDALONE = re.compile(r"(?<![\w'’])[\(\[]?([A-J])[\)\]]?(?![\w'’])")
# After these words a capital A is an option letter, not the article ("A is wrong", "A and B").
_LETTER_CONTEXT = {"is", "and", "or", "was", "are", "seems", "would", "could", "might", "because"}


def choice_letter(
    response: str, choices: tuple[str, ...] | list[str] = (), n_options: int | None = None
) -> str | None:
    """The option letter the response picks, or None if it picks none or hedges."""
    valid = LETTERS[: n_options or len(choices) or len(LETTERS)]
    text = _EMPHASIS.sub("", unicodedata.normalize("NFKC", response)).strip()
    if not text:
        return None
    bare = _BARE.match(text)
    if bare and bare.group(1).upper() in valid:
        return bare.group(1).upper()
    negated = {m.group(1).upper() for m in _NEGATED.finditer(text)}
    stated = [
        m.group(1).upper()
        for m in _STATED.finditer(text)
        if (m.group(1).isupper() or _bracketed(text, m.start(1), m.end(1)))
        and m.group(1).upper() in valid
        and not _is_article(text, m.start(1), m.end(1))
    ]
    stated += [m.group(1) for m in _CORRECT.finditer(text) if m.group(1) in valid]
    stated = [s for s in stated if s not in negated]
    if stated:
        return stated[-1]  # the last explicit pick wins ("B... no wait, the answer is C")
    leading = _LEADING.match(text)
    # "A) London B) Paris ..." recites the options rather than picking one.
    if leading and leading.group(1).upper() in valid and len(_LABELS.findall(text)) <= 1:
        return leading.group(1).upper()
    if choices:
        by_text = _by_option_text(text, choices)
        if by_text is not None:
            return by_text
    standalone = {
        m.group(1)
        for m in _STANDALONE.finditer(text)
        if m.group(1) in valid and not _is_article(text, m.start(1), m.end(1))
    } - negated
    return standalone.pop() if len(standalone) == 1 else None


def _bracketed(text: str, start: int, end: int) -> bool:
    return start > 0 and text[start - 1] in "([" and end < len(text) and text[end] in ")]"


def _is_article(text: str, start: int, end: int) -> bool:
    """'A good idea' and 'I think' are words, not options A and I."""
    if text[start] not in "AI" or _bracketed(text, start, end):
        return False
    rest = text[end:]
    if rest[:1] in (")", "]", ".", ":", ","):
        return False
    word = re.match(r"\s+([a-z][\w'’]*)", rest)
    return bool(word) and word.group(1) not in _LETTER_CONTEXT  # type: ignore[union-attr]


def _by_option_text(text: str, choices: tuple[str, ...] | list[str]) -> str | None:
    """The one option whose text the response states (in its stated answer if it has one)."""
    region = final_answer(text) or text
    for scope in (region, text):
        said = f" {normalise(scope)} "
        hits = {
            LETTERS[i]: normalise(c)
            for i, c in enumerate(choices[: len(LETTERS)])
            if normalise(c) and f" {normalise(c)} " in said and f" not {normalise(c)} " not in said
        }
        # "Paris, Texas" contains "Paris": keep only the longest of nested option texts.
        hits = {k: v for k, v in hits.items() if not any(v != o and v in o for o in hits.values())}
        if len(hits) == 1:
            return next(iter(hits))
        if hits:
            return None  # several options named: a hedge
    return None


def reference_letter(reference: Reference) -> str | None:
    """The correct letter from a reference given as a letter, a labelled option or its text."""
    answer = reference.answer.strip()
    n = len(reference.choices) or None
    if reference.choices:
        target = normalise(answer)
        for i, choice in enumerate(reference.choices[: len(LETTERS)]):
            if normalise(choice) == target and target:
                return LETTERS[i]
    bare = _BARE.match(_EMPHASIS.sub("", answer)) or _LEADING.match(answer + " ")
    if bare and bare.group(1).upper() in LETTERS[: n or len(LETTERS)]:
        return bare.group(1).upper()
    return None


class MultipleChoice(SyncScorer):
    """1 when the letter the response picks is the reference's letter, else 0."""

    name = "multiple_choice"

    def grade(self, response: str, reference: Reference) -> Score:
        want = reference_letter(reference)
        if want is None:
            return Score.failure(
                f"the reference {reference.answer!r} is neither an option letter nor an option's text"
            )
        n_options = len(reference.choices) or max(4, LETTERS.index(want) + 1)
        got = choice_letter(response, reference.choices, n_options)
        if got is None:
            return Score.of(False, None, "no single option picked")
        return Score.of(got == want, got)
