"""The `charexp` console script: train, sample, lr-find, data, sweep, sweeps, report, runs, store.

Each command lives in its package's command module; heavy imports happen inside the commands.
`charexp train` and `charexp sample` are `python train.py` and `python sample.py`, flag for flag.
"""

from __future__ import annotations

import typer

from charexp.data.command import app as data_app
from charexp.errors import run_cli, run_typer_app
from charexp.report.command import app as report_app
from charexp.sample.command import sample
from charexp.store.command import app as store_app
from charexp.sweep.command import app as sweep_app

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="charexp: character-level LSTM experiments tracked in W&B: train, sample, fetch data, "
                       "run offline sweeps and report.")


def package_version() -> str:
    """The installed distribution's version (what pip reports), else the source tree's __version__."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("charexp")
    except PackageNotFoundError:  # run from a source tree that was never installed
        from charexp import __version__

        return __version__


def show_version(value: bool) -> None:
    if value:
        typer.echo(f"charexp {package_version()}")
        raise typer.Exit(0)


@app.callback()
def root(version: bool = typer.Option(False, "--version", callback=show_version, is_eager=True,
                                      help="print the version and exit")) -> None:
    """charexp: character-level LSTM experiments tracked in W&B: train, sample, fetch data, run offline sweeps
    and report."""


# train.py parses its own command line (every config key as a flag, in each form a sweep agent writes),
# so `charexp train` hands it everything, --help included
PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True, "help_option_names": []}


@app.command("train", context_settings=PASS_THROUGH, add_help_option=False)
def train(ctx: typer.Context) -> None:
    """Train a model: python train.py's flags (charexp train --help lists them)."""
    from charexp.train.main import main

    raise typer.Exit(main(ctx.args))


@app.command("lr-find", context_settings=PASS_THROUGH, add_help_option=False)
def lr_find(ctx: typer.Context) -> None:
    """Which learning rate? A range test that suggests one in minutes (charexp lr-find --help)."""
    from charexp.lrfind.command import main

    raise typer.Exit(main(ctx.args))


app.command("sample", help="Generate lines from a trained CharLSTM: python sample.py's flags.")(sample)
app.add_typer(data_app)
app.add_typer(sweep_app)
app.add_typer(report_app)
app.add_typer(store_app)


def main() -> None:
    run_cli(lambda: run_typer_app(app, prog_name="charexp"))


if __name__ == "__main__":
    main()
