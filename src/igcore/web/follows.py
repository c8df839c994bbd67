"""The follow graph every worker serves: the mapped graph file plus the follow events since it was built.

A follow or unfollow is committed to the database, then appended to the event stream
(``keys.GRAPH_EVENTS``). Before a worker answers any request it reads the events it has not applied yet
(in the same Redis round trip as the token lookup) and applies them to its graph (``FollowGraph.follow``
and ``unfollow``, which the compiled backends keep in a small side layer, folded into the mapped layout
when it grows). So every request sees every follow whose response was sent before the request arrived,
whichever worker serves it; a worker with no requests also catches up every second. The stream also
carries "too big to fan out" marks of authors (``keys``), which every worker keeps in ``celebrities``.

Events are idempotent (setting an edge present or absent), so applying a suffix of the stream again is
harmless: a worker maps a file built at stream id S and applies the events after S.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from igcore.graph import FollowGraph

from .graphfile import read_stream_id

EMPTY = np.empty(0, np.int64)
Event = tuple[bytes, dict[bytes, bytes]]


def _stream_key(stream_id: str) -> tuple[int, int]:
    millis, _, sequence = stream_id.partition("-")
    return int(millis), int(sequence or 0)


class Follows:
    def __init__(self, path: str) -> None:
        self.path = path
        self.graph = FollowGraph.load(path)
        self.graph.verify()  # once, here, rather than in the first request
        self.last_event = read_stream_id(path)
        self.celebrities: set[int] = set()
        self._celebrity_ids = EMPTY
        self._lock = asyncio.Lock()

    # -- keeping up with the stream ----------------------------------------------------------------------

    def pending_range(self) -> tuple[str, str]:
        """The XRANGE bounds of the events not applied yet."""
        return f"({self.last_event}", "+"

    async def apply(self, events: Sequence[Event], run: Any) -> None:
        """Applies `events` (an XRANGE reply) that are newer than what the graph holds, in order.
        `run(fn, *args)` runs the update off the event loop (an update waits for running queries)."""
        async with self._lock:
            last = _stream_key(self.last_event)
            fresh = [(i.decode(), f) for i, f in events if _stream_key(i.decode()) > last]
            if not fresh:
                return
            await run(self._apply_now, [f for _, f in fresh])
            self.last_event = fresh[-1][0]

    def _apply_now(self, events: list[dict[bytes, bytes]]) -> None:
        # Consecutive events of one kind go in one call; the order between kinds is kept.
        batch: list[tuple[int, int, int]] = []
        kind = b""
        for fields in events:
            op = fields[b"op"]
            if op == b"c":
                self.celebrities.add(int(fields[b"src"]))
                continue
            if op != kind and batch:
                self._update(kind, batch)
                batch = []
            kind = op
            batch.append((int(fields[b"src"]), int(fields[b"dst"]), int(fields.get(b"id", 0))))
        if batch:
            self._update(kind, batch)
        self._celebrity_ids = np.array(sorted(self.celebrities), np.int64)

    def _update(self, op: bytes, batch: list[tuple[int, int, int]]) -> None:
        rows = np.array(batch, np.int64)
        if op == b"f":
            self.graph.follow(rows[:, 0], rows[:, 1], timestamps=rows[:, 2])
        elif op == b"u":
            self.graph.unfollow(rows[:, 0], rows[:, 1])

    @staticmethod
    def follow_event(src: int, dst: int, follow_id: int) -> dict[str, str]:
        return {"op": "f", "src": str(src), "dst": str(dst), "id": str(follow_id)}

    @staticmethod
    def unfollow_event(src: int, dst: int) -> dict[str, str]:
        return {"op": "u", "src": str(src), "dst": str(dst)}

    @staticmethod
    def celebrity_event(author: int) -> dict[str, str]:
        return {"op": "c", "src": str(author)}

    # -- queries (an unknown account follows no one and has no followers) ----------------------------------

    def following(self, account: int) -> NDArray[np.int64]:
        try:
            return self.graph.following(account)  # type: ignore[return-value]
        except KeyError:
            return EMPTY

    def followers(self, account: int) -> NDArray[np.int64]:
        try:
            return self.graph.followers(account)  # type: ignore[return-value]
        except KeyError:
            return EMPTY

    def page(
        self,
        account: int,
        outgoing: bool,
        limit: int,
        max_id: int | None,
        since_id: int | None,
        min_id: int | None,
    ) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
        """Accounts followed by (or following) `account`, newest follow first, as ``(ids, follow ids)``:
        the follow ids are the paging ids (the graph's times are the follows' snowflakes). `min_id`: the
        `limit` oldest follows after it (the page just newer than it)."""
        listing = self.graph.following if outgoing else self.graph.followers
        after = min_id if min_id is not None else since_id
        try:
            ids, times = listing(
                account,
                since=None if after is None else after + 1,
                until=max_id,
                limit=None if min_id is not None else limit,
                return_times=True,
            )
        except KeyError:
            return EMPTY, EMPTY
        if min_id is not None:
            ids, times = ids[-limit:], times[-limit:]
        return ids, times

    def count(self, accounts: Sequence[int], outgoing: bool) -> NDArray[np.int64]:
        """Following (or follower) counts; 0 for accounts the graph does not know."""
        ids = np.asarray(accounts, np.int64)
        counter = self.graph.following_count if outgoing else self.graph.follower_count
        try:
            return counter(ids)
        except KeyError:  # an account with no follows yet: count one by one
            counts = np.zeros(len(ids), np.int64)
            for i, account in enumerate(ids.tolist()):
                with contextlib.suppress(KeyError):
                    counts[i] = counter(account)
            return counts

    def is_following(self, a: Sequence[int], b: Sequence[int]) -> NDArray[np.bool_]:
        if not len(a):
            return np.zeros(0, bool)
        return self.graph.is_following(np.asarray(a, np.int64), np.asarray(b, np.int64))

    def celebrities_among(self, accounts: NDArray[np.int64]) -> NDArray[np.int64]:
        return np.intersect1d(accounts, self._celebrity_ids, assume_unique=True)
