"""train.py's command line accepts every argument form a W&B sweep agent produces, with the same result."""

from __future__ import annotations

import pytest
from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

from charexp.config import KEYS, load_config
from charexp.errors import CharexpError
from charexp.train.args import build_parser, parse_train_args

SWEEP_VALUES = {"lr": 0.0003, "hidden": 256, "amp": True, "dropout": 0.25, "sample_chars": "KS", "seed": 7,
                "init_from": "charlstm:epoch-1", "wandb_mode": "offline", "lr_decay": 1e-05}


def agent_forms(tmp_path, values: dict) -> dict[str, list[str]]:
    """What wandb's agent puts in place of each ${args...} macro (wandb's own expansion)."""
    macros = create_sweep_command_args({"args": {k: {"value": v} for k, v in values.items()}})
    json_file = tmp_path / "wandb" / "sweep-x" / "config-run1.json"
    json_file.parent.mkdir(parents=True)
    json_file.write_text(macros["args_json"][0], encoding="utf-8")  # what the agent writes for ${args_json_file}
    forms = {name: macros[name] for name in ("args", "args_no_equals", "args_no_hyphens", "args_no_boolean_flags",
                                             "args_json")}
    forms["args_json_file"] = [str(json_file)]
    return forms


def test_every_agent_argument_form_gives_the_same_overrides(tmp_path):
    forms = agent_forms(tmp_path, SWEEP_VALUES)
    for name, argv in forms.items():
        config_path, resume, overrides, _ = parse_train_args(["--config", "c.yaml", *argv])
        assert (config_path, resume) == ("c.yaml", None), name
        assert overrides == SWEEP_VALUES, f"{name}: {argv} -> {overrides}"
        for key, value in overrides.items():
            assert type(value) is type(SWEEP_VALUES[key]), (name, key, value)


def test_false_booleans_mean_the_same_in_every_form(tmp_path):
    values = {"lr": 0.001, "amp": False}
    forms = agent_forms(tmp_path, values)
    configs = {name: load_config(None, parse_train_args(argv)[2]) for name, argv in forms.items()}
    assert "--amp" not in agent_forms(tmp_path / "b", values)["args_no_boolean_flags"]
    for name, cfg in configs.items():
        assert cfg.amp is False and cfg.lr == 0.001, name


def test_forms_mixed_on_one_command_line():
    _, resume, overrides, _ = parse_train_args(["--resume", "abc123", "--lr", "0.1", "hidden=64", "--amp", "--seed=3",
                                                '{"dropout": 0.5}'])
    assert resume == "abc123"
    assert overrides == {"lr": 0.1, "hidden": 64, "amp": True, "seed": 3, "dropout": 0.5}


def test_values_are_typed_as_an_agent_writes_them():
    overrides = parse_train_args(["--init_from=None", "--amp=False", "--sample_chars=KSKS", "--data=/tmp/x.csv",
                                  "--lr=3e-4"])[2]
    assert overrides == {"init_from": None, "amp": False, "sample_chars": "KSKS", "data": "/tmp/x.csv", "lr": 3e-4}


@pytest.mark.parametrize("argv, fragment", [
    (["{not json"], "JSON"),
    (["stray"], "stray"),
    (["--bogus=1"], "--bogus"),
])
def test_bad_arguments_are_one_clear_error(argv, fragment):
    with pytest.raises(CharexpError) as err:
        parse_train_args(argv)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_json_file_that_is_not_an_object_is_refused(tmp_path):
    path = tmp_path / "args.json"
    path.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(CharexpError, match="JSON object"):
        parse_train_args([str(path)])


def test_help_lists_every_config_key():
    text = build_parser().format_help()
    for key in KEYS:
        assert f"--{key}" in text, key
    assert "--config" in text and "--resume" in text


def test_check_validates_prints_and_starts_nothing(tiny_config, tmp_path):
    from foundation import run_main

    code, log = run_main(["--config", str(tiny_config(wandb_mode="offline")), "--check", "--lr=0.02"])
    assert code == 0, log
    assert "charexp config (resolved)" in log and "0.02" in log
    assert not (tmp_path / "runs").exists() and not (tmp_path / "wandb").exists()  # no run, no W&B record
    with pytest.raises(CharexpError, match="config key 'lr'"):  # and it refuses what training would refuse
        run_main(["--config", str(tiny_config()), "--check", "--lr=-1"])
