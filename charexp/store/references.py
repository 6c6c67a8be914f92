"""Turn what a user types (`best-test-loss`, `charlstm:v4`, `entity/project/charlstm:latest`, a directory)
into a checkpoint directory on disk."""

from __future__ import annotations

import re
from pathlib import Path

from charexp.store.artifacts import ArtifactStore, check_name
from charexp.errors import CharexpError

ONLINE = re.compile(r"^(?P<entity>[^/:]+)/(?P<project>[^/:]+)/(?P<name>[^/:]+):(?P<alias>[^/:]+)$")


def resolve_reference(ref: str, artifacts_dir: str | Path = "artifacts", default_name: str = "charlstm") -> Path:
    ref = ref.strip()
    if not ref:
        raise CharexpError("the artifact reference is empty; use e.g. best-test-loss, latest, epoch-1, v0 or a checkpoint directory")
    path = Path(ref).expanduser()
    if path.is_dir():
        return path
    online = ONLINE.match(ref)
    if online:
        return download_online(online["entity"], online["project"], online["name"], online["alias"], Path(artifacts_dir))
    if "/" in ref or "\\" in ref or ref.startswith("."):
        raise CharexpError(
            f"{ref!r} is neither an existing checkpoint directory nor an artifact reference; "
            "use best-test-loss, latest, epoch-N, vN, NAME:ALIAS or ENTITY/PROJECT/NAME:ALIAS"
        )
    name, _, alias = ref.rpartition(":")
    store = ArtifactStore(artifacts_dir, check_name(name or default_name))
    if not store.dir.exists():
        raise CharexpError(f"there is no local artifact collection '{store.name}' under {artifacts_dir}; train a model first or pass a checkpoint directory")
    return store.resolve(check_name(alias, "alias")).path


def download_online(entity: str, project: str, name: str, alias: str, artifacts_dir: Path) -> Path:
    """Fetch ENTITY/PROJECT/NAME:ALIAS through the W&B API into artifacts/NAME:vN (W&B's own layout)."""
    for part, what in ((entity, "entity"), (project, "project"), (name, "artifact name"), (alias, "alias")):
        check_name(part, what)
    from charexp.wandb_env import has_api_key

    if not has_api_key():
        raise CharexpError(f"{entity}/{project}/{name}:{alias} lives on W&B, and no API key is configured; run 'wandb login' or use a local reference such as best-test-loss")
    import wandb

    try:
        artifact = wandb.Api().artifact(f"{entity}/{project}/{name}:{alias}", type="model")
        root = artifacts_dir / f"{name}:{check_name(artifact.version, 'artifact version')}"
        return Path(artifact.download(root=str(root)))
    except CharexpError:
        raise
    except Exception as err:  # the W&B client raises many types (CommError, ValueError, HTTPError)
        raise CharexpError(f"could not fetch {entity}/{project}/{name}:{alias} from W&B ({str(err).splitlines()[0][:120]}); check the name and your network") from None
