//! `igcore._rust.graph`: the follow graph's Rust backend. A thin layer: arguments arrive checked by
//! `igcore.graph`; long work runs with the GIL released.

use std::sync::{PoisonError, RwLock, TryLockError};

use igcore_core::graph::{self as core, file::Layout, FollowGraph, WalkParams};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::{not_contiguous, py_err};

type Int64Array<'py> = Bound<'py, PyArray1<i64>>;
type Ids<'py> = PyReadonlyArray1<'py, i64>;

fn slice<'a>(array: &'a Ids<'_>, name: &'static str) -> PyResult<&'a [i64]> {
    array.as_slice().map_err(not_contiguous(name))
}

/// A follow graph held by the Rust backend. See `igcore._reference.graph.Graph`.
#[pyclass(module = "igcore._rust.graph", name = "Graph", frozen)]
struct Graph {
    /// Queries, `save` and `verify` share the lock; `follow`, `unfollow` and `compact` hold it alone.
    /// Every wait for it happens with the GIL released, and nothing holding it takes the GIL, so
    /// the two locks cannot deadlock. (A panic cannot poison it: no code here panics while holding it.)
    inner: RwLock<FollowGraph>,
}

impl Graph {
    fn new(graph: FollowGraph) -> Self {
        Graph {
            inner: RwLock::new(graph),
        }
    }

    /// Runs `f` on the graph, shared with other readers, without the GIL.
    fn read<R: Send>(&self, py: Python<'_>, f: impl FnOnce(&FollowGraph) -> R + Send) -> R {
        py.detach(|| f(&self.inner.read().unwrap_or_else(PoisonError::into_inner)))
    }

    /// For calls quicker than releasing the GIL: reads with it held when no writer holds or waits for
    /// the lock, and waits without it otherwise.
    fn read_quick<R: Send>(&self, py: Python<'_>, f: impl FnOnce(&FollowGraph) -> R + Send) -> R {
        match self.inner.try_read() {
            Ok(graph) => f(&graph),
            Err(TryLockError::Poisoned(graph)) => f(&graph.into_inner()),
            Err(TryLockError::WouldBlock) => self.read(py, f),
        }
    }

    /// Runs `f` on the graph, held alone, without the GIL.
    fn write<R: Send>(&self, py: Python<'_>, f: impl FnOnce(&mut FollowGraph) -> R + Send) -> R {
        py.detach(|| f(&mut self.inner.write().unwrap_or_else(PoisonError::into_inner)))
    }
}

type Pair<'py> = (Int64Array<'py>, Int64Array<'py>);

#[pymethods]
impl Graph {
    #[getter]
    fn timed(&self, py: Python<'_>) -> bool {
        self.read_quick(py, |g| g.timed())
    }

    fn num_users(&self, py: Python<'_>) -> usize {
        self.read_quick(py, |g| g.num_users())
    }

    fn num_follows(&self, py: Python<'_>) -> PyResult<usize> {
        self.read(py, |g| g.num_follows()).map_err(py_err)
    }

    fn nbytes(&self, py: Python<'_>) -> usize {
        self.read_quick(py, |g| g.nbytes())
    }

    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        self.read(py, |g| g.verify()).map_err(py_err)
    }

    fn user_ids<'py>(&self, py: Python<'py>) -> PyResult<Int64Array<'py>> {
        let ids = self.read(py, |g| g.user_ids()).map_err(py_err)?;
        Ok(ids.into_pyarray(py))
    }

    fn contains(&self, py: Python<'_>, user: i64) -> PyResult<bool> {
        self.read_quick(py, |g| g.contains(user)).map_err(py_err)
    }

    #[allow(clippy::too_many_arguments)]
    fn neighbours<'py>(
        &self,
        py: Python<'py>,
        user: i64,
        out: bool,
        since: Option<i64>,
        until: Option<i64>,
        offset: usize,
        limit: Option<usize>,
    ) -> PyResult<(Int64Array<'py>, Option<Int64Array<'py>>)> {
        let (ids, times) = self
            .read(py, |g| g.neighbours(user, out, since, until, offset, limit))
            .map_err(py_err)?;
        Ok((ids.into_pyarray(py), times.map(|t| t.into_pyarray(py))))
    }

    fn degree(&self, py: Python<'_>, user: i64, out: bool) -> PyResult<usize> {
        self.read_quick(py, |g| g.degree(user, out)).map_err(py_err)
    }

    fn counts<'py>(
        &self,
        py: Python<'py>,
        users: Ids<'py>,
        out: bool,
    ) -> PyResult<Int64Array<'py>> {
        let users = slice(&users, "users")?;
        let counts = self.read(py, |g| g.counts(users, out)).map_err(py_err)?;
        Ok(counts.into_pyarray(py))
    }

    fn is_following<'py>(
        &self,
        py: Python<'py>,
        a: Ids<'py>,
        b: Ids<'py>,
    ) -> PyResult<Bound<'py, PyArray1<bool>>> {
        let (a, b) = (slice(&a, "a")?, slice(&b, "b")?);
        let found = self.read(py, |g| g.is_following(a, b)).map_err(py_err)?;
        Ok(found.into_pyarray(py))
    }

    fn mutual_follows<'py>(&self, py: Python<'py>, user: i64) -> PyResult<Int64Array<'py>> {
        let ids = self.read(py, |g| g.mutual_follows(user)).map_err(py_err)?;
        Ok(ids.into_pyarray(py))
    }

    fn common<'py>(&self, py: Python<'py>, a: i64, b: i64, out: bool) -> PyResult<Int64Array<'py>> {
        let ids = self.read(py, |g| g.common(a, b, out)).map_err(py_err)?;
        Ok(ids.into_pyarray(py))
    }

    fn followed_by<'py>(
        &self,
        py: Python<'py>,
        viewer: i64,
        target: i64,
        limit: usize,
    ) -> PyResult<(Int64Array<'py>, usize)> {
        let (ids, total) = self
            .read(py, |g| g.followed_by(viewer, target, limit))
            .map_err(py_err)?;
        Ok((ids.into_pyarray(py), total))
    }

    fn suggest<'py>(
        &self,
        py: Python<'py>,
        user: i64,
        limit: usize,
        adamic_adar: bool,
        exclude: Ids<'py>,
    ) -> PyResult<(Int64Array<'py>, Bound<'py, PyArray1<f64>>)> {
        let exclude = slice(&exclude, "exclude")?;
        let (ids, scores) = self
            .read(py, |g| g.suggest(user, limit, adamic_adar, exclude))
            .map_err(py_err)?;
        Ok((ids.into_pyarray(py), scores.into_pyarray(py)))
    }

    #[allow(clippy::too_many_arguments)]
    fn random_walk_suggest<'py>(
        &self,
        py: Python<'py>,
        user: i64,
        walks: u64,
        walk_length: u64,
        restart_prob: f64,
        seed: u64,
        limit: usize,
        exclude: Ids<'py>,
    ) -> PyResult<(Int64Array<'py>, Bound<'py, PyArray1<f64>>)> {
        let exclude = slice(&exclude, "exclude")?;
        let params = WalkParams {
            walks,
            walk_length,
            restart_prob,
            seed,
            limit,
        };
        let (ids, scores) = self
            .read(py, |g| g.random_walk_suggest(user, params, exclude))
            .map_err(py_err)?;
        Ok((ids.into_pyarray(py), scores.into_pyarray(py)))
    }

    fn bfs<'py>(
        &self,
        py: Python<'py>,
        user: i64,
        max_depth: u64,
        max_nodes: Option<usize>,
        out: bool,
    ) -> PyResult<Pair<'py>> {
        let (ids, depths) = self
            .read(py, |g| g.bfs(user, max_depth, max_nodes, out))
            .map_err(py_err)?;
        Ok((ids.into_pyarray(py), depths.into_pyarray(py)))
    }

    fn follow(
        &self,
        py: Python<'_>,
        src: Ids<'_>,
        dst: Ids<'_>,
        times: Option<Ids<'_>>,
    ) -> PyResult<usize> {
        let (src, dst) = (slice(&src, "src")?, slice(&dst, "dst")?);
        let times = match &times {
            Some(t) => Some(slice(t, "timestamps")?),
            None => None,
        };
        self.write(py, |g| g.follow(src, dst, times))
            .map_err(py_err)
    }

    fn unfollow(&self, py: Python<'_>, src: Ids<'_>, dst: Ids<'_>) -> PyResult<usize> {
        let (src, dst) = (slice(&src, "src")?, slice(&dst, "dst")?);
        self.write(py, |g| g.unfollow(src, dst)).map_err(py_err)
    }

    fn compact(&self, py: Python<'_>) -> PyResult<()> {
        self.write(py, |g| g.compact()).map_err(py_err)
    }

    fn edges<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Int64Array<'py>, Int64Array<'py>, Option<Int64Array<'py>>)> {
        let (src, dst, times) = self.read(py, |g| g.edges()).map_err(py_err)?;
        Ok((
            src.into_pyarray(py),
            dst.into_pyarray(py),
            times.map(|t| t.into_pyarray(py)),
        ))
    }

    fn components<'py>(&self, py: Python<'py>, strong: bool) -> PyResult<Int64Array<'py>> {
        let labels = self.read(py, |g| g.components(strong)).map_err(py_err)?;
        Ok(labels.into_pyarray(py))
    }

    fn triangle_count(&self, py: Python<'_>) -> PyResult<u64> {
        self.read(py, |g| g.triangle_count()).map_err(py_err)
    }

    fn degree_histogram<'py>(&self, py: Python<'py>, out: bool) -> PyResult<Int64Array<'py>> {
        let histogram = self.read(py, |g| g.degree_histogram(out)).map_err(py_err)?;
        Ok(histogram.into_pyarray(py))
    }

    fn save(&self, py: Python<'_>, path: &str) -> PyResult<()> {
        self.read(py, |g| g.save(path)).map_err(py_err)
    }
}

/// See `igcore._reference.graph.build`.
#[pyfunction]
#[pyo3(signature = (src, dst, times=None))]
fn build<'py>(
    py: Python<'py>,
    src: Ids<'py>,
    dst: Ids<'py>,
    times: Option<Ids<'py>>,
) -> PyResult<(Graph, usize, usize, Int64Array<'py>)> {
    let (src, dst) = (slice(&src, "src")?, slice(&dst, "dst")?);
    let times = match &times {
        Some(t) => Some(slice(t, "timestamps")?),
        None => None,
    };
    let built = py.detach(|| core::build(src, dst, times)).map_err(py_err)?;
    Ok((
        Graph::new(built.graph),
        built.duplicates,
        built.self_follows,
        built.self_followers.into_pyarray(py),
    ))
}

/// See `igcore._reference.graph.load`; `layout` is the header `igcore._graph_file` read and checked.
#[pyfunction]
fn load(py: Python<'_>, path: &str, layout: &Bound<'_, PyAny>, mmap: bool) -> PyResult<Graph> {
    let layout = Layout {
        num_users: layout.getattr("num_users")?.extract()?,
        num_follows: layout.getattr("num_follows")?.extract()?,
        timed: layout.getattr("timed")?.extract()?,
        offsets: layout.getattr("offsets")?.extract()?,
        lengths: layout.getattr("lengths")?.extract()?,
        crcs: layout.getattr("crcs")?.extract()?,
        header: layout.getattr("header")?.extract()?,
    };
    let inner = py
        .detach(|| core::file::load(path, layout, mmap))
        .map_err(py_err)?;
    Ok(Graph::new(inner))
}

/// See `igcore._reference.graph.parse_edgelist`.
#[pyfunction]
fn parse_edgelist<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyBytes>,
) -> PyResult<(Int64Array<'py>, Int64Array<'py>, Option<Int64Array<'py>>)> {
    let bytes = data.as_bytes();
    let edges = py.detach(|| core::parse_edgelist(bytes)).map_err(py_err)?;
    Ok((
        edges.src.into_pyarray(py),
        edges.dst.into_pyarray(py),
        edges.third.map(|t| t.into_pyarray(py)),
    ))
}

pub(crate) fn register(parent: &Bound<'_, PyModule>) -> PyResult<()> {
    crate::add_hot_path(parent, "graph", |m| {
        m.add_class::<Graph>()?;
        m.add_function(wrap_pyfunction!(build, m)?)?;
        m.add_function(wrap_pyfunction!(load, m)?)?;
        m.add_function(wrap_pyfunction!(parse_edgelist, m)?)
    })
}
