//! Borrowing the bytes of a `bytes` object or of any buffer without copying them.

use std::mem::MaybeUninit;

use pyo3::ffi;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

/// The bytes of `bytes` or of a C-contiguous buffer (the public layer hands over nothing else), held
/// for as long as this lives.
pub(crate) enum ByteView<'py> {
    Bytes(Bound<'py, PyBytes>),
    Buffer(Box<ffi::Py_buffer>),
}

impl<'py> ByteView<'py> {
    pub fn new(obj: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(bytes) = obj.cast::<PyBytes>() {
            return Ok(Self::Bytes(bytes.clone()));
        }
        let mut view = Box::new(MaybeUninit::<ffi::Py_buffer>::uninit());
        // SAFETY: `obj` is a live object and `view` points to writable memory for one Py_buffer;
        // PyBUF_SIMPLE asks for a contiguous buffer of bytes, and a failure sets a Python error.
        if unsafe { ffi::PyObject_GetBuffer(obj.as_ptr(), view.as_mut_ptr(), ffi::PyBUF_SIMPLE) }
            != 0
        {
            return Err(PyErr::fetch(obj.py()));
        }
        // SAFETY: PyObject_GetBuffer succeeded, so it initialised the Py_buffer.
        Ok(Self::Buffer(unsafe {
            Box::from_raw(Box::into_raw(view).cast())
        }))
    }

    pub fn as_slice(&self) -> &[u8] {
        match self {
            Self::Bytes(bytes) => bytes.as_bytes(),
            Self::Buffer(view) => {
                if view.buf.is_null() || view.len <= 0 {
                    return &[];
                }
                // SAFETY: the exporter keeps `len` bytes at `buf` readable until PyBuffer_Release,
                // which only Drop calls; `len` is positive here.
                unsafe { std::slice::from_raw_parts(view.buf as *const u8, view.len as usize) }
            }
        }
    }
}

impl Drop for ByteView<'_> {
    fn drop(&mut self) {
        if let Self::Buffer(view) = self {
            // SAFETY: the view was filled by PyObject_GetBuffer and is released exactly once; a
            // ByteView only lives inside a call that holds the GIL.
            unsafe { ffi::PyBuffer_Release(&mut **view) };
        }
    }
}
