"""The sweep's run processes: which worker slot each holds, signalling them, noticing when they end.

The runner decides what to run and what an ending means; this module only handles processes. A run is
either the runner's own child, or a process adopted from a runner that was killed (known by pid and
start time, so a recycled pid is never mistaken for it).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from charexp.sweep.launch import Launch, find_run_process, is_alive, process_start_time, resource_env, start
from charexp.sweep.launcher import Ended
from charexp.sweep.state import RunRecord

STAGGER_S = 1.0  # runs start at least this far apart, so their startup (imports, data loading) does not collide
KILL_AFTER_S = 120.0  # a stopped run that ignores SIGTERM this long gets SIGKILL


@dataclass
class Active:
    rec: RunRecord
    proc: subprocess.Popen | None  # None: a run adopted from a runner that was killed
    launched: float = -STAGGER_S
    stop_sent: float | None = None
    interrupted: bool = False  # stopped by Ctrl-C / SIGTERM to the runner: continue it on --resume


class Workers:
    """The running runs by run id, each on a worker slot 0..count-1."""

    def __init__(self, gpus: list[str] | None = None, sweep_id: str = "") -> None:
        self.active: dict[str, Active] = {}
        self.gpus, self.sweep_id = gpus or [], sweep_id

    def __len__(self) -> int:
        return len(self.active)

    def free_slot(self, count: int) -> int | None:
        if len(self.active) >= count:
            return None
        used = {a.rec.worker for a in self.active.values()}
        return min(set(range(count)) - used, default=None)

    def starting(self) -> bool:
        """A run started less than STAGGER_S ago is still starting: let it get going first."""
        return any(time.monotonic() - a.launched < STAGGER_S for a in self.active.values())

    def resource_env(self, slot: int, workers: int) -> dict[str, str]:
        return resource_env(slot, workers, self.gpus)

    def where(self, rec: RunRecord) -> str:
        return f"pid {rec.pid}"

    def start(self, rec: RunRecord, launch: Launch, cwd: Path, log: Path, header: str, slot: int) -> None:
        """Start the run's process on `slot` and record its pid; OSError if it cannot start."""
        proc = start(launch, cwd, log, header)
        rec.pid, rec.pid_start, rec.worker = proc.pid, process_start_time(proc.pid), slot
        self.active[rec.run_id] = Active(rec, proc, launched=time.monotonic())

    def reattach(self, rec: RunRecord) -> bool:
        """On --resume: follow the run's process if it outlived the old runner (True). A run recorded just before
        the old runner died may have a process it never recorded: found by its environment, never started twice."""
        if rec.state != "running" and (pid := find_run_process(self.sweep_id, rec.run_id)):
            rec.state, rec.pid, rec.pid_start = "running", pid, process_start_time(pid)
        if rec.state == "running" and is_alive(rec.pid, rec.pid_start):
            self.active[rec.run_id] = Active(rec, None)
            return True
        return False

    def reap(self) -> list[Ended]:
        """Forget every run whose process has ended; each with its exit code (unknown for an adopted one)."""
        ended = []
        for run_id, act in list(self.active.items()):
            if act.proc is not None:
                code = act.proc.poll()
                if code is None:
                    continue
            elif is_alive(act.rec.pid, act.rec.pid_start):
                continue
            else:
                code = None
            del self.active[run_id]
            ended.append(Ended(act.rec, code, known=act.proc is not None, interrupted=act.interrupted))
        return ended

    def stop(self, act: Active) -> None:
        """SIGTERM (the run saves its state and exits); SIGKILL follows after KILL_AFTER_S."""
        act.stop_sent = time.monotonic()
        send(act, signal.SIGTERM)

    def interrupt_all(self) -> None:
        for act in self.active.values():
            act.interrupted = True
            send(act, signal.SIGTERM)

    def kill_all(self) -> list[RunRecord]:
        """SIGKILL every run and forget them; their records, for the caller to requeue."""
        for act in self.active.values():
            send(act, signal.SIGKILL)
        recs = [act.rec for act in self.active.values()]
        self.active.clear()
        return recs

    def enforce_stop_deadline(self) -> None:
        for act in self.active.values():
            if act.stop_sent is not None and time.monotonic() - act.stop_sent > KILL_AFTER_S:
                send(act, signal.SIGKILL)
                act.stop_sent = None


def send(act: Active, sig: int) -> None:
    """Signal the run's process; one that is already gone is no error."""
    try:
        if act.proc is not None:
            act.proc.send_signal(sig)
        elif is_alive(act.rec.pid, act.rec.pid_start):
            os.kill(act.rec.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
