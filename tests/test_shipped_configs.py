"""Every file in configs/ and sweeps/ loads and validates as shipped; phase2.yaml's init_from resolves
against a store that a tiny run made."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from charexp.config import Config, load_config, read_yaml_config
from charexp.errors import CharexpError
from charexp.store.artifacts import ArtifactStore
from charexp.sweep.spec import load_sweep_spec, read_sweep_yaml
from charexp.train.main import prepare

from conftest import REPO
from foundation import run_main

CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
SWEEPS = sorted((REPO / "sweeps").glob("*.yaml"))


def test_the_documented_files_are_all_there():
    assert {p.name for p in CONFIGS} >= {"startrek.yaml", "homework.yaml", "phase2.yaml", "quick.yaml"}
    assert {p.name for p in SWEEPS} >= {"lr.yaml", "lr_bayes.yaml", "arch.yaml", "phase2.yaml"}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_every_config_validates_and_keeps_its_values(path):
    raw = read_yaml_config(path)
    cfg = load_config(path)
    # every key is a config key, and no value was changed on the way
    assert {key: getattr(cfg, key) for key in raw} == raw


def candidates(param: dict) -> list:
    """The values a sweep parameter names: `values`, `value`, or a distribution's bounds."""
    return list(param.get("values") or []) + [param[k] for k in ("value", "min", "max") if k in param]


def sweep_config_file(config: dict) -> Path:
    """The --config file a sweep's command passes to train.py."""
    command = [str(c) for c in config["command"]]
    return REPO / command[command.index("--config") + 1]


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_every_sweep_validates_against_train_py(path, monkeypatch):
    monkeypatch.chdir(REPO)  # sweeps name their program and config relative to the repository root
    spec = load_sweep_spec(path)  # wandb's sweep engine accepts it; charexp's parameter checks ran on it
    assert spec.is_charexp and spec.program == "train.py"
    _, config = read_sweep_yaml(path)
    params = config["parameters"]
    assert spec.params == list(params) and set(params) <= set(Config.model_fields)
    # every combination of the parameters' listed values (and a distribution's bounds) on top of the
    # sweep's own config file is a config train.py accepts: keys that are checked together (min_lr <= lr) too
    base = sweep_config_file(config)
    choices = {name: candidates(param) for name, param in params.items()}
    assert all(choices.values()), choices
    for values in itertools.product(*choices.values()):
        cfg = load_config(base, dict(zip(choices, values)))
        assert [getattr(cfg, name) for name in choices] == list(values)


def test_phase2_names_its_source_and_adopts_its_architecture(tiny_config, tiny_csv, tmp_path):
    """After a phase 1 of another shape and a stranger's later run, phase2.yaml refuses to guess, then starts
    from the named run's epoch-1 model with that model's architecture and no architecture flags."""
    phase2 = load_config(REPO / "configs" / "phase2.yaml", {"data": str(tiny_csv), "device": "cpu"})
    assert phase2.init_from == "required" and not {"layers", "hidden", "embed"} & phase2.model_fields_set
    with pytest.raises(CharexpError, match=r"pass --init_from=RUN_ID:epoch-1 .* \(the local store \S+ is empty"):
        prepare(phase2, None)

    quick = {"epochs": 1, "steps_per_epoch": 3, "wandb_mode": "disabled", "sample_every": 0, "checkpoint_every": 0}
    runs = tmp_path / "runs"
    code, log = run_main(["--config", str(tiny_config("phase1.yaml", **quick))])  # layers 1, hidden 32, embed 16
    assert code == 0, log
    (phase1,) = [p.name for p in runs.iterdir()]
    code, log = run_main(["--config", str(tiny_config("stranger.yaml", **quick, hidden=24, embed=8))])
    assert code == 0, log
    store = ArtifactStore(tmp_path / "artifacts", "charlstm")
    assert store.resolve("epoch-1").meta["run_id"] != phase1  # the store-wide epoch-1 is the stranger's now

    small = ["--epochs=1", "--steps_per_epoch=3", "--batch_size=8", "--max_len=64", "--log_every=1",
             "--sample_every=0", "--checkpoint_every=0", "--wandb_mode=disabled", "--device=cpu", "--sample_chars=KS"]
    args = ["--config", str(REPO / "configs" / "phase2.yaml"), f"--data={tiny_csv}", *small]
    code, log = run_main([*args, f"--init_from={phase1}:epoch-1"])
    assert code == 0, log
    log = " ".join(log.split())
    assert "architecture from init_from's checkpoint: layers=1, hidden=32, embed=16" in log
    assert f"{phase1}:epoch-1 = charlstm:v0 of run {phase1} (epoch 1)" in log
    (phase2_run,) = [p.name for p in runs.iterdir() if p.name not in {phase1, store.resolve("v1").meta["run_id"]}]
    newest = store.resolve(f"run-{phase2_run}")
    assert json.loads((newest.path / "checkpoint.json").read_text())["config"]["hidden"] == 32


def test_the_phase2_sweep_names_no_model_until_the_user_does(tiny_csv, monkeypatch):
    """sweeps/phase2.yaml ships with init_from `required`: each run stops with the fix, never takes the store-wide
    epoch-1 (which the sweep's own runs would move)."""
    monkeypatch.chdir(REPO)
    _, config = read_sweep_yaml(REPO / "sweeps" / "phase2.yaml")
    assert config["parameters"]["init_from"] == {"value": "required"}
    base = load_config(sweep_config_file(config), {"data": str(tiny_csv), "device": "cpu", "init_from": "required"})
    with pytest.raises(CharexpError, match=r"--init_from=vN \(in a sweep YAML: init_from's value\)"):
        prepare(base, None)
