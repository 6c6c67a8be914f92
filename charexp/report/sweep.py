"""`charexp report SWEEP_DIR`: every run's report plus a comparison of the runs of one sweep.

A sweep directory (written by `charexp sweep`) holds sweep.yaml and state.json:
{"sweep_id", "project", "method", "metric": {"name", "goal"}, "config", "created", "finished",
 "runs": [{"run_id", "params", "state", "exit_code", "metric", "summary", "run_dir", "log", ...}]}.
This module writes SWEEP_DIR/report/: <run_id>/ (the single-run report), test_loss_all.png,
final_test_loss_vs_<param>.png for each swept parameter, parallel_coordinates.png, and runs.md (with
where to look next, edges.py, and the parameter-importance table, importance.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from charexp.atomic import atomic_write_text
from charexp.numbers import finite_or_none
from charexp.report.edges import edge_notes, edges_markdown
from charexp.report.groups import build_groups, groups_markdown, plot_groups
from charexp.report.importance import Importance, importance_markdown, param_importance
from charexp.report.parallel import plot_parallel
from charexp.report.param_plot import plot_param
from charexp.report.plots import LN2, bpc_axis, new_figure, nothing_yet, save, scale_to_training, series
from charexp.report.run import RunData, is_run_dir, load_run, write_report
from charexp.summary_view import fmt, metric_sort_key, param_text, swept_keys
from charexp.sweep.state import RunRecord, SweepState, load_state

LEGEND_RUNS = 8  # runs named on a comparison figure; more would hide the curves


@dataclass
class Guidance:
    """What the report says about the next sweep: edge lines and the parameter-importance table."""

    edges: list[str]
    importance: Importance


@dataclass
class SweepRun:
    entry: RunRecord  # the run's record in state.json
    data: RunData | None  # its run directory, when it could be found

    @property
    def run_id(self) -> str:
        return self.entry.run_id

    @property
    def params(self) -> dict[str, Any]:
        return self.entry.params or {}

    @property
    def state(self) -> str:
        return str(self.entry.state or (self.data.state if self.data else "unknown"))

    @property
    def final_test_loss(self) -> float | None:
        if self.data and self.data.final_test_loss is not None:
            return self.data.final_test_loss
        loss = (self.entry.summary or {}).get("test/loss")
        return finite_or_none(loss.get("min") if isinstance(loss, dict) else loss)

    @property
    def best_test_loss(self) -> float | None:
        best = self.data.best if self.data else None
        return best["test/loss"] if best else finite_or_none((self.entry.summary or {}).get("best_test_loss"))


def is_sweep_dir(path: Path) -> bool:
    return (path / "state.json").is_file()


def locate_run(entry: RunRecord, sweep_dir: Path, launched_from: str = "") -> Path | None:
    """The run's directory. Its run_dir is relative to where the sweep was launched: the state's cwd
    when recorded, else usually this cwd or the sweep directory's grandparent (sweep-runs/<id>/);
    without a run_dir, try runs/<run_id> (or the swept runs_dir)."""
    run_id = entry.run_id
    names = [entry.run_dir, str(Path((entry.params or {}).get("runs_dir") or "runs") / run_id)]
    bases = [Path(launched_from)] if launched_from else []
    bases += [Path.cwd(), sweep_dir.parent.parent, sweep_dir.parent, sweep_dir]
    for name in filter(None, names):
        for base in bases[:1] if Path(name).is_absolute() else bases:
            if is_run_dir(base / name):  # an absolute name ignores the base
                return base / name
    return None


def load_sweep(path: Path) -> tuple[SweepState, list[SweepRun]]:
    state = load_state(path, fix="the sweep runner may still be writing it, try again")
    runs = []
    for entry in state.runs:
        where = locate_run(entry, path, state.cwd)
        runs.append(SweepRun(entry, load_run(where) if where else None))
    return state, runs


def metric_of(run: SweepRun, name: str, goal: str) -> float | None:
    """The sweep's metric for a run: the runner's value, else the best logged value of that key."""
    value = finite_or_none(run.entry.metric)
    if value is None and run.data:
        _, ys = series(run.data.history, name)
        value = (max(ys) if goal == "maximize" else min(ys)) if ys else None
    return value


# --- figures ----------------------------------------------------------------------------------
def plot_test_loss_all(runs: list[SweepRun], params: list[str], path: Path) -> Path:
    """Every run's test/loss curve; the best LEGEND_RUNS in colour and named, the others in grey."""
    curves = [(run, *series(run.data.history, "test/loss")) for run in runs if run.data]
    curves = sorted((c for c in curves if c[1]), key=lambda c: min(c[2]))
    more = len(curves) > LEGEND_RUNS
    fig, ax = new_figure(f"test loss of every run{f' (the best {LEGEND_RUNS} in colour)' if more else ''}", "step",
                         "test/loss (nats per char)")
    for rank, (run, xs, ys) in enumerate(curves):
        if rank < LEGEND_RUNS:
            label = " ".join(f"{p}={param_text(run.params.get(p))}" for p in params)
            ax.plot(xs, ys, marker="o", markersize=3, linewidth=1.2, zorder=3, label=f"{run.run_id} {label}"[:60])
        else:
            ax.plot(xs, ys, marker="o", markersize=2, linewidth=0.8, color="0.7", zorder=2,
                    label=f"{len(curves) - LEGEND_RUNS} other runs" if rank == LEGEND_RUNS else None)
    if curves:
        scale_to_training(ax, [(xs, ys) for _, xs, ys in curves])
        ax.legend(fontsize=7, loc="best")
        bpc_axis(ax)
    else:
        nothing_yet(ax, "test/loss")
    return save(fig, path)


# --- markdown ---------------------------------------------------------------------------------
def runs_markdown(state: SweepState, runs: list[SweepRun], params: list[str], figures: list[str], sweep_dir: Path,
                  sections: str = "") -> str:
    metric = state.metric or {}
    name, goal = metric.get("name", "test/loss"), metric.get("goal", "minimize")
    ranked = sorted(runs, key=lambda r: metric_sort_key(metric_of(r, name, goal), goal))
    counts: dict[str, int] = {}
    for run in runs:
        counts[run.state] = counts.get(run.state, 0) + 1
    lines = [f"# Sweep {state.sweep_id}", "",
             f"Project {state.project or '-'}, method {state.method or '-'}, {goal} {name}. "
             f"Created {state.created or '-'}; {_finished(state.finished)}. "
             f"{len(runs)} runs: " + (", ".join(f"{n} {s}" for s, n in sorted(counts.items())) or "none") + ".", ""]
    if ranked and metric_of(ranked[0], name, goal) is not None:
        best = ranked[0]
        values = ", ".join(f"{p}={param_text(best.params.get(p))}" for p in params)
        lines += [f"Best: run **{best.run_id}** with {name} = {fmt(metric_of(best, name, goal))}"
                  + (f" ({values})" if params else "") + ".", ""]
    columns = params + [f"{name} ({goal})", "best test/loss (bpc)", "final test/loss", "exit", "report"]
    lines += ["| # | run | state | " + " | ".join(columns) + " |", "|---" * (9 + len(params) - 1) + "|"]
    for rank, run in enumerate(ranked, start=1):
        best = run.best_test_loss
        cells = [str(rank), run.run_id, run.state, *(param_text(run.params.get(p)) for p in params),
                 fmt(metric_of(run, name, goal)), f"{fmt(best)} ({fmt(best / LN2, 3)})" if best is not None else "-",
                 fmt(run.final_test_loss), fmt(run.entry.exit_code),
                 f"[summary]({_slug(run.run_id)}/summary.md)" if run.data else _log_link(run, sweep_dir)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines += ["", sections, "## Figures", "", *(f"![{f[:-4]}]({f})" for f in figures), ""]
    return "\n".join(lines)


def tried_runs(state: SweepState, runs: list[SweepRun]) -> list[tuple[dict[str, Any], float | None]]:
    """(params, metric) of every run that was started; the metric is None for a run without one (failed, say)."""
    metric = state.metric or {}
    name, goal = metric.get("name", "test/loss"), metric.get("goal", "minimize")
    return [(run.params, metric_of(run, name, goal)) for run in runs if run.state != "pending"]


def guidance(state: SweepState, runs: list[SweepRun], params: list[str]) -> Guidance:
    metric = state.metric or {}
    tried = tried_runs(state, runs)
    return Guidance(edge_notes(tried, params, metric.get("goal", "minimize")),
                    param_importance(tried, params, metric.get("name", "test/loss")))


def write_sweep_report(path: str | Path, progress: Callable[[int, int], None] | None = None
                       ) -> tuple[Path, SweepState, list[SweepRun], Guidance]:
    """Write SWEEP_DIR/report/ and return it, with the state and runs it was built from and its guidance.
    `progress(done, total)` is called after each run's report."""
    path = Path(path)
    state, runs = load_sweep(path)
    out = path / "report"
    out.mkdir(parents=True, exist_ok=True)
    for done, run in enumerate(runs, start=1):
        if run.data:
            write_report(run.data, out / _slug(run.run_id))
        if progress:
            progress(done, len(runs))
    params = swept_keys(state)
    figures = [plot_test_loss_all(runs, params, out / "test_loss_all.png").name]
    for name in params:
        figures.append(plot_param(name, params, runs, out / f"final_test_loss_vs_{_slug(name)}.png").name)
    metric = state.metric or {}
    name, goal = metric.get("name", "test/loss"), metric.get("goal", "minimize")
    if params:
        parallel = plot_parallel(tried_runs(state, runs), params, name, goal, out / "parallel_coordinates.png")
        figures.append(parallel.name)
    advice = guidance(state, runs, params)
    sections = edges_markdown(advice.edges, params) + "\n" + importance_markdown(advice.importance) + "\n"
    text = runs_markdown(state, runs, params, figures, path, sections)
    groups = build_groups(runs, params, lambda run: metric_of(run, name, goal), goal)
    if any(len(g.run_ids) > 1 for g in groups):  # replicates (runs that differ only in seed): their mean and spread
        figure = plot_groups(groups, out / "test_loss_groups.png").name
        text += "\n" + groups_markdown(groups, name, goal) + f"\n![{figure[:-4]}]({figure})\n"
    atomic_write_text(out / "runs.md", text)
    return out, state, runs, advice


def _finished(value: Any) -> str:
    """state.json's `finished`: a time, or true/false."""
    if value is True:
        return "finished"
    if not value:
        return "not finished"
    return f"finished {value}"


def _log_link(run: SweepRun, sweep_dir: Path) -> str:
    """For a run without a run directory: its log (relative to the sweep directory), when there is one."""
    log = str(run.entry.log or "")
    if log and not Path(log).is_absolute() and (sweep_dir / log).is_file():
        return f"no run directory; [log](../{log})"
    return "no run directory"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "param"
