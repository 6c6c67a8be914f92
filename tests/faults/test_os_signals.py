"""SIGTERM and SIGINT sent by the OS from outside (os.kill) while the process is inside a given call: an
evaluation, a publish between the checkpoint's write and the index update, a reject_worse restore, and the
sweep runner's state write. Each resumes to the same versions and weights as a run that was never
signalled, or to the same sweep.

The process is held inside the call (inject.py's `pause`) until the signal has been delivered, so the
moment is exact without timing games; the handler runs there, and the call then finishes as it would.
"""

from __future__ import annotations

import json
import signal

import pytest
import yaml

from charexp.store.checkpoint import load_state
from charexp.sweep.command import run_sweep
from charexp.sweep.state import load_state as load_sweep_state
from charexp.tracking.rundir import RunDir
from faults.helpers import (
    REJECTING,
    RUN_ID,
    SIGNALS,
    SWEEP_FAULT_PROGRAM,
    assert_same_final_weights,
    check_store,
    fault,
    leftovers,
    published,
    run_signalled,
)

from conftest import REPO, write_tiny_csv
from foundation import climbing_lr, only_run_id, run_main, write_config

EVALUATION = fault("charexp.train.evaluate:masked_loss_sum", 1, "pause")  # the first test batch of epoch 1's evaluation
# epoch 1's publish: model.safetensors and checkpoint.json written, the new index.json not yet renamed into place
PUBLISH = fault("os:replace", 1, "pause", path=r"/index\.json$")
RESTORE = fault("charexp.train.rejection:Rejections.reject", 1, "pause")  # epoch 3 rejected at step 60


def assert_stopped_cleanly(out, signum: int) -> None:
    assert out.returncode == 128 + signum, out.stderr[-3000:]
    assert len(out.fired) == 1 and out.fired[0].startswith("pause")
    assert "Traceback" not in out.stderr and f"{signal.Signals(signum).name} received" in out.stderr


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("point", [EVALUATION, PUBLISH], ids=["evaluation", "publish"])
def test_a_signal_inside_an_evaluation_or_a_publish_resumes_to_the_same_run(point, signum, straight, fault_config,
                                                                             tmp_path):
    run = RunDir(tmp_path / "runs", RUN_ID)
    out = run_signalled(["--config", str(fault_config())], tmp_path, point, signum, env={"WANDB_RUN_ID": RUN_ID})
    assert_stopped_cleanly(out, signum)
    # the evaluation and the publish it was in both finished; the run stopped at that step boundary
    assert load_state(run.state_path)["position"]["step"] == 20
    assert run.read_summary()["state"] == "preempted"
    first = [v[:4] for v in published(straight.index)][:1]  # epoch 1's version (its aliases move later)
    assert [v[:4] for v in published(check_store(tmp_path / "artifacts"))] == first
    assert leftovers(run.path) == [] and leftovers(tmp_path / "artifacts" / "charlstm") == []

    code, log = run_main(["--resume", RUN_ID])
    assert code == 0, log
    assert published(check_store(tmp_path / "artifacts")) == published(straight.index)
    assert_same_final_weights(straight.artifacts, straight.state_path, tmp_path / "artifacts", run.state_path)


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_inside_a_reject_worse_restore_resumes_to_the_same_end(signum, straight_rejecting, tmp_path):
    config = write_config(tmp_path / "r.yaml", write_tiny_csv(tmp_path), **REJECTING, lr=climbing_lr())
    run = RunDir(tmp_path / "runs", RUN_ID)
    out = run_signalled(["--config", str(config)], tmp_path, RESTORE, signum, env={"WANDB_RUN_ID": RUN_ID})
    assert_stopped_cleanly(out, signum)
    state = load_state(run.state_path)  # the restore finished and was saved before the run stopped
    assert state["position"]["step"] == 60 and state["rejections"]["rejected"] == [3]

    code, log = run_main(["--resume", RUN_ID])
    assert code == 0, log
    straight_index = json.loads((straight_rejecting / "artifacts" / "charlstm" / "index.json").read_text())
    assert published(check_store(tmp_path / "artifacts")) == published(straight_index)
    straight_run = RunDir(straight_rejecting / "runs", only_run_id(straight_rejecting / "runs"))
    assert_same_final_weights(straight_rejecting / "artifacts", straight_run.state_path, tmp_path / "artifacts",
                              run.state_path)
    assert [r["step"] for r in run.history() if "rejections" in r] == [60]  # logged once


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_inside_the_sweep_runners_state_write_resumes_to_the_same_sweep(signum, tiny_config, tmp_path):
    """The runner is held in its third state write (the first run launched); SIGTERM stops the running run
    (it saves its state), Ctrl-C lets it finish; either way --resume completes the grid, each point once."""
    config = tiny_config(epochs=2)
    sweep = tmp_path / "sweep.yaml"
    sweep.write_text(yaml.safe_dump({
        "program": str(REPO / "train.py"), "method": "grid", "metric": {"name": "test/loss", "goal": "minimize"},
        "parameters": {"lr": {"values": [0.01, 0.003]}},
        "command": ["${env}", "${interpreter}", "${program}", "--config", str(config), "${args}"]}))
    out = run_signalled(["sweep", str(sweep), "--workers", "1"], tmp_path,
                        fault("os:replace", 3, "pause", path=r"/state\.json$"), signum, program=SWEEP_FAULT_PROGRAM)
    assert out.returncode == 128 + signum, out.stdout[-3000:] + out.stderr[-3000:]
    assert len(out.fired) == 1 and "Traceback" not in out.stdout + out.stderr
    (sweep_dir,) = (tmp_path / "sweep-runs").iterdir()
    state = load_sweep_state(sweep_dir)  # the interrupted write landed whole
    assert not state.finished and len(state.runs) == 1
    first = state.runs[0]
    assert first.state == ("preempted" if signum == signal.SIGTERM else "finished"), first
    if signum == signal.SIGTERM:  # the run had just started: killed by the SIGTERM, or saved and exited 143
        stopped = "stopped before it could save" if first.exit_code < 0 else "saved and stopped"
        assert f"run {first.run_id} {stopped} (exit {first.exit_code} (SIGTERM))" in " ".join(out.stdout.split())

    assert run_sweep(None, sweep_dir) == "finished"
    state = load_sweep_state(sweep_dir)
    assert state.finished and sorted(r.params["lr"] for r in state.runs) == [0.003, 0.01]
    assert all(r.state == "finished" and r.exit_code == 0 for r in state.runs), [(r.run_id, r.state)
                                                                                 for r in state.runs]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(r.run_id for r in state.runs)
    for rec in state.runs:
        summary = json.loads((tmp_path / "runs" / rec.run_id / "summary.json").read_text())
        assert summary["state"] == "finished" and summary["epoch"] == 2
        assert rec.launches == (2 if rec.run_id == first.run_id and signum == signal.SIGTERM else 1)
