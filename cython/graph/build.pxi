# Building the compact layout from follows over arbitrary ids (rust/igcore-core/src/graph/build.rs). Included by _cy_graph.pyx.

def _build(const int64_t[::1] src, const int64_t[::1] dst, times, users=None):
    """A graph from follows, with `users` added even when no follow names them (compaction)."""
    cdef Py_ssize_t count = src.shape[0], i
    cdef bint timed = times is not None
    cdef const int64_t[::1] time_view
    cdef const int64_t[::1] user_view = np.empty(0, np.int64) if users is None else users
    if timed:
        time_view = times
    cdef IdIndex index
    cdef bint inserted
    cdef Py_ssize_t a, b
    first_src = np.empty(count, dtype=np.uint32)
    first_dst = np.empty(count, dtype=np.uint32)
    cdef uint32_t[::1] fs = first_src, fd = first_dst
    cdef bint failed = False
    if id_index_init(&index, <size_t>(count // 4 + user_view.shape[0])) < 0:
        id_index_free(&index)
        raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="building a graph"))
    try:
        with nogil:
            for i in range(count):
                a = id_index_insert(&index, src[i], &inserted)
                b = id_index_insert(&index, dst[i], &inserted)
                if a < 0 or b < 0:
                    failed = True
                    break
                fs[i] = <uint32_t>a
                fd[i] = <uint32_t>b
            for i in range(user_view.shape[0]):
                if failed or id_index_insert(&index, user_view[i], &inserted) < 0:
                    failed = True
                    break
        if failed:
            raise ValueError("too many users for one graph, or out of memory")
        first_ids = np.array(<int64_t[:index.length]>index.ids, dtype=np.int64) if index.length else np.empty(0, np.int64)
    finally:
        id_index_free(&index)
    # Renumber users in ascending id order: rows ascending by index are then ascending by id.
    order = np.argsort(first_ids, kind="stable")
    ids = first_ids[order]
    rank = np.empty(len(ids), dtype=np.uint32)
    rank[order] = np.arange(len(ids), dtype=np.uint32)
    s = rank[first_src]
    d = rank[first_dst]
    del first_src, first_dst, rank, order
    self_rows = s == d
    self_follows = int(np.count_nonzero(self_rows))
    self_followers = ids[np.unique(s[self_rows])]
    return _assemble(ids, s, d, times, timed, self_follows, self_followers)


cdef object _assemble(ids, s, d, times, bint timed, Py_ssize_t self_follows, self_followers):
    cdef size_t n = len(ids)
    cdef const uint32_t[::1] sv = s, dv = d
    cdef const int64_t[::1] tv = times if timed else np.empty(0, np.int64)
    out_offsets = np.zeros(n + 1, dtype=np.uint64)
    cdef uint64_t[::1] oo = out_offsets
    cdef Py_ssize_t count = sv.shape[0], i
    cdef size_t u, k, write = 0, start, end, kept
    with nogil:
        for i in range(count):
            if sv[i] != dv[i]:
                oo[sv[i] + 1] += 1
        for u in range(n):
            oo[u + 1] += oo[u]
    kept = oo[n]
    targets = np.empty(kept, dtype=np.uint32)
    row_times = np.empty(kept if timed else 0, dtype=np.int64)
    cdef uint32_t[::1] tg = targets
    cdef int64_t[::1] rt = row_times
    cdef vector[uint64_t] cursor
    cdef vector[pair[uint32_t, int64_t]] pairs
    cdef int64_t last
    with nogil:
        if n:
            cursor.assign(&oo[0], &oo[0] + n)
        for i in range(count):
            if sv[i] == dv[i]:
                continue
            k = cursor[sv[i]]
            cursor[sv[i]] += 1
            tg[k] = dv[i]
            if timed:
                rt[k] = tv[i]
        # Each row ascending, repeats collapsed (keeping the earliest time), compacted in place.
        for u in range(n):
            start = oo[u]
            end = oo[u + 1]
            oo[u] = write
            if timed:
                pairs.clear()
                for k in range(start, end):
                    pairs.push_back(pair[uint32_t, int64_t](tg[k], rt[k]))
                cpp_sort(pairs.begin(), pairs.end())
                last = -1
                for k in range(pairs.size()):
                    if <int64_t>pairs[k].first != last:
                        tg[write] = pairs[k].first
                        rt[write] = pairs[k].second
                        write += 1
                        last = pairs[k].first
            else:
                if end > start:
                    cpp_sort(&tg[0] + start, &tg[0] + end)
                last = -1
                for k in range(start, end):
                    if <int64_t>tg[k] != last:
                        tg[write] = tg[k]
                        write += 1
                        last = tg[k]
        if n:
            oo[n] = write
    duplicates = kept - write
    targets = targets[:write].copy()
    row_times = row_times[:write].copy() if timed else np.empty(0, np.int64)
    in_offsets, sources, in_times = _transpose(out_offsets, targets, row_times, timed, n)
    if timed:
        out_by_time = _by_time(out_offsets, row_times)
        in_by_time = _by_time(in_offsets, in_times)
    else:
        out_by_time = in_by_time = np.empty(0, np.uint32)
    graph = Graph()
    graph._bind([ids, _id_table(ids), out_offsets, targets, in_offsets, sources, row_times, out_by_time,
                 in_times, in_by_time], timed)
    graph.verified = True
    return graph, duplicates, self_follows, self_followers


cdef object _transpose(out_offsets, targets, row_times, bint timed, size_t n):
    """Followers from following: sources come in ascending order, so each row is ascending."""
    in_offsets = np.zeros(n + 1, dtype=np.uint64)
    sources = np.empty(len(targets), dtype=np.uint32)
    in_times = np.empty(len(targets) if timed else 0, dtype=np.int64)
    cdef uint64_t[::1] io = in_offsets
    cdef const uint64_t[::1] oo = out_offsets
    cdef const uint32_t[::1] tg = targets
    cdef const int64_t[::1] rt = row_times
    cdef uint32_t[::1] so = sources
    cdef int64_t[::1] it = in_times
    cdef vector[uint64_t] cursor
    cdef size_t u, k, at
    cdef uint32_t v
    with nogil:
        for k in range(tg.shape[0]):
            io[tg[k] + 1] += 1
        for u in range(n):
            io[u + 1] += io[u]
        if n:
            cursor.assign(&io[0], &io[0] + n)
        for u in range(n):
            for k in range(oo[u], oo[u + 1]):
                v = tg[k]
                at = cursor[v]
                cursor[v] += 1
                so[at] = <uint32_t>u
                if timed:
                    it[at] = rt[k]
    return in_offsets, sources, in_times


cdef object _by_time(offsets, times):
    order = np.empty(len(times), dtype=np.uint32)
    cdef uint32_t[::1] ov = order
    cdef const uint64_t[::1] off = offsets
    cdef const int64_t[::1] tv = times
    cdef size_t u
    with nogil:
        for u in range(<size_t>off.shape[0] - 1):
            if off[u + 1] > off[u]:
                ig_time_order(&tv[0] + off[u], <size_t>(off[u + 1] - off[u]), &ov[0] + off[u])
    return order


cdef object _id_table(ids):
    cdef size_t n = len(ids)
    cdef size_t num_slots = _graph_file.num_slots_for(n)
    slots = np.full(num_slots, EMPTY_SLOT, dtype=np.uint32)
    cdef uint32_t[::1] sv = slots
    cdef const int64_t[::1] iv = ids
    cdef int shift = 64
    cdef size_t s = num_slots, i, pos, mask = num_slots - 1
    while s > 1:
        s >>= 1
        shift -= 1
    with nogil:
        for i in range(n):
            pos = <size_t>(id_hash(iv[i]) >> shift)
            while sv[pos] != EMPTY_SLOT:
                pos = (pos + 1) & mask
            sv[pos] = <uint32_t>i
    return slots


def build(const int64_t[::1] src, const int64_t[::1] dst, times):
    graph, duplicates, self_follows, self_followers = _build(src, dst, times)
    return graph, duplicates, self_follows, self_followers
