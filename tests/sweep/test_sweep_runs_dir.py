"""A sweep whose runs put their directories somewhere other than runs/ still follows them (issue 18)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from charexp.sweep.command import run_sweep
from charexp.sweep.spec import load_sweep_spec
from charexp.sweep.state import load_state
from charexp.tracking.rundir import RunDir

from conftest import REPO


def write_sweep(tmp_path: Path, parameters: dict, command_extra: list[str], config: Path) -> Path:
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump({
        "program": str(REPO / "train.py"), "method": "grid", "metric": {"name": "test/loss", "goal": "minimize"},
        "parameters": parameters,
        "command": ["${env}", "${interpreter}", "${program}", "--config", str(config), *command_extra, "${args}"],
    }, sort_keys=False))
    return path


def test_a_swept_runs_dir_is_where_the_sweep_records_and_finds_its_runs(tiny_config, tmp_path):
    config = tiny_config(epochs=1, runs_dir="from-config")  # the swept value must win over the config file's
    sweep = write_sweep(tmp_path, {"lr": {"values": [0.01]}, "runs_dir": {"values": ["swept-runs"]}}, [], config)
    assert run_sweep(sweep, None, workers=1) == "finished"
    (sweep_dir,) = (tmp_path / "sweep-runs").iterdir()
    (rec,) = load_state(sweep_dir).runs
    assert rec.state == "finished" and rec.exit_code == 0 and rec.metric is not None
    assert rec.run_dir == f"swept-runs/{rec.run_id}"
    summary = RunDir(tmp_path / "swept-runs", rec.run_id).read_summary()
    assert summary.state == "finished" and rec.metric == pytest.approx(summary.best_test_loss)
    assert not (tmp_path / "runs").exists() and not (tmp_path / "from-config").exists()


@pytest.mark.parametrize(("params", "extra", "in_config", "expected"), [
    ({"runs_dir": "swept"}, ["--runs_dir=flag"], "file", "swept"),  # a swept value wins, as wandb.config does
    ({}, ["--runs_dir", "flag"], "file", "flag"),  # the command line over the config file
    ({}, [], "file", "file"),
    ({}, [], None, "runs"),  # the config's default
])
def test_the_runner_reads_runs_dir_as_train_py_resolves_it(tiny_config, tmp_path, params, extra, in_config, expected):
    config = tiny_config(**({"runs_dir": in_config} if in_config else {}))
    spec = load_sweep_spec(write_sweep(tmp_path, {"lr": {"values": [0.01]}}, extra, config), cwd=tmp_path)
    assert spec.runs_dir(params, tmp_path) == expected
