//! The one error type of the core. The binding crate maps each variant to one Python exception class,
//! so a message reads the same whichever backend raised it.

use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    /// Arguments that do not fit together (lengths, ranges). Python: `ValueError`.
    #[error("{0}")]
    InvalidInput(String),
    /// A result that does not fit in its integer type. Python: `OverflowError`.
    #[error("{0}")]
    Overflow(String),
    /// An allocation too big for the memory available (a size read from input). Python: `MemoryError`.
    #[error("{0}")]
    OutOfMemory(String),
    /// An id that names no user (of a graph). Python: `KeyError(id)`.
    #[error("unknown id {0}")]
    UnknownId(i64),
}

pub type Result<T> = std::result::Result<T, Error>;
