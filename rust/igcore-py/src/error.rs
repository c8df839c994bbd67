//! Where core errors cross into Python: one variant, one exception class.

use igcore_core::Error;
use numpy::AsSliceError;
use pyo3::exceptions::{PyKeyError, PyOverflowError, PyValueError};
use pyo3::PyErr;

pub(crate) fn py_err(err: Error) -> PyErr {
    match err {
        Error::InvalidInput(msg) => PyValueError::new_err(msg),
        Error::Overflow(msg) => PyOverflowError::new_err(msg),
        Error::UnknownId(id) => PyKeyError::new_err(id),
    }
}

/// The public Python layer hands kernels contiguous arrays; this guards the border all the same.
pub(crate) fn not_contiguous(name: &'static str) -> impl Fn(AsSliceError) -> PyErr {
    move |_| PyValueError::new_err(format!("{name} must be a C-contiguous array"))
}
