# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The msgpack codec in Cython. The contract is in igcore/_reference/msgpack.py; the design is the one
of the Rust backend (rust/igcore-core/src/msgpack.rs for the wire format, rust/igcore-py/src/msgpack/
for the objects): exact types first by their type pointer, a growing C buffer, one pass over the bytes
building lists and dicts at their final size, a cache of short map keys, and a resumable scanner that
finds where a streamed object ends before it is built."""

from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_CheckExact, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.dict cimport PyDict_Next, PyDict_SetItem
from cpython.float cimport PyFloat_AS_DOUBLE, PyFloat_FromDouble
from cpython.list cimport PyList_GET_ITEM, PyList_GET_SIZE, PyList_New, PyList_SET_ITEM
from cpython.long cimport PyLong_FromLongLong, PyLong_FromUnsignedLongLong
from cpython.object cimport PyObject
from cpython.ref cimport Py_DECREF, Py_INCREF, Py_XDECREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_New, PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_AsEncodedString, PyUnicode_DecodeUTF8
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.math cimport isinf
from libc.stdlib cimport free, realloc
from libc.string cimport memcmp, memcpy, memmove

cimport cython

from _cy_guard cimport call_enter, call_leave

import datetime as _datetime

from igcore.msgpack.exceptions import BufferFull, ExtraData, FormatError, OutOfData, StackError
from igcore.msgpack.ext import ExtType, Timestamp

cdef extern from "Python.h":
    const char* PyUnicode_AsUTF8AndSize(object s, Py_ssize_t* size) except NULL
    long long PyLong_AsLongLongAndOverflow(object o, int* overflow) except? -1
    unsigned long long PyLong_AsUnsignedLongLong(object o) except? -1
    bint PyLong_CheckExact(object o)
    bint PyLong_Check(object o)
    bint PyFloat_CheckExact(object o)
    bint PyFloat_Check(object o)
    bint PyUnicode_CheckExact(object o)
    bint PyUnicode_Check(object o)
    bint PyDict_CheckExact(object o)
    bint PyDict_Check(object o)
    bint PyList_CheckExact(object o)
    bint PyList_Check(object o)
    bint PyTuple_CheckExact(object o)
    bint PyTuple_Check(object o)
    bint PyBytes_Check(object o)
    bint PyByteArray_Check(object o)
    bint PyByteArray_CheckExact(object o)
    bint PyMemoryView_Check(object o)
    char* PyByteArray_AS_STRING(object o)
    Py_ssize_t PyByteArray_GET_SIZE(object o)
    Py_ssize_t PyDict_Size(object o) except -1
    Py_ssize_t Py_SIZE(object o)

cdef extern from *:
    """
    #if PY_VERSION_HEX < 0x030D0000
    #define IGCORE_NEW_DICT(n) _PyDict_NewPresized(n)
    #else
    #define IGCORE_NEW_DICT(n) PyDict_New()
    #endif
    #define IGCORE_TYPE_NAME(o) (Py_TYPE(o)->tp_name)
    /* Moves `n` owned references from `items` into the empty slots of a new list or tuple. */
    static inline void igcore_fill(PyObject* seq, int is_list, PyObject** items, Py_ssize_t n) {
        PyObject** slots = is_list ? ((PyListObject*)seq)->ob_item : ((PyTupleObject*)seq)->ob_item;
        if (n) memcpy(slots, items, (size_t)n * sizeof(PyObject*));
    }
    """
    object new_dict "IGCORE_NEW_DICT"(Py_ssize_t size)
    const char* type_name_of "IGCORE_TYPE_NAME"(object o)
    void igcore_fill(object seq, int is_list, PyObject** items, Py_ssize_t n)
    # The same checks on a borrowed pointer (no reference taken for the call).
    bint ptr_is_str "PyUnicode_CheckExact"(PyObject* o)
    bint ptr_is_int "PyLong_CheckExact"(PyObject* o)
    bint ptr_is_float "PyFloat_CheckExact"(PyObject* o)
    long long ptr_as_long_long "PyLong_AsLongLongAndOverflow"(PyObject* o, int* overflow)
    double ptr_as_double "PyFloat_AS_DOUBLE"(PyObject* o)
    const char* ptr_utf8 "PyUnicode_AsUTF8AndSize"(PyObject* s, Py_ssize_t* size) except NULL
    Py_ssize_t ptr_list_size "PyList_GET_SIZE"(PyObject* o)
    PyObject* ptr_list_item "PyList_GET_ITEM"(PyObject* o, Py_ssize_t i)
    PyObject* ptr_tuple_item "PyTuple_GET_ITEM"(PyObject* o, Py_ssize_t i)
    Py_ssize_t ptr_dict_size "PyDict_GET_SIZE"(PyObject* o)
    int ptr_dict_next "PyDict_Next"(PyObject* d, Py_ssize_t* pos, PyObject** key, PyObject** value)
    PyObject* Py_None
    PyObject* Py_True
    PyObject* Py_False


cdef int NEST_LIMIT = 1024
cdef Py_ssize_t MAX_OPEN_CONTAINERS = 1024
cdef Py_ssize_t ITEM_LIMIT = 0xFFFFFFFF
cdef object _EPOCH = _datetime.datetime(1970, 1, 1, tzinfo=_datetime.timezone.utc)
cdef object _DATETIME = _datetime.datetime
cdef object _TIMEDELTA = _datetime.timedelta


cdef str type_name(object o):
    return (<bytes>type_name_of(o)).decode("utf-8", "replace")[:200]


# -- the output buffer -------------------------------------------------------------------------------------

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


cdef inline int write_int(Output* out, long long value) except -1:
    if value >= 0:
        return write_uint(out, <unsigned long long>value)
    if value >= -32:
        return out_byte(out, <uint8_t>(value & 0xFF))
    if value >= -0x80:
        return out_be(out, 0xD0, <uint64_t>value, 1)
    if value >= -0x8000:
        return out_be(out, 0xD1, <uint64_t>value, 2)
    if value >= -0x80000000:
        return out_be(out, 0xD2, <uint64_t>value, 4)
    return out_be(out, 0xD3, <uint64_t>value, 8)


cdef inline int write_uint(Output* out, unsigned long long value) except -1:
    if value < 0x80:
        return out_byte(out, <uint8_t>value)
    if value <= 0xFF:
        return out_be(out, 0xCC, value, 1)
    if value <= 0xFFFF:
        return out_be(out, 0xCD, value, 2)
    if value <= 0xFFFFFFFF:
        return out_be(out, 0xCE, value, 4)
    return out_be(out, 0xCF, value, 8)


cdef inline int write_str_header(Output* out, Py_ssize_t n, bint use_bin_type) except -1:
    if n < 32:
        return out_byte(out, <uint8_t>(0xA0 | n))
    if use_bin_type and n <= 0xFF:  # str8 came with bin in the 2013 spec
        return out_be(out, 0xD9, n, 1)
    if n <= 0xFFFF:
        return out_be(out, 0xDA, n, 2)
    return out_be(out, 0xDB, n, 4)


cdef inline int write_bin_header(Output* out, Py_ssize_t n, bint use_bin_type) except -1:
    if not use_bin_type:
        return write_str_header(out, n, False)
    if n <= 0xFF:
        return out_be(out, 0xC4, n, 1)
    if n <= 0xFFFF:
        return out_be(out, 0xC5, n, 2)
    return out_be(out, 0xC6, n, 4)


cdef inline int write_container_header(Output* out, Py_ssize_t n, uint8_t fix, uint8_t marker16) except -1:
    if n < 16:
        return out_byte(out, fix | <uint8_t>n)
    if n <= 0xFFFF:
        return out_be(out, marker16, n, 2)
    return out_be(out, marker16 + 1, n, 4)


cdef int write_ext_header(Output* out, long long code, Py_ssize_t n) except -1:
    if code < -128 or code > 127:
        raise OverflowError("value too large to convert to char")
    cdef uint8_t code_byte = <uint8_t>(code & 0xFF)
    if n == 1:
        out_byte(out, 0xD4)
    elif n == 2:
        out_byte(out, 0xD5)
    elif n == 4:
        out_byte(out, 0xD6)
    elif n == 8:
        out_byte(out, 0xD7)
    elif n == 16:
        out_byte(out, 0xD8)
    elif n <= 0xFF:
        out_be(out, 0xC7, n, 1)
    elif n <= 0xFFFF:
        out_be(out, 0xC8, n, 2)
    else:
        out_be(out, 0xC9, n, 4)
    return out_byte(out, code_byte)


cdef int write_timestamp(Output* out, long long seconds, unsigned long nanoseconds) except -1:
    cdef uint64_t data64
    if (seconds >> 34) == 0:
        data64 = (<uint64_t>nanoseconds << 34) | <uint64_t>seconds
        if (data64 >> 32) == 0:
            write_ext_header(out, -1, 4)
            out_raw_be(out, data64, 4)
        else:
            write_ext_header(out, -1, 8)
            out_raw_be(out, data64, 8)
    else:
        write_ext_header(out, -1, 12)
        out_raw_be(out, nanoseconds, 4)
        out_raw_be(out, <uint64_t>seconds, 8)
    return 0


# -- packing --------------------------------------------------------------------------------------------------

cdef enum PackKind:
    P_LIST    # an exact list, by index (a `default` may change it: its size is read for each item)
    P_TUPLE   # an exact tuple, by index
    P_DICT    # an exact dict, with PyDict_Next
    P_ITER    # an iterator over a list or tuple subclass (its own __iter__)
    P_ITEMS   # an iterator over the (key, value) pairs of a dict subclass (its own items())

cdef struct PackFrame:
    PackKind kind
    PyObject* container  # owned: the list, tuple or dict, or the iterator over it
    PyObject* value      # owned or NULL: maps, the value of the key being packed, packed next
    Py_ssize_t len       # the items (pairs) its header announced
    Py_ssize_t written   # the items (pairs) taken so far; lists and tuples: the next index
    Py_ssize_t pos       # P_DICT: PyDict_Next's position

cdef object _END = object()  # next_item: the innermost container has no more items


@cython.final
cdef class _Writer:
    """Appends the msgpack form of objects to a C buffer, with the options of one Packer or call.

    Containers are walked with an explicit stack of frames (not recursion), so the 1024 levels allowed
    take the same native stack as one: a thread with a small stack can pack them, and a `default` runs
    with all of its stack. A `default` that packs with this same writer stacks its frames above."""
    cdef Output out
    cdef object default
    cdef bint use_single_float, use_bin_type, strict_types, datetime
    cdef object unicode_errors  # None (strict) or the handler name as bytes
    cdef PackFrame* frames
    cdef Py_ssize_t n_open, frames_cap

    def __cinit__(self):
        self.out.data = NULL
        self.out.len = 0
        self.out.cap = 0
        self.frames = NULL
        self.n_open = self.frames_cap = 0

    def __dealloc__(self):
        free(self.out.data)
        self.close_frames(0)
        free(self.frames)

    cdef configure(self, options):
        self.default = options.default
        self.use_single_float = options.use_single_float
        self.use_bin_type = options.use_bin_type
        self.strict_types = options.strict_types
        self.datetime = options.datetime
        errors = options.unicode_errors
        self.unicode_errors = None if errors is None else errors.encode("ascii")

    cdef bytes take(self, bint reset):
        packed = PyBytes_FromStringAndSize(self.out.data, self.out.len)
        if reset:
            self.out.len = 0
        return packed

    cdef int open_frame(self, PackKind kind, object container, Py_ssize_t n) except -1:
        cdef PackFrame* grown
        cdef Py_ssize_t wanted
        if self.n_open == self.frames_cap:
            wanted = 16 if self.frames_cap == 0 else 2 * self.frames_cap
            grown = <PackFrame*>realloc(self.frames, wanted * sizeof(PackFrame))
            if grown == NULL:
                raise MemoryError("cannot grow the msgpack packer's stack")
            self.frames = grown
            self.frames_cap = wanted
        cdef PackFrame* frame = &self.frames[self.n_open]
        Py_INCREF(container)
        frame.kind = kind
        frame.container = <PyObject*>container
        frame.value = NULL
        frame.len = n
        frame.written = 0
        frame.pos = 0
        self.n_open += 1
        return 0

    cdef void close_frames(self, Py_ssize_t base) noexcept:
        """Closes the frames above `base`, releasing what they hold."""
        cdef PackFrame* frame
        while self.n_open > base:
            self.n_open -= 1
            frame = &self.frames[self.n_open]
            Py_XDECREF(frame.value)
            Py_XDECREF(frame.container)

    cdef int pack(self, object obj, int depth) except -1:
        """Packs `obj` (found at depth 0: `depth` is kept for the callers' sake and must be 0)."""
        cdef Py_ssize_t base = self.n_open
        cdef PackFrame* top
        cdef Py_ssize_t written, n
        cdef PackKind kind
        try:
            self.pack_object(obj)
            while self.n_open > base:
                item = self.next_item(self.n_open - base)
                if item is not _END:
                    self.pack_object(item)
                    continue
                top = &self.frames[self.n_open - 1]
                kind, written, n = top.kind, top.written, top.len
                self.close_frames(self.n_open - 1)
                if written != n:
                    what = "dictionary" if kind == P_DICT or kind == P_ITEMS else "list"
                    raise RuntimeError(f"{what} changed size during iteration")
        finally:
            self.close_frames(base)
        return 0

    cdef inline int write_scalar(self, PyObject* p) except -1:
        """Writes `p` (borrowed) if it is a scalar that packs without running Python code: 1, else 0."""
        cdef int overflow = 0
        cdef long long value
        cdef Py_ssize_t n
        cdef const char* data
        if ptr_is_str(p):
            if self.unicode_errors is not None:
                return 0  # an error handler is Python code
            data = ptr_utf8(p, &n)
            if n > ITEM_LIMIT:
                raise ValueError("unicode string is too large")
            write_str_header(&self.out, n, self.use_bin_type)
            out_write(&self.out, data, n)
            return 1
        if ptr_is_int(p):
            value = ptr_as_long_long(p, &overflow)
            if overflow == 0:
                write_int(&self.out, value)
                return 1
            return 0
        if ptr_is_float(p):
            self.write_float(ptr_as_double(p))
            return 1
        if p == Py_None:
            out_byte(&self.out, 0xC0)
            return 1
        if p == Py_True:
            out_byte(&self.out, 0xC3)
            return 1
        if p == Py_False:
            out_byte(&self.out, 0xC2)
            return 1
        return 0

    cdef object next_item(self, Py_ssize_t depth):
        """Writes the scalars among the next items of the innermost container in place, and returns
        the first item that needs more (a container, a type for `default`, ...), or _END once they are
        all written. The items are at `depth`."""
        cdef PackFrame* top = &self.frames[self.n_open - 1]
        cdef PyObject* key
        cdef PyObject* value
        cdef PyObject* item
        if top.kind == P_LIST:
            while top.written < ptr_list_size(top.container):
                if depth > NEST_LIMIT:
                    raise ValueError("recursion limit exceeded.")
                item = ptr_list_item(top.container, top.written)
                top.written += 1
                if not self.write_scalar(item):
                    return <object>item  # a reference taken, so a `default` cannot free it
            return _END
        if top.kind == P_TUPLE:
            while top.written < top.len:
                if depth > NEST_LIMIT:
                    raise ValueError("recursion limit exceeded.")
                item = ptr_tuple_item(top.container, top.written)
                top.written += 1
                if not self.write_scalar(item):
                    return <object>item
            return _END
        if top.value != NULL:  # maps: the value of the key just packed
            result = <object>top.value
            Py_XDECREF(top.value)
            top.value = NULL
            return result
        if top.kind == P_DICT:
            while True:
                if ptr_dict_size(top.container) != top.len:
                    # What the dict's own iterator says when a `default` changed it.
                    raise RuntimeError("dictionary changed size during iteration")
                if not ptr_dict_next(top.container, &top.pos, &key, &value):
                    return _END
                if depth > NEST_LIMIT:
                    raise ValueError("recursion limit exceeded.")
                top.written += 1
                # Borrowed, and live while no Python code runs: a key that needs more is returned with
                # a reference to its value kept in the frame, so that packing the key (a `default` that
                # clears the dict) cannot free the value.
                if not self.write_scalar(key):
                    Py_INCREF(<object>value)
                    top.value = value
                    return <object>key
                if not self.write_scalar(value):
                    return <object>value
        # P_ITER, P_ITEMS: Python code runs here, which may pack with this writer and move the frames.
        found = next(<object>top.container, _END)
        if found is _END:
            return _END
        if depth > NEST_LIMIT:
            raise ValueError("recursion limit exceeded.")
        top = &self.frames[self.n_open - 1]
        top.written += 1
        if top.kind == P_ITER:
            return found
        k, v = found
        top = &self.frames[self.n_open - 1]
        Py_INCREF(v)
        top.value = <PyObject*>v
        return k

    cdef int pack_object(self, object obj) except -1:
        """Writes `obj` whole, or a container's header and opens it."""
        cdef int overflow = 0
        cdef long long value
        # The common exact types first; the same in strict mode, and none is also a later type.
        if PyUnicode_CheckExact(obj):
            return self.write_str(obj)
        if PyLong_CheckExact(obj):
            value = PyLong_AsLongLongAndOverflow(obj, &overflow)
            if overflow == 0:
                return write_int(&self.out, value)
        elif PyDict_CheckExact(obj):
            return self.write_dict(obj)
        elif PyList_CheckExact(obj):
            return self.write_list(obj)
        elif PyFloat_CheckExact(obj):
            return self.write_float(PyFloat_AS_DOUBLE(obj))
        elif obj is None:
            return out_byte(&self.out, 0xC0)
        if self.default is not None:
            if self.pack_known(obj, True) == 0:
                return 0
            obj = self.default(obj)  # a type msgpack cannot hold: converted once
        self.pack_known(obj, False)
        return 0

    cdef int pack_known(self, object obj, bint will_default) except -1:
        """msgpack-python's order of checks; returns 1 to leave `obj` to `default`."""
        cdef bint strict = self.strict_types
        cdef int overflow = 0
        cdef long long value
        cdef unsigned long long uvalue
        cdef const unsigned char[::1] view
        if obj is None:
            out_byte(&self.out, 0xC0)
        elif obj is True:
            out_byte(&self.out, 0xC3)
        elif obj is False:
            out_byte(&self.out, 0xC2)
        elif PyLong_CheckExact(obj) if strict else PyLong_Check(obj):
            value = PyLong_AsLongLongAndOverflow(obj, &overflow)
            if overflow == 0:
                write_int(&self.out, value)
            elif overflow > 0:
                try:
                    uvalue = PyLong_AsUnsignedLongLong(obj)
                except OverflowError:
                    if will_default:
                        return 1
                    raise OverflowError("Integer value out of range")
                write_uint(&self.out, uvalue)
            elif will_default:
                return 1
            else:
                raise OverflowError("Integer value out of range")
        elif PyFloat_CheckExact(obj) if strict else PyFloat_Check(obj):
            self.write_float(PyFloat_AS_DOUBLE(obj))
        elif (PyBytes_CheckExact(obj) or PyByteArray_CheckExact(obj)) if strict else (
            PyBytes_Check(obj) or PyByteArray_Check(obj)
        ):
            if Py_SIZE(obj) > ITEM_LIMIT:
                raise ValueError(f"{type_name(obj)} object is too large")
            write_bin_header(&self.out, Py_SIZE(obj), self.use_bin_type)
            if PyBytes_Check(obj):
                out_write(&self.out, PyBytes_AS_STRING(obj), PyBytes_GET_SIZE(obj))
            else:
                out_write(&self.out, PyByteArray_AS_STRING(obj), PyByteArray_GET_SIZE(obj))
        elif PyUnicode_CheckExact(obj) if strict else PyUnicode_Check(obj):
            self.write_str(obj)
        elif PyDict_CheckExact(obj) if strict else PyDict_Check(obj):
            self.write_dict(obj)
        elif type(obj) is ExtType if strict else isinstance(obj, ExtType):
            view = memoryview(obj.data).cast("B")
            if view.shape[0] > ITEM_LIMIT:
                raise ValueError("EXT data is too large")
            write_ext_header(&self.out, obj.code, view.shape[0])
            if view.shape[0]:
                out_write(&self.out, &view[0], view.shape[0])
        elif type(obj) is Timestamp:
            seconds = obj.seconds
            if not -(2**63) <= seconds < 2**63:
                raise OverflowError("Python int too large to convert to C long")
            write_timestamp(&self.out, seconds, obj.nanoseconds)
        elif PyList_CheckExact(obj) if strict else (PyList_Check(obj) or PyTuple_Check(obj)):
            self.write_list(obj)
        elif PyMemoryView_Check(obj):
            if not obj.c_contiguous:
                raise BufferError("memoryview: underlying buffer is not C-contiguous")
            view = obj.cast("B") if obj.ndim != 1 or obj.format != "B" else obj
            if view.shape[0] > ITEM_LIMIT:
                raise ValueError("memoryview is too large")
            write_bin_header(&self.out, view.shape[0], self.use_bin_type)
            if view.shape[0]:
                out_write(&self.out, &view[0], view.shape[0])
        elif self.datetime and type(obj) is _DATETIME and obj.tzinfo is not None:
            delta = obj - _EPOCH
            write_timestamp(&self.out, delta.days * 86400 + delta.seconds, delta.microseconds * 1000)
        elif will_default:
            return 1
        elif self.datetime and type(obj) is _DATETIME:
            raise ValueError(f"can not serialize {type_name(obj)!r} object where tzinfo=None")
        else:
            raise TypeError(f"can not serialize {type_name(obj)!r} object")
        return 0

    cdef int write_float(self, double value) except -1:
        cdef float single
        cdef uint32_t bits32
        cdef uint64_t bits64
        if self.use_single_float:
            single = <float>value  # rounds to nearest, as CPython's float packing does
            if isinf(single) and not isinf(value):
                raise OverflowError("float too large to pack with f format")
            memcpy(&bits32, &single, 4)  # the bits of the float (memcpy: no aliasing tricks)
            out_be(&self.out, 0xCA, bits32, 4)
        else:
            memcpy(&bits64, &value, 8)
            out_be(&self.out, 0xCB, bits64, 8)
        return 0

    cdef int write_str(self, object obj) except -1:
        cdef Py_ssize_t n
        cdef const char* data
        if self.unicode_errors is None:
            data = PyUnicode_AsUTF8AndSize(obj, &n)
        else:
            encoded = PyUnicode_AsEncodedString(obj, "utf-8", <const char*>self.unicode_errors)
            data = PyBytes_AS_STRING(encoded)
            n = PyBytes_GET_SIZE(encoded)
        if n > ITEM_LIMIT:
            raise ValueError("unicode string is too large")
        write_str_header(&self.out, n, self.use_bin_type)
        return out_write(&self.out, data, n)

    cdef int write_dict(self, object obj) except -1:
        """The map header, then the dict opened for its pairs."""
        cdef Py_ssize_t n = PyDict_Size(obj)
        if n > ITEM_LIMIT:
            raise ValueError("dict is too large")
        write_container_header(&self.out, n, 0x80, 0xDE)
        if PyDict_CheckExact(obj):
            return self.open_frame(P_DICT, obj, n)
        # A subclass may define its own items() (OrderedDict's order, for one): use it.
        return self.open_frame(P_ITEMS, iter(obj.items()), n)

    cdef int write_list(self, object obj) except -1:
        """The array header, then the list or tuple opened for its items."""
        cdef Py_ssize_t n = Py_SIZE(obj)
        if n > ITEM_LIMIT:
            raise ValueError("list is too large")
        write_container_header(&self.out, n, 0x90, 0xDC)
        if PyList_CheckExact(obj):
            return self.open_frame(P_LIST, obj, n)
        if PyTuple_CheckExact(obj):
            return self.open_frame(P_TUPLE, obj, n)
        return self.open_frame(P_ITER, iter(obj), n)  # a subclass may define its own __iter__


cdef _Writer _scratch = _Writer()
cdef object _scratch_options = None  # the options _scratch was configured with
cdef bint _scratch_busy = False


def packb(obj, options):
    """See igcore._reference.msgpack.packb."""
    global _scratch_busy, _scratch_options
    cdef _Writer writer
    if _scratch_busy:  # a `default` that calls packb itself
        writer = _Writer()
        writer.configure(options)
        writer.pack(obj, 0)
        return writer.take(False)
    # One writer kept between calls, so that its buffer is grown once and its options read once.
    _scratch_busy = True
    writer = _scratch
    try:
        writer.out.len = 0
        if options is not _scratch_options:
            writer.configure(options)
            _scratch_options = options
        writer.pack(obj, 0)
        return writer.take(False)
    finally:
        _scratch_busy = False
        if writer.out.cap > (1 << 20):  # given back after one large object
            free(writer.out.data)
            writer.out.data = NULL
            writer.out.cap = 0


cdef class Packer:
    """See igcore._reference.msgpack.Packer."""
    cdef _Writer writer
    cdef bint autoreset
    cdef bint busy  # a call is in progress (see call_enter)

    def __init__(self, options, bint autoreset):
        self.writer = _Writer()
        self.writer.configure(options)
        self.autoreset = autoreset
        self.busy = False

    cdef finish(self):
        if self.autoreset:
            return self.writer.take(True)
        return None

    def pack(self, obj):
        call_enter(&self.busy, "Packer")
        try:
            try:
                self.writer.pack(obj, 0)
            except BaseException:
                self.writer.out.len = 0
                raise
            return self.finish()
        finally:
            call_leave(&self.busy)

    def pack_map_pairs(self, pairs):
        call_enter(&self.busy, "Packer")
        try:
            try:
                n = len(pairs)
                if n > ITEM_LIMIT:
                    raise ValueError("map too large")
                write_container_header(&self.writer.out, n, 0x80, 0xDE)
                for key, value in pairs:
                    self.writer.pack(key, 0)
                    self.writer.pack(value, 0)
            except BaseException:
                self.writer.out.len = 0
                raise
            return self.finish()
        finally:
            call_leave(&self.busy)

    def pack_array_header(self, long long size):
        call_enter(&self.busy, "Packer")
        try:
            if size < 0:
                raise ValueError("array size must be non-negative")
            if size > ITEM_LIMIT:
                raise ValueError("array too large")
            write_container_header(&self.writer.out, size, 0x90, 0xDC)
            return self.finish()
        finally:
            call_leave(&self.busy)

    def pack_map_header(self, long long size):
        call_enter(&self.busy, "Packer")
        try:
            if size < 0:
                raise ValueError("map size must be non-negative")
            if size > ITEM_LIMIT:
                raise ValueError("map too large")
            write_container_header(&self.writer.out, size, 0x80, 0xDE)
            return self.finish()
        finally:
            call_leave(&self.busy)

    def pack_ext_type(self, long long code, data):
        cdef const unsigned char[::1] view = memoryview(data).cast("B")
        call_enter(&self.busy, "Packer")
        try:
            if view.shape[0] > ITEM_LIMIT:
                raise ValueError("ext data too large")
            write_ext_header(&self.writer.out, code, view.shape[0])
            if view.shape[0]:
                out_write(&self.writer.out, &view[0], view.shape[0])
            return self.finish()
        finally:
            call_leave(&self.busy)

    def bytes(self):
        call_enter(&self.busy, "Packer")
        try:
            return self.writer.take(False)
        finally:
            call_leave(&self.busy)

    def reset(self):
        call_enter(&self.busy, "Packer")
        try:
            self.writer.out.len = 0
        finally:
            call_leave(&self.busy)


# -- the wire format: headers --------------------------------------------------------------------------------------

cdef enum Kind:
    K_NIL, K_BOOL, K_INT, K_UINT, K_FLOAT, K_STR, K_BIN, K_EXT, K_ARRAY, K_MAP

cdef struct Header:
    Kind kind
    int64_t i        # K_INT, K_BOOL
    uint64_t u       # K_UINT (2**63 and above)
    double f         # K_FLOAT
    uint32_t n       # the length of a payload, or the item count of a container
    int8_t code      # K_EXT
    Py_ssize_t end   # where the payload (or the next object) starts

cdef enum:
    HEADER_OK = 1
    HEADER_INCOMPLETE = 0
    HEADER_FORMAT = -1


cdef inline uint64_t load_be(const uint8_t* p, int size) noexcept nogil:
    cdef uint64_t value = 0
    cdef int i
    for i in range(size):
        value = (value << 8) | p[i]
    return value


cdef int read_header(const uint8_t* data, Py_ssize_t length, Py_ssize_t pos, Header* h) noexcept nogil:
    """Reads the header at `pos` into `h`: HEADER_OK, HEADER_INCOMPLETE or HEADER_FORMAT (0xc1)."""
    cdef uint8_t marker
    cdef int size
    cdef uint64_t raw
    cdef uint32_t bits32
    cdef float single
    if pos >= length:
        return HEADER_INCOMPLETE
    marker = data[pos]
    pos += 1
    h.end = pos
    if marker <= 0x7F:
        h.kind = K_INT
        h.i = marker
        return HEADER_OK
    if marker >= 0xE0:
        h.kind = K_INT
        h.i = <int8_t>marker
        return HEADER_OK
    if marker <= 0x8F:
        h.kind = K_MAP
        h.n = marker & 0x0F
        return HEADER_OK
    if marker <= 0x9F:
        h.kind = K_ARRAY
        h.n = marker & 0x0F
        return HEADER_OK
    if marker <= 0xBF:
        h.kind = K_STR
        h.n = marker & 0x1F
        return HEADER_OK
    if marker == 0xC0:
        h.kind = K_NIL
        return HEADER_OK
    if marker == 0xC1:
        return HEADER_FORMAT
    if marker == 0xC2 or marker == 0xC3:
        h.kind = K_BOOL
        h.i = marker == 0xC3
        return HEADER_OK
    if 0xD4 <= marker <= 0xD8:  # fixext: the type byte, then 1, 2, 4, 8 or 16 bytes
        if length - pos < 1:
            return HEADER_INCOMPLETE
        h.kind = K_EXT
        h.code = <int8_t>data[pos]
        h.n = 1 << (marker - 0xD4)
        h.end = pos + 1
        return HEADER_OK
    if 0xC7 <= marker <= 0xC9:  # ext 8/16/32: the length, then the type byte
        size = 1 << (marker - 0xC7)
        if length - pos < size + 1:
            return HEADER_INCOMPLETE
        h.kind = K_EXT
        h.n = <uint32_t>load_be(data + pos, size)
        h.code = <int8_t>data[pos + size]
        h.end = pos + size + 1
        return HEADER_OK
    # The rest: a fixed number of bytes of value or length follows.
    if marker == 0xC4 or marker == 0xCC or marker == 0xD0 or marker == 0xD9:
        size = 1
    elif marker == 0xC5 or marker == 0xCD or marker == 0xD1 or marker == 0xDA or marker == 0xDC or marker == 0xDE:
        size = 2
    elif marker == 0xCB or marker == 0xCF or marker == 0xD3:
        size = 8
    else:  # 0xc6, 0xca, 0xce, 0xd2, 0xdb, 0xdd, 0xdf
        size = 4
    if length - pos < size:
        return HEADER_INCOMPLETE
    raw = load_be(data + pos, size)
    h.end = pos + size
    if marker <= 0xC6:
        h.kind = K_BIN
        h.n = <uint32_t>raw
    elif marker == 0xCA:
        h.kind = K_FLOAT
        bits32 = <uint32_t>raw
        memcpy(&single, &bits32, 4)
        h.f = single
    elif marker == 0xCB:
        h.kind = K_FLOAT
        memcpy(&h.f, &raw, 8)
    elif marker <= 0xCF:
        if raw >> 63:
            h.kind = K_UINT
            h.u = raw
        else:
            h.kind = K_INT
            h.i = <int64_t>raw
    elif marker <= 0xD3:
        h.kind = K_INT
        if size == 1:
            h.i = <int8_t>raw
        elif size == 2:
            h.i = <int16_t>raw
        elif size == 4:
            h.i = <int32_t>raw
        else:
            h.i = <int64_t>raw
    elif marker <= 0xDB:
        h.kind = K_STR
        h.n = <uint32_t>raw
    elif marker <= 0xDD:
        h.kind = K_ARRAY
        h.n = <uint32_t>raw
    else:
        h.kind = K_MAP
        h.n = <uint32_t>raw
    return HEADER_OK


# -- short map keys ----------------------------------------------------------------------------------------------

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


# -- unpacking ----------------------------------------------------------------------------------------------------

class _Incomplete(Exception):
    pass


cdef enum ReadKind:
    R_ARRAY          # a list or tuple, from the items waiting on the value stack
    R_MAP            # a dict, filled as each pair is read
    R_CLAIMING_MAP   # a dict made at full size: its pairs to come claim two bytes each of the input left
    R_PAIRS          # (key, value) tuples for object_pairs_hook, waiting on the value stack

cdef struct ReadFrame:
    ReadKind kind
    uint32_t left      # items (arrays) or pairs (maps) still to come
    Py_ssize_t start   # R_ARRAY, R_PAIRS: where its items start on the value stack
    PyObject* dict     # owned: the dict being filled (maps), or NULL
    PyObject* key      # owned or NULL: the key read, whose value comes next

cdef Py_ssize_t MAX_KEPT_VALUES = 1 << 16  # a value stack grown beyond this by one message is given back


@cython.final
cdef class _Reader:
    """Builds objects from msgpack bytes with the options of one unpackb call or Unpacker.

    Containers are read with explicit stacks, not recursion, so the 1024 levels allowed take the same
    native stack as one (a thread with a small stack can unpack them, and a hook runs with all of its
    stack). An array's items wait on the value stack until the last one is read, then move into a list
    or tuple made at its final size: a container is never seen half built (a hook walking
    gc.get_objects() meets only whole ones), and a header that lies about its length allocates nothing.
    Dicts are presized only within what the input left can fill, across all the open ones."""
    cdef const uint8_t* data
    cdef Py_ssize_t length
    cdef Py_ssize_t pos
    cdef ReadFrame* frames
    cdef Py_ssize_t n_open, frames_cap
    cdef PyObject** values
    cdef Py_ssize_t n_values, values_cap
    cdef Py_ssize_t claimed  # bytes claimed by the pairs still to come in the open R_CLAIMING_MAPs

    def __cinit__(self):
        self.frames = NULL
        self.values = NULL
        self.n_open = self.frames_cap = self.n_values = self.values_cap = 0

    def __dealloc__(self):
        self.release()
        free(self.frames)
        free(self.values)

    cdef void release(self) noexcept:
        """Drops what the stacks hold (after an error) and gives back a value stack grown large."""
        cdef ReadFrame* frame
        while self.n_open:
            self.n_open -= 1
            frame = &self.frames[self.n_open]
            Py_XDECREF(frame.key)
            Py_XDECREF(frame.dict)
        while self.n_values:
            self.n_values -= 1
            Py_XDECREF(self.values[self.n_values])
        if self.values_cap > MAX_KEPT_VALUES:
            free(self.values)
            self.values = NULL
            self.values_cap = 0
    cdef bint use_list, raw, strict_map_key
    cdef int timestamp
    cdef object object_hook, object_pairs_hook, list_hook, ext_hook
    cdef const char* errors
    cdef object errors_bytes
    cdef long long max_str, max_bin, max_array, max_map, max_ext

    cdef long long raw_str, raw_bin, raw_array, raw_map, raw_ext  # as given: -1 is the default

    cdef configure(self, options, long long default_limit):
        self.use_list = options.use_list
        self.raw = options.raw
        self.timestamp = options.timestamp
        self.strict_map_key = options.strict_map_key
        self.object_hook = options.object_hook
        self.object_pairs_hook = options.object_pairs_hook
        self.list_hook = options.list_hook
        self.ext_hook = options.ext_hook
        self.errors_bytes = None if options.unicode_errors is None else options.unicode_errors.encode("ascii")
        self.errors = NULL if self.errors_bytes is None else <const char*>self.errors_bytes
        self.raw_str = options.max_str_len
        self.raw_bin = options.max_bin_len
        self.raw_array = options.max_array_len
        self.raw_map = options.max_map_len
        self.raw_ext = options.max_ext_len
        self.set_limits(default_limit)

    cdef void set_limits(self, long long default_limit) noexcept:
        """The limits, with -1 replaced by the default (half of it for maps), as msgpack-python does."""
        self.max_str = default_limit if self.raw_str == -1 else self.raw_str
        self.max_bin = default_limit if self.raw_bin == -1 else self.raw_bin
        self.max_array = default_limit if self.raw_array == -1 else self.raw_array
        self.max_map = default_limit // 2 if self.raw_map == -1 else self.raw_map
        self.max_ext = default_limit if self.raw_ext == -1 else self.raw_ext

    cdef int header(self, Header* h) except -1:
        cdef int found = read_header(self.data, self.length, self.pos, h)
        if found == HEADER_INCOMPLETE:
            raise _Incomplete
        if found == HEADER_FORMAT:
            raise FormatError(f"invalid msgpack: byte 0xc1 at offset {self.pos} starts no type")
        self.pos = h.end
        return 0

    cdef const char* payload(self, uint32_t n) except NULL:
        if <Py_ssize_t>n > self.length - self.pos:
            raise _Incomplete
        cdef const char* start = <const char*>(self.data + self.pos)
        self.pos += n
        return start

    cdef object read(self):
        """The object at `pos`."""
        self.n_open = self.n_values = 0
        self.claimed = 0
        try:
            return self.read_loop()
        finally:
            self.release()

    cdef object read_loop(self):
        cdef ReadFrame* top
        cdef bint opened
        cdef ReadKind kind
        cdef Py_ssize_t start
        cdef PyObject* dict_ptr
        while True:
            # The next object: a whole one, or `opened` a container. A map's key may come from the cache.
            opened = False
            obj = None
            if self.n_open and self.frames[self.n_open - 1].kind != R_ARRAY and self.frames[self.n_open - 1].key == NULL:
                if self.frames[self.n_open - 1].kind == R_CLAIMING_MAP:
                    # A pair starts: the two bytes it claimed are about to be read.
                    self.claimed = self.claimed - 2 if self.claimed >= 2 else 0
                obj = self.read_key()
                if obj is None:
                    obj = self.item(&opened)
            else:
                obj = self.item(&opened)
            if opened:
                continue
            # Hand the object to the innermost open container; one that is now whole is finished and
            # handed to the one around it, and so on.
            while True:
                if self.n_open == 0:
                    return obj
                top = &self.frames[self.n_open - 1]
                if top.kind == R_ARRAY:
                    self.push_value(obj)
                else:
                    if top.key == NULL:
                        Py_INCREF(obj)
                        top.key = <PyObject*>obj
                        break
                    key = <object>top.key
                    Py_XDECREF(top.key)
                    top.key = NULL
                    self.checked_key(key)
                    if top.kind == R_PAIRS:
                        self.push_value((key, obj))
                    else:
                        PyDict_SetItem(<object>top.dict, key, obj)
                    top = &self.frames[self.n_open - 1]  # a key's __hash__ or __eq__ may have run
                top.left -= 1
                if top.left:
                    break
                kind, start, dict_ptr = top.kind, top.start, top.dict
                self.n_open -= 1
                if kind == R_ARRAY:
                    obj = self.finish_array(start)
                elif kind == R_PAIRS:
                    obj = self.finish_pairs(start)
                else:
                    obj = <object>dict_ptr
                    Py_XDECREF(dict_ptr)
                    if self.object_hook is not None:
                        obj = self.object_hook(obj)

    cdef int push_value(self, object obj) except -1:
        cdef PyObject** grown
        cdef Py_ssize_t wanted
        if self.n_values == self.values_cap:
            wanted = 64 if self.values_cap == 0 else 2 * self.values_cap
            grown = <PyObject**>realloc(self.values, wanted * sizeof(PyObject*))
            if grown == NULL:
                raise MemoryError("cannot grow the msgpack reader's stack")
            self.values = grown
            self.values_cap = wanted
        Py_INCREF(obj)
        self.values[self.n_values] = <PyObject*>obj
        self.n_values += 1
        return 0

    cdef int open_frame(self, ReadKind kind, uint32_t n, object dict_obj) except -1:
        cdef ReadFrame* grown
        cdef Py_ssize_t wanted
        if self.n_open == self.frames_cap:
            wanted = 16 if self.frames_cap == 0 else 2 * self.frames_cap
            grown = <ReadFrame*>realloc(self.frames, wanted * sizeof(ReadFrame))
            if grown == NULL:
                raise MemoryError("cannot grow the msgpack reader's stack")
            self.frames = grown
            self.frames_cap = wanted
        cdef ReadFrame* frame = &self.frames[self.n_open]
        frame.kind = kind
        frame.left = n
        frame.start = self.n_values
        frame.key = NULL
        if dict_obj is None:
            frame.dict = NULL
        else:
            Py_INCREF(dict_obj)
            frame.dict = <PyObject*>dict_obj
        self.n_open += 1
        return 0

    cdef object finish_array(self, Py_ssize_t start):
        """The items values[start:] moved into a new list (or tuple), then list_hook. Nothing runs
        between making it and filling it, so it is never seen with empty slots."""
        cdef Py_ssize_t n = self.n_values - start
        result = PyList_New(n) if self.use_list else PyTuple_New(n)
        igcore_fill(result, self.use_list, self.values + start, n)
        self.n_values = start
        if self.list_hook is not None:
            return self.list_hook(result)
        return result

    cdef object finish_pairs(self, Py_ssize_t start):
        cdef Py_ssize_t n = self.n_values - start
        pairs = PyList_New(n)
        igcore_fill(pairs, True, self.values + start, n)
        self.n_values = start
        return self.object_pairs_hook(pairs)

    cdef object item(self, bint* opened):
        """Reads one header: a whole object, or None with `opened` set when it opened a container."""
        cdef Header h
        cdef const char* p
        cdef Py_ssize_t wanted
        self.header(&h)
        if h.kind == K_INT:
            return PyLong_FromLongLong(h.i)
        if h.kind == K_STR:
            p = self.payload(h.n)
            if h.n > self.max_str:
                raise ValueError(f"{h.n} exceeds max_str_len({self.max_str})")
            if self.raw:
                return PyBytes_FromStringAndSize(p, h.n)
            return PyUnicode_DecodeUTF8(p, h.n, self.errors)
        if h.kind == K_MAP:
            self.open_container(h.n, self.n_open, self.max_map, "max_map_len")
            if self.object_pairs_hook is not None:
                if h.n == 0:
                    return self.object_pairs_hook([])
                self.open_frame(R_PAIRS, h.n, None)
            elif h.n == 0:
                return {} if self.object_hook is None else self.object_hook({})
            else:
                # Made at its final size only when the bytes left hold two for each of its pairs
                # besides those claimed by the maps around it: the tables of all open maps then add up
                # to no more than the input could fill, however the headers lie.
                wanted = 2 * <Py_ssize_t>h.n
                if self.claimed + wanted <= self.length - self.pos:
                    self.claimed += wanted
                    self.open_frame(R_CLAIMING_MAP, h.n, new_dict(h.n))
                else:
                    self.open_frame(R_MAP, h.n, {})
            opened[0] = True
            return None
        if h.kind == K_ARRAY:
            self.open_container(h.n, self.n_open, self.max_array, "max_array_len")
            if h.n == 0:
                return self.finish_array(self.n_values)
            self.open_frame(R_ARRAY, h.n, None)
            opened[0] = True
            return None
        if h.kind == K_NIL:
            return None
        if h.kind == K_BOOL:
            return h.i != 0
        if h.kind == K_FLOAT:
            return PyFloat_FromDouble(h.f)
        if h.kind == K_UINT:
            return PyLong_FromUnsignedLongLong(h.u)
        if h.kind == K_BIN:
            p = self.payload(h.n)
            if h.n > self.max_bin:
                raise ValueError(f"{h.n} exceeds max_bin_len({self.max_bin})")
            return PyBytes_FromStringAndSize(p, h.n)
        p = self.payload(h.n)  # K_EXT
        if h.n > self.max_ext:
            raise ValueError(f"{h.n} exceeds max_ext_len({self.max_ext})")
        return self.ext(h.code, p, h.n)

    cdef int open_container(self, uint32_t n, Py_ssize_t open_containers, long long limit, str name) except -1:
        if open_containers >= MAX_OPEN_CONTAINERS:
            raise StackError(f"containers nested deeper than {MAX_OPEN_CONTAINERS} levels")
        if n > limit:
            raise ValueError(f"{n} exceeds {name}({limit})")
        return 0

    cdef inline object read_key(self):
        """A short str map key from the cache when the next bytes are one, else None."""
        cdef uint8_t marker
        cdef Py_ssize_t n
        if not self.raw and self.pos < self.length:
            marker = self.data[self.pos]
            n = marker & 0x1F
            if 0xA0 <= marker <= 0xBF and n <= self.length - self.pos - 1 and n <= self.max_str:
                key = cached_key(<const char*>(self.data + self.pos + 1), n)
                if key is not None:
                    self.pos += 1 + n
                    return key
        return None

    cdef object checked_key(self, object key):
        if self.strict_map_key and not (PyUnicode_CheckExact(key) or PyBytes_CheckExact(key)):
            raise ValueError(f"{type_name(key)} is not allowed for map key when strict_map_key=True")
        return key

    cdef object ext(self, int8_t code, const char* p, uint32_t n):
        cdef uint64_t data64
        cdef int64_t seconds
        cdef uint32_t nanoseconds
        if code != -1:
            return self.ext_hook(code, PyBytes_FromStringAndSize(p, n))
        if n == 4:
            seconds = <int64_t>load_be(<const uint8_t*>p, 4)
            nanoseconds = 0
        elif n == 8:
            data64 = load_be(<const uint8_t*>p, 8)
            seconds = <int64_t>(data64 & <uint64_t>0x3FFFFFFFF)
            nanoseconds = <uint32_t>(data64 >> 34)
        elif n == 12:
            nanoseconds = <uint32_t>load_be(<const uint8_t*>p, 4)
            seconds = <int64_t>load_be(<const uint8_t*>p + 4, 8)
        else:
            raise ValueError(f"invalid timestamp data (length {n})")
        if nanoseconds > 999999999:
            raise ValueError("nanoseconds must be a non-negative integer not greater than 999999999.")
        if self.timestamp == 1:
            return <double>seconds + <double>nanoseconds / 1e9
        if self.timestamp == 2:
            return <object>seconds * 1000000000 + nanoseconds
        if self.timestamp == 3:
            if not -2147483648 <= seconds // 86400 <= 2147483647:  # C division: toward zero
                raise OverflowError(f"days={seconds // 86400}; too large to convert to C int")
            return _EPOCH + _TIMEDELTA(0, seconds, nanoseconds // 1000)
        return Timestamp(seconds, nanoseconds)


cdef _Reader _reader = _Reader()
cdef object _reader_options = None  # the options _reader was configured with
cdef bint _reader_busy = False


def unpackb(data, options):
    """See igcore._reference.msgpack.unpackb."""
    global _reader_busy, _reader_options
    cdef const uint8_t[::1] view = data
    cdef _Reader reader
    cdef Py_ssize_t length = view.shape[0]
    if _reader_busy:  # a hook that calls unpackb itself
        reader = _Reader()
        reader.configure(options, length)
    else:
        # One reader kept between calls, its options read again only when they change.
        reader = _reader
        if options is not _reader_options:
            reader.configure(options, length)
            _reader_options = options
        else:
            reader.set_limits(length)
        _reader_busy = True
    reader.data = &view[0] if length else <const uint8_t*>b""
    reader.length = length
    reader.pos = 0
    try:
        obj = reader.read()
    except _Incomplete:
        raise ValueError("Unpack failed: incomplete input") from None
    finally:
        if reader is _reader:
            _reader_busy = False
    if reader.pos < reader.length:
        raise ExtraData(obj, bytes(view[reader.pos:]))
    return obj


# -- the streaming unpacker -----------------------------------------------------------------------------------------

cdef class Unpacker:
    """See igcore._reference.msgpack.Unpacker."""
    cdef object file_read
    cdef Py_ssize_t read_size, max_buffer_size
    cdef _Reader reader
    cdef object options
    cdef char* buf
    cdef Py_ssize_t buf_len, buf_cap
    cdef Py_ssize_t pos          # the next unread byte of buf
    cdef unsigned long long offset  # the stream offset of buf[0]
    # find_end's walk through an incomplete object starting at pos
    cdef bint busy  # a call is in progress (see call_enter)
    cdef bint scanning, scan_limits
    cdef Py_ssize_t scan_offset, scan_depth
    cdef uint64_t scan_open[1024]  # items left in each open container (a map counts keys and values)

    def __cinit__(self):
        self.buf = NULL

    def __dealloc__(self):
        free(self.buf)

    def __init__(self, file_read, Py_ssize_t read_size, Py_ssize_t max_buffer_size, options):
        self.file_read = file_read
        self.read_size = read_size
        self.max_buffer_size = max_buffer_size
        self.reader = _Reader()
        self.reader.configure(options, max_buffer_size)
        self.buf_len = self.buf_cap = self.pos = 0
        self.offset = 0
        self.scanning = False
        self.busy = False

    cdef int append(self, const char* src, Py_ssize_t n) except -1:
        cdef char* grown
        cdef Py_ssize_t wanted
        self.drop_consumed()
        if self.buf_cap - self.buf_len < n:
            wanted = max(self.buf_len + n, 2 * self.buf_cap, 4096)
            grown = <char*>realloc(self.buf, wanted)
            if grown == NULL:
                raise MemoryError("cannot grow the unpacker's buffer")
            self.buf = grown
            self.buf_cap = wanted
        memcpy(self.buf + self.buf_len, src, n)
        self.buf_len += n
        return 0

    cdef void drop_consumed(self) noexcept:
        if self.pos:
            memmove(self.buf, self.buf + self.pos, self.buf_len - self.pos)
            self.buf_len -= self.pos
            self.offset += self.pos
            self.pos = 0

    def feed(self, data):
        cdef const uint8_t[::1] view = data
        call_enter(&self.busy, "Unpacker")
        try:
            if self.buf_len - self.pos + view.shape[0] > self.max_buffer_size:
                raise BufferFull
            if view.shape[0]:
                self.append(<const char*>&view[0], view.shape[0])
        finally:
            call_leave(&self.busy)

    cdef bint read_file(self) except -1:
        if self.file_read is None:
            return False
        cdef Py_ssize_t room = self.max_buffer_size - (self.buf_len - self.pos)
        if room <= 0:
            raise BufferFull
        chunk = self.file_read(min(self.read_size, room))
        if not chunk:
            return False
        if not PyBytes_CheckExact(chunk):
            raise TypeError(f"file_like.read() must return bytes, not {type(chunk).__name__}")
        self.append(PyBytes_AS_STRING(chunk), PyBytes_GET_SIZE(chunk))
        return True

    cdef Py_ssize_t find_end(self, bint with_limits) except -2:
        """Where the object at `pos` ends (relative to it), or -1 if its bytes are not all here."""
        cdef Header h
        cdef int found
        cdef Py_ssize_t avail = self.buf_len - self.pos
        cdef const uint8_t* data = <const uint8_t*>(self.buf + self.pos)
        cdef uint64_t items
        if not self.scanning or self.scan_limits != with_limits:
            self.scanning, self.scan_limits = True, with_limits
            self.scan_offset = 0
            self.scan_depth = 0
        while True:
            found = read_header(data, avail, self.scan_offset, &h)
            if found == HEADER_INCOMPLETE:
                return -1
            if found == HEADER_FORMAT:
                self.scanning = False
                raise FormatError(f"invalid msgpack: byte 0xc1 at offset {self.scan_offset} starts no type")
            items = 0
            if h.kind == K_STR or h.kind == K_BIN or h.kind == K_EXT:
                if <Py_ssize_t>h.n > avail - h.end:
                    return -1
                h.end += h.n
            elif h.kind == K_ARRAY or h.kind == K_MAP:
                if self.scan_depth >= MAX_OPEN_CONTAINERS:
                    self.scanning = False
                    raise StackError(f"containers nested deeper than {MAX_OPEN_CONTAINERS} levels")
                if with_limits and h.kind == K_ARRAY and h.n > self.reader.max_array:
                    self.scanning = False
                    raise ValueError(f"{h.n} exceeds max_array_len({self.reader.max_array})")
                if with_limits and h.kind == K_MAP and h.n > self.reader.max_map:
                    self.scanning = False
                    raise ValueError(f"{h.n} exceeds max_map_len({self.reader.max_map})")
                items = <uint64_t>h.n * (2 if h.kind == K_MAP else 1)
            self.scan_offset = h.end
            if items:
                self.scan_open[self.scan_depth] = items
                self.scan_depth += 1
                continue
            # One item done: close every container it completes.
            while self.scan_depth:
                self.scan_open[self.scan_depth - 1] -= 1
                if self.scan_open[self.scan_depth - 1]:
                    break
                self.scan_depth -= 1
            else:
                self.scanning = False
                return self.scan_offset

    cdef object next_object(self, bint build, bint* found):
        cdef Py_ssize_t end
        found[0] = False
        while True:
            if self.pos < self.buf_len:
                end = self.find_end(build)  # skipping checks no limits, as msgpack-python's does not
                if end >= 0:
                    obj = None
                    if build:
                        self.reader.data = <const uint8_t*>(self.buf + self.pos)
                        self.reader.length = end
                        self.reader.pos = 0
                        obj = self.reader.read()
                    self.pos += end
                    found[0] = True
                    return obj
            if not self.read_file():
                return None

    def unpack(self):
        cdef bint found
        call_enter(&self.busy, "Unpacker")
        try:
            obj = self.next_object(True, &found)
        finally:
            call_leave(&self.busy)
        if not found:
            raise OutOfData("No more data to unpack.")
        return obj

    def skip(self):
        cdef bint found
        call_enter(&self.busy, "Unpacker")
        try:
            self.next_object(False, &found)
        finally:
            call_leave(&self.busy)
        if not found:
            raise OutOfData("No more data to unpack.")

    def __iter__(self):
        return self

    def __next__(self):
        cdef bint found
        call_enter(&self.busy, "Unpacker")
        try:
            obj = self.next_object(True, &found)
        finally:
            call_leave(&self.busy)
        if not found:
            raise StopIteration
        return obj

    cdef Py_ssize_t container_header(self, uint8_t fix, uint8_t marker16) except -1:
        cdef Header h
        cdef uint8_t marker
        cdef int result
        while True:
            if self.pos < self.buf_len:
                marker = <uint8_t>self.buf[self.pos]
                if not (fix <= marker <= fix + 0x0F or marker == marker16 or marker == marker16 + 1):
                    raise ValueError("Unexpected type header on stream")
                result = read_header(<const uint8_t*>self.buf, self.buf_len, self.pos, &h)
                if result == HEADER_OK:
                    self.pos = h.end
                    self.scanning = False
                    return h.n
            if not self.read_file():
                raise OutOfData("No more data to unpack.")

    def read_array_header(self):
        call_enter(&self.busy, "Unpacker")
        try:
            return self.container_header(0x90, 0xDC)
        finally:
            call_leave(&self.busy)

    def read_map_header(self):
        call_enter(&self.busy, "Unpacker")
        try:
            return self.container_header(0x80, 0xDE)
        finally:
            call_leave(&self.busy)

    def read_bytes(self, Py_ssize_t n):
        cdef Py_ssize_t taken
        call_enter(&self.busy, "Unpacker")
        try:
            taken = min(n, self.buf_len - self.pos)
            result = PyBytes_FromStringAndSize(self.buf + self.pos, taken)
            self.pos += taken
            self.scanning = False
            if taken < n and self.file_read is not None:
                more = self.file_read(n - taken)
                self.offset += len(more)  # read past the (now empty) buffer
                result += more
            return result
        finally:
            call_leave(&self.busy)

    def tell(self):
        call_enter(&self.busy, "Unpacker")
        call_leave(&self.busy)
        return self.offset + self.pos
