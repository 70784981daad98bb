import doctest

import numpy as np
import pytest

import trouter.tokens
from trouter.tokens import (
    TOKENS_PER_MESSAGE,
    TOKENS_PER_REPLY,
    estimate_message_tokens,
    estimate_tokens,
    estimate_tokens_many,
)

# Exact cl100k_base counts (GPT-4's tokenizer; Llama 3 gives the same on these), measured once
# with an exact offline tokenizer; the estimator must stay within 15% of each.
EXACT_CL100K = {
    "The mitochondrion is the powerhouse of the cell. It converts nutrients into adenosine "
    "triphosphate, which the cell uses as a source of chemical energy.": 33,
    "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in "
    "May. How many clips did Natalia sell altogether in April and May?": 38,
    "def fib(n: int) -> int:\n    if n < 2:\n        return n\n    return fib(n - 1) + fib(n - 2)"
    "\n\nprint([fib(i) for i in range(10)])\n": 47,
    "Let $f(x) = \\frac{x^2 - 4}{x - 2}$. Compute $\\lim_{x \\to 2} f(x)$ and put the answer in "
    "\\boxed{}.": 42,
    "Which gas do plants absorb?\nA. Oxygen\nB. Carbon dioxide\nC. Nitrogen\nD. Helium\nAnswer:": 27,
    '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Summarise this article '
    'in 3 bullet points."}], "temperature": 0.2}': 44,
    "你好，世界。今天天气很好。": 16,
}


@pytest.mark.parametrize(("text", "exact"), EXACT_CL100K.items())
def test_estimate_is_within_15_percent_of_the_real_tokenizer(text, exact):
    assert abs(estimate_tokens(text) - exact) <= 0.15 * exact


def test_empty_text_has_no_tokens_and_any_other_text_at_least_one():
    assert estimate_tokens("") == 0
    assert estimate_tokens(" ") == 1
    assert estimate_tokens("a") == 1


def test_estimate_grows_with_the_text():
    sentence = "Routing sends each query to the cheapest model that will answer it well. "
    one, ten = estimate_tokens(sentence), estimate_tokens(sentence * 10)
    assert 9 * one <= ten <= 11 * one


def test_long_unbroken_strings_cost_more_than_one_token():
    assert estimate_tokens("AGCTTAGCTAGCTAGGATCGATCGATCGATGCTAGC") >= 10


def test_batch_form_matches_the_single_form():
    texts = [*EXACT_CL100K, "", "x"]
    many = estimate_tokens_many(texts)
    assert many.dtype == np.int64
    assert many.tolist() == [estimate_tokens(t) for t in texts]
    assert estimate_tokens_many(iter([])).shape == (0,)


def test_chat_messages_add_the_per_message_overhead():
    messages = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": [{"type": "text", "text": "Hi there"}, {"type": "image_url"}]},
    ]
    expected = (
        TOKENS_PER_REPLY
        + 2 * TOKENS_PER_MESSAGE
        + estimate_tokens("You are terse.")
        + estimate_tokens("Hi there")
    )
    assert estimate_message_tokens(messages) == expected
    assert estimate_message_tokens([]) == TOKENS_PER_REPLY


def test_module_examples_hold():
    assert doctest.testmod(trouter.tokens).failed == 0
