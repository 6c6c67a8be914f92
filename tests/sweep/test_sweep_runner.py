"""`charexp sweep` end to end: grid, bayes, hyperband, and a runner killed mid-sweep.

The bayes and hyperband tests sweep a tiny W&B-instrumented program that is not charexp's
train.py (it logs `loss` per step), which also shows the runner reads any program's own W&B files.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from charexp.config import replicate_group
from charexp.sweep.command import run_sweep
from charexp.sweep.state import load_state
from charexp.tracking.wandb_files import find_run_files, read_run

from conftest import REPO

FAKE_PROGRAM = '''
import math, signal, sys, time
import wandb

stop = []
signal.signal(signal.SIGTERM, lambda signum, frame: stop.append(signum))
run = wandb.init(config={"bad": 0, "lr": 0.001, "lr_decay": 0.0, "steps": 4, "sleep": 0.0})
c = run.config
loss = None
for step in range(int(c["steps"])):
    if stop:  # as W&B's signal-handling docs ask: mark preempting, exit 128 + signum
        run.mark_preempting()
        run.finish(exit_code=128 + stop[0])
        wandb.teardown()
        sys.exit(128 + stop[0])
    loss = (1 + 9 * c["bad"]) / (step + 1) + (math.log10(c["lr"]) + 3) ** 2 + c["lr_decay"]
    run.log({"loss": loss}, step=step)
    time.sleep(c["sleep"] * (1 + 20 * c["bad"]))  # a bad run is also slow: hyperband has time to stop it
run.summary["final_loss"] = loss
run.finish()
wandb.teardown()
'''


@pytest.fixture
def fake_program(tmp_path: Path) -> Path:
    path = tmp_path / "fake_train.py"
    path.write_text(FAKE_PROGRAM)
    return path


def sweep_yaml(tmp_path: Path, **config) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def charexp_grid(tmp_path: Path, config: Path, lrs: list[float], decays: list[float]) -> Path:
    return sweep_yaml(tmp_path, program=str(REPO / "train.py"), method="grid",
                      metric={"name": "test/loss", "goal": "minimize"},
                      parameters={"lr": {"values": lrs}, "lr_decay": {"values": decays}},
                      command=["${env}", "${interpreter}", "${program}", "--config", str(config), "${args}"])


def the_sweep(tmp_path: Path):
    (sweep_dir,) = (tmp_path / "sweep-runs").iterdir()
    return sweep_dir, load_state(sweep_dir)


def wandb_run(tmp_path: Path, run_id: str):
    files = find_run_files(tmp_path / "wandb", run_id)
    assert files, f"no W&B files for run {run_id}"
    return files, [read_run(f) for f in files]


def test_grid_sweep_completes_and_its_table_matches_the_runs_own_summaries(tiny_config, tmp_path, capsys):
    config = tiny_config(epochs=1)
    outcome = run_sweep(charexp_grid(tmp_path, config, [0.01, 0.003], [1.0, 0.5]), None, workers=2, project="grid-proj")
    out = capsys.readouterr().out
    assert outcome == "finished"
    sweep_dir, state = the_sweep(tmp_path)
    assert state.finished and state.project == "grid-proj" and state.method == "grid"
    grid = sorted((r.params["lr"], r.params["lr_decay"]) for r in state.runs)
    assert grid == [(0.003, 0.5), (0.003, 1.0), (0.01, 0.5), (0.01, 1.0)]
    assert (sweep_dir / "sweep.yaml").read_text() == (tmp_path / "sweep.yaml").read_text()

    row = r"│\s*\d+\s*│\s*(?P<run>[a-z0-9]{8})\s*│.*?│\s*finished\s*│\s*(?P<metric>[\d.]+)\s*│"
    rows = {m["run"]: float(m["metric"]) for m in re.finditer(row, out)}
    assert len(rows) == 4, out
    for rec in state.runs:
        assert rec.state == "finished" and rec.exit_code == 0 and (sweep_dir / rec.log).is_file()
        _, (run,) = wandb_run(tmp_path, rec.run_id)
        # the sweep is tags, not a sweep id that no W&B server knows (so that wandb sync works); the run group is
        # train.py's replicate group: these runs differ in lr and lr_decay, so each is a group of its own
        config = yaml.safe_load((tmp_path / "runs" / rec.run_id / "config.yaml").read_text())
        assert (run.sweep_id, run.group, run.project, run.exit_code) == (None, replicate_group(config), "grid-proj", 0)
        assert f"sweep-{state.sweep_id}" in run.tags and "charexp-sweep" in run.tags
        assert {k: run.config[k] for k in rec.params} == rec.params  # the swept values reached wandb.config
        own = run.summary["test/loss"]["min"]
        assert rec.metric == pytest.approx(own) and rows[rec.run_id] == pytest.approx(own, abs=6e-5)
        assert rec.summary["test/loss"] == {"min": own}
    ranked = list(rows.values())
    assert ranked == sorted(ranked)  # sorted by the metric, best first
    best = min(state.runs, key=lambda r: r.metric)
    assert f"best run: {best.run_id}" in out
    # the hint samples the sweep's own best run (its run-scoped alias), not the store-wide best-test-loss
    assert f"  sample it: python sample.py --artifact run-{best.run_id}-best KSKSKS\n" in out
    assert "--artifact best-test-loss" not in out
    from charexp.store.references import resolve_artifact

    hinted = resolve_artifact(f"run-{best.run_id}", tmp_path / "artifacts")
    assert json.loads((hinted.path / "checkpoint.json").read_text())["run_id"] == best.run_id
    assert re.search(rf"best run's model: charlstm:v\d+ \(run {best.run_id}, epoch 1, test/loss [\d.]+\) in "
                     rf"artifacts/charlstm/v\d+\n", out), out


def test_bayes_proposes_within_bounds_using_finished_results(fake_program, tmp_path, monkeypatch):
    import sweeps

    calls = []
    real_next_run = sweeps.next_run

    def recording_next_run(config, runs, validate=False, **kwargs):
        suggestion = real_next_run(config, runs, validate=validate, **kwargs)
        calls.append(([r.model_copy(deep=True) for r in runs], suggestion))
        return suggestion

    monkeypatch.setattr(sweeps, "next_run", recording_next_run)
    bounds = {"lr": (1e-5, 1e-2), "lr_decay": (0.1, 1.0)}
    path = sweep_yaml(tmp_path, program=str(fake_program), method="bayes", metric={"name": "loss", "goal": "minimize"},
                      parameters={"lr": {"distribution": "log_uniform_values", "min": 1e-5, "max": 1e-2},
                                  "lr_decay": {"distribution": "uniform", "min": 0.1, "max": 1.0}})
    assert run_sweep(path, None, count=3, workers=1) == "finished"
    _, state = the_sweep(tmp_path)
    assert [r.state for r in state.runs] == ["finished"] * 3
    for rec in state.runs:
        for name, (low, high) in bounds.items():
            assert low <= rec.params[name] <= high and type(rec.params[name]) is float
        _, (run,) = wandb_run(tmp_path, rec.run_id)
        assert {k: run.config[k] for k in bounds} == rec.params
        assert rec.metric == pytest.approx(min(v for _, v in run.metric("loss")))
    # the last proposal saw the first two runs finished, with the metrics their own W&B files hold
    runs_seen, suggestion = calls[-1]
    finished = {r.name: r for r in runs_seen if r.state == "finished"}
    assert set(finished) == {state.runs[0].run_id, state.runs[1].run_id}
    for rec in state.runs[:2]:
        assert finished[rec.run_id].summary_metrics["loss"] == pytest.approx(rec.metric)
        assert len(finished[rec.run_id].history) == 4
    assert "no valid samples" not in suggestion.search_info["warnings"]
    assert "no valid samples" in calls[0][1].search_info["warnings"]


def test_hyperband_stops_a_losing_run(fake_program, tmp_path):
    # bands: max_iter 9 / eta 3, s 2 -> runs are judged after 1 and 3 logged values; the bad run is 10x worse
    path = sweep_yaml(tmp_path, program=str(fake_program), method="grid", metric={"name": "loss", "goal": "minimize"},
                      early_terminate={"type": "hyperband", "min_iter": 1, "eta": 3, "max_iter": 9, "s": 2},
                      parameters={"bad": {"values": [0, 1]}, "steps": {"value": 9}, "sleep": {"value": 0.05}})
    assert run_sweep(path, None, workers=1) == "finished"
    _, state = the_sweep(tmp_path)
    good, bad = sorted(state.runs, key=lambda r: r.params["bad"])
    assert good.state == "finished" and good.exit_code == 0
    assert bad.state == "stopped" and bad.exit_code == 128 + signal.SIGTERM and bad.stop_requested
    _, (good_run,) = wandb_run(tmp_path, good.run_id)
    _, (bad_run,) = wandb_run(tmp_path, bad.run_id)
    assert len(good_run.metric("loss")) == 9
    assert 1 <= len(bad_run.metric("loss")) < 9 and bad_run.preempting and bad_run.exit_code == 128 + signal.SIGTERM
    assert not (tmp_path / "runs").exists()  # not charexp: everything came from the W&B files


def test_a_killed_runner_resumes_without_losing_or_repeating_a_run(tiny_config, tmp_path, capsys):
    """SIGKILL the runner mid-sweep, and one of its runs with it (a lost process); --resume finishes the
    sweep: the survivor is followed, the lost run continues from its saved state, nothing runs twice."""
    config = tiny_config(epochs=6, checkpoint_every=5, sample_every=0)
    path = charexp_grid(tmp_path, config, [0.01, 0.003, 0.001], [1.0])
    log = open(tmp_path / "runner.log", "wb")
    runner = subprocess.Popen([sys.executable, "-m", "charexp.cli", "sweep", str(path), "--workers", "2"],
                              cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    victim = None
    deadline = time.monotonic() + 240
    while victim is None and time.monotonic() < deadline and runner.poll() is None:
        time.sleep(0.2)
        try:
            _, state = the_sweep(tmp_path)
        except Exception:  # not written yet
            continue
        running = [r for r in state.runs if r.state == "running" and r.pid]
        runs = tmp_path / "runs"
        with_state = [r for r in running if (runs / r.run_id / "state.pt").exists()
                      and json.loads((runs / r.run_id / "summary.json").read_text()).get("state") == "running"]
        if len(running) == 2 and with_state:
            victim = with_state[0]
    assert victim is not None, (tmp_path / "runner.log").read_text()[-3000:]
    runner.kill()  # SIGKILL: no chance to save anything
    runner.wait()
    os.kill(victim.pid, signal.SIGKILL)  # and its run dies with it, mid-training, after a saved state
    survivor = next(r for r in state.runs if r.state == "running" and r.run_id != victim.run_id)

    sweep_dir, _ = the_sweep(tmp_path)
    assert run_sweep(None, sweep_dir) == "finished"
    out = capsys.readouterr().out
    # followed, or settled from its files
    assert re.search(rf"run {survivor.run_id} (is still running|finished)", out), out
    assert re.search(rf"run {victim.run_id} ended without an exit record", out), out
    _, state = the_sweep(tmp_path)
    assert state.finished
    assert sorted(r.params["lr"] for r in state.runs) == [0.001, 0.003, 0.01]  # the grid, each point once
    assert all(r.state == "finished" and r.exit_code == 0 for r in state.runs), \
        [(r.run_id, r.state) for r in state.runs]
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == sorted(r.run_id for r in state.runs)

    steps = None
    for rec in state.runs:
        launches = len(re.findall(rf"^=== .* run {rec.run_id} of sweep {state.sweep_id}, launch \d+$",
                                  (sweep_dir / rec.log).read_text(), re.M))
        summary = json.loads((tmp_path / "runs" / rec.run_id / "summary.json").read_text())
        steps = steps or summary["step"]
        assert summary["state"] == "finished" and summary["step"] == steps  # every run trained to the end
        files, segments = wandb_run(tmp_path, rec.run_id)
        assert segments[-1].exit_code == 0 and segments[-1].group.startswith("config-")
        assert summary["sweep_id"] == state.sweep_id  # the local id, read from the agent-style parameter file's folder
        if rec.run_id == victim.run_id:
            assert rec.launches == 2 and launches == 2
            assert f"resuming run {rec.run_id}" in (sweep_dir / rec.log).read_text()
            first_step = min(int(row["_step"]) for row in segments[-1].history if "_step" in row)
            assert first_step > 0  # continued from its saved state, not trained again from step 0
        else:
            assert rec.launches == 1 and launches == 1 and len(files) == 1  # never started twice


def test_reaching_the_metric_target_ends_the_sweep(fake_program, tmp_path):
    path = sweep_yaml(tmp_path, program=str(fake_program), method="random", run_cap=4,
                      metric={"name": "loss", "goal": "minimize", "target": 0.5},
                      parameters={"lr": {"distribution": "log_uniform_values", "min": 5e-4, "max": 2e-3}})
    assert run_sweep(path, None, workers=1) == "finished"
    _, state = the_sweep(tmp_path)
    assert len(state.runs) == 1 and state.runs[0].metric <= 0.5 and state.finished  # run_cap 4 was not needed


def test_a_metric_no_run_logs_fails_the_sweep_naming_what_was_logged(fake_program, tmp_path, capsys):
    from charexp.errors import CharexpError

    path = sweep_yaml(tmp_path, program=str(fake_program), method="grid",
                      metric={"name": "val_loss", "goal": "minimize"}, parameters={"lr": {"values": [1e-3]}})
    with pytest.raises(CharexpError) as err:
        run_sweep(path, None, workers=1)
    _, state = the_sweep(tmp_path)
    assert str(err.value) == (f"no run of sweep {state.sweep_id} logged the sweep's metric 'val_loss'; the runs "
                              "logged: final_loss, loss; fix metric.name in the sweep YAML")
    assert "no run has reported val_loss yet" in capsys.readouterr().out  # the table still came first
