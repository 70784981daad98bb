"""The sandbox's confinement: namespaces, mounts, rlimits and the uid drop of the child process.

Used by `_sandbox_child.py` (which loads this file by path, beside it): `prepare` runs in the
launcher before the fork, `confine` in the worker after it. Only the standard library is used
and nothing of trouter is imported, as in the child.

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
"""

import ctypes
import os
import resource
import signal
import stat
import sys
from typing import Any

CLONE_NEWNS = 0x00020000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
CLONE_NEWPID = 0x20000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_REMOUNT = 1, 2, 4, 32
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER, PR_SET_NO_NEW_PRIVS = 1, 36, 38
WRITABLE_DIRS = ("/tmp", "/var/tmp", "/dev/shm", "/run/lock")

_libc = ctypes.CDLL(None, use_errno=True)


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
