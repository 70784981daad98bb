"""Peak memory (max resident set size) and wall time of one `trouter bench` run.

    nice -n 10 python benchmarks/bench_memory.py -- --data routerbench_subset --out /tmp/bench-mem

Everything after `--` is passed to `trouter bench` (`-- --help` shows its options); without any,
the run above with --out /tmp/trouter-bench-memory. The run is a child process; its peak RSS is
read from `resource.getrusage(RUSAGE_CHILDREN)` (kilobytes on Linux), the same figure
`/usr/bin/time -v` reports as "Maximum resident set size".
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import time

DEFAULT_BENCH_ARGS = ["--data", "routerbench_subset", "--out", "/tmp/trouter-bench-memory"]


def bench_args(argv: list[str]) -> list[str]:
    """The `trouter bench` arguments in `argv` (those after `--`); the script's own options
    (only --help) come before it, so `--help` is this script's and `-- --help` the command's."""
    cut = argv.index("--") if "--" in argv else len(argv)
    parser = argparse.ArgumentParser(
        prog="bench_memory.py",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _, unknown = parser.parse_known_args(argv[:cut])
    if unknown:
        parser.error(
            f"{' '.join(unknown)}: put the options for `trouter bench` after --, e.g. "
            f"bench_memory.py -- {' '.join(unknown)}"
        )
    return argv[cut + 1 :] or DEFAULT_BENCH_ARGS


def main() -> None:
    argv = bench_args(sys.argv[1:])
    command = [sys.executable, "-c", "from trouter.cli import main; main()", "bench", *argv]
    start = time.perf_counter()
    done = subprocess.run(command, check=False)
    seconds = time.perf_counter() - start
    peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(f"command: trouter bench {' '.join(argv)}")
    print(
        f"exit code {done.returncode} · wall time {seconds:.1f} s · peak RSS {peak_kb / 1024:.0f} MiB"
    )
    sys.exit(done.returncode)


if __name__ == "__main__":
    main()
