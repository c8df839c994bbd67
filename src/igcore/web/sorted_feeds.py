"""Home feeds laid out as Mastodon's FeedManager lays them out: the benchmark peer of ``igcore.web.feeds``
(``IGCORE_WEB_HOME_FEEDS=sorted-set``), with the same interface, in the Redis layout of ``igcore.web.keys``.

- **Post**: the status id goes into the author's own feed and into every follower's (``ZADD``, score =
  member = status id, then ``ZREMRANGEBYRANK`` to keep the newest ``FEED_LEN``), pipelined in batches.
  There is no fan-out limit and no pull at read time: an author with many followers costs one write
  per follower, as on Mastodon.
- **Read**: ``ZREVRANGEBYSCORE`` between the paging ids with ``LIMIT``; the statuses' authors come from
  the database, and muted accounts and accounts no longer followed are left out at read time.
- **Follow** merges the followee's recent statuses in (from the database); **unfollow** removes the
  followee's statuses found in the feed (``ZREM``); **delete** removes the status from the author's and
  the followers' feeds.
- A feed without its ``built`` mark is rebuilt from the database (the newest ``FEED_LEN`` statuses of
  the accounts followed and the account's own); pushes that landed before are kept (a union).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from . import keys
from .models import Status

if TYPE_CHECKING:
    from .worker import Worker

BATCH = 1000  # feeds written per pipeline
READ_ROUNDS = 4  # reads per page at most, when muted or unfollowed authors' entries are skipped


def _recent(authors: list[int]) -> list[int]:
    """The newest FEED_LEN status ids of `authors`, from the database."""
    found = Status.objects.filter(account_id__in=authors).order_by("-id").values_list("id", flat=True)
    return list(found[: keys.FEED_LEN])


def _authors(status_ids: list[int]) -> dict[int, int]:
    return dict(Status.objects.filter(id__in=status_ids).values_list("id", "account_id"))


def _of_author(status_ids: list[int], author: int) -> list[int]:
    return list(Status.objects.filter(id__in=status_ids, account_id=author).values_list("id", flat=True))


class SortedSetFeeds:
    def __init__(self, worker: Worker) -> None:
        self.worker = worker
        self.redis: Any = worker.redis

    # -- writing ---------------------------------------------------------------------------------------

    async def _recipients(self, author: int) -> list[int]:
        followers = await self.worker.offload(self.worker.follows.followers, author)
        return [author, *followers.tolist()]

    async def post(self, status_id: int, author: int) -> int:
        """Adds the status to the author's feed and every follower's; returns how many feeds took it."""
        recipients = await self._recipients(author)
        for start in range(0, len(recipients), BATCH):
            pipe = self.redis.pipeline(transaction=False)
            for account in recipients[start : start + BATCH]:
                feed = keys.feed(account)
                pipe.zadd(feed, {status_id: status_id})
                pipe.zremrangebyrank(feed, 0, -keys.FEED_LEN - 1)
            await pipe.execute()
        return len(recipients)

    async def delete(self, status_id: int, author: int) -> None:
        recipients = await self._recipients(author)
        for start in range(0, len(recipients), BATCH):
            pipe = self.redis.pipeline(transaction=False)
            for account in recipients[start : start + BATCH]:
                pipe.zrem(keys.feed(account), status_id)
            await pipe.execute()

    async def follow(self, account: int, author: int) -> None:
        if not await self.redis.exists(keys.feed_built(account)):
            return  # its rebuild reads the database, which has the follow
        found = await self.worker.db(_recent, [author])
        if found:
            pipe = self.redis.pipeline(transaction=False)
            pipe.zadd(keys.feed(account), {i: i for i in found})
            pipe.zremrangebyrank(keys.feed(account), 0, -keys.FEED_LEN - 1)
            await pipe.execute()

    async def unfollow(self, account: int, author: int) -> None:
        stored = [int(i) for i in await self.redis.zrange(keys.feed(account), 0, -1)]
        if stored:
            theirs = await self.worker.db(_of_author, stored, author)
            if theirs:
                await self.redis.zrem(keys.feed(account), *theirs)

    # -- reading ---------------------------------------------------------------------------------------

    async def _rebuild(self, account: int, following: Sequence[int]) -> None:
        found = await self.worker.db(_recent, [*following, account])
        feed = keys.feed(account)
        pipe = self.redis.pipeline(transaction=False)
        if found:
            pipe.zadd(feed, {i: i for i in found})
            pipe.zremrangebyrank(feed, 0, -keys.FEED_LEN - 1)
            pipe.expire(feed, keys.FEED_TTL)
        pipe.set(keys.feed_built(account), b"1", ex=keys.FEED_TTL)
        await pipe.execute()

    async def _read(self, account: int, high: str, low: str, limit: int, oldest_first: bool) -> list[int]:
        feed = keys.feed(account)
        if oldest_first:
            found = await self.redis.zrangebyscore(feed, low, high, start=0, num=limit)
            return [int(i) for i in found]
        return [int(i) for i in await self.redis.zrevrangebyscore(feed, high, low, start=0, num=limit)]

    async def page(
        self,
        account: int,
        limit: int,
        max_id: int | None = None,
        since_id: int | None = None,
        min_id: int | None = None,
        muted: set[int] | None = None,
    ) -> tuple[list[int], bool]:
        """As ``Feeds.page``, from the account's sorted set."""
        following = self.worker.follows.following(account)
        pipe = self.redis.pipeline(transaction=False)
        pipe.exists(keys.feed_built(account))
        pipe.expire(keys.feed(account), keys.FEED_TTL)
        pipe.expire(keys.feed_built(account), keys.FEED_TTL)
        built, _, _ = await pipe.execute()
        if not built:
            await self._rebuild(account, following.tolist())
        allowed = set(following.tolist()) | {account}
        excluded = muted or set()
        oldest_first = min_id is not None  # the entries just above min_id, found oldest first
        high = "+inf" if max_id is None else f"({max_id}"
        low_id = min_id if min_id is not None else since_id
        low = "-inf" if low_id is None else f"({low_id}"
        kept: list[int] = []
        more = False
        for _ in range(READ_ROUNDS):
            wanted = limit - len(kept)
            found = await self._read(account, high, low, wanted, oldest_first)
            if not found:
                more = False
                break
            authors = await self.worker.db(_authors, found)
            kept += [i for i in found if authors.get(i) in allowed and authors[i] not in excluded]
            more = len(found) == wanted  # a full read: older entries may follow
            if len(kept) >= limit or not more:
                break
            if oldest_first:
                low = f"({found[-1]}"
            else:
                high = f"({found[-1]}"
        if oldest_first:
            return sorted(kept, reverse=True), False
        return kept, more
