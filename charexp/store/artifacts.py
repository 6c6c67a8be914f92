"""Local artifact store: artifacts/<collection>/v<N>/ checkpoint directories, plus index.json.

It keeps the same versions and aliases that the W&B run logs (latest, epoch-N, best-test-loss, and
run-<run_id> on each run's newest version), because offline W&B cannot read artifacts back. A file lock
serialises writers, so concurrent runs never lose a version and `best-test-loss` always lands on the true
minimum of its test set (charexp.store.best says which versions compete).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from filelock import FileLock

from charexp.atomic import atomic_write_text, make_temp_dir
from charexp.errors import CharexpError, disk_error
from charexp.store.best import BEST, best_alias, best_of, fingerprint_id

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
INDEX = "index.json"
RUN_PREFIX = "run-"  # run-<run_id>: a valid W&B alias too (W&B forbids only '/' and ':' in aliases)


def run_alias(run_id: object) -> str | None:
    """The run-scoped alias of a run's newest version, or None for a run id that cannot be an alias."""
    alias = f"{RUN_PREFIX}{run_id}"
    return alias if isinstance(run_id, str) and run_id and NAME.match(alias) and ".." not in alias else None


def run_best_alias(run_id: object) -> str | None:
    """The alias of a run's own best version (its lowest finite test loss, the earliest on a tie):
    run-<run_id>-best. Only the run itself publishes to it, so it is decided at publish time, and W&B moves it
    as it moves any alias when a newer version is logged with it (offline sync included)."""
    scoped = run_alias(run_id)
    return f"{scoped}-best" if scoped else None


def check_name(name: str, what: str = "artifact name") -> str:
    if not NAME.match(name) or ".." in name:
        raise CharexpError(f"{what} {name!r} is not allowed; "
                           "use letters, digits, '.', '_' and '-' only (no path separators)")
    return name


@dataclass(frozen=True)
class Version:
    collection: str
    version: str  # "v3"
    path: Path
    aliases: tuple[str, ...]
    meta: dict[str, Any]


def index_problem(index: Any) -> str | None:
    """What makes a parsed index.json unusable, or None: everything else trusts this shape."""
    if not isinstance(index, dict):
        return "not a JSON object"
    aliases, versions = index.get("aliases"), index.get("versions")
    if not isinstance(aliases, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in aliases.items()):
        return "its aliases are not a map of names to versions"
    if not isinstance(versions, list) or not all(isinstance(v, dict) for v in versions):
        return "its versions are not a list of entries"
    if not all(isinstance(v.get("version"), str) and re.fullmatch(r"v\d+", v["version"]) for v in versions):
        return "a version entry has no name of the form vN"
    return None


class ArtifactStore:
    def __init__(self, root: str | Path, name: str):
        self.name = check_name(name)
        self.root = Path(root)
        self.dir = self.root / self.name
        self.index_path = self.dir / INDEX

    def lock(self) -> FileLock:
        self.dir.mkdir(parents=True, exist_ok=True)
        return FileLock(str(self.dir / ".lock"), timeout=600)

    def read_index(self) -> dict[str, Any]:
        try:
            index = json.loads(self.index_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"collection": self.name, "type": "model", "aliases": {}, "versions": []}
        except (ValueError, UnicodeDecodeError, RecursionError):  # JSONDecodeError is a ValueError; so are huge ints
            raise CharexpError(f"{self.index_path} is corrupt (not valid JSON); "
                               f"restore it from backup or move {self.dir} aside") from None
        if problem := index_problem(index):
            raise CharexpError(f"{self.index_path} is corrupt ({problem}); "
                               f"restore it from backup or move {self.dir} aside")
        return index

    def write_index(self, index: dict[str, Any]) -> None:
        """Replace index.json atomically; the caller holds the lock."""
        atomic_write_text(self.index_path, json.dumps(index, indent=2) + "\n")

    def _clean_orphans(self, index: dict[str, Any]) -> None:
        """Under the lock: remove version directories that no index entry names, and temporary checkpoint
        directories and index files (all left by a kill: every writer holds the lock until it renames)."""
        known = {v["version"] for v in index["versions"]}
        for child in self.dir.iterdir():
            orphan_version = re.fullmatch(r"v\d+", child.name) and child.name not in known
            if child.is_dir() and (orphan_version or child.name.endswith(".tmp")):
                shutil.rmtree(child, ignore_errors=True)
            elif child.name.startswith(f".{INDEX}.") and child.name.endswith(".tmp"):
                child.unlink(missing_ok=True)

    def check_writable(self) -> None:
        """Before training: make the collection's directory and a temporary directory in it (what every
        publish does first), so that an unwritable store fails now rather than at the first epoch end."""
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            make_temp_dir(self.dir, "write-check").rmdir()
        except OSError as err:
            raise disk_error(err, "a checkpoint", self.dir) from None

    def add(self, write: Callable[[Path], None], meta: dict[str, Any], aliases: list[str]) -> Version:
        """Write a new version with `write(dest)`, then record it. `best-test-loss` is decided here, under
        the lock: among the versions of the new version's test set (meta['test_set']; see
        charexp.store.best), it names the one with the lowest finite test loss, the earliest on a tie."""
        for alias in aliases:
            check_name(alias, "alias")
        try:
            return self._add(write, meta, aliases)
        except OSError as err:  # full disk, no permission, a file where the store's directory should be
            raise disk_error(err, "a checkpoint", self.dir) from None

    def _add(self, write: Callable[[Path], None], meta: dict[str, Any], aliases: list[str]) -> Version:
        with self.lock():
            index = self.read_index()
            self._clean_orphans(index)
            number = 1 + max([int(v["version"][1:]) for v in index["versions"]] + [-1])
            version = f"v{number}"
            write(self.dir / version)
            twin = self._twin(index, self.dir / version, meta)
            if twin is not None:  # a resumed run repeating a publish it made before it was killed
                shutil.rmtree(self.dir / version, ignore_errors=True)
                return self._version(index, twin)
            index["versions"].append({"version": version, **meta, "created": time.strftime("%Y-%m-%dT%H:%M:%S")})
            scoped = run_alias(meta.get("run_id"))  # moves with the run, as latest moves with the collection
            final_aliases = list(dict.fromkeys(["latest", *([scoped] if scoped else []), *aliases]))
            run_best = run_best_alias(meta.get("run_id"))
            mine = [v for v in index["versions"] if v.get("run_id") == meta.get("run_id")]
            if run_best and (best_of(mine, fingerprint_id(meta)) or {}).get("version") == version:
                final_aliases.append(run_best)
            for alias in final_aliases:
                index["aliases"][alias] = version
            final_aliases += self._move_best(index, fingerprint_id(meta), version)
            try:
                self.write_index(index)
            except OSError:
                shutil.rmtree(self.dir / version, ignore_errors=True)  # never indexed, so not a version
                raise
        return Version(self.name, version, self.dir / version, tuple(final_aliases), meta)

    @staticmethod
    def _move_best(index: dict[str, Any], test_set: str | None, version: str) -> list[str]:
        """Point the new version's test set's best alias, and the bare best-test-loss, at that test set's best
        version (only versions of the same test set compete; see charexp.store.best). Returns the best
        aliases that landed on `version`."""
        best = best_of(index["versions"], test_set)
        if best is None:  # no finite loss on this test set yet: leave the aliases where they are
            return []
        names = ([best_alias(test_set)] if test_set else []) + [BEST]
        for alias in names:
            index["aliases"][alias] = best["version"]
        return names if best["version"] == version else []

    def test_sets(self, index: dict[str, Any] | None = None) -> dict[str | None, dict[str, Any]]:
        """Every test set in the collection (None: versions without a fingerprint), newest last, with its
        fingerprint, its best version and how many versions it has."""
        index = self.read_index() if index is None else index
        found: dict[str | None, dict[str, Any]] = {}
        for entry in index["versions"]:
            key = fingerprint_id(entry)
            info = found.pop(key, {"test_set": entry.get("test_set"), "versions": 0})
            info["versions"] += 1
            found[key] = info  # re-inserted: the dict ends with the newest version's test set
        for key, info in found.items():
            best = best_of(index["versions"], key)
            info["best"] = best["version"] if best else None
        return found

    def _twin(self, index: dict[str, Any], new: Path, meta: dict[str, Any]) -> dict[str, Any] | None:
        """The recorded version of the same run and step with byte-identical files, if any (like W&B, which
        makes no new version when the content has not changed)."""
        names = sorted(p.name for p in new.iterdir())
        for entry in index["versions"]:
            if not meta.get("run_id") or (entry.get("run_id"), entry.get("step")) != (meta["run_id"], meta.get("step")):
                continue
            old = self.dir / entry["version"]
            same_files = old.is_dir() and sorted(p.name for p in old.iterdir()) == names
            if same_files and all((old / n).read_bytes() == (new / n).read_bytes() for n in names):
                return entry
        return None

    def aliases_of(self, index: dict[str, Any], version: str) -> tuple[str, ...]:
        return tuple(a for a, v in index["aliases"].items() if v == version)

    def _version(self, index: dict[str, Any], entry: dict[str, Any]) -> Version:
        name = entry["version"]
        return Version(self.name, name, self.dir / name, self.aliases_of(index, name), entry)

    def versions(self) -> list[Version]:
        index = self.read_index()
        return [self._version(index, v) for v in index["versions"]]

    def resolve(self, alias: str) -> Version:
        """`latest`, `best-test-loss`, `epoch-3` or `v4` to a version directory."""
        index = self.read_index()
        version = index["aliases"].get(alias, alias if re.fullmatch(r"v\d+", alias) else None)
        if version is not None and not re.fullmatch(r"v\d+", str(version)):  # a hand-edited index must not lead out
            raise CharexpError(f"{self.index_path} is corrupt ({alias!r} points at {version!r}, "
                               f"not a version like v3); restore it or move {self.dir} aside")
        entry = next((v for v in index["versions"] if v["version"] == version), None)
        if entry is None:
            if not index["versions"]:
                raise CharexpError(f"the local artifact collection '{self.name}' under {self.root} is empty; "
                                   "train a model first (python train.py --config configs/quick.yaml)")
            raise CharexpError(f"'{self.name}' has no version or alias {alias!r}; it has: {self.listing(index)}")
        return self._version(index, entry)

    def listing(self, index: dict[str, Any]) -> str:
        """Its aliases (run-scoped ones left out: the runs say it), then its versions grouped by run, e.g.
        "latest, best-test-loss, epoch-1; versions by run: a1b2c3d4 (v0, v1), e5f6g7h8 (v2)"."""
        names = sorted((a for a in index["aliases"] if not a.startswith(RUN_PREFIX)), key=_alias_order)
        runs: dict[str, list[str]] = {}
        for entry in index["versions"]:
            runs.setdefault(str(entry.get("run_id") or "unknown run"), []).append(entry["version"])
        by_run = ", ".join(f"{run} ({', '.join(versions)})" for run, versions in runs.items())
        return f"{', '.join(names)}; versions by run: {by_run}"

    def run_versions(self, run_id: str, index: dict[str, Any] | None = None) -> list[Version]:
        """The versions one run published, oldest first."""
        index = self.read_index() if index is None else index
        return [self._version(index, v) for v in index["versions"] if v.get("run_id") == run_id]

    def resolve_in_run(self, run_id: str, alias: str) -> Version:
        """ALIAS among one run's versions: latest (its newest), best-test-loss (its lowest finite test loss, the
        earliest on a tie), epoch-N or vN."""
        index = self.read_index()
        mine = self.run_versions(run_id, index)
        if not mine:
            runs = ", ".join(dict.fromkeys(str(v["run_id"]) for v in index["versions"] if v.get("run_id"))) or "none"
            raise CharexpError(f"no version in '{self.name}' under {self.root} comes from run {run_id!r}; "
                               f"runs with versions here: {runs}")
        found: Version | None = None
        if alias == "latest":
            found = mine[-1]
        elif alias == BEST:
            best = best_of([v.meta for v in mine], fingerprint_id(mine[-1].meta))
            found = next((v for v in mine if best is not None and v.version == best["version"]), None)
        else:
            epoch = re.fullmatch(r"epoch-(\d+)", alias)
            found = next((v for v in reversed(mine)
                          if (epoch and v.meta.get("epoch") == int(epoch[1])) or v.version == alias), None)
        if found is None:
            have = ", ".join(f"{v.version} (epoch {v.meta.get('epoch')})" for v in mine)
            raise CharexpError(f"run {run_id!r} has no version {alias!r} in '{self.name}'; "
                               f"use latest, {BEST}, epoch-N or one of its versions: {have}")
        return found


def _alias_order(alias: str) -> tuple[int, str]:
    match = re.fullmatch(r"epoch-(\d+)", alias)
    return (1, f"{int(match[1]):08d}") if match else (0, alias)
