"""`charexp lr-find --config YAML [--KEY=VALUE ...]`: which learning rate, in minutes instead of a grid.

Runs the range test on the training split with the config's model, batches and optimizer, prints the
suggestion with a ready command, draws the curve, and logs it to W&B as its own run (job_type lr-find).
It trains no artifact, and never touches the store or best-test-loss.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml

from charexp.atomic import atomic_write_text
from charexp.console import make_console, shown_path
from charexp.errors import CharexpError, run_cli
from charexp.lrfind.finder import RangeTest
from charexp.lrfind.rule import bracket
from charexp.train.args import add_config_keys, parse_config_keys

DEFAULTS = RangeTest()
EPILOG = f"""\
the ramp and the rule:
  The rate grows exponentially from --start-lr to --end-lr over --steps batches of the training split
  (Adam, the config's batch size, grad_clip and model), and stops early at a non-finite loss or when the
  loss exceeds --diverge times its lowest. The curve is smoothed without lag (running median of 5, then a
  Gaussian), the first {DEFAULTS.skip_start} steps and the flat head (until the loss first falls 2%) are
  skipped, and the suggestion is the middle of the longest descent of the smoothed loss (fastai's 'valley'),
  on the log-lr axis. The steepest slope (against log lr)
  and the lowest loss / 10 are shown beside it.

examples:
  charexp lr-find --config configs/startrek.yaml
  charexp lr-find --config configs/homework.yaml --steps 1000   # batch 1: more, noisier steps
  charexp lr-find --config configs/startrek.yaml --hidden=512 --write-sweep sweeps/lr_around.yaml

Outputs go to --out/RUN_ID/ (lr_find.png, lr_find.json, history.jsonl); W&B runs offline without an API key."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="charexp lr-find",
        usage="charexp lr-find --config YAML [--KEY=VALUE ...] [--steps N] [--write-sweep PATH]",
        description="Learning-rate range test (Smith 2015): suggest a learning rate for a config in minutes.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        allow_abbrev=False,
    )
    parser.add_argument("--config", metavar="YAML", help="config file, e.g. configs/startrek.yaml")
    test = parser.add_argument_group("the range test")
    test.add_argument("--start-lr", type=float, default=DEFAULTS.start_lr, metavar="LR",
                      help=f"first learning rate of the ramp (default: {DEFAULTS.start_lr:g})")
    test.add_argument("--end-lr", type=float, default=DEFAULTS.end_lr, metavar="LR",
                      help=f"last learning rate of the ramp (default: {DEFAULTS.end_lr:g})")
    test.add_argument("--steps", type=int, default=DEFAULTS.steps, metavar="N",
                      help=f"batches in the ramp; more for small or noisy batches (default: {DEFAULTS.steps})")
    test.add_argument("--diverge", type=float, default=DEFAULTS.diverge, metavar="X",
                      help=f"stop when the loss exceeds X times its lowest (default: {DEFAULTS.diverge:g})")
    test.add_argument("--write-sweep", metavar="PATH",
                      help="also write a 3-point grid sweep around the suggestion (lr / 3, lr, lr x 3) to PATH")
    test.add_argument("--out", default="lr-find", metavar="DIR",
                      help="where the figure and curve go (default: lr-find)")
    add_config_keys(parser)
    return parser


def sweep_yaml(config_path: str | None, overrides: dict[str, Any], values: list[float], run_id: str) -> str:
    """A W&B grid sweep over `values` of lr, for `charexp sweep` or `wandb sweep`."""
    fixed = [f"--{k}={v}" for k, v in overrides.items() if k != "lr"]
    spec = {
        "name": f"lr-around-{run_id}",
        "program": "train.py",
        "method": "grid",
        "metric": {"name": "test/loss", "goal": "minimize"},
        "parameters": {"lr": {"values": values}},
        "command": ["${env}", "${interpreter}", "${program}", *(["--config", config_path] if config_path else []),
                    *fixed, "${args}"],
    }
    head = (f"# Written by charexp lr-find (run {run_id}): lr / 3, the suggestion and lr x 3.\n"
            "#   offline: charexp sweep THIS_FILE --workers 2\n#   online:  wandb sweep THIS_FILE && wandb agent ID\n")
    return head + yaml.safe_dump(spec, sort_keys=False)


def command_line(config_path: str | None, overrides: dict[str, Any], lr: float) -> str:
    parts = ["python train.py", *([f"--config {config_path}"] if config_path else [])]
    parts += [f"--{k}={v}" for k, v in overrides.items() if k != "lr"] + [f"--lr={lr:.2g}"]
    return " ".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, overrides = parse_config_keys(parser, argv)
    test = RangeTest(args.start_lr, args.end_lr, args.steps, args.diverge)
    test.check()
    if not args.config and not overrides:
        raise CharexpError("no config given; pass --config configs/startrek.yaml (see charexp lr-find --help)")
    if args.write_sweep and Path(args.write_sweep).exists():
        raise CharexpError(f"--write-sweep {args.write_sweep} already exists; choose another path or remove it")

    from charexp.lrfind.session import run_session

    console = make_console()
    result = run_session(args.config, overrides, test, Path(args.out), console)
    suggestion, curve, out = result.suggestion, result.curve, Path(result.out_dir)
    ramp = f"lr-find: {len(curve.lrs)} steps in {curve.seconds:.0f} s, lr {test.start_lr:g} to "
    console.print(f"{ramp}{curve.lrs[-1]:.3g}; stopped early: {curve.stopped}" if curve.stopped
                  else f"{ramp}{test.end_lr:g}", highlight=False)
    if suggestion.lr is None:
        console.print(f"no suggestion: {suggestion.reason}", highlight=False)
    else:
        print(f"suggested lr: {suggestion.lr:.2g}  ({suggestion.reason})")
        print(f"  beside it: steepest descent {suggestion.steepest_lr:.2g}, "
              f"lowest loss / 10 {suggestion.min_lr / 10:.2g}")
        print(f"train with it:  {command_line(args.config, overrides, suggestion.lr)}")
        values = bracket(suggestion.lr)
        if args.write_sweep:
            atomic_write_text(Path(args.write_sweep), sweep_yaml(args.config, overrides, values, result.run_id))
            print(f"or check it:    charexp sweep {args.write_sweep} --workers 2   (lr {values})")
        else:
            print(f"or check it:    add --write-sweep PATH for a 3-point grid sweep (lr {values})")
    console.print(f"figure: {out / 'lr_find.png'}", highlight=False)
    if result.sync_dir:
        console.print(f"W&B offline run (job_type lr-find): upload it with  wandb sync {shown_path(result.sync_dir)}",
                      highlight=False)
    return 0 if suggestion.lr is not None else 1


def cli() -> None:
    run_cli(main)
