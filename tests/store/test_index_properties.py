"""Properties of the artifact store's index.json: whatever the file holds, every reader (versions, resolve, the
test sets) gives an answer or one sentence; a real store's index, damaged anywhere, never becomes a traceback."""

from __future__ import annotations

import json

from hypothesis import example, given
from hypothesis import strategies as st

from charexp.store.artifacts import ArtifactStore

from properties import damaged, json_values, parsed_or_refused, scratch

with scratch() as _folder:
    _store = ArtifactStore(_folder, "charlstm")
    _store.check_writable()  # makes the collection's directory, as training does first

    def _write(dest):
        dest.mkdir()
        (dest / "model.safetensors").write_bytes(b"weights")

    _store.add(_write, {"run_id": "r1", "step": 10, "epoch": 1, "test_loss": 1.5}, ["epoch-1"])
    _store.add(_write, {"run_id": "r1", "step": 20, "epoch": 2, "test_loss": 1.4}, ["epoch-2"])
    VALID = _store.index_path.read_bytes()


def read_everything(data: bytes) -> None:
    with scratch() as folder:
        store = ArtifactStore(folder, "charlstm")
        store.dir.mkdir(parents=True)
        store.index_path.write_bytes(data)
        for read in (store.versions, lambda: store.resolve("latest"), lambda: store.resolve("v0"), store.read_index):
            parsed_or_refused(read)


@given(st.binary(max_size=300))
@example(b"[]")
@example(b"{}")
@example(b'{"aliases": {}, "versions": [5]}')
@example(b'{"aliases": [], "versions": []}')
@example(b'{"aliases": {}, "versions": [{"version": "vx"}]}')
@example(b"[" * 100_000)
@example(b'{"a": ' + b"1" * 5000 + b"}")
def test_any_bytes_are_read_or_refused_in_one_sentence(data: bytes) -> None:
    read_everything(data)


@given(json_values())
def test_any_json_is_read_or_refused_in_one_sentence(value: object) -> None:
    read_everything(json.dumps(value).encode())


@given(st.data())
def test_a_damaged_real_index_is_read_or_refused_in_one_sentence(data: st.DataObject) -> None:
    read_everything(data.draw(damaged(VALID)))


def test_the_real_index_reads_back() -> None:
    with scratch() as folder:
        store = ArtifactStore(folder, "charlstm")
        store.dir.mkdir(parents=True)
        store.index_path.write_bytes(VALID)
        assert [v.version for v in store.versions()] == ["v0", "v1"]
        assert store.resolve("latest").version == "v1" and store.resolve("epoch-1").version == "v0"
