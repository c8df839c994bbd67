# Fan-out on write: many timelines keyed by user id, in C memory
# (rust/igcore-core/src/timeline/store.rs). Included by _cy_timeline.pyx.

@cython.final  # no subclasses: its cdef methods are direct calls, inlined in the loops
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
            raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="making a store"))

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

    # Where the work under the lock is C that cannot raise, the lock is taken and let go around it
    # without a try.

    def contains(self, int64_t user_id):
        cdef bint found
        lock_acquire(self.lock)
        found = self.slot_of(user_id) >= 0
        lock_release(self.lock)
        return found

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
        cdef int copied = 0
        lock_acquire(self.lock)
        slot = self.slot_of(user_id)
        if slot >= 0:
            copied = 1 if tl_copy(&copy.data, &self.timelines[slot]) == 0 else -1
        lock_release(self.lock)
        if copied < 0:
            raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="copying a timeline"))
        return copy if copied else None

    def put(self, int64_t user_id, Timeline timeline):
        cdef TimelineData copy
        cdef Py_ssize_t slot
        if tl_copy(&copy, &timeline.data) < 0:
            raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="storing a timeline"))
        lock_acquire(self.lock)
        try:
            slot = self.timeline_of(user_id)
            if slot < 0:
                tl_free(&copy)
                raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="storing a timeline"))
            tl_free(&self.timelines[slot])
            self.timelines[slot] = copy
        finally:
            lock_release(self.lock)

    def discard(self, int64_t user_id):
        cdef Py_ssize_t slot
        lock_acquire(self.lock)
        slot = self.slot_of(user_id)
        if slot >= 0:
            tl_free(&self.timelines[slot])
            self.present[slot] = False
            self.live -= 1
        lock_release(self.lock)
        return slot >= 0

    def merge_page(self, const int64_t[::1] user_ids, limit, after, exclude_authors, per_author_cap):
        cdef Py_ssize_t n = user_ids.shape[0], i, slot
        cdef size_t k = 0
        cdef Run* runs
        cdef Request request
        cdef PageData page
        fill_request(&request, limit, after, self.float_scores, exclude_authors, per_author_cap)
        runs = <Run*>malloc((n if n else 1) * sizeof(Run))
        if runs == NULL:
            raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="merging"))
        page_init(&page)
        try:
            lock_acquire(self.lock)
            try:
                for i in range(n):
                    if <size_t>i + PREFETCH_AHEAD < <size_t>n:
                        prefetch_user(&self.user_slots, user_ids[i + PREFETCH_AHEAD])
                    slot = self.slot_of(user_ids[i])
                    if slot >= 0:
                        runs[k] = timeline_run(&self.timelines[slot])
                        k += 1
                merge_into_page(runs, k, &request, &page, <size_t>n >= NOGIL_TIMELINE_USERS)
            finally:
                lock_release(self.lock)
            return page_arrays(&page, self.float_scores)
        finally:
            free(runs)
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
            raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="fanning out"))
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
                raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="merging a timeline"))
            run = timeline_run(&copy)
        else:
            columns = accept_columns(source)
            if columns is None or columns.float_scores != self.float_scores:
                raise TypeError(_messages.BACKFILL_SOURCE)
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
            raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="merging a timeline"))

    def remove_author(self, int64_t user_id, int64_t author_id):
        cdef Py_ssize_t slot
        cdef size_t removed = 0
        lock_acquire(self.lock)
        slot = self.slot_of(user_id)
        if slot >= 0:
            removed = tl_remove_author(&self.timelines[slot], author_id)
        lock_release(self.lock)
        return removed


cdef inline void prefetch_user(const IdIndex* users, int64_t user_id) noexcept nogil:
    """Asks for the index slot where a lookup of `user_id` starts, ahead of the lookup."""
    prefetch(&users.slots[<size_t>(id_hash(user_id) >> users.shift)])
