# Queries about single users, suggestions and traversal: the calls a web tier makes per request
# (rust/igcore-core/src/graph/queries.rs). Included by _cy_graph.pyx.

cdef object _neighbours(Graph self, user, bint out, since, until, Py_ssize_t offset, Py_ssize_t limit):
    self._ready()
    cdef Row r
    self.row(self.index(user), out, &r)
    cdef Py_ssize_t length = <Py_ssize_t>r.length
    cdef Py_ssize_t first, last, start, stop
    cdef Py_ssize_t k
    cdef uint32_t position
    cdef vector[uint32_t] order
    # offset and limit may be as large as int64 allows: the page is bounded by differences.
    if not self.timed:
        start = min(offset, length)
        stop = start + min(limit, length - start)
        return self.ids_of(r.targets + start, <size_t>(stop - start)), None
    order.resize(r.length)
    if r.by_time != NULL:
        for k in range(length):
            # A position beyond the row (a mapped file changed under the graph) reads nothing.
            position = r.by_time[k]
            order[k] = position if position < r.length else <uint32_t>k
    else:
        ig_time_order(r.times, r.length, order.data())
    # Newest first: skip the follows at or after `until`, stop at the first before `since`.
    first = 0
    if until is not None:
        while first < length and r.times[order[first]] >= <int64_t>until:
            first += 1
    last = length
    if since is not None:
        last = first
        while last < length and r.times[order[last]] >= <int64_t>since:
            last += 1
    start = first + min(offset, last - first)
    stop = start + min(limit, last - start)
    ids = np.empty(stop - start, dtype=np.int64)
    times = np.empty(stop - start, dtype=np.int64)
    cdef int64_t[::1] id_view = ids, time_view = times
    for k in range(start, stop):
        id_view[k - start] = self.id(r.targets[order[k]])
        time_view[k - start] = r.times[order[k]]
    return ids, times


cdef object _counts(Graph self, const int64_t[::1] users, bint out):
    self._ready()
    result = np.empty(users.shape[0], dtype=np.int64)
    cdef int64_t[::1] view = result
    cdef Py_ssize_t i, x
    cdef Row r
    for i in range(users.shape[0]):
        x = self.lookup(users[i])
        if x < 0:
            raise KeyError(users[i])
        self.row(<uint32_t>x, out, &r)
        view[i] = <int64_t>r.length
    return result


cdef object _is_following(Graph self, const int64_t[::1] a, const int64_t[::1] b):
    self._ready()
    if a.shape[0] != b.shape[0]:
        raise ValueError(
            _messages.LENGTHS_DIFFER.format(first="a", second="b", first_length=a.shape[0], second_length=b.shape[0])
        )
    result = np.zeros(a.shape[0], dtype=bool)
    cdef cbool[::1] view = result
    cdef Py_ssize_t i, x, y
    cdef Row following, followers
    with nogil:
        for i in range(a.shape[0]):
            x = self.lookup(a[i])
            y = self.lookup(b[i])
            if x < 0 or y < 0:
                continue
            self.row(<uint32_t>x, True, &following)
            self.row(<uint32_t>y, False, &followers)
            if following.length <= followers.length:
                view[i] = self.position(&following, <uint32_t>y) >= 0
            else:
                view[i] = self.position(&followers, <uint32_t>x) >= 0
    return result


cdef object _in_both(Graph self, x, bint x_out, y, bint y_out, size_t limit, size_t* total):
    """Users in both x's row and y's (each `following` when its `_out` is set, else `followers`),
    ascending by id: the first `limit` ids; `total` counts them all."""
    self._ready()
    cdef uint32_t ix = self.index(x)
    cdef uint32_t iy = self.index(y)
    cdef Row a, b
    self.row(ix, x_out, &a)
    self.row(iy, y_out, &b)
    cdef Row* smaller = &a if a.length <= b.length else &b
    cdef Row* larger = &b if a.length <= b.length else &a
    cdef vector[uint32_t] found
    cdef size_t k
    total[0] = 0
    with nogil:
        for k in range(smaller.length):
            if self.position(larger, smaller.targets[k]) >= 0:
                if found.size() < limit:
                    found.push_back(smaller.targets[k])
                total[0] += 1
    return self.ids_of(found.data(), found.size())


cdef object _ranked(Graph self, IgScratch* scratch, size_t limit):
    cdef size_t top, k
    with nogil:
        top = ig_rank(scratch.touched, scratch.score.data(), self.base.ids, self.base.n,
                      self.new_ids.data(), self.new_ids.size(), self.sorted_indices(), limit)
    ids = self.ids_of(scratch.touched.data(), top)
    scores = np.empty(top, dtype=np.float64)
    cdef double[::1] view = scores
    for k in range(top):
        view[k] = scratch.score[scratch.touched[k]]
    return ids, scores


cdef void _skip(Graph self, IgScratch* scratch, uint32_t stamp, uint32_t user, const Row* followed,
                const int64_t[::1] exclude):
    """Stamps what a suggestion for `user` leaves out: the user, whom they follow, and `exclude`."""
    cdef size_t n = self.n(), i
    cdef Py_ssize_t x
    scratch.stamp[user] = stamp
    for i in range(followed.length):
        if followed.targets[i] < n:
            scratch.stamp[followed.targets[i]] = stamp
    for i in range(exclude.shape[0]):
        x = self.lookup(exclude[i])
        if x >= 0:
            scratch.stamp[x] = stamp


cdef object _suggest(Graph self, user, size_t limit, bint adamic_adar, const int64_t[::1] exclude):
    self._ready()
    cdef uint32_t u = self.index(user)
    cdef IgScratch* scratch = ig_scratch()
    cdef size_t n = self.n()
    cdef uint32_t skip = ig_fresh(scratch, n, 2)
    cdef uint32_t seen = skip + 1
    cdef Row followed, row
    cdef size_t i, k
    cdef uint32_t f, c
    cdef double weight
    self.row(u, True, &followed)
    _skip(self, scratch, skip, u, &followed, exclude)
    with nogil:
        # Terms are added in ascending id order of f, the order the reference adds them in.
        for i in range(followed.length):
            f = followed.targets[i]
            self.row(f, True, &row)
            if row.length == 0:
                continue
            weight = 1.0
            if adamic_adar:
                weight = 1.0 / log(<double>(row.length + self._degree(f, False)))
            for k in range(row.length):
                c = row.targets[k]
                if c >= n or scratch.stamp[c] == skip:  # c >= n: a mapped file changed
                    continue
                if scratch.stamp[c] != seen:
                    scratch.stamp[c] = seen
                    scratch.score[c] = 0.0
                    scratch.touched.push_back(c)
                scratch.score[c] += weight
    return _ranked(self, scratch, limit)


cdef object _random_walk_suggest(Graph self, user, uint64_t walks, uint64_t walk_length, double restart_prob,
                                 uint64_t seed, size_t limit, const int64_t[::1] exclude):
    self._ready()
    cdef uint32_t u = self.index(user)
    cdef Row start, row
    self.row(u, True, &start)
    if start.length == 0 or walks == 0 or walk_length == 0:
        return np.empty(0, np.int64), np.empty(0, np.float64)
    cdef IgScratch* scratch = ig_scratch()
    cdef size_t n = self.n()
    cdef uint32_t skip = ig_fresh(scratch, n, 2)
    cdef uint32_t seen = skip + 1
    cdef size_t i
    cdef uint64_t walk, step
    cdef uint32_t current
    cdef uint64_t state = seed
    _skip(self, scratch, skip, u, &start, exclude)
    with nogil:
        for walk in range(walks):
            current = u
            for step in range(walk_length):
                self.row(current, True, &row)
                if row.length == 0:
                    row = start
                current = row.targets[_below(&state, row.length)]
                if current >= n:  # a mapped file changed under the graph: start over
                    current = u
                elif scratch.stamp[current] != skip:
                    if scratch.stamp[current] != seen:
                        scratch.stamp[current] = seen
                        scratch.score[current] = 0.0
                        scratch.touched.push_back(current)
                    scratch.score[current] += 1.0
                if _unit(&state) < restart_prob:
                    current = u
    return _ranked(self, scratch, limit)


cdef object _bfs(Graph self, user, uint64_t max_depth, size_t limit, bint out):
    self._ready()
    cdef uint32_t u = self.index(user)
    cdef IgScratch* scratch = ig_scratch()
    cdef size_t n = self.n()
    cdef uint32_t visited = ig_fresh(scratch, n, 1)
    cdef vector[uint32_t] order
    cdef vector[int64_t] depths
    cdef size_t level_start = 0, level_end, i, k
    cdef uint64_t depth = 0
    cdef Row r
    cdef uint32_t v
    cdef bint full = False
    with nogil:
        order.push_back(u)
        depths.push_back(0)
        scratch.stamp[u] = visited
        # Ends when a level reaches no one new, however deep max_depth allows.
        while depth < max_depth and level_start < order.size() and not full:
            depth += 1
            level_end = order.size()
            for i in range(level_start, level_end):
                self.row(order[i], out, &r)
                for k in range(r.length):
                    v = r.targets[k]
                    if v < n and scratch.stamp[v] != visited:
                        if order.size() == limit:
                            full = True
                            break
                        scratch.stamp[v] = visited
                        order.push_back(v)
                        depths.push_back(<int64_t>depth)
                if full:
                    break
            level_start = level_end
    ids = self.ids_of(order.data(), order.size())
    return ids, np.array(<int64_t[:depths.size()]>depths.data(), dtype=np.int64)


# -- random numbers: splitmix64, as the reference defines it ---------------------------------------------

cdef inline uint64_t _next(uint64_t* state) noexcept nogil:
    state[0] += 0x9E3779B97F4A7C15u
    cdef uint64_t z = state[0]
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu
    return z ^ (z >> 31)


cdef extern from *:
    """
    static inline size_t ig_mul_high(uint64_t a, uint64_t b) {
        return (size_t)(((unsigned __int128)a * b) >> 64);
    }
    """
    size_t ig_mul_high(uint64_t a, uint64_t b) nogil


cdef inline size_t _below(uint64_t* state, size_t n) noexcept nogil:
    return ig_mul_high(_next(state), n)


cdef inline double _unit(uint64_t* state) noexcept nogil:
    return <double>(_next(state) >> 11) * (1.0 / 9007199254740992.0)
