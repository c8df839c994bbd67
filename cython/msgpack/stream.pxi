# The streaming Unpacker: a buffer fed with bytes (or read from a file), each object built once all of
# its bytes are there (rust/igcore-py/src/msgpack/stream.rs). Included by _cy_msgpack.pyx.

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
            raise TypeError(_messages.READ_NOT_BYTES.format(type=type(chunk).__name__))
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
                raise FormatError(_messages.INVALID_BYTE.format(byte=0xC1, offset=self.scan_offset))
            items = 0
            if h.kind == K_STR or h.kind == K_BIN or h.kind == K_EXT:
                if <Py_ssize_t>h.n > avail - h.end:
                    return -1
                h.end += h.n
            elif h.kind == K_ARRAY or h.kind == K_MAP:
                if self.scan_depth >= MAX_OPEN_CONTAINERS:
                    self.scanning = False
                    raise StackError(_messages.NESTED_TOO_DEEP.format(levels=MAX_OPEN_CONTAINERS))
                if with_limits and h.kind == K_ARRAY and h.n > self.reader.max_array:
                    self.scanning = False
                    raise ValueError(_messages.LIMIT_EXCEEDED.format(length=h.n, limit_name="max_array_len", limit=self.reader.max_array))
                if with_limits and h.kind == K_MAP and h.n > self.reader.max_map:
                    self.scanning = False
                    raise ValueError(_messages.LIMIT_EXCEEDED.format(length=h.n, limit_name="max_map_len", limit=self.reader.max_map))
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
        return self.next_call(True, False)

    def skip(self):
        self.next_call(False, False)

    def __iter__(self):
        return self

    def __next__(self):
        return self.next_call(True, True)

    cdef object next_call(self, bint build, bint iterating):
        """unpack, skip and __next__: the next object (built, or skipped) or, at the end of the data,
        StopIteration when `iterating`, else OutOfData."""
        cdef bint found
        call_enter(&self.busy, "Unpacker")
        try:
            obj = self.next_object(build, &found)
        finally:
            call_leave(&self.busy)
        if not found:
            if iterating:
                raise StopIteration
            raise OutOfData(_messages.NO_MORE_DATA)
        return obj

    cdef Py_ssize_t container_header(self, uint8_t fix, uint8_t marker16) except -1:
        """read_array_header and read_map_header: the item count of the container header next."""
        call_enter(&self.busy, "Unpacker")
        try:
            return self.container_header_now(fix, marker16)
        finally:
            call_leave(&self.busy)

    cdef Py_ssize_t container_header_now(self, uint8_t fix, uint8_t marker16) except -1:
        cdef Header h
        cdef uint8_t marker
        cdef int result
        while True:
            if self.pos < self.buf_len:
                marker = <uint8_t>self.buf[self.pos]
                if not (fix <= marker <= fix + 0x0F or marker == marker16 or marker == marker16 + 1):
                    raise ValueError(_messages.UNEXPECTED_TYPE_HEADER)
                result = read_header(<const uint8_t*>self.buf, self.buf_len, self.pos, &h)
                if result == HEADER_OK:
                    self.pos = h.end
                    self.scanning = False
                    return h.n
            if not self.read_file():
                raise OutOfData(_messages.NO_MORE_DATA)

    def read_array_header(self):
        return self.container_header(0x90, 0xDC)

    def read_map_header(self):
        return self.container_header(0x80, 0xDE)

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
