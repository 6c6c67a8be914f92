"""A NaN loss stops the run with one clear sentence and exit 1; it never becomes a version, `latest` or
`best-test-loss`.

With Adam an absurd learning rate (lr=10, grad_clip=0) makes the loss large but not NaN on this corpus (Adam's
step is bounded by lr), so the blow-up is injected: the weights become NaN after a given step, and the real
loss and evaluation code find it. The store already holds another run's versions, which must stay the best.
"""

from __future__ import annotations

import math
import shutil

import pytest

from charexp.store.checkpoint import load_state
from charexp.tracking.rundir import RunDir
from faults.helpers import RUN_ID, assert_one_clear_error, check_store, fault, published, run_with_faults

STEP = "charexp.train.trainer:Trainer.train_step"
ADVICE = r"; lower lr \(now 0\.01\) or set grad_clip, then start a new run$"


@pytest.mark.parametrize("after_step, message, saved_step", [
    (23, r"^error: train/loss became nan at step 25" + ADVICE, 20),
    # step 40's own loss was finite (computed before the weights broke): the samples and eval that follow must not run
    (40, r"^error: the weights became NaN or infinite by step 40" + ADVICE, 30),
], ids=["train-loss", "weights-after-a-finite-loss"])
def test_nan_stops_the_run_and_never_becomes_latest_or_best(after_step, message, saved_step, straight, fault_config,
                                                            tmp_path):
    shutil.copytree(straight.artifacts, tmp_path / "artifacts")  # another run's finished versions
    before = published(straight.index)
    run = RunDir(tmp_path / "runs", RUN_ID)
    out = run_with_faults(["--config", str(fault_config())], tmp_path,
                          [fault(STEP, after_step, "nan_weights", when="after")], env={"WANDB_RUN_ID": RUN_ID})
    assert out.returncode == 1, out.stderr[-3000:]
    assert_one_clear_error(out.stderr, message)
    assert run.read_summary()["state"] == "diverged"

    index = check_store(tmp_path / "artifacts")  # every version finite, best-test-loss the minimum
    assert [v[:4] for v in published(index)[:2]] == [v[:4] for v in before]  # the earlier versions are untouched
    (own,) = [v for v in index["versions"] if v["run_id"] == RUN_ID]  # only this run's finite epoch-1 version
    assert own["step"] == 20 and index["aliases"]["latest"] == own["version"] == "v2"
    assert index["aliases"]["best-test-loss"] == "v1"  # still the other run's best

    state = load_state(run.state_path)  # the last saved state is from before the blow-up
    assert state["position"]["step"] == saved_step
    assert all(bool(t.isfinite().all()) for t in state["model"].values())
    assert math.isfinite(state["best"]["test/loss"])
