"""One exception type for everything a user can fix, printed as one sentence."""

from __future__ import annotations

import sys
from typing import Callable, NoReturn


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
    return CharexpError(f"could not write {what} to {where} ({err.strerror or err}); free some space or choose a writable directory — earlier checkpoints are untouched")


def fail(message: str, exit_code: int = 2) -> NoReturn:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(exit_code)


def run_cli(main: Callable[[], int | None]) -> NoReturn:
    """Run an entry point, turning CharexpError into one line on stderr and an exit code."""
    try:
        code = main()
    except CharexpError as err:
        fail(str(err), err.exit_code)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        raise SystemExit(130)
    raise SystemExit(code or 0)
