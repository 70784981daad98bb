"""Numeric answers: read the number a response gives and compare it with a tolerance.

    >>> parse_number("$1,000.50")
    1000.5
    >>> answer_number("3 boxes of 4 apples, so 3 * 4 = 12 apples in total.")
    12.0
    >>> Numeric().grade("The answer is \\\\boxed{\\\\frac{3}{4}}", Reference(answer="0.75")).value
    1.0

The response's number is the one after an explicit answer (`\\boxed{}`, `#### 42`, "Final answer:",
"The answer is"), else the last number in the text, the chain-of-thought convention. Thousands
separators, currency signs, units, percentages, fractions (`3/4`, `1 1/2`, `\\frac{3}{4}`),
scientific notation (`1.5e3`, `1.5 × 10^3`) and small number words ("twelve") are understood.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from trouter.label.scorers.base import Reference, Score, SyncScorer
from trouter.label.scorers.text import final_answer

DEFAULT_REL_TOL = 1e-4
ABS_TOL = 1e-9

_FRAC_LATEX = re.compile(r"\\[dt]?frac\s*\{\s*([^{}]+?)\s*\}\s*\{\s*([^{}]+?)\s*\}")
_SCI_TIMES = re.compile(
    r"(\d(?:[\d.]*\d)?)\s*(?:×|\\times|\\cdot|x|\*)\s*10\s*(?:\^|\*\*)\s*\{?\s*([-+−]?\d+)\s*\}?"
)
_NUMBER = re.compile(
    r"""
    (?P<sign>[-−–+])?\s*
    (?P<currency>[$€£¥])?\s*
    (?:
        (?P<mixed_whole>\d+)\s+(?P<mixed_num>\d+)\s*/\s*(?P<mixed_den>\d+)(?![\d.,])
      | (?P<num>\d+(?:\.\d+)?)\s*/\s*(?P<den>\d+(?:\.\d+)?)(?![\d.,]*\d)
      | (?P<value>
            \d{1,3}(?:,\d{3})+(?:\.\d+)?         # 1,000 or 1,000,000.50
          | \d+(?:\.\d+)?(?:[eE][-+]?\d+)?       # 42, 3.14, 1.5e3
          | \.\d+                                # .5
        )
    )
    (?P<percent>\s*(?:%|percent\b|per\s+cent\b))?
    """,
    re.VERBOSE | re.IGNORECASE,
)
_WORDS = {
    w: i
    for i, w in enumerate(
        [
            "zero",
            "one",
            "two",
            "three",
            "four",
            "five",
            "six",
            "seven",
            "eight",
            "nine",
            "ten",
            "eleven",
            "twelve",
            "thirteen",
            "fourteen",
            "fifteen",
            "sixteen",
            "seventeen",
            "eighteen",
            "nineteen",
            "twenty",
        ]
    )
} | {"thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90}
_WORD_NUMBER = re.compile(r"\b(" + "|".join(sorted(_WORDS, key=len, reverse=True)) + r")\b", re.I)
_UNICODE_FRACTIONS = {"½": " 1/2", "⅓": " 1/3", "⅔": " 2/3", "¼": " 1/4", "¾": " 3/4", "⅛": " 1/8"}


@dataclass(frozen=True)
class Number:
    """A number read from text; `percent` when it was written with a % sign."""

    value: float
    percent: bool
    decimals: int  # digits after the decimal point as written (for rounding tolerance)
    text: str


def _prepare(text: str) -> str:
    for sym, frac in _UNICODE_FRACTIONS.items():
        text = text.replace(sym, frac)
    text = _FRAC_LATEX.sub(lambda m: f"{m.group(1)}/{m.group(2)}", text)
    text = _SCI_TIMES.sub(lambda m: f"{m.group(1)}e{m.group(2).replace('−', '-')}", text)
    text = text.replace("\\%", "%").replace("\\$", "$").replace("\\,", "").replace("{,}", ",")
    return re.sub(r"(?<=\d)[ \u2009\u202f](?=\d{3}\b)", "", text)  # 1 000 000 (thin spaces)


def numbers(text: str) -> list[Number]:
    """Every number in `text`, in order."""
    found = []
    prepared = _prepare(text)
    for m in _NUMBER.finditer(prepared):
        sign = -1.0 if m.group("sign") in ("-", "−", "–") else 1.0
        shown = m.group(0).strip()
        # A hyphen glued to a preceding word or digit is a dash ("3-4", "GPT-4"), not a sign.
        if sign < 0 and m.start() > 0 and prepared[m.start() - 1].isalnum():
            sign = 1.0
            shown = shown.lstrip("-−–").strip()
        decimals = 0
        if m.group("mixed_whole") is not None:
            den = float(m.group("mixed_den"))
            if den == 0:
                continue
            value = float(m.group("mixed_whole")) + float(m.group("mixed_num")) / den
            decimals = 6
        elif m.group("num") is not None:
            den = float(m.group("den"))
            if den == 0:
                continue
            value = float(m.group("num")) / den
            decimals = 6  # a fraction is exact
        else:
            raw = m.group("value").replace(",", "")
            value = float(raw)
            mantissa = raw.lower().split("e")[0]
            decimals = len(mantissa.split(".")[1]) if "." in mantissa else 0
        found.append(Number(sign * value, bool(m.group("percent")), decimals, shown))
    return found


def parse_number(text: str) -> float | None:
    """The first number in `text` (percent sign kept as written: "50%" -> 50.0), or None."""
    found = numbers(text)
    if found:
        return found[0].value
    word = _WORD_NUMBER.search(text)
    return float(_WORDS[word.group(1).lower()]) if word else None


def answer_number(response: str) -> float | None:
    """The number a response answers with (see the module docstring), or None."""
    found = _answer(response)
    return found.value if found else None


_HEDGE = re.compile(r"\d[^\d\n]{0,15}\bor\b[^\d\n]{0,15}\d", re.IGNORECASE)


def _hedged(region: str) -> bool:
    """Two different numbers offered as alternatives ("12 or 13"): no single answer."""
    return len({n.value for n in numbers(region)}) > 1 and bool(_HEDGE.search(region))


def _answer(response: str) -> Number | None:
    stated = final_answer(response)
    if stated is not None:
        # "Final answer: 3 * 4 = 12" -> the number after the last "=".
        region = stated.rsplit("=", 1)[-1]
        if _hedged(region):
            return None
        found = numbers(region) or numbers(stated)
        if found:
            return found[0]
        word = _WORD_NUMBER.search(stated)
        if word:
            return Number(float(_WORDS[word.group(1).lower()]), False, 0, word.group(1))
    found = numbers(response)
    if found:
        last_line = next((ln for ln in reversed(response.splitlines()) if ln.strip()), "")
        tail = last_line.rsplit("=", 1)[-1]
        return None if _hedged(tail) else found[-1]
    words = _WORD_NUMBER.findall(response)
    return Number(float(_WORDS[words[-1].lower()]), False, 0, words[-1]) if words else None


def close(predicted: Number, reference: Number, rel_tol: float = DEFAULT_REL_TOL) -> bool:
    """Equal within `rel_tol`, or equal once the more precise one is rounded to the other's
    decimals (two or more), or equal once a percentage is read as a fraction ("50%" == 0.5)."""
    pred_values = [predicted.value] + ([predicted.value / 100] if predicted.percent else [])
    ref_values = [reference.value] + ([reference.value / 100] if reference.percent else [])
    for p in pred_values:
        for r in ref_values:
            if math.isclose(p, r, rel_tol=rel_tol, abs_tol=ABS_TOL):
                return True
    if predicted.percent == reference.percent:
        coarse, fine = sorted((predicted, reference), key=lambda n: n.decimals)
        if 2 <= coarse.decimals < fine.decimals and round(fine.value, coarse.decimals) == round(
            coarse.value, coarse.decimals
        ):
            return True
    return False


class Numeric(SyncScorer):
    """1 when the response's number matches the reference within the tolerance, else 0."""

    name = "numeric"

    def __init__(self, rel_tol: float = DEFAULT_REL_TOL) -> None:
        self.rel_tol = rel_tol

    def grade(self, response: str, reference: Reference) -> Score:
        targets = [t for t in (_answer(a) for a in (reference.answer, *reference.aliases)) if t]
        if not targets:
            return Score.failure(f"the reference {reference.answer!r} holds no number")
        got = _answer(response)
        if got is None:
            return Score.of(False, None, "no number in the response")
        tol = reference.rel_tol if reference.rel_tol is not None else self.rel_tol
        return Score.of(any(close(got, t, tol) for t in targets), got.text)
