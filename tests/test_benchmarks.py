"""The benchmark scripts run end to end on a tiny corpus and report what they promise (never timings)."""

from __future__ import annotations

import re
import subprocess
import sys

from conftest import REPO
from foundation import DEVICE, SUBPROCESS_ENV


def bench(script: str, args: list[str], cwd, timeout: float = 240) -> str:
    import os

    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / script), "--device", DEVICE, *args], cwd=cwd,
                          env={**os.environ, **SUBPROCESS_ENV}, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_sampling_benchmark_checks_that_both_paths_write_the_same_lines(tiny_config, tmp_path):
    out = bench("sampling.py", ["--config", str(tiny_config()), "--repeats", "2"], tmp_path)
    assert "same lines from the same seeds: yes" in out
    assert re.search(r"ratio \(a\)/\(b\) speed = \d+\.\d\d", out)


def test_throughput_windows_across_epoch_ends_break_down_every_pause(tiny_config, tiny_csv, tmp_path):
    # tiny, split by line: 22 steps per epoch, so a 25-step window holds an epoch end: eval, samples, version, state,
    # plan
    out = bench("throughput.py",
                ["--config", str(tiny_config()), "--data", str(tiny_csv), "--window", "25", "--windows", "2"], tmp_path)
    assert re.search(r"\(a\)/\(b\) = \d+\.\d{3}\s+\(a\)/\(c\) = \d+\.\d\d", out)
    breakdown = next(line for line in out.splitlines() if line.startswith("(a) time:"))
    for pause in ("run_eval", "run_samples", "publish", "save_state", "plan"):
        assert re.search(rf"{pause} \d+\.\d%", breakdown), (pause, breakdown)
    assert re.search(r"step loop alone [\d,]+ chars/s", breakdown)


def test_throughput_short_windows_evaluate_a_slice_of_the_test_split_also_under_bf16(tiny_config, tiny_csv, tmp_path):
    from charexp.model import cpu_has_bf16_lstm

    amp = ["--amp"] if cpu_has_bf16_lstm() else []  # an AVX2 CPU has no bf16 LSTM: there the fp32 path is checked
    out = bench("throughput.py",
                ["--config", str(tiny_config()), "--data", str(tiny_csv), "--window", "5", "--windows", "2", *amp],
                tmp_path)
    assert re.search(r"eval share \d+\.\d% of the test split per window", out)
    breakdown = next(line for line in out.splitlines() if line.startswith("(a) time:"))
    assert "run_eval" in breakdown and "publish" not in breakdown  # no epoch end inside a 5-step window
