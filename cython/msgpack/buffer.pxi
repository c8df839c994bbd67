# The output buffer: a growing C buffer that packing appends to
# (rust/igcore-py/src/msgpack/buffer.rs borrows the bytes given to unpack; here that is a typed view). Included by _cy_msgpack.pyx.

cdef struct Output:
    char* data
    Py_ssize_t len
    Py_ssize_t cap


cdef int out_grow(Output* out, Py_ssize_t n) except -1:
    cdef Py_ssize_t wanted = out.len + n
    if wanted < 2 * out.cap:
        wanted = 2 * out.cap
    if wanted < 1024:
        wanted = 1024
    cdef char* grown = <char*>realloc(out.data, wanted)
    if grown == NULL:
        raise MemoryError("cannot grow the msgpack output buffer")
    out.data = grown
    out.cap = wanted
    return 0


cdef inline int out_write(Output* out, const void* src, Py_ssize_t n) except -1:
    if out.cap - out.len < n:
        out_grow(out, n)
    memcpy(out.data + out.len, src, n)
    out.len += n
    return 0


cdef inline int out_byte(Output* out, uint8_t byte) except -1:
    if out.cap - out.len < 1:
        out_grow(out, 1)
    out.data[out.len] = <char>byte
    out.len += 1
    return 0


cdef inline int out_be(Output* out, uint8_t marker, uint64_t value, int size) except -1:
    """The marker, then the low `size` bytes of `value`, big-endian."""
    cdef int i
    if out.cap - out.len < 9:
        out_grow(out, 9)
    out.data[out.len] = <char>marker
    for i in range(size):
        out.data[out.len + 1 + i] = <char>((value >> (8 * (size - 1 - i))) & 0xFF)
    out.len += 1 + size
    return 0


cdef inline int out_raw_be(Output* out, uint64_t value, int size) except -1:
    """The low `size` bytes of `value`, big-endian."""
    cdef int i
    if out.cap - out.len < 8:
        out_grow(out, 8)
    for i in range(size):
        out.data[out.len + i] = <char>((value >> (8 * (size - 1 - i))) & 0xFF)
    out.len += size
    return 0


cdef void* grown_stack(void* items, Py_ssize_t* capacity, size_t item_size, Py_ssize_t first,
                       str owner) except NULL:
    """An explicit stack of `item_size` items (a packer's or a reader's) made twice as large, or
    `first` items large when it has none; *capacity is updated. MemoryError when memory runs out."""
    cdef Py_ssize_t wanted = first if capacity[0] == 0 else 2 * capacity[0]
    cdef void* grown = realloc(items, wanted * item_size)
    if grown == NULL:
        raise MemoryError(f"cannot grow the msgpack {owner}'s stack")
    capacity[0] = wanted
    return grown
