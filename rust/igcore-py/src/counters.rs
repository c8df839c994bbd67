use std::sync::{Mutex, MutexGuard};

use igcore_core::counters as core;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::{not_contiguous, py_err};

type Int64Array<'py> = Bound<'py, PyArray1<i64>>;
type KeyedTotals<'py> = (Int64Array<'py>, Int64Array<'py>);

/// See `igcore._reference.counters.aggregate`.
#[pyfunction]
#[pyo3(signature = (keys, deltas=None))]
fn aggregate<'py>(
    py: Python<'py>,
    keys: PyReadonlyArray1<'py, i64>,
    deltas: Option<PyReadonlyArray1<'py, i64>>,
) -> PyResult<KeyedTotals<'py>> {
    let keys = keys.as_slice().map_err(not_contiguous("keys"))?;
    let deltas = match &deltas {
        Some(d) => Some(d.as_slice().map_err(not_contiguous("deltas"))?),
        None => None,
    };
    let totals = py
        .detach(|| core::aggregate(keys, deltas))
        .map_err(py_err)?;
    Ok((totals.keys.into_pyarray(py), totals.sums.into_pyarray(py)))
}

fn pair<'py>(py: Python<'py>, (keys, values): (Vec<i64>, Vec<i64>)) -> KeyedTotals<'py> {
    (keys.into_pyarray(py), values.into_pyarray(py))
}

/// The state behind a stateful object: a mutex, taken only while the GIL is released, so that
/// threads calling in (each without the GIL) take turns and never deadlock with it.
struct Guarded<T>(Mutex<T>);

/// A lock is poisoned only if a panic unwound while it was held: the state may be half-changed.
struct Poisoned;

impl<T> Guarded<T> {
    fn lock(&self) -> Result<MutexGuard<'_, T>, Poisoned> {
        self.0.lock().map_err(|_| Poisoned)
    }
}

impl From<Poisoned> for PyErr {
    fn from(_: Poisoned) -> PyErr {
        PyRuntimeError::new_err("this object is unusable after an internal error in another call")
    }
}

/// Runs `work` on the locked state without the GIL; maps both kinds of failure to Python errors.
fn locked<T: Send, R: Send>(
    py: Python<'_>,
    state: &Guarded<T>,
    work: impl FnOnce(&mut T) -> igcore_core::Result<R> + Send,
) -> PyResult<R> {
    let outcome = py.detach(|| state.lock().map(|mut guard| work(&mut guard)));
    outcome?.map_err(py_err)
}

/// See `igcore._reference.counters.CounterTable`.
#[pyclass(frozen, module = "igcore._rust.counters")]
struct CounterTable(Guarded<core::CounterTable>);

#[pymethods]
impl CounterTable {
    #[new]
    fn new(kinds: Vec<String>) -> Self {
        CounterTable(Guarded(Mutex::new(core::CounterTable::new(kinds))))
    }

    #[pyo3(signature = (kind, keys, deltas=None))]
    fn add(
        &self,
        py: Python<'_>,
        kind: usize,
        keys: PyReadonlyArray1<'_, i64>,
        deltas: Option<PyReadonlyArray1<'_, i64>>,
    ) -> PyResult<()> {
        let keys = keys.as_slice().map_err(not_contiguous("keys"))?;
        let deltas = match &deltas {
            Some(d) => Some(d.as_slice().map_err(not_contiguous("deltas"))?),
            None => None,
        };
        locked(py, &self.0, |table| table.add(kind, keys, deltas))
    }

    fn get<'py>(
        &self,
        py: Python<'py>,
        kind: usize,
        keys: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Int64Array<'py>> {
        let keys = keys.as_slice().map_err(not_contiguous("keys"))?;
        let totals = locked(py, &self.0, |table| table.get(kind, keys))?;
        Ok(totals.into_pyarray(py))
    }

    fn top<'py>(&self, py: Python<'py>, kind: usize, k: usize) -> PyResult<KeyedTotals<'py>> {
        Ok(pair(py, locked(py, &self.0, |table| table.top(kind, k))?))
    }

    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Vec<KeyedTotals<'py>>> {
        // Take the deltas under the lock; sort them after letting go of it, so adds need not wait.
        let drained = locked(py, &self.0, |table| Ok(table.drain()))?;
        let sorted = py.detach(|| drained.sorted());
        Ok(sorted.0.into_iter().map(|p| pair(py, p)).collect())
    }

    fn restore(
        &self,
        py: Python<'_>,
        kind: usize,
        keys: PyReadonlyArray1<'_, i64>,
        deltas: PyReadonlyArray1<'_, i64>,
        retract: bool,
    ) -> PyResult<()> {
        let keys = keys.as_slice().map_err(not_contiguous("keys"))?;
        let deltas = deltas.as_slice().map_err(not_contiguous("deltas"))?;
        locked(py, &self.0, |table| {
            table.restore(kind, keys, deltas, retract)
        })
    }

    fn merge(&self, py: Python<'_>, other: &Bound<'_, CounterTable>) -> PyResult<()> {
        // Read the other table first and let go of its lock: two tables merging into each other
        // from two threads never wait on each other.
        let theirs = locked(py, &other.get().0, |table| Ok(table.snapshot()))?;
        locked(py, &self.0, |table| table.merge(&theirs))
    }
}

/// See `igcore._reference.counters.WindowedCounter`.
#[pyclass(frozen, module = "igcore._rust.counters")]
struct WindowedCounter(Guarded<core::WindowedCounter>);

#[pymethods]
impl WindowedCounter {
    #[new]
    fn new(bucket_seconds: i64, buckets: usize) -> PyResult<Self> {
        let counter = core::WindowedCounter::new(bucket_seconds, buckets).map_err(py_err)?;
        Ok(WindowedCounter(Guarded(Mutex::new(counter))))
    }

    fn add(
        &self,
        py: Python<'_>,
        keys: PyReadonlyArray1<'_, i64>,
        timestamps: PyReadonlyArray1<'_, i64>,
        deltas: Option<PyReadonlyArray1<'_, i64>>,
        now: i64,
    ) -> PyResult<(u64, u64)> {
        let keys = keys.as_slice().map_err(not_contiguous("keys"))?;
        let timestamps = timestamps
            .as_slice()
            .map_err(not_contiguous("timestamps"))?;
        let deltas = match &deltas {
            Some(d) => Some(d.as_slice().map_err(not_contiguous("deltas"))?),
            None => None,
        };
        locked(py, &self.0, |counter| {
            counter.add(keys, timestamps, deltas, now)
        })
    }

    fn sum<'py>(
        &self,
        py: Python<'py>,
        keys: PyReadonlyArray1<'py, i64>,
        now: i64,
        window_buckets: usize,
    ) -> PyResult<Int64Array<'py>> {
        let keys = keys.as_slice().map_err(not_contiguous("keys"))?;
        let totals = locked(py, &self.0, |counter| {
            counter.sum(keys, now, window_buckets)
        })?;
        Ok(totals.into_pyarray(py))
    }

    fn top<'py>(
        &self,
        py: Python<'py>,
        k: usize,
        now: i64,
        window_buckets: usize,
    ) -> PyResult<KeyedTotals<'py>> {
        let ranked = locked(py, &self.0, |counter| counter.top(k, now, window_buckets))?;
        Ok(pair(py, ranked))
    }

    fn dropped(&self, py: Python<'_>) -> PyResult<(u64, u64)> {
        locked(py, &self.0, |counter| Ok(counter.dropped()))
    }
}

/// See `igcore._reference.counters.HyperLogLog`.
#[pyclass(frozen, module = "igcore._rust.counters")]
struct HyperLogLog(Guarded<core::HyperLogLog>);

#[pymethods]
impl HyperLogLog {
    #[new]
    fn new() -> Self {
        HyperLogLog(Guarded(Mutex::new(core::HyperLogLog::new())))
    }

    fn add_ints(&self, py: Python<'_>, items: PyReadonlyArray1<'_, i64>) -> PyResult<bool> {
        let items = items.as_slice().map_err(not_contiguous("items"))?;
        locked(py, &self.0, |hll| Ok(hll.add_ints(items)))
    }

    fn add_bytes(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyBytes>,
        ends: PyReadonlyArray1<'_, i64>,
    ) -> PyResult<bool> {
        let buffer = buffer.as_bytes();
        let ends = ends.as_slice().map_err(not_contiguous("ends"))?;
        locked(py, &self.0, |hll| hll.add_elements(buffer, ends))
    }

    fn count(&self, py: Python<'_>) -> PyResult<u64> {
        locked(py, &self.0, |hll| Ok(hll.count()))
    }

    fn merge(&self, py: Python<'_>, other: &Bound<'_, HyperLogLog>) -> PyResult<()> {
        let theirs = locked(py, &other.get().0, |hll| Ok(hll.clone()))?;
        locked(py, &self.0, |hll| {
            hll.merge(&theirs);
            Ok(())
        })
    }

    fn registers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray1<u8>>> {
        let registers = locked(py, &self.0, |hll| Ok(hll.registers().to_vec()))?;
        Ok(registers.into_pyarray(py))
    }

    fn load(&self, py: Python<'_>, registers: PyReadonlyArray1<'_, u8>) -> PyResult<()> {
        let registers = registers.as_slice().map_err(not_contiguous("registers"))?;
        locked(py, &self.0, |hll| hll.load(registers))
    }
}

pub(crate) fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    crate::add_hot_path(parent, "counters", |m| {
        m.add_function(wrap_pyfunction!(aggregate, m)?)?;
        m.add_class::<CounterTable>()?;
        m.add_class::<WindowedCounter>()?;
        m.add_class::<HyperLogLog>()
    })
}
