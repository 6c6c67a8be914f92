"""Turn what a user types into a checkpoint directory on disk, and say which source answered.

The grammar (sample.py --help and init_from say the same):

    DIR                          a checkpoint directory, or a run directory runs/<run_id> (that run's newest version)
    [NAME:]ALIAS                 ALIAS in collection NAME (default charlstm): latest, best-test-loss, epoch-N, vN,
                                 run-<run_id> (that run's newest version), run-<run_id>-best (its lowest
                                 test loss): W&B aliases, so ENTITY/PROJECT/NAME:run-<run_id>-best works online
    RUN[:ALIAS]                  RUN is run-<run_id> or a bare <run_id>; ALIAS is scoped to that run's own versions:
                                 latest (default), best-test-loss, epoch-N or vN
    ENTITY/PROJECT/NAME:ALIAS    a W&B artifact

`X:Y` names a collection when artifacts/X exists, else a run. A bare word is an alias or version first, then a run id.
Store-wide `latest` and `epoch-N` move with every run's publish: when several runs hold an epoch-N, the note says
which run answered. When the local store lacks the collection or the alias and a W&B project is given
(sample.py's --project, train.py's wandb_project) and an API key is configured, it is fetched from that project
instead and downloaded to artifacts/NAME:vN (W&B's own layout). With no key the local store's error stands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charexp.errors import CharexpError
from charexp.store.artifacts import RUN_PREFIX, ArtifactStore, Version, check_name
from charexp.store.best import BEST, best_alias, describe_test_set, fingerprint_id, is_best_alias

ONLINE = re.compile(r"^(?P<entity>[^/:]+)/(?P<project>[^/:]+)/(?P<name>[^/:]+):(?P<alias>[^/:]+)$")


@dataclass(frozen=True)
class Resolved:
    path: Path
    source: str  # "directory", "local" or "wandb"
    note: str  # one line for the user: what answered, and for best-test-loss which test set


def resolve_artifact(ref: str, artifacts_dir: str | Path = "artifacts", default_name: str = "charlstm", *,
                     project: str | None = None, entity: str | None = None) -> Resolved:
    """The checkpoint directory of `ref` (a directory, the local store, or ENTITY/PROJECT/NAME:ALIAS), with a note
    on the source; when `project` is given and the local store lacks the alias, W&B is asked."""
    ref = ref.strip()
    if not ref:
        raise CharexpError("the artifact reference is empty; "
                           "use e.g. best-test-loss, latest, epoch-1, v0 or a checkpoint directory")
    path = Path(ref).expanduser()
    if path.is_dir() and _is_run_dir(path):
        return resolve_run_dir(path, artifacts_dir, default_name)
    if path.is_dir():
        return Resolved(path, "directory", f"checkpoint directory {path}")
    online = ONLINE.match(ref)
    if online:
        return download_artifact(online["entity"], online["project"], online["name"], online["alias"],
                                 Path(artifacts_dir))
    if "/" in ref or "\\" in ref or ref.startswith("."):
        raise CharexpError(
            f"{ref!r} is neither an existing checkpoint or run directory nor an artifact reference; "
            "use best-test-loss, latest, epoch-N, vN, RUN_ID[:ALIAS], run-RUN_ID[:ALIAS], NAME:ALIAS "
            "or ENTITY/PROJECT/NAME:ALIAS"
        )
    name, _, alias = ref.rpartition(":")
    if name and not (Path(artifacts_dir) / name).is_dir() and ":" not in name:
        run_id = name.removeprefix(RUN_PREFIX)  # RUN:ALIAS, a run's own epoch-N / best-test-loss / vN
        store = ArtifactStore(artifacts_dir, check_name(default_name))
        known = store.index_path.is_file() and store.run_versions(check_name(run_id, "run id"))
        if known or (name.startswith(RUN_PREFIX) and store.index_path.is_file()):
            version = store.resolve_in_run(run_id, check_name(alias, "alias"))
            note = (f"{ref} = {store.name}:{version.version} of run {run_id} (epoch {version.meta.get('epoch')}) "
                    f"from the local store {store.root}/")
            return Resolved(version.path, "local", note)
    store = ArtifactStore(artifacts_dir, check_name(name or default_name))
    if project and not _has_locally(store, alias):
        from charexp.wandb_env import has_api_key

        if has_api_key():
            found = download_artifact(entity, project, store.name, alias, Path(artifacts_dir))
            where = f"the local store {artifacts_dir}/ has no {store.name}:{alias}"
            return Resolved(found.path, "wandb", f"{found.note} ({where})")
    if not store.dir.exists() and name and name != default_name:
        raise CharexpError(f"{name!r} is neither a local artifact collection under {artifacts_dir} nor a run with "
                           f"versions in '{default_name}'; use NAME:ALIAS or RUN_ID:ALIAS (see sample.py --help)")
    if not store.dir.exists():
        raise CharexpError(f"there is no local artifact collection '{store.name}' under {_where(artifacts_dir)}; "
                           "train a model first, point at another store with --artifacts-dir DIR (artifacts_dir "
                           "in a config), or pass a checkpoint directory")
    check_name(alias, "alias")
    if not name and not _has_locally(store, alias) and store.index_path.is_file() and store.run_versions(alias):
        version = store.resolve_in_run(alias, "latest")  # a bare run id: that run's newest version
        return Resolved(version.path, "local", local_note(store, f"{RUN_PREFIX}{alias}", version))
    version = store.resolve(alias)
    return Resolved(version.path, "local", local_note(store, alias, version))


def _where(artifacts_dir: str | Path) -> str:
    """The store as typed, and for a relative one where it is: ./artifacts depends on the current directory."""
    path = Path(artifacts_dir)
    return str(path) if path.is_absolute() else f"{path} ({path.absolute()}, relative to the current directory)"


def _is_run_dir(path: Path) -> bool:
    """A run directory (runs/<run_id>/) rather than a checkpoint: it has a run's files and no checkpoint.json."""
    from charexp.store.checkpoint import META

    return not (path / META).exists() and any((path / f).is_file() for f in ("summary.json", "config.yaml"))


def resolve_run_dir(path: Path, artifacts_dir: str | Path, default_name: str) -> Resolved:
    """runs/<run_id>: that run's newest version, in the collection the run published to."""
    from charexp.tracking.rundir import RunDir

    summary = RunDir(path.parent, path.name).read_summary()
    run_id = check_name(summary.run_id or path.name, "run id")
    store = ArtifactStore(artifacts_dir, check_name(summary.artifact or default_name))
    if not store.index_path.is_file():
        raise CharexpError(f"{path} is a run directory, and there is no local artifact collection '{store.name}' "
                           f"under {artifacts_dir} to find its versions in; pass --artifacts-dir or a checkpoint "
                           "directory")
    version = store.resolve_in_run(run_id, "latest")
    return Resolved(version.path, "local", f"run directory {path} = {store.name}:{version.version} "
                                           f"({RUN_PREFIX}{run_id}, epoch {version.meta.get('epoch')}) "
                                           f"from the local store {store.root}/")


def _has_locally(store: ArtifactStore, alias: str) -> bool:
    if not store.index_path.is_file():
        return False
    index = store.read_index()  # a corrupt index is an error, never a reason to go elsewhere
    return alias in index["aliases"] or any(v.get("version") == alias for v in index["versions"])


def local_note(store: ArtifactStore, alias: str, version: Version) -> str:
    note = f"{alias} = {store.name}:{version.version} from the local store {store.root}/"
    if alias == "latest" or re.fullmatch(r"epoch-\d+", alias):  # store-wide: every run's publish moves them
        runs = {v.get("run_id") for v in store.read_index()["versions"] if alias == "latest" or
                v.get("epoch") == int(alias.split("-")[1])}
        if len(runs) > 1:
            note += (f", held by run {version.meta.get('run_id')} (the newest of {len(runs)} runs that have one; "
                     f"name a run with RUN_ID:{alias})")
        return note
    if not is_best_alias(alias):
        return note
    mine = fingerprint_id(version.meta)
    what = "the best of the newest version's test set" if alias == BEST else "the best of"
    note += f": {what}, {describe_test_set(version.meta.get('test_set'))}"
    others = [key for key in store.test_sets() if key != mine]
    if others:
        names = [best_alias(k) if k else "versions without a test set (ask by vN)" for k in others]
        note += f"; other test sets here: {', '.join(names)}"
    return note


def download_artifact(entity: str | None, project: str, name: str, alias: str, artifacts_dir: Path) -> Resolved:
    """Fetch [ENTITY/]PROJECT/NAME:ALIAS through the W&B API into artifacts/NAME:vN (W&B's own layout)."""
    for part, what in ((entity, "entity"), (project, "project"), (name, "artifact name"), (alias, "alias")):
        if part is not None or what != "entity":
            check_name(part, what)  # type: ignore[arg-type]
    from charexp.wandb_env import has_api_key

    where = f"{entity}/{project}" if entity else project
    if not has_api_key():
        raise CharexpError(f"{where}/{name}:{alias} lives on W&B, and no API key is configured; "
                           "run 'wandb login' or use a local reference such as best-test-loss")
    import wandb

    try:
        artifact = wandb.Api().artifact(f"{where}/{name}:{alias}", type="model")
        version = check_name(artifact.version, "artifact version")
        path = Path(artifact.download(root=str(artifacts_dir / f"{name}:{version}")))
        metadata: dict[str, Any] = dict(artifact.metadata or {})
        source = f"{artifact.entity}/{artifact.project}/{name}:{version}"
    except CharexpError:
        raise
    except Exception as err:  # the W&B client raises many types (CommError, ValueError, HTTPError)
        raise CharexpError(f"could not fetch {where}/{name}:{alias} from W&B ({str(err).splitlines()[0][:120]}); "
                           "check the name and your network") from None
    note = f"{alias} = {source} from W&B, downloaded to {path}"
    if is_best_alias(alias):
        note += f": the best of {describe_test_set(metadata.get('test_set'))}"
    return Resolved(path, "wandb", note)

