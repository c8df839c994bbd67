//! Where errors cross into Python, in one place.
//!
//! The core says what went wrong as data ([`igcore_core::Error`]: one variant per fact, its words in
//! its `Display`, its exception class in [`igcore_core::Error::kind`]). Kernels return
//! `Result<T, KernelError>`, so that a bare `?` carries a core error (or a Python one) across the
//! border, and [`KernelError`]'s conversion into `PyErr` raises the class the kind names, msgpack's
//! `FormatError` and `StackError` included. The sentences that only the binding says (about Python
//! objects the core never sees, msgpack-python's words for them, and the guard's) are the facts of
//! [`BindingError`] below, which cross the same way.
//!
//! `igcore._rust._error_examples()` lists one example of every core variant as
//! `(variant, exception class, message, facts)` (and of every [`BindingError`]), for a test that formats the template of the same
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

impl From<BindingError> for KernelError {
    fn from(err: BindingError) -> Self {
        KernelError::Python(err.into())
    }
}

impl From<KernelError> for PyErr {
    fn from(err: KernelError) -> PyErr {
        match err {
            KernelError::Core(Error::Graph(GraphError::UnknownId { id })) => {
                PyKeyError::new_err(id)
            }
            KernelError::Core(err) => raise(err.kind(), err.to_string()),
            KernelError::Python(err) => err,
        }
    }
}

impl From<BindingError> for PyErr {
    fn from(err: BindingError) -> PyErr {
        raise(err.kind(), err.to_string())
    }
}

/// The exception of a kind, with its message.
fn raise(kind: ErrorKind, message: String) -> PyErr {
    match kind {
        ErrorKind::Value => PyValueError::new_err(message),
        ErrorKind::Overflow => PyOverflowError::new_err(message),
        ErrorKind::Memory => PyMemoryError::new_err(message),
        ErrorKind::Type => PyTypeError::new_err(message),
        ErrorKind::Key => PyKeyError::new_err(message),
        ErrorKind::Runtime => PyRuntimeError::new_err(message),
        ErrorKind::Format | ErrorKind::Stack | ErrorKind::OutOfData => Python::attach(|py| {
            let api = match crate::msgpack::api(py) {
                Ok(api) => api,
                Err(failed) => return failed,
            };
            let class = match kind {
                ErrorKind::Format => &api.format_error,
                ErrorKind::Stack => &api.stack_error,
                _ => &api.out_of_data,
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

fn not_contiguous(name: &'static str) -> PyErr {
    BindingError::NotContiguous { name }.into()
}

/// See `guard`: the object's lock was poisoned by a panic in a change.
pub(crate) fn poisoned() -> KernelError {
    BindingError::ObjectPoisoned.into()
}

/// See `guard::one_call_at_a_time`.
pub(crate) fn busy(name: &'static str) -> PyErr {
    BindingError::CallInProgress { name }.into()
}

igcore_core::error_facts! {
    /// What only the binding says: about the Python objects it is given (msgpack-python's words where
    /// the codec stands in for it), and the guard's refusals. Named like the core's facts.
    pub enum BindingError {
        /// An array the public layer should have made contiguous.
        #[error("{name} must be a C-contiguous array")]
        Value NotContiguous { name: &'static str = "keys" },
        #[error("this object is unusable after an internal error in another call")]
        Runtime ObjectPoisoned,
        /// `name` names the class.
        #[error("{name} cannot be called while another call on it is in progress")]
        Runtime CallInProgress { name: &'static str = "Unpacker" },
        // -- msgpack: packing
        // Packer.pack_array_header, pack_map_header (and pack_map_pairs), pack_ext_type
        #[error("array size must be non-negative")]
        Value ArraySizeNegative,
        #[error("map size must be non-negative")]
        Value MapSizeNegative,
        #[error("array too large")]
        Value ArrayHeaderTooLarge,
        #[error("map too large")]
        Value MapHeaderTooLarge,
        #[error("ext data too large")]
        Value ExtHeaderTooLarge,
        #[error("value too large to convert to char")]
        Overflow ExtCodeTooLarge,
        #[error("recursion limit exceeded.")]
        Value RecursionLimit,
        /// `type_name` (the fact `type`) is the object's type name, as CPython prints it.
        #[error("{type_name} object is too large")]
        Value ObjectTooLarge { type_name as "type": String = "bytes".into() },
        #[error("memoryview is too large")]
        Value MemoryviewTooLarge,
        #[error("can not serialize '{type_name}' object where tzinfo=None")]
        Value NaiveDatetime { type_name as "type": String = "datetime.datetime".into() },
        #[error("can not serialize '{type_name}' object")]
        Type CannotSerialize { type_name as "type": String = "set".into() },
        #[error("Integer value out of range")]
        Overflow IntOutOfRange,
        #[error("float too large to pack with f format")]
        Overflow FloatTooLarge,
        #[error("unicode string is too large")]
        Value StrTooLarge,
        #[error("dict is too large")]
        Value DictTooLarge,
        #[error("list is too large")]
        Value ListTooLarge,
        #[error("EXT data is too large")]
        Value ExtTooLarge,
        #[error("Python int too large to convert to C long")]
        Overflow IntTooLargeForCLong,
        /// A container that changed size while being packed (`what`: "list" or "dictionary").
        #[error("{what} changed size during iteration")]
        Runtime ChangedSize { what: &'static str = "list" },
        // -- msgpack: unpacking
        #[error("file_like.read() must return bytes, not {type_name}")]
        Type ReadNotBytes { type_name as "type": String = "str".into() },
        #[error("No more data to unpack.")]
        OutOfData NoMoreData,
        #[error("Unexpected type header on stream")]
        Value UnexpectedTypeHeader,
        #[error("{type_name} is not allowed for map key when strict_map_key=True")]
        Value MapKeyNotAllowed { type_name as "type": String = "tuple".into() },
        #[error("days={days}; too large to convert to C int")]
        Overflow TimestampDaysOverflow { days: i64 = 3_000_000_000 },
    }
}

// -- _error_examples ----------------------------------------------------------------------------------

type Example<'py> = (&'static str, &'static str, String, Bound<'py, PyDict>);

fn example<'py>(
    py: Python<'py>,
    name: &'static str,
    kind: ErrorKind,
    message: String,
    facts: Vec<(&'static str, Fact)>,
) -> PyResult<Example<'py>> {
    let dict = PyDict::new(py);
    for (field, fact) in facts {
        match fact {
            Fact::Int(value) => dict.set_item(field, value)?,
            Fact::Text(text) => dict.set_item(field, text)?,
        }
    }
    Ok((name, kind.python_class(), message, dict))
}

/// `[(variant, exception class, message, facts)]`: one example of every core error variant, then of
/// every binding error. The message is the exception's `str()` (for `KeyError(7)`, "7").
#[pyfunction]
pub(crate) fn _error_examples(py: Python<'_>) -> PyResult<Vec<Example<'_>>> {
    let core = Error::examples()
        .into_iter()
        .map(|err| example(py, err.name(), err.kind(), err.to_string(), err.facts()));
    let binding = BindingError::examples()
        .into_iter()
        .map(|err| example(py, err.name(), err.kind(), err.to_string(), err.facts()));
    core.chain(binding).collect()
}
