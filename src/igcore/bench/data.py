"""Seeded input generators shared by ``igcore bench`` and ``bench/``."""

from __future__ import annotations

from functools import lru_cache

import numpy as np


def random_ids(count: int, seed: int) -> np.ndarray:
    """`count` distinct positive 63-bit ids, as real services hand out (sparse, not 0..n)."""
    rng = np.random.default_rng(seed)
    ids = np.unique(rng.integers(1, 2**63 - 1, size=count + count // 100 + 16, dtype=np.int64))
    rng.shuffle(ids)
    return ids[:count]


@lru_cache(maxsize=4)
def zipf_keys(events: int, distinct: int, exponent: float, seed: int) -> np.ndarray:
    """`events` keys drawn from `distinct` random 63-bit ids with Zipf(`exponent`) popularity: the id
    of rank k is drawn with probability proportional to k**-exponent (a bounded Zipf law)."""
    rng = np.random.default_rng(seed)
    ids = random_ids(distinct, seed + 1)
    cdf = np.cumsum(np.arange(1, distinct + 1, dtype=np.float64) ** -exponent)
    cdf /= cdf[-1]
    ranks = np.searchsorted(cdf, rng.random(events), side="right")
    keys = ids[np.minimum(ranks, distinct - 1)]
    keys.flags.writeable = False
    return keys


@lru_cache(maxsize=4)
def small_deltas(events: int, seed: int) -> np.ndarray:
    """Per-event increments from 1 to 9 (a view counted once, a like weighted, ...)."""
    deltas = np.random.default_rng(seed).integers(1, 10, size=events, dtype=np.int64)
    deltas.flags.writeable = False
    return deltas
