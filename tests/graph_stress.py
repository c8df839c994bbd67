"""Many threads on one shared FollowGraph: updates, queries, save, compact and verify at once.

``run(seconds, folder)`` runs the backend that ``IGCORE_BACKEND`` selects and raises ``AssertionError``
on the first wrong answer. It checks answers, not only survival:

- "static" users follow only each other and no update touches them, so every query about them has
  one right answer in any consistent state of the graph: the one it gave before the threads started;
- each writer owns a set of source users (no other thread follows or unfollows from them), so it knows
  their following lists exactly, and checks them after its updates;
- after the threads end, the graph must equal the reference backend's graph after the same updates.

It is a module, not a test, so that a test can run it in a child interpreter (a crash must fail the
test, not end the session).
"""

from __future__ import annotations

import os
import random
import threading
import time

import numpy as np

import igcore
from igcore.graph import FollowGraph

STATIC = list(range(0, 60))
WRITERS = 3
OWNED = 40  # source users per writer
DYNAMIC = list(range(1000, 1000 + WRITERS * OWNED + 400))
NEW_IDS = 10**12  # ids the updates add as new users: writer w uses NEW_IDS + w * 10**6 + k


def _initial_edges(rng: random.Random):
    edges = set()
    for _ in range(400):
        a, b = rng.sample(STATIC, 2)
        edges.add((a, b))
    for _ in range(6000):
        a, b = rng.sample(DYNAMIC, 2)
        edges.add((a, b))
    return sorted(edges)


def _answers(graph: FollowGraph) -> list:
    """Everything the readers ask about static users, as plain lists."""
    out = []
    for s in STATIC[:20]:
        out.append(graph.following(s).tolist())
        out.append(graph.followers(s).tolist())
        out.append(graph.mutual_follows(s).tolist())
        out.append(graph.following_count(s))
        out.append(graph.follower_count(np.array([s, s + 1])).tolist())
        suggestions = graph.suggest(s, limit=5, method="adamic_adar")
        out.append((suggestions.ids.tolist(), suggestions.scores.tolist()))
        walked = graph.random_walk_suggest(s, walks=20, walk_length=5, seed=s, limit=5)
        out.append((walked.ids.tolist(), walked.scores.tolist()))
        reached = graph.bfs(s, max_depth=3, direction="followers")
        out.append((reached.ids.tolist(), reached.depths.tolist()))
        out.append(graph.common_following(s, s + 1).tolist())
        out.append(graph.followed_by(s, s + 2, limit=2).ids.tolist())
    pairs = np.array(STATIC * 2), np.array(STATIC[1:] + STATIC[:1] + STATIC[2:] + STATIC[:2])
    out.append(graph.is_following(*pairs).tolist())
    return out


def _check_sorted_unique(ids, what):
    ids = ids.tolist()
    assert ids == sorted(set(ids)), (what, ids)


class _Failures:
    def __init__(self):
        self.errors: list[str] = []
        self.lock = threading.Lock()

    def record(self, name: str, exc: BaseException) -> None:
        with self.lock:
            self.errors.append(f"{name}: {type(exc).__name__}: {exc}")


def run(seconds: float, folder: str) -> str:
    rng = random.Random(7)
    initial = _initial_edges(rng)
    src, dst = np.array([e[0] for e in initial]), np.array([e[1] for e in initial])
    graph = FollowGraph.from_edges(src, dst)
    expected = _answers(graph)
    failures = _Failures()
    deadline = time.monotonic() + seconds
    logs: list[list] = [[] for _ in range(WRITERS)]
    counts = {"reads": 0, "writes": 0, "saves": 0}

    def guarded(name, body):
        def target():
            try:
                body()
            except BaseException as exc:  # noqa: BLE001 - a panic or a crash of any kind is a failure
                failures.record(name, exc)

        return threading.Thread(target=target, name=name)

    def writer(w: int):
        wrng = random.Random(100 + w)
        owned = DYNAMIC[w * OWNED : (w + 1) * OWNED]
        model = {s: {b for a, b in initial if a == s} for s in owned}
        targets = DYNAMIC + [NEW_IDS + w * 10**6 + k for k in range(50)]
        while time.monotonic() < deadline and not failures.errors:
            s = wrng.choice(owned)
            batch = [t for t in wrng.sample(targets, wrng.randint(1, 4)) if t != s]
            srcs, dsts = np.array([s] * len(batch), dtype=np.int64), np.array(batch, dtype=np.int64)
            if wrng.random() < 0.55:
                added = graph.follow(srcs, dsts)
                assert added == len(set(batch) - model[s]), ("follow", s, batch, added)
                model[s] |= set(batch)
                logs[w].append(("follow", srcs, dsts))
            else:
                removed = graph.unfollow(srcs, dsts)
                assert removed == len(set(batch) & model[s]), ("unfollow", s, batch, removed)
                model[s] -= set(batch)
                logs[w].append(("unfollow", srcs, dsts))
            found = graph.is_following(srcs, dsts).tolist()
            assert found == [t in model[s] for t in batch], ("is_following", s, batch, found)
            assert graph.following(s).tolist() == sorted(model[s]), ("following", s)
            assert graph.following_count(s) == len(model[s])
            counts["writes"] += 1

    def reader(r: int):
        rrng = random.Random(200 + r)
        while time.monotonic() < deadline and not failures.errors:
            assert _answers(graph) == expected, "a static user's answers changed"
            d = rrng.choice(DYNAMIC)
            _check_sorted_unique(graph.following(d), "following")
            _check_sorted_unique(graph.followers(d), "followers")
            reached = graph.bfs(d, max_depth=2, max_nodes=300)
            assert reached.ids[0] == d and len(set(reached.ids.tolist())) == len(reached.ids)
            assert np.all(np.diff(reached.depths) >= 0)
            suggestions = graph.suggest(d, limit=10)
            assert np.all(np.diff(suggestions.scores) <= 0)
            graph.random_walk_suggest(d, walks=10, walk_length=10, seed=r)
            if rrng.random() < 0.1:
                e_src, e_dst = graph.edges()
                pairs = list(zip(e_src.tolist(), e_dst.tolist()))
                assert pairs == sorted(set(pairs)) and all(a != b for a, b in pairs)
                users = graph.user_ids()
                _check_sorted_unique(users, "user_ids")
                histogram = graph.degree_histogram()
                assert histogram.sum() <= graph.num_users
            counts["reads"] += 1

    def keeper():
        path = os.path.join(folder, "shared.igf")
        while time.monotonic() < deadline and not failures.errors:
            graph.compact()
            graph.verify()
            graph.save(path)
            for mmap in (False, True):
                loaded = FollowGraph.load(path, mmap=mmap)
                loaded.verify()
                assert _answers(loaded) == expected, "a saved graph's static answers differ"
            counts["saves"] += 1

    threads = [guarded(f"writer{w}", lambda w=w: writer(w)) for w in range(WRITERS)]
    threads += [guarded(f"reader{r}", lambda r=r: reader(r)) for r in range(3)]
    threads.append(guarded("keeper", keeper))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures.errors, failures.errors
    assert min(counts.values()) > 0, counts

    # The same updates on the reference: each writer's in its order (writers' updates commute, as
    # they start from different users).
    with igcore.use_backend("python"):
        replayed = FollowGraph.from_edges(src, dst)
        for log in logs:
            for kind, srcs, dsts in log:
                getattr(replayed, kind)(srcs, dsts)
    assert graph.user_ids().tolist() == replayed.user_ids().tolist()
    assert [a.tolist() for a in graph.edges()] == [a.tolist() for a in replayed.edges()]
    assert _answers(graph) == expected
    return f"ok {counts}"
