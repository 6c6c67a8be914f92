"""The offline sweep controller: propose with W&B's engine, launch, watch, stop early, requeue.

One loop, ticking every TICK_S: collect exits, read new metrics from the runs' own W&B files,
apply hyperband (`sweeps.stop_runs`) and the metric's target, and fill free workers with
requeued runs first, then `sweeps.next_run` proposals. Every change is written to state.json
before it takes effect, so a runner killed at any point resumes without losing or repeating a run.
"""

from __future__ import annotations

import os
import signal
import time
from enum import IntEnum
from pathlib import Path
from typing import Any

from rich.console import Console

from charexp.sweep.engine import propose, runs_to_stop
from charexp.sweep.launch import build_launch, log_tail, visible_gpus, wandb_files_dir
from charexp.sweep.launcher import Ended, Launcher
from charexp.sweep.outcome import settle
from charexp.sweep.spec import SweepSpec
from charexp.sweep.state import TERMINAL, RunRecord, SweepState, now_iso, save_state
from charexp.sweep.watch import SweepRunFiles
from charexp.sweep.workers import Workers
from charexp.tracking.rundir import RunDir

TICK_S = 0.1  # process exits are checked this often: the only per-run latency the runner adds
POLL_S = 0.5  # the runs' W&B files are read this often (a stat per file when nothing changed)
SAVE_EVERY_S = 2.0  # metric updates are saved at most this often (state changes are saved at once)


class Interrupt(IntEnum):
    """How far the user has asked the runner to stop: each Ctrl-C goes one level up (SIGTERM: STOP_RUNS)."""

    NONE = 0
    NO_NEW_RUNS = 1  # let the running runs end
    STOP_RUNS = 2  # SIGTERM them: they save their state and continue on --resume
    KILL_RUNS = 3  # SIGKILL them: they restart from their last saved state on --resume


def launcher_for(state: SweepState, sweep_dir: Path) -> Launcher:
    """Local processes, or SLURM jobs (charexp.sweep.slurm_jobs), as the sweep was started."""
    if state.launcher == "slurm":
        from charexp.sweep.slurm import SlurmOptions
        from charexp.sweep.slurm_jobs import SlurmJobs

        return SlurmJobs(SlurmOptions.from_dict(state.slurm), sweep_dir, state.sweep_id)
    return Workers(visible_gpus(), state.sweep_id)


class SweepRunner:
    def __init__(self, spec: SweepSpec, state: SweepState, sweep_dir: Path, console: Console, offline: bool):
        self.spec, self.state, self.dir, self.console, self.offline = spec, state, sweep_dir, console, offline
        self.cwd = Path(state.cwd)
        self.root = Path(state.wandb_dir)
        self.workers = launcher_for(state, sweep_dir)
        self.files = SweepRunFiles(wandb_files_dir(self.root), spec.metric_name, spec.goal, say=self.say)
        self.exhausted = False
        self.target_hit: str | None = None
        self.failing = False
        self.failed_in_row = self.failed = self.finished = 0
        self.level = Interrupt.NONE
        self.first_signal: int | None = None  # the runner exits 128 + this, as the runs do
        self._handled_level = Interrupt.NONE
        self._saved_at = 0.0
        self._dirty = False
        self.max_failures = int(os.environ.get("WANDB_AGENT_MAX_INITIAL_FAILURES", "5"))

    # --- bookkeeping -----------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self.console.print(f"[dim]{time.strftime('%H:%M:%S')}[/dim] {text}", highlight=False)

    def save(self, force: bool = True) -> None:
        if force or (self._dirty and time.monotonic() - self._saved_at >= SAVE_EVERY_S):
            save_state(self.dir, self.state)
            self._saved_at, self._dirty = time.monotonic(), False

    def refresh(self, rec: RunRecord) -> bool:
        """Read the run's new W&B records into its record (saved with the next save)."""
        changed = self.files.refresh(rec)
        self._dirty = self._dirty or changed
        return changed

    # --- deciding what runs next -------------------------------------------------------------------
    def may_propose(self) -> bool:
        total = len(self.state.runs)
        capped = any(cap is not None and total >= cap for cap in (self.state.count, self.spec.run_cap))
        return not (self.exhausted or self.target_hit or self.failing or capped)

    def waiting(self) -> list[RunRecord]:
        """Runs to (re)launch with their own id before any new proposal: requeued, or recorded but not started."""
        return [r for r in self.state.runs if r.run_id not in self.workers.active
                and (r.state == "pending" or (r.state == "preempted" and r.requeue))]

    def propose(self) -> RunRecord | None:
        rec = propose(self.spec, self.state, self.files.watchers)
        if rec is not None:
            self.state.runs.append(rec)
            self.save()  # recorded before its process exists: a runner killed now relaunches it, never loses it
        return rec

    def fill_slots(self) -> None:
        while not self.workers.starting() and (slot := self.workers.free_slot(self.state.workers)) is not None:
            waiting = self.waiting()
            rec = waiting[0] if waiting else (self.propose() if self.may_propose() else None)
            if rec is None:
                if self.may_propose():
                    self.exhausted = True
                    self.say(f"{self.spec.method} search space exhausted; waiting for the last runs")
                return
            self.launch(rec, slot)

    # --- runs starting and ending ------------------------------------------------------------------
    def launch(self, rec: RunRecord, slot: int) -> None:
        launch = build_launch(command=self.spec.command, program=self.spec.program, params=rec.params,
                              sweep_id=self.state.sweep_id, run_id=rec.run_id, project=self.state.project,
                              entity=self.spec.entity, offline=self.offline, root=self.root,
                              extra_env=self.workers.resource_env(slot, self.state.workers))
        again = rec.launches > 0
        header = f"run {rec.run_id} of sweep {self.state.sweep_id}, launch {rec.launches + 1}"
        try:
            self.workers.start(rec, launch, self.cwd, self.dir / rec.log, header, slot)
        except OSError as err:
            rec.state, rec.ended, rec.requeue = "failed", now_iso(), False
            self.save()
            self.say(f"[red]run {rec.run_id} could not start[/red]: {str(err) or type(err).__name__}")
            self.note_failure(rec)
            return
        rec.state, rec.launches, rec.requeue, rec.exit_code, rec.ended = "running", rec.launches + 1, False, None, None
        rec.started = rec.started or now_iso()
        self.save()
        params = " ".join(f"{k}={v}" for k, v in rec.params.items())
        job = f" as SLURM job {rec.job_id}" if self.state.launcher == "slurm" else ""
        if again:
            verb = "relaunched (resumes from its saved state if it has one)"
        else:
            verb = f"started ({len(self.state.runs)}{self.total_hint()})"
        self.say(f"run [bold]{rec.run_id}[/bold] {verb}{job}: {params}  [dim]log {self.dir / rec.log}[/dim]")

    def total_hint(self) -> str:
        caps = [c for c in (self.state.count, self.spec.run_cap) if c is not None]
        return f"/{min(caps)}" if caps else ""

    def reap(self) -> bool:
        """Settle every run whose process or job has ended; True if any did."""
        ended = self.workers.reap()
        for end in ended:
            self.settle_end(end)
        return bool(ended)

    def settle_end(self, end: Ended) -> None:
        if end.known:
            self.refresh(end.rec)
            code = end.code
        else:  # not the launcher's to know: the exit code is in the run's W&B files, if anywhere
            code = self.files.exit_code(end.rec, wait=end.wait)
            self._dirty = True
        self.classify(end.rec, code, interrupted=end.interrupted, end=end)

    def classify(self, rec: RunRecord, code: int | None, interrupted: bool = False, end: Ended | None = None) -> None:
        """A run's process is gone: record how it ended, and requeue or count it."""
        finished_locally = code is None and self.finished_locally(rec)
        if self.state.launcher == "slurm":
            from charexp.sweep.slurm_jobs import settle_job

            note = settle_job(rec, end.job if end else None, code, interrupted=interrupted,
                              finished_locally=finished_locally, metric=self.metric_text(rec))
        else:
            note = settle(rec, code, interrupted=interrupted, finished_locally=finished_locally,
                          metric=self.metric_text(rec))
        if rec.state == "failed":
            note += f"; {log_tail(self.dir / rec.log)}"
        elif rec.state == "finished":
            self.failed_in_row, self.finished = 0, self.finished + 1
        self.save()
        self.say(f"run [bold]{rec.run_id}[/bold] {note}")
        if rec.state == "failed":
            self.note_failure(rec)

    def finished_locally(self, rec: RunRecord) -> bool:
        """charexp's train.py records completion in its run directory's summary.json before W&B's exit record."""
        path = self.cwd / (rec.run_dir or f"runs/{rec.run_id}")  # an absolute run_dir stays itself
        return self.spec.is_charexp and RunDir(path.parent, path.name).read_summary().state == "finished"

    def note_failure(self, rec: RunRecord) -> None:
        """Like `wandb agent`: give up once the first runs all fail (WANDB_AGENT_MAX_INITIAL_FAILURES)."""
        self.failed += 1
        self.failed_in_row += 1
        if self.failed_in_row >= self.max_failures and self.failed >= self.finished and not self.failing:
            self.failing = True
            self.say(f"[red]{self.failed_in_row} runs failed in a row; no new runs[/red] (see {self.dir / rec.log})")

    def metric_text(self, rec: RunRecord) -> str:
        name = self.spec.metric_name
        return f"{name} {rec.metric:.4f}" if name and rec.metric is not None else f"{name or 'no metric'} -"

    # --- early termination, target, interrupts -----------------------------------------------------
    def early_terminate(self) -> None:
        if not self.workers.active:
            return
        for run_id, why in runs_to_stop(self.spec, self.state, self.files.watchers):
            act = self.workers.active.get(run_id)
            if act is None or act.rec.stop_requested:
                continue
            act.rec.stop_requested = True
            self.save()  # before the signal: a resumed runner must not take the stop for a crash
            self.workers.stop(act)
            self.say(f"run [bold]{run_id}[/bold] stopped by hyperband (SIGTERM): {why}")

    def check_target(self) -> None:
        target, name = self.spec.target, self.spec.metric_name
        if target is None or self.target_hit:
            return
        maximize = self.spec.goal == "maximize"
        for rec in self.state.runs:
            if rec.metric is not None and (rec.metric >= target if maximize else rec.metric <= target):
                self.target_hit = rec.run_id
                self.say(f"run {rec.run_id} reached the target {name} {target:g}; no new runs")
                return

    def on_signal(self, signum: int, frame: Any) -> None:
        first = Interrupt.STOP_RUNS if signum == signal.SIGTERM else Interrupt.NO_NEW_RUNS
        self.first_signal = self.first_signal or signum
        self.level = Interrupt(min(max(self.level + 1, first), Interrupt.KILL_RUNS))

    def handle_interrupts(self) -> None:
        if self.level == self._handled_level:
            return
        self._handled_level = self.level
        running = len(self.workers)
        if self.level is Interrupt.NO_NEW_RUNS:
            self.say(f"Ctrl-C: no new runs; waiting for {running} running run(s) to end. Ctrl-C again stops them "
                     f"(they save their state and continue on charexp sweep --resume {self.dir})")
        elif self.level is Interrupt.STOP_RUNS:
            self.say(f"stopping {running} running run(s) (SIGTERM: they save their state); once more kills them")
            self.workers.interrupt_all()
        else:
            for rec in self.workers.kill_all():
                rec.state, rec.requeue, rec.pid, rec.job_id = "preempted", True, None, None
            self.save()
            self.say("killed the running runs; they restart from their last saved state on --resume")

    # --- the loop ------------------------------------------------------------------------------------
    def recover(self) -> None:
        """On --resume: follow runs that outlived the old runner, settle the ones that ended, queue the rest."""
        for rec in self.state.runs:
            if rec.state in TERMINAL or (rec.state == "preempted" and not rec.requeue):
                self.refresh(rec)  # their histories feed hyperband and bayes
                continue
            found = self.workers.reattach(rec)
            if found is True:
                self.refresh(rec)
                self.say(f"run [bold]{rec.run_id}[/bold] is still running ({self.workers.where(rec)}); following it")
            elif isinstance(found, Ended):  # its job ended while the runner was away; SLURM says how
                self.settle_end(found)
            elif rec.state == "running" or (rec.state == "pending" and self.files.watcher(rec.run_id).poll()):
                self.classify(rec, self.files.exit_code(rec, wait=False))  # gone while the runner was away
        self.save()

    def done(self) -> bool:
        if self.workers.active or self.level is Interrupt.KILL_RUNS:
            return not self.workers.active
        return self.level is not Interrupt.NONE or self.failing or not (self.waiting() or self.may_propose())

    def run(self) -> str:
        """Run the sweep to its end; returns 'finished', 'failing', or 'interrupted' / 'terminated' (SIGINT /
        SIGTERM to the runner)."""
        self.recover()
        previous = {s: signal.signal(s, self.on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
        polled = 0.0
        try:
            while True:
                self.handle_interrupts()
                changed = False
                if time.monotonic() - polled >= POLL_S:
                    changed = any([self.refresh(a.rec) for a in list(self.workers.active.values())])
                    polled = time.monotonic()
                if self.reap() or changed:
                    self.check_target()
                    self.early_terminate()
                self.workers.enforce_stop_deadline()
                if self.level is Interrupt.NONE and not self.failing:
                    self.fill_slots()
                if self.done():
                    break
                self.save(force=False)
                time.sleep(TICK_S)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if self.level is not Interrupt.NONE:
            outcome = "terminated" if self.first_signal == signal.SIGTERM else "interrupted"
        else:
            outcome = "failing" if self.failing else "finished"
        self.state.finished = outcome == "finished"
        self.save()
        return outcome
