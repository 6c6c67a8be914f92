"""What `charexp sweep` costs beyond the runs' own training, against the same runs launched by hand.

Runs a small grid (tiny model, synthetic corpus) twice in the same session:
  reference: each run as `python train.py --config tiny.yaml --lr=...`, one after another;
  sweep:     `charexp sweep grid.yaml --workers 1` over the same values.
Prints per-run figures (medians): the training seconds each run reports, its process wall time,
the sweep's wall time per run, and the ratio sweep / reference.

With --launcher slurm, the same grid runs twice through `charexp sweep` in this process, with the local
launcher and then as SLURM jobs (on the cluster SLURM_CONF / squeue finds, else on a throwaway one-node
cluster started from tests/sweep/slurm_cluster.py, which needs root and Debian's slurm packages), and prints
for each: the seconds from "next run chosen" (the engine's proposal) to the run's first logged step (its W&B
history timestamp), and the runner's overhead per run (sweep wall time per run minus the run's own span from
first to last logged step), with the ratio slurm / local of each.

    python benchmarks/sweep_overhead.py [--runs 4] [--launcher slurm]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
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


# --- --launcher slurm ----------------------------------------------------------------------------------
def timed_sweep(folder: Path, sweep: dict, launcher: str) -> tuple[float, dict[str, float], list]:
    """`charexp sweep` in this process, in `folder`; (wall seconds, run id -> time its run was chosen, records)."""
    import contextlib
    import io

    import charexp.sweep.runner as runner
    from charexp.sweep.command import run_sweep
    from charexp.sweep.state import load_state

    chosen: dict[str, float] = {}
    propose = runner.propose

    def timed_propose(*a, **k):
        rec = propose(*a, **k)
        if rec is not None:
            chosen[rec.run_id] = time.time()
        return rec

    folder.mkdir()
    (folder / "grid.yaml").write_text(yaml.safe_dump(sweep))
    os.chdir(folder)
    os.environ["WANDB_DIR"] = str(folder)
    runner.propose = timed_propose
    try:
        start = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            outcome = run_sweep(Path("grid.yaml"), None, workers=1, launcher=launcher)
        wall = time.perf_counter() - start
    finally:
        runner.propose = propose
    assert outcome == "finished", outcome
    (sweep_dir,) = (folder / "sweep-runs").iterdir()
    return wall, chosen, load_state(sweep_dir).runs


def step_times(folder: Path, run_id: str) -> tuple[float, float]:
    """Wall-clock times of the run's first and last logged steps, from its own W&B file."""
    from charexp.tracking.wandb_files import find_run_files, read_run

    (path,) = find_run_files(folder / "wandb", run_id)
    stamps = [row["_timestamp"] for row in read_run(path).history if "_timestamp" in row]
    return min(stamps), max(stamps)


@contextlib.contextmanager
def a_cluster():
    """The cluster squeue reaches, else a throwaway one-node cluster (stopped on the way out)."""
    if shutil.which("squeue") and subprocess.run(["squeue", "-h"], capture_output=True).returncode == 0:
        yield "the cluster SLURM_CONF names"
        return
    sys.path.insert(0, str(ROOT / "tests" / "sweep"))
    from slurm_cluster import SlurmCluster, skip_reason

    reason = skip_reason()
    if reason:
        sys.exit(f"no SLURM cluster to measure: {reason}")
    with SlurmCluster.start() as cluster:
        os.environ["SLURM_CONF"] = str(cluster.conf)
        yield "a one-node cluster started for this run (slurmctld + slurmd on this machine)"


def compare_launchers(n: int) -> None:
    lrs = [round(0.003 * (i + 1), 4) for i in range(n)]
    figures = {}
    cwd = Path.cwd()
    with tempfile.TemporaryDirectory() as tmp_name, a_cluster() as where:
        tmp = Path(tmp_name)
        (tmp / "tiny.csv").write_text(synthetic_csv_text(), encoding="utf-8")
        config = {**TINY, "data": str(tmp / "tiny.csv"), "device": "cpu", "sample_every": 0}
        (tmp / "tiny.yaml").write_text(yaml.safe_dump(config))
        for var in ("WANDB_API_KEY", "WANDB_MODE"):
            os.environ.pop(var, None)
        os.environ.update({"WANDB_SILENT": "true", "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""})
        sweep = {"program": str(ROOT / "train.py"), "method": "grid",
                 "metric": {"name": "test/loss", "goal": "minimize"}, "parameters": {"lr": {"values": lrs}},
                 "command": ["${env}", "${interpreter}", "${program}", "--config", str(tmp / "tiny.yaml"), "${args}"]}
        try:
            for launcher in ("local", "slurm"):
                folder = tmp / launcher
                wall, chosen, runs = timed_sweep(folder, sweep, launcher)
                spans = [step_times(folder, r.run_id) for r in runs]
                latency = [first - chosen[r.run_id] for r, (first, _) in zip(runs, spans)]
                own = sum(last - first for first, last in spans)
                figures[launcher] = (statistics.median(latency), (wall - own) / len(runs), wall / len(runs))
        finally:
            os.chdir(cwd)
    local, slurm = figures["local"], figures["slurm"]
    print(f"{n} tiny runs (train.py, configs as the tests'), 1 run at a time, CPU; SLURM: {where}")
    print(f"{'':42} {'local':>8} {'slurm':>8} {'slurm/local':>12}")
    for i, label in enumerate(("run chosen -> first logged step, median", "runner overhead per run",
                               "sweep wall time per run")):
        print(f"  {label:40} {local[i]:7.2f}s {slurm[i]:7.2f}s {slurm[i] / local[i]:11.2f}x")
    print("  (overhead per run: sweep wall time per run minus the run's own first-to-last logged step span)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=4)
    parser.add_argument("--launcher", choices=["local", "slurm"], default="local",
                        help="slurm: SLURM jobs against the local launcher, in the same session")
    args = parser.parse_args()
    if args.launcher == "slurm":
        compare_launchers(args.runs)
        return
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
