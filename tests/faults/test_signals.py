"""SIGTERM and Ctrl-C: a saved resume state, exit 128 + signum, a run marked preempted; a second Ctrl-C exits at once.

The signals are sent by the run to itself from inside a given training step (inject.py), which is where a
scheduler's SIGTERM or a user's Ctrl-C lands, without timing games.
"""

from __future__ import annotations

import signal

from charexp.store.checkpoint import load_state
from charexp.tracking.rundir import RunDir
from charexp.tracking.wandb_files import find_run_files, read_run
from faults.helpers import RUN_ID, assert_same_final_weights, check_store, fault, leftovers, published, run_with_faults

from foundation import run_main

STEP = "charexp.train.trainer:Trainer.train_step"


def test_sigterm_saves_state_marks_the_wandb_run_preempting_and_resumes_exactly(straight, fault_config, tmp_path):
    run = RunDir(tmp_path / "runs", RUN_ID)
    out = run_with_faults(["--config", str(fault_config(wandb_mode="offline"))], tmp_path,
                          [fault(STEP, 15, "sigterm", when="after")], env={"WANDB_RUN_ID": RUN_ID})
    assert out.returncode == 128 + signal.SIGTERM == 143, out.stderr[-3000:]
    assert "Traceback" not in out.stderr and "SIGTERM received" in out.stderr
    assert f"python train.py --resume {RUN_ID}" in " ".join(out.stderr.split())  # rich wraps the line
    assert load_state(run.state_path)["position"]["step"] == 15  # the step that was running, finished and saved
    assert run.read_summary()["state"] == "preempted"
    (wandb_file,) = find_run_files(tmp_path / "wandb", RUN_ID)
    records = read_run(wandb_file)
    assert records.exit_code == 143 and records.preempting  # what W&B's agent and UI read
    assert check_store(tmp_path / "artifacts", empty=True)["versions"] == []

    code, log = run_main(["--resume", RUN_ID])
    assert code == 0, log
    assert published(check_store(tmp_path / "artifacts")) == published(straight.index)
    assert_same_final_weights(straight.artifacts, straight.state_path, tmp_path / "artifacts", run.state_path)


def test_ctrl_c_saves_state_and_exits_130(straight, fault_config, tmp_path):
    run = RunDir(tmp_path / "runs", RUN_ID)
    out = run_with_faults(["--config", str(fault_config())], tmp_path, [fault(STEP, 25, "sigint", when="after")],
                          env={"WANDB_RUN_ID": RUN_ID})
    assert out.returncode == 128 + signal.SIGINT == 130, out.stderr[-3000:]
    assert "Traceback" not in out.stderr and "SIGINT received" in out.stderr
    assert load_state(run.state_path)["position"]["step"] == 25
    assert run.read_summary()["state"] == "preempted"
    first = [v[:4] for v in published(straight.index)][:1]  # only epoch 1's version
    assert [v[:4] for v in published(check_store(tmp_path / "artifacts"))] == first
    assert leftovers(run.path) == []


def test_a_second_ctrl_c_during_the_save_exits_at_once_and_corrupts_nothing(straight, fault_config, tmp_path):
    """Ctrl-C at step 25, and again while that step's resume state is being written (the third state write,
    after steps 10 and 20): the process leaves at once, state.pt is still the step-20 one, the store is whole."""
    run = RunDir(tmp_path / "runs", RUN_ID)
    faults = [fault(STEP, 25, "sigint", when="after"), fault("os:replace", 3, "sigint", path=r"/state\.pt$")]
    out = run_with_faults(["--config", str(fault_config())], tmp_path, faults, env={"WANDB_RUN_ID": RUN_ID})
    assert out.returncode == 130, out.stderr[-3000:]
    assert len(out.fired) == 2 and "second interrupt: exiting now" in out.stderr and "Traceback" not in out.stderr
    assert "stopped: resume state saved" not in out.stderr  # it did not wait for the save
    assert load_state(run.state_path)["position"]["step"] == 20
    assert any(name.startswith(".state.pt.") for name in leftovers(run.path))  # the interrupted write, never renamed
    first = [v[:4] for v in published(straight.index)][:1]  # only epoch 1's version
    assert [v[:4] for v in published(check_store(tmp_path / "artifacts"))] == first

    code, log = run_main(["--resume", RUN_ID])
    assert code == 0, log
    assert published(check_store(tmp_path / "artifacts")) == published(straight.index)
    assert_same_final_weights(straight.artifacts, straight.state_path, tmp_path / "artifacts", run.state_path)
