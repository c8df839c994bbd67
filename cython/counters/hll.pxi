# HyperLogLog: distinct counts with Redis's parameters and hash, register for register
# (rust/igcore-core/src/counters/hll.rs). Included by _cy_counters.pyx.

cdef enum:
    HLL_P = 14
    HLL_REGISTERS = 16384        # 2**HLL_P
    HLL_Q = 50                   # 64 - HLL_P hash bits left for the run of zeros
    HLL_MAX_REGISTER = 51        # HLL_Q + 1
    HLL_BATCH = 64               # ints converted to decimal before any is hashed
cdef uint64_t HLL_SEED = 0xadc83b19ULL
cdef double HLL_ALPHA_INF = 0.721347520444481703680  # 1 / (2 ln 2)


cdef extern from *:
    """
    #define igcore_ctz64(x) __builtin_ctzll(x)
    #if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    #define igcore_from_le64(x) __builtin_bswap64(x)
    #else
    #define igcore_from_le64(x) (x)
    #endif
    """
    int ctz64 "igcore_ctz64"(uint64_t x) noexcept nogil  # the trailing zero bits of x, which is not 0
    uint64_t from_le64 "igcore_from_le64"(uint64_t x) noexcept nogil  # a little-endian word's value


cdef inline uint64_t murmurhash64a(const uint8_t* data, size_t length, uint64_t seed) noexcept nogil:
    """Austin Appleby's MurmurHash64A, as Redis hashes HyperLogLog elements (little-endian words)."""
    cdef uint64_t m = 0xc6a4a7935bd1e995ULL
    cdef int r = 47
    cdef uint64_t h = seed ^ (<uint64_t>length * m)
    cdef uint64_t k
    cdef size_t blocks = length - (length & 7), i, j
    for i in range(0, blocks, 8):
        memcpy(&k, data + i, 8)
        k = from_le64(k)
        k *= m
        k ^= k >> r
        k *= m
        h ^= k
        h *= m
    if length & 7:
        k = 0
        for j in range(length & 7):
            k |= (<uint64_t>data[blocks + j]) << (8 * j)
        h ^= k
        h *= m
    h ^= h >> r
    h *= m
    h ^= h >> r
    return h


cdef inline bint hll_offer(uint8_t* registers, const uint8_t* element, size_t length) noexcept nogil:
    """Adds one element: the low 14 bits of its hash choose the register, the value is one more than
    the trailing zeros of the other 50 bits. True when the register grew."""
    cdef uint64_t hashed = murmurhash64a(element, length, HLL_SEED)
    cdef size_t index = hashed & (HLL_REGISTERS - 1)
    cdef uint64_t rest = (hashed >> HLL_P) | (<uint64_t>1 << HLL_Q)
    cdef uint8_t value = <uint8_t>(ctz64(rest) + 1)  # rest is not 0: bit HLL_Q is set
    if value > registers[index]:
        registers[index] = value
        return True
    return False


cdef const char* DIGIT_PAIRS = (
    b"00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    b"40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    b"8081828384858687888990919293949596979899"
)


cdef inline void put_pair(uint8_t* at, uint32_t pair) noexcept nogil:
    at[0] = DIGIT_PAIRS[2 * pair]
    at[1] = DIGIT_PAIRS[2 * pair + 1]


cdef inline uint64_t eight_digits(uint32_t n) noexcept nogil:
    """The eight decimal digits of `n` < 10**8 (leading zeros kept) as ASCII, the first digit in the
    lowest byte: halves, pairs and digits are split in the lanes of one 64-bit word at once."""
    cdef uint64_t halves = <uint64_t>(n // 10000) | (<uint64_t>(n % 10000) << 32)
    cdef uint64_t hundreds = ((halves * 5243) >> 19) & 0x0000007F0000007FULL  # x // 100, x < 10**4
    cdef uint64_t pairs = hundreds | ((halves - hundreds * 100) << 16)
    cdef uint64_t tens = ((pairs * 103) >> 10) & 0x000F000F000F000FULL  # y // 10, y < 100
    return (tens | ((pairs - tens * 10) << 8)) | 0x3030303030303030ULL


cdef inline size_t decimal(int64_t value, uint8_t* buffer) noexcept nogil:
    """Writes `value`'s decimal digits at the end of the 20-byte `buffer`; returns where they start.
    Eight digits per 64-bit division, then independent 32-bit steps: a short chain of divisions."""
    cdef uint64_t n = <uint64_t>value if value >= 0 else <uint64_t>0 - <uint64_t>value
    cdef uint32_t group, m
    cdef size_t at = 20
    cdef uint64_t word
    while n >= 100000000:
        group = <uint32_t>(n % 100000000)
        n //= 100000000
        at -= 8
        word = eight_digits(group)
        memcpy(buffer + at, &word, 8)  # little-endian: the first digit in the lowest byte
    m = <uint32_t>n
    while m >= 100:
        at -= 2
        put_pair(buffer + at, m % 100)
        m //= 100
    if m >= 10:
        at -= 2
        put_pair(buffer + at, m)
    else:
        at -= 1
        buffer[at] = <uint8_t>(48 + m)
    if value < 0:
        at -= 1
        buffer[at] = 45  # '-'
    return at


cdef double hll_sigma(double x) noexcept nogil:
    # Ertl's correction for registers still at zero, summed until it stops changing.
    cdef double y = 1.0, z = x, previous
    if x == 1.0:
        return INFINITY
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if z == previous:
            return z


cdef double hll_tau(double x) noexcept nogil:
    # Ertl's correction for registers at the largest value.
    cdef double y = 1.0, z, previous
    if x == 0.0 or x == 1.0:
        return 0.0
    z = 1.0 - x
    while True:
        x = sqrt(x)
        previous = z
        y *= 0.5
        z -= (1.0 - x) * (1.0 - x) * y
        if z == previous:
            return z / 3.0


@cython.final  # no subclasses: its cdef methods are direct calls, inlined in the loops
cdef class HyperLogLog:
    """See igcore._reference.counters.HyperLogLog."""

    cdef uint8_t values[HLL_REGISTERS]   # one register per byte
    cdef PyThread_type_lock lock

    def __cinit__(self):
        memset(self.values, 0, HLL_REGISTERS)
        self.lock = lock_new()

    def __dealloc__(self):
        lock_free(self.lock)

    def add_ints(self, const int64_t[::1] items):
        # A batch is converted to decimal before any of it is hashed: hashing a string just written
        # would load its words while the digits' narrower stores are in flight, and stall per item.
        cdef Py_ssize_t i, j, batch, n = items.shape[0]
        cdef uint8_t text[HLL_BATCH][20]
        cdef size_t starts[HLL_BATCH]
        cdef bint changed = False
        with nogil:
            lock_acquire_nogil(self.lock)
            i = 0
            while i < n:
                batch = n - i if n - i < HLL_BATCH else HLL_BATCH
                for j in range(batch):
                    starts[j] = decimal(items[i + j], text[j])
                for j in range(batch):
                    changed |= hll_offer(self.values, text[j] + starts[j], 20 - starts[j])
                i += batch
            lock_release(self.lock)
        return changed

    def add_bytes(self, const uint8_t[::1] buffer, const int64_t[::1] ends):
        cdef Py_ssize_t i, start = 0, n = buffer.shape[0]
        cdef bint changed = False
        for i in range(ends.shape[0]):
            if ends[i] < start or ends[i] > n:
                raise ValueError(_messages.ELEMENT_ENDS_OUT_OF_RANGE)
            start = ends[i]
        if start != n:
            raise ValueError(_messages.ELEMENTS_END_EARLY)
        start = 0
        with nogil:
            lock_acquire_nogil(self.lock)
            for i in range(ends.shape[0]):
                # &buffer[start] would be out of bounds for an empty element at the end.
                changed |= hll_offer(self.values, &buffer[0] + start if n else NULL, ends[i] - start)
                start = ends[i]
            lock_release(self.lock)
        return changed

    def count(self):
        cdef uint32_t histogram[HLL_MAX_REGISTER + 1]
        cdef double m = HLL_REGISTERS, z
        cdef size_t i
        cdef int value
        memset(histogram, 0, sizeof(histogram))
        with nogil:
            lock_acquire_nogil(self.lock)
            for i in range(HLL_REGISTERS):
                histogram[self.values[i] if self.values[i] <= HLL_MAX_REGISTER else HLL_MAX_REGISTER] += 1
            lock_release(self.lock)
            # Redis's estimate, in the same double-precision steps; C's round() rounds half away from 0.
            z = m * hll_tau((m - histogram[HLL_Q + 1]) / m)
            for value in range(HLL_Q, 0, -1):
                z += histogram[value]
                z *= 0.5
            z += m * hll_sigma(histogram[0] / m)
        return <uint64_t>round(HLL_ALPHA_INF * m * m / z)

    def merge(self, HyperLogLog other):
        cdef uint8_t theirs[HLL_REGISTERS]
        cdef size_t i
        with nogil:
            lock_acquire_nogil(other.lock)
            memcpy(theirs, other.values, HLL_REGISTERS)
            lock_release(other.lock)
            lock_acquire_nogil(self.lock)
            for i in range(HLL_REGISTERS):
                if theirs[i] > self.values[i]:
                    self.values[i] = theirs[i]
            lock_release(self.lock)

    def registers(self):
        out = np.empty(HLL_REGISTERS, dtype=np.uint8)
        cdef uint8_t[::1] view = out
        with nogil:
            lock_acquire_nogil(self.lock)
            memcpy(&view[0], self.values, HLL_REGISTERS)
            lock_release(self.lock)
        return out

    def load(self, const uint8_t[::1] registers):
        cdef size_t i
        if registers.shape[0] != HLL_REGISTERS:
            raise ValueError(_messages.REGISTER_COUNT.format(expected=HLL_REGISTERS, got=registers.shape[0]))
        for i in range(HLL_REGISTERS):
            if registers[i] > HLL_MAX_REGISTER:
                raise ValueError(
                    _messages.REGISTER_TOO_LARGE.format(register=i, value=registers[i], max=HLL_MAX_REGISTER)
                )
        with nogil:
            lock_acquire_nogil(self.lock)
            memcpy(self.values, &registers[0], HLL_REGISTERS)
            lock_release(self.lock)
