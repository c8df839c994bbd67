"""Conformance of timeline.Timeline, the bounded timeline cache: ordering, deduplication, trimming,
removal, its binary form, and bad input, on every backend."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import igcore
from igcore.codec import decode_entries, encode_entries
from igcore.timeline import Timeline

from .conftest import outcome
from .feeds import INT64_MAX, float_scores, ids, int_scores, timeline_of

HOT_PATH = "timeline"


# -- order, duplicates, trimming -------------------------------------------------------------------------


def test_keeps_feed_order_and_trims_the_lowest_entries(backend):
    timeline = Timeline(max_len=3)
    assert timeline.backend == backend
    assert timeline.insert(10, 1, 0) and timeline.insert(30, 2, 0) and timeline.insert(20, 3, 0)
    assert timeline.insert(20, 4, 0)  # ties: the larger post id first; post 1 is trimmed
    assert list(timeline) == [(30, 2, 0), (20, 4, 0), (20, 3, 0)]
    assert not timeline.insert(5, 5, 0)  # below a full timeline: it would be trimmed at once
    assert len(timeline) == 3


def test_a_post_keeps_its_greatest_key(backend):
    timeline = timeline_of([(10, 1, 7)])
    assert not timeline.insert(10, 1, 8)  # an equal key: the first stands
    assert not timeline.insert(5, 1, 8)
    assert timeline.insert(15, 1, 9)
    assert list(timeline) == [(15, 1, 9)]


def test_removing_posts_and_authors(backend):
    timeline = timeline_of([(i, i, i % 2) for i in range(6)])
    assert timeline.remove_post(4) and not timeline.remove_post(4)
    assert timeline.remove_author(1) == 3 and timeline.remove_author(1) == 0
    assert [post for _, post, _ in timeline] == [2, 0]
    timeline.clear()
    assert len(timeline) == 0 and list(timeline) == []


def test_removal_never_brings_back_a_trimmed_entry(backend):
    timeline = timeline_of([(3, 3, 0), (2, 2, 0), (1, 1, 0)], max_len=2)
    timeline.remove_post(3)
    assert list(timeline) == [(2, 2, 0)]


def test_insert_many_is_insert_in_array_order(backend):
    timeline = Timeline(max_len=3)
    timeline.insert_many([5, 9, 5, 7, 1], [1, 2, 1, 3, 4], [10, 20, 30, 40, 50])
    assert list(timeline) == [(9, 2, 20), (7, 3, 40), (5, 1, 10)]
    timeline.insert_many(np.array([], dtype=np.int64), [], [])
    assert len(timeline) == 3


def test_float_timelines(backend):
    timeline = Timeline(score_dtype="float64")
    assert timeline.score_dtype == np.float64
    timeline.insert(-0.0, 1, 0)
    timeline.insert(2, 2, 0)  # an int becomes a float
    timeline.insert_many(np.array([np.inf, -1.5]), [3, 4], [0, 0])
    scores, post_ids, _ = timeline.entries()
    assert scores.tolist() == [np.inf, 2.0, 0.0, -1.5] and post_ids.tolist() == [3, 2, 1, 4]
    assert not np.signbit(scores[2])
    with pytest.raises(ValueError, match="score is NaN, which has no place in feed order"):
        timeline.insert(float("nan"), 5, 0)
    with pytest.raises(ValueError, match="scores hold NaN"):
        timeline.insert_many([np.nan], [5], [0])
    assert len(timeline) == 4


def test_len_iter_eq_repr_copy(backend):
    a = timeline_of([(1, 1, 1), (2, 2, 2)], max_len=5)
    b = timeline_of([(2, 2, 2), (1, 1, 1)], max_len=5)
    assert a == b and len(a) == 2 and list(a) == [(2, 2, 2), (1, 1, 1)]
    assert a != timeline_of([(2, 2, 2), (1, 1, 1)], max_len=6)  # another bound behaves otherwise
    assert a != timeline_of([(2, 2, 2)], max_len=5)
    assert a != Timeline(5, "float64")
    assert (a == [(2, 2, 2), (1, 1, 1)]) is False
    copy = a.copy()
    copy.insert(3, 3, 3)
    assert len(a) == 2 and len(copy) == 3
    assert "Timeline of 2 entries, max_len=5, int64 scores" in repr(a)
    with pytest.raises(TypeError):
        hash(a)


def test_page_is_a_merge_of_one_timeline(backend):
    timeline = timeline_of([(i, i, 0) for i in range(10)])
    page = timeline.page(limit=4)
    assert page.post_ids.tolist() == [9, 8, 7, 6]
    assert timeline.page(4, page.next_cursor, exclude_authors=[1]).post_ids.tolist() == [5, 4, 3, 2]


# -- the binary form -------------------------------------------------------------------------------------


def test_to_bytes_is_the_codec_entries_format_and_identical_on_every_backend(backend):
    timeline = timeline_of([(30, 3, 1), (20, 2, 2), (10, 1, 1)])
    data = timeline.to_bytes()
    assert data == encode_entries([30, 20, 10], [3, 2, 1], [1, 2, 1])
    for other in igcore.backends():
        with igcore.use_backend(other):
            assert timeline_of([(30, 3, 1), (20, 2, 2), (10, 1, 1)]).to_bytes() == data
            assert Timeline.from_bytes(data) == timeline.to_backend(other)


def test_from_bytes_keeps_the_top_max_len_entries_and_the_score_dtype(backend):
    data = timeline_of([(i * 1.5, i, 0) for i in range(10)], score_dtype="float64").to_bytes()
    timeline = Timeline.from_bytes(data, max_len=4)
    assert timeline.score_dtype == np.float64 and timeline.max_len == 4
    assert [post for _, post, _ in timeline] == [9, 8, 7, 6]
    assert Timeline.from_bytes(bytearray(data)) == Timeline.from_bytes(data)


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        (([1, 2], [1, 2], [0, 0]), "not a timeline: entry 1 does not rank below entry 0"),
        (([2, 2], [1, 1], [0, 0]), "not a timeline: entry 1 does not rank below entry 0"),
        (([3, 2], [5, 5], [0, 0]), "not a timeline: post 5 appears twice"),
        (([1.0, np.nan], [2, 1], [0, 0]), "not a timeline: a NaN score at entry 1"),
        (([0.0, -0.0], [1, 2], [0, 0]), "not a timeline: entry 1 does not rank below entry 0"),  # -0.0 is 0.0
    ],
)
def test_from_bytes_refuses_entries_no_timeline_holds(backend, entries, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        Timeline.from_bytes(encode_entries(*entries))


def test_from_bytes_refuses_truncated_and_corrupted_bytes(backend):
    data = timeline_of([(3, 1, 1), (2, 2, 1)]).to_bytes()
    for cut in range(len(data)):
        with pytest.raises(ValueError):
            Timeline.from_bytes(data[:cut])
    corrupted = bytearray(data)
    corrupted[5] ^= 0x40
    with pytest.raises(ValueError, match="corrupted entries: checksum mismatch"):
        Timeline.from_bytes(bytes(corrupted))
    with pytest.raises(ValueError, match="not an igcore entries"):
        Timeline.from_bytes(b"I" + data[1:])


def test_to_backend_copies_into_another_backend(backend):
    timeline = timeline_of([(3, 1, 1), (2, 2, 1)], max_len=7)
    for other in igcore.backends():
        converted = timeline.to_backend(other)
        assert converted.backend == other and converted == timeline and converted.max_len == 7


# -- bad input -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda t: t.insert(1.5, 1, 1),
            TypeError,
            r"this timeline holds int64 scores; score is a float \(1.5\)",
        ),
        (lambda t: t.insert(1, 2**63, 1), OverflowError, "post_id is outside the int64 range"),
        (lambda t: t.insert(1, 1, "7"), TypeError, "author_id must be an int, not str"),
        (lambda t: t.insert(1, True, 1), TypeError, "post_id must be an int, not bool"),
        (
            lambda t: t.insert_many([1.5], [1], [1]),
            TypeError,
            "this timeline holds int64 scores; scores are float64",
        ),
        (lambda t: t.insert_many([1, 2], [1], [1]), ValueError, r"differ in length \(2, 1, 1\)"),
        (lambda t: t.remove_post(None), TypeError, "post_id must be an int, not NoneType"),
        (lambda t: t.page(0), ValueError, "limit must be at least 1"),
    ],
)
def test_bad_arguments_raise_a_clear_error(backend, call, error, message):
    timeline = Timeline()
    with pytest.raises(error, match=message):
        call(timeline)
    assert len(timeline) == 0


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((0,), ValueError, "max_len must be at least 1, got 0"),
        ((-5,), ValueError, "max_len must be at least 1"),
        ((2**64,), OverflowError, "max_len is outside the int64 range"),
        ((10, "int32"), ValueError, "score_dtype must be int64 or float64, not 'int32'"),
        ((10, "nonsense"), ValueError, "score_dtype must be int64 or float64"),
    ],
)
def test_bad_construction_raises_a_clear_error(backend, args, error, message):
    with pytest.raises(error, match=message):
        Timeline(*args)


def test_a_huge_max_len_allocates_nothing_up_front(backend):
    timeline = Timeline(max_len=INT64_MAX)
    timeline.insert(1, 1, 1)
    assert len(timeline) == 1


def test_numpy_scalars_are_accepted(backend):
    timeline = Timeline()
    assert timeline.insert(np.int32(5), np.int64(1), np.uint8(2))
    assert list(timeline) == [(5, 1, 2)]


# -- properties: any sequence of operations leaves every backend where it leaves the reference -------------


def operations(scores):
    one = st.tuples(scores, ids, ids)
    return st.lists(
        st.one_of(
            st.tuples(st.just("insert"), one),
            st.tuples(st.just("insert_many"), st.lists(one, max_size=6)),
            st.tuples(st.just("remove_post"), ids),
            st.tuples(st.just("remove_author"), ids),
            st.tuples(st.just("round_trip"), st.integers(1, 6)),
        ),
        max_size=25,
    )


def apply(timeline: Timeline, operation):
    name, argument = operation
    if name == "insert":
        return timeline.insert(*argument)
    if name == "insert_many":
        columns = [list(c) for c in zip(*argument)] or [[], [], []]
        return timeline.insert_many(*columns)
    if name == "round_trip":
        return Timeline.from_bytes(timeline.to_bytes(), argument).entries()
    return getattr(timeline, name)(argument)


@given(st.integers(1, 6), st.booleans(), st.data())
def test_operations_match_the_reference(backend, max_len, is_float, data):
    steps = data.draw(operations(float_scores if is_float else int_scores))
    dtype = "float64" if is_float else "int64"
    mine = Timeline(max_len, dtype)
    with igcore.use_backend("python"):
        theirs = Timeline(max_len, dtype)
    for step in steps:
        got, expected = outcome(apply, mine, step), outcome(apply, theirs, step)
        assert _plain(got) == _plain(expected), step
        assert _entries(mine) == _entries(theirs), step
    assert mine.to_bytes() == theirs.to_bytes()
    assert mine == theirs


def _entries(timeline):
    scores, post_ids, author_ids = timeline.entries()
    return scores.dtype.str, scores.view(np.int64).tolist(), post_ids.tolist(), author_ids.tolist()


def _plain(result):
    if result[0] == "ok" and isinstance(result[1], tuple):
        return ("ok", [a.view(np.int64).tolist() for a in result[1]])
    return result


@given(st.lists(st.tuples(int_scores, ids, ids), max_size=30), st.integers(1, 10))
def test_bytes_round_trip(backend, entries, max_len):
    timeline = timeline_of(entries, max_len)
    again = Timeline.from_bytes(timeline.to_bytes(), max_len)
    assert again == timeline
    scores, post_ids, author_ids = decode_entries(timeline.to_bytes())
    assert post_ids.tolist() == [post for _, post, _ in timeline]
    assert len(set(post_ids.tolist())) == len(post_ids) <= max_len
    keys = list(zip(scores.tolist(), post_ids.tolist()))
    assert keys == sorted(keys, reverse=True)
