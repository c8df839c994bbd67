"""Conformance of timeline.TimelineStore and fan-out on write (fanout, backfill, remove_author), on every
backend; and the store under several threads."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import igcore
from igcore.timeline import Timeline, TimelineStore, backfill, fanout, merge_page, remove_author

from .conftest import assert_releases_the_gil, outcome
from .feeds import ids, int_scores, page_lists, timeline_of

HOT_PATH = "timeline"


def posts_of(store, user_id) -> list:
    return [post for _, post, _ in store[user_id]]


# -- the store -------------------------------------------------------------------------------------------


def test_holds_copies_of_timelines_by_user(backend):
    store = TimelineStore(max_len=5)
    assert store.backend == backend and len(store) == 0
    timeline = timeline_of([(2, 20, 1), (1, 10, 1)], max_len=5)
    store[42] = timeline
    timeline.insert(3, 30, 1)  # the store holds a copy
    assert posts_of(store, 42) == [20, 10]
    got = store[42]
    got.insert(9, 90, 1)  # and hands out copies
    assert posts_of(store, 42) == [20, 10]
    assert 42 in store and 7 not in store and len(store) == 1
    assert store.get(7) is None and store.get(7, "none") == "none"
    with pytest.raises(KeyError):
        store[7]
    store[-3] = Timeline(5)
    assert store.users().tolist() == [-3, 42]
    del store[42]
    assert 42 not in store and len(store) == 1
    with pytest.raises(KeyError):
        del store[42]
    store[42] = timeline_of([(1, 1, 1)], max_len=5)  # back again
    assert posts_of(store, 42) == [1] and store.users().tolist() == [-3, 42]


def test_refuses_timelines_that_do_not_fit(backend):
    store = TimelineStore(max_len=5)
    with pytest.raises(
        ValueError, match=r"the timeline has max_len=800 and int64 scores; this store holds max_len=5"
    ):
        store[1] = Timeline()
    with pytest.raises(ValueError, match="float64 scores"):
        store[1] = Timeline(5, "float64")
    with pytest.raises(TypeError, match="the timeline must be a Timeline, not list"):
        store[1] = []
    others = [b for b in igcore.backends() if b != backend]
    if others:
        with igcore.use_backend(others[0]):
            foreign = Timeline(5)
        with pytest.raises(TypeError, match=f"held by the {others[0]} backend and the store by {backend}"):
            store[1] = foreign


def test_merge_over_the_store_is_merge_over_its_timelines(backend):
    store = TimelineStore()
    store[1] = timeline_of([(9, 1, 10), (5, 2, 10)])
    store[2] = timeline_of([(8, 3, 20), (5, 2, 20), (1, 4, 20)])
    store[3] = timeline_of([(7, 5, 30)])
    page = store.merge_page([1, 2, 99, 3], limit=3)  # user 99 has no timeline: nothing from it
    expected = merge_page([store[1], store[2], store[3]], limit=3)
    assert page_lists(page) == page_lists(expected)
    assert page.post_ids.tolist() == [1, 3, 5]
    rest = store.merge_page([1, 2, 99, 3], 3, page.next_cursor, exclude_authors=[20])
    assert rest.post_ids.tolist() == [2] and rest.next_cursor is None
    assert store.merge_page([], limit=3).post_ids.tolist() == []
    assert store.merge_page(np.array([1, 1]), per_author_cap=1).post_ids.tolist() == [1]


def test_a_float_store(backend):
    store = TimelineStore(score_dtype="float64")
    assert fanout(store, 2, 1, 7, [5], create_missing=True) == 1  # an int score becomes a float
    page = store.merge_page([5])
    assert page.scores.dtype == np.float64 and page.scores.tolist() == [2.0]
    with pytest.raises(
        ValueError, match="the cursor belongs to a feed with int64 scores; this store has float64"
    ):
        store.merge_page([5], 1, merge_page([([2, 1], [1, 2], [0, 0])], limit=1).next_cursor)
    with pytest.raises(ValueError, match="score is NaN"):
        fanout(store, float("nan"), 2, 7, [5])


# -- fan-out on write ------------------------------------------------------------------------------------


def test_fanout_reaches_followers_with_a_timeline(backend):
    store = TimelineStore(max_len=2)
    store[1] = Timeline(2)
    store[3] = Timeline(2)
    assert fanout(store, 10, 100, 9, [1, 2, 3]) == 2
    assert 2 not in store
    assert fanout(store, 20, 101, 9, np.array([1, 2, 3, 3]), create_missing=True) == 3
    assert posts_of(store, 2) == [101] and posts_of(store, 1) == [101, 100]
    assert fanout(store, 5, 102, 9, [1, 2, 3]) == 1  # below the full timelines of 1 and 3
    assert fanout(store, 20, 101, 9, [1, 2, 3]) == 0  # already there
    assert fanout(store, 1, 7, 9, []) == 0


def test_fanout_to_many_followers(backend):
    followers = np.arange(50_000, dtype=np.int64) * 7919 + 2**40
    store = TimelineStore(max_len=3)
    assert fanout(store, 100, 1, 9, followers, create_missing=True) == 50_000
    assert fanout(store, 200, 2, 9, followers[::2]) == 25_000
    assert len(store) == 50_000
    assert posts_of(store, int(followers[2])) == [2, 1] and posts_of(store, int(followers[3])) == [1]


def test_merge_into_follows_mastodons_rule(backend):
    store = TimelineStore(max_len=3)
    for post, score in [(1, 50), (2, 40), (3, 30)]:
        fanout(store, score, post, 7, [42], create_missing=True)
    author = timeline_of([(45, 10, 8), (35, 11, 8), (5, 12, 8)])
    assert backfill(store, 42, author) is None
    assert posts_of(store, 42) == [1, 10, 2]  # full: only entries above the lowest get in
    assert remove_author(store, 42, 8) == 1 and posts_of(store, 42) == [1, 2]
    # not full: the author's entries get in, and the timeline is trimmed to max_len
    backfill(store, 43, ([45, 35, 5, 1], [10, 11, 12, 13], [8, 8, 8, 8]))
    assert posts_of(store, 43) == [10, 11, 12]
    assert remove_author(store, 44, 8) == 0 and 44 not in store


def test_fan_out_arguments_are_checked(backend):
    store = TimelineStore()
    with pytest.raises(TypeError, match="store must be a TimelineStore, not Timeline"):
        fanout(Timeline(), 1, 1, 1, [1])
    with pytest.raises(TypeError, match="follower_ids must hold integers"):
        fanout(store, 1, 1, 1, [1.5])
    with pytest.raises(TypeError, match="this timeline holds int64 scores; score is a float"):
        fanout(store, 1.5, 1, 1, [1])
    with pytest.raises(TypeError, match="author_timeline must be a Timeline or a"):
        backfill(store, 1, "posts")
    with pytest.raises(ValueError, match="author_timeline must be a .* triple, got 2 items"):
        backfill(store, 1, ([1], [1]))
    with pytest.raises(TypeError, match="author_timeline has float64 scores and the store int64"):
        backfill(store, 1, Timeline(score_dtype="float64"))
    with pytest.raises(TypeError, match="this timeline holds int64 scores; scores are float64"):
        backfill(store, 1, ([1.5], [1], [1]))
    with pytest.raises(TypeError, match="user_id must be an int"):
        remove_author(store, "1", 2)
    assert len(store) == 0


# -- properties: any sequence of operations leaves every backend where it leaves the reference --------------

users = st.integers(0, 4)


def store_operations():
    entries = st.lists(st.tuples(int_scores, ids, ids), max_size=5)
    return st.lists(
        st.one_of(
            st.tuples(
                st.just("fanout"), st.tuples(ids, int_scores, ids, st.lists(users, max_size=5), st.booleans())
            ),
            st.tuples(st.just("backfill"), st.tuples(users, entries, st.booleans())),
            st.tuples(st.just("remove_author"), st.tuples(users, ids)),
            st.tuples(st.just("discard"), users),
            st.tuples(st.just("page"), st.tuples(st.lists(users, max_size=6), st.integers(1, 5))),
        ),
        max_size=20,
    )


def apply(store: TimelineStore, operation):
    name, argument = operation
    if name == "fanout":
        post_id, score, author_id, followers, create = argument
        return fanout(store, score, post_id, author_id, followers, create_missing=create)
    if name == "backfill":
        user_id, entries, as_timeline = argument
        source = (
            timeline_of(entries, store.max_len)
            if as_timeline
            else tuple(list(c) for c in zip(*entries)) or ([], [], [])
        )
        if as_timeline:
            source = source.to_backend(store.backend)
        return backfill(store, user_id, source)
    if name == "remove_author":
        return remove_author(store, *argument)
    if name == "discard":
        return store.get(argument) is not None and store.__delitem__(argument)
    user_ids, limit = argument
    return page_lists(store.merge_page(user_ids, limit))


@given(st.integers(1, 4), store_operations())
def test_operations_match_the_reference(backend, max_len, steps):
    mine = TimelineStore(max_len)
    with igcore.use_backend("python"):
        theirs = TimelineStore(max_len)
    for step in steps:
        assert outcome(apply, mine, step) == outcome(apply, theirs, step), step
    assert mine.users().tolist() == theirs.users().tolist()
    for user_id in mine.users().tolist():
        assert mine[user_id].to_bytes() == theirs[user_id].to_bytes()


# -- threads and the GIL ---------------------------------------------------------------------------------


def test_a_large_fanout_releases_the_gil(backend):
    if backend == "python":
        pytest.skip("the reference is Python code and holds the GIL by nature")
    followers = np.random.default_rng(3).permutation(1_000_000).astype(np.int64) * 1000003
    store = TimelineStore(max_len=4)
    fanout(store, 1, 1, 1, followers, create_missing=True)
    made = [1]

    def fan_out_the_next_post():
        made.append(made[-1] + 1)
        fanout(store, made[-1], made[-1], 1, followers)

    assert_releases_the_gil(fan_out_the_next_post)
    assert posts_of(store, int(followers[-1])) == made[::-1][:4]


def test_threads_share_a_store(backend):
    # compiled backends: above the size at which fan-out leaves the GIL; the reference: threads alone
    followers = np.arange(40_000 if backend != "python" else 2_000, dtype=np.int64)
    store = TimelineStore(max_len=100)
    fanout(store, 0, 0, 0, followers, create_missing=True)
    errors = []

    def writer(first_post):
        try:
            for post in range(first_post, first_post + 10):
                fanout(store, post, post, 1, followers)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    def reader():
        try:
            for _ in range(200):
                page = store.merge_page(followers[:50], limit=20)
                assert len(page.post_ids) == len(set(page.post_ids.tolist()))
                store.get(int(followers[7]))
                len(store)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(1 + 10 * i,)) for i in range(3)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    assert posts_of(store, int(followers[-1])) == list(range(30, -1, -1))
