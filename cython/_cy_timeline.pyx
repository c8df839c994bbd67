# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Timeline kernels in Cython. The contract is in igcore/_reference/timeline.py; the design is the one
of rust/igcore-core/src/timeline/ (a k-way merge over a binary heap of run heads, timelines as arrays
of entries in feed order, a store of timelines by user id).

Locking: a Timeline is only touched with the GIL held. A TimelineStore also has a lock, because a
long fan-out runs without the GIL: every store method takes the lock (without the GIL when it has
to wait for it), and no thread waits for the lock while holding the GIL, so the two cannot deadlock.
"""

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
from _cy_numbers cimport float_bits_key, floor_div, key_float_bits

import numpy as np

from igcore import _cy_codec

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


# -- timelines in C ----------------------------------------------------------------------------------

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


# -- runs: the sources of a merge ------------------------------------------------------------------------

cdef enum RunKind:
    RUN_INTS
    RUN_FLOATS
    RUN_ENTRIES


cdef struct Run:
    RunKind kind
    const int64_t* ints
    const double* floats
    const int64_t* post_ids
    const int64_t* author_ids
    const Entry* entries
    size_t length


cdef inline int64_t float_key(double score) noexcept nogil:
    """The feed key of a float64 score: -0.0 counts as 0.0, then the order-preserving bits key."""
    return float_bits_key(score + 0.0)


cdef inline int64_t run_key(const Run* run, size_t i) noexcept nogil:
    if run.kind == RUN_ENTRIES:
        return run.entries[i].key
    if run.kind == RUN_INTS:
        return run.ints[i]
    return float_key(run.floats[i])


cdef inline int64_t run_post(const Run* run, size_t i) noexcept nogil:
    if run.kind == RUN_ENTRIES:
        return run.entries[i].post_id
    return run.post_ids[i]


cdef inline Entry run_get(const Run* run, size_t i) noexcept nogil:
    cdef Entry entry
    if run.kind == RUN_ENTRIES:
        return run.entries[i]
    entry.key = run_key(run, i)
    entry.post_id = run.post_ids[i]
    entry.author_id = run.author_ids[i]
    return entry


cdef inline void run_prefetch(const Run* run, size_t i) noexcept nogil:
    if run.kind == RUN_ENTRIES:
        prefetch(run.entries + i)
    else:
        prefetch(run.post_ids + i)


cdef size_t run_count_at_or_above(const Run* run, int64_t key, int64_t post_id) noexcept nogil:
    cdef size_t low = 0, high = run.length, mid
    cdef int64_t k
    while low < high:
        mid = low + (high - low) // 2
        k = run_key(run, mid)
        if k > key or (k == key and run_post(run, mid) >= post_id):
            low = mid + 1
        else:
            high = mid
    return low


cdef Run timeline_run(const TimelineData* t) noexcept nogil:
    cdef Run run
    run.kind = RUN_ENTRIES
    run.entries = t.entries
    run.length = t.length
    run.ints = NULL
    run.floats = NULL
    run.post_ids = NULL
    run.author_ids = NULL
    return run


cdef Py_ssize_t check_order(const Run* run, bint* nan) noexcept nogil:
    """The index of the first entry out of feed order (or, with *nan set, of the first NaN score); -1
    when the run is in order. Equal ranks are in order."""
    cdef size_t j
    cdef int64_t key, previous_key = 0, post_id, previous_post = 0
    nan[0] = False
    for j in range(run.length):
        if run.kind == RUN_FLOATS and run.floats[j] != run.floats[j]:
            nan[0] = True
            return <Py_ssize_t>j
        key = run_key(run, j)
        post_id = run.post_ids[j]
        if j > 0 and ranks_above(key, post_id, previous_key, previous_post):
            return <Py_ssize_t>j
        previous_key = key
        previous_post = post_id
    return -1


# -- the merge -------------------------------------------------------------------------------------------

cdef struct Head:
    int64_t key
    int64_t post_id
    size_t run
    size_t pos


cdef inline bint pops_before(const Head* a, const Head* b) noexcept nogil:
    """Greatest rank first; on equal ranks the earlier run, whose entry stands."""
    if a.key != b.key:
        return a.key > b.key
    if a.post_id != b.post_id:
        return a.post_id > b.post_id
    return a.run < b.run


cdef void sift_down(Head* heap, size_t n, size_t i) noexcept nogil:
    cdef Head item = heap[i]
    cdef size_t child
    while True:
        child = 2 * i + 1
        if child >= n:
            break
        if child + 1 < n and pops_before(&heap[child + 1], &heap[child]):
            child += 1
        if not pops_before(&heap[child], &item):
            break
        heap[i] = heap[child]
        i = child
    heap[i] = item


cdef struct Request:
    size_t limit
    bint has_after
    int64_t after_key
    int64_t after_post
    const int64_t* exclude_authors
    size_t exclude_count
    bint has_cap
    size_t cap


cdef struct PageData:
    int64_t* keys
    int64_t* post_ids
    int64_t* author_ids
    size_t length
    size_t capacity
    bint has_more
    int64_t lookahead_post


cdef int page_push(PageData* page, Entry entry) noexcept nogil:
    cdef size_t capacity
    cdef int64_t* grown
    if page.length == page.capacity:
        capacity = page.capacity * 2 if page.capacity else 64
        grown = <int64_t*>realloc(page.keys, capacity * sizeof(int64_t))
        if grown == NULL:
            return -1
        page.keys = grown
        grown = <int64_t*>realloc(page.post_ids, capacity * sizeof(int64_t))
        if grown == NULL:
            return -1
        page.post_ids = grown
        grown = <int64_t*>realloc(page.author_ids, capacity * sizeof(int64_t))
        if grown == NULL:
            return -1
        page.author_ids = grown
        page.capacity = capacity
    page.keys[page.length] = entry.key
    page.post_ids[page.length] = entry.post_id
    page.author_ids[page.length] = entry.author_id
    page.length += 1
    return 0


cdef void page_free(PageData* page) noexcept nogil:
    free(page.keys)
    free(page.post_ids)
    free(page.author_ids)
    page.keys = NULL
    page.post_ids = NULL
    page.author_ids = NULL
    page.length = 0
    page.capacity = 0


cdef inline bint id_set_contains(const IdIndex* ids, int64_t id) noexcept nogil:
    return ids.length > 0 and id_index_get(ids, id) >= 0


cdef int merge_below(const Run* runs, size_t k, const size_t* starts, const Request* request,
                     const IdIndex* excluded, const IdIndex* placed_above, PageData* page) noexcept nogil:
    """The page that starts at `starts` in each run, leaving out excluded authors and the posts in
    `placed_above`; page.has_more and page.lookahead_post tell about the entry after it. -1 when memory
    runs out."""
    cdef Head* heap = <Head*>malloc((k if k else 1) * sizeof(Head))
    cdef IdIndex seen, authors
    cdef size_t* counts = NULL
    cdef size_t n = 0, r, counts_capacity = 0, limit_hint
    cdef size_t* grown
    cdef Entry entry
    cdef const Run* run
    cdef Py_ssize_t index
    cdef bint inserted
    cdef int status = 0
    page_free(page)
    page.has_more = False
    seen.slots = NULL
    seen.ids = NULL
    authors.slots = NULL
    authors.ids = NULL
    limit_hint = request.limit + 1 if request.limit < 1024 else 1024
    if heap == NULL or id_index_init(&seen, limit_hint) < 0 or id_index_init(&authors, 16) < 0:
        status = -1
    else:
        for r in range(k):
            if r + PREFETCH_AHEAD < k:
                run_prefetch(&runs[r + PREFETCH_AHEAD], starts[r + PREFETCH_AHEAD])
            if starts[r] < runs[r].length:
                heap[n].key = run_key(&runs[r], starts[r])
                heap[n].post_id = run_post(&runs[r], starts[r])
                heap[n].run = r
                heap[n].pos = starts[r]
                n += 1
        r = n // 2
        while r > 0:
            r -= 1
            sift_down(heap, n, r)
        while n > 0:
            run = &runs[heap[0].run]
            entry = run_get(run, heap[0].pos)
            if heap[0].pos + 1 < run.length:
                heap[0].pos += 1
                heap[0].key = run_key(run, heap[0].pos)
                heap[0].post_id = run_post(run, heap[0].pos)
            else:
                n -= 1
                heap[0] = heap[n]
            if n > 0:
                sift_down(heap, n, 0)
            if id_set_contains(excluded, entry.author_id) or id_set_contains(placed_above, entry.post_id):
                continue
            index = id_index_insert(&seen, entry.post_id, &inserted)
            if index < 0:
                status = -1
                break
            if not inserted:
                continue
            if page.length == request.limit:
                page.has_more = True
                page.lookahead_post = entry.post_id
                break
            if request.has_cap:
                index = id_index_insert(&authors, entry.author_id, &inserted)
                if index < 0:
                    status = -1
                    break
                if inserted:
                    if <size_t>index >= counts_capacity:
                        counts_capacity = counts_capacity * 2 if counts_capacity else 16
                        grown = <size_t*>realloc(counts, counts_capacity * sizeof(size_t))
                        if grown == NULL:
                            status = -1
                            break
                        counts = grown
                    counts[index] = 0
                if counts[index] >= request.cap:
                    continue
                counts[index] += 1
            if page_push(page, entry) < 0:
                status = -1
                break
    free(heap)
    free(counts)
    id_index_free(&seen)
    id_index_free(&authors)
    return status


cdef int merge_runs(const Run* runs, size_t k, const Request* request, PageData* page) noexcept nogil:
    """One page of the feed that merges `runs`: see merge in rust/igcore-core/src/timeline/merge.rs
    (below a cursor, the page is merged, then its own posts looked for above the cursor). -1 when memory
    runs out."""
    cdef size_t* starts = <size_t*>malloc((k if k else 1) * sizeof(size_t))
    cdef IdIndex excluded, placed_above, mine
    cdef size_t r, j, i
    cdef bint found, inserted
    cdef int status = 0
    cdef Entry entry
    excluded.slots = NULL
    excluded.ids = NULL
    placed_above.slots = NULL
    placed_above.ids = NULL
    mine.slots = NULL
    mine.ids = NULL
    if starts == NULL or id_index_init(&excluded, request.exclude_count) < 0 or id_index_init(&placed_above, 0) < 0:
        status = -1
    else:
        for j in range(request.exclude_count):
            if id_index_insert(&excluded, request.exclude_authors[j], &inserted) < 0:
                status = -1
                break
        for r in range(k):
            starts[r] = 0
            if request.has_after:
                starts[r] = run_count_at_or_above(&runs[r], request.after_key, request.after_post)
        while status == 0:
            if merge_below(runs, k, starts, request, &excluded, &placed_above, page) < 0:
                status = -1
                break
            if not request.has_after:
                break
            id_index_free(&mine)
            if id_index_init(&mine, page.length + 1) < 0:
                status = -1
                break
            for i in range(page.length):
                if id_index_insert(&mine, page.post_ids[i], &inserted) < 0:
                    status = -1
            if page.has_more and id_index_insert(&mine, page.lookahead_post, &inserted) < 0:
                status = -1
            found = False
            for r in range(k):
                for j in range(starts[r]):
                    entry = run_get(&runs[r], j)
                    if id_index_get(&mine, entry.post_id) >= 0 and not id_set_contains(&excluded, entry.author_id):
                        if id_index_insert(&placed_above, entry.post_id, &inserted) < 0:
                            status = -1
                        elif inserted:
                            found = True
            if not found:
                break
    free(starts)
    id_index_free(&excluded)
    id_index_free(&placed_above)
    id_index_free(&mine)
    return status


cdef class _Columns:
    """Three arrays given as a merge source, held while the merge reads them."""

    cdef const int64_t[::1] ints
    cdef const double[::1] floats
    cdef const int64_t[::1] post_ids
    cdef const int64_t[::1] author_ids
    cdef bint float_scores
    cdef size_t length

    cdef Run run(self):
        cdef Run run
        run.kind = RUN_FLOATS if self.float_scores else RUN_INTS
        run.length = self.length
        run.entries = NULL
        run.ints = NULL
        run.floats = NULL
        run.post_ids = NULL
        run.author_ids = NULL
        if self.length:
            if self.float_scores:
                run.floats = &self.floats[0]
            else:
                run.ints = &self.ints[0]
            run.post_ids = &self.post_ids[0]
            run.author_ids = &self.author_ids[0]
        return run


cdef _Columns accept_columns(source):
    """Three 1-D C-contiguous native ndarrays of one length (int64 or float64 scores, int64 ids), or
    None when `source` is not that (the canonical form the public layer hands a kernel)."""
    cdef _Columns columns
    if not isinstance(source, tuple) or len(source) != 3:
        return None
    scores, post_ids, author_ids = source
    if not (type(scores) is np.ndarray and type(post_ids) is np.ndarray and type(author_ids) is np.ndarray):
        return None
    columns = _Columns.__new__(_Columns)
    try:
        columns.post_ids = post_ids
        columns.author_ids = author_ids
        if scores.dtype == np.float64:
            columns.floats = scores
            columns.float_scores = True
            columns.length = columns.floats.shape[0]
        else:
            columns.ints = scores
            columns.length = columns.ints.shape[0]
    except (ValueError, TypeError, BufferError):
        return None
    if <size_t>columns.post_ids.shape[0] != columns.length or <size_t>columns.author_ids.shape[0] != columns.length:
        return None
    return columns


cdef object page_arrays(PageData* page, bint float_scores):
    cdef size_t i, n = page.length
    post_ids = np.empty(n, dtype=np.int64)
    author_ids = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] posts_view = post_ids
    cdef int64_t[::1] authors_view = author_ids
    cdef double[::1] floats_view
    cdef int64_t[::1] ints_view
    if n:
        memcpy(&posts_view[0], page.post_ids, n * sizeof(int64_t))
        memcpy(&authors_view[0], page.author_ids, n * sizeof(int64_t))
    if float_scores:
        scores = np.empty(n, dtype=np.float64)
        floats_view = scores
        for i in range(n):
            floats_view[i] = key_float_bits(page.keys[i])
    else:
        scores = np.empty(n, dtype=np.int64)
        ints_view = scores
        if n:
            memcpy(&ints_view[0], page.keys, n * sizeof(int64_t))
    return scores, post_ids, author_ids, bool(page.has_more)


cdef int fill_request(Request* request, limit, after, bint float_scores, exclude_authors, per_author_cap) except -1:
    cdef const int64_t[::1] excluded
    request.limit = <size_t>min(limit, <object>INT64_MAX)
    request.has_after = after is not None
    if after is not None:
        request.after_key = float_key(after[1]) if float_scores else <int64_t>after[1]
        request.after_post = after[2]
    request.exclude_authors = NULL
    request.exclude_count = 0
    if exclude_authors is not None and len(exclude_authors):
        excluded = exclude_authors
        request.exclude_authors = &excluded[0]
        request.exclude_count = excluded.shape[0]
    request.has_cap = per_author_cap is not None
    request.cap = per_author_cap if per_author_cap is not None else 0
    return 0


# -- Timeline ----------------------------------------------------------------------------------------

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
            raise MemoryError("out of memory while inserting")
        return stood == 1

    def insert_many(self, scores, post_ids, author_ids):
        cdef _Columns columns = accept_columns((scores, post_ids, author_ids))
        if columns is None or columns.float_scores != self.float_scores:
            raise TypeError("insert_many takes three 1-D contiguous arrays of one length")
        cdef Run run = columns.run()
        cdef size_t i
        for i in range(run.length):
            if tl_insert(&self.data, <size_t>self.max_len, run_get(&run, i)) < 0:
                raise MemoryError("out of memory while inserting")

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
            raise MemoryError("out of memory while copying a timeline")
        return twin

    def to_bytes(self):
        return _cy_codec.encode_entries(*self.entries())


cdef object entries_arrays(const TimelineData* data, bint float_scores):
    cdef size_t i, n = data.length
    post_ids = np.empty(n, dtype=np.int64)
    author_ids = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] posts_view = post_ids
    cdef int64_t[::1] authors_view = author_ids
    cdef int64_t[::1] ints_view
    cdef double[::1] floats_view
    if float_scores:
        scores = np.empty(n, dtype=np.float64)
        floats_view = scores
        for i in range(n):
            floats_view[i] = key_float_bits(data.entries[i].key)
    else:
        scores = np.empty(n, dtype=np.int64)
        ints_view = scores
        for i in range(n):
            ints_view[i] = data.entries[i].key
    for i in range(n):
        posts_view[i] = data.entries[i].post_id
        authors_view[i] = data.entries[i].author_id
    return scores, post_ids, author_ids


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
        raise MemoryError("out of memory while reading a timeline")
    try:
        for j in range(n):
            if float_scores:
                if floats[j] != floats[j]:
                    raise ValueError(f"not a timeline: a NaN score at entry {j}")
                entry.key = float_key(floats[j])
            else:
                entry.key = ints[j]
            entry.post_id = posts[j]
            entry.author_id = authors[j]
            if j > 0 and not ranks_above(previous_key, previous_post, entry.key, entry.post_id):
                raise ValueError(f"not a timeline: entry {j} does not rank below entry {j - 1}")
            if id_index_insert(&seen, entry.post_id, &inserted) < 0:
                raise MemoryError("out of memory while reading a timeline")
            if not inserted:
                raise ValueError(f"not a timeline: post {entry.post_id} appears twice")
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


cdef str score_kind(bint float_scores):
    return "float64" if float_scores else "int64"


def merge_page(list sources, limit, after, exclude_authors, per_author_cap):
    """See igcore._reference.timeline.merge_page. The public layer hands it canonical sources; one that
    is not, sources of mixed score kinds and a cursor of the other kind raise (as the reference does)."""
    cdef Py_ssize_t k = len(sources), i
    cdef list held = []  # the Timelines and _Columns read by the merge, kept alive meanwhile
    cdef Timeline timeline
    cdef _Columns columns
    cdef int kind
    cdef Py_ssize_t first_of_kind[2]  # the index of the first source of each score kind, or -1
    cdef bint touches_timelines = False, nan, failed
    cdef size_t array_entries = 0
    cdef Py_ssize_t bad
    cdef Run* runs
    cdef Request request
    cdef PageData page
    first_of_kind[0] = first_of_kind[1] = -1
    for i in range(k):
        source = sources[i]
        if type(source) is Timeline:
            timeline = <Timeline>source
            kind = timeline.float_scores
            touches_timelines = True
            held.append(timeline)
        else:
            columns = accept_columns(source)
            if columns is None:
                raise TypeError(
                    f"sources[{i}] is not in canonical form: a Timeline of this backend, or three "
                    "C-contiguous arrays of one length (int64 or float64 scores, int64 post and author ids)"
                )
            kind = columns.float_scores
            array_entries += columns.length
            held.append(columns)
        if first_of_kind[kind] < 0:
            first_of_kind[kind] = i
    if first_of_kind[0] >= 0 and first_of_kind[1] >= 0:
        raise TypeError(
            f"sources mix int64 and float64 scores (sources[{first_of_kind[0]}] has int64, "
            f"sources[{first_of_kind[1]}] has float64); one feed has one score kind: convert explicitly, "
            "e.g. with scores.astype(np.float64)"
        )
    if k == 0:
        kind = after[0] if after is not None else False
    else:
        kind = first_of_kind[1] >= 0
    if after is not None and after[0] != kind:
        raise ValueError(
            f"the cursor belongs to a feed with {score_kind(after[0])} scores; "
            f"these sources have {score_kind(kind)} scores"
        )
    # Exclusions are kept alive by the caller, who holds `exclude_authors`.
    fill_request(&request, limit, after, kind, exclude_authors, per_author_cap)
    runs = <Run*>malloc((k if k else 1) * sizeof(Run))
    if runs == NULL:
        raise MemoryError("out of memory while merging")
    page.keys = NULL
    page.post_ids = NULL
    page.author_ids = NULL
    page.length = 0
    page.capacity = 0
    try:
        for i in range(k):
            item = held[i]
            if type(item) is Timeline:
                runs[i] = timeline_run(&(<Timeline>item).data)
            else:
                runs[i] = (<_Columns>item).run()
        for i in range(k):
            if runs[i].kind == RUN_ENTRIES:
                continue
            # Caller arrays are read without the GIL for a long check, as the Rust kernel does.
            if runs[i].length >= NOGIL_TIMELINE_ENTRIES:
                with nogil:
                    bad = check_order(&runs[i], &nan)
            else:
                bad = check_order(&runs[i], &nan)
            if bad >= 0:
                if nan:
                    raise ValueError(f"sources[{i}] has a NaN score at index {bad}")
                raise ValueError(
                    f"sources[{i}] is not in feed order: entry {bad} ranks above entry {bad - 1} "
                    "(feed order is descending by (score, post_id))"
                )
        # Timelines change only with the GIL held, so a merge that reads one keeps it.
        if array_entries >= NOGIL_TIMELINE_ENTRIES and not touches_timelines:
            with nogil:
                failed = merge_runs(runs, <size_t>k, &request, &page) < 0
        else:
            failed = merge_runs(runs, <size_t>k, &request, &page) < 0
        if failed:
            raise MemoryError("out of memory while merging")
        return page_arrays(&page, kind)
    finally:
        free(runs)
        page_free(&page)


# -- TimelineStore -------------------------------------------------------------------------------------

cdef class TimelineStore:
    """Timelines by user id in C memory; see igcore._reference.timeline.TimelineStore."""

    cdef IdIndex user_slots       # user id -> slot
    cdef TimelineData* timelines  # by slot
    cdef char* present            # by slot: whether the user has a timeline
    cdef size_t slots_capacity
    cdef size_t live
    cdef PyThread_type_lock lock
    cdef readonly Py_ssize_t max_len
    cdef readonly bint float_scores

    def __cinit__(self, Py_ssize_t max_len, bint float_scores):
        self.user_slots.slots = NULL
        self.user_slots.ids = NULL
        self.timelines = NULL
        self.present = NULL
        self.slots_capacity = 0
        self.live = 0
        self.max_len = max_len if max_len > 0 else 1
        self.float_scores = float_scores
        self.lock = lock_new()
        if id_index_init(&self.user_slots, 0) < 0:
            raise MemoryError("out of memory while making a store")

    def __dealloc__(self):
        cdef size_t i
        if self.timelines != NULL:
            for i in range(self.user_slots.length):
                tl_free(&self.timelines[i])
        free(self.timelines)
        free(self.present)
        id_index_free(&self.user_slots)
        lock_free(self.lock)

    cdef Py_ssize_t slot_of(self, int64_t user_id) noexcept nogil:
        """The slot of the user's timeline, or -1 when the user has none."""
        cdef Py_ssize_t slot = id_index_get(&self.user_slots, user_id)
        if slot < 0 or not self.present[slot]:
            return -1
        return slot

    cdef Py_ssize_t timeline_of(self, int64_t user_id) noexcept nogil:
        """The slot of the user's timeline, created empty when missing; -1 when memory runs out."""
        cdef bint inserted
        cdef size_t capacity
        cdef TimelineData* grown_timelines
        cdef char* grown_present
        cdef Py_ssize_t slot = id_index_insert(&self.user_slots, user_id, &inserted)
        if slot < 0:
            return -1
        if inserted and <size_t>slot >= self.slots_capacity:
            capacity = self.slots_capacity * 2 if self.slots_capacity else 16
            grown_timelines = <TimelineData*>realloc(self.timelines, capacity * sizeof(TimelineData))
            if grown_timelines == NULL:
                return -1
            self.timelines = grown_timelines
            grown_present = <char*>realloc(self.present, capacity)
            if grown_present == NULL:
                return -1
            self.present = grown_present
            self.slots_capacity = capacity
        if inserted:
            self.present[slot] = False
            tl_init(&self.timelines[slot])
        if not self.present[slot]:
            self.present[slot] = True
            self.live += 1
        return slot

    def __len__(self):
        return self.live

    def contains(self, int64_t user_id):
        lock_acquire(self.lock)
        try:
            return self.slot_of(user_id) >= 0
        finally:
            lock_release(self.lock)

    def users(self):
        cdef size_t i
        cdef list found = []
        lock_acquire(self.lock)
        try:
            for i in range(self.user_slots.length):
                if self.present[i]:
                    found.append(self.user_slots.ids[i])
        finally:
            lock_release(self.lock)
        return np.sort(np.array(found, dtype=np.int64))

    def get(self, int64_t user_id):
        cdef Timeline copy = Timeline(self.max_len, self.float_scores)
        cdef Py_ssize_t slot
        lock_acquire(self.lock)
        try:
            slot = self.slot_of(user_id)
            if slot < 0:
                return None
            if tl_copy(&copy.data, &self.timelines[slot]) < 0:
                raise MemoryError("out of memory while copying a timeline")
            return copy
        finally:
            lock_release(self.lock)

    def put(self, int64_t user_id, Timeline timeline):
        cdef TimelineData copy
        cdef Py_ssize_t slot
        if tl_copy(&copy, &timeline.data) < 0:
            raise MemoryError("out of memory while storing a timeline")
        lock_acquire(self.lock)
        try:
            slot = self.timeline_of(user_id)
            if slot < 0:
                tl_free(&copy)
                raise MemoryError("out of memory while storing a timeline")
            tl_free(&self.timelines[slot])
            self.timelines[slot] = copy
        finally:
            lock_release(self.lock)

    def discard(self, int64_t user_id):
        cdef Py_ssize_t slot
        lock_acquire(self.lock)
        try:
            slot = self.slot_of(user_id)
            if slot < 0:
                return False
            tl_free(&self.timelines[slot])
            self.present[slot] = False
            self.live -= 1
            return True
        finally:
            lock_release(self.lock)

    def merge_page(self, const int64_t[::1] user_ids, limit, after, exclude_authors, per_author_cap):
        cdef Py_ssize_t n = user_ids.shape[0], i, slot
        cdef size_t k = 0
        cdef Run* runs = <Run*>malloc((n if n else 1) * sizeof(Run))
        cdef Request request
        cdef PageData page
        cdef bint failed = False
        if runs == NULL:
            raise MemoryError("out of memory while merging")
        page.keys = NULL
        page.post_ids = NULL
        page.author_ids = NULL
        page.length = 0
        page.capacity = 0
        fill_request(&request, limit, after, self.float_scores, exclude_authors, per_author_cap)
        lock_acquire(self.lock)
        try:
            for i in range(n):
                if <size_t>i + PREFETCH_AHEAD < <size_t>n:
                    prefetch_user(&self.user_slots, user_ids[i + PREFETCH_AHEAD])
                slot = self.slot_of(user_ids[i])
                if slot >= 0:
                    runs[k] = timeline_run(&self.timelines[slot])
                    k += 1
            if <size_t>n >= NOGIL_TIMELINE_USERS:
                with nogil:
                    failed = merge_runs(runs, k, &request, &page) < 0
            else:
                failed = merge_runs(runs, k, &request, &page) < 0
        finally:
            lock_release(self.lock)
            free(runs)
        try:
            if failed:
                raise MemoryError("out of memory while merging")
            return page_arrays(&page, self.float_scores)
        finally:
            page_free(&page)

    def fanout(self, score, int64_t post_id, int64_t author_id, const int64_t[::1] follower_ids, bint create_missing):
        cdef Entry entry
        cdef size_t stood = 0
        cdef int status = 0
        entry.key = float_key(score) if self.float_scores else <int64_t>score
        entry.post_id = post_id
        entry.author_id = author_id
        if <size_t>follower_ids.shape[0] >= NOGIL_TIMELINE_FOLLOWERS:
            with nogil:
                lock_acquire_nogil(self.lock)
                status = self.fanout_locked(entry, follower_ids, create_missing, &stood)
                lock_release(self.lock)
        else:
            lock_acquire(self.lock)
            status = self.fanout_locked(entry, follower_ids, create_missing, &stood)
            lock_release(self.lock)
        if status < 0:
            raise MemoryError("out of memory during fan-out")
        return stood

    cdef int fanout_locked(self, Entry entry, const int64_t[::1] follower_ids, bint create_missing,
                           size_t* stood) noexcept nogil:
        cdef size_t i, n = follower_ids.shape[0]
        cdef Py_ssize_t slot
        cdef int status
        if create_missing:
            for i in range(n):
                if self.timeline_of(follower_ids[i]) < 0:
                    return -1
        for i in range(n):
            if i + 2 * PREFETCH_AHEAD < n:
                prefetch_user(&self.user_slots, follower_ids[i + 2 * PREFETCH_AHEAD])
            slot = self.slot_of(follower_ids[i])
            if slot >= 0:
                status = tl_insert(&self.timelines[slot], <size_t>self.max_len, entry)
                if status < 0:
                    return -1
                stood[0] += <size_t>status
        return 0

    def backfill(self, int64_t user_id, source):
        cdef _Columns columns
        cdef Run run
        cdef TimelineData copy
        cdef Py_ssize_t slot
        cdef size_t i
        cdef int status = 0
        tl_init(&copy)
        if type(source) is Timeline:
            if tl_copy(&copy, &(<Timeline>source).data) < 0:
                raise MemoryError("out of memory while merging a timeline")
            run = timeline_run(&copy)
        else:
            columns = accept_columns(source)
            if columns is None or columns.float_scores != self.float_scores:
                raise TypeError("backfill takes a Timeline or three canonical arrays")
            run = columns.run()
        lock_acquire(self.lock)
        try:
            slot = self.timeline_of(user_id)
            if slot < 0:
                status = -1
            else:
                for i in range(run.length):
                    if tl_insert(&self.timelines[slot], <size_t>self.max_len, run_get(&run, i)) < 0:
                        status = -1
                        break
        finally:
            lock_release(self.lock)
            tl_free(&copy)
        if status < 0:
            raise MemoryError("out of memory while merging a timeline")

    def remove_author(self, int64_t user_id, int64_t author_id):
        cdef Py_ssize_t slot
        lock_acquire(self.lock)
        try:
            slot = self.slot_of(user_id)
            return 0 if slot < 0 else tl_remove_author(&self.timelines[slot], author_id)
        finally:
            lock_release(self.lock)


cdef inline void prefetch_user(const IdIndex* users, int64_t user_id) noexcept nogil:
    """Asks for the index slot where a lookup of `user_id` starts, ahead of the lookup."""
    prefetch(&users.slots[<size_t>(id_hash(user_id) >> users.shift)])


# -- aggregated activity ---------------------------------------------------------------------------------

cdef struct Event:
    int64_t verb
    int64_t target
    int64_t window
    int64_t actor
    int64_t newest  # ~timestamp: ascending order puts an actor's latest event first


cdef struct Group:
    int64_t latest
    int64_t verb
    int64_t target
    int64_t window
    size_t events
    size_t first_actor  # index into the (time, actor) pairs of all groups
    size_t actors


cdef struct TimedActor:
    int64_t time
    int64_t actor


cdef inline int compare(int64_t a, int64_t b) noexcept nogil:
    return (a > b) - (a < b)


cdef int compare_events(const void* a, const void* b) noexcept nogil:
    cdef const Event* x = <const Event*>a
    cdef const Event* y = <const Event*>b
    cdef int c = compare(x.verb, y.verb)
    if c == 0:
        c = compare(x.target, y.target)
    if c == 0:
        c = compare(x.window, y.window)
    if c == 0:
        c = compare(x.actor, y.actor)
    if c == 0:
        c = compare(x.newest, y.newest)
    return c


cdef int compare_groups(const void* a, const void* b) noexcept nogil:
    """Newest group first; then verb, then target, ascending."""
    cdef const Group* x = <const Group*>a
    cdef const Group* y = <const Group*>b
    cdef int c = compare(y.latest, x.latest)
    if c == 0:
        c = compare(x.verb, y.verb)
    if c == 0:
        c = compare(x.target, y.target)
    return c


cdef int compare_recent(const void* a, const void* b) noexcept nogil:
    """Most recent first; on equal times the larger actor id."""
    cdef const TimedActor* x = <const TimedActor*>a
    cdef const TimedActor* y = <const TimedActor*>b
    cdef int c = compare(y.time, x.time)
    if c == 0:
        c = compare(y.actor, x.actor)
    return c


def aggregate_activity(const int64_t[::1] actor_ids, const int64_t[::1] verbs, const int64_t[::1] target_ids,
                       const int64_t[::1] timestamps, int64_t window_seconds, Py_ssize_t max_actors):
    cdef size_t n = actor_ids.shape[0], i, g = 0, pairs = 0, shown, total_shown = 0
    cdef Event* events = <Event*>malloc((n if n else 1) * sizeof(Event))
    cdef Group* groups = <Group*>malloc((n if n else 1) * sizeof(Group))
    cdef TimedActor* actors = <TimedActor*>malloc((n if n else 1) * sizeof(TimedActor))
    cdef Event e
    cdef int64_t latest
    if events == NULL or groups == NULL or actors == NULL:
        free(events)
        free(groups)
        free(actors)
        raise MemoryError("out of memory while grouping activity")
    try:
        with nogil:
            for i in range(n):
                events[i].verb = verbs[i]
                events[i].target = target_ids[i]
                events[i].window = floor_div(timestamps[i], window_seconds)
                events[i].actor = actor_ids[i]
                events[i].newest = ~timestamps[i]
            qsort(events, n, sizeof(Event), compare_events)
            i = 0
            while i < n:
                e = events[i]
                groups[g].verb = e.verb
                groups[g].target = e.target
                groups[g].window = e.window
                groups[g].latest = ~e.newest
                groups[g].events = 0
                groups[g].first_actor = pairs
                groups[g].actors = 0
                while i < n and events[i].verb == e.verb and events[i].target == e.target and events[i].window == e.window:
                    latest = ~events[i].newest
                    # Sorted by actor, then newest first: an actor's first event is its latest.
                    if groups[g].actors == 0 or actors[pairs - 1].actor != events[i].actor:
                        actors[pairs].time = latest
                        actors[pairs].actor = events[i].actor
                        pairs += 1
                        groups[g].actors += 1
                    if latest > groups[g].latest:
                        groups[g].latest = latest
                    groups[g].events += 1
                    i += 1
                shown = groups[g].actors if groups[g].actors < <size_t>max_actors else <size_t>max_actors
                if shown:
                    qsort(&actors[groups[g].first_actor], groups[g].actors, sizeof(TimedActor), compare_recent)
                total_shown += shown
                g += 1
            qsort(groups, g, sizeof(Group), compare_groups)
        columns = [np.empty(g, dtype=np.int64) for _ in range(6)]
        recent = np.empty(total_shown, dtype=np.int64)
        offsets = np.empty(g + 1, dtype=np.int64)
        fill_activity(groups, g, actors, <size_t>max_actors, columns, recent, offsets)
        return (*columns, recent, offsets)
    finally:
        free(events)
        free(groups)
        free(actors)


cdef void fill_activity(const Group* groups, size_t g, const TimedActor* actors, size_t max_actors,
                        list columns, int64_t[::1] recent, int64_t[::1] offsets):
    cdef int64_t[::1] verbs = columns[0]
    cdef int64_t[::1] targets = columns[1]
    cdef int64_t[::1] windows = columns[2]
    cdef int64_t[::1] latest = columns[3]
    cdef int64_t[::1] events = columns[4]
    cdef int64_t[::1] actor_counts = columns[5]
    cdef size_t i, j, shown, at = 0
    offsets[0] = 0
    for i in range(g):
        verbs[i] = groups[i].verb
        targets[i] = groups[i].target
        windows[i] = groups[i].window
        latest[i] = groups[i].latest
        events[i] = <int64_t>groups[i].events
        actor_counts[i] = <int64_t>groups[i].actors
        shown = groups[i].actors if groups[i].actors < max_actors else max_actors
        for j in range(shown):
            recent[at] = actors[groups[i].first_actor + j].actor
            at += 1
        offsets[i + 1] = <int64_t>at
