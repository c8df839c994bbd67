"""The follower graph under misuse and load: shared across threads, given limits no caller means, files
changed or saved concurrently, sizes too big for memory. Cases that could crash the process run in a
child interpreter (``run_isolated``)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

import igcore
from igcore import _graph_file
from igcore.graph import MAX_WALK_STEPS, FollowGraph

from .isolated import assert_ran_cleanly, run_isolated
from .test_graph_file import random_graph

HOT_PATH = "graph"
TESTS = str(Path(__file__).resolve().parent)


# -- one graph shared by many threads --------------------------------------------------------------------


def test_threads_sharing_a_graph_always_get_consistent_answers(backend, tmp_path):
    # Updates, queries, save, compact and verify at once; each reader checks what must hold in any
    # consistent state, and the final graph must equal the reference after the same updates.
    code = f"""
        import sys
        sys.path.insert(0, {TESTS!r})
        import graph_stress
        print(graph_stress.run(3.0, {str(tmp_path)!r}))
    """
    output = assert_ran_cleanly(run_isolated(code, backend, timeout=180))
    assert output.startswith("ok"), output


def test_a_query_waits_for_a_compaction_and_sees_its_result(backend):
    # A writer folding a large overlay while other threads keep querying: no query fails or sees a
    # half-built base.
    code = """
        import threading
        import numpy as np
        from igcore.graph import FollowGraph
        rng = np.random.default_rng(3)
        src, dst = rng.integers(0, 20_000, 200_000), rng.integers(0, 20_000, 200_000)
        graph = FollowGraph.from_edges(src, dst)
        expected = graph.following(5).tolist()
        errors, done = [], threading.Event()
        def reader():
            try:
                while not done.is_set():
                    assert graph.following(5).tolist() == expected
                    graph.verify()
                    graph.is_following(src[:1000], dst[:1000])
            except BaseException as exc:
                errors.append(repr(exc))
        readers = [threading.Thread(target=reader) for _ in range(3)]
        for t in readers:
            t.start()
        for round in range(6):
            graph.follow(np.arange(30_000, 31_000), np.arange(31_000, 32_000))
            graph.compact()
            graph.unfollow(np.arange(30_000, 31_000), np.arange(31_000, 32_000))
            graph.compact()
        done.set()
        for t in readers:
            t.join()
        assert not errors, errors
        print("ok")
    """
    assert assert_ran_cleanly(run_isolated(code, backend)).strip() == "ok"


# -- paging arithmetic ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "offset, limit",
    [(2**63 - 1, 10), (2**63 - 1, 2**63 - 1), (2**62, 2**62), (1, 2**63 - 1), (3, 2**63 - 2)],
)
def test_paging_near_int64_max_stays_within_the_window(backend, offset, limit):
    code = f"""
        import numpy as np
        from igcore.graph import FollowGraph
        src = [1] * 40
        dst = list(range(2, 42))
        graph = FollowGraph.from_edges(src, dst, list(range(40)))
        for direction in ("following", "followers"):
            user = 1 if direction == "following" else 2
            for since, until in ((None, 30), (5, 30), (5, None), (None, None)):
                ids, times = getattr(graph, direction)(
                    user, since=since, until=until, offset={offset}, limit={limit}, return_times=True
                )
                print(direction, since, until, ids.tolist(), times.tolist())
        print(graph.following(1, offset={offset}, limit={limit}).tolist())
    """
    output = assert_ran_cleanly(run_isolated(code, backend))
    with igcore.use_backend("python"):
        graph = FollowGraph.from_edges([1] * 40, list(range(2, 42)), list(range(40)))
    expected = []
    for direction in ("following", "followers"):
        user = 1 if direction == "following" else 2
        for since, until in ((None, 30), (5, 30), (5, None), (None, None)):
            ids, times = getattr(graph, direction)(
                user, since=since, until=until, offset=offset, limit=limit, return_times=True
            )
            expected.append(f"{direction} {since} {until} {ids.tolist()} {times.tolist()}")
    expected.append(str(graph.following(1, offset=offset, limit=limit).tolist()))
    assert output.splitlines() == expected


# -- bounded work --------------------------------------------------------------------------------------


def test_walk_limits_no_caller_means_are_refused_at_once(backend):
    code = f"""
        from igcore.graph import FollowGraph
        graph = FollowGraph.from_edges([1, 2, 3], [2, 3, 1])
        for walks, walk_length in ((2**62, 0), (0, 2**62), (2**62, 1), ({MAX_WALK_STEPS + 1}, 0)):
            try:
                graph.random_walk_suggest(1, walks=walks, walk_length=walk_length)
            except ValueError as exc:
                print(exc)
            else:
                print("no error")
        print(graph.random_walk_suggest(1, walks={MAX_WALK_STEPS}, walk_length=0).ids.tolist())
        print(graph.random_walk_suggest(1, walks=0, walk_length={MAX_WALK_STEPS}).ids.tolist())
    """
    output = assert_ran_cleanly(run_isolated(code, backend, timeout=30)).splitlines()
    assert output == [
        f"walks must be at most {MAX_WALK_STEPS:,}",
        f"walk_length must be at most {MAX_WALK_STEPS:,}",
        f"walks must be at most {MAX_WALK_STEPS:,}",
        f"walks must be at most {MAX_WALK_STEPS:,}",
        "[]",
        "[]",
    ]


def test_bfs_stops_when_nothing_new_is_reached(backend):
    code = """
        from igcore.graph import FollowGraph
        graph = FollowGraph.from_edges([1, 2, 3, 7], [2, 3, 1, 8])
        for direction in ("following", "followers"):
            reached = graph.bfs(1, max_depth=2**62, direction=direction)
            print(reached.ids.tolist(), reached.depths.tolist())
        print(graph.bfs(7, max_depth=2**63 - 1).ids.tolist())
    """
    output = assert_ran_cleanly(run_isolated(code, backend, timeout=30)).splitlines()
    assert output == ["[1, 2, 3] [0, 1, 2]", "[1, 3, 2] [0, 1, 2]", "[7, 8]"]


# -- files ---------------------------------------------------------------------------------------------


def test_a_file_too_big_for_memory_is_a_memory_error(backend, tmp_path):
    # A sparse file of 1 TiB with a valid header: reading it into memory cannot succeed, and must say
    # so with MemoryError rather than end the process.
    users, follows = 16, 2**37
    _, _, size = _graph_file.canonical_layout(users, follows, False)
    path = tmp_path / "huge.igf"
    with open(path, "wb") as out:
        out.write(_graph_file.encode_header(users, follows, False, [0] * len(_graph_file.SECTIONS)))
        out.truncate(size)
    code = f"""
        from igcore.graph import FollowGraph
        try:
            FollowGraph.load({str(path)!r}, mmap=False)
        except MemoryError as exc:
            print("MemoryError", exc)
    """
    output = assert_ran_cleanly(run_isolated(code, backend)).strip()
    assert output == f"MemoryError {path}: not enough memory to read {size:,} bytes (load it with mmap=True)"


@pytest.mark.parametrize("timed", [False, True])
@pytest.mark.parametrize("verify_first", [True, False])
def test_a_mapped_file_changed_in_place_never_crashes(backend, tmp_path, timed, verify_first):
    # Another program copies a larger graph over a mapped file, in place: answers may be wrong, but no
    # panic reaches Python and no read leaves the mapped sections.
    path, bigger = tmp_path / "g.igf", tmp_path / "bigger.igf"
    random_graph(follows=300, users=40, timed=timed, seed=1).save(path)
    random_graph(follows=20_000, users=3000, timed=timed, seed=2).save(bigger)
    code = f"""
        import numpy as np
        from igcore.graph import FollowGraph
        ids = FollowGraph.load({str(path)!r}, mmap=False).user_ids()
        graph = FollowGraph.load({str(path)!r})
        if {verify_first}:
            graph.verify()
        with open({str(path)!r}, "r+b") as out:
            out.truncate(0)
            out.write(open({str(bigger)!r}, "rb").read())
        other = FollowGraph.load({str(bigger)!r}, mmap=False).user_ids()[:50]
        probes = [int(x) for x in ids] + [int(x) for x in other]
        calls = [
            lambda u: graph.following(u),
            lambda u: graph.followers(u, limit=5),
            lambda u: graph.following(u, until=25, return_times=True) if graph.has_timestamps else 0,
            lambda u: graph.followers(u, since=3, until=40) if graph.has_timestamps else 0,
            lambda u: graph.following_count(u),
            lambda u: graph.follower_count(np.array([u])),
            lambda u: graph.is_following(np.array(probes), np.array([u] * len(probes))),
            lambda u: graph.mutual_follows(u),
            lambda u: graph.common_followers(u, probes[0]),
            lambda u: graph.followed_by(u, probes[1]),
            lambda u: graph.suggest(u, method="adamic_adar"),
            lambda u: graph.random_walk_suggest(u, walks=20, walk_length=20),
            lambda u: graph.bfs(u, max_depth=5),
            lambda u: graph.bfs(u, max_depth=5, direction="followers"),
            lambda u: u in graph,
        ]
        outcomes = set()
        for u in probes:
            for call in calls:
                try:
                    call(u)
                    outcomes.add("ok")
                except (ValueError, KeyError) as exc:
                    outcomes.add(type(exc).__name__)
        for call in (graph.edges, graph.user_ids, graph.components, lambda: graph.components("strong"),
                     graph.triangle_count, graph.degree_histogram, lambda: graph.num_follows,
                     graph.verify):
            try:
                call()
                outcomes.add("ok")
            except ValueError:
                outcomes.add("ValueError")
        times = [[1, 2]] if graph.has_timestamps else []
        for call in (
            lambda: graph.follow([probes[0], probes[-1]], [probes[2], probes[3]], *times),
            lambda: graph.unfollow([probes[1]], [probes[0]]),
            lambda: graph.save({str(tmp_path / "copy.igf")!r}),
            graph.compact,
        ):
            try:
                call()
            except ValueError:
                outcomes.add("ValueError")
        print(sorted(outcomes))
    """
    result = run_isolated(code, backend)
    assert_ran_cleanly(result)


def test_concurrent_saves_to_one_path_never_leave_a_torn_file(backend, tmp_path):
    path = tmp_path / "g.igf"
    graphs = [random_graph(follows=60_000, users=5000, seed=s) for s in (1, 2)]
    expected = [g.num_follows for g in graphs]
    errors = []

    def save(graph):
        try:
            for _ in range(4):
                graph.save(path)
        except BaseException as exc:  # noqa: BLE001
            errors.append(repr(exc))

    def load_while_saving():
        try:
            while any(t.is_alive() for t in savers):
                if path.exists():
                    loaded = FollowGraph.load(path, mmap=False)
                    assert loaded.num_follows in expected
        except BaseException as exc:  # noqa: BLE001
            errors.append(repr(exc))

    savers = [threading.Thread(target=save, args=(graphs[i % 2],)) for i in range(4)]
    watcher = threading.Thread(target=load_while_saving)
    for t in savers:
        t.start()
    watcher.start()
    for t in [*savers, watcher]:
        t.join()
    assert not errors, errors
    final = FollowGraph.load(path, mmap=False)
    assert final.num_follows in expected
    assert sorted(os.listdir(tmp_path)) == ["g.igf"]  # no temporary file left behind


def test_a_failed_save_leaves_no_temporary_file(backend, tmp_path):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / "g.igf").mkdir()  # a folder where the file should go: the rename fails
    with pytest.raises(OSError):
        random_graph().save(folder / "g.igf")
    assert os.listdir(folder) == ["g.igf"]
