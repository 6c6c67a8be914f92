"""Config: flat keys from YAML < --key=value < sweep values, validated once; errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from wandb.sdk.lib.config_util import save_config_file_from_dict

from charexp.config import KEYS, Config, build_config, load_config, nearest_key, sweep_param_values
from charexp.errors import CharexpError

from foundation import REFERENCE_LR, python_script, reference, run_main  # noqa: F401  (fixture)


def write_yaml(path: Path, values: dict) -> Path:
    path.write_text(yaml.safe_dump(values), encoding="utf-8")
    return path


def sweep_file(tmp_path: Path, values: dict) -> Path:
    """The parameter file a W&B agent writes (wandb's own writer): {key: {value: v}} plus wandb_version."""
    path = tmp_path / "wandb" / "sweep-abc" / "config-run1.yaml"
    save_config_file_from_dict(str(path), {k: {"value": v} for k, v in values.items()})
    return path


def no_run_started(root: Path) -> None:
    assert not (root / "runs").exists(), "runs/ was created"
    assert not list(root.glob("wandb/*run-*")), "a W&B run was started"
    assert not (root / "artifacts").exists(), "artifacts/ was created"


def one_sentence(message: str) -> None:
    assert message and "\n" not in message and "Traceback" not in message


# --- unknown keys ------------------------------------------------------------------------------

@pytest.mark.parametrize("typo, valid", [("hiden", "hidden"), ("lr-decay", "lr_decay"), ("batchsize", "batch_size"),
                                         ("epoch", "epochs"), ("dropuot", "dropout"), ("sample_char", "sample_chars")])
def test_unknown_yaml_key_names_the_nearest_valid_one(tmp_path, typo, valid):
    path = write_yaml(tmp_path / "c.yaml", {"lr": 0.01, typo: 3})
    with pytest.raises(CharexpError) as err:
        load_config(path)
    message = str(err.value)
    one_sentence(message)
    assert f"'{typo}'" in message and f"'{valid}'" in message and str(path) in message
    assert nearest_key(typo) == valid


def test_unknown_key_without_a_near_match_lists_the_valid_keys(tmp_path):
    with pytest.raises(CharexpError) as err:
        load_config(write_yaml(tmp_path / "c.yaml", {"zzzzqqq": 1}))
    assert "'zzzzqqq'" in str(err.value) and all(key in str(err.value) for key in ("hidden", "lr", "batch_size"))


def test_unknown_command_line_key_names_the_nearest_valid_one():
    from charexp.train.args import parse_train_args

    with pytest.raises(CharexpError, match=r"'--hiden'.*'--hidden'"):
        parse_train_args(["--hiden=3"])
    overrides = parse_train_args(["hiden=3"]).overrides  # the ${args_no_hyphens} form
    with pytest.raises(CharexpError, match=r"'hiden'.*'hidden'"):
        load_config(None, overrides)


def test_unknown_sweep_key_names_the_nearest_valid_one(tmp_path, monkeypatch):
    monkeypatch.setenv("WANDB_SWEEP_PARAM_PATH", str(sweep_file(tmp_path, {"hiden": 64})))
    with pytest.raises(CharexpError, match=r"'hiden' \(did you mean 'hidden'\?\) in the sweep parameters"):
        load_config(write_yaml(tmp_path / "c.yaml", {"lr": 0.01}))


# --- types and ranges --------------------------------------------------------------------------

@pytest.mark.parametrize("key, value", [
    ("hidden", "big"), ("layers", 2.5), ("lr", "fast"), ("split", "random"), ("device", "gpu"),
    ("wandb_mode", "sometimes"), ("amp", "maybe"), ("epochs", [1, 2]), ("artifact_name", "../escape"),
])
def test_wrong_type_names_the_key(key, value):
    with pytest.raises(CharexpError) as err:
        build_config({key: value})
    one_sentence(str(err.value))
    assert f"'{key}'" in str(err.value)


@pytest.mark.parametrize("key, value", [
    ("lr", 0), ("lr", -1e-3), ("dropout", 1.0), ("test_fraction", 1.5), ("test_fraction", 0), ("layers", 0),
    ("batch_size", 0), ("max_len", 1), ("lr_decay", 2.0), ("hidden", 0), ("sample_chars", ""), ("eval_every", -1),
])
def test_out_of_range_value_names_the_key(key, value):
    with pytest.raises(CharexpError) as err:
        build_config({key: value})
    one_sentence(str(err.value))
    assert f"'{key}'" in str(err.value)


def test_yaml_file_problems_are_one_clear_error(tmp_path):
    bad = {
        "missing.yaml": None,
        "broken.yaml": "lr: [0.1\nhidden: 3\n",
        "empty.yaml": "",
        "list.yaml": "- lr\n- hidden\n",
    }
    for name, text in bad.items():
        path = tmp_path / name
        if text is not None:
            path.write_text(text, encoding="utf-8")
        with pytest.raises(CharexpError) as err:
            load_config(path)
        one_sentence(str(err.value))
        assert name in str(err.value)


# --- precedence --------------------------------------------------------------------------------

def test_yaml_then_command_line_then_sweep_values(tmp_path, monkeypatch):
    path = write_yaml(tmp_path / "c.yaml", {"lr": 0.01, "hidden": 32, "layers": 1, "dropout": 0.1})
    monkeypatch.setenv("WANDB_SWEEP_PARAM_PATH", str(sweep_file(tmp_path, {"lr": 0.03, "layers": 3})))
    cfg = load_config(path, {"lr": 0.02, "hidden": 48})
    assert cfg.lr == 0.03  # sweep beats command line beats YAML
    assert cfg.layers == 3  # sweep beats YAML
    assert cfg.hidden == 48  # command line beats YAML
    assert cfg.dropout == 0.1  # YAML beats defaults
    assert cfg.batch_size == Config().batch_size  # defaults fill the rest
    monkeypatch.delenv("WANDB_SWEEP_PARAM_PATH")
    assert load_config(path, {"lr": 0.02}).lr == 0.02
    assert load_config(path).lr == 0.01


def test_sweep_parameter_file_in_agent_form_is_read(tmp_path, monkeypatch):
    path = sweep_file(tmp_path, {"lr": 3e-4, "amp": True, "sample_chars": "KS"})
    assert "wandb_version" in path.read_text()
    monkeypatch.setenv("WANDB_SWEEP_PARAM_PATH", str(path))
    assert sweep_param_values() == {"lr": 3e-4, "amp": True, "sample_chars": "KS"}


def test_bad_sweep_value_is_refused_before_anything_starts(tmp_path, tiny_config, monkeypatch):
    monkeypatch.setenv("WANDB_SWEEP_PARAM_PATH", str(sweep_file(tmp_path, {"lr": -1.0})))
    with pytest.raises(CharexpError, match="'lr'"):
        run_main(["--config", str(tiny_config())])
    no_run_started(tmp_path)


def test_sweep_value_reaches_the_run_and_its_wandb_config(tmp_path, tiny_config, monkeypatch):
    from charexp.tracking.rundir import RunDir
    from charexp.tracking.wandb_files import find_run_files, read_run

    monkeypatch.setenv("WANDB_SWEEP_PARAM_PATH", str(sweep_file(tmp_path, {"lr": 0.005, "hidden": 24})))
    code, _ = run_main(["--config", str(tiny_config(epochs=1, steps_per_epoch=2, sample_every=0, checkpoint_every=0)),
                        "--lr=0.02"])
    assert code == 0
    (run_id,) = [p.name for p in (tmp_path / "runs").iterdir()]
    assert RunDir(tmp_path / "runs", run_id).read_config()["lr"] == 0.005
    assert RunDir(tmp_path / "runs", run_id).read_config()["hidden"] == 24
    (wandb_file,) = find_run_files(tmp_path / "wandb", run_id)
    config = read_run(wandb_file).config
    assert config["lr"] == 0.005 and config["hidden"] == 24


# --- nothing trains on a bad config ------------------------------------------------------------

@pytest.mark.parametrize("override", ["--hidden=big", "--lr=0", "--hiden=3", "--split=random"])
def test_nothing_starts_on_a_bad_config(tmp_path, tiny_config, override):
    with pytest.raises(CharexpError):
        run_main(["--config", str(tiny_config()), override])
    no_run_started(tmp_path)


def test_bad_config_on_the_command_line_is_one_line_and_exit_2(tmp_path, tiny_config):
    out = python_script("train.py", ["--config", str(tiny_config(hiden=3))], cwd=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "'hidden'" in lines[0], out.stderr
    assert "Traceback" not in out.stderr
    no_run_started(tmp_path)


# --- the resolved config is printed and logged ---------------------------------------------------

def test_resolved_config_is_printed_stored_and_logged(reference):
    from charexp.tracking.wandb_files import read_run

    stored = reference.run_dir.read_config()
    assert sorted(stored) == sorted(KEYS)
    assert stored["lr"] == REFERENCE_LR  # the command line's value, not the YAML file's 0.01
    assert stored["hidden"] == 32 and stored["eval_every"] == 10
    assert "charexp config" in reference.stderr
    printed = {line.split()[0]: line.split()[1:] for line in reference.stderr.splitlines() if line.split()}
    assert printed["lr"] == [str(REFERENCE_LR)] and printed["hidden"] == ["32"]
    assert all(key in printed for key in KEYS), [k for k in KEYS if k not in printed]
    logged = read_run(reference.wandb_file).config
    for key in KEYS:
        assert logged[key] == stored[key], key
