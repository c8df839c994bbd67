//! `igcore._rust.graph`: the follow graph's Rust backend. A thin layer: arguments arrive checked by
//! `igcore.graph`; long work runs with the GIL released.

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
#[pyclass(module = "igcore._rust.graph", name = "Graph")]
struct Graph {
    inner: FollowGraph,
}

type Pair<'py> = (Int64Array<'py>, Int64Array<'py>);

#[pymethods]
impl Graph {
    #[getter]
    fn timed(&self) -> bool {
        self.inner.timed()
    }

    fn num_users(&self) -> usize {
        self.inner.num_users()
    }

    fn num_follows(&self) -> PyResult<usize> {
        self.inner.num_follows().map_err(py_err)
    }

    fn nbytes(&self) -> usize {
        self.inner.nbytes()
    }

    fn verify(&self, py: Python<'_>) -> PyResult<()> {
        py.detach(|| self.inner.verify()).map_err(py_err)
    }

    fn user_ids<'py>(&self, py: Python<'py>) -> PyResult<Int64Array<'py>> {
        let ids = py.detach(|| self.inner.user_ids()).map_err(py_err)?;
        Ok(ids.into_pyarray(py))
    }

    fn contains(&self, user: i64) -> PyResult<bool> {
        self.inner.contains(user).map_err(py_err)
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
        let (ids, times) = py
            .detach(|| {
                self.inner
                    .neighbours(user, out, since, until, offset, limit)
            })
            .map_err(py_err)?;
        Ok((ids.into_pyarray(py), times.map(|t| t.into_pyarray(py))))
    }

    fn degree(&self, user: i64, out: bool) -> PyResult<usize> {
        self.inner.degree(user, out).map_err(py_err)
    }

    fn counts<'py>(
        &self,
        py: Python<'py>,
        users: Ids<'py>,
        out: bool,
    ) -> PyResult<Int64Array<'py>> {
        let users = slice(&users, "users")?;
        let counts = py
            .detach(|| self.inner.counts(users, out))
            .map_err(py_err)?;
        Ok(counts.into_pyarray(py))
    }

    fn is_following<'py>(
        &self,
        py: Python<'py>,
        a: Ids<'py>,
        b: Ids<'py>,
    ) -> PyResult<Bound<'py, PyArray1<bool>>> {
        let (a, b) = (slice(&a, "a")?, slice(&b, "b")?);
        let found = py
            .detach(|| self.inner.is_following(a, b))
            .map_err(py_err)?;
        Ok(found.into_pyarray(py))
    }

    fn mutual_follows<'py>(&self, py: Python<'py>, user: i64) -> PyResult<Int64Array<'py>> {
        let ids = py
            .detach(|| self.inner.mutual_follows(user))
            .map_err(py_err)?;
        Ok(ids.into_pyarray(py))
    }

    fn common<'py>(&self, py: Python<'py>, a: i64, b: i64, out: bool) -> PyResult<Int64Array<'py>> {
        let ids = py.detach(|| self.inner.common(a, b, out)).map_err(py_err)?;
        Ok(ids.into_pyarray(py))
    }

    fn followed_by<'py>(
        &self,
        py: Python<'py>,
        viewer: i64,
        target: i64,
        limit: usize,
    ) -> PyResult<(Int64Array<'py>, usize)> {
        let (ids, total) = py
            .detach(|| self.inner.followed_by(viewer, target, limit))
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
        let (ids, scores) = py
            .detach(|| self.inner.suggest(user, limit, adamic_adar, exclude))
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
        let (ids, scores) = py
            .detach(|| self.inner.random_walk_suggest(user, params, exclude))
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
        let (ids, depths) = py
            .detach(|| self.inner.bfs(user, max_depth, max_nodes, out))
            .map_err(py_err)?;
        Ok((ids.into_pyarray(py), depths.into_pyarray(py)))
    }

    fn follow(
        &mut self,
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
        let inner = &mut self.inner;
        py.detach(|| inner.follow(src, dst, times)).map_err(py_err)
    }

    fn unfollow(&mut self, py: Python<'_>, src: Ids<'_>, dst: Ids<'_>) -> PyResult<usize> {
        let (src, dst) = (slice(&src, "src")?, slice(&dst, "dst")?);
        let inner = &mut self.inner;
        py.detach(|| inner.unfollow(src, dst)).map_err(py_err)
    }

    fn compact(&mut self, py: Python<'_>) -> PyResult<()> {
        let inner = &mut self.inner;
        py.detach(|| inner.compact()).map_err(py_err)
    }

    fn edges<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Int64Array<'py>, Int64Array<'py>, Option<Int64Array<'py>>)> {
        let (src, dst, times) = py.detach(|| self.inner.edges()).map_err(py_err)?;
        Ok((
            src.into_pyarray(py),
            dst.into_pyarray(py),
            times.map(|t| t.into_pyarray(py)),
        ))
    }

    fn components<'py>(&self, py: Python<'py>, strong: bool) -> PyResult<Int64Array<'py>> {
        let labels = py
            .detach(|| self.inner.components(strong))
            .map_err(py_err)?;
        Ok(labels.into_pyarray(py))
    }

    fn triangle_count(&self, py: Python<'_>) -> PyResult<u64> {
        py.detach(|| self.inner.triangle_count()).map_err(py_err)
    }

    fn degree_histogram<'py>(&self, py: Python<'py>, out: bool) -> PyResult<Int64Array<'py>> {
        let histogram = py
            .detach(|| self.inner.degree_histogram(out))
            .map_err(py_err)?;
        Ok(histogram.into_pyarray(py))
    }

    fn save(&self, py: Python<'_>, path: &str) -> PyResult<()> {
        py.detach(|| self.inner.save(path)).map_err(py_err)
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
        Graph { inner: built.graph },
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
    };
    let inner = py
        .detach(|| core::file::load(path, layout, mmap))
        .map_err(py_err)?;
    Ok(Graph { inner })
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
