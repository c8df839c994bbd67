//! `igcore._rust.counters`: aggregation, and the CounterTable, WindowedCounter and HyperLogLog
//! objects, whose state lives behind their lock (see `guard`); every call waits for it and works
//! without the GIL.

use igcore_core::counters as core;
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::{contiguous, KernelResult};
use crate::guard::{Guarded, Work};

type Int64Array<'py> = Bound<'py, PyArray1<i64>>;
type KeyedTotals<'py> = (Int64Array<'py>, Int64Array<'py>);

fn optional<'a>(
    array: &'a Option<PyReadonlyArray1<'_, i64>>,
    name: &'static str,
) -> PyResult<Option<&'a [i64]>> {
    array.as_ref().map(|a| contiguous(a, name)).transpose()
}

/// See `igcore._reference.counters.aggregate`.
#[pyfunction]
#[pyo3(signature = (keys, deltas=None))]
fn aggregate<'py>(
    py: Python<'py>,
    keys: PyReadonlyArray1<'py, i64>,
    deltas: Option<PyReadonlyArray1<'py, i64>>,
) -> KernelResult<KeyedTotals<'py>> {
    let keys = contiguous(&keys, "keys")?;
    let deltas = optional(&deltas, "deltas")?;
    let totals = py.detach(|| core::aggregate(keys, deltas))?;
    Ok((totals.keys.into_pyarray(py), totals.sums.into_pyarray(py)))
}

fn pair<'py>(py: Python<'py>, (keys, values): (Vec<i64>, Vec<i64>)) -> KeyedTotals<'py> {
    (keys.into_pyarray(py), values.into_pyarray(py))
}

/// See `igcore._reference.counters.CounterTable`.
#[pyclass(frozen, module = "igcore._rust.counters")]
struct CounterTable(Guarded<core::CounterTable>);

#[pymethods]
impl CounterTable {
    #[new]
    fn new(kinds: Vec<String>) -> Self {
        CounterTable(Guarded::new(core::CounterTable::new(kinds)))
    }

    #[pyo3(signature = (kind, keys, deltas))]
    fn add(
        &self,
        py: Python<'_>,
        kind: usize,
        keys: PyReadonlyArray1<'_, i64>,
        deltas: Option<PyReadonlyArray1<'_, i64>>,
    ) -> KernelResult<()> {
        let keys = contiguous(&keys, "keys")?;
        let deltas = optional(&deltas, "deltas")?;
        self.0
            .try_write(py, Work::Long, |table| table.add(kind, keys, deltas))
    }

    fn get<'py>(
        &self,
        py: Python<'py>,
        kind: usize,
        keys: PyReadonlyArray1<'py, i64>,
    ) -> KernelResult<Int64Array<'py>> {
        let keys = contiguous(&keys, "keys")?;
        let totals = self
            .0
            .try_read(py, Work::Long, |table| table.get(kind, keys))?;
        Ok(totals.into_pyarray(py))
    }

    fn top<'py>(&self, py: Python<'py>, kind: usize, k: usize) -> KernelResult<KeyedTotals<'py>> {
        let ranked = self
            .0
            .try_read(py, Work::Long, |table| table.top(kind, k))?;
        Ok(pair(py, ranked))
    }

    fn drain<'py>(&self, py: Python<'py>) -> KernelResult<Vec<KeyedTotals<'py>>> {
        // Take the deltas under the lock; sort them after letting go of it, so adds need not wait.
        let drained = self.0.write(py, Work::Long, |table| table.drain())?;
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
    ) -> KernelResult<()> {
        let keys = contiguous(&keys, "keys")?;
        let deltas = contiguous(&deltas, "deltas")?;
        self.0.try_write(py, Work::Long, |table| {
            table.restore(kind, keys, deltas, retract)
        })
    }

    fn add_table(&self, py: Python<'_>, other: &Bound<'_, CounterTable>) -> KernelResult<()> {
        // Read the other table first and let go of its lock: two tables added into each other
        // from two threads never wait on each other.
        let theirs = other
            .get()
            .0
            .read(py, Work::Long, |table| table.snapshot())?;
        self.0
            .try_write(py, Work::Long, |table| table.add_table(&theirs))
    }
}

/// See `igcore._reference.counters.WindowedCounter`.
#[pyclass(frozen, module = "igcore._rust.counters")]
struct WindowedCounter(Guarded<core::WindowedCounter>);

#[pymethods]
impl WindowedCounter {
    #[new]
    fn new(bucket_seconds: i64, buckets: usize) -> KernelResult<Self> {
        let counter = core::WindowedCounter::new(bucket_seconds, buckets)?;
        Ok(WindowedCounter(Guarded::new(counter)))
    }

    fn add(
        &self,
        py: Python<'_>,
        keys: PyReadonlyArray1<'_, i64>,
        timestamps: PyReadonlyArray1<'_, i64>,
        deltas: Option<PyReadonlyArray1<'_, i64>>,
        now: i64,
    ) -> KernelResult<(u64, u64)> {
        let keys = contiguous(&keys, "keys")?;
        let timestamps = contiguous(&timestamps, "timestamps")?;
        let deltas = optional(&deltas, "deltas")?;
        self.0.try_write(py, Work::Long, |counter| {
            counter.add(keys, timestamps, deltas, now)
        })
    }

    fn sum<'py>(
        &self,
        py: Python<'py>,
        keys: PyReadonlyArray1<'py, i64>,
        now: i64,
        window_buckets: usize,
    ) -> KernelResult<Int64Array<'py>> {
        let keys = contiguous(&keys, "keys")?;
        let totals = self.0.try_read(py, Work::Long, |counter| {
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
    ) -> KernelResult<KeyedTotals<'py>> {
        let ranked = self.0.try_read(py, Work::Long, |counter| {
            counter.top(k, now, window_buckets)
        })?;
        Ok(pair(py, ranked))
    }

    fn dropped(&self, py: Python<'_>) -> KernelResult<(u64, u64)> {
        self.0.read(py, Work::Long, |counter| counter.dropped())
    }
}

/// See `igcore._reference.counters.HyperLogLog`.
#[pyclass(frozen, module = "igcore._rust.counters")]
struct HyperLogLog(Guarded<core::HyperLogLog>);

#[pymethods]
impl HyperLogLog {
    #[new]
    fn new() -> Self {
        HyperLogLog(Guarded::new(core::HyperLogLog::new()))
    }

    fn add_ints(&self, py: Python<'_>, items: PyReadonlyArray1<'_, i64>) -> KernelResult<bool> {
        let items = contiguous(&items, "items")?;
        self.0.write(py, Work::Long, |hll| hll.add_ints(items))
    }

    fn add_bytes(
        &self,
        py: Python<'_>,
        buffer: &Bound<'_, PyBytes>,
        ends: PyReadonlyArray1<'_, i64>,
    ) -> KernelResult<bool> {
        let buffer = buffer.as_bytes();
        let ends = contiguous(&ends, "ends")?;
        self.0
            .try_write(py, Work::Long, |hll| hll.add_elements(buffer, ends))
    }

    fn count(&self, py: Python<'_>) -> KernelResult<u64> {
        self.0.read(py, Work::Long, |hll| hll.count())
    }

    fn merge(&self, py: Python<'_>, other: &Bound<'_, HyperLogLog>) -> KernelResult<()> {
        let theirs = other.get().0.read(py, Work::Long, |hll| hll.clone())?;
        self.0.write(py, Work::Long, |hll| hll.merge(&theirs))
    }

    fn registers<'py>(&self, py: Python<'py>) -> KernelResult<Bound<'py, PyArray1<u8>>> {
        let registers = self
            .0
            .read(py, Work::Long, |hll| hll.registers().to_vec())?;
        Ok(registers.into_pyarray(py))
    }

    fn load(&self, py: Python<'_>, registers: PyReadonlyArray1<'_, u8>) -> KernelResult<()> {
        let registers = contiguous(&registers, "registers")?;
        self.0.try_write(py, Work::Long, |hll| hll.load(registers))
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
