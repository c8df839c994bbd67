"""Conformance of counters.aggregate: every backend answers exactly as the reference does."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import igcore
from igcore.counters import Totals, aggregate

from .conftest import assert_releases_the_gil, outcome, reference

HOT_PATH = "counters"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def as_lists(totals):
    return totals.keys.tolist(), totals.sums.tolist()


# -- examples ------------------------------------------------------------------------------------------


def test_counts_in_order_of_first_appearance(backend):
    totals = aggregate(np.array([30, 10, 30, 20, 10, 30]))
    assert isinstance(totals, Totals)
    assert as_lists(totals) == ([30, 10, 20], [3, 2, 1])
    assert totals.keys.dtype == np.int64 and totals.sums.dtype == np.int64


def test_orders_keys_as_counter_does(backend):
    keys = [5, -3, 5, 0, 2**62, -3, 7]
    counted = Counter(keys)
    assert as_lists(aggregate(keys)) == (list(counted), list(counted.values()))


def test_sums_deltas_including_negative_and_zero(backend):
    totals = aggregate([7, -7, 7, 8], [5, -2, -6, 0])
    assert as_lists(totals) == ([7, -7, 8], [-1, -2, 0])


def test_empty_input(backend):
    for totals in (aggregate([]), aggregate(np.array([], dtype=np.int64), [])):
        assert as_lists(totals) == ([], [])
        assert totals.keys.dtype == np.int64


def test_extreme_ids_are_ordinary_keys(backend):
    keys = [INT64_MAX, INT64_MIN, 0, INT64_MIN, -1]
    assert as_lists(aggregate(keys)) == ([INT64_MAX, INT64_MIN, 0, -1], [1, 2, 1, 1])
    assert as_lists(aggregate(keys, [1, INT64_MAX, 2, INT64_MIN, 3])) == (
        [INT64_MAX, INT64_MIN, 0, -1],
        [1, -1, 2, 3],
    )


def test_many_keys_grow_the_table(backend):
    keys = np.arange(200_000, dtype=np.int64) * 7919 - 10**12
    totals = aggregate(np.concatenate([keys, keys[::-1]]))
    assert np.array_equal(totals.keys, keys)
    assert np.all(totals.sums == 2)


def test_a_large_zipf_stream_matches_the_reference(backend):
    rng = np.random.default_rng(3)
    ids = rng.integers(INT64_MIN, INT64_MAX, size=50_000, dtype=np.int64)
    keys = ids[np.minimum(rng.zipf(1.3, size=600_000), 50_000) - 1]  # large enough for parallel work
    deltas = rng.integers(-(10**12), 10**12, size=keys.size, dtype=np.int64)
    expected_keys, expected_sums = reference(aggregate, keys, deltas)[1]
    totals = aggregate(keys, deltas)
    assert np.array_equal(totals.keys, expected_keys)
    assert np.array_equal(totals.sums, expected_sums)


# -- overflow --------------------------------------------------------------------------------------------


def test_a_total_beyond_int64_raises_overflow_naming_the_key(backend):
    with pytest.raises(OverflowError, match=r"^the total for key 9 does not fit in int64$"):
        aggregate([1, 9, 9], [1, INT64_MAX, 1])
    with pytest.raises(OverflowError, match=r"key -4 does not fit"):
        aggregate([-4, -4], [INT64_MIN, -1])


def test_running_sums_may_leave_int64_if_the_total_comes_back(backend):
    assert as_lists(aggregate([1, 1, 1], [INT64_MAX, 1, -1])) == ([1], [INT64_MAX])
    assert as_lists(aggregate([2, 2, 2], [INT64_MIN, -5, 5])) == ([2], [INT64_MIN])


def test_the_first_overflowing_key_in_output_order_is_named(backend):
    with pytest.raises(OverflowError, match=r"key 5 does not fit"):
        aggregate([5, 6, 6, 5], [INT64_MAX, INT64_MAX, 1, 1])


def test_overflow_far_into_a_large_input_is_caught(backend):
    keys = np.tile(np.arange(1000, dtype=np.int64), 400)  # 400,000 events: the parallel path
    deltas = np.ones(keys.size, dtype=np.int64)
    deltas[-1] = INT64_MAX
    with pytest.raises(OverflowError, match=r"key 999 does not fit"):
        aggregate(keys, deltas)


# -- bad input: a clear exception at the door, the same on every backend ----------------------------------


@pytest.mark.parametrize(
    ("keys", "deltas", "error", "message"),
    [
        ([1, 2], [1], ValueError, r"keys and deltas differ in length \(2 != 1\)"),
        (np.zeros((2, 2), np.int64), None, ValueError, r"keys must be 1-D, got an array of shape \(2, 2\)"),
        (np.array([1.0, 2.0]), None, TypeError, r"keys must hold integers \(int64\), got dtype float64"),
        ([1.5, 2], None, TypeError, r"keys must hold integers"),
        (np.array([True]), None, TypeError, r"got dtype bool"),
        (["a", "b"], None, TypeError, r"keys must hold integers"),
        (7, None, TypeError, r"keys must be a 1-D array or sequence of ints, not int"),
        ("12", None, TypeError, r"not str"),
        (None, None, TypeError, r"not NoneType"),
        ([1, 2**63], None, OverflowError, r"keys holds a value outside the int64 range: 9223372036854775808"),
        ([1, -(2**63) - 1], None, OverflowError, r"keys holds a value outside the int64 range"),
        ([1, 2**70], None, OverflowError, r"outside the int64 range"),
        (
            np.array([2**64 - 1], dtype=np.uint64),
            None,
            OverflowError,
            r"outside the int64 range: 18446744073709551615",
        ),
        ([1], np.array([0.5]), TypeError, r"deltas must hold integers"),
        ([1], [[1]], ValueError, r"deltas must be 1-D"),
    ],
)
def test_bad_input_raises_a_clear_error(backend, keys, deltas, error, message):
    with pytest.raises(error, match=message):
        aggregate(keys, deltas)


def test_other_integer_dtypes_and_layouts_are_converted(backend):
    base = np.array([3, 1, 3, 2], dtype=np.int64)
    expected = ([3, 1, 2], [2, 1, 1])
    for variant in (
        base.astype(np.int32),
        base.astype(np.uint16),
        base.astype(">i8"),  # big-endian
        np.repeat(base, 2)[::2],  # a strided view
        np.array(base, dtype=np.uint64),
    ):
        assert as_lists(aggregate(variant)) == expected


def test_inputs_are_not_modified(backend):
    keys = np.array([1, 2, 1], dtype=np.int64)
    deltas = np.array([4, 5, 6], dtype=np.int64)
    keys.flags.writeable = False  # a read-only array is accepted, too
    aggregate(keys, deltas)
    assert keys.tolist() == [1, 2, 1] and deltas.tolist() == [4, 5, 6]


def test_results_own_their_memory(backend):
    totals = aggregate(np.array([1, 2, 1]))
    totals.keys[0] = 99  # writable, independent arrays
    assert totals.keys.flags.writeable and totals.keys.flags.c_contiguous


# -- the GIL ---------------------------------------------------------------------------------------------


def test_compiled_backends_release_the_gil(backend):
    if backend == "python":
        pytest.skip("the reference is Python code and holds the GIL by nature")
    keys = np.random.default_rng(0).integers(0, 2**62, size=4_000_000, dtype=np.int64)
    assert_releases_the_gil(lambda: aggregate(keys))


# -- properties: every backend is the reference -------------------------------------------------------------

extreme = st.sampled_from([INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX])
any_int64 = st.integers(INT64_MIN, INT64_MAX)
key_values = st.one_of(extreme, any_int64, st.integers(-5, 5))


@st.composite
def events(draw):
    """Keys with many duplicates (drawn from a small pool) and deltas near the int64 edges."""
    pool = draw(st.lists(key_values, min_size=1, max_size=8))
    keys = draw(st.lists(st.sampled_from(pool), max_size=60))
    deltas = draw(
        st.one_of(
            st.none(),
            st.lists(
                st.one_of(extreme, any_int64, st.integers(-3, 3)), min_size=len(keys), max_size=len(keys)
            ),
        )
    )
    return keys, deltas


@given(events())
def test_matches_the_reference_on_generated_events(backend, case):
    keys, deltas = case
    assert _plain(outcome(aggregate, keys, deltas)) == _plain(reference(aggregate, keys, deltas))


@given(st.lists(any_int64, max_size=200))
def test_counts_match_the_reference_on_distinct_heavy_input(backend, keys):
    assert _plain(outcome(aggregate, np.array(keys, dtype=np.int64))) == _plain(reference(aggregate, keys))


def _plain(result):
    """Results made comparable with ==: arrays become lists."""
    if result[0] == "ok":
        return ("ok", as_lists(result[1]))
    return result


def test_reference_is_what_the_docstring_says():
    # The reference, read as a spec: dict order, sums, and the overflow rule on the final total.
    with igcore.use_backend("python"):
        assert as_lists(aggregate([2, 1, 2], [1, 1, INT64_MAX - 1])) == ([2, 1], [INT64_MAX, 1])
        with pytest.raises(OverflowError):
            aggregate([2, 2], [INT64_MAX, 1])
