"""The `.wandb` reader checks every chunk as W&B does (issue 21): the checksum on a real run, the chunk layout
on logs written the way wandb's own writer writes them, damage skipped to the next block, and a growing file
waited for, not mistaken for damage."""

from __future__ import annotations

import random
import shutil
import struct
import zlib
from pathlib import Path

from charexp.tracking.leveldb_log import BLOCK, FILE_HEADER, FIRST, FULL, HEADER, LAST, MIDDLE, LogReader, chunk_crc
from charexp.tracking.wandb_files import RunFile, RunRecords, read_run

from foundation import reference  # noqa: F401  (the session's reference run, a fixture)
from foundation import walk_log as walk

DATA = BLOCK - HEADER  # payload room of a whole block


def chunk(kind: int, data: bytes) -> bytes:
    # the checksum as wandb-core's Go writer computes it (IEEE CRC-32 over the type byte and the data),
    # written out independently of chunk_crc
    return struct.pack("<IHB", zlib.crc32(bytes([kind]) + data), len(data), kind) + data


def write_log(payloads: list[bytes]) -> bytes:
    """A log as wandb's writer lays it out (`datastore.py` `_write_data`): zero padding where a header no longer
    fits, records split into first, middle and last chunks at block ends."""
    out = bytearray(FILE_HEADER)
    for data in payloads:
        room = BLOCK - len(out) % BLOCK
        if room < HEADER:
            out += b"\0" * room
            room = BLOCK
        if len(data) + HEADER <= room:
            out += chunk(FULL, data)
            continue
        out += chunk(FIRST, data[: room - HEADER])
        rest = data[room - HEADER:]
        while len(rest) > DATA:
            out += chunk(MIDDLE, rest[:DATA])
            rest = rest[DATA:]
        out += chunk(LAST, rest)
    return bytes(out)


def payloads(n: int = 40, seed: int = 0) -> list[bytes]:
    rng = random.Random(seed)
    # the first leaves 3 bytes at the end of block 0 (padding), one spans three blocks (first, middle, last)
    sizes = [BLOCK - 3 - 2 * HEADER, 2 * BLOCK + 100] + [rng.randint(0, 3000) for _ in range(n)]
    return [bytes([i % 251]) * size for i, size in enumerate(sizes)]


def read_all(data: bytes) -> tuple[list[bytes], LogReader]:
    reader = LogReader()
    return list(reader.read(data[reader.offset:])), reader


def test_the_checksum_is_wandbs() -> None:
    data = b'{"test/loss": 1.25}'
    for kind in (FULL, FIRST, MIDDLE, LAST):
        # datastore.py: zlib.crc32(data, self._crc[dtype]) with self._crc[x] = zlib.crc32(chr(x)) & 0xFFFFFFFF
        assert chunk_crc(kind, data) == zlib.crc32(data, zlib.crc32(bytes([kind])) & 0xFFFFFFFF)
        assert chunk_crc(kind, data) == zlib.crc32(bytes([kind]) + data)  # core/pkg/leveldb: crc(buf[type:end])
    assert chunk_crc(FULL, data) != zlib.crc32(data)  # the type byte is part of it


def test_every_chunk_of_a_real_run_passes(reference) -> None:  # noqa: F811
    data = reference.wandb_file.read_bytes()
    assert data[:7] == FILE_HEADER
    chunks = walk(data)
    assert len(chunks) > 20
    for pos, crc, length, kind in chunks:
        assert crc == chunk_crc(kind, data[pos + HEADER: pos + HEADER + length]), f"chunk at {pos}"
    records = read_run(reference.wandb_file)
    assert (records.damaged, records.incomplete) == (0, 0)
    assert records.metric("test/loss") and records.exit_code == 0


def test_padding_and_records_across_blocks_round_trip() -> None:
    sent = payloads()
    data = write_log(sent)
    kinds = [kind for _, _, _, kind in walk(data)]
    assert {FIRST, MIDDLE, LAST} <= set(kinds) and len(data) > 3 * BLOCK
    assert data[BLOCK - 3: BLOCK] == b"\0\0\0"  # the padding case is in the log
    got, reader = read_all(data)
    assert got == sent and reader.damaged == 0 and reader.offset == len(data)


def test_a_growing_log_is_waited_for_not_counted_as_damage() -> None:
    sent = payloads(n=12)
    data = write_log(sent)
    ends = sorted({pos + d for pos, _, length, _ in walk(data) for d in (-1, 0, 1, 3, HEADER, HEADER + length - 1)})
    cuts = [c for c in ends if len(FILE_HEADER) <= c <= len(data)] + [len(data)]
    reader, got = LogReader(), []
    for cut in cuts:  # the file as a live reader sees it, a little longer each time
        got += reader.read(data[reader.offset:cut])
        assert reader.damaged == 0, cut
        assert got == sent[: len(got)]
        fresh, fresh_reader = read_all(data[:cut])  # and every prefix read at once
        assert fresh == sent[: len(fresh)] and fresh_reader.damaged == 0
    assert got == sent


def test_damage_skips_to_the_next_block() -> None:
    sent = payloads()
    data = bytearray(write_log(sent))
    chunks = walk(bytes(data))
    # damage the 4th chunk of block 3 (after the record that spans blocks 1 and 2)
    in_block3 = [c for c in chunks if c[0] // BLOCK == 3]
    pos = in_block3[3][0]
    data[pos + HEADER] ^= 0x10
    got, reader = read_all(bytes(data))
    assert reader.damaged == 1
    # everything before the damaged chunk, nothing else of its block, everything that starts in a later block
    kept = [p for p in sent if p in got]
    assert got == kept and set(got) <= set(sent)
    lost = [c for c in in_block3[3:] if c[3] in (FULL, FIRST)]
    assert len(sent) - len(got) == len(lost)


def test_a_record_that_lost_its_start_is_skipped_quietly_after_damage() -> None:
    sent = payloads()
    data = bytearray(write_log(sent))
    first = next(pos for pos, _, _, kind in walk(bytes(data)) if kind == FIRST and pos // BLOCK == 1)
    data[first + 2] ^= 0x01  # the first chunk's checksum: its middle and last chunks follow in blocks 2 and 3
    got, reader = read_all(bytes(data))
    assert reader.damaged == 1 and sent[1] not in got and set(got) <= set(sent)


def test_a_zeroed_block_is_damage_a_zeroed_tail_is_not_yet_written() -> None:
    sent = payloads()
    data = bytearray(write_log(sent))
    data[3 * BLOCK: 4 * BLOCK] = bytes(BLOCK)
    got, reader = read_all(bytes(data))
    assert reader.damaged == 1 and set(got) <= set(sent) and len(got) < len(sent)
    tail = write_log(sent[:5]) + bytes(20)  # zeros at the end of a live file: wait for them
    got, reader = read_all(tail)
    assert got == sent[:5] and reader.damaged == 0 and reader.offset == len(tail) - 20


def test_a_record_without_its_last_chunk_counts_once() -> None:
    # a first chunk followed by another record's: the first record never ended
    head = FILE_HEADER + chunk(FIRST, b"a" * 10)
    second = chunk(FIRST, b"b" * 10)
    log = head + second + chunk(LAST, b"c" * 5) + chunk(FULL, b"d")
    reader, got = LogReader(), []
    for cut in (len(head) + len(second), len(log)):  # a read that stops inside the second record, then the rest
        got += reader.read(log[reader.offset:cut])
    assert got == [b"b" * 10 + b"c" * 5, b"d"] and reader.damaged == 1
    orphan = FILE_HEADER + chunk(LAST, b"x") + chunk(FULL, b"y")  # a last chunk with no first
    got, reader = read_all(orphan)
    assert got == [b"y"] and reader.damaged == 1


def test_bad_lengths_and_types_are_damage() -> None:
    good = chunk(FULL, b"ok")
    too_long = struct.pack("<IHB", 0, BLOCK, FULL) + b"x" * 10  # overflows its block
    unknown = struct.pack("<IHB", zlib.crc32(b"\x07ab"), 2, 7) + b"ab"  # a valid checksum, no such type
    for bad in (too_long, unknown):
        got, reader = read_all(FILE_HEADER + good + bad + good)
        assert got == [b"ok"] and reader.damaged == 1  # the second good chunk shares the damaged block


def record_with_history(items: dict[str, str], step: int | None = None):
    from wandb.proto import wandb_internal_pb2

    record = wandb_internal_pb2.Record()
    for key, value_json in items.items():
        record.history.item.add(key=key, value_json=value_json)
    if step is not None:
        record.history.step.num = step
    return record


def test_records_with_odd_fields_are_skipped_not_raised() -> None:
    records = RunRecords()
    for items in ({"_step": '"4O"', "loss": "1.5"}, {"_step": "true", "loss": "1.5"}, {"_step": "-3", "loss": "1.5"},
                  {"_step": "2.5", "loss": "1.5"}, {"_step": "NaN", "loss": "1.5"},  # at no real step
                  {"_step": "5", "loss": "NaN"}, {"_step": "6", "loss": "Infinity"}, {"_step": "7", "loss": "true"},
                  {"_step": "8", "loss": '{"x": 1'}, {"_step": "9", "loss": "[" * 100_000},  # JSON too deep
                  {"_step": "10.0", "loss": "2.5"}):
        records.add(record_with_history(items))
    records.add(record_with_history({"loss": "3.5"}, step=11))
    assert records.metric("loss") == [(10, 2.5), (11, 3.5)]
    assert [row["_step"] for row in records.history] == [5, 6, 7, 8, 9, 10.0, 11]
    assert RunRecords(history=[{"_step": "x", "loss": 1.0}, {"loss": 2.0}]).metric("loss") == [(1, 2.0)]


def test_a_real_run_polled_while_it_grows(reference, tmp_path: Path) -> None:  # noqa: F811
    data = reference.wandb_file.read_bytes()
    whole = read_run(reference.wandb_file)
    live = tmp_path / "run-live.wandb"
    follower = RunFile(live)
    assert follower.poll().history == []  # not there yet
    rng = random.Random(21)
    cuts = sorted({rng.randrange(len(data)) for _ in range(60)} | {3, 7, 8} | {pos for pos, *_ in walk(data)})
    with open(live, "wb") as f:
        written = 0
        for cut in [*cuts, len(data)]:
            f.write(data[written:cut])
            f.flush()
            written = cut
            records = follower.poll()
            assert records.damaged == 0, cut
            assert records.history == whole.history[: len(records.history)]
    assert (records.history, records.summary, records.exit_code) == (whole.history, whole.summary, whole.exit_code)
    assert records.incomplete == 0


def test_a_damaged_file_header_is_counted_and_the_records_still_read(reference, tmp_path: Path) -> None:  # noqa: F811
    copy = tmp_path / "run-x.wandb"
    shutil.copy(reference.wandb_file, copy)
    with open(copy, "r+b") as f:
        f.write(b";")
    records = read_run(copy)
    assert records.damaged == 1 and records.history == read_run(reference.wandb_file).history
