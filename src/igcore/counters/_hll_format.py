"""Redis's HyperLogLog string format, as GET returns it and SET stores it.

A 16-byte header: the magic ``HYLL``, one encoding byte (0 dense, 1 sparse), three zero bytes, and the
cached cardinality as 8 little-endian bytes whose top bit, when set, marks the cache as stale. Then:

- dense: the 16,384 registers, 6 bits each, packed least significant bit first (register ``i`` starts
  at bit ``6 * i``): 12,288 bytes.
- sparse: run-length opcodes. ``00xxxxxx``: ``xxxxxx + 1`` registers at zero; ``01xxxxxx yyyyyyyy``:
  ``(xxxxxx << 8 | yyyyyyyy) + 1`` registers at zero; ``1vvvvvxx``: ``xx + 1`` registers at the value
  ``vvvvv + 1``. The runs cover the 16,384 registers exactly.

igcore writes the dense form with a valid cached cardinality, and reads both. Every backend keeps one
register per byte; this module packs and unpacks them, once for all backends, so the bytes are the same
whichever backend made them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .._hll import HLL_MAX_REGISTER, HLL_REGISTERS

if TYPE_CHECKING:
    from numpy.typing import NDArray

MAGIC = b"HYLL"
DENSE, SPARSE = 0, 1
HEADER_SIZE = 16
DENSE_SIZE = HEADER_SIZE + HLL_REGISTERS * 6 // 8
STALE_CACHE = 1 << 63

# Four registers fill three bytes: register 4k + j is bits 6j .. 6j+5 of the little-endian 24-bit word
# made of bytes 3k .. 3k+2. Whole-array shifts on those words (not a bit per element): a sketch is read
# on every status shown with its unique viewers.
_SHIFTS = np.arange(0, 24, 6, dtype=np.uint32)


def header(encoding: int, cardinality: int | None) -> bytes:
    cache = STALE_CACHE if cardinality is None else cardinality
    return MAGIC + bytes([encoding, 0, 0, 0]) + cache.to_bytes(8, "little")


def to_dense(registers: NDArray[np.uint8], cardinality: int) -> bytes:
    """The dense string of `registers` (uint8, 16,384 values up to 51), caching `cardinality`."""
    quads = (registers.reshape(-1, 4).astype(np.uint32) & 0x3F) << _SHIFTS
    words = np.bitwise_or.reduce(quads, axis=1)
    packed = (words[:, None] >> np.array([0, 8, 16], dtype=np.uint32)) & 0xFF
    body: bytes = packed.astype(np.uint8).tobytes()
    return header(DENSE, cardinality) + body


def registers_of(data: bytes) -> NDArray[np.uint8]:
    """The 16,384 registers (uint8) of a HyperLogLog string in either encoding.

    Raises ``ValueError`` for anything that is not a well-formed Redis HyperLogLog: a wrong magic or
    encoding, a dense string of the wrong size or with a register above 51, sparse runs that do not
    cover the registers exactly.
    """
    if len(data) < HEADER_SIZE or data[:4] != MAGIC:
        raise ValueError("not a Redis HyperLogLog: the string does not start with the magic 'HYLL'")
    encoding = data[4]
    if encoding == DENSE:
        if len(data) != DENSE_SIZE:
            raise ValueError(
                f"corrupt HyperLogLog: a dense string is {DENSE_SIZE} bytes, this one is {len(data)}"
            )
        triples = np.frombuffer(data, dtype=np.uint8, offset=HEADER_SIZE).reshape(-1, 3).astype(np.uint32)
        words = triples[:, 0] | triples[:, 1] << 8 | triples[:, 2] << 16
        registers: NDArray[np.uint8] = ((words[:, None] >> _SHIFTS) & 0x3F).astype(np.uint8).ravel()
    elif encoding == SPARSE:
        registers = _sparse_registers(data[HEADER_SIZE:])
    else:
        raise ValueError(f"corrupt HyperLogLog: unknown encoding {encoding} (0 is dense, 1 sparse)")
    too_large = np.flatnonzero(registers > HLL_MAX_REGISTER)
    if too_large.size:
        index = int(too_large[0])
        raise ValueError(
            f"corrupt HyperLogLog: register {index} holds {registers[index]}, above the largest "
            f"possible value {HLL_MAX_REGISTER}"
        )
    return registers


def _sparse_registers(opcodes: bytes) -> NDArray[np.uint8]:
    registers = np.zeros(HLL_REGISTERS, dtype=np.uint8)
    index = position = 0
    while position < len(opcodes):
        opcode = opcodes[position]
        if opcode & 0x80:  # VAL: a short run of one value
            value, run = ((opcode >> 2) & 0x1F) + 1, (opcode & 0x3) + 1
            position += 1
        elif opcode & 0x40:  # XZERO: a long run of zeros, in two bytes
            if position + 1 >= len(opcodes):
                raise ValueError("corrupt HyperLogLog: a sparse string ends inside an opcode")
            value, run = 0, ((opcode & 0x3F) << 8 | opcodes[position + 1]) + 1
            position += 2
        else:  # ZERO: a short run of zeros
            value, run = 0, (opcode & 0x3F) + 1
            position += 1
        if index + run > HLL_REGISTERS:
            raise ValueError("corrupt HyperLogLog: sparse runs cover more than 16384 registers")
        registers[index : index + run] = value
        index += run
    if index != HLL_REGISTERS:
        raise ValueError(f"corrupt HyperLogLog: sparse runs cover {index} registers, not 16384")
    return registers
