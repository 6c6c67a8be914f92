"""Training speed on a busy machine: alone, and next to other CPU-bound processes, with OpenMP's settings.

Users train on laptops and shared servers. torch's CPU kernels run on an OpenMP team of one thread per core,
and by default (OMP_WAIT_POLICY unset, libgomp's ACTIVE-ish spin) a thread that finishes its share spins
waiting for the others. When another process holds a core, the team waits for a thread that is not
running, and the run can slow far more than the lost core explains.

Each scenario trains `configs/quick.yaml` for --steps steps on the real corpus in a fresh `python train.py`
(W&B disabled, everything under a temporary directory) and reads its loop speed (chars/s) from the run's
summary.json. "busy" starts --hogs CPU-bound `yes > /dev/null` processes first. Scenarios alternate in rounds,
and the table gives medians over --repeats rounds with the ratio to "alone, default" from the same run.

    python benchmarks/contention.py [--steps 300] [--repeats 3] [--hogs 1] [--only "alone, default" ...]

"default" is what a user gets: charexp's rule (charexp/cpu_load.py) trains on the cores other processes leave
free. OMP_NUM_THREADS always wins over the rule, so "OMP_NUM_THREADS=2" is torch's own 2-thread team.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCENARIOS = {  # name: (busy?, environment changes)
    "alone, default": (False, {}),
    "alone, OMP_NUM_THREADS=1": (False, {"OMP_NUM_THREADS": "1"}),
    "alone, OMP_WAIT_POLICY=PASSIVE": (False, {"OMP_WAIT_POLICY": "PASSIVE"}),
    "busy, default": (True, {}),
    "busy, OMP_NUM_THREADS=1": (True, {"OMP_NUM_THREADS": "1"}),
    "busy, OMP_NUM_THREADS=2": (True, {"OMP_NUM_THREADS": "2"}),  # a 2-thread team whatever the load: the rule off
    "busy, OMP_WAIT_POLICY=PASSIVE": (True, {"OMP_WAIT_POLICY": "PASSIVE"}),
}
CLEARED = ("OMP_NUM_THREADS", "OMP_WAIT_POLICY", "MKL_NUM_THREADS", "GOMP_SPINCOUNT")


def train_speed(steps: int, env_changes: dict[str, str]) -> float:
    """chars/s of the training loop of one fresh `python train.py` run."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {k: v for k, v in os.environ.items() if k not in CLEARED} | env_changes
        args = [sys.executable, str(ROOT / "train.py"), "--config", str(ROOT / "configs" / "quick.yaml"),
                "--epochs=1", f"--steps_per_epoch={steps}", "--sample_every=0", "--checkpoint_every=0",
                f"--log_every={max(steps // 4, 1)}", "--wandb_mode=disabled", f"--runs_dir={tmp}/runs",
                f"--artifacts_dir={tmp}/artifacts"]
        done = subprocess.run(args, env=env, cwd=tmp, capture_output=True, text=True)
        if done.returncode != 0:
            raise SystemExit(f"train.py failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}")
        (summary,) = Path(tmp, "runs").glob("*/summary.json")
        data = json.loads(summary.read_text())
        return data["chars"] / data["seconds"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300, help="training steps per run (default: 300)")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of all scenarios (default: 3)")
    parser.add_argument("--hogs", type=int, default=1, help="busy processes in the busy scenarios (default: 1)")
    parser.add_argument("--only", action="append", choices=list(SCENARIOS), metavar="SCENARIO",
                        help="run only these scenarios (repeat the flag); 'alone, default', the reference, always runs")
    args = parser.parse_args()
    chosen = {"alone, default", *(args.only or SCENARIOS)}
    speeds: dict[str, list[float]] = {name: [] for name in SCENARIOS if name in chosen}
    for round_ in range(args.repeats):
        for name in speeds:
            busy, changes = SCENARIOS[name]
            hogs = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(args.hogs if busy else 0)]
            try:
                speeds[name].append(train_speed(args.steps, changes))
            finally:
                for hog in hogs:
                    hog.kill()
                    hog.wait()
            print(f"round {round_ + 1}: {name}: {speeds[name][-1]:,.0f} chars/s", file=sys.stderr)
    reference = statistics.median(speeds["alone, default"])
    print(f"\nconfigs/quick.yaml, {args.steps} steps, {os.cpu_count()} CPUs, {args.hogs} busy process(es) when busy; "
          f"medians of {args.repeats}")
    print("| scenario | chars/s (median) | runs | vs alone, default |")
    print("|---|---|---|---|")
    for name, values in speeds.items():
        median = statistics.median(values)
        runs = ", ".join(f"{v:,.0f}" for v in values)
        print(f"| {name} | {median:,.0f} | {runs} | {median / reference:.2f}x |")


if __name__ == "__main__":
    main()
