"""The end of `charexp sweep`: runs sorted by the metric, the best run, and the best-test-loss artifact."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from charexp.sweep.state import RunRecord, SweepState
from charexp.tracking.rundir import RunDir

STATE_STYLE = {"finished": "green", "failed": "red", "stopped": "yellow", "preempted": "yellow", "running": "cyan", "pending": "dim"}


def fmt_value(value: Any) -> str:
    if isinstance(value, float):
        text = f"{value:.4g}"
        return text if any(c in text for c in ".eninf") else text + ".0"  # 1.0 stays a float on screen
    return "-" if value is None else str(value)


def ranked(state: SweepState) -> list[RunRecord]:
    """Runs with a metric first, best first (per the goal); the rest in launch order."""
    sign = -1.0 if state.metric.get("goal") == "maximize" else 1.0
    scored = sorted((r for r in state.runs if r.metric is not None), key=lambda r: sign * r.metric)
    return scored + [r for r in state.runs if r.metric is None]


def best_run(state: SweepState) -> RunRecord | None:
    top = ranked(state)
    return top[0] if top and top[0].metric is not None else None


def param_names(state: SweepState) -> list[str]:
    names = list((state.config.get("parameters") or {}).keys())
    for rec in state.runs:
        names += [k for k in rec.params if k not in names]
    # a parameter fixed for the whole sweep (value: x) says nothing per run
    return [n for n in names if len({repr(r.params.get(n)) for r in state.runs}) > 1 or len(state.runs) <= 1]


def sweep_runs_table(state: SweepState) -> Table:
    metric = state.metric.get("name") or "metric"
    done = sum(r.state == "finished" for r in state.runs)
    arrow = "↑" if state.metric.get("goal") == "maximize" else "↓"
    table = Table(title=f"sweep {state.sweep_id}: {state.method}, {len(state.runs)} runs, {done} finished")
    table.add_column("#", justify="right", style="dim")
    table.add_column("run")
    names = param_names(state)
    for name in names:
        table.add_column(name, justify="right")
    table.add_column("state")
    table.add_column(f"{metric} {arrow}", justify="right")
    for i, rec in enumerate(ranked(state), 1):
        style = STATE_STYLE.get(rec.state, "")
        table.add_row(str(i), rec.run_id, *(fmt_value(rec.params.get(n)) for n in names),
                      f"[{style}]{rec.state}[/{style}]" if style else rec.state,
                      f"{rec.metric:.4f}" if rec.metric is not None else "-")
    return table


def artifact_line(state: SweepState) -> str | None:
    """Where best-test-loss points in the local artifact store, if the runs keep one (charexp's train.py)."""
    from charexp.errors import CharexpError
    from charexp.store.artifacts import BEST, ArtifactStore

    cwd = Path(state.cwd or ".")
    best = best_run(state)
    run_dir = cwd / (best.run_dir or f"runs/{best.run_id}") if best else None  # an absolute run_dir stays itself
    config = RunDir(run_dir.parent, run_dir.name).read_config() if run_dir else {}
    name = config.get("artifact_name") or "charlstm"
    root = cwd / (config.get("artifacts_dir") or "artifacts")
    try:
        store = ArtifactStore(root, name)
        if not store.index_path.is_file() or BEST not in store.read_index()["aliases"]:
            return None
        version = store.resolve(BEST)
    except CharexpError:
        return None
    meta = version.meta
    owner = meta.get("run_id")
    whose = "from this sweep" if owner in {r.run_id for r in state.runs} else "from a run outside this sweep"
    loss = meta.get("test_loss")
    loss_text = f", test/loss {loss:.4f}" if isinstance(loss, (int, float)) else ""
    try:
        where = version.path.relative_to(cwd)
    except ValueError:
        where = version.path
    return (f"{BEST}: {name}:{version.version} (run {owner}, epoch {meta.get('epoch')}{loss_text}) {whose}, in {where}\n"
            f"  sample it: python sample.py --artifact {BEST} KSKSKS")


def print_report(state: SweepState, console: Console, sweep_dir: Path) -> None:
    console.print(sweep_runs_table(state))
    best = best_run(state)
    metric = state.metric.get("name")
    if best is not None:
        params = ", ".join(f"{k}={fmt_value(v)}" for k, v in best.params.items())
        run_dir = Path(state.cwd or ".") / best.run_dir
        where = f"; {best.run_dir}" if best.run_dir and run_dir.is_dir() else ""
        console.print(f"best run: [bold]{best.run_id}[/bold]  {metric} {best.metric:.4f}  ({params}){where}", highlight=False)
    elif state.runs:
        console.print(f"no run has reported {metric or 'a metric'} yet", highlight=False)
    line = artifact_line(state)
    if line:
        console.print(line, highlight=False)
    console.print(f"sweep directory: {sweep_dir}  (state.json, logs/)", highlight=False)
