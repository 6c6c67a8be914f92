"""What best-test-loss compares: the decision function on plain data, and the local store per test set."""

from __future__ import annotations

import json
import math

import pytest
from store.test_artifacts import write_marker

from charexp.store.artifacts import ArtifactStore
from charexp.store.best import BEST, Candidate, best_alias, decide_best

A = "a" * 64
B = "b" * 64


# --- the online decision (charexp.tracking.online_best wraps it in W&B calls) ----------------------
def c(version: str, loss, test_set: str | None = A) -> Candidate:
    return Candidate(version, loss, test_set)


@pytest.mark.parametrize("case, holder, seen, expected", [
    ("better", c("v1", 2.0), [], "v9"),
    ("worse", c("v1", 1.0), [], "v1"),
    ("equal keeps the holder", c("v1", 1.5), [], "v1"),
    ("holder is another test set", c("v1", 0.1, B), [], "v9"),
    ("missing holder", None, [], "v9"),
    ("a concurrent better version appears after commit", c("v9", 1.5), [c("v8", 2.0), c("v10", 1.2)], "v10"),
    ("a concurrent worse version took the alias from us", c("v10", 1.8), [c("v9", 1.5), c("v10", 1.8)], "v9"),
    ("a concurrent version of another test set", c("v9", 1.5), [c("v10", 0.5, B)], "v9"),
    ("the holder's loss is not a number", c("v1", float("nan")), [], "v9"),
])
def test_decide_best(case, holder, seen, expected):
    assert decide_best(c("v9", 1.5), holder, seen).version == expected, case


def test_decide_best_never_picks_a_non_finite_loss():
    assert decide_best(c("v9", float("inf")), None) is None
    assert decide_best(c("v9", None), c("v1", 3.0)).version == "v1"


# --- the local store --------------------------------------------------------------------------------
def add(store: ArtifactStore, loss, test_set: str | None, epoch: int = 1, run_id: str = "r"):
    meta = {"run_id": run_id, "epoch": epoch, "test_loss": loss}
    if test_set:
        meta["test_set"] = {"id": test_set, "corpus": f"{test_set[0]}.txt"}
    return store.add(write_marker(f"{run_id}/{epoch}/{loss}/{test_set}"), meta, [f"epoch-{epoch}"])


def test_versions_compete_only_within_their_test_set_and_the_bare_alias_follows_the_newest(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts", "charlstm")
    add(store, 2.0, A, epoch=1)                 # v0
    add(store, 1.0, A, epoch=2)                 # v1: best of A
    v2 = add(store, 3.0, B, epoch=1, run_id="s")  # v2: the only B, worse than A's numbers, still B's best
    aliases = store.read_index()["aliases"]
    assert aliases[best_alias(A)] == "v1" and aliases[best_alias(B)] == "v2" and aliases[BEST] == "v2"
    assert set(v2.aliases) == {"latest", "run-s", "run-s-best", "epoch-1", best_alias(B), BEST}
    v3 = add(store, 1.5, A, epoch=3)            # newest is A again: the bare alias goes back to A's best, v1
    aliases = store.read_index()["aliases"]
    assert aliases[BEST] == "v1" and aliases[best_alias(A)] == "v1" and aliases[best_alias(B)] == "v2"
    assert BEST not in v3.aliases
    add(store, 3.5, B, epoch=2, run_id="s")     # B's best stays v2
    assert store.resolve(BEST).version == "v2" and store.resolve(best_alias(A)).version == "v1"
    sets = store.test_sets()
    assert list(sets) == [A, B] and sets[A]["best"] == "v1" and sets[B]["versions"] == 2


def test_an_old_store_without_fingerprints_loads_and_its_versions_compete_only_with_each_other(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts", "charlstm")
    store.dir.mkdir(parents=True)
    for n, loss in enumerate([3.0, 1.0]):
        (store.dir / f"v{n}").mkdir()
        (store.dir / f"v{n}" / "payload.txt").write_text(str(n))
    old = {"collection": "charlstm", "type": "model",
           "aliases": {"latest": "v1", "epoch-1": "v0", "epoch-2": "v1", BEST: "v1"},
           "versions": [{"version": "v0", "run_id": "old", "epoch": 1, "test_loss": 3.0},
                        {"version": "v1", "run_id": "old", "epoch": 2, "test_loss": 1.0}]}
    store.index_path.write_text(json.dumps(old))
    assert store.resolve(BEST).version == "v1"  # loads as before
    add(store, 2.0, None, epoch=3, run_id="legacy")  # no fingerprint: competes with the old ones, loses
    assert store.resolve(BEST).version == "v1"
    add(store, 5.0, A, epoch=1, run_id="new")  # a fingerprinted version is the best of its own test set
    index = store.read_index()
    assert index["aliases"][BEST] == "v3" and index["aliases"][best_alias(A)] == "v3"
    assert store.test_sets()[None]["best"] == "v1"  # the old best is still known, and reachable as v1
    assert math.isclose(store.resolve("v1").meta["test_loss"], 1.0)
