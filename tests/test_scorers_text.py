"""Exact-match and numeric scorers on answers written the way models write them."""

from __future__ import annotations

import pytest

from trouter.label.scorers import (
    ExactMatch,
    Numeric,
    Reference,
    answer_number,
    final_answer,
    normalise,
    parse_number,
)


def exact(response: str, answer: str, *aliases: str) -> float | None:
    return ExactMatch().grade(response, Reference(answer=answer, aliases=aliases)).value


def numeric(response: str, answer: str, rel_tol: float | None = None) -> float | None:
    return Numeric().grade(response, Reference(answer=answer, rel_tol=rel_tol)).value


def test_normalise_ignores_case_punctuation_articles_and_spacing():
    assert normalise("  The  Eiffel-Tower! ") == "eiffel tower"
    assert normalise("an Apple, a day") == "apple day"
    assert normalise("ＰＡＲＩＳ") == "paris"  # full-width letters (NFKC)


@pytest.mark.parametrize(
    "response",
    [
        "Paris",
        "paris.",
        "  PARIS  ",
        "The answer is Paris.",
        "Final answer: **Paris**",
        "Answer:\n\nParis",
        "Paris\n\nParis has been the capital of France since 508 AD.",
        "I first thought the answer is Lyon. Actually, the answer is Paris.",
        "\\boxed{\\text{Paris}}",
        'The answer is "Paris".',
    ],
)
def test_exact_match_accepts_the_reference_however_it_is_stated(response):
    assert exact(response, "Paris") == 1.0


@pytest.mark.parametrize(
    "response",
    [
        "Paris or London",  # a hedge is not an answer
        "London\nParis",  # the first line answers, and it is wrong
        "Final answer: London. (Paris is also a big city.)",
        "Parisian",
        "",
        "I do not know the answer to that.",
    ],
)
def test_exact_match_rejects_wrong_hedged_or_missing_answers(response):
    assert exact(response, "Paris") == 0.0


def test_exact_match_accepts_aliases_and_reports_what_it_read():
    assert exact("Answer: NYC", "New York City", "NYC") == 1.0
    score = ExactMatch().grade("Final answer: the Eiffel Tower.", Reference(answer="Eiffel Tower"))
    assert score.value == 1.0 and score.extracted == "the Eiffel Tower"


def test_exact_match_without_a_reference_is_a_recorded_failure():
    score = ExactMatch().grade("Paris", Reference(answer="  "))
    assert score.value is None and "no reference answer" in score.error


@pytest.mark.parametrize(
    ("text", "stated"),
    [
        ("Reasoning...\n#### 72", "72"),
        ("So $x = \\boxed{\\frac{1}{2}}$.", "\\frac{1}{2}"),
        ("The final answer is: **42**.", "42"),
        ("No explicit answer here.", None),
    ],
)
def test_final_answer_reads_boxed_gsm8k_and_marked_answers(text, stated):
    assert final_answer(text) == stated


@pytest.mark.parametrize(
    ("response", "reference"),
    [
        ("1,000", "1000"),
        ("$1,000.50", "1000.5"),
        ("It costs €12.", "12"),
        ("3/4", "0.75"),
        ("1 1/2 cups of flour", "1.5"),
        ("½", "0.5"),
        ("50%", "0.5"),
        ("0.5", "50%"),
        ("2.5%", "0.025"),
        ("42 km", "42"),
        ("The train travels 120 km/h.", "120"),
        ("1.5e3", "1500"),
        ("1.5 × 10^3 joules", "1500"),
        ("1.5 \\times 10^{3}", "1500"),
        ("The answer is -5.", "-5"),
        ("−5", "-5"),  # a Unicode minus sign
        ("Step 1: 3 * 4 = 12. Step 2: 12 + 5 = 17. So she has 17 apples.", "17"),
        ("Natalia sold 48/2 = 24 clips in May.\nAltogether 48 + 24 = 72.\n#### 72", "72"),
        ("So the probability is \\boxed{\\frac{3}{4}}.", "0.75"),
        ("Final answer: 3 * 4 = 12", "12"),
        ("The answer is 12 apples (3 boxes × 4).", "12"),
        ("twelve", "12"),
        ("The answer is twelve.", "12"),
        ("0.33", "1/3"),  # rounded to two decimals
        ("3.14", "3.14159"),
        ("72.00", "72"),
        ("1 000 000", "1000000"),
        ("The model GPT-4 computed 5", "5"),
        ("#### 1,000", "#### 1000"),  # a GSM8K-style reference
    ],
)
def test_numeric_understands_the_ways_numbers_are_written(response, reference):
    assert numeric(response, reference) == 1.0


@pytest.mark.parametrize(
    ("response", "reference"),
    [
        ("13", "12"),
        ("0.3", "1/3"),  # one decimal is too coarse to count as 1/3
        ("12 or 13", "13"),  # hedging between two numbers
        ("The answer is 12 or 13.", "13"),
        ("17 apples. Or maybe 18.", "18"),
        ("I don't know.", "5"),
        ("", "5"),
        ("The answer is 1,000,000", "1000"),
        ("50", "0.5"),  # 50 is not 50%
    ],
)
def test_numeric_rejects_wrong_hedged_and_missing_numbers(response, reference):
    assert numeric(response, reference) == 0.0


def test_numeric_tolerance_comes_from_the_item_when_given():
    assert numeric("101", "100") == 0.0
    assert numeric("101", "100", rel_tol=0.02) == 1.0


def test_numeric_reference_without_a_number_is_a_recorded_failure():
    score = Numeric().grade("42", Reference(answer="about half"))
    assert score.value is None and "holds no number" in score.error


def test_number_parsing_helpers():
    assert parse_number("$1,000.50") == 1000.5
    assert parse_number("no digits here") is None
    assert answer_number("3 boxes of 4, so 3 * 4 = 12 in total.") == 12.0
    assert answer_number("pages 3-4") == 4.0  # a dash, not a minus sign
