"""Repairs of the online state from the source of truth, for ``igcore serve --reconcile``."""

from __future__ import annotations

from typing import Any

from django.db.models import Count

from . import clients, keys
from .models import Favourite


def reconcile(client: Any = None) -> int:
    """Recounts every status's favourites in Redis (the service's, or `client`) from the database, after
    a crash lost unflushed counts, or with a fresh Redis. Run it while no worker serves: counts flushed
    meanwhile would be overwritten. Each shard's hash is replaced in a transaction of its own (on a
    cluster a transaction holds keys of one slot). Returns the number of statuses with favourites."""
    client = client or clients.sync_client(socket_timeout=30)
    totals = Favourite.objects.values("status_id").annotate(n=Count("id")).values_list("status_id", "n")
    by_hash: dict[str, dict[Any, Any]] = {}
    for status_id, n in totals.iterator(chunk_size=10_000):
        shard = status_id % keys.SHARDS
        by_hash.setdefault(f"{keys.COUNTS_PREFIX}:{{{shard}}}:favourites", {})[str(status_id)] = n
    for shard in range(keys.SHARDS):
        name = f"{keys.COUNTS_PREFIX}:{{{shard}}}:favourites"
        pipe = client.pipeline(transaction=True)
        pipe.delete(name)
        if name in by_hash:
            pipe.hset(name, mapping=by_hash[name])
        pipe.execute()
    return sum(len(fields) for fields in by_hash.values())
