# Aggregated activity: "alice, bob and 3 others liked your post", grouped by verb, target and time
# window, newest group first (rust/igcore-core/src/timeline/activity.rs). Included by _cy_timeline.pyx.

cdef struct Event:
    int64_t verb
    int64_t target
    int64_t window
    int64_t actor
    int64_t newest  # ~timestamp: ascending order puts an actor's latest event first


cdef struct Group:
    int64_t latest
    int64_t verb
    int64_t target
    int64_t window
    size_t events
    size_t first_actor  # index into the (time, actor) pairs of all groups
    size_t actors


cdef struct TimedActor:
    int64_t time
    int64_t actor


cdef inline int compare(int64_t a, int64_t b) noexcept nogil:
    return (a > b) - (a < b)


# qsort's comparisons: each compares one field, then the next while they are equal (`or` goes on
# while the comparisons before it gave 0).

cdef int compare_events(const void* a, const void* b) noexcept nogil:
    cdef const Event* x = <const Event*>a
    cdef const Event* y = <const Event*>b
    return (compare(x.verb, y.verb) or compare(x.target, y.target) or compare(x.window, y.window)
            or compare(x.actor, y.actor) or compare(x.newest, y.newest))


cdef int compare_groups(const void* a, const void* b) noexcept nogil:
    """Newest group first; then verb, then target, ascending."""
    cdef const Group* x = <const Group*>a
    cdef const Group* y = <const Group*>b
    return compare(y.latest, x.latest) or compare(x.verb, y.verb) or compare(x.target, y.target)


cdef int compare_recent(const void* a, const void* b) noexcept nogil:
    """Most recent first; on equal times the larger actor id."""
    cdef const TimedActor* x = <const TimedActor*>a
    cdef const TimedActor* y = <const TimedActor*>b
    return compare(y.time, x.time) or compare(y.actor, x.actor)


def aggregate_activity(const int64_t[::1] actor_ids, const int64_t[::1] verbs, const int64_t[::1] target_ids,
                       const int64_t[::1] timestamps, int64_t window_seconds, Py_ssize_t max_actors):
    cdef size_t n = actor_ids.shape[0], i, g = 0, pairs = 0, shown, total_shown = 0
    cdef Event* events = <Event*>malloc((n if n else 1) * sizeof(Event))
    cdef Group* groups = <Group*>malloc((n if n else 1) * sizeof(Group))
    cdef TimedActor* actors = <TimedActor*>malloc((n if n else 1) * sizeof(TimedActor))
    cdef Event e
    cdef int64_t latest
    if events == NULL or groups == NULL or actors == NULL:
        free(events)
        free(groups)
        free(actors)
        raise MemoryError(_messages.OUT_OF_MEMORY.format(doing="grouping activity"))
    try:
        with nogil:
            for i in range(n):
                events[i].verb = verbs[i]
                events[i].target = target_ids[i]
                events[i].window = floor_div(timestamps[i], window_seconds)
                events[i].actor = actor_ids[i]
                events[i].newest = ~timestamps[i]
            qsort(events, n, sizeof(Event), compare_events)
            i = 0
            while i < n:
                e = events[i]
                groups[g].verb = e.verb
                groups[g].target = e.target
                groups[g].window = e.window
                groups[g].latest = ~e.newest
                groups[g].events = 0
                groups[g].first_actor = pairs
                groups[g].actors = 0
                while i < n and events[i].verb == e.verb and events[i].target == e.target and events[i].window == e.window:
                    latest = ~events[i].newest
                    # Sorted by actor, then newest first: an actor's first event is its latest.
                    if groups[g].actors == 0 or actors[pairs - 1].actor != events[i].actor:
                        actors[pairs].time = latest
                        actors[pairs].actor = events[i].actor
                        pairs += 1
                        groups[g].actors += 1
                    if latest > groups[g].latest:
                        groups[g].latest = latest
                    groups[g].events += 1
                    i += 1
                shown = groups[g].actors if groups[g].actors < <size_t>max_actors else <size_t>max_actors
                if shown:
                    qsort(&actors[groups[g].first_actor], groups[g].actors, sizeof(TimedActor), compare_recent)
                total_shown += shown
                g += 1
            qsort(groups, g, sizeof(Group), compare_groups)
        columns = [np.empty(g, dtype=np.int64) for _ in range(6)]
        recent = np.empty(total_shown, dtype=np.int64)
        offsets = np.empty(g + 1, dtype=np.int64)
        fill_activity(groups, g, actors, <size_t>max_actors, columns, recent, offsets)
        return (*columns, recent, offsets)
    finally:
        free(events)
        free(groups)
        free(actors)


cdef void fill_activity(const Group* groups, size_t g, const TimedActor* actors, size_t max_actors,
                        list columns, int64_t[::1] recent, int64_t[::1] offsets):
    cdef int64_t[::1] verbs = columns[0]
    cdef int64_t[::1] targets = columns[1]
    cdef int64_t[::1] windows = columns[2]
    cdef int64_t[::1] latest = columns[3]
    cdef int64_t[::1] events = columns[4]
    cdef int64_t[::1] actor_counts = columns[5]
    cdef size_t i, j, shown, at = 0
    offsets[0] = 0
    for i in range(g):
        verbs[i] = groups[i].verb
        targets[i] = groups[i].target
        windows[i] = groups[i].window
        latest[i] = groups[i].latest
        events[i] = <int64_t>groups[i].events
        actor_counts[i] = <int64_t>groups[i].actors
        shown = groups[i].actors if groups[i].actors < max_actors else max_actors
        for j in range(shown):
            recent[at] = actors[groups[i].first_actor + j].actor
            at += 1
        offsets[i + 1] = <int64_t>at
