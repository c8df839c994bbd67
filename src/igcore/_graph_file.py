"""The follow-graph file: one format, written and read the same way by every backend.

A file is a 320-byte header followed by the arrays of the compact layout, each starting on a 64-byte
boundary (zero padding between them), all little-endian::

    offset  size  field
         0     8  magic b"IGFOLLOW"
         8     4  version (u32) = 1
        12     4  flags (u32): bit 0 set when the graph has follow times; no other bit may be set
        16     8  num_users n (u64)
        24     8  num_follows m (u64)
        32     8  num_slots (u64): the id table's size, max(16, the power of two >= 2n)
        40   240  10 section entries of 24 bytes: offset (u64), length (u64), CRC-32 (u32), zero (u32)
       280     4  CRC-32 of bytes 0..280
       284    36  zero

    section        type   length  what
    ids            i64    n       user ids, ascending; a user's internal index is its position
    slots          u32    slots   open-addressing id table: index of the id found there, or 2**32-1
    out_offsets    u64    n + 1   user i follows out_targets[out_offsets[i]:out_offsets[i+1]]
    out_targets    u32    m       each user's followees, ascending
    in_offsets     u64    n + 1   user i is followed by in_sources[in_offsets[i]:in_offsets[i+1]]
    in_sources     u32    m       each user's followers, ascending
    out_times      i64    m       (timed graphs) the time of each follow, aligned with out_targets
    out_by_time    u32    m       (timed) per user, positions in its list, newest first (ties: smaller id)
    in_times       i64    m       (timed) aligned with in_sources
    in_by_time     u32    m       (timed) as out_by_time, for followers

The id table: id i is placed at slot ``id_hash(ids[i]) >> (64 - log2(num_slots))``, or the next free
slot after it (linear probing, wrapping), inserting i = 0, 1, ... in turn; ``id_hash`` is the one of
``igcore-core/src/id_index.rs``. So one graph has exactly one file, whichever backend wrote it.

What is checked when: ``load`` reads only the header, so it takes the same time for any graph: magic,
version, flags, the header's CRC, sizes, and every section's offset and length against the canonical
layout and the file's size (a file that lies about them is refused before anything is mapped). The
body's CRCs and its structure (ids ascending, the id table, offsets, every index in range, lists
sorted, the two directions transposes of each other) are checked by ``verify()``, which every query runs
once before it first reads the body; calling it in a web server's parent process before forking
means no worker repeats it.
"""

from __future__ import annotations

import os
import struct
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence
    from typing import Any

    # A section: any object with the buffer protocol, in practice a numpy array. (`Any`, not `Buffer`:
    # numpy's stubs give arrays the buffer protocol only from Python 3.12 on.)
    Section = Any

from . import _messages

MAGIC = b"IGFOLLOW"
VERSION = 1
HEADER_SIZE = 320
ALIGN = 64
FLAG_TIMED = 1
EMPTY_SLOT = 2**32 - 1
MAX_USERS = 2**32 - 2

SECTIONS = (
    ("ids", 8),
    ("slots", 4),
    ("out_offsets", 8),
    ("out_targets", 4),
    ("in_offsets", 8),
    ("in_sources", 4),
    ("out_times", 8),
    ("out_by_time", 4),
    ("in_times", 8),
    ("in_by_time", 4),
)
_FIXED = struct.Struct("<8sIIQQQ")
_ENTRY = struct.Struct("<QQII")
_CRC_AT = _FIXED.size + len(SECTIONS) * _ENTRY.size  # 280


def num_slots_for(num_users: int) -> int:
    """The id table's size for `num_users` users: at most half full, at least 16 slots."""
    slots = 16
    while slots < 2 * num_users:
        slots *= 2
    return slots


def section_items(name: str, num_users: int, num_follows: int, num_slots: int) -> int:
    """How many items section `name` holds."""
    return {
        "ids": num_users,
        "slots": num_slots,
        "out_offsets": num_users + 1,
        "in_offsets": num_users + 1,
    }.get(name, num_follows)


@dataclass(frozen=True)
class Layout:
    """Where each section lies in a file, as its header says (and `read_header` has checked)."""

    num_users: int
    num_follows: int
    num_slots: int
    timed: bool
    offsets: tuple[int, ...]  # one per section in SECTIONS order; 0 for absent sections
    lengths: tuple[int, ...]  # in bytes
    crcs: tuple[int, ...]
    file_size: int
    header: bytes  # the header's bytes: a load compares the file it opens with them

    def present(self) -> list[int]:
        """The positions (in SECTIONS) of the sections this file holds."""
        return list(range(len(SECTIONS) if self.timed else 6))


def canonical_layout(num_users: int, num_follows: int, timed: bool) -> tuple[list[int], list[int], int]:
    """Offsets and lengths (bytes) of every section, and the file's size, for a graph of these sizes."""
    slots = num_slots_for(num_users)
    offsets, lengths = [], []
    position = HEADER_SIZE
    for i, (name, itemsize) in enumerate(SECTIONS):
        if i >= 6 and not timed:
            offsets.append(0)
            lengths.append(0)
            continue
        position = -(-position // ALIGN) * ALIGN
        length = section_items(name, num_users, num_follows, slots) * itemsize
        offsets.append(position)
        lengths.append(length)
        position += length
    return offsets, lengths, position


def encode_header(num_users: int, num_follows: int, timed: bool, crcs: list[int]) -> bytes:
    offsets, lengths, _ = canonical_layout(num_users, num_follows, timed)
    header = bytearray(HEADER_SIZE)
    _FIXED.pack_into(
        header,
        0,
        MAGIC,
        VERSION,
        FLAG_TIMED if timed else 0,
        num_users,
        num_follows,
        num_slots_for(num_users),
    )
    for i, (offset, length, crc) in enumerate(zip(offsets, lengths, crcs)):
        _ENTRY.pack_into(header, _FIXED.size + i * _ENTRY.size, offset, length, crc, 0)
    struct.pack_into("<I", header, _CRC_AT, zlib.crc32(header[:_CRC_AT]))
    return bytes(header)


def write_file(path: str, num_users: int, num_follows: int, timed: bool, sections: Sequence[Section]) -> None:
    """Writes a graph file from its sections (objects with the buffer protocol, in SECTIONS order;
    only the first six for an untimed graph)."""
    offsets, _, _ = canonical_layout(num_users, num_follows, timed)
    crcs = [zlib.crc32(memoryview(s).cast("B")) for s in sections]
    crcs += [0] * (len(SECTIONS) - len(crcs))
    with open(path, "wb") as out:
        out.write(encode_header(num_users, num_follows, timed, crcs))
        position = HEADER_SIZE
        for offset, section in zip(offsets, sections):
            out.write(b"\0" * (offset - position))
            view = memoryview(section).cast("B")
            out.write(view)
            position = offset + len(view)


def new_partial(path: str) -> str:
    """The name of a new, empty file beside `path`, created here and nowhere else (exclusively, under a
    random name), for one save to write before renaming it over `path`."""
    folder, name = os.path.split(path)
    while True:
        partial = os.path.join(folder, f"{name}.{os.urandom(8).hex()}.partial")
        try:
            os.close(os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except FileExistsError:
            continue
        return partial


def sync(path: str) -> None:
    """Flushes a written file to disk: a rename must not make a file visible before its bytes."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_folder(path: str) -> None:
    """Flushes the folder of `path` (its new entry) to disk, where the system allows it."""
    try:
        fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def read_header(path: str) -> Layout:
    """Reads and checks the header of a graph file: ``ValueError`` for anything but a well-formed one."""
    with open(path, "rb") as file:
        header = file.read(HEADER_SIZE)
        file_size = os.fstat(file.fileno()).st_size
    if len(header) < 8 or header[:8] != MAGIC:
        raise ValueError("not an igcore follow graph file (no IGFOLLOW magic)")
    if len(header) < HEADER_SIZE:
        raise ValueError(f"truncated: {file_size} bytes, shorter than the {HEADER_SIZE}-byte header")
    magic, version, flags, num_users, num_follows, num_slots = _FIXED.unpack_from(header, 0)
    if version != VERSION:
        raise ValueError(f"format version {version} is not supported (this igcore reads version {VERSION})")
    (stored_crc,) = struct.unpack_from("<I", header, _CRC_AT)
    if zlib.crc32(header[:_CRC_AT]) != stored_crc:
        raise ValueError("the header's checksum does not match (a corrupted file)")
    if flags & ~FLAG_TIMED:
        raise ValueError(f"unknown flags {flags:#x}")
    timed = bool(flags & FLAG_TIMED)
    if num_users > MAX_USERS:
        raise ValueError(f"{num_users} users is more than a graph can hold ({MAX_USERS})")
    if num_slots != num_slots_for(num_users):
        raise ValueError(f"an id table of {num_slots} slots does not fit {num_users} users")
    offsets, lengths, end = canonical_layout(num_users, num_follows, timed)
    entries = [_ENTRY.unpack_from(header, _FIXED.size + i * _ENTRY.size) for i in range(len(SECTIONS))]
    for (name, _), (offset, length, _crc, zero), want_offset, want_length in zip(
        SECTIONS, entries, offsets, lengths
    ):
        if (offset, length, zero) != (want_offset, want_length, 0):
            raise ValueError(
                f"section {name} at offset {offset} with {length} bytes; "
                f"{num_users} users and {num_follows} follows put it at {want_offset} with {want_length}"
            )
    if file_size != end:
        what = "truncated" if file_size < end else "longer than its sections"
        raise ValueError(f"{what}: {file_size} bytes, the header describes {end}")
    return Layout(
        num_users=num_users,
        num_follows=num_follows,
        num_slots=num_slots,
        timed=timed,
        offsets=tuple(offsets),
        lengths=tuple(lengths),
        crcs=tuple(e[2] for e in entries),
        file_size=file_size,
        header=bytes(header),
    )


def check_crcs(layout: Layout, sections: Sequence[Section]) -> None:
    """Compares each present section's CRC-32 with the header's (sections: buffers, in SECTIONS order)."""
    for i, section in zip(layout.present(), sections):
        if zlib.crc32(memoryview(section).cast("B")) != layout.crcs[i]:
            raise ValueError(_messages.SECTION_CHECKSUM.format(section=SECTIONS[i][0]))
