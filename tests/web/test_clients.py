"""What the web tier counts as "Redis cannot answer now" (a 503, never a 500): redis-py's connection and
cluster errors, and the close race that redis-py 8.1's asyncio connection lets escape as a bare
AttributeError, TypeError or RuntimeError; nothing else."""

from __future__ import annotations

import pytest

pytest.importorskip("django", reason="the web extra is not installed (pip install '.[web]')")
redis = pytest.importorskip("redis", reason="the web extra is not installed (pip install '.[web]')")

from igcore.web import clients  # noqa: E402 - after the skips


def raised_in(filename: str, error: type[BaseException]) -> BaseException:
    try:
        exec(compile(f"raise {error.__name__}('closed under it')", filename, "exec"))
    except BaseException as exc:  # noqa: BLE001 - returned
        return exc
    raise AssertionError("nothing raised")


@pytest.mark.parametrize(
    "exception",
    [
        redis.ConnectionError("refused"),
        redis.TimeoutError("timed out"),
        redis.exceptions.ClusterDownError("CLUSTERDOWN"),
        redis.exceptions.SlotNotCoveredError("no master"),
    ],
)
def test_redis_errors_of_an_absent_server_are_unavailable(exception):
    assert clients.unavailable(exception)


@pytest.mark.parametrize("error", [AttributeError, TypeError, RuntimeError])
def test_the_close_race_inside_redis_connection_code_is_unavailable(error):
    assert clients.unavailable(raised_in("/lib/site-packages/redis/asyncio/connection.py", error))


@pytest.mark.parametrize(
    "exception",
    [
        raised_in("/project/views.py", AttributeError),
        raised_in("/project/views.py", TypeError),
        raised_in("/lib/site-packages/redis/asyncio/connection.py", ValueError),
        redis.ResponseError("WRONGTYPE"),
        RuntimeError("a bug"),
    ],
)
def test_other_errors_are_not(exception):
    assert not clients.unavailable(exception)
