"""Training end to end (in process): the loss goes down, runs are reproducible, runs/<id>/ holds the record."""

from __future__ import annotations

import json
import math
import os

import pytest

from charexp.config import KEYS
from charexp.errors import CharexpError
from charexp.store.artifacts import BEST, ArtifactStore
from charexp.tracking.rundir import RunDir, list_runs

from foundation import (  # noqa: F401
    REFERENCE_ARGS,
    REFERENCE_OVERRIDES,
    REFERENCE_STEPS,
    assert_same_tensors,
    read_tensors,
    reference,
    run_main,
    without_timing,
    write_config,
)


def test_a_tiny_run_lowers_the_test_loss(reference):
    losses = [(row["step"], row["test/loss"]) for row in reference.history() if "test/loss" in row]
    assert [step for step, _ in losses] == [10, 20, 30, 40]  # eval_every 10 (the epoch-end evals share steps 20 and 40)
    vocab = len(json.loads((reference.artifacts / "charlstm" / "v0" / "checkpoint.json").read_text())["vocab"])
    first, last = losses[0][1], losses[-1][1]
    assert last < first - 0.3, losses
    assert last < math.log(vocab) - 1.0  # far better than a uniform guess over the vocabulary
    train = [row["train/loss"] for row in reference.history() if "train/loss" in row]
    assert train[-1] < train[0]


def test_the_run_directory_holds_config_history_samples_and_summary(reference):
    run = reference.run_dir
    # no state.pt: a finished run is never resumed, so its resume state is deleted (keep_state: false)
    assert sorted(p.name for p in run.path.iterdir()) == ["config.yaml", "history.jsonl", "samples.txt",
                                                          "summary.json"]
    assert sorted(run.read_config()) == sorted(KEYS)
    history = reference.history()
    steps = [row["step"] for row in history if "train/loss" in row]
    assert steps == list(range(5, REFERENCE_STEPS + 1, 5))  # log_every 5
    for row in history:
        if "train/loss" in row:
            assert {"lr", "epoch", "perf/chars_per_sec"} <= set(row)
        if "test/loss" in row:
            assert {"test/bpc", "test/acc_argmax", "test/acc_sampled", "epoch"} <= set(row)
            assert row["test/bpc"] == pytest.approx(row["test/loss"] / math.log(2))
            assert 0 <= row["test/acc_argmax"] <= 1 and 0 <= row["test/acc_sampled"] <= 1
    samples = run.samples()
    # sample_every 10
    assert [(s["step"], s["prime"]) for s in samples] == [(step, p) for step in (10, 20, 30, 40) for p in "KS"]
    assert all(s["text"].startswith(s["prime"]) and len(s["text"]) <= 40 for s in samples)
    summary = run.read_summary()
    test_losses = [row["test/loss"] for row in history if "test/loss" in row]
    assert summary["state"] == "finished" and summary["run_id"] == reference.run_id
    assert summary["best_test_loss"] == min(test_losses)
    assert summary["step"] == REFERENCE_STEPS and summary["epoch"] == 2
    assert summary["wandb_mode"] == "offline"


def test_each_epoch_becomes_an_artifact_version(reference):
    store = ArtifactStore(reference.artifacts, "charlstm")
    versions = store.versions()
    assert [(v.version, v.meta["epoch"], v.meta["step"]) for v in versions] == [("v0", 1, 20), ("v1", 2, 40)]
    assert all(v.meta["run_id"] == reference.run_id for v in versions)
    assert store.resolve("epoch-1").version == "v0" and store.resolve("latest").version == "v1"
    losses = {row["step"]: row["test/loss"] for row in reference.history() if "test/loss" in row}
    assert [v.meta["test_loss"] for v in versions] == [losses[20], losses[40]]
    assert store.resolve(BEST).meta["test_loss"] == min(v.meta["test_loss"] for v in versions)


def test_same_seed_gives_identical_losses_and_weights_and_best_tracks_the_minimum(reference, tmp_path, tiny_csv):
    """Same config and seed on CPU: identical history and weights. A third run with another seed differs,
    and best-test-loss (shared store) ends on the lowest test loss of all versions."""
    config = write_config(tmp_path / "tiny.yaml", tiny_csv, lr=0.01, **{**REFERENCE_OVERRIDES, "device": "cpu"})
    if reference.device != "cpu":  # the reproducibility promise is for CPU
        assert run_main(["--config", str(config), *REFERENCE_ARGS])[0] == 0
    assert run_main(["--config", str(config), *REFERENCE_ARGS])[0] == 0
    runs = list_runs(tmp_path / "runs")  # oldest first
    baseline = runs[0] if reference.device != "cpu" else reference.run_dir
    again = runs[-1]
    assert without_timing(list(again.history())) == without_timing(list(baseline.history()))
    assert again.samples() == baseline.samples()
    store = ArtifactStore(tmp_path / "artifacts", "charlstm")
    baseline_store = ArtifactStore(tmp_path / "artifacts" if reference.device != "cpu" else reference.artifacts,
                                   "charlstm")
    mine = [v for v in store.versions() if v.meta["run_id"] == again.run_id]
    theirs = [v for v in baseline_store.versions() if v.meta["run_id"] == baseline.run_id]
    assert len(mine) == len(theirs) == 2
    for a, b in zip(mine, theirs):
        assert_same_tensors(read_tensors(a.path / "model.safetensors"), read_tensors(b.path / "model.safetensors"))

    assert run_main(["--config", str(config), *REFERENCE_ARGS, "--seed=1", "--lr=0.03"])[0] == 0
    other = list_runs(tmp_path / "runs")[-1]
    assert other.read_config()["seed"] == 1
    other_losses = [row["test/loss"] for row in other.history() if "test/loss" in row]
    assert other_losses != [row["test/loss"] for row in again.history() if "test/loss" in row]
    versions = store.versions()
    assert len(versions) == 2 * len(list((tmp_path / "runs").iterdir()))
    lowest = min(versions, key=lambda v: v.meta["test_loss"])
    assert store.resolve(BEST).meta["test_loss"] == lowest.meta["test_loss"]


def test_disabled_wandb_still_keeps_the_local_record(tmp_path, tiny_config):
    code, stderr = run_main(["--config",
                             str(tiny_config(wandb_mode="disabled", epochs=1, steps_per_epoch=3, sample_every=0))])
    assert code == 0
    (run,) = [RunDir(tmp_path / "runs", p.name) for p in (tmp_path / "runs").iterdir()]
    assert run.read_summary()["state"] == "finished" and any("test/loss" in row for row in run.history())
    assert not list(tmp_path.glob("wandb/*run-*"))
    assert ArtifactStore(tmp_path / "artifacts", "charlstm").resolve("latest").meta["run_id"] == run.run_id


def test_the_end_table_shows_each_version_with_the_aliases_it_holds_after_the_run(reference):
    """Every epoch's version got latest (and, the loss falling, best-test-loss) when it was published; the end
    table and summary.json show the aliases as they stand after the run, so each has one holder."""
    index = json.loads((reference.artifacts / "charlstm" / "index.json").read_text())
    versions = [v["version"] for v in index["versions"]]
    assert len(versions) >= 2  # the premise: an earlier version lost latest to a later one
    labels = reference.run_dir.read_summary().versions
    assert labels == [f"{v} ({', '.join(a for a, held in index['aliases'].items() if held == v)})"
                      if v in index["aliases"].values() else v for v in versions]
    for alias in ("latest", BEST, f"run-{reference.run_id}"):
        holders = [label for label in labels if alias in label.partition(" (")[2].rstrip(")").split(", ")]
        assert len(holders) == 1, (alias, labels)
    assert labels[0].split()[0] == "v0" and "latest" not in labels[0]
    table = reference.stderr[reference.stderr.index(f"run {reference.run_id} — finished"):]
    assert all(label in table for label in labels), table


def test_lr_decays_per_epoch(tmp_path, tiny_config):
    config = tiny_config(epochs=3, steps_per_epoch=2, log_every=1, lr=0.01, lr_decay=0.5, sample_every=0,
                         checkpoint_every=0, keep_state=True)
    assert run_main(["--config", str(config)])[0] == 0
    (run,) = list_runs(tmp_path / "runs")
    assert [(row["step"], row["lr"]) for row in run.history() if "lr" in row] == [(1, 0.01), (2, 0.01), (3, 0.005),
                                                                                  (4, 0.005), (5, 0.0025), (6, 0.0025)]
    from charexp.store.checkpoint import load_state

    assert {g["lr"] for g in load_state(run.state_path)["optimizer"]["param_groups"]} == {0.0025}


def test_max_minutes_stops_early_and_still_evaluates_and_saves(tmp_path, tiny_config):
    assert run_main(["--config",
                     str(tiny_config(epochs=50, max_minutes=1e-6, sample_every=0, checkpoint_every=0))])[0] == 0
    (run,) = list_runs(tmp_path / "runs")
    summary = run.read_summary()
    assert summary["state"] == "finished" and 1 <= summary["step"] < 20
    assert [row["step"] for row in run.history() if "test/loss" in row] == [summary["step"]]
    latest = ArtifactStore(tmp_path / "artifacts", "charlstm").resolve("latest")
    assert latest.meta["step"] == summary["step"] and latest.meta["run_id"] == run.run_id


def test_sample_chars_outside_the_vocabulary_are_refused_before_training(tmp_path, tiny_config):
    with pytest.raises(CharexpError, match="'Q'"):
        run_main(["--config", str(tiny_config(sample_chars="KQ"))])
    assert not (tmp_path / "runs").exists() and not list(tmp_path.glob("wandb/*run-*"))


def test_a_cpu_run_flushes_denormal_floats(tmp_path, tiny_config):
    """A rate that saturates the LSTM's gates fills it with denormals, which x86 computes in microcode
    (an lr-3e-2 run slowed about 14x in E4); a CPU run flushes them to zero."""
    import torch

    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals (it is not x86 with SSE3)")
    assert torch.tensor([1e-42]).item() != 0.0  # a denormal float32 survives by default
    try:
        assert run_main(["--config", str(tiny_config(device="cpu", epochs=1, steps_per_epoch=1, sample_every=0,
                                                     wandb_mode="disabled"))])[0] == 0
        assert torch.tensor([1e-42]).item() == 0.0
    finally:
        torch.set_flush_denormal(False)


def test_piped_output_keeps_commands_and_paths_on_one_line(tmp_path, tiny_csv):
    """`python train.py ... 2>&1 | cat`: rich must not wrap at 80 columns off a terminal (charexp.console)."""
    from conftest import run_train_subprocess

    deep = tmp_path / ("a-directory-name-long-enough-that-every-path-passes-eighty-columns" * 2)
    deep.mkdir()
    config = write_config(deep / "tiny.yaml", tiny_csv, epochs=1, steps_per_epoch=3, sample_every=0,
                          checkpoint_every=0, wandb_mode="offline")
    out = run_train_subprocess(["--config", str(config)], cwd=deep, env={"WANDB_DIR": str(deep), "COLUMNS": ""})
    assert out.returncode == 0, out.stderr
    summary = json.loads(next((deep / "runs").glob("*/summary.json")).read_text())
    assert len(summary["wandb_dir"]) > 80
    shown = os.path.relpath(summary["wandb_dir"], deep)  # under the current directory: shown relative to it
    assert f"W&B offline run: upload it with  wandb sync {shown}\n" in out.stderr
    corpus_line = next(line for line in out.stderr.splitlines() if "utterances in" in line)
    assert len(corpus_line) > 80 and "vocabulary" in corpus_line, corpus_line  # one sentence, one line
    assert "│" in out.stderr  # the run's summary table still renders
