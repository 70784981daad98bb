"""Run a model's code against tests in a confined subprocess, never in this process.

    >>> result = run_code("def add(a, b):\\n    return a + b", tests=["assert add(2, 2) == 4"])
    >>> result.passed, result.total
    (1, 1)

Every run gets a fresh temporary directory (deleted afterwards), a minimal environment, its own
session, CPU-time / address-space / process-count / file-size limits, a wall-clock deadline, no
network, and, when this process is root, a fresh unprivileged uid. What the child side does and
why is described in `trouter.label._sandbox_child`, each confinement step in
`trouter.label._sandbox_confinement`; `SandboxResult.isolation` names every step that took
effect on this machine, so a weaker fallback is visible rather than silent.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

CHILD = Path(__file__).with_name("_sandbox_child.py")
# Unprivileged uids handed to sandboxes when running as root: far above any real account.
UID_BASE = 1_700_000_000
UID_SPAN = 100_000_000
MINIMAL_PATH = "/usr/local/bin:/usr/bin:/bin"


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits for one run. The wall clock bounds everything, the rest bound abuse."""

    cpu_s: int = 5
    wall_s: float = 10.0
    memory_mb: int = 1024
    max_processes: int = 16
    file_size_mb: int = 16
    open_files: int = 64
    tmpfs_mb: int = 64
    output_chars: int = 4000  # of stdout / stderr kept in the result


@dataclass(frozen=True)
class TestCase:
    """A stdin -> expected stdout pair (competitive-programming style tests)."""

    __test__ = False  # not a pytest class

    input: str
    output: str


@dataclass(frozen=True)
class SandboxResult:
    """What happened: tests passed, limits hit, and which confinement steps took effect."""

    passed: int
    total: int
    completed: bool  # the harness reached its end (every test ran)
    timed_out: bool
    exit_code: int | None
    isolation: tuple[str, ...]
    test_errors: tuple[str | None, ...]
    stdout: str
    stderr: str
    error: str  # why there is no complete verdict, if there is none
    pgid: int
    uid: int | None
    workdir: str
    duration_s: float
    verdicts_rejected: int = 0  # lines on the result channel without the run's nonce

    @property
    def fraction(self) -> float:
        """Share of tests passed (a test that never ran counts as failed)."""
        return self.passed / self.total if self.total else 0.0

    @property
    def all_passed(self) -> bool:
        return self.completed and self.total > 0 and self.passed == self.total


@dataclass
class _Verdicts:
    setup: dict[str, object] | None = None
    tests: dict[int, dict[str, object]] = field(default_factory=dict)
    done: dict[str, object] | None = None
    exit: dict[str, object] | None = None
    rejected: int = 0


def run_code(
    solution: str,
    tests: Sequence[str] | None = None,
    *,
    cases: Sequence[TestCase] | None = None,
    entry_point: str | None = None,
    limits: SandboxLimits | None = None,
    namespaces: bool = True,
) -> SandboxResult:
    """Run `solution`, then each test (Python code, asserts) or each stdin/stdout case.

    `tests` run in the solution's namespace; a test defining `check(candidate)` is called with
    the function named `entry_point` (HumanEval style). `namespaces=False` forces the weaker
    audit-hook fallback (for tests of that path). Blocking; use `asyncio.to_thread` from async
    code.
    """
    if (tests is None) == (cases is None):
        raise ValueError("give either tests (Python asserts) or cases (stdin/stdout pairs)")
    limits = limits or SandboxLimits()
    as_root = os.geteuid() == 0
    uid = _free_uid() if as_root else None
    base = Path(tempfile.mkdtemp(prefix="trouter-sandbox-"))
    started = time.monotonic()
    try:
        os.chmod(base, 0o711)  # the sandbox uid may traverse to its workdir, not list the rest
        work = base / "work"
        work.mkdir(mode=0o700)
        if uid is not None:
            os.chown(work, uid, uid)
        config = base / "config.json"
        nonce = secrets.token_hex(16)
        result_path = base / "result"
        with (
            open(result_path, "wb") as result_file,
            open(base / "stdout", "wb") as out,
            open(base / "stderr", "wb") as err,
        ):
            payload = {
                "nonce": nonce,
                "result_fd": result_file.fileno(),
                "mode": "io" if cases is not None else "asserts",
                "solution": solution,
                "tests": list(tests or []),
                "cases": [{"input": c.input, "output": c.output} for c in cases or []],
                "entry_point": entry_point,
                "workdir": str(work),
                "uid": uid,
                "namespaces": namespaces,
                "limits": limits.__dict__,
            }
            fd = os.open(config, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as f:
                json.dump(payload, f)
            proc = subprocess.Popen(
                [sys.executable, "-I", "-B", str(CHILD), str(config)],
                cwd=work,
                env=_minimal_env(work),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                pass_fds=(result_file.fileno(),),
                start_new_session=True,
            )
        pgid = proc.pid
        try:
            # The launcher enforces wall_s itself; this is the backstop if it cannot.
            proc.wait(timeout=limits.wall_s + 10.0)
        except subprocess.TimeoutExpired:
            pass
        finally:
            _kill_everything(proc, pgid, uid)
        verdicts = _read_verdicts(result_path, nonce)
        n_tests = len(cases) if cases is not None else len(tests or [])
        return _result(
            verdicts, proc, limits, base, pgid, uid, work, n_tests, time.monotonic() - started
        )
    finally:
        _remove_tree(base)


def _result(
    v: _Verdicts,
    proc: subprocess.Popen[bytes],
    limits: SandboxLimits,
    base: Path,
    pgid: int,
    uid: int | None,
    work: Path,
    n_tests: int,
    duration: float,
) -> SandboxResult:
    passed = sum(bool(t.get("passed")) for i, t in v.tests.items() if 0 <= i < n_tests)
    timed_out = bool(v.exit and v.exit.get("timed_out")) or proc.returncode is None
    exit_code = v.exit.get("code") if v.exit else proc.returncode
    error = ""
    if v.setup is None:
        error = "the sandbox did not start"
    elif not v.setup.get("ok"):
        error = f"the sandbox could not be set up: {v.setup.get('error')}"
    elif timed_out:
        error = f"wall-clock limit of {limits.wall_s:g}s reached"
    elif v.done is None and exit_code == -signal.SIGKILL:
        # Nothing else here sends SIGKILL before the deadline: the kernel does at RLIMIT_CPU
        # (soft = hard, since the worker is pid 1 of its namespace and ignores SIGXCPU).
        error = f"CPU-time limit of {limits.cpu_s}s reached (killed)"
    elif v.done is None:
        error = f"the code ended the run early (exit {exit_code})"
    isolation = v.setup.get("isolation", []) if v.setup else []
    return SandboxResult(
        passed=passed,
        total=n_tests,
        completed=v.done is not None,
        timed_out=timed_out,
        exit_code=exit_code if isinstance(exit_code, int) else None,
        isolation=tuple(str(x) for x in isolation),  # type: ignore[attr-defined]
        test_errors=tuple(v.tests[i].get("error") for i in sorted(v.tests)),  # type: ignore[misc]
        stdout=_head(base / "stdout", limits.output_chars),
        stderr=_head(base / "stderr", limits.output_chars),
        error=error,
        pgid=pgid,
        uid=uid,
        workdir=str(work),
        duration_s=duration,
        verdicts_rejected=v.rejected,
    )


def _read_verdicts(path: Path, nonce: str) -> _Verdicts:
    verdicts = _Verdicts()
    with open(path, "rb") as f:
        raw = f.read(4 * 1024 * 1024)
    for line in raw.splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            verdicts.rejected += 1
            continue
        if not isinstance(record, dict) or record.get("nonce") != nonce:
            verdicts.rejected += 1
            continue
        event = record.get("event")
        if event == "setup" and verdicts.setup is None:
            verdicts.setup = record
        elif event == "test" and isinstance(record.get("index"), int):
            verdicts.tests.setdefault(record["index"], record)
        elif event == "done" and verdicts.done is None:
            verdicts.done = record
        elif event == "exit":
            verdicts.exit = record
    return verdicts


def _kill_everything(proc: subprocess.Popen[bytes], pgid: int, uid: int | None) -> None:
    """Kill the launcher's group and, as root, every process of the sandbox uid; reap."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5.0)
    if uid is None:
        return
    # Normally empty: the pid namespace took them all. This covers a launcher that could not
    # make one; repeated because a fork bomb forks between a scan and the kill.
    for _ in range(100):
        pids = processes_of_uid(uid)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.01)


def processes_of_uid(uid: int) -> list[int]:
    """Live processes whose real uid is `uid` (zombies included: they still hold a pid)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        if int(line.split()[1]) == uid:
                            found.append(int(entry))
                        break
        except (OSError, ValueError):
            continue
    return found


def processes_in_group(pgid: int) -> list[int]:
    """Processes whose process group is `pgid`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == pgid:
                found.append(int(entry))
        except (OSError, ValueError, IndexError):
            continue
    return found


def _free_uid() -> int:
    taken = set()
    while True:
        uid = UID_BASE + secrets.randbelow(UID_SPAN)
        if uid not in taken and not processes_of_uid(uid):
            return uid
        taken.add(uid)


def _minimal_env(work: Path) -> dict[str, str]:
    return {
        "PATH": MINIMAL_PATH,
        "HOME": str(work),
        "TMPDIR": str(work),
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONHASHSEED": "0",
    }


def _head(path: Path, limit: int) -> str:
    try:
        with open(path, "rb") as f:
            return f.read(limit * 4).decode("utf-8", errors="replace")[:limit]
    except OSError:
        return ""


def _remove_tree(base: Path) -> None:
    """Delete the run's directory even if the code chmod-ed parts of it to 000."""

    def fix(func: object, path: str, _exc: object) -> None:
        with contextlib.suppress(OSError):
            os.chmod(os.path.dirname(path), 0o700)
            os.chmod(path, 0o700)
        with contextlib.suppress(OSError):
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                os.unlink(path)

    shutil.rmtree(base, onerror=fix)
    if base.exists():
        shutil.rmtree(base, ignore_errors=True)
