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

Confinement, each step named in the "setup" record (the parent reports what took effect):
- a new pid namespace whose pid 1 is the worker: when the worker dies the kernel kills and
  reaps every process left in it, including ones that left the process group with setsid;
- a new network namespace: no interface is up, so no connection is possible, not even to
  127.0.0.1;
- a new mount namespace in which every world-writable directory (/tmp, /var/tmp, /dev/shm,
  /run/lock) is an empty tmpfs that vanishes with the process, so writes outside the working
  directory leave nothing behind;
- as root: a fresh user id (the kernel exempts root from RLIMIT_NPROC), no supplementary groups,
  PR_SET_NO_NEW_PRIVS (setuid binaries cannot give root back). The interpreter stays readable:
  a directory other users cannot enter on its path (e.g. /root for a pyenv Python) is masked by
  a tmpfs holding read-only bind mounts of just the needed paths;
- without root, the namespaces come from a user namespace when the kernel allows it;
- rlimits: CPU seconds, address space, processes, file size, open files, no core dumps;
- fallback without namespaces: audit hooks refuse sockets and writes, renames and deletions
  outside the working directory, and the launcher is a subreaper that kills and reaps orphans.
  Audit hooks are a speed bump, not a wall; the setup record then says "hooks".

Verdicts are JSON lines carrying a nonce read from the config file, which is deleted before the
code starts, so code that prints "OK", exits early with status 0 or writes a fake verdict does
not pass. Code that deliberately inspects this harness's memory could still forge one: that is
the trust level of every in-process test harness (HumanEval's included).
"""

import contextlib
import ctypes
import io
import json
import os
import resource
import signal
import stat
import sys
import time
import traceback
from typing import Any, NoReturn

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT = 1, 2, 4, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 36, 38
WRITABLE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")
RESULT_FD = 3
MAX_ERROR_CHARS = 500

_libc = ctypes.CDLL(None, use_errno=True)
# Bound now: the untrusted code may replace os.write or json.dumps before a verdict is written.
_write = os.write
_dumps = json.dumps


def emit(nonce: str, record: dict[str, Any]) -> None:
    """One verdict line on the result fd (never through sys.stdout, which the code owns)."""
    record["nonce"] = nonce
    # OSError: the file-size limit was reached by the code's own writes: no verdict, no pass.
    with contextlib.suppress(OSError):
        _write(RESULT_FD, (_dumps(record) + "\n").encode())


def _check(ret: int, what: str) -> None:
    if ret != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(
    source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None
) -> None:
    _check(
        _libc.mount(
            source.encode() if source else None,
            target.encode(),
            fstype.encode() if fstype else None,
            ctypes.c_ulong(flags),
            data.encode() if data else None,
        ),
        f"mount {target}",
    )


def _under(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip("/") + "/")


def _blocking_ancestor(path: str) -> str | None:
    """The outermost directory on `path` that other users cannot traverse, or None."""
    current = "/"
    for part in [p for p in path.split("/") if p]:
        current = os.path.join(current, part)
        try:
            mode = os.stat(current).st_mode
        except OSError:
            return None
        if stat.S_ISDIR(mode) and not mode & stat.S_IXOTH:
            return current
    return None


def _enter_namespaces(workdir: str, as_root: bool, tmpfs_mb: int) -> list[str]:
    """New net, mount and pid namespaces; tmpfs over writable dirs; re-expose what code needs.

    The pid namespace applies to the children forked afterwards: the worker becomes its pid 1,
    and when the worker dies the kernel kills and reaps every process left in it.
    """
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWPID
    if as_root:
        _check(_libc.unshare(flags), "unshare")
    else:
        uid, gid = os.getuid(), os.getgid()
        _check(_libc.unshare(CLONE_NEWUSER | flags), "unshare")
        with open("/proc/self/setgroups", "w") as f:
            f.write("deny")
        with open("/proc/self/uid_map", "w") as f:
            f.write(f"{uid} {uid} 1")
        with open("/proc/self/gid_map", "w") as f:
            f.write(f"{gid} {gid} 1")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)

    # The interpreter and its libraries must stay readable after the uid drop; when they live
    # under a directory others cannot enter (e.g. /root/.pyenv), that directory is masked by a
    # tmpfs into which only the needed paths are bind-mounted read-only.
    needed = {os.path.realpath(p) for p in (sys.base_prefix, sys.prefix, sys.exec_prefix)}
    needed |= {os.path.realpath(p) for p in sys.path if p and os.path.isdir(p)}
    masks = {}  # mask point -> tmpfs mode
    for d in WRITABLE_DIRS:
        if os.path.isdir(d) and not os.path.islink(d):
            masks[os.path.realpath(d)] = "1777"
    if as_root:
        for p in needed:
            blocker = _blocking_ancestor(p)
            if blocker:
                masks.setdefault(blocker, "0755")
    outer = [m for m in masks if not any(o != m and _under(m, o) for o in masks)]
    # A path inside another needed path comes with it.
    needed = {p for p in needed if not any(q != p and _under(p, q) for q in needed)}
    binds = [(p, True) for p in sorted(needed)] + [(workdir, False)]
    # Open everything to re-expose before any mount hides it.
    fds = {}
    for path, _ in binds:
        if any(_under(path, m) for m in outer):
            fds[path] = os.open(path, os.O_PATH | os.O_DIRECTORY)
    for mask in sorted(outer, key=len):
        size = f"{tmpfs_mb}m" if masks[mask] == "1777" else "1m"
        _mount("tmpfs", mask, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode={masks[mask]}")
    for path, readonly in binds:
        if path not in fds:
            continue
        os.makedirs(path, mode=0o755, exist_ok=True)
        _mount(f"/proc/self/fd/{fds[path]}", path, None, MS_BIND | MS_REC)
        if readonly:
            _mount(None, path, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID)
        os.close(fds[path])
    os.chdir(workdir)
    return sorted(outer)


def _install_hooks(workdir: str) -> None:
    """Fallback confinement by audit hooks: no sockets, no writes outside the working dir."""
    allowed = (os.path.realpath(workdir), "/dev/null")
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC
    mutations = {"os.remove", "os.rename", "os.rmdir", "os.mkdir", "shutil.rmtree", "os.link"}

    def inside(path: Any) -> bool:
        if isinstance(path, int):
            return True  # an already-open fd was checked when it was opened
        real = os.path.realpath(os.fsdecode(path))
        return any(_under(real, a) for a in allowed)

    def hook(event: str, args: tuple[Any, ...]) -> None:
        if event == "socket.__new__" or event.startswith("socket.connect"):
            raise PermissionError("network access is disabled in the sandbox")
        if event == "open" and args[0] is not None:
            mode, flags = args[1] or "", args[2] or 0
            writes = any(c in str(mode) for c in "wax+") or flags & write_flags
            if writes and not inside(args[0]):
                raise PermissionError(f"writing outside the sandbox directory: {args[0]}")
        elif event in mutations and not all(inside(a) for a in args[:2] if isinstance(a, str)):
            raise PermissionError(f"{event} outside the sandbox directory is disabled")

    sys.addaudithook(hook)


def _count_processes(uid: int) -> int:
    """Processes whose real uid is `uid` (read from status: /proc/PID's owner can be root)."""
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/status") as f:
                for line in f:
                    if line.startswith("Uid:"):
                        count += int(line.split()[1]) == uid
                        break
        except (OSError, ValueError):
            pass
    return count


def prepare(cfg: dict[str, Any]) -> list[str]:
    """Launcher side, before the fork: namespaces, or a subreaper when they are unavailable."""
    if cfg["namespaces"]:
        try:
            masked = _enter_namespaces(cfg["workdir"], os.geteuid() == 0, cfg["limits"]["tmpfs_mb"])
            return ["netns", "pidns", "mountns:" + ",".join(masked)]
        except OSError as exc:
            note = f"namespaces-unavailable({exc.strerror or exc})"
    else:
        note = "namespaces-off"
    # Orphans of the code are re-parented to the launcher, which kills and reaps them at the end.
    _check(_libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl")
    return [note, "subreaper"]


def confine(cfg: dict[str, Any], isolation: list[str]) -> list[str]:
    """Worker side, after the fork: limits, then the uid drop (or audit hooks). Returns notes."""
    limits = cfg["limits"]
    as_root = os.geteuid() == 0
    done = []
    if "netns" not in isolation:
        _install_hooks(cfg["workdir"])
        done.append("hooks")
    mb = 1024 * 1024
    cpu = limits["cpu_s"]
    # soft = hard: the worker is pid 1 of its namespace, which ignores SIGXCPU; SIGKILL applies.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_mb"] * mb,) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_size_mb"] * mb,) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["open_files"],) * 2)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # an oversized write fails instead of killing
    uid = cfg.get("uid")
    nproc = limits["max_processes"]
    if as_root and uid is not None and "netns" in isolation:
        resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl")
        os.setgroups([])
        os.setgid(uid)
        os.setuid(uid)
        done += [f"uid:{uid}", f"nproc:{nproc}"]
    elif not as_root:
        # RLIMIT_NPROC counts all of this user's processes, so the cap sits above those alive now.
        cap = _count_processes(os.getuid()) + nproc
        resource.setrlimit(resource.RLIMIT_NPROC, (cap, cap))
        _check(_libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl")
        done.append(f"nproc:{cap}")
    else:
        done.append("root-without-nproc-limit")
    return done


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
