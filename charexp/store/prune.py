"""`charexp store prune`: delete the versions of a local collection that no reference can name any more.

Kept: every version that holds an alias (latest, epoch-N, best-test-loss and best-test-loss-<test set>,
run-<run_id>, run-<run_id>-best, ...) and each run's own best (what `RUN_ID:best-test-loss` names), also in a
store written before run-<run_id>-best existed.
The index is rewritten first, atomically and under the store's lock (what ArtifactStore.add holds), and
only then are the directories deleted: a kill in between leaves unnamed directories, which the next add
clears away as orphans, never an index that names a missing version.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charexp.errors import CharexpError, disk_error
from charexp.store.artifacts import ArtifactStore
from charexp.store.best import best_of, fingerprint_id


@dataclass(frozen=True)
class Pruned:
    kept: list[str]  # versions, oldest first
    deleted: list[tuple[str, str | None, int]]  # (version, run id, bytes on disk)

    @property
    def freed(self) -> int:
        return sum(size for _, _, size in self.deleted)


def run_bests(entries: list[dict[str, Any]]) -> set[str]:
    """Each run's own best version: the lowest finite test loss on the test set of its newest version, as
    ArtifactStore.resolve_in_run picks it."""
    by_run: dict[str, list[dict[str, Any]]] = {}
    for entry in entries:
        if entry.get("run_id"):
            by_run.setdefault(str(entry["run_id"]), []).append(entry)
    bests = (best_of(mine, fingerprint_id(mine[-1])) for mine in by_run.values())
    return {best["version"] for best in bests if best is not None}


def kept_versions(index: dict[str, Any]) -> set[str]:
    return set(index["aliases"].values()) | run_bests(index["versions"])


def size_of(path: Path) -> int:
    """Bytes in the files under `path` (0 when it is missing)."""
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def plan(store: ArtifactStore, index: dict[str, Any]) -> Pruned:
    keep = kept_versions(index)
    names = [entry["version"] for entry in index["versions"]]
    deleted = [(entry["version"], entry.get("run_id"), size_of(store.dir / entry["version"]))
               for entry in index["versions"] if entry["version"] not in keep]
    return Pruned([name for name in names if name in keep], deleted)


def prune(store: ArtifactStore, dry_run: bool = False) -> Pruned:
    """Delete the versions nothing names (see the module docstring); with `dry_run`, only say which."""
    if not store.index_path.is_file():
        raise CharexpError(f"no local artifact collection '{store.name}' under {store.root} (no {store.index_path}); "
                           "pass --artifacts-dir and --artifact-name of an existing store")
    if dry_run:  # no lock: the index is replaced atomically, so one read is a consistent view
        return plan(store, store.read_index())
    try:
        with store.lock():
            index = store.read_index()
            pruned = plan(store, index)
            if not pruned.deleted:
                return pruned
            gone = {version for version, _, _ in pruned.deleted}
            index["versions"] = [entry for entry in index["versions"] if entry["version"] not in gone]
            store.write_index(index)
            for version in gone:  # after the index stops naming them
                shutil.rmtree(store.dir / version, ignore_errors=True)
    except OSError as err:
        raise disk_error(err, "the artifact index", store.dir) from None
    return pruned
