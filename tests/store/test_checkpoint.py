"""Checkpoints (model.safetensors + checkpoint.json) and resume states: round trip, clear errors, no unpickling."""

from __future__ import annotations

import dataclasses
import json
import pickle
from pathlib import Path

import pytest
import torch

from charexp import __version__
from charexp.config import Config
from charexp.data.corpus import Vocab
from charexp.errors import CharexpError
from charexp.model import CharLSTM
from charexp.store.checkpoint import (
    META,
    STATE_FORMAT,
    WEIGHTS,
    ResumeState,
    load_checkpoint,
    load_state,
    save_state,
    write_checkpoint,
)

from foundation import DEVICE, run_main

VOCAB = Vocab.from_texts(["KIRK: Mister Spock.", "SPOCK: Captain."])
CONFIG = Config(layers=2, hidden=12, embed=5, lr=0.003, seed=4)
META_IN = {"run_id": "abc12345", "epoch": 3, "step": 120, "test_loss": 1.9,
           "metrics": {"test/loss": 1.9, "test/bpc": 2.74}}


def make_checkpoint(dest: Path) -> CharLSTM:
    torch.manual_seed(0)
    model = CharLSTM.from_config(CONFIG, len(VOCAB)).to(DEVICE)
    write_checkpoint(dest, model, CONFIG, VOCAB, META_IN)
    return model


class Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_round_trip(tmp_path):
    model = make_checkpoint(tmp_path / "ckpt")
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [META, WEIGHTS]
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]  # no temporary directory left
    ckpt = load_checkpoint(tmp_path / "ckpt", DEVICE)
    assert ckpt.config == CONFIG and ckpt.vocab == VOCAB
    for key, value in model.state_dict().items():
        assert torch.equal(ckpt.model.state_dict()[key], value), key
    meta = json.loads((tmp_path / "ckpt" / META).read_text())
    for key, value in META_IN.items():
        assert meta[key] == value
    assert meta["config"] == CONFIG.to_dict() and meta["vocab"] == list(VOCAB.chars)
    assert meta["charexp_version"] == __version__ and meta["torch_version"] == torch.__version__


def test_an_existing_checkpoint_is_never_overwritten(tmp_path):
    make_checkpoint(tmp_path / "ckpt")
    before = {p.name: p.read_bytes() for p in (tmp_path / "ckpt").iterdir()}
    with pytest.raises(CharexpError):
        torch.manual_seed(5)
        write_checkpoint(tmp_path / "ckpt", CharLSTM.from_config(CONFIG, len(VOCAB)), CONFIG, VOCAB, META_IN)
    assert {p.name: p.read_bytes() for p in (tmp_path / "ckpt").iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt"]


def corrupt(path: Path, how: str) -> None:
    weights, meta = path / WEIGHTS, path / META
    if how == "truncated weights":
        weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    elif how == "empty weights":
        weights.write_bytes(b"")
    elif how == "missing weights":
        weights.unlink()
    elif how == "corrupt json":
        meta.write_text(meta.read_text()[:-40])
    elif how == "json not a checkpoint":
        meta.write_text(json.dumps({"hello": "world"}))
    elif how == "missing json":
        meta.unlink()
    elif how == "hidden differs from weights":
        data = json.loads(meta.read_text())
        data["config"]["hidden"] = 16
        meta.write_text(json.dumps(data))
    elif how == "vocab differs from weights":
        data = json.loads(meta.read_text())
        data["vocab"] = data["vocab"][:-3]
        meta.write_text(json.dumps(data))
    elif how == "json without config":
        data = json.loads(meta.read_text())
        del data["config"]
        meta.write_text(json.dumps(data))
    elif how == "vocab not characters":
        data = json.loads(meta.read_text())
        data["vocab"] = list(range(len(data["vocab"])))
        meta.write_text(json.dumps(data))
    elif how == "bad config in json":
        data = json.loads(meta.read_text())
        data["config"]["layers"] = -1
        meta.write_text(json.dumps(data))


@pytest.mark.parametrize("how", ["truncated weights", "empty weights", "missing weights", "corrupt json",
                                 "json not a checkpoint", "missing json", "hidden differs from weights",
                                 "vocab differs from weights", "bad config in json", "json without config",
                                 "vocab not characters"])
def test_corrupt_or_inconsistent_checkpoint_is_one_clear_error(tmp_path, how):
    make_checkpoint(tmp_path / "ckpt")
    corrupt(tmp_path / "ckpt", how)
    with pytest.raises(CharexpError) as err:
        load_checkpoint(tmp_path / "ckpt")
    assert "\n" not in str(err.value) and "ckpt" in str(err.value)


def test_a_file_or_missing_path_is_not_a_checkpoint(tmp_path):
    (tmp_path / "file").write_text("x")
    for path in (tmp_path / "file", tmp_path / "nothing"):
        with pytest.raises(CharexpError, match="directory"):
            load_checkpoint(path)


def test_pickle_payload_as_model_safetensors_is_refused_without_running(tmp_path):
    make_checkpoint(tmp_path / "ckpt")
    marker = tmp_path / "pwned"
    for payload in (pickle.dumps(Payload(marker), protocol=2), _torch_saved(Payload(marker))):
        (tmp_path / "ckpt" / WEIGHTS).write_bytes(payload)
        with pytest.raises(CharexpError):
            load_checkpoint(tmp_path / "ckpt")
        assert not marker.exists()
    pickle.loads(pickle.dumps(Payload(marker)))  # the payload really does run when unpickled
    assert marker.exists()


def _torch_saved(obj) -> bytes:
    import io

    buffer = io.BytesIO()
    torch.save({"model": obj}, buffer)
    return buffer.getvalue()


def test_resume_state_round_trip(tmp_path):
    state = {"format": "charexp-state/1", "run_id": "x", "model": {"w": torch.arange(6.0)},
             "rng_cpu": torch.get_rng_state(), "position": {"epoch": 1, "batch": 2, "step": 3}}
    save_state(tmp_path / "state.pt", state)
    loaded = load_state(tmp_path / "state.pt")
    assert torch.equal(loaded["model"]["w"], state["model"]["w"]) and loaded["position"] == state["position"]
    assert [p.name for p in tmp_path.iterdir()] == ["state.pt"]


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_pickle_payload_as_resume_state_is_refused_without_running(tmp_path, writer):
    marker = tmp_path / "pwned"
    payload = Payload(marker)
    if writer == "pickle":
        data = pickle.dumps({"format": "charexp-state/1", "run_id": "evil", "x": payload}, protocol=2)
    else:
        data = _torch_saved(payload)
    run = tmp_path / "runs" / "evil"
    run.mkdir(parents=True)
    (run / "state.pt").write_bytes(data)
    with pytest.raises(CharexpError):
        load_state(run / "state.pt")
    assert not marker.exists()
    with pytest.raises(CharexpError):  # offered to train.py as the state of a run to resume
        run_main(["--resume", "evil"])
    assert not marker.exists()
    assert not list(tmp_path.glob("wandb/*run-*"))


def test_truncated_or_foreign_resume_state_is_refused(tmp_path):
    save_state(tmp_path / "state.pt", {"format": "charexp-state/1", "model": {"w": torch.zeros(1000)}})
    data = (tmp_path / "state.pt").read_bytes()
    (tmp_path / "state.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(CharexpError, match="state"):
        load_state(tmp_path / "state.pt")
    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(CharexpError, match="not a charexp resume state"):
        load_state(tmp_path / "other.pt")


def test_the_resume_layout_round_trips_and_old_states_without_rejections_still_load(tmp_path):
    state = ResumeState(run_id="abcd1234", config={"lr": 0.01}, vocab=["a", "b"], model={"w": torch.arange(3.0)},
                        optimizer={"state": {}}, rng_cpu=torch.get_rng_state(), rng_cuda=[],
                        position={"epoch": 1, "step": 7}, best={"test/loss": 2.0, "epoch": 1, "step": 7},
                        versions=["v0 (latest)"], published_step=7,
                        rejections={"count": 1})
    save_state(tmp_path / "state.pt", state.to_dict())
    raw = load_state(tmp_path / "state.pt")
    assert raw["format"] == STATE_FORMAT and list(raw)[1:] == [f.name for f in dataclasses.fields(ResumeState)]
    back = ResumeState.from_dict(raw)
    assert torch.equal(back.model["w"], state.model["w"])
    assert back.position == state.position and back.rejections == {"count": 1}
    del raw["rejections"]  # a state written before reject_worse existed
    assert ResumeState.from_dict(raw).rejections is None
    del raw["optimizer"]
    with pytest.raises(CharexpError, match=r"is damaged \(it has no 'optimizer'\); start a new run"):
        ResumeState.from_dict(raw, tmp_path / "state.pt")
