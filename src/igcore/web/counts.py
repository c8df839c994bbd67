"""Favourites, views, unique viewers and trending: counted in each worker, written behind to Redis.

- **Favourites and views** go into the worker's ``CounterTable`` (``live``) as they happen and are
  drained into the table that ``WriteBehind`` flushes (``staged``), then flushed in a thread: one
  pipelined, idempotent script call per shard, so Redis never loses or doubles a count when it fails
  or a reply is lost (see ``igcore.counters.redis``). A background task flushes every
  ``IGCORE_WEB_FLUSH_SECONDS``; a favourite's answer also waits for a flush, shared by the favourites
  that arrive meanwhile (a group commit, ``Worker.commit``), so that a new favourite count is in Redis,
  and shown by every worker, before the client hears of it. Views wait for the timer.
- A status shows Redis's total plus what this worker counted that Redis is not known to hold yet
  (``live`` totals minus ``confirmed``, the totals of the flushes that completed). A flush in progress
  may or may not have reached Redis, so a reader waits for it to end, and reads again if another one
  began meanwhile: the count shown is exact on this worker; another worker shows a view within one
  flush interval.
- **Unique viewers** of a status: a ``HyperLogLog`` per status in the worker, merged into Redis's own
  sketch (``PFMERGE``) at each flush. Merging is idempotent, so a retried merge never counts twice.
- **Trending**: each worker counts favourites in a ``WindowedCounter`` (one-minute buckets, one hour) and
  publishes its top ``TRENDING_PER_WORKER`` of the last hour at each flush. A reader sums the workers'
  lists (``igcore.counters.aggregate``) and ranks them: exact for statuses that are in every worker's
  list, as a sum of per-worker top lists is; the tail may be undercounted.

A worker that dies loses the views it had not flushed (at most one interval; a favourite is in Redis
before it is answered); ``igcore serve --reconcile`` recounts favourites from the database (views live
only in Redis).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from igcore.counters import CounterTable, HyperLogLog, WindowedCounter, aggregate
from igcore.counters.redis import WriteBehind

from . import clients, keys

log = logging.getLogger("igcore.web")
KINDS = ("favourites", "views")
HOUR = 3600


class Counts:
    def __init__(self, sync_client: Any, client: Any, worker_name: str, replicas: int = 0) -> None:
        # The clients of igcore.web.clients: of one server or of a cluster (redis-py types replies loosely).
        self.client = client
        self.worker_name = worker_name
        self.live = CounterTable(kinds=KINDS)
        self.staged = CounterTable(kinds=KINDS)
        self.confirmed = CounterTable(kinds=KINDS)
        self.writer = WriteBehind(
            self.staged, sync_client, prefix=keys.COUNTS_PREFIX, shards=keys.SHARDS, replicas=replicas
        )
        self.trending = WindowedCounter(bucket_seconds=60, buckets=60)
        self.viewers: dict[int, HyperLogLog] = {}
        self.unconfirmed: list[dict[str, Any]] = []  # drained batches not yet known to be in Redis
        self.flushes_begun = 0
        self.idle = asyncio.Event()
        self.idle.set()

    # -- counting (on the event loop) ------------------------------------------------------------------

    def favourite(self, status_id: int, delta: int) -> None:
        self.live.add([status_id], [delta], kind="favourites")
        if delta > 0:
            self.trending.add([status_id], [int(time.time())])

    def view(self, status_id: int, viewer: int | None) -> None:
        self.live.add([status_id], kind="views")
        if viewer is not None:
            self.viewers.setdefault(status_id, HyperLogLog()).add(viewer.to_bytes(8, "little", signed=True))

    # -- reading -----------------------------------------------------------------------------------------

    async def read(self, status_ids: Sequence[int]) -> tuple[dict[str, np.ndarray], list[int]]:
        """Per kind, the totals of `status_ids` (Redis's plus this worker's not yet flushed), and their
        unique viewers: one Redis round trip."""
        ids = np.asarray(status_ids, np.int64)
        for _ in range(5):
            await self.idle.wait()
            begun = self.flushes_begun
            local = {kind: self.live.get(ids, kind) - self.confirmed.get(ids, kind) for kind in KINDS}
            stored, sketches = await self._stored(ids)
            if begun == self.flushes_begun:
                break
        totals = {kind: stored[kind] + local[kind] for kind in KINDS}
        return totals, [self._viewers(s, data) for s, data in zip(ids.tolist(), sketches)]

    async def _stored(self, ids: np.ndarray) -> tuple[dict[str, np.ndarray], list[bytes | None]]:
        if not len(ids):
            return {kind: np.zeros(0, np.int64) for kind in KINDS}, []
        pipe = self.client.pipeline(transaction=False)
        for kind in KINDS:
            for key in ids.tolist():
                pipe.hget(*self.writer.location(kind, key))
        for status_id in ids.tolist():  # GETs, not one MGET: on a cluster the sketches are on every master
            pipe.get(keys.viewers(status_id))
        replies = await pipe.execute()
        result = {}
        for n, kind in enumerate(KINDS):
            values = replies[n * len(ids) : (n + 1) * len(ids)]
            result[kind] = np.array([int(v) if v is not None else 0 for v in values], np.int64)
        return result, replies[len(KINDS) * len(ids) :]

    def _viewers(self, status_id: int, stored: bytes | None) -> int:
        pending = self.viewers.get(status_id)
        if stored is None and pending is None:
            return 0
        sketch = HyperLogLog.from_bytes(stored) if stored else HyperLogLog()
        if pending is not None:
            sketch.merge(pending)
        return sketch.count()

    async def trends(self, limit: int, offset: int = 0) -> list[int]:
        """The statuses most favourited in the last hour across all workers, most first."""
        now = time.time()
        workers = await self.client.zrangebyscore(keys.TRENDING_WORKERS, now - keys.TRENDING_TTL, "+inf")
        pipe = self.client.pipeline(transaction=False)
        for worker in workers:
            pipe.hgetall(keys.trending(worker.decode()))
        snapshots = await pipe.execute()
        pairs = [(int(k), int(v)) for snapshot in snapshots for k, v in snapshot.items()]
        if not pairs:
            return []
        rows = np.array(pairs, np.int64)
        summed = aggregate(rows[:, 0], rows[:, 1])
        order = np.lexsort((summed.keys, -summed.sums))  # most first, ties by the smaller (older) id
        return summed.keys[order][offset : offset + limit].tolist()

    # -- flushing (a background task; the Redis writes in a thread) ----------------------------------------

    async def flush(self, run: Any, publish: bool = True) -> None:
        """Drains and writes the counts; with `publish`, also the unique viewers and trending list."""
        self.flushes_begun += 1
        self.idle.clear()
        try:
            drained = self.live.drain()
            self.staged.restore(drained)
            self.unconfirmed.append(drained)
            viewers: dict[int, HyperLogLog] = {}
            top = None
            if publish:
                viewers, self.viewers = self.viewers, {}
                top = self.trending.top(keys.TRENDING_PER_WORKER, window_seconds=HOUR)
            failure: BaseException | None = None
            try:
                await run(self.writer.flush)
            except Exception as exc:  # held by the writer for the next flush; the rest still goes out
                failure = exc
            if not self.writer.held and not self.writer.in_doubt and not self.writer.refused:
                for batch in self.unconfirmed:  # every count drained so far is in Redis
                    for kind, deltas in batch.items():
                        self.confirmed.add(deltas.keys, deltas.deltas, kind=kind)
                self.unconfirmed = []
            try:
                if top is not None:
                    await self._publish(viewers, top)
            except BaseException:
                for status_id, sketch in viewers.items():  # merged again next time: merging is idempotent
                    self.viewers.setdefault(status_id, HyperLogLog()).merge(sketch)
                raise
            if failure is not None:
                raise failure
        finally:
            self.idle.set()

    async def _publish(self, viewers: dict[int, HyperLogLog], top: Any) -> None:
        """One pipeline of scripts, each atomic on the keys of one slot; a failed call fails the whole
        publish, which is sent again whole (merging sketches and replacing the list are idempotent)."""
        pipe = self.client.pipeline(transaction=False)
        for status_id, sketch in viewers.items():
            names = [keys.viewers(status_id), keys.viewers_scratch(status_id, self.worker_name)]
            clients.script(pipe, keys.MERGE_SKETCH, names, [sketch.to_bytes()])
        pairs = [value for pair in zip(top.keys.tolist(), top.sums.tolist()) for value in pair]
        mine = [keys.trending(self.worker_name)]
        clients.script(pipe, keys.REPLACE_TRENDING, mine, [keys.TRENDING_TTL, *pairs])
        pipe.zadd(keys.TRENDING_WORKERS, {self.worker_name: time.time()})
        await pipe.execute()
