"""CounterTable, WindowedCounter and HyperLogLog used from several threads at once, on every backend.

The answers are checked, not only that nothing crashes: every increment comes out of exactly one drain,
a call is seen whole or not at all by the others, windowed totals equal the reference fed the events
that were counted, and sketch registers equal a sequential build of the same elements. Two objects
merging into each other from two threads must not deadlock.
"""

from __future__ import annotations

import threading
import time

import numpy as np

import igcore
from igcore.counters import CounterTable, HyperLogLog, WindowedCounter

from .threads import run_threads

HOT_PATH = "counters"


def wait_for_more(events: list, done: threading.Event, patience: float = 0.5) -> None:
    """Paces a thread: waits (at most `patience` seconds, and not once `done` is set) until another
    thread adds to `events`."""
    seen, deadline = len(events), time.monotonic() + patience
    while len(events) == seen and not done.is_set() and time.monotonic() < deadline:
        time.sleep(0.0001)


def scale(backend, compiled, python):
    return python if backend == "python" else compiled


# -- CounterTable --------------------------------------------------------------------------------------------


def test_table_from_threads_adding_draining_restoring_merging_and_reading(backend):
    kinds = ("likes", "views")
    table = CounterTable(kinds)
    universe = np.arange(-250, 250, dtype=np.int64)
    adders, rounds = 3, scale(backend, 500, 100)
    # Each adder also adds one delta to two keys of its own in one call: whoever reads the table sees
    # both or neither, so the two are always equal.
    pairs = [np.array([10_000 + a, 20_000 + a]) for a in range(adders)]
    rng = np.random.default_rng(1)
    calls = [  # per adder, its calls (kind, keys, deltas), made before the threads start
        [
            call
            for keys in rng.choice(universe, size=(rounds, 100))
            for call in (
                ("likes", keys, rng.integers(1, 20, size=100)),
                ("views", keys[:20], np.ones(20, dtype=np.int64)),
                ("views", pairs[a], np.full(2, rng.integers(1, 9))),
            )
        ]
        for a in range(adders)
    ]
    others = []  # tables counted elsewhere, merged in: their totals and pending deltas both count
    for _ in range(rounds // 4):
        other = CounterTable(kinds)
        other.add(rng.choice(universe, size=50), rng.integers(1, 5, size=50), kind="likes")
        others.append(other)
    expected = {kind: {} for kind in kinds}
    for kind, keys, deltas in [c for adder_calls in calls for c in adder_calls]:
        for key, delta in zip(keys.tolist(), deltas.tolist()):
            expected[kind][key] = expected[kind].get(key, 0) + delta
    for other in others:
        merged = other.drain()["likes"]
        other.restore({"likes": merged})
        for key, delta in zip(merged.keys.tolist(), merged.deltas.tolist()):
            expected["likes"][key] = expected["likes"].get(key, 0) + delta

    drains = []

    def adder(number):
        def run(done):
            for i, (kind, keys, deltas) in enumerate(calls[number]):
                table.add(keys, deltas, kind=kind)
                if i % 10 == 0:
                    wait_for_more(drains, done)  # so that drains fall between the adds

        return run

    def merger(done):
        for other in others:
            table.add_table(other)

    drained = {kind: {} for kind in kinds}

    def drainer(done):
        while not done.is_set():
            taken = table.drain()
            views = dict(zip(taken["views"].keys.tolist(), taken["views"].deltas.tolist()))
            for first, second in pairs:
                assert views.get(first) == views.get(second)
            drains.append(any(len(d.keys) for d in taken.values()))
            if len(drains) % 3 == 0:
                table.restore(taken)  # as a failed flush does: the next drain takes it again
                continue
            for kind, d in taken.items():
                into = drained[kind]
                for key, delta in zip(d.keys.tolist(), d.deltas.tolist()):
                    into[key] = into.get(key, 0) + delta

    seen = []

    def reader(done):
        previous = np.zeros(len(universe), dtype=np.int64)
        while not done.is_set():
            now = table.get(universe, "likes")
            assert (now >= previous).all()  # deltas are positive: totals never go down
            previous = now
            for pair in pairs:
                a, b = table.get(pair, "views").tolist()
                assert a == b
            top = table.top(25, "likes")
            ranked = list(zip((-top.sums).tolist(), top.keys.tolist()))
            assert ranked == sorted(ranked) and (top.sums > 0).all()
            seen.append(now)

    def mirror(done):
        # Adding the shared table to a new one reads it whole: the pairs are equal there too.
        while not done.is_set():
            copy = CounterTable(kinds)
            copy.add_table(table)
            for pair in pairs:
                a, b = copy.get(pair, "views").tolist()
                assert a == b

    run_threads([adder(a) for a in range(adders)] + [merger], [drainer, reader, mirror])
    for kind, d in table.drain().items():
        for key, delta in zip(d.keys.tolist(), d.deltas.tolist()):
            drained[kind][key] = drained[kind].get(key, 0) + delta
    for kind in kinds:
        assert drained[kind] == expected[kind], kind  # every increment in exactly one drain
        keys = sorted(expected[kind])
        assert table.get(keys, kind).tolist() == [expected[kind][k] for k in keys], kind
    final = table.get(universe, "likes")
    assert all((snapshot <= final).all() for snapshot in seen)
    ranked = sorted((-total, key) for key, total in expected["likes"].items())[:25]
    top = table.top(25, "likes")
    assert list(zip(top.keys.tolist(), top.sums.tolist())) == [(key, -total) for total, key in ranked]


def combine_both_ways(first, second, rounds: int, method: str) -> None:
    """`first.<method>(second)` and `second.<method>(first)`, `rounds` times each, on two threads at
    once (``add_table`` for counter tables, ``merge`` for sketches)."""

    def merging(into, other):
        def run(done):
            for _ in range(rounds):
                getattr(into, method)(other)

        return run

    run_threads([merging(first, second), merging(second, first)])


def test_two_tables_adding_to_each_other_from_two_threads(backend):
    first, second = CounterTable(kinds=("likes",)), CounterTable(kinds=("likes",))
    first.add([1, 2], [1, 2])
    second.add([2, 3], [5, 7])
    rounds = scale(backend, 40, 20)  # at most Fibonacci growth: far below int64

    combine_both_ways(first, second, rounds, "add_table")
    # Each add_table adds the other's totals and its pending deltas alike: both stay equal, key for key.
    for table in (first, second):
        drained = table.drain()["likes"]
        assert table.get(drained.keys).tolist() == drained.deltas.tolist()
        assert drained.keys.tolist() == [1, 2, 3]


# -- WindowedCounter -----------------------------------------------------------------------------------------


def test_windowed_counter_from_threads_matches_the_reference(backend):
    bucket_seconds, buckets = 10, 30
    counter = WindowedCounter(bucket_seconds, buckets)
    universe = np.arange(0, 300, dtype=np.int64)
    clock = [1_000]  # a clock moved forward by one thread while the others add and read it
    steps, adders, rounds = 100, 3, scale(backend, 300, 60)
    counted, dropped = [], []  # per call: what was counted (all or nothing: one bucket per call)
    lock = threading.Lock()

    reads = []

    def ticker(done):
        for _ in range(steps):
            if done.is_set():
                break
            clock[0] += 7
            counter.add([], [], now=clock[0])
            wait_for_more(counted, done)  # so that the ring moves while the adders add

    def adder(number):
        def run(done):
            rng = np.random.default_rng(number)
            for i in range(rounds):
                now = clock[0]
                t = now - int(rng.integers(0, 400))  # in the ring, or older than it
                keys = rng.choice(universe, size=40)
                deltas = rng.integers(1, 6, size=40)
                result = counter.add(keys, np.full(40, t), deltas, now=now)
                assert result in ((0, 0), (40, 0)), result  # one bucket: all counted or all too old
                with lock:
                    (dropped if result.too_old else counted).append((t, keys, deltas))
                if i % 5 == 0:
                    wait_for_more(reads, done)

        return run

    def reader(done):
        while not done.is_set():
            now = clock[0]
            top = counter.top(10, now=now, window_seconds=60)
            ranked = list(zip((-top.sums).tolist(), top.keys.tolist()))
            assert ranked == sorted(ranked) and (top.sums > 0).all()
            assert (counter.sum(universe[::10], now=now) >= 0).all()
            reads.append(now)

    run_threads([adder(a) for a in range(adders)], [ticker, reader])
    assert counted and dropped and reads
    assert counter.dropped == (40 * len(dropped), 0)
    final = max(clock[0], *(t for t, _, _ in counted))
    with igcore.use_backend("python"):
        expected = WindowedCounter(bucket_seconds, buckets)
    expected.add([], [], now=final)
    for t, keys, deltas in counted:
        expected.add(keys, np.full(len(keys), t), deltas, now=final)
    for window in (None, 10, 60, 300):
        assert counter.sum(universe, now=final, window_seconds=window).tolist() == (
            expected.sum(universe, now=final, window_seconds=window).tolist()
        ), window
        mine, theirs = counter.top(20, now=final, window_seconds=window), expected.top(20, final, window)
        assert (mine.keys.tolist(), mine.sums.tolist()) == (theirs.keys.tolist(), theirs.sums.tolist())


# -- HyperLogLog ---------------------------------------------------------------------------------------------


def hll_elements(seed, size):
    """Ints, strs and bytes, overlapping between seeds."""
    rng = np.random.default_rng(seed)
    ints = rng.integers(0, 3 * size, size=size, dtype=np.int64)
    return [ints, [f"user-{i}" for i in ints[: size // 4].tolist()], [b"b%d" % i for i in ints[-size // 4 :]]]


def test_hyperloglog_from_threads_equals_a_sequential_build(backend):
    sketch = HyperLogLog()
    size = scale(backend, 20_000, 3_000)
    batches = {seed: hll_elements(seed, size) for seed in range(4)}
    merged_in = {seed: hll_elements(seed, size // 2) for seed in range(10, 12)}

    def adder(seed):
        def run(done):
            for batch in batches[seed]:
                for start in range(0, len(batch), 500):
                    sketch.add(batch[start : start + 500])
                    wait_for_more(seen, done)  # so that the reader reads between the adds

        return run

    def merger(done):
        for elements in merged_in.values():
            other = HyperLogLog()
            for batch in elements:
                other.add(batch)
            sketch.merge(other)

    seen = []

    def reader(done):
        previous = np.zeros(16_384, dtype=np.uint8)
        while not done.is_set():
            registers = sketch.registers()
            assert (registers >= previous).all()  # registers only ever grow
            previous = registers
            data = sketch.to_bytes()
            copy = HyperLogLog.from_bytes(data)
            copied = copy.registers()
            assert (copied >= registers).all()
            # The cardinality cached in the string (which PFCOUNT answers) is the one of its registers.
            assert int.from_bytes(data[8:16], "little") == copy.count()
            sketch.count()
            seen.append(copied)

    run_threads([adder(seed) for seed in batches] + [merger], [reader])
    with igcore.use_backend("python"):
        expected = HyperLogLog()  # the reference, adding everything in one thread
    for elements in [*batches.values(), *merged_in.values()]:
        for batch in elements:
            expected.add(batch)
    final = sketch.registers()
    assert final.tolist() == expected.registers().tolist()
    assert sketch.count() == expected.count()
    assert sketch.to_bytes() == expected.to_bytes()
    assert seen and all((snapshot <= final).all() for snapshot in seen)


def test_two_sketches_merging_into_each_other_from_two_threads(backend):
    first, second = HyperLogLog(), HyperLogLog()
    first.add(np.arange(0, 5_000, dtype=np.int64))
    second.add([f"s{i}" for i in range(5_000)])
    union = np.maximum(first.registers(), second.registers())
    rounds = scale(backend, 200, 30)

    combine_both_ways(first, second, rounds, "merge")
    # Each reads a state of the other between its own start and the union: after one merge, the union.
    assert first.registers().tolist() == second.registers().tolist() == union.tolist()
