"""The local run directory runs/<run_id>/: config.yaml, history.jsonl, samples.txt, summary.json, state.pt
(the resume state, deleted when the run finishes unless keep_state).

It mirrors what the W&B run holds, so a run can be read (and reported) without the W&B UI.
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterator

import yaml

from charexp.atomic import atomic_write_text
from charexp.errors import CharexpError, disk_error
from charexp.numbers import finite

OUTER_TYPES: dict[str, tuple[type, ...]] = {"str": (str,), "int": (int,), "float": (int, float), "list": (list,),
                                            "dict": (dict,)}


@dataclass
class RunSummary:
    """summary.json: where a run stands (rewritten at its start, its end, and when it stops or crashes).

    Read tolerantly: a key it lacks (an older run), one it does not know (a newer one) or one of the wrong
    type is left at its default; a damaged file reads as an empty summary."""

    run_id: str | None = None
    state: str | None = None  # running | finished | preempted | crashed | diverged
    project: str | None = None
    sweep_id: str | None = None
    wandb_mode: str | None = None
    wandb_dir: str | None = None
    device: str | None = None
    best_test_loss: float | None = None
    best_epoch: float | None = None
    best_step: int | None = None
    last_eval: dict[str, float] | None = None
    epoch: int | None = None
    step: int | None = None
    chars: int | None = None
    seconds: float | None = None
    artifact: str | None = None
    versions: list[str] = field(default_factory=list)
    rejected_epochs: list[int] = field(default_factory=list)
    updated: str | None = None  # set by RunDir.write_summary

    @property
    def empty(self) -> bool:
        return self == RunSummary()

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_dict(cls, data: Any) -> RunSummary:
        if not isinstance(data, dict):
            return cls()
        kept = {}
        for f in fields(cls):
            value = data.get(f.name)
            accepted = OUTER_TYPES[str(f.type).split(" |")[0].split("[")[0]]  # "list[str] | None" -> list
            if value is not None and isinstance(value, accepted) and not isinstance(value, bool):
                kept[f.name] = value
        return cls(**kept)

    # key access for callers that still read summary.json as a dict (train/main.py:find_resume, benchmarks/quality.py)
    def get(self, key: str, default: Any = None) -> Any:
        value = getattr(self, key, None) if key in {f.name for f in fields(self)} else None
        return default if value is None else value

    def __getitem__(self, key: str) -> Any:
        if key not in {f.name for f in fields(self)}:
            raise KeyError(key)
        return getattr(self, key)


SAMPLE_LINE = re.compile(r"^\[step (?P<step>\d+) \| epoch (?P<epoch>[\d.]+) \| prime (?P<prime>'.*?'|\".*?\")"
                         r"(?: \| (?P<note>[a-z ]+))?\] (?P<text>.*)$")


class RunDir:
    def __init__(self, root: str | Path, run_id: str):
        self.run_id = run_id
        self.path = Path(root) / run_id

    config_path = property(lambda self: self.path / "config.yaml")
    history_path = property(lambda self: self.path / "history.jsonl")
    samples_path = property(lambda self: self.path / "samples.txt")
    summary_path = property(lambda self: self.path / "summary.json")
    state_path = property(lambda self: self.path / "state.pt")

    @contextlib.contextmanager
    def _writing(self, what: str) -> Iterator[None]:
        """A failed write here (full disk, no permission) is one clear sentence, not a traceback."""
        try:
            yield
        except OSError as err:
            raise disk_error(err, what, self.path) from None

    def _read_text(self, path: Path) -> str:
        """A file of the run as text; damaged bytes read as U+FFFD (the line they are in is then skipped)."""
        try:
            return path.read_bytes().decode("utf-8", errors="replace")
        except OSError as err:
            raise CharexpError(f"could not read {path} ({err.strerror or err}); check its permissions") from None

    def create(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CharexpError(f"could not create the run directory {self.path} ({err.strerror or err}); "
                               "set runs_dir to a writable directory") from None

    def write_config(self, config: dict[str, Any]) -> None:
        with self._writing("the run config"):
            atomic_write_text(self.config_path, yaml.safe_dump(config, sort_keys=False))

    def append_history(self, row: dict[str, Any]) -> None:
        with self._writing("the run history"), open(self.history_path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")

    def append_samples(self, step: int, epoch: float, lines: list[tuple[str, str]], note: str = "") -> None:
        tag = f" | {note}" if note else ""
        with self._writing("the run samples"), open(self.samples_path, "a", encoding="utf-8") as f:
            for prime, text in lines:
                f.write(f"[step {step} | epoch {epoch:g} | prime {prime!r}{tag}] {text}\n")

    def history(self) -> Iterator[dict[str, Any]]:
        """Logged rows, each an object with a whole `step` and only numbers (or None) as values. A line that is
        not such a row (half-written by a hard kill, damaged, not charexp's) is skipped; a value that is not a
        finite number reads as None, as the tracker writes NaN and infinities."""
        if not self.history_path.exists():
            return
        for line in self._read_text(self.history_path).split("\n"):
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            step = row.get("step") if isinstance(row, dict) else None
            if isinstance(step, int) and not isinstance(step, bool) and step >= 0:
                yield {key: value if finite(value) else None for key, value in row.items()}

    def samples(self) -> list[dict[str, Any]]:
        if not self.samples_path.exists():
            return []
        rows = []
        for line in self._read_text(self.samples_path).split("\n"):
            match = SAMPLE_LINE.match(line)
            if match:
                rows.append({"step": int(match["step"]), "epoch": float(match["epoch"]), "prime": match["prime"][1:-1],
                             "text": match["text"], "note": match["note"] or ""})
        return rows

    def rewind_to(self, step: int) -> None:
        """Drop rows logged after `step` (a resumed run repeats them from its saved state), and the
        temporary files of atomic writes that a kill interrupted (one process owns a run directory)."""
        for leftover in self.path.glob(".*.tmp"):
            if leftover.is_file():
                leftover.unlink(missing_ok=True)
        with self._writing("the run history"):
            if self.history_path.exists():
                kept = [json.dumps(r) + "\n" for r in self.history() if r.get("step", 0) <= step]
                atomic_write_text(self.history_path, "".join(kept))
            if self.samples_path.exists():
                kept = [line + "\n" for line in self.samples_path.read_text(encoding="utf-8").split("\n")
                        if (m := SAMPLE_LINE.match(line)) and int(m["step"]) <= step]
                atomic_write_text(self.samples_path, "".join(kept))

    def read_summary(self) -> RunSummary:
        """summary.json; missing or damaged, an empty summary."""
        try:
            return RunSummary.from_dict(json.loads(self.summary_path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return RunSummary()

    def write_summary(self, summary: RunSummary) -> None:
        data = {**summary.to_dict(), "updated": time.strftime("%Y-%m-%dT%H:%M:%S")}
        with self._writing("the run summary"):
            atomic_write_text(self.summary_path, json.dumps(data, indent=2) + "\n")

    def discard_state(self) -> None:
        """Delete state.pt once the run has finished: --resume refuses a finished run, so nothing reads it again.
        A failure to delete costs only disk space, never the finished run."""
        with contextlib.suppress(OSError):
            self.state_path.unlink(missing_ok=True)

    def read_config(self) -> dict[str, Any]:
        try:
            return yaml.safe_load(self.config_path.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError):
            return {}


def list_runs(root: str | Path) -> list[RunDir]:
    """Run directories under `root`, oldest first (by config.yaml time)."""
    root = Path(root)
    if not root.is_dir():
        return []
    runs = [RunDir(root, p.name) for p in root.iterdir() if (p / "config.yaml").exists()]
    return sorted(runs, key=lambda r: r.config_path.stat().st_mtime)
