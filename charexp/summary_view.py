"""Rich tables that summarise runs in the terminal (end of a run, `charexp runs`)."""

from __future__ import annotations

import math
from typing import Any

from rich.table import Table


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if math.isfinite(value) else str(value)
    return str(value)


def run_summary_table(summary: dict[str, Any]) -> Table:
    table = Table(title=f"run {summary.get('run_id')} — {summary.get('state')}", show_header=False)
    table.add_column(style="cyan")
    table.add_column()
    best = summary.get("best_test_loss")
    rows = [
        ("best test/loss", f"{fmt(best)} nats/char ({fmt(best / math.log(2) if best else None)} bpc) at epoch {summary.get('best_epoch')}"),
        ("last eval", ", ".join(f"{k.split('/')[-1]} {fmt(v)}" for k, v in (summary.get("last_eval") or {}).items()) or "-"),
        ("trained", f"{summary.get('step')} steps, {summary.get('chars', 0):,} chars in {fmt(summary.get('seconds'), 1)} s on {summary.get('device')}"),
        ("artifact", f"{summary.get('artifact')}: {'; '.join(summary.get('versions') or []) or '-'}"),
        ("W&B", f"{summary.get('wandb_mode')} {summary.get('wandb_dir') or ''}".strip()),
    ]
    for key, value in rows:
        table.add_row(key, value)
    return table
