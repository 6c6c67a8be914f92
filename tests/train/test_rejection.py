"""reject_worse: a worse epoch is thrown away, the weights go back, the rate drops, and no rejected
weights ever become a version.

The tiny corpus without clipping climbs at epoch 3 at a rate found per machine (`foundation.climbing_lr`: 0.2 on
an AVX-512 CPU; deterministic on CPU with one thread), which is the writeup's situation in small.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from charexp.store.checkpoint import load_state
from charexp.tracking.rundir import RunDir
from charexp.tracking.wandb_files import find_run_files

from conftest import write_tiny_csv
from foundation import climbing_lr, isolate_env, leet_records, only_run_id, read_tensors, run_main, write_config

# lr: climbing_lr(), found per machine. keep_state: the tests read the finished run's resume state (its
# rejection record, its final weights).
CLIMBS = {"grad_clip": 0, "epochs": 4, "sample_every": 20, "log_every": 5, "keep_state": True}
EPOCH_STEPS = 20


@dataclass(frozen=True)
class Trained:
    root: Path
    run: RunDir
    index: dict
    log: str  # stderr, with the console's line wrapping undone


def train(root: Path, **overrides) -> Trained:
    """CLIMBS (plus overrides) trained in `root`, with W&B offline."""
    with pytest.MonkeyPatch.context() as mp:
        isolate_env(mp, root)
        code, log = run_main(["--config", str(write_config(root / "c.yaml", write_tiny_csv(root),
                                                           **{**CLIMBS, "lr": climbing_lr(), **overrides}))])
    assert code == 0, log
    index = json.loads((root / "artifacts" / "charlstm" / "index.json").read_text())
    return Trained(root, RunDir(root / "runs", only_run_id(root / "runs")), index, " ".join(log.split()))


@pytest.fixture(scope="module")
def plain(tmp_path_factory) -> Trained:
    return train(tmp_path_factory.mktemp("plain"))


@pytest.fixture(scope="module")
def rejecting(tmp_path_factory) -> Trained:
    return train(tmp_path_factory.mktemp("rejecting"), reject_worse=True)


def epoch_losses(run: RunDir) -> dict[int, float]:
    return {row["step"] // EPOCH_STEPS: row["test/loss"] for row in run.history()
            if "test/loss" in row and row["step"] % EPOCH_STEPS == 0}


def test_without_reject_worse_the_climbing_epoch_is_kept_as_today(plain):
    losses = epoch_losses(plain.run)
    assert losses[3] > losses[2]  # the premise: epoch 3 is worse
    assert [v["epoch"] for v in plain.index["versions"]] == [1, 2, 3, 4]
    assert not any("rejections" in row for row in plain.run.history())


def test_a_worse_epoch_is_rejected_and_training_goes_on_from_the_kept_weights(rejecting):
    rows = list(rejecting.run.history())
    (rejection,) = [r for r in rows if "rejections" in r]
    assert rejection["step"] == 3 * EPOCH_STEPS and rejection["rejected_epoch"] == 3 and rejection["rejections"] == 1
    assert "epoch 3 rejected" in rejecting.log and "back to the epoch-2 weights" in rejecting.log

    lrs = {r["step"]: r["lr"] for r in rows if "lr" in r and "rejections" not in r}
    assert {lr for s, lr in lrs.items() if s <= 60} == {climbing_lr()}
    after = [lr for s, lr in lrs.items() if s > 60]
    assert len(after) == 4 and after == pytest.approx([climbing_lr() * 0.1] * 4)  # x reject_factor 0.1

    losses = epoch_losses(rejecting.run)
    assert losses[4] < losses[2] < losses[3]  # epoch 4 started again from the epoch-2 weights, at the lower rate
    summary = rejecting.run.read_summary()
    assert summary["state"] == "finished" and summary["step"] == 4 * EPOCH_STEPS and summary["rejected_epochs"] == [3]
    state = load_state(rejecting.run.state_path)["rejections"]
    assert state["count"] == 1 and state["scale"] == pytest.approx(0.1) and state["rejected"] == [3]


def test_rejected_weights_never_become_a_version(rejecting):
    index = rejecting.index
    assert [v["epoch"] for v in index["versions"]] == [1, 2, 4]
    by_version = {v["version"]: v for v in index["versions"]}
    assert by_version[index["aliases"]["latest"]]["epoch"] == 4
    best = min(index["versions"], key=lambda v: v["test_loss"])
    assert index["aliases"]["best-test-loss"] == best["version"]
    assert "epoch-3" not in index["aliases"]


def test_the_rejection_is_in_wandb_and_the_samples_say_which_epoch(rejecting):
    (wandb_file,) = find_run_files(rejecting.root / "wandb", rejecting.run.run_id)
    items = {r["history"]["step"]["num"]: r["history"]["item"] for r in leet_records(wandb_file)
             if r["type"] == "history"}
    assert items[60]["rejections"] == 1 and items[60]["rejected_epoch"] == 3
    assert items[65]["lr"] == pytest.approx(climbing_lr() * 0.1)
    notes = {(s["step"], s["note"]) for s in rejecting.run.samples()}
    assert notes == {(20, ""), (40, ""), (60, "rejected"), (80, "")}


def test_reject_worse_changes_nothing_before_the_first_rejection(plain, rejecting):
    """Its only extra work until then is evaluating the starting weights, on its own random stream."""
    for version in ("v0", "v1"):
        a, b = (read_tensors(r.root / "artifacts" / "charlstm" / version / "model.safetensors")
                for r in (plain, rejecting))
        assert all(a[k].equal(b[k]) for k in a)


def test_max_rejections_ends_the_run_as_finished_with_the_best_version_kept(tmp_path):
    trained = train(tmp_path, reject_worse=True, max_rejections=1, sample_every=0)
    summary = trained.run.read_summary()
    assert summary["state"] == "finished" and summary["step"] == 3 * EPOCH_STEPS  # epoch 4 never ran
    assert "the run ends here" in trained.log
    assert [v["epoch"] for v in trained.index["versions"]] == [1, 2]
    assert trained.index["aliases"]["latest"] == trained.index["aliases"]["best-test-loss"] == "v1"
    final = load_state(trained.run.state_path)["model"]
    kept = read_tensors(trained.root / "artifacts" / "charlstm" / "v1" / "model.safetensors")
    assert all(final[k].equal(kept[k]) for k in kept)  # the run ends holding the kept weights
