"""One rule for integer arguments in every hot path (``igcore._arrays``): the same bad value raises the
same exception, with the same words, whether it is a timeline's limit, the graph's or a counter's."""

from __future__ import annotations

import numpy as np
import pytest

from igcore import codec
from igcore.counters import CounterTable, WindowedCounter, aggregate
from igcore.graph import FollowGraph
from igcore.timeline import Timeline, TimelineStore, merge_page

HOT_PATH = ("timeline", "graph", "counters", "codec")


def limits():
    """Every public `limit`-like argument, as a function of the value."""
    graph = FollowGraph.from_edges([1, 1, 2], [2, 3, 3])
    table = CounterTable(("likes",))
    table.add([1, 2])
    window = WindowedCounter(60, 10)
    timeline = Timeline()
    timeline.insert(1, 1, 1)
    store = TimelineStore()
    return {
        "timeline.merge_page limit": lambda n: merge_page([timeline], limit=n),
        "TimelineStore.merge_page limit": lambda n: store.merge_page([1], limit=n),
        "FollowGraph.following limit": lambda n: graph.following(1, limit=n),
        "FollowGraph.suggest limit": lambda n: graph.suggest(1, limit=n),
        "FollowGraph.followed_by limit": lambda n: graph.followed_by(1, 3, limit=n),
        "CounterTable.top k": lambda n: table.top(n, "likes"),
        "WindowedCounter.top k": lambda n: window.top(n, now=0),
    }


@pytest.mark.parametrize("where", list(limits()))
def test_a_limit_beyond_int64_is_an_overflow_error_everywhere(backend, where):
    call = limits()[where]
    call(2**63 - 1)  # the largest int64 takes all there is
    with pytest.raises(OverflowError, match=r" is outside the int64 range: 9223372036854775808$"):
        call(2**63)
    with pytest.raises(TypeError, match=r" must be an int, not float$"):
        call(2.0)
    with pytest.raises(TypeError, match=r" must be an int, not bool$"):
        call(True)
    with pytest.raises(ValueError, match=r" must be at least [01], got -1$"):
        call(-1)


@pytest.mark.parametrize("where", list(limits()))
def test_numpy_integers_are_ints(backend, where):
    limits()[where](np.int64(5))
    limits()[where](np.uint8(5))


def at_an_odd_offset(values: list[int] | list[float], dtype: type = np.int64) -> np.ndarray:
    """A C-contiguous native array whose elements are not aligned (a view one byte into a buffer)."""
    buffer = bytearray(8 * len(values) + 1)
    array = np.frombuffer(buffer, dtype=dtype, count=len(values), offset=1)
    array[:] = values
    assert not array.flags.aligned and array.flags.c_contiguous
    return array


def test_arrays_whose_elements_are_not_aligned_are_read_as_any_other(backend):
    scores, posts, authors = (
        at_an_odd_offset([30, 20, 10]),
        at_an_odd_offset([3, 2, 1]),
        at_an_odd_offset([7, 8, 7]),
    )
    page = merge_page([(scores, posts, authors)], limit=5)
    assert page.post_ids.tolist() == [3, 2, 1] and page.author_ids.tolist() == [7, 8, 7]
    float_page = merge_page([(at_an_odd_offset([2.5, 1.5], np.float64), posts[:2], authors[:2])], limit=5)
    assert float_page.scores.tolist() == [2.5, 1.5]
    timeline = Timeline()
    timeline.insert_many(scores, posts, authors)
    assert len(timeline) == 3
    assert codec.decode_ids(codec.encode_ids(posts)).tolist() == [3, 2, 1]
    totals = aggregate(authors)
    assert dict(zip(totals.keys.tolist(), totals.sums.tolist())) == {7: 2, 8: 1}
    graph = FollowGraph.from_edges(at_an_odd_offset([1, 1, 2]), at_an_odd_offset([2, 3, 3]))
    assert graph.following(1).tolist() == [2, 3]
