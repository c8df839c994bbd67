# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Timeline kernels in Cython. The contract is in igcore/_reference/timeline.py; the design is the one
of rust/igcore-core/src/timeline/ (a k-way merge over a binary heap of run heads, timelines as arrays
of entries in feed order, a store of timelines by user id).

Locking: a Timeline is only touched with the GIL held. A TimelineStore also has a lock, because a
long fan-out runs without the GIL: every store method takes the lock as _cy_guard.pxd says (never
waiting for it with the GIL held), so the GIL and the lock cannot deadlock.

The parts follow the Rust core's modules: timeline/cache.pxi (a bounded timeline), merge.pxi (fan-out
on read), store.pxi (fan-out on write) and activity.pxi (aggregated activity).
"""

cimport cython
from libc.stdint cimport int64_t, uint64_t
from libc.stdlib cimport free, malloc, qsort, realloc
from libc.string cimport memcpy, memmove
from cpython.pythread cimport PyThread_type_lock

from _cy_guard cimport (
    NOGIL_TIMELINE_ENTRIES,
    NOGIL_TIMELINE_FOLLOWERS,
    NOGIL_TIMELINE_USERS,
    gil_release_above,
    lock_acquire,
    lock_acquire_nogil,
    lock_free,
    lock_new,
    lock_release,
)
from _cy_id_index cimport IdIndex, id_hash, id_index_free, id_index_get, id_index_init, id_index_insert, prefetch
from _cy_ndarray cimport column_data, column_length, is_column, is_exactly_of, is_of
from _cy_numbers cimport float_bits_key, floor_div, key_float_bits

import numpy as np

from igcore import _cy_codec
from igcore import _cy_codec, _messages

cdef int64_t INT64_MAX = 0x7FFFFFFFFFFFFFFF
# The sizes from which work runs without the GIL (when it touches no Timeline): see _cy_guard.pxd.
_GIL_RELEASE_ABOVE = gil_release_above()
# How far ahead a pass over runs or followers asks for memory it will read (see the Rust kernels).
cdef size_t PREFETCH_AHEAD = 8


cdef struct Entry:
    int64_t key
    int64_t post_id
    int64_t author_id


cdef inline bint ranks_above(int64_t key, int64_t post_id, int64_t other_key, int64_t other_post_id) noexcept nogil:
    return key > other_key or (key == other_key and post_id > other_post_id)


cdef inline int64_t float_key(double score) noexcept nogil:
    """The feed key of a float64 score: -0.0 counts as 0.0, then the order-preserving bits key."""
    return float_bits_key(score + 0.0)


include "timeline/cache.pxi"
include "timeline/merge.pxi"
include "timeline/store.pxi"
include "timeline/activity.pxi"


# The kernels, as src/igcore/_kernels/timeline.pyi states them.
__all__ = ["Timeline", "TimelineStore", "accepts_sources", "aggregate_activity", "merge_page", "timeline_from_bytes"]
