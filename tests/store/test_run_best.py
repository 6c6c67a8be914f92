"""run-<id>-best: each run's own best version, a W&B alias that a reference and the sweep's hint can name."""

from __future__ import annotations

from charexp.store.artifacts import ArtifactStore, run_best_alias
from charexp.store.references import resolve_artifact

TEST_SET = {"id": "abcdef1234"}


def write(dest):
    dest.mkdir()
    (dest / "model.safetensors").write_bytes(b"weights")


def publish(store: ArtifactStore, run_id: str, step: int, loss: float) -> tuple[str, ...]:
    meta = {"run_id": run_id, "step": step, "epoch": step // 10, "test_loss": loss, "test_set": TEST_SET}
    return store.add(write, meta, [f"epoch-{step // 10}"]).aliases


def test_a_runs_best_alias_moves_only_to_a_lower_test_loss_of_that_run(tmp_path):
    store = ArtifactStore(tmp_path, "charlstm")
    store.check_writable()
    assert "run-a-best" in publish(store, "a", 10, 2.0)  # v0
    assert "run-a-best" in publish(store, "a", 20, 1.5)  # v1: lower
    assert "run-a-best" not in publish(store, "a", 30, 1.7)  # v2: worse, the alias stays on v1
    assert "run-b-best" in publish(store, "b", 10, 1.0)  # v3: another run's better model does not take a's alias
    assert "run-a-best" not in publish(store, "a", 40, 1.5)  # v4: a tie keeps the earlier version
    assert "run-a-best" not in publish(store, "a", 50, float("nan"))  # v5: never a NaN
    index = store.read_index()["aliases"]
    assert index["run-a-best"] == "v1" and index["run-b-best"] == "v3" and index["run-a"] == "v5"
    assert index["best-test-loss"] == "v3"  # the store-wide best is b's
    assert resolve_artifact("run-a-best", tmp_path).path == store.dir / "v1"
    assert resolve_artifact("a:best-test-loss", tmp_path).path == store.dir / "v1"  # the same, by the local grammar


def test_a_run_id_that_cannot_be_an_alias_gets_no_best_alias():
    assert run_best_alias("abc123") == "run-abc123-best"
    assert run_best_alias("") is None and run_best_alias(None) is None and run_best_alias("a/b") is None
