"""Terminal output for a training run: a rich progress bar on a terminal, plain log lines otherwise."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from charexp.console import make_console


class TrainProgress:
    def __init__(self, total_steps: int, completed: int = 0, console: Console | None = None):
        self.console = console or make_console()
        self.live = self.console.is_terminal
        self.progress = Progress(
            TextColumn("[bold]epoch {task.fields[epoch]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("{task.fields[cps]} chars/s"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.live,
        )
        self.task = self.progress.add_task("train", total=total_steps, completed=completed, epoch="-", loss="-",
                                           cps="-")

    def __enter__(self) -> "TrainProgress":
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def advance(self, step: int) -> None:
        if self.live:
            self.progress.update(self.task, completed=step)

    def update(self, step: int, epoch: str, loss: float, chars_per_sec: float) -> None:
        self.progress.update(self.task, completed=step, epoch=epoch, loss=f"{loss:.3f}", cps=f"{chars_per_sec:,.0f}")
        if not self.live:
            self.console.print(f"step {step:>7} | epoch {epoch} | train/loss {loss:.4f} | {chars_per_sec:,.0f} chars/s",
                               highlight=False)

    def print(self, message: str) -> None:
        self.console.print(message, highlight=False)


def config_table(config: dict, title: str = "config") -> Table:
    table = Table(title=title, show_header=False, box=None, pad_edge=False)
    table.add_column(style="cyan")
    table.add_column()
    for key, value in config.items():
        table.add_row(key, repr(value) if isinstance(value, str) else str(value))
    return table
