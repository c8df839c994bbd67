"""Counters, defined in plain Python."""

from __future__ import annotations

import numpy as np

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def aggregate(keys: np.ndarray, deltas: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Group-by-sum of `deltas` per key.

    - `keys`, `deltas`: int64 arrays of one length; `deltas=None` counts each event as 1.
    - Returns ``(unique_keys, sums)``, int64 arrays: each distinct key once, in order of first
      appearance, with the sum of its deltas.
    - Duplicates are what is summed; any int64 is a key (negative, zero, the extremes).
    - Overflow: only each key's final total must fit in int64 (running sums may leave the range and come
      back). Otherwise ``OverflowError("the total for key K does not fit in int64")`` naming the first
      such key in output order.
    """
    totals: dict[int, int] = {}
    if deltas is None:
        for key in keys.tolist():
            totals[key] = totals.get(key, 0) + 1
    else:
        for key, delta in zip(keys.tolist(), deltas.tolist()):
            totals[key] = totals.get(key, 0) + delta
    for key, total in totals.items():
        if not INT64_MIN <= total <= INT64_MAX:
            raise OverflowError(f"the total for key {key} does not fit in int64")
    n = len(totals)
    return np.fromiter(totals.keys(), np.int64, n), np.fromiter(totals.values(), np.int64, n)
