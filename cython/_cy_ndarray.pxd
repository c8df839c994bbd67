# numpy arrays checked and read through their public header fields (see _cy_ndarray.h), without numpy's
# headers at build time and without a buffer request per array.

from cpython.object cimport PyObject

cdef extern from "_cy_ndarray.h":
    ctypedef struct NdArray "igcore_ndarray":
        char* data
        int nd
        Py_ssize_t* dimensions
        PyObject* descr
        int flags
    int C_CONTIGUOUS "IGCORE_NDARRAY_C_CONTIGUOUS"
    int ALIGNED "IGCORE_NDARRAY_ALIGNED"


cdef inline bint is_column(object array, type ndarray):
    """Whether `array` is an exact `ndarray` (numpy.ndarray), 1-D, C-contiguous and aligned."""
    if type(array) is not ndarray:
        return False
    cdef NdArray* a = <NdArray*><PyObject*>array
    return a.nd == 1 and (a.flags & (C_CONTIGUOUS | ALIGNED)) == (C_CONTIGUOUS | ALIGNED)


cdef inline bint is_exactly_of(object array, object dtype):
    """Whether an array that is_column accepted holds numpy's own `dtype` object (as arrays nearly
    always do): a pointer comparison."""
    return (<NdArray*><PyObject*>array).descr == <PyObject*>dtype


cdef inline bint is_of(object array, object dtype):
    """Whether an array that is_column accepted has `dtype` or a dtype equal to it."""
    return is_exactly_of(array, dtype) or <object>(<NdArray*><PyObject*>array).descr == dtype


cdef inline Py_ssize_t column_length(object array):
    """The length of an array that is_column accepted."""
    return (<NdArray*><PyObject*>array).dimensions[0]


cdef inline const void* column_data(object array):
    """The first element of an array that is_column accepted."""
    return (<NdArray*><PyObject*>array).data
