"""One worker process's runtime: its Redis clients, its graph, its counters, its thread pool and its
background tasks, made at ASGI lifespan startup and closed at shutdown (which flushes the counters).

Off the event loop, in ``pool`` (the compiled kernels release the GIL, so these threads run in
parallel with the loop and each other): graph updates (they wait for running queries), follower lists
of authors with many followers, suggestions, familiar followers of accounts with many follows, and the
counters' write-behind (a synchronous Redis client), and the database's queries (``db``: a request's
queries in one hop, on threads that keep their connections). Everything else is short enough for the
loop: a home page merges at most a few thousand entries.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from django.conf import settings
from django.db import close_old_connections

from . import clients, keys
from .counts import Counts
from .feeds import Feeds
from .follows import Follows
from .ids import SLOTS, IdGenerator
from .sorted_feeds import SortedSetFeeds

log = logging.getLogger("igcore.web")
T = TypeVar("T")

_current: Worker | None = None


def current() -> Worker:
    if _current is None:
        raise RuntimeError("the igcore web worker is not running (serve igcore.web.asgi:application)")
    return _current


class Worker:
    def __init__(self) -> None:
        self.name = f"{os.uname().nodename}:{os.getpid()}"
        self.cluster = clients.cluster_address() is not None
        self.redis = clients.async_client()
        self.sync_redis = clients.sync_client()
        self.pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="igcore-web")
        self.fanout_limit: int = settings.IGCORE_FANOUT_LIMIT
        self.rate_limit: tuple[int, int] | None = settings.IGCORE_RATE_LIMIT
        self.ids = IdGenerator(0)
        self.follows: Follows
        self.feeds: Feeds | SortedSetFeeds
        self.counts: Counts
        self._tasks: list[asyncio.Task[None]] = []
        self._flush_lock = asyncio.Lock()
        self._flushes_started = self._flushes_finished = 0

    async def start(self) -> None:
        self.ids = IdGenerator((await self.redis.incr(keys.WORKER_SLOT)) % SLOTS)
        self.follows = await self.offload(Follows, settings.IGCORE_GRAPH_PATH)
        await self.catch_up()
        self.feeds = SortedSetFeeds(self) if settings.IGCORE_HOME_FEEDS == "sorted-set" else Feeds(self)
        self.counts = Counts(self.sync_redis, self.redis, self.name, replicas=settings.IGCORE_REDIS_REPLICAS)
        self._tasks = [
            asyncio.create_task(self._every(settings.IGCORE_FLUSH_SECONDS, self.flush)),
            asyncio.create_task(self._every(1.0, self.catch_up)),
        ]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        try:
            await self.flush()  # what was counted since the last flush
        except Exception:
            log.exception("the last flush failed: counts not yet in Redis are lost")
        await self.redis.aclose()
        self.sync_redis.close()
        self.pool.shutdown(wait=True)

    async def offload(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """`fn(*args)` in the worker's thread pool."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, functools.partial(fn, *args, **kwargs))

    async def db(self, fn: Callable[..., T], *args: Any) -> T:
        """`fn(*args)`, which queries the database, in the worker's thread pool. Each pool thread keeps
        its connection between calls; after each call it is closed if it broke or outlived
        CONN_MAX_AGE (with PostgreSQL's pool: handed back to the pool), as Django does per request."""
        return await self.offload(_in_db_thread, fn, *args)

    async def flush(self) -> None:
        """The timer's flush: every count, the unique viewers and this worker's trending list."""
        async with self._flush_lock:
            self._flushes_started += 1
            try:
                await self.counts.flush(self.offload, publish=True)
            finally:
                self._flushes_finished = self._flushes_started

    async def commit(self) -> None:
        """Returns once a flush that began after this call has ended: a favourite's answer waits for
        it, so that every worker shows the new count at once. Concurrent callers share one flush (a
        group commit): under load, favourites still reach Redis in batches."""
        wanted = self._flushes_started + 1
        async with self._flush_lock:
            if self._flushes_finished >= wanted:
                return  # a flush that began after the call has ended meanwhile
            self._flushes_started += 1
            try:
                await self.counts.flush(self.offload, publish=False)
            except Exception as exc:  # the count stays held, shown here and sent by the next flush
                log.warning("a favourite's flush failed (retried by the next): %s", exc)
            finally:
                self._flushes_finished = self._flushes_started

    async def catch_up(self, events: list[Any] | None = None) -> None:
        """Applies the follow events this worker has not seen (`events`: an XRANGE reply already read)."""
        while True:
            if events is None:
                events = await self.redis.xrange(
                    keys.GRAPH_EVENTS, *self.follows.pending_range(), count=10_000
                )
            if not events:
                return
            await self.follows.apply(events, self.offload)
            if len(events) < 10_000:
                return
            events = None

    async def publish_event(self, fields: dict[str, str]) -> None:
        """Appends a follow event to the stream and applies it here at once."""
        await self.redis.xadd(keys.GRAPH_EVENTS, fields)
        await self.catch_up()

    async def _every(self, seconds: float, job: Callable[[], Any]) -> None:
        while True:
            await asyncio.sleep(seconds)
            try:
                await job()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("%s failed (retried in %.1fs): %s", job.__name__, seconds, exc)


def _in_db_thread(fn: Callable[..., T], *args: Any) -> T:
    try:
        return fn(*args)
    finally:
        close_old_connections()


async def lifespan(receive: Callable[[], Any], send: Callable[[dict[str, Any]], Any]) -> None:
    """The ASGI lifespan protocol: start the worker's runtime, and stop it (flushing) at shutdown."""
    global _current
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                worker = Worker()
                await worker.start()
                _current = worker
            except Exception as exc:
                log.exception("the worker could not start")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            if _current is not None:
                await _current.stop()
                _current = None
            await send({"type": "lifespan.shutdown.complete"})
            return
