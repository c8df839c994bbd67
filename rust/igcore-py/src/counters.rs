use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::error::{not_contiguous, py_err};

type Int64Array<'py> = Bound<'py, PyArray1<i64>>;

/// See `igcore._reference.counters.aggregate`.
#[pyfunction]
#[pyo3(signature = (keys, deltas=None))]
fn aggregate<'py>(
    py: Python<'py>,
    keys: PyReadonlyArray1<'py, i64>,
    deltas: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<(Int64Array<'py>, Int64Array<'py>)> {
    let keys = keys.as_slice().map_err(not_contiguous("keys"))?;
    let deltas = match &deltas {
        Some(d) => Some(d.as_slice().map_err(not_contiguous("deltas"))?),
        None => None,
    };
    let totals = py
        .detach(|| igcore_core::counters::aggregate(keys, deltas))
        .map_err(py_err)?;
    Ok((totals.keys.into_pyarray(py), totals.sums.into_pyarray(py)))
}

pub(crate) fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    crate::add_hot_path(parent, "counters", |m| {
        m.add_function(wrap_pyfunction!(aggregate, m)?)
    })
}
