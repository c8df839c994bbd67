# Whole-graph analytics for data pipelines, on the compact base (a graph with updates pending is
# compacted into a copy first), where index order is id order (rust/igcore-core/src/graph/analytics.rs). Included by _cy_graph.pyx.

cdef object _edges(Graph self):
    self._ready()
    cdef size_t total = self._num_follows(), at = 0, k
    cdef vector[uint32_t] order
    cdef uint32_t u
    cdef size_t i
    cdef Row r
    src = np.empty(total, dtype=np.int64)
    dst = np.empty(total, dtype=np.int64)
    times = np.empty(total if self.timed else 0, dtype=np.int64)
    cdef int64_t[::1] s = src, d = dst, t = times
    with nogil:
        order.resize(self.n())
        for i in range(self.n()):
            order[i] = <uint32_t>i
        if not self.sorted_indices():
            ig_sort_by_id(order.data(), order.data() + order.size(), self.base.ids, self.base.n,
                          self.new_ids.data(), self.new_ids.size())
        for i in range(order.size()):
            u = order[i]
            self.row(u, True, &r)
            # at < total: rows of a mapped file changed under the graph may hold more
            for k in range(min(r.length, total - at)):
                s[at] = self.id(u)
                d[at] = self.id(r.targets[k])
                if r.times != NULL:
                    t[at] = r.times[k]
                at += 1
    if at < total:  # rows of a mapped file changed under the graph held fewer
        src, dst, times = src[:at], dst[:at], times[:at] if self.timed else times
    return src, dst, (times if self.timed else None)


cdef object _components(Graph self, bint strong):
    cdef Graph graph = self._compacted()
    cdef size_t n = graph.base.n
    roots = np.empty(n, dtype=np.uint32)
    cdef uint32_t[::1] root = roots
    labels = np.empty(n, dtype=np.int64)
    cdef int64_t[::1] label = labels
    cdef vector[int64_t] number
    cdef int64_t next_label = 0
    cdef size_t u
    with nogil:
        if strong:
            _strong(&graph.base, &root[0] if n else NULL)
        else:
            _weak(&graph.base, &root[0] if n else NULL)
        number.assign(n, -1)
        for u in range(n):  # components numbered by their smallest user (= index)
            if number[root[u]] < 0:
                number[root[u]] = next_label
                next_label += 1
            label[u] = number[root[u]]
    return labels


cdef object _triangle_count(Graph self):
    cdef Graph graph = self._compacted()
    cdef uint64_t count
    with nogil:
        count = _triangles(&graph.base)
    return count


cdef object _degree_histogram(Graph self, bint out):
    self._ready()
    cdef vector[int64_t] histogram
    cdef size_t u, d
    with nogil:
        for u in range(self.n()):
            d = self._degree(<uint32_t>u, out)
            if d >= histogram.size():
                histogram.resize(d + 1, 0)
            histogram[d] += 1
    return np.array(<int64_t[:histogram.size()]>histogram.data(), dtype=np.int64) if histogram.size() else np.empty(0, np.int64)


cdef inline uint32_t _root(uint32_t* parent, uint32_t x) noexcept nogil:
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


cdef void _weak(const Base* base, uint32_t* root) noexcept nogil:
    """Union-find over follows either way; a component's root is its smallest index."""
    cdef size_t n = base.n, u, k, start, length
    cdef uint32_t a, b, v
    for u in range(n):
        root[u] = <uint32_t>u
    for u in range(n):
        length = _base_row(base, True, u, &start)
        for k in range(start, start + length):
            v = base.targets[1][k]
            if v >= n:  # a mapped file changed under the graph
                continue
            a = _root(root, <uint32_t>u)
            b = _root(root, v)
            if a != b:
                root[max(a, b)] = min(a, b)
    for u in range(n):
        root[u] = _root(root, <uint32_t>u)


cdef void _strong(const Base* base, uint32_t* component) noexcept nogil:
    """Tarjan's strongly connected components without recursion; a representative per user."""
    cdef size_t n = base.n
    cdef uint32_t UNSEEN = 0xFFFFFFFFu
    cdef vector[uint32_t] index, low, stack
    cdef vector[unsigned char] on_stack
    cdef vector[uint32_t] call_user     # the depth-first search's stack of calls: the user ...
    cdef vector[uint64_t] call_next     # ... and the position in its row of the next follow to look at
    cdef uint32_t counter = 0, u, v, w, parent
    cdef uint64_t next_edge
    cdef size_t start, row_start, length
    index.assign(n, UNSEEN)
    low.assign(n, 0)
    on_stack.assign(n, False)
    for start in range(n):
        if index[start] != UNSEEN:
            continue
        call_user.push_back(<uint32_t>start)
        call_next.push_back(0)
        index[start] = counter
        low[start] = counter
        counter += 1
        stack.push_back(<uint32_t>start)
        on_stack[start] = True
        while call_user.size():
            u = call_user.back()
            next_edge = call_next.back()
            length = _base_row(base, True, u, &row_start)
            if next_edge < length:
                call_next[call_next.size() - 1] = next_edge + 1
                v = base.targets[1][row_start + next_edge]
                if v >= n:  # a mapped file changed under the graph
                    continue
                if index[v] == UNSEEN:
                    index[v] = counter
                    low[v] = counter
                    counter += 1
                    stack.push_back(v)
                    on_stack[v] = True
                    call_user.push_back(v)
                    call_next.push_back(0)
                elif on_stack[v]:
                    low[u] = min(low[u], index[v])
                continue
            call_user.pop_back()
            call_next.pop_back()
            if call_user.size():
                parent = call_user.back()
                low[parent] = min(low[parent], low[u])
            if low[u] == index[u]:
                while stack.size():
                    w = stack.back()
                    stack.pop_back()
                    on_stack[w] = False
                    component[w] = u
                    if w == u:
                        break


cdef uint64_t _triangles(const Base* base) noexcept nogil:
    """Triangles of the undirected simple graph: edges oriented from lower (degree, index) rank to
    higher, each triangle found once from its lowest corner."""
    cdef size_t n = base.n, u, i, j, k, start
    cdef vector[vector[uint32_t]] forward
    cdef vector[uint32_t] merged
    cdef vector[size_t] degree
    cdef vector[uint32_t] mark
    cdef const uint32_t* a
    cdef const uint32_t* b
    cdef size_t la, lb
    cdef uint32_t x, v, w
    cdef uint64_t count = 0
    degree.resize(n)
    forward.resize(n)
    for u in range(n):  # undirected degree: |following ∪ followers|
        la = _base_row(base, True, u, &start)
        a = base.targets[1] + start
        lb = _base_row(base, False, u, &start)
        b = base.targets[0] + start
        i = j = k = 0
        while i < la or j < lb:
            if j >= lb or (i < la and a[i] < b[j]):
                i += 1
            elif i >= la or b[j] < a[i]:
                j += 1
            else:
                i += 1
                j += 1
            k += 1
        degree[u] = k
    for u in range(n):
        la = _base_row(base, True, u, &start)
        a = base.targets[1] + start
        lb = _base_row(base, False, u, &start)
        b = base.targets[0] + start
        i = j = 0
        while i < la or j < lb:
            if j >= lb or (i < la and a[i] < b[j]):
                x = a[i]
                i += 1
            elif i >= la or b[j] < a[i]:
                x = b[j]
                j += 1
            else:
                x = a[i]
                i += 1
                j += 1
            if x >= n:  # a mapped file changed under the graph
                continue
            if degree[x] > degree[u] or (degree[x] == degree[u] and x > u):
                forward[u].push_back(x)
    mark.assign(n, 0xFFFFFFFFu)
    for u in range(n):
        for i in range(forward[u].size()):
            mark[forward[u][i]] = <uint32_t>u
        for i in range(forward[u].size()):
            v = forward[u][i]
            for j in range(forward[v].size()):
                w = forward[v][j]
                if mark[w] == u:
                    count += 1
    return count
