"""The sandbox's child side: confine a fresh process, run untrusted code and its tests in it.

Started by `trouter.label.sandbox` as `python -I -B _sandbox_child.py CONFIG` in a fresh working
directory, in its own session, with a result file open on the fd named in the config. Only the
standard library is used and nothing of trouter is imported: this file runs as the parent's user
before confinement and must stay small enough to audit.

Two processes. The *launcher* (this process) reads and deletes the config, enters the
namespaces, then forks the *worker*, which applies the limits, drops privileges and runs the
code. The launcher keeps none of the limits: it enforces the wall clock, kills the worker at the
deadline and reaps, so nothing the code started outlives it (this machine's pid 1 does not reap
orphans, so leaving them would leave zombies).

Confinement (namespaces, mounts, rlimits, the uid drop) lives beside this file in
`_sandbox_confinement.py`, whose docstring lists each step.

Verdicts are JSON lines carrying a nonce read from the config file, which is deleted before the
code starts, so code that prints "OK", exits early with status 0 or writes a fake verdict does
not pass. Code that deliberately inspects this harness's memory could still forge one: that is
the trust level of every in-process test harness (HumanEval's included).
"""

import contextlib
import io
import json
import os
import signal
import sys
import time
import traceback
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from trouter.label._sandbox_confinement import (
        PR_SET_PDEATHSIG,
        _check,
        _libc,
        confine,
        prepare,
    )
else:  # run as a script with -I: this directory is not on sys.path, so load it by path
    import importlib.util

    _spec = importlib.util.spec_from_file_location(
        "_sandbox_confinement",
        os.path.join(os.path.dirname(os.path.realpath(__file__)), "_sandbox_confinement.py"),
    )
    _confinement = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_confinement)
    PR_SET_PDEATHSIG, _check, _libc = (
        _confinement.PR_SET_PDEATHSIG,
        _confinement._check,
        _confinement._libc,
    )
    confine, prepare = _confinement.confine, _confinement.prepare

RESULT_FD = 3
MAX_ERROR_CHARS = 500

# Bound now: the untrusted code may replace os.write or json.dumps before a verdict is written.
_write = os.write
_dumps = json.dumps


def emit(nonce: str, record: dict[str, Any]) -> None:
    """One verdict line on the result fd (never through sys.stdout, which the code owns)."""
    record["nonce"] = nonce
    # OSError: the file-size limit was reached by the code's own writes: no verdict, no pass.
    with contextlib.suppress(OSError):
        _write(RESULT_FD, (_dumps(record) + "\n").encode())


def _error_text(exc: BaseException) -> str:
    text = "".join(traceback.format_exception_only(type(exc), exc)).strip()
    return text[:MAX_ERROR_CHARS]


def run_asserts(nonce: str, solution: str, tests: list[str], entry_point: str | None) -> int:
    """Execute the solution once, then each test in its namespace; one verdict per test."""
    namespace = {"__name__": "__solution__", "__builtins__": __builtins__}
    try:
        exec(compile(solution, "solution.py", "exec"), namespace)
        setup_error = None
    except BaseException as exc:  # SystemExit and KeyboardInterrupt included: no early pass
        setup_error = "solution: " + _error_text(exc)
    passed = 0
    for index, test in enumerate(tests):
        error = setup_error
        if error is None:
            try:
                exec(compile(test, f"test_{index}.py", "exec"), namespace)
                check = namespace.get("check")
                if entry_point and "def check" in test and callable(check):
                    check(namespace[entry_point])
            except BaseException as exc:
                error = _error_text(exc)
        passed += error is None
        emit(nonce, {"event": "test", "index": index, "passed": error is None, "error": error})
    return passed


def run_io(nonce: str, solution: str, cases: list[dict[str, str]]) -> int:
    """Run the solution as a script per case, stdin given, stdout compared line by line."""
    passed = 0
    real_stdin, real_stdout = sys.stdin, sys.stdout
    code = None
    try:
        code = compile(solution, "solution.py", "exec")
    except BaseException as exc:
        compile_error = _error_text(exc)
    for index, case in enumerate(cases):
        error = None if code is not None else compile_error
        if code is not None:
            sys.stdin, sys.stdout = io.StringIO(case["input"]), io.StringIO()
            try:
                exec(code, {"__name__": "__main__", "__builtins__": __builtins__})
            except SystemExit as exc:  # exit(0) after printing is how many scripts end
                if exc.code not in (0, None):
                    error = f"exit status {exc.code}"
            except BaseException as exc:
                error = _error_text(exc)
            out = sys.stdout.getvalue() if isinstance(sys.stdout, io.StringIO) else ""
            sys.stdin, sys.stdout = real_stdin, real_stdout
            if error is None and _lines(out) != _lines(case["output"]):
                error = f"wrong output: {out[:200]!r}"
        passed += error is None
        emit(nonce, {"event": "test", "index": index, "passed": error is None, "error": error})
    return passed


def _lines(text: str) -> list[str]:
    """Output compared modulo trailing spaces and surrounding blank lines, as judges do."""
    return [line.rstrip() for line in text.strip().splitlines()]


def work(cfg: dict[str, Any], nonce: str, isolation: list[str]) -> NoReturn:
    """The worker: confine, run the tests, report. Never returns."""
    status = 0
    try:
        _check(_libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
        isolation = isolation + confine(cfg, isolation)
        emit(nonce, {"event": "setup", "ok": True, "isolation": isolation})
    except BaseException as exc:  # refuse to run unconfined rather than run with half the limits
        emit(nonce, {"event": "setup", "ok": False, "error": _error_text(exc)})
        os._exit(3)
    try:
        if cfg["mode"] == "io":
            passed = run_io(nonce, cfg["solution"], cfg["cases"])
            total = len(cfg["cases"])
        else:
            passed = run_asserts(nonce, cfg["solution"], cfg["tests"], cfg.get("entry_point"))
            total = len(cfg["tests"])
        emit(nonce, {"event": "done", "passed": passed, "total": total})
    except BaseException:
        status = 4
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        with contextlib.suppress(BaseException):  # the code may have closed or replaced them
            stream.flush()  # type: ignore[union-attr]
    os._exit(status)  # no atexit handler the code registered runs


def _reap_descendants() -> None:
    """Subreaper mode: kill and reap whatever the code left behind (orphans come to us)."""
    for _ in range(1000):
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    try:
                        with open(f"/proc/{entry}/stat") as f:
                            ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                        if ppid == os.getpid():
                            os.kill(int(entry), signal.SIGKILL)
                    except (OSError, ValueError, IndexError):
                        pass
            time.sleep(0.001)


def main() -> int:
    global RESULT_FD
    config_path = sys.argv[1]
    with open(config_path) as f:
        cfg = json.load(f)
    os.unlink(config_path)  # the nonce must not be readable by the code
    nonce = cfg.pop("nonce")
    RESULT_FD = cfg["result_fd"]
    here = os.path.dirname(os.path.realpath(__file__))
    sys.path[:] = [p for p in sys.path if os.path.realpath(p) != here]  # no trouter internals
    try:
        isolation = prepare(cfg)
    except OSError as exc:
        emit(nonce, {"event": "setup", "ok": False, "error": _error_text(exc)})
        return 3
    deadline = time.monotonic() + cfg["limits"]["wall_s"]
    worker = os.fork()
    if worker == 0:
        work(cfg, nonce, isolation)
    # The launcher stays outside the limits and the uid drop: it enforces the wall clock and
    # reaps, so nothing the code started outlives this process (pid 1 may not reap orphans).
    timed_out = False
    pause = 0.0005
    while True:
        pid, status = os.waitpid(worker, os.WNOHANG)
        if pid:
            break
        if time.monotonic() >= deadline:
            timed_out = True
            os.kill(worker, signal.SIGKILL)  # as pid 1 of its namespace, it takes everything along
            _, status = os.waitpid(worker, 0)
            break
        time.sleep(pause)
        pause = min(pause * 2, 0.02)
    if "subreaper" in isolation:
        _reap_descendants()
    code = os.waitstatus_to_exitcode(status)
    emit(nonce, {"event": "exit", "code": code, "timed_out": timed_out})
    return 0


if __name__ == "__main__":
    sys.exit(main())
