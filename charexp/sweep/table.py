"""The end of `charexp sweep`: runs sorted by the metric, the best run, where to look next (a best value at
the edge of the values tried), and the best run's model by its run-scoped reference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from charexp.sweep.state import RunRecord, SweepState
from charexp.tracking.rundir import RunDir

STATE_STYLE = {"finished": "green", "failed": "red", "stopped": "yellow", "preempted": "yellow", "running": "cyan",
               "pending": "dim"}

# SLURM's word beside the run's own state where it tells more (a FAILED job is a failed or stopped run)
SLURM_SHOWN = ("CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL", "OUT_OF_MEMORY", "DEADLINE")


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
    jobs = state.launcher == "slurm"
    if jobs:
        table.add_column("SLURM job", justify="right")
    table.add_column("state")
    table.add_column(f"{metric} {arrow}", justify="right")
    for i, rec in enumerate(ranked(state), 1):
        style = STATE_STYLE.get(rec.state, "")
        shown = rec.state + (f" ({rec.slurm_state})" if rec.slurm_state in SLURM_SHOWN else "")
        table.add_row(str(i), rec.run_id, *(fmt_value(rec.params.get(n)) for n in names),
                      *([",".join(rec.jobs) or "-"] if jobs else []),
                      f"[{style}]{shown}[/{style}]" if style else shown,
                      f"{rec.metric:.4f}" if rec.metric is not None else "-")
    return table


def artifact_line(state: SweepState) -> str | None:
    """The sweep's best run's model in the local artifact store, if the runs keep one (charexp's train.py), and
    the run-scoped reference that samples it: never the store-wide best-test-loss, which may be another run's."""
    from charexp.errors import CharexpError
    from charexp.store.artifacts import BEST, ArtifactStore, run_alias, run_best_alias

    cwd = Path(state.cwd or ".")
    best = best_run(state)
    if best is None or run_alias(best.run_id) is None:
        return None
    run_dir = cwd / (best.run_dir or f"runs/{best.run_id}")  # an absolute run_dir stays itself
    config = RunDir(run_dir.parent, run_dir.name).read_config()
    name = config.get("artifact_name") or "charlstm"
    store = ArtifactStore(cwd / (config.get("artifacts_dir") or "artifacts"), name)
    try:
        if not store.index_path.is_file() or not store.run_versions(best.run_id):
            return None
        version = store.resolve_in_run(best.run_id, BEST)
        newest = store.resolve_in_run(best.run_id, "latest")
        # the run's own best epoch by its run-<id>-best alias (a W&B alias: the same reference works online)
        ref = run_best_alias(best.run_id)
        if store.read_index()["aliases"].get(ref) != version.version:  # a store written before that alias existed
            ref = run_alias(best.run_id) if version.version == newest.version else f"{run_alias(best.run_id)}:{BEST}"
    except CharexpError:
        return None
    if name != "charlstm":
        ref = f"{name}:{ref}" if ":" not in ref else f"{ref} --artifact-name {name}"
    loss = version.meta.get("test_loss")
    loss_text = f", test/loss {loss:.4f}" if isinstance(loss, (int, float)) else ""
    try:
        where = version.path.relative_to(cwd)
    except ValueError:
        where = version.path
    return (f"best run's model: {name}:{version.version} (run {best.run_id}, epoch {version.meta.get('epoch')}"
            f"{loss_text}) in {where}\n"
            f"  sample it: python sample.py --artifact {ref} KSKSKS")


def check_metric_seen(state: SweepState) -> None:
    """Once every run has ended: if none logged the sweep's metric, the sweep measured nothing (a misspelled
    metric.name), so say so in one sentence with what the runs did log, rather than exit 0."""
    from charexp.errors import CharexpError

    metric = state.metric.get("name")
    ended = [r for r in state.runs if r.ended]
    if not metric or not ended or len(ended) < len(state.runs) or any(r.metric is not None for r in state.runs):
        return
    logged = sorted({k for r in ended for k, v in r.summary.items()
                     if not k.startswith("_") and (isinstance(v, (int, float)) and not isinstance(v, bool)
                                                   or isinstance(v, dict) and "min" in v)})
    raise CharexpError(f"no run of sweep {state.sweep_id} logged the sweep's metric {metric!r}; the runs logged: "
                       f"{', '.join(logged) or 'nothing'}; fix metric.name in the sweep YAML")


def edge_lines(state: SweepState) -> list[str]:
    """A line for every varied parameter whose best value is the largest or smallest tried (charexp.report.edges)."""
    from charexp.report.edges import edge_notes

    tried = [(rec.params, rec.metric) for rec in state.runs if rec.state != "pending"]
    return edge_notes(tried, param_names(state), state.metric.get("goal") or "minimize")


def print_report(state: SweepState, console: Console, sweep_dir: Path) -> None:
    from charexp.report.edges import print_edges

    console.print(sweep_runs_table(state))
    best = best_run(state)
    metric = state.metric.get("name")
    if best is not None:
        params = ", ".join(f"{k}={fmt_value(v)}" for k, v in best.params.items())
        run_dir = Path(state.cwd or ".") / best.run_dir
        where = f"; {best.run_dir}" if best.run_dir and run_dir.is_dir() else ""
        console.print(f"best run: [bold]{best.run_id}[/bold]  {metric} {best.metric:.4f}  ({params}){where}",
                      highlight=False)
    elif state.runs:
        console.print(f"no run has reported {metric or 'a metric'} yet", highlight=False)
    print_edges(console, edge_lines(state))
    line = artifact_line(state)
    if line:
        console.print(line, highlight=False)
    console.print(f"sweep directory: {sweep_dir}  (state.json, logs/)", highlight=False)
