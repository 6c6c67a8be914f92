"""A real one-node SLURM cluster in a temporary directory, from Debian's packages (slurmctld, slurmd,
slurm-client, munge): munged, slurmctld and slurmd started as children of the test session and all stopped
at its end, also when a test fails. The configuration is the one that worked in issue 22.

    with SlurmCluster.start() as cluster:   # or skip_reason() first, to skip where it cannot run
        subprocess.run(["sbatch", ...], env={**os.environ, "SLURM_CONF": str(cluster.conf)})
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "scontrol", "scancel", "sinfo")
INSTALL = "apt-get install -y slurmctld slurmd slurm-client munge"
START_TIMEOUT_S = 30.0


def skip_reason() -> str | None:
    """Why a cluster cannot be started here, in one sentence; None when it can."""
    if os.environ.get("CHAREXP_SLURM_CLUSTER") == "0":
        return "SLURM cluster tests left out of this run (CHAREXP_SLURM_CLUSTER=0); make test-slurm runs them"
    missing = [c for c in DAEMONS + CLIENTS if shutil.which(c) is None]
    if missing:
        return f"SLURM is not installed ({', '.join(missing)} missing; Debian: {INSTALL})"
    if os.geteuid() != 0:
        return "a one-node SLURM cluster needs root (slurmd runs as root)"
    try:
        import pwd

        pwd.getpwnam("munge")
    except KeyError:
        return "the munge user does not exist (the munge package creates it)"
    return None


def _die_with_parent() -> None:
    """A daemon started by the tests goes when the test process goes, even when it is killed (Linux)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SlurmCluster:
    def __init__(self, root: Path):
        self.root = root
        self.conf = root / "slurm.conf"
        self.node = "charexp-node"
        self.procs: list[tuple[str, subprocess.Popen]] = []

    @property
    def env(self) -> dict[str, str]:
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    # --- start --------------------------------------------------------------------------------------
    @classmethod
    def start(cls) -> "SlurmCluster":
        # not under pytest's tmp (mode 700): munged wants its socket's directories open to everyone
        root = Path(tempfile.mkdtemp(prefix="charexp-slurm-"))
        root.chmod(0o755)
        cluster = cls(root)
        try:
            cluster._start()
        except BaseException:
            cluster.stop()
            raise
        return cluster

    def _start(self) -> None:
        import pwd

        munge = pwd.getpwnam("munge")
        for sub in ("munge", "munge-key", "ctld", "spool", "log"):
            (self.root / sub).mkdir()
        for sub, mode in (("munge", 0o755), ("munge-key", 0o700)):
            os.chown(self.root / sub, munge.pw_uid, munge.pw_gid)
            (self.root / sub).chmod(mode)
        key = self.root / "munge-key" / "munge.key"
        subprocess.run(["mungekey", "-c", "-k", str(key)], check=True, capture_output=True)
        os.chown(key, munge.pw_uid, munge.pw_gid)
        socket_path = self.root / "munge" / "munge.socket"
        self._spawn("munged", ["setpriv", f"--reuid={munge.pw_uid}", f"--regid={munge.pw_gid}", "--clear-groups",
                               "munged", "-F", f"--socket={socket_path}", f"--key-file={key}",
                               f"--pid-file={self.root / 'munge' / 'munged.pid'}",
                               f"--seed-file={self.root / 'munge' / 'munged.seed'}",
                               f"--log-file={self.root / 'log' / 'munged.log'}"], pdeathsig=False)
        self._wait(lambda: socket_path.exists(), "munged")
        self.write_conf(socket_path)
        self._spawn("slurmctld", ["slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._wait(lambda: self._ok(["scontrol", "ping"]) and "UP" in self._out(["scontrol", "ping"]), "slurmctld")
        self._spawn("slurmd", ["slurmd", "-D", "-N", self.node, "-f", str(self.conf)])
        self._wait(lambda: self._out(["sinfo", "-h", "-o", "%t"]).strip() in ("idle", "mix", "alloc"), "slurmd")

    def write_conf(self, munge_socket: Path) -> None:
        host = socket.gethostname().split(".")[0]  # slurmctld must see itself as SlurmctldHost
        root = self.root
        self.conf.write_text(f"""\
ClusterName=charexp-test
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={_free_port()}
SlurmdPort={_free_port()}
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket={munge_socket}
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MpiDefault=none
StateSaveLocation={root / 'ctld'}
SlurmdSpoolDir={root / 'spool'}
SlurmctldPidFile={root / 'slurmctld.pid'}
SlurmdPidFile={root / 'slurmd.pid'}
SlurmctldLogFile={root / 'log' / 'slurmctld.log'}
SlurmdLogFile={root / 'log' / 'slurmd.log'}
# a cancelled run gets SIGTERM, and SIGKILL this many seconds later (SLURM's default is 30)
KillWait=5
SchedulerParameters=sched_interval=1
NodeName={self.node} NodeAddr=127.0.0.1 CPUs={os.cpu_count() or 1} RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes={self.node} Default=YES MaxTime=INFINITE State=UP
""")
        (root / "cgroup.conf").write_text("CgroupPlugin=autodetect\nIgnoreSystemd=yes\n")

    def _spawn(self, name: str, argv: list[str], pdeathsig: bool = True) -> None:
        log = open(self.root / "log" / f"{name}.out", "wb")
        proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env={**os.environ, "SLURM_CONF": str(self.conf)},
                                preexec_fn=_die_with_parent if pdeathsig else None)
        log.close()
        self.procs.append((name, proc))

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            dead = [n for n, p in self.procs if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start ({', '.join(dead) or 'timed out'} ended)\n{self.logs()}")
            time.sleep(0.2)

    def _ok(self, argv: list[str]) -> bool:
        return subprocess.run(argv, env=self.env, capture_output=True, timeout=30).returncode == 0

    def _out(self, argv: list[str]) -> str:
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=30).stdout

    def logs(self, tail: int = 3000) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)

    # --- use -----------------------------------------------------------------------------------------
    def run(self, *argv: str) -> str:
        """A SLURM command against this cluster; its stdout (CalledProcessError if it fails)."""
        return subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=30, check=True).stdout

    def job(self, job_id: str) -> dict[str, str]:
        """`scontrol -o show job` as a dict (JobState, ExitCode, Restarts, ...)."""
        return dict(token.split("=", 1) for token in self.run("scontrol", "-o", "show", "job", job_id).split()
                    if "=" in token)

    def cancel_all(self) -> None:
        """Cancel every job and wait until none is left running (a test must not leave work for the next)."""
        ids = self._out(["squeue", "-h", "-o", "%i"]).split()
        if ids:
            subprocess.run(["scancel", *ids], env=self.env, capture_output=True, timeout=30)
        deadline = time.monotonic() + 20
        while self._out(["squeue", "-h", "-o", "%i"]).split() and time.monotonic() < deadline:
            time.sleep(0.3)

    # --- stop ----------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop every daemon this cluster started (newest first) and remove its directory."""
        try:
            if any(n == "slurmctld" and p.poll() is None for n, p in self.procs):
                self.cancel_all()
        finally:
            for name, proc in reversed(self.procs):
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(timeout=15)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait()
            self.procs.clear()
            shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "SlurmCluster":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
