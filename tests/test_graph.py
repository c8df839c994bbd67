"""Conformance of igcore.graph.FollowGraph: every backend answers exactly as the reference does."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import igcore
from igcore.graph import FollowGraph

from .conftest import assert_releases_the_gil

HOT_PATH = "graph"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
BIG = 2**62 + 12345  # a real-looking sparse 63-bit id


def lists(array) -> list:
    return np.asarray(array).tolist()


def small_graph(timed: bool = False) -> FollowGraph:
    """1 -> 2, 1 -> 3, 2 -> 3, 3 -> 1, 4 -> 3, 1 -> 4, and the user 9 known only from a self-follow."""
    src = [1, 1, 2, 3, 4, 1, 9, 1]
    dst = [2, 3, 3, 1, 3, 4, 9, 2]
    times = [10, 20, 30, 40, 20, 5, 1, 50] if timed else None
    return FollowGraph.from_edges(src, dst, times)


# -- building ------------------------------------------------------------------------------------------------


def test_build_drops_duplicates_and_self_follows_and_reports_them(backend):
    graph = small_graph()
    assert graph.backend == backend
    assert lists(graph.user_ids()) == [1, 2, 3, 4, 9]
    assert graph.num_users == 5 and len(graph) == 5
    assert graph.num_follows == 6
    report = graph.build_report
    assert (report.duplicates, report.self_follows, lists(report.self_followers)) == (1, 1, [9])
    assert 9 in graph and 7 not in graph and "x" not in graph
    assert lists(graph.following(9)) == [] and lists(graph.followers(9)) == []


def test_arbitrary_63_bit_ids_and_extremes(backend):
    src = [BIG, INT64_MIN, INT64_MAX, -1, 0]
    dst = [INT64_MIN, INT64_MAX, BIG, BIG, -1]
    graph = FollowGraph.from_edges(np.array(src), np.array(dst))
    assert lists(graph.user_ids()) == sorted({*src, *dst})
    assert lists(graph.followers(BIG)) == [-1, INT64_MAX]
    assert lists(graph.following(INT64_MIN)) == [INT64_MAX]


def test_empty_graph(backend):
    graph = FollowGraph.from_edges([], [])
    assert graph.num_users == 0 and graph.num_follows == 0
    assert lists(graph.user_ids()) == []
    assert lists(graph.components()) == [] and graph.triangle_count() == 0
    assert lists(graph.degree_histogram()) == []
    with pytest.raises(KeyError):
        graph.following(1)


def test_duplicates_keep_the_earliest_time(backend):
    graph = FollowGraph.from_edges([1, 1, 1], [2, 2, 2], [30, 10, 20])
    ids, times = graph.following(1, return_times=True)
    assert lists(ids) == [2] and lists(times) == [10]


# -- queries -------------------------------------------------------------------------------------------------


def test_following_and_followers_ascending(backend):
    graph = small_graph()
    assert lists(graph.following(1)) == [2, 3, 4]
    assert lists(graph.followers(3)) == [1, 2, 4]
    assert lists(graph.following(1, offset=1, limit=1)) == [3]
    assert lists(graph.following(1, offset=5)) == []
    assert graph.following(1).dtype == np.int64


def test_timed_lists_are_newest_first_within_since_until(backend):
    graph = small_graph(timed=True)
    # 1 follows 2 (time 10), 3 (20), 4 (5); followers of 3: 1 (20), 2 (30), 4 (20)
    assert lists(graph.following(1)) == [3, 2, 4]
    ids, times = graph.followers(3, return_times=True)
    assert lists(ids) == [2, 1, 4] and lists(times) == [30, 20, 20]  # tie at 20: smaller id first
    assert lists(graph.followers(3, since=20)) == [2, 1, 4]
    assert lists(graph.followers(3, since=21)) == [2]
    assert lists(graph.followers(3, until=30)) == [1, 4]  # until is exclusive
    assert lists(graph.followers(3, since=20, until=30, offset=1, limit=5)) == [4]
    assert lists(graph.followers(3, since=31)) == []


def test_counts_for_one_id_and_for_arrays(backend):
    graph = small_graph()
    assert graph.following_count(1) == 3 and graph.follower_count(3) == 3
    assert lists(graph.following_count([1, 2, 9])) == [3, 1, 0]
    assert lists(graph.follower_count(np.array([3, 1]))) == [3, 1]
    with pytest.raises(KeyError) as error:
        graph.follower_count([1, 77, 78])
    assert error.value.args == (77,)


def test_is_following_pairs_and_unknown_users(backend):
    graph = small_graph()
    assert graph.is_following(1, 2) is True and graph.is_following(2, 1) is False
    got = graph.is_following([1, 2, 3, 77, 1], [4, 3, 1, 1, 77])
    assert got.dtype == bool and lists(got) == [True, True, True, False, False]


def test_mutual_and_common(backend):
    graph = small_graph()
    assert lists(graph.mutual_follows(1)) == [3]
    assert lists(graph.mutual_follows(2)) == []
    assert lists(graph.common_following(1, 2)) == [3]
    assert lists(graph.common_following(2, 4)) == [3]
    assert lists(graph.common_followers(2, 3)) == [1]
    assert lists(graph.common_followers(3, 4)) == [1]


def test_followed_by(backend):
    # the viewer 100 follows 1..5; of those, 2, 3 and 5 follow the target 50
    graph = FollowGraph.from_edges([100] * 5 + [2, 3, 5, 7], [1, 2, 3, 4, 5, 50, 50, 50, 50])
    found = graph.followed_by(100, 50)
    assert lists(found.ids) == [2, 3, 5] and found.total == 3
    found = graph.followed_by(100, 50, limit=1)
    assert lists(found.ids) == [2] and found.total == 3
    assert graph.followed_by(50, 100).total == 0


@pytest.mark.parametrize(
    "call",
    [
        lambda g: g.following(77),
        lambda g: g.followers(77),
        lambda g: g.following_count(77),
        lambda g: g.mutual_follows(77),
        lambda g: g.common_following(1, 77),
        lambda g: g.common_followers(77, 1),
        lambda g: g.followed_by(77, 1),
        lambda g: g.followed_by(1, 77),
        lambda g: g.suggest(77),
        lambda g: g.random_walk_suggest(77),
        lambda g: g.bfs(77, 2),
    ],
)
def test_unknown_users_raise_key_error_naming_the_id(backend, call):
    with pytest.raises(KeyError) as error:
        call(small_graph())
    assert error.value.args == (77,)


# -- suggestions ---------------------------------------------------------------------------------------------


def suggestion_graph() -> FollowGraph:
    # u=0 follows 1, 2, 3. 1 -> 10, 11; 2 -> 10, 11, 12, 0; 3 -> 10, 1 (already followed), 13.
    # 13 is followed by 3 only. 12 by 2 only.
    src = [0, 0, 0, 1, 1, 2, 2, 2, 2, 3, 3, 3, 20]
    dst = [1, 2, 3, 10, 11, 10, 11, 12, 0, 10, 1, 13, 2]
    return FollowGraph.from_edges(src, dst)


def test_suggest_common_neighbours(backend):
    ids, scores = suggestion_graph().suggest(0)
    # 10 via 1, 2, 3; 11 via 1, 2; then 12 and 13 once each (tie: smaller id first)
    assert lists(ids) == [10, 11, 12, 13]
    assert lists(scores) == [3.0, 2.0, 1.0, 1.0]
    assert scores.dtype == np.float64


def test_suggest_limit_and_exclude(backend):
    graph = suggestion_graph()
    assert lists(graph.suggest(0, limit=2).ids) == [10, 11]
    assert lists(graph.suggest(0, exclude=[10, 12, 999]).ids) == [11, 13]
    assert lists(graph.suggest(0, limit=0).ids) == []
    assert lists(graph.suggest(13).ids) == []  # follows no one


def test_suggest_adamic_adar(backend):
    import math

    graph = suggestion_graph()
    ids, scores = graph.suggest(0, method="adamic_adar")
    # deg counts follows both ways: deg(1) = 2 out + 2 in (0, 3) = 4; deg(2) = 4 + 2 (0, 20) = 6;
    # deg(3) = 3 + 1 = 4
    w1, w2, w3 = 1 / math.log(4), 1 / math.log(6), 1 / math.log(4)
    expected = {10: w1 + w2 + w3, 11: w1 + w2, 12: w2, 13: w3}
    ranked = sorted(expected, key=lambda c: (-expected[c], c))
    assert lists(ids) == ranked
    assert scores.tolist() == pytest.approx([expected[c] for c in ranked], rel=1e-15)


def test_random_walks_are_deterministic_for_a_seed(backend):
    graph = suggestion_graph()
    first = graph.random_walk_suggest(0, walks=50, walk_length=10, seed=7)
    again = graph.random_walk_suggest(0, walks=50, walk_length=10, seed=7)
    assert lists(first.ids) == lists(again.ids) and lists(first.scores) == lists(again.scores)
    assert set(lists(first.ids)) <= {10, 11, 12, 13}
    assert all(s == int(s) and s > 0 for s in lists(first.scores))
    assert lists(graph.random_walk_suggest(13, seed=1).ids) == []


# -- traversal -----------------------------------------------------------------------------------------------


def test_bfs_order_depths_and_limits(backend):
    # 1 -> 3, 1 -> 2, 2 -> 4, 3 -> 4, 3 -> 5, 4 -> 6, 6 -> 1
    graph = FollowGraph.from_edges([1, 1, 2, 3, 3, 4, 6], [3, 2, 4, 4, 5, 6, 1])
    reached = graph.bfs(1, 3)
    assert lists(reached.ids) == [1, 2, 3, 4, 5, 6]
    assert lists(reached.depths) == [0, 1, 1, 2, 2, 3]
    assert lists(graph.bfs(1, 1).ids) == [1, 2, 3]
    assert lists(graph.bfs(1, 0).ids) == [1]
    assert lists(graph.bfs(1, 5, max_nodes=4).ids) == [1, 2, 3, 4]
    assert lists(graph.bfs(4, 2, direction="followers").ids) == [4, 2, 3, 1]


# -- updates -------------------------------------------------------------------------------------------------


def test_follow_and_unfollow_are_seen_at_once(backend):
    graph = small_graph()
    assert graph.follow([2, 2, 50, 7], [1, 1, 2, 7]) == 2  # a repeat, and a self-follow of a new user
    assert lists(graph.following(2)) == [1, 3]
    assert lists(graph.followers(2)) == [1, 50]
    assert 7 in graph and 50 in graph and graph.num_users == 7
    assert graph.is_following(50, 2)
    assert graph.unfollow([1, 1, 99], [2, 2, 1]) == 1
    assert lists(graph.following(1)) == [3, 4]
    assert graph.num_follows == 7
    graph.compact()
    assert lists(graph.following(2)) == [1, 3] and graph.num_follows == 7
    assert lists(graph.user_ids()) == [1, 2, 3, 4, 7, 9, 50]


def test_follow_on_a_timed_graph_needs_times(backend):
    graph = small_graph(timed=True)
    with pytest.raises(ValueError, match="needs them"):
        graph.follow([1], [9])
    assert graph.follow([9, 1], [1, 2], [100, 100]) == 1  # 1 -> 2 exists: its time stays 10
    ids, times = graph.following(1, return_times=True)
    assert lists(ids) == [3, 2, 4] and lists(times) == [20, 10, 5]
    assert lists(graph.followers(1, return_times=True)[1]) == [100, 40]


# -- analytics -----------------------------------------------------------------------------------------------


def test_components_weak_and_strong(backend):
    # 5 <-> 6 -> 7; 1 -> 2 -> 3 -> 1; 8 alone (self-follow)
    graph = FollowGraph.from_edges([5, 6, 6, 1, 2, 3, 8], [6, 5, 7, 2, 3, 1, 8])
    assert lists(graph.user_ids()) == [1, 2, 3, 5, 6, 7, 8]
    assert lists(graph.components("weak")) == [0, 0, 0, 1, 1, 1, 2]
    assert lists(graph.components("strong")) == [0, 0, 0, 1, 1, 2, 3]


def test_triangles_and_degree_histogram(backend):
    # a triangle 1-2-3 (with a mutual pair), and 3 -> 4
    graph = FollowGraph.from_edges([1, 2, 2, 3, 3], [2, 1, 3, 1, 4])
    assert graph.triangle_count() == 1
    assert lists(graph.degree_histogram("following")) == [1, 1, 2]
    assert lists(graph.degree_histogram("followers")) == [0, 3, 1]


def test_edges_in_order(backend):
    src, dst, times = small_graph(timed=True).edges()
    assert list(zip(lists(src), lists(dst), lists(times))) == [
        (1, 2, 10),
        (1, 3, 20),
        (1, 4, 5),
        (2, 3, 30),
        (3, 1, 40),
        (4, 3, 20),
    ]


# -- bad input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: FollowGraph.from_edges([1, 2], [1]), ValueError, r"src and dst differ in length \(2 != 1\)"),
        (lambda: FollowGraph.from_edges([1.5], [1]), TypeError, r"src must hold integers"),
        (lambda: FollowGraph.from_edges([1], [2**63]), OverflowError, r"dst holds a value outside"),
        (lambda: FollowGraph.from_edges([1], [2], [1, 2]), ValueError, r"timestamps and src differ"),
        (lambda: FollowGraph(), TypeError, r"from_edges"),
        (lambda: small_graph().following(1.0), TypeError, r"user must be an int, not float"),
        (lambda: small_graph().following(True), TypeError, r"not bool"),
        (lambda: small_graph().following(2**63), OverflowError, r"outside the int64 range"),
        (lambda: small_graph().following(1, limit=-1), ValueError, r"limit must be at least 0"),
        (lambda: small_graph().following(1, since=3), ValueError, r"need a graph with timestamps"),
        (lambda: small_graph().suggest(1, method="jaccard"), ValueError, r"method must be"),
        (lambda: small_graph().bfs(1, 2, direction="up"), ValueError, r"direction must be"),
        (lambda: small_graph().bfs(1, -1), ValueError, r"max_depth must be at least 0"),
        (lambda: small_graph().bfs(1, 2, max_nodes=0), ValueError, r"max_nodes must be at least 1"),
        (lambda: small_graph().random_walk_suggest(1, restart_prob=1.5), ValueError, r"restart_prob"),
        (lambda: small_graph().random_walk_suggest(1, walks=2**40), ValueError, r"at most"),
        (lambda: small_graph().components("medium"), ValueError, r"kind must be"),
        (lambda: small_graph().is_following([1, 2], [1]), ValueError, r"a and b differ in length"),
        (lambda: small_graph().follow([1], [2], [3]), ValueError, r"takes none"),
    ],
)
def test_bad_input_raises_a_clear_error(backend, call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_inputs_are_not_modified_and_results_are_arrays_of_their_own(backend):
    src = np.array([3, 1, 2, 1], dtype=np.int64)
    dst = np.array([1, 2, 3, 2], dtype=np.int64)
    src.flags.writeable = False
    graph = FollowGraph.from_edges(src, dst)
    assert lists(src) == [3, 1, 2, 1] and lists(dst) == [1, 2, 3, 2]
    ids = graph.following(1)
    ids[0] = 99
    assert lists(graph.following(1)) == [2]


# -- the GIL -------------------------------------------------------------------------------------------------


def test_compiled_backends_release_the_gil(backend):
    if backend == "python":
        pytest.skip("the reference is Python code and holds the GIL by nature")
    rng = np.random.default_rng(0)
    src = rng.integers(0, 200_000, size=3_000_000, dtype=np.int64)
    dst = rng.integers(0, 200_000, size=src.size, dtype=np.int64)
    assert_releases_the_gil(lambda: FollowGraph.from_edges(src, dst))


# -- properties: every backend is the reference --------------------------------------------------------------

ID_POOL = [INT64_MIN, -(2**40), -3, -1, 0, 1, 2, 3, 5, 8, 2**31, BIG, INT64_MAX - 1, INT64_MAX]


@st.composite
def follow_lists(draw, max_follows: int = 40):
    """Follows over a small pool of ids (so repeats, self-follows and shared neighbours are common),
    with times from a small range (so ties are common) about half of the time."""
    pool = draw(
        st.lists(st.sampled_from(ID_POOL) | st.integers(-10, 10), min_size=1, max_size=10, unique=True)
    )
    pairs = draw(st.lists(st.tuples(st.sampled_from(pool), st.sampled_from(pool)), max_size=max_follows))
    timed = draw(st.booleans())
    times = draw(st.lists(st.integers(-3, 3), min_size=len(pairs), max_size=len(pairs))) if timed else None
    return [p[0] for p in pairs], [p[1] for p in pairs], times, pool


def snapshot(graph: FollowGraph, probes: list[int]) -> dict:
    """Everything the graph answers: about the whole graph, and about its first 24 users and a few
    `probes` (which may be unknown)."""

    def safe(call, *args, **kwargs):
        try:
            result = call(*args, **kwargs)
        except KeyError as exc:
            return ("KeyError", exc.args)
        if isinstance(result, tuple):
            return tuple(lists(x) if isinstance(x, np.ndarray) else x for x in result)
        return lists(result) if isinstance(result, np.ndarray) else result

    users = lists(graph.user_ids())
    everyone = users[:24] + [p for p in probes if p not in users[:24]]
    timed = graph.has_timestamps
    view = {
        "users": users,
        "sizes": (graph.num_users, graph.num_follows, timed),
        "edges": safe(graph.edges),
        "weak": safe(graph.components, "weak"),
        "strong": safe(graph.components, "strong"),
        "triangles": graph.triangle_count(),
        "histograms": (safe(graph.degree_histogram, "following"), safe(graph.degree_histogram, "followers")),
        "counts": safe(graph.following_count, users),
        "is_following": lists(graph.is_following(*zip(*[(a, b) for a in everyone for b in everyone])))
        if everyone
        else [],
    }
    for u in everyone:
        view[u] = (
            safe(graph.following, u, return_times=timed),
            safe(graph.followers, u, return_times=timed),
            safe(graph.following, u, offset=1, limit=2),
            safe(graph.followers, u, since=0, until=2) if timed else None,
            safe(graph.mutual_follows, u),
            safe(graph.suggest, u, limit=5),
            safe(graph.suggest, u, method="adamic_adar", exclude=probes[:1]),
            safe(graph.random_walk_suggest, u, walks=6, walk_length=5, restart_prob=0.25, seed=u, limit=4),
            safe(graph.bfs, u, 2),
            safe(graph.bfs, u, 3, max_nodes=3, direction="followers"),
            [safe(graph.common_following, u, v) for v in everyone[:4]],
            [safe(graph.common_followers, v, u) for v in everyone[:4]],
            [safe(graph.followed_by, u, v, limit=1) for v in everyone[:4]],
        )
    return view


def built(case):
    src, dst, times, _ = case
    graph = FollowGraph.from_edges(src, dst, times)
    report = graph.build_report
    return graph, (report.duplicates, report.self_follows, lists(report.self_followers))


@given(follow_lists())
def test_matches_the_reference_on_generated_graphs(backend, case):
    probes = [*case[3][:2], 123456789]
    graph, report = built(case)
    with igcore.use_backend("python"):
        expected_graph, expected_report = built(case)
        expected = snapshot(expected_graph, probes)
    assert report == expected_report
    assert snapshot(graph, probes) == expected


@st.composite
def update_scripts(draw):
    case = draw(follow_lists(max_follows=25))
    pool = case[3] + [77, -77]
    steps = []
    for _ in range(draw(st.integers(1, 5))):
        kind = draw(st.sampled_from(["follow", "unfollow", "compact"]))
        pairs = draw(st.lists(st.tuples(st.sampled_from(pool), st.sampled_from(pool)), max_size=8))
        times = draw(st.lists(st.integers(-3, 3), min_size=len(pairs), max_size=len(pairs)))
        steps.append((kind, pairs, times))
    return case, steps


def run_script(case, steps):
    graph, _ = built(case)
    counts = []
    for kind, pairs, times in steps:
        src, dst = [p[0] for p in pairs], [p[1] for p in pairs]
        if kind == "follow":
            counts.append(graph.follow(src, dst, times if graph.has_timestamps else None))
        elif kind == "unfollow":
            counts.append(graph.unfollow(src, dst))
        else:
            graph.compact()
    return graph, counts


@given(update_scripts())
def test_updates_match_the_reference(backend, script):
    case, steps = script
    probes = [77, -77, 5]
    graph, counts = run_script(case, steps)
    with igcore.use_backend("python"):
        expected_graph, expected_counts = run_script(case, steps)
        expected = snapshot(expected_graph, probes)
    assert counts == expected_counts
    assert snapshot(graph, probes) == expected


def test_the_reference_random_generator_is_splitmix64():
    from igcore._reference.graph import SplitMix64

    rng = SplitMix64(0)  # the first outputs of Vigna's splitmix64 for seed 0
    assert [rng.next(), rng.next()] == [0xE220A8397B1DCDAF, 0x6E789E6AA1B965F4]
    assert 0 <= SplitMix64(3).below(10) < 10 and 0.0 <= SplitMix64(3).unit() < 1.0
