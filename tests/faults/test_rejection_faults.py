"""reject_worse under faults: a non-finite loss mid-epoch is a rejection (exit 0, not 1), and a kill during a
rejection resumes to exactly the end of a run that was never killed."""

from __future__ import annotations

import json

import pytest

from charexp.store.checkpoint import load_state
from charexp.tracking.rundir import RunDir
from faults.helpers import (
    REJECTING,
    RUN_ID,
    assert_same_final_weights,
    check_store,
    fault,
    leftovers,
    published,
    run_with_faults,
)

from conftest import write_tiny_csv
from foundation import climbing_lr, only_run_id, run_main, write_config

NAN_AFTER_STEP_23 = fault("charexp.train.trainer:Trainer.train_step", 23, "nan_weights", when="after")


def test_a_nan_mid_epoch_is_a_rejection_not_an_exit(fault_config, tmp_path):
    """Weights turned NaN after step 23: train/loss is NaN at step 25; epoch 2 is thrown away instead of the run."""
    config = fault_config(reject_worse=True, epochs=3)
    out = run_with_faults(["--config", str(config)], tmp_path, [NAN_AFTER_STEP_23], env={"WANDB_RUN_ID": RUN_ID})
    assert out.returncode == 0, out.stderr[-3000:]
    assert len(out.fired) == 1
    text = " ".join(out.stdout.split() + out.stderr.split())
    assert "epoch 2 rejected at step 25: train/loss became nan at step 25; back to the epoch-1 weights" in text

    run = RunDir(tmp_path / "runs", RUN_ID)
    (rejection,) = [r for r in run.history() if "rejections" in r]
    assert rejection["step"] == 25 and rejection["rejected_epoch"] == 2 and rejection["lr"] == pytest.approx(0.001)
    index = check_store(tmp_path / "artifacts")  # every version finite; best-test-loss the minimum
    # epoch 3 ran its 20 steps after step 25
    assert [(v["epoch"], v["step"]) for v in index["versions"]] == [(1, 20), (3, 45)]
    assert run.read_summary()["state"] == "finished"


def test_without_reject_worse_a_nan_still_stops_the_run(fault_config, tmp_path):
    out = run_with_faults(["--config", str(fault_config())], tmp_path, [NAN_AFTER_STEP_23],
                          env={"WANDB_RUN_ID": RUN_ID})
    assert out.returncode == 1 and "train/loss became nan at step 25" in out.stderr


@pytest.mark.parametrize("point", [
    # inside the rejection, before the weights go back (the state on disk is step 50's)
    fault("charexp.train.rejection:Rejections.reject", 1, "kill"),
    # the rejection done, its new resume state in a temporary file, not yet renamed over state.pt
    fault("os:replace", 1, "kill", path=r"/state\.pt$", from_call=False),
], ids=["mid-rejection", "rejection-state-write"])
def test_a_kill_during_a_rejection_resumes_to_the_same_end(point, straight_rejecting, tmp_path):
    tiny = write_tiny_csv(tmp_path)
    config = write_config(tmp_path / "r.yaml", tiny, **REJECTING, lr=climbing_lr())
    if point["target"] == "os:replace":  # the 6th state.pt write is the rejection's (steps 10, 20, 30, 40, 50, then 60)
        point = {**point, "call": 6}
    out = run_with_faults(["--config", str(config)], tmp_path, [point], env={"WANDB_RUN_ID": RUN_ID})
    assert out.returncode == -9, out.stderr[-3000:]
    run = RunDir(tmp_path / "runs", RUN_ID)
    # the kill came after step 50's state, before the rejection's
    assert load_state(run.state_path)["position"]["step"] == 50
    logged = [r["step"] for r in run.history() if "rejections" in r]
    # killed before / after the rejection's log row
    assert logged == ([] if point["target"].endswith("reject") else [60])

    code, log = run_main(["--resume", RUN_ID])
    assert code == 0, log
    straight_index = json.loads((straight_rejecting / "artifacts" / "charlstm" / "index.json").read_text())
    index = check_store(tmp_path / "artifacts")
    assert published(index) == published(straight_index)
    straight_run = RunDir(straight_rejecting / "runs", only_run_id(straight_rejecting / "runs"))
    assert_same_final_weights(straight_rejecting / "artifacts", straight_run.state_path, tmp_path / "artifacts",
                              run.state_path)
    state = load_state(run.state_path)["rejections"]
    assert state["count"] == 1 and state["rejected"] == [3] and state["scale"] == pytest.approx(0.1)
    assert [r["step"] for r in run.history() if "rejections" in r] == [60]  # logged once, not once per try
    assert leftovers(run.path) == []
