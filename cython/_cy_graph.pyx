# distutils: language = c++
# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The follower graph in Cython. The contract is in igcore/_reference/graph.py, the layout (which is the
file format) in igcore/_graph_file.py; the design is the one of rust/igcore-core/src/graph/: users in
ascending id order as dense uint32 indices, each direction as compressed sparse rows, one id table, and
updates in an overlay of rewritten rows until compact() folds them in.

The parts follow the Rust core's modules: this file holds what rust/igcore-core/src/graph/mod.rs does
(the graph, its rows and ids, updates and compaction, and a thin public method for each call, which
takes the lock and hands the work to a part); graph/queries.pxi, analytics.pxi, file.pxi, build.pxi and
edgelist.pxi hold the rest. The functions of the parts take the graph as `self`, as methods would."""

from cpython.pyport cimport PY_SSIZE_T_MAX
from cython.operator cimport dereference
cimport cython
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
from igcore import _graph_file, _messages

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


@cython.final  # no subclasses: its cdef methods are direct calls, inlined in the loops
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

    # -- queries (graph/queries.pxi) ----------------------------------------------------------------------

    def neighbours(self, user, bint out, since, until, Py_ssize_t offset, limit):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return _neighbours(self, user, out, since, until, offset,
                           PY_SSIZE_T_MAX if limit is None else <Py_ssize_t>limit)

    def degree(self, user, bint out):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        self._ready()
        return self._degree(self.index(user), out)

    def counts(self, const int64_t[::1] users, bint out):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return _counts(self, users, out)

    def is_following(self, const int64_t[::1] a, const int64_t[::1] b):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return _is_following(self, a, b)

    def mutual_follows(self, user):
        cdef size_t total
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return _in_both(self, user, True, user, False, <size_t>-1, &total)

    def common(self, a, b, bint out):
        cdef size_t total
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return _in_both(self, a, out, b, out, <size_t>-1, &total)

    def followed_by(self, viewer, target, size_t limit):
        cdef size_t total
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        ids = _in_both(self, viewer, True, target, False, limit, &total)
        return ids, total

    # -- suggestions -----------------------------------------------------------------------------------

    def suggest(self, user, size_t limit, bint adamic_adar, const int64_t[::1] exclude):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return _suggest(self, user, limit, adamic_adar, exclude)

    cdef inline size_t _degree(self, uint32_t u, bint out) noexcept nogil:
        cdef Row r
        self.row(u, out, &r)
        return r.length

    def random_walk_suggest(self, user, uint64_t walks, uint64_t walk_length, double restart_prob,
                            uint64_t seed, size_t limit, const int64_t[::1] exclude):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return _random_walk_suggest(self, user, walks, walk_length, restart_prob, seed, limit, exclude)

    # -- traversal -------------------------------------------------------------------------------------

    def bfs(self, user, uint64_t max_depth, max_nodes, bint out):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return _bfs(self, user, max_depth, <size_t>-1 if max_nodes is None else <size_t>max_nodes, out)

    # -- updates ---------------------------------------------------------------------------------------

    cdef uint32_t _index_or_insert(self, int64_t id) except? 0xFFFFFFFF:
        cdef Py_ssize_t x = self.lookup(id)
        if x >= 0:
            return <uint32_t>x
        if self.n() >= 0xFFFFFFFEu:
            raise ValueError(_messages.TOO_MANY_USERS)
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
        src, dst, times = _edges(self)
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

    # -- whole graph (graph/analytics.pxi, graph/file.pxi) ----------------------------------------------

    def edges(self):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return _edges(self)

    def components(self, bint strong):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return _components(self, strong)

    def triangle_count(self):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return _triangle_count(self)

    def degree_histogram(self, bint out):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        return _degree_histogram(self, out)

    def save(self, path):
        cdef IgHold hold
        hold_shared(&hold, self.lock)
        _save(self, path)


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


include "graph/queries.pxi"
include "graph/analytics.pxi"
include "graph/file.pxi"
include "graph/build.pxi"
include "graph/edgelist.pxi"


# The kernels, as src/igcore/_kernels/graph.pyi states them.
__all__ = ["Graph", "build", "load", "parse_edgelist"]
