"""Conformance of timeline.merge_page (fan-out on read): order, ties, duplicates, filters, exact pagination,
cursors, and bad input, on every backend."""

from __future__ import annotations

import base64

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import igcore
from igcore import _backend
from igcore.codec import Entries
from igcore.timeline import Page, Timeline, cursor_after, merge_page

from .conftest import assert_releases_the_gil, outcome, reference
from .feeds import INT64_MAX, INT64_MIN, page_lists, sources

HOT_PATH = "timeline"


def run(*entries):
    """A source from (score, post_id, author_id) triples, given in feed order."""
    scores = np.array(
        [e[0] for e in entries],
        dtype=np.float64 if any(isinstance(e[0], float) for e in entries) else np.int64,
    )
    return (
        scores,
        np.array([e[1] for e in entries], dtype=np.int64),
        np.array([e[2] for e in entries], dtype=np.int64),
    )


def in_feed_order(scores, post_ids, author_ids):
    """Arrays sorted into feed order: descending by (score, post_id)."""
    order = np.lexsort((post_ids, scores))[::-1]
    return scores[order], post_ids[order], author_ids[order]


def posts(page) -> list:
    return page.post_ids.tolist()


def every_page(sources_, limit, **options) -> list:
    """The post ids of all pages, in order, following the cursors."""
    got, cursor, pages = [], None, 0
    while True:
        page = merge_page(sources_, limit, cursor, **options)
        got.extend(posts(page))
        pages += 1
        assert len(page.post_ids) <= limit
        if page.next_cursor is None:
            return got
        assert len(page.post_ids) == limit  # only a full page says there is more
        cursor = page.next_cursor
        assert pages < 10_000


# -- the shape of a page, and what the kernels take ---------------------------------------------------


def test_a_page_unpacks_in_the_order_of_entries(backend):
    assert Page._fields == (*Entries._fields, "next_cursor")
    scores, post_ids, author_ids, next_cursor = merge_page([run((30, 1, 10), (20, 2, 11))], limit=1)
    assert (scores.tolist(), post_ids.tolist(), author_ids.tolist()) == ([30], [1], [10])
    assert next_cursor is not None


def test_the_kernels_say_what_they_take_answer_with_a_page_and_refuse_the_rest(backend):
    kernels = _backend.kernels(HOT_PATH)
    ints = (np.array([2, 1]), np.array([1, 2]), np.array([5, 5]))
    floats = (np.array([2.5]), np.array([3]), np.array([5]))
    scores, post_ids, author_ids, has_more = kernels.merge_page([ints], 1, None, None, None)
    assert (post_ids.tolist(), has_more) == ([1], True)
    not_canonical = [
        [ints[:2]],  # two arrays
        [(np.array([2.0, 1.0], dtype=">f8"), ints[1], ints[2])],  # not native
        [(ints[0][::-1], ints[1], ints[2])],  # a reversed view: not C-contiguous
        [(np.array([1, 2, 3])[::2], ints[1], ints[2])],  # a strided view
        [(ints[0], ints[1].astype(np.int32), ints[2])],
        [(ints[0], ints[1], np.array([5]))],  # lengths differ
        [[ints[0], ints[1], ints[2]]],  # a list, not a tuple
    ]
    timeline = Timeline()
    assert kernels.accepts_sources([ints, timeline._core, ints], None)
    assert kernels.accepts_sources([floats], (True, 1.5, 3)) and kernels.accepts_sources([], (True, 1.5, 3))
    assert not kernels.accepts_sources([floats, ints], None)
    assert not kernels.accepts_sources([ints], (True, 1.5, 3))
    for refused in not_canonical:
        assert not kernels.accepts_sources(refused, None)
        with pytest.raises(TypeError, match=r"^sources\[0\] is not in canonical form: a Timeline of this"):
            kernels.merge_page(refused, 10, None, None, None)
    with pytest.raises(TypeError, match=r"^sources mix int64 and float64 scores \(sources\[1\] has int64, "):
        kernels.merge_page([floats, ints], 10, None, None, None)
    with pytest.raises(ValueError, match=r"^the cursor belongs to a feed with float64 scores; these sources"):
        kernels.merge_page([ints], 10, (True, 1.5, 3), None, None)


# -- order, ties, duplicates -----------------------------------------------------------------------------


def test_merges_in_feed_order_and_breaks_score_ties_by_the_larger_post_id(backend):
    a = run((30, 1, 10), (20, 5, 10), (10, 2, 10))
    b = run((30, 4, 20), (20, 3, 20), (5, 6, 20))
    page = merge_page([a, b], limit=10)
    assert isinstance(page, Page)
    assert posts(page) == [4, 1, 5, 3, 2, 6]
    assert page.scores.tolist() == [30, 30, 20, 20, 10, 5]
    assert page.author_ids.tolist() == [20, 10, 10, 20, 10, 20]
    assert page.next_cursor is None
    assert page.post_ids.dtype == page.scores.dtype == page.author_ids.dtype == np.int64


def test_a_post_in_several_sources_stands_once_with_its_greatest_key(backend):
    a = run((50, 7, 1), (10, 8, 1))
    b = run((40, 8, 2), (30, 7, 2))
    page = merge_page([a, b])
    assert posts(page) == [7, 8]
    assert page.scores.tolist() == [50, 40]
    assert page.author_ids.tolist() == [1, 2]


def test_on_equal_keys_the_earlier_source_stands(backend):
    first, second = run((9, 1, 100)), run((9, 1, 200))
    assert merge_page([first, second]).author_ids.tolist() == [100]
    assert merge_page([second, first]).author_ids.tolist() == [200]


def test_empty_sources_and_no_sources(backend):
    empty = run()
    assert posts(merge_page([])) == [] and merge_page([]).next_cursor is None
    assert posts(merge_page([empty, run((1, 1, 1)), empty])) == [1]
    assert merge_page([]).scores.dtype == np.int64


def test_extreme_scores_and_ids(backend):
    a = run((INT64_MAX, INT64_MIN, 0), (INT64_MIN, INT64_MAX, -1))
    b = run((0, 0, INT64_MAX))
    page = merge_page([a, b], limit=2)
    assert posts(page) == [INT64_MIN, 0]
    assert posts(merge_page([a, b], 2, page.next_cursor)) == [INT64_MAX]


def test_float_scores_order_as_numbers_with_minus_zero_as_zero(backend):
    a = (np.array([np.inf, 0.5, -0.0]), np.array([1, 2, 3]), np.array([0, 0, 0]))
    b = (np.array([0.5, 0.0, -np.inf]), np.array([4, 2, 5]), np.array([1, 1, 1]))
    page = merge_page([a, b])
    assert posts(page) == [1, 4, 2, 3, 5]
    assert page.scores.dtype == np.float64
    assert page.scores.tolist() == [np.inf, 0.5, 0.5, 0.0, -np.inf]
    assert not np.signbit(page.scores[3])  # -0.0 comes back as 0.0


# -- filters ---------------------------------------------------------------------------------------------


def test_muted_authors_are_left_out_before_duplicates_are_dropped(backend):
    original = run((8, 2, 1), (7, 3, 1))
    reshare = run((10, 2, 3))  # author 3 reshared post 2, higher
    assert merge_page([original, reshare]).author_ids.tolist() == [3, 1]
    page = merge_page([original, reshare], exclude_authors=[3])
    assert posts(page) == [2, 3] and page.author_ids.tolist() == [1, 1]
    assert posts(merge_page([original, reshare], exclude_authors={1, 3})) == []
    assert posts(merge_page([original, reshare], exclude_authors=np.array([], dtype=np.int64))) == [2, 3]


def test_per_author_cap_skips_an_authors_extra_entries_on_each_page(backend):
    a = run((9, 1, 1), (8, 2, 1), (7, 3, 1), (6, 4, 2), (5, 5, 1))
    page = merge_page([a], limit=3, per_author_cap=2)
    assert posts(page) == [1, 2, 4]
    # the skipped entry (post 3) is dropped, not deferred: the next page starts below post 4
    assert posts(merge_page([a], 3, page.next_cursor, per_author_cap=2)) == [5]


# -- pagination ------------------------------------------------------------------------------------------


def test_pages_concatenate_to_the_whole_feed_whatever_the_page_size(backend):
    a = run((9, 1, 1), (7, 3, 1), (7, 2, 1), (5, 5, 1), (3, 7, 1))
    b = run((8, 2, 2), (7, 3, 2), (4, 6, 2), (1, 9, 2), (1, 3, 2))
    whole = posts(merge_page([a, b], limit=1000))
    assert whole == [1, 2, 3, 5, 6, 7, 9]
    for limit in range(1, 9):
        assert every_page([a, b], limit) == whole, limit


def test_a_cursor_names_a_position_so_new_posts_at_the_top_do_not_shift_pages(backend):
    older = run((5, 50, 1), (4, 40, 1), (3, 30, 1), (2, 20, 1))
    first = merge_page([older], limit=2)
    newer = run((9, 90, 1), (8, 80, 1), *zip([5, 4, 3, 2], [50, 40, 30, 20], [1, 1, 1, 1]))
    assert posts(merge_page([newer], 2, first.next_cursor)) == [30, 20]


def test_the_last_page_says_nothing_is_left(backend):
    a = run((3, 1, 1), (2, 2, 1))
    assert merge_page([a], limit=2).next_cursor is None
    assert merge_page([a], limit=1).next_cursor is not None
    # the entry after a full page is a duplicate: nothing is left
    b = run((3, 1, 1), (2, 2, 1), (1, 1, 2))
    assert merge_page([b], limit=2).next_cursor is None


def test_a_huge_limit_returns_the_whole_feed(backend):
    a = run((3, 1, 1), (2, 2, 1))
    assert posts(merge_page([a], limit=INT64_MAX)) == [1, 2]


def test_a_deep_page_drops_posts_that_a_reshare_placed_above_the_cursor(backend):
    rng = np.random.default_rng(5)
    feeds = []
    for author in range(20):
        scores = rng.integers(0, 10_000, 40)
        post_ids = rng.integers(0, 300, 40)  # 800 entries over 300 posts: many reshares
        feeds.append(in_feed_order(scores, post_ids, np.full(40, author, dtype=np.int64)))
    for limit in (3, 50):
        got = every_page(feeds, limit)
        assert len(got) == len(set(got))
        assert got == posts(merge_page(feeds, limit=10**6))


# -- the hybrid feed: a pushed home timeline plus pulled timelines ------------------------------------------


def test_the_hybrid_home_feed_is_one_call(backend):
    home = Timeline(max_len=4)
    for score, post, author in [(10, 1, 7), (8, 2, 8), (6, 3, 7), (4, 4, 8), (2, 5, 7)]:
        home.insert(score, post, author)
    celebrity = run((9, 100, 99), (8, 2, 99), (1, 101, 99))  # also reshared post 2
    page = merge_page([home, celebrity], limit=3, exclude_authors=[8])
    assert posts(page) == [1, 100, 2]
    assert page.author_ids.tolist() == [7, 99, 99]
    assert posts(merge_page([home, celebrity], 3, page.next_cursor, exclude_authors=[8])) == [3, 101]


# -- cursors ---------------------------------------------------------------------------------------------


def test_a_malformed_cursor_raises_value_error(backend):
    a = run((3, 1, 1), (2, 2, 1), (1, 3, 1))
    cursor = merge_page([a], limit=1).next_cursor
    assert isinstance(cursor, str) and len(cursor) == 46
    for bad in ["", "x", cursor[:-1], cursor + "A", cursor.replace(cursor[5], "*"), "é" * 46, "=" * 46]:
        with pytest.raises(ValueError, match="cursor"):
            merge_page([a], 1, bad)
    with pytest.raises(TypeError, match="cursor must be a str or None, not bytes"):
        merge_page([a], 1, cursor.encode())


def test_a_tampered_cursor_is_refused(backend):
    a = run((3, 1, 1), (2, 2, 1), (1, 3, 1))
    cursor = merge_page([a], limit=1).next_cursor
    raw = bytearray(base64.urlsafe_b64decode(cursor + "=="))
    raw[10] ^= 1  # another post id: the checksum no longer matches
    forged = base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(ValueError, match="cursor failed verification"):
        merge_page([a], 1, forged)


def test_a_cursor_key_signs_cursors(backend):
    a = run((3, 1, 1), (2, 2, 1), (1, 3, 1))
    signed = merge_page([a], 1, cursor_key=b"server secret").next_cursor
    assert posts(merge_page([a], 1, signed, cursor_key=b"server secret")) == [2]
    assert (
        merge_page([a], 1, signed, cursor_key="server secret").next_cursor is not None
    )  # str keys are UTF-8
    unsigned = merge_page([a], 1).next_cursor
    for cursor, key in [(signed, None), (signed, b"another"), (unsigned, b"server secret")]:
        with pytest.raises(ValueError, match="cursor failed verification"):
            merge_page([a], 1, cursor, cursor_key=key)
    long_key = bytes(range(256))  # beyond BLAKE2b's 64 bytes: hashed first
    assert posts(
        merge_page([a], 1, merge_page([a], 1, cursor_key=long_key).next_cursor, cursor_key=long_key)
    ) == [2]
    with pytest.raises(TypeError, match="cursor_key must be bytes or str"):
        merge_page([a], 1, cursor_key=7)


def test_a_cursor_after_a_known_entry_starts_the_page_below_it(backend):
    # Mastodon's max_id: the feed's scores are its post ids, and a page starts below a given id.
    feed = run((9, 9, 1), (7, 7, 2), (5, 5, 1), (3, 3, 2))
    assert posts(merge_page([feed], 10, cursor_after(7, 7))) == [5, 3]
    assert posts(merge_page([feed], 10, cursor_after(8, 8))) == [7, 5, 3]  # an id not in the feed
    assert posts(merge_page([feed], 1, cursor_after(9, 9))) == [7]
    assert merge_page([feed], 10, cursor_after(3, 3)).post_ids.size == 0
    # the same position as the cursor a page hands out, signed alike
    page = merge_page([feed], 2, cursor_key="k")
    assert cursor_after(7, 7, cursor_key="k") == page.next_cursor
    floats = (np.array([2.5, 1.5]), np.array([1, 2]), np.array([1, 1]))
    assert posts(merge_page([floats], 5, cursor_after(2.5, 1))) == [2]
    with pytest.raises(ValueError, match="the cursor belongs to a feed with int64 scores"):
        merge_page([floats], 5, cursor_after(3, 1))
    with pytest.raises(ValueError, match="NaN"):
        cursor_after(float("nan"), 1)
    with pytest.raises(OverflowError):
        cursor_after(2**63, 1)
    with pytest.raises(TypeError):
        cursor_after("7", 7)


def test_a_cursor_of_another_score_kind_is_refused(backend):
    ints = run((3, 1, 1), (2, 2, 1))
    floats = (np.array([3.0, 2.0]), np.array([1, 2]), np.array([1, 1]))
    cursor = merge_page([ints], limit=1).next_cursor
    with pytest.raises(ValueError, match="the cursor belongs to a feed with int64 scores"):
        merge_page([floats], 1, cursor)


# -- bad input: a clear error at the door, the same on every backend ----------------------------------------


@pytest.mark.parametrize(
    ("sources_", "error", "message"),
    [
        (
            [run((1, 1, 1), (2, 2, 1))],
            ValueError,
            r"sources\[0\] is not in feed order: entry 1 ranks above entry 0",
        ),
        (
            [run(), run((1, 5, 1), (1, 6, 1))],
            ValueError,
            r"sources\[1\] is not in feed order: entry 1 ranks above",
        ),
        (
            [(np.array([1.0, np.nan]), np.array([1, 2]), np.array([1, 1]))],
            ValueError,
            r"sources\[0\] has a NaN score at index 1",
        ),
        (
            [run((1, 1, 1)), (np.array([1.0]), np.array([1]), np.array([1]))],
            TypeError,
            r"sources mix int64 and float64 scores \(sources\[0\] has int64, sources\[1\] has float64\)",
        ),
        (
            [(np.array([1]), np.array([1, 2]), np.array([1]))],
            ValueError,
            r"sources\[0\]: scores, post_ids and author_ids differ in length",
        ),
        (
            [(np.array([1]), np.array([1]))],
            ValueError,
            r"sources\[0\] must be a \(scores, post_ids, author_ids\) triple, got 2 items",
        ),
        (
            [7],
            TypeError,
            r"sources\[0\] must be a Timeline or a \(scores, post_ids, author_ids\) triple, not int",
        ),
        ([(["a"], [1], [1])], TypeError, r"sources\[0\]: scores must hold integers"),
        ([([1], [1.5], [1])], TypeError, r"sources\[0\]: post_ids must hold integers"),
        (
            np.array([1, 2, 3]),
            TypeError,
            r"sources must be a list of Timelines and \(scores, post_ids, author_ids\) triples",
        ),
    ],
)
def test_bad_sources_raise_a_clear_error(backend, sources_, error, message):
    with pytest.raises(error, match=message):
        merge_page(sources_)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"limit": 0}, ValueError, "limit must be at least 1, got 0"),
        ({"limit": 2**63}, OverflowError, "limit is outside the int64 range"),
        ({"limit": 2.0}, TypeError, "limit must be an int, not float"),
        ({"per_author_cap": 0}, ValueError, "per_author_cap must be at least 1, got 0"),
        ({"exclude_authors": [1.5]}, TypeError, "exclude_authors must hold integers"),
        ({"exclude_authors": 3}, TypeError, "exclude_authors must be a 1-D array or sequence of ints"),
    ],
)
def test_bad_options_raise_a_clear_error(backend, options, error, message):
    with pytest.raises(error, match=message):
        merge_page([run((1, 1, 1))], **options)


def test_sources_in_other_forms_are_converted(backend):
    expected = posts(merge_page([run((3, 1, 1), (2, 2, 1))]))
    for source in (
        ([3, 2], [1, 2], [1, 1]),
        (np.array([3, 2], dtype=np.int32), np.array([1, 2], dtype=">i8"), np.array([1, 1], dtype=np.uint8)),
        (np.array([3, 9, 2])[::2], np.array([1, 9, 2])[::2], np.array([1, 1, 1])[::2]),
        [np.array([3, 2]), np.array([1, 2]), np.array([1, 1])],
    ):
        assert posts(merge_page([source])) == expected
    assert merge_page([([3.5, 2], [1, 2], [1, 1])]).scores.dtype == np.float64
    assert posts(merge_page(iter([run((3, 1, 1))]))) == [1]


def test_a_timeline_of_another_backend_is_refused(backend):
    others = [b for b in igcore.backends() if b != backend]
    if not others:
        pytest.skip("one backend only")
    mine = Timeline()
    with igcore.use_backend(others[0]):
        theirs = Timeline()
    with pytest.raises(TypeError, match=rf"sources\[1\] is a Timeline of the {others[0]} backend"):
        merge_page([mine, theirs])
    assert posts(merge_page([mine, theirs.to_backend(backend)])) == []


def test_inputs_are_not_modified(backend):
    a = run((3, 1, 1), (2, 2, 1))
    for array in a:
        array.flags.writeable = False
    merge_page([a], limit=1, exclude_authors=np.array([5]))
    assert [x.tolist() for x in a] == [[3, 2], [1, 2], [1, 1]]


# -- the GIL ---------------------------------------------------------------------------------------------


def test_a_large_merge_releases_the_gil(backend):
    if backend == "python":
        pytest.skip("the reference is Python code and holds the GIL by nature")
    rng = np.random.default_rng(2)
    n = 100_000
    big = [
        in_feed_order(rng.integers(0, 10**12, n), rng.integers(0, 2**62, n), np.full(n, a)) for a in range(20)
    ]

    def whole_feed():
        return merge_page(big, limit=10**9)  # 2,000,000 entries merged into one page: long work

    assert_releases_the_gil(whole_feed)


# -- properties: every backend is the reference --------------------------------------------------------------


@given(sources(), st.integers(1, 12), st.one_of(st.none(), st.integers(1, 3)), st.data())
def test_pages_match_the_reference(backend, generated, limit, cap, data):
    made_sources, authors = generated
    excluded = data.draw(st.one_of(st.none(), st.lists(st.sampled_from(authors), max_size=2)))
    options = {"exclude_authors": excluded, "per_author_cap": cap}
    cursor = None
    for _ in range(4):  # a few pages in, following this backend's cursors
        page = outcome(merge_page, [s.make() for s in made_sources], limit, cursor, **options)
        expected = reference(
            lambda at=cursor: merge_page([s.make() for s in made_sources], limit, at, **options)
        )
        assert _plain(page) == _plain(expected)
        if page[0] != "ok" or page[1].next_cursor is None:
            break
        cursor = page[1].next_cursor


@given(sources(), st.data())
def test_pagination_is_exact_from_every_position(backend, generated, data):
    made_sources, _ = generated
    built = [s.make() for s in made_sources]
    whole = merge_page(built, limit=10**9)
    assert len(set(posts(whole))) == len(whole.post_ids)
    keys = list(zip(whole.scores.tolist(), posts(whole)))
    assert keys == sorted(keys, reverse=True)
    # a cursor after each position gives the rest of the feed, whatever the page size
    limit = data.draw(st.integers(1, 5))
    for position in range(len(whole.post_ids)):
        cursor = merge_page(built, limit=position + 1).next_cursor
        rest = posts(whole)[position + 1 :]
        if not rest:
            assert cursor is None
            continue
        assert every_page_from(built, limit, cursor) == rest


def every_page_from(built, limit, cursor) -> list:
    got = []
    while cursor is not None:
        page = merge_page(built, limit, cursor)
        got.extend(posts(page))
        cursor = page.next_cursor
    return got


@given(sources(max_sources=3), st.integers(1, 4), st.integers(1, 2))
def test_with_a_cap_pages_never_repeat_or_reorder_the_feed(backend, generated, limit, cap):
    made_sources, _ = generated
    built = [s.make() for s in made_sources]
    whole = posts(merge_page(built, limit=10**9))
    got = every_page(built, limit, per_author_cap=cap)
    assert len(got) == len(set(got))
    positions = [whole.index(p) for p in got]
    assert positions == sorted(positions)


def _plain(result):
    if result[0] == "ok":
        return ("ok", page_lists(result[1]))
    return result


def test_reference_reads_as_the_docstring_says():
    with igcore.use_backend("python"):
        assert posts(merge_page([run((5, 1, 1)), run((5, 2, 2))])) == [
            2,
            1,
        ]  # equal scores: larger post id first
