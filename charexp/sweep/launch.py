"""Start one sweep run as `wandb agent` would: same command line, files and environment.

The command is expanded with wandb's own helpers and joined the way
`wandb.wandb_agent.Agent._command_run` joins it; `${interpreter}` is this interpreter instead
of a bare `python`. The environment differs in one way: instead of WANDB_SWEEP_ID (an id no W&B
server knows, which would make `wandb sync` refuse the run) the run gets the tags charexp-sweep and
sweep-<id> (and CHAREXP_SWEEP_ID, by which a resumed runner finds the processes of its runs), so that
plain `wandb sync` (or `charexp sweep --upload`) uploads it and the sweep's runs can be filtered by tag.
The W&B run group is left to the program: charexp's train.py groups replicates, runs that differ only in
seed (charexp.config.replicate_group), so W&B draws them as one line with a band, as under `wandb agent`.
"""

from __future__ import annotations

import os
import platform
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

FLUSH_ENV = "WANDB__TRANSACTION_LOG_FLUSH_INTERVAL"


@dataclass
class Launch:
    argv: list[str]
    env: dict[str, str]
    param_path: Path  # WANDB_SWEEP_PARAM_PATH: {key: {value: v}}
    json_path: Path  # the ${args_json_file}


def wandb_root(env: dict[str, str] | None = None, cwd: Path | None = None) -> Path:
    """The agent's base directory: $WANDB_DIR, else the working directory (the agent pins it the same way)."""
    env = os.environ if env is None else env
    return Path(env.get("WANDB_DIR") or (cwd or Path.cwd())).absolute()


def wandb_files_dir(root: Path) -> Path:
    """Where runs write offline-run-*/ (wandb uses .wandb/ when it exists, else wandb/)."""
    return root / ".wandb" if (root / ".wandb").is_dir() else root / "wandb"


def sweep_args(params: dict[str, Any]) -> dict[str, Any]:
    """Every macro's argument list, from wandb's helper (args, args_no_hyphens, args_json, ...)."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command_args

    return create_sweep_command_args({"args": {k: {"value": v} for k, v in params.items()}})


def expand_command(command: list[str], program: str | None, params: dict[str, Any], json_path: Path) -> list[str]:
    """The argv the agent would run, with `${interpreter}` = this interpreter."""
    from wandb.sdk.launch.sweeps.utils import create_sweep_command

    expanded = create_sweep_command(list(command))  # fills ${envvar:NAME}; mutates its argument, hence the copy
    macros = sweep_args(params)
    macros["interpreter"] = [sys.executable]
    macros["program"] = [program] if program is not None else []
    macros["args_json_file"] = [str(json_path)]
    if platform.system() != "Windows":
        macros["env"] = ["/usr/bin/env"]
    argv: list[str] = []
    for chunk in expanded:
        chunk = str(chunk)
        if chunk.startswith("${") and chunk.endswith("}"):
            argv += macros.get(chunk[2:-1]) or []
        else:
            argv.append(chunk)
    return argv


def write_param_files(root: Path, sweep_id: str, run_id: str, params: dict[str, Any],
                      command: list[str]) -> tuple[Path, Path]:
    """wandb/sweep-<id>/config-<run>.yaml (and .json when the command uses ${args_json_file}), as the agent
    writes them."""
    from wandb.sdk.lib import config_util

    folder = root / "wandb" / f"sweep-{sweep_id}"
    param_path, json_path = folder / f"config-{run_id}.yaml", folder / f"config-{run_id}.json"
    config_util.save_config_file_from_dict(str(param_path), {k: {"value": v} for k, v in params.items()})
    if "${args_json_file}" in command:
        json_path.write_text(sweep_args(params)["args_json"][0])
    return param_path, json_path


def resource_env(slot: int, workers: int, gpus: list[str]) -> dict[str, str]:
    """One GPU per worker where there are GPUs, else an equal share of the CPU threads."""
    if gpus:
        return {"CUDA_VISIBLE_DEVICES": gpus[slot % len(gpus)]}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    threads = str(max(1, cores // max(1, workers)))
    return {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads}


def visible_gpus() -> list[str]:
    """GPU ids to hand out (honouring CUDA_VISIBLE_DEVICES); empty without CUDA."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None and not listed.strip():
        return []
    try:
        import torch

        count = torch.cuda.device_count()
    except Exception:  # no torch / no driver: CPU workers
        return []
    ids = [i.strip() for i in listed.split(",") if i.strip()] if listed else [str(i) for i in range(count)]
    return ids[:count]


SWEEP_ENV = "CHAREXP_SWEEP_ID"


def sweep_tag(sweep_id: str) -> str:
    """The W&B tag of a charexp sweep's runs: how they are found together once uploaded."""
    return f"sweep-{sweep_id}"


def sweep_labels(sweep_id: str, environ: Mapping[str, str]) -> dict[str, str]:
    """WANDB_TAGS (tags the user set are kept) and CHAREXP_SWEEP_ID for a run of this sweep."""
    tags = [t for t in environ.get("WANDB_TAGS", "").split(",") if t.strip()]
    tags += [t for t in ("charexp-sweep", sweep_tag(sweep_id)) if t not in tags]
    return {"WANDB_TAGS": ",".join(tags), SWEEP_ENV: sweep_id}


def build_launch(*, command: list[str], program: str | None, params: dict[str, Any], sweep_id: str, run_id: str,
                 project: str, entity: str | None, offline: bool, root: Path, extra_env: dict[str, str]) -> Launch:
    """Files, argv and environment for one run (writes the parameter files under `root`, the agent's WANDB_DIR)."""
    param_path, json_path = write_param_files(root, sweep_id, run_id, params, command)
    env = {**os.environ, **extra_env, "WANDB_DIR": str(root), "WANDB_RUN_ID": run_id,
           "WANDB_SWEEP_PARAM_PATH": str(param_path), "WANDB_PROJECT": project, **sweep_labels(sweep_id, os.environ)}
    # The one difference from `wandb agent`: no WANDB_SWEEP_ID. The id is made here, and a W&B server has never
    # heard of it; a run that records it cannot be uploaded (`wandb sync` fails with "sweep ... not found (404)"
    # and adds no run, wandb/wandb#8115). The run is labelled with the sweep as a group and tags instead, and
    # still gets the sweep's values from WANDB_SWEEP_PARAM_PATH (which wandb reads without a sweep id).
    env.pop("WANDB_SWEEP_ID", None)
    if entity:
        env["WANDB_ENTITY"] = entity
    if offline:
        env["WANDB_MODE"] = "offline"
    env.pop("WANDB_SERVICE", None)  # the agent drops it too: each run starts its own service
    # wandb-core flushes the .wandb file every 15 s by default (x_transaction_log_flush_interval);
    # hyperband and the target need the metrics sooner, as `wandb leet` does
    env.setdefault(FLUSH_ENV, "1")
    return Launch(expand_command(command, program, params, json_path), env, param_path, json_path)


def start(launch: Launch, cwd: Path, log_path: Path, header: str) -> subprocess.Popen:
    """Start the run in its own session (Ctrl-C in the terminal reaches only the runner), output to its log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"\n=== {time.strftime('%Y-%m-%dT%H:%M:%S')} {header}\n=== {shlex.join(launch.argv)}\n".encode())
        log.flush()
        return subprocess.Popen(launch.argv, cwd=cwd, env=launch.env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)


# --- processes the runner did not start itself (after the runner was killed and resumed) -----
def process_start_time(pid: int) -> str | None:
    """The kernel's start time of `pid` (guards against a reused pid); None where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


def is_alive(pid: int | None, start_time: str | None) -> bool:
    if not pid:
        return False
    if Path("/proc").is_dir():
        now = process_start_time(pid)
        return now is not None and (start_time is None or now == start_time)
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def find_run_process(sweep_id: str, run_id: str) -> int | None:
    """A live process started for this sweep run (its environment names both ids); Linux only.

    Covers the instant between recording a run and recording its pid: a runner killed there
    must not start the same run twice.
    """
    marks = {f"{SWEEP_ENV}={sweep_id}".encode(), f"WANDB_RUN_ID={run_id}".encode()}
    found: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*") if Path("/proc").is_dir() else []:
        try:
            environ = set((entry / "environ").read_bytes().split(b"\0"))
            if marks <= environ and process_start_time(int(entry.name)):
                found[int(entry.name)] = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError):
            continue
    roots = [pid for pid, parent in found.items() if parent not in found]  # the run, not its wandb service child
    return min(roots) if roots else None


def log_tail(path: Path) -> str:
    """The last line a run wrote, for a one-line failure note."""
    try:
        lines = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return f"see {path}"
    return f"last log line: {lines[-1].strip()[:200]} (see {path})" if lines else f"see {path}"
