"""Memory does not grow over many calls of the timeline and codec kernels (a leak in a compiled backend,
of a page, a timeline, a store or an error path, would show here)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from igcore import codec
from igcore.timeline import Timeline, TimelineStore, aggregate_activity, backfill, fanout, merge_page

from .test_memory import rss_bytes

HOT_PATH = "timeline"

pytestmark = pytest.mark.skipif(not os.path.exists("/proc/self/statm"), reason="reads RSS from /proc (Linux)")


def grows(churn, rounds: int) -> int:
    for _ in range(rounds):
        churn()  # warm up allocator pools
    before = rss_bytes()
    for _ in range(rounds):
        churn()
    return rss_bytes() - before


def test_merging_and_timelines_do_not_leak(backend):
    rng = np.random.default_rng(8)
    sources = []
    for author in range(50):
        scores = np.sort(rng.integers(0, 10**9, 200))[::-1].copy()
        sources.append((scores, rng.integers(0, 5_000, 200), np.full(200, author)))
    unordered = [(np.array([1, 2]), np.array([1, 2]), np.array([1, 1]))]

    def churn():
        for _ in range(4):  # whole-feed pages of 10,000 entries: 1 MB a round that a leak would keep
            merge_page(sources, limit=10**6)
        page = merge_page(sources, limit=50, exclude_authors=[3], per_author_cap=4)
        merge_page(sources, 50, page.next_cursor)
        with pytest.raises(ValueError):
            merge_page(unordered)  # the error path frees what it took, too
        timeline = Timeline(max_len=300)
        timeline.insert_many(*sources[0])
        timeline.insert_many(*sources[1])
        data = timeline.to_bytes()
        Timeline.from_bytes(data).page(20)
        with pytest.raises(ValueError):
            Timeline.from_bytes(data[:-1])

    rounds = 3 if backend == "python" else 60
    grown = grows(churn, rounds)
    assert grown < 16 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over {rounds} rounds"


def test_stores_do_not_leak(backend):
    followers = np.arange(20_000, dtype=np.int64)
    author = Timeline(max_len=100)
    author.insert_many(np.arange(100, 0, -1), np.arange(100), np.zeros(100, dtype=np.int64))

    def churn():
        store = TimelineStore(max_len=20)
        for post in range(5):
            fanout(store, post, post, 7, followers, create_missing=True)
        backfill(store, 3, author)
        store.merge_page(followers[:500], limit=50)
        store[5] = store[3]
        del store[5]

    rounds = 2 if backend == "python" else 20
    grown = grows(churn, rounds)
    # one store holds about 20,000 timelines of 5 entries (~3 MB); a leak of it per round would be 60+ MB
    assert grown < 16 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over {rounds} rounds"


def test_codec_and_activity_do_not_leak(backend):
    rng = np.random.default_rng(6)
    ids = rng.integers(0, 2**62, 100_000)
    scores = np.sort(rng.random(1000))[::-1].copy()
    events = [rng.integers(0, 50, 20_000) for _ in range(3)] + [rng.integers(0, 10**6, 20_000)]

    def churn():
        codec.decode_ids(codec.encode_ids(ids))
        data = codec.encode_entries(scores, ids[:1000], ids[:1000] % 7)
        codec.decode_entries(data)
        with pytest.raises(ValueError):
            codec.decode_entries(data[:-2] + b"\0\0")
        aggregate_activity(*events, 3600)

    rounds = 2 if backend == "python" else 40
    grown = grows(churn, rounds)
    assert grown < 16 * 2**20, f"RSS grew by {grown / 2**20:.1f} MiB over {rounds} rounds"
