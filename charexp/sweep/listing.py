"""`charexp sweeps`: the local sweeps under sweep-runs/, one row each, read with the runner's own state reader.

A sweep directory whose state.json is damaged is a row that says so, never a traceback: the list is where a
user looks first, and one bad folder must not hide the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from rich import box
from rich.table import Table

from charexp.errors import CharexpError
from charexp.sweep.state import STATE, SWEEP_YAML, SweepState, load_state
from charexp.sweep.table import best_run


@dataclass(frozen=True)
class SweepEntry:
    path: Path
    state: SweepState | None  # None: state.json is missing or damaged
    problem: str = ""  # why state is None, in a few words

    @property
    def sweep_id(self) -> str:
        return self.state.sweep_id if self.state else self.path.name


def read_sweeps(parent: Path) -> list[SweepEntry]:
    """Every sweep directory directly under `parent` (one with a state.json or a sweep.yaml), oldest first;
    damaged ones last."""
    if not parent.is_dir():
        return []
    entries = []
    for path in sorted(p for p in parent.iterdir() if p.is_dir()):
        if not ((path / STATE).exists() or (path / SWEEP_YAML).exists()):
            continue
        if not (path / STATE).exists():
            entries.append(SweepEntry(path, None, f"no {STATE} (its runner never started, or the file was removed)"))
            continue
        try:
            entries.append(SweepEntry(path, load_state(path)))
        except CharexpError as err:  # the reader's sentence up to its advice, without the path the row shows
            reason = str(err).split("; ")[0].replace(str(path / STATE), STATE).replace(str(path), "it")
            entries.append(SweepEntry(path, None, reason))
    return sorted(entries, key=lambda e: (e.state is None, e.state.created if e.state else e.path.name))


def sweeps_table(entries: list[SweepEntry], title: str) -> Table:
    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False)
    for column in ("sweep", "name", "method", "runs", "metric", "best", "best run"):
        justify = "right" if column in ("runs", "best") else "left"
        table.add_column(column, justify=justify, style="cyan" if column == "sweep" else None,
                         no_wrap=column != "name", overflow="fold")
    for entry in entries:
        state = entry.state
        if state is None:
            table.add_row(entry.sweep_id, f"[red]damaged: {entry.problem}[/red]", "-", "-", "-", "-", "-")
            continue
        name = state.config.get("name") if isinstance(state.config.get("name"), str) else None
        done = sum(r.state == "finished" for r in state.runs)
        arrow = "↑" if state.metric.get("goal") == "maximize" else "↓"
        best = best_run(state)
        table.add_row(state.sweep_id, name or "-", state.method, f"{done}/{len(state.runs)}",
                      f"{state.metric.get('name') or '-'} {arrow}", f"{best.metric:.4f}" if best else "-",
                      best.run_id if best else "-")
    return table
