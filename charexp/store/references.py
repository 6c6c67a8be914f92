"""Turn what a user types (`best-test-loss`, `charlstm:v4`, `entity/project/charlstm:latest`, a directory)
into a checkpoint directory on disk, and say which source answered.

A bare alias or version is looked up in the local store first. When the local store lacks the
collection or the alias and a W&B project is given (sample.py's --project, train.py's
wandb_project) and an API key is configured, it is fetched from that project instead and downloaded
to artifacts/NAME:vN (W&B's own layout). With no key the local store's error stands.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from charexp.errors import CharexpError
from charexp.store.artifacts import ArtifactStore, Version, check_name
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
        raise CharexpError("the artifact reference is empty; use e.g. best-test-loss, latest, epoch-1, v0 or a checkpoint directory")
    path = Path(ref).expanduser()
    if path.is_dir():
        return Resolved(path, "directory", f"checkpoint directory {path}")
    online = ONLINE.match(ref)
    if online:
        return download_artifact(online["entity"], online["project"], online["name"], online["alias"], Path(artifacts_dir))
    if "/" in ref or "\\" in ref or ref.startswith("."):
        raise CharexpError(
            f"{ref!r} is neither an existing checkpoint directory nor an artifact reference; "
            "use best-test-loss, latest, epoch-N, vN, NAME:ALIAS or ENTITY/PROJECT/NAME:ALIAS"
        )
    name, _, alias = ref.rpartition(":")
    store = ArtifactStore(artifacts_dir, check_name(name or default_name))
    if project and not _has_locally(store, alias):
        from charexp.wandb_env import has_api_key

        if has_api_key():
            found = download_artifact(entity, project, store.name, alias, Path(artifacts_dir))
            where = f"the local store {artifacts_dir}/ has no {store.name}:{alias}"
            return Resolved(found.path, "wandb", f"{found.note} ({where})")
    if not store.dir.exists():
        raise CharexpError(f"there is no local artifact collection '{store.name}' under {artifacts_dir}; train a model first or pass a checkpoint directory")
    version = store.resolve(check_name(alias, "alias"))
    return Resolved(version.path, "local", local_note(store, alias, version))


def _has_locally(store: ArtifactStore, alias: str) -> bool:
    if not store.index_path.is_file():
        return False
    index = store.read_index()  # a corrupt index is an error, never a reason to go elsewhere
    return alias in index["aliases"] or any(v.get("version") == alias for v in index["versions"])


def local_note(store: ArtifactStore, alias: str, version: Version) -> str:
    note = f"{alias} = {store.name}:{version.version} from the local store {store.root}/"
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
        raise CharexpError(f"{where}/{name}:{alias} lives on W&B, and no API key is configured; run 'wandb login' or use a local reference such as best-test-loss")
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
        raise CharexpError(f"could not fetch {where}/{name}:{alias} from W&B ({str(err).splitlines()[0][:120]}); check the name and your network") from None
    note = f"{alias} = {source} from W&B, downloaded to {path}"
    if is_best_alias(alias):
        note += f": the best of {describe_test_set(metadata.get('test_set'))}"
    return Resolved(path, "wandb", note)

