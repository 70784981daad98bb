"""Multiple-choice letter extraction across the answer styles models use."""

from __future__ import annotations

import pytest

from trouter.label.scorers import MultipleChoice, Reference, choice_letter
from trouter.label.scorers.choice import reference_letter

CAPITALS = ("London", "Paris", "Rome", "Berlin")


@pytest.mark.parametrize(
    ("response", "letter"),
    [
        ("B", "B"),
        ("(B)", "B"),
        ("B)", "B"),
        ("b", "B"),
        ("B.", "B"),
        ("**B**", "B"),
        ("Answer: B", "B"),
        ("Answer: (c)", "C"),
        ("The answer is B.", "B"),
        ("answer is (B)", "B"),
        ("The correct answer is option D", "D"),
        ("I think it's C, not B", "C"),
        ("The answer is not B, it's C.", "C"),
        ("C is correct.", "C"),
        ("Option A is wrong and B is wrong. D is the right answer.", "D"),
        ("The answer is B... no wait, the answer is C", "C"),
        ("I think the answer is **(D) Berlin**", "D"),
        ("A good question! The answer is C.", "C"),  # "A good" is the article
        ("A good question! I'd go with C.", "C"),
        ("I choose A.", "A"),
        ("A is the answer", "A"),
        ("B) Paris, because it has been the capital since 508.", "B"),
        ("A. London\nB. Paris\n\nAnswer: B", "B"),
        ("Paris", "B"),  # option text instead of the letter
        ("The capital of France is Paris.", "B"),
        ("Not London, it's Paris", "B"),
    ],
)
def test_choice_letter_reads_common_answer_styles(response, letter):
    assert choice_letter(response, CAPITALS) == letter


@pytest.mark.parametrize(
    "response",
    [
        "A or B, hard to say.",
        "A) London B) Paris C) Rome D) Berlin",  # reciting the options
        "It is definitely not London.",
        "The answer is Because of history",  # "B" starting a word
        "None of these",
        "London or Paris",
        "E",  # not an option of a four-option question
        "Answer: E",
        "",
    ],
)
def test_choice_letter_gives_no_letter_for_hedges_and_non_answers(response):
    assert choice_letter(response, CAPITALS) is None


def test_option_text_prefers_the_longest_nested_option():
    choices = ("Paris", "Paris, Texas", "Rome")
    assert choice_letter("It is Paris, Texas.", choices) == "B"


def test_reference_may_be_a_letter_a_label_or_the_option_text():
    assert reference_letter(Reference(answer="b", choices=CAPITALS)) == "B"
    assert reference_letter(Reference(answer="(C)", choices=CAPITALS)) == "C"
    assert reference_letter(Reference(answer="Berlin", choices=CAPITALS)) == "D"
    assert reference_letter(Reference(answer="D) Berlin", choices=CAPITALS)) == "D"
    assert reference_letter(Reference(answer="Madrid", choices=CAPITALS)) is None


def test_scorer_compares_letters_and_records_what_it_read():
    scorer = MultipleChoice()
    right = scorer.grade("The answer is (B).", Reference(answer="B", choices=CAPITALS))
    wrong = scorer.grade("I'd go with A.", Reference(answer="Paris", choices=CAPITALS))
    hedge = scorer.grade("A or B", Reference(answer="B", choices=CAPITALS))
    assert (right.value, right.extracted) == (1.0, "B")
    assert (wrong.value, wrong.extracted) == (0.0, "A")
    assert hedge.value == 0.0 and hedge.extracted is None


def test_scorer_without_choices_accepts_letters_up_to_the_reference():
    assert MultipleChoice().grade("Answer: E", Reference(answer="E")).value == 1.0


def test_unusable_reference_is_a_recorded_failure():
    score = MultipleChoice().grade("B", Reference(answer="Madrid", choices=CAPITALS))
    assert score.value is None and "neither an option letter" in score.error
