"""Django settings of the igcore web service, read from ``IGCORE_WEB_*`` environment variables.

``igcore serve`` sets them (``--demo`` chooses demo values); a deployment sets them itself, or points
``DJANGO_SETTINGS_MODULE`` at its own module that imports this one and overrides what it needs.

- ``IGCORE_WEB_DATABASE_URL``: ``sqlite:///<path>`` or ``postgres://user:password@host:port/name`` (a
  socket folder as ``?host=/run/postgresql``).
- ``IGCORE_WEB_REDIS_URL``: ``redis://host:port/db``.
- ``IGCORE_WEB_REDIS_CLUSTER``: ``host:port`` of a node of a Redis Cluster, used instead of the URL.
- ``IGCORE_WEB_REDIS_REPLICAS``: how many replicas must have a counter write before it counts as applied
  (``WAIT``; default 1 on a cluster, so that a failover loses no favourite, 0 on one server).
- ``IGCORE_WEB_GRAPH_PATH``: the follow-graph file every worker maps.
- ``IGCORE_WEB_SECRET_KEY``: Django's secret key (required).
- ``IGCORE_WEB_FANOUT_LIMIT``: authors with more followers than this are not fanned out on write; their
  posts are pulled into home feeds at read time (default 1000).
- ``IGCORE_WEB_HOME_FEEDS``: ``igcore`` (``igcore.web.feeds``, the default) or ``sorted-set``
  (``igcore.web.sorted_feeds``: Mastodon's layout, the benchmark peer).
- ``IGCORE_WEB_RATE_LIMIT``: ``<requests>/<seconds>`` per token (per address without one), or ``off``
  (default ``300/300``, Mastodon's).
- ``IGCORE_WEB_FLUSH_SECONDS``: how often each worker writes its counters behind to Redis (default 1).
- ``IGCORE_WEB_PASSWORD_ITERATIONS``: PBKDF2 iterations of new password hashes (default: Django's).
- ``IGCORE_WEB_DEMO``: ``1`` when serving the demo network.
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

HOME_FEEDS = ("igcore", "sorted-set")


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(f"IGCORE_WEB_{name}", default)
    if value is None:
        raise ImproperlyConfigured(f"set IGCORE_WEB_{name} (see igcore.web.settings)")
    return value


def database_settings(url: str) -> dict[str, object]:
    """Django's DATABASES entry for a database URL."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        path = unquote(parts.path)
        if path.startswith("//"):  # sqlite:////abs/path
            path = path[1:]
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": path,
            # Kept open by the thread that opened it (see igcore.web.asgi), checked before reuse.
            "CONN_MAX_AGE": None,
            "CONN_HEALTH_CHECKS": True,
            # Several workers write one file: WAL lets readers run beside the writer, IMMEDIATE takes the
            # write lock when a transaction starts (no deadlock on upgrade), the timeout waits for it.
            "OPTIONS": {
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
            },
        }
    if parts.scheme in ("postgres", "postgresql"):
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": unquote(parts.path.lstrip("/")) or "postgres",
            "USER": unquote(parts.username or ""),
            "PASSWORD": unquote(parts.password or ""),
            "HOST": query.pop("host", parts.hostname or ""),
            "PORT": str(parts.port or ""),
            # Each call of Worker.db hands its connection back when it ends; the pool keeps the
            # connections open between calls instead of connecting anew for each.
            "OPTIONS": {"pool": {"min_size": 2, "max_size": 16}, **query},
        }
    raise ImproperlyConfigured(f"IGCORE_WEB_DATABASE_URL: unsupported scheme {parts.scheme!r} in {url!r}")


def rate_limit(value: str) -> tuple[int, int] | None:
    if value.strip().lower() in ("off", "0", ""):
        return None
    try:
        requests, seconds = (int(part) for part in value.split("/"))
    except ValueError:
        raise ImproperlyConfigured(  # noqa: B904 - the message says it all
            f"IGCORE_WEB_RATE_LIMIT must be <requests>/<seconds> or off, not {value!r}"
        )
    if requests < 1 or seconds < 1:
        raise ImproperlyConfigured(f"IGCORE_WEB_RATE_LIMIT must be positive, not {value!r}")
    return requests, seconds


SECRET_KEY = _env("SECRET_KEY")
DEBUG = False
ALLOWED_HOSTS = ["*"]
ROOT_URLCONF = "igcore.web.urls"
INSTALLED_APPS = ["igcore.web"]
MIDDLEWARE = ["igcore.web.http.ApiMiddleware"]
DATABASES = {"default": database_settings(_env("DATABASE_URL"))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
TIME_ZONE = "UTC"
APPEND_SLASH = False  # the URL patterns take paths with and without a trailing slash
DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024  # bodies beyond this get 413
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
PASSWORD_HASHERS = ["igcore.web.auth.PasswordHasher"]
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"igcore.web": {"handlers": ["console"], "level": "INFO"}},
}

IGCORE_REDIS_URL = _env("REDIS_URL", "redis://127.0.0.1:6379/0")
IGCORE_REDIS_CLUSTER = _env("REDIS_CLUSTER", "") or None
if IGCORE_REDIS_CLUSTER is not None and not IGCORE_REDIS_CLUSTER.rpartition(":")[2].isdigit():
    raise ImproperlyConfigured(f"IGCORE_WEB_REDIS_CLUSTER: host:port, not {IGCORE_REDIS_CLUSTER!r}")
IGCORE_REDIS_REPLICAS = int(_env("REDIS_REPLICAS", "1" if IGCORE_REDIS_CLUSTER else "0"))
IGCORE_GRAPH_PATH = _env("GRAPH_PATH", "follows.igfg")
IGCORE_FANOUT_LIMIT = int(_env("FANOUT_LIMIT", "1000"))
IGCORE_HOME_FEEDS = _env("HOME_FEEDS", "igcore")
if IGCORE_HOME_FEEDS not in HOME_FEEDS:
    raise ImproperlyConfigured(f"IGCORE_WEB_HOME_FEEDS: igcore or sorted-set, not {IGCORE_HOME_FEEDS!r}")
IGCORE_RATE_LIMIT = rate_limit(_env("RATE_LIMIT", "300/300"))
IGCORE_FLUSH_SECONDS = float(_env("FLUSH_SECONDS", "1"))
IGCORE_PASSWORD_ITERATIONS = int(_env("PASSWORD_ITERATIONS", "0")) or None
IGCORE_DEMO = _env("DEMO", "0") == "1"
