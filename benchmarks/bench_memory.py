"""Peak memory (max resident set size) and wall time of one `trouter bench` run.

    nice -n 10 python benchmarks/bench_memory.py -- --data routerbench_subset --out /tmp/bench-mem

Everything after `--` is passed to `trouter bench`. The run is a child process; its peak RSS is
read from `resource.getrusage(RUSAGE_CHILDREN)` (kilobytes on Linux), the same figure
`/usr/bin/time -v` reports as "Maximum resident set size".
"""

from __future__ import annotations

import resource
import subprocess
import sys
import time


def main() -> None:
    argv = sys.argv[1:]
    if argv and argv[0] == "--":
        argv = argv[1:]
    if not argv:
        argv = ["--data", "routerbench_subset", "--out", "/tmp/trouter-bench-memory"]
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
