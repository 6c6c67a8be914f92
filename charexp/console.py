"""The one rich Console that commands print messages through.

soft_wrap: a line is never broken at the console's width, so a command or path meant to be copied
(`wandb sync <dir>`, `python train.py --resume <id>`) stays on one line in a file or a pipe, where rich
would otherwise wrap at 80 columns. Tables still render; off a terminal they get a wide page
(PIPE_WIDTH, unless $COLUMNS says otherwise) rather than being squeezed into 80 columns.
"""

from __future__ import annotations

import os
from pathlib import Path

from rich.console import Console

PIPE_WIDTH = 160


def make_console(stderr: bool = True) -> Console:
    """A console for messages: stderr by default (stdout stays for data, such as sampled lines)."""
    console = Console(stderr=stderr, soft_wrap=True)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = PIPE_WIDTH
    return console


def shown_path(path: str | Path) -> str:
    """A path as a message shows it: relative to the current directory when it is under it (what a user types
    next, e.g. `wandb sync wandb/offline-run-...`), else as it is."""
    absolute = Path(path).absolute()
    return os.path.relpath(absolute) if absolute.is_relative_to(Path.cwd()) else str(path)
