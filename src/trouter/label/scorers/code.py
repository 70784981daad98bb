"""Code answers: extract the program from the response and run the item's tests in the sandbox.

    >>> extract_code("Sure!\\n```python\\ndef add(a, b):\\n    return a + b\\n```\\nHope it helps.")
    'def add(a, b):\\n    return a + b'

The code always runs in `trouter.label.sandbox` (a confined subprocess), never in this process.
"""

from __future__ import annotations

import ast
import asyncio
import re

from trouter.label.sandbox import SandboxLimits, SandboxResult, TestCase, run_code
from trouter.label.scorers.base import Reference, Score

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:\n[ \t]*```|\Z)", re.DOTALL)
_PYTHON_TAGS = {"", "python", "py", "python3", "py3", "ipython", "pycon"}
_CODE_START = re.compile(r"^(?:def |class |import |from \S+ import |@|async def |if __name__)")
MAX_TRIM_LINES = 20


def extract_code(response: str, entry_point: str | None = None) -> str | None:
    """The Python program in a response, or None.

    Fenced blocks first: among Python (or untagged) blocks, the last one defining `entry_point`
    (a model that corrects itself ends with the fixed version), else the longest. An unterminated
    fence (a truncated answer) runs to the end. Without fences, the text from the first line that
    starts like code, with trailing prose trimmed until it compiles.
    """
    blocks = [(tag.lower(), body.strip("\n")) for tag, body in _FENCE.findall(response)]
    python = [body for tag, body in blocks if tag in _PYTHON_TAGS and body.strip()]
    if python:
        if entry_point:
            defining = [
                b
                for b in python
                if re.search(rf"^\s*(?:async\s+)?def\s+{re.escape(entry_point)}\b", b, re.M)
            ]
            if defining:
                return defining[-1]
        return max(python, key=len)
    if blocks:
        return None  # only other languages (bash, json, output): no program to run
    lines = response.splitlines()
    start = next((i for i, ln in enumerate(lines) if _CODE_START.match(ln)), None)
    if start is None:
        return None
    for end in range(len(lines), max(start, len(lines) - MAX_TRIM_LINES), -1):
        candidate = "\n".join(lines[start:end]).rstrip()
        try:
            compile(candidate, "<answer>", "exec")
        except (SyntaxError, ValueError):
            continue
        return candidate
    return "\n".join(lines[start:]).rstrip()  # let the sandbox report the syntax error


def split_tests(tests: str) -> list[str]:
    """One test per top-level `assert`, each carrying the setup statements before it.

    >>> split_tests("import math\nassert math.floor(1.5) == 1\nassert 2 + 2 == 4")
    ['import math\nassert math.floor(1.5) == 1', 'assert 2 + 2 == 4']

    Tests that do not parse, or hold no top-level assert (a `check(candidate)` function), stay
    one test; the sandbox reports their error.
    """
    try:
        tree = ast.parse(tests)
    except SyntaxError:
        return [tests]
    lines = tests.splitlines()
    chunks: list[str] = []
    setup: list[str] = []
    for node in tree.body:
        end = node.end_lineno or node.lineno
        source = "\n".join(lines[node.lineno - 1 : end])
        if isinstance(node, ast.Assert):
            chunks.append("\n".join([*setup, source]))
            setup = []
        else:
            setup.append(source)
    if not chunks:
        return [tests]
    if setup:  # trailing statements (e.g. a final call) ride with the last test
        chunks[-1] = "\n".join([chunks[-1], *setup])
    return chunks


class Code:
    """Runs the extracted program against the reference's tests in the sandbox.

    The score is 1 when every test passes (pass@1), or with `partial=True` the share of tests
    passed. At most `concurrency` sandboxes run at once: they use real CPU, unlike LLM calls.
    """

    name = "code"

    def __init__(
        self,
        limits: SandboxLimits | None = None,
        *,
        partial: bool = False,
        concurrency: int = 2,
        namespaces: bool = True,
    ) -> None:
        self.limits = limits or SandboxLimits()
        self.partial = partial
        self.namespaces = namespaces
        self.concurrency = concurrency
        self._gates: dict[asyncio.AbstractEventLoop, asyncio.Semaphore] = {}
        self.last_isolation: tuple[str, ...] = ()

    def _gate(self) -> asyncio.Semaphore:
        # A semaphore belongs to one event loop; a scorer may outlive a loop (asyncio.run twice).
        loop = asyncio.get_running_loop()
        if loop not in self._gates:
            self._gates = {loop: asyncio.Semaphore(self.concurrency)}
        return self._gates[loop]

    async def score(self, response: str, reference: Reference) -> Score:
        if not reference.tests and not reference.cases:
            return Score.failure("the item has no tests to run the code against")
        program = extract_code(response, reference.entry_point)
        if program is None:
            return Score.of(False, None, "no Python code in the response")
        async with self._gate():
            result = await asyncio.to_thread(self.run, program, reference)
        self.last_isolation = result.isolation or self.last_isolation
        return self.to_score(program, result)

    def run(self, program: str, reference: Reference) -> SandboxResult:
        """Blocking: one sandboxed run of `program` against the reference's tests."""
        if reference.cases:
            cases = [TestCase(input=i, output=o) for i, o in reference.cases]
            return run_code(program, cases=cases, limits=self.limits, namespaces=self.namespaces)
        return run_code(
            program,
            tests=list(reference.tests),
            entry_point=reference.entry_point,
            limits=self.limits,
            namespaces=self.namespaces,
        )

    def to_score(self, program: str, result: SandboxResult) -> Score:
        if result.error.startswith(("the sandbox did not start", "the sandbox could not")):
            return Score.failure(result.error, result.stderr[-500:])
        detail = f"{result.passed}/{result.total} tests passed"
        if result.error:
            detail += f"; {result.error}"
        first_error = next((e for e in result.test_errors if e), None)
        if first_error:
            detail += f"; first failure: {first_error}"
        value = result.fraction if self.partial else float(result.all_passed)
        return Score(value, program[:2000], "", detail)
