# Unpacking: msgpack bytes -> Python objects, built in one pass (rust/igcore-py/src/msgpack/unpack.rs),
# and the wire format's headers, which the streaming Unpacker reads too (igcore_core::msgpack in Rust). Included by _cy_msgpack.pyx.

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
            raise FormatError(_messages.INVALID_BYTE.format(byte=0xC1, offset=self.pos))
        self.pos = h.end
        return 0

    cdef const char* payload(self, uint32_t n, long long limit, str name) except NULL:
        """The `n` bytes at `pos`, once they are all there (else _Incomplete) and within `limit`, the
        option `name`."""
        if <Py_ssize_t>n > self.length - self.pos:
            raise _Incomplete
        if n > limit:
            raise ValueError(_messages.LIMIT_EXCEEDED.format(length=n, limit_name=name, limit=limit))
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
        if self.n_values == self.values_cap:
            self.values = <PyObject**>grown_stack(self.values, &self.values_cap, sizeof(PyObject*), 64, "reader")
        Py_INCREF(obj)
        self.values[self.n_values] = <PyObject*>obj
        self.n_values += 1
        return 0

    cdef int open_frame(self, ReadKind kind, uint32_t n, object dict_obj) except -1:
        if self.n_open == self.frames_cap:
            self.frames = <ReadFrame*>grown_stack(self.frames, &self.frames_cap, sizeof(ReadFrame), 16, "reader")
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
            p = self.payload(h.n, self.max_str, "max_str_len")
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
            p = self.payload(h.n, self.max_bin, "max_bin_len")
            return PyBytes_FromStringAndSize(p, h.n)
        p = self.payload(h.n, self.max_ext, "max_ext_len")  # K_EXT
        return self.ext(h.code, p, h.n)

    cdef int open_container(self, uint32_t n, Py_ssize_t open_containers, long long limit, str name) except -1:
        if open_containers >= MAX_OPEN_CONTAINERS:
            raise StackError(_messages.NESTED_TOO_DEEP.format(levels=MAX_OPEN_CONTAINERS))
        if n > limit:
            raise ValueError(_messages.LIMIT_EXCEEDED.format(length=n, limit_name=name, limit=limit))
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
            raise ValueError(_messages.MAP_KEY_NOT_ALLOWED.format(type=type_name(key)))
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
            raise ValueError(_messages.INVALID_TIMESTAMP.format(length=n))
        if nanoseconds > 999999999:
            raise ValueError(_messages.TIMESTAMP_NANOSECONDS)
        if self.timestamp == 1:
            return <double>seconds + <double>nanoseconds / 1e9
        if self.timestamp == 2:
            return <object>seconds * 1000000000 + nanoseconds
        if self.timestamp == 3:
            if not -2147483648 <= seconds // 86400 <= 2147483647:  # C division: toward zero
                raise OverflowError(_messages.TIMESTAMP_DAYS_OVERFLOW.format(days=seconds // 86400))
            return _EPOCH + _TIMEDELTA(0, seconds, nanoseconds // 1000)
        return Timestamp(seconds, nanoseconds)


def unpackb(data, options):
    """See igcore._reference.msgpack.unpackb."""
    cdef const uint8_t[::1] view = data
    cdef Py_ssize_t length = view.shape[0]
    cdef _Reader reader = take_reader(options, length)
    reader.data = &view[0] if length else <const uint8_t*>b""
    reader.length = length
    reader.pos = 0
    try:
        obj = reader.read()
    except _Incomplete:
        raise ValueError(_messages.INCOMPLETE_INPUT) from None
    finally:
        give_back_reader(reader)
    if reader.pos < reader.length:
        raise ExtraData(obj, bytes(view[reader.pos:]))
    return obj
