"""Counters, defined in plain Python."""

from __future__ import annotations

import heapq
import math
import threading
import typing
from collections.abc import Iterable

import numpy as np

from .. import _messages
from .._hll import HLL_MAX_REGISTER, HLL_P, HLL_Q, HLL_REGISTERS

# Not `from typing import TYPE_CHECKING`: a kernel module exports exactly the names of its stub.
if typing.TYPE_CHECKING:
    from numpy.typing import NDArray

# The kernels, as src/igcore/_kernels/counters.pyi states them; the rest of this module is their helpers.
__all__ = ["CounterTable", "HyperLogLog", "WindowedCounter", "aggregate"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def aggregate(
    keys: NDArray[np.int64], deltas: NDArray[np.int64] | None = None
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
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
            raise OverflowError(_messages.TOTAL_OVERFLOW.format(key=key))
    n = len(totals)
    return np.fromiter(totals.keys(), np.int64, n), np.fromiter(totals.values(), np.int64, n)


def _fits(value: int) -> bool:
    return INT64_MIN <= value <= INT64_MAX


def _int64s(values: Iterable[int]) -> NDArray[np.int64]:
    return np.fromiter(values, np.int64)


def _batch_sums(keys: NDArray[np.int64], deltas: NDArray[np.int64] | None) -> dict[int, int]:
    """The exact sum of each key's deltas in one call, keys in order of first appearance."""
    sums: dict[int, int] = {}
    for key, delta in zip(keys.tolist(), [1] * len(keys) if deltas is None else deltas.tolist()):
        sums[key] = sums.get(key, 0) + delta
    return sums


def _top(totals: dict[int, int], k: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """The `k` keys with the largest non-zero totals, largest first, ties by smaller key."""
    ranked = heapq.nsmallest(k, ((-total, key) for key, total in totals.items() if total != 0))
    return _int64s(key for _, key in ranked), _int64s(-negated for negated, _ in ranked)


class CounterTable:
    """Named counters ("kinds": likes, views, ...) per int64 key, with write-behind bookkeeping.

    Each (kind, key) holds two int64 numbers: its **total** (everything ever added here; what `get` and
    `top` read) and its **pending** delta (what was added since the last `drain`; what a write-behind
    flush sends to the store). A key that was never added reads as 0.

    - ``add(kind, keys, deltas)``: adds each key's deltas (1 per event when `deltas` is None) to its
      total and to its pending delta. As in `aggregate`, only the values after the call must fit in
      int64, so the order of a call's events does not matter. Otherwise the call raises
      ``OverflowError`` for the first key, in order of first appearance in the call, whose total ("the
      likes total for key 7 does not fit in int64") or else pending delta ("the pending likes delta
      for key 7 ...") would not fit, and the table is left as it was: a call applies all or nothing.
    - ``get(kind, keys)``: the totals of `keys`, in their order (duplicates repeat).
    - ``top(kind, k)``: at most `k` keys with the largest non-zero totals, largest first, ties by the
      smaller key; ``(keys, totals)``.
    - ``drain()``: per kind (in the table's order), ``(keys, deltas)`` of every key whose pending delta
      is non-zero, keys ascending; all pending deltas are then zero. Atomic with respect to `add`: an
      increment is in exactly one drain.
    - ``restore(kind, keys, deltas, retract)``: adds `deltas` to the pending deltas only (subtracts
      them when `retract`), for a flush that failed (or that turned out to have reached the store);
      checked and all-or-nothing like `add`, with the pending-delta message.
    - ``add_table(other)``: adds `other`'s totals and pending deltas into this table (same kinds); other is
      read first, then applied all or nothing, kind by kind, keys ascending, total then pending.

    Every method holds the table's lock: threads may call them concurrently.
    """

    def __init__(self, kinds: tuple[str, ...]):
        self.kinds = tuple(kinds)
        self._totals: list[dict[int, int]] = [{} for _ in self.kinds]
        self._pending: list[dict[int, int]] = [{} for _ in self.kinds]
        self._lock = threading.Lock()

    def add(self, kind: int, keys: NDArray[np.int64], deltas: NDArray[np.int64] | None) -> None:
        name = self.kinds[kind]
        batch = _batch_sums(keys, deltas)
        with self._lock:
            totals, pending = self._totals[kind], self._pending[kind]
            new_totals = {key: totals.get(key, 0) + delta for key, delta in batch.items()}
            new_pending = {key: pending.get(key, 0) + delta for key, delta in batch.items()}
            for key in batch:
                if not _fits(new_totals[key]):
                    raise OverflowError(_messages.KIND_TOTAL_OVERFLOW.format(kind=name, key=key))
                if not _fits(new_pending[key]):
                    raise OverflowError(_messages.PENDING_DELTA_OVERFLOW.format(kind=name, key=key))
            totals.update(new_totals)
            pending.update(new_pending)

    def get(self, kind: int, keys: NDArray[np.int64]) -> NDArray[np.int64]:
        with self._lock:
            totals = self._totals[kind]
            return _int64s(totals.get(key, 0) for key in keys.tolist())

    def top(self, kind: int, k: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        with self._lock:
            return _top(self._totals[kind], k)

    def drain(self) -> list[tuple[NDArray[np.int64], NDArray[np.int64]]]:
        with self._lock:
            drained = []
            for pending in self._pending:
                waiting = sorted((key, delta) for key, delta in pending.items() if delta != 0)
                drained.append((_int64s(k for k, _ in waiting), _int64s(d for _, d in waiting)))
                pending.clear()
            return drained

    def restore(self, kind: int, keys: NDArray[np.int64], deltas: NDArray[np.int64], retract: bool) -> None:
        name = self.kinds[kind]
        sign = -1 if retract else 1
        batch = _batch_sums(keys, deltas)
        with self._lock:
            pending = self._pending[kind]
            staged = {key: pending.get(key, 0) + sign * delta for key, delta in batch.items()}
            for key, waiting in staged.items():
                if not _fits(waiting):
                    raise OverflowError(_messages.PENDING_DELTA_OVERFLOW.format(kind=name, key=key))
            pending.update(staged)

    def add_table(self, other: CounterTable) -> None:
        with other._lock:
            theirs = []
            for totals, pending in zip(other._totals, other._pending):
                # A key restored but never added has a pending delta and no total.
                entries: Iterable[tuple[int, int, int]] = (
                    (key, totals.get(key, 0), pending.get(key, 0)) for key in totals.keys() | pending
                )
                theirs.append(sorted(e for e in entries if e[1] or e[2]))
        with self._lock:
            staged = []
            for kind, entries in enumerate(theirs):
                name, totals, pending = self.kinds[kind], self._totals[kind], self._pending[kind]
                new_totals, new_pending = {}, {}
                for key, total, waiting in entries:
                    new_totals[key] = totals.get(key, 0) + total
                    if not _fits(new_totals[key]):
                        raise OverflowError(_messages.KIND_TOTAL_OVERFLOW.format(kind=name, key=key))
                    new_pending[key] = pending.get(key, 0) + waiting
                    if not _fits(new_pending[key]):
                        raise OverflowError(_messages.PENDING_DELTA_OVERFLOW.format(kind=name, key=key))
                staged.append((totals, new_totals, pending, new_pending))
            for totals, new_totals, pending, new_pending in staged:
                totals.update(new_totals)
                pending.update(new_pending)


class WindowedCounter:
    """Counts per int64 key in time buckets, for "trending in the last hour".

    Time is int64 seconds; the bucket of time ``t`` is ``t // bucket_seconds`` (floor division, so
    negative times are fine). The counter keeps a ring of the `buckets` newest buckets: the *head* is the
    bucket of the latest `now` given to `add` (time never runs backwards for the ring: an earlier `now`
    does not move it), and the ring is the buckets ``head - buckets + 1 .. head``. Buckets that leave the
    ring are forgotten.

    - ``add(keys, timestamps, deltas, now)``: first moves the head to the bucket of `now` if that is
      later. Then each event whose bucket is in the ring adds its delta (1 when `deltas` is None) to its
      key's count in that bucket. An event older than the ring, or later than the head ("in the
      future"), is not counted: it is *dropped*, and ``add`` returns ``(too_old, in_future)``, the
      numbers of events dropped for each reason (also summed in ``dropped()``). Only the counts after
      the call must fit in int64 (the order of a call's events does not matter); otherwise the call
      raises ``OverflowError("the count for key K at time T does not fit in int64")`` for the first
      event, in the call's order, whose count would not fit, and none of the call's events are counted
      (the head has moved all the same).
    - ``sum(keys, now, window_buckets)``: per key (in the given order), the total of its counts in the
      `window_buckets` buckets ending with the bucket of `now`, counting only buckets still in the ring.
      A total outside int64 raises ``OverflowError("the window total for key K does not fit in int64")``
      for the first such key in the given order.
    - ``top(k, now, window_buckets)``: at most `k` keys with the largest non-zero window totals, largest
      first, ties by the smaller key; ``(keys, totals)``. A total outside int64 raises as in `sum`, for
      the smallest such key.

    `sum` and `top` only read: they never move the head. The caller checks arguments (bucket_seconds >=
    1, 1 <= buckets, 1 <= window_buckets <= buckets). Every method holds the counter's lock.
    """

    def __init__(self, bucket_seconds: int, buckets: int):
        self.bucket_seconds = bucket_seconds
        self.buckets = buckets
        self._head: int | None = None
        self._counts: dict[int, dict[int, int]] = {}  # bucket -> key -> count
        self._too_old = 0
        self._in_future = 0
        self._lock = threading.Lock()

    def _bucket(self, t: int) -> int:
        return t // self.bucket_seconds

    def add(
        self,
        keys: NDArray[np.int64],
        timestamps: NDArray[np.int64],
        deltas: NDArray[np.int64] | None,
        now: int,
    ) -> tuple[int, int]:
        deltas_list = [1] * len(keys) if deltas is None else deltas.tolist()
        with self._lock:
            now_bucket = self._bucket(now)
            if self._head is None or now_bucket > self._head:
                self._head = now_bucket
                oldest = self._head - self.buckets + 1
                for bucket in [b for b in self._counts if b < oldest]:
                    del self._counts[bucket]
            head, oldest = self._head, self._head - self.buckets + 1
            too_old = in_future = 0
            staged: dict[tuple[int, int], int] = {}
            first_time: dict[tuple[int, int], int] = {}  # the time of each count's first event
            for key, t, delta in zip(keys.tolist(), timestamps.tolist(), deltas_list):
                bucket = self._bucket(t)
                if bucket < oldest:
                    too_old += 1
                    continue
                if bucket > head:
                    in_future += 1
                    continue
                counted = staged.get((bucket, key), self._counts.get(bucket, {}).get(key, 0))
                staged[(bucket, key)] = counted + delta
                first_time.setdefault((bucket, key), t)
            for (bucket, key), count in staged.items():
                if not _fits(count):
                    t = first_time[(bucket, key)]
                    raise OverflowError(_messages.COUNT_OVERFLOW.format(key=key, time=t))
            for (bucket, key), count in staged.items():
                self._counts.setdefault(bucket, {})[key] = count
            self._too_old += too_old
            self._in_future += in_future
            return too_old, in_future

    def dropped(self) -> tuple[int, int]:
        with self._lock:
            return self._too_old, self._in_future

    def _window(self, now: int, window_buckets: int) -> list[dict[int, int]]:
        """The counts of the buckets in the window that are still in the ring."""
        if self._head is None:
            return []
        last = self._bucket(now)
        first = last - window_buckets + 1
        oldest = self._head - self.buckets + 1
        return [c for b, c in self._counts.items() if first <= b <= last and oldest <= b <= self._head]

    def sum(self, keys: NDArray[np.int64], now: int, window_buckets: int) -> NDArray[np.int64]:
        with self._lock:
            window = self._window(now, window_buckets)
            totals = []
            for key in keys.tolist():
                total = sum(counts.get(key, 0) for counts in window)
                if not _fits(total):
                    raise OverflowError(_messages.WINDOW_TOTAL_OVERFLOW.format(key=key))
                totals.append(total)
            return _int64s(totals)

    def top(self, k: int, now: int, window_buckets: int) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        with self._lock:
            totals: dict[int, int] = {}
            for counts in self._window(now, window_buckets):
                for key, count in counts.items():
                    totals[key] = totals.get(key, 0) + count
        for key in sorted(totals):
            if not _fits(totals[key]):
                raise OverflowError(_messages.WINDOW_TOTAL_OVERFLOW.format(key=key))
        return _top(totals, k)


# -- HyperLogLog, register for register the one of Redis ---------------------------------------------------

# HLL_P, HLL_REGISTERS, HLL_Q and HLL_MAX_REGISTER: in igcore._hll (the Redis format shares them)
HLL_SEED = 0xADC83B19  # the seed Redis gives MurmurHash64A
HLL_ALPHA_INF = 0.721347520444481703680  # 1 / (2 ln 2)
_MURMUR_M = 0xC6A4A7935BD1E995
_MASK64 = (1 << 64) - 1


def murmurhash64a(data: bytes, seed: int = HLL_SEED) -> int:
    """Austin Appleby's MurmurHash64A of `data` (as Redis hashes HyperLogLog elements), as an unsigned
    64-bit int: 8-byte little-endian blocks, then the 1-7 byte tail, then the final mix."""
    m, r = _MURMUR_M, 47
    h = (seed ^ (len(data) * m)) & _MASK64
    blocks = len(data) - len(data) % 8
    for start in range(0, blocks, 8):
        k = int.from_bytes(data[start : start + 8], "little")
        k = (k * m) & _MASK64
        k ^= k >> r
        k = (k * m) & _MASK64
        h = ((h ^ k) * m) & _MASK64
    tail = data[blocks:]
    if tail:
        h = ((h ^ int.from_bytes(tail, "little")) * m) & _MASK64
    h ^= h >> r
    h = (h * m) & _MASK64
    h ^= h >> r
    return h


def hll_position(element: bytes) -> tuple[int, int]:
    """The register an element goes to and the value it offers: the low 14 bits of its hash choose the
    register; the value is 1 + the number of trailing zeros of the other 50 bits (at most 51)."""
    hashed = murmurhash64a(element)
    index = hashed & (HLL_REGISTERS - 1)
    rest = (hashed >> HLL_P) | (1 << HLL_Q)  # a set bit 50 bounds the run
    return index, (rest & -rest).bit_length()


def _sigma(x: float) -> float:
    # Ertl, "New cardinality estimation algorithms for HyperLogLog sketches" (2017): the correction for
    # registers still at zero. The series is summed until it stops changing in double precision.
    if x == 1.0:
        return math.inf
    y, z = 1.0, x
    while True:
        x *= x
        previous = z
        z += x * y
        y += y
        if z == previous:
            return z


def _tau(x: float) -> float:
    # Ertl's correction for registers at the largest value.
    if x in (0.0, 1.0):
        return 0.0
    y, z = 1.0, 1.0 - x
    while True:
        x = math.sqrt(x)
        previous = z
        y *= 0.5
        z -= (1.0 - x) * (1.0 - x) * y
        if z == previous:
            return z / 3.0


def hll_estimate(histogram: list[int]) -> int:
    """Redis's estimate (PFCOUNT) from the histogram of register values (index 0..51), in the same
    double-precision steps, rounded half away from zero."""
    m = float(HLL_REGISTERS)
    z = m * _tau((m - histogram[HLL_Q + 1]) / m)
    for value in range(HLL_Q, 0, -1):
        z += histogram[value]
        z *= 0.5
    z += m * _sigma(histogram[0] / m)
    estimate = HLL_ALPHA_INF * m * m / z
    whole = math.floor(estimate)
    return int(whole + 1 if estimate - whole >= 0.5 else whole)


class HyperLogLog:
    """Redis's HyperLogLog: 16,384 registers, each the longest run seen (see `hll_position`).

    - ``add_ints(items)``: adds each int64 as its decimal string (as a client sends an int to Redis).
    - ``add_bytes(buffer, ends)``: adds the elements ``buffer[ends[i-1]:ends[i]]`` (``ends[-1] ==
      len(buffer)``; the caller checks). Both return True when a register changed (as PFADD returns 1).
    - ``count()``: the estimate PFCOUNT gives for these registers.
    - ``merge(other)``: each register becomes the larger of the two (PFMERGE).
    - ``registers()``: a copy of the 16,384 register values (uint8); ``load(registers)`` replaces them
      (values checked by the caller to be at most 51).
    """

    def __init__(self) -> None:
        self._registers = bytearray(HLL_REGISTERS)
        self._lock = threading.Lock()

    def _add(self, elements: Iterable[bytes]) -> bool:
        changed = False
        with self._lock:
            registers = self._registers
            for element in elements:
                index, value = hll_position(element)
                if value > registers[index]:
                    registers[index] = value
                    changed = True
        return changed

    def add_ints(self, items: NDArray[np.int64]) -> bool:
        return self._add(str(item).encode() for item in items.tolist())

    def add_bytes(self, buffer: bytes, ends: NDArray[np.int64]) -> bool:
        starts = [0, *ends.tolist()[:-1]]
        return self._add(buffer[start:end] for start, end in zip(starts, ends.tolist()))

    def count(self) -> int:
        with self._lock:
            histogram = [0] * (HLL_MAX_REGISTER + 1)
            for value in self._registers:
                histogram[value] += 1
        return hll_estimate(histogram)

    def merge(self, other: HyperLogLog) -> None:
        with other._lock:
            theirs = bytes(other._registers)
        with self._lock:
            self._registers = bytearray(map(max, self._registers, theirs))

    def registers(self) -> NDArray[np.uint8]:
        with self._lock:
            return np.frombuffer(bytes(self._registers), dtype=np.uint8).copy()

    def load(self, registers: NDArray[np.uint8]) -> None:
        with self._lock:
            self._registers = bytearray(registers.tobytes())
