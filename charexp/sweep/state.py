"""The sweep directory sweep-runs/<sweep_id>/: sweep.yaml (as given), state.json, logs/<run_id>.log.

state.json is rewritten atomically after every change, and a proposal is recorded before its
process starts, so a runner killed at any moment can be resumed without losing or repeating a
run. `charexp report` reads the same file.
"""

from __future__ import annotations

import json
import math
import secrets
import string
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from typing import Any

from charexp.atomic import atomic_write_text
from charexp.errors import CharexpError
from charexp.numbers import finite

STATE = "state.json"
SWEEP_YAML = "sweep.yaml"
TERMINAL = ("finished", "failed", "stopped")


def new_id(taken: set[str] | None = None) -> str:
    """W&B-style 8-character id (sweeps and runs)."""
    while True:
        value = "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(8))
        if not taken or value not in taken:
            return value


def now_iso() -> str:
    return datetime.now().astimezone().isoformat(timespec="milliseconds")


def to_plain(value: Any) -> Any:
    """numpy scalars/arrays (what the sweeps engine returns) to plain Python, for YAML, JSON and argv."""
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(v) for v in value]
    if hasattr(value, "tolist") and type(value).__module__ == "numpy":
        return to_plain(value.tolist())
    return value


def best_value(values: list[Any], goal: str) -> float | None:
    """The best finite number among `values` (dict summaries such as {"min": x} count by their numbers)."""
    numbers: list[float] = []
    for value in values:
        numbers += [v for v in value.values() if finite(v)] if isinstance(value, dict) else ([value] if finite(value) else [])
    if not numbers:
        return None
    return float(max(numbers) if goal == "maximize" else min(numbers))


def select_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The scalar part of a W&B summary (numbers, short strings, {"min": x}); no tables, media or internals."""
    out: dict[str, Any] = {}
    media = tuple(k[: -len("_type")] for k in summary if k.endswith("._type"))  # a table's fields arrive flattened ("samples._type")
    for key, value in summary.items():
        if key.startswith("_") or key.startswith(media):
            continue
        if isinstance(value, (bool, int, float)) or value is None:
            out[key] = value if not isinstance(value, float) or math.isfinite(value) else None
        elif isinstance(value, str) and len(value) <= 200:
            out[key] = value
        elif isinstance(value, dict) and "_type" not in value and value and all(finite(v) for v in value.values()):
            out[key] = value
    return out


@dataclass
class RunRecord:
    run_id: str
    params: dict[str, Any]
    state: str = "pending"  # pending | running | finished | failed | stopped | preempted
    exit_code: int | None = None
    metric: float | None = None  # best value of the sweep's metric so far
    summary: dict[str, Any] = field(default_factory=dict)
    run_dir: str = ""
    log: str = ""
    started: str | None = None
    ended: str | None = None
    # runner bookkeeping, beyond the documented schema
    pid: int | None = None
    pid_start: str | None = None
    worker: int | None = None
    launches: int = 0
    requeues: int = 0
    requeue: bool = False  # relaunch with the same run id when a worker is free
    stop_requested: bool = False  # early termination sent SIGTERM

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunRecord":
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass
class SweepState:
    sweep_id: str
    project: str
    method: str
    metric: dict[str, Any]
    config: dict[str, Any]
    created: str
    finished: bool = False
    runs: list[RunRecord] = field(default_factory=list)
    # where and how runs are launched, so that --resume needs nothing else
    source: str = ""
    cwd: str = ""
    wandb_dir: str = ""  # WANDB_DIR the runs got (their files are under <it>/wandb)
    count: int | None = None
    workers: int = 1

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["runs"] = [asdict(r) for r in self.runs]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SweepState":
        names = {f.name for f in fields(cls)}
        state = cls(**{k: v for k, v in data.items() if k in names and k != "runs"})
        state.runs = [RunRecord.from_dict(r) for r in data.get("runs", []) if isinstance(r, dict) and r.get("run_id")]
        return state

    def run(self, run_id: str) -> RunRecord:
        return next(r for r in self.runs if r.run_id == run_id)


def save_state(sweep_dir: Path, state: SweepState) -> None:
    atomic_write_text(sweep_dir / STATE, json.dumps(to_plain(state.to_dict()), indent=2) + "\n")


def load_state(sweep_dir: Path, fix: str = "it cannot be resumed (start the sweep again)") -> SweepState:
    """state.json, the one reader (the runner's --resume and charexp report); damage is one sentence ending in `fix`."""
    path = Path(sweep_dir) / STATE
    if not path.is_file():
        hint = "pass the folder charexp sweep printed, such as sweep-runs/<sweep_id>"
        raise CharexpError(f"{sweep_dir} is not a sweep directory (no {STATE}); {hint}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CharexpError(f"{path} could not be read as JSON ({type(err).__name__}); {fix}") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise CharexpError(f"{path} has no list of runs, so {sweep_dir} is not a sweep directory written by charexp sweep")
    try:
        return SweepState.from_dict(data)
    except (TypeError, KeyError, AttributeError):  # a field missing or of the wrong kind
        raise CharexpError(f"{path} is corrupt; {fix}") from None
