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
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime
from pathlib import Path
from types import UnionType
from typing import Any, Union, get_args, get_origin, get_type_hints

from charexp.atomic import atomic_write_text
from charexp.errors import CharexpError
from charexp.numbers import finite
from charexp.untrusted import short_repr

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
        candidates = value.values() if isinstance(value, dict) else [value]
        numbers += [v for v in candidates if finite(v)]
    if not numbers:
        return None
    return float(max(numbers) if goal == "maximize" else min(numbers))


def select_summary(summary: dict[str, Any]) -> dict[str, Any]:
    """The scalar part of a W&B summary (numbers, short strings, {"min": x}); no tables, media or internals."""
    out: dict[str, Any] = {}
    # a table's fields arrive flattened ("samples._type", ...)
    media = tuple(k[: -len("_type")] for k in summary if k.endswith("._type"))
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
    # --launcher slurm: the run's current job, every job it has had, and how SLURM saw its end
    job_id: str | None = None
    jobs: list[str] = field(default_factory=list)
    slurm_state: str | None = None  # COMPLETED, FAILED, CANCELLED, TIMEOUT, PREEMPTED, NODE_FAIL, ...
    slurm_reason: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RunRecord":
        return cls(**typed_fields(cls, data, f"run {short_repr(data.get('run_id'))}"))


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
    launcher: str = "local"  # local | slurm
    slurm: dict[str, Any] = field(default_factory=dict)  # slurm.SlurmOptions' fields, for --resume

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["runs"] = [asdict(r) for r in self.runs]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SweepState":
        state = cls(**typed_fields(cls, {k: v for k, v in data.items() if k != "runs"}, "the sweep"))
        state.runs = [RunRecord.from_dict(r) for r in data.get("runs", []) if isinstance(r, dict) and r.get("run_id")]
        return state

    def run(self, run_id: str) -> RunRecord:
        return next(r for r in self.runs if r.run_id == run_id)


def typed_fields(cls: type, data: dict[str, Any], what: str) -> dict[str, Any]:
    """The dataclass's fields found in `data`, each of its annotated type (a hand-edited or damaged state.json
    must fail here, in one sentence, rather than deep in the runner or the report); ValueError says which."""
    hints = get_type_hints(cls)
    found = {}
    for f in fields(cls):
        if f.name not in data:
            if f.default is MISSING and f.default_factory is MISSING:
                raise ValueError(f"{what} has no {f.name!r}")
            continue
        if f.name != "runs" and not _of_type(data[f.name], hints[f.name]):
            raise ValueError(f"{what}'s {f.name!r} is a {type(data[f.name]).__name__}")
        found[f.name] = data[f.name]
    return found


def _of_type(value: Any, hint: Any) -> bool:
    if get_origin(hint) in (Union, UnionType):
        return any(_of_type(value, arg) for arg in get_args(hint))
    if hint is Any:
        return True
    if hint is type(None):
        return value is None
    if hint in (int, float):  # JSON has one kind of number; a bool is no number here
        return isinstance(value, (int, float) if hint is float else int) and not isinstance(value, bool)
    return isinstance(value, get_origin(hint) or hint)


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
    except (OSError, ValueError, RecursionError) as err:  # ValueError: bad JSON or UTF-8, an int past 4300 digits
        raise CharexpError(f"{path} could not be read as JSON ({type(err).__name__}); {fix}") from None
    if not isinstance(data, dict) or not isinstance(data.get("runs"), list):
        raise CharexpError(f"{path} has no list of runs, "
                           f"so {sweep_dir} is not a sweep directory written by charexp sweep")
    try:
        return SweepState.from_dict(data)
    except ValueError as err:  # a field missing or of the wrong kind
        raise CharexpError(f"{path} is corrupt ({err}); {fix}") from None
