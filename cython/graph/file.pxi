# The graph file: saving, mapping and checking; the format is described in igcore/_graph_file.py
# (rust/igcore-core/src/graph/file.rs). Included by _cy_graph.pyx.

# The dtypes of the arrays of the compact layout, in the file's order (of _graph_file.SECTIONS).
cdef list SECTION_DTYPES = ["<i8", "<u4", "<u8", "<u4", "<u8", "<u4", "<i8", "<u4", "<i8", "<u4"]


cdef _save(Graph self, path):
    graph = self._compacted()
    sections = graph.arrays[: 10 if graph.timed else 6]
    _graph_file.write_file(path, graph.base.n, graph.base.m[1], graph.timed, sections)


def load(path, layout, bint mmap):
    """Maps (or reads) a graph file whose header `layout` describes (igcore.graph has checked it)."""
    with open(path, "rb") as file:
        if mmap:
            buffer = _mmap.mmap(file.fileno(), 0, access=_mmap.ACCESS_READ) if layout.file_size else b""
        else:
            buffer = file.read()
    if buffer[: _graph_file.HEADER_SIZE] != layout.header:
        raise ValueError(_messages.GRAPH_FILE_REPLACED)
    if len(buffer) < layout.file_size:
        raise ValueError(_messages.CORRUPT_SECTION_OUTSIDE_FILE)
    arrays = []
    for i, (dtype, offset, length) in enumerate(zip(SECTION_DTYPES, layout.offsets, layout.lengths)):
        if i >= 6 and not layout.timed:
            arrays.append(np.empty(0, dtype))
            continue
        array = np.frombuffer(buffer, dtype=dtype, count=length // np.dtype(dtype).itemsize, offset=offset)
        arrays.append(array.astype(array.dtype.newbyteorder("="), copy=False))
    graph = Graph()
    graph._bind(arrays, layout.timed)
    graph.mapping = buffer if mmap else None
    graph.layout = layout
    graph.verified = None
    return graph


# -- checking a file's structure ------------------------------------------------------------------------

cdef int _check_structure(const Base* base, size_t m_out, size_t m_in, bint timed) noexcept nogil:
    """0 when the arrays hold together; otherwise which check failed (1..7, as STRUCTURE_MESSAGES). Every value
    is checked where it is used, so a mapped file that changes meanwhile reads nothing out of bounds."""
    cdef size_t n = base.n, i, u, filled = 0, mask, pos, k, d, probe
    cdef int direction
    cdef uint64_t start, end, at
    cdef uint32_t v, p, q
    cdef const uint32_t* row
    cdef const int64_t* times
    cdef const uint32_t* order
    cdef vector[uint64_t] cursor
    for i in range(1, n):
        if base.ids[i - 1] >= base.ids[i]:
            return 1
    for i in range(base.num_slots):
        if base.slots[i] != EMPTY_SLOT:
            if base.slots[i] >= n:
                return 2
            filled += 1
    if filled != n:
        return 2
    mask = base.num_slots - 1
    for i in range(n):
        pos = <size_t>(id_hash(base.ids[i]) >> base.shift)
        probe = 0
        while base.slots[pos] != i:
            probe += 1
            if base.slots[pos] == EMPTY_SLOT or probe == base.num_slots:
                return 3
            pos = (pos + 1) & mask
    for direction in range(2):
        if base.offsets[direction][0] != 0 or base.offsets[direction][n] != base.m[direction]:
            return 4
        for u in range(n):
            start = ig_read_once(base.offsets[direction] + u)
            end = ig_read_once(base.offsets[direction] + u + 1)
            if start > end or end > base.m[direction]:
                return 4
            row = base.targets[direction] + start
            d = <size_t>(end - start)
            for k in range(d):
                v = row[k]
                if v >= n or v == u or (k and row[k - 1] >= v):
                    return 5
            if timed:
                times = base.times[direction] + start
                order = base.by_time[direction] + start
                for k in range(d):
                    if order[k] >= d:
                        return 6
                for k in range(1, d):
                    p = order[k - 1]
                    q = order[k]
                    if p >= d or q >= d:
                        return 6
                    if not (times[p] > times[q] or (times[p] == times[q] and row[p] < row[q])):
                        return 6
    if m_out != m_in:
        return 7
    cursor.assign(base.offsets[0], base.offsets[0] + n)
    for u in range(n):
        d = _base_row(base, True, u, &i)
        for k in range(i, i + d):
            v = base.targets[1][k]
            if v >= n:
                return 7
            at = cursor[v]
            cursor[v] += 1
            if at >= base.offsets[0][v + 1] or at >= m_in or base.targets[0][at] != u:
                return 7
            if timed and base.times[1][k] != base.times[0][at]:
                return 7
    return 0


cdef dict STRUCTURE_MESSAGES = {
    1: _messages.CORRUPT_IDS_NOT_ASCENDING,
    2: _messages.CORRUPT_ID_TABLE_NOT_ONCE,
    3: _messages.CORRUPT_ID_TABLE_MISSES_USER,
    4: _messages.CORRUPT_OFFSETS,
    5: _messages.CORRUPT_FOLLOW_LIST,
    6: _messages.CORRUPT_TIME_ORDER,
    7: _messages.CORRUPT_NOT_MIRRORED,
}


cdef object _verify_structure(Graph graph):
    cdef size_t n = graph.base.n
    cdef size_t m_out = len(graph.arrays[3]), m_in = len(graph.arrays[5])
    cdef int failed
    if graph.base.num_slots != _graph_file.num_slots_for(n) or len(graph.arrays[2]) != n + 1 or len(graph.arrays[4]) != n + 1:
        return STRUCTURE_MESSAGES[4]
    with nogil:
        failed = _check_structure(&graph.base, m_out, m_in, graph.timed)
    return None if failed == 0 else STRUCTURE_MESSAGES[failed]
