"""README claims about training, each shown on tiny runs: `grad_clip: 0` is off, evaluating more often does
not change training, and the console says what a user needs (eval lines, a summary table, the sync hint)."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from charexp.store.artifacts import ArtifactStore
from charexp.tracking.rundir import RunDir, list_runs
from charexp.tracking.wandb_files import find_run_files, read_run

from foundation import SUBPROCESS_ENV, python_script, read_tensors, run_main

SHORT = {"epochs": 1, "steps_per_epoch": 6, "log_every": 1, "sample_every": 0, "checkpoint_every": 0,
         "wandb_mode": "disabled", "device": "cpu", "lr": 0.05}


def final_weights(tmp_path, run: RunDir) -> dict:
    versions = ArtifactStore(tmp_path / "artifacts", "charlstm").versions()
    version = [v for v in versions if v.meta["run_id"] == run.run_id][-1]
    return read_tensors(version.path / "model.safetensors")


def train_rows(run: RunDir) -> list[tuple[int, float]]:
    return [(row["step"], row["train/loss"]) for row in run.history() if "train/loss" in row]


def test_grad_clip_zero_means_no_clipping(tmp_path, tiny_config, monkeypatch):
    calls = []
    real_clip = torch.nn.utils.clip_grad_norm_

    def counting_clip(parameters, max_norm, *args, **kwargs):
        calls.append(max_norm)
        return real_clip(parameters, max_norm, *args, **kwargs)

    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", counting_clip)
    runs = {}
    # off; a bound no gradient reaches (clipping that changes nothing); a bound every step hits
    for clip in (0, 1e9, 0.01):
        calls.clear()
        code, log = run_main(["--config", str(tiny_config(f"clip{clip}.yaml", grad_clip=clip, **SHORT))])
        assert code == 0, log
        runs[clip] = (list_runs(tmp_path / "runs")[-1], list(calls))
    assert runs[0][1] == []  # off: clip_grad_norm_ is never called, not even with a bound of 0
    # the control: on, it clips once per step with the bound
    assert runs[1e9][1] == [1e9] * 6 and runs[0.01][1] == [0.01] * 6
    off, loose, tight = (final_weights(tmp_path, runs[c][0]) for c in (0, 1e9, 0.01))
    assert all(torch.equal(off[k], loose[k]) for k in off)  # 0 trains exactly like clipping that never bites...
    assert any(not torch.equal(off[k], tight[k]) for k in off)  # ...and not like real clipping
    assert train_rows(runs[0][0]) == train_rows(runs[1e9][0]) != train_rows(runs[0.01][0])


def test_evaluating_more_often_does_not_change_training(tmp_path, tiny_config):
    """Same final weights and train losses with an eval every 2 steps and with evals at epoch ends only,
    with dropout on (an eval that consumed the training RNG or left the model in eval mode would show)."""
    runs = []
    for eval_every in (0, 2):
        config = tiny_config(f"eval{eval_every}.yaml", **{**SHORT, "epochs": 2, "sample_every": 3}, dropout=0.3,
                             eval_every=eval_every)
        code, log = run_main(["--config", str(config)])
        assert code == 0, log
        runs.append(list_runs(tmp_path / "runs")[-1])
    rare, often = runs
    evals = [[row["step"] for row in run.history() if "test/loss" in row] for run in runs]
    assert evals == [[6, 12], [2, 4, 6, 8, 10, 12]]
    assert train_rows(rare) == train_rows(often) and len(train_rows(rare)) == 12
    a, b = final_weights(tmp_path, rare), final_weights(tmp_path, often)
    assert sorted(a) == sorted(b) and all(torch.equal(a[k], b[k]) for k in a)
    epoch_end = [{row["step"]: row["test/loss"] for row in run.history() if "test/loss" in row} for run in runs]
    # the same test/loss at the epoch ends
    assert [epoch_end[0][s] for s in (6, 12)] == [epoch_end[1][s] for s in (6, 12)]
    assert rare.samples() == often.samples()


def test_the_console_of_a_short_offline_run(tmp_path, tiny_config):
    """What a user reads in the terminal: the offline note, an eval line per evaluation, the summary table,
    and the `wandb sync` command for this run's files."""
    config = tiny_config(epochs=1, steps_per_epoch=10, eval_every=5, sample_every=0, device="cpu")
    out = python_script("train.py", ["--config", str(config)], cwd=tmp_path, env={**SUBPROCESS_ENV, "COLUMNS": "240"})
    assert out.returncode == 0, out.stderr[-3000:]
    text = out.stderr
    (run,) = list_runs(tmp_path / "runs")
    summary = run.read_summary()
    assert "no API key configured, so this run is offline" in text

    evals = [row for row in run.history() if "test/loss" in row]
    assert [row["step"] for row in evals] == [5, 10]
    for row in evals:
        line = (f"eval step {row['step']} (epoch {row['epoch']:g}): test/loss {row['test/loss']:.4f} "
                f"({row['test/bpc']:.4f} bpc), acc_argmax {row['test/acc_argmax']:.3f}, "
                f"acc_sampled {row['test/acc_sampled']:.3f}")
        assert line in text, line

    table = text[text.index(f"run {run.run_id} — finished"):]
    best = summary["best_test_loss"]
    assert best == min(row["test/loss"] for row in evals)
    assert f"{best:.4f} nats/char ({best / math.log(2):.4f} bpc) at epoch {summary['best_epoch']}" in table
    assert f"10 steps, {summary['chars']:,} chars" in table
    assert all(version.split()[0] in table for version in summary["versions"]) and summary["versions"]

    hint = [line for line in text.splitlines() if line.startswith("W&B offline run: upload it with  wandb sync ")]
    assert len(hint) == 1, text[-3000:]
    sync_dir = hint[0].split("wandb sync ", 1)[1].strip()
    assert not Path(sync_dir).is_absolute()  # relative to where the user ran it: what they type next
    assert (tmp_path / sync_dir).resolve() == Path(summary["wandb_dir"]).resolve()
    (wandb_file,) = find_run_files(tmp_path / "wandb", run.run_id)
    # the command names this run's files
    assert wandb_file.parent.resolve() == (tmp_path / sync_dir).resolve() and read_run(wandb_file).exit_code == 0
