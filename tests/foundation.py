"""Helpers for the foundation tests (issues 2 and 3): one shared reference training run, file readers.

The reference run is trained once per session, in process, in its own directory with the same
isolation as conftest's autouse fixture (W&B offline, no API key, everything under a tmp dir).
Tests only read from it; anything that writes trains its own run.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from conftest import REPO, TINY, isolate_env, write_tiny_csv

DEVICE = os.environ.get("CHAREXP_TEST_DEVICE", "cpu")
# The wandb CLI of this interpreter's environment (python -m wandb where no script was installed, as with pip --target).
_WANDB_SCRIPT = Path(sys.executable).with_name("wandb")
WANDB_CLI = [str(_WANDB_SCRIPT)] if _WANDB_SCRIPT.exists() else [sys.executable, "-m", "wandb"]

# The reference run: TINY (2 epochs of 20 batches) with an eval every 10 iterations, started with a
# command-line override on top of its YAML (lr 0.01 in the file, 0.02 on the command line).
REFERENCE_OVERRIDES = {"eval_every": 10}
REFERENCE_ARGS = ["--lr=0.02"]
REFERENCE_LR = 0.02
REFERENCE_STEPS = 40  # 2 epochs x 160 train utterances / batch 8


def write_config(path: Path, data: Path, **overrides: Any) -> Path:
    path.write_text(yaml.safe_dump({"data": str(data), **TINY, **overrides}), encoding="utf-8")
    return path


# Training in tests uses one CPU thread, in process and in subprocesses alike. On a shared 2-core machine
# torch's default of one thread per core oversubscribes the CPU: a tiny run then takes 10-15x longer.
# Runs that are compared bit for bit (same seed, kill and resume) must also use the same thread count.
THREADS = int(os.environ.get("CHAREXP_TEST_THREADS", "1"))
SUBPROCESS_ENV = {"OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS)}


def limit_threads() -> None:
    import torch

    torch.set_num_threads(THREADS)


limit_threads()  # for the small tensor work of the unit tests too


@contextlib.contextmanager
def torch_threads(n: int = THREADS):
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_main(args: list[str]) -> tuple[int, str]:
    """charexp.train.main.main in process; (exit code, what it wrote to stderr)."""
    from charexp.train.main import main

    err = io.StringIO()
    with contextlib.redirect_stderr(err), torch_threads():
        code = main(args)
    return code, err.getvalue()


def only_run_id(runs_dir: Path) -> str:
    runs = sorted(p.name for p in Path(runs_dir).iterdir() if p.is_dir())
    assert len(runs) == 1, runs
    return runs[0]


@dataclass(frozen=True)
class ReferenceRun:
    root: Path  # cwd of the run: runs/, artifacts/, wandb/ are under it
    run_id: str
    config_path: Path
    stderr: str
    device: str

    @property
    def run_dir(self):
        from charexp.tracking.rundir import RunDir

        return RunDir(self.root / "runs", self.run_id)

    @property
    def wandb_file(self) -> Path:
        from charexp.tracking.wandb_files import find_run_files

        files = find_run_files(self.root / "wandb", self.run_id)
        assert len(files) == 1, files
        return files[0]

    @property
    def artifacts(self) -> Path:
        return self.root / "artifacts"

    def history(self) -> list[dict[str, Any]]:
        return list(self.run_dir.history())


_REFERENCE: dict[str, ReferenceRun] = {}


def reference_run(tmp_path_factory: pytest.TempPathFactory) -> ReferenceRun:
    """Train the reference run once per session (about 4 s) and return where it is."""
    if "run" not in _REFERENCE:
        root = tmp_path_factory.mktemp("reference-run")
        with pytest.MonkeyPatch.context() as mp:
            isolate_env(mp, root)
            data = write_tiny_csv(root)
            config = write_config(root / "tiny.yaml", data, lr=0.01, **REFERENCE_OVERRIDES)
            code, stderr = run_main(["--config", str(config), *REFERENCE_ARGS])
            assert code == 0, stderr
        _REFERENCE["run"] = ReferenceRun(root, only_run_id(root / "runs"), config, stderr, TINY["device"])
    return _REFERENCE["run"]


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory) -> ReferenceRun:
    return reference_run(tmp_path_factory)


# --- readers ---------------------------------------------------------------------------------

def read_tensors(path: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(path))


def assert_same_tensors(a: dict, b: dict) -> None:
    import torch

    assert sorted(a) == sorted(b)
    for key in a:
        assert torch.equal(a[key], b[key]), f"tensor {key} differs"


def leet_records(wandb_file: Path) -> list[dict[str, Any]]:
    """`wandb leet inspect --json FILE`: one JSON record per line."""
    out = subprocess.run([*WANDB_CLI, "leet", "inspect", "--json", str(wandb_file)], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def leet_summary(wandb_file: Path) -> dict[str, Any]:
    out = subprocess.run([*WANDB_CLI, "leet", "inspect", "--summary", "--json", str(wandb_file)], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def without_timing(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """History rows minus the one wall-clock metric."""
    return [{k: v for k, v in row.items() if k != "perf/chars_per_sec"} for row in rows]


def python_script(script: str, args: list[str], cwd: Path, env: dict | None = None,
                  timeout: float = 180) -> subprocess.CompletedProcess:
    """`python SCRIPT ARGS` from the repository root (train.py / sample.py) in a fresh interpreter."""
    return subprocess.run([sys.executable, str(REPO / script), *args], cwd=cwd,
                          env={**os.environ, **SUBPROCESS_ENV, **(env or {})}, capture_output=True, text=True,
                          timeout=timeout)


def wait_for(predicate, timeout: float, interval: float = 0.005):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return None


CLIMB_CANDIDATES = (0.2, 0.25, 0.3, 0.15, 0.35, 0.4, 0.45, 0.5)


@functools.lru_cache(maxsize=None)
def climbing_lr() -> float:
    """A rate at which the tiny corpus without clipping first gets worse at epoch 3, on this machine.

    The reject_worse tests need an epoch that climbs. Where a climb starts depends on the CPU's kernels (lr 0.2
    climbs at epoch 3 on an AVX-512 machine and at epoch 4 on an AVX2 one), so the rate is found here, by plain
    runs on the same config the tests use, rather than assumed; every later run with it is deterministic."""
    with tempfile.TemporaryDirectory() as tmp, pytest.MonkeyPatch.context() as mp:
        root = Path(tmp)
        isolate_env(mp, root)
        data = write_tiny_csv(root)
        for lr in CLIMB_CANDIDATES:
            config = write_config(root / f"{lr}.yaml", data, lr=lr, grad_clip=0, epochs=4, sample_every=0,
                                  checkpoint_every=0, wandb_mode="disabled", runs_dir=f"runs-{lr}",
                                  artifacts_dir=f"artifacts-{lr}")
            code, _ = run_main(["--config", str(config)])
            rows = [] if code else only_run_rows(root / f"runs-{lr}")
            losses = {int(r["epoch"]): r["test/loss"] for r in rows
                      if "test/loss" in r and float(r["epoch"]).is_integer()}
            if len(losses) == 4 and losses[1] > losses[2] and losses[3] > losses[2]:
                return lr
    pytest.fail(f"no rate in {CLIMB_CANDIDATES} makes the tiny corpus climb first at epoch 3 on this machine")


def only_run_rows(runs_dir: Path) -> list[dict[str, Any]]:
    from charexp.tracking.rundir import RunDir

    return list(RunDir(runs_dir, only_run_id(runs_dir)).history())


def walk_log(data: bytes) -> list[tuple[int, int, int, int]]:
    """(offset, crc, length, type) of every chunk of an undamaged W&B log (`.wandb` file), in order."""
    import struct

    from charexp.tracking.leveldb_log import BLOCK, FILE_HEADER, HEADER

    pos, out = len(FILE_HEADER), []
    while pos < len(data):
        if BLOCK - pos % BLOCK < HEADER:
            pos += BLOCK - pos % BLOCK
            continue
        crc, length, kind = struct.unpack_from("<IHB", data, pos)
        out.append((pos, crc, length, kind))
        pos += HEADER + length
    assert pos == len(data)
    return out
