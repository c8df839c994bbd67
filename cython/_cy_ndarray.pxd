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


cdef inline bint is_column(object array, type ndarray, object dtype):
    """Whether `array` is an exact `ndarray` (numpy.ndarray), 1-D, C-contiguous and aligned, of `dtype`
    (numpy's own object for it, as arrays nearly always hold, or one equal to it)."""
    if type(array) is not ndarray:
        return False
    cdef NdArray* a = <NdArray*><PyObject*>array
    if a.nd != 1 or (a.flags & (C_CONTIGUOUS | ALIGNED)) != (C_CONTIGUOUS | ALIGNED):
        return False
    return a.descr == <PyObject*>dtype or <object>a.descr == dtype


cdef inline Py_ssize_t column_length(object array):
    """The length of an array that is_column accepted."""
    return (<NdArray*><PyObject*>array).dimensions[0]


cdef inline const void* column_data(object array):
    """The first element of an array that is_column accepted."""
    return (<NdArray*><PyObject*>array).data
