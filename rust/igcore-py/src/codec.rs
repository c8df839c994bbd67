//! `igcore._rust.codec`: the compact id codecs.

use igcore_core::codec::{self, ScoreColumn};
use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::{contiguous, KernelResult};
use crate::guard::{self, maybe_detach, Work};

fn work(size: usize) -> Work {
    Work::sized(size, guard::CODEC_IDS)
}

/// See `igcore._reference.codec.encode_ids`.
#[pyfunction]
fn encode_ids<'py>(
    py: Python<'py>,
    ids: PyReadonlyArray1<'py, i64>,
) -> KernelResult<Bound<'py, PyBytes>> {
    let ids = contiguous(&ids, "ids")?;
    let bytes = maybe_detach(py, work(ids.len()), || codec::encode_ids(ids));
    Ok(PyBytes::new(py, &bytes))
}

/// See `igcore._reference.codec.decode_ids`.
#[pyfunction]
fn decode_ids<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyBytes>,
) -> KernelResult<Bound<'py, PyArray1<i64>>> {
    // A bytes object is immutable, so its buffer may be read without the GIL.
    let data = data.as_bytes();
    let ids = maybe_detach(py, work(data.len()), || codec::decode_ids(data))?;
    Ok(ids.into_pyarray(py))
}

/// See `igcore._reference.codec.encode_entries`: `scores` is an int64 or a float64 array.
#[pyfunction]
fn encode_entries<'py>(
    py: Python<'py>,
    scores: &Bound<'py, PyAny>,
    post_ids: PyReadonlyArray1<'py, i64>,
    author_ids: PyReadonlyArray1<'py, i64>,
) -> KernelResult<Bound<'py, PyBytes>> {
    let post_ids = contiguous(&post_ids, "post_ids")?;
    let author_ids = contiguous(&author_ids, "author_ids")?;
    let bytes = if let Ok(floats) = scores.cast::<PyArray1<f64>>() {
        let floats = floats.readonly();
        let floats = contiguous(&floats, "scores")?;
        maybe_detach(py, work(post_ids.len()), || {
            codec::encode_entries(ScoreColumn::Float(floats), post_ids, author_ids)
        })
    } else {
        let ints = scores.extract::<PyReadonlyArray1<'py, i64>>()?;
        let ints = contiguous(&ints, "scores")?;
        maybe_detach(py, work(post_ids.len()), || {
            codec::encode_entries(ScoreColumn::Int(ints), post_ids, author_ids)
        })
    }?;
    Ok(PyBytes::new(py, &bytes))
}

/// Scores (an int64 or a float64 array), post ids, author ids.
type EntriesTuple<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
);

/// See `igcore._reference.codec.decode_entries`.
#[pyfunction]
fn decode_entries<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyBytes>,
) -> KernelResult<EntriesTuple<'py>> {
    let data = data.as_bytes();
    let decoded = maybe_detach(py, work(data.len()), || codec::decode_entries(data))?;
    let scores = if decoded.float_scores {
        decoded.float_values().into_pyarray(py).into_any()
    } else {
        decoded.keys.into_pyarray(py).into_any()
    };
    Ok((
        scores,
        decoded.post_ids.into_pyarray(py),
        decoded.author_ids.into_pyarray(py),
    ))
}

pub(crate) fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    crate::add_hot_path(parent, "codec", |m| {
        m.add_function(wrap_pyfunction!(encode_ids, m)?)?;
        m.add_function(wrap_pyfunction!(decode_ids, m)?)?;
        m.add_function(wrap_pyfunction!(encode_entries, m)?)?;
        m.add_function(wrap_pyfunction!(decode_entries, m)?)
    })
}
