# Packing: Python objects -> msgpack bytes. The exact built-in types are recognised first, everything
# else takes msgpack-python's order of checks (rust/igcore-py/src/msgpack/pack.rs). Included by _cy_msgpack.pyx.

# -- the wire format: writing headers -----------------------------------------------------------------------

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
        raise OverflowError(_messages.EXT_CODE_TOO_LARGE)
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
        if self.n_open == self.frames_cap:
            self.frames = <PackFrame*>grown_stack(self.frames, &self.frames_cap, sizeof(PackFrame), 16, "packer")
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
                    raise RuntimeError(_messages.CHANGED_SIZE.format(what=what))
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
                raise ValueError(_messages.STR_TOO_LARGE)
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
                    raise ValueError(_messages.RECURSION_LIMIT)
                item = ptr_list_item(top.container, top.written)
                top.written += 1
                if not self.write_scalar(item):
                    return <object>item  # a reference taken, so a `default` cannot free it
            return _END
        if top.kind == P_TUPLE:
            while top.written < top.len:
                if depth > NEST_LIMIT:
                    raise ValueError(_messages.RECURSION_LIMIT)
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
                    raise RuntimeError(_messages.CHANGED_SIZE.format(what="dictionary"))
                if not ptr_dict_next(top.container, &top.pos, &key, &value):
                    return _END
                if depth > NEST_LIMIT:
                    raise ValueError(_messages.RECURSION_LIMIT)
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
            raise ValueError(_messages.RECURSION_LIMIT)
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
                    raise OverflowError(_messages.INT_OUT_OF_RANGE)
                write_uint(&self.out, uvalue)
            elif will_default:
                return 1
            else:
                raise OverflowError(_messages.INT_OUT_OF_RANGE)
        elif PyFloat_CheckExact(obj) if strict else PyFloat_Check(obj):
            self.write_float(PyFloat_AS_DOUBLE(obj))
        elif (PyBytes_CheckExact(obj) or PyByteArray_CheckExact(obj)) if strict else (
            PyBytes_Check(obj) or PyByteArray_Check(obj)
        ):
            if Py_SIZE(obj) > ITEM_LIMIT:
                raise ValueError(_messages.OBJECT_TOO_LARGE.format(type=type_name(obj)))
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
                raise ValueError(_messages.EXT_TOO_LARGE)
            write_ext_header(&self.out, obj.code, view.shape[0])
            if view.shape[0]:
                out_write(&self.out, &view[0], view.shape[0])
        elif type(obj) is Timestamp:
            seconds = obj.seconds
            if not -(2**63) <= seconds < 2**63:
                raise OverflowError(_messages.INT_TOO_LARGE_FOR_C_LONG)
            write_timestamp(&self.out, seconds, obj.nanoseconds)
        elif PyList_CheckExact(obj) if strict else (PyList_Check(obj) or PyTuple_Check(obj)):
            self.write_list(obj)
        elif PyMemoryView_Check(obj):
            if not obj.c_contiguous:
                raise BufferError(_messages.MEMORYVIEW_NOT_CONTIGUOUS)
            view = obj.cast("B") if obj.ndim != 1 or obj.format != "B" else obj
            if view.shape[0] > ITEM_LIMIT:
                raise ValueError(_messages.MEMORYVIEW_TOO_LARGE)
            write_bin_header(&self.out, view.shape[0], self.use_bin_type)
            if view.shape[0]:
                out_write(&self.out, &view[0], view.shape[0])
        elif self.datetime and type(obj) is _DATETIME and obj.tzinfo is not None:
            delta = obj - _EPOCH
            write_timestamp(&self.out, delta.days * 86400 + delta.seconds, delta.microseconds * 1000)
        elif will_default:
            return 1
        elif self.datetime and type(obj) is _DATETIME:
            raise ValueError(_messages.NAIVE_DATETIME.format(type=type_name(obj)))
        else:
            raise TypeError(_messages.CANNOT_SERIALIZE.format(type=type_name(obj)))
        return 0

    cdef int write_float(self, double value) except -1:
        cdef float single
        cdef uint32_t bits32
        cdef uint64_t bits64
        if self.use_single_float:
            single = <float>value  # rounds to nearest, as CPython's float packing does
            if isinf(single) and not isinf(value):
                raise OverflowError(_messages.FLOAT_TOO_LARGE)
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
            raise ValueError(_messages.STR_TOO_LARGE)
        write_str_header(&self.out, n, self.use_bin_type)
        return out_write(&self.out, data, n)

    cdef int write_header(self, Py_ssize_t n, str too_large, uint8_t fix, uint8_t marker16) except -1:
        """The header of a container of `n` items (pairs), at most ITEM_LIMIT (else `too_large`)."""
        if n > ITEM_LIMIT:
            raise ValueError(too_large)
        return write_container_header(&self.out, n, fix, marker16)

    cdef int write_dict(self, object obj) except -1:
        """The map header, then the dict opened for its pairs."""
        cdef Py_ssize_t n = PyDict_Size(obj)
        self.write_header(n, _messages.DICT_TOO_LARGE, 0x80, 0xDE)
        if PyDict_CheckExact(obj):
            return self.open_frame(P_DICT, obj, n)
        # A subclass may define its own items() (OrderedDict's order, for one): use it.
        return self.open_frame(P_ITEMS, iter(obj.items()), n)

    cdef int write_list(self, object obj) except -1:
        """The array header, then the list or tuple opened for its items."""
        cdef Py_ssize_t n = Py_SIZE(obj)
        self.write_header(n, _messages.LIST_TOO_LARGE, 0x90, 0xDC)
        if PyList_CheckExact(obj):
            return self.open_frame(P_LIST, obj, n)
        if PyTuple_CheckExact(obj):
            return self.open_frame(P_TUPLE, obj, n)
        return self.open_frame(P_ITER, iter(obj), n)  # a subclass may define its own __iter__


cdef bytes pack_lone_bytes(bytes obj, bint use_bin_type):
    """A bytes object packed alone (a blob) is copied once, straight into the answer, instead of into the
    scratch buffer and then out of it (as in the Rust backend)."""
    cdef Output header
    header.data, header.len, header.cap = NULL, 0, 0
    cdef bytes packed
    try:
        write_bin_header(&header, PyBytes_GET_SIZE(obj), use_bin_type)
        packed = PyBytes_FromStringAndSize(NULL, header.len + PyBytes_GET_SIZE(obj))
        memcpy(PyBytes_AS_STRING(packed), header.data, header.len)
        memcpy(PyBytes_AS_STRING(packed) + header.len, PyBytes_AS_STRING(obj), PyBytes_GET_SIZE(obj))
        return packed
    finally:
        free(header.data)


def packb(obj, options):
    """See igcore._reference.msgpack.packb."""
    if PyBytes_CheckExact(obj) and PyBytes_GET_SIZE(obj) <= ITEM_LIMIT:
        return pack_lone_bytes(obj, options.use_bin_type)
    cdef _Writer writer = take_writer(options)
    try:
        writer.pack(obj, 0)
        return writer.take(False)
    finally:
        give_back_writer(writer)


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
        return self.pack_now(obj, False)

    def pack_map_pairs(self, pairs):
        return self.pack_now(pairs, True)

    cdef object pack_now(self, obj, bint as_pairs):
        """pack(obj), or pack_map_pairs(obj) when `as_pairs`. When it raises, the buffer is emptied."""
        call_enter(&self.busy, "Packer")
        try:
            try:
                if as_pairs:
                    n = len(obj)
                    if n > ITEM_LIMIT:
                        raise ValueError(_messages.MAP_HEADER_TOO_LARGE)
                    write_container_header(&self.writer.out, n, 0x80, 0xDE)
                    for key, value in obj:
                        self.writer.pack(key, 0)
                        self.writer.pack(value, 0)
                else:
                    self.writer.pack(obj, 0)
            except BaseException:
                self.writer.out.len = 0
                raise
            return self.finish()
        finally:
            call_leave(&self.busy)

    def pack_array_header(self, long long size):
        return self.pack_container_header(size, _messages.ARRAY_SIZE_NEGATIVE, _messages.ARRAY_HEADER_TOO_LARGE,
                                          0x90, 0xDC)

    def pack_map_header(self, long long size):
        return self.pack_container_header(size, _messages.MAP_SIZE_NEGATIVE, _messages.MAP_HEADER_TOO_LARGE,
                                          0x80, 0xDE)

    cdef object pack_container_header(self, long long size, str negative, str too_large, uint8_t fix,
                                      uint8_t marker16):
        call_enter(&self.busy, "Packer")
        try:
            if size < 0:
                raise ValueError(negative)
            if size > ITEM_LIMIT:
                raise ValueError(too_large)
            write_container_header(&self.writer.out, size, fix, marker16)
            return self.finish()
        finally:
            call_leave(&self.busy)

    def pack_ext_type(self, long long code, data):
        cdef const unsigned char[::1] view = memoryview(data).cast("B")
        call_enter(&self.busy, "Packer")
        try:
            if view.shape[0] > ITEM_LIMIT:
                raise ValueError(_messages.EXT_HEADER_TOO_LARGE)
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
