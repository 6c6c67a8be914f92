"""Where there are GPUs, each sweep worker gets its own (CUDA_VISIBLE_DEVICES), one worker per GPU by default.

Runs only when GPUs are visible to the tests: CHAREXP_TEST_CUDA_VISIBLE_DEVICES=0 (conftest hides them otherwise).
"""

from __future__ import annotations

import os

import pytest
import yaml

from charexp.sweep.command import run_sweep
from charexp.sweep.launch import visible_gpus
from charexp.sweep.state import load_state
from charexp.tracking.wandb_files import find_run_files, read_run

PROGRAM = '''
import os
import torch
import wandb

run = wandb.init(config={"i": 0})
x = torch.ones(256, 256, device="cuda") @ torch.ones(256, 256, device="cuda")
run.log({"loss": float(x[0, 0]) / 256 + run.config["i"]}, step=0)
run.summary["cuda_visible_devices"] = os.environ.get("CUDA_VISIBLE_DEVICES")
run.summary["device_count"] = torch.cuda.device_count()
run.summary["omp_threads"] = os.environ.get("OMP_NUM_THREADS")
run.finish()
wandb.teardown()
'''


def test_each_worker_runs_on_its_own_gpu(tmp_path):
    gpus = visible_gpus()  # after conftest's fixture, which hides GPUs unless asked
    if not gpus:
        pytest.skip("no GPU visible to the tests (set CHAREXP_TEST_CUDA_VISIBLE_DEVICES=0)")
    (tmp_path / "gpu_program.py").write_text(PROGRAM)
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({"program": "gpu_program.py", "method": "grid", "metric": {"name": "loss"},
                                    "parameters": {"i": {"values": list(range(2 * len(gpus)))}}}))
    assert run_sweep(path, None) == "finished"
    (sweep_dir,) = (tmp_path / "sweep-runs").iterdir()
    state = load_state(sweep_dir)
    assert state.workers == len(gpus)  # one worker per GPU by default
    for rec in state.runs:
        (run,) = [read_run(f) for f in find_run_files(tmp_path / "wandb", rec.run_id)]
        assert rec.state == "finished"
        assert run.summary["cuda_visible_devices"] == gpus[rec.worker] and run.summary["device_count"] == 1
        assert run.summary["omp_threads"] == os.environ.get("OMP_NUM_THREADS")  # GPU workers keep the CPU threads
