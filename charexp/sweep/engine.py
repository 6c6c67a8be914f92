"""The runner's side of W&B's open-source sweep engine (the `sweeps` package): what it is told, what it answers.

Each run is shown to the engine as a `SweepRun`: its parameters, state, the metric's history
(one row per logged value: hyperband's iterations) and a summary where the metric is a plain
number (W&B's `{"min": x}` summaries are not comparable for the engine).

Hyperband's reasons: `sweeps.stop_runs` gives every run `info.copy()`, a shallow copy, so all runs share
one `lines` list ("Bands: ...", then "Run: <name> Step: <n> ..." for each running run in turn); each run's
reason is its own "Run: <name> " line, never the list's last.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from charexp.errors import CharexpError
from charexp.sweep.spec import SweepSpec, quiet_sweeps
from charexp.sweep.state import RunRecord, SweepState, new_id, to_plain
from charexp.sweep.watch import RunWatcher
from charexp.tracking.rundir import RunDir

# our states -> the engine's RunState (a run stopped early is "killed", as W&B's server records it)
ENGINE_STATES = {"pending": "pending", "running": "running", "finished": "finished", "failed": "failed",
                 "stopped": "killed", "preempted": "preempted"}


def engine_runs(spec: SweepSpec, state: SweepState, watchers: dict[str, RunWatcher]) -> list[Any]:
    sweeps = quiet_sweeps()
    name, runs = spec.metric_name, []
    for rec in state.runs:
        summary = dict(rec.summary)
        if name and rec.metric is not None:
            summary[name] = rec.metric
        history = watchers[rec.run_id].metric_rows(name) if name and rec.run_id in watchers else []
        runs.append(sweeps.SweepRun(name=rec.run_id, config={k: {"value": v} for k, v in rec.params.items()},
                                    state=ENGINE_STATES[rec.state], summary_metrics=summary, history=history,
                                    stopped=rec.state == "stopped", should_stop=rec.stop_requested))
    return runs


def propose(spec: SweepSpec, state: SweepState, watchers: dict[str, RunWatcher]) -> RunRecord | None:
    """The engine's next run as a new record (not yet added to the state); None when a grid is used up."""
    try:
        with warnings.catch_warnings():  # the GP fit's convergence chatter is not the user's business
            warnings.simplefilter("ignore")
            suggestion = quiet_sweeps().next_run(spec.config, engine_runs(spec, state, watchers), validate=True)
    except Exception as err:
        raise CharexpError(f"the sweeps engine could not propose a run: {str(err).splitlines()[0]}") from None
    if suggestion is None:
        return None
    values = to_plain({k: v["value"] for k, v in suggestion.config.items()})  # numpy scalars -> float/int
    params = {k: values[k] for k in spec.params if k in values} | values  # the YAML's order
    run_id = new_id({r.run_id for r in state.runs})
    run_dir = Path(spec.runs_dir(params, Path(state.cwd))) / run_id
    return RunRecord(run_id=run_id, params=params, run_dir=str(run_dir), log=f"logs/{run_id}.log")


def own_line(lines: list[str], name: str) -> str:
    """Run `name`'s line among hyperband's shared lines, with the engine's doubled spaces closed; "" if none."""
    prefix = f"Run: {name} "
    mine = [line for line in lines if line.startswith(prefix)]
    return " ".join(mine[-1].split()) if mine else ""


def has_ended(spec: SweepSpec, state: SweepState, rec: RunRecord, watcher: RunWatcher | None) -> bool:
    """Past its last step, though the runner has not reaped its process yet: W&B's exit record is in, or
    (charexp's train.py) its summary.json no longer says running. A stop now would reach a finished run.
    A relaunched run reads as ended until its new segment starts; hyperband judges it again at its next value."""
    if watcher is not None and watcher.exit_code() is not None:
        return True
    if not spec.is_charexp:
        return False
    path = Path(state.cwd or ".") / (rec.run_dir or f"runs/{rec.run_id}")  # an absolute run_dir stays itself
    return RunDir(path.parent, path.name).read_summary().state not in (None, "running")


def runs_to_stop(spec: SweepSpec, state: SweepState, watchers: dict[str, RunWatcher]) -> list[tuple[str, str]]:
    """(run id, hyperband's reason) for every running run that `sweeps.stop_runs` would stop, except
    runs that have already ended."""
    if not spec.early_terminate:
        return []
    stop = quiet_sweeps().stop_runs(spec.config, engine_runs(spec, state, watchers), validate=True)
    chosen = [(run.name, own_line((run.early_terminate_info or {}).get("lines") or [], run.name)) for run in stop]
    return [(name, why) for name, why in chosen if not has_ended(spec, state, state.run(name), watchers.get(name))]
