# Fan-out on read: one page of the feed that merges many runs, as a k-way merge over a binary heap
# of run heads (rust/igcore-core/src/timeline/merge.rs). Included by _cy_timeline.pyx.

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


cdef void page_init(PageData* page) noexcept nogil:
    page.keys = NULL
    page.post_ids = NULL
    page.author_ids = NULL
    page.length = 0
    page.capacity = 0


cdef void page_free(PageData* page) noexcept nogil:
    free(page.keys)
    free(page.post_ids)
    free(page.author_ids)
    page_init(page)


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


@cython.no_gc  # a merge makes thousands; it is never handed out, so nothing it holds can lead back to it
cdef class _Columns:
    """Three arrays given as a merge source, held while the merge reads them in place."""

    cdef object arrays  # the (scores, post_ids, author_ids) tuple: it keeps the arrays alive
    cdef const void* scores
    cdef const int64_t* post_ids
    cdef const int64_t* author_ids
    cdef bint float_scores
    cdef size_t length

    cdef Run run(self):
        cdef Run run
        run.kind = RUN_FLOATS if self.float_scores else RUN_INTS
        run.length = self.length
        run.entries = NULL
        run.ints = NULL if self.float_scores else <const int64_t*>self.scores
        run.floats = <const double*>self.scores if self.float_scores else NULL
        run.post_ids = self.post_ids
        run.author_ids = self.author_ids
        return run


cdef type _NDARRAY = np.ndarray
cdef object _INT64 = np.dtype(np.int64)
cdef object _FLOAT64 = np.dtype(np.float64)


cdef _Columns accept_columns(source):
    """The source's arrays, read in place, when `source` is in canonical form (see canonical_kind); None
    when not. Reading the arrays' header fields, not requesting their buffers, keeps a merge of thousands
    of followees' arrays from spending more time on the arrays' borders than on the merge."""
    cdef int kind = canonical_kind(source)
    if kind < 0:
        return None
    cdef _Columns columns = _Columns.__new__(_Columns)
    scores, post_ids, author_ids = <tuple>source
    columns.arrays = source
    columns.float_scores = kind
    columns.length = column_length(post_ids)
    columns.scores = column_data(scores)
    columns.post_ids = <const int64_t*>column_data(post_ids)
    columns.author_ids = <const int64_t*>column_data(author_ids)
    return columns


cdef int merge_into_page(const Run* runs, size_t k, const Request* request, PageData* page,
                         bint without_gil) except -1:
    """merge_runs, without the GIL when `without_gil`; MemoryError when memory runs out."""
    cdef bint failed
    if without_gil:
        with nogil:
            failed = merge_runs(runs, k, request, page) < 0
    else:
        failed = merge_runs(runs, k, request, page) < 0
    if failed:
        raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="merging"))
    return 0


cdef object page_arrays(PageData* page, bint float_scores):
    cdef size_t n = page.length
    return (column(page.keys, 1, n, float_scores), column(page.post_ids, 1, n, False),
            column(page.author_ids, 1, n, False), bool(page.has_more))


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



cdef str score_kind(bint float_scores):
    return "float64" if float_scores else "int64"


cdef int accept_sources(list sources, after, list held, size_t* array_entries,
                        bint* touches_timelines) except -1:
    """The score kind of `sources` (and of the cursor), each source appended to `held` as the merge
    reads it: a Timeline, or its _Columns. A source that is not canonical, sources of mixed score kinds
    and a cursor of the other kind raise, as the reference does."""
    cdef Py_ssize_t k = len(sources), i
    cdef Timeline timeline
    cdef _Columns columns
    cdef int kind
    cdef Py_ssize_t first_of_kind[2]  # the index of the first source of each score kind, or -1
    first_of_kind[0] = first_of_kind[1] = -1
    for i in range(k):
        source = sources[i]
        if type(source) is Timeline:
            timeline = <Timeline>source
            kind = timeline.float_scores
            touches_timelines[0] = True
            held.append(timeline)
        else:
            columns = accept_columns(source)
            if columns is None:
                raise TypeError(_messages.SOURCE_NOT_CANONICAL.format(index=i))
            kind = columns.float_scores
            array_entries[0] += columns.length
            held.append(columns)
        if first_of_kind[kind] < 0:
            first_of_kind[kind] = i
    if first_of_kind[0] >= 0 and first_of_kind[1] >= 0:
        raise TypeError(
            _messages.SOURCES_MIX_SCORE_KINDS.format(int_index=first_of_kind[0], float_index=first_of_kind[1])
        )
    if k == 0:
        kind = after[0] if after is not None else False
    else:
        kind = first_of_kind[1] >= 0
    if after is not None and after[0] != kind:
        raise ValueError(
            _messages.CURSOR_SCORE_KIND.format(cursor_kind=score_kind(after[0]), sources_kind=score_kind(kind))
        )
    return kind


cdef int canonical_kind(source):
    """0 or 1 (int64 or float64 scores) when `source` is a tuple of three 1-D C-contiguous aligned native
    arrays of one length with int64 ids; -1 when not."""
    if type(source) is not tuple or len(<tuple>source) != 3:
        return -1
    scores, post_ids, author_ids = <tuple>source
    for array in (scores, post_ids, author_ids):
        if not is_column(array, _NDARRAY):
            return -1
    if not (is_of(post_ids, _INT64) and is_of(author_ids, _INT64)):
        return -1
    cdef int kind
    # Both score kinds by pointer first: only an unusual dtype object costs a comparison of dtypes.
    if is_exactly_of(scores, _INT64):
        kind = 0
    elif is_of(scores, _FLOAT64):
        kind = 1
    elif is_of(scores, _INT64):
        kind = 0
    else:
        return -1
    cdef Py_ssize_t n = column_length(post_ids)
    if column_length(author_ids) != n or column_length(scores) != n:
        return -1
    return kind


def accepts_sources(list sources, after):
    """See igcore._reference.timeline.accepts_sources."""
    cdef int kind = -1 if after is None else <bint>after[0]
    cdef int found
    for source in sources:
        found = (<Timeline>source).float_scores if type(source) is Timeline else canonical_kind(source)
        if found < 0 or (kind >= 0 and found != kind):
            return False
        kind = found
    return True


def merge_page(list sources, limit, after, exclude_authors, per_author_cap):
    """See igcore._reference.timeline.merge_page. The public layer hands it canonical sources; one that
    is not, sources of mixed score kinds and a cursor of the other kind raise (as the reference does)."""
    cdef Py_ssize_t k = len(sources), i
    cdef list held = []  # the Timelines and _Columns read by the merge, kept alive meanwhile
    cdef int kind
    cdef bint touches_timelines = False, nan
    cdef size_t array_entries = 0
    cdef Py_ssize_t bad
    cdef Run* runs
    cdef Request request
    cdef PageData page
    kind = accept_sources(sources, after, held, &array_entries, &touches_timelines)
    # Exclusions are kept alive by the caller, who holds `exclude_authors`.
    fill_request(&request, limit, after, kind, exclude_authors, per_author_cap)
    runs = <Run*>malloc((k if k else 1) * sizeof(Run))
    if runs == NULL:
        raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="merging"))
    page_init(&page)
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
                    raise ValueError(_messages.NAN_SCORE_IN_SOURCE.format(index=i, entry=bad))
                raise ValueError(_messages.NOT_FEED_ORDER.format(index=i, entry=bad, previous=bad - 1))
        # Timelines change only with the GIL held, so a merge that reads one keeps it.
        merge_into_page(runs, <size_t>k, &request, &page,
                        array_entries >= NOGIL_TIMELINE_ENTRIES and not touches_timelines)
        return page_arrays(&page, kind)
    finally:
        free(runs)
        page_free(&page)
