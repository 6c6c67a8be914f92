"""Artifact references as a user types them: aliases, versions, NAME:ALIAS, a directory, the online form."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest

from charexp.errors import CharexpError
from charexp.store.artifacts import BEST, ArtifactStore
from charexp.store.references import resolve_artifact


def build_store(root: Path, name: str = "charlstm") -> ArtifactStore:
    """v0..v5 from two runs: run a (epochs 1-3), run b (epochs 1-3); best is v1 (loss 1.5)."""
    store = ArtifactStore(root, name)
    for i, (run, epoch, loss) in enumerate([("a", 1, 2.0), ("a", 2, 1.5), ("a", 3, 1.7), ("b", 1, 2.2), ("b", 2, 1.9),
                                            ("b", 3, 1.6)]):
        def write(dest: Path, i=i) -> None:
            dest.mkdir(parents=True)
            (dest / "which").write_text(str(i))
        store.add(write, {"run_id": run, "epoch": epoch, "test_loss": loss}, [f"epoch-{epoch}"])
    return store


def which(path: Path) -> int:
    return int((path / "which").read_text())


@pytest.fixture
def store(tmp_path) -> ArtifactStore:
    return build_store(tmp_path / "artifacts")


@pytest.mark.parametrize("ref, expected", [
    ("best-test-loss", 1), ("latest", 5), ("epoch-3", 5), ("epoch-1", 3), ("v4", 4), ("v0", 0),
    ("charlstm:best-test-loss", 1), ("charlstm:v2", 2), ("charlstm:latest", 5), ("  latest  ", 5),
])
def test_reference_forms_resolve(store, ref, expected):
    path = resolve_artifact(ref, "artifacts").path
    assert which(path) == expected
    assert Path(os.path.realpath(path)).is_relative_to(os.path.realpath("artifacts/charlstm"))


def test_other_collection_by_name_and_by_default_name(tmp_path, store):
    build_store(tmp_path / "artifacts", "phase2")
    assert which(resolve_artifact("phase2:v3", "artifacts").path) == 3
    assert which(resolve_artifact("v3", "artifacts", default_name="phase2").path) == 3
    assert resolve_artifact("v3", "artifacts", default_name="phase2").path.parent.name == "phase2"


def test_checkpoint_directory_path_resolves(tmp_path, store):
    direct = tmp_path / "some" / "checkpoint"
    direct.mkdir(parents=True)
    assert resolve_artifact(str(direct)).path == direct
    assert resolve_artifact("artifacts/charlstm/v2").path == Path("artifacts/charlstm/v2")
    assert which(resolve_artifact("./artifacts/charlstm/v2").path) == 2


def test_unknown_alias_names_the_ones_that_exist(store):
    with pytest.raises(CharexpError) as err:
        resolve_artifact("epoch-9", "artifacts").path
    message = str(err.value)
    assert "'epoch-9'" in message and "\n" not in message
    for name in (BEST, "latest", "epoch-1", "epoch-2", "epoch-3", "v0", "v5"):
        assert name in message
    with pytest.raises(CharexpError, match="v0"):
        resolve_artifact("charlstm:v17", "artifacts").path


def test_unknown_collection_and_empty_store_are_clear(tmp_path):
    with pytest.raises(CharexpError, match="train a model first"):
        resolve_artifact("best-test-loss", tmp_path / "nothing-here").path
    (tmp_path / "artifacts" / "charlstm").mkdir(parents=True)
    with pytest.raises(CharexpError, match="empty"):
        resolve_artifact("latest", tmp_path / "artifacts").path


# (reference, the part its refusal must quote): each is refused for its own reason, not by a lucky accident
# such as an unrelated missing file; run from work/, where ../x does not exist.
REFUSED = [
    ("../x", "'../x'"), ("../../nothing-here", "'../../nothing-here'"), ("charlstm:..", "alias '..'"),
    ("charlstm:../v0", "'charlstm:../v0'"), ("..:latest", "'..:latest'"), ("../charlstm:v0", "'../charlstm:v0'"),
    ("x/../charlstm:v0", "project '..'"), ("charlstm:v0/..", "'charlstm:v0/..'"), ("..\\x", "'..\\\\x'"),
    ("/nonexistent/dir", "'/nonexistent/dir'"), ("charlstm:", "alias ''"), (":latest:x", "artifact name ':latest'"),
    ("", "empty"),
]


@pytest.fixture
def work(tmp_path, store) -> Path:
    """Run from work/, with the store copied there, so that `..` and `../..` are directories this test controls."""
    shutil.copytree(tmp_path / "artifacts", tmp_path / "work" / "artifacts")
    os.chdir(tmp_path / "work")
    return tmp_path / "work"


@pytest.mark.parametrize("ref, quoted", REFUSED)
def test_names_never_escape_the_store(work, ref, quoted):
    with pytest.raises(CharexpError) as err:
        resolve_artifact(ref, "artifacts").path
    message = str(err.value)
    assert quoted in message and "\n" not in message, message


@pytest.mark.parametrize("ref", ["..", "../x", "artifacts/charlstm/v2"])
def test_a_directory_the_user_names_is_used_as_it_is(work, ref):
    """The path form is the only way out of the store, and it returns exactly the directory typed."""
    (work.parent / "x").mkdir()
    assert resolve_artifact(ref, "artifacts").path == Path(ref)


def test_a_tampered_index_cannot_point_outside_the_store(store, tmp_path):
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "which").write_text("99")
    index = json.loads(store.index_path.read_text())
    index["aliases"]["evil"] = "../../secret"
    index["versions"].append({"version": "../../secret", "test_loss": 0.1})
    store.index_path.write_text(json.dumps(index))
    with pytest.raises(CharexpError):
        resolve_artifact("evil", "artifacts").path


def test_online_reference_without_an_api_key_is_a_clear_error(store):
    with pytest.raises(CharexpError) as err:
        resolve_artifact("someone/charexp/charlstm:best-test-loss", "artifacts").path
    message = str(err.value)
    assert "API key" in message and "wandb login" in message and "\n" not in message


def test_online_reference_parts_are_checked_before_any_network_call(store, monkeypatch):
    import wandb

    calls = []

    class NoNetwork:  # stands in for wandb.Api: records the call, then fails as an unreachable server would
        def __init__(self, *args, **kwargs):
            calls.append("Api")

        def artifact(self, name, type=None):
            calls.append(name)
            raise ConnectionError("network is unreachable")

    monkeypatch.setenv("WANDB_API_KEY", "x" * 40)
    monkeypatch.setattr(wandb, "Api", NoNetwork)
    for ref, part in [("someone/../charlstm:v0", "project '..'"), ("someone/charexp/charlstm:..", "alias '..'"),
                      (".../charexp/charlstm:v0", "entity '...'")]:
        with pytest.raises(CharexpError) as err:
            resolve_artifact(ref, "artifacts").path
        assert part in str(err.value) and "not allowed" in str(err.value), str(err.value)
    assert calls == []  # refused by the name check, not by a failed download
    # the control: a well-formed online reference does reach the API (and its failure is one sentence)
    with pytest.raises(CharexpError, match="could not fetch someone/charexp/charlstm:v0 from W&B"):
        resolve_artifact("someone/charexp/charlstm:v0", "artifacts").path
    assert calls == ["Api", "someone/charexp/charlstm:v0"]


# --- run-scoped references ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("ref, expected", [
    ("a", 2), ("run-a", 2), ("b", 5), ("run-b", 5), ("charlstm:run-a", 2),
    ("a:epoch-1", 0), ("run-a:epoch-2", 1), ("b:epoch-1", 3), ("a:latest", 2), ("a:v1", 1),
    ("a:best-test-loss", 1), ("run-b:best-test-loss", 5),
])
def test_run_scoped_references_resolve_to_that_runs_versions(store, ref, expected):
    assert which(resolve_artifact(ref, "artifacts").path) == expected


def test_every_version_gets_the_run_alias_held_by_the_runs_newest(store):
    index = json.loads(store.index_path.read_text())
    assert index["aliases"]["run-a"] == "v2" and index["aliases"]["run-b"] == "v5"
    assert [v.version for v in store.versions() if "run-b" in v.aliases] == ["v5"]  # it moved, like latest


def test_a_run_directory_resolves_to_its_runs_newest_version(tmp_path, store):
    run_dir = tmp_path / "runs" / "a"
    run_dir.mkdir(parents=True)
    (run_dir / "summary.json").write_text(json.dumps({"run_id": "a", "state": "finished", "artifact": "charlstm"}))
    resolved = resolve_artifact("runs/a", "artifacts")
    assert which(resolved.path) == 2
    assert resolved.note == "run directory runs/a = charlstm:v2 (run-a, epoch 3) from the local store artifacts/"


def test_shared_epoch_alias_says_which_run_answered(store):
    note = resolve_artifact("epoch-1", "artifacts").note
    assert note == ("epoch-1 = charlstm:v3 from the local store artifacts/, held by run b (the newest of 2 runs that "
                    "have one; name a run with RUN_ID:epoch-1)")


@pytest.mark.parametrize("ref, message", [
    ("nosuch", "'charlstm' has no version or alias 'nosuch'; it has: best-test-loss, latest, epoch-1, epoch-2, "
               "epoch-3; versions by run: a (v0, v1, v2), b (v3, v4, v5)"),
    ("a:epoch-9", "run 'a' has no version 'epoch-9' in 'charlstm'; use latest, best-test-loss, epoch-N or one of its "
                  "versions: v0 (epoch 1), v1 (epoch 2), v2 (epoch 3)"),
    ("a:v4", "run 'a' has no version 'v4' in 'charlstm'; use latest, best-test-loss, epoch-N or one of its "
             "versions: v0 (epoch 1), v1 (epoch 2), v2 (epoch 3)"),
    ("run-zz:epoch-1", "no version in 'charlstm' under artifacts comes from run 'zz'; runs with versions here: a, b"),
    ("zz:epoch-1", "'zz' is neither a local artifact collection under artifacts nor a run with versions in "
                   "'charlstm'; use NAME:ALIAS or RUN_ID:ALIAS (see sample.py --help)"),
])
def test_unknown_run_references_say_what_there_is(store, ref, message):
    with pytest.raises(CharexpError) as err:
        resolve_artifact(ref, "artifacts")
    assert str(err.value) == message
