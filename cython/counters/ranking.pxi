# Top-k selection shared by CounterTable.top and WindowedCounter.top
# (rust/igcore-core/src/counters/ranking.rs). Included by _cy_counters.pyx.

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
