# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Counters kernels in Cython. The contract is in igcore/_reference/counters.py; the design is the one
of rust/igcore-core/src/counters.rs and its submodules (in one thread here).

The stateful classes keep their state in C memory behind a lock, taken as _cy_guard.pxd says: never
waited for with the GIL held, so a thread holding it may take the GIL back without a deadlock."""

from cpython.pythread cimport PyThread_type_lock
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

cdef extern from *:
    """
    typedef __int128 igcore_int128;
    """
    # A 128-bit sum, so that adding many int64 counts cannot overflow before the range check.
    ctypedef long long int128 "igcore_int128"


# A free slot holds the id 0, so a new table is zeroed memory (calloc); the key 0 is kept aside.
cdef int64_t VACANT = 0
# Events between asking the memory system for a key's slot and using it: overlaps cache misses.
cdef size_t PREFETCH_AHEAD = 32


cdef struct SumSlot:
    int64_t id
    int64_t sum

cdef struct SumTable:
    # Open addressing with linear probing, at most half full; id and sum share a slot (one cache line).
    SumSlot* slots
    size_t num_slots
    int shift              # 64 - log2(num_slots): a key's home slot is the top bits of its hash
    int64_t* order         # the keys in order of first appearance
    size_t length
    size_t order_capacity
    bint has_zero_key
    int64_t zero_key_sum


cdef int _alloc_slots(SumTable* table, size_t num_slots) noexcept nogil:
    cdef SumSlot* slots = <SumSlot*>calloc(num_slots, sizeof(SumSlot))
    if slots == NULL:
        return -1
    table.slots = slots
    table.num_slots = num_slots
    table.shift = hash_shift(num_slots)
    return 0


cdef int table_init(SumTable* table) noexcept nogil:
    table.slots = NULL
    table.length = 0
    table.order_capacity = 512
    table.has_zero_key = False
    table.zero_key_sum = 0
    table.order = <int64_t*>malloc(table.order_capacity * sizeof(int64_t))
    if table.order == NULL:
        return -1
    return _alloc_slots(table, 1024)


cdef void table_free(SumTable* table) noexcept nogil:
    free(table.slots)
    free(table.order)
    table.slots = NULL
    table.order = NULL


cdef int _grow(SumTable* table) noexcept nogil:
    # A key's new home is its old home times two (plus one more hash bit): a sequential pass over the
    # old slots fills the new table nearly sequentially, so growing streams through memory.
    cdef SumSlot* old = table.slots
    cdef size_t old_slots = table.num_slots
    cdef size_t i, pos, mask
    if _alloc_slots(table, old_slots * 2) < 0:
        table.slots = old
        table.num_slots = old_slots
        return -1
    mask = table.num_slots - 1
    for i in range(old_slots):
        if old[i].id == VACANT:
            continue
        pos = <size_t>(id_hash(old[i].id) >> table.shift)
        while table.slots[pos].id != VACANT:
            pos = (pos + 1) & mask
        table.slots[pos] = old[i]
    free(old)
    return 0


cdef int _append_order(SumTable* table, int64_t id) noexcept nogil:
    cdef int64_t* grown
    if table.length == table.order_capacity:
        grown = <int64_t*>realloc(table.order, 2 * table.order_capacity * sizeof(int64_t))
        if grown == NULL:
            return -1
        table.order = grown
        table.order_capacity *= 2
    table.order[table.length] = id
    table.length += 1
    return 0


cdef inline void table_prefetch(const SumTable* table, int64_t id) noexcept nogil:
    prefetch(&table.slots[<size_t>(id_hash(id) >> table.shift)])


cdef inline int _wrapping_add(int64_t* total, int64_t delta) noexcept nogil:
    """Adds with wrap-around; returns +1 or -1 when the sum wrapped (up or down), else 0."""
    cdef int64_t before = total[0]
    cdef int64_t after = <int64_t>(<uint64_t>before + <uint64_t>delta)
    total[0] = after
    if delta > 0 and after < before:
        return 1
    if delta < 0 and after > before:
        return -1
    return 0


cdef inline int table_add(SumTable* table, int64_t id, int64_t delta, int* wrapped) noexcept nogil:
    """Adds `delta` to `id`'s sum, inserting the id when new; -1 when memory runs out."""
    cdef size_t mask = table.num_slots - 1
    cdef size_t pos
    wrapped[0] = 0
    if id == VACANT:
        if table.has_zero_key:
            wrapped[0] = _wrapping_add(&table.zero_key_sum, delta)
            return 0
        table.has_zero_key = True
        table.zero_key_sum = delta
        return _append_order(table, id)
    pos = <size_t>(id_hash(id) >> table.shift)
    while True:
        if table.slots[pos].id == id:
            wrapped[0] = _wrapping_add(&table.slots[pos].sum, delta)
            return 0
        if table.slots[pos].id == VACANT:
            table.slots[pos].id = id
            table.slots[pos].sum = delta
            if _append_order(table, id) < 0:
                return -1
            if table.length * 2 > table.num_slots:
                return _grow(table)
            return 0
        pos = (pos + 1) & mask


cdef inline int64_t table_sum(const SumTable* table, int64_t id) noexcept nogil:
    """The sum of `id`; 0 when it is not in the table."""
    cdef size_t mask = table.num_slots - 1
    cdef size_t pos
    if id == VACANT:
        return table.zero_key_sum
    pos = <size_t>(id_hash(id) >> table.shift)
    while table.slots[pos].id != VACANT:
        if table.slots[pos].id == id:
            return table.slots[pos].sum
        pos = (pos + 1) & mask
    return 0


cdef int _sum_events(const int64_t* keys, const int64_t* deltas, Py_ssize_t n, SumTable* table,
                     SumTable* wraps, bint* any_wrap) noexcept nogil:
    """Sums the events into `table`. Sums wrap; `wraps` counts per key how often, so the true total is
    sum + wraps * 2**64 (wraps are rare: they live in a second table). -1 when memory runs out."""
    cdef Py_ssize_t i
    cdef int wrapped = 0, ignored = 0
    for i in range(n):
        if <size_t>i + PREFETCH_AHEAD < <size_t>n:
            table_prefetch(table, keys[i + PREFETCH_AHEAD])
        if table_add(table, keys[i], deltas[i] if deltas != NULL else 1, &wrapped) < 0:
            return -1
        if wrapped:
            any_wrap[0] = True
            if table_add(wraps, keys[i], wrapped, &ignored) < 0:
                return -1
    return 0


cdef const int64_t* first_of(const int64_t[::1] values, Py_ssize_t n, str name) except? NULL:
    """The address of `values` (NULL when empty), once they are checked to number `n`, as the keys do:
    a kernel reads both to `n`. The caller keeps its own view of `values` alive while it reads them."""
    if values.shape[0] != n:
        raise ValueError(f"keys and {name} differ in length ({n} != {values.shape[0]})")
    return &values[0] if n else NULL


cdef inline int128 exact_sum(const SumTable* table, const SumTable* wraps, int64_t key) noexcept nogil:
    return <int128>table_sum(table, key) + <int128>table_sum(wraps, key) * (<int128>1 << 64)


def aggregate(const int64_t[::1] keys, deltas=None):
    cdef const int64_t[::1] delta_view
    cdef const int64_t* delta_ptr = NULL
    cdef Py_ssize_t n = keys.shape[0]
    if deltas is not None:
        delta_view = deltas
        delta_ptr = first_of(delta_view, n, "deltas")
    cdef SumTable table, wraps
    cdef size_t j
    cdef bint failed = False, any_wrap = False
    cdef Py_ssize_t overflow_at = -1
    failed = table_init(&table) < 0
    failed = table_init(&wraps) < 0 or failed
    try:
        with nogil:
            if not failed and n:
                failed = _sum_events(&keys[0], delta_ptr, n, &table, &wraps, &any_wrap) < 0
            if any_wrap and not failed:
                for j in range(table.length):
                    if table_sum(&wraps, table.order[j]) != 0:
                        overflow_at = <Py_ssize_t>j
                        break
        if failed:
            raise MemoryError("out of memory while aggregating")
        if overflow_at >= 0:
            raise OverflowError(f"the total for key {table.order[overflow_at]} does not fit in int64")
        unique_keys = np.empty(table.length, dtype=np.int64)
        sums = np.empty(table.length, dtype=np.int64)
        _fill_results(&table, unique_keys, sums)
        return unique_keys, sums
    finally:
        table_free(&table)
        table_free(&wraps)


cdef void _fill_results(const SumTable* table, int64_t[::1] unique_keys, int64_t[::1] sums) noexcept:
    cdef size_t j
    with nogil:
        for j in range(table.length):
            if j + PREFETCH_AHEAD < table.length:
                table_prefetch(table, table.order[j + PREFETCH_AHEAD])
            unique_keys[j] = table.order[j]
            sums[j] = table_sum(table, table.order[j])


# -- shared helpers ----------------------------------------------------------------------------------------

cdef inline bint add_overflows(int64_t a, int64_t b, int64_t* out) noexcept nogil:
    """a + b into *out; True (and *out untouched) when the sum leaves int64."""
    if (b > 0 and a > INT64_MAX - b) or (b < 0 and a < INT64_MIN - b):
        return True
    out[0] = a + b
    return False


cdef inline bint sub_overflows(int64_t a, int64_t b, int64_t* out) noexcept nogil:
    if (b < 0 and a > INT64_MAX + b) or (b > 0 and a < INT64_MIN + b):
        return True
    out[0] = a - b
    return False


cdef inline int64_t wrapping_sub(int64_t a, int64_t b) noexcept nogil:
    return <int64_t>(<uint64_t>a - <uint64_t>b)


# Failure codes of the nogil loops, turned into exceptions once the GIL is back.
cdef enum:
    OK = 0
    NO_MEMORY = 1
    TOTAL_OVERFLOW = 2
    PENDING_OVERFLOW = 3


cdef struct Ranked:
    int64_t key
    int64_t total


cdef inline bint ranks_above(Ranked a, Ranked b) noexcept nogil:
    """Rank order: a larger total first, then the smaller key."""
    return a.total > b.total or (a.total == b.total and a.key < b.key)


cdef struct TopK:
    # A min-heap of the best `k` entries seen: the weakest on top, at heap[0].
    Ranked* heap
    size_t size
    size_t k


cdef int topk_init(TopK* top, size_t k, size_t most) noexcept nogil:
    top.k = k if k < most else most
    top.size = 0
    top.heap = <Ranked*>malloc((top.k if top.k > 0 else 1) * sizeof(Ranked))
    return -1 if top.heap == NULL else 0


cdef void _sift_down(Ranked* heap, size_t size, size_t at) noexcept nogil:
    cdef size_t child
    cdef Ranked moving = heap[at]
    while True:
        child = 2 * at + 1
        if child >= size:
            break
        if child + 1 < size and ranks_above(heap[child], heap[child + 1]):
            child += 1
        if not ranks_above(moving, heap[child]):
            break
        heap[at] = heap[child]
        at = child
    heap[at] = moving


cdef void topk_offer(TopK* top, int64_t key, int64_t total) noexcept nogil:
    cdef Ranked entry
    cdef size_t at, parent
    if total == 0 or top.k == 0:
        return
    entry.key = key
    entry.total = total
    if top.size < top.k:
        at = top.size
        top.size += 1
        while at > 0:
            parent = (at - 1) // 2
            if not ranks_above(top.heap[parent], entry):
                break
            top.heap[at] = top.heap[parent]
            at = parent
        top.heap[at] = entry
    elif ranks_above(entry, top.heap[0]):
        top.heap[0] = entry
        _sift_down(top.heap, top.size, 0)


cdef tuple topk_finish(TopK* top):
    """The kept entries as (keys, totals) arrays, best first; frees the heap."""
    cdef size_t n = top.size
    keys = np.empty(n, dtype=np.int64)
    totals = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] key_view = keys
    cdef int64_t[::1] total_view = totals
    with nogil:
        # Popping the weakest each time fills the output from its end.
        while top.size > 0:
            key_view[top.size - 1] = top.heap[0].key
            total_view[top.size - 1] = top.heap[0].total
            top.size -= 1
            top.heap[0] = top.heap[top.size]
            _sift_down(top.heap, top.size, 0)
    free(top.heap)
    top.heap = NULL
    return keys, totals


# -- CounterTable ----------------------------------------------------------------------------------------

cdef struct Count:
    # A (kind, key)'s total and pending delta, side by side: an event touches one cache line.
    int64_t total
    int64_t pending


cdef struct Entry:
    int64_t key
    int64_t total
    int64_t pending


cdef int _entry_by_key(const void* a, const void* b) noexcept nogil:
    cdef int64_t x = (<const Entry*>a).key
    cdef int64_t y = (<const Entry*>b).key
    return (x > y) - (x < y)


cdef class CounterTable:
    """See igcore._reference.counters.CounterTable."""

    cdef IdIndex index
    cdef Count** counts          # counts[kind][index]
    cdef size_t num_kinds
    cdef size_t capacity         # entries allocated in each counts[kind]
    cdef tuple kinds
    cdef PyThread_type_lock lock

    def __cinit__(self, kinds):
        self.kinds = tuple(kinds)
        self.num_kinds = len(self.kinds)
        self.lock = lock_new()
        self.counts = <Count**>calloc(self.num_kinds, sizeof(Count*))
        if self.counts == NULL or id_index_init(&self.index, 0) < 0:
            raise MemoryError("out of memory for a CounterTable")

    def __dealloc__(self):
        cdef size_t kind
        if self.counts != NULL:
            for kind in range(self.num_kinds):
                free(self.counts[kind])
            free(self.counts)
        id_index_free(&self.index)
        lock_free(self.lock)

    cdef int _grow(self) noexcept nogil:
        cdef size_t kind, capacity = self.capacity * 2 if self.capacity else 64
        cdef Count* grown
        for kind in range(self.num_kinds):
            grown = <Count*>realloc(self.counts[kind], capacity * sizeof(Count))
            if grown == NULL:
                return -1
            memset(grown + self.capacity, 0, (capacity - self.capacity) * sizeof(Count))
            self.counts[kind] = grown
        self.capacity = capacity
        return 0

    cdef Py_ssize_t _slot(self, int64_t key) noexcept nogil:
        """The dense index of `key`, inserted with zero counts when new; -1 when memory runs out."""
        cdef bint inserted = False
        cdef Py_ssize_t at = id_index_insert(&self.index, key, &inserted)
        if at >= 0 and <size_t>at >= self.capacity and self._grow() < 0:
            return -1
        return at

    cdef _add_batch(self, size_t kind, const int64_t* keys, const int64_t* deltas, Py_ssize_t n,
                    bint with_total, int sign):
        """Adds `sign` times each key's summed deltas to its pending delta (and total, `with_total`).
        Only the values after the call must fit in int64; all or nothing."""
        cdef SumTable sums, wraps
        cdef bint any_wrap = False
        cdef int failure = OK
        cdef size_t j
        cdef int64_t key = 0
        cdef Py_ssize_t at
        cdef int128 exact, total, pending
        cdef Count current
        cdef Count* updates = NULL
        if kind >= self.num_kinds:
            raise ValueError(f"no kind number {kind}")
        if table_init(&sums) < 0 or table_init(&wraps) < 0:
            failure = NO_MEMORY
        try:
            with nogil:
                # Sum the call's events first (aggregate's machinery): the table sees each key once.
                if failure == OK and n and _sum_events(keys, deltas, n, &sums, &wraps, &any_wrap) < 0:
                    failure = NO_MEMORY
                if failure == OK:
                    updates = <Count*>malloc((sums.length + 1) * sizeof(Count))
                    if updates == NULL:
                        failure = NO_MEMORY
                lock_acquire_nogil(self.lock)
                # Check every new value before changing anything ...
                j = 0
                while failure == OK and j < sums.length:
                    if j + PREFETCH_AHEAD < sums.length:
                        self._prefetch(sums.order[j + PREFETCH_AHEAD])
                    key = sums.order[j]
                    exact = exact_sum(&sums, &wraps, key) if any_wrap else <int128>table_sum(&sums, key)
                    exact *= sign
                    at = id_index_get(&self.index, key)
                    current.total = self.counts[kind][at].total if at >= 0 else 0
                    current.pending = self.counts[kind][at].pending if at >= 0 else 0
                    total = current.total + (exact if with_total else 0)
                    pending = current.pending + exact
                    if total < INT64_MIN or total > INT64_MAX:
                        failure = TOTAL_OVERFLOW
                    elif pending < INT64_MIN or pending > INT64_MAX:
                        failure = PENDING_OVERFLOW
                    else:
                        updates[j].total = <int64_t>total
                        updates[j].pending = <int64_t>pending
                        j += 1
                # ... then store them.
                j = 0
                while failure == OK and j < sums.length:
                    if j + PREFETCH_AHEAD < sums.length:
                        self._prefetch(sums.order[j + PREFETCH_AHEAD])
                    at = self._slot(sums.order[j])
                    if at < 0:
                        failure = NO_MEMORY
                    else:
                        self.counts[kind][at] = updates[j]
                        j += 1
                lock_release(self.lock)
            if failure != OK:
                self._raise(failure, kind, key)
        finally:
            table_free(&sums)
            table_free(&wraps)
            free(updates)

    cdef inline void _prefetch(self, int64_t key) noexcept nogil:
        prefetch(&self.index.slots[<size_t>(id_hash(key) >> self.index.shift)])

    cdef _raise(self, int failure, size_t kind, int64_t key):
        name = self.kinds[kind]
        if failure == NO_MEMORY:
            raise MemoryError("out of memory in a CounterTable")
        if failure == TOTAL_OVERFLOW:
            raise OverflowError(f"the {name} total for key {key} does not fit in int64")
        raise OverflowError(f"the pending {name} delta for key {key} does not fit in int64")

    def add(self, size_t kind, const int64_t[::1] keys, deltas=None):
        cdef const int64_t[::1] delta_view
        cdef const int64_t* delta_ptr = NULL
        cdef Py_ssize_t n = keys.shape[0]
        if deltas is not None:
            delta_view = deltas
            delta_ptr = first_of(delta_view, n, "deltas")
        self._add_batch(kind, &keys[0] if n else NULL, delta_ptr, n, True, 1)

    def get(self, size_t kind, const int64_t[::1] keys):
        cdef Py_ssize_t n = keys.shape[0], i, at
        if kind >= self.num_kinds:
            raise ValueError(f"no kind number {kind}")
        totals = np.empty(n, dtype=np.int64)
        cdef int64_t[::1] out = totals
        with nogil:
            lock_acquire_nogil(self.lock)
            for i in range(n):
                at = id_index_get(&self.index, keys[i])
                out[i] = self.counts[kind][at].total if at >= 0 else 0
            lock_release(self.lock)
        return totals

    def top(self, size_t kind, size_t k):
        cdef TopK top
        cdef size_t i
        cdef int failed
        if kind >= self.num_kinds:
            raise ValueError(f"no kind number {kind}")
        with nogil:
            lock_acquire_nogil(self.lock)
            failed = topk_init(&top, k, self.index.length)
            if failed == 0:
                for i in range(self.index.length):
                    topk_offer(&top, self.index.ids[i], self.counts[kind][i].total)
            lock_release(self.lock)
        if failed:
            raise MemoryError("out of memory in CounterTable.top")
        return topk_finish(&top)

    def drain(self):
        cdef size_t kind, i, length, found
        cdef int64_t[::1] key_view
        cdef int64_t[::1] delta_view
        drained = []
        lock_acquire(self.lock)
        try:
            length = self.index.length
            for kind in range(self.num_kinds):
                found = 0
                with nogil:
                    for i in range(length):
                        found += self.counts[kind][i].pending != 0
                keys = np.empty(found, dtype=np.int64)
                deltas = np.empty(found, dtype=np.int64)
                key_view = keys
                delta_view = deltas
                found = 0
                with nogil:
                    for i in range(length):
                        if self.counts[kind][i].pending != 0:
                            key_view[found] = self.index.ids[i]
                            delta_view[found] = self.counts[kind][i].pending
                            self.counts[kind][i].pending = 0
                            found += 1
                drained.append((keys, deltas))
        finally:
            lock_release(self.lock)
        # Sorted after letting go of the lock, so that adds need not wait for it.
        for position, (keys, deltas) in enumerate(drained):
            order = np.argsort(keys, kind="stable")
            drained[position] = (keys[order], deltas[order])
        return drained

    def restore(self, size_t kind, const int64_t[::1] keys, const int64_t[::1] deltas, bint retract):
        cdef Py_ssize_t n = keys.shape[0]
        cdef const int64_t* delta_ptr = first_of(deltas, n, "deltas")
        self._add_batch(kind, &keys[0] if n else NULL, delta_ptr, n, False, -1 if retract else 1)

    cdef Entry* _snapshot(self, size_t kind, size_t* size) noexcept nogil:
        """Every (key, total, pending) of `kind` with something non-zero, keys ascending (malloc'd)."""
        cdef size_t i, found = 0
        cdef Entry* entries = <Entry*>malloc((self.index.length + 1) * sizeof(Entry))
        if entries == NULL:
            return NULL
        for i in range(self.index.length):
            if self.counts[kind][i].total != 0 or self.counts[kind][i].pending != 0:
                entries[found].key = self.index.ids[i]
                entries[found].total = self.counts[kind][i].total
                entries[found].pending = self.counts[kind][i].pending
                found += 1
        qsort(entries, found, sizeof(Entry), _entry_by_key)
        size[0] = found
        return entries

    def add_table(self, CounterTable other):
        cdef size_t kind, j, num_kinds = self.num_kinds
        cdef Py_ssize_t at
        cdef Entry** theirs
        cdef size_t* sizes
        cdef Count mine
        cdef int64_t ignored
        cdef int failure = OK
        cdef size_t failed_kind = 0
        cdef int64_t failed_key = 0
        if other.num_kinds != num_kinds:
            raise ValueError(f"cannot add a table of {other.num_kinds} kinds to one of {num_kinds}")
        theirs = <Entry**>calloc(num_kinds, sizeof(Entry*))
        sizes = <size_t*>calloc(num_kinds, sizeof(size_t))
        try:
            if theirs == NULL or sizes == NULL:
                raise MemoryError("out of memory in CounterTable.add_table")
            with nogil:
                # Read the other table first and let go of its lock: two tables merging into each
                # other from two threads never wait on each other.
                lock_acquire_nogil(other.lock)
                for kind in range(num_kinds):
                    theirs[kind] = other._snapshot(kind, &sizes[kind])
                    if theirs[kind] == NULL:
                        failure = NO_MEMORY
                lock_release(other.lock)
                if failure == OK:
                    lock_acquire_nogil(self.lock)
                    # Check every sum first (kind by kind, keys ascending, total then pending) ...
                    for kind in range(num_kinds):
                        for j in range(sizes[kind]):
                            at = id_index_get(&self.index, theirs[kind][j].key)
                            mine.total = self.counts[kind][at].total if at >= 0 else 0
                            mine.pending = self.counts[kind][at].pending if at >= 0 else 0
                            if add_overflows(mine.total, theirs[kind][j].total, &ignored):
                                failure = TOTAL_OVERFLOW
                            elif add_overflows(mine.pending, theirs[kind][j].pending, &ignored):
                                failure = PENDING_OVERFLOW
                            if failure != OK:
                                failed_kind = kind
                                failed_key = theirs[kind][j].key
                                break
                        if failure != OK:
                            break
                    # ... then apply them all.
                    if failure == OK:
                        for kind in range(num_kinds):
                            for j in range(sizes[kind]):
                                at = self._slot(theirs[kind][j].key)
                                if at < 0:
                                    failure = NO_MEMORY
                                    break
                                self.counts[kind][at].total += theirs[kind][j].total
                                self.counts[kind][at].pending += theirs[kind][j].pending
                    lock_release(self.lock)
            if failure != OK:
                self._raise(failure, failed_kind, failed_key)
        finally:
            if theirs != NULL:
                for kind in range(num_kinds):
                    free(theirs[kind])
            free(theirs)
            free(sizes)


# -- WindowedCounter -------------------------------------------------------------------------------------

cdef struct Bucket:
    bint used
    int64_t number
    IdIndex index
    int64_t* counts              # counts[index.get(key)]
    size_t capacity


cdef inline size_t ring_slot(int64_t bucket, size_t buckets) noexcept nogil:
    cdef int64_t r = bucket % <int64_t>buckets
    return <size_t>(r + <int64_t>buckets if r < 0 else r)


cdef void bucket_clear(Bucket* b) noexcept nogil:
    if b.used:
        id_index_free(&b.index)
        free(b.counts)
    b.used = False
    b.counts = NULL
    b.capacity = 0


cdef int bucket_reset(Bucket* b, int64_t number) noexcept nogil:
    bucket_clear(b)
    if id_index_init(&b.index, 0) < 0:
        id_index_free(&b.index)
        return -1
    b.used = True
    b.number = number
    return 0


cdef inline int64_t bucket_count(const Bucket* b, int64_t key) noexcept nogil:
    cdef Py_ssize_t at = id_index_get(&b.index, key)
    return b.counts[at] if at >= 0 else 0


cdef class WindowedCounter:
    """See igcore._reference.counters.WindowedCounter."""

    cdef int64_t bucket_seconds
    cdef size_t buckets
    cdef Bucket* slots           # bucket number b lives in slot b mod buckets while in the ring
    cdef bint has_head
    cdef int64_t head
    cdef uint64_t too_old
    cdef uint64_t in_future
    cdef PyThread_type_lock lock

    def __cinit__(self, int64_t bucket_seconds, size_t buckets):
        if bucket_seconds < 1 or buckets < 1:
            raise ValueError("bucket_seconds and buckets must be at least 1")
        self.bucket_seconds = bucket_seconds
        self.buckets = buckets
        self.lock = lock_new()
        self.slots = <Bucket*>calloc(buckets, sizeof(Bucket))
        if self.slots == NULL:
            raise MemoryError("out of memory for a WindowedCounter")

    def __dealloc__(self):
        cdef size_t i
        if self.slots != NULL:
            for i in range(self.buckets):
                bucket_clear(&self.slots[i])
            free(self.slots)
        lock_free(self.lock)

    cdef inline bint _in_ring(self, int64_t bucket) noexcept nogil:
        # head - bucket as an unsigned difference is exact when bucket <= head.
        return self.has_head and bucket <= self.head and <uint64_t>self.head - <uint64_t>bucket < self.buckets

    cdef void _advance(self, int64_t now) noexcept nogil:
        cdef int64_t now_bucket = floor_div(now, self.bucket_seconds)
        cdef size_t i
        if self.has_head and self.head >= now_bucket:
            return
        self.has_head = True
        self.head = now_bucket
        for i in range(self.buckets):
            if self.slots[i].used and not self._in_ring(self.slots[i].number):
                bucket_clear(&self.slots[i])

    cdef int _count_in(self, int64_t bucket, int64_t key, int64_t delta, bint* wrapped) noexcept nogil:
        """Adds `delta` (wrapping) to `key`'s count in `bucket` (in the ring): OK or NO_MEMORY."""
        cdef Bucket* b = &self.slots[ring_slot(bucket, self.buckets)]
        cdef bint inserted = False
        cdef Py_ssize_t at
        cdef int64_t* grown
        cdef size_t capacity
        if not b.used or b.number != bucket:
            # A slot holding another bucket number holds one that has left the ring.
            if bucket_reset(b, bucket) < 0:
                return NO_MEMORY
        at = id_index_insert(&b.index, key, &inserted)
        if at < 0:
            return NO_MEMORY
        if <size_t>at >= b.capacity:
            capacity = b.capacity * 2 if b.capacity else 64
            grown = <int64_t*>realloc(b.counts, capacity * sizeof(int64_t))
            if grown == NULL:
                return NO_MEMORY
            b.counts = grown
            b.capacity = capacity
        if inserted:
            b.counts[at] = 0
        if _wrapping_add(&b.counts[at], delta) != 0:
            wrapped[0] = True
        return OK

    cdef inline int64_t _bucket_of(self, int64_t t, int64_t* span) noexcept nogil:
        # Events come mostly in time order: the last bucket's span [first, last] spares a division.
        cdef int64_t bucket
        if span[0] <= t <= span[1]:
            return span[2]
        bucket = floor_div(t, self.bucket_seconds)
        if bucket >= INT64_MIN // self.bucket_seconds and bucket <= INT64_MAX // self.bucket_seconds:
            span[0] = bucket * self.bucket_seconds
            span[1] = (span[0] + (self.bucket_seconds - 1)
                       if span[0] <= INT64_MAX - (self.bucket_seconds - 1) else INT64_MAX)
            span[2] = bucket
        return bucket

    cdef int _count_events(self, const int64_t* keys, const int64_t* times, const int64_t* deltas,
                           Py_ssize_t n, Py_ssize_t* done, uint64_t* dropped, bint* wrapped) noexcept nogil:
        """Counts the events whose bucket is in the ring; `done` events were counted on NO_MEMORY."""
        cdef Py_ssize_t i
        cdef int64_t bucket
        cdef int64_t span[3]
        span[0] = 1
        span[1] = 0
        for i in range(n):
            bucket = self._bucket_of(times[i], span)
            if bucket > self.head:
                dropped[1] += 1
            elif not self._in_ring(bucket):
                dropped[0] += 1
            elif self._count_in(bucket, keys[i], deltas[i] if deltas != NULL else 1, wrapped) != OK:
                done[0] = i
                return NO_MEMORY
        done[0] = n
        return OK

    cdef void _uncount_events(self, const int64_t* keys, const int64_t* times, const int64_t* deltas,
                              Py_ssize_t done) noexcept nogil:
        """Takes back the first `done` events, last first (exact: wrapping arithmetic)."""
        cdef Py_ssize_t j, at
        cdef int64_t bucket
        cdef Bucket* b
        for j in range(done - 1, -1, -1):
            bucket = floor_div(times[j], self.bucket_seconds)
            if bucket > self.head or not self._in_ring(bucket):
                continue
            b = &self.slots[ring_slot(bucket, self.buckets)]
            if not b.used or b.number != bucket:
                continue
            at = id_index_get(&b.index, keys[j])
            if at >= 0:
                b.counts[at] = wrapping_sub(b.counts[at], deltas[j] if deltas != NULL else 1)

    cdef object _first_overflow(self, const int64_t* keys, const int64_t* times, const int64_t* deltas,
                                Py_ssize_t n):
        """(key, time) of the first event whose count would not fit after the call, or None: exact, in
        Python ints. Called with the events taken back, so the counts are the ones before the call."""
        cdef Py_ssize_t i
        cdef int64_t bucket
        cdef Bucket* b
        staged = {}
        for i in range(n):
            bucket = floor_div(times[i], self.bucket_seconds)
            if bucket > self.head or not self._in_ring(bucket):
                continue
            b = &self.slots[ring_slot(bucket, self.buckets)]
            if (bucket, keys[i]) not in staged:
                before = bucket_count(b, keys[i]) if b.used and b.number == bucket else 0
                staged[(bucket, keys[i])] = [before, keys[i], times[i]]
            staged[(bucket, keys[i])][0] += deltas[i] if deltas != NULL else 1
        for count, key, t in staged.values():
            if not INT64_MIN <= count <= INT64_MAX:
                return key, t
        return None

    def add(self, const int64_t[::1] keys, const int64_t[::1] timestamps, deltas, int64_t now):
        cdef const int64_t[::1] delta_view
        cdef const int64_t* delta_ptr = NULL
        cdef const int64_t* key_ptr = NULL
        cdef const int64_t* time_ptr = NULL
        cdef Py_ssize_t n = keys.shape[0], done = 0
        cdef int failure = OK
        cdef bint wrapped = False
        cdef uint64_t dropped[2]
        time_ptr = first_of(timestamps, n, "timestamps")
        if deltas is not None:
            delta_view = deltas
            delta_ptr = first_of(delta_view, n, "deltas")
        if n:
            key_ptr = &keys[0]
        dropped[0] = dropped[1] = 0
        overflow = None
        with nogil:
            lock_acquire_nogil(self.lock)
            self._advance(now)
            failure = self._count_events(key_ptr, time_ptr, delta_ptr, n, &done, dropped, &wrapped)
            if failure != OK or wrapped:
                self._uncount_events(key_ptr, time_ptr, delta_ptr, done)
        try:
            if failure == OK and wrapped:
                # Some count wrapped (rare): only the counts after the call must fit. Check exactly;
                # if they all fit, count the events again (the wrapped values are then the right ones).
                overflow = self._first_overflow(key_ptr, time_ptr, delta_ptr, n)
                if overflow is None:
                    dropped[0] = dropped[1] = 0
                    with nogil:
                        failure = self._count_events(key_ptr, time_ptr, delta_ptr, n, &done, dropped, &wrapped)
                        if failure != OK:
                            self._uncount_events(key_ptr, time_ptr, delta_ptr, done)
            if failure == OK and overflow is None:
                self.too_old += dropped[0]
                self.in_future += dropped[1]
        finally:
            lock_release(self.lock)
        if failure == NO_MEMORY:
            raise MemoryError("out of memory in a WindowedCounter")
        if overflow is not None:
            raise OverflowError(f"the count for key {overflow[0]} at time {overflow[1]} does not fit in int64")
        return dropped[0], dropped[1]

    def dropped(self):
        cdef uint64_t too_old, in_future
        lock_acquire(self.lock)
        too_old, in_future = self.too_old, self.in_future
        lock_release(self.lock)
        return too_old, in_future

    cdef size_t _window(self, int64_t now, size_t window_buckets, size_t* chosen) noexcept nogil:
        """Writes the slots of the window's buckets that are in the ring into `chosen`; their number."""
        cdef int128 last = floor_div(now, self.bucket_seconds)
        cdef int128 first = last - <int128>window_buckets + 1
        cdef size_t i, found = 0
        for i in range(self.buckets):
            if (self.slots[i].used and self._in_ring(self.slots[i].number)
                    and first <= self.slots[i].number and self.slots[i].number <= last):
                chosen[found] = i
                found += 1
        return found

    def sum(self, const int64_t[::1] keys, int64_t now, size_t window_buckets):
        cdef Py_ssize_t n = keys.shape[0], i
        cdef Py_ssize_t failed_at = -1
        cdef size_t j, found
        cdef int128 total
        cdef size_t* chosen = <size_t*>malloc(self.buckets * sizeof(size_t))
        if chosen == NULL:
            raise MemoryError("out of memory in WindowedCounter.sum")
        totals = np.empty(n, dtype=np.int64)
        cdef int64_t[::1] out = totals
        try:
            with nogil:
                lock_acquire_nogil(self.lock)
                found = self._window(now, window_buckets, chosen)
                for i in range(n):
                    total = 0
                    for j in range(found):
                        total += bucket_count(&self.slots[chosen[j]], keys[i])
                    if total < INT64_MIN or total > INT64_MAX:
                        failed_at = i
                        break
                    out[i] = <int64_t>total
                lock_release(self.lock)
        finally:
            free(chosen)
        if failed_at >= 0:
            raise OverflowError(f"the window total for key {keys[failed_at]} does not fit in int64")
        return totals

    def top(self, size_t k, int64_t now, size_t window_buckets):
        cdef size_t j, i, found, largest = 0
        cdef IdIndex combined
        cdef int128* totals = NULL
        cdef int128* grown
        cdef Py_ssize_t at
        cdef bint inserted
        cdef int failure = OK
        cdef bint has_overflow = False
        cdef int64_t overflow_key = 0
        cdef TopK top
        top.heap = NULL
        cdef size_t* chosen = <size_t*>malloc(self.buckets * sizeof(size_t))
        if chosen == NULL:
            raise MemoryError("out of memory in WindowedCounter.top")
        combined.slots = NULL
        combined.ids = NULL
        try:
            with nogil:
                lock_acquire_nogil(self.lock)
                found = self._window(now, window_buckets, chosen)
                for j in range(found):
                    if self.slots[chosen[j]].index.length > largest:
                        largest = self.slots[chosen[j]].index.length
                # Sum the window's buckets into one table: 128-bit, so the order of buckets is moot.
                if id_index_init(&combined, largest) < 0:
                    failure = NO_MEMORY
                else:
                    totals = <int128*>malloc((largest + 1) * sizeof(int128))
                    if totals == NULL:
                        failure = NO_MEMORY
                for j in range(found):
                    if failure != OK:
                        break
                    for i in range(self.slots[chosen[j]].index.length):
                        at = id_index_insert(&combined, self.slots[chosen[j]].index.ids[i], &inserted)
                        if at < 0:
                            failure = NO_MEMORY
                            break
                        if <size_t>at > largest:
                            grown = <int128*>realloc(totals, (largest * 2 + 2) * sizeof(int128))
                            if grown == NULL:
                                failure = NO_MEMORY
                                break
                            totals = grown
                            largest = largest * 2 + 1
                        if inserted:
                            totals[at] = 0
                        totals[at] += self.slots[chosen[j]].counts[i]
                lock_release(self.lock)
                if failure == OK:
                    for i in range(combined.length):
                        if totals[i] < INT64_MIN or totals[i] > INT64_MAX:
                            if not has_overflow or combined.ids[i] < overflow_key:
                                overflow_key = combined.ids[i]
                            has_overflow = True
                if failure == OK and not has_overflow:
                    if topk_init(&top, k, combined.length) < 0:
                        failure = NO_MEMORY
                    else:
                        for i in range(combined.length):
                            topk_offer(&top, combined.ids[i], <int64_t>totals[i])
            if failure == NO_MEMORY:
                raise MemoryError("out of memory in WindowedCounter.top")
            if has_overflow:
                raise OverflowError(f"the window total for key {overflow_key} does not fit in int64")
            return topk_finish(&top)
        finally:
            free(chosen)
            free(totals)
            free(top.heap)
            id_index_free(&combined)


# -- HyperLogLog -----------------------------------------------------------------------------------------

cdef enum:
    HLL_P = 14
    HLL_REGISTERS = 16384        # 2**HLL_P
    HLL_Q = 50                   # 64 - HLL_P hash bits left for the run of zeros
    HLL_MAX_REGISTER = 51        # HLL_Q + 1
    HLL_BATCH = 64               # ints converted to decimal before any is hashed
cdef uint64_t HLL_SEED = 0xadc83b19ULL
cdef double HLL_ALPHA_INF = 0.721347520444481703680  # 1 / (2 ln 2)


cdef inline uint64_t murmurhash64a(const uint8_t* data, size_t length, uint64_t seed) noexcept nogil:
    """Austin Appleby's MurmurHash64A, as Redis hashes HyperLogLog elements (little-endian words)."""
    cdef uint64_t m = 0xc6a4a7935bd1e995ULL
    cdef int r = 47
    cdef uint64_t h = seed ^ (<uint64_t>length * m)
    cdef uint64_t k
    cdef size_t blocks = length - (length & 7), i, j
    for i in range(0, blocks, 8):
        k = 0
        for j in range(8):
            k |= (<uint64_t>data[i + j]) << (8 * j)
        k *= m
        k ^= k >> r
        k *= m
        h ^= k
        h *= m
    if length & 7:
        k = 0
        for j in range(length & 7):
            k |= (<uint64_t>data[blocks + j]) << (8 * j)
        h ^= k
        h *= m
    h ^= h >> r
    h *= m
    h ^= h >> r
    return h


cdef inline bint hll_offer(uint8_t* registers, const uint8_t* element, size_t length) noexcept nogil:
    """Adds one element: the low 14 bits of its hash choose the register, the value is one more than
    the trailing zeros of the other 50 bits. True when the register grew."""
    cdef uint64_t hashed = murmurhash64a(element, length, HLL_SEED)
    cdef size_t index = hashed & (HLL_REGISTERS - 1)
    cdef uint64_t rest = (hashed >> HLL_P) | (<uint64_t>1 << HLL_Q)
    cdef uint8_t value = 1
    while (rest & 1) == 0:
        value += 1
        rest >>= 1
    if value > registers[index]:
        registers[index] = value
        return True
    return False


cdef const char* DIGIT_PAIRS = (
    b"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    b"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    b"8081828384858687888990919293949596979899"
)


cdef inline void put_pair(uint8_t* at, uint32_t pair) noexcept nogil:
    at[0] = DIGIT_PAIRS[2 * pair]
    at[1] = DIGIT_PAIRS[2 * pair + 1]


cdef inline uint64_t eight_digits(uint32_t n) noexcept nogil:
    """The eight decimal digits of `n` < 10**8 (leading zeros kept) as ASCII, the first digit in the
    lowest byte: halves, pairs and digits are split in the lanes of one 64-bit word at once."""
    cdef uint64_t halves = <uint64_t>(n // 10000) | (<uint64_t>(n % 10000) << 32)
    cdef uint64_t hundreds = ((halves * 5243) >> 19) & 0x0000007F0000007FULL  # x // 100, x < 10**4
    cdef uint64_t pairs = hundreds | ((halves - hundreds * 100) << 16)
    cdef uint64_t tens = ((pairs * 103) >> 10) & 0x000F000F000F000FULL  # y // 10, y < 100
    return (tens | ((pairs - tens * 10) << 8)) | 0x3030303030303030ULL


cdef inline size_t decimal(int64_t value, uint8_t* buffer) noexcept nogil:
    """Writes `value`'s decimal digits at the end of the 20-byte `buffer`; returns where they start.
    Eight digits per 64-bit division, then independent 32-bit steps: a short chain of divisions."""
    cdef uint64_t n = <uint64_t>value if value >= 0 else <uint64_t>0 - <uint64_t>value
    cdef uint32_t group, m
    cdef size_t at = 20
    cdef uint64_t word
    while n >= 100000000:
        group = <uint32_t>(n % 100000000)
        n //= 100000000
        at -= 8
        word = eight_digits(group)
        memcpy(buffer + at, &word, 8)  # little-endian: the first digit in the lowest byte
    m = <uint32_t>n
    while m >= 100:
        at -= 2
        put_pair(buffer + at, m % 100)
        m //= 100
    if m >= 10:
        at -= 2
        put_pair(buffer + at, m)
    else:
        at -= 1
        buffer[at] = <uint8_t>(48 + m)
    if value < 0:
        at -= 1
        buffer[at] = 45  # '-'
    return at


cdef double hll_sigma(double x) noexcept nogil:
    # Ertl's correction for registers still at zero, summed until it stops changing.
    cdef double y = 1.0, z = x, previous
    if x == 1.0:
        return INFINITY
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if z == previous:
            return z


cdef double hll_tau(double x) noexcept nogil:
    # Ertl's correction for registers at the largest value.
    cdef double y = 1.0, z, previous
    if x == 0.0 or x == 1.0:
        return 0.0
    z = 1.0 - x
    while True:
        x = sqrt(x)
        previous = z
        y *= 0.5
        z -= (1.0 - x) * (1.0 - x) * y
        if z == previous:
            return z / 3.0


cdef class HyperLogLog:
    """See igcore._reference.counters.HyperLogLog."""

    cdef uint8_t values[HLL_REGISTERS]   # one register per byte
    cdef PyThread_type_lock lock

    def __cinit__(self):
        memset(self.values, 0, HLL_REGISTERS)
        self.lock = lock_new()

    def __dealloc__(self):
        lock_free(self.lock)

    def add_ints(self, const int64_t[::1] items):
        # A batch is converted to decimal before any of it is hashed: hashing a string just written
        # would load its words while the digits' narrower stores are in flight, and stall per item.
        cdef Py_ssize_t i, j, batch, n = items.shape[0]
        cdef uint8_t text[HLL_BATCH][20]
        cdef size_t starts[HLL_BATCH]
        cdef bint changed = False
        with nogil:
            lock_acquire_nogil(self.lock)
            i = 0
            while i < n:
                batch = n - i if n - i < HLL_BATCH else HLL_BATCH
                for j in range(batch):
                    starts[j] = decimal(items[i + j], text[j])
                for j in range(batch):
                    changed |= hll_offer(self.values, text[j] + starts[j], 20 - starts[j])
                i += batch
            lock_release(self.lock)
        return changed

    def add_bytes(self, const uint8_t[::1] buffer, const int64_t[::1] ends):
        cdef Py_ssize_t i, start = 0, n = buffer.shape[0]
        cdef bint changed = False
        for i in range(ends.shape[0]):
            if ends[i] < start or ends[i] > n:
                raise ValueError("element ends must rise within the buffer")
            start = ends[i]
        if start != n:
            raise ValueError("the last element must end with the buffer")
        start = 0
        with nogil:
            lock_acquire_nogil(self.lock)
            for i in range(ends.shape[0]):
                # &buffer[start] would be out of bounds for an empty element at the end.
                changed |= hll_offer(self.values, &buffer[0] + start if n else NULL, ends[i] - start)
                start = ends[i]
            lock_release(self.lock)
        return changed

    def count(self):
        cdef uint32_t histogram[HLL_MAX_REGISTER + 1]
        cdef double m = HLL_REGISTERS, z
        cdef size_t i
        cdef int value
        memset(histogram, 0, sizeof(histogram))
        with nogil:
            lock_acquire_nogil(self.lock)
            for i in range(HLL_REGISTERS):
                histogram[self.values[i] if self.values[i] <= HLL_MAX_REGISTER else HLL_MAX_REGISTER] += 1
            lock_release(self.lock)
            # Redis's estimate, in the same double-precision steps; C's round() rounds half away from 0.
            z = m * hll_tau((m - histogram[HLL_Q + 1]) / m)
            for value in range(HLL_Q, 0, -1):
                z += histogram[value]
                z *= 0.5
            z += m * hll_sigma(histogram[0] / m)
        return <uint64_t>round(HLL_ALPHA_INF * m * m / z)

    def merge(self, HyperLogLog other):
        cdef uint8_t theirs[HLL_REGISTERS]
        cdef size_t i
        with nogil:
            lock_acquire_nogil(other.lock)
            memcpy(theirs, other.values, HLL_REGISTERS)
            lock_release(other.lock)
            lock_acquire_nogil(self.lock)
            for i in range(HLL_REGISTERS):
                if theirs[i] > self.values[i]:
                    self.values[i] = theirs[i]
            lock_release(self.lock)

    def registers(self):
        out = np.empty(HLL_REGISTERS, dtype=np.uint8)
        cdef uint8_t[::1] view = out
        with nogil:
            lock_acquire_nogil(self.lock)
            memcpy(&view[0], self.values, HLL_REGISTERS)
            lock_release(self.lock)
        return out

    def load(self, const uint8_t[::1] registers):
        cdef size_t i
        if registers.shape[0] != HLL_REGISTERS:
            raise ValueError(f"a HyperLogLog has {HLL_REGISTERS} registers, got {registers.shape[0]}")
        for i in range(HLL_REGISTERS):
            if registers[i] > HLL_MAX_REGISTER:
                raise ValueError(
                    f"register {i} holds {registers[i]}, above the largest possible value {HLL_MAX_REGISTER}"
                )
        with nogil:
            lock_acquire_nogil(self.lock)
            memcpy(self.values, &registers[0], HLL_REGISTERS)
            lock_release(self.lock)
