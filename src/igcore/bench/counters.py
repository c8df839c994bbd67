"""Benchmarks of the counters hot path."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np

from .. import counters
from . import Case, register
from .data import random_ids, small_deltas, zipf_keys

SEED = 20261124
IDS = 1_000_000


def _events(scale: float) -> int:
    return max(1, int(10_000_000 * scale))


def _inputs(scale: float, with_deltas: bool) -> dict:
    n = _events(scale)
    keys = zipf_keys(n, IDS, 1.2, SEED)
    inputs: dict[str, Any] = {"keys": keys, "deltas": small_deltas(n, SEED) if with_deltas else None}
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
    totals: Counter[int] = Counter()
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


# -- CounterTable: count a stream, then "most liked" --------------------------------------------------------

TOP = 100


def _top_of_counts(keys: np.ndarray, counts: np.ndarray, k: int = TOP):
    """The top `k` by count, ties by the smaller key (what CounterTable.top answers)."""
    order = np.lexsort((keys, -counts))[:k]
    return keys[order], counts[order]


def _same_top(result, expected) -> bool:
    keys, sums = result
    return np.array_equal(keys, expected[0]) and np.array_equal(sums, expected[1])


def _same_top_up_to_ties(result, expected) -> bool:
    """A peer's top list: the same counts, and the same keys wherever the count is not tied with the
    last place (Counter.most_common breaks ties by first appearance, not by the smaller key)."""
    if isinstance(result, list):  # Counter.most_common
        keys = np.array([k for k, _ in result], dtype=np.int64)
        counts = np.array([c for _, c in result], dtype=np.int64)
    else:
        keys, counts = (np.asarray(a) for a in result)
    if not np.array_equal(counts, expected[1]):
        return False
    clear = counts > counts[-1] if len(counts) else counts.astype(bool)
    return set(keys[clear].tolist()) == set(np.asarray(expected[0])[clear].tolist())


def _table_inputs(scale: float) -> dict:
    keys = zipf_keys(_events(scale), IDS, 1.2, SEED)
    return {"keys": keys, "key_list": keys.tolist()}


def _table_add_top(inputs):
    table = counters.CounterTable(kinds=("views",))
    table.add(inputs["keys"])
    return table.top(TOP)


def _numpy_top(inputs):
    unique, counts = np.unique(inputs["keys"], return_counts=True)
    return _top_of_counts(unique, counts)


register(
    Case(
        name="counters.table/add+top",
        hot_path="counters",
        title=lambda scale: (
            f"CounterTable.add of {_events(scale):,} view events, Zipf(1.2) over {IDS:,} 63-bit ids, "
            f"then top-{TOP}"
        ),
        make_inputs=_table_inputs,
        run=_table_add_top,
        peers={
            "Counter": lambda i: Counter(i["key_list"]).most_common(TOP),
            "numpy": _numpy_top,
        },
        slow_peers=("Counter",),
        same=_same_top,
        same_as_peer=_same_top_up_to_ties,
    )
)


# -- WindowedCounter: "trending in the last hour" ---------------------------------------------------------

NOW = 1_700_000_000  # a fixed clock: the inputs are seeded, and so is time
BUCKET, BUCKETS = 60, 60


def _window_events(scale: float) -> int:
    return max(1, int(2_000_000 * scale))


def _window_inputs(scale: float) -> dict:
    n = _window_events(scale)
    keys = zipf_keys(n, IDS, 1.2, SEED + 1)
    # A stream of the last 70 minutes, in time order: the ring keeps the last hour, the rest drops.
    rng = np.random.default_rng(SEED + 1)
    times = NOW - 4200 + np.sort(rng.integers(0, 4201, size=n, dtype=np.int64))
    oldest = (NOW // BUCKET - BUCKETS + 1) * BUCKET  # the first second the ring keeps
    return {
        "keys": keys,
        "times": times,
        "key_list": keys.tolist(),
        "time_list": times.tolist(),
        "oldest": oldest,
    }


def _window_add_top(inputs):
    counter = counters.WindowedCounter(bucket_seconds=BUCKET, buckets=BUCKETS)
    counter.add(inputs["keys"], inputs["times"], now=NOW)
    return counter.top(TOP, NOW, BUCKET * BUCKETS)


def _counter_in_window(inputs):
    oldest = inputs["oldest"]
    recent = Counter(k for k, t in zip(inputs["key_list"], inputs["time_list"]) if t >= oldest)
    return recent.most_common(TOP)


def _numpy_in_window(inputs):
    recent = inputs["keys"][inputs["times"] >= inputs["oldest"]]
    unique, counts = np.unique(recent, return_counts=True)
    return _top_of_counts(unique, counts)


register(
    Case(
        name="counters.window/add+top",
        hot_path="counters",
        title=lambda scale: (
            f"WindowedCounter.add of {_window_events(scale):,} events over 70 minutes (Zipf(1.2) over "
            f"{IDS:,} ids; 60 one-minute buckets), then top-{TOP} of the last hour"
        ),
        make_inputs=_window_inputs,
        run=_window_add_top,
        peers={"Counter": _counter_in_window, "numpy": _numpy_in_window},
        slow_peers=("Counter",),
        same=_same_top,
        same_as_peer=_same_top_up_to_ties,
    )
)


# -- HyperLogLog: unique viewers ----------------------------------------------------------------------------


def _hll_items(scale: float) -> int:
    return max(1, int(1_000_000 * scale))


def _hll_inputs(scale: float) -> dict:
    ids = random_ids(_hll_items(scale), SEED + 2)
    ids.flags.writeable = False
    return {"ids": ids, "id_list": ids.tolist(), "distinct": len(ids)}


def _hll_add(inputs):
    sketch = counters.HyperLogLog()
    sketch.add(inputs["ids"])
    return sketch


def _datasketches_add(inputs):
    from datasketches import hll_sketch, tgt_hll_type

    # The same size as Redis's: 2^14 registers of 6 bits.
    sketch = hll_sketch(14, tgt_hll_type.HLL_6)
    for item in inputs["id_list"]:
        sketch.update(item)
    return sketch


def _estimate(result) -> float:
    if isinstance(result, counters.HyperLogLog):
        return float(result.count())
    if isinstance(result, int):
        return float(result)
    return result.get_estimate()


def _hll_answer(result, inputs) -> str:
    estimate, truth = _estimate(result), inputs["distinct"]
    return f"{estimate:,.0f} ({(estimate / truth - 1) * 100:+.2f}%)"


def _peers_of_hll() -> dict:
    peers = {"set (exact)": lambda i: len(set(i["id_list"]))}
    try:
        import datasketches  # noqa: F401
    except ImportError:  # the bench extra brings it; without it the table shows the others
        return peers
    return {"datasketches": _datasketches_add, **peers}


register(
    Case(
        name="counters.hll/add",
        hot_path="counters",
        title=lambda scale: (
            f"HyperLogLog.add of {_hll_items(scale):,} distinct 63-bit ids (as decimal strings, like "
            f"Redis PFADD); 16,384 registers"
        ),
        make_inputs=_hll_inputs,
        run=_hll_add,
        peers=_peers_of_hll(),
        same=lambda a, b: a.to_bytes() == b.to_bytes(),
        same_as_peer=lambda result, expected: abs(_estimate(result) / expected.count() - 1) < 0.05,
        answer=_hll_answer,
    )
)
