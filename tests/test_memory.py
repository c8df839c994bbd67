"""Memory does not grow over many calls (a leak in a compiled backend would show here)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from igcore.counters import CounterTable, HyperLogLog, WindowedCounter, aggregate

from .conftest import skip_measuring_under_sanitizer

HOT_PATH = "counters"

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc (Linux)")


def rss_bytes() -> int:
    skip_measuring_under_sanitizer("RSS is")  # each test calls this after its code ran once
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def test_aggregate_does_not_leak(backend):
    rng = np.random.default_rng(1)
    keys = rng.integers(0, 50_000, size=300_000, dtype=np.int64)
    deltas = rng.integers(-5, 5, size=keys.size, dtype=np.int64)
    overflowing = np.array([1, 1], dtype=np.int64), np.array([2**63 - 1, 1], dtype=np.int64)
    rounds = 10 if backend == "python" else 200

    def churn():
        for _ in range(rounds):
            aggregate(keys, deltas)
            aggregate(keys)
            with pytest.raises(OverflowError):
                aggregate(*overflowing)  # the error path frees its tables, too

    churn()  # warm up allocator pools
    before = rss_bytes()
    churn()
    grown = rss_bytes() - before
    # One call's results are about 0.8 MB; a leak of them per call would be 160+ MB here.
    assert grown < 16 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over {rounds} rounds"


def grows_over(churn, rounds: int) -> int:
    churn(rounds)  # warm up allocator pools
    before = rss_bytes()
    churn(rounds)
    return rss_bytes() - before


def test_counter_tables_do_not_leak(backend):
    rng = np.random.default_rng(2)
    keys = rng.integers(0, 2**62, size=20_000, dtype=np.int64)
    deltas = rng.integers(-5, 5, size=keys.size, dtype=np.int64)

    def churn(rounds):
        for _ in range(rounds):
            table, other = CounterTable(), CounterTable()  # freed each round: a leak of them shows
            table.add(keys, deltas, kind="likes")
            other.add(keys[:5000], kind="views")
            table.add_table(other)
            table.top(100, "likes")
            table.get(keys[:1000], "likes")
            table.restore(table.drain())
            with pytest.raises(OverflowError):
                table.add([1, 1], [2**63 - 1, 1], kind="views")  # the error path frees, too

    rounds = 5 if backend == "python" else 100
    grown = grows_over(churn, rounds)
    # A table of 20,000 keys holds about 1.5 MB; leaking it per round would be 150+ MB here.
    assert grown < 16 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over {rounds} rounds"


def test_windowed_counters_do_not_leak(backend):
    rng = np.random.default_rng(3)
    keys = rng.integers(0, 5_000, size=20_000, dtype=np.int64)
    times = rng.integers(0, 600, size=keys.size, dtype=np.int64)

    def churn(rounds):
        for _ in range(rounds):
            counter = WindowedCounter(bucket_seconds=10, buckets=30)
            for now in (300, 450, 599):  # the ring moves: buckets are dropped and made again
                counter.add(keys, times, now=now)
            counter.top(50, 599)
            counter.sum(keys[:1000], 599, 100)
            counter.add([1, 1], [599, 599], [2**63 - 1, 0], now=599)
            with pytest.raises(OverflowError):
                counter.add([1], [599], [1], now=599)

    rounds = 3 if backend == "python" else 100
    grown = grows_over(churn, rounds)
    assert grown < 16 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over {rounds} rounds"


def test_hyperloglogs_do_not_leak(backend):
    items = np.arange(5_000, dtype=np.int64)
    words = [f"user:{i}" for i in range(500)]

    def churn(rounds):
        for _ in range(rounds):
            sketch = HyperLogLog()
            sketch.add(items)
            sketch.add(words)
            again = HyperLogLog.from_bytes(sketch.to_bytes())
            again.merge(sketch)
            again.count()
            with pytest.raises(ValueError):
                HyperLogLog.from_bytes(b"HYLL" + bytes(20))

    rounds = 2 if backend == "python" else 800
    grown = grows_over(churn, rounds)
    # Each round makes two sketches of 16 KiB registers and their 12 KiB strings: leaking them would
    # be 40+ MiB here.
    assert grown < 6 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over {rounds} rounds"
