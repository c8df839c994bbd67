//! The extension module `igcore._rust`: one submodule per hot path, each a thin layer over
//! `igcore-core` that borrows numpy arrays, releases the GIL for the work (see `guard`) and lets core
//! errors cross into Python in one place (see `error`).

#![deny(clippy::undocumented_unsafe_blocks)]

use pyo3::prelude::*;
use pyo3::types::PyDict;

mod codec;
mod counters;
mod error;
mod graph;
mod guard;
mod msgpack;
mod timeline;

// Declared, not yet tested: on a free-threaded Python (3.13t and later) importing this module turns the
// GIL back on, as for any extension that has not been checked without it (README, "Python versions").
#[pymodule(gil_used = true)]
fn _rust(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    let thresholds = PyDict::new(m.py());
    for (name, size) in guard::GIL_RELEASE_ABOVE {
        thresholds.set_item(name, size)?;
    }
    m.add("_GIL_RELEASE_ABOVE", thresholds)?;
    m.add_function(wrap_pyfunction!(error::_error_examples, m)?)?;
    counters::register(m)?;
    timeline::register(m)?;
    codec::register(m)?;
    graph::register(m)?;
    msgpack::register(m)?;
    Ok(())
}

/// Adds the hot path `name` as the submodule `igcore._rust.<name>`: an attribute of `parent` and an
/// entry of `sys.modules` under its qualified name, so that `import igcore._rust.<name>` works (as
/// PyO3's guide does it for submodules). Kernels are reached as `igcore._rust.<name>.<kernel>`; each
/// class says `module = "igcore._rust.<name>"`.
pub(crate) fn add_hot_path<'py>(
    parent: &Bound<'py, PyModule>,
    name: &str,
    fill: impl FnOnce(&Bound<'py, PyModule>) -> PyResult<()>,
) -> PyResult<()> {
    let py = parent.py();
    let qualified = format!("igcore._rust.{name}");
    let child = PyModule::new(py, &qualified)?;
    fill(&child)?;
    parent.add(name, &child)?;
    py.import("sys")?
        .getattr("modules")?
        .set_item(&qualified, &child)
}
