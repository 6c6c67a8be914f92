"""Hard kills (SIGKILL) at exact points of a training run; the resumed run ends bit-identical to an uninterrupted one.

Each kill is injected by inject.py at a named call inside the real code path (no sleeps, no races), then
the run is resumed with `train.py --resume ID`. After the kill and after the resume the artifact store must
be whole (check_store), and the resumed run must publish exactly the versions the straight run did, with
the same final weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from charexp.store.checkpoint import load_state
from charexp.tracking.rundir import RunDir
from faults.helpers import (
    RUN_ID,
    TOTAL_STEPS,
    assert_same_final_weights,
    check_store,
    fault,
    leftovers,
    published,
    run_with_faults,
)

from foundation import run_main


def dir_with_half_weights(store: Path, run: RunDir) -> None:
    """Killed while model.safetensors was half written: only a temporary directory holds it."""
    (tmp,) = [p for p in store.iterdir() if p.name.endswith(".tmp")]
    assert tmp.is_dir() and tmp.name.startswith(".v0.")
    assert [p.name for p in tmp.iterdir()] == ["model.safetensors"]


def state_temp_file(store: Path, run: RunDir) -> None:
    """Killed between writing the new state's temporary file and renaming it over state.pt."""
    assert any(name.startswith(".state.pt.") for name in leftovers(run.path))


def unindexed_version(store: Path, run: RunDir) -> None:
    """Killed after v1's directory was complete, before index.json named it."""
    assert (store / "v1" / "model.safetensors").is_file() and (store / "v1" / "checkpoint.json").is_file()
    assert any(name.startswith(".index.json.") for name in leftovers(store))


def nothing(store: Path, run: RunDir) -> None:
    pass


@dataclass
class KillPoint:
    name: str
    fault: dict
    state_step: int  # the step of the resume state the kill leaves
    versions: int  # versions recorded in index.json when the kill happens
    left: Callable[[Path, RunDir], None] = field(default=nothing)  # what the kill left behind, proving where it hit


KILL_POINTS = [
    # between backward() and optimizer.step() of step 15
    KillPoint("mid-step", fault("torch.nn.utils:clip_grad_norm_", 15, "kill"), state_step=10, versions=0),
    # inside the epoch-2 evaluation, after its first batch was scored
    KillPoint("mid-eval", fault("charexp.train.evaluate:masked_loss_sum", 2, "kill", when="after"), state_step=30,
              versions=1),
    # epoch 1's model.safetensors half written
    KillPoint("mid-checkpoint-write", fault("safetensors.torch:save_file", 1, "truncate_kill", when="after"),
              state_step=10, versions=0, left=dir_with_half_weights),
    # the epoch-end resume state written to its temporary file, not yet renamed (v0 already published)
    KillPoint("mid-state-write", fault("os:replace", 2, "kill", path=r"/state\.pt$"), state_step=10, versions=1,
              left=state_temp_file),
    # v1 written, index.json's new content in its temporary file, not yet renamed
    KillPoint("mid-index-update", fault("os:replace", 2, "kill", path=r"/index\.json$"), state_step=30, versions=1,
              left=unindexed_version),
    # index.json names v0, the epoch-end state is not saved yet: the resumed run must not publish epoch 1 twice
    KillPoint("after-index-update", fault("os:replace", 1, "kill", when="after", path=r"/index\.json$"), state_step=10,
              versions=1),
]


@pytest.mark.parametrize("point", KILL_POINTS, ids=lambda p: p.name)
def test_sigkill_then_resume_ends_identical_to_an_uninterrupted_run(point, straight, fault_config, tmp_path):
    store, run = tmp_path / "artifacts" / "charlstm", RunDir(tmp_path / "runs", RUN_ID)
    out = run_with_faults(["--config", str(fault_config())], tmp_path, [point.fault], env={"WANDB_RUN_ID": RUN_ID})
    assert out.returncode == -9, out.stderr[-3000:]
    assert len(out.fired) == 1 and point.fault["target"] in out.fired[0]  # died exactly there, nowhere else

    index = check_store(tmp_path / "artifacts", empty=point.versions == 0)
    expected = [v[:4] for v in published(straight.index)]
    assert [v[:4] for v in published(index)] == expected[: point.versions]
    assert load_state(run.state_path)["position"]["step"] == point.state_step
    assert run.read_summary()["state"] == "running"
    point.left(store, run)

    code, log = run_main(["--resume", RUN_ID])
    assert code == 0, log
    index = check_store(tmp_path / "artifacts")
    assert published(index) == published(straight.index)  # each version once, same steps, losses and aliases
    assert_same_final_weights(straight.artifacts, straight.state_path, tmp_path / "artifacts", run.state_path)
    assert run.read_summary()["state"] == "finished" and run.read_summary()["step"] == TOTAL_STEPS
    # nothing half-written is left where a version could be taken from: only known versions, no temp directories
    assert sorted(p.name for p in store.iterdir() if p.is_dir()) == sorted(v["version"] for v in index["versions"])
    assert leftovers(store) == [] and leftovers(run.path) == []  # the kill's temporary files are cleaned up too


def test_a_repeated_publish_is_the_same_version_only_when_run_step_and_bytes_match(tmp_path):
    """What makes a resumed run's repeat of a finished publish harmless, and nothing else collapse into one version."""
    from charexp.store.artifacts import ArtifactStore

    def writer(weights: bytes):
        def write(dest: Path) -> None:
            dest.mkdir()
            (dest / "model.safetensors").write_bytes(weights)
            (dest / "checkpoint.json").write_text("{}")
        return write

    store = ArtifactStore(tmp_path, "charlstm")
    meta = {"run_id": "run1", "step": 20, "test_loss": 2.0}
    assert store.add(writer(b"a"), meta, ["epoch-1"]).version == "v0"
    again = store.add(writer(b"a"), meta, ["epoch-1"])
    assert again.version == "v0"
    assert set(again.aliases) == {"latest", "epoch-1", "best-test-loss", "run-run1", "run-run1-best"}
    assert store.add(writer(b"b"), meta, ["epoch-1"]).version == "v1"  # same run and step, other weights
    assert store.add(writer(b"a"), {**meta, "run_id": "run2"}, []).version == "v2"  # same bytes, another run
    assert store.add(writer(b"a"), {**meta, "step": 40}, []).version == "v3"  # same run, another step
    assert [v.version for v in store.versions()] == ["v0", "v1", "v2", "v3"]
    assert sorted(p.name for p in store.dir.iterdir() if p.is_dir()) == ["v0", "v1", "v2", "v3"]
