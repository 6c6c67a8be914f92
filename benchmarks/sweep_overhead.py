"""What `charexp sweep` costs beyond the runs' own training, against the same runs launched by hand.

Runs a small grid (tiny model, synthetic corpus) twice in the same session:
  reference: each run as `python train.py --config tiny.yaml --lr=...`, one after another;
  sweep:     `charexp sweep grid.yaml --workers 1` over the same values.
Prints per-run figures (medians): the training seconds each run reports, its process wall time,
the sweep's wall time per run, and the ratio sweep / reference.

    python benchmarks/sweep_overhead.py [--runs 4]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import TINY, synthetic_csv_text  # noqa: E402  (the tests' tiny corpus and model)


def run_summaries(runs_dir: Path) -> list[dict]:
    return [json.loads((p / "summary.json").read_text()) for p in sorted(runs_dir.iterdir())
            if (p / "summary.json").exists()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=4)
    args = parser.parse_args()
    lrs = [round(0.003 * (i + 1), 4) for i in range(args.runs)]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "tiny.csv").write_text(synthetic_csv_text(), encoding="utf-8")
        config = {**TINY, "data": str(tmp / "tiny.csv"), "device": "cpu", "sample_every": 0}
        (tmp / "tiny.yaml").write_text(yaml.safe_dump(config))
        env = {**os.environ, "WANDB_MODE": "offline", "WANDB_DIR": str(tmp), "WANDB_SILENT": "true",
               "OMP_NUM_THREADS": "1"}
        env.pop("WANDB_API_KEY", None)

        reference = tmp / "reference"
        reference.mkdir()
        start = time.perf_counter()
        for lr in lrs:
            subprocess.run([sys.executable, str(ROOT / "train.py"), "--config", str(tmp / "tiny.yaml"), f"--lr={lr}"],
                           cwd=reference, env={**env, "WANDB_DIR": str(reference)}, check=True, capture_output=True)
        reference_wall = time.perf_counter() - start

        swept = tmp / "sweep"
        swept.mkdir()
        sweep = {"program": str(ROOT / "train.py"), "method": "grid",
                 "metric": {"name": "test/loss", "goal": "minimize"}, "parameters": {"lr": {"values": lrs}},
                 "command": ["${env}", "${interpreter}", "${program}", "--config", str(tmp / "tiny.yaml"), "${args}"]}
        (swept / "grid.yaml").write_text(yaml.safe_dump(sweep))
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "charexp.cli", "sweep", "grid.yaml", "--workers", "1"], cwd=swept,
                       env={**env, "WANDB_DIR": str(swept)}, check=True, capture_output=True)
        sweep_wall = time.perf_counter() - start

        training = [s["seconds"] for s in run_summaries(swept / "runs")]
        (state_file,) = (swept / "sweep-runs").glob("*/state.json")
        from datetime import datetime

        runs = json.loads(state_file.read_text())["runs"]
        process = [(datetime.fromisoformat(r["ended"]) - datetime.fromisoformat(r["started"])).total_seconds()
                   for r in runs]
    n = len(lrs)
    print(f"{n} tiny runs, 1 worker, CPU")
    print(f"  training seconds per run (its own loop)       median {statistics.median(training):6.2f} s")
    print(f"  run process wall per run (start to exit seen) median {statistics.median(process):6.2f} s")
    print(f"  reference: runs launched by hand, per run             {reference_wall / n:6.2f} s")
    print(f"  charexp sweep, per run                                {sweep_wall / n:6.2f} s")
    print(f"  sweep beyond the hand-launched runs, per run          {(sweep_wall - reference_wall) / n:+6.2f} s   "
          f"(ratio sweep/reference {sweep_wall / reference_wall:.3f})")
    print(f"  sweep beyond the runs' own process time, per run      {(sweep_wall - sum(process)) / n:+6.2f} s")


if __name__ == "__main__":
    main()
