"""Is another process using the CPU right now? torch's OpenMP threads spin-wait for each other, so a run with
one thread per core next to a busy process waits for a core that is not free: benchmarks/contention.py
measured 4,106 chars/s there against 54,078 with OMP_NUM_THREADS=1 and 81,152 alone (2 cores, quick.yaml, medians)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Callable

BUSY = 0.5  # cores' worth of other work that makes a full thread team wait


def cpu_times(stat: str) -> tuple[int, int] | None:
    """(busy, total) jiffies of all CPUs from /proc/stat's first line; None when it is not that format."""
    fields = stat.split("\n", 1)[0].split()
    if len(fields) < 5 or fields[0] != "cpu" or not all(f.isdigit() for f in fields[1:]):
        return None
    values = [int(f) for f in fields[1:]]
    idle = values[3] + (values[4] if len(values) > 4 else 0)  # idle + iowait
    return sum(values[:8]) - idle, sum(values[:8])  # guest time is already counted in user


def busy_cores(seconds: float = 0.2, read: Callable[[], str] | None = None) -> float | None:
    """How many cores' worth of work the machine did over `seconds` (this process is idle meanwhile, so it is
    other processes' work); None where /proc/stat is not there (not Linux)."""
    read = read or (lambda: Path("/proc/stat").read_text())
    try:
        before = cpu_times(read())
        time.sleep(seconds)
        after = cpu_times(read())
    except OSError:
        return None
    if before is None or after is None or after[1] <= before[1]:
        return None
    return (after[0] - before[0]) / (after[1] - before[1]) * (os.cpu_count() or 1)


def free_threads(threads: int, busy: float | None, cores: int, environ: dict[str, str] | None = None) -> int:
    """How many threads a CPU run should use beside `busy` cores of other work: torch's `threads`, unless other
    processes leave fewer cores free (then that many, at least 1). The user's OMP_NUM_THREADS always stands, and
    an unknown load (not Linux) changes nothing."""
    environ = os.environ if environ is None else environ
    if busy is None or threads <= 1 or "OMP_NUM_THREADS" in environ or busy < BUSY:
        return threads
    return max(1, min(threads, int(cores - busy + 0.5)))


def choose_threads(threads: int) -> tuple[int, str | None]:
    """(threads to train with, a line saying why when that is fewer than torch's `threads`). It samples the CPU
    (0.2 s) only when the answer could change."""
    if threads <= 1 or "OMP_NUM_THREADS" in os.environ:
        return threads, None
    busy, cores = busy_cores(), os.cpu_count() or 1
    chosen = free_threads(threads, busy, cores)
    if chosen == threads:
        return threads, None
    return chosen, (f"other processes are using {busy:.1f} of this machine's {cores} cores: training on {chosen} "
                    f"thread{'s' if chosen > 1 else ''} instead of {threads}, as a thread team that waits for a taken "
                    "core trains many times slower (benchmarks/contention.py: 20x); set OMP_NUM_THREADS to choose")
