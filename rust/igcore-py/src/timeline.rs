//! `igcore._rust.timeline`: the timeline kernels, and the `Timeline` and `TimelineStore` objects
//! that hold timelines in Rust memory behind their lock (see `guard`): long work (a fan-out to a
//! million followers, a merge over large arrays) runs without the GIL while other threads wait for
//! the lock, not for the GIL; short work takes the lock with the GIL held.

use igcore_core::error::{ScoreKind, TimelineError};
use igcore_core::timeline::{self as core, Entry, Page, PageRequest, Run, Scores};
use numpy::{
    IntoPyArray, PyArray1, PyArrayDescrMethods, PyArrayMethods, PyReadonlyArray1, PyUntypedArray,
    PyUntypedArrayMethods,
};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyList, PyTuple};

use crate::error::{contiguous, KernelResult};
use crate::guard::{self, maybe_detach, read_all, Guarded, Work};

/// Work on this many entries (see `guard::TIMELINE_ENTRIES`).
fn work(size: usize) -> Work {
    Work::sized(size, guard::TIMELINE_ENTRIES)
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

/// Scores (an int64 or a float64 array), post ids, author ids.
type EntriesTuple<'py> = (
    Bound<'py, PyAny>,
    Bound<'py, PyArray1<i64>>,
    Bound<'py, PyArray1<i64>>,
);

/// A cursor as the public layer gives it: `(float_scores, score, post_id)`.
type Cursor<'py> = (bool, Bound<'py, PyAny>, i64);

/// The rank named by a cursor, for sources of the given score kind.
fn after_rank(after: &Option<Cursor<'_>>, float_scores: bool) -> KernelResult<Option<(i64, i64)>> {
    match after {
        None => Ok(None),
        Some((kind, _, _)) if *kind != float_scores => Err(TimelineError::CursorScoreKind {
            cursor_kind: ScoreKind::of(*kind),
            sources_kind: ScoreKind::of(float_scores),
        }
        .into()),
        Some((_, score, post_id)) => Ok(Some((score_key(score, float_scores)?, *post_id))),
    }
}

fn page_request<'a>(
    limit: u64,
    after: Option<(i64, i64)>,
    exclude_authors: &'a Option<PyReadonlyArray1<'_, i64>>,
    per_author_cap: Option<u64>,
) -> PyResult<PageRequest<'a>> {
    let excluded = match exclude_authors {
        Some(a) => contiguous(a, "exclude_authors")?,
        None => &[],
    };
    Ok(PageRequest {
        limit: to_usize(limit),
        after,
        exclude_authors: excluded,
        per_author_cap: per_author_cap.map(to_usize),
    })
}

fn to_usize(value: u64) -> usize {
    usize::try_from(value).unwrap_or(usize::MAX)
}

// -- Timeline ---------------------------------------------------------------------------------------

/// A bounded timeline cache in Rust memory; see `igcore._reference.timeline.Timeline`.
#[pyclass(frozen, name = "Timeline", module = "igcore._rust.timeline")]
pub(crate) struct PyTimeline {
    #[pyo3(get)]
    float_scores: bool,
    #[pyo3(get)]
    max_len: usize,
    inner: Guarded<core::Timeline>,
}

impl PyTimeline {
    fn wrap(timeline: core::Timeline) -> Self {
        PyTimeline {
            float_scores: timeline.float_scores(),
            max_len: timeline.max_len(),
            inner: Guarded::new(timeline),
        }
    }
}

/// Entry columns of either score kind, as given (see `Columns::run` for how they are read).
enum Columns<'py> {
    Ints(
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray1<i64>>,
    ),
    Floats(
        Bound<'py, PyArray1<f64>>,
        Bound<'py, PyArray1<i64>>,
        Bound<'py, PyArray1<i64>>,
    ),
}

impl<'py> Columns<'py> {
    /// Three 1-D native C-contiguous arrays of one length: int64 or float64 scores, int64 ids. None
    /// otherwise.
    fn accept(item: &Bound<'py, PyAny>) -> Option<Self> {
        let tuple = item.cast::<PyTuple>().ok()?;
        if tuple.len() != 3 {
            return None;
        }
        let ids = |i: usize| -> Option<Bound<'py, PyArray1<i64>>> {
            tuple.get_item(i).ok()?.cast_into::<PyArray1<i64>>().ok()
        };
        let (post_ids, author_ids) = (ids(1)?, ids(2)?);
        let scores = tuple.get_item(0).ok()?;
        let columns = match scores.cast_into::<PyArray1<f64>>() {
            Ok(floats) => Columns::Floats(floats, post_ids, author_ids),
            Err(error) => Columns::Ints(
                error.into_inner().cast_into::<PyArray1<i64>>().ok()?,
                post_ids,
                author_ids,
            ),
        };
        let run = columns.run()?;
        let lengths_agree = match run {
            Run::Columns {
                scores,
                post_ids,
                author_ids,
            } => {
                let n = match scores {
                    Scores::Int(s) => s.len(),
                    Scores::Float(s) => s.len(),
                };
                n == post_ids.len() && n == author_ids.len()
            }
            Run::Entries(_) => false,
        };
        lengths_agree.then_some(columns)
    }

    fn float_scores(&self) -> bool {
        matches!(self, Columns::Floats(..))
    }

    /// The columns as a run; None when an array is not contiguous and aligned.
    ///
    /// The arrays are read in place, without numpy's borrow registry: a merge of 2,000 followees' columns
    /// took 0.6 ms to register and release 6,000 borrows, against 0.1 ms for the merge. The registry
    /// guards only against a mutable borrow by Rust code, and igcore takes none of an array it is given.
    fn run(&self) -> Option<Run<'_>> {
        // SAFETY: the slices live while `self` holds the arrays; as_slice checks the layout. Nothing
        // writes to them while they are read: igcore never writes to an array it is given, Python code
        // cannot run while the GIL is held, and long work that releases it reads the arrays as numpy's
        // own functions do then (the caller does not change them until the call returns; README).
        unsafe {
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
}

#[pymethods]
impl PyTimeline {
    #[new]
    fn new(max_len: u64, float_scores: bool) -> Self {
        PyTimeline::wrap(core::Timeline::new(to_usize(max_len), float_scores))
    }

    fn __len__(&self, py: Python<'_>) -> KernelResult<usize> {
        self.inner.read(py, Work::Quick, |t| t.len())
    }

    fn insert(
        &self,
        py: Python<'_>,
        score: &Bound<'_, PyAny>,
        post_id: i64,
        author_id: i64,
    ) -> KernelResult<bool> {
        let entry = Entry {
            key: score_key(score, self.float_scores)?,
            post_id,
            author_id,
        };
        self.inner.write(py, Work::Quick, |t| t.insert(entry))
    }

    fn insert_many(
        &self,
        py: Python<'_>,
        scores: &Bound<'_, PyAny>,
        post_ids: &Bound<'_, PyAny>,
        author_ids: &Bound<'_, PyAny>,
    ) -> KernelResult<()> {
        let triple = PyTuple::new(py, [scores, post_ids, author_ids])?;
        let columns = Columns::accept(triple.as_any())
            .filter(|c| c.float_scores() == self.float_scores)
            .ok_or(TimelineError::NotEntryColumns)?;
        let run = columns.run().ok_or(TimelineError::NotEntryColumns)?;
        self.inner
            .write(py, work(run.len()), |t| t.insert_run(&run))
    }

    fn remove_post(&self, py: Python<'_>, post_id: i64) -> KernelResult<bool> {
        self.inner
            .write(py, Work::Quick, |t| t.remove_post(post_id))
    }

    fn remove_author(&self, py: Python<'_>, author_id: i64) -> KernelResult<usize> {
        self.inner
            .write(py, Work::Quick, |t| t.remove_author(author_id))
    }

    fn clear(&self, py: Python<'_>) -> KernelResult<()> {
        self.inner.write(py, Work::Quick, |t| t.clear())
    }

    /// `(scores, post_ids, author_ids)`: new arrays, in feed order.
    fn entries<'py>(&self, py: Python<'py>) -> KernelResult<EntriesTuple<'py>> {
        let (keys, posts, authors) = self.inner.read(py, Work::Quick, |t| {
            let entries = t.entries();
            (
                entries.iter().map(|e| e.key).collect::<Vec<_>>(),
                entries.iter().map(|e| e.post_id).collect::<Vec<_>>(),
                entries.iter().map(|e| e.author_id).collect::<Vec<_>>(),
            )
        })?;
        Ok((
            scores_array(py, keys, self.float_scores),
            posts.into_pyarray(py),
            authors.into_pyarray(py),
        ))
    }

    fn copy(&self, py: Python<'_>) -> KernelResult<Self> {
        let copy = self.inner.read(py, Work::Quick, |t| t.clone())?;
        Ok(PyTimeline::wrap(copy))
    }

    fn to_bytes<'py>(&self, py: Python<'py>) -> KernelResult<Bound<'py, PyBytes>> {
        let bytes = self.inner.read(py, Work::Quick, |t| t.to_bytes())?;
        Ok(PyBytes::new(py, &bytes))
    }
}

/// See `igcore._reference.timeline.timeline_from_bytes`.
#[pyfunction]
fn timeline_from_bytes(
    py: Python<'_>,
    data: &Bound<'_, PyBytes>,
    max_len: u64,
) -> KernelResult<PyTimeline> {
    // A bytes object is immutable, so its buffer may be read without the GIL.
    let data = data.as_bytes();
    let timeline = maybe_detach(py, work(data.len()), || {
        core::Timeline::from_bytes(data, to_usize(max_len))
    })?;
    Ok(PyTimeline::wrap(timeline))
}

// -- merge_page ---------------------------------------------------------------------------------------

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

/// The sources of a merge, each in canonical form and all of one score kind, and that kind. Checked
/// as the reference checks: each source in turn, then the score kinds (naming the first source of
/// each kind).
fn accept_sources<'py>(
    sources: &Bound<'py, PyList>,
) -> KernelResult<(Vec<Source<'py>>, Option<bool>)> {
    let mut accepted = Vec::with_capacity(sources.len());
    // The first source of each score kind: int64, float64.
    let mut first_of_kind: [Option<usize>; 2] = [None, None];
    for (index, item) in sources.iter().enumerate() {
        let source = if let Ok(timeline) = item.cast::<PyTimeline>() {
            Source::Timeline(timeline.clone())
        } else if let Some(columns) = Columns::accept(&item) {
            Source::Columns(columns)
        } else {
            return Err(TimelineError::SourceNotCanonical { index }.into());
        };
        let float_scores = match &source {
            Source::Timeline(t) => t.get().float_scores,
            Source::Columns(c) => c.float_scores(),
        };
        first_of_kind[usize::from(float_scores)].get_or_insert(index);
        accepted.push(source);
    }
    if let [Some(int_index), Some(float_index)] = first_of_kind {
        return Err(TimelineError::SourcesMixScoreKinds {
            int_index,
            float_index,
        }
        .into());
    }
    let kind = match first_of_kind {
        [Some(_), _] => Some(false),
        [_, Some(_)] => Some(true),
        _ => None,
    };
    Ok((accepted, kind))
}

/// See `igcore._reference.timeline.accepts_sources`: whether `merge_page` takes `sources` and the
/// cursor as they are (the public layer converts them, or explains why it cannot, when not). It reads
/// each array's header only (no borrow is taken), so that asking costs little beside the merge.
#[pyfunction]
fn accepts_sources(sources: &Bound<'_, PyList>, after: Option<Cursor<'_>>) -> bool {
    let py = sources.py();
    let mut kind = after.as_ref().map(|cursor| cursor.0);
    for item in sources.iter() {
        let float_scores = if let Ok(timeline) = item.cast::<PyTimeline>() {
            timeline.get().float_scores
        } else {
            match canonical_columns(py, &item) {
                Some(float_scores) => float_scores,
                None => return false,
            }
        };
        if *kind.get_or_insert(float_scores) != float_scores {
            return false;
        }
    }
    true
}

/// Whether `item` is three 1-D C-contiguous aligned native arrays of one length, with int64 or float64 scores
/// and int64 ids; if so, whether the scores are floats.
fn canonical_columns(py: Python<'_>, item: &Bound<'_, PyAny>) -> Option<bool> {
    let tuple = item.cast::<PyTuple>().ok()?;
    if tuple.len() != 3 {
        return None;
    }
    let column = |i: usize| -> Option<(usize, Bound<'_, numpy::PyArrayDescr>)> {
        let item = tuple.get_item(i).ok()?;
        let array = item.cast::<PyUntypedArray>().ok()?;
        (array.ndim() == 1 && array.is_c_contiguous() && array.is_aligned())
            .then(|| (array.len(), array.dtype()))
    };
    let (scores, posts, authors) = (column(0)?, column(1)?, column(2)?);
    let int64 = numpy::dtype::<i64>(py);
    let float_scores = if scores.1.is_equiv_to(&numpy::dtype::<f64>(py)) {
        true
    } else if scores.1.is_equiv_to(&int64) {
        false
    } else {
        return None;
    };
    let same_length = scores.0 == posts.0 && posts.0 == authors.0;
    (same_length && posts.1.is_equiv_to(&int64) && authors.1.is_equiv_to(&int64))
        .then_some(float_scores)
}

/// See `igcore._reference.timeline.merge_page`. Sources that are not canonical, or mix score kinds,
/// raise TypeError; a cursor of the other score kind raises ValueError.
#[pyfunction]
#[pyo3(signature = (sources, limit, after, exclude_authors, per_author_cap))]
fn merge_page<'py>(
    py: Python<'py>,
    sources: &Bound<'py, PyList>,
    limit: u64,
    after: Option<Cursor<'py>>,
    exclude_authors: Option<PyReadonlyArray1<'py, i64>>,
    per_author_cap: Option<u64>,
) -> KernelResult<PageTuple<'py>> {
    let (accepted, kind) = accept_sources(sources)?;
    let float_scores = kind.or(after.as_ref().map(|a| a.0)).unwrap_or(false);
    let after = after_rank(&after, float_scores)?;

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
                let run = columns
                    .run()
                    .ok_or(TimelineError::SourceNotCanonical { index })?;
                array_entries += run.len();
                parts.push(Part::Columns(run, index));
            }
        }
    }
    let request = page_request(limit, after, &exclude_authors, per_author_cap)?;
    let page = read_all(py, &locks, work(array_entries), |timelines| {
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
        core::merge_page(&runs, &request)
    })??;
    Ok(page_tuple(py, page, float_scores))
}

// -- TimelineStore ------------------------------------------------------------------------------------

/// Timelines by user id in Rust memory; see `igcore._reference.timeline.TimelineStore`.
#[pyclass(frozen, name = "TimelineStore", module = "igcore._rust.timeline")]
pub(crate) struct PyTimelineStore {
    #[pyo3(get)]
    float_scores: bool,
    #[pyo3(get)]
    max_len: usize,
    inner: Guarded<core::TimelineStore>,
}

#[pymethods]
impl PyTimelineStore {
    #[new]
    fn new(max_len: u64, float_scores: bool) -> Self {
        let store = core::TimelineStore::new(to_usize(max_len), float_scores);
        PyTimelineStore {
            float_scores,
            max_len: store.max_len(),
            inner: Guarded::new(store),
        }
    }

    fn __len__(&self, py: Python<'_>) -> KernelResult<usize> {
        self.inner.read(py, Work::Quick, |s| s.len())
    }

    fn contains(&self, py: Python<'_>, user_id: i64) -> KernelResult<bool> {
        self.inner.read(py, Work::Quick, |s| s.contains(user_id))
    }

    fn users<'py>(&self, py: Python<'py>) -> KernelResult<Bound<'py, PyArray1<i64>>> {
        let size = self.__len__(py)?;
        let long = Work::sized(size, guard::TIMELINE_USERS);
        let users = self.inner.read(py, long, |s| s.users())?;
        Ok(users.into_pyarray(py))
    }

    /// A copy of the user's timeline, or None.
    fn get(&self, py: Python<'_>, user_id: i64) -> KernelResult<Option<PyTimeline>> {
        let copy = self
            .inner
            .read(py, Work::Quick, |s| s.get(user_id).cloned())?;
        Ok(copy.map(PyTimeline::wrap))
    }

    /// Stores a copy of `timeline` (of this store's max_len and score kind: the public layer checks).
    fn put(
        &self,
        py: Python<'_>,
        user_id: i64,
        timeline: &Bound<'_, PyTimeline>,
    ) -> KernelResult<()> {
        let copy = timeline.get().inner.read(py, Work::Quick, |t| t.clone())?;
        self.inner
            .try_write(py, Work::Quick, |s| s.put(user_id, copy))
    }

    fn discard(&self, py: Python<'_>, user_id: i64) -> KernelResult<bool> {
        self.inner.write(py, Work::Quick, |s| s.discard(user_id))
    }

    #[pyo3(signature = (user_ids, limit, after, exclude_authors, per_author_cap))]
    fn merge_page<'py>(
        &self,
        py: Python<'py>,
        user_ids: PyReadonlyArray1<'py, i64>,
        limit: u64,
        after: Option<Cursor<'py>>,
        exclude_authors: Option<PyReadonlyArray1<'py, i64>>,
        per_author_cap: Option<u64>,
    ) -> KernelResult<PageTuple<'py>> {
        let user_ids = contiguous(&user_ids, "user_ids")?;
        let after = after_rank(&after, self.float_scores)?;
        let request = page_request(limit, after, &exclude_authors, per_author_cap)?;
        let long = Work::sized(user_ids.len(), guard::TIMELINE_USERS);
        let page = self
            .inner
            .try_read(py, long, |s| s.merge_page(user_ids, &request))?;
        Ok(page_tuple(py, page, self.float_scores))
    }

    /// Inserts the entry into the timeline of each follower (created when missing, if asked);
    /// returns how many inserts stood.
    fn fanout(
        &self,
        py: Python<'_>,
        score: &Bound<'_, PyAny>,
        post_id: i64,
        author_id: i64,
        follower_ids: PyReadonlyArray1<'_, i64>,
        create_missing: bool,
    ) -> KernelResult<usize> {
        let entry = Entry {
            key: score_key(score, self.float_scores)?,
            post_id,
            author_id,
        };
        let followers = contiguous(&follower_ids, "follower_ids")?;
        let long = Work::sized(followers.len(), guard::TIMELINE_FOLLOWERS);
        self.inner
            .try_write(py, long, |s| s.fanout(entry, followers, create_missing))
    }

    /// On follow: `source` (a Timeline, or three canonical arrays of this store's score kind) into
    /// the user's timeline.
    fn backfill(
        &self,
        py: Python<'_>,
        user_id: i64,
        source: &Bound<'_, PyAny>,
    ) -> KernelResult<()> {
        if let Ok(timeline) = source.cast::<PyTimeline>() {
            // Copy the entries out first: one lock at a time.
            let entries = timeline
                .get()
                .inner
                .read(py, Work::Quick, |t| t.entries().to_vec())?;
            let run = Run::Entries(&entries);
            return self
                .inner
                .try_write(py, work(entries.len()), |s| s.backfill(user_id, &run));
        }
        let columns = Columns::accept(source)
            .filter(|c| c.float_scores() == self.float_scores)
            .ok_or(TimelineError::BackfillSource)?;
        let run = columns.run().ok_or(TimelineError::BackfillSource)?;
        self.inner
            .try_write(py, work(run.len()), |s| s.backfill(user_id, &run))
    }

    /// On unfollow: removes the author's entries from the user's timeline; how many.
    fn remove_author(&self, py: Python<'_>, user_id: i64, author_id: i64) -> KernelResult<usize> {
        self.inner
            .write(py, Work::Quick, |s| s.remove_author(user_id, author_id))
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
) -> KernelResult<ActivityTuple<'py>> {
    let actor_ids = contiguous(&actor_ids, "actor_ids")?;
    let verbs = contiguous(&verbs, "verbs")?;
    let target_ids = contiguous(&target_ids, "target_ids")?;
    let timestamps = contiguous(&timestamps, "timestamps")?;
    let groups = maybe_detach(py, work(actor_ids.len()), || {
        core::aggregate_activity(
            actor_ids,
            verbs,
            target_ids,
            timestamps,
            window_seconds,
            to_usize(max_actors),
        )
    })?;
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
        m.add_function(wrap_pyfunction!(merge_page, m)?)?;
        m.add_function(wrap_pyfunction!(accepts_sources, m)?)?;
        m.add_function(wrap_pyfunction!(aggregate_activity, m)?)
    })
}
