# A map from sparse 64-bit ids to dense indices 0, 1, 2, ... in order of first insertion, in C, and the
# id hashing shared by igcore's open-addressing tables. The same design as
# rust/igcore-core/src/id_index.rs: open addressing, linear probing, at most half full.
# Everything is nogil; an allocation failure returns -1 and the caller raises MemoryError.

from libc.stdint cimport int64_t, uint64_t, uint32_t
from libc.stdlib cimport malloc, realloc, free

cdef extern from *:
    """
    #define IGCORE_ID_EMPTY 0xFFFFFFFFu
    #define IGCORE_MAX_IDS 0xFFFFFFFEu
    """
    const uint32_t ID_EMPTY "IGCORE_ID_EMPTY"
    const uint32_t MAX_IDS "IGCORE_MAX_IDS"     # the most distinct ids one index holds (indices are uint32)

cdef extern from *:
    """
    #if defined(__GNUC__) || defined(__clang__)
    #define IGCORE_PREFETCH(address) __builtin_prefetch((address))
    #else
    #define IGCORE_PREFETCH(address) ((void)0)
    #endif
    """
    # Asks for a cache line ahead of its use: overlaps the misses of lookups in tables beyond the cache.
    void prefetch "IGCORE_PREFETCH"(const void* address) noexcept nogil

cdef struct IdSlot:
    int64_t id
    uint32_t index

cdef struct IdIndex:
    IdSlot* slots
    size_t num_slots
    int shift
    int64_t* ids          # ids[i] is the id whose index is i
    size_t length
    size_t ids_capacity


cdef inline uint64_t id_hash(int64_t id) noexcept nogil:
    # Fold the high half into the low half, then Fibonacci hashing: use the top bits.
    cdef uint64_t x = <uint64_t>id
    return (x ^ (x >> 32)) * <uint64_t>0x9E3779B97F4A7C15ULL


cdef inline int hash_shift(size_t num_slots) noexcept nogil:
    """64 - log2(num_slots), for a power of two: `id_hash(id) >> shift` is a slot number."""
    cdef int shift = 64
    while num_slots > 1:
        num_slots >>= 1
        shift -= 1
    return shift


cdef inline int _id_index_alloc_slots(IdIndex* ix, size_t num_slots) noexcept nogil:
    cdef size_t i
    cdef IdSlot* slots = <IdSlot*>malloc(num_slots * sizeof(IdSlot))
    if slots == NULL:
        return -1
    for i in range(num_slots):
        slots[i].index = ID_EMPTY
    ix.slots = slots
    ix.num_slots = num_slots
    ix.shift = hash_shift(num_slots)
    return 0


cdef inline int id_index_init(IdIndex* ix, size_t expected) noexcept nogil:
    """Prepares an empty index sized for about `expected` ids; -1 when memory runs out."""
    cdef size_t num_slots = 16
    while num_slots < 2 * expected:
        num_slots <<= 1
    ix.ids = NULL
    ix.length = 0
    ix.ids_capacity = expected if expected > 16 else 16
    ix.slots = NULL
    if _id_index_alloc_slots(ix, num_slots) < 0:
        return -1
    ix.ids = <int64_t*>malloc(ix.ids_capacity * sizeof(int64_t))
    if ix.ids == NULL:
        return -1
    return 0


cdef inline void id_index_free(IdIndex* ix) noexcept nogil:
    free(ix.slots)
    free(ix.ids)
    ix.slots = NULL
    ix.ids = NULL
    ix.length = 0


cdef inline int _id_index_grow(IdIndex* ix) noexcept nogil:
    cdef IdSlot* old = ix.slots
    cdef size_t mask, pos, i
    if _id_index_alloc_slots(ix, ix.num_slots * 2) < 0:
        ix.slots = old
        return -1
    free(old)
    mask = ix.num_slots - 1
    for i in range(ix.length):
        pos = <size_t>(id_hash(ix.ids[i]) >> ix.shift)
        while ix.slots[pos].index != ID_EMPTY:
            pos = (pos + 1) & mask
        ix.slots[pos].id = ix.ids[i]
        ix.slots[pos].index = <uint32_t>i
    return 0


cdef inline Py_ssize_t id_index_get(const IdIndex* ix, int64_t id) noexcept nogil:
    """The index of `id`, or -1 when it was never inserted."""
    cdef size_t mask = ix.num_slots - 1
    cdef size_t pos = <size_t>(id_hash(id) >> ix.shift)
    while ix.slots[pos].index != ID_EMPTY:
        if ix.slots[pos].id == id:
            return ix.slots[pos].index
        pos = (pos + 1) & mask
    return -1


cdef inline Py_ssize_t id_index_insert(IdIndex* ix, int64_t id, bint* inserted) noexcept nogil:
    """The index of `id`, inserting it when new (then *inserted is set); -1 on memory or size failure."""
    cdef size_t mask = ix.num_slots - 1
    cdef size_t pos = <size_t>(id_hash(id) >> ix.shift)
    cdef int64_t* ids
    cdef size_t index
    while ix.slots[pos].index != ID_EMPTY:
        if ix.slots[pos].id == id:
            inserted[0] = False
            return ix.slots[pos].index
        pos = (pos + 1) & mask
    index = ix.length
    if index >= <size_t>MAX_IDS:
        return -1
    if index == ix.ids_capacity:
        ids = <int64_t*>realloc(ix.ids, 2 * ix.ids_capacity * sizeof(int64_t))
        if ids == NULL:
            return -1
        ix.ids = ids
        ix.ids_capacity *= 2
    ix.slots[pos].id = id
    ix.slots[pos].index = <uint32_t>index
    ix.ids[index] = id
    ix.length += 1
    inserted[0] = True
    if ix.length * 2 > ix.num_slots:
        if _id_index_grow(ix) < 0:
            return -1
    return <Py_ssize_t>index
