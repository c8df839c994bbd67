"""Write-behind of a ``CounterTable`` to Redis: drained deltas become pipelined ``HINCRBY``, once each.

A web tier counts events in process and calls ``WriteBehind.flush()`` every few seconds, so Redis sees
one write per key and kind per interval instead of one per event. Nothing is lost and nothing counts
twice:

- A flush drains the table and sends the deltas as a batch of *parts*, one Lua script call per part,
  pipelined. A part applies its ``HINCRBY`` and records a *marker* key in the same atomic script, and
  skips everything if its marker exists: sent twice, it still counts once.
- If the flush fails (Redis down, a timeout, a broken connection), every delta not known to be applied
  goes back into the table (``CounterTable.restore``) and the exception propagates. Parts whose reply
  never came are *in doubt*: they may have run. The next flush first settles each one with a second
  script that, atomically, reads its marker or, if absent, writes a "fenced" marker so that the part can
  never run later. A part found applied has its deltas taken back out of the table
  (``CounterTable.retract``); a fenced one's deltas stay there and go out with the new batch.

Key layout (``prefix`` defaults to ``igcore``; ``shard = key mod shards``, 0 <= shard < shards)::

    igcore:{17}:likes                  hash: field = the key in decimal, value = its total
    igcore:{17}:batch:<batch>:<n>      marker of part n of a batch for shard 17 ("applied" or
                                       "fenced"), expiring after batch_ttl seconds

The braces make ``{17}`` the Redis Cluster hash tag: every key of a shard lives in one slot, so each
script touches a single slot, as Redis Cluster requires, and the shards spread over the cluster's
nodes. To read a total: ``HGET igcore:{<key mod shards>}:<kind> <key>`` (or ``WriteBehind.totals``).

Limits: a part in doubt must be settled (by the next flush) within ``batch_ttl`` seconds, while its
marker lives. One ``WriteBehind`` per table flushes it (flushes are serialised by a lock). A hash that
Redis holds as another type fails its part before any write; a field that is not an integer, or a total
beyond int64 in Redis, fails its part midway, as a bare ``HINCRBY`` would.
"""

from __future__ import annotations

import threading
import uuid
from dataclasses import dataclass

import numpy as np

try:
    import redis
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "igcore.counters.redis needs the Python client `redis`: pip install 'igcore[redis]'"
    ) from exc

from .._arrays import int64_array
from . import CounterTable, Deltas

# KEYS[1]: the part's marker; KEYS[2..]: the shard's hash of each kind in the part.
# ARGV[1]: the marker's time to live; then triples (position of the hash in KEYS, field, delta).
APPLY_PART = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
for i = 2, #KEYS do
  local held = redis.call('TYPE', KEYS[i])['ok']
  if held ~= 'hash' and held ~= 'none' then
    return redis.error_reply('WRONGTYPE ' .. KEYS[i] .. ' holds a ' .. held .. ', not a hash')
  end
end
for i = 2, #ARGV, 3 do
  redis.call('HINCRBY', KEYS[tonumber(ARGV[i])], ARGV[i + 1], ARGV[i + 2])
end
redis.call('SET', KEYS[1], 'applied', 'EX', ARGV[1])
return 1
"""

# Settles a part in doubt: its marker if it ran; otherwise a "fenced" marker, so it never will.
SETTLE_PART = """
local state = redis.call('GET', KEYS[1])
if state then return state end
redis.call('SET', KEYS[1], 'fenced', 'EX', ARGV[1])
return 'fenced'
"""


class FlushError(redis.RedisError):
    """Redis refused part of a flush (e.g. a key of the layout holds another type); the refused deltas
    are back in the table."""


@dataclass(frozen=True)
class Flushed:
    """What one flush did."""

    batch: str  # the batch id (part of each marker key)
    fields: int  # hash fields incremented: one per kind and key with a non-zero delta
    parts: int  # script calls sent (one per shard, more for shards with over part_size fields)
    settled: int  # parts of earlier failed flushes settled first
    settled_applied: int  # of those, the ones that had run after all


@dataclass
class _Part:
    marker: str
    hashes: list[str]
    arguments: list
    deltas: dict[str, Deltas]  # what the part carries, to restore or retract


class WriteBehind:
    """Flushes a ``CounterTable``'s drained deltas to Redis (see the module's docstring).

    `client` is a ``redis.Redis`` (its retries on connection errors are safe: parts are idempotent).
    `shards` spreads the keys over that many hashes per kind; `part_size` bounds the fields one script
    call increments, so that no call holds Redis for long.
    """

    def __init__(
        self,
        table: CounterTable,
        client,
        *,
        prefix: str = "igcore",
        shards: int = 64,
        part_size: int = 1000,
        batch_ttl: int = 86_400,
    ):
        if not isinstance(table, CounterTable):
            raise TypeError(f"table must be an igcore CounterTable, not {type(table).__name__}")
        for name, value, low in (
            ("shards", shards, 1),
            ("part_size", part_size, 1),
            ("batch_ttl", batch_ttl, 1),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValueError(f"{name} must be an int of at least {low}, got {value!r}")
        if not isinstance(prefix, str) or "{" in prefix or "}" in prefix:
            raise ValueError(f"prefix must be a str without braces, got {prefix!r}")
        self.table = table
        self.client = client
        self.prefix = prefix
        self.shards = shards
        self.part_size = part_size
        self.batch_ttl = batch_ttl
        self._in_doubt: list[_Part] = []
        self._lock = threading.Lock()

    # -- the key layout ----------------------------------------------------------------------------------

    def hash_name(self, kind: str, shard: int) -> str:
        return f"{self.prefix}:{{{shard}}}:{kind}"

    def location(self, kind: str, key: int) -> tuple[str, str]:
        """The hash and field that hold `key`'s total of `kind`."""
        return self.hash_name(kind, int(key) % self.shards), str(int(key))

    def totals(self, kind: str, keys) -> np.ndarray:
        """The totals Redis holds for `keys` (0 where it holds none), as an int64 array."""
        if kind not in self.table.kinds:
            raise ValueError(f"unknown kind {kind!r}; the table counts {', '.join(self.table.kinds)}")
        keys = int64_array(keys, "keys")
        shards = keys % self.shards
        pipe = self.client.pipeline(transaction=False)
        groups = [np.flatnonzero(shards == shard) for shard in np.unique(shards)]
        for positions in groups:
            shard = int(shards[positions[0]])
            pipe.hmget(self.hash_name(kind, shard), [str(k) for k in keys[positions].tolist()])
        totals = np.zeros(len(keys), dtype=np.int64)
        for positions, values in zip(groups, pipe.execute()):
            totals[positions] = [int(v) if v is not None else 0 for v in values]
        return totals

    # -- flushing --------------------------------------------------------------------------------------------

    @property
    def in_doubt(self) -> int:
        """Parts of failed flushes not settled yet (the next flush settles them first)."""
        return len(self._in_doubt)

    def flush(self) -> Flushed:
        """Settles earlier parts in doubt, then drains the table and writes the deltas to Redis.

        On failure the deltas are back in the table and the exception (a ``redis.RedisError``, or
        ``FlushError`` when Redis refused a part) propagates; call ``flush`` again later.
        """
        with self._lock:
            settled, settled_applied = self._settle_in_doubt()
            batch = uuid.uuid4().hex
            drained = self.table.drain()
            parts = self._parts(drained, batch)
            fields = sum(len(d.keys) for d in drained.values())
            if parts:
                self._send(parts, drained)
            return Flushed(batch, fields, len(parts), settled, settled_applied)

    def _settle_in_doubt(self) -> tuple[int, int]:
        if not self._in_doubt:
            return 0, 0
        pipe = self.client.pipeline(transaction=False)
        for part in self._in_doubt:
            pipe.eval(SETTLE_PART, 1, part.marker, self.batch_ttl)
        states = pipe.execute()  # on failure nothing changes here: the parts stay in doubt
        applied = 0
        for part, state in zip(self._in_doubt, states):
            if state == b"applied":
                self.table.retract(part.deltas)
                applied += 1
        settled = len(self._in_doubt)
        self._in_doubt = []
        return settled, applied

    def _send(self, parts: list[_Part], drained: dict[str, Deltas]) -> None:
        pipe = self.client.pipeline(transaction=False)
        for part in parts:
            # EVAL rather than EVALSHA: no NOSCRIPT after a restart, and no round trip to check for the
            # script before the pipeline goes out (Redis caches the compiled script by its digest).
            pipe.eval(APPLY_PART, 1 + len(part.hashes), part.marker, *part.hashes, *part.arguments)
        try:
            replies = pipe.execute(raise_on_error=False)
        except BaseException:
            # No reply: any part may have run. All deltas go back; the parts wait to be settled.
            self.table.restore(drained)
            self._in_doubt.extend(parts)
            raise
        refused = [(part, reply) for part, reply in zip(parts, replies) if isinstance(reply, Exception)]
        if refused:
            # The script checks before it writes: a refused part did not run.
            for part, _ in refused:
                self.table.restore(part.deltas)
            raise FlushError(f"Redis refused {len(refused)} of {len(parts)} parts: {refused[0][1]}")

    def _parts(self, drained: dict[str, Deltas], batch: str) -> list[_Part]:
        """The drained deltas grouped by shard, in parts of at most `part_size` fields."""
        by_shard: dict[int, list[tuple[str, np.ndarray, np.ndarray]]] = {}
        for kind, deltas in drained.items():
            if not len(deltas.keys):
                continue
            shards = deltas.keys % self.shards
            order = np.argsort(shards, kind="stable")
            bounds = np.flatnonzero(np.diff(shards[order])) + 1
            for positions in np.split(order, bounds):
                shard = int(shards[positions[0]])
                by_shard.setdefault(shard, []).append(
                    (kind, deltas.keys[positions], deltas.deltas[positions])
                )
        parts = []
        for shard in sorted(by_shard):
            entries = [
                (kind, key, delta)
                for kind, keys, deltas in by_shard[shard]
                for key, delta in zip(keys.tolist(), deltas.tolist())
            ]
            for number, start in enumerate(range(0, len(entries), self.part_size)):
                parts.append(self._part(shard, batch, number, entries[start : start + self.part_size]))
        return parts

    def _part(self, shard: int, batch: str, number: int, entries: list[tuple[str, int, int]]) -> _Part:
        kinds = list(dict.fromkeys(kind for kind, _, _ in entries))
        position = {kind: i + 2 for i, kind in enumerate(kinds)}  # KEYS[1] is the marker
        arguments: list = [self.batch_ttl]
        carried: dict[str, tuple[list[int], list[int]]] = {kind: ([], []) for kind in kinds}
        for kind, key, delta in entries:
            arguments += [position[kind], key, delta]
            carried[kind][0].append(key)
            carried[kind][1].append(delta)
        return _Part(
            marker=f"{self.prefix}:{{{shard}}}:batch:{batch}:{number}",
            hashes=[self.hash_name(kind, shard) for kind in kinds],
            arguments=arguments,
            deltas={
                kind: Deltas(np.array(keys, dtype=np.int64), np.array(deltas, dtype=np.int64))
                for kind, (keys, deltas) in carried.items()
            },
        )


__all__ = ["FlushError", "Flushed", "WriteBehind"]
