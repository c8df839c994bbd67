# The writer and the reader kept between packb and unpackb calls: most messages are small, and setting
# them up anew would cost more than the call (rust/igcore-py/src/msgpack/reuse.rs). Included by _cy_msgpack.pyx.

cdef Py_ssize_t MAX_KEPT_OUTPUT = 1 << 20  # the kept writer's buffer is given back after one larger object
cdef Py_ssize_t MAX_KEPT_VALUES = 1 << 16  # a value stack grown beyond this by one message is given back

cdef _Writer _scratch = _Writer()
cdef object _scratch_options = None  # the options _scratch was configured with
cdef bint _scratch_busy = False
cdef _Reader _reader = _Reader()
cdef object _reader_options = None  # the options _reader was configured with
cdef bint _reader_busy = False


cdef _Writer take_writer(options):
    """The writer for one packb call: the one kept between calls, so that its buffer is grown once and
    its options read once, or a new one for a call made inside another (a `default` that calls packb
    itself). give_back_writer(writer) when the call is done."""
    global _scratch_busy, _scratch_options
    cdef _Writer writer
    if _scratch_busy:
        writer = _Writer()
        writer.configure(options)
        return writer
    _scratch_busy = True
    writer = _scratch
    writer.out.len = 0
    if options is not _scratch_options:
        try:
            writer.configure(options)
        except BaseException:
            _scratch_busy = False
            raise
        _scratch_options = options
    return writer


cdef void give_back_writer(_Writer writer) noexcept:
    global _scratch_busy
    if writer is not _scratch:
        return
    _scratch_busy = False
    if writer.out.cap > MAX_KEPT_OUTPUT:
        free(writer.out.data)
        writer.out.data = NULL
        writer.out.cap = 0


cdef _Reader take_reader(options, Py_ssize_t length):
    """The reader for one unpackb call of `length` bytes: the one kept between calls, its options read
    again only when they change, or a new one for a call made inside another (a hook that calls
    unpackb itself). give_back_reader(reader) when the call is done."""
    global _reader_busy, _reader_options
    cdef _Reader reader
    if _reader_busy:
        reader = _Reader()
        reader.configure(options, length)
        return reader
    reader = _reader
    if options is not _reader_options:
        reader.configure(options, length)
        _reader_options = options
    else:
        reader.set_limits(length)
    _reader_busy = True
    return reader


cdef void give_back_reader(_Reader reader) noexcept:
    global _reader_busy
    if reader is _reader:
        _reader_busy = False
