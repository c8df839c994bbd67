//! igcore's hot paths in plain Rust.
//!
//! Nothing here knows about Python: the `igcore-py` crate converts arguments, releases the GIL and maps
//! [`Error`] to Python exceptions. Each module is one hot path; the pure-Python reference in
//! `src/igcore/_reference/` defines what every function must return.

#![deny(clippy::undocumented_unsafe_blocks)]

pub mod codec;
pub mod counters;
pub mod error;
pub mod graph;
pub mod id_index;
pub mod msgpack;
pub mod numbers;
pub mod timeline;

pub use error::{Error, Result};
