"""SLURM's command line, as plain functions: sbatch, squeue, scontrol, sacct, scancel, and their output parsed.

Nothing here schedules anything: SLURM decides where and when a run's job starts. The runner only submits,
asks, signals and cancels, with the commands a user would type, so that any SLURM cluster works (no REST API,
no accounting database needed: `sacct` is asked only for jobs the controller has already forgotten).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

COMMANDS = ("sbatch", "squeue", "scontrol", "scancel")
TIMEOUT_S = 30.0  # a controller that has not answered by then is busy; the runner asks again next poll
# states in which a job will not run again (JOB_STATE_BASE in slurm.h); everything else may still run
ENDED = frozenset({"COMPLETED", "CANCELLED", "FAILED", "TIMEOUT", "PREEMPTED", "NODE_FAIL", "BOOT_FAIL",
                   "DEADLINE", "OUT_OF_MEMORY", "REVOKED"})
NO_REASON = ("", "None", "(null)")


class SlurmError(OSError):
    """A SLURM command failed; OSError, so the runner treats a failed sbatch like a program that cannot start."""


@dataclass
class SlurmOptions:
    """What each run's job asks for; stored in state.json so that --resume submits the same way."""

    partition: str | None = None
    cpus: int | None = None  # --cpus-per-task; also the run's OMP_NUM_THREADS
    gpus: int | None = None  # --gpus-per-task (SLURM sets CUDA_VISIBLE_DEVICES)
    time: str | None = None  # --time, SLURM's formats (MM, HH:MM:SS, D-HH)
    extra: list[str] = field(default_factory=list)  # further sbatch arguments, passed as given

    @classmethod
    def from_dict(cls, data: dict) -> "SlurmOptions":
        """From state.json: known fields only (a hand-edited file must not crash the runner)."""
        known = {f: data[f] for f in ("partition", "cpus", "gpus", "time") if f in data}
        return cls(**known, extra=[str(a) for a in data.get("extra") or [] if isinstance(a, (str, int, float))])

    def args(self) -> list[str]:
        out = [f"--partition={self.partition}"] if self.partition else []
        out += [f"--cpus-per-task={self.cpus}"] if self.cpus else []
        out += [f"--gpus-per-task={self.gpus}"] if self.gpus else []
        out += [f"--time={self.time}"] if self.time else []
        return out + list(self.extra)


@dataclass
class JobInfo:
    job_id: str
    state: str  # SLURM's base state, e.g. RUNNING, COMPLETED, CANCELLED (a "CANCELLED by 0" keeps its word)
    reason: str | None = None  # SLURM's reason (NonZeroExitCode, TimeLimit, BeginTime, ...); None when none
    exit_code: str | None = None  # "code:signal" as SLURM prints it
    restarts: int = 0

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    @property
    def code(self) -> int | None:
        """The exit code; None for a cancelled job's 0:0 (a job cancelled while queued, or before SLURM saw the
        program's own code), which must not read as a run that finished."""
        code = parse_exit_code(self.exit_code)
        return None if self.state == "CANCELLED" and code == 0 else code

    def describe(self) -> str:
        return f"SLURM {self.state}" + (f", {self.reason}" if self.reason else "")


# --- parsing ---------------------------------------------------------------------------------------
def parse_exit_code(text: str | None) -> int | None:
    """SLURM's "code:signal" as a process return code: the code, or -signal when a signal ended the job."""
    if not text or ":" not in text:
        return None
    code, _, sig = text.strip().partition(":")
    try:
        code_n, sig_n = int(code), int(sig)
    except ValueError:
        return None
    return -sig_n if sig_n else code_n


def base_state(text: str) -> str:
    """"CANCELLED by 0" and "CANCELLED+" read as CANCELLED."""
    words = text.strip().split()
    return words[0].rstrip("+") if words else ""


def clean_reason(text: str | None) -> str | None:
    return None if text is None or text.strip() in NO_REASON else text.strip()


def parse_sbatch(stdout: str) -> str:
    """`sbatch --parsable` prints "jobid" or "jobid;cluster"."""
    line = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    job_id = line.split(";")[0].strip()
    if not job_id.isdigit():
        raise SlurmError(f"sbatch printed no job id ({stdout.strip()[:200]!r})")
    return job_id


SQUEUE_FORMAT = "%i|%T|%r|%j"


def parse_squeue(stdout: str) -> dict[str, JobInfo]:
    """Lines of `squeue -h -o '%i|%T|%r|%j'`: job id, state, reason, name."""
    jobs = {}
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 3 and parts[0]:
            jobs[parts[0]] = JobInfo(parts[0], base_state(parts[1]), clean_reason(parts[2]))
    return jobs


def parse_scontrol(stdout: str) -> JobInfo | None:
    """`scontrol -o show job ID`: one line of Key=Value pairs (values have no spaces, except Command and
    a few trailing ones, which are not read here)."""
    pairs = {}
    for token in stdout.split():
        key, sep, value = token.partition("=")
        if sep and key not in pairs:
            pairs[key] = value
    if "JobId" not in pairs or "JobState" not in pairs:
        return None
    restarts = pairs.get("Restarts", "0")
    return JobInfo(pairs["JobId"], base_state(pairs["JobState"]), clean_reason(pairs.get("Reason")),
                   pairs.get("ExitCode"), int(restarts) if restarts.isdigit() else 0)


SACCT_FIELDS = "JobIDRaw,State,ExitCode,Reason"


def parse_sacct(stdout: str) -> dict[str, JobInfo]:
    """`sacct -X -n -P -o JobIDRaw,State,ExitCode,Reason`: one line per job (the last line of a requeued job wins)."""
    jobs = {}
    for line in stdout.splitlines():
        parts = line.strip().split("|")
        if len(parts) >= 3 and parts[0].isdigit():
            jobs[parts[0]] = JobInfo(parts[0], base_state(parts[1]), clean_reason(parts[3] if len(parts) > 3 else None),
                                     parts[2])
    return jobs


def job_script(argv: list[str], cwd: Path) -> str:
    """The batch script: the run's argv exec'd, so that the script's pid is the run's, and
    `scancel --signal=TERM --batch` reaches the program itself (a shell would hold the signal until it exits)."""
    return ("#!/bin/sh\n"
            "# written by charexp sweep --launcher slurm: the command `wandb agent` would run for this run\n"
            'echo "=== $(date +%Y-%m-%dT%H:%M:%S) SLURM job $SLURM_JOB_ID on $(hostname),'
            ' restart ${SLURM_RESTART_COUNT:-0}"\n'
            f"cd {shlex.quote(str(cwd))} || exit 1\n"
            f"exec {shlex.join(argv)}\n")


def sbatch_argv(options: SlurmOptions, script: Path, name: str, log: Path, cwd: Path) -> list[str]:
    # --export=ALL: the job gets the environment sbatch is started with (the run's WANDB_* and the rest);
    # --requeue: a preempted or failed node puts the job back in the queue; the run resumes under the same id
    return ["sbatch", "--parsable", f"--job-name={name}", f"--output={log}", "--open-mode=append", f"--chdir={cwd}",
            "--export=ALL", "--requeue", "--ntasks=1", *options.args(), str(script)]


# --- the commands ------------------------------------------------------------------------------------
def missing_commands() -> list[str]:
    return [c for c in COMMANDS if shutil.which(c) is None]


def _run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=TIMEOUT_S, env=env,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{argv[0]} did not answer within {TIMEOUT_S:g} s") from None


def _error(result: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (result.stderr or result.stdout or "").splitlines() if ln.strip()]
    return lines[-1].strip() if lines else f"exit {result.returncode}"


def check_cluster(options: SlurmOptions) -> str | None:
    """Why runs cannot be submitted with these options (commands missing, no controller, options SLURM
    refuses), in one phrase; None when `sbatch --test-only` accepts them."""
    missing = missing_commands()
    if missing:
        return f"the SLURM commands {', '.join(missing)} are not on PATH"
    probe = _run(["sbatch", "--test-only", "--ntasks=1", *options.args(), "--wrap=true"])
    return None if probe.returncode == 0 else f"sbatch --test-only refused: {_error(probe)}"


def submit(argv: list[str], env: dict[str, str]) -> str:
    """Run sbatch (with the run's environment, exported to the job); the job id."""
    result = _run(argv, env=env)
    if result.returncode != 0:
        raise SlurmError(f"sbatch failed: {_error(result)}")
    return parse_sbatch(result.stdout)


def query(job_ids: list[str]) -> dict[str, JobInfo] | None:
    """What the controller knows of these jobs (recently ended ones too); None when squeue failed.

    A job missing from the answer has been forgotten by the controller (MinJobAge): ask `ended_job`."""
    if not job_ids:
        return {}
    result = _run(["squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", SQUEUE_FORMAT])
    if result.returncode != 0:
        # squeue fails outright when every listed job is unknown; any other failure is "no answer"
        return {} if "Invalid job id" in (result.stderr or "") else None
    return {k: v for k, v in parse_squeue(result.stdout).items() if k in job_ids}


def ended_job(job_id: str) -> JobInfo | None:
    """A job's final state and exit code: scontrol while the controller remembers it, else sacct (where
    accounting is configured); None when neither knows the job."""
    result = _run(["scontrol", "-o", "show", "job", job_id])
    info = parse_scontrol(result.stdout) if result.returncode == 0 else None
    if info is not None and info.job_id == job_id:
        return info
    if shutil.which("sacct") is None:
        return None
    result = _run(["sacct", "-X", "-n", "-P", "-j", job_id, "-o", SACCT_FIELDS])
    return parse_sacct(result.stdout).get(job_id) if result.returncode == 0 else None


def find_job(name: str) -> str | None:
    """The newest job with this name that the controller knows (a run recorded just before a runner died)."""
    user = os.environ.get("USER") or None
    argv = ["squeue", "-h", "-t", "all", f"--name={name}", "-o", SQUEUE_FORMAT] + (["-u", user] if user else [])
    result = _run(argv)
    jobs = parse_squeue(result.stdout) if result.returncode == 0 else {}
    return max(jobs, key=int) if jobs else None


def signal_job(job_id: str, signame: str = "TERM") -> bool:
    """Signal the job's batch script, the run itself (see job_script); False if SLURM refused (not running)."""
    return _run(["scancel", f"--signal={signame}", "--batch", job_id]).returncode == 0


def cancel(job_id: str) -> None:
    """Cancel the job: SLURM sends SIGTERM, and SIGKILL KillWait seconds later."""
    _run(["scancel", job_id])
