# Small integer and float helpers shared by the Cython backends (the same rules as the reference).

from libc.stdint cimport INT64_MAX, int64_t
from libc.string cimport memcpy


cdef inline int64_t floor_div(int64_t a, int64_t b) noexcept nogil:
    """Floor division for b >= 1, as Python's //. Right whether `//` below divides as C does (toward
    zero) or as Python does (the cdivision directive): a negative remainder is floored here."""
    cdef int64_t q = a // b
    if a - q * b < 0:
        q -= 1
    return q


cdef inline int64_t float_bits_key(double score) noexcept nogil:
    """The order-preserving int64 key of a float64's bits: keys compare as the floats do."""
    cdef int64_t bits
    memcpy(&bits, &score, 8)
    return bits ^ ((bits >> 63) & INT64_MAX)


cdef inline double key_float_bits(int64_t key) noexcept nogil:
    """The float64 of a key made by float_bits_key."""
    cdef int64_t bits = key ^ ((key >> 63) & INT64_MAX)
    cdef double score
    memcpy(&score, &bits, 8)
    return score
