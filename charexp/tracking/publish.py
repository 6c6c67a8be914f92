"""Publishing a checkpoint: a new version in the local artifact store and in the W&B run.

The store moves its own aliases (latest, epoch-N, best-test-loss by test set); online, the tracker
decides best-test-loss against the project's collection. Neither needs to know what the weights are:
the caller hands over a function that writes the checkpoint directory.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from charexp.errors import CharexpError
from charexp.store.artifacts import ArtifactStore
from charexp.tracking.tracker import Tracker

WriteCheckpoint = Callable[[Path, dict[str, Any]], Any]  # (destination directory, metadata) -> writes it there


def version_label(version: str, aliases: tuple[str, ...] | list[str]) -> str:
    """How the run summary names a version: "v3 (latest, epoch-2)"."""
    return f"{version} ({', '.join(aliases)})" if aliases else version


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
        return version_label(version.version, version.aliases)

    def standing(self, published: list[str]) -> list[str]:
        """`published` (labels with the aliases each version got when it was added) relabelled with the
        aliases each holds now: later versions, this run's or another's, take latest, epoch-N and
        best-test-loss from earlier ones, and a run's end table must not show two `latest`s."""
        try:
            index = self.store.read_index()
        except CharexpError:  # a damaged index is reported by whatever reads the store next; the run is done
            return published
        known = {v["version"] for v in index["versions"]}
        names = [label.split()[0] for label in published]
        return [version_label(name, self.store.aliases_of(index, name)) if name in known else f"{name} (deleted)"
                for name in names]
