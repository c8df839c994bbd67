# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compact id codecs in Cython. The wire format and the errors are specified in
igcore/_reference/codec.py; the design is the one of rust/igcore-core/src/codec.rs."""

from libc.stdint cimport int64_t, uint8_t, uint64_t
from libc.stdlib cimport free, malloc
cimport cython
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize
from cpython.pyport cimport PY_SSIZE_T_MAX

from _cy_guard cimport NOGIL_CODEC_IDS, gil_release_above
from _cy_id_index cimport IdIndex, id_index_free, id_index_init, id_index_insert
from _cy_numbers cimport float_bits_key, key_float_bits

import zlib

import numpy as np

from igcore import _messages

cdef uint8_t IDS_MAGIC = 0x49      # "I"
cdef uint8_t ENTRIES_MAGIC = 0x45  # "E"
cdef uint8_t VERSION = 1
cdef uint8_t FLOAT_SCORES = 0x01
cdef Py_ssize_t CRC_BYTES = 4
cdef Py_ssize_t SMALLEST_IDS = 2 + 1 + 4
cdef Py_ssize_t SMALLEST_ENTRIES = 3 + 1 + 1 + 4
cdef Py_ssize_t MAX_VARINT = 10
# The sizes from which encoding and decoding run without the GIL: see _cy_guard.pxd.
_GIL_RELEASE_ABOVE = gil_release_above()


cdef inline uint64_t zigzag(int64_t value) noexcept nogil:
    return (<uint64_t>value << 1) ^ <uint64_t>(value >> 63)


cdef inline int64_t unzigzag(uint64_t value) noexcept nogil:
    return <int64_t>(value >> 1) ^ -<int64_t>(value & 1)


cdef inline Py_ssize_t write_varint(uint8_t* out, Py_ssize_t pos, uint64_t value) noexcept nogil:
    while value >= 0x80:
        out[pos] = <uint8_t>(value | 0x80)
        pos += 1
        value >>= 7
    out[pos] = <uint8_t>value
    return pos + 1


cdef inline Py_ssize_t write_deltas(uint8_t* out, Py_ssize_t pos, const int64_t* values, Py_ssize_t n) noexcept nogil:
    cdef int64_t previous = 0
    cdef Py_ssize_t i
    for i in range(n):
        # wrapping subtraction, in unsigned arithmetic
        pos = write_varint(out, pos, zigzag(<int64_t>(<uint64_t>values[i] - <uint64_t>previous)))
        previous = values[i]
    return pos


cdef Py_ssize_t worst_case_len(Py_ssize_t header, Py_ssize_t per_item, Py_ssize_t n, Py_ssize_t extra) except -1:
    """The most bytes that a header and `per_item * n + extra` varints can take: the buffer to allocate.

    Every varint written must fit in it, so a size that cannot be computed is refused, never wrapped.
    """
    if n > (PY_SSIZE_T_MAX - header) // MAX_VARINT // per_item - extra:
        raise MemoryError(f"too many values to encode ({n})")
    return header + MAX_VARINT * (per_item * n + extra)


cdef bytes seal(const uint8_t* body, Py_ssize_t size):
    """`body` followed by its CRC-32, little-endian, as bytes."""
    # A new bytes object is filled in place before anyone else sees it.
    cdef bytes out = PyBytes_FromStringAndSize(NULL, size + CRC_BYTES)
    cdef uint8_t* raw = <uint8_t*>PyBytes_AS_STRING(out)
    memcpy(raw, body, size)
    cdef unsigned long crc = zlib.crc32(memoryview(out)[:size])
    raw[size] = crc & 0xFF
    raw[size + 1] = (crc >> 8) & 0xFF
    raw[size + 2] = (crc >> 16) & 0xFF
    raw[size + 3] = (crc >> 24) & 0xFF
    return out


def encode_ids(const int64_t[::1] ids):
    cdef Py_ssize_t n = ids.shape[0]
    # The count, then a delta per id.
    cdef uint8_t* out = <uint8_t*>malloc(worst_case_len(2, 1, n, 1))
    cdef Py_ssize_t pos
    if out == NULL:
        raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="encoding ids"))
    try:
        out[0] = IDS_MAGIC
        out[1] = VERSION
        if n >= NOGIL_CODEC_IDS:
            with nogil:
                pos = write_deltas(out, write_varint(out, 2, <uint64_t>n), &ids[0], n)
        else:
            pos = write_varint(out, 2, <uint64_t>n)
            if n:
                pos = write_deltas(out, pos, &ids[0], n)
        return seal(out, pos)
    finally:
        free(out)


cdef inline Py_ssize_t varint_at(const uint8_t* body, Py_ssize_t pos, Py_ssize_t end,
                                 uint64_t* value) noexcept nogil:
    """Reads the varint at body[pos] into *value: the position after it, or -1, -2, -3 when it is
    truncated, beyond 64 bits or overlong (the _Reader's error numbers, negated)."""
    cdef uint64_t result = 0
    cdef uint8_t byte
    cdef int i
    if pos < end and body[pos] < 0x80:
        value[0] = body[pos]
        return pos + 1
    for i in range(MAX_VARINT):
        if pos >= end:
            return -1
        byte = body[pos]
        pos += 1
        if i == MAX_VARINT - 1 and byte > 1:
            return -2
        result |= (<uint64_t>(byte & 0x7F)) << (7 * i)
        if byte < 0x80:
            if byte == 0 and i > 0:
                return -3
            value[0] = result
            return pos
    return -2


@cython.final  # its methods are called directly, and inlined
cdef class _Reader:
    """Reads the varints between a header and the checksum."""

    cdef const uint8_t* body
    cdef Py_ssize_t end
    cdef Py_ssize_t pos
    cdef str kind
    # Where reading failed (error < 0 then): the reason and the byte offset, raised with the GIL.
    cdef int error
    cdef Py_ssize_t error_at
    cdef uint64_t error_count
    cdef Py_ssize_t error_left

    def __cinit__(self, const uint8_t[::1] data, str kind, Py_ssize_t start):
        self.body = &data[0]
        self.end = data.shape[0] - CRC_BYTES
        self.pos = start
        self.kind = kind
        self.error = 0

    cdef inline int varint(self, uint64_t* value) noexcept nogil:
        """Reads one varint into *value; -1 (and the error noted) when it is malformed."""
        cdef Py_ssize_t after = varint_at(self.body, self.pos, self.end, value)
        if after < 0:
            return self.fail(<int>-after, self.pos)
        self.pos = after
        return 0

    cdef inline int fail(self, int error, Py_ssize_t at) noexcept nogil:
        self.error = error
        self.error_at = at
        return -1

    cdef int count(self, Py_ssize_t* n) noexcept nogil:
        """A count of values that follow: never more than the bytes left (each takes one at least)."""
        cdef Py_ssize_t start = self.pos
        cdef uint64_t value
        if self.varint(&value) < 0:
            return -1
        if value > <uint64_t>(self.end - self.pos):
            self.error_count = value
            self.error_left = self.end - self.pos
            return self.fail(4, start)
        n[0] = <Py_ssize_t>value
        return 0

    cdef int deltas(self, int64_t* values, Py_ssize_t n) noexcept nogil:
        # The position is kept in a local: a store to `values` could otherwise be the reader's own
        # fields, for all the compiler knows, and they would be read again for every varint.
        cdef const uint8_t* body = self.body
        cdef Py_ssize_t pos = self.pos, end = self.end, after, i
        cdef int64_t previous = 0
        cdef uint64_t value
        for i in range(n):
            after = varint_at(body, pos, end, &value)
            if after < 0:
                return self.fail(<int>-after, pos)
            pos = after
            previous = <int64_t>(<uint64_t>previous + <uint64_t>unzigzag(value))
            values[i] = previous
        self.pos = pos
        return 0

    cdef int finish(self) noexcept nogil:
        if self.pos != self.end:
            return self.fail(5, self.pos)
        return 0

    cdef raise_error(self):
        cdef str reason
        if self.error == 1:
            reason = _messages.TRUNCATED_VARINT
        elif self.error == 2:
            reason = _messages.VARINT_BEYOND_64_BITS
        elif self.error == 3:
            reason = _messages.OVERLONG_VARINT
        elif self.error == 4:
            reason = _messages.COUNT_EXCEEDS_BYTES_LEFT.format(count=self.error_count, left=self.error_left)
        else:
            reason = _messages.BYTES_AFTER_LAST_VALUE.format(left=self.end - self.pos)
        self.fail_with(reason, self.error_at)

    cdef fail_with(self, str reason, Py_ssize_t at):
        raise ValueError(_messages.MALFORMED_ENCODING.format(kind=self.kind, reason=reason, at=at))


cdef check_envelope(bytes data, str kind, uint8_t magic, Py_ssize_t smallest):
    cdef Py_ssize_t size = len(data)
    cdef const uint8_t* raw = <const uint8_t*><const char*>data
    cdef unsigned long stored
    if size < smallest:
        raise ValueError(_messages.TRUNCATED_ENCODING.format(kind=kind, size=size, smallest=smallest))
    if raw[0] != magic:
        raise ValueError(_messages.BAD_MAGIC.format(kind=kind, byte=raw[0]))
    if raw[1] != VERSION:
        raise ValueError(_messages.UNSUPPORTED_VERSION.format(kind=kind, version=raw[1], supported=VERSION))
    stored = (<unsigned long>raw[size - 4] | (<unsigned long>raw[size - 3] << 8)
              | (<unsigned long>raw[size - 2] << 16) | (<unsigned long>raw[size - 1] << 24))
    if zlib.crc32(memoryview(data)[:size - CRC_BYTES]) != stored:
        raise ValueError(_messages.CHECKSUM_MISMATCH.format(kind=kind))


def decode_ids(bytes data):
    check_envelope(data, "id list", IDS_MAGIC, SMALLEST_IDS)
    cdef _Reader reader = _Reader(data, "id list", 2)
    cdef Py_ssize_t n
    cdef int failed
    if reader.count(&n) < 0:
        reader.raise_error()
    ids = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] out = ids
    cdef int64_t* values = &out[0] if n else NULL
    if n >= NOGIL_CODEC_IDS:
        with nogil:
            failed = reader.deltas(values, n) < 0 or reader.finish() < 0
    else:
        failed = reader.deltas(values, n) < 0 or reader.finish() < 0
    if failed:
        reader.raise_error()
    return ids


def encode_entries(scores, const int64_t[::1] post_ids, const int64_t[::1] author_ids):
    cdef Py_ssize_t n = post_ids.shape[0]
    cdef bint is_float = scores.dtype == np.float64
    cdef const double[::1] floats
    cdef const int64_t[::1] ints
    # The count, n score deltas, n post id deltas, the table's length, at most n authors, n indices.
    cdef Py_ssize_t size = worst_case_len(3, 4, n, 2)
    cdef int64_t* keys = <int64_t*>malloc((n if n else 1) * sizeof(int64_t))
    cdef uint8_t* out = <uint8_t*>malloc(size)
    cdef IdIndex table
    cdef Py_ssize_t i, pos, index
    cdef bint inserted, failed = False
    table.slots = NULL
    table.ids = NULL
    if keys == NULL or out == NULL or id_index_init(&table, 64 if n > 64 else n) < 0:
        free(keys)
        free(out)
        id_index_free(&table)
        raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="encoding entries"))
    try:
        if is_float:
            floats = scores
            if floats.shape[0] != n or author_ids.shape[0] != n:
                raise ValueError(_messages.ENTRY_LENGTHS_DIFFER.format(
                    scores=floats.shape[0], post_ids=n, author_ids=author_ids.shape[0]))
            for i in range(n):
                keys[i] = float_bits_key(floats[i])
        else:
            ints = scores
            if ints.shape[0] != n or author_ids.shape[0] != n:
                raise ValueError(_messages.ENTRY_LENGTHS_DIFFER.format(
                    scores=ints.shape[0], post_ids=n, author_ids=author_ids.shape[0]))
            for i in range(n):
                keys[i] = ints[i]
        out[0] = ENTRIES_MAGIC
        out[1] = VERSION
        out[2] = FLOAT_SCORES if is_float else 0
        with nogil:
            pos = write_varint(out, 3, <uint64_t>n)
            pos = write_deltas(out, pos, keys, n)
            if n:
                pos = write_deltas(out, pos, &post_ids[0], n)
            # A home timeline has few distinct authors: a table of them, and a small index per entry.
            for i in range(n):
                index = id_index_insert(&table, author_ids[i], &inserted)
                if index < 0:
                    failed = True
                    break
                keys[i] = index  # the keys are written: reuse their memory for the indices
            if not failed:
                pos = write_varint(out, pos, <uint64_t>table.length)
                pos = write_deltas(out, pos, table.ids, <Py_ssize_t>table.length)
                for i in range(n):
                    pos = write_varint(out, pos, <uint64_t>keys[i])
        if failed:
            raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="encoding entries"))
        return seal(out, pos)
    finally:
        free(keys)
        free(out)
        id_index_free(&table)


def decode_entries(bytes data):
    check_envelope(data, "entries", ENTRIES_MAGIC, SMALLEST_ENTRIES)
    cdef _Reader reader = _Reader(data, "entries", 3)
    cdef const uint8_t* raw = <const uint8_t*><const char*>data
    cdef uint8_t flags = raw[2]
    cdef Py_ssize_t n, m, i, table_at, at
    cdef uint64_t index
    cdef int64_t* table = NULL
    if flags & ~FLOAT_SCORES:
        reader.fail_with(_messages.UNKNOWN_ENTRY_FLAGS.format(flags=flags), 2)
    if reader.count(&n) < 0:
        reader.raise_error()
    keys = np.empty(n, dtype=np.int64)
    post_ids = np.empty(n, dtype=np.int64)
    author_ids = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] key_view = keys
    cdef int64_t[::1] post_view = post_ids
    cdef int64_t[::1] author_view = author_ids
    if n:
        if reader.deltas(&key_view[0], n) < 0 or reader.deltas(&post_view[0], n) < 0:
            reader.raise_error()
    table_at = reader.pos
    if reader.count(&m) < 0:
        reader.raise_error()
    if m > n or (n > 0 and m == 0):
        reader.fail_with(_messages.AUTHOR_TABLE_SIZE_WRONG.format(size=m, entries=n), table_at)
    table = <int64_t*>malloc((m if m else 1) * sizeof(int64_t))
    if table == NULL:
        raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="decoding entries"))
    try:
        if reader.deltas(table, m) < 0:
            reader.raise_error()
        for i in range(n):
            at = reader.pos
            if reader.varint(&index) < 0:
                reader.raise_error()
            if index >= <uint64_t>m:
                reader.fail_with(_messages.AUTHOR_INDEX_BEYOND_TABLE.format(index=index, size=m), at)
            author_view[i] = table[index]
        if reader.finish() < 0:
            reader.raise_error()
    finally:
        free(table)
    if flags & FLOAT_SCORES:
        scores = np.empty(n, dtype=np.float64)
        _keys_to_floats(key_view, scores)
    else:
        scores = keys
    return scores, post_ids, author_ids


cdef void _keys_to_floats(const int64_t[::1] keys, double[::1] floats) noexcept:
    cdef Py_ssize_t i
    for i in range(keys.shape[0]):
        floats[i] = key_float_bits(keys[i])


# The kernels, as src/igcore/_kernels/codec.pyi states them.
__all__ = ["decode_entries", "decode_ids", "encode_entries", "encode_ids"]
