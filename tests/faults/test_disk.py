"""Disk trouble while a run saves: a full disk (ENOSPC) at each kind of write, an unwritable or wrong-typed
output directory. Each is one clear sentence, exit 2, and the earlier checkpoints stay intact and loadable.

ENOSPC is injected at the exact write (inject.py raises OSError(ENOSPC) from the real call site). An unwritable
directory is a real chmod 0o500 where that stops this process; as root (where it does not) the same refusal,
EACCES, is raised by the directory-creating call instead.
"""

from __future__ import annotations

import shutil

import pytest

from charexp.store.checkpoint import load_checkpoint, load_state
from charexp.tracking.rundir import RunDir
from faults.helpers import (
    RUN_ID,
    assert_one_clear_error,
    assert_same_final_weights,
    check_store,
    fault,
    leftovers,
    published,
    run_with_faults,
    snapshot,
    writes_are_blocked_by_permissions,
)

from foundation import assert_same_tensors, read_tensors, run_main

SAVE_FILE = "safetensors.torch:save_file"
REMEDY = r"free some space or choose a writable directory — earlier checkpoints are untouched$"
FULL = r"\(No space left on device\); " + REMEDY
CHECKPOINT = r"^error: could not write a checkpoint to \S*artifacts/charlstm "


def first_version_intact(tmp_path, straight) -> None:
    """v0 (epoch 1) is the uninterrupted run's epoch-1 checkpoint, whole and loadable, and nothing else is recorded."""
    index = check_store(tmp_path / "artifacts")
    assert [v[:4] for v in published(index)] == [v[:4] for v in published(straight.index)][:1]
    store = tmp_path / "artifacts" / "charlstm"
    load_checkpoint(store / "v0")
    assert_same_tensors(read_tensors(store / "v0" / "model.safetensors"),
                        read_tensors(straight.artifacts / "charlstm" / "v0" / "model.safetensors"))
    assert sorted(p.name for p in store.iterdir() if p.is_dir()) == ["v0"] and leftovers(store) == []


FULL_DISK = [
    # epoch 2's model.safetensors cannot be written
    pytest.param([fault(SAVE_FILE, 2, "enospc")], CHECKPOINT + FULL, 30, "crashed", id="checkpoint-weights"),
    # epoch 2's version is written, its index.json update is not
    pytest.param([fault("os:replace", 2, "enospc", path=r"/index\.json$")], CHECKPOINT + FULL, 30, "crashed",
                 id="artifact-index"),
    # the step-30 resume state cannot be written (the step-20 one stays)
    pytest.param([fault("os:replace", 3, "enospc", path=r"/state\.pt$")],
                 rf"^error: could not write the resume state to \S*runs/{RUN_ID} " + FULL, 20, "crashed",
                 id="resume-state"),
    # the disk stays full: after the checkpoint fails, the run's own summary cannot be written either
    pytest.param([fault(SAVE_FILE, 2, "enospc"),
                  fault("os:replace", 2, "enospc", path=r"/summary\.json$", from_call=True)],
                 CHECKPOINT + FULL, 30, "running", id="stays-full"),
    # the history can no longer be appended to (from step 25's log line on: the 6th row)
    pytest.param([fault("builtins:open", 6, "enospc", path=r"/history\.jsonl$", from_call=True)],
                 rf"^error: could not write the run history to \S*runs/{RUN_ID} " + FULL, 20, "crashed",
                 id="run-history"),
]


@pytest.mark.parametrize("faults, message, saved_step, summary_state", FULL_DISK)
def test_a_full_disk_is_one_clear_error_and_earlier_checkpoints_stay(faults, message, saved_step, summary_state,
                                                                      straight, fault_config, tmp_path):
    run = RunDir(tmp_path / "runs", RUN_ID)
    out = run_with_faults(["--config", str(fault_config())], tmp_path, faults, env={"WANDB_RUN_ID": RUN_ID})
    assert out.returncode == 2, out.stderr[-3000:]
    assert out.fired and all(line.startswith("enospc") for line in out.fired)
    assert_one_clear_error(out.stderr, message)
    first_version_intact(tmp_path, straight)
    assert load_state(run.state_path)["position"]["step"] == saved_step
    assert run.read_summary()["state"] == summary_state
    assert leftovers(run.path) == []


def test_after_a_full_disk_the_run_resumes_to_the_same_end(straight, fault_config, tmp_path):
    """Space freed: the run that failed to write epoch 2's checkpoint continues from its step-30 state."""
    run = RunDir(tmp_path / "runs", RUN_ID)
    out = run_with_faults(["--config", str(fault_config())], tmp_path, [fault(SAVE_FILE, 2, "enospc")],
                          env={"WANDB_RUN_ID": RUN_ID})
    assert out.returncode == 2, out.stderr[-3000:]
    code, log = run_main(["--resume", RUN_ID])
    assert code == 0, log
    assert published(check_store(tmp_path / "artifacts")) == published(straight.index)
    assert_same_final_weights(straight.artifacts, straight.state_path, tmp_path / "artifacts", run.state_path)


def test_an_unwritable_artifact_store_is_one_clear_error_and_its_versions_stay(straight, fault_config, tmp_path):
    shutil.copytree(straight.artifacts, tmp_path / "artifacts")
    store = tmp_path / "artifacts" / "charlstm"
    before = snapshot(tmp_path / "artifacts")
    faults = []
    if writes_are_blocked_by_permissions(tmp_path):
        store.chmod(0o500)
    else:  # root: refuse the creation of anything inside the store, as a read-only directory would
        faults = [fault("os:mkdir", 1, "eacces", path=r"(^|/)artifacts/charlstm/[^/]+$", from_call=True)]
    try:
        out = run_with_faults(["--config", str(fault_config())], tmp_path, faults, env={"WANDB_RUN_ID": RUN_ID})
    finally:
        store.chmod(0o755)
    assert out.returncode == 2, out.stderr[-3000:]
    assert_one_clear_error(out.stderr, CHECKPOINT + r"\(Permission denied\); " + REMEDY)
    assert snapshot(tmp_path / "artifacts") == before
    check_store(tmp_path / "artifacts")
    # refused before training, not an epoch later
    assert not (tmp_path / "runs").exists() and "eval step" not in out.stderr


@pytest.mark.parametrize("where", ["artifacts", "runs"])
def test_a_file_where_an_output_directory_should_be_is_one_clear_error(where, straight, fault_config, tmp_path):
    (tmp_path / where).write_text("not a directory\n")
    out = run_with_faults(["--config", str(fault_config())], tmp_path, [], env={"WANDB_RUN_ID": RUN_ID})
    assert out.returncode == 2, out.stderr[-3000:]
    what = r"a checkpoint to \S*artifacts/charlstm" if where == "artifacts" else rf"the run directory \S*runs/{RUN_ID}"
    assert_one_clear_error(out.stderr, rf"^error: could not (write|create) {what} \(Not a directory\)")
    assert (tmp_path / where).read_text() == "not a directory\n"
    if where == "artifacts":
        assert not (tmp_path / "runs").exists() and "eval step" not in out.stderr  # refused before training


def test_an_unwritable_runs_directory_is_one_clear_error(straight, fault_config, tmp_path):
    shutil.copytree(straight.artifacts, tmp_path / "artifacts")
    before = snapshot(tmp_path / "artifacts")
    (tmp_path / "runs").mkdir()
    faults = []
    if writes_are_blocked_by_permissions(tmp_path):
        (tmp_path / "runs").chmod(0o500)
    else:
        faults = [fault("os:mkdir", 1, "eacces", path=r"(^|/)runs/[^/]+$", from_call=True)]
    try:
        out = run_with_faults(["--config", str(fault_config())], tmp_path, faults, env={"WANDB_RUN_ID": RUN_ID})
    finally:
        (tmp_path / "runs").chmod(0o755)
    assert out.returncode == 2, out.stderr[-3000:]
    assert_one_clear_error(out.stderr,
                           rf"^error: could not create the run directory \S*runs/{RUN_ID} \(Permission denied\)")
    assert snapshot(tmp_path / "artifacts") == before and list((tmp_path / "runs").iterdir()) == []
