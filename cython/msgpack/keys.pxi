# A cache of short map keys: feeds repeat the same few dozen keys in every object, and building a str
# costs more than finding it (rust/igcore-py/src/msgpack/keys.rs). Included by _cy_msgpack.pyx.

cdef enum:
    KEY_SLOTS = 1024  # a power of two
    MAX_CACHED_KEY = 32

cdef struct KeySlot:
    Py_ssize_t len
    char bytes[MAX_CACHED_KEY]
    PyObject* key   # borrowed: _key_objects holds the reference

cdef KeySlot _keys[KEY_SLOTS]
cdef list _key_objects = [None] * KEY_SLOTS


cdef inline Py_ssize_t key_slot(const char* p, Py_ssize_t n) noexcept nogil:
    # FNV-1a over the key's bytes: keys are short, so a byte loop costs little.
    cdef uint64_t h = 14695981039346656037ULL
    cdef Py_ssize_t i
    for i in range(n):
        h = (h ^ <uint8_t>p[i]) * 1099511628211ULL
    return <Py_ssize_t>((h ^ (h >> 32)) & (KEY_SLOTS - 1))


cdef object cached_key(const char* p, Py_ssize_t n):
    """The str for a short map key, from the cache; None when the bytes are not valid UTF-8 (the
    caller then decodes them with its error handler). Cache operations run no Python code, so the
    GIL keeps each one whole."""
    cdef Py_ssize_t index = key_slot(p, n)
    cdef KeySlot* slot = &_keys[index]
    if slot.key != NULL and slot.len == n and memcmp(slot.bytes, p, n) == 0:
        return <object>slot.key
    try:
        key = PyUnicode_DecodeUTF8(p, n, NULL)
    except UnicodeDecodeError:
        return None
    _key_objects[index] = key
    slot.key = <PyObject*>key
    slot.len = n
    memcpy(slot.bytes, p, n)
    return key
