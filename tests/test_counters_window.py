"""Conformance of counters.WindowedCounter: every backend answers exactly as the reference does."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import igcore
from igcore.counters import Dropped, Totals, WindowedCounter

from .conftest import outcome, reference

HOT_PATH = "counters"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
HOUR = 3600


# -- examples ------------------------------------------------------------------------------------------


def test_trending_in_the_last_hour(backend):
    counter = WindowedCounter(bucket_seconds=60, buckets=60)
    assert counter.backend == backend
    now = 1_700_000_000
    dropped = counter.add([1, 2, 1, 3], [now - 10, now - 3000, now - 100, now - 7200], now=now)
    assert dropped == Dropped(too_old=1, in_future=0)
    assert counter.sum([1, 2, 3, 4], now, HOUR).tolist() == [2, 1, 0, 0]
    assert counter.sum([1, 2], now, 300).tolist() == [2, 0]  # the last five minutes
    top = counter.top(10, now, HOUR)
    assert isinstance(top, Totals)
    assert (top.keys.tolist(), top.sums.tolist()) == ([1, 2], [2, 1])


def test_buckets_are_whole_and_floor_negative_times(backend):
    counter = WindowedCounter(bucket_seconds=10, buckets=3)
    # now = -1 is in bucket -1 (times -10..-1): the ring is buckets -3..-1, times -30..-1.
    dropped = counter.add([1, 2, 3, 4, 5], [-1, -10, -30, -31, 0], now=-1)
    assert dropped == (1, 1)
    assert counter.sum([1, 2, 3, 4, 5], -1, 30).tolist() == [1, 1, 1, 0, 0]
    assert counter.sum([1, 2, 3], -1, 10).tolist() == [1, 1, 0]
    assert counter.dropped == (1, 1)


def test_the_ring_moves_with_now_and_forgets(backend):
    counter = WindowedCounter(bucket_seconds=60, buckets=3)
    counter.add([7, 7, 8], [0, 60, 120], [1, 10, 100], now=120)
    assert counter.sum([7, 8], 120).tolist() == [11, 100]
    counter.add([], [], now=240)  # two buckets on: buckets 0 and 1 leave the ring
    assert counter.sum([7, 8], 240).tolist() == [0, 100]
    # Reading at an earlier time does not bring forgotten buckets back, nor move the ring.
    assert counter.sum([7, 8], 60, 120).tolist() == [0, 0]
    assert counter.sum([7, 8], 120, 60).tolist() == [0, 100]
    # An earlier `now` does not move the ring back: an event in bucket 0 stays too old.
    assert counter.add([7], [0], now=0) == (1, 0)
    assert counter.add([7], [300], now=200) == (0, 1)
    assert counter.dropped == (1, 1)


def test_future_events_are_dropped_and_reported(backend):
    counter = WindowedCounter(bucket_seconds=60, buckets=5)
    now = 1_000_000
    dropped = counter.add([1, 2, 3], [now, now + 59 - now % 60, now + 3600], now=now)
    assert dropped == (0, 1)  # the end of now's bucket is still "now"
    assert counter.sum([1, 2, 3], now, 60).tolist() == [1, 1, 0]


def test_add_defaults_to_the_clock(backend):
    counter = WindowedCounter(bucket_seconds=60, buckets=10)
    now = int(time.time())
    assert counter.add([5, 5], [now - 30, now - 30]) == (0, 0)
    assert counter.sum([5]).tolist() == [2]
    assert counter.top(1).keys.tolist() == [5]


def test_top_orders_by_total_then_smaller_key_and_leaves_out_zeros(backend):
    counter = WindowedCounter(bucket_seconds=1, buckets=10)
    counter.add([5, -2, 9, 3, 3, 8], [1, 2, 3, 4, 5, 6], [2, 2, 2, 5, -5, -1], now=9)
    top = counter.top(10, 9, 10)
    assert (top.keys.tolist(), top.sums.tolist()) == ([-2, 5, 9, 8], [2, 2, 2, -1])
    assert counter.top(2, 9, 10).keys.tolist() == [-2, 5]
    assert counter.top(0, 9).keys.tolist() == []


def test_extreme_times_and_keys(backend):
    counter = WindowedCounter(bucket_seconds=7, buckets=4)
    dropped = counter.add([INT64_MIN, INT64_MAX], [INT64_MIN, INT64_MIN + 6], now=INT64_MIN + 6)
    assert dropped == (0, 0)
    assert counter.sum([INT64_MIN, INT64_MAX], INT64_MIN + 6, 7).tolist() == [0, 1]
    assert counter.sum([INT64_MIN, INT64_MAX], INT64_MIN + 6, 14).tolist() == [1, 1]
    counter = WindowedCounter(bucket_seconds=1, buckets=2)
    assert counter.add([1, 1, 1], [INT64_MAX, INT64_MIN, -1], now=INT64_MAX) == (2, 0)
    assert counter.sum([1], INT64_MAX).tolist() == [1]


def test_overflow_is_all_or_nothing_and_window_sums_do_not_depend_on_order(backend):
    counter = WindowedCounter(bucket_seconds=10, buckets=3)
    counter.add([1, 1], [0, 10], [INT64_MAX, INT64_MAX], now=20)
    with pytest.raises(OverflowError, match=r"^the count for key 1 at time 0 does not fit in int64$"):
        counter.add([2, 1], [0, 0], [5, 1], now=20)
    assert counter.sum([2], 20).tolist() == [0]
    with pytest.raises(OverflowError, match=r"^the window total for key 1 does not fit in int64$"):
        counter.sum([2, 1], 20)
    with pytest.raises(OverflowError, match=r"window total for key 1"):
        counter.top(3, 20)
    counter.add([1, 1], [0, 0], [1, -1], now=20)  # only the count after the call must fit
    counter.add([1], [20], [INT64_MIN], now=20)  # MAX + MAX + MIN fits
    assert counter.sum([1], 20).tolist() == [INT64_MAX - 1]
    assert counter.top(3, 20, 20).sums.tolist() == [-1]


def test_many_keys(backend):
    counter = WindowedCounter(bucket_seconds=60, buckets=60)
    rng = np.random.default_rng(5)
    keys = rng.integers(0, 50_000, size=200_000, dtype=np.int64)
    times = rng.integers(0, 2 * HOUR, size=keys.size, dtype=np.int64)
    now = 2 * HOUR - 1
    dropped = counter.add(keys, times, now=now)
    recent = times >= HOUR
    assert dropped == (int((~recent).sum()), 0)
    unique, counts = np.unique(keys[recent], return_counts=True)
    assert np.array_equal(counter.sum(unique, now), counts)
    order = np.lexsort((unique, -counts))[:20]
    top = counter.top(20, now)
    assert top.keys.tolist() == unique[order].tolist()
    assert top.sums.tolist() == counts[order].tolist()


# -- bad input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        ((0, 60), ValueError, r"bucket_seconds must be at least 1, got 0"),
        ((60, 0), ValueError, r"buckets must be at least 1, got 0"),
        ((60, 2**21), ValueError, r"buckets must be at most 1048576, got 2097152"),
        ((2**63, 60), OverflowError, r"bucket_seconds is outside the int64 range"),
        ((60.0, 60), TypeError, r"bucket_seconds must be an int, not float"),
        ((2**62, 4), ValueError, r"bucket_seconds \* buckets must fit in int64"),
    ],
)
def test_bad_construction(backend, args, error, message):
    with pytest.raises(error, match=message):
        WindowedCounter(*args)


def test_bad_calls_raise_clear_errors(backend):
    counter = WindowedCounter(bucket_seconds=60, buckets=60)
    with pytest.raises(ValueError, match=r"keys and timestamps differ in length \(2 != 1\)"):
        counter.add([1, 2], [5], now=10)
    with pytest.raises(TypeError, match=r"timestamps must hold integers \(int64\), got dtype float64"):
        counter.add([1], np.array([1.5]), now=10)
    with pytest.raises(TypeError, match=r"timestamps must be a 1-D array or sequence of ints, not None"):
        counter.add([1], None, now=10)
    with pytest.raises(ValueError, match=r"keys and deltas differ in length"):
        counter.add([1], [5], [1, 2], now=10)
    with pytest.raises(TypeError, match=r"now must be an int, not float"):
        counter.add([1], [5], now=10.5)
    with pytest.raises(
        ValueError, match=r"window_seconds must be a multiple of bucket_seconds \(60\), got 90"
    ):
        counter.sum([1], 10, 90)
    with pytest.raises(ValueError, match=r"window_seconds must be at most 3600, got 7200"):
        counter.top(3, 10, 7200)
    with pytest.raises(ValueError, match=r"window_seconds must be at least 1, got 0"):
        counter.sum([1], 10, 0)
    with pytest.raises(ValueError, match=r"k must be at least 0, got -3"):
        counter.top(-3, 10)
    with pytest.raises(OverflowError, match=r"now is outside the int64 range"):
        counter.sum([1], 2**63)
    assert counter.dropped == (0, 0)


# -- threads ------------------------------------------------------------------------------------------------


def test_threads_adding_at_once_lose_nothing(backend):
    counter = WindowedCounter(bucket_seconds=10, buckets=100)
    keys = np.arange(1000, dtype=np.int64) % 37
    times = np.arange(1000, dtype=np.int64)
    rounds = 20 if backend == "python" else 200

    def work():
        for _ in range(rounds):
            counter.add(keys, times, now=999)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    expected = np.bincount(keys, minlength=37) * rounds * 3
    assert counter.sum(np.arange(37), 999).tolist() == expected.tolist()


# -- properties: every backend is the reference --------------------------------------------------------------

extreme = st.sampled_from([INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX])


@st.composite
def scripts(draw):
    bucket_seconds = draw(st.sampled_from([1, 3, 10, 60]))
    buckets = draw(st.integers(1, 6))
    base = draw(st.one_of(st.integers(-1000, 1000), st.sampled_from([INT64_MIN, INT64_MAX - 100])))
    near = st.integers(max(INT64_MIN, base - 100), min(INT64_MAX, base + 100))
    times = st.one_of(near, extreme)
    pool = draw(st.lists(st.one_of(extreme, st.integers(-3, 3)), min_size=1, max_size=5))
    deltas = st.one_of(st.integers(-3, 3), extreme)
    script = []
    for _ in range(draw(st.integers(1, 6))):
        n = draw(st.integers(0, 10))
        keys = draw(st.lists(st.sampled_from(pool), min_size=n, max_size=n))
        script.append(
            (
                "add",
                keys,
                draw(st.lists(times, min_size=n, max_size=n)),
                draw(st.one_of(st.none(), st.lists(deltas, min_size=n, max_size=n))),
                draw(times),
            )
        )
        window = bucket_seconds * draw(st.integers(1, buckets))
        script.append(("sum", pool, draw(times), window))
        script.append(("top", draw(st.integers(0, 6)), draw(times), window))
    return bucket_seconds, buckets, script


def run_script(bucket_seconds, buckets, script):
    counter = WindowedCounter(bucket_seconds, buckets)
    steps = []
    for op, *args in script:
        if op == "add":
            steps.append(outcome(counter.add, *args))
        elif op == "sum":
            steps.append(outcome(lambda args=args: counter.sum(*args).tolist()))
        else:
            steps.append(outcome(lambda args=args: [a.tolist() for a in counter.top(*args)]))
    return steps, counter.dropped


@given(scripts())
def test_scripts_match_the_reference(backend, case):
    assert run_script(*case) == reference(run_script, *case)[1]


def test_counters_of_two_backends_are_separate_objects(backend):
    counter = WindowedCounter()
    with igcore.use_backend("python"):
        assert WindowedCounter().backend == "python"
    assert counter.backend == backend
