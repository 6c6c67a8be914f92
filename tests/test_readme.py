"""The README lists every flag a user can pass (config keys, sample.py options, charexp commands)."""

from __future__ import annotations

import re

import typer.main

from charexp.cli import app
from charexp.config import Config
from charexp.sample.command import app as sample_app

from conftest import REPO

README = (REPO / "README.md").read_text(encoding="utf-8")


def test_every_config_key_is_documented_with_its_default():
    for key, field in Config.model_fields.items():
        assert re.search(rf"\| `{key}` \| `{re.escape(repr(field.default))}` \|", README), key


def test_every_sample_flag_is_documented():
    command = typer.main.get_command(sample_app)
    for param in command.params:
        for opt in param.opts:
            if opt.startswith("--") and opt != "--help":
                assert f"`{opt}" in README, opt


def test_every_charexp_command_is_documented():
    group = typer.main.get_command(app)
    for name, command in group.commands.items():
        subs = getattr(command, "commands", None) or {None: command}
        for sub in subs:
            assert f"charexp {name}{' ' + sub if sub else ''}" in README, (name, sub)
