"""Counters: batch aggregation of like/view/comment events.

``aggregate(keys, deltas)`` is a group-by-sum over int64 keys, in order of first appearance, served by
the backend chosen in ``igcore._backend``. The contract is in ``igcore._reference.counters``.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _backend
from ._arrays import int64_array


class Totals(NamedTuple):
    """Distinct keys in order of first appearance, and the total of each (both int64 arrays)."""

    keys: np.ndarray
    sums: np.ndarray


def aggregate(keys, deltas=None) -> Totals:
    """Sum `deltas` per key; each event counts 1 when `deltas` is None.

    `keys` and `deltas` are 1-D integer arrays (int64 arrays are used without copying) or sequences of
    ints, of the same length. Returns ``Totals(keys, sums)``: the distinct keys in order of first
    appearance (as ``dict`` and ``collections.Counter`` order them) and their totals, as int64 arrays.
    A total outside the int64 range raises ``OverflowError`` naming the key; intermediate sums may leave
    the range, so the answer does not depend on the order of the events.
    """
    keys = int64_array(keys, "keys")
    if deltas is not None:
        deltas = int64_array(deltas, "deltas")
        if len(deltas) != len(keys):
            raise ValueError(f"keys and deltas differ in length ({len(keys)} != {len(deltas)})")
    unique_keys, sums = _backend.kernels("counters").aggregate(keys, deltas)
    return Totals(unique_keys, sums)
