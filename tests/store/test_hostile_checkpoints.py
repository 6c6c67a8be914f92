"""Hostile checkpoints, systematically: each damaged or lying copy of a real tiny checkpoint is refused in one
sentence that names the file and says what to do, never a traceback, before any large allocation, and the same
way wherever a checkpoint is loaded (load_checkpoint, sample.py --checkpoint, init_from)."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Callable

import pytest
import torch
from safetensors.torch import save_file

from charexp.config import Config
from charexp.errors import CharexpError
from charexp.model import CharLSTM
from charexp.store.checkpoint import META, WEIGHTS, load_checkpoint

from properties import one_sentence
from test_checkpoint import make_checkpoint


def split_safetensors(data: bytes) -> tuple[dict, bytes]:
    size = struct.unpack("<Q", data[:8])[0]
    return json.loads(data[8:8 + size]), data[8 + size:]


def join_safetensors(header: dict, body: bytes) -> bytes:
    raw = json.dumps(header).encode()
    return struct.pack("<Q", len(raw)) + raw + body


def edit_meta(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(ckpt: Path) -> None:
        meta = json.loads((ckpt / META).read_text())
        edit(meta)
        (ckpt / META).write_text(json.dumps(meta))
    return apply


def edit_header(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    def apply(ckpt: Path) -> None:
        header, body = split_safetensors((ckpt / WEIGHTS).read_bytes())
        edit(header)
        (ckpt / WEIGHTS).write_bytes(join_safetensors(header, body))
    return apply


def edit_tensors(edit: Callable[[dict], None]) -> Callable[[Path], None]:
    """Rewrite model.safetensors as a valid file holding edited tensors."""
    def apply(ckpt: Path) -> None:
        from safetensors.torch import load_file

        state = load_file(str(ckpt / WEIGHTS))
        edit(state)
        save_file(state, str(ckpt / WEIGHTS))
    return apply


def first_tensor(header: dict) -> str:
    return next(name for name in header if name != "__metadata__")


def set_item(mapping: dict, key: str, value) -> None:
    mapping[key] = value


def poison(value: float) -> Callable[[dict], None]:
    def edit(state: dict) -> None:
        state["head.weight"][0, 0] = value
    return edit


def write_bytes(name: str, data: bytes) -> Callable[[Path], None]:
    return lambda ckpt: (ckpt / name).write_bytes(data)


def huge_config(meta: dict) -> None:
    meta["config"].update(layers=16, hidden=8192, embed=8192)  # 34 GB of weights, were they allocated


CASES: dict[str, Callable[[Path], None]] = {
    # damaged JSON
    "json cut short": lambda c: (c / META).write_bytes((c / META).read_bytes()[:100]),
    "json not UTF-8": write_bytes(META, b'{"format": "\xff\xfe"}'),
    "json a list": write_bytes(META, b"[1, 2, 3]"),
    "json empty": write_bytes(META, b""),
    "json nested past the recursion limit": write_bytes(META, b"[" * 100_000),
    "json with a huge int": write_bytes(META, b'{"format": ' + b"1" * 5000 + b"}"),
    "config not a mapping": edit_meta(lambda m: set_item(m, "config", [1])),
    "config claims a huge model": edit_meta(huge_config),
    # the vocabulary
    "vocabulary with a duplicate character": edit_meta(lambda m: m["vocab"].__setitem__(-1, m["vocab"][-2])),
    "empty vocabulary": edit_meta(lambda m: set_item(m, "vocab", [])),
    "vocabulary without end-of-line first": edit_meta(lambda m: m["vocab"].reverse()),
    "vocabulary of words": edit_meta(lambda m: m["vocab"].__setitem__(-1, "ab")),
    # a safetensors header that lies
    "huge declared header length": lambda c: (c / WEIGHTS).write_bytes(
        struct.pack("<Q", 2**63) + (c / WEIGHTS).read_bytes()[8:]),
    "header length past the end of the file": lambda c: (c / WEIGHTS).write_bytes(
        struct.pack("<Q", (c / WEIGHTS).stat().st_size) + (c / WEIGHTS).read_bytes()[8:]),
    "header not JSON": lambda c: (c / WEIGHTS).write_bytes(struct.pack("<Q", 5) + b"{{{{{" + b"\0" * 64),
    "offsets past the end of the data": edit_header(
        lambda h: h[first_tensor(h)].__setitem__("data_offsets", [0, 10**12])),
    "offsets overlapping": edit_header(lambda h: [h[name].__setitem__("data_offsets", [0, h[name]["data_offsets"][1]
                                                                                       - h[name]["data_offsets"][0]])
                                                 for name in h if name != "__metadata__"]),
    "a size that disagrees with the shape": edit_header(lambda h: h[first_tensor(h)]["shape"].__setitem__(0, 10**9)),
    "dtype of another size": edit_header(lambda h: h[first_tensor(h)].__setitem__("dtype", "F64")),
    "dtype of the same size": edit_header(lambda h: [h[n].__setitem__("dtype", "I32")
                                                     for n in h if n != "__metadata__"]),
    "shape of the same size": edit_header(lambda h: h["head.weight"].__setitem__("shape",
                                                                                 h["head.weight"]["shape"][::-1])),
    "unknown dtype": edit_header(lambda h: h[first_tensor(h)].__setitem__("dtype", "Q99")),
    # the tensors themselves
    "NaN weight": edit_tensors(poison(float("nan"))),
    "infinite weight": edit_tensors(poison(float("inf"))),
    "extra tensor": edit_tensors(lambda s: set_item(s, "backdoor", torch.zeros(3))),
    "missing tensor": edit_tensors(lambda s: s.pop("head.bias")),
    "tensor of the wrong shape": edit_tensors(lambda s: set_item(s, "head.bias", torch.zeros(3))),
    "tensor of another dtype": edit_tensors(lambda s: set_item(s, "head.bias", s["head.bias"].double())),
    "no tensors": edit_tensors(lambda s: s.clear()),
    "weights empty": write_bytes(WEIGHTS, b""),
    "weights a pickle": write_bytes(WEIGHTS, b"\x80\x04\x95\x05\x00\x00\x00\x00\x00\x00\x00N."),
}


def hostile(tmp_path: Path, case: str) -> Path:
    ckpt = tmp_path / "ckpt"
    make_checkpoint(ckpt)
    CASES[case](ckpt)
    return ckpt


def assert_refused(err: BaseException, ckpt: Path) -> None:
    message = one_sentence(err)
    assert str(ckpt) in message, message  # names the checkpoint
    assert any(word in message for word in ("pick another", "pass a", "start a new")), message  # says what to do


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_hostile_checkpoint_is_refused_in_one_sentence(tmp_path, case, monkeypatch):
    ckpt = hostile(tmp_path, case)
    honest = sum(p.numel() for p in make_checkpoint(tmp_path / "honest").parameters())
    built: list[tuple[str, int]] = []  # (device, parameters) of every CharLSTM the load builds
    real = CharLSTM.from_config.__func__

    def spy(cls, cfg, vocab_size):
        model = real(cls, cfg, vocab_size)
        built.append((next(model.parameters()).device.type, sum(p.numel() for p in model.parameters())))
        return model

    monkeypatch.setattr(CharLSTM, "from_config", classmethod(spy))
    with pytest.raises(CharexpError) as err:
        load_checkpoint(ckpt)
    assert_refused(err.value, ckpt)
    # a lying config is checked on the meta device (no memory); a real model is only ever the honest size
    assert all(params <= honest for device, params in built if device != "meta"), built


@pytest.mark.parametrize("case", ["NaN weight", "empty vocabulary", "offsets past the end of the data"])
def test_sampling_and_init_from_refuse_it_the_same_way(tmp_path, case):
    from charexp.errors import run_typer_app
    from charexp.sample.command import app
    from charexp.train.init_from import load_init

    ckpt = hostile(tmp_path, case)
    with pytest.raises(CharexpError) as err:
        run_typer_app(app, ["--checkpoint", str(ckpt), "--device", "cpu", "K"], prog_name="sample.py")
    assert_refused(err.value, ckpt)
    with pytest.raises(CharexpError) as err:
        load_init(Config(init_from=str(ckpt), artifacts_dir=str(tmp_path / "artifacts")))
    assert_refused(err.value, ckpt)


def test_the_undamaged_checkpoint_loads(tmp_path):
    make_checkpoint(tmp_path / "ckpt")
    assert load_checkpoint(tmp_path / "ckpt").vocab.chars[0] == "\n"
