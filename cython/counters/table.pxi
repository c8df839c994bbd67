# CounterTable: named counter kinds per key, with totals and the deltas pending since the last drain
# (rust/igcore-core/src/counters/table.rs). Included by _cy_counters.pyx.

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


@cython.final  # no subclasses: its cdef methods are direct calls, inlined in the loops
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
            raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="making a CounterTable"))

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
            raise ValueError(_messages.NO_KIND.format(kind=kind))
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
            raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="growing a CounterTable"))
        if failure == TOTAL_OVERFLOW:
            raise OverflowError(_messages.KIND_TOTAL_OVERFLOW.format(kind=name, key=key))
        raise OverflowError(_messages.PENDING_DELTA_OVERFLOW.format(kind=name, key=key))

    def add(self, size_t kind, const int64_t[::1] keys, const int64_t[::1] deltas):
        cdef Py_ssize_t n = keys.shape[0]
        cdef const int64_t* delta_ptr = first_of(deltas, n, "deltas")
        self._add_batch(kind, &keys[0] if n else NULL, delta_ptr, n, True, 1)

    def get(self, size_t kind, const int64_t[::1] keys):
        cdef Py_ssize_t n = keys.shape[0], i, at
        if kind >= self.num_kinds:
            raise ValueError(_messages.NO_KIND.format(kind=kind))
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
            raise ValueError(_messages.NO_KIND.format(kind=kind))
        with nogil:
            lock_acquire_nogil(self.lock)
            failed = topk_init(&top, k, self.index.length)
            if failed == 0:
                for i in range(self.index.length):
                    topk_offer(&top, self.index.ids[i], self.counts[kind][i].total)
            lock_release(self.lock)
        if failed:
            raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="answering CounterTable.top"))
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
            raise ValueError(_messages.KIND_COUNTS_DIFFER.format(theirs=other.num_kinds, mine=num_kinds))
        theirs = <Entry**>calloc(num_kinds, sizeof(Entry*))
        sizes = <size_t*>calloc(num_kinds, sizeof(size_t))
        try:
            if theirs == NULL or sizes == NULL:
                raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="answering CounterTable.add_table"))
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
