# WindowedCounter: counts per key in a ring of time buckets, for "trending in the last hour"
# (rust/igcore-core/src/counters/window.rs). Included by _cy_counters.pyx.

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


cdef int bucket_reset(Bucket* b, int64_t number, size_t expected) noexcept nogil:
    """An empty bucket sized for about `expected` keys (as in the Rust backend: a steady stream's bucket
    holds about as many keys as the one before it)."""
    bucket_clear(b)
    if id_index_init(&b.index, expected) < 0:
        id_index_free(&b.index)
        return -1
    if expected:
        b.counts = <int64_t*>malloc(expected * sizeof(int64_t))
        if b.counts == NULL:
            id_index_free(&b.index)
            return -1
        b.capacity = expected
    b.used = True
    b.number = number
    return 0


cdef inline void prefetch_slot(const IdIndex* ix, int64_t id) noexcept nogil:
    prefetch(&ix.slots[id_hash(id) >> ix.shift])


cdef inline int64_t bucket_count(const Bucket* b, int64_t key) noexcept nogil:
    cdef Py_ssize_t at = id_index_get(&b.index, key)
    return b.counts[at] if at >= 0 else 0


@cython.final  # no subclasses: its cdef methods are direct calls, inlined in the loops
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
            raise ValueError(_messages.WINDOW_SHAPE)
        self.bucket_seconds = bucket_seconds
        self.buckets = buckets
        self.lock = lock_new()
        self.slots = <Bucket*>calloc(buckets, sizeof(Bucket))
        if self.slots == NULL:
            raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="making a WindowedCounter"))

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

    cdef int _count_in(self, int64_t bucket, int64_t key, int64_t delta, bint* wrapped,
                       Py_ssize_t events_left) noexcept nogil:
        """Adds `delta` (wrapping) to `key`'s count in `bucket` (in the ring): OK or NO_MEMORY. A bucket
        made for it is sized for the ring's largest, or for the `events_left` in the call if fewer."""
        cdef Bucket* b = &self.slots[ring_slot(bucket, self.buckets)]
        cdef bint inserted = False
        cdef Py_ssize_t at
        cdef int64_t* grown
        cdef size_t capacity, i, largest = 0
        if not b.used or b.number != bucket:
            # A slot holding another bucket number holds one that has left the ring.
            for i in range(self.buckets):
                if self.slots[i].used and self.slots[i].index.length > largest:
                    largest = self.slots[i].index.length
            if bucket_reset(b, bucket, min(largest, <size_t>events_left)) < 0:
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
        cdef const Bucket* current
        cdef int64_t span[3]
        span[0] = 1
        span[1] = 0
        for i in range(n):
            bucket = self._bucket_of(times[i], span)
            if bucket > self.head:
                dropped[1] += 1
            elif not self._in_ring(bucket):
                dropped[0] += 1
            else:
                current = &self.slots[ring_slot(bucket, self.buckets)]
                if current.used and i + PREFETCH_AHEAD < n:
                    prefetch_slot(&current.index, keys[i + PREFETCH_AHEAD])
                if self._count_in(bucket, keys[i], deltas[i] if deltas != NULL else 1, wrapped, n - i) != OK:
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

    def add(self, const int64_t[::1] keys, const int64_t[::1] timestamps, const int64_t[::1] deltas, int64_t now):
        cdef const int64_t* delta_ptr = NULL
        cdef const int64_t* key_ptr = NULL
        cdef const int64_t* time_ptr = NULL
        cdef Py_ssize_t n = keys.shape[0], done = 0
        cdef int failure = OK
        cdef bint wrapped = False
        cdef uint64_t dropped[2]
        time_ptr = first_of(timestamps, n, "timestamps")
        delta_ptr = first_of(deltas, n, "deltas")
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
            raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="growing a WindowedCounter"))
        if overflow is not None:
            raise OverflowError(_messages.COUNT_OVERFLOW.format(key=overflow[0], time=overflow[1]))
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
            raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="answering WindowedCounter.sum"))
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
            raise OverflowError(_messages.WINDOW_TOTAL_OVERFLOW.format(key=keys[failed_at]))
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
            raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="answering WindowedCounter.top"))
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
                raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="answering WindowedCounter.top"))
            if has_overflow:
                raise OverflowError(_messages.WINDOW_TOTAL_OVERFLOW.format(key=overflow_key))
            return topk_finish(&top)
        finally:
            free(chosen)
            free(totals)
            free(top.heap)
            id_index_free(&combined)
