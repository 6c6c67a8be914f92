"""Publishing a checkpoint: a new version in the local artifact store and in the W&B run.

The store moves its own aliases (latest, epoch-N, best-test-loss by test set); online, the tracker
decides best-test-loss against the project's collection. Neither needs to know what the weights are:
the caller hands over a function that writes the checkpoint directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from charexp.store.artifacts import ArtifactStore
from charexp.tracking.tracker import Tracker

WriteCheckpoint = Callable[[Path, dict[str, Any]], Any]  # (destination directory, metadata) -> writes it there


class Publisher:
    def __init__(self, store: ArtifactStore, tracker: Tracker, test_set: dict[str, Any]):
        self.store, self.tracker = store, tracker
        self.test_set = test_set  # the test-set fingerprint every version records: only equal ones compete for best

    def publish(self, write: WriteCheckpoint, step: int, epoch: float, metrics: dict[str, float],
                aliases: list[str]) -> str:
        """Add one version (store, then W&B); returns it as "vN (alias, ...)" for the run summary."""
        epoch = int(epoch) if float(epoch).is_integer() else epoch
        meta = {"run_id": self.tracker.run_dir.run_id, "project": self.tracker.project, "epoch": epoch, "step": step,
                "test_loss": metrics["test/loss"], "metrics": metrics, "test_set": self.test_set}
        version = self.store.add(lambda dest: write(dest, meta), meta, aliases)
        metadata = {**meta, "local_version": version.version}
        self.tracker.log_model(self.store.name, version.path, list(version.aliases), metadata)
        return f"{version.version} ({', '.join(version.aliases)})"
