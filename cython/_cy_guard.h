/* The read-write lock of igcore's Cython follower graph, and its holds; see _cy_guard.pxd for the
 * policy. C++ only (the graph is the one C++ module): in C this header declares nothing, and no C
 * module uses what _cy_guard.pxd declares from it. */
#ifndef IGCORE_CY_GUARD_H
#define IGCORE_CY_GUARD_H

#ifdef __cplusplus
#include <condition_variable>
#include <mutex>
#include <new>

/* Queries share it, updates hold it alone. It prefers writers: once an update waits, new queries wait
 * behind it, so a stream of queries cannot keep updates out. Its mutex is only ever held for a few
 * instructions, never while waiting for the GIL. */
struct IgRwLock {
    std::mutex mutex;
    std::condition_variable changed;
    size_t readers = 0, writers_waiting = 0;
    bool writing = false;
    bool try_read() {
        std::lock_guard<std::mutex> hold(mutex);
        if (writing || writers_waiting) return false;
        readers++;
        return true;
    }
    void read() {
        std::unique_lock<std::mutex> hold(mutex);
        changed.wait(hold, [&] { return !writing && !writers_waiting; });
        readers++;
    }
    void read_done() {
        std::lock_guard<std::mutex> hold(mutex);
        if (--readers == 0) changed.notify_all();
    }
    void write() {
        std::unique_lock<std::mutex> hold(mutex);
        writers_waiting++;
        changed.wait(hold, [&] { return !writing && readers == 0; });
        writers_waiting--;
        writing = true;
    }
    void write_done() {
        std::lock_guard<std::mutex> hold(mutex);
        writing = false;
        changed.notify_all();
    }
};

/* A new lock; NULL with MemoryError set when memory runs out. */
static inline IgRwLock* ig_rwlock_new(void) {
    IgRwLock* lock = new (std::nothrow) IgRwLock();
    if (lock == NULL) PyErr_SetString(PyExc_MemoryError, "cannot allocate a lock");
    return lock;
}

static inline void ig_rwlock_free(IgRwLock* lock) { delete lock; }

/* A share of a lock, or the whole of it, held by the Cython function that declares the hold for as
 * long as that function runs: the hold is a C++ object on its stack, whose destructor lets go of the
 * lock when the function returns, whichever way (a Cython function returns normally, with an
 * exception set, when it raises). Taken with the GIL held. */
struct IgHold {
    IgRwLock* lock = nullptr;
    bool exclusive = false;
    IgHold() = default;
    IgHold(const IgHold&) = delete;
    IgHold& operator=(const IgHold&) = delete;
    ~IgHold() {
        if (lock == nullptr) return;
        if (exclusive) lock->write_done();
        else lock->read_done();
    }
};

/* Shares the lock: at once, with the GIL, when no update holds or waits for it; otherwise it waits
 * without the GIL, which the writer may need to finish. */
static inline void ig_hold_shared(IgHold* hold, IgRwLock* lock) {
    if (!lock->try_read()) {
        Py_BEGIN_ALLOW_THREADS
        lock->read();
        Py_END_ALLOW_THREADS
    }
    hold->lock = lock;
    hold->exclusive = false;
}

/* Holds the lock alone, waiting for it without the GIL (readers may need the GIL to finish). */
static inline void ig_hold_exclusive(IgHold* hold, IgRwLock* lock) {
    Py_BEGIN_ALLOW_THREADS
    lock->write();
    Py_END_ALLOW_THREADS
    hold->lock = lock;
    hold->exclusive = true;
}
#endif /* __cplusplus */

#endif /* IGCORE_CY_GUARD_H */
