"""Timelines shared by threads: writers, readers and copies at once, on every backend.

The contract (README, "Timelines"): every method of a Timeline or a TimelineStore is atomic with respect
to the others, whichever threads call them, so a reader sees the timeline before or after an update, never
during one. These tests check answers, not only survival: each snapshot a reader takes must be in feed
order with each post once, and after the threads join, the contents equal what the reference gives for the
same updates applied one after another.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

import igcore
from igcore.timeline import Timeline, TimelineStore, backfill, fanout, merge_page, remove_author

from .threads import run_threads

HOT_PATH = "timeline"
WRITERS = 3
# Large enough, on the compiled backends, for the calls that release the GIL on long work to do so.
LONG = {"rust": 40_000, "cython": 40_000, "python": 3_000}


def assert_feed(scores, post_ids) -> None:
    """In feed order (descending by score, then post id) with each post once."""
    scores, post_ids = np.asarray(scores).tolist(), np.asarray(post_ids).tolist()
    keys = list(zip(scores, post_ids))
    assert keys == sorted(keys, reverse=True)
    assert len(set(post_ids)) == len(post_ids)


def writer_entries(writer: int, backend: str):
    """The posts of one writer: ids of its own, distinct scores, seven authors of its own. Writer 0 has
    many, the lowest scores, in feed order (one long insert_many that appends); the others have a few
    thousand in random order, above writer 0's."""
    if writer == 0:
        n = LONG[backend]
        scores = np.arange(n, 0, -1, dtype=np.int64)
    else:
        n = 4_000
        scores = 10**9 + np.random.default_rng(writer).permutation(n).astype(np.int64) * WRITERS + writer
    post_ids = writer * 10_000_000 + np.arange(n, dtype=np.int64)
    author_ids = writer * 100 + np.arange(n, dtype=np.int64) % 7
    return scores, post_ids, author_ids


def test_a_timeline_shared_by_writers_and_readers(backend):
    capacity = LONG[backend] + WRITERS * 4_000
    shared = Timeline(max_len=capacity)
    other = Timeline(max_len=10)
    other.insert(-1, -1, -1)
    reads = []

    def write(writer):
        scores, post_ids, author_ids = writer_entries(writer, backend)
        n = len(post_ids)
        bulk = n if writer == 0 else n // 2
        shared.insert_many(scores[:bulk], post_ids[:bulk], author_ids[:bulk])  # may run without the GIL
        for i in range(bulk, n):
            shared.insert(int(scores[i]), int(post_ids[i]), int(author_ids[i]))
        for i in range(0, n, 97):  # a few of its own posts deleted
            assert shared.remove_post(int(post_ids[i]))
        assert shared.remove_author(writer * 100 + 6) > 0  # and one of its authors unfollowed

    def read(done):
        while not done.is_set():
            page = shared.page(limit=100)
            assert_feed(page.scores, page.post_ids)
            page = merge_page([shared, other], limit=100)
            assert_feed(page.scores, page.post_ids)
            snapshot = shared.copy().entries()
            assert_feed(snapshot.scores, snapshot.post_ids)
            back = Timeline.from_bytes(shared.to_bytes(), max_len=capacity).entries()
            assert_feed(back.scores, back.post_ids)
            reads.append(len(back.post_ids))

    run_threads([lambda done, w=w: write(w) for w in range(WRITERS)], [read, read])
    assert reads

    with igcore.use_backend("python"):
        expected = Timeline(max_len=capacity)
        for writer in range(WRITERS):
            scores, post_ids, author_ids = writer_entries(writer, backend)
            expected.insert_many(scores, post_ids, author_ids)
            for i in range(0, len(post_ids), 97):
                expected.remove_post(int(post_ids[i]))
            expected.remove_author(writer * 100 + 6)
    assert shared == expected


def test_a_timeline_store_shared_by_fanout_merges_and_follows(backend):
    followers = np.arange(1, LONG[backend] + 1, dtype=np.int64)
    posts_per_writer = 12
    store = TimelineStore(max_len=1_000)
    pages = []

    def fan_out(writer):
        for i in range(posts_per_writer):
            post_id = writer * 1_000 + i
            fanout(store, post_id, post_id, 7_000 + writer, followers, create_missing=True)

    def follow_and_unfollow(_done):
        # Users of their own, away from the followers: backfill on follow, remove_author on unfollow,
        # whole timelines put, read back and dropped.
        for user in range(10):
            user_id = 10**9 + user
            backfill(store, user_id, ([30, 20, 10], [900_001, 900_002, 900_003], [55, 55, 56]))
            assert remove_author(store, user_id, 56) == 1
            timeline = Timeline(max_len=1_000)
            timeline.insert(5, 800_000 + user, 66)
            store[2 * 10**9 + user] = timeline
            assert store[2 * 10**9 + user] == timeline
            del store[2 * 10**9 + user]

    def read(done):
        rng = np.random.default_rng(threading.get_ident() % 2**32)
        while not done.is_set():
            some = rng.choice(followers, size=50)
            page = store.merge_page(some, limit=30)
            assert_feed(page.scores, page.post_ids)
            pages.append(len(page.post_ids))
            one = store.get(int(some[0]))
            if one is not None:
                entries = one.entries()
                assert_feed(entries.scores, entries.post_ids)
                assert set(entries.author_ids.tolist()) <= {7_000 + w for w in range(WRITERS)}

    run_threads([lambda done, w=w: fan_out(w) for w in range(WRITERS)] + [follow_and_unfollow], [read, read])
    assert pages

    posts = sorted((w * 1_000 + i for w in range(WRITERS) for i in range(posts_per_writer)), reverse=True)
    for follower in [1, int(followers[len(followers) // 2]), int(followers[-1])]:
        assert store[follower].entries().post_ids.tolist() == posts
    page = store.merge_page(followers, limit=len(posts) + 5)
    assert page.post_ids.tolist() == posts and page.next_cursor is None
    for user in range(10):
        assert store[10**9 + user].entries().post_ids.tolist() == [900_001, 900_002]
        assert 2 * 10**9 + user not in store
    assert len(store) == len(followers) + 10


@pytest.mark.parametrize("threads", [4])
def test_timelines_merged_while_each_is_rewritten(backend, threads):
    # Several timelines, each rewritten by its own thread, merged together by the others: a merge holds
    # every timeline it reads for the whole merge_page, in one order, so merges and writers cannot deadlock.
    timelines = [Timeline(max_len=500) for _ in range(threads)]
    rounds = 200 if backend == "python" else 1_000

    def rewrite(index):
        timeline = timelines[index]
        for round_ in range(rounds):
            timeline.clear()
            timeline.insert_many(
                np.arange(round_, round_ + 50, dtype=np.int64),
                index * 10**6 + np.arange(50, dtype=np.int64),
                np.full(50, index, dtype=np.int64),
            )

    def read(done):
        while not done.is_set():
            page = merge_page(timelines + timelines[::-1], limit=200)
            assert_feed(page.scores, page.post_ids)

    run_threads([lambda done, i=i: rewrite(i) for i in range(threads)], [read, read])
    for index, timeline in enumerate(timelines):
        assert timeline.entries().scores.tolist() == list(range(rounds + 48, rounds - 2, -1))
        assert len(timeline) == 50 and set(timeline.entries().author_ids.tolist()) == {index}
