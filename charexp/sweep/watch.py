"""Follow a sweep run through its own W&B files (any W&B-instrumented program, not only train.py).

A run resumed after preemption writes one `.wandb` file per segment; they are merged by step,
later segments winning, so that history, summary and exit code read as one run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from charexp.tracking.wandb_files import RunFile, RunRecords, find_run_files


class RunWatcher:
    def __init__(self, wandb_dir: Path, run_id: str):
        self.wandb_dir = wandb_dir
        self.run_id = run_id
        self.files: dict[Path, RunFile] = {}
        self._sizes: dict[Path, int] = {}

    def poll(self) -> bool:
        """Read what was appended since the last call; True when anything new arrived."""
        changed = False
        for path in find_run_files(self.wandb_dir, self.run_id):
            self.files.setdefault(path, RunFile(path))
            try:
                size = path.stat().st_size
            except OSError:
                continue
            if size != self._sizes.get(path):  # skip unchanged files: a poll should cost a stat, not a read
                self._sizes[path] = size
                self.files[path].poll()
                changed = True
        return changed

    @property
    def segments(self) -> list[RunRecords]:
        return [self.files[p].records for p in sorted(self.files, key=lambda p: p.parent.name)]

    def history(self) -> list[dict[str, Any]]:
        """Every logged row, merged across segments by step (a resumed segment replaces rows it repeats)."""
        rows: dict[int, dict[str, Any]] = {}
        unstepped: list[dict[str, Any]] = []
        for records in self.segments:
            for row in records.history:
                if "_step" in row:
                    rows.setdefault(int(row["_step"]), {}).update(row)
                else:
                    unstepped.append(row)
        return [rows[k] for k in sorted(rows)] + unstepped

    def metric_rows(self, name: str) -> list[dict[str, Any]]:
        """History rows holding `name`, in step order: what hyperband counts as iterations."""
        return [{name: row[name]} for row in self.history() if isinstance(row.get(name), (int, float)) and not isinstance(row.get(name), bool)]

    def summary(self) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for records in self.segments:
            merged.update(records.summary)
        return merged

    def exit_code(self) -> int | None:
        """The newest segment's exit record (None while it runs, or when it was killed without one)."""
        segments = self.segments
        return segments[-1].exit_code if segments else None

    def run_record(self) -> RunRecords | None:
        segments = self.segments
        return segments[0] if segments else None
