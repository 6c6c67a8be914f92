"""Move `best-test-loss` on W&B by what the project's collection holds, not by one machine's local store.

Online, every host logs its versions into the same W&B collection, and an alias names one version of
a collection at a time. So the alias is never passed to `log_artifact`; once the new version is
committed, this module reads the current holder through the public API, lets
`charexp.store.best.decide_best` (plain data, tested alone) choose, and moves the aliases with W&B's
own mechanism for existing versions: `Artifact.aliases` + `Artifact.save()` (adding an alias to one
version takes it from the version that held it). Two hosts finishing at once are handled by a
re-check after the move: the holder is read again, every version of the same test set in the
collection is listed, and the alias goes to the true best if it is not there.

Only thin W&B calls live here; nothing in it can be tested without a W&B server
(benchmarks/online_check.sh checks it against a real one).
"""

from __future__ import annotations

from typing import Any

from charexp.store.best import BEST, Candidate, best_alias, decide_best, fingerprint_id

TYPE = "model"


def candidate(version: str, metadata: dict[str, Any] | None) -> Candidate:
    metadata = metadata or {}
    loss = metadata.get("test_loss")
    return Candidate(version, loss if isinstance(loss, (int, float)) else None, fingerprint_id(metadata))


def read_holder(api: Any, collection: str, alias: str) -> Candidate | None:
    """The version of `collection` (ENTITY/PROJECT/NAME) holding `alias`, or None."""
    path = f"{collection}:{alias}"
    if not api.artifact_exists(path, type=TYPE):
        return None
    artifact = api.artifact(path, type=TYPE)
    return candidate(artifact.version, artifact.metadata)


def list_test_set(api: Any, collection: str, test_set: str | None) -> list[Candidate]:
    """Every version of `collection` recorded on `test_set`, oldest first."""
    found = [candidate(a.version, a.metadata) for a in api.artifacts(TYPE, collection)]
    found = [c for c in found if c.test_set == test_set]
    return sorted(found, key=lambda c: int(c.version[1:]) if c.version[1:].isdigit() else 0)


def point(api: Any, collection: str, version: str, aliases: list[str]) -> None:
    """Give `aliases` to `version` (W&B moves each from whichever version held it)."""
    artifact = api.artifact(f"{collection}:{version}", type=TYPE)
    missing = [a for a in aliases if a not in artifact.aliases]
    if missing:
        artifact.aliases = [*artifact.aliases, *missing]
        artifact.save()


def settle_best(collection: str, version: str, metadata: dict[str, Any], api: Any = None) -> str:
    """After `version` of `collection` is committed: move its test set's best alias and the bare
    best-test-loss to the project's best version of that test set. Returns a line saying where they are."""
    import wandb

    api = api or wandb.Api()
    new = candidate(version, metadata)
    alias = best_alias(new.test_set) if new.test_set else BEST
    names = list(dict.fromkeys([alias, BEST]))
    holder = read_holder(api, collection, alias)
    target = decide_best(new, holder)
    if target is not None:
        point(api, collection, target.version, names)
    # re-check after the commit and the move: a host that finished at the same time may have moved the
    # alias to a worse version than one it could not see yet, or hold a better one
    now = read_holder(api, collection, alias)
    final = decide_best(new, now, list_test_set(api, collection, new.test_set))
    if final is not None and (now is None or final.version != now.version):
        point(api, collection, final.version, names)
    if final is None:
        return f"W&B {collection}: no version of this test set has a finite test loss; {BEST} not moved"
    return f"W&B {collection}: {', '.join(names)} -> {final.version} (test/loss {final.test_loss:.4f})"
