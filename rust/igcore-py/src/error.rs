//! Where errors cross into Python, in one place.
//!
//! The core says what went wrong as data ([`igcore_core::Error`]: one variant per fact, its words in
//! its `Display`, its exception class in [`igcore_core::Error::kind`]). Kernels return
//! `Result<T, KernelError>`, so that a bare `?` carries a core error (or a Python one) across the
//! border, and [`KernelError`]'s conversion into `PyErr` raises the class the kind names, msgpack's
//! `FormatError` and `StackError` included. The few sentences that only the binding says (checks on
//! Python objects the core never sees, and the guard's) are the functions below.
//!
//! `igcore._rust._error_examples()` lists one example of every core variant as
//! `(variant, exception class, message, facts)`, for a test that formats the template of the same
//! fact in `igcore._messages` (named by the variant in UPPER_SNAKE case: `NotFeedOrder` ->
//! `NOT_FEED_ORDER`) with the facts and compares the words.

use igcore_core::error::{ErrorKind, Fact, GraphError};
use igcore_core::Error;
use numpy::{Element, PyReadonlyArray1};
use pyo3::exceptions::{
    PyKeyError, PyMemoryError, PyOverflowError, PyRuntimeError, PyTypeError, PyValueError,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use pyo3::PyErr;

/// A kernel's error: a fact of the core, or an exception Python already raised.
pub(crate) enum KernelError {
    Core(Error),
    Python(PyErr),
}

pub(crate) type KernelResult<T> = Result<T, KernelError>;

/// `?` on a core result, of the one error type or of one hot path's.
macro_rules! from_core {
    ($($family:ty),*) => {
        $(impl From<$family> for KernelError {
            fn from(err: $family) -> Self {
                KernelError::Core(err.into())
            }
        })*
    };
}

from_core!(
    Error,
    igcore_core::error::TimelineError,
    igcore_core::error::CounterError,
    igcore_core::error::CodecError,
    igcore_core::error::GraphError,
    igcore_core::error::WireError,
    igcore_core::error::TimestampError
);

impl From<PyErr> for KernelError {
    fn from(err: PyErr) -> Self {
        KernelError::Python(err)
    }
}

impl From<KernelError> for PyErr {
    fn from(err: KernelError) -> PyErr {
        match err {
            KernelError::Core(err) => core_to_python(err),
            KernelError::Python(err) => err,
        }
    }
}

/// The exception of a core error: its kind's class, with its message (`KeyError` with the id).
fn core_to_python(err: Error) -> PyErr {
    let message = err.to_string();
    match err.kind() {
        ErrorKind::Value => PyValueError::new_err(message),
        ErrorKind::Overflow => PyOverflowError::new_err(message),
        ErrorKind::Memory => PyMemoryError::new_err(message),
        ErrorKind::Type => PyTypeError::new_err(message),
        ErrorKind::Key => match err {
            Error::Graph(GraphError::UnknownId { id }) => PyKeyError::new_err(id),
            _ => PyKeyError::new_err(message),
        },
        kind @ (ErrorKind::Format | ErrorKind::Stack) => Python::attach(|py| {
            let api = match crate::msgpack::api(py) {
                Ok(api) => api,
                Err(failed) => return failed,
            };
            let class = if kind == ErrorKind::Format {
                &api.format_error
            } else {
                &api.stack_error
            };
            match class.bind(py).call1((message,)) {
                Ok(error) => PyErr::from_value(error),
                Err(failed) => failed,
            }
        }),
    }
}

/// A msgpack wire (or timestamp) error as the exception msgpack-python raises: through the one
/// conversion, like every core error.
pub(crate) fn wire(err: impl Into<Error>) -> PyErr {
    KernelError::Core(err.into()).into()
}

// -- the binding's own sentences ----------------------------------------------------------------------

/// The borrowed elements of a 1-D array the public layer made contiguous; the border is guarded all
/// the same.
pub(crate) fn contiguous<'a, T: Element>(
    array: &'a PyReadonlyArray1<'_, T>,
    name: &'static str,
) -> PyResult<&'a [T]> {
    array.as_slice().map_err(|_| not_contiguous(name))
}

pub(crate) fn not_contiguous(name: &str) -> PyErr {
    PyValueError::new_err(format!("{name} must be a C-contiguous array"))
}

/// See `guard`: the object's lock was poisoned by a panic in a change.
pub(crate) fn poisoned() -> KernelError {
    KernelError::Python(PyRuntimeError::new_err(
        "this object is unusable after an internal error in another call",
    ))
}

/// See `guard::one_call_at_a_time`.
pub(crate) fn busy(class: &str) -> PyErr {
    PyRuntimeError::new_err(format!(
        "{class} cannot be called while another call on it is in progress"
    ))
}

// -- _error_examples ----------------------------------------------------------------------------------

type Example<'py> = (&'static str, &'static str, String, Bound<'py, PyDict>);

/// `[(variant, exception class, message, facts)]`: one example of every core error variant.
#[pyfunction]
pub(crate) fn _error_examples(py: Python<'_>) -> PyResult<Vec<Example<'_>>> {
    Error::examples()
        .into_iter()
        .map(|err| {
            let facts = PyDict::new(py);
            for (name, fact) in err.facts() {
                match fact {
                    Fact::Int(value) => facts.set_item(name, value)?,
                    Fact::Text(text) => facts.set_item(name, text)?,
                }
            }
            let message = match &err {
                // As the exception reads: str(KeyError(7)) is "7".
                Error::Graph(GraphError::UnknownId { id }) => id.to_string(),
                _ => err.to_string(),
            };
            Ok((err.name(), err.kind().python_class(), message, facts))
        })
        .collect()
}
