"""Home feeds: fan-out on write for most authors, pulled at read time for the biggest (the hybrid that
Twitter and Instagram use), in the Redis layout of ``igcore.web.keys``.

- **Post** by an author with at most ``IGCORE_WEB_FANOUT_LIMIT`` followers: pipelined script calls
  (FANOUT_BATCH followers each) append the entry to each follower's inbox (``home:<a>:new``), for
  followers that have a feed (the others get theirs built when they read, as Mastodon does for
  inactive users). A bigger author is marked in the follow stream once; every follower's read then
  pulls the author's recent posts (``posts:<a>``).
- **Read**: one pipeline fetches the feed, its inbox and the pulled authors' lists; the inbox is
  folded in (``Timeline.insert_many``), and ``igcore.timeline.merge_page`` merges the feed with the
  pulled authors, leaves out muted accounts and accounts no longer followed, and pages it. Paging is
  Mastodon's: scores are status ids, ``max_id`` is ``cursor_after(max_id, max_id)``.
- **Follow** merges the followee's recent posts in (what ``igcore.timeline.backfill`` does, on one
  stored feed); **unfollow** removes the author's entries (``Timeline.remove_author``). Both rewrite the
  feed with compare-and-set on its generation, retried; the read filter makes unfollow exact at once.
- A missing feed is rebuilt from the database (the newest ``FEED_LEN`` statuses of the accounts followed).

Every call here is short (a feed holds at most ``FEED_LEN`` entries), so it runs on the event loop;
the database reads go through Django's async ORM (a thread).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from igcore.timeline import Timeline, cursor_after, merge_page

from . import clients, keys
from .models import Status

if TYPE_CHECKING:
    from .worker import Worker

# Big authors pulled per read, at most: an account that follows more of them sees the posts of the
# MAX_PULLED with the largest ids (the newest accounts) only. A limit of this design, stated here.
MAX_PULLED = 200
REWRITE_ATTEMPTS = 5
FANOUT_BATCH = 1000  # followers per script call: no call holds Redis for long
MERGE_ON_LOOP = 8_000  # pulled entries merged on the event loop (about a millisecond); more go to a thread


def entry(status_id: int, author_id: int) -> bytes:
    return keys.ENTRY.pack(status_id, status_id, author_id)


def _entries(items: list[bytes]) -> NDArray[np.int64]:
    """(n, 3) int64 rows of ENTRY records; empty elements (fill marks) are skipped."""
    data = b"".join(item for item in items if len(item) == keys.ENTRY.size)
    return np.frombuffer(data, "<i8").reshape(-1, 3).astype(np.int64)


def _timeline(rows: NDArray[np.int64], base: bytes | None = None) -> Timeline:
    timeline = Timeline.from_bytes(base, keys.FEED_LEN) if base else Timeline(keys.FEED_LEN)
    if len(rows):
        timeline.insert_many(rows[:, 0], rows[:, 1], rows[:, 2])
    return timeline


def _recent_rows(authors: list[int]) -> NDArray[np.int64]:
    """The newest FEED_LEN statuses of `authors`, from the database, as ENTRY rows."""
    found = Status.objects.filter(account_id__in=authors).order_by("-id").values_list("id", "account_id")
    pairs = np.array(list(found[: keys.FEED_LEN]), np.int64).reshape(-1, 2)
    return np.column_stack([pairs[:, 0], pairs[:, 0], pairs[:, 1]])


def _rows_per_author(authors: list[int]) -> dict[int, NDArray[np.int64]]:
    return {author: _recent_rows([author]) for author in authors}


def _merge(
    timeline: Timeline,
    pulled_rows: list[NDArray[np.int64]],
    following: NDArray[np.int64],
    account: int,
    muted: set[int],
    limit: int,
    max_id: int | None,
    since_id: int | None,
    min_id: int | None,
) -> tuple[list[int], bool]:
    """One page of the feed merged with the pulled authors' posts (see ``Feeds.page``)."""
    sources: list[Any] = [timeline, *(_timeline(rows) for rows in pulled_rows)]
    # Entries of accounts no longer followed (an unfollow, or a fan-out from a graph that had not seen
    # it yet) and of muted accounts stay out.
    every_author = [timeline.entries().author_ids, *(rows[:, 2] for rows in pulled_rows)]
    authors = np.unique(np.concatenate(every_author))
    gone = np.setdiff1d(authors, np.append(following, account))
    excluded = set(gone.tolist()) | muted
    if min_id is not None:
        whole = merge_page(sources, keys.FEED_LEN * len(sources), exclude_authors=excluded)
        ids = whole.post_ids[whole.post_ids > min_id]
        if max_id is not None:
            ids = ids[ids < max_id]
        return ids[-limit:].tolist(), False
    cursor = cursor_after(max_id, max_id) if max_id is not None else None
    result = merge_page(sources, limit, cursor, exclude_authors=excluded)
    ids = result.post_ids
    if since_id is not None:
        ids = ids[ids > since_id]
    return ids.tolist(), result.next_cursor is not None


class Feeds:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.redis: Any = worker.redis  # redis-py's annotations take str where it takes bytes too
        self.fanout_limit = worker.fanout_limit

    # -- writing ---------------------------------------------------------------------------------------

    async def post(self, status_id: int, author: int) -> int:
        """Delivers a new status: the author's list, then fan-out or a mark for pulling. Returns how many
        feeds took it."""
        record = entry(status_id, author)
        pipe = self.redis.pipeline(transaction=False)
        pipe.rpushx(keys.posts(author), record)
        pipe.ltrim(keys.posts(author), -keys.FEED_LEN, -1)
        await pipe.execute()
        follows = self.worker.follows
        if follows.count([author], outgoing=False)[0] > self.fanout_limit:
            if author not in follows.celebrities:  # marked once per worker at most; a repeat is harmless
                await self.worker.publish_event(follows.celebrity_event(author))
            return int(await self._deliver(record, [author]))
        followers = await self.worker.offload(follows.followers, author)
        return await self._deliver(record, [author, *followers.tolist()])

    async def _deliver(self, record: bytes, accounts: list[int]) -> int:
        """One pipelined script call per FANOUT_BATCH accounts; on a cluster, per home shard too (a
        script's keys share a slot)."""
        if self.worker.cluster:
            groups: list[list[int]] = [[] for _ in range(keys.HOME_SHARDS)]
            for account in accounts:
                groups[keys.home_shard(account)].append(account)
        else:
            groups = [accounts]
        pipe = self.redis.pipeline(transaction=False)
        for group in groups:
            for start in range(0, len(group), FANOUT_BATCH):
                batch = group[start : start + FANOUT_BATCH]
                names = [name for a in batch for name in (keys.home(a), keys.home_new(a), keys.home_gen(a))]
                clients.script(pipe, keys.FANOUT, names, [record, keys.INBOX_LIMIT, keys.FEED_TTL])
        return sum(int(taken) for taken in await pipe.execute())

    async def delete(self, status_id: int, author: int) -> None:
        """A deleted status leaves its author's list; in home feeds, reading skips what the database lost."""
        await self.redis.lrem(keys.posts(author), 0, entry(status_id, author))

    async def follow(self, account: int, author: int) -> None:
        if author in self.worker.follows.celebrities:
            return  # pulled at read time
        rows = (await self.recent([author]))[author]
        if len(rows):
            await self._rewrite(
                account, lambda timeline: timeline.insert_many(rows[:, 0], rows[:, 1], rows[:, 2])
            )

    async def unfollow(self, account: int, author: int) -> None:
        await self._rewrite(account, lambda timeline: timeline.remove_author(author))

    async def _rewrite(self, account: int, change: Any) -> None:
        """Applies `change` to the stored feed (inbox folded in), with compare-and-set; a feed not stored
        (or being rebuilt) is left alone: its rebuild reads the database, which already has the change."""
        for _ in range(REWRITE_ATTEMPTS):
            pipe = self.redis.pipeline(transaction=False)
            pipe.get(keys.home(account))
            pipe.get(keys.home_gen(account))
            pipe.lrange(keys.home_new(account), 0, -1)
            base, generation, waiting = await pipe.execute()
            if not base:
                return
            timeline = _timeline(_entries(waiting), base)
            change(timeline)
            if await self._store(account, generation, timeline, len(waiting)):
                return

    async def _store(self, account: int, generation: bytes | None, timeline: Timeline, folded: int) -> bool:
        names = [keys.home(account), keys.home_new(account), keys.home_gen(account)]
        args: list[Any] = [generation or b"0", timeline.to_bytes(), folded, keys.FEED_TTL]
        return bool(await clients.script(self.redis, keys.WRITE_FEED, names, args))

    # -- reading ----------------------------------------------------------------------------------------

    async def recent(self, authors: list[int]) -> dict[int, NDArray[np.int64]]:
        """The authors' recent posts from their lists, filling from the database those Redis lacks."""
        pipe = self.redis.pipeline(transaction=False)
        for author in authors:
            pipe.lrange(keys.posts(author), 0, -1)
        lists = await pipe.execute()
        found = {author: _entries(items) for author, items in zip(authors, lists) if items}
        missing = [author for author, items in zip(authors, lists) if not items]
        if missing:
            found.update(await self._fill(missing))
        return found

    async def _fill(self, authors: list[int]) -> dict[int, NDArray[np.int64]]:
        # Mark each list first, so that posts made while the database is read land in it (RPUSHX).
        marks = self.redis.pipeline(transaction=False)
        for author in authors:
            clients.script(marks, keys.START_POSTS, [keys.posts(author)], [])
        starting = [author for author, first in zip(authors, await marks.execute()) if first]
        rows = await self.worker.db(_rows_per_author, authors)
        pipe = self.redis.pipeline(transaction=False)
        for author in starting:
            oldest_first = rows[author][::-1]
            if len(oldest_first):  # older posts go before the mark, newer ones after it
                pipe.lpush(keys.posts(author), *[entry(int(r[1]), int(r[2])) for r in oldest_first])
            pipe.ltrim(keys.posts(author), -keys.FEED_LEN, -1)
        await pipe.execute()
        return rows

    async def page(
        self,
        account: int,
        limit: int,
        max_id: int | None = None,
        since_id: int | None = None,
        min_id: int | None = None,
        muted: set[int] | None = None,
    ) -> tuple[list[int], bool]:
        """Status ids of one page of the account's home feed, newest first (Mastodon's paging), and
        whether older entries follow."""
        follows = self.worker.follows
        following = follows.following(account)
        pulled = follows.celebrities_among(following)[-MAX_PULLED:].tolist()
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys.home(account))
        pipe.get(keys.home_gen(account))
        pipe.lrange(keys.home_new(account), 0, -1)
        pipe.expire(keys.home(account), keys.FEED_TTL)
        for author in pulled:
            pipe.lrange(keys.posts(author), 0, -1)
        base, generation, waiting, _, *lists = await pipe.execute()
        fresh = _entries(waiting)
        if not base:
            timeline = await self._rebuild(account, following, generation, fresh, base is None)
        else:
            timeline = _timeline(fresh, base)
            if len(waiting) >= keys.FOLD_AT:  # best effort: a refused write leaves the inbox for later
                await self._store(account, generation, timeline, len(waiting))
        unfilled = [author for author, items in zip(pulled, lists) if not items]
        filled = await self._fill(unfilled) if unfilled else {}
        pulled_rows = [_entries(items) if items else filled[author] for author, items in zip(pulled, lists)]
        merge = (timeline, pulled_rows, following, account, muted or set(), limit, max_id, since_id, min_id)
        if sum(len(rows) for rows in pulled_rows) > MERGE_ON_LOOP:
            return await self.worker.offload(_merge, *merge)  # a big merge (many big authors followed)
        return _merge(*merge)

    async def _rebuild(
        self,
        account: int,
        following: NDArray[np.int64],
        generation: bytes | None,
        fresh: NDArray[np.int64],
        absent: bool,
    ) -> Timeline:
        if absent:
            # "" marks the feed as being rebuilt: fan-outs append to its inbox from now on.
            await self.redis.set(keys.home(account), b"", nx=True, ex=keys.FEED_TTL)
        rows = await self.worker.db(_recent_rows, [*following.tolist(), account])
        timeline = _timeline(fresh)
        if len(rows):
            timeline.insert_many(rows[:, 0], rows[:, 1], rows[:, 2])
        await self._store(account, generation, timeline, len(fresh))
        return timeline
