# Group-by-sum of event streams, and the sum table that CounterTable.add uses too
# (rust/igcore-core/src/counters.rs). Included by _cy_counters.pyx.

# A free slot holds the id 0, so a new table is zeroed memory (calloc); the key 0 is kept aside.
cdef int64_t VACANT = 0


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


cdef inline int128 exact_sum(const SumTable* table, const SumTable* wraps, int64_t key) noexcept nogil:
    return <int128>table_sum(table, key) + <int128>table_sum(wraps, key) * (<int128>1 << 64)


def aggregate(const int64_t[::1] keys, const int64_t[::1] deltas=None):
    cdef Py_ssize_t n = keys.shape[0]
    cdef const int64_t* delta_ptr = first_of(deltas, n, "deltas")
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
            raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="aggregating"))
        if overflow_at >= 0:
            raise OverflowError(_messages.TOTAL_OVERFLOW.format(key=table.order[overflow_at]))
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
