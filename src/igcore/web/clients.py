"""The service's Redis: one server (``IGCORE_WEB_REDIS_URL``) or a Redis Cluster
(``IGCORE_WEB_REDIS_CLUSTER``, the ``host:port`` of any of its nodes), and the few calls whose form
differs between them.

On a cluster every command that names several keys names keys of one hash slot (``igcore.web.keys``
tags them), and scripts go as ``EVAL`` with their text: a cluster pipeline refuses ``EVALSHA`` through
redis-py's script objects, and a master that a failover promoted may lack a script loaded before. A
pipeline that is not a transaction is split by redis-py per master and sent to all of them at once.
"""

from __future__ import annotations

import os
import traceback
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.cluster
from django.conf import settings

# Errors that mean "Redis cannot answer now" (down, timed out, a slot without a master during a
# failover): the web tier answers 503, never 500, and the worker retries on its next flush.
UNAVAILABLE: tuple[type[BaseException], ...] = (
    redis.ConnectionError,
    redis.TimeoutError,
    redis.exceptions.ClusterError,
    redis.exceptions.SlotNotCoveredError,
)


def unavailable(exception: BaseException) -> bool:
    """Whether `exception` says that Redis cannot answer now. redis-py 8.1's asyncio connection lets a
    write on a connection that closed under it (a node killed, a failover) escape as AttributeError,
    TypeError or (from uvloop's transport) RuntimeError instead of ConnectionError
    (redis/redis-py#4287): such an error raised inside its connection code counts too."""
    if isinstance(exception, UNAVAILABLE):
        return True
    if not isinstance(exception, (AttributeError, TypeError, RuntimeError)):
        return False
    frames = traceback.extract_tb(exception.__traceback__)[-4:]
    return any(frame.filename.endswith(_ASYNC_CONNECTION) for frame in frames)


_ASYNC_CONNECTION = os.path.join("redis", "asyncio", "connection.py")


def cluster_address() -> tuple[str, int] | None:
    """The (host, port) of the configured cluster's node, or None when the service uses one server."""
    address = settings.IGCORE_REDIS_CLUSTER
    if not address:
        return None
    host, _, port = str(address).rpartition(":")
    return host.strip("[]"), int(port)


def sync_client(socket_timeout: float = 5, socket_connect_timeout: float | None = None) -> Any:
    """A synchronous client of the service's Redis (``redis.Redis`` or ``redis.cluster.RedisCluster``)."""
    address = cluster_address()
    options: dict[str, Any] = {"socket_timeout": socket_timeout}
    if socket_connect_timeout is not None:
        options["socket_connect_timeout"] = socket_connect_timeout
    if address is not None:
        return redis.cluster.RedisCluster(host=address[0], port=address[1], **options)
    return redis.Redis.from_url(str(settings.IGCORE_REDIS_URL), **options)


def async_client() -> Any:
    """An asyncio client of the service's Redis, for the event loop of a worker."""
    address = cluster_address()
    if address is not None:
        return redis.asyncio.cluster.RedisCluster(host=address[0], port=address[1], socket_timeout=5)
    return redis.asyncio.Redis.from_url(
        str(settings.IGCORE_REDIS_URL), socket_timeout=5, health_check_interval=30
    )


def script(client: Any, text: str, keys: list[str], args: list[Any]) -> Any:
    """Runs the Lua `text` on `keys` (of one hash slot on a cluster) with `args`, on a client or into a
    pipeline (which then returns its reply from ``execute``)."""
    return client.execute_command("EVAL", text, len(keys), *keys, *args)
