"""A clean shutdown: SIGTERM ends ``igcore serve`` with exit code 0 within 20 s, no traceback in its
output and nothing it started left running, having announced ``igcore serving on http://HOST:PORT``.

What the workers counted just before (favourites and views, written behind every second) is flushed
at shutdown, not lost: the server here uses a Redis of the test's own (``--redis``), which outlives it;
a new server on the same data and Redis shows every favourite and view made less than a second before
the SIGTERM. (With its own redis-server, serve stops that Redis too; favourites can then be recounted
from the database with ``igcore serve --reconcile``, views cannot.) One combination only: python (when
selected) and SQLite.
"""

from __future__ import annotations

import re

import pytest

from . import ok, sign_up_many
from .conftest import SELECTED

BACKEND = "python" if "python" in SELECTED else SELECTED[0]


@pytest.fixture
def own_redis(tmp_path):
    from ..redis_server import RedisServer

    redis = RedisServer(tmp_path).start()
    yield redis
    redis.stop()


def test_sigterm_exits_0_and_loses_no_count(servers, own_redis):
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    first = servers.start(BACKEND, "sqlite", "--rate-limit", "off", "--redis", url)
    author, *fans = sign_up_many(first.api, first.app_token(), 4, "last")
    status = author.post_status("the last words")
    for fan in fans:
        assert ok(fan.api.post(f"/api/v1/statuses/{status['id']}/favourite"))["favourited"] is True
        ok(fan.api.get(f"/api/v1/statuses/{status['id']}"))  # a view
    first.assert_clean_exit()  # at once: within the flush interval
    assert re.search(rf"igcore serving on http://[^\s:]+:{first.port}\b", first.stdout()), first.output()
    client = own_redis.client()
    assert client.ping(), "serve stopped a Redis it did not start"
    # What the workers flushed is Redis's own: the write-behind hash, and a HyperLogLog that PFCOUNT reads.
    status_id = int(status["id"])
    assert int(client.hget(f"igcore:counts:{{{status_id % 64}}}:favourites", str(status_id))) == len(fans)
    assert client.pfcount(f"igcore:viewers:{{{status_id}}}") == len(fans)

    second = servers.start(BACKEND, "sqlite", "--rate-limit", "off", "--redis", url, on=first)
    try:
        (listed,) = ok(second.api.get(f"/api/v1/accounts/{author.id}/statuses"))
        assert listed["favourites_count"] == len(fans)
        assert listed["igcore"] == {"views_count": len(fans), "unique_viewers_count": len(fans)}
        assert ok(second.api.as_(fans[0].token).get(f"/api/v1/statuses/{status['id']}"))["favourited"] is True
        second.assert_clean_exit()
    finally:
        servers.release(second)
