"""The follower graph on real SNAP graphs (reproducing SNAP's published figures), against networkx,
and reading edge lists as SNAP ships them."""

from __future__ import annotations

import gzip
from functools import cache

import numpy as np
import pytest

import igcore
from igcore.graph import FollowGraph, read_edgelist

from .conftest import shared_data

HOT_PATH = "graph"


@cache
def edges_of(name: str):
    """The edge list of a shared SNAP file, read once by the reference (checked against the other
    backends' readers below)."""
    with igcore.use_backend("python"):
        return read_edgelist(shared_data(name))


def largest(labels: np.ndarray) -> int:
    return int(np.bincount(labels).argmax())


def component_figures(graph: FollowGraph, kind: str) -> tuple[int, int]:
    """Nodes and edges of the largest component, edges counted as SNAP counts them: the follows inside
    it, plus the self-follows of its users that the build dropped (SNAP keeps self-loops)."""
    labels = graph.components(kind)
    users = graph.user_ids()
    biggest = largest(labels)
    src, dst = graph.edges()[:2]
    label_src = labels[np.searchsorted(users, src)]
    label_dst = labels[np.searchsorted(users, dst)]
    inside = int(np.count_nonzero((label_src == biggest) & (label_dst == biggest)))
    selfs = graph.build_report.self_followers
    selfs_inside = int(np.count_nonzero(labels[np.searchsorted(users, selfs)] == biggest))
    return int(np.count_nonzero(labels == biggest)), inside + selfs_inside


# SNAP's published figures (snap.stanford.edu/data), as listed in the shared data's PROVENANCE.md:
# nodes, edges, largest WCC (nodes, edges), largest SCC (nodes, edges), triangles.
SNAP = {
    "Wiki-Vote.txt.gz": (7115, 103689, (7066, 103663), (1300, 39456), 608389),
    "email-Eu-core.txt.gz": (1005, 25571, (986, 25552), (803, 24729), 105461),
}


@pytest.mark.parametrize("name", list(SNAP))
def test_directed_snap_graphs_reproduce_the_published_figures(backend, name):
    nodes, edges, wcc, scc, triangles = SNAP[name]
    src, dst = edges_of(name)
    graph = FollowGraph.from_edges(src, dst)
    report = graph.build_report
    assert graph.num_users == nodes
    assert report.duplicates == 0  # SNAP lists each directed pair once
    # SNAP keeps self-loops; the graph drops self-follows and reports who made them.
    assert graph.num_follows + len(report.self_followers) == edges
    assert component_figures(graph, "weak") == wcc
    assert component_figures(graph, "strong") == scc
    assert graph.triangle_count() == triangles


def test_ego_facebook_reproduces_the_published_figures(backend):
    # An undirected graph, each friendship listed once: 4039 nodes, 88234 edges, 1612010 triangles;
    # as follows both ways it is one strong component.
    src, dst = edges_of("facebook_combined.txt.gz")
    graph = FollowGraph.from_edges(src, dst)
    assert (graph.num_users, graph.num_follows) == (4039, 88234)
    assert component_figures(graph, "weak") == (4039, 88234)
    assert graph.triangle_count() == 1612010
    both_ways = FollowGraph.from_edges(np.concatenate([src, dst]), np.concatenate([dst, src]))
    nodes, follows = component_figures(both_ways, "strong")
    assert (nodes, follows // 2) == (4039, 88234)


# Temporal graphs: nodes, temporal edges, edges of the static graph, time span in whole days.
TEMPORAL = {
    "CollegeMsg.txt.gz": (1899, 59835, 20296, 193),
    "email-Eu-core-temporal.txt.gz": (986, 332334, 24929, 803),
}


@pytest.mark.parametrize("name", list(TEMPORAL))
def test_temporal_snap_graphs_reproduce_the_published_figures(backend, name):
    nodes, temporal, static, days = TEMPORAL[name]
    src, dst, times = edges_of(name)
    assert len(src) == temporal
    graph = FollowGraph.from_edges(src, dst, times)
    assert graph.num_users == nodes
    assert graph.num_follows + len(graph.build_report.self_followers) == static
    assert graph.build_report.duplicates + graph.build_report.self_follows + graph.num_follows == temporal
    edge_times = graph.edges()[2]
    assert int((times.max() - times.min()) // 86400) == days
    # Each follow keeps the time it began: the earliest message of its pair.
    assert edge_times.min() == times.min()


@pytest.mark.parametrize("name", ["Wiki-Vote.txt.gz", "CollegeMsg.txt.gz", "email-Eu-core.txt.gz"])
def test_every_backend_reads_snap_files_as_the_reference_does(backend, name):
    got = read_edgelist(shared_data(name))
    expected = edges_of(name)
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert a.dtype == np.int64 and np.array_equal(a, b)


def test_wiki_vote_quirks_crlf_header_and_no_final_newline(backend, tmp_path):
    text = gzip.decompress(shared_data("Wiki-Vote.txt.gz").read_bytes())
    assert text.startswith(b"# Directed graph") and b"\r\n" in text and not text.endswith(b"\n")
    plain = tmp_path / "Wiki-Vote.txt"
    plain.write_bytes(text)
    src, dst = read_edgelist(plain)
    assert len(src) == 103689 and (src[-1], dst[-1]) == (8274, 8275)


# -- edge-list reader ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (b"# c\n1 2\n3\t4\n", ([1, 3], [2, 4])),
        (b"1 2\r\n3 4", ([1, 3], [2, 4])),
        (b"\n\n  5   6  \n\t\n# 7 8\n", ([5], [6])),
        (b"-9223372036854775808 +9223372036854775807\n", ([-(2**63)], [2**63 - 1])),
        (b"", ([], [])),
    ],
)
def test_edge_list_variants(backend, tmp_path, text, expected):
    path = tmp_path / "edges.txt"
    path.write_bytes(text)
    src, dst = read_edgelist(path)
    assert (src.tolist(), dst.tolist()) == expected
    path.write_bytes(gzip.compress(text))
    assert [a.tolist() for a in read_edgelist(path)] == list(expected)


def test_a_third_column_comes_back(backend, tmp_path):
    path = tmp_path / "t.txt"
    path.write_bytes(b"1 2 100\n2 3 -5\n")
    src, dst, third = read_edgelist(path)
    assert (src.tolist(), dst.tolist(), third.tolist()) == ([1, 2], [2, 3], [100, -5])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"1 2\n3 x\n", r"edges.txt: line 2: column 2 is not an integer"),
        (b"# h\n1\n", r"line 2: expected 2 or 3 columns, found 1"),
        (b"1 2\n1 2 3\n", r"line 2: expected 2 columns, found 3"),
        (b"1 2 3 4\n", r"line 1: expected 2 or 3 columns, found 4"),
        (b"1 2\n9223372036854775808 1\n", r"line 2: column 1 is outside the int64 range"),
        (b"1 2\n3 4.5\n", r"line 2: column 2 is not an integer"),
        (b"1 2\n3,4\n", r"line 2: expected 2 columns, found 1"),
        (b"1 2\n\x003 4\n", r"line 2: column 1 is not an integer"),
        (b"1\r\r\n", r"line 1: expected 2 or 3 columns"),
    ],
)
def test_malformed_lines_are_named(backend, tmp_path, text, message):
    path = tmp_path / "edges.txt"
    path.write_bytes(text)
    with pytest.raises(ValueError, match=message):
        read_edgelist(path)


def test_a_broken_gzip_file_is_a_value_error(backend, tmp_path):
    path = tmp_path / "edges.txt.gz"
    path.write_bytes(gzip.compress(b"1 2\n" * 1000)[:40])
    with pytest.raises(ValueError, match="not a readable gzip file"):
        read_edgelist(path)


# -- against networkx ----------------------------------------------------------------------------------------

nx = pytest.importorskip("networkx")


def power_law_graph(seed: int, users: int = 1500, follows: int = 12_000):
    rng = np.random.default_rng(seed)
    ids = rng.integers(-(2**63), 2**63 - 1, size=users, dtype=np.int64)
    src = ids[np.minimum(rng.zipf(1.8, size=follows), users) - 1]
    dst = ids[np.minimum(rng.zipf(1.6, size=follows), users) - 1]
    src = np.where(rng.random(follows) < 0.5, ids[rng.integers(0, users, size=follows)], src)
    return src, dst


@pytest.mark.parametrize("seed", [1, 2])
def test_agrees_with_networkx(backend, seed):
    src, dst = power_law_graph(seed)
    graph = FollowGraph.from_edges(src, dst)
    reference = nx.DiGraph()
    reference.add_nodes_from(np.concatenate([src, dst]).tolist())
    reference.add_edges_from((a, b) for a, b in zip(src.tolist(), dst.tolist()) if a != b)
    users = graph.user_ids().tolist()
    assert users == sorted(reference.nodes)
    assert graph.num_follows == reference.number_of_edges()

    def partition(labels):
        groups: dict[int, set] = {}
        for user, label in zip(users, labels.tolist()):
            groups.setdefault(label, set()).add(user)
        return sorted(map(sorted, groups.values()))

    assert partition(graph.components("weak")) == sorted(
        map(sorted, nx.weakly_connected_components(reference))
    )
    assert partition(graph.components("strong")) == sorted(
        map(sorted, nx.strongly_connected_components(reference))
    )
    undirected = nx.Graph(reference.to_undirected())
    assert graph.triangle_count() == sum(nx.triangles(undirected).values()) // 3
    out_histogram = np.bincount([d for _, d in reference.out_degree()])
    assert graph.degree_histogram("following").tolist() == out_histogram.tolist()
    for user in users[:: len(users) // 25]:
        assert graph.following(user).tolist() == sorted(reference.successors(user))
        assert graph.followers(user).tolist() == sorted(reference.predecessors(user))
        reached = graph.bfs(user, 3)
        expected = nx.single_source_shortest_path_length(reference, user, cutoff=3)
        assert dict(zip(reached.ids.tolist(), reached.depths.tolist())) == expected
        common = {}
        for f in reference.successors(user):
            for c in reference.successors(f):
                if c != user and not reference.has_edge(user, c):
                    common[c] = common.get(c, 0) + 1
        best = sorted(common.items(), key=lambda item: (-item[1], item[0]))[:10]
        ids, scores = graph.suggest(user, limit=10)
        assert list(zip(ids.tolist(), scores.tolist())) == [(c, float(s)) for c, s in best]
