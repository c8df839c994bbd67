//! Where core errors cross into Python: one variant, one exception class.

use igcore_core::Error;
use numpy::AsSliceError;
use pyo3::exceptions::{PyKeyError, PyMemoryError, PyOverflowError, PyValueError};
use pyo3::PyErr;

pub(crate) fn py_err(err: Error) -> PyErr {
    match err {
        Error::InvalidInput(msg) => PyValueError::new_err(msg),
        Error::Overflow(msg) => PyOverflowError::new_err(msg),
        Error::OutOfMemory(msg) => PyMemoryError::new_err(msg),
        Error::UnknownId(id) => PyKeyError::new_err(id),
    }
}

/// The public Python layer hands kernels contiguous arrays; this guards the border all the same.
pub(crate) fn not_contiguous(name: &'static str) -> impl Fn(AsSliceError) -> PyErr {
    move |_| PyValueError::new_err(format!("{name} must be a C-contiguous array"))
}

/// msgpack's wire errors as msgpack-python raises them: truncated input is a ValueError (from
/// unpackb; the streaming Unpacker waits instead), 0xc1 a FormatError, nesting a StackError, a length
/// over its limit a ValueError.
pub(crate) fn msgpack_err(
    py: pyo3::Python<'_>,
    api: &crate::msgpack::Api,
    err: igcore_core::msgpack::WireError,
) -> PyErr {
    use igcore_core::msgpack::WireError;
    use pyo3::types::PyAnyMethods;
    let class = match err {
        WireError::Incomplete => return PyValueError::new_err("Unpack failed: incomplete input"),
        WireError::TooLong { .. } => return PyValueError::new_err(err.to_string()),
        WireError::Format { .. } => &api.format_error,
        WireError::TooDeep => &api.stack_error,
    };
    match class.bind(py).call1((err.to_string(),)) {
        Ok(error) => PyErr::from_value(error),
        Err(failed) => failed,
    }
}
