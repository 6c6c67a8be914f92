"""Concurrent runs publishing into one artifact store: `charexp sweep --workers 3` loses no version and
`best-test-loss` ends on the true minimum.

Each run holds the store's lock a little longer than it needs (inject.py sleeps before each index.json
rename), so runs that publish at about the same time really do wait on each other: without the lock they
would read the same index and one version would be lost or written twice.
"""

from __future__ import annotations

import subprocess
import sys

import yaml

from charexp.tracking.rundir import RunDir
from faults.helpers import FAULT_PROGRAM, check_store, fault, fault_env

LRS = [0.02, 0.005, 0.001]
FAKE_KEY = "c0ffee" * 6 + "beef"  # a 40-character W&B-style API key that must never be written anywhere


def test_three_concurrent_runs_lose_no_version_and_best_is_the_true_minimum(fault_config, tmp_path):
    config = fault_config(steps_per_epoch=5, sample_every=0, checkpoint_every=0, wandb_mode="offline")
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        "program": str(FAULT_PROGRAM), "method": "grid", "metric": {"name": "test/loss", "goal": "minimize"},
        "parameters": {"lr": {"values": LRS}},
        "command": ["${env}", "${interpreter}", "${program}", "--config", str(config), "${args}"]}))
    slow_index = fault("os:replace", 1, "sleep", path=r"/index\.json$", from_call=True, seconds=0.5)
    env = fault_env([slow_index], tmp_path / "faults.log", {"WANDB_API_KEY": FAKE_KEY, "WANDB_MODE": "offline"})
    out = subprocess.run([sys.executable, "-m", "charexp.cli", "sweep", str(sweep), "--workers", "3"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert len((tmp_path / "faults.log").read_text().splitlines()) == 6  # every index update went through the slow path

    runs = [RunDir(tmp_path / "runs", p.name) for p in sorted((tmp_path / "runs").iterdir())]
    assert len(runs) == 3 and sorted(r.read_config()["lr"] for r in runs) == sorted(LRS)
    assert all(r.read_summary()["state"] == "finished" for r in runs)

    index = check_store(tmp_path / "artifacts")  # whole versions, aliases on listed versions, best = minimum
    versions = {v["version"]: v for v in index["versions"]}
    assert sorted(versions, key=lambda v: int(v[1:])) == [f"v{i}" for i in range(6)]  # no number lost or reused
    published = sorted((v["run_id"], v["step"]) for v in versions.values())
    assert published == sorted((r.run_id, s) for r in runs for s in (5, 10))
    best = min(versions.values(), key=lambda v: v["test_loss"])
    assert index["aliases"]["best-test-loss"] == best["version"]
    for run in runs:  # each run's own record of what it published matches the store
        mine = sorted(v["version"] for v in versions.values() if v["run_id"] == run.run_id)
        assert sorted(entry.split()[0] for entry in run.read_summary()["versions"]) == mine
    assert {"latest", "epoch-1", "epoch-2"} <= set(index["aliases"])

    # the API key in the environment of the sweep and its runs is written nowhere
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert FAKE_KEY.encode() not in path.read_bytes(), path
    assert FAKE_KEY not in out.stdout + out.stderr
