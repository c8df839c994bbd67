"""Memory does not grow over many calls (a leak in a compiled backend would show here)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from igcore.counters import aggregate

HOT_PATH = "counters"

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc (Linux)")


def rss_bytes() -> int:
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
