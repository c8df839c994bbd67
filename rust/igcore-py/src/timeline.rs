//! `igcore._rust.timeline`: the timeline kernels, and the `Timeline` and `TimelineStore` objects
//! that hold timelines in Rust memory.
//!
//! Both objects keep their data behind a `RwLock`, so that long work (a fan-out to a million
//! followers, a merge over large arrays) runs without the GIL while other threads wait for the lock,
//! not for the GIL. Short work takes the lock with the GIL held (no GIL hand-off, which would cost more
//! than the work). No lock is ever held while taking the GIL back, so GIL and locks cannot deadlock.

use std::sync::{PoisonError, RwLock, TryLockError};

use igcore_core::timeline::{self as core, Entry, Page, PageRequest, Run, Scores};
use numpy::{IntoPyArray, PyArray1, PyArrayMethods, PyReadonlyArray1};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::error::{not_contiguous, py_err};

/// From this many entries or followers on, work runs without the GIL.
const DETACH_FROM: usize = 1 << 15;

/// Runs `work` on the value behind `lock`. Without the GIL when `long`; otherwise with it, unless
/// another thread holds the lock (a long job without the GIL): then it waits without the GIL too.
fn read<T, R>(py: Python<'_>, lock: &RwLock<T>, long: bool, work: impl FnOnce(&T) -> R + Send) -> R
where
    T: Send + Sync,
    R: Send,
{
    if !long {
        match lock.try_read() {
            Ok(guard) => return work(&guard),
            Err(TryLockError::Poisoned(poisoned)) => return work(&poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => {}
        }
    }
    py.detach(|| work(&lock.read().unwrap_or_else(PoisonError::into_inner)))
}

/// As `read`, for changes.
fn write<T, R>(
    py: Python<'_>,
    lock: &RwLock<T>,
    long: bool,
    work: impl FnOnce(&mut T) -> R + Send,
) -> R
where
    T: Send + Sync,
    R: Send,
{
    if !long {
        match lock.try_write() {
            Ok(mut guard) => return work(&mut guard),
            Err(TryLockError::Poisoned(poisoned)) => return work(&mut poisoned.into_inner()),
            Err(TryLockError::WouldBlock) => {}
        }
    }
    py.detach(|| work(&mut lock.write().unwrap_or_else(PoisonError::into_inner)))
}

/// `read` over several timelines at once (the same one may appear twice).
fn read_all<R: Send>(
    py: Python<'_>,
    locks: &[&RwLock<core::Timeline>],
    long: bool,
    work: impl FnOnce(&[&core::Timeline]) -> R + Send,
) -> R {
    if !long {
        let mut guards = Vec::with_capacity(locks.len());
        for lock in locks {
            match lock.try_read() {
                Ok(guard) => guards.push(guard),
                Err(TryLockError::Poisoned(poisoned)) => guards.push(poisoned.into_inner()),
                Err(TryLockError::WouldBlock) => break,
            }
        }
        if guards.len() == locks.len() {
            let timelines: Vec<&core::Timeline> = guards.iter().map(|g| &**g).collect();
            return work(&timelines);
        }
    }
    py.detach(|| {
        // Each lock once, in address order: threads that take several locks in one order cannot
        // deadlock, and a lock is not read twice by one thread (which can block behind a writer).
        let address =
            |lock: &&RwLock<core::Timeline>| *lock as *const RwLock<core::Timeline> as usize;
        let mut unique = locks.to_vec();
        unique.sort_unstable_by_key(address);
        unique.dedup_by_key(|lock| address(lock));
        let guards: Vec<_> = unique
            .iter()
            .map(|lock| lock.read().unwrap_or_else(PoisonError::into_inner))
            .collect();
        let timelines: Vec<&core::Timeline> = locks
            .iter()
            .filter_map(|lock| {
                let at = unique.binary_search_by_key(&address(lock), address).ok()?;
                guards.get(at).map(|g| &**g)
            })
            .collect();
        work(&timelines)
    })
}

/// The key of a score given by the public layer: an int for int64 timelines, a float for float64 ones.
fn score_key(score: &Bound<'_, PyAny>, float_scores: bool) -> PyResult<i64> {
    Ok(if float_scores {
        core::float_key(score.extract::<f64>()?)
    } else {
        score.extract::<i64>()?
    })
}

/// The scores of keys, as the array a page or a timeline returns.
fn scores_array<'py>(py: Python<'py>, keys: Vec<i64>, float_scores: bool) -> Bound<'py, PyAny> {
    if float_scores {
        let floats: Vec<f64> = keys.into_iter().map(core::key_float).collect();
        floats.into_pyarray(py).into_any()
    } else {
        keys.into_pyarray(py).into_any()
    }
}

type PageTuple<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    bool,
);

fn page_tuple(py: Python<'_>, page: Page, float_scores: bool) -> PageTuple<'_> {
    (
        scores_array(py, page.keys, float_scores),
        page.post_ids.into_pyarray(py),
        page.author_ids.into_pyarray(py),
        page.has_more,
    )
}

/// The rank named by a cursor, `(float_scores, score, post_id)`, in the given score kind; None when the
/// cursor is of the other kind.
fn after_rank(
    after: &Option<(bool, Bound<'_, PyAny>, i64)>,
    float_scores: bool,
) -> PyResult<Option<Option<(i64, i64)>>> {
    match after {
        None => Ok(Some(None)),
        Some((kind, _, _)) if *kind != float_scores => Ok(None),
        Some((_, score, post_id)) => Ok(Some(Some((score_key(score, float_scores)?, *post_id)))),
    }
}

fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

// -- Timeline ---------------------------------------------------------------------------------------

/// A bounded timeline cache in Rust memory; see `igcore._reference.timeline.Timeline`.
#[pyclass(frozen, name = "Timeline", module = "igcore._rust.timeline")]
pub(crate) struct PyTimeline {
    float_scores: bool,
    max_len: usize,
    inner: RwLock<core::Timeline>,
}

impl PyTimeline {
    fn wrap(timeline: core::Timeline) -> Self {
        PyTimeline {
            float_scores: timeline.float_scores(),
            max_len: timeline.max_len(),
            inner: RwLock::new(timeline),
        }
    }
}

/// Borrowed entry columns of either score kind.
enum Columns<'py> {
    Ints(
        PyReadonlyArray1<'py, i64>,
        PyReadonlyArray1<'py, i64>,
        PyReadonlyArray1<'py, i64>,
    ),
    Floats(
        PyReadonlyArray1<'py, f64>,
        PyReadonlyArray1<'py, i64>,
        PyReadonlyArray1<'py, i64>,
    ),
}

impl<'py> Columns<'py> {
    /// Three 1-D native arrays of one length: int64 or float64 scores, int64 ids. None otherwise.
    fn accept(item: &Bound<'py, PyAny>) -> Option<Self> {
        let tuple = item.cast::<PyTuple>().ok()?;
        if tuple.len() != 3 {
            return None;
        }
        let ids = |i: usize| -> Option<PyReadonlyArray1<'py, i64>> {
            tuple
                .get_item(i)
                .ok()?
                .cast_into::<PyArray1<i64>>()
                .ok()?
                .try_readonly()
                .ok()
        };
        let (post_ids, author_ids) = (ids(1)?, ids(2)?);
        let scores = tuple.get_item(0).ok()?;
        let columns = if let Ok(floats) = scores.cast::<PyArray1<f64>>() {
            Columns::Floats(floats.try_readonly().ok()?, post_ids, author_ids)
        } else {
            Columns::Ints(
                scores
                    .cast_into::<PyArray1<i64>>()
                    .ok()?
                    .try_readonly()
                    .ok()?,
                post_ids,
                author_ids,
            )
        };
        let lengths = match &columns {
            Columns::Ints(s, p, a) => [
                s.as_slice().ok()?.len(),
                p.as_slice().ok()?.len(),
                a.as_slice().ok()?.len(),
            ],
            Columns::Floats(s, p, a) => [
                s.as_slice().ok()?.len(),
                p.as_slice().ok()?.len(),
                a.as_slice().ok()?.len(),
            ],
        };
        (lengths[0] == lengths[1] && lengths[1] == lengths[2]).then_some(columns)
    }

    fn float_scores(&self) -> bool {
        matches!(self, Columns::Floats(..))
    }

    /// The columns as a run; None when an array is not contiguous.
    fn run(&self) -> Option<Run<'_>> {
        Some(match self {
            Columns::Ints(s, p, a) => Run::columns(
                Scores::Int(s.as_slice().ok()?),
                p.as_slice().ok()?,
                a.as_slice().ok()?,
            ),
            Columns::Floats(s, p, a) => Run::columns(
                Scores::Float(s.as_slice().ok()?),
                p.as_slice().ok()?,
                a.as_slice().ok()?,
            ),
        })
    }
}

#[pymethods]
impl PyTimeline {
    #[new]
    fn new(max_len: u64, float_scores: bool) -> Self {
        PyTimeline::wrap(core::Timeline::new(to_usize(max_len), float_scores))
    }

    #[getter]
    fn max_len(&self) -> usize {
        self.max_len
    }

    #[getter]
    fn float_scores(&self) -> bool {
        self.float_scores
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        read(py, &self.inner, false, |t| t.len())
    }

    fn insert(
        &self,
        py: Python<'_>,
        score: &Bound<'_, PyAny>,
        post_id: i64,
        author_id: i64,
    ) -> PyResult<bool> {
        let entry = Entry {
            key: score_key(score, self.float_scores)?,
            post_id,
            author_id,
        };
        Ok(write(py, &self.inner, false, |t| t.insert(entry)))
    }

    fn insert_many(
        &self,
        py: Python<'_>,
        scores: &Bound<'_, PyAny>,
        post_ids: &Bound<'_, PyAny>,
        author_ids: &Bound<'_, PyAny>,
    ) -> PyResult<()> {
        let triple = PyTuple::new(py, [scores, post_ids, author_ids])?;
        let columns = Columns::accept(triple.as_any())
            .filter(|c| c.float_scores() == self.float_scores)
            .ok_or_else(|| {
                PyTypeError::new_err("insert_many takes three 1-D contiguous arrays of one length")
            })?;
        let run = columns
            .run()
            .ok_or_else(|| not_contiguous("scores")(numpy::AsSliceError))?;
        write(py, &self.inner, run.len() >= DETACH_FROM, |t| {
            t.insert_run(&run)
        });
        Ok(())
    }

    fn remove_post(&self, py: Python<'_>, post_id: i64) -> bool {
        write(py, &self.inner, false, |t| t.remove_post(post_id))
    }

    fn remove_author(&self, py: Python<'_>, author_id: i64) -> usize {
        write(py, &self.inner, false, |t| t.remove_author(author_id))
    }

    fn clear(&self, py: Python<'_>) {
        write(py, &self.inner, false, |t| t.clear());
    }

    /// `(scores, post_ids, author_ids)`: new arrays, in feed order.
    fn entries<'py>(
        &self,
        py: Python<'py>,
    ) -> (
        Bound<'py, PyAny>,
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray1<i64>>,
    ) {
        let (keys, posts, authors) = read(py, &self.inner, false, |t| {
            let entries = t.entries();
            (
                entries.iter().map(|e| e.key).collect::<Vec<_>>(),
                entries.iter().map(|e| e.post_id).collect::<Vec<_>>(),
                entries.iter().map(|e| e.author_id).collect::<Vec<_>>(),
            )
        });
        (
            scores_array(py, keys, self.float_scores),
            posts.into_pyarray(py),
            authors.into_pyarray(py),
        )
    }

    fn copy(&self, py: Python<'_>) -> Self {
        PyTimeline::wrap(read(py, &self.inner, false, |t| t.clone()))
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> Bound<'py, PyBytes> {
        let bytes = read(py, &self.inner, false, |t| t.to_bytes());
        PyBytes::new(py, &bytes)
    }
}

/// See `igcore._reference.timeline.timeline_from_bytes`.
#[pyfunction]
fn timeline_from_bytes(
    py: Python<'_>,
    data: &Bound<'_, PyBytes>,
    max_len: u64,
) -> PyResult<PyTimeline> {
    // A bytes object is immutable, so its buffer may be read without the GIL.
    let data = data.as_bytes();
    let work = || core::Timeline::from_bytes(data, to_usize(max_len));
    let timeline = if data.len() >= DETACH_FROM {
        py.detach(work)
    } else {
        work()
    };
    Ok(PyTimeline::wrap(timeline.map_err(py_err)?))
}

// -- merge --------------------------------------------------------------------------------------------

/// One source of a merge, as the caller gave it.
enum Source<'py> {
    Timeline(Bound<'py, PyTimeline>),
    Columns(Columns<'py>),
}

/// A source ready for the merge: a timeline to lock (its index among the locks), or array columns and
/// the source's index (for error messages).
enum Part<'a> {
    Timeline(usize),
    Columns(Run<'a>, usize),
}

/// See `igcore._reference.timeline.merge`: None when a source is not in canonical form or score kinds
/// disagree, for the public layer to convert or explain.
#[pyfunction]
#[pyo3(signature = (sources, limit, after, exclude_authors, per_author_cap))]
fn merge<'py>(
    py: Python<'py>,
    sources: &Bound<'py, PyList>,
    limit: u64,
    after: Option<(bool, Bound<'py, PyAny>, i64)>,
    exclude_authors: Option<PyReadonlyArray1<'py, i64>>,
    per_author_cap: Option<u64>,
) -> PyResult<Option<PageTuple<'py>>> {
    let mut accepted = Vec::with_capacity(sources.len());
    let mut kind: Option<bool> = None;
    for item in sources.iter() {
        let source = if let Ok(timeline) = item.cast::<PyTimeline>() {
            Source::Timeline(timeline.clone())
        } else if let Some(columns) = Columns::accept(&item) {
            Source::Columns(columns)
        } else {
            return Ok(None);
        };
        let float_scores = match &source {
            Source::Timeline(t) => t.get().float_scores,
            Source::Columns(c) => c.float_scores(),
        };
        if kind.is_some_and(|k| k != float_scores) {
            return Ok(None);
        }
        kind = Some(float_scores);
        accepted.push(source);
    }
    let float_scores = kind.or(after.as_ref().map(|a| a.0)).unwrap_or(false);
    let Some(after) = after_rank(&after, float_scores)? else {
        return Ok(None);
    };

    let mut locks = Vec::new();
    let mut parts = Vec::with_capacity(accepted.len());
    let mut array_entries = 0;
    for (index, source) in accepted.iter().enumerate() {
        match source {
            Source::Timeline(t) => {
                parts.push(Part::Timeline(locks.len()));
                locks.push(&t.get().inner);
            }
            Source::Columns(columns) => {
                let Some(run) = columns.run() else {
                    return Ok(None);
                };
                array_entries += run.len();
                parts.push(Part::Columns(run, index));
            }
        }
    }
    let excluded = match &exclude_authors {
        Some(a) => a.as_slice().map_err(not_contiguous("exclude_authors"))?,
        None => &[],
    };
    let request = PageRequest {
        limit: to_usize(limit),
        after,
        exclude_authors: excluded,
        per_author_cap: per_author_cap.map(to_usize),
    };
    let page = read_all(py, &locks, array_entries >= DETACH_FROM, |timelines| {
        let mut runs = Vec::with_capacity(parts.len());
        for part in &parts {
            match part {
                Part::Timeline(at) => runs.extend(timelines.get(*at).map(|t| t.run())),
                Part::Columns(run, index) => {
                    core::check_order(run, *index)?;
                    runs.push(*run);
                }
            }
        }
        core::merge(&runs, &request)
    })
    .map_err(py_err)?;
    Ok(Some(page_tuple(py, page, float_scores)))
}

// -- TimelineStore ------------------------------------------------------------------------------------

/// Timelines by user id in Rust memory; see `igcore._reference.timeline.TimelineStore`.
#[pyclass(frozen, name = "TimelineStore", module = "igcore._rust.timeline")]
pub(crate) struct PyTimelineStore {
    float_scores: bool,
    max_len: usize,
    inner: RwLock<core::TimelineStore>,
}

#[pymethods]
impl PyTimelineStore {
    #[new]
    fn new(max_len: u64, float_scores: bool) -> Self {
        let store = core::TimelineStore::new(to_usize(max_len), float_scores);
        PyTimelineStore {
            float_scores,
            max_len: store.max_len(),
            inner: RwLock::new(store),
        }
    }

    #[getter]
    fn max_len(&self) -> usize {
        self.max_len
    }

    #[getter]
    fn float_scores(&self) -> bool {
        self.float_scores
    }

    fn __len__(&self, py: Python<'_>) -> usize {
        read(py, &self.inner, false, |s| s.len())
    }

    fn contains(&self, py: Python<'_>, user_id: i64) -> bool {
        read(py, &self.inner, false, |s| s.contains(user_id))
    }

    fn users<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        let long = self.__len__(py) >= DETACH_FROM;
        read(py, &self.inner, long, |s| s.users()).into_pyarray(py)
    }

    /// A copy of the user's timeline, or None.
    fn get(&self, py: Python<'_>, user_id: i64) -> Option<PyTimeline> {
        read(py, &self.inner, false, |s| s.get(user_id).cloned()).map(PyTimeline::wrap)
    }

    /// Stores a copy of `timeline` (of this store's max_len and score kind: the public layer checks).
    fn put(&self, py: Python<'_>, user_id: i64, timeline: &Bound<'_, PyTimeline>) -> PyResult<()> {
        let copy = read(py, &timeline.get().inner, false, |t| t.clone());
        write(py, &self.inner, false, |s| s.put(user_id, copy)).map_err(py_err)
    }

    fn discard(&self, py: Python<'_>, user_id: i64) -> bool {
        write(py, &self.inner, false, |s| s.discard(user_id))
    }

    #[pyo3(signature = (user_ids, limit, after, exclude_authors, per_author_cap))]
    fn merge<'py>(
        &self,
        py: Python<'py>,
        user_ids: PyReadonlyArray1<'py, i64>,
        limit: u64,
        after: Option<(bool, Bound<'py, PyAny>, i64)>,
        exclude_authors: Option<PyReadonlyArray1<'py, i64>>,
        per_author_cap: Option<u64>,
    ) -> PyResult<PageTuple<'py>> {
        let user_ids = user_ids.as_slice().map_err(not_contiguous("user_ids"))?;
        let after = after_rank(&after, self.float_scores)?
            .ok_or_else(|| PyTypeError::new_err("the cursor is of another score kind"))?;
        let excluded = match &exclude_authors {
            Some(a) => a.as_slice().map_err(not_contiguous("exclude_authors"))?,
            None => &[],
        };
        let request = PageRequest {
            limit: to_usize(limit),
            after,
            exclude_authors: excluded,
            per_author_cap: per_author_cap.map(to_usize),
        };
        let long = user_ids.len() >= DETACH_FROM;
        let page = read(py, &self.inner, long, |s| s.merge(user_ids, &request)).map_err(py_err)?;
        Ok(page_tuple(py, page, self.float_scores))
    }

    fn fanout(
        &self,
        py: Python<'_>,
        post_id: i64,
        score: &Bound<'_, PyAny>,
        author_id: i64,
        follower_ids: PyReadonlyArray1<'_, i64>,
        create_missing: bool,
    ) -> PyResult<usize> {
        let entry = Entry {
            key: score_key(score, self.float_scores)?,
            post_id,
            author_id,
        };
        let followers = follower_ids
            .as_slice()
            .map_err(not_contiguous("follower_ids"))?;
        let long = followers.len() >= DETACH_FROM;
        write(py, &self.inner, long, |s| {
            s.fanout(entry, followers, create_missing)
        })
        .map_err(py_err)
    }

    /// `source`: a Timeline, or three canonical arrays of this store's score kind.
    fn merge_into(&self, py: Python<'_>, user_id: i64, source: &Bound<'_, PyAny>) -> PyResult<()> {
        if let Ok(timeline) = source.cast::<PyTimeline>() {
            // Copy the entries out first: one lock at a time.
            let entries = read(py, &timeline.get().inner, false, |t| t.entries().to_vec());
            let run = Run::Entries(&entries);
            return write(py, &self.inner, entries.len() >= DETACH_FROM, |s| {
                s.merge_into(user_id, &run)
            })
            .map_err(py_err);
        }
        let columns = Columns::accept(source)
            .filter(|c| c.float_scores() == self.float_scores)
            .ok_or_else(|| {
                PyTypeError::new_err("merge_into takes a Timeline or three canonical arrays")
            })?;
        let run = columns
            .run()
            .ok_or_else(|| not_contiguous("author_timeline")(numpy::AsSliceError))?;
        write(py, &self.inner, run.len() >= DETACH_FROM, |s| {
            s.merge_into(user_id, &run)
        })
        .map_err(py_err)
    }

    fn unmerge(&self, py: Python<'_>, user_id: i64, author_id: i64) -> usize {
        write(py, &self.inner, false, |s| s.unmerge(user_id, author_id))
    }
}

// -- activity -------------------------------------------------------------------------------------------

type ActivityTuple<'py> = (
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
);

/// See `igcore._reference.timeline.aggregate_activity`.
#[pyfunction]
fn aggregate_activity<'py>(
    py: Python<'py>,
    actor_ids: PyReadonlyArray1<'py, i64>,
    verbs: PyReadonlyArray1<'py, i64>,
    target_ids: PyReadonlyArray1<'py, i64>,
    timestamps: PyReadonlyArray1<'py, i64>,
    window_seconds: i64,
    max_actors: u64,
) -> PyResult<ActivityTuple<'py>> {
    let actor_ids = actor_ids.as_slice().map_err(not_contiguous("actor_ids"))?;
    let verbs = verbs.as_slice().map_err(not_contiguous("verbs"))?;
    let target_ids = target_ids
        .as_slice()
        .map_err(not_contiguous("target_ids"))?;
    let timestamps = timestamps
        .as_slice()
        .map_err(not_contiguous("timestamps"))?;
    let work = || {
        core::aggregate_activity(
            actor_ids,
            verbs,
            target_ids,
            timestamps,
            window_seconds,
            to_usize(max_actors),
        )
    };
    let groups = if actor_ids.len() >= DETACH_FROM {
        py.detach(work)
    } else {
        work()
    }
    .map_err(py_err)?;
    Ok((
        groups.verbs.into_pyarray(py),
        groups.target_ids.into_pyarray(py),
        groups.windows.into_pyarray(py),
        groups.latest_timestamps.into_pyarray(py),
        groups.event_counts.into_pyarray(py),
        groups.actor_counts.into_pyarray(py),
        groups.actors.into_pyarray(py),
        groups.actor_offsets.into_pyarray(py),
    ))
}

pub(crate) fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    crate::add_hot_path(parent, "timeline", |m| {
        m.add_class::<PyTimeline>()?;
        m.add_class::<PyTimelineStore>()?;
        m.add_function(wrap_pyfunction!(timeline_from_bytes, m)?)?;
        m.add_function(wrap_pyfunction!(merge, m)?)?;
        m.add_function(wrap_pyfunction!(aggregate_activity, m)?)
    })
}
