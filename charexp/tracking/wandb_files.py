"""Read a W&B run's own `.wandb` file (offline or synced): config, history, summary, artifacts, exit.

The file is a log of `wandb_internal_pb2.Record` protobufs in chunks that carry W&B's checksum
(`leveldb_log`). A damaged chunk is skipped, never read, and counted in `RunRecords.damaged`; a record
whose fields are not what W&B writes (a `_step` that is not a step, JSON that does not parse) is
skipped too. Reading stops quietly at a chunk that is not complete yet, so a live run can be followed
with `RunFile.poll()`.

This works for any W&B-instrumented program, which is what `charexp sweep` needs.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from charexp.tracking.leveldb_log import FILE_HEADER, LogReader


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except (ValueError, TypeError, RecursionError):  # RecursionError: JSON nested too deep to parse
        return text


def is_step(value: Any) -> bool:
    """A W&B step: a whole number >= 0 (JSON may carry it as 40.0)."""
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and value >= 0 and value == int(value))


def is_metric(value: Any) -> bool:
    """A metric value: a finite number (not a bool, which JSON's true/false become)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _key(item: Any) -> str:
    # W&B's own flattening of a nested key (wandb leet, run.history()): "samples._type", so that a logged
    # {"test": {"loss": x}} never reads as the metric "test/loss"
    return item.key or ".".join(item.nested_key)


@dataclass
class RunRecords:
    run_id: str | None = None
    project: str | None = None
    sweep_id: str | None = None
    group: str | None = None
    job_type: str | None = None
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    preempting: bool = False
    exit_code: int | None = None
    damaged: int = 0  # damaged chunks and undecodable records skipped: the file is damaged, its records incomplete
    incomplete: int = 0  # bytes at the end not (yet) forming a whole record: a live run's tail, or a cut file

    def add(self, record: Any) -> None:
        kind = record.WhichOneof("record_type")
        if kind == "run":
            self.run_id, self.project = record.run.run_id, record.run.project
            self.sweep_id = record.run.sweep_id or self.sweep_id
            self.group = record.run.run_group or self.group
            self.job_type = record.run.job_type or self.job_type
            self.tags = list(record.run.tags) or self.tags
            self._config(record.run.config)
        elif kind == "config":
            self._config(record.config)
        elif kind == "history":
            row = {_key(i): _value(i.value_json) for i in record.history.item}
            if record.history.HasField("step"):
                row.setdefault("_step", record.history.step.num)
            if "_step" not in row or is_step(row["_step"]):  # a row at no real step cannot be placed: skipped
                self.history.append(row)
        elif kind == "summary":
            for item in record.summary.update:
                self.summary[_key(item)] = _value(item.value_json)
        elif kind == "artifact":
            art = record.artifact
            self.artifacts.append({"name": art.name, "type": art.type, "aliases": list(art.aliases),
                                   "digest": art.digest, "metadata": _value(art.metadata) if art.metadata else {},
                                   "files": [entry.path for entry in art.manifest.contents]})
        elif kind == "preempting":
            self.preempting = True
        elif kind == "exit":
            self.exit_code = record.exit.exit_code

    def _config(self, config: Any) -> None:
        for item in config.update:
            value = _value(item.value_json)
            wrapped = isinstance(value, dict) and "value" in value and len(value) <= 2  # {"value": v, "desc": ...}
            self.config[_key(item)] = value.get("value", value) if wrapped else value

    def metric(self, name: str) -> list[tuple[int, float]]:
        """(step, value) for every history row holding `name` as a finite number at a valid step."""
        return [(int(r.get("_step", i)), r[name]) for i, r in enumerate(self.history)
                if is_metric(r.get(name)) and is_step(r.get("_step", i))]


class RunFile:
    """Incrementally follow one `.wandb` file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records = RunRecords()
        self._log = LogReader(len(FILE_HEADER))
        self._header_checked = False
        self._unreadable = 0  # a damaged file header, and checksummed records that are no Record

    def poll(self) -> RunRecords:
        """Read what was appended since the last call; `records.damaged` counts what had to be skipped."""
        from wandb.proto import wandb_internal_pb2

        try:
            with open(self.path, "rb") as f:
                header = f.read(len(FILE_HEADER))
                if len(header) < len(FILE_HEADER):  # being created
                    return self.records
                start = self._log.offset
                f.seek(start)
                data = f.read()  # only what is new since the last complete record
        except FileNotFoundError:
            return self.records
        if not self._header_checked:
            # a damaged header costs nothing else: every chunk after it is checked on its own
            self._header_checked = True
            self._unreadable += header != FILE_HEADER
        for payload in self._log.read(data):
            record = wandb_internal_pb2.Record()
            try:
                record.ParseFromString(payload)
            except Exception:  # checksummed, so not torn: a record this wandb cannot read
                self._unreadable += 1
                continue
            self.records.add(record)
        self.records.damaged = self._log.damaged + self._unreadable
        self.records.incomplete = max(0, start + len(data) - self._log.offset)
        return self.records


def read_run(path: str | Path) -> RunRecords:
    """All records of a finished run; `path` is the .wandb file or its run directory."""
    path = Path(path)
    if path.is_dir():
        found = sorted(path.glob("*.wandb"))
        if not found:
            raise FileNotFoundError(f"no .wandb file in {path}")
        path = found[0]
    return RunFile(path).poll()


def find_run_files(wandb_dir: str | Path, run_id: str) -> list[Path]:
    """Every `.wandb` file of `run_id` under a wandb directory (a resumed run has one per segment), oldest first."""
    return sorted(Path(wandb_dir).glob(f"*-{run_id}/run-{run_id}.wandb"), key=lambda p: p.parent.name)
