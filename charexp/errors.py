"""One exception type for everything a user can fix, printed as one sentence."""

from __future__ import annotations

import sys
from typing import Any, Callable, NoReturn


class CharexpError(Exception):
    """A problem with the user's input or environment. The message is one sentence
    that says what is wrong and what to do; entry points print it without a traceback."""

    exit_code = 2


class TrainingDiverged(CharexpError):
    """The loss or the weights became NaN or infinite. `reason` says what, without the advice
    (with reject_worse the run recovers instead of stopping, and says so itself)."""

    exit_code = 1

    def __init__(self, message: str, reason: str | None = None):
        super().__init__(message)
        self.reason = reason or message


def disk_error(err: OSError, what: str, where: object) -> CharexpError:
    """A failed write (full disk, no permission, a file where a directory should be) as one sentence."""
    return CharexpError(f"could not write {what} to {where} ({err.strerror or err}); "
                        "free some space or choose a writable directory — earlier checkpoints are untouched")


def fail(message: str, exit_code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(exit_code)


def run_cli(main: Callable[[], int | None]) -> NoReturn:
    """Every command's one error path: a CharexpError is one line on stderr and its exit code (2 for bad
    input), Ctrl-C is exit 130, and otherwise the exit code is what `main` returns."""
    try:
        code = main()
        sys.stdout.flush()  # inside the try: a reader that left shows up here, not at interpreter exit
    except CharexpError as err:
        fail(str(err), err.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130)
    except BrokenPipeError:  # `charexp --help | head`: the reader left; no traceback (Python's documented recipe)
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        raise SystemExit(141)  # 128 + SIGPIPE, as a shell reports a command killed by a closed pipe
    raise SystemExit(code or 0)


def run_typer_app(app: Any, args: list[str] | None = None, prog_name: str | None = None) -> int:
    """Run a typer app for run_cli: its usage errors and --help stay typer's, but a CharexpError and Ctrl-C
    reach run_cli as they are (typer would print Ctrl-C as "Aborted!" or exit with its own code)."""
    import typer
    import typer.main

    try:  # newer typer carries its own copy of click
        from typer._click.exceptions import ClickException
    except ImportError:
        from click.exceptions import ClickException

    command = typer.main.get_command(app)
    try:
        with command.make_context(prog_name or "charexp", list(sys.argv[1:] if args is None else args)) as ctx:
            command.invoke(ctx)
    except typer.Exit as err:  # --help, typer.Exit(code)
        return err.exit_code
    except typer.Abort:
        raise KeyboardInterrupt from None
    except ClickException as err:  # a usage error: typer's own message, exit 2
        _show_usage_error(err, app)
        return err.exit_code
    return 0


def _show_usage_error(err: Any, app: Any) -> None:
    try:
        from typer import rich_utils

        if getattr(app, "rich_markup_mode", None) is not None:
            rich_utils.rich_format_error(err)
            return
    except (ImportError, AttributeError):  # a typer without rich
        pass
    err.show()
