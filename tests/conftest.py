"""Shared fixtures: every test runs in its own directory with W&B offline and isolated, on CPU."""

from __future__ import annotations

import csv
import io
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("CHAREXP_SHARED_DATA", REPO.parent / "shared" / "data"))
REAL_CSV = SHARED_DATA / "star_trek_transcripts_all_episodes.csv"

SPEAKERS = ["KIRK", "SPOCK", "MCCOY", "SCOTT", "UHURA"]
PHRASES = [
    "Captain, the ship is ready.", "Fascinating.", "He's dead, Jim.", "I cannae change the laws of physics!",
    "Hailing frequencies open, sir.", "Beam us up.", "Logical, but not likely.", "Set a course, warp factor two.",
    "Mister Spock, report.", "Shields up, red alert.",
]


def synthetic_csv_text(episodes: int = 6, rows_per_episode: int = 4, cells_per_row: int = 8, seed: int = 0) -> str:
    """A small corpus in the real file's format: NEXTEPISODE rows with empty fields, quoted cells with commas,
    stage directions, and trailing empty fields."""
    rng = random.Random(seed)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    for _ in range(episodes):
        writer.writerow(["NEXTEPISODE"] + [""] * 12)
        for _ in range(rows_per_episode):
            row = []
            for _ in range(cells_per_row):
                if rng.random() < 0.1:
                    row.append("(Kirk enters, looking tired)")
                else:
                    row.append(f"{rng.choice(SPEAKERS)}: {rng.choice(PHRASES)}")
            writer.writerow(row + [""] * rng.randint(0, 3))
    writer.writerow(["NEXTEPISODE"] + [""] * 12)
    return out.getvalue()


def isolate_env(mp: pytest.MonkeyPatch, root: Path) -> None:
    """cwd, W&B directories and the corpus cache inside `root`; no API key, so W&B is offline."""
    mp.chdir(root)
    for var in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_RUN_ID", "WANDB_SWEEP_ID", "WANDB_SWEEP_PARAM_PATH",
                "WANDB_PROJECT", "CHAREXP_CORPUS_URL"):
        mp.delenv(var, raising=False)
    for var in ("COLUMNS", "LINES"):  # a console's width is the run's own (pytest-xdist's workers set 80x24)
        mp.delenv(var, raising=False)
    mp.setenv("NETRC", str(root / "no-netrc"))
    mp.setenv("WANDB_DIR", str(root))
    for var, sub in (("WANDB_DATA_DIR", "wandb-data"), ("WANDB_CACHE_DIR", "wandb-cache"),
                     ("WANDB_CONFIG_DIR", "wandb-config"), ("WANDB_ARTIFACT_DIR", "wandb-artifacts")):
        mp.setenv(var, str(root / sub))
    mp.setenv("CHAREXP_CACHE_DIR", str(root / "cache"))
    mp.setenv("WANDB_SILENT", "true")
    mp.setenv("CUDA_VISIBLE_DEVICES", os.environ.get("CHAREXP_TEST_CUDA_VISIBLE_DEVICES", ""))


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test runs in its own directory with W&B offline and isolated."""
    isolate_env(monkeypatch, tmp_path)
    return tmp_path


def write_tiny_csv(folder: Path) -> Path:
    """The default synthetic corpus as folder/tiny.csv."""
    path = folder / "tiny.csv"
    path.write_text(synthetic_csv_text(), encoding="utf-8")
    return path


@pytest.fixture
def tiny_csv(tmp_path: Path) -> Path:
    return write_tiny_csv(tmp_path)


@pytest.fixture
def real_csv() -> Path:
    if not REAL_CSV.exists():
        pytest.skip(f"real corpus not available at {REAL_CSV}")
    return REAL_CSV


TINY = {
    "layers": 1, "hidden": 32, "embed": 16, "batch_size": 8, "max_len": 64, "epochs": 2, "lr": 0.01,
    "log_every": 5, "eval_every": 0, "sample_every": 10, "checkpoint_every": 10, "sample_chars": "KS",
    "sample_max_len": 40, "device": os.environ.get("CHAREXP_TEST_DEVICE", "cpu"), "wandb_project": "charexp-test",
}


@pytest.fixture
def tiny_config(tmp_path: Path, tiny_csv: Path):
    """Write a tiny training config (defaults above, plus overrides) and return its path."""

    def make(name: str = "tiny.yaml", **overrides) -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump({"data": str(tiny_csv), **TINY, **overrides}), encoding="utf-8")
        return path

    return make


def run_train_subprocess(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 300,
                         **kwargs) -> subprocess.CompletedProcess:
    """`python train.py ARGS` in a fresh interpreter, the way a user or a sweep agent starts it."""
    return subprocess.run([sys.executable, str(REPO / "train.py"), *args], cwd=cwd, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=timeout, **kwargs)
