"""Write-behind of a ``CounterTable`` to Redis: drained deltas become pipelined ``HINCRBY``, once each.

A web tier counts events in process and calls ``WriteBehind.flush()`` every few seconds, so Redis sees
one write per key and kind per interval instead of one per event. Nothing is lost and nothing counts
twice:

- A flush drains the table into the deltas the flusher *holds* and sends them as a batch of *parts*,
  one Lua script call per part, pipelined. A part applies its ``HINCRBY`` and records a *marker* key in
  the same atomic script, and skips everything if its marker exists: sent twice, it still counts once.
- Held deltas are let go only once Redis has answered that their part ran. Whatever fails after the
  drain (Redis down, a timeout, a broken connection, any exception at all) leaves them held for the
  next flush, and the exception propagates. Parts whose reply never came are *in doubt*: they may have
  run. The next flush first settles each one with a second script that, atomically, reads its marker
  or, if absent, writes a "fenced" marker so that the part can never run later. A part found applied
  has its deltas let go; a fenced one's go out with the new batch.
- A part applies wholly or not at all. When Redis refuses a field (its hash holds another type, its
  value is not an integer, or its total would leave int64), the script puts back every field it had
  changed and writes no marker. The flush sets the refused fields' deltas aside (``refused``: not sent
  again until ``retry_refused()``), keeps the rest of the part for the next flush, and raises
  ``FlushError``.

Key layout (``prefix`` defaults to ``igcore``; ``shard = key mod shards``, 0 <= shard < shards)::

    igcore:{17}:likes                  hash: field = the key in decimal, value = its total
    igcore:{17}:batch:<batch>:<n>      marker of part n of a batch for shard 17 ("applied" or
                                       "fenced"), expiring after batch_ttl seconds

The braces make ``{17}`` the Redis Cluster hash tag: every key of a shard lives in one slot, so each
script touches a single slot. To read a total: ``HGET igcore:{<key mod shards>}:<kind> <key>`` (or
``WriteBehind.totals``).

Redis Cluster (``redis.cluster.RedisCluster``) and replicas: the parts go to the master of their slot,
pipelined per master. Redis replicates asynchronously, so a master can answer that a part ran and die
before its replica has it; the replica that takes over then lacks the part, and a flusher that had let
its deltas go would have lost them. With ``replicas=N`` a flush ends each master's pipeline with
``WAIT N``, on the connection that sent the parts: a part counts as applied only once N replicas have
it, and a part Redis ran that fewer replicas have stays *in doubt*. Settling re-writes the marker it
finds (or the fence it writes) and waits likewise, so what it concludes is on the replicas too: a part
whose marker a failover lost is fenced on the new master and sent again; one that reached the replica
is let go. A master with fewer than N replicas in sync (after a failover, until the old master is back
as a replica) fails every flush with ``FlushError``: the deltas stay held, none is lost. The guarantee
is the one Redis gives for WAIT: the replica that takes over must be one that acknowledged, which holds
when N is the number of replicas each master has.

Limits: a part in doubt must be settled (by the next flush) within ``batch_ttl`` seconds, while its
marker lives. One ``WriteBehind`` per table flushes it (flushes are serialised by a lock). What the
table and the flusher hold lives in the process: a process that dies loses it.
"""

from __future__ import annotations

import contextlib
import inspect
import threading
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Union, cast

import numpy as np

try:
    import redis
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError(
        "igcore.counters.redis needs the Python client `redis`: pip install 'igcore[redis]'"
    ) from exc

from .._arrays import INT64_MAX, INT64_MIN, count, int64_array
from . import CounterTable, Deltas

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from numpy.typing import NDArray
    from redis.cluster import RedisCluster

    from .._typing import IntArrayLike

# KEYS[1]: the part's marker; KEYS[2..]: the shard's hash of each kind in the part.
# ARGV[1]: the marker's time to live; then triples (position of the hash in KEYS, field, delta).
# Returns 1 once applied, 0 if the marker says it already was (re-written: a later WAIT then covers it);
# or, when Redis refuses fields, the list
# (field's number in the part, Redis's error, ...) after putting back what it had changed: a part
# applies wholly or not at all. Each value put back is the string read before, so no arithmetic is
# done in Lua (whose numbers are doubles).
APPLY_PART = """
local state = redis.call('GET', KEYS[1])
if state then
  redis.call('SET', KEYS[1], state, 'KEEPTTL')
  return 0
end
local changed, refused = {}, {}
for i = 2, #ARGV, 3 do
  local hash, field = KEYS[tonumber(ARGV[i])], ARGV[i + 1]
  local before = redis.pcall('HGET', hash, field)
  local reply = redis.pcall('HINCRBY', hash, field, ARGV[i + 2])
  if type(reply) == 'table' and reply.err then
    refused[#refused + 1] = (i - 2) / 3
    refused[#refused + 1] = reply.err
  else
    changed[#changed + 1] = {hash, field, before}
  end
end
if #refused > 0 then
  for j = #changed, 1, -1 do
    local hash, field, before = changed[j][1], changed[j][2], changed[j][3]
    if before then redis.call('HSET', hash, field, before) else redis.call('HDEL', hash, field) end
  end
  return refused
end
redis.call('SET', KEYS[1], 'applied', 'EX', ARGV[1])
return 1
"""

# Settles a part in doubt: its marker if it ran (re-written, for a later WAIT to cover); otherwise a
# "fenced" marker, so it never will.
SETTLE_PART = """
local state = redis.call('GET', KEYS[1])
if state then
  redis.call('SET', KEYS[1], state, 'KEEPTTL')
  return state
end
redis.call('SET', KEYS[1], 'fenced', 'EX', ARGV[1])
return 'fenced'
"""


class FlushError(redis.RedisError):
    """Redis refused fields of a flush (set aside in ``WriteBehind.refused``), answered parts with an
    error, or ran parts that too few replicas acknowledged (in doubt, settled by the next flush).
    Everything else of the flush was applied or is held."""


class NotReplicated(redis.RedisError):
    """Stands for the reply of a part (or a settlement) that its master ran but fewer than ``replicas``
    replicas acknowledged within ``replica_timeout``."""


@dataclass(frozen=True)
class Flushed:
    """What one flush did."""

    batch: str  # the batch id (part of each marker key)
    fields: int  # hash fields sent: one per kind and key with a non-zero delta
    parts: int  # script calls sent (one per shard, more for shards with over part_size fields)
    settled: int  # parts of earlier failed flushes settled first
    settled_applied: int  # of those, the ones that had run after all


@dataclass
class _Part:
    marker: str
    hashes: list[str]
    arguments: list[int]  # ARGV: the markers' time to live, then (hash position, key, delta) triples
    entries: list[tuple[str, int, int]]  # (kind, key, delta) of each field, in the order sent


# Deltas per kind as the flusher keeps them: {kind: {key: delta}}, exact Python ints.
Held = dict[str, dict[int, int]]


class WriteBehind:
    """Flushes a ``CounterTable``'s drained deltas to Redis (see the module's docstring).

    `client` is a ``redis.Redis`` or a ``redis.cluster.RedisCluster`` (their retries on connection
    errors are safe: parts are idempotent), replying bytes or str (``decode_responses``). `shards`
    spreads the keys over that many hashes per kind; `part_size` bounds the fields one script call
    increments, so that no call holds Redis long. `replicas`: how many replicas of its master must have
    a part before it counts as applied (``WAIT``), waiting at most `replica_timeout` seconds; 0 trusts
    the master's answer alone.
    """

    def __init__(
        self,
        table: CounterTable,
        client: Union[redis.Redis, RedisCluster],
        *,
        prefix: str = "igcore",
        shards: int = 64,
        part_size: int = 1000,
        batch_ttl: int = 86_400,
        replicas: int = 0,
        replica_timeout: float = 1.0,
    ) -> None:
        if not isinstance(table, CounterTable):
            raise TypeError(f"table must be an igcore CounterTable, not {type(table).__name__}")
        _check_client(client)
        shards, part_size, batch_ttl = (
            count(shards, "shards", 1),
            count(part_size, "part_size", 1),
            count(batch_ttl, "batch_ttl", 1),
        )
        replicas = count(replicas, "replicas", 0)
        if isinstance(replica_timeout, bool) or not isinstance(replica_timeout, (int, float)):
            raise TypeError(
                f"replica_timeout must be a number of seconds, not {type(replica_timeout).__name__}"
            )
        if not 0.001 <= replica_timeout <= 3600:
            raise ValueError(
                f"replica_timeout must be between 0.001 and 3600 seconds, got {replica_timeout!r}"
            )
        if not isinstance(prefix, str) or "{" in prefix or "}" in prefix:
            raise ValueError(f"prefix must be a str without braces, got {prefix!r}")
        self.table = table
        self.client = client
        self.prefix = prefix
        self.shards = shards
        self.part_size = part_size
        self.batch_ttl = batch_ttl
        self.replicas = replicas
        self.replica_timeout = replica_timeout
        self._cluster = _is_cluster(client)
        # The state is replaced, never changed in place, each piece in one assignment: an exception at
        # any point leaves either the old state or the new one. Readers need no lock.
        # Chunks of deltas not known to be in Redis: drain() dicts or Held.
        self._held: Sequence[Union[dict[str, Deltas], Held]] = []
        self._in_doubt: list[_Part] = []
        self._refused: Held = {}
        self._lock = threading.Lock()

    # -- the key layout ----------------------------------------------------------------------------------

    def hash_name(self, kind: str, shard: int) -> str:
        return f"{self.prefix}:{{{shard}}}:{kind}"

    def location(self, kind: str, key: int) -> tuple[str, str]:
        """The hash and field that hold `key`'s total of `kind`."""
        return self.hash_name(kind, int(key) % self.shards), str(int(key))

    def totals(self, kind: str, keys: IntArrayLike) -> NDArray[np.int64]:
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

    # -- what the flusher holds ----------------------------------------------------------------------------

    @property
    def in_doubt(self) -> int:
        """Parts of failed flushes not settled yet (the next flush settles them first)."""
        return len(self._in_doubt)

    @property
    def held(self) -> Held:
        """Deltas drained from the table that Redis is not known to hold, ``{kind: {key: delta}}``: the
        next flush sends them (less those of parts in doubt that turn out to have run)."""
        return _merged(self._held)

    @property
    def refused(self) -> Held:
        """Deltas of fields Redis refused, ``{kind: {key: delta}}``, kept aside and not sent again: repair
        the values in Redis, then call ``retry_refused``."""
        return {kind: dict(deltas) for kind, deltas in self._refused.items()}

    def retry_refused(self) -> None:
        """Hands the refused deltas back to be sent by the next flush."""
        with self._lock:
            self._held, self._refused = [*self._held, self._refused], {}

    # -- flushing --------------------------------------------------------------------------------------------

    def flush(self) -> Flushed:
        """Settles earlier parts in doubt, then drains the table and writes what it holds to Redis.

        On failure the deltas not known to be in Redis stay held for the next flush and the exception
        (a ``redis.RedisError``, ``FlushError`` when Redis refused fields, or whatever was raised)
        propagates; call ``flush`` again later.
        """
        with self._lock:
            settled, settled_applied = self._settle_in_doubt()
            self._held = [*self._held, self.table.drain()]
            # From here on the drained deltas are held: whatever is raised, the next flush sends them.
            held = _merged(self._held)
            self._held = [held]
            batch = uuid.uuid4().hex
            parts, beyond = self._parts(held, batch)
            if parts:
                self._send(parts, beyond)
            return Flushed(batch, sum(len(p.entries) for p in parts), len(parts), settled, settled_applied)

    def _settle_in_doubt(self) -> tuple[int, int]:
        if not self._in_doubt:
            return 0, 0
        calls = [
            (part.marker, ("EVAL", SETTLE_PART, 1, part.marker, self.batch_ttl)) for part in self._in_doubt
        ]
        states, failure = self._execute(calls)
        # On any failure nothing changes here: the parts stay in doubt (settling again is harmless).
        if failure is not None:
            raise failure
        for state in states:
            if isinstance(state, Exception):
                raise state
        applied = [part for part, state in zip(self._in_doubt, states) if _text(state) == "applied"]
        let_go: Held = {}
        for part in applied:
            _add(let_go, part.entries, sign=-1)
        self._held, self._in_doubt = [*self._held, let_go], []
        return len(states), len(applied)

    def _send(self, parts: list[_Part], beyond: Held) -> None:
        # EVAL rather than EVALSHA: no NOSCRIPT after a restart, and no round trip to check for the
        # script before the pipeline goes out (Redis caches the compiled script by its digest).
        calls = [
            (
                part.marker,
                ("EVAL", APPLY_PART, 1 + len(part.hashes), part.marker, *part.hashes, *part.arguments),
            )
            for part in parts
        ]
        try:
            replies, failure = self._execute(calls)
            held, refused, in_doubt, problems = self._outcome(parts, replies, beyond)
        except BaseException:
            # No full answer: any part may have run. The deltas stay held; the parts wait to be settled.
            self._in_doubt = [*self._in_doubt, *parts]
            raise
        self._held, self._refused, self._in_doubt = held, refused, in_doubt
        if failure is not None:
            raise failure
        if problems:
            raise FlushError("; ".join(problems))

    def _execute(self, calls: list[tuple[str, tuple[Any, ...]]]) -> tuple[list[Any], BaseException | None]:
        """Runs each (key, command) on the master of its key's slot, pipelined per master; with
        `replicas`, each pipeline ends with WAIT on the same connection. Returns a reply per call
        (Redis's; the error of a master whose pipeline failed; ``NotReplicated`` for a reply too few
        replicas have) and the first such failure of a whole pipeline, raised by the caller once the
        state is updated. An exception that is not Redis's propagates at once."""
        replies: list[Any] = [None] * len(calls)
        failure: BaseException | None = None
        for node, positions in self._masters([key for key, _ in calls]):
            pipe: Any = node.pipeline(transaction=False)  # redis-py types its commands loosely
            for position in positions:
                pipe.execute_command(*calls[position][1])
            if self.replicas:
                pipe.execute_command("WAIT", self.replicas, max(1, round(self.replica_timeout * 1000)))
            try:
                answers = pipe.execute(raise_on_error=False)
            except redis.RedisError as exc:
                failure = failure or exc
                answers = [exc] * (len(positions) + bool(self.replicas))
            if len(answers) != len(positions) + bool(self.replicas):
                raise redis.RedisError(
                    f"expected {len(positions) + bool(self.replicas)} replies, got {len(answers)}"
                )
            if self.replicas:
                acknowledged, answers = answers[-1], answers[:-1]
                if isinstance(acknowledged, Exception) or int(acknowledged) < self.replicas:
                    short = NotReplicated(
                        f"{acknowledged if isinstance(acknowledged, Exception) else int(acknowledged)} of "
                        f"{self.replicas} replicas acknowledged within {self.replica_timeout:g} s"
                    )
                    answers = [a if isinstance(a, Exception) else short for a in answers]
            for position, answer in zip(positions, answers):
                replies[position] = answer
        if self._cluster and (failure is not None or any(_is_redirect(r) for r in replies)):
            self._refresh_slots()
        return replies, failure

    def _masters(self, keys: list[str]) -> list[tuple[redis.Redis, list[int]]]:
        """The client of each master that holds some of `keys`, with the positions of its keys."""
        if not self._cluster:
            return [(cast("redis.Redis", self.client), list(range(len(keys))))]
        from redis.exceptions import RedisClusterException

        cluster: Any = self.client  # a RedisCluster, whose methods these are
        groups: dict[str, tuple[redis.Redis, list[int]]] = {}
        try:
            for position, key in enumerate(keys):
                node = cluster.get_node_from_key(key)
                groups.setdefault(node.name, (cluster.get_redis_connection(node), []))[1].append(position)
        except RedisClusterException as exc:  # a slot no master serves (yet): a Redis error like any other
            self._refresh_slots()
            raise redis.exceptions.ClusterError(f"the cluster cannot take the flush now: {exc}") from exc
        return list(groups.values())

    def _refresh_slots(self) -> None:
        """Re-reads which master serves which slot, after a failover or a moved slot; a cluster still
        electing leaves the old map, and the next flush tries again."""
        from redis.exceptions import RedisClusterException

        with contextlib.suppress(redis.RedisError, RedisClusterException):
            cluster: Any = self.client
            cluster.nodes_manager.initialize()

    def _outcome(
        self, parts: list[_Part], replies: list[Any], beyond: Held
    ) -> tuple[list[Held], Held, list[_Part], list[str]]:
        """The state after `replies`: what stays held, refused and in doubt, and what to complain of."""
        if len(replies) != len(parts):
            raise redis.RedisError(f"expected {len(parts)} replies, got {len(replies)}")
        kept = {kind: dict(deltas) for kind, deltas in beyond.items()}
        refused = {kind: dict(deltas) for kind, deltas in self._refused.items()}
        in_doubt = list(self._in_doubt)
        refusals, errors = [], []
        for part, reply in zip(parts, replies):
            if isinstance(reply, list):  # refused fields by number, each with Redis's error
                reasons = {int(n): _text(error) for n, error in zip(reply[::2], reply[1::2])}
                for number, entry in enumerate(part.entries):
                    if number in reasons:
                        _add(refused, [entry])
                        refusals.append((entry, reasons[number]))
                    else:
                        _add(kept, [entry])
            elif isinstance(reply, Exception) or reply not in (0, 1):
                # Not the script's answer (an error before it ran, or one it did not catch): settle it.
                in_doubt.append(part)
                _add(kept, part.entries)
                errors.append(reply)
        problems = []
        if refusals:
            (kind, key, _), reason = refusals[0]
            s = "s" if len(refusals) > 1 else ""
            problems.append(
                f"Redis refused {len(refusals)} field{s}, set aside in WriteBehind.refused: {kind} of "
                f"key {key} ({self.location(kind, key)[0]}): {reason}"
            )
        if errors:
            problems.append(
                f"Redis answered {len(errors)} of {len(parts)} parts with an error (in doubt, settled "
                f"by the next flush): {errors[0]}"
            )
        return ([kept] if kept else []), refused, in_doubt, problems

    def _parts(self, held: Held, batch: str) -> tuple[list[_Part], Held]:
        """The held deltas grouped by shard, in parts of at most `part_size` fields, and what is beyond
        int64 in a field (a sum of held deltas), left for a later flush."""
        order = {kind: i for i, kind in enumerate(self.table.kinds)}
        by_shard: dict[int, list[tuple[str, int, int]]] = {}
        beyond: Held = {}
        for kind, deltas in held.items():
            for key, delta in deltas.items():
                sent = min(max(delta, INT64_MIN), INT64_MAX)
                if sent != delta:
                    beyond.setdefault(kind, {})[key] = delta - sent
                by_shard.setdefault(key % self.shards, []).append((kind, key, sent))
        parts = []
        for shard in sorted(by_shard):
            entries = sorted(by_shard[shard], key=lambda entry: (order[entry[0]], entry[1]))
            for number, start in enumerate(range(0, len(entries), self.part_size)):
                parts.append(self._part(shard, batch, number, entries[start : start + self.part_size]))
        return parts, beyond

    def _part(self, shard: int, batch: str, number: int, entries: list[tuple[str, int, int]]) -> _Part:
        kinds = list(dict.fromkeys(kind for kind, _, _ in entries))
        position = {kind: i + 2 for i, kind in enumerate(kinds)}  # KEYS[1] is the marker
        arguments: list[int] = [self.batch_ttl]
        for kind, key, delta in entries:
            arguments += [position[kind], key, delta]
        return _Part(
            marker=f"{self.prefix}:{{{shard}}}:batch:{batch}:{number}",
            hashes=[self.hash_name(kind, shard) for kind in kinds],
            arguments=arguments,
            entries=entries,
        )


def _check_client(client: object) -> None:
    if inspect.iscoroutinefunction(getattr(client, "execute_command", None)):
        raise TypeError(
            "WriteBehind needs a synchronous client (redis.Redis or redis.cluster.RedisCluster), not an "
            "asyncio one"
        )
    if not callable(getattr(client, "pipeline", None)):
        raise TypeError(
            f"client must be a redis.Redis or a redis.cluster.RedisCluster, not {type(client).__name__}"
        )


def _is_cluster(client: object) -> bool:
    from redis.cluster import RedisCluster

    return isinstance(client, RedisCluster)


def _is_redirect(reply: object) -> bool:
    """A reply saying the slot is served elsewhere now (MOVED, ASK) or by no one yet (CLUSTERDOWN,
    TRYAGAIN). redis-py parses these into their own classes, whose text drops the reply's first word."""
    redirects = (
        redis.exceptions.AskError,  # MovedError too
        redis.exceptions.ClusterDownError,
        redis.exceptions.TryAgainError,
    )
    if isinstance(reply, redirects):
        return True
    return isinstance(reply, redis.ResponseError) and str(reply).split(" ", 1)[0] in (
        "MOVED",
        "ASK",
        "CLUSTERDOWN",
        "TRYAGAIN",
    )


def _text(reply: object) -> str:
    """A reply as str, whether the client decodes replies or not."""
    return reply.decode() if isinstance(reply, bytes) else str(reply)


def _add(into: Held, entries: Iterable[tuple[str, int, int]], sign: int = 1) -> None:
    for kind, key, delta in entries:
        deltas = into.setdefault(kind, {})
        deltas[key] = deltas.get(key, 0) + sign * delta


def _merged(chunks: Iterable[Mapping[str, Union[Deltas, dict[int, int]]]]) -> Held:
    """The sum of chunks of deltas (``drain()`` dicts or Held), without the keys that sum to zero."""
    merged: Held = {}
    deltas: Union[Deltas, dict[int, int], Iterable[tuple[int, int]]]
    for chunk in chunks:
        for kind, deltas in chunk.items():
            if isinstance(deltas, Deltas):
                deltas = zip(deltas.keys.tolist(), deltas.deltas.tolist())
            else:
                deltas = deltas.items()
            into = merged.setdefault(kind, {})
            for key, delta in deltas:
                into[key] = into.get(key, 0) + delta
    merged = {kind: {k: d for k, d in deltas.items() if d} for kind, deltas in merged.items()}
    return {kind: deltas for kind, deltas in merged.items() if deltas}


__all__ = ["FlushError", "Flushed", "NotReplicated", "WriteBehind"]
