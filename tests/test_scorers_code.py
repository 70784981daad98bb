"""Code answers: the program is found in the response, run in the sandbox, scored by tests;
`scorer_for` picks the scorer by answer format."""

from __future__ import annotations

import asyncio

import pytest

from trouter.errors import ConfigError
from trouter.label.sandbox import SandboxLimits
from trouter.label.scorers import Code, Reference, extract_code, scorer_for
from trouter.label.scorers.code import split_tests

FAST = SandboxLimits(cpu_s=1, wall_s=2.0, memory_mb=512)
ADD = Reference(tests=("assert add(1, 2) == 3", "assert add(-1, 1) == 0"), entry_point="add")


def score(response: str, reference: Reference = ADD, **kw):
    return asyncio.run(Code(FAST, **kw).score(response, reference))


@pytest.mark.parametrize(
    ("response", "code"),
    [
        ("```python\ndef add(a, b):\n    return a + b\n```", "def add(a, b):\n    return a + b"),
        ("```py\nx = 1\n```", "x = 1"),
        ("```\nx = 1\n```", "x = 1"),  # untagged
        ("Here:\n```python\ndef add(a, b):\n    return a + b", "def add(a, b):\n    return a + b"),
        (
            "First try:\n```python\ndef add(a, b):\n    return a - b\n```\nFixed:\n"
            "```python\ndef add(a, b):\n    return a + b\n```\nUsage:\n```python\nprint(add(1, 2))\n```",
            "def add(a, b):\n    return a + b",
        ),
        (
            "def add(a, b):\n    return a + b\n\nThis adds two numbers.",
            "def add(a, b):\n    return a + b",
        ),
        ("Sure! Here it is:\nimport math\nprint(math.pi)", "import math\nprint(math.pi)"),
    ],
)
def test_extract_code_finds_the_program(response, code):
    assert extract_code(response, "add") == code


@pytest.mark.parametrize(
    "response", ["I cannot help with that.", "```bash\npip install numpy\n```", ""]
)
def test_extract_code_returns_none_without_python(response):
    assert extract_code(response) is None


def test_split_tests_makes_one_test_per_assert_with_its_setup():
    assert split_tests("import math\nassert math.floor(1.5) == 1\nassert 2 + 2 == 4") == [
        "import math\nassert math.floor(1.5) == 1",
        "assert 2 + 2 == 4",
    ]
    check = "def check(candidate):\n    assert candidate(1) == 2\n"
    assert split_tests(check) == [check]
    assert split_tests("assert (") == ["assert ("]


def test_correct_code_scores_one_and_wrong_code_zero():
    right = score("```python\ndef add(a, b):\n    return a + b\n```")
    assert right.value == 1.0 and right.detail == "2/2 tests passed"
    wrong = score("```python\ndef add(a, b):\n    return abs(a) + b\n```")
    assert wrong.value == 0.0 and "1/2" in wrong.detail


def test_partial_credit_is_the_share_of_tests_passed():
    assert score("```python\ndef add(a, b):\n    return 3\n```", partial=True).value == 0.5


def test_adversarial_answers_score_zero():
    for body in ("while True:\n    pass", "import sys\nsys.exit(0)"):
        assert score(f"```python\n{body}\ndef add(a, b):\n    return a + b\n```").value == 0.0
    faked = "```python\ndef add(a, b):\n    return 0\nprint('OK')\nprint('All tests passed')\n```"
    assert score(faked).value == 0.0


def test_no_code_scores_zero_and_no_tests_is_a_recorded_failure():
    assert score("I would use the + operator.").value == 0.0
    failed = score("```python\ndef add(a, b):\n    return a + b\n```", Reference(answer="x"))
    assert failed.value is None and "no tests" in failed.error


def test_stdin_stdout_items_run_as_scripts():
    ref = Reference(cases=(("3 4\n", "7\n"), ("10 -2", "8")))
    assert score("```python\na, b = map(int, input().split())\nprint(a + b)\n```", ref).value == 1.0


@pytest.mark.parametrize(
    ("fmt", "name"),
    [
        ("exact", "exact"),
        ("short_answer", "exact"),
        ("numeric", "numeric"),
        ("Math", "numeric"),
        ("multiple_choice", "multiple_choice"),
        ("mcq", "multiple_choice"),
        ("code", "code"),
    ],
)
def test_scorer_for_dispatches_on_the_answer_format(fmt, name):
    assert scorer_for(fmt).name == name


def test_scorer_for_needs_a_judge_for_free_text_and_knows_its_formats():
    with pytest.raises(ConfigError, match="judge"):
        scorer_for("free_text")
    with pytest.raises(ConfigError, match="unknown answer format"):
        scorer_for("haiku")
