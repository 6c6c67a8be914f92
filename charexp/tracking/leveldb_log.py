"""The LevelDB-style log that W&B writes its `.wandb` files in, read the way W&B reads it: every chunk checked.

A file is a 7-byte header (`:W&B`, u16 0xBEE1, u8 0), then 32 KiB blocks of chunks. A chunk is a 7-byte
header (crc u32, length u16, type u8: 1 full, 2 first, 3 middle, 4 last) and its payload; a chunk never
crosses a block, and a block's last < 7 bytes are zero padding. A record is one full chunk, or a first
chunk, any middle chunks and a last chunk.

The checksum is W&B's, not LevelDB's: plain IEEE `zlib.crc32` (not CRC32C, not masked) over the type byte
and the payload. wandb's Python writer and reader (`wandb/sdk/internal/datastore.py`) compute it as
`zlib.crc32(data, zlib.crc32(bytes([type])))`, and wandb-core's Go reader (`core/pkg/leveldb`,
`CRCAlgoIEEE` -> `crc32.Checksum(buf[type:end], IEEE)`) over the same bytes.

On damage (a checksum mismatch, a length that overflows its block, an unknown type, a zeroed header with
data after it) the reader drops the rest of the block and carries on at the next block, skipping the middle
and last chunks of a record whose start was lost, as the Go reader's `Recover` does. A damaged chunk is
never returned; each one is counted.

A chunk that runs past the end of the data is not damage: the file may still be growing. The reader stops
there without moving on, and the next call re-reads it.
"""

from __future__ import annotations

import struct
import zlib
from typing import Iterator

BLOCK = 32 * 1024
HEADER = 7
FILE_HEADER = b":W&B" + struct.pack("<HB", 0xBEE1, 0)
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4
KINDS = (FULL, FIRST, MIDDLE, LAST)


def chunk_crc(kind: int, payload: bytes) -> int:
    """W&B's checksum of a chunk: IEEE CRC-32 of its type byte followed by its payload (datastore.py seeds
    `zlib.crc32(payload, ...)` with the type byte's CRC, which is the same thing)."""
    return zlib.crc32(payload, zlib.crc32(bytes([kind])))


class LogReader:
    """Complete, checked records of a log that may still be growing, read from where the last call stopped."""

    def __init__(self, offset: int = len(FILE_HEADER)):
        self.offset = offset  # where the next read starts: after the last complete record, or past skipped damage
        self.damaged = 0  # damaged chunks seen (each one also cost the rest of its block)
        self._recovering = False  # after a skip: the lost record's middle and last chunks are expected, not damage

    def read(self, data: bytes) -> Iterator[bytes]:
        """The payload of every complete record in `data`, the file's bytes from `self.offset` on.

        `offset` moves past each record before it is yielded, and past skipped damage.
        """
        base, pos = self.offset, self.offset
        end_of_data = base + len(data)
        pending: list[bytes] | None = None  # the chunks so far of a record begun by a first chunk

        def skip_block() -> None:
            nonlocal pos, pending
            self.damaged += 1
            pos = pos - pos % BLOCK + BLOCK
            pending, self.offset, self._recovering = None, pos, True

        while True:
            block_end = pos - pos % BLOCK + BLOCK
            if block_end - pos < HEADER:  # padding: no room for a header before the block ends
                pos = block_end
                continue
            if pos + HEADER > end_of_data:
                return
            crc, length, kind = struct.unpack_from("<IHB", data, pos - base)
            end = pos + HEADER + length
            if crc == 0 and length == 0 and kind == 0:
                # W&B never writes a zero header; zeros up to the end of the data may be the live tail
                rest = data[pos - base: block_end - base]
                if end_of_data <= block_end and not rest.strip(b"\0"):
                    return
                skip_block()
                continue
            if end > block_end or kind not in KINDS:
                skip_block()
                continue
            if end > end_of_data:  # not all written yet
                return
            payload = data[pos + HEADER - base: end - base]
            if crc != chunk_crc(kind, payload):
                skip_block()
                continue
            start, pos = pos, end
            if kind in (FULL, FIRST):
                if pending is not None:  # the record before this one never got its last chunk
                    self.damaged += 1
                    self.offset = start  # so that the next read does not count it again
                self._recovering = False
                if kind == FIRST:
                    pending = [payload]
                    continue
                self.offset = pos
                yield payload
                pending = None
            elif pending is None:  # a middle or last chunk without its first
                self.damaged += 0 if self._recovering else 1
                self.offset = pos
            elif kind == MIDDLE:
                pending.append(payload)
            else:
                self.offset = pos
                yield b"".join([*pending, payload])
                pending = None
