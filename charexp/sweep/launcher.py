"""What the runner needs from whatever starts its runs: local processes (workers.Workers) or SLURM jobs
(slurm_jobs.SlurmJobs). The runner decides what runs and what an ending means; a launcher starts, follows,
signals and forgets runs, and says how each one ended as far as it knows."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from charexp.sweep.launch import Launch
from charexp.sweep.slurm import JobInfo
from charexp.sweep.state import RunRecord


@dataclass
class Ended:
    """A run whose process or job is gone."""

    rec: RunRecord
    code: int | None  # its exit code where the launcher knows it
    known: bool  # False: the code is not the launcher's to know (an adopted process): read W&B's exit record
    interrupted: bool = False  # stopped by Ctrl-C / SIGTERM to the runner: continue it on --resume
    job: JobInfo | None = None  # SLURM's account of the ending
    wait: bool = True  # wait a moment for W&B's exit record (the run has only just ended)


class Launcher(Protocol):
    active: dict[str, Any]  # run id -> the launcher's handle, whose .rec is the run's record

    def __len__(self) -> int: ...

    def free_slot(self, count: int) -> int | None: ...

    def starting(self) -> bool: ...

    def resource_env(self, slot: int, workers: int) -> dict[str, str]: ...

    def start(self, rec: RunRecord, launch: Launch, cwd: Path, log: Path, header: str, slot: int) -> None: ...

    def reattach(self, rec: RunRecord) -> bool | Ended: ...

    def where(self, rec: RunRecord) -> str: ...

    def reap(self) -> list[Ended]: ...

    def stop(self, act: Any) -> None: ...

    def interrupt_all(self) -> None: ...

    def kill_all(self) -> list[RunRecord]: ...

    def enforce_stop_deadline(self) -> None: ...
