"""Rich tables that summarise runs in the terminal (end of a run, end of a sweep, `charexp runs`)."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

from rich import box
from rich.table import Table

from charexp.console import shown_path
from charexp.numbers import finite

if TYPE_CHECKING:  # a view of the run directory's summary; the ground does not import tracking
    from charexp.sweep.state import SweepState
    from charexp.tracking.rundir import RunSummary


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value)


def run_summary_table(summary: RunSummary) -> Table:
    table = Table(title=f"run {summary.run_id} — {summary.state}", show_header=False)
    table.add_column(style="cyan")
    table.add_column()
    best = summary.best_test_loss
    bpc = fmt(best / math.log(2) if best else None)
    rows = [
        ("best test/loss", f"{fmt(best)} nats/char ({bpc} bpc) at epoch {summary.best_epoch}"),
        ("last eval", ", ".join(f"{k.split('/')[-1]} {fmt(v)}" for k, v in (summary.last_eval or {}).items()) or "-"),
        ("trained", f"{summary.step} steps, {summary.chars or 0:,} chars in {fmt(summary.seconds, 1)} s "
                    f"on {summary.device}"),
        ("artifact", f"{summary.artifact}: {'; '.join(summary.versions) or '-'}"),
        ("W&B", f"{summary.wandb_mode} {shown_path(summary.wandb_dir) if summary.wandb_dir else ''}".strip()),
    ]
    if summary.rejected_epochs:
        epochs = ", ".join(map(str, summary.rejected_epochs))
        rows.insert(3, ("rejected epochs", f"{epochs} (reject_worse: their weights were thrown away)"))
    for key, value in rows:
        table.add_row(key, value)
    return table


def metric_sort_key(value: Any, goal: str = "minimize") -> tuple[int, float]:
    """Sort key that puts the best metric first and runs without one last."""
    if not finite(value):
        return (1, 0.0)
    return (0, -value if goal == "maximize" else value)


def swept_keys(state: SweepState) -> list[str]:
    """Parameters a sweep varies: those in its runs' params that the sweep config does not fix with `value:`."""
    spec = (state.config or {}).get("parameters") or {}
    fixed = {k for k, v in spec.items() if isinstance(v, dict) and "value" in v}
    names = dict.fromkeys(k for r in state.runs for k in (r.params or {}))
    return [k for k in names if k not in fixed]


def local_runs_table(rows: list[dict[str, Any]], title: str = "local runs") -> Table:
    """`charexp runs`: one row per run directory. Rows hold run_id, config, best_test_loss, state and
    updated (a file time); the table fits an 80-column terminal."""
    table = Table(title=title, box=box.SIMPLE_HEAD, padding=(0, 0), show_edge=False)
    for column in ("run", "model", "batch", "lr", "decay", "epochs", "best loss (bpc)", "state", "updated"):
        justify = "left" if column in ("run", "model", "state", "updated") else "right"
        table.add_column(column, justify=justify, no_wrap=True, style="cyan" if column == "run" else None)
    for row in rows:
        cfg, best, updated = row.get("config") or {}, row.get("best_test_loss"), row.get("updated")
        loss = f"{fmt(best)} ({fmt(best / math.log(2), 3)})" if finite(best) else "-"
        when = time.strftime("%m-%d %H:%M", time.localtime(updated)) if isinstance(updated, (int, float)) else "-"
        table.add_row(str(row.get("run_id")), f"{cfg.get('layers', '?')}×{cfg.get('hidden', '?')}",
                      fmt(cfg.get("batch_size")), param_text(cfg.get("lr")), param_text(cfg.get("lr_decay")),
                      fmt(cfg.get("epochs")), loss, _state_style(str(row.get("state"))), when)
    return table


def param_text(value: Any) -> str:
    """A hyperparameter value as a person writes it (floats with :g, so 0.0003 and 1e-05 stay short)."""
    return f"{value:g}" if isinstance(value, float) else fmt(value)


def _state_style(state: str) -> str:
    colour = {"finished": "green", "running": "yellow", "preempted": "yellow"}.get(state, "red")
    return f"[{colour}]{state}[/{colour}]"
