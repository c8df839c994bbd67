"""Counters: likes, comments, views and shares, counted in process.

- ``aggregate(keys, deltas)``: a group-by-sum over int64 keys, in order of first appearance.
- ``CounterTable``: named counter kinds per key, ``top``, and ``drain`` for write-behind to a store
  (``igcore.counters.redis`` flushes to Redis).
- ``WindowedCounter``: counts in time buckets, for "trending in the last hour".
- ``HyperLogLog``: distinct counts, byte-compatible with Redis's PFADD/PFCOUNT/PFMERGE.

Arguments are checked and converted here, once; the backend chosen in ``igcore._backend`` does the
work. The contract of every operation is in ``igcore._reference.counters``.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, NamedTuple, overload

import numpy as np

from .. import _arrow, _backend, _messages
from .._arrays import INT64_MAX, INT64_MIN, count, int64, int64_array
from . import _hll_format

if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

    from numpy.typing import NDArray

    from .._typing import HllElement, IntArrayLike, IntLike


class Totals(NamedTuple):
    """Keys and the total of each (both int64 arrays)."""

    keys: NDArray[np.int64]
    sums: NDArray[np.int64]

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table`` with columns ``key`` and ``total`` that shares these arrays' memory."""
        return _arrow.table({"key": self.keys, "total": self.sums})

    @classmethod
    def from_arrow(cls, table: Any) -> Totals:
        """Totals from an Arrow table's ``key`` and ``total`` columns, without a copy when each is int64
        in one chunk (see ``to_arrow``)."""
        return cls(_arrow.int64_column(table, "key"), _arrow.int64_column(table, "total"))


class Deltas(NamedTuple):
    """Drained keys, ascending, and the delta of each since the previous drain (both int64 arrays)."""

    keys: NDArray[np.int64]
    deltas: NDArray[np.int64]


class Dropped(NamedTuple):
    """Events a WindowedCounter did not count: older than its ring, or later than its newest bucket."""

    too_old: int
    in_future: int


def aggregate(keys: IntArrayLike, deltas: IntArrayLike | None = None) -> Totals:
    """Sum `deltas` per key; each event counts 1 when `deltas` is None.

    `keys` and `deltas` are 1-D integer arrays (int64 arrays are used without copying) or sequences of
    ints, of the same length. Returns ``Totals(keys, sums)``: the distinct keys in order of first
    appearance (as ``dict`` and ``collections.Counter`` order them) and their totals, as int64 arrays.
    A total outside the int64 range raises ``OverflowError`` naming the key; intermediate sums may leave
    the range, so the answer does not depend on the order of the events.
    """
    keys = int64_array(keys, "keys")
    deltas = _deltas_for(keys, deltas)
    unique_keys, sums = _backend.kernels("counters").aggregate(keys, deltas)
    return Totals(unique_keys, sums)


# -- checks at the door ----------------------------------------------------------------------------------


@overload
def _deltas_for(keys: NDArray[np.int64], deltas: None, name: str = ...) -> None: ...
@overload
def _deltas_for(keys: NDArray[np.int64], deltas: IntArrayLike, name: str = ...) -> NDArray[np.int64]: ...
@overload
def _deltas_for(keys: NDArray[np.int64], deltas: object, name: str = ...) -> NDArray[np.int64] | None: ...
def _deltas_for(keys: NDArray[np.int64], deltas: object, name: str = "deltas") -> NDArray[np.int64] | None:
    if deltas is None:
        return None
    deltas = int64_array(deltas, name)
    if len(deltas) != len(keys):
        raise ValueError(
            _messages.LENGTHS_DIFFER.format(
                first="keys", second=name, first_length=len(keys), second_length=len(deltas)
            )
        )
    return deltas


def _now(now: IntLike | None) -> int:
    return int(time.time()) if now is None else int64(now, "now")


def _same_backend(
    mine: CounterTable | HyperLogLog, theirs: CounterTable | HyperLogLog, what: str, conversion: str
) -> None:
    """`mine` and `theirs` (public objects with a ``backend``) are held by one backend."""
    if theirs.backend != mine.backend:
        raise TypeError(
            f"cannot combine a {what} of the {theirs.backend} backend with one of the "
            f"{mine.backend} backend; {conversion}"
        )


# -- CounterTable ----------------------------------------------------------------------------------------

DEFAULT_KINDS = ("likes", "comments", "views", "shares")
MAX_KINDS = 64


class CounterTable:
    """Named counters per int64 key (``likes``, ``comments``, ...), with write-behind bookkeeping.

    Each (kind, key) has a **total** (everything added here: what ``get`` and ``top`` read) and a
    **pending** delta (what was added since the last ``drain``: what a flush sends to the store).
    Thread-safe: the compiled backends do their work without the GIL, under the table's own lock.
    The backend is chosen when the table is made (see ``backend``).
    """

    def __init__(self, kinds: Iterable[str] = DEFAULT_KINDS) -> None:
        if isinstance(kinds, (str, bytes)):
            raise TypeError("kinds must be a sequence of names, not a single string")
        kinds = tuple(kinds)
        if not 1 <= len(kinds) <= MAX_KINDS:
            raise ValueError(f"a CounterTable has 1 to {MAX_KINDS} kinds, got {len(kinds)}")
        for kind in kinds:
            if not isinstance(kind, str) or not kind:
                raise TypeError(f"each kind must be a non-empty str, got {kind!r}")
        if len(set(kinds)) != len(kinds):
            raise ValueError(f"kinds must be distinct, got {kinds}")
        self._kinds = kinds
        self._position = {kind: i for i, kind in enumerate(kinds)}
        module = _backend.kernels("counters")
        self.backend: str = _backend.backend_name(module)
        self._impl = module.CounterTable(kinds)

    @property
    def kinds(self) -> tuple[str, ...]:
        return self._kinds

    def _kind(self, kind: str | None) -> int:
        if kind is None:
            if len(self._kinds) == 1:
                return 0
            raise ValueError(f"name the kind: one of {', '.join(self._kinds)}")
        try:
            return self._position[kind]
        except (KeyError, TypeError):
            raise ValueError(f"unknown kind {kind!r}; this table counts {', '.join(self._kinds)}") from None

    def add(self, keys: IntArrayLike, deltas: IntArrayLike | None = None, kind: str | None = None) -> None:
        """Adds `deltas` (1 per event when None) to `kind` for `keys` (int64 arrays or int sequences).

        A total or pending delta leaving int64 raises ``OverflowError`` and adds nothing.
        `kind` may be left out when the table has a single kind.
        """
        position = self._kind(kind)
        keys = int64_array(keys, "keys")
        self._impl.add(position, keys, _deltas_for(keys, deltas))

    def get(self, keys: IntArrayLike, kind: str | None = None) -> NDArray[np.int64]:
        """The totals of `keys` for `kind` (0 for a key never added), as an int64 array."""
        position = self._kind(kind)
        return self._impl.get(position, int64_array(keys, "keys"))

    def top(self, k: int, kind: str | None = None) -> Totals:
        """At most `k` keys with the largest non-zero totals of `kind`, largest first, ties by smaller key."""
        position = self._kind(kind)
        return Totals(*self._impl.top(position, count(k, "k")))

    def drain(self) -> dict[str, Deltas]:
        """Per kind, the keys (ascending) whose pending delta is non-zero and those deltas; they are reset
        to zero in the same step, so with threads adding meanwhile every increment is in exactly one
        drain. Hand the result back with ``restore`` if it could not be stored."""
        return {kind: Deltas(*pair) for kind, pair in zip(self._kinds, self._impl.drain())}

    def restore(self, drained: dict[str, Deltas]) -> None:
        """Puts drained deltas back into the pending deltas (totals are unchanged): for a failed flush."""
        self._restore(drained, retract=False)

    def retract(self, drained: dict[str, Deltas]) -> None:
        """Takes restored deltas out again: for a flush that had reached the store after all."""
        self._restore(drained, retract=True)

    def _restore(self, drained: object, retract: bool) -> None:
        if not isinstance(drained, dict):
            raise TypeError(f"expected the dict that drain() returns, not {type(drained).__name__}")
        batch = []
        for kind, pair in drained.items():
            position = self._kind(kind)
            keys, deltas = pair
            keys = int64_array(keys, "keys")
            batch.append((position, keys, _deltas_for(keys, deltas)))
        for position, keys, deltas in batch:
            if deltas is None:
                raise TypeError("drained deltas must be an array, not None")
            self._impl.restore(position, keys, deltas, retract)

    def add_table(self, other: CounterTable) -> None:
        """Adds `other`'s totals and pending deltas into this table (same kinds, same backend)."""
        if not isinstance(other, CounterTable):
            raise TypeError(f"add_table takes a CounterTable, not {type(other).__name__}")
        if other._kinds != self._kinds:
            raise ValueError(f"cannot add a table of other kinds: {other._kinds} to {self._kinds}")
        _same_backend(self, other, "CounterTable", "make both under one backend")
        self._impl.add_table(other._impl)

    def __repr__(self) -> str:
        return f"CounterTable(kinds={self._kinds!r}) [{self.backend}]"


# -- WindowedCounter -------------------------------------------------------------------------------------

MAX_BUCKETS = 1 << 20


class WindowedCounter:
    """Counts per int64 key in a ring of time buckets: "trending in the last hour".

    Time is int64 seconds (e.g. unix time). The ring holds the `buckets` newest buckets of
    `bucket_seconds` each; `add` moves it forward to `now`. Events older than the ring or later than
    `now`'s bucket are not counted: `add` returns how many it dropped (``Dropped``), and ``dropped``
    sums them. `sum` and `top` read a window of whole buckets ending with `now`'s bucket.
    """

    def __init__(self, bucket_seconds: int = 60, buckets: int = 60) -> None:
        self.bucket_seconds = count(bucket_seconds, "bucket_seconds", 1)
        self.buckets = count(buckets, "buckets", 1, MAX_BUCKETS)
        if self.bucket_seconds * self.buckets > INT64_MAX:
            raise ValueError("bucket_seconds * buckets must fit in int64")
        module = _backend.kernels("counters")
        self.backend: str = _backend.backend_name(module)
        self._impl = module.WindowedCounter(self.bucket_seconds, self.buckets)

    def add(
        self,
        keys: IntArrayLike,
        timestamps: IntArrayLike,
        deltas: IntArrayLike | None = None,
        now: IntLike | None = None,
    ) -> Dropped:
        """Counts events (`deltas`, 1 each when None) of `keys` at `timestamps`; `now` (default: the
        clock) moves the ring forward first. Returns the events dropped by this call."""
        keys = int64_array(keys, "keys")
        timestamps = _deltas_for(keys, timestamps, "timestamps")
        if timestamps is None:
            raise TypeError("timestamps must be a 1-D array or sequence of ints, not None")
        deltas = _deltas_for(keys, deltas)
        return Dropped(*self._impl.add(keys, timestamps, deltas, _now(now)))

    def _window(self, window_seconds: int | None) -> int:
        span = self.bucket_seconds * self.buckets
        if window_seconds is None:
            return self.buckets
        window_seconds = count(window_seconds, "window_seconds", 1, span)
        if window_seconds % self.bucket_seconds:
            raise ValueError(
                f"window_seconds must be a multiple of bucket_seconds ({self.bucket_seconds}), "
                f"got {window_seconds}"
            )
        return window_seconds // self.bucket_seconds

    def sum(
        self, keys: IntArrayLike, now: IntLike | None = None, window_seconds: int | None = None
    ) -> NDArray[np.int64]:
        """Per key, the total in the last `window_seconds` (whole buckets; default: the whole ring) up to
        and including `now`'s bucket."""
        keys = int64_array(keys, "keys")
        return self._impl.sum(keys, _now(now), self._window(window_seconds))

    def top(self, k: int, now: IntLike | None = None, window_seconds: int | None = None) -> Totals:
        """At most `k` keys with the largest non-zero totals in the window, largest first, ties by the
        smaller key."""
        k = count(k, "k")
        return Totals(*self._impl.top(k, _now(now), self._window(window_seconds)))

    @property
    def dropped(self) -> Dropped:
        """All events dropped so far."""
        return Dropped(*self._impl.dropped())

    def __repr__(self) -> str:
        return (
            f"WindowedCounter(bucket_seconds={self.bucket_seconds}, buckets={self.buckets}) [{self.backend}]"
        )


# -- HyperLogLog -----------------------------------------------------------------------------------------


class HyperLogLog:
    """A distinct count with Redis's parameters (16,384 six-bit registers, MurmurHash64A).

    Its registers are the ones PFADD gives for the same elements, ``count()`` is what PFCOUNT answers,
    and ``to_bytes``/``from_bytes`` read and write the strings Redis keeps (GET/SET), so a sketch can
    move between a Python process and a Redis server in both directions.
    """

    def __init__(self) -> None:
        module = _backend.kernels("counters")
        self.backend: str = _backend.backend_name(module)
        self._impl = module.HyperLogLog()

    def add(self, items: HllElement | Iterable[HllElement] | NDArray[np.integer[Any]]) -> bool:
        """Adds one element (an int, str or bytes) or each of a sequence or int64 array of them.

        An int is added as its decimal string and a str as its UTF-8 bytes, as a Redis client sends
        them. Returns True when the sketch changed (as PFADD answers 1).
        """
        if isinstance(items, np.ndarray):
            if items.dtype.kind not in "iu":
                raise TypeError(f"an array of items must hold integers, got dtype {items.dtype}")
            return self._impl.add_ints(int64_array(items, "items"))
        if isinstance(items, (int, np.integer, str, bytes, bytearray, memoryview)):
            items = [items]
        try:
            items = list(items)
        except TypeError:
            raise TypeError(
                f"items must be an int, str or bytes, or a sequence of them, not {type(items).__name__}"
            ) from None
        if all(type(item) is int and INT64_MIN <= item <= INT64_MAX for item in items):
            return self._impl.add_ints(np.array(items, dtype=np.int64))
        elements = [_element(item) for item in items]
        ends = np.cumsum([len(e) for e in elements], dtype=np.int64)
        return self._impl.add_bytes(b"".join(elements), ends)

    def count(self) -> int:
        """The estimated number of distinct elements added (PFCOUNT's answer for these registers)."""
        return self._impl.count()

    def merge(self, other: HyperLogLog) -> None:
        """Makes this sketch count the union of both (PFMERGE)."""
        if not isinstance(other, HyperLogLog):
            raise TypeError(f"can only merge a HyperLogLog, not {type(other).__name__}")
        _same_backend(self, other, "HyperLogLog", "convert with HyperLogLog.from_bytes(x.to_bytes())")
        self._impl.merge(other._impl)

    def registers(self) -> NDArray[np.uint8]:
        """A copy of the 16,384 register values (uint8, 0..51)."""
        return self._impl.registers()

    def to_bytes(self) -> bytes:
        """The string Redis keeps for these registers: dense encoding, cached cardinality filled in."""
        registers = self._impl.registers()
        # Counted from this copy, not from the sketch: another thread may add between the two calls.
        snapshot = type(self._impl)()
        snapshot.load(registers)
        return _hll_format.to_dense(registers, snapshot.count())

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> HyperLogLog:
        """A sketch from a Redis HyperLogLog string (dense or sparse, as GET returns it).

        Raises ``ValueError`` when the bytes are not a well-formed HyperLogLog.
        """
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"data must be bytes, not {type(data).__name__}")
        sketch = cls()
        sketch._impl.load(np.ascontiguousarray(_hll_format.registers_of(bytes(data))))
        return sketch

    def __repr__(self) -> str:
        return f"<HyperLogLog ~{self.count()} [{self.backend}]>"


def _element(item: object) -> bytes:
    if isinstance(item, (bool, np.bool_)):
        raise TypeError("a bool is not an element; add an int, str or bytes")
    if isinstance(item, (int, np.integer)):
        return str(int(item)).encode()
    if isinstance(item, str):
        return item.encode()
    if isinstance(item, (bytes, bytearray, memoryview)):
        return bytes(item)
    raise TypeError(f"an element must be an int, str or bytes, not {type(item).__name__}")


__all__ = [
    "CounterTable",
    "Deltas",
    "Dropped",
    "HyperLogLog",
    "Totals",
    "WindowedCounter",
    "aggregate",
]
