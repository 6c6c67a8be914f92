"""Read a W&B run's own `.wandb` file (offline or synced): config, history, summary, artifacts, exit.

The file is a LevelDB-style log of `wandb_internal_pb2.Record` protobufs: a 7-byte header
(`:W&B`, u16 0xBEE1, u8 0), then 32 KiB blocks of chunks with 7-byte headers (crc u32,
length u16, type u8: 1 full, 2 first, 3 middle, 4 last). Reading stops quietly at a chunk that
is not complete yet, so a live run can be followed with `RunFile.poll()`.

This works for any W&B-instrumented program, which is what `charexp sweep` needs.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

BLOCK = 32 * 1024
HEADER = 7
FILE_HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def iter_payloads(data: bytes, start: int = FILE_HEADER) -> Iterator[tuple[int, bytes]]:
    """(end offset, payload) for every complete record. `data` holds the file from offset `start` on,
    which must be a record boundary; offsets are absolute."""
    pos, pending = start, b""

    def view(a: int, b: int) -> bytes:
        return data[a - start : b - start]

    end_of_data = start + len(data)
    while True:
        room = BLOCK - pos % BLOCK
        if room < HEADER:  # block trailer padding
            pos += room
            continue
        if pos + HEADER > end_of_data:
            return
        _crc, length, kind = struct.unpack("<IHB", view(pos, pos + HEADER))
        if kind == 0 and length == 0:  # zero padding at the end of a block
            pos += room
            continue
        end = pos + HEADER + length
        if end > end_of_data:
            return
        chunk = view(pos + HEADER, end)
        pos = end
        if kind == FULL:
            yield pos, chunk
        elif kind == FIRST:
            pending = chunk
        elif kind == MIDDLE:
            pending += chunk
        elif kind == LAST:
            yield pos, pending + chunk
            pending = b""


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, TypeError):
        return text


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
            self.history.append(row)
        elif kind == "summary":
            for item in record.summary.update:
                self.summary[_key(item)] = _value(item.value_json)
        elif kind == "artifact":
            art = record.artifact
            self.artifacts.append({"name": art.name, "type": art.type, "aliases": list(art.aliases), "digest": art.digest,
                                   "metadata": _value(art.metadata) if art.metadata else {},
                                   "files": [entry.path for entry in art.manifest.contents]})
        elif kind == "preempting":
            self.preempting = True
        elif kind == "exit":
            self.exit_code = record.exit.exit_code

    def _config(self, config: Any) -> None:
        for item in config.update:
            value = _value(item.value_json)
            self.config[_key(item)] = value.get("value", value) if isinstance(value, dict) and "value" in value and len(value) <= 2 else value

    def metric(self, name: str) -> list[tuple[int, float]]:
        """(step, value) for every history row holding `name`."""
        return [(int(r.get("_step", i)), r[name]) for i, r in enumerate(self.history) if isinstance(r.get(name), (int, float))]


class RunFile:
    """Incrementally follow one `.wandb` file."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.records = RunRecords()
        self._consumed = FILE_HEADER

    def poll(self) -> RunRecords:
        from wandb.proto import wandb_internal_pb2

        try:
            with open(self.path, "rb") as f:
                if f.read(4) != b":W&B":
                    return self.records
                f.seek(self._consumed)
                data = f.read()  # only what is new since the last complete record
        except FileNotFoundError:
            return self.records
        for end, payload in iter_payloads(data, self._consumed):
            record = wandb_internal_pb2.Record()
            try:
                record.ParseFromString(payload)
            except Exception:  # a torn record at the live end of the file
                break
            self.records.add(record)
            self._consumed = end
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
