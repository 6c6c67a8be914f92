"""Properties of the checkpoint reader: any damage to checkpoint.json or model.safetensors gives a usable
Checkpoint (finite weights, a vocabulary the model fits) or one sentence; an undamaged one round-trips."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch
from hypothesis import example, given
from hypothesis import strategies as st

from charexp.store.checkpoint import META, WEIGHTS, Checkpoint, load_checkpoint

from properties import damaged, json_values, parsed_or_refused, scratch
from test_checkpoint import make_checkpoint

with tempfile.TemporaryDirectory() as _folder:
    _model = make_checkpoint(Path(_folder) / "ckpt")
    GOOD = {name: (Path(_folder) / "ckpt" / name).read_bytes() for name in (META, WEIGHTS)}
    WEIGHTS_IN = {k: v.detach().cpu().clone() for k, v in _model.state_dict().items()}


def load(meta: bytes, weights: bytes) -> Checkpoint | None:
    with scratch() as folder:
        (folder / META).write_bytes(meta)
        (folder / WEIGHTS).write_bytes(weights)
        ckpt = parsed_or_refused(lambda: load_checkpoint(folder))
    if ckpt is not None:  # usable: unique characters, the model's size, finite weights
        chars = ckpt.vocab.chars
        assert len(set(chars)) == len(chars) and chars[:2] == ("\n", "\ufffd")
        assert ckpt.model.embedding.num_embeddings == len(chars) == ckpt.model.head.out_features
        assert all(torch.isfinite(t).all() for t in ckpt.model.state_dict().values())
    return ckpt


@given(damaged(GOOD[META]))
def test_a_damaged_checkpoint_json_loads_or_gives_one_sentence(meta):
    load(meta, GOOD[WEIGHTS])


@given(damaged(GOOD[WEIGHTS]))
@example(b"\xff" * 8 + GOOD[WEIGHTS][8:])  # a header length of 2^64-1
def test_a_damaged_safetensors_file_loads_or_gives_one_sentence(weights):
    load(GOOD[META], weights)


paths = st.sampled_from([("config", "hidden"), ("config", "layers"), ("config", "embed"), ("config", "lr"),
                         ("config",), ("vocab",), ("vocab", 0), ("vocab", 5), ("format",), ("test_loss",)])


@given(st.lists(st.tuples(paths, json_values(4) | st.integers(0, 9000)), min_size=1, max_size=3))
@example([(("vocab", 5), "\n")])  # a duplicate character
@example([(("config", "hidden"), 8192), (("config", "layers"), 16)])  # a 34 GB model: refused from the header
def test_any_value_anywhere_in_checkpoint_json_loads_or_gives_one_sentence(edits):
    meta = json.loads(GOOD[META])
    for path, value in edits:
        where = meta
        for key in path[:-1]:
            where = where[key] if isinstance(where, dict) else where
        if isinstance(where, dict) or (isinstance(where, list) and isinstance(path[-1], int) and path[-1] < len(where)):
            where[path[-1]] = value
    load(json.dumps(meta).encode(), GOOD[WEIGHTS])


def test_an_undamaged_checkpoint_round_trips():
    ckpt = load(GOOD[META], GOOD[WEIGHTS])
    assert ckpt is not None
    for name, tensor in ckpt.model.state_dict().items():
        assert torch.equal(tensor, WEIGHTS_IN[name]), name
