# How igcore's stateful Cython classes guard their state, in one place, and the sizes from which long
# work runs without the GIL.
#
# - An object's state is behind a lock: a PyThread lock (TimelineStore, CounterTable, WindowedCounter,
#   HyperLogLog), or a read-write lock (the follower graph: queries share it, updates hold it alone).
# - No thread waits for such a lock while it holds the GIL: it takes the lock at once if it is free,
#   and otherwise waits with the GIL released (the holder may be waiting for the GIL itself). So a
#   holder may take the GIL back, and the GIL and a lock can never deadlock. Code that already runs
#   without the GIL simply waits.
# - A lock that cannot be allocated raises MemoryError.
# - msgpack's Packer and Unpacker run Python code in the middle of a call (`default`, hooks,
#   file_like.read()), which may call them again: they take no lock but serve one call at a time. A call
#   made while another is in progress on the same object raises RuntimeError; the flag is checked and
#   set with the GIL held and no Python code in between, so the GIL keeps that whole.
# - A Timeline is only touched with the GIL held, and needs no lock of its own.

from cpython.pythread cimport (
    NOWAIT_LOCK,
    WAIT_LOCK,
    PyThread_acquire_lock,
    PyThread_allocate_lock,
    PyThread_free_lock,
    PyThread_release_lock,
    PyThread_type_lock,
)


# -- the sizes from which long work runs without the GIL ----------------------------------------------
# Below them, handing the GIL over costs more than the work. Named `<hot path>_<what is counted>`, with
# the names and values of the Rust binding (igcore._rust._GIL_RELEASE_ABOVE); a size at or above one
# runs without the GIL.

cdef enum:
    NOGIL_TIMELINE_ENTRIES = 1 << 15    # entries of the array sources that a merge checks and reads
    NOGIL_TIMELINE_USERS = 1 << 15      # users whose stored timelines a store's merge_page reads
    NOGIL_TIMELINE_FOLLOWERS = 1 << 15  # followers a fan-out inserts into
    NOGIL_CODEC_IDS = 1 << 16           # ids encoded into, or decoded from, an id list


cdef inline dict gil_release_above():
    """The sizes above, by name: each module that uses one exposes them as `_GIL_RELEASE_ABOVE`."""
    return {
        "timeline_entries": NOGIL_TIMELINE_ENTRIES,
        "timeline_users": NOGIL_TIMELINE_USERS,
        "timeline_followers": NOGIL_TIMELINE_FOLLOWERS,
        "codec_ids": NOGIL_CODEC_IDS,
    }


# -- PyThread locks ----------------------------------------------------------------------------------

cdef inline PyThread_type_lock lock_new() except NULL:
    cdef PyThread_type_lock lock = PyThread_allocate_lock()
    if lock == NULL:
        raise MemoryError("cannot allocate a lock")
    return lock


cdef inline void lock_free(PyThread_type_lock lock) noexcept:
    """For __dealloc__: the lock may never have been allocated."""
    if lock != NULL:
        PyThread_free_lock(lock)


cdef inline void lock_acquire(PyThread_type_lock lock) noexcept:
    """Takes the lock, with the GIL held: at once if it is free, else waiting without the GIL."""
    if not PyThread_acquire_lock(lock, NOWAIT_LOCK):
        with nogil:
            PyThread_acquire_lock(lock, WAIT_LOCK)


cdef inline void lock_acquire_nogil(PyThread_type_lock lock) noexcept nogil:
    """Takes the lock in code that runs without the GIL."""
    PyThread_acquire_lock(lock, WAIT_LOCK)


cdef inline void lock_release(PyThread_type_lock lock) noexcept nogil:
    PyThread_release_lock(lock)


# -- the follower graph's read-write lock (C++: see _cy_guard.h) ---------------------------------------

cdef extern from "_cy_guard.h":
    ctypedef struct IgRwLock:
        pass
    # A stack object of the function that declares it: it lets go of the lock when the function returns.
    ctypedef struct IgHold:
        pass
    IgRwLock* rwlock_new "ig_rwlock_new"() except NULL
    void rwlock_free "ig_rwlock_free"(IgRwLock* lock) noexcept
    # Take a share of `lock` (queries), or the whole of it (updates), into `hold`, with the GIL held;
    # each waits without the GIL when it must wait.
    void hold_shared "ig_hold_shared"(IgHold* hold, IgRwLock* lock) noexcept
    void hold_exclusive "ig_hold_exclusive"(IgHold* hold, IgRwLock* lock) noexcept


# -- one call at a time (msgpack's Packer and Unpacker) --------------------------------------------------

cdef inline int call_enter(bint* busy, str owner) except -1:
    """Marks a call on `owner` in progress; RuntimeError when one already is."""
    if busy[0]:
        from igcore import _messages  # here: the modules that cimport this file need not import it
        raise RuntimeError(_messages.CALL_IN_PROGRESS.format(name=owner))
    busy[0] = True
    return 0


cdef inline void call_leave(bint* busy) noexcept:
    busy[0] = False
