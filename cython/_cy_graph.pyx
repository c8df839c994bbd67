# distutils: language = c++
# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The follower graph in Cython. The contract is in igcore/_reference/graph.py, the layout (which is the
file format) in igcore/_graph_file.py; the design is the one of rust/igcore-core/src/graph/: users in
ascending id order as dense uint32 indices, each direction as compressed sparse rows, one id table, and
updates in an overlay of rewritten rows until compact() folds them in."""

from cpython.pyport cimport PY_SSIZE_T_MAX
from cython.operator cimport dereference
from libc.math cimport log
from libc.stdint cimport int64_t, uint32_t, uint64_t
from libcpp cimport bool as cbool
from libcpp.algorithm cimport sort as cpp_sort
from libcpp.pair cimport pair
from libcpp.unordered_map cimport unordered_map
from libcpp.vector cimport vector

from _cy_guard cimport IgHold, IgRwLock, hold_exclusive, hold_shared, rwlock_free, rwlock_new
from _cy_id_index cimport IdIndex, id_hash, id_index_free, id_index_init, id_index_insert

import mmap as _mmap
import zlib

import numpy as np

from igcore import _graph_file

cdef extern from *:
    """
    #include <algorithm>
    #include <cstdint>
    #include <vector>

    // Per-thread scratch sized to the graph: epoch stamps instead of hash sets, one score per user.
    struct IgScratch {
        std::vector<uint32_t> stamp;
        uint32_t epoch = 0;
        std::vector<double> score;
        std::vector<uint32_t> touched;
    };
    static IgScratch* ig_scratch() {
        static thread_local IgScratch scratch;
        return &scratch;
    }
    // Makes room for n users; returns the first of `count` epochs that no stamp holds yet.
    static uint32_t ig_fresh(IgScratch* s, size_t n, uint32_t count) {
        if (s->stamp.size() < n) { s->stamp.resize(n, 0); s->score.resize(n, 0.0); }
        if (s->epoch > UINT32_MAX - count - 1) { std::fill(s->stamp.begin(), s->stamp.end(), 0); s->epoch = 0; }
        uint32_t first = s->epoch + 1;
        s->epoch += count;
        s->touched.clear();
        return first;
    }
    // The id of index x: base users first, then users new since the base. An index beyond both (from
    // a mapped file changed under the graph) reads nothing and gives INT64_MIN.
    static inline int64_t ig_id(const int64_t* ids, size_t base_n, const int64_t* new_ids, size_t new_n,
                                uint32_t x) {
        if (x < base_n) return ids[x];
        return (size_t)(x - base_n) < new_n ? new_ids[x - base_n] : INT64_MIN;
    }
    // One offset of a mapped section, read once: a check and the use that follows it see one value.
    static inline uint64_t ig_read_once(const uint64_t* p) { return *(const volatile uint64_t*)p; }
    // Sorts the best `limit` candidates first: by score, highest first, ties by the smaller id.
    static size_t ig_rank(std::vector<uint32_t>& cand, const double* score, const int64_t* ids,
                          size_t base_n, const int64_t* new_ids, size_t new_n, bool sorted, size_t limit) {
        auto cmp = [&](uint32_t a, uint32_t b) {
            if (score[a] != score[b]) return score[a] > score[b];
            if (sorted) return a < b;
            return ig_id(ids, base_n, new_ids, new_n, a) < ig_id(ids, base_n, new_ids, new_n, b);
        };
        size_t top = std::min(limit, cand.size());
        std::partial_sort(cand.begin(), cand.begin() + top, cand.end(), cmp);
        return top;
    }
    // Positions 0..len-1 of a row, newest first, ties by the smaller position (= smaller id).
    static void ig_time_order(const int64_t* times, size_t len, uint32_t* out) {
        for (size_t k = 0; k < len; k++) out[k] = (uint32_t)k;
        std::stable_sort(out, out + len, [&](uint32_t a, uint32_t b) { return times[a] > times[b]; });
    }
    // Sorts a row's indices by their ids (rows that name users new since the base).
    static void ig_sort_by_id(uint32_t* begin, uint32_t* end, const int64_t* ids, size_t base_n,
                              const int64_t* new_ids, size_t new_n) {
        std::sort(begin, end, [&](uint32_t a, uint32_t b) {
            return ig_id(ids, base_n, new_ids, new_n, a) < ig_id(ids, base_n, new_ids, new_n, b);
        });
    }
    """
    cppclass IgScratch:
        vector[uint32_t] stamp
        uint32_t epoch
        vector[double] score
        vector[uint32_t] touched
    IgScratch* ig_scratch() nogil
    uint32_t ig_fresh(IgScratch* s, size_t n, uint32_t count) nogil
    int64_t ig_id(const int64_t* ids, size_t base_n, const int64_t* new_ids, size_t new_n, uint32_t x) nogil
    uint64_t ig_read_once(const uint64_t* p) nogil
    size_t ig_rank(vector[uint32_t]& cand, const double* score, const int64_t* ids, size_t base_n,
                   const int64_t* new_ids, size_t new_n, cbool sorted, size_t limit) nogil
    void ig_time_order(const int64_t* times, size_t length, uint32_t* out) nogil
    void ig_sort_by_id(uint32_t* begin, uint32_t* end, const int64_t* ids, size_t base_n,
                       const int64_t* new_ids, size_t new_n) nogil

cdef uint32_t EMPTY_SLOT = 0xFFFFFFFFu
cdef uint64_t INT64_MAX_U = 0x7FFFFFFFFFFFFFFFu

# Arrays of the compact layout, in the file's order.
SECTION_NAMES = [name for name, _ in _graph_file.SECTIONS]
SECTION_DTYPES = ["<i8", "<u4", "<u8", "<u4", "<u8", "<u4", "<i8", "<u4", "<i8", "<u4"]


cdef struct Row:
    const uint32_t* targets
    size_t length
    const int64_t* times       # NULL on an untimed graph
    const uint32_t* by_time    # NULL for rows of the overlay (sorted when asked)
    bint by_index              # ascending by index too (not only by id)


cdef struct Base:
    size_t n
    size_t num_slots
    int shift
    const int64_t* ids
    const uint32_t* slots
    const uint64_t* offsets[2]     # [0]: followers, [1]: following
    const uint32_t* targets[2]
    size_t m[2]                    # the length of each targets section
    const int64_t* times[2]
    const uint32_t* by_time[2]


cdef inline const void* _data(object array):
    cdef const unsigned char[::1] view
    if array is None or len(array) == 0:
        return NULL
    view = array.view(np.uint8)
    return &view[0]


def _empty_row_arrays():
    return [np.zeros(1, np.uint64), np.zeros(0, np.uint32)]


cdef class Graph:
    cdef public bint timed
    cdef object arrays          # the ten sections as numpy arrays (the last four empty when untimed)
    cdef object mapping         # the file's mmap, when the arrays are views of it
    cdef object layout          # the file's checked header, when loaded
    cdef object verified        # None: unchecked; True: checked; str: what is wrong
    cdef Base base
    # The overlay: rewritten rows (neighbours ascending by id) and users new since the base.
    cdef unordered_map[uint32_t, vector[uint32_t]] rows_out, rows_in
    cdef unordered_map[uint32_t, vector[int64_t]] times_out, times_in
    cdef vector[int64_t] new_ids
    cdef unordered_map[int64_t, uint32_t] new_index
    cdef size_t entries
    # Queries (and save, verify) share it; follow, unfollow and compact hold it alone (see
    # _cy_guard.pxd). Every public method takes it once, and the methods they call take it no more.
    cdef IgRwLock* lock

    def __cinit__(self):
        self.verified = None
        self.entries = 0
        self.lock = rwlock_new()

    def __dealloc__(self):
        if self.lock != NULL:
            rwlock_free(self.lock)

    cdef void _bind(self, list arrays, bint timed):
        cdef size_t i
        self.arrays = arrays
        self.timed = timed
        self.base.n = len(arrays[0])
        self.base.num_slots = len(arrays[1])
        self.base.shift = 64
        i = self.base.num_slots
        while i > 1:
            i >>= 1
            self.base.shift -= 1
        self.base.ids = <const int64_t*>_data(arrays[0])
        self.base.slots = <const uint32_t*>_data(arrays[1])
        self.base.offsets[1] = <const uint64_t*>_data(arrays[2])
        self.base.targets[1] = <const uint32_t*>_data(arrays[3])
        self.base.m[1] = len(arrays[3])
        self.base.offsets[0] = <const uint64_t*>_data(arrays[4])
        self.base.targets[0] = <const uint32_t*>_data(arrays[5])
        self.base.m[0] = len(arrays[5])
        self.base.times[1] = <const int64_t*>_data(arrays[6]) if timed else NULL
        self.base.by_time[1] = <const uint32_t*>_data(arrays[7]) if timed else NULL
        self.base.times[0] = <const int64_t*>_data(arrays[8]) if timed else NULL
        self.base.by_time[0] = <const uint32_t*>_data(arrays[9]) if timed else NULL

    # -- checking ------------------------------------------------------------------------------------

    def verify(self):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        self._verify()

    cdef int _verify(self) except -1:
        if self.verified is None:
            try:
                _graph_file.check_crcs(self.layout, self.arrays[: 10 if self.timed else 6])
                message = _verify_structure(self)
            except ValueError as exc:
                message = str(exc)
            self.verified = True if message is None else message
        if self.verified is not True:
            raise ValueError(self.verified)
        return 0

    cdef inline int _ready(self) except -1:
        if self.verified is not True:
            self._verify()
        return 0

    # -- rows and ids ----------------------------------------------------------------------------------

    cdef inline size_t n(self) noexcept nogil:
        return self.base.n + self.new_ids.size()

    cdef inline int64_t id(self, uint32_t x) noexcept nogil:
        return ig_id(self.base.ids, self.base.n, self.new_ids.data(), self.new_ids.size(), x)

    cdef inline bint sorted_indices(self) noexcept nogil:
        return self.new_ids.size() == 0

    cdef inline Py_ssize_t lookup(self, int64_t id) noexcept nogil:
        """The index of `id`, or -1."""
        cdef size_t mask = self.base.num_slots - 1
        cdef size_t pos = <size_t>(id_hash(id) >> self.base.shift)
        cdef size_t probe
        cdef uint32_t index
        cdef unordered_map[int64_t, uint32_t].iterator found
        # At most one probe per slot: a table without a free slot (a mapped file changed under the
        # graph) ends the search too.
        for probe in range(self.base.num_slots):
            index = self.base.slots[pos]
            if index == EMPTY_SLOT:
                break
            if index < self.base.n and self.base.ids[index] == id:
                return index
            pos = (pos + 1) & mask
        if self.new_ids.size():
            found = self.new_index.find(id)
            if found != self.new_index.end():
                return <Py_ssize_t>(self.base.n + dereference(found).second)
        return -1

    cdef uint32_t index(self, object user) except? 0xFFFFFFFF:
        cdef Py_ssize_t x = self.lookup(<int64_t>user)
        if x < 0:
            raise KeyError(user)
        return <uint32_t>x

    cdef inline void row(self, uint32_t u, bint out, Row* r) noexcept nogil:
        cdef unordered_map[uint32_t, vector[uint32_t]]* rows = &self.rows_out if out else &self.rows_in
        cdef unordered_map[uint32_t, vector[int64_t]]* times = &self.times_out if out else &self.times_in
        cdef unordered_map[uint32_t, vector[uint32_t]].iterator found
        cdef size_t start
        r.times = NULL
        r.by_time = NULL
        if not rows.empty():
            found = rows.find(u)
            if found != rows.end():
                r.targets = dereference(found).second.data()
                r.length = dereference(found).second.size()
                r.by_index = self.new_ids.size() == 0
                if self.timed:
                    r.times = dereference(times)[u].data()
                return
        r.by_index = True
        r.length = _base_row(&self.base, out, u, &start)
        r.targets = self.base.targets[out] + start if r.length else NULL
        if self.timed and r.length:
            r.times = self.base.times[out] + start
            r.by_time = self.base.by_time[out] + start

    cdef inline Py_ssize_t position(self, Row* r, uint32_t v) noexcept nogil:
        """Where `v` sits in the row (ascending by id), or -1."""
        cdef size_t low = 0, high = r.length, middle
        cdef int64_t key = self.id(v), here
        while low < high:
            middle = (low + high) >> 1
            if r.by_index:
                if r.targets[middle] < v:
                    low = middle + 1
                elif r.targets[middle] > v:
                    high = middle
                else:
                    return <Py_ssize_t>middle
            else:
                here = self.id(r.targets[middle])
                if here < key:
                    low = middle + 1
                elif here > key:
                    high = middle
                else:
                    return <Py_ssize_t>middle
        return -1

    cdef object ids_of(self, const uint32_t* xs, size_t count):
        result = np.empty(count, dtype=np.int64)
        cdef int64_t[::1] view = result
        cdef size_t i
        with nogil:
            for i in range(count):
                view[i] = self.id(xs[i])
        return result

    # -- sizes -----------------------------------------------------------------------------------------

    def num_users(self):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return self.n()

    def num_follows(self):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return self._num_follows()

    cdef size_t _num_follows(self) except? 0xFFFFFFFFFFFFFFFF:
        self._ready()
        cdef size_t total = self.base.m[1], start, base_length
        cdef pair[uint32_t, vector[uint32_t]] item
        for item in self.rows_out:
            base_length = _base_row(&self.base, True, item.first, &start)
            total -= min(total, base_length)
            total += item.second.size()
        return total

    def nbytes(self):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return (sum(a.nbytes for a in self.arrays) + self.entries * (12 if self.timed else 4)
                + self.new_ids.size() * 24)

    def user_ids(self):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return self._user_ids()

    cdef object _user_ids(self):
        self._ready()
        ids = np.array(self.arrays[0], dtype=np.int64)
        if self.new_ids.size():
            ids = np.sort(np.concatenate([ids, np.array(<int64_t[:self.new_ids.size()]>self.new_ids.data())]))
        return ids

    def contains(self, user):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        self._ready()
        return self.lookup(user) >= 0

    # -- queries ----------------------------------------------------------------------------------------

    def neighbours(self, user, bint out, since, until, Py_ssize_t offset, limit):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return self._neighbours(user, out, since, until, offset,
                                PY_SSIZE_T_MAX if limit is None else <Py_ssize_t>limit)

    cdef object _neighbours(self, user, bint out, since, until, Py_ssize_t offset, Py_ssize_t limit):
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

    def degree(self, user, bint out):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        self._ready()
        return self._degree(self.index(user), out)

    def counts(self, const int64_t[::1] users, bint out):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return self._counts(users, out)

    cdef object _counts(self, const int64_t[::1] users, bint out):
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

    def is_following(self, const int64_t[::1] a, const int64_t[::1] b):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return self._is_following(a, b)

    cdef object _is_following(self, const int64_t[::1] a, const int64_t[::1] b):
        self._ready()
        if a.shape[0] != b.shape[0]:
            raise ValueError(f"a and b differ in length ({a.shape[0]} != {b.shape[0]})")
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

    cdef object _in_both(self, x, bint x_out, y, bint y_out, size_t limit, size_t* total):
        """Users in both x's row and y's (each `following` when its `_out` is set, else `followers`),
        ascending by id: the first `limit` ids; `total` counts them all."""
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return self._in_both_locked(x, x_out, y, y_out, limit, total)

    cdef object _in_both_locked(self, x, bint x_out, y, bint y_out, size_t limit, size_t* total):
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

    def mutual_follows(self, user):
        cdef size_t total
        return self._in_both(user, True, user, False, <size_t>-1, &total)

    def common(self, a, b, bint out):
        cdef size_t total
        return self._in_both(a, out, b, out, <size_t>-1, &total)

    def followed_by(self, viewer, target, size_t limit):
        cdef size_t total
        ids = self._in_both(viewer, True, target, False, limit, &total)
        return ids, total

    # -- suggestions -----------------------------------------------------------------------------------

    cdef object _ranked(self, IgScratch* scratch, size_t limit):
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

    cdef void _mark(self, IgScratch* scratch, uint32_t stamp, const int64_t[::1] exclude):
        cdef Py_ssize_t i, x
        for i in range(exclude.shape[0]):
            x = self.lookup(exclude[i])
            if x >= 0:
                scratch.stamp[x] = stamp

    def suggest(self, user, size_t limit, bint adamic_adar, const int64_t[::1] exclude):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return self._suggest(user, limit, adamic_adar, exclude)

    cdef object _suggest(self, user, size_t limit, bint adamic_adar, const int64_t[::1] exclude):
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
        scratch.stamp[u] = skip
        for i in range(followed.length):
            if followed.targets[i] < n:
                scratch.stamp[followed.targets[i]] = skip
        self._mark(scratch, skip, exclude)
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
        return self._ranked(scratch, limit)

    cdef inline size_t _degree(self, uint32_t u, bint out) noexcept nogil:
        cdef Row r
        self.row(u, out, &r)
        return r.length

    def random_walk_suggest(self, user, uint64_t walks, uint64_t walk_length, double restart_prob,
                            uint64_t seed, size_t limit, const int64_t[::1] exclude):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return self._random_walk_suggest(user, walks, walk_length, restart_prob, seed, limit, exclude)

    cdef object _random_walk_suggest(self, user, uint64_t walks, uint64_t walk_length, double restart_prob,
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
        scratch.stamp[u] = skip
        for i in range(start.length):
            if start.targets[i] < n:
                scratch.stamp[start.targets[i]] = skip
        self._mark(scratch, skip, exclude)
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
        return self._ranked(scratch, limit)

    # -- traversal -------------------------------------------------------------------------------------

    def bfs(self, user, uint64_t max_depth, max_nodes, bint out):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return self._bfs(user, max_depth, <size_t>-1 if max_nodes is None else <size_t>max_nodes, out)

    cdef object _bfs(self, user, uint64_t max_depth, size_t limit, bint out):
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

    # -- updates ---------------------------------------------------------------------------------------

    cdef uint32_t _index_or_insert(self, int64_t id) except? 0xFFFFFFFF:
        cdef Py_ssize_t x = self.lookup(id)
        if x >= 0:
            return <uint32_t>x
        if self.n() >= 0xFFFFFFFEu:
            raise ValueError("too many users for one graph")
        self.new_index[id] = <uint32_t>self.new_ids.size()
        self.new_ids.push_back(id)
        return <uint32_t>(self.n() - 1)

    cdef void _own(self, uint32_t u, bint out, vector[uint32_t]** row, vector[int64_t]** row_times):
        """Row `u` of the overlay, to change (`row`, `row_times`): copied there when first touched."""
        cdef unordered_map[uint32_t, vector[uint32_t]]* rows = &self.rows_out if out else &self.rows_in
        cdef unordered_map[uint32_t, vector[int64_t]]* times = &self.times_out if out else &self.times_in
        cdef Row r
        cdef vector[uint32_t] copy
        cdef vector[int64_t] copy_times
        if not rows.count(u):
            self.row(u, out, &r)
            copy.assign(r.targets, r.targets + r.length)
            if self.timed:
                copy_times.assign(r.times, r.times + r.length)
            dereference(rows)[u] = copy
            dereference(times)[u] = copy_times
            self.entries += r.length
        row[0] = &dereference(rows)[u]
        row_times[0] = &dereference(times)[u]

    cdef bint _insert(self, uint32_t u, uint32_t v, int64_t t, bint out):
        cdef Row r
        cdef size_t low = 0, high, middle
        cdef int64_t key = self.id(v)
        self.row(u, out, &r)
        high = r.length
        while low < high:  # the place of `v` by id
            middle = (low + high) >> 1
            if self.id(r.targets[middle]) < key:
                low = middle + 1
            else:
                high = middle
        if low < r.length and r.targets[low] == v:
            return False
        cdef vector[uint32_t]* row
        cdef vector[int64_t]* times
        self._own(u, out, &row, &times)
        row.insert(row.begin() + low, v)
        if self.timed:
            times.insert(times.begin() + low, t)
        self.entries += 1
        return True

    cdef bint _remove(self, uint32_t u, uint32_t v, bint out):
        cdef Row r
        self.row(u, out, &r)
        cdef Py_ssize_t at = self.position(&r, v)
        if at < 0:
            return False
        cdef vector[uint32_t]* row
        cdef vector[int64_t]* times
        self._own(u, out, &row, &times)
        row.erase(row.begin() + at)
        if self.timed:
            times.erase(times.begin() + at)
        return True

    def follow(self, const int64_t[::1] src, const int64_t[::1] dst, times):
        cdef IgHold hold
        hold_exclusive(&hold, self.lock)
        return self._follow(src, dst, times)

    cdef object _follow(self, const int64_t[::1] src, const int64_t[::1] dst, times):
        self._ready()
        cdef const int64_t[::1] time_view
        if times is not None:
            time_view = times
        cdef Py_ssize_t i
        cdef uint32_t a, b
        cdef size_t added = 0
        for i in range(src.shape[0]):
            a = self._index_or_insert(src[i])
            b = self._index_or_insert(dst[i])
            if a == b:
                continue
            if self._insert(a, b, time_view[i] if times is not None else 0, True):
                self._insert(b, a, time_view[i] if times is not None else 0, False)
                added += 1
        self._maybe_compact()
        return added

    def unfollow(self, const int64_t[::1] src, const int64_t[::1] dst):
        cdef IgHold hold
        hold_exclusive(&hold, self.lock)
        return self._unfollow(src, dst)

    cdef object _unfollow(self, const int64_t[::1] src, const int64_t[::1] dst):
        self._ready()
        cdef Py_ssize_t i, a, b
        cdef size_t removed = 0
        for i in range(src.shape[0]):
            a = self.lookup(src[i])
            b = self.lookup(dst[i])
            if a < 0 or b < 0:
                continue
            if self._remove(<uint32_t>a, <uint32_t>b, True):
                self._remove(<uint32_t>b, <uint32_t>a, False)
                removed += 1
        self._maybe_compact()
        return removed

    cdef _maybe_compact(self):
        # When the overlay holds as many neighbours as the base, fold it in: memory stays bounded.
        if self.entries > max(1 << 16, 2 * self.base.m[1]):
            self._compact()

    cdef bint _dirty(self):
        return self.new_ids.size() or not self.rows_out.empty() or not self.rows_in.empty()

    cdef Graph _compacted(self):
        self._ready()
        if not self._dirty():
            return self
        src, dst, times = self._edges()
        graph, _, _, _ = _build(src, dst, times, self._user_ids())
        return graph

    def compact(self):
        cdef IgHold hold
        hold_exclusive(&hold, self.lock)
        self._compact()

    cdef _compact(self):
        cdef Graph graph = self._compacted()
        if graph is self:
            return
        self._bind(graph.arrays, graph.timed)
        self.mapping = None
        self.layout = None
        self.verified = True
        self.rows_out.clear()
        self.rows_in.clear()
        self.times_out.clear()
        self.times_in.clear()
        self.new_ids.clear()
        self.new_index.clear()
        self.entries = 0

    # -- whole graph ---------------------------------------------------------------------------------

    def edges(self):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return self._edges()

    cdef object _edges(self):
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

    def components(self, bint strong):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return self._components(strong)

    cdef object _components(self, bint strong):
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

    def triangle_count(self):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return self._triangle_count()

    cdef object _triangle_count(self):
        cdef Graph graph = self._compacted()
        cdef uint64_t count
        with nogil:
            count = _triangles(&graph.base)
        return count

    def degree_histogram(self, bint out):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return self._degree_histogram(out)

    cdef object _degree_histogram(self, bint out):
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

    def save(self, path):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        graph = self._compacted()
        sections = graph.arrays[: 10 if graph.timed else 6]
        _graph_file.write_file(path, graph.base.n, graph.base.m[1], graph.timed, sections)


cdef inline size_t _base_row(const Base* base, bint out, size_t u, size_t* start) noexcept nogil:
    """The length of row `u` of the base (0 for a user new since the base), and where it starts. A
    row that lies outside its section (a mapped file changed under the graph) is empty: no read
    leaves the sections."""
    cdef uint64_t first, end
    start[0] = 0
    if u >= base.n:
        return 0
    first = ig_read_once(base.offsets[out] + u)
    end = ig_read_once(base.offsets[out] + u + 1)
    if first > end or end > base.m[out]:
        return 0
    start[0] = <size_t>first
    return <size_t>(end - first)


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


# -- analytics on a compact base --------------------------------------------------------------------------

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


# -- checking a file's structure ------------------------------------------------------------------------

cdef int _check_structure(const Base* base, size_t m_out, size_t m_in, bint timed) noexcept nogil:
    """0 when the arrays hold together; otherwise which check failed (1..7, as MESSAGES). Every value
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


MESSAGES = {
    1: "user ids are not strictly ascending",
    2: "the id table does not hold every user once",
    3: "the id table does not find every user",
    4: "list offsets are out of order or out of range",
    5: "a follow list is out of range, out of order or holds its own user",
    6: "a list's order by time is wrong",
    7: "followers do not mirror following",
}


cdef object _verify_structure(Graph graph):
    cdef size_t n = graph.base.n
    cdef size_t m_out = len(graph.arrays[3]), m_in = len(graph.arrays[5])
    cdef int failed
    if graph.base.num_slots != _graph_file.num_slots_for(n) or len(graph.arrays[2]) != n + 1 or len(graph.arrays[4]) != n + 1:
        return "corrupted: " + MESSAGES[4]
    with nogil:
        failed = _check_structure(&graph.base, m_out, m_in, graph.timed)
    return None if failed == 0 else "corrupted: " + MESSAGES[failed]


# -- building and loading ---------------------------------------------------------------------------------

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
        raise MemoryError("out of memory while building a graph")
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


def load(path, layout, bint mmap):
    """Maps (or reads) a graph file whose header `layout` describes (igcore.graph has checked it)."""
    with open(path, "rb") as file:
        if mmap:
            buffer = _mmap.mmap(file.fileno(), 0, access=_mmap.ACCESS_READ) if layout.file_size else b""
        else:
            buffer = file.read()
    if buffer[: _graph_file.HEADER_SIZE] != layout.header:
        raise ValueError(_graph_file.REPLACED)
    if len(buffer) < layout.file_size:
        raise ValueError("corrupted: a section lies outside the file")
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


cdef int _parse_field(const unsigned char* text, size_t start, size_t end, int64_t* value) noexcept nogil:
    """0, or 3 (not an integer) or 4 (outside int64), as the reference checks: digits first, then range."""
    cdef bint negative = text[start] == 45
    cdef size_t k
    cdef uint64_t magnitude = 0, digit
    cdef uint64_t limit = ((<uint64_t>1) << 63) if negative else INT64_MAX_U
    if text[start] == 45 or text[start] == 43:
        start += 1
    if start == end:
        return 3
    for k in range(start, end):
        if text[k] < 48 or text[k] > 57:
            return 3
    for k in range(start, end):
        digit = text[k] - 48
        if magnitude > (limit - digit) // 10:
            return 4
        magnitude = magnitude * 10 + digit
    value[0] = <int64_t>(0 - magnitude) if negative else <int64_t>magnitude
    return 0


def parse_edgelist(const unsigned char[::1] data):
    """See the reference's parse_edgelist."""
    cdef size_t length = data.shape[0], pos = 0, end, stop, k, line_number = 0
    cdef const unsigned char* text = &data[0] if length else <const unsigned char*>b""
    cdef int width = 0, fields = 0, column, error = 0, error_column = 0
    cdef size_t starts[3]
    cdef size_t ends[3]
    cdef int64_t values[3]
    cdef vector[int64_t] first, second, third
    with nogil:
        while pos <= length:
            line_number += 1
            end = pos
            while end < length and text[end] != 10:
                end += 1
            stop = end
            if stop > pos and text[stop - 1] == 13:
                stop -= 1
            # Fields: runs of anything but spaces and tabs.
            fields = 0
            k = pos
            while k < stop:
                while k < stop and (text[k] == 32 or text[k] == 9):
                    k += 1
                if k >= stop:
                    break
                if fields < 3:
                    starts[fields] = k
                while k < stop and text[k] != 32 and text[k] != 9:
                    k += 1
                if fields < 3:
                    ends[fields] = k
                fields += 1
            pos = end + 1
            if fields == 0 or text[starts[0]] == 35:  # blank, or a '#' comment
                continue
            if width == 0:
                if fields < 2 or fields > 3:
                    error = 1
                    break
                width = fields
            elif fields != width:
                error = 2
                break
            for column in range(width):
                error = _parse_field(text, starts[column], ends[column], &values[column])
                if error:
                    error_column = column + 1
                    break
            if error:
                break
            first.push_back(values[0])
            second.push_back(values[1])
            if width == 3:
                third.push_back(values[2])
    if error == 1:
        raise ValueError(f"line {line_number}: expected 2 or 3 columns, found {fields}")
    if error == 2:
        raise ValueError(f"line {line_number}: expected {width} columns, found {fields}")
    if error == 3:
        raise ValueError(f"line {line_number}: column {error_column} is not an integer")
    if error == 4:
        raise ValueError(f"line {line_number}: column {error_column} is outside the int64 range")
    return _array(&first), _array(&second), (_array(&third) if width == 3 else None)


cdef object _array(vector[int64_t]* values):
    if values.size() == 0:
        return np.empty(0, np.int64)
    return np.array(<int64_t[:values.size()]>values.data(), dtype=np.int64)
