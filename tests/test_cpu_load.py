"""A CPU run next to a busy process trains on the cores that are free, and says so (issue 21): a thread team
that waits for a taken core trains 20x slower (benchmarks/contention.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from charexp.cpu_load import busy_cores, cpu_times, free_threads

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


@pytest.mark.parametrize("threads, busy, cores, environ, chosen", [
    (2, 1.0, 2, {}, 1),  # one busy process on a 2-core laptop: the case measured
    (4, 2.0, 4, {}, 2),
    (8, 3.4, 8, {}, 5),  # 4.6 cores free: round to the nearest
    (2, 1.9, 2, {}, 1),  # never fewer than one
    (2, 0.3, 2, {}, 2),  # a little background work: the team still fits
    (4, 1.0, 8, {}, 4),  # enough free cores for the team
    (1, 2.0, 2, {}, 1),  # already one thread
    (2, 1.0, 2, {"OMP_NUM_THREADS": "2"}, 2),  # the user chose
    (2, None, 2, {}, 2),  # unknown load (not Linux)
])
def test_free_threads_only_shrinks_a_team_that_does_not_fit(threads, busy, cores, environ, chosen):
    assert free_threads(threads, busy, cores, environ) == chosen


@pytest.mark.skipif(not Path("/proc/stat").exists(), reason="reads /proc/stat (Linux)")
def test_a_real_busy_process_is_seen():
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        busy = busy_cores(seconds=0.5)
    finally:
        hog.kill()
        hog.wait()
    assert busy is not None and busy >= 0.5


@pytest.mark.skipif(not Path("/proc/stat").exists() or (os.cpu_count() or 1) != 2, reason="a 2-core Linux machine")
def test_a_run_started_beside_a_busy_process_trains_on_the_free_core_and_records_it(tiny_config, tmp_path):
    from charexp.store.checkpoint import load_state
    from charexp.tracking.rundir import list_runs


    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    config = str(tiny_config(epochs=2, steps_per_epoch=3, checkpoint_every=2, sample_every=0, keep_state=True))
    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        done = subprocess.run([sys.executable, str(Path(__file__).parents[1] / "train.py"), "--config", config],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    finally:
        hog.kill()
        hog.wait()
    assert done.returncode == 0, done.stderr[-2000:]
    assert "training on 1 thread instead of 2" in done.stderr
    (run,) = list_runs(tmp_path / "runs")
    assert load_state(run.state_path)["position"]["threads"] == 1  # recorded: a resume keeps it
