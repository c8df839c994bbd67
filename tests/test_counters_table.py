"""Conformance of counters.CounterTable: every backend answers exactly as the reference does."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import igcore
from igcore.counters import CounterTable, Deltas, Totals

from .conftest import outcome, reference

HOT_PATH = "counters"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def plain(drained):
    return {kind: (d.keys.tolist(), d.deltas.tolist()) for kind, d in drained.items() if len(d.keys)}


# -- examples ------------------------------------------------------------------------------------------


def test_add_get_top(backend):
    table = CounterTable()
    assert table.backend == backend
    table.add(np.array([101, 7, 101, 42, 7, 101]), kind="likes")
    table.add([7, 42], [10, -3], kind="views")
    assert table.get([101, 7, 42, 5], "likes").tolist() == [3, 2, 1, 0]
    assert table.get([7, 42, 101], "views").tolist() == [10, -3, 0]
    top = table.top(2, "likes")
    assert isinstance(top, Totals)
    assert (top.keys.tolist(), top.sums.tolist()) == ([101, 7], [3, 2])
    assert top.keys.dtype == np.int64 and top.sums.dtype == np.int64


def test_top_breaks_ties_by_smaller_key_and_leaves_out_zeros(backend):
    table = CounterTable(kinds=("likes",))
    table.add([5, -2, 9, 3, 3, 8, 4], [2, 2, 2, 5, -5, -1, 0])
    assert table.top(10).keys.tolist() == [-2, 5, 9, 8]
    assert table.top(10).sums.tolist() == [2, 2, 2, -1]
    assert table.top(0).keys.tolist() == []
    assert CounterTable().top(3, "likes").keys.tolist() == []


def test_get_repeats_duplicates_in_the_given_order(backend):
    table = CounterTable(kinds=("views",))
    table.add([INT64_MIN, 0, INT64_MAX], [1, 2, 3])
    assert table.get([INT64_MAX, 0, INT64_MAX, INT64_MIN, 17]).tolist() == [3, 2, 3, 1, 0]


def test_drain_returns_what_was_added_since_the_last_drain(backend):
    table = CounterTable()
    table.add([3, 1, 3], kind="likes")
    table.add([9], [4], kind="shares")
    table.add([2, 2], [5, -5], kind="likes")  # nets to zero: nothing to write
    drained = table.drain()
    assert list(drained) == ["likes", "comments", "views", "shares"]
    assert isinstance(drained["likes"], Deltas)
    assert plain(drained) == {"likes": ([1, 3], [1, 2]), "shares": ([9], [4])}
    assert plain(table.drain()) == {}
    table.add([1], kind="likes")
    assert plain(table.drain()) == {"likes": ([1], [1])}
    # Draining leaves the totals alone.
    assert table.get([1, 3], "likes").tolist() == [2, 2]


def test_restore_puts_deltas_back_and_retract_takes_them_out(backend):
    table = CounterTable()
    table.add([5, 6], [1, 2], kind="likes")
    drained = table.drain()
    table.add([6], [10], kind="likes")
    table.restore(drained)
    assert plain(table.drain()) == {"likes": ([5, 6], [1, 12])}
    table.restore(drained)
    table.retract(drained)
    assert plain(table.drain()) == {}
    assert table.get([5, 6], "likes").tolist() == [1, 12]


def test_add_table_adds_totals_and_pending_deltas(backend):
    a, b = CounterTable(), CounterTable()
    a.add([1, 2], [10, 20], kind="likes")
    a.drain()
    b.add([2, 3], [5, 6], kind="likes")
    b.add([3], kind="comments")
    a.add_table(b)
    assert a.get([1, 2, 3], "likes").tolist() == [10, 25, 6]
    assert plain(a.drain()) == {"likes": ([2, 3], [5, 6]), "comments": ([3], [1])}
    assert b.get([3], "likes").tolist() == [6]  # the other table is not changed
    a.add_table(a)  # adding a table to itself doubles it
    assert a.get([1, 2, 3], "likes").tolist() == [20, 50, 12]


def test_the_only_kind_may_go_unnamed(backend):
    table = CounterTable(kinds=("views",))
    table.add([1, 1])
    assert table.get([1]).tolist() == [2]
    assert table.top(1).keys.tolist() == [1]


def test_many_keys(backend):
    keys = np.arange(100_000, dtype=np.int64) * 7919 - 10**12
    table = CounterTable()
    table.add(np.concatenate([keys, keys[::3]]), kind="views")
    expected = np.ones(keys.size, dtype=np.int64)
    expected[::3] = 2
    assert np.array_equal(table.get(keys, "views"), expected)
    assert table.top(3, "views").keys.tolist() == np.sort(keys[::3])[:3].tolist()
    drained = table.drain()["views"]
    assert np.array_equal(drained.keys, np.sort(keys))


# -- overflow: all or nothing --------------------------------------------------------------------------------


def test_an_overflowing_add_raises_and_changes_nothing(backend):
    table = CounterTable()
    table.add([1, 2], [5, INT64_MAX - 1], kind="likes")
    with pytest.raises(OverflowError, match=r"^the likes total for key 2 does not fit in int64$"):
        table.add([1, 3, 2], [1, 1, 2], kind="likes")
    assert table.get([1, 2, 3], "likes").tolist() == [5, INT64_MAX - 1, 0]
    assert table.top(5, "likes").keys.tolist() == [2, 1]
    assert plain(table.drain()) == {"likes": ([1, 2], [5, INT64_MAX - 1])}


def test_only_the_values_after_a_call_must_fit(backend):
    # As in aggregate: the order of a call's events does not matter.
    table = CounterTable(("likes",))
    table.add([7, 7, 7], [INT64_MAX, INT64_MAX, INT64_MIN])
    assert table.get([7]).tolist() == [INT64_MAX - 1]
    table.add([7, 7], [1, -1])
    table.add([8], [INT64_MAX])
    table.add([8, 8], [INT64_MIN, INT64_MIN + 5])  # the call's sum is out of int64, the total is not
    assert table.get([8]).tolist() == [INT64_MIN + 4]
    with pytest.raises(OverflowError, match="likes total for key 8"):
        table.add([8], [-5])
    assert table.get([8]).tolist() == [INT64_MIN + 4]


def test_a_pending_delta_can_overflow_while_the_total_does_not(backend):
    table = CounterTable()
    table.add([4], [INT64_MIN + 1], kind="views")
    table.drain()
    table.add([4], [INT64_MAX], kind="views")
    with pytest.raises(OverflowError, match=r"^the pending views delta for key 4 does not fit in int64$"):
        table.add([4], kind="views")
    assert table.get([4], "views").tolist() == [0]


def test_restore_and_add_table_overflow_changes_nothing(backend):
    table = CounterTable()
    table.add([1], [INT64_MAX], kind="likes")
    drained = table.drain()
    table.add([1], [-5], kind="likes")
    table.restore(drained)
    with pytest.raises(OverflowError, match="pending likes delta for key 1"):
        table.restore({"likes": ([1], [10])})
    other = CounterTable()
    other.add([1], [10], kind="likes")
    table.add_table(CounterTable())
    with pytest.raises(OverflowError, match="the likes total for key 1"):
        table.add_table(other)
    assert table.get([1], "likes").tolist() == [INT64_MAX - 5]
    assert plain(table.drain()) == {"likes": ([1], [INT64_MAX - 5])}


# -- bad input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kinds", "error", "message"),
    [
        ((), ValueError, r"a CounterTable has 1 to 64 kinds, got 0"),
        (("likes", "likes"), ValueError, r"kinds must be distinct"),
        (("likes", 3), TypeError, r"each kind must be a non-empty str, got 3"),
        (("",), TypeError, r"non-empty str"),
        ("likes", TypeError, r"not a single string"),
        (tuple(f"k{i}" for i in range(65)), ValueError, r"1 to 64 kinds, got 65"),
    ],
)
def test_bad_kinds(backend, kinds, error, message):
    with pytest.raises(error, match=message):
        CounterTable(kinds)


def test_bad_calls_raise_clear_errors(backend):
    table = CounterTable()
    with pytest.raises(ValueError, match=r"name the kind: one of likes, comments, views, shares"):
        table.add([1])
    with pytest.raises(ValueError, match=r"unknown kind 'saves'; this table counts likes, comments"):
        table.get([1], "saves")
    with pytest.raises(ValueError, match=r"unknown kind \[1\]"):
        table.top(3, [1])
    with pytest.raises(TypeError, match=r"keys must hold integers \(int64\), got dtype float64"):
        table.add(np.array([1.5]), kind="likes")
    with pytest.raises(ValueError, match=r"keys and deltas differ in length \(2 != 1\)"):
        table.add([1, 2], [1], kind="likes")
    with pytest.raises(OverflowError, match=r"keys holds a value outside the int64 range"):
        table.add([2**63], kind="likes")
    with pytest.raises(ValueError, match=r"k must be at least 0"):
        table.top(-1, "likes")
    with pytest.raises(TypeError, match=r"k must be an int, not float"):
        table.top(2.0, "likes")
    with pytest.raises(TypeError, match=r"k must be an int, not bool"):
        table.top(True, "likes")
    with pytest.raises(TypeError, match=r"expected the dict that drain\(\) returns, not list"):
        table.restore([])
    with pytest.raises(ValueError, match=r"unknown kind 'nope'"):
        table.restore({"nope": ([1], [1])})
    with pytest.raises(TypeError, match=r"add_table takes a CounterTable, not dict"):
        table.add_table({})
    with pytest.raises(ValueError, match=r"cannot add a table of other kinds"):
        table.add_table(CounterTable(("likes",)))
    assert plain(table.drain()) == {}


def test_tables_of_two_backends_never_mix(backend):
    others = [b for b in igcore.backends() if b != backend]
    if not others:
        pytest.skip("only one backend is built")
    table = CounterTable()
    with igcore.use_backend(others[0]):
        other = CounterTable()
    with pytest.raises(
        TypeError, match=f"cannot combine a CounterTable of the {others[0]} backend with one of the {backend}"
    ):
        table.add_table(other)


def test_huge_top_k_is_fine(backend):
    table = CounterTable(("likes",))
    table.add([3, 1, 2])
    assert table.top(INT64_MAX).keys.tolist() == [1, 2, 3]
    with pytest.raises(OverflowError, match=r"k is outside the int64 range: 9223372036854775808"):
        table.top(2**63)


# -- drain under concurrency ---------------------------------------------------------------------------------


def test_drain_while_threads_add_loses_and_doubles_nothing(backend):
    # Four threads add batches while a fifth drains over and over; every increment must come out of
    # exactly one drain, and the totals must count everything.
    table = CounterTable()
    adders, batches = 4, 60 if backend == "python" else 300
    rng = np.random.default_rng(7)
    batch_keys = [rng.integers(0, 500, size=2_000, dtype=np.int64) for _ in range(adders)]
    batch_deltas = [rng.integers(1, 5, size=2_000, dtype=np.int64) for _ in range(adders)]
    done = threading.Barrier(adders + 1)
    drained_sum: dict[int, int] = {}
    drains = [0]  # drains so far, read by the adders
    draining = threading.Event()

    def add(worker):
        draining.wait()
        for batch in range(batches):
            if batch == batches // 2:  # halfway, let a drain fall between this thread's adds
                seen, deadline = drains[0], time.monotonic() + 10
                while drains[0] == seen and time.monotonic() < deadline:
                    time.sleep(0.0001)
            table.add(batch_keys[worker], batch_deltas[worker], kind="views")
        done.wait()

    def collect(drained):
        for key, delta in zip(drained["views"].keys.tolist(), drained["views"].deltas.tolist()):
            drained_sum[key] = drained_sum.get(key, 0) + delta

    threads = [threading.Thread(target=add, args=(w,)) for w in range(adders)]
    for thread in threads:
        thread.start()
    finished = threading.Event()
    threading.Thread(target=lambda: (done.wait(), finished.set())).start()
    while not finished.is_set():
        collect(table.drain())
        drains[0] += 1
        draining.set()
    for thread in threads:
        thread.join()
    collect(table.drain())

    expected: dict[int, int] = {}
    for keys, deltas in zip(batch_keys, batch_deltas):
        for key, delta in zip(keys.tolist(), deltas.tolist()):
            expected[key] = expected.get(key, 0) + delta * batches
    assert drains[0] > 1
    assert drained_sum == expected
    keys = np.array(sorted(expected), dtype=np.int64)
    assert table.get(keys, "views").tolist() == [expected[k] for k in keys.tolist()]


def test_compiled_tables_let_other_threads_run_during_a_long_add(backend):
    if backend == "python":
        pytest.skip("the reference is Python code and holds the GIL by nature")
    keys = np.random.default_rng(0).integers(0, 2**62, size=2_000_000, dtype=np.int64)
    table = CounterTable()
    done = threading.Event()

    def work():
        table.add(keys, kind="views")
        done.set()

    ticks = 0
    worker = threading.Thread(target=work)
    worker.start()
    while not done.is_set():
        ticks += 1  # Python runs here while the add works without the GIL
    worker.join()
    assert ticks > 1000
    assert table.get(keys[:3], "views").tolist() == [1, 1, 1]


# -- properties: every backend is the reference --------------------------------------------------------------

extreme = st.sampled_from([INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX])
key_values = st.one_of(extreme, st.integers(INT64_MIN, INT64_MAX), st.integers(-4, 4))
delta_values = st.one_of(extreme, st.integers(-3, 3), st.integers(INT64_MIN, INT64_MAX))
KINDS = ("likes", "views")


@st.composite
def operations(draw):
    """A short script of table operations over a small pool of keys, with deltas near the edges."""
    pool = draw(st.lists(key_values, min_size=1, max_size=6))
    keys = st.lists(st.sampled_from(pool), max_size=12)
    kind = st.sampled_from(KINDS)
    script = []
    for _ in range(draw(st.integers(1, 8))):
        op = draw(st.sampled_from(["add", "add", "add_ones", "get", "top", "drain", "restore", "add_table"]))
        if op in ("add", "restore"):
            ks = draw(keys)
            ds = draw(st.lists(delta_values, min_size=len(ks), max_size=len(ks)))
            script.append((op, draw(kind), ks, ds, draw(st.booleans())))
        elif op in ("add_ones", "get"):
            script.append((op, draw(kind), draw(keys)))
        elif op == "top":
            script.append((op, draw(kind), draw(st.integers(0, 8))))
        elif op == "add_table":
            ks = draw(keys)
            script.append(
                (op, draw(kind), ks, draw(st.lists(delta_values, min_size=len(ks), max_size=len(ks))))
            )
        else:
            script.append((op,))
    return script


def run_script(script):
    """Runs `script` on a new table; the outcome of every step, and the final state."""
    table = CounterTable(KINDS)
    steps = []
    for op, *args in script:
        if op == "add":
            kind, ks, ds, _ = args
            steps.append(outcome(table.add, ks, ds, kind))
        elif op == "add_ones":
            kind, ks = args
            steps.append(outcome(table.add, ks, None, kind))
        elif op == "get":
            kind, ks = args
            steps.append(outcome(lambda ks=ks, kind=kind: table.get(ks, kind).tolist()))
        elif op == "top":
            kind, k = args
            steps.append(outcome(lambda k=k, kind=kind: [a.tolist() for a in table.top(k, kind)]))
        elif op == "drain":
            steps.append(outcome(lambda: plain(table.drain())))
        elif op == "restore":
            kind, ks, ds, retract = args
            steps.append(outcome(table.retract if retract else table.restore, {kind: (ks, ds)}))
        elif op == "add_table":
            kind, ks, ds = args
            # The other table gets totals from the first half and pending deltas from all (either may
            # overflow and then add nothing, the same on every backend).
            other = CounterTable(KINDS)
            steps.append(outcome(other.add, ks[: len(ks) // 2], ds[: len(ks) // 2], kind))
            steps.append(outcome(other.restore, {kind: (ks, ds)}))
            steps.append(outcome(table.add_table, other))
    final = [[a.tolist() for a in table.top(100, kind)] for kind in KINDS]
    return steps, final, plain(table.drain())


@given(operations())
def test_scripts_of_operations_match_the_reference(backend, script):
    assert run_script(script) == reference(run_script, script)[1]
