"""Repairs of the online state from the source of truth, for ``igcore serve --reconcile``."""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from django.db.models import Count

from . import keys
from .models import Favourite


def reconcile(client: redis.Redis | None = None) -> int:
    """Recounts every status's favourites in Redis from the database (after a crash lost unflushed
    counts, or with a fresh Redis). Run it while no worker serves: counts flushed meanwhile would be
    overwritten. Returns the number of statuses with favourites."""
    client = client or redis.Redis.from_url(settings.IGCORE_REDIS_URL)
    totals = Favourite.objects.values("status_id").annotate(n=Count("id")).values_list("status_id", "n")
    by_hash: dict[str, dict[Any, Any]] = {}
    for status_id, n in totals.iterator(chunk_size=10_000):
        shard = status_id % keys.SHARDS
        by_hash.setdefault(f"{keys.COUNTS_PREFIX}:{{{shard}}}:favourites", {})[str(status_id)] = n
    pipe = client.pipeline(transaction=True)
    for shard in range(keys.SHARDS):
        pipe.delete(f"{keys.COUNTS_PREFIX}:{{{shard}}}:favourites")
    for name, fields in by_hash.items():
        pipe.hset(name, mapping=fields)
    pipe.execute()
    return sum(len(fields) for fields in by_hash.values())
