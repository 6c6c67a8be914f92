"""The local artifact store: versions, aliases, best-test-loss under a file lock, a readable index."""

from __future__ import annotations

import json
import math
import multiprocessing
import random
from pathlib import Path

import pytest

from charexp.errors import CharexpError
from charexp.store.artifacts import BEST, ArtifactStore


def write_marker(text: str):
    def write(dest: Path) -> None:
        tmp = dest.with_name(dest.name + ".tmp")
        tmp.mkdir(parents=True)
        (tmp / "payload.txt").write_text(text)
        tmp.rename(dest)

    return write


def add(store: ArtifactStore, loss, epoch: int = 1, run_id: str = "r", aliases: list[str] | None = None):
    meta = {"run_id": run_id, "epoch": epoch, "test_loss": loss}
    return store.add(write_marker(f"{run_id}/{epoch}/{loss}"), meta, [f"epoch-{epoch}"] if aliases is None else aliases)


def test_versions_and_aliases_in_a_readable_index(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts", "charlstm")
    v0 = add(store, 3.0, epoch=1)
    v1 = add(store, 2.5, epoch=2)
    assert (v0.version, v1.version) == ("v0", "v1")
    assert set(v0.aliases) == {"latest", "run-r", "run-r-best", "epoch-1", BEST}  # as published: they move to v1
    assert set(v1.aliases) == {"latest", "run-r", "run-r-best", "epoch-2", BEST}
    text = (tmp_path / "artifacts" / "charlstm" / "index.json").read_text()
    assert text.count("\n") > 10  # indented for people
    index = json.loads(text)
    assert index["collection"] == "charlstm" and index["type"] == "model"
    assert index["aliases"] == {"latest": "v1", "run-r": "v1", "run-r-best": "v1", "epoch-1": "v0", "epoch-2": "v1",
                                BEST: "v1"}
    assert [(v["version"], v["epoch"], v["test_loss"]) for v in index["versions"]] == [("v0", 1, 3.0), ("v1", 2, 2.5)]
    assert (store.dir / "v0" / "payload.txt").read_text() == "r/1/3.0"
    assert [v.version for v in store.versions()] == ["v0", "v1"]
    assert store.resolve("epoch-1").path == store.dir / "v0" and store.resolve("v1").meta["test_loss"] == 2.5


def test_best_test_loss_only_ever_moves_to_a_better_version(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts", "charlstm")
    losses = [3.0, 2.5, 2.7, 2.5, float("nan"), float("inf"), None, 2.4, 2.45, 9.0]
    best_so_far = math.inf
    for i, loss in enumerate(losses):
        add(store, loss, epoch=i + 1, run_id=f"run{i % 3}")
        if isinstance(loss, float) and math.isfinite(loss) and loss < best_so_far:
            best_so_far = loss
        best = store.resolve(BEST)
        assert best.meta["test_loss"] == best_so_far, (i, loss)
    assert store.resolve(BEST).version == "v7"
    assert store.resolve("latest").version == "v9"


def test_epoch_aliases_move_to_the_newest_run(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts", "charlstm")
    add(store, 2.0, epoch=1, run_id="first")
    add(store, 2.2, epoch=1, run_id="second")
    assert store.resolve("epoch-1").meta["run_id"] == "second"
    assert store.resolve(BEST).meta["run_id"] == "first"


def _concurrent_writer(root: str, worker: int, losses: list[float], start) -> None:
    store = ArtifactStore(root, "charlstm")
    start.wait()
    for i, loss in enumerate(losses):
        add(store, loss, epoch=i + 1, run_id=f"worker{worker}")


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")  # Python 3.12+ on fork
def test_concurrent_processes_lose_no_version_and_best_is_the_true_minimum(tmp_path):
    rng = random.Random(0)
    workers = 4
    losses = {w: [round(rng.uniform(1.0, 4.0), 6) for _ in range(6)] for w in range(workers)}
    ctx = multiprocessing.get_context("fork")  # the children only write files; no torch work after the fork
    start = ctx.Barrier(workers)
    procs = [ctx.Process(target=_concurrent_writer, args=(str(tmp_path / "artifacts"), w, losses[w], start))
             for w in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0] * workers
    store = ArtifactStore(tmp_path / "artifacts", "charlstm")
    versions = store.versions()
    assert sorted(int(v.version[1:]) for v in versions) == list(range(workers * 6))
    written = sorted((v.meta["run_id"], v.meta["epoch"], v.meta["test_loss"]) for v in versions)
    assert written == sorted((f"worker{w}", i + 1, loss) for w in range(workers) for i, loss in enumerate(losses[w]))
    for v in versions:
        assert (v.path / "payload.txt").read_text() == f"{v.meta['run_id']}/{v.meta['epoch']}/{v.meta['test_loss']}"
    true_min = min(loss for ls in losses.values() for loss in ls)
    assert store.resolve(BEST).meta["test_loss"] == true_min
    assert sorted(p.name for p in store.dir.iterdir()) == sorted([".lock", "index.json",
                                                                  *(v.version for v in versions)])


def test_orphans_of_a_killed_writer_are_cleaned_and_never_listed(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts", "charlstm")
    add(store, 2.0)
    (store.dir / "v1").mkdir()  # a version directory whose index entry was never written
    (store.dir / "v1" / "model.safetensors").write_bytes(b"half")
    (store.dir / ".v1.abc.tmp").mkdir()  # a checkpoint being written when the process died
    assert [v.version for v in store.versions()] == ["v0"]
    with pytest.raises(CharexpError):
        store.resolve("v1")
    new = add(store, 1.5)
    assert new.version == "v1" and (new.path / "payload.txt").read_text() == "r/1/1.5"
    assert not (store.dir / ".v1.abc.tmp").exists()


def test_a_stale_index_temp_file_is_removed_by_the_next_writer(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts", "charlstm")
    add(store, 2.0)
    (store.dir / ".index.json.k1ll3d.tmp").write_text("{half")  # index.json's next content when the process died
    add(store, 1.5)
    assert sorted(p.name for p in store.dir.iterdir()) == [".lock", "index.json", "v0", "v1"]


def test_check_writable_refuses_a_store_that_cannot_hold_a_checkpoint_and_leaves_nothing(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts", "charlstm")
    store.check_writable()
    assert store.dir.is_dir() and list(store.dir.iterdir()) == []  # its probe directory is gone
    (tmp_path / "blocked").write_text("a file where the store's root should be\n")
    with pytest.raises(CharexpError) as err:
        ArtifactStore(tmp_path / "blocked", "charlstm").check_writable()
    assert "could not write a checkpoint to" in str(err.value) and "Not a directory" in str(err.value)
    assert (tmp_path / "blocked").read_text() == "a file where the store's root should be\n"


@pytest.mark.parametrize("name", ["../x", "..", "a/b", "/abs", "", ".hidden", "x y"])
def test_names_that_could_escape_the_store_are_refused(tmp_path, name):
    with pytest.raises(CharexpError):
        ArtifactStore(tmp_path / "artifacts", name)
    store = ArtifactStore(tmp_path / "artifacts", "charlstm")
    with pytest.raises(CharexpError):
        add(store, 1.0, aliases=[name])
    assert not (tmp_path / "x").exists()


def test_corrupt_index_is_a_clear_error(tmp_path):
    store = ArtifactStore(tmp_path / "artifacts", "charlstm")
    add(store, 2.0)
    store.index_path.write_text("{not json")
    with pytest.raises(CharexpError, match="index.json"):
        store.resolve("latest")
