# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Counters kernels in Cython. The contract is in igcore/_reference/counters.py; the design is the one
of rust/igcore-core/src/counters.rs and its submodules (in one thread here), whose modules the parts
follow: counters/aggregate.pxi (group-by-sum, in counters.rs), ranking.pxi (top-k), table.pxi
(CounterTable), window.pxi (WindowedCounter) and hll.pxi (HyperLogLog).

The stateful classes keep their state in C memory behind a lock, taken as _cy_guard.pxd says: never
waited for with the GIL held, so a thread holding it may take the GIL back without a deadlock."""

from cpython.pythread cimport PyThread_type_lock
cimport cython
from libc.math cimport INFINITY, round, sqrt
from libc.stdint cimport INT64_MAX, INT64_MIN, int64_t, uint8_t, uint32_t, uint64_t
from libc.stdlib cimport calloc, free, malloc, qsort, realloc
from libc.string cimport memcpy, memset

from _cy_id_index cimport (
    IdIndex,
    hash_shift,
    id_hash,
    id_index_free,
    id_index_get,
    id_index_init,
    id_index_insert,
    prefetch,
)
from _cy_guard cimport lock_acquire, lock_acquire_nogil, lock_free, lock_new, lock_release
from _cy_numbers cimport floor_div

import numpy as np

from igcore import _messages

cdef extern from *:
    """
    typedef __int128 igcore_int128;
    """
    # A 128-bit sum, so that adding many int64 counts cannot overflow before the range check.
    ctypedef long long int128 "igcore_int128"


# Events between asking the memory system for a key's slot and using it: overlaps cache misses.
cdef size_t PREFETCH_AHEAD = 32


cdef const int64_t* first_of(const int64_t[::1] values, Py_ssize_t n, str name) except? NULL:
    """The address of `values` (NULL when empty or None), once they are checked to number `n`, as the
    keys do: a kernel reads both to `n`. The caller keeps its own view of `values` alive while it reads
    them."""
    if values is None:
        return NULL
    if values.shape[0] != n:
        raise ValueError(
            _messages.LENGTHS_DIFFER.format(first="keys", second=name, first_length=n, second_length=values.shape[0])
        )
    return &values[0] if n else NULL


# -- shared helpers ----------------------------------------------------------------------------------------

cdef inline bint add_overflows(int64_t a, int64_t b, int64_t* out) noexcept nogil:
    """a + b into *out; True (and *out untouched) when the sum leaves int64."""
    if (b > 0 and a > INT64_MAX - b) or (b < 0 and a < INT64_MIN - b):
        return True
    out[0] = a + b
    return False


cdef inline int64_t wrapping_sub(int64_t a, int64_t b) noexcept nogil:
    return <int64_t>(<uint64_t>a - <uint64_t>b)


# Failure codes of the nogil loops, turned into exceptions once the GIL is back.
cdef enum:
    OK = 0
    NO_MEMORY = 1
    TOTAL_OVERFLOW = 2
    PENDING_OVERFLOW = 3


include "counters/aggregate.pxi"
include "counters/ranking.pxi"
include "counters/table.pxi"
include "counters/window.pxi"
include "counters/hll.pxi"


# The kernels, as src/igcore/_kernels/counters.pyi states them.
__all__ = ["CounterTable", "HyperLogLog", "WindowedCounter", "aggregate"]
