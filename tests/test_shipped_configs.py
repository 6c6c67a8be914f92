"""Every file in configs/ and sweeps/ loads and validates as shipped; phase2.yaml's init_from resolves
against a store that a tiny run made."""

from __future__ import annotations

import itertools
import os
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
    assert {key: getattr(cfg, key) for key in raw} == raw  # every key is a config key, and no value was changed on the way


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


def test_phase2_init_from_resolves_against_a_store_made_by_a_tiny_run(tiny_config, tiny_csv, tmp_path):
    phase2 = load_config(REPO / "configs" / "phase2.yaml", {"data": str(tiny_csv), "device": "cpu"})
    assert phase2.init_from == "charlstm:epoch-1" and phase2.artifacts_dir == "artifacts"
    with pytest.raises(CharexpError, match="train a model first"):  # the control: nothing to start from yet
        prepare(phase2, None)

    # phase 1: the homework model's shape (phase2's init must match it), one short epoch on the tiny corpus
    shape = {key: getattr(phase2, key) for key in ("layers", "hidden", "embed")}
    code, log = run_main(["--config", str(tiny_config(epochs=1, steps_per_epoch=3, wandb_mode="disabled", **shape))])
    assert code == 0, log

    _, corpus, init, _ = prepare(phase2, None)
    epoch1 = ArtifactStore(tmp_path / "artifacts", "charlstm").resolve("epoch-1")
    assert os.path.samefile(init.path, epoch1.path) and init.meta["epoch"] == 1
    assert corpus.vocab == init.vocab  # phase 2 reads the corpus with phase 1's vocabulary
    assert {key: getattr(init.config, key) for key in shape} == shape
