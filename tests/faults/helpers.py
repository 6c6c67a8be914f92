"""Helpers for the fault suite: run train.py with injected faults, and check what a fault left on disk."""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from foundation import SUBPROCESS_ENV, assert_same_tensors, read_tensors

HERE = Path(__file__).resolve().parent
FAULT_PROGRAM = HERE / "train_with_faults.py"  # train.py with inject.py's faults installed first
SWEEP_FAULT_PROGRAM = HERE / "sweep_with_faults.py"  # `charexp sweep`, the same way

# The fault runs: TINY (2 epochs x 20 steps), a resume state every 10 steps, samples every 10, evals at
# epoch ends, train/loss checked every 5 steps; W&B disabled except where a test says otherwise (the
# W&B side of a kill is covered by test_resume.py), so that the many short runs stay fast. keep_state: the
# final resume states of a faulty and a straight run are compared.
FAULT_CONFIG = {"epochs": 2, "eval_every": 0, "sample_every": 10, "checkpoint_every": 10, "log_every": 5,
                "device": "cpu", "wandb_mode": "disabled", "keep_state": True}
TOTAL_STEPS = 40
# without clipping, the tiny corpus climbs at epoch 3 at climbing_lr() (found per machine): epoch 3 is rejected at
# step 60.
REJECTING = {**FAULT_CONFIG, "grad_clip": 0, "epochs": 4, "reject_worse": True}
RUN_ID = "faulty01"


def fault(target: str, call: int, action: str, when: str = "before", path: str | None = None, from_call: bool = False,
          seconds: float | None = None) -> dict[str, Any]:
    """One fault for inject.py (see its docstring)."""
    spec: dict[str, Any] = {"target": target, "call": call, "action": action, "when": when, "from_call": from_call}
    if path is not None:
        spec["path"] = path
    if seconds is not None:
        spec["seconds"] = seconds
    return spec


@dataclass
class Faulty:
    returncode: int
    stdout: str
    stderr: str
    fired: list[str]  # one line per fault that acted, in order


def fault_env(faults: list[dict[str, Any]], log: Path, env: dict | None = None) -> dict[str, str]:
    environ = {k: v for k, v in os.environ.items() if k != "WANDB_RUN_ID"}
    return {**environ, **SUBPROCESS_ENV, "CHAREXP_FAULTS": json.dumps(faults), "CHAREXP_FAULT_LOG": str(log),
            **(env or {})}


def run_with_faults(args: list[str], cwd: Path, faults: list[dict[str, Any]], env: dict | None = None,
                    timeout: float = 240) -> Faulty:
    """`python train.py ARGS` in a fresh interpreter, with `faults` installed."""
    log = cwd / "faults.log"
    log.unlink(missing_ok=True)
    out = subprocess.run([sys.executable, str(FAULT_PROGRAM), *args], cwd=cwd, env=fault_env(faults, log, env),
                         capture_output=True, text=True, timeout=timeout)
    fired = log.read_text().splitlines() if log.exists() else []
    return Faulty(out.returncode, out.stdout, out.stderr, fired)


def run_signalled(args: list[str], cwd: Path, point: dict[str, Any], signum: int, env: dict | None = None,
                  program: Path = FAULT_PROGRAM, timeout: float = 240) -> Faulty:
    """Run `program ARGS` until it pauses at `point` (a fault whose action is "pause"), deliver `signum` to it
    from outside with os.kill while it is inside that call, then let it go on and wait for it to exit."""
    log = cwd / "faults.log"
    release = Path(f"{log}.release")
    log.unlink(missing_ok=True)
    release.unlink(missing_ok=True)
    with open(cwd / "signalled.out", "w+") as out, open(cwd / "signalled.err", "w+") as err:
        proc = subprocess.Popen([sys.executable, str(program), *args], cwd=cwd, stdout=out, stderr=err,
                                env=fault_env([{**point, "action": "pause"}], log, env))
        try:
            deadline = time.monotonic() + timeout
            while not (log.exists() and log.read_text().startswith("pause")):
                assert proc.poll() is None, f"exited {proc.returncode} before the pause: {err_tail(err)}"
                assert time.monotonic() < deadline, f"never reached {point['target']}: {err_tail(err)}"
                time.sleep(0.02)
            os.kill(proc.pid, signum)
            time.sleep(0.3)  # the handler runs in the paused call's wait loop, before it is released
            release.touch()
            proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        out.seek(0)
        err.seek(0)
        return Faulty(proc.returncode, out.read(), err.read(), log.read_text().splitlines())


def err_tail(err: Any) -> str:
    err.flush()
    return Path(err.name).read_text()[-3000:]


SIGNALS = [signal.SIGTERM, signal.SIGINT]


# --- what must hold after any fault --------------------------------------------------------------

def check_store(artifacts: Path, name: str = "charlstm", empty: bool = False) -> dict[str, Any]:
    """The artifact store is consistent: index.json parses; every version it lists is a whole checkpoint
    that loads and matches its entry; every alias names a listed version; best-test-loss is the minimum.
    Returns the index. A store with no version (no index.json, or one that lists nothing) passes only
    when the caller expects it (`empty`), and then no version directory may sit there unlisted."""
    from charexp.store.checkpoint import load_checkpoint

    index_path = artifacts / name / "index.json"
    if empty:
        stray = sorted(p.name for p in (artifacts / name).glob("v*")) if (artifacts / name).is_dir() else []
        assert stray == [], f"version directories {stray} in a store that should hold none"
        if not index_path.exists():
            return {"aliases": {}, "versions": []}
    assert index_path.is_file(), f"{index_path} is missing: no version was ever recorded"
    index = json.loads(index_path.read_text(encoding="utf-8"))
    assert not empty or index["versions"] == [], f"{index_path} lists versions where none were expected"
    versions = {v["version"]: v for v in index["versions"]}
    assert len(versions) == len(index["versions"]), "a version number is listed twice"
    for version, entry in versions.items():
        assert re.fullmatch(r"v\d+", version)
        ckpt = load_checkpoint(artifacts / name / version)  # both files there, weights match the config
        assert sorted(p.name for p in (artifacts / name / version).iterdir()) == ["checkpoint.json",
                                                                                  "model.safetensors"]
        assert ckpt.meta["step"] == entry["step"] and ckpt.meta["test_loss"] == entry["test_loss"]
        assert math.isfinite(entry["test_loss"]), f"{version} has a non-finite test_loss"
    for alias, version in index["aliases"].items():
        assert version in versions, f"alias {alias} points at missing {version}"
    if versions:
        assert index["aliases"]["latest"] == max(versions, key=lambda v: int(v[1:]))
        best = index["aliases"]["best-test-loss"]
        lowest = min(v["test_loss"] for v in versions.values())
        assert versions[best]["test_loss"] == lowest, "best-test-loss is not the minimum"
    return index


def leftovers(folder: Path) -> list[str]:
    """Names of temporary files/directories (atomic writes that never finished) directly in `folder`."""
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp")) if folder.is_dir() else []


def published(index: dict[str, Any]) -> list[tuple[str, int, Any, float, tuple[str, ...]]]:
    """(version, step, epoch, test_loss, aliases) per version: what must equal the uninterrupted run's. The
    run-scoped aliases name the run's id, which differs between the two runs: they compare as `run-<id>[-best]`."""
    aliases = {v["version"]: tuple(sorted(re.sub(r"^run-[A-Za-z0-9]+", "run-<id>", a)
                                          for a, to in index["aliases"].items() if to == v["version"]))
               for v in index["versions"]}
    return [(v["version"], v["step"], v["epoch"], v["test_loss"], aliases[v["version"]]) for v in index["versions"]]


def assert_same_final_weights(artifacts_a: Path, state_a: Path, artifacts_b: Path, state_b: Path) -> None:
    """Same tensors in the latest artifact version and in the final resume state (exactly, bit for bit)."""
    from charexp.store.artifacts import ArtifactStore
    from charexp.store.checkpoint import load_state

    a, b = (ArtifactStore(artifacts, "charlstm").resolve("latest") for artifacts in (artifacts_a, artifacts_b))
    assert a.meta["step"] == b.meta["step"]
    assert_same_tensors(read_tensors(a.path / "model.safetensors"), read_tensors(b.path / "model.safetensors"))
    sa, sb = load_state(state_a), load_state(state_b)
    assert sa["position"] == {**sb["position"], "seconds": sa["position"]["seconds"]}
    assert_same_tensors(sa["model"], sb["model"])


def assert_one_clear_error(stderr: str, pattern: str) -> str:
    """No traceback; exactly one 'error: ...' line, the last thing on stderr, matching `pattern`."""
    assert "Traceback" not in stderr, stderr[-3000:]
    lines = [line for line in stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1 and lines[-1] == errors[0], stderr[-3000:]
    assert re.search(pattern, errors[0]), errors[0]
    return errors[0]


def snapshot(root: Path) -> dict[str, bytes | str]:
    """Everything under `root` (relative path -> what it is): to show that nothing was changed, added or
    removed. Directories count too, so that a new empty directory is a change."""
    return {str(p.relative_to(root)): _entry(p) for p in sorted(root.rglob("*"))} if root.exists() else {}


def _entry(path: Path) -> bytes | str:
    if path.is_symlink():
        return f"link to {os.readlink(path)}"
    if path.is_dir():
        return "directory"
    return path.read_bytes() if path.is_file() else "special file"


def writes_are_blocked_by_permissions(tmp: Path) -> bool:
    """False where chmod does not stop this process from writing (root, CAP_DAC_OVERRIDE): tests then
    simulate the refusal instead."""
    probe = tmp / "probe-readonly"
    probe.mkdir()
    probe.chmod(0o500)
    try:
        (probe / "x").write_text("x")
    except PermissionError:
        return True
    finally:
        probe.chmod(0o700)
    return False
