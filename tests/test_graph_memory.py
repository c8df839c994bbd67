"""Memory does not grow over many builds, queries, loads and updates of follow graphs (a leak in a
compiled backend would show here)."""

from __future__ import annotations

import os

import numpy as np
import pytest

import igcore
from igcore.graph import FollowGraph

from .test_memory import rss_bytes

HOT_PATH = "graph"

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc (Linux)")


def test_graph_work_does_not_leak(backend, tmp_path):
    rng = np.random.default_rng(2)
    src = rng.integers(0, 5_000, size=40_000, dtype=np.int64)
    dst = np.minimum(rng.zipf(1.5, size=src.size), 5_000).astype(np.int64)
    times = rng.integers(0, 100, size=src.size, dtype=np.int64)
    path = str(tmp_path / "g.igf")
    FollowGraph.from_edges(src, dst, times).save(path)
    rounds = 2 if backend == "python" else 40

    def churn():
        for _ in range(rounds):
            graph = FollowGraph.from_edges(src, dst, times)
            graph.suggest(1, method="adamic_adar")
            graph.random_walk_suggest(1, walks=50, walk_length=10)
            graph.bfs(1, 3)
            graph.followers(1, since=10, limit=5)
            graph.follow(src[:500] + 7, dst[:500], times[:500])
            graph.unfollow(src[:300], dst[:300])
            graph.components("strong")
            graph.triangle_count()
            with pytest.raises(KeyError):
                graph.following(-1)  # the error path frees what it made, too
            loaded = FollowGraph.load(path)
            loaded.edges()
            del graph, loaded

    churn()  # warm up allocator pools
    before = rss_bytes()
    churn()
    grown = rss_bytes() - before
    # One graph holds about 1.5 MB; keeping one per round would be 60+ MB here.
    assert grown < 16 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over {rounds} rounds"


def test_memory_stays_bounded_under_churn(backend):
    # Follows and unfollows over and over: the side layer of updates is folded in as it grows, so
    # memory levels off, and the graph still answers as the reference does.
    users = np.arange(2_000, dtype=np.int64) * 7_919
    base_src, base_dst = users, np.roll(users, 1)
    rng = np.random.default_rng(4)
    rounds = [
        (users[rng.integers(0, users.size, size=4_000)], users[rng.integers(0, users.size, size=4_000)])
        for _ in range(6 if backend == "python" else 60)
    ]

    def churn(graph, batches):
        for src, dst in batches:
            graph.follow(src, dst)
            graph.unfollow(src[::2], dst[::2])

    graph = FollowGraph.from_edges(base_src, base_dst)
    churn(graph, rounds[:3])
    before = rss_bytes()
    churn(graph, rounds[3:])
    grown = rss_bytes() - before
    assert grown < 16 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB under churn"
    assert graph.nbytes < 4 * 2**20
    with igcore.use_backend("python"):
        expected = FollowGraph.from_edges(base_src, base_dst)
        churn(expected, rounds)
    assert [a.tolist() for a in graph.edges()] == [a.tolist() for a in expected.edges()]
