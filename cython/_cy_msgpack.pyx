# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The msgpack codec in Cython. The contract is in igcore/_reference/msgpack.py; the design is the one
of the Rust backend (rust/igcore-core/src/msgpack.rs for the wire format, rust/igcore-py/src/msgpack/
for the objects): exact types first by their type pointer, a growing C buffer, one pass over the bytes
building lists and dicts at their final size, a cache of short map keys, and a resumable scanner that
finds where a streamed object ends before it is built.

The parts follow the Rust binding's modules (rust/igcore-py/src/msgpack/): msgpack/buffer.pxi (the
output buffer), pack.pxi, unpack.pxi (with the wire format's headers, which the Rust core holds),
stream.pxi (Unpacker), keys.pxi (the cache of short map keys) and reuse.pxi (the writer and reader kept
between calls)."""

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

from igcore import _messages

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


include "msgpack/buffer.pxi"
include "msgpack/pack.pxi"
include "msgpack/keys.pxi"
include "msgpack/unpack.pxi"
include "msgpack/stream.pxi"
include "msgpack/reuse.pxi"


# The kernels, as src/igcore/_kernels/msgpack.pyi states them.
__all__ = ["Packer", "Unpacker", "packb", "unpackb"]
