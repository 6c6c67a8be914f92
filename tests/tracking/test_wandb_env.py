"""A WANDB_* variable that wandb.init would die on (`WANDB_MODE=`, `WANDB_MODE=ofline`) is one sentence, exit 2,
before any run starts; the check agrees with wandb.init itself on what is refused."""

from __future__ import annotations

import sys

import pytest
import yaml

from charexp import cli
from charexp.errors import CharexpError
from charexp.wandb_env import check_wandb_env

from conftest import REPO
from foundation import python_script

WANDB_MODES = ("'online'", "'offline'", "'disabled'")


@pytest.mark.parametrize("value", ["", "ofline"])
def test_a_bad_wandb_mode_stops_train_py_with_one_sentence(tiny_config, tmp_path, value):
    out = python_script("train.py", ["--config", str(tiny_config(epochs=1))], cwd=tmp_path, env={"WANDB_MODE": value})
    assert out.returncode == 2, out.stderr[-3000:]
    assert "Traceback" not in out.stderr and out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1, out.stderr[-3000:]  # not even the config table: nothing started
    assert lines[0].startswith("error: ") and f"WANDB_MODE={value!r}" in lines[0] and "unset WANDB_MODE" in lines[0]
    assert all(mode in lines[0] for mode in WANDB_MODES), lines[0]  # the allowed values, in W&B's own words
    assert not (tmp_path / "runs").exists() and not list(tmp_path.glob("wandb/*run-*"))


# (variable, value, refused): each row is checked against wandb.init itself, so the check can neither
# invent a rule nor miss one of wandb's.
CASES = [
    ("WANDB_MODE", "", True), ("WANDB_MODE", "ofline", True), ("WANDB_MODE", "offline", False),
    ("WANDB_MODE", "dryrun", False),
    ("WANDB_RUN_ID", "", True), ("WANDB_RUN_ID", "abc12345", False),
    ("WANDB_CONSOLE", "bogus", True), ("WANDB_CONSOLE", "off", False),
    ("WANDB_SILENT", "maybe", True), ("WANDB_SILENT", "false", False),
    ("WANDB_RESUME", "yes", True), ("WANDB_RESUME", "allow", False),
    ("WANDB_INIT_TIMEOUT", "soon", True), ("WANDB_INIT_TIMEOUT", "90", False),
    ("WANDB_BASE_URL", "not a url", True), ("WANDB_BASE_URL", "http://localhost:8080", False),
    ("WANDB_API_KEY", " secret-key-with-spaces ", True),
]


def wandb_init_refuses(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> bool:
    """Does wandb.init (disabled mode: no files, no service) fail with this variable set?"""
    import wandb

    wandb.teardown()  # wandb reads the environment once per process setup
    monkeypatch.setenv(name, value)
    try:
        wandb.init(mode="disabled", project="charexp-test").finish()
        return False
    except Exception:
        return True
    finally:
        monkeypatch.delenv(name)
        wandb.teardown()


@pytest.mark.parametrize("name, value, refused", CASES)
def test_the_check_refuses_exactly_what_wandb_init_refuses(monkeypatch, name, value, refused):
    assert wandb_init_refuses(monkeypatch, name, value) == refused
    monkeypatch.setenv(name, value)
    if not refused:
        check_wandb_env()
        return
    with pytest.raises(CharexpError) as err:
        check_wandb_env()
    message = str(err.value)
    assert "\n" not in message and f"unset {name}" in message
    if name == "WANDB_API_KEY":
        assert value.strip() not in message and "hidden" in message  # a key is never printed
    else:
        assert f"{name}={value!r}" in message


def test_overrides_are_what_the_runs_will_see(monkeypatch):
    """charexp sweep's offline runs get WANDB_MODE=offline, so a bad WANDB_MODE does not reach them."""
    monkeypatch.setenv("WANDB_MODE", "ofline")
    check_wandb_env(overrides={"WANDB_MODE": "offline"})
    with pytest.raises(CharexpError, match="WANDB_MODE"):
        check_wandb_env()
    monkeypatch.setenv("WANDB_CONSOLE", "bogus")
    with pytest.raises(CharexpError, match="WANDB_CONSOLE"):
        check_wandb_env(overrides={"WANDB_MODE": "offline"})


def test_charexp_sweep_refuses_a_bad_variable_before_writing_anything(monkeypatch, capsys, tmp_path):
    sweep = {"program": str(REPO / "train.py"), "method": "grid", "metric": {"name": "test/loss", "goal": "minimize"},
             "parameters": {"lr": {"values": [0.01]}}, "command": ["${env}", "${interpreter}", "${program}", "${args}"]}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(sweep))
    monkeypatch.setenv("WANDB_CONSOLE", "bogus")  # every run's wandb.init would die on it
    monkeypatch.setattr(sys, "argv", ["charexp", "sweep", "sweep.yaml"])
    with pytest.raises(SystemExit) as exit_info:
        cli.main()
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "WANDB_CONSOLE='bogus'" in err
    assert not (tmp_path / "sweep-runs").exists() and not (tmp_path / "wandb").exists()
