"""Benchmarks of the follower graph: build, queries, suggestions, traversal and load on a synthetic
power-law follow graph (200,000 users, about 2 million follows, random 63-bit ids, a few accounts with
50,000+ followers), and analytics on SNAP's Wiki-Vote. Peers: networkx, rustworkx, python-igraph and
scipy.sparse with an id map (each in the way its users write it)."""

from __future__ import annotations

import math
import os
import tempfile
from collections import Counter
from functools import lru_cache
from pathlib import Path

import numpy as np

from .. import _backend
from ..graph import FollowGraph, read_edgelist
from . import Case, register
from .data import random_ids

SEED = 20261124
USERS = 200_000
FOLLOWS = 2_250_000  # follow events; about 2 million distinct follows once repeats collapse
HEAVY_FOLLOWING = 1_000  # the user of the "1,000-followee" suggestion case follows about this many


def _sizes(scale: float) -> tuple[int, int]:
    return max(1_000, int(USERS * scale)), max(10_000, int(FOLLOWS * scale))


@lru_cache(maxsize=2)
def follows(scale: float) -> tuple[np.ndarray, np.ndarray]:
    """Seeded follows: out-degrees log-normal (median 4, mean about 10), targets drawn by Zipf(1)
    popularity, so the top accounts have 50,000+ followers at full size; user 0 follows 1,000
    distinct accounts, drawn by the same popularity."""
    users, count = _sizes(scale)
    rng = np.random.default_rng(SEED)
    ids = random_ids(users, SEED + 1)
    degree = np.maximum(1, rng.lognormal(np.log(4.0), 1.3, size=users)).astype(np.int64)
    degree = np.maximum(1, (degree * (count / degree.sum())).astype(np.int64))
    degree[0] = 0
    heavy_count = min(HEAVY_FOLLOWING, users // 4)
    src = np.repeat(ids, degree)
    popularity = 1.0 / np.arange(1, users + 1)
    cdf = np.cumsum(popularity) / popularity.sum()
    ranked = rng.permutation(ids)
    dst = ranked[np.minimum(np.searchsorted(cdf, rng.random(src.size), side="right"), users - 1)]
    weights = np.where(ranked == ids[0], 0.0, popularity)
    heavy = rng.choice(ranked, size=heavy_count, replace=False, p=weights / weights.sum())
    src = np.concatenate([np.full(heavy_count, ids[0]), src])
    dst = np.concatenate([heavy, dst])
    src.flags.writeable = dst.flags.writeable = False
    return src, dst


@lru_cache(maxsize=8)
def _graph(scale: float, backend: str) -> FollowGraph:
    with _backend.use_backend(backend):
        return FollowGraph.from_edges(*follows(scale))


def graph_here(scale: float) -> FollowGraph:
    """The benchmark graph held by the backend serving here and now (built once per backend)."""
    return _graph(scale, _backend.current("graph"))


@lru_cache(maxsize=2)
def probes(scale: float) -> dict:
    """The users the query cases ask about, picked from the graph itself."""
    graph = _graph(scale, _backend.available("graph")[0])
    users = graph.user_ids()
    following = graph.following_count(users)
    heavy = users[np.argmin(np.abs(following - HEAVY_FOLLOWING))]
    with_follows = np.flatnonzero(following > 0)
    median = users[with_follows[np.argsort(following[with_follows], kind="stable")[with_follows.size // 2]]]
    rng = np.random.default_rng(SEED + 2)
    sample = users[rng.integers(0, users.size, size=10_000)]
    src, dst = follows(scale)
    picked = rng.integers(0, src.size, size=50_000)
    pairs_a = np.concatenate([src[picked], users[rng.integers(0, users.size, size=50_000)]])
    pairs_b = np.concatenate([dst[picked], users[rng.integers(0, users.size, size=50_000)]])
    return {
        "heavy": int(heavy),
        "heavy_following": int(graph.following_count(int(heavy))),
        "median": int(median),
        "median_following": int(graph.following_count(int(median))),
        "sample": sample,
        "pairs": (pairs_a, pairs_b),
    }


# -- peers: the same graph in networkx, rustworkx, igraph and scipy.sparse -------------------------------


def _distinct_follows(scale: float) -> tuple[np.ndarray, np.ndarray]:
    src, dst = follows(scale)
    keep = src != dst
    return src[keep], dst[keep]


@lru_cache(maxsize=1)
def networkx_graph(scale: float):
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_nodes_from(np.unique(np.concatenate(follows(scale))).tolist())
    graph.add_edges_from(zip(*(a.tolist() for a in _distinct_follows(scale))))
    return graph


def scipy_build(src: np.ndarray, dst: np.ndarray):
    """CSR of following with an id map, as a scipy user builds it: (ids, matrix)."""
    import scipy.sparse as sp

    ids, inverse = np.unique(np.concatenate([src, dst]), return_inverse=True)
    rows, cols = inverse[: src.size], inverse[src.size :]
    keep = rows != cols
    ones = np.ones(int(keep.sum()), dtype=np.int32)
    matrix = sp.csr_matrix((ones, (rows[keep], cols[keep])), shape=(ids.size, ids.size))
    matrix.sum_duplicates()
    matrix.data[:] = 1
    return ids, matrix


@lru_cache(maxsize=1)
def scipy_graph(scale: float):
    return scipy_build(*follows(scale))


@lru_cache(maxsize=1)
def rustworkx_graph(scale: float):
    import rustworkx as rx

    ids, matrix = scipy_graph(scale)
    graph = rx.PyDiGraph(multigraph=False)
    graph.add_nodes_from(ids.tolist())
    coo = matrix.tocoo()
    graph.add_edges_from_no_data(list(zip(coo.row.tolist(), coo.col.tolist())))
    return ids, graph


@lru_cache(maxsize=1)
def igraph_graph(scale: float):
    import igraph

    ids, matrix = scipy_graph(scale)
    coo = matrix.tocoo()
    graph = igraph.Graph(n=ids.size, edges=np.column_stack([coo.row, coo.col]).tolist(), directed=True)
    return ids, graph


def _index(ids: np.ndarray, user: int) -> int:
    return int(np.searchsorted(ids, user))


# -- checks --------------------------------------------------------------------------------------------


def _same_arrays(result, expected) -> bool:
    return all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(result, expected))


def _same_suggestions(result, expected) -> bool:
    ids, scores = result
    return np.array_equal(np.asarray(ids), expected.ids) and np.array_equal(
        np.asarray(scores), expected.scores
    )


# -- build ---------------------------------------------------------------------------------------------


def _bytes_per_follow(scale: float) -> str:
    try:
        graph = _graph(scale, _backend.available("graph")[0])
    except Exception:  # noqa: BLE001 - the title must not fail
        return ""
    ids, matrix = scipy_graph(scale)
    scipy_bytes = 2 * (matrix.indptr.nbytes + matrix.indices.nbytes + matrix.data.nbytes) + ids.nbytes
    return (
        f" ({graph.num_follows:,} distinct); bytes per follow, both directions: igcore "
        f"{graph.nbytes / graph.num_follows:.1f}, scipy CSR (int32 data) {scipy_bytes / matrix.nnz:.1f}"
    )


def _build_title(scale: float) -> str:
    users, count = _sizes(scale)
    return (
        f"FollowGraph.from_edges: {count:,} follow events over {users:,} random 63-bit ids, power law "
        f"(both directions + id table){_bytes_per_follow(scale)}"
    )


def _built_same(result: FollowGraph, expected: FollowGraph) -> bool:
    return (
        result.num_follows == expected.num_follows
        and np.array_equal(result.user_ids(), expected.user_ids())
        and np.array_equal(result.edges()[1][:1000], expected.edges()[1][:1000])
    )


def _peer_built_same(result, expected: FollowGraph) -> bool:
    if isinstance(result, tuple):  # scipy: (ids, matrix)
        return np.array_equal(result[0], expected.user_ids()) and result[1].nnz == expected.num_follows
    edges = result.number_of_edges() if hasattr(result, "number_of_edges") else result.num_edges()
    return edges == expected.num_follows


def _rustworkx_build(i):
    import rustworkx as rx

    ids, inverse = np.unique(np.concatenate([i["src"], i["dst"]]), return_inverse=True)
    graph = rx.PyDiGraph(multigraph=False)
    graph.add_nodes_from(ids.tolist())
    rows, cols = inverse[: i["src"].size], inverse[i["src"].size :]
    keep = rows != cols
    graph.add_edges_from_no_data(list(zip(rows[keep].tolist(), cols[keep].tolist())))
    return graph


def _networkx_build(i):
    import networkx as nx

    graph = nx.DiGraph()
    graph.add_edges_from((a, b) for a, b in zip(i["src_list"], i["dst_list"]) if a != b)
    return graph


def _build_inputs(scale: float) -> dict:
    src, dst = follows(scale)
    return {"src": src, "dst": dst, "src_list": src.tolist(), "dst_list": dst.tolist()}


register(
    Case(
        name="graph.build",
        hot_path="graph",
        title=_build_title,
        make_inputs=_build_inputs,
        run=lambda i: FollowGraph.from_edges(i["src"], i["dst"]),
        peers={
            "scipy.sparse CSR + id map": lambda i: scipy_build(i["src"], i["dst"]),
            "rustworkx": _rustworkx_build,
            "networkx": _networkx_build,
        },
        slow_peers=("networkx",),
        same=_built_same,
        same_as_peer=_peer_built_same,
    )
)


# -- suggestions ----------------------------------------------------------------------------------------


def _suggest_inputs(scale: float, who: str) -> dict:
    return {"scale": scale, "user": probes(scale)[who]}


def _common_neighbours(user, successors, limit: int) -> list:
    """The peers' friends of friends, as a user of a graph library writes them: a Counter over the
    followees' followees, best first, ties by the smaller node."""
    followed = set(successors(user))
    scores: Counter = Counter()
    for f in followed:
        for candidate in successors(f):
            if candidate != user and candidate not in followed:
                scores[candidate] += 1
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]


def _networkx_suggest(i, limit=20):
    graph = networkx_graph(i["scale"])
    best = _common_neighbours(i["user"], graph.successors, limit)
    return [c for c, _ in best], [float(s) for _, s in best]


def _rustworkx_suggest(i, limit=20):
    ids, graph = rustworkx_graph(i["scale"])
    best = _common_neighbours(_index(ids, i["user"]), graph.successor_indices, limit)
    return ids[[c for c, _ in best]], [float(s) for _, s in best]


def _top(ids: np.ndarray, candidates: np.ndarray, scores: np.ndarray, limit: int):
    """The best `limit` candidates by score, ties by smaller index (= smaller id: the map is sorted)."""
    if candidates.size > limit:
        cut = np.partition(scores, scores.size - limit)[scores.size - limit]
        keep = scores >= cut
        candidates, scores = candidates[keep], scores[keep]
    order = np.lexsort((candidates, -scores))[:limit]
    return ids[candidates[order]], scores[order].astype(np.float64)


def _scipy_suggest(i, limit=20):
    """Friends of friends as one sparse row times the matrix."""
    ids, matrix = scipy_graph(i["scale"])
    user = _index(ids, i["user"])
    row = matrix[user]
    reached = row @ matrix
    candidates, scores = reached.indices, reached.data
    drop = np.isin(candidates, row.indices) | (candidates == user)
    return _top(ids, candidates[~drop], scores[~drop], limit)


def _numpy_suggest(i, limit=20):
    """Friends of friends by gathering the followees' rows straight from the CSR arrays."""
    ids, matrix = scipy_graph(i["scale"])
    indptr, indices = matrix.indptr, matrix.indices
    user = _index(ids, i["user"])
    followed = indices[indptr[user] : indptr[user + 1]]
    starts, ends = indptr[followed], indptr[followed + 1]
    lengths = ends - starts
    gather = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
    candidates, counts = np.unique(indices[gather], return_counts=True)
    drop = np.isin(candidates, followed) | (candidates == user)
    return _top(ids, candidates[~drop], counts[~drop].astype(np.float64), limit)


for _who, _label in (("heavy", "a user who follows about 1,000 accounts"), ("median", "a median user")):

    def _title(scale, who=_who, label=_label):
        p = probes(scale)
        return f"suggest(u, limit=20), common neighbours, for {label} ({p[who + '_following']:,} followees)"

    register(
        Case(
            name=f"graph.suggest/{_who}",
            hot_path="graph",
            title=_title,
            make_inputs=lambda scale, who=_who: _suggest_inputs(scale, who),
            run=lambda i: graph_here(i["scale"]).suggest(i["user"], limit=20),
            peers={
                "scipy.sparse row @ A": _scipy_suggest,
                "numpy CSR gather": _numpy_suggest,
                "rustworkx": _rustworkx_suggest,
                "networkx": _networkx_suggest,
            },
            same=_same_suggestions,
            same_as_peer=_same_suggestions,
        )
    )


@lru_cache(maxsize=1)
def _scipy_degrees(scale: float) -> np.ndarray:
    """Follows plus followers of each user, by index (Adamic-Adar's degree)."""
    _, matrix = scipy_graph(scale)
    return np.diff(matrix.indptr) + np.bincount(matrix.indices, minlength=matrix.shape[0])


def _scipy_adamic_adar(i, limit=20):
    """Adamic-Adar as one weighted sparse row times the matrix: the row holds 1 / ln(deg f) for each f
    the user follows (each candidate's terms are summed in ascending f, as the reference sums them)."""
    import scipy.sparse

    ids, matrix = scipy_graph(i["scale"])
    user = _index(ids, i["user"])
    followed = matrix.indices[matrix.indptr[user] : matrix.indptr[user + 1]]
    followed = followed[np.diff(matrix.indptr)[followed] > 0]  # f who follow no one add nothing
    weights = 1.0 / np.log(_scipy_degrees(i["scale"])[followed].astype(np.float64))
    row = scipy.sparse.csr_matrix((weights, followed, [0, len(followed)]), shape=(1, matrix.shape[1]))
    reached = row @ matrix
    candidates, scores = reached.indices, reached.data
    everyone_followed = matrix.indices[matrix.indptr[user] : matrix.indptr[user + 1]]
    drop = np.isin(candidates, everyone_followed) | (candidates == user)
    return _top(ids, candidates[~drop], scores[~drop], limit)


def _networkx_adamic_adar(i, limit=20):
    """Adamic-Adar over a DiGraph by hand (networkx's adamic_adar_index takes undirected graphs only):
    ``degree`` is follows plus followers, as the case's."""
    graph = networkx_graph(i["scale"])
    user = i["user"]
    followed = set(graph.successors(user))
    scores: dict[int, float] = {}
    for f in sorted(followed):
        if graph.out_degree(f):
            weight = 1.0 / math.log(graph.degree(f))
            for candidate in graph.successors(f):
                if candidate != user and candidate not in followed:
                    scores[candidate] = scores.get(candidate, 0.0) + weight
    best = sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]
    return [c for c, _ in best], [s for _, s in best]


register(
    Case(
        name="graph.suggest/adamic_adar",
        hot_path="graph",
        title=lambda scale: "suggest(u, method='adamic_adar') for a user who follows about 1,000 accounts",
        make_inputs=lambda scale: _suggest_inputs(scale, "heavy"),
        run=lambda i: graph_here(i["scale"]).suggest(i["user"], method="adamic_adar"),
        peers={"scipy.sparse weighted row @ A": _scipy_adamic_adar, "networkx": _networkx_adamic_adar},
        slow_peers=("networkx",),
        same=_same_suggestions,
        same_as_peer=_same_suggestions,
    )
)

WALKS, WALK_LENGTH, RESTART = 1_000, 20, 0.3
_GOLDEN, _MIX1, _MIX2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB


def _splitmix64(seed: int, count: int) -> np.ndarray:
    """The first `count` outputs of splitmix64 from `seed`, all at once: its k-th output depends on
    seed + k * golden only, so numpy computes the stream without a loop (uint64 arithmetic wraps)."""
    z = np.uint64(seed) + np.arange(1, count + 1, dtype=np.uint64) * np.uint64(_GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_MIX1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_MIX2)
    return z ^ (z >> np.uint64(31))


def _below(draws: np.ndarray, n: np.ndarray) -> np.ndarray:
    """The high 64 bits of draws * n (n < 2**32), from 32-bit halves: numpy has no 128-bit product."""
    n = n.astype(np.uint64)
    high, low = draws >> np.uint64(32), draws & np.uint64(0xFFFFFFFF)
    return ((high * n + ((low * n) >> np.uint64(32))) >> np.uint64(32)).astype(np.int64)


def _numpy_walks(i, limit=20, seed=0):
    """The same walks as igcore's, all 1,000 at once, one numpy step at a time over the CSR arrays:
    each walk's step takes draws 2k+1 and 2k+2 of the one splitmix64 stream, as the reference does."""
    ids, matrix = scipy_graph(i["scale"])
    indptr, indices = matrix.indptr, matrix.indices
    user = _index(ids, i["user"])
    followed = indices[indptr[user] : indptr[user + 1]]
    draws = _splitmix64(seed, 2 * WALKS * WALK_LENGTH).reshape(WALKS, WALK_LENGTH, 2)
    current = np.full(WALKS, user, dtype=np.int64)
    visited = []
    for step in range(WALK_LENGTH):
        current[indptr[current + 1] == indptr[current]] = user  # a dead end goes back first
        current = indices[indptr[current] + _below(draws[:, step, 0], indptr[current + 1] - indptr[current])]
        visited.append(current.copy())
        restart = (draws[:, step, 1] >> np.uint64(11)).astype(np.float64) * 2.0**-53 < RESTART
        current[restart] = user
    reached = np.concatenate(visited)
    reached = reached[~np.isin(reached, followed) & (reached != user)]
    candidates, visits = np.unique(reached, return_counts=True)
    return _top(ids, candidates, visits.astype(np.float64), limit)


register(
    Case(
        name="graph.random_walk_suggest",
        hot_path="graph",
        title=lambda scale: (
            f"random_walk_suggest(u): {WALKS:,} walks of {WALK_LENGTH} steps, restart {RESTART}, median user "
            "(peer: the same walks in numpy)"
        ),
        make_inputs=lambda scale: _suggest_inputs(scale, "median"),
        run=lambda i: graph_here(i["scale"]).random_walk_suggest(
            i["user"], walks=WALKS, walk_length=WALK_LENGTH, restart_prob=RESTART
        ),
        peers={"numpy walks": _numpy_walks},
        same=_same_suggestions,
        same_as_peer=_same_suggestions,
    )
)


# -- traversal -------------------------------------------------------------------------------------------


def _bfs_same_count(result, expected) -> bool:
    return int(result) == len(expected.ids)


def _igraph_bfs(i):
    ids, graph = igraph_graph(i["scale"])
    return graph.neighborhood_size(_index(ids, i["user"]), order=3, mode="out")


def _networkx_bfs(i):
    import networkx as nx

    return len(nx.single_source_shortest_path_length(networkx_graph(i["scale"]), i["user"], cutoff=3))


for _who, _label in (("median", "a median user"), ("heavy", "the user who follows 1,000 accounts")):
    register(
        Case(
            name=f"graph.bfs/{_who}",
            hot_path="graph",
            title=lambda scale, who=_who, label=_label: (
                f"bfs(u, max_depth=3) along follows from {label} "
                f"({probes(scale)[who + '_following']:,} followees)"
            ),
            make_inputs=lambda scale, who=_who: _suggest_inputs(scale, who),
            run=lambda i: graph_here(i["scale"]).bfs(i["user"], 3),
            peers={"igraph neighborhood_size(order=3)": _igraph_bfs, "networkx": _networkx_bfs},
            slow_peers=("networkx",),
            same=lambda a, b: _same_arrays(a, b),
            same_as_peer=_bfs_same_count,
        )
    )


# -- point queries -----------------------------------------------------------------------------------------


def _following_many(i):
    graph = graph_here(i["scale"])
    return [graph.following(u) for u in i["sample"]]


def _networkx_following_many(i):
    graph = networkx_graph(i["scale"])
    return [sorted(graph.successors(u)) for u in i["sample_list"]]


def _scipy_following_many(i):
    ids, matrix = scipy_graph(i["scale"])
    indptr, indices = matrix.indptr, matrix.indices
    rows = np.searchsorted(ids, i["sample"])
    return [ids[np.sort(indices[indptr[r] : indptr[r + 1]])] for r in rows.tolist()]


def _same_lists(result, expected) -> bool:
    return len(result) == len(expected) and all(
        np.array_equal(np.asarray(a), b) for a, b in zip(result, expected)
    )


def _sample_inputs(scale: float) -> dict:
    sample = probes(scale)["sample"]
    return {"scale": scale, "sample": sample, "sample_list": sample.tolist()}


register(
    Case(
        name="graph.following",
        hot_path="graph",
        title=lambda scale: "following(u) for 10,000 random users, one call each",
        make_inputs=_sample_inputs,
        run=_following_many,
        peers={"scipy.sparse + id map": _scipy_following_many, "networkx": _networkx_following_many},
        same=_same_lists,
        same_as_peer=_same_lists,
    )
)


def _pairs_inputs(scale: float) -> dict:
    a, b = probes(scale)["pairs"]
    return {"scale": scale, "a": a, "b": b, "a_list": a.tolist(), "b_list": b.tolist()}


def _networkx_is_following(i):
    graph = networkx_graph(i["scale"])
    return np.array([graph.has_edge(a, b) for a, b in zip(i["a_list"], i["b_list"])])


def _scipy_is_following(i):
    ids, matrix = scipy_graph(i["scale"])
    rows, cols = np.searchsorted(ids, i["a"]), np.searchsorted(ids, i["b"])
    return np.asarray(matrix[rows, cols]).ravel() != 0


register(
    Case(
        name="graph.is_following",
        hot_path="graph",
        title=lambda scale: "is_following(a, b) over 100,000 pairs (half of them follows), one call",
        make_inputs=_pairs_inputs,
        run=lambda i: graph_here(i["scale"]).is_following(i["a"], i["b"]),
        peers={"scipy.sparse A[a, b]": _scipy_is_following, "networkx has_edge": _networkx_is_following},
        same=np.array_equal,
        same_as_peer=np.array_equal,
    )
)


# -- load ------------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _saved(scale: float) -> dict:
    folder = tempfile.mkdtemp(prefix="igcore-bench-")
    path = os.path.join(folder, "follows.igf")
    graph = _graph(scale, _backend.available("graph")[0])
    graph.save(path)
    ids, matrix = scipy_graph(scale)
    npz = os.path.join(folder, "follows.npz")
    import scipy.sparse as sp

    sp.save_npz(npz, matrix, compressed=False)
    np.save(os.path.join(folder, "ids.npy"), ids)
    return {"path": path, "npz": npz, "ids": os.path.join(folder, "ids.npy"), "size": os.path.getsize(path)}


def _scipy_load(i):
    import scipy.sparse as sp

    return np.load(i["ids"]), sp.load_npz(i["npz"])


register(
    Case(
        name="graph.load",
        hot_path="graph",
        title=lambda scale: (
            f"FollowGraph.load(path, mmap=True) of the saved graph "
            f"({_saved(scale)['size'] / 2**20:.0f} MiB); the python backend reads and checks all of it"
        ),
        make_inputs=_saved,
        run=lambda i: FollowGraph.load(i["path"]),
        peers={"scipy.sparse load_npz + np.load": _scipy_load},
        same=lambda a, b: a.num_users == b.num_users,
        same_as_peer=lambda a, b: a[1].nnz == b.num_follows,
    )
)


# -- analytics on SNAP's Wiki-Vote ------------------------------------------------------------------------


def snap_file(name: str) -> Path | None:
    """A SNAP file of the shared data folder (IGCORE_DATA_DIR, or ../shared/data from here), if any."""
    for folder in (os.environ.get("IGCORE_DATA_DIR"), "../shared/data", "shared/data"):
        if folder and (Path(folder) / name).exists():
            return Path(folder) / name
    return None


@lru_cache(maxsize=1)
def _wiki_vote() -> dict:
    src, dst = read_edgelist(snap_file("Wiki-Vote.txt.gz"))  # type: ignore[arg-type]  # cases need the file
    return {"src": src, "dst": dst, "graphs": {}}


def _wiki_graph(i) -> FollowGraph:
    backend = _backend.current("graph")
    if backend not in i["graphs"]:
        with _backend.use_backend(backend):
            i["graphs"][backend] = FollowGraph.from_edges(i["src"], i["dst"])
    return i["graphs"][backend]


@lru_cache(maxsize=1)
def _wiki_peers():
    import igraph
    import networkx as nx
    import rustworkx as rx

    src, dst = _wiki_vote()["src"], _wiki_vote()["dst"]
    ids, inverse = np.unique(np.concatenate([src, dst]), return_inverse=True)
    pairs = list(zip(inverse[: src.size].tolist(), inverse[src.size :].tolist()))
    nxg = nx.DiGraph(pairs)
    rxg = rx.PyDiGraph()
    rxg.add_nodes_from(range(ids.size))
    rxg.add_edges_from_no_data(pairs)
    igg = igraph.Graph(n=ids.size, edges=pairs, directed=True)
    return nxg, rxg, igg


def _largest_scc_size(labels) -> int:
    return int(np.bincount(np.asarray(labels)).max())


if snap_file("Wiki-Vote.txt.gz") is not None:
    register(
        Case(
            name="graph.components/strong",
            hot_path="graph",
            title=lambda scale: "components('strong') of SNAP Wiki-Vote (7,115 users, 103,689 follows)",
            make_inputs=lambda scale: _wiki_vote(),
            run=lambda i: _wiki_graph(i).components("strong"),
            peers={
                "networkx": lambda i: max(
                    map(len, __import__("networkx").strongly_connected_components(_wiki_peers()[0]))
                ),
                "rustworkx": lambda i: max(
                    map(len, __import__("rustworkx").strongly_connected_components(_wiki_peers()[1]))
                ),
                "igraph": lambda i: max(_wiki_peers()[2].connected_components(mode="strong").sizes()),
            },
            same=np.array_equal,
            same_as_peer=lambda a, b: a == _largest_scc_size(b),
        )
    )
    register(
        Case(
            name="graph.triangle_count",
            hot_path="graph",
            title=lambda scale: "triangle_count() of SNAP Wiki-Vote (undirected simple graph)",
            make_inputs=lambda scale: _wiki_vote(),
            run=lambda i: _wiki_graph(i).triangle_count(),
            peers={
                "networkx": lambda i: (
                    sum(__import__("networkx").triangles(_wiki_peers()[0].to_undirected()).values()) // 3
                ),
                "igraph": lambda i: len(_wiki_peers()[2].as_undirected().simplify().list_triangles()),
            },
            same=lambda a, b: a == b,
            same_as_peer=lambda a, b: a == b,
        )
    )
