"""Benchmarks of the counters hot path."""

from __future__ import annotations

from collections import Counter

import numpy as np

from .. import counters
from . import Case, register
from .data import small_deltas, zipf_keys

SEED = 20261124
IDS = 1_000_000


def _events(scale: float) -> int:
    return max(1, int(10_000_000 * scale))


def _inputs(scale: float, with_deltas: bool) -> dict:
    n = _events(scale)
    keys = zipf_keys(n, IDS, 1.2, SEED)
    inputs = {"keys": keys, "deltas": small_deltas(n, SEED) if with_deltas else None}
    # Counter's user holds Python ints already; building the lists is not part of its time.
    inputs["key_list"] = keys.tolist()
    inputs["delta_list"] = inputs["deltas"].tolist() if with_deltas else None
    return inputs


def _title(with_deltas: bool):
    what = "sum of deltas 1..9" if with_deltas else "counts"
    return lambda scale: f"aggregate {_events(scale):,} events, Zipf(1.2) over {IDS:,} 63-bit ids, {what}"


def _same_totals(a, b) -> bool:
    return np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])


def _as_sorted_totals(keys, sums):
    order = np.argsort(keys, kind="stable")
    return np.asarray(keys)[order], np.asarray(sums).astype(np.int64)[order]


def _same_totals_any_order(result, expected) -> bool:
    if isinstance(result, Counter):
        keys = np.fromiter(result.keys(), np.int64, len(result))
        sums = np.fromiter(result.values(), np.int64, len(result))
    else:
        keys, sums = result
    return _same_totals(_as_sorted_totals(keys, sums), _as_sorted_totals(*expected))


def _counter_of_deltas(inputs):
    totals = Counter()
    for key, delta in zip(inputs["key_list"], inputs["delta_list"]):
        totals[key] += delta
    return totals


def _numpy_deltas(inputs):
    unique, inverse = np.unique(inputs["keys"], return_inverse=True)
    return unique, np.bincount(inverse, weights=inputs["deltas"])


register(
    Case(
        name="counters.aggregate/counts",
        hot_path="counters",
        title=_title(False),
        make_inputs=lambda scale: _inputs(scale, False),
        run=lambda i: counters.aggregate(i["keys"]),
        peers={
            "Counter": lambda i: Counter(i["key_list"]),
            "np.unique": lambda i: np.unique(i["keys"], return_counts=True),
        },
        slow_peers=("Counter",),
        same=_same_totals,
        same_as_peer=_same_totals_any_order,
    )
)

register(
    Case(
        name="counters.aggregate/deltas",
        hot_path="counters",
        title=_title(True),
        make_inputs=lambda scale: _inputs(scale, True),
        run=lambda i: counters.aggregate(i["keys"], i["deltas"]),
        peers={
            "Counter": _counter_of_deltas,
            "np.unique+bincount": _numpy_deltas,
        },
        slow_peers=("Counter", "np.unique+bincount"),
        same=_same_totals,
        same_as_peer=_same_totals_any_order,
    )
)
