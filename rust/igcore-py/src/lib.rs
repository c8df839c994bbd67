//! The extension module `igcore._rust`: one submodule per hot path, each a thin layer over
//! `igcore-core` that borrows numpy arrays, releases the GIL for the work and maps errors.

#![deny(clippy::undocumented_unsafe_blocks)]

use pyo3::prelude::*;

mod codec;
mod counters;
mod error;
mod graph;
mod msgpack;
mod timeline;

#[pymodule]
fn _rust(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    counters::register(m)?;
    timeline::register(m)?;
    codec::register(m)?;
    graph::register(m)?;
    msgpack::register(m)?;
    Ok(())
}

/// Adds `child` to `parent` as the attribute `name`: the Python side reaches kernels as
/// `igcore._rust.<hot path>.<kernel>`.
pub(crate) fn add_hot_path<'py>(
    parent: &Bound<'py, PyModule>,
    name: &str,
    fill: impl FnOnce(&Bound<'py, PyModule>) -> PyResult<()>,
) -> PyResult<()> {
    let child = PyModule::new(parent.py(), name)?;
    fill(&child)?;
    parent.add_submodule(&child)
}
