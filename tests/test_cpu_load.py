"""A CPU run next to a busy process says so, with the thread count that avoids the slowdown (issue 21)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from charexp.cpu_load import busy_cores, busy_note, cpu_times

STAT = "cpu  {user} 0 {system} {idle} 0 0 0 0 0 0\ncpu0 1 2 3 4 5 6 7 8 9 10\n"


def test_cpu_times_reads_the_first_line_of_proc_stat():
    assert cpu_times(STAT.format(user=100, system=50, idle=850)) == (150, 1000)
    assert cpu_times("intr 1 2 3\n") is None and cpu_times("cpu  a b c d e\n") is None and cpu_times("") is None


def test_busy_cores_is_the_share_of_busy_time_between_two_samples_times_the_cores():
    samples = iter([STAT.format(user=100, system=0, idle=900), STAT.format(user=150, system=50, idle=1000)])
    busy = busy_cores(seconds=0, read=lambda: next(samples))
    assert busy == pytest.approx(0.5 * (os.cpu_count() or 1))  # 100 busy jiffies of 200
    same = STAT.format(user=1, system=1, idle=1)
    assert busy_cores(seconds=0, read=lambda: same) is None  # no time passed: no answer, not a division by zero


@pytest.mark.parametrize("threads, busy, cores, environ, says", [
    (2, 1.0, 2, {}, "OMP_NUM_THREADS=1"),  # one busy process on a 2-core laptop: the case measured
    (4, 2.0, 4, {}, "OMP_NUM_THREADS=2"),
    (2, 0.3, 2, {}, None),  # a little background work: the team still fits
    (4, 1.0, 8, {}, None),  # enough free cores for the team
    (1, 2.0, 2, {}, None),  # already one thread
    (2, 1.0, 2, {"OMP_NUM_THREADS": "2"}, None),  # the user chose
    (2, None, 2, {}, None),  # unknown load (not Linux)
])
def test_busy_note_only_when_the_thread_team_does_not_fit(threads, busy, cores, environ, says):
    note = busy_note(threads, busy, cores, environ)
    assert (note is None) if says is None else (says in note and "\n" not in note)


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads /proc/stat (Linux)")
def test_a_real_busy_process_is_seen():
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = busy_cores(seconds=0.5)
    finally:
        hog.kill()
        hog.wait()
    assert busy is not None and busy >= 0.5
