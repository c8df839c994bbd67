# A bounded timeline cache: the top `max_len` entries of one feed, in feed order, each post once
# (rust/igcore-core/src/timeline/cache.rs). Included by _cy_timeline.pyx.

cdef struct TimelineData:
    Entry* entries   # feed order, highest first
    size_t length
    size_t capacity
    # At least the largest post id here (larger after removals): a new post, whose id is above it, is
    # known to be absent without a scan (see rust/igcore-core/src/timeline/cache.rs).
    int64_t post_id_bound


cdef int64_t INT64_MIN = -INT64_MAX - 1


cdef inline void tl_init(TimelineData* t) noexcept nogil:
    t.entries = NULL
    t.length = 0
    t.capacity = 0
    t.post_id_bound = INT64_MIN


cdef int tl_reserve(TimelineData* t, size_t needed, size_t max_len) noexcept nogil:
    cdef size_t capacity
    cdef Entry* grown
    if needed <= t.capacity:
        return 0
    capacity = t.capacity * 2 if t.capacity >= 8 else 8
    if capacity > max_len:
        capacity = max_len
    if capacity < needed:
        capacity = needed
    grown = <Entry*>realloc(t.entries, capacity * sizeof(Entry))
    if grown == NULL:
        return -1
    t.entries = grown
    t.capacity = capacity
    return 0


cdef void tl_free(TimelineData* t) noexcept nogil:
    free(t.entries)
    tl_init(t)


cdef int tl_copy(TimelineData* target, const TimelineData* source) noexcept nogil:
    tl_init(target)
    target.post_id_bound = source.post_id_bound
    if source.length == 0:
        return 0
    target.entries = <Entry*>malloc(source.length * sizeof(Entry))
    if target.entries == NULL:
        return -1
    memcpy(target.entries, source.entries, source.length * sizeof(Entry))
    target.length = source.length
    target.capacity = source.length
    return 0


cdef inline Py_ssize_t tl_find(const TimelineData* t, int64_t post_id) noexcept nogil:
    """Where the post sits, or -1: a scan, as timelines hold hundreds of entries."""
    cdef size_t i
    if post_id > t.post_id_bound:
        return -1
    for i in range(t.length):
        if t.entries[i].post_id == post_id:
            return <Py_ssize_t>i
    return -1


cdef inline void tl_remove_at(TimelineData* t, size_t i) noexcept nogil:
    memmove(&t.entries[i], &t.entries[i + 1], (t.length - i - 1) * sizeof(Entry))
    t.length -= 1


cdef int tl_insert(TimelineData* t, size_t max_len, Entry entry) noexcept nogil:
    """The reference's Timeline.insert: 1 when the entry now stands, 0 when not, -1 out of memory."""
    cdef Py_ssize_t found = tl_find(t, entry.post_id)
    cdef size_t low = 0, high, mid, at
    if found >= 0:
        if t.entries[found].key >= entry.key:
            return 0
        tl_remove_at(t, <size_t>found)
    high = t.length
    while low < high:
        mid = low + (high - low) // 2
        if ranks_above(t.entries[mid].key, t.entries[mid].post_id, entry.key, entry.post_id):
            low = mid + 1
        else:
            high = mid
    at = low
    if at >= max_len:
        return 0  # it would be the entry trimmed
    if t.length == max_len:
        t.length -= 1
    if tl_reserve(t, t.length + 1, max_len) < 0:
        return -1
    memmove(&t.entries[at + 1], &t.entries[at], (t.length - at) * sizeof(Entry))
    t.entries[at] = entry
    t.length += 1
    if entry.post_id > t.post_id_bound:
        t.post_id_bound = entry.post_id
    return 1


cdef size_t tl_remove_author(TimelineData* t, int64_t author_id) noexcept nogil:
    cdef size_t i, kept = 0
    for i in range(t.length):
        if t.entries[i].author_id != author_id:
            t.entries[kept] = t.entries[i]
            kept += 1
    cdef size_t removed = t.length - kept
    t.length = kept
    return removed



# -- Timeline ----------------------------------------------------------------------------------------

@cython.final  # no subclasses: its cdef methods are direct calls, inlined in the loops
cdef class Timeline:
    """A bounded timeline cache in C memory; see igcore._reference.timeline.Timeline."""

    cdef TimelineData data
    cdef readonly Py_ssize_t max_len
    cdef readonly bint float_scores

    def __cinit__(self, Py_ssize_t max_len, bint float_scores):
        tl_init(&self.data)
        self.max_len = max_len if max_len > 0 else 1
        self.float_scores = float_scores

    def __dealloc__(self):
        tl_free(&self.data)

    def __len__(self):
        return self.data.length

    cdef int64_t key_of(self, score) except? -1:
        return float_key(score) if self.float_scores else <int64_t>score

    def insert(self, score, int64_t post_id, int64_t author_id):
        cdef Entry entry
        entry.key = self.key_of(score)
        entry.post_id = post_id
        entry.author_id = author_id
        cdef int stood = tl_insert(&self.data, <size_t>self.max_len, entry)
        if stood < 0:
            raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="inserting"))
        return stood == 1

    def insert_many(self, scores, post_ids, author_ids):
        cdef _Columns columns = accept_columns((scores, post_ids, author_ids))
        if columns is None or columns.float_scores != self.float_scores:
            raise TypeError(_messages.NOT_ENTRY_COLUMNS)
        cdef Run run = columns.run()
        cdef size_t i
        for i in range(run.length):
            if tl_insert(&self.data, <size_t>self.max_len, run_get(&run, i)) < 0:
                raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="inserting"))

    def remove_post(self, int64_t post_id):
        cdef Py_ssize_t found = tl_find(&self.data, post_id)
        if found < 0:
            return False
        tl_remove_at(&self.data, <size_t>found)
        return True

    def remove_author(self, int64_t author_id):
        return tl_remove_author(&self.data, author_id)

    def clear(self):
        self.data.length = 0
        self.data.post_id_bound = INT64_MIN

    def entries(self):
        """(scores, post_ids, author_ids): new arrays, in feed order."""
        return entries_arrays(&self.data, self.float_scores)

    def copy(self):
        cdef Timeline twin = Timeline(self.max_len, self.float_scores)
        if tl_copy(&twin.data, &self.data) < 0:
            raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="copying a timeline"))
        return twin

    def to_bytes(self):
        return _cy_codec.encode_entries(*self.entries())


cdef object entries_arrays(const TimelineData* data, bint float_scores):
    cdef size_t n = data.length
    cdef size_t stride = sizeof(Entry) // sizeof(int64_t)  # an entry is three int64s, side by side
    if n == 0:
        return column(NULL, 1, 0, float_scores), column(NULL, 1, 0, False), column(NULL, 1, 0, False)
    return (column(&data.entries[0].key, stride, n, float_scores),
            column(&data.entries[0].post_id, stride, n, False),
            column(&data.entries[0].author_id, stride, n, False))


cdef object column(const int64_t* values, size_t stride, size_t n, bint float_scores):
    """A new array of the `n` values found `stride` int64s apart: int64, or the float64 scores of feed
    keys when `float_scores`."""
    cdef size_t i
    cdef int64_t[::1] ints
    cdef double[::1] floats
    if float_scores:
        out = np.empty(n, dtype=np.float64)
        floats = out
        for i in range(n):
            floats[i] = key_float_bits(values[i * stride])
        return out
    out = np.empty(n, dtype=np.int64)
    ints = out
    if n and stride == 1:
        memcpy(&ints[0], values, n * sizeof(int64_t))
    else:
        for i in range(n):
            ints[i] = values[i * stride]
    return out


def timeline_from_bytes(bytes data, Py_ssize_t max_len):
    """See igcore._reference.timeline.timeline_from_bytes."""
    scores, post_ids, author_ids = _cy_codec.decode_entries(data)
    cdef bint float_scores = scores.dtype == np.float64
    cdef Timeline timeline = Timeline(max_len, float_scores)
    cdef const int64_t[::1] posts = post_ids
    cdef const int64_t[::1] authors = author_ids
    cdef const int64_t[::1] ints
    cdef const double[::1] floats
    cdef Py_ssize_t n = posts.shape[0], j
    cdef IdIndex seen
    cdef bint inserted
    cdef Entry entry
    cdef int64_t previous_key = 0, previous_post = 0
    cdef size_t keep = n if n < timeline.max_len else <size_t>timeline.max_len
    if float_scores:
        floats = scores
    else:
        ints = scores
    if id_index_init(&seen, n) < 0 or tl_reserve(&timeline.data, keep, keep) < 0:
        id_index_free(&seen)
        raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="reading a timeline"))
    try:
        for j in range(n):
            if float_scores:
                if floats[j] != floats[j]:
                    raise ValueError(_messages.NOT_A_TIMELINE_NAN.format(entry=j))
                entry.key = float_key(floats[j])
            else:
                entry.key = ints[j]
            entry.post_id = posts[j]
            entry.author_id = authors[j]
            if j > 0 and not ranks_above(previous_key, previous_post, entry.key, entry.post_id):
                raise ValueError(_messages.NOT_A_TIMELINE_ORDER.format(entry=j, previous=j - 1))
            if id_index_insert(&seen, entry.post_id, &inserted) < 0:
                raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="reading a timeline"))
            if not inserted:
                raise ValueError(_messages.DUPLICATE_POST.format(post_id=entry.post_id))
            previous_key = entry.key
            previous_post = entry.post_id
            if <size_t>j < keep:
                timeline.data.entries[j] = entry
                timeline.data.length = j + 1
                if entry.post_id > timeline.data.post_id_bound:
                    timeline.data.post_id_bound = entry.post_id
    finally:
        id_index_free(&seen)
    return timeline
