"""`charexp store prune`: old versions go, every version a reference names stays, the index stays whole."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from filelock import FileLock, Timeout
from test_artifacts import add

from charexp.store.artifacts import BEST, ArtifactStore
from charexp.store.prune import prune
from charexp.store.references import resolve_artifact


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    """Run a: epochs 1-4 (its own best, epoch 2, holds no alias); run b: epochs 1-3, better, newer."""
    store = ArtifactStore(tmp_path / "artifacts", "charlstm")
    for epoch, loss in enumerate([3.0, 2.0, 2.5, 2.6], start=1):
        add(store, loss, epoch=epoch, run_id="a")  # v0..v3
    for epoch, loss in enumerate([1.5, 1.8, 1.9], start=1):
        add(store, loss, epoch=epoch, run_id="b")  # v4..v6
    return store


def snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_the_premise(store):
    aliases = store.read_index()["aliases"]
    store_wide = {k: v for k, v in aliases.items() if not k.endswith("-best") or k == BEST}
    assert store_wide == {"latest": "v6", "run-a": "v3", "run-b": "v6", "epoch-1": "v4", "epoch-2": "v5",
                          "epoch-3": "v6", "epoch-4": "v3", BEST: "v4"}
    assert store.resolve_in_run("a", BEST).version == "v1"  # a run's own best: no store-wide alias names it


def test_a_runs_own_best_is_kept_in_a_store_written_before_run_best_aliases(store):
    with store.lock():
        index = store.read_index()
        index["aliases"] = {k: v for k, v in index["aliases"].items() if not k.startswith("run-") or
                            not k.endswith("-best")}
        store.write_index(index)
    assert "v1" not in store.read_index()["aliases"].values()
    assert [v for v, _, _ in prune(store).deleted] == ["v0", "v2"]
    assert store.resolve_in_run("a", BEST).version == "v1"


def test_prune_keeps_every_version_an_alias_or_a_runs_best_names(store):
    aliases = store.read_index()["aliases"]
    before = {alias: store.resolve(alias).version for alias in aliases}
    sizes = {v: sum(p.stat().st_size for p in (store.dir / v).rglob("*") if p.is_file()) for v in ("v0", "v2")}

    pruned = prune(store)

    assert [v for v, _, _ in pruned.deleted] == ["v0", "v2"] and pruned.kept == ["v1", "v3", "v4", "v5", "v6"]
    assert pruned.freed == sizes["v0"] + sizes["v2"] > 0
    index = json.loads(store.index_path.read_text())  # still valid JSON, in the shape the store trusts
    assert store.read_index() == index and index["aliases"] == aliases
    assert [v["version"] for v in index["versions"]] == ["v1", "v3", "v4", "v5", "v6"]
    assert not (store.dir / "v0").exists() and not (store.dir / "v2").exists()
    assert all((store.dir / v / "payload.txt").is_file() for v in pruned.kept)
    # every reference answers as before
    assert {alias: store.resolve(alias).version for alias in aliases} == before
    assert store.resolve_in_run("a", BEST).version == "v1"
    assert resolve_artifact("run-a", store.root).path == store.dir / "v3"
    assert resolve_artifact("b:best-test-loss", store.root).path == store.dir / "v4"
    assert add(store, 1.0, epoch=4, run_id="b").version == "v7"  # numbering goes on from the newest


def test_a_version_with_an_alias_of_its_own_is_kept(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts", "charlstm")
    add(store, 3.0, epoch=1, run_id="a", aliases=["epoch-1", "production"])
    add(store, 2.0, epoch=2, run_id="a")
    add(store, 2.5, epoch=1, run_id="b")  # takes epoch-1 from v0; v1 stays best and run-a
    assert [v for v, _, _ in prune(store).deleted] == []
    assert store.resolve("production").version == "v0"


def test_dry_run_deletes_nothing_and_says_what_it_would_free(store, monkeypatch, capsys):
    from charexp.cli import main

    before = snapshot(store.root)
    monkeypatch.setattr(sys, "argv", ["charexp", "store", "prune", "--dry-run", "--artifacts-dir", str(store.root)])
    with pytest.raises(SystemExit) as exit_:
        main()
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert snapshot(store.root) == before
    freed = prune(store, dry_run=True).freed
    assert "would delete charlstm:v0 (run a," in out and "would delete charlstm:v2 (run a," in out
    assert "charlstm:v1" not in out and f"would delete 2 versions from {store.dir}, freeing {freed:,} bytes" in out

    monkeypatch.setattr(sys, "argv", ["charexp", "store", "prune", "--artifacts-dir", str(store.root)])
    with pytest.raises(SystemExit):
        main()
    assert f"deleted 2 versions from {store.dir}, freeing {freed:,} bytes; 5 versions kept" in capsys.readouterr().out
    assert snapshot(store.root) != before and not (store.dir / "v0").exists()


def test_the_index_is_written_under_the_store_lock_before_any_directory_goes(store, monkeypatch):
    import charexp.store.prune as module

    seen = []
    real_write = ArtifactStore.write_index

    def write_index(self, index):
        with pytest.raises(Timeout):  # another writer would wait: the lock is held
            FileLock(str(self.dir / ".lock"), timeout=0).acquire()
        seen.append(all((self.dir / v).exists() for v in ("v0", "v2")))
        real_write(self, index)

    def killed(path, **kwargs):
        raise KeyboardInterrupt  # a kill right after the index no longer names v0 and v2

    monkeypatch.setattr(ArtifactStore, "write_index", write_index)
    monkeypatch.setattr(module.shutil, "rmtree", killed)
    with pytest.raises(KeyboardInterrupt):
        prune(store)
    assert seen == [True]
    assert [v["version"] for v in store.read_index()["versions"]] == ["v1", "v3", "v4", "v5", "v6"]
    monkeypatch.undo()
    assert (store.dir / "v0").is_dir()  # left behind, named by nothing...
    add(store, 1.0, epoch=4, run_id="b")
    assert not (store.dir / "v0").exists() and not (store.dir / "v2").exists()  # ...and cleared by the next writer


def test_a_missing_store_is_one_sentence(tmp_path, monkeypatch, capsys):
    from charexp.cli import main

    monkeypatch.setattr(sys, "argv", ["charexp", "store", "prune", "--artifacts-dir", str(tmp_path / "nowhere")])
    with pytest.raises(SystemExit) as exit_:
        main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and "Traceback" not in err
    assert err.strip().splitlines() == [f"error: no local artifact collection 'charlstm' under {tmp_path / 'nowhere'} "
                                        f"(no {tmp_path / 'nowhere' / 'charlstm' / 'index.json'}); pass "
                                        "--artifacts-dir and --artifact-name of an existing store"]
    assert not (tmp_path / "nowhere").exists()
