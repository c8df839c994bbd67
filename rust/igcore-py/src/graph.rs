//! `igcore._rust.graph`: the follow graph's Rust backend. A thin layer: arguments arrive checked by
//! `igcore.graph`; the graph lives behind its lock (see `guard`), and long work runs with the GIL
//! released.

use igcore_core::graph::{self as core, file::Layout, FollowGraph, WalkParams};
use numpy::{IntoPyArray, PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyBytes;

use crate::error::{contiguous, KernelResult};
use crate::guard::{Guarded, Work};

type Int64Array<'py> = Bound<'py, PyArray1<i64>>;
type Ids<'py> = PyReadonlyArray1<'py, i64>;

/// A follow graph held by the Rust backend. See `igcore._reference.graph.Graph`.
#[pyclass(module = "igcore._rust.graph", name = "Graph", frozen)]
struct Graph {
    /// Queries, `save` and `verify` share the lock; `follow`, `unfollow` and `compact` hold it alone.
    inner: Guarded<FollowGraph>,
}

impl Graph {
    fn new(graph: FollowGraph) -> Self {
        Graph {
            inner: Guarded::new(graph),
        }
    }
}

type Pair<'py> = (Int64Array<'py>, Int64Array<'py>);

#[pymethods]
impl Graph {
    #[getter]
    fn timed(&self, py: Python<'_>) -> KernelResult<bool> {
        self.inner.read(py, Work::Quick, |g| g.timed())
    }

    fn num_users(&self, py: Python<'_>) -> KernelResult<usize> {
        self.inner.read(py, Work::Quick, |g| g.num_users())
    }

    fn num_follows(&self, py: Python<'_>) -> KernelResult<usize> {
        self.inner.try_read(py, Work::Long, |g| g.num_follows())
    }

    fn nbytes(&self, py: Python<'_>) -> KernelResult<usize> {
        self.inner.read(py, Work::Quick, |g| g.nbytes())
    }

    fn verify(&self, py: Python<'_>) -> KernelResult<()> {
        self.inner.try_read(py, Work::Long, |g| g.verify())
    }

    fn user_ids<'py>(&self, py: Python<'py>) -> KernelResult<Int64Array<'py>> {
        let ids = self.inner.try_read(py, Work::Long, |g| g.user_ids())?;
        Ok(ids.into_pyarray(py))
    }

    fn contains(&self, py: Python<'_>, user: i64) -> KernelResult<bool> {
        self.inner.try_read(py, Work::Quick, |g| g.contains(user))
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
    ) -> KernelResult<(Int64Array<'py>, Option<Int64Array<'py>>)> {
        let (ids, times) = self.inner.try_read(py, Work::Long, |g| {
            g.neighbours(user, out, since, until, offset, limit)
        })?;
        Ok((ids.into_pyarray(py), times.map(|t| t.into_pyarray(py))))
    }

    fn degree(&self, py: Python<'_>, user: i64, out: bool) -> KernelResult<usize> {
        self.inner
            .try_read(py, Work::Quick, |g| g.degree(user, out))
    }

    fn counts<'py>(
        &self,
        py: Python<'py>,
        users: Ids<'py>,
        out: bool,
    ) -> KernelResult<Int64Array<'py>> {
        let users = contiguous(&users, "users")?;
        let counts = self
            .inner
            .try_read(py, Work::Long, |g| g.counts(users, out))?;
        Ok(counts.into_pyarray(py))
    }

    fn is_following<'py>(
        &self,
        py: Python<'py>,
        a: Ids<'py>,
        b: Ids<'py>,
    ) -> KernelResult<Bound<'py, PyArray1<bool>>> {
        let (a, b) = (contiguous(&a, "a")?, contiguous(&b, "b")?);
        let found = self
            .inner
            .try_read(py, Work::Long, |g| g.is_following(a, b))?;
        Ok(found.into_pyarray(py))
    }

    fn mutual_follows<'py>(&self, py: Python<'py>, user: i64) -> KernelResult<Int64Array<'py>> {
        let ids = self
            .inner
            .try_read(py, Work::Long, |g| g.mutual_follows(user))?;
        Ok(ids.into_pyarray(py))
    }

    fn common<'py>(
        &self,
        py: Python<'py>,
        a: i64,
        b: i64,
        out: bool,
    ) -> KernelResult<Int64Array<'py>> {
        let ids = self
            .inner
            .try_read(py, Work::Long, |g| g.common(a, b, out))?;
        Ok(ids.into_pyarray(py))
    }

    fn followed_by<'py>(
        &self,
        py: Python<'py>,
        viewer: i64,
        target: i64,
        limit: usize,
    ) -> KernelResult<(Int64Array<'py>, usize)> {
        let (ids, total) = self
            .inner
            .try_read(py, Work::Long, |g| g.followed_by(viewer, target, limit))?;
        Ok((ids.into_pyarray(py), total))
    }

    fn suggest<'py>(
        &self,
        py: Python<'py>,
        user: i64,
        limit: usize,
        adamic_adar: bool,
        exclude: Ids<'py>,
    ) -> KernelResult<(Int64Array<'py>, Bound<'py, PyArray1<f64>>)> {
        let exclude = contiguous(&exclude, "exclude")?;
        let (ids, scores) = self.inner.try_read(py, Work::Long, |g| {
            g.suggest(user, limit, adamic_adar, exclude)
        })?;
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
    ) -> KernelResult<(Int64Array<'py>, Bound<'py, PyArray1<f64>>)> {
        let exclude = contiguous(&exclude, "exclude")?;
        let params = WalkParams {
            walks,
            walk_length,
            restart_prob,
            seed,
            limit,
        };
        let (ids, scores) = self.inner.try_read(py, Work::Long, |g| {
            g.random_walk_suggest(user, params, exclude)
        })?;
        Ok((ids.into_pyarray(py), scores.into_pyarray(py)))
    }

    fn bfs<'py>(
        &self,
        py: Python<'py>,
        user: i64,
        max_depth: u64,
        max_nodes: Option<usize>,
        out: bool,
    ) -> KernelResult<Pair<'py>> {
        let (ids, depths) = self
            .inner
            .try_read(py, Work::Long, |g| g.bfs(user, max_depth, max_nodes, out))?;
        Ok((ids.into_pyarray(py), depths.into_pyarray(py)))
    }

    fn follow(
        &self,
        py: Python<'_>,
        src: Ids<'_>,
        dst: Ids<'_>,
        times: Option<Ids<'_>>,
    ) -> KernelResult<usize> {
        let (src, dst) = (contiguous(&src, "src")?, contiguous(&dst, "dst")?);
        let times = match &times {
            Some(t) => Some(contiguous(t, "timestamps")?),
            None => None,
        };
        self.inner
            .try_write(py, Work::Long, |g| g.follow(src, dst, times))
    }

    fn unfollow(&self, py: Python<'_>, src: Ids<'_>, dst: Ids<'_>) -> KernelResult<usize> {
        let (src, dst) = (contiguous(&src, "src")?, contiguous(&dst, "dst")?);
        self.inner
            .try_write(py, Work::Long, |g| g.unfollow(src, dst))
    }

    fn compact(&self, py: Python<'_>) -> KernelResult<()> {
        self.inner.try_write(py, Work::Long, |g| g.compact())
    }

    fn edges<'py>(
        &self,
        py: Python<'py>,
    ) -> KernelResult<(Int64Array<'py>, Int64Array<'py>, Option<Int64Array<'py>>)> {
        let (src, dst, times) = self.inner.try_read(py, Work::Long, |g| g.edges())?;
        Ok((
            src.into_pyarray(py),
            dst.into_pyarray(py),
            times.map(|t| t.into_pyarray(py)),
        ))
    }

    fn components<'py>(&self, py: Python<'py>, strong: bool) -> KernelResult<Int64Array<'py>> {
        let labels = self
            .inner
            .try_read(py, Work::Long, |g| g.components(strong))?;
        Ok(labels.into_pyarray(py))
    }

    fn triangle_count(&self, py: Python<'_>) -> KernelResult<u64> {
        self.inner.try_read(py, Work::Long, |g| g.triangle_count())
    }

    fn degree_histogram<'py>(&self, py: Python<'py>, out: bool) -> KernelResult<Int64Array<'py>> {
        let histogram = self
            .inner
            .try_read(py, Work::Long, |g| g.degree_histogram(out))?;
        Ok(histogram.into_pyarray(py))
    }

    fn save(&self, py: Python<'_>, path: &str) -> KernelResult<()> {
        self.inner.try_read(py, Work::Long, |g| g.save(path))
    }
}

/// See `igcore._reference.graph.build`.
#[pyfunction]
#[pyo3(signature = (src, dst, times))]
fn build<'py>(
    py: Python<'py>,
    src: Ids<'py>,
    dst: Ids<'py>,
    times: Option<Ids<'py>>,
) -> KernelResult<(Graph, usize, usize, Int64Array<'py>)> {
    let (src, dst) = (contiguous(&src, "src")?, contiguous(&dst, "dst")?);
    let times = match &times {
        Some(t) => Some(contiguous(t, "timestamps")?),
        None => None,
    };
    let built = py.detach(|| core::build(src, dst, times))?;
    Ok((
        Graph::new(built.graph),
        built.duplicates,
        built.self_follows,
        built.self_followers.into_pyarray(py),
    ))
}

/// See `igcore._reference.graph.load`; `layout` is the header `igcore._graph_file` read and checked.
#[pyfunction]
fn load(py: Python<'_>, path: &str, layout: &Bound<'_, PyAny>, mmap: bool) -> KernelResult<Graph> {
    let layout = Layout {
        num_users: layout.getattr("num_users")?.extract()?,
        num_follows: layout.getattr("num_follows")?.extract()?,
        timed: layout.getattr("timed")?.extract()?,
        offsets: layout.getattr("offsets")?.extract()?,
        lengths: layout.getattr("lengths")?.extract()?,
        crcs: layout.getattr("crcs")?.extract()?,
        header: layout.getattr("header")?.extract()?,
    };
    let inner = py.detach(|| core::file::load(path, layout, mmap))?;
    Ok(Graph::new(inner))
}

/// See `igcore._reference.graph.parse_edgelist`.
#[pyfunction]
fn parse_edgelist<'py>(
    py: Python<'py>,
    data: &Bound<'py, PyBytes>,
) -> KernelResult<(Int64Array<'py>, Int64Array<'py>, Option<Int64Array<'py>>)> {
    let bytes = data.as_bytes();
    let edges = py.detach(|| core::parse_edgelist(bytes))?;
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
