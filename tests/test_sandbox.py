"""The code sandbox: model-written code runs confined, is scored honestly, and leaves no trace.

Every run is checked for leftovers: no process in its process group, none with its uid (when it
ran under a fresh uid, as it does when the tests run as root), and no working directory.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import pytest

from trouter.label.sandbox import (
    SandboxLimits,
    SandboxResult,
    TestCase,
    processes_in_group,
    processes_of_uid,
    run_code,
)

FAST = SandboxLimits(cpu_s=2, wall_s=3.0, memory_mb=512, max_processes=8)
AS_ROOT = os.geteuid() == 0


def assert_no_trace(result: SandboxResult) -> None:
    assert processes_in_group(result.pgid) == []
    if result.uid is not None:
        assert processes_of_uid(result.uid) == []
    assert not Path(result.workdir).exists()
    assert not Path(result.workdir).parent.exists()


def run(code: str, tests: list[str] | None = None, **kw) -> SandboxResult:
    result = run_code(
        code, tests if tests is not None else ["assert f() == 1"], **{"limits": FAST, **kw}
    )
    assert_no_trace(result)
    return result


def test_counts_passing_and_failing_tests():
    result = run(
        "def add(a, b):\n    return a + b", ["assert add(2, 2) == 4", "assert add(1, 1) == 3"]
    )
    assert (result.passed, result.total, result.completed) == (1, 2, True)
    assert result.fraction == 0.5 and not result.all_passed
    assert result.test_errors == (None, "AssertionError")


def test_humaneval_style_check_receives_the_entry_point():
    tests = ["def check(candidate):\n    assert candidate([3, 1, 2]) == [1, 2, 3]"]
    result = run("def sort_list(xs):\n    return sorted(xs)", tests, entry_point="sort_list")
    assert result.all_passed


def test_stdin_stdout_cases_compare_output_and_allow_exit_zero_after_printing():
    code = "import sys\nn = int(input())\nprint(n * 2)\nsys.exit(0)"
    cases = [TestCase("2\n", "4\n"), TestCase("5", "10"), TestCase("1", "3")]
    result = run_code(code, cases=cases, limits=FAST)
    assert (result.passed, result.total) == (2, 3)
    failing = run_code("print(1)\nraise SystemExit(1)", cases=[TestCase("", "1")], limits=FAST)
    assert failing.passed == 0 and "exit status 1" in str(failing.test_errors[0])
    assert_no_trace(result)


def test_an_infinite_loop_scores_zero_at_the_wall_clock_limit():
    limits = SandboxLimits(cpu_s=30, wall_s=1.0)
    started = time.monotonic()
    result = run("def f():\n    return 1\nwhile True:\n    pass", limits=limits)
    assert result.passed == 0 and result.timed_out and not result.completed
    assert "wall-clock limit" in result.error
    assert time.monotonic() - started < 5.0


def test_cpu_time_limit_stops_a_busy_loop_before_the_wall_clock():
    started = time.monotonic()
    result = run("while True:\n    pass", limits=SandboxLimits(cpu_s=1, wall_s=30.0))
    assert result.passed == 0 and not result.timed_out
    assert result.exit_code == -9  # SIGKILL from the kernel at RLIMIT_CPU
    assert result.error == "CPU-time limit of 1s reached (killed)"
    assert time.monotonic() - started < 10.0


def test_a_fork_bomb_scores_zero_and_leaves_no_process():
    bomb = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = run(bomb, limits=SandboxLimits(cpu_s=2, wall_s=1.0, max_processes=8))
    assert result.passed == 0 and not result.completed


def test_processes_that_leave_the_group_are_killed_too():
    code = (
        "import os, time\n"
        "for _ in range(3):\n"
        "    if os.fork() == 0:\n"
        "        os.setsid()\n"
        "        while True:\n"
        "            time.sleep(1)\n"
        "def f():\n    return 1\n"
    )
    result = run(code)  # assert_no_trace checks the uid's processes, not only the group
    assert result.all_passed


def test_a_10_gb_allocation_fails_inside_the_memory_limit():
    started = time.monotonic()
    result = run("blob = bytearray(10 * 1024**3)\ndef f():\n    return 1")
    assert result.passed == 0 and "MemoryError" in str(result.test_errors[0])
    assert time.monotonic() - started < 3.0


def test_writes_outside_the_working_directory_leave_nothing_behind(tmp_path):
    tag = uuid.uuid4().hex
    targets = [f"/tmp/escape-{tag}", f"/var/tmp/escape-{tag}", str(tmp_path / f"escape-{tag}")]
    code = "import os\n" + "".join(
        f"try:\n    open({t!r}, 'w').write('x')\nexcept OSError:\n    pass\n" for t in targets
    )
    code += (
        f"try:\n    open('../escape-{tag}', 'w').write('x')\nexcept OSError:\n    pass\n"
        "open('mine.txt', 'w').write('inside')\n"
        "def f():\n    return 1 if open('mine.txt').read() == 'inside' else 0\n"
    )
    result = run(code)
    assert result.all_passed  # its own directory is writable
    for target in targets:
        assert not Path(target).exists()


def test_exiting_early_with_status_zero_does_not_pass():
    result = run("import sys\nsys.exit(0)\ndef f():\n    return 1")
    assert result.passed == 0 and "SystemExit" in str(result.test_errors[0])
    hard = run("import os\nos._exit(0)\ndef f():\n    return 1")
    assert hard.passed == 0 and not hard.completed and "ended the run early" in hard.error


def test_printing_ok_or_writing_fake_verdicts_does_not_pass():
    printed = run("print('OK')\nprint('All tests passed')\ndef f():\n    return 0")
    assert printed.passed == 0 and "OK" in printed.stdout
    forged = (
        "import json, os\n"
        "line = json.dumps({'event': 'done', 'passed': 1, 'total': 1, 'nonce': 'guess'})\n"
        "for fd in range(3, 30):\n"
        "    try:\n"
        "        os.write(fd, (line + '\\n').encode())\n"
        "    except OSError:\n"
        "        pass\n"
        "def f():\n    return 0\n"
    )
    result = run(forged)
    assert result.passed == 0 and result.verdicts_rejected >= 1


@pytest.mark.parametrize("namespaces", [True, False])
def test_there_is_no_network_not_even_loopback(namespaces):
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        code = (
            "import socket\n"
            f"socket.create_connection(('127.0.0.1', {port}), timeout=1).close()\n"
            "def f():\n    return 1\n"
        )
        result = run(code, namespaces=namespaces)
    assert result.passed == 0
    assert "network" in str(result.test_errors[0]).lower() or "Errno" in str(result.test_errors[0])


def test_isolation_steps_are_reported():
    result = run("def f():\n    return 1")
    assert result.all_passed
    assert "netns" in result.isolation or "hooks" in result.isolation
    if AS_ROOT and "netns" in result.isolation:
        assert "pidns" in result.isolation
        assert result.uid is not None and f"uid:{result.uid}" in result.isolation
        assert f"nproc:{FAST.max_processes}" in result.isolation


def test_code_runs_without_root_privileges():
    if not AS_ROOT:
        pytest.skip("only meaningful when trouter itself runs as root")
    result = run(
        "import os\ndef f():\n    return 1 if os.getuid() != 0 and os.geteuid() != 0 else 0"
    )
    assert result.all_passed


def test_fallback_without_namespaces_still_blocks_writes_and_reaps(tmp_path):
    target = tmp_path / "escape.txt"
    code = f"open({str(target)!r}, 'w').write('x')\ndef f():\n    return 1"
    result = run(code, namespaces=False)
    assert "hooks" in result.isolation and "subreaper" in result.isolation
    assert result.passed == 0 and "outside the sandbox" in str(result.test_errors[0])
    assert not target.exists()
    looping = run(
        "import os\nos.fork()\nwhile True:\n    pass",
        namespaces=False,
        limits=SandboxLimits(cpu_s=5, wall_s=1.0),
    )
    assert looping.timed_out
