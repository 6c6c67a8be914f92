"""Follow a sweep run through its own W&B files (any W&B-instrumented program, not only train.py).

A run resumed after preemption writes one `.wandb` file per segment; they are merged by step,
later segments winning, so that history, summary and exit code read as one run.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

from charexp.sweep.state import RunRecord, best_value, select_summary
from charexp.tracking.wandb_files import RunFile, RunRecords, find_run_files

EXIT_RECORD_WAIT_S = 3.0  # an adopted run's exit record can land just after its process is gone


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
        return [{name: row[name]} for row in self.history()
                if isinstance(row.get(name), (int, float)) and not isinstance(row.get(name), bool)]

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

    @property
    def damaged(self) -> int:
        """Damaged chunks the reader skipped in this run's files (its metrics may be missing values)."""
        return sum(records.damaged for records in self.segments)


class SweepRunFiles:
    """Every run of a sweep, read from its own W&B files into its record: the metric, the summary, the exit code."""

    def __init__(self, wandb_dir: Path, metric_name: str | None, goal: str,
                 say: Callable[[str], None] | None = None):
        self.wandb_dir, self.metric_name, self.goal = wandb_dir, metric_name, goal
        self.watchers: dict[str, RunWatcher] = {}
        self.say = say or (lambda text: None)
        self._told_damaged: set[str] = set()  # runs whose damaged files the log has named (once each)

    def watcher(self, run_id: str) -> RunWatcher:
        if run_id not in self.watchers:
            self.watchers[run_id] = RunWatcher(self.wandb_dir, run_id)
        return self.watchers[run_id]

    def refresh(self, rec: RunRecord) -> bool:
        """Read the run's new W&B records into its metric and summary; True when anything changed."""
        watcher = self.watcher(rec.run_id)
        if not watcher.poll():
            return False
        if watcher.damaged and rec.run_id not in self._told_damaged:
            self._told_damaged.add(rec.run_id)
            self.say(f"run {rec.run_id}: its .wandb file has {watcher.damaged} damaged chunk(s); they were skipped, "
                     "its metrics may be incomplete")
        summary = watcher.summary()
        rec.summary = select_summary(summary)
        name = self.metric_name
        if name:
            values = [row[name] for row in watcher.metric_rows(name)] + ([summary[name]] if name in summary else [])
            rec.metric = best_value(values, self.goal)
        return True

    def exit_code(self, rec: RunRecord, wait: bool) -> int | None:
        """The exit code in the run's files (for a run whose process is not ours to wait for), waiting a little
        if asked."""
        deadline = time.monotonic() + (EXIT_RECORD_WAIT_S if wait else 0)
        while True:
            self.refresh(rec)
            code = self.watcher(rec.run_id).exit_code()
            if code is not None or time.monotonic() >= deadline:
                return code
            time.sleep(0.25)
