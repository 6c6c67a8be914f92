"""train.py's command line: every config key as a flag, in each form a W&B sweep agent writes.

    --lr=3e-4 --hidden 256         ${args} / ${args_no_equals}
    lr=3e-4                        ${args_no_hyphens}
    --amp                          ${args_no_boolean_flags}
    '{"lr": 0.0003}'               ${args_json}
    wandb/sweep-x/config-y.json    ${args_json_file}
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any, NamedTuple

from charexp.config import Config, describe_keys, nearest_key, parse_cli_value, short_repr
from charexp.errors import CharexpError

EPILOG = """\
examples:
  python train.py --config configs/quick.yaml
  python train.py --config configs/startrek.yaml --lr=3e-4 --hidden=256
  python train.py --config configs/phase2.yaml --init_from=v3
  python train.py --resume last
  python train.py --config configs/startrek.yaml --check     # validate and print the resolved config only

Every config key above can be set in the YAML file or on the command line; sweep values from a
W&B agent win over both. W&B runs offline when no API key is configured (see wandb_mode)."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train.py",
        usage="python train.py --config YAML [--KEY=VALUE ...]  |  python train.py --resume RUN_ID|last",
        description="Train a character-level LSTM language model, tracked in W&B.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--config", metavar="YAML",
                        help="config file (flat 'key: value' lines), e.g. configs/startrek.yaml")
    parser.add_argument("--check", action="store_true",
                        help="validate the config (data, init_from, every key), print it resolved, and start nothing")
    parser.add_argument("--resume", metavar="RUN_ID",
                        help="continue a stopped run from its saved state, as the same W&B run ('last' = the newest)")
    add_config_keys(parser)
    return parser


def add_config_keys(parser: argparse.ArgumentParser) -> None:
    """Every config key as an optional flag, plus KEY=VALUE / JSON positionals (what a sweep agent may write)."""
    keys = parser.add_argument_group("config keys (each also as key=value, or all at once as JSON)")
    for name, default, description in describe_keys():
        keys.add_argument(f"--{name}", metavar="V", nargs="?", const="True", default=argparse.SUPPRESS,
                          help=f"{description} (default: {default})".replace("%", "%%"))
    parser.add_argument("extra", nargs="*", metavar="KEY=VALUE | JSON", help=argparse.SUPPRESS)


def _positional_values(items: list[str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for item in items:
        text = item.strip()
        if text.startswith("{"):
            try:
                loaded = json.loads(text)
            except (ValueError, RecursionError):  # also an int past 4300 digits, or nesting too deep
                raise CharexpError(f"argument {short_repr(item)} looks like JSON but does not parse; "
                                   "pass a JSON object of config keys") from None
            values.update(loaded)
        elif "=" in text:
            key, _, raw = text.partition("=")
            values[key.lstrip("-")] = parse_cli_value(raw)
        elif text.endswith(".json") and Path(text).is_file():
            try:
                loaded = json.loads(Path(text).read_text(encoding="utf-8"))
            except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
                raise CharexpError(f"{text} is not a JSON object of config keys") from None
            if not isinstance(loaded, dict):
                raise CharexpError(f"{text} should hold a JSON object of config keys")
            values.update(loaded)
        else:
            raise CharexpError(f"unexpected argument {short_repr(item)}; use --key=value (see python train.py --help)")
    return values


def parse_config_keys(parser: argparse.ArgumentParser,
                      argv: list[str] | None) -> tuple[argparse.Namespace, dict[str, Any]]:
    """Parse with a parser that add_config_keys() filled: the namespace, and the config keys given. Unknown
    options are reported all at once, each with its likely meaning."""
    args, unknown = parser.parse_known_args(argv)
    flags = [item.lstrip("-").split("=", 1)[0] for item in unknown if item.startswith("-")]
    if flags:  # all of them at once, each with its likely meaning
        parts = [short_repr(f"--{name}") + (f" (did you mean '--{hint}'?)" if (hint := nearest_key(name)) else "")
                 for name in flags]
        command = f"python {parser.prog}" if parser.prog.endswith(".py") else parser.prog
        tail = "" if all(nearest_key(name) for name in flags) else f"; see {command} --help"
        raise CharexpError(f"unknown option{'s' if len(flags) > 1 else ''} {', '.join(parts)}{tail}")
    overrides = _positional_values(list(args.extra) + [u for u in unknown if not u.startswith("-")])
    for key in Config.model_fields:
        if key in vars(args):
            overrides[key] = parse_cli_value(getattr(args, key))
    return args, overrides


class TrainArgs(NamedTuple):
    config: str | None  # --config YAML
    resume: str | None  # --resume RUN_ID|last
    overrides: dict[str, Any]  # every config key given on the command line
    check: bool = False  # --check: validate and print, start nothing


def parse_train_args(argv: list[str] | None = None) -> TrainArgs:
    """What the command line asks for."""
    parser = build_parser()
    args, overrides = parse_config_keys(parser, argv)
    return TrainArgs(args.config, args.resume, overrides, args.check)
