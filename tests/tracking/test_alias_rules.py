"""Every alias the local store gives a version is one W&B accepts as it is (its own validator), so the same
references work online after `wandb sync` or a live run's log_artifact."""

from __future__ import annotations

import pytest
from wandb.sdk.artifacts._validators import validate_aliases
from wandb.sdk.lib.runid import generate_id

from charexp.errors import CharexpError
from charexp.store.artifacts import ArtifactStore, run_alias


def write(dest):
    dest.mkdir()
    (dest / "model.safetensors").write_bytes(b"weights")


def test_the_stores_aliases_are_valid_wandb_aliases(tmp_path):
    store = ArtifactStore(tmp_path, "charlstm")
    store.check_writable()
    runs = [generate_id(), generate_id()]  # W&B's own run ids
    given: set[str] = set()
    for n, run_id in enumerate(runs * 2):
        meta = {"run_id": run_id, "step": 10 * (n + 1), "epoch": n + 1, "test_loss": 2.0 - n / 10,
                "test_set": {"id": "abcdef1234"}}
        given |= set(store.add(write, meta, [f"epoch-{n + 1}"]).aliases)
    assert {"latest", f"run-{runs[0]}", f"run-{runs[1]}", "epoch-1", "best-test-loss"} <= given
    assert any(a.startswith("best-test-loss-") for a in given)
    assert validate_aliases(sorted(given)) == sorted(given)  # raises ValueError on a ':' or '/'


@pytest.mark.parametrize("bad", ["run:1", "a/b", "..", ""])
def test_an_alias_wandb_would_refuse_is_refused_here_first(tmp_path, bad):
    with pytest.raises(ValueError):
        validate_aliases([f"x{bad}y" if bad in ("run:1", "a/b") else "x:y"])
    store = ArtifactStore(tmp_path, "charlstm")
    store.check_writable()
    with pytest.raises(CharexpError, match="is not allowed"):
        store.add(write, {"run_id": "r1", "step": 1}, [bad])
    assert run_alias(bad) is None or ":" not in run_alias(bad)
