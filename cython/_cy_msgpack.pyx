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
from cpython.ref cimport Py_INCREF
from cpython.tuple cimport PyTuple_GET_ITEM, PyTuple_New, PyTuple_SET_ITEM
from cpython.unicode cimport PyUnicode_AsEncodedString, PyUnicode_DecodeUTF8
from libc.stdint cimport int8_t, int16_t, int32_t, int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.math cimport isinf
from libc.stdlib cimport free, realloc
from libc.string cimport memcmp, memcpy, memmove

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
    """
    object new_dict "IGCORE_NEW_DICT"(Py_ssize_t size)
    const char* type_name_of "IGCORE_TYPE_NAME"(object o)


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

cdef class _Writer:
    """Appends the msgpack form of objects to a C buffer, with the options of one Packer or call."""
    cdef Output out
    cdef object default
    cdef bint use_single_float, use_bin_type, strict_types, datetime
    cdef object unicode_errors  # None (strict) or the handler name as bytes

    def __cinit__(self):
        self.out.data = NULL
        self.out.len = 0
        self.out.cap = 0

    def __dealloc__(self):
        free(self.out.data)

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

    cdef int pack(self, object obj, int depth) except -1:
        if depth > NEST_LIMIT:
            raise ValueError("recursion limit exceeded.")
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
            return self.write_dict(obj, depth)
        elif PyList_CheckExact(obj):
            return self.write_list(obj, depth)
        elif PyFloat_CheckExact(obj):
            return self.write_float(PyFloat_AS_DOUBLE(obj))
        elif obj is None:
            return out_byte(&self.out, 0xC0)
        if self.default is not None:
            if self.pack_known(obj, depth, True) == 0:
                return 0
            obj = self.default(obj)  # a type msgpack cannot hold: converted once
        self.pack_known(obj, depth, False)
        return 0

    cdef int pack_known(self, object obj, int depth, bint will_default) except -1:
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
            self.write_dict(obj, depth)
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
            self.write_list(obj, depth)
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

    cdef int write_dict(self, object obj, int depth) except -1:
        cdef Py_ssize_t n = PyDict_Size(obj)
        cdef Py_ssize_t pos = 0
        cdef Py_ssize_t written = 0
        cdef PyObject* key
        cdef PyObject* value
        if n > ITEM_LIMIT:
            raise ValueError("dict is too large")
        write_container_header(&self.out, n, 0x80, 0xDE)
        if not PyDict_CheckExact(obj):
            # A subclass may define its own items() (OrderedDict's order, for one): use it.
            for k, v in obj.items():
                self.pack(k, depth + 1)
                self.pack(v, depth + 1)
                written += 1
        else:
            while PyDict_Next(obj, &pos, &key, &value):
                # Owned references (the casts to object), so a `default` that changes the dict
                # cannot free them under us.
                k = <object>key
                v = <object>value
                if PyUnicode_CheckExact(k) and depth < NEST_LIMIT:
                    self.write_str(k)  # nearly every key
                else:
                    self.pack(k, depth + 1)
                self.pack(v, depth + 1)
                written += 1
        if written != n:
            raise RuntimeError("dictionary changed size during iteration")
        return 0

    cdef int write_list(self, object obj, int depth) except -1:
        cdef Py_ssize_t n = Py_SIZE(obj)
        cdef Py_ssize_t i = 0
        if n > ITEM_LIMIT:
            raise ValueError("list is too large")
        write_container_header(&self.out, n, 0x90, 0xDC)
        if PyTuple_CheckExact(obj):
            for i in range(n):
                self.pack(<object>PyTuple_GET_ITEM(obj, i), depth + 1)
            return 0
        if PyList_CheckExact(obj):
            while i < PyList_GET_SIZE(obj):  # a `default` may change the list: check each time
                self.pack(<object>PyList_GET_ITEM(obj, i), depth + 1)
                i += 1
        else:
            for item in obj:  # a subclass may define its own __iter__
                self.pack(item, depth + 1)
                i += 1
        if i != n:
            raise RuntimeError("list changed size during iteration")
        return 0


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

    def __init__(self, options, bint autoreset):
        self.writer = _Writer()
        self.writer.configure(options)
        self.autoreset = autoreset

    cdef finish(self):
        if self.autoreset:
            return self.writer.take(True)
        return None

    def pack(self, obj):
        try:
            self.writer.pack(obj, 0)
        except BaseException:
            self.writer.out.len = 0
            raise
        return self.finish()

    def pack_map_pairs(self, pairs):
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

    def pack_array_header(self, long long size):
        if size < 0:
            raise ValueError("array size must be non-negative")
        if size > ITEM_LIMIT:
            raise ValueError("array too large")
        write_container_header(&self.writer.out, size, 0x90, 0xDC)
        return self.finish()

    def pack_map_header(self, long long size):
        if size < 0:
            raise ValueError("map size must be non-negative")
        if size > ITEM_LIMIT:
            raise ValueError("map too large")
        write_container_header(&self.writer.out, size, 0x80, 0xDE)
        return self.finish()

    def pack_ext_type(self, long long code, data):
        cdef const unsigned char[::1] view = memoryview(data).cast("B")
        if view.shape[0] > ITEM_LIMIT:
            raise ValueError("ext data too large")
        write_ext_header(&self.writer.out, code, view.shape[0])
        if view.shape[0]:
            out_write(&self.writer.out, &view[0], view.shape[0])
        return self.finish()

    def bytes(self):
        return self.writer.take(False)

    def reset(self):
        self.writer.out.len = 0


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


cdef class _Reader:
    """Builds objects from msgpack bytes with the options of one unpackb call or Unpacker."""
    cdef const uint8_t* data
    cdef Py_ssize_t length
    cdef Py_ssize_t pos
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

    cdef object read(self, Py_ssize_t open_containers):
        cdef Header h
        cdef const char* p
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
            return self.read_map(h.n, open_containers)
        if h.kind == K_ARRAY:
            return self.read_array(h.n, open_containers)
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

    cdef object read_array(self, uint32_t n, Py_ssize_t open_containers):
        cdef Py_ssize_t i
        self.open_container(n, open_containers, self.max_array, "max_array_len")
        if <Py_ssize_t>n <= self.length - self.pos:  # each item takes a byte at least
            if self.use_list:
                result = PyList_New(n)
                for i in range(n):
                    item = self.read(open_containers + 1)
                    Py_INCREF(item)
                    PyList_SET_ITEM(result, i, item)
            else:
                result = PyTuple_New(n)
                for i in range(n):
                    item = self.read(open_containers + 1)
                    Py_INCREF(item)
                    PyTuple_SET_ITEM(result, i, item)
        else:  # more items claimed than bytes left: truncated; read until that shows
            items = []
            for i in range(n):
                items.append(self.read(open_containers + 1))
            result = items if self.use_list else tuple(items)
        if self.list_hook is not None:
            return self.list_hook(result)
        return result

    cdef inline object read_key(self, Py_ssize_t open_containers):
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
        return self.read(open_containers)

    cdef object checked_key(self, object key):
        if self.strict_map_key and not (PyUnicode_CheckExact(key) or PyBytes_CheckExact(key)):
            raise ValueError(f"{type_name(key)} is not allowed for map key when strict_map_key=True")
        return key

    cdef object read_map(self, uint32_t n, Py_ssize_t open_containers):
        cdef uint32_t i
        cdef Py_ssize_t room
        self.open_container(n, open_containers, self.max_map, "max_map_len")
        if self.object_pairs_hook is not None:
            pairs = []
            for i in range(n):
                key = self.read_key(open_containers + 1)
                value = self.read(open_containers + 1)
                pairs.append((self.checked_key(key), value))
            return self.object_pairs_hook(pairs)
        room = (self.length - self.pos) // 2  # a pair takes two bytes at least
        result = new_dict(n if n <= room else room)
        for i in range(n):
            key = self.read_key(open_containers + 1)
            value = self.read(open_containers + 1)
            PyDict_SetItem(result, self.checked_key(key), value)
        if self.object_hook is not None:
            return self.object_hook(result)
        return result

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
        obj = reader.read(0)
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
    cdef bint busy  # building an object (a hook must not feed or read while the buffer is in use)
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

    cdef int check_idle(self) except -1:
        if self.busy:
            raise RuntimeError("Unpacker cannot be called while unpacking is in progress")
        return 0

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
        self.check_idle()
        cdef const uint8_t[::1] view = data
        if self.buf_len - self.pos + view.shape[0] > self.max_buffer_size:
            raise BufferFull
        if view.shape[0]:
            self.append(<const char*>&view[0], view.shape[0])

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
        self.check_idle()
        while True:
            if self.pos < self.buf_len:
                end = self.find_end(build)  # skipping checks no limits, as msgpack-python's does not
                if end >= 0:
                    obj = None
                    if build:
                        self.reader.data = <const uint8_t*>(self.buf + self.pos)
                        self.reader.length = end
                        self.reader.pos = 0
                        self.busy = True
                        try:
                            obj = self.reader.read(0)
                        finally:
                            self.busy = False
                    self.pos += end
                    found[0] = True
                    return obj
            if not self.read_file():
                return None

    def unpack(self):
        cdef bint found
        obj = self.next_object(True, &found)
        if not found:
            raise OutOfData("No more data to unpack.")
        return obj

    def skip(self):
        cdef bint found
        self.next_object(False, &found)
        if not found:
            raise OutOfData("No more data to unpack.")

    def __iter__(self):
        return self

    def __next__(self):
        cdef bint found
        obj = self.next_object(True, &found)
        if not found:
            raise StopIteration
        return obj

    cdef Py_ssize_t container_header(self, uint8_t fix, uint8_t marker16) except -1:
        cdef Header h
        cdef uint8_t marker
        cdef int result
        self.check_idle()
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
        return self.container_header(0x90, 0xDC)

    def read_map_header(self):
        return self.container_header(0x80, 0xDE)

    def read_bytes(self, Py_ssize_t n):
        self.check_idle()
        cdef Py_ssize_t taken = min(n, self.buf_len - self.pos)
        result = PyBytes_FromStringAndSize(self.buf + self.pos, taken)
        self.pos += taken
        self.scanning = False
        if taken < n and self.file_read is not None:
            more = self.file_read(n - taken)
            self.offset += len(more)  # read past the (now empty) buffer
            result += more
        return result

    def tell(self):
        return self.offset + self.pos
