"""Runs as SLURM jobs (`charexp sweep --launcher slurm`): the same argv and environment a local worker gets,
submitted with sbatch, followed with squeue, stopped with `scancel --signal=TERM --batch`.

SLURM places and starts the jobs; the runner keeps W&B's engine and at most --workers jobs in flight. The job
id is in state.json before the runner goes on, and each job is named charexp-<sweep>-<run>-<launch>, so a
runner killed between sbatch and its save finds the job by name on --resume instead of submitting it again.
"""

from __future__ import annotations

import shlex
import time
from dataclasses import dataclass
from pathlib import Path

from charexp.sweep import slurm
from charexp.sweep.launch import Launch
from charexp.sweep.launcher import Ended
from charexp.sweep.outcome import MAX_REQUEUES, exit_description, settle
from charexp.sweep.state import RunRecord, now_iso

POLL_S = 1.0  # squeue at most this often: one call for all the sweep's jobs, light on the controller
KILL_AFTER_S = 120.0  # a stopped run that ignores SIGTERM this long is cancelled
# endings that are no fault of the run: it saved its state on SIGTERM (or has an older one), so it continues
REQUEUE_STATES = {"TIMEOUT": "timed out", "PREEMPTED": "preempted by SLURM", "NODE_FAIL": "lost with its node",
                  "BOOT_FAIL": "lost: its node did not boot"}


@dataclass
class Job:
    rec: RunRecord
    job_id: str
    stop_sent: float | None = None
    interrupted: bool = False


def job_name(sweep_id: str, run_id: str, launch: int) -> str:
    return f"charexp-{sweep_id}-{run_id}-{launch}"


class SlurmJobs:
    """The sweep's jobs in flight (queued or running), by run id."""

    def __init__(self, options: slurm.SlurmOptions, sweep_dir: Path, sweep_id: str) -> None:
        self.options, self.dir, self.sweep_id = options, sweep_dir.absolute(), sweep_id
        self.active: dict[str, Job] = {}
        self._polled = 0.0

    def __len__(self) -> int:
        return len(self.active)

    def free_slot(self, count: int) -> int | None:
        used = {j.rec.worker for j in self.active.values()}
        return None if len(self.active) >= count else min(set(range(count)) - used, default=None)

    def starting(self) -> bool:
        return False  # SLURM spaces the starts; nothing to wait for here

    def resource_env(self, slot: int, workers: int) -> dict[str, str]:
        """Threads to match the CPUs the job asks for (SLURM sets CUDA_VISIBLE_DEVICES for its GPUs)."""
        threads = str(self.options.cpus or 1)
        return {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}

    def where(self, rec: RunRecord) -> str:
        return f"SLURM job {rec.job_id}"

    def start(self, rec: RunRecord, launch: Launch, cwd: Path, log: Path, header: str, slot: int) -> None:
        """Write the job script, sbatch it, record the job id; SlurmError (an OSError) if SLURM refuses."""
        number = rec.launches + 1
        log = log.absolute()
        log.parent.mkdir(parents=True, exist_ok=True)
        script = self.dir / "jobs" / f"{rec.run_id}-{number}.sh"
        script.parent.mkdir(parents=True, exist_ok=True)
        script.write_text(slurm.job_script(launch.argv, cwd))
        with open(log, "a") as out:
            out.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {header}\n=== {shlex.join(launch.argv)}\n")
        name = job_name(self.sweep_id, rec.run_id, number)
        job_id = slurm.submit(slurm.sbatch_argv(self.options, script, name, log, cwd), launch.env)
        rec.job_id, rec.jobs, rec.worker = job_id, [*rec.jobs, job_id], slot
        rec.slurm_state = rec.slurm_reason = None
        self.active[rec.run_id] = Job(rec, job_id)

    def reattach(self, rec: RunRecord) -> bool | Ended:
        """On --resume: follow the run's job if it is still queued or running (True); how it ended if it ended
        while the runner was away; False if SLURM never had it or has forgotten it."""
        if rec.state != "running":  # recorded, maybe submitted, but the job id not saved
            found = slurm.find_job(job_name(self.sweep_id, rec.run_id, rec.launches + 1))
            if found is None:
                return False
            rec.state, rec.job_id, rec.launches = "running", found, rec.launches + 1
            rec.jobs = [*rec.jobs, found] if found not in rec.jobs else rec.jobs
            rec.started = rec.started or now_iso()
        if not rec.job_id:
            return False
        known = slurm.query([rec.job_id]) or {}
        info = known.get(rec.job_id)
        if info is not None and not info.ended:
            self.active[rec.run_id] = Job(rec, rec.job_id)
            return True
        if info is None or info.code is None:
            info = slurm.ended_job(rec.job_id) or info
        if info is None:
            return False
        return Ended(rec, info.code, known=info.code is not None, job=info, wait=False)

    def reap(self) -> list[Ended]:
        """Jobs that SLURM has ended, with its account of each; asks the controller at most every POLL_S."""
        if not self.active or time.monotonic() - self._polled < POLL_S:
            return []
        self._polled = time.monotonic()
        try:
            known = slurm.query([j.job_id for j in self.active.values()])
        except slurm.SlurmError:
            known = None
        if known is None:  # no answer this time: nothing is concluded from silence
            return []
        ended = []
        for run_id, job in list(self.active.items()):
            info = known.get(job.job_id)
            if info is not None and not info.ended:
                continue
            if info is None or info.code is None:
                try:
                    info = slurm.ended_job(job.job_id) or info
                except slurm.SlurmError:
                    continue
            del self.active[run_id]
            code = info.code if info else None
            ended.append(Ended(job.rec, code, known=code is not None, interrupted=job.interrupted, job=info))
        return ended

    def stop(self, job: Job) -> None:
        """SIGTERM to the run (it saves and exits 143); a job still queued is simply cancelled."""
        job.stop_sent = time.monotonic()
        if not slurm.signal_job(job.job_id):
            slurm.cancel(job.job_id)

    def interrupt_all(self) -> None:
        for job in self.active.values():
            job.interrupted = True
            if not slurm.signal_job(job.job_id):
                slurm.cancel(job.job_id)

    def kill_all(self) -> list[RunRecord]:
        for job in self.active.values():
            slurm.cancel(job.job_id)
        recs = [job.rec for job in self.active.values()]
        self.active.clear()
        return recs

    def enforce_stop_deadline(self) -> None:
        for job in self.active.values():
            if job.stop_sent is not None and time.monotonic() - job.stop_sent > KILL_AFTER_S:
                slurm.cancel(job.job_id)
                job.stop_sent = None


def settle_job(rec: RunRecord, info: slurm.JobInfo | None, code: int | None, *, interrupted: bool,
               finished_locally: bool, metric: str) -> str:
    """Record how a run's job ended, SLURM's word first (cancelled from outside, timed out, preempted, node lost),
    then the exit code as for a local run (outcome.settle); returns a line for the console."""
    rec.slurm_state = info.state if info else None
    rec.slurm_reason = info.reason if info else None
    job = f"SLURM job {rec.job_id}: {info.describe()}" if info else f"SLURM job {rec.job_id}: SLURM no longer knows it"
    state = info.state if info else None
    runner_asked = rec.stop_requested or interrupted
    if state == "OUT_OF_MEMORY" and not runner_asked:
        rec.exit_code, rec.state, rec.requeue, rec.ended = code, "failed", False, now_iso()
        return f"[red]failed[/red] (out of memory; {job})"
    if state == "CANCELLED" and not runner_asked and code != 0 and not finished_locally:
        rec.exit_code, rec.state, rec.requeue, rec.ended = code, "preempted", False, now_iso()
        return f"cancelled outside the sweep ({job}; {exit_description(code)}); not relaunched"
    if state in REQUEUE_STATES and not runner_asked and code != 0 and not finished_locally:
        rec.exit_code, rec.state = code, "preempted"
        what = REQUEUE_STATES[state]
        if rec.requeues < MAX_REQUEUES:
            rec.requeue, rec.requeues = True, rec.requeues + 1
            return f"{what} ({job}); requeued with the same id, it resumes from its saved state"
        rec.requeue, rec.ended = False, now_iso()
        return f"{what} again ({job}); not requeued"
    note = settle(rec, code, interrupted=interrupted, finished_locally=finished_locally, metric=metric)
    return f"{note} ({job})" if rec.state != "finished" else note
