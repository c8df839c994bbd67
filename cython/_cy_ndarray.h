/* The leading fields of numpy's PyArrayObject (numpy/ndarraytypes.h): public, unchanged since numpy 1.7
 * and kept by numpy 2. Reading them costs a few loads where a buffer request costs a call into numpy;
 * the Rust backend's numpy crate reads the same fields. */
#ifndef IGCORE_CY_NDARRAY_H
#define IGCORE_CY_NDARRAY_H
#include <Python.h>

typedef struct {
    PyObject_HEAD
    char *data;
    int nd;
    Py_ssize_t *dimensions;
    Py_ssize_t *strides;
    PyObject *base;
    PyObject *descr;
    int flags;
} igcore_ndarray;

/* numpy's NPY_ARRAY_C_CONTIGUOUS and NPY_ARRAY_ALIGNED. */
#define IGCORE_NDARRAY_C_CONTIGUOUS 0x0001
#define IGCORE_NDARRAY_ALIGNED 0x0100

#endif
