"""`charexp train` and `charexp sample` are python train.py and python sample.py, flag for flag (issue 18)."""

from __future__ import annotations

import sys

import pytest
import typer.main

from charexp.config import Config


def charexp(monkeypatch, capsys, *args: str) -> tuple[int, str, str]:
    from charexp.cli import main

    monkeypatch.setattr(sys, "argv", ["charexp", *args])
    with pytest.raises(SystemExit) as exit_:
        main()
    out, err = capsys.readouterr()
    return exit_.value.code, out, err


def test_charexp_train_help_is_train_py_help(monkeypatch, capsys):
    from charexp.train.args import build_parser

    code, out, _ = charexp(monkeypatch, capsys, "train", "--help")
    assert code == 0 and out == build_parser().format_help()
    assert all(f"--{key}" in out for key in Config.model_fields)


def test_charexp_train_takes_train_py_flags_in_every_form(monkeypatch, capsys, tmp_path):
    missing = str(tmp_path / "none.yaml")
    code, _, err = charexp(monkeypatch, capsys, "train", "--config", missing, "--lr=3e-4", "hidden=8")
    assert code == 2 and err.startswith("error: config file") and "none.yaml" in err and len(err.splitlines()) == 1
    code, _, err = charexp(monkeypatch, capsys, "train", "--lr", "3e-4", "--hiden=8")
    assert code == 2 and "'--hidden'" in err and "Traceback" not in err


def test_charexp_sample_has_exactly_sample_py_flags(monkeypatch, capsys):
    from charexp.cli import app
    from charexp.sample.command import app as sample_app

    def flags(command) -> set[str]:
        return {opt for param in command.params for opt in param.opts}

    group = typer.main.get_command(app)
    assert flags(group.commands["sample"]) == flags(typer.main.get_command(sample_app))
    code, out, _ = charexp(monkeypatch, capsys, "sample", "--help")
    assert code == 0 and "--artifact" in out and "--prime" in out and "--top-k" in out


def test_output_into_a_pipe_that_closes_early_is_no_traceback(tmp_path):
    """`charexp --help | head -2`: the reader leaves before the help is written."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "charexp.cli", "--help"], cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**__import__("os").environ, "COLUMNS": "400"})
    proc.stdout.close()  # closed before anything is read
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err
    assert proc.returncode != 0  # nothing was written: not a success, but no crash either


def test_version_is_the_installed_package_version(monkeypatch, capsys):
    from importlib.metadata import version

    code, out, err = charexp(monkeypatch, capsys, "--version")
    assert (code, out, err) == (0, f"charexp {version('charexp')}\n", "")
    code, out, _ = charexp(monkeypatch, capsys, "data", "--help")  # the sub-commands are untouched by the callback
    assert code == 0 and "download" in out
