"""Compact id codecs, defined in plain Python: the wire format, byte for byte.

Two formats, both versioned and checksummed, for id lists and timeline entries kept in caches (Redis,
memcached) and queues. Every backend writes the same bytes and reads them with the same errors.

Building blocks
---------------
- **varint**: an unsigned 64-bit value in LEB128 (7 bits per byte, low bits first, the high bit says
  "more"). Canonical only: at most 10 bytes, the 10th holding 0 or 1, and no trailing zero byte after the
  first (no overlong form), so one value has one encoding.
- **zigzag**: a signed delta as an unsigned value, small either way: 0, -1, 1, -2, ... -> 0, 1, 2, 3, ...
- **delta**: each value minus the previous one (the first minus 0), wrapping modulo 2**64. Sorted ids,
  ascending or descending, and timestamps give small deltas; any int64 list round-trips exactly.
- **checksum**: CRC-32 (the zlib/IEEE polynomial) of every byte before it, 4 bytes little-endian at the
  end. It catches truncation, bit flips and bursts; it is not a signature.

Id list, version 1
------------------
``b"I" 0x01 | varint n | n x varint zigzag(delta) | crc32``

Entries, version 1: ``(score, post_id, author_id)`` triples, in columns
---------------------------------------------------------------------
``b"E" 0x01 | flags | varint n | scores | post ids | authors | crc32``

- flags: bit 0 set when scores are float64; the other bits are 0.
- scores: n x varint zigzag(delta of score keys). An int64 score is its own key; a float64 score's key is
  its bit pattern as int64 with the 63 value bits flipped when the sign bit is set, an order-preserving
  bijection, so every float64 (-0.0, infinities, NaN payloads) round-trips bit for bit and scores in feed
  order give small deltas.
- post ids: n x varint zigzag(delta).
- authors: varint m, the number of distinct authors; m x varint zigzag(delta) of the distinct author ids
  in order of first appearance; then n x varint, each entry's index in that table. A home timeline has
  few distinct authors, so most entries take one byte for their author.

Decoding checks, in this order, and raises ``ValueError`` with these messages (``{kind}`` is "id list"
or "entries"):

1. fewer bytes than the smallest valid encoding: ``truncated {kind}: N bytes, the smallest is M``;
2. the first byte: ``not an igcore {kind}: bad magic byte 0x..``;
3. the version: ``unsupported {kind} version V (this igcore reads version 1)``;
4. the checksum: ``corrupted {kind}: checksum mismatch``;
5. then the structure, front to back: ``malformed {kind}: REASON at byte P`` where P is the offset of the
   offending varint or byte. Reasons: ``truncated varint``, ``varint beyond 64 bits``, ``overlong
   varint``, ``unknown flags 0x..``, ``count N exceeds the K bytes left`` (a count is checked against the
   bytes that remain before anything is allocated: every value takes at least one byte),
   ``author index I beyond the table of M``, ``author table of M for N entries``, ``K bytes after the
   last value``.
"""

from __future__ import annotations

import struct
import typing
import zlib
from collections.abc import Iterable
from typing import NoReturn, cast

import numpy as np

from .. import _messages

# Not `from typing import TYPE_CHECKING`: a kernel module exports exactly the names of its stub.
if typing.TYPE_CHECKING:
    from numpy.typing import NDArray

# The kernels, as src/igcore/_kernels/codec.pyi states them; the rest of this module is their helpers.
__all__ = ["decode_entries", "decode_ids", "encode_entries", "encode_ids"]

MASK64 = (1 << 64) - 1
INT64_MAX = (1 << 63) - 1

IDS_MAGIC = ord("I")
ENTRIES_MAGIC = ord("E")
VERSION = 1
FLOAT_SCORES = 0x01
CRC_BYTES = 4
# magic, version, a one-byte count, the checksum (+ flags for entries; + an empty author table)
SMALLEST_IDS = 2 + 1 + CRC_BYTES
SMALLEST_ENTRIES = 3 + 1 + 1 + CRC_BYTES


# -- building blocks -------------------------------------------------------------------------------------


def zigzag(value: int) -> int:
    """A signed 64-bit value (given in -2**63 .. 2**63-1) as an unsigned one, small for small values."""
    return ((value << 1) ^ (value >> 63)) & MASK64


def unzigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def as_int64(value: int) -> int:
    """An integer taken modulo 2**64, as a signed 64-bit value."""
    value &= MASK64
    return value - (1 << 64) if value > INT64_MAX else value


def write_varint(out: bytearray, value: int) -> None:
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def float_key(score: float) -> int:
    """The order-preserving int64 key of a float64's bits (its own inverse)."""
    bits: int = struct.unpack("<q", struct.pack("<d", score))[0]
    return bits ^ INT64_MAX if bits < 0 else bits


def key_float(key: int) -> float:
    bits = key ^ INT64_MAX if key < 0 else key
    return cast(float, struct.unpack("<d", struct.pack("<q", bits))[0])


def write_deltas(out: bytearray, values: Iterable[int]) -> None:
    previous = 0
    for value in values:
        write_varint(out, zigzag(as_int64(value - previous)))
        previous = value


def seal(out: bytearray) -> bytes:
    out += struct.pack("<I", zlib.crc32(out))
    return bytes(out)


class Reader:
    """Reads the varints of one encoding, between its header and its checksum."""

    def __init__(self, data: bytes, kind: str, start: int) -> None:
        self.data = data
        self.kind = kind
        self.pos = start
        self.end = len(data) - CRC_BYTES

    def fail(self, reason: str, at: int) -> NoReturn:
        raise ValueError(_messages.MALFORMED_ENCODING.format(kind=self.kind, reason=reason, at=at))

    def varint(self) -> int:
        start = self.pos
        value = 0
        for i in range(10):
            if self.pos >= self.end:
                self.fail(_messages.TRUNCATED_VARINT, start)
            byte = self.data[self.pos]
            self.pos += 1
            if i == 9 and byte > 1:
                self.fail(_messages.VARINT_BEYOND_64_BITS, start)
            value |= (byte & 0x7F) << (7 * i)
            if byte < 0x80:
                if byte == 0 and i > 0:
                    self.fail(_messages.OVERLONG_VARINT, start)
                return value
        self.fail(_messages.VARINT_BEYOND_64_BITS, start)

    def count(self) -> int:
        """A count of the values that follow, each at least one byte: never more than the bytes left."""
        start = self.pos
        n = self.varint()
        left = self.end - self.pos
        if n > left:
            self.fail(_messages.COUNT_EXCEEDS_BYTES_LEFT.format(count=n, left=left), start)
        return n

    def deltas(self, n: int) -> list[int]:
        values = []
        previous = 0
        for _ in range(n):
            previous = as_int64(previous + unzigzag(self.varint()))
            values.append(previous)
        return values

    def finish(self) -> None:
        if self.pos != self.end:
            self.fail(_messages.BYTES_AFTER_LAST_VALUE.format(left=self.end - self.pos), self.pos)


def check_envelope(data: bytes, kind: str, magic: int, smallest: int) -> None:
    """Steps 1-4 of decoding: size, magic, version, checksum."""
    if len(data) < smallest:
        raise ValueError(_messages.TRUNCATED_ENCODING.format(kind=kind, size=len(data), smallest=smallest))
    if data[0] != magic:
        raise ValueError(_messages.BAD_MAGIC.format(kind=kind, byte=data[0]))
    if data[1] != VERSION:
        raise ValueError(_messages.UNSUPPORTED_VERSION.format(kind=kind, version=data[1], supported=VERSION))
    (stored,) = struct.unpack_from("<I", data, len(data) - CRC_BYTES)
    if zlib.crc32(data[: len(data) - CRC_BYTES]) != stored:
        raise ValueError(_messages.CHECKSUM_MISMATCH.format(kind=kind))


# -- id lists --------------------------------------------------------------------------------------------


def encode_ids(ids: NDArray[np.int64]) -> bytes:
    """An int64 array (any order, duplicates, any values) as an id list: delta, zigzag, varint."""
    out = bytearray([IDS_MAGIC, VERSION])
    values = ids.tolist()
    write_varint(out, len(values))
    write_deltas(out, values)
    return seal(out)


def decode_ids(data: bytes) -> NDArray[np.int64]:
    """The int64 array an id list holds; ``ValueError`` as the module docstring lists."""
    check_envelope(data, "id list", IDS_MAGIC, SMALLEST_IDS)
    reader = Reader(data, "id list", 2)
    n = reader.count()
    values = reader.deltas(n)
    reader.finish()
    return np.array(values, dtype=np.int64)


# -- entries ---------------------------------------------------------------------------------------------


def encode_entries(
    scores: NDArray[np.int64] | NDArray[np.float64],
    post_ids: NDArray[np.int64],
    author_ids: NDArray[np.int64],
) -> bytes:
    """Entries as bytes. `scores` is int64 or float64; all three arrays have one length."""
    is_float = scores.dtype == np.float64
    out = bytearray([ENTRIES_MAGIC, VERSION, FLOAT_SCORES if is_float else 0])
    write_varint(out, len(post_ids))
    keys = [float_key(s) for s in scores.tolist()] if is_float else scores.tolist()
    write_deltas(out, keys)
    write_deltas(out, post_ids.tolist())
    table: dict[int, int] = {}
    indices = [table.setdefault(author, len(table)) for author in author_ids.tolist()]
    write_varint(out, len(table))
    write_deltas(out, table)
    for index in indices:
        write_varint(out, index)
    return seal(out)


def decode_entries(
    data: bytes,
) -> tuple[NDArray[np.int64] | NDArray[np.float64], NDArray[np.int64], NDArray[np.int64]]:
    """``(scores, post_ids, author_ids)`` as encoded; scores are float64 when flag bit 0 says so."""
    kind = "entries"
    check_envelope(data, kind, ENTRIES_MAGIC, SMALLEST_ENTRIES)
    reader = Reader(data, kind, 3)
    flags = data[2]
    if flags & ~FLOAT_SCORES:
        reader.fail(_messages.UNKNOWN_ENTRY_FLAGS.format(flags=flags), 2)
    n = reader.count()
    keys = reader.deltas(n)
    post_ids = reader.deltas(n)
    table_at = reader.pos
    m = reader.count()
    if m > n or (n > 0 and m == 0):
        reader.fail(_messages.AUTHOR_TABLE_SIZE_WRONG.format(size=m, entries=n), table_at)
    table = reader.deltas(m)
    author_ids = []
    for _ in range(n):
        at = reader.pos
        index = reader.varint()
        if index >= m:
            reader.fail(_messages.AUTHOR_INDEX_BEYOND_TABLE.format(index=index, size=m), at)
        author_ids.append(table[index])
    reader.finish()
    if flags & FLOAT_SCORES:
        scores = np.array([key_float(k) for k in keys], dtype=np.float64)
    else:
        scores = np.array(keys, dtype=np.int64)
    return scores, np.array(post_ids, dtype=np.int64), np.array(author_ids, dtype=np.int64)
