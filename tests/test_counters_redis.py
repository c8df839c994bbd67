"""counters.redis.WriteBehind against a real redis-server: exact totals, also when Redis fails mid-flush."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from igcore.counters import CounterTable

from .redis_server import RedisServer, require_redis

HOT_PATH = "counters"
KINDS = ("likes", "comments", "views", "shares")


@pytest.fixture
def write_behind():
    require_redis()
    from igcore.counters.redis import WriteBehind

    return WriteBehind


@pytest.fixture
def redis():
    require_redis()
    import redis

    return redis


def quick_client(server, timeout=0.5):
    """A client that gives up fast and does not retry by itself: the faults reach the flush at once."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return server.client(socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))


def assert_redis_holds_the_table(flusher, table, keys):
    for kind in table.kinds:
        assert flusher.totals(kind, keys).tolist() == table.get(keys, kind).tolist(), kind


def zipf_events(seed, events, distinct=20_000):
    rng = np.random.default_rng(seed)
    ids = rng.integers(-(2**62), 2**62, size=distinct, dtype=np.int64)
    return ids[np.minimum(rng.zipf(1.3, size=events), distinct) - 1]


# -- examples -----------------------------------------------------------------------------------------------


def test_flush_writes_totals_with_the_documented_layout(backend, redis_client, write_behind):
    table = CounterTable()
    flusher = write_behind(table, redis_client, shards=8)
    table.add([101, 7, 101], kind="likes")
    table.add([7], [5], kind="views")
    table.add([-3], [-2], kind="views")
    flushed = flusher.flush()
    assert (flushed.fields, flushed.settled) == (4, 0)
    assert redis_client.hget("igcore:{5}:likes", "101") == b"2"  # 101 mod 8 == 5
    assert redis_client.hget("igcore:{7}:likes", "7") == b"1"
    assert redis_client.hget("igcore:{7}:views", "7") == b"5"
    assert redis_client.hget("igcore:{5}:views", "-3") == b"-2"  # -3 mod 8 == 5
    assert flusher.location("views", -3) == ("igcore:{5}:views", "-3")
    markers = redis_client.keys("igcore:*:batch:*")
    assert markers and all(redis_client.get(m) == b"applied" and redis_client.ttl(m) > 0 for m in markers)
    # Later flushes add only what came since.
    table.add([101], kind="likes")
    assert flusher.flush().fields == 1
    assert flusher.flush().fields == 0
    assert flusher.totals("likes", [101, 7, 8]).tolist() == [3, 1, 0]


def test_a_large_flush_is_split_into_parts_and_totals_are_exact(backend, redis_client, write_behind):
    table = CounterTable()
    flusher = write_behind(table, redis_client, shards=16, part_size=500)
    keys = zipf_events(1, 200_000)
    table.add(keys, kind="views")
    table.add(keys[::7], kind="likes")
    flushed = flusher.flush()
    assert flushed.parts > 16
    table.add(keys[:1000], kind="views")
    flusher.flush()
    assert_redis_holds_the_table(flusher, table, np.unique(keys))


def test_a_batch_sent_twice_counts_once(backend, redis_client, write_behind):
    table = CounterTable()
    flusher = write_behind(table, redis_client, shards=4)
    parts, _ = flusher._parts({"likes": {1: 10, 2: 20, 3: 30}}, "fixed-batch")
    for _ in range(3):  # a client retrying the same pipeline
        flusher._send(parts, {})
    assert flusher.totals("likes", [1, 2, 3]).tolist() == [10, 20, 30]


def test_bad_arguments(backend, redis_client, write_behind):
    table = CounterTable()
    with pytest.raises(TypeError, match=r"table must be an igcore CounterTable, not dict"):
        write_behind({}, redis_client)
    with pytest.raises(ValueError, match=r"shards must be at least 1, got 0"):
        write_behind(table, redis_client, shards=0)
    with pytest.raises(ValueError, match=r"prefix must be a str without braces"):
        write_behind(table, redis_client, prefix="a{b}")
    with pytest.raises(ValueError, match=r"unknown kind 'saves'"):
        write_behind(table, redis_client).totals("saves", [1])


def test_threads_adding_while_flushing_lose_nothing(backend, redis_client, write_behind):
    table = CounterTable()
    flusher = write_behind(table, redis_client, shards=8)
    keys = zipf_events(2, 20_000, distinct=2_000)
    rounds = 5 if backend == "python" else 40
    stop = threading.Event()

    def add():
        for _ in range(rounds):
            table.add(keys, kind="likes")
        stop.set()

    adder = threading.Thread(target=add)
    adder.start()
    while not stop.is_set():
        flusher.flush()
    adder.join()
    flusher.flush()
    unique, counts = np.unique(keys, return_counts=True)
    assert flusher.totals("likes", unique).tolist() == (counts * rounds).tolist()


# -- faults: Redis fails mid-flush, and the totals in Redis are exact afterwards -----------------------------


@pytest.fixture
def own_server(tmp_path):
    """A server of this test's own, with an append-only file (in tmp_path) so that it can be killed and
    come back with what it had applied."""
    server = RedisServer(tmp_path, append_only=True).start()
    yield server
    server.stop()


def test_redis_down_keeps_the_deltas_for_the_next_flush(backend, own_server, write_behind, redis):
    table = CounterTable()
    flusher = write_behind(table, quick_client(own_server), shards=4)
    table.add([1, 2, 3], kind="likes")
    flusher.flush()
    own_server.stop()
    table.add([1, 4], [10, 20], kind="likes")
    with pytest.raises(redis.exceptions.ConnectionError):
        flusher.flush()
    assert flusher.in_doubt == 2  # keys 1 and 4 fall in shards 1 and 0: two parts
    assert flusher.held == {"likes": {1: 10, 4: 20}}  # held by the flusher for the next flush
    assert table.drain()["likes"].keys.tolist() == []
    own_server.start()
    table.add([5], kind="likes")
    flushed = flusher.flush()
    assert (flushed.settled, flushed.settled_applied) == (2, 0)  # neither had run: fenced off, sent again
    assert_redis_holds_the_table(flusher, table, [1, 2, 3, 4, 5])


def test_a_reply_lost_after_redis_applied_the_batch_does_not_count_twice(backend, own_server, write_behind):
    # The pipeline reaches the paused server's socket; the client times out; the server, resumed,
    # runs it. The flush failed, yet Redis has the batch: the next flush must find that out.
    table = CounterTable()
    flusher = write_behind(table, quick_client(own_server), shards=4)
    table.add([1, 2, 3, 4], [1, 2, 3, 4], kind="views")
    flusher.client.ping()  # a pooled connection, set up: only the batch goes out while paused
    own_server.pause()
    try:
        with pytest.raises(Exception, match="(?i)timeout|timed out"):
            flusher.flush()
    finally:
        own_server.resume()
    in_doubt = flusher.in_doubt
    assert in_doubt == 4
    deadline = time.monotonic() + 5
    while flusher.totals("views", [4])[0] != 4 and time.monotonic() < deadline:
        time.sleep(0.01)  # the resumed server works through its socket buffer
    table.add([1], kind="views")
    flushed = flusher.flush()
    assert (flushed.settled, flushed.settled_applied) == (in_doubt, in_doubt)
    assert_redis_holds_the_table(flusher, table, [1, 2, 3, 4])
    assert flusher.totals("views", [1, 2, 3, 4]).tolist() == [2, 2, 3, 4]


def test_redis_killed_before_running_the_batch(backend, own_server, write_behind):
    # The pipeline sits in the paused server's socket; the server is killed and restarted from its
    # append-only file: the batch never ran. The next flush fences it off and sends the deltas again.
    table = CounterTable()
    flusher = write_behind(table, quick_client(own_server), shards=4)
    table.add([1, 2], [5, 6], kind="shares")
    flusher.flush()
    table.add([1, 2, 3], [1, 1, 1], kind="shares")
    flusher.client.ping()
    own_server.pause()
    with pytest.raises(Exception, match="(?i)timeout|timed out"):
        flusher.flush()
    own_server.stop(kill=True)
    own_server.start()
    assert flusher.totals("shares", [1, 2, 3]).tolist() == [5, 6, 0]  # the first flush survived
    flushed = flusher.flush()
    assert flushed.settled == 3 and flushed.settled_applied == 0
    assert flusher.totals("shares", [1, 2, 3]).tolist() == [6, 7, 1]
    assert_redis_holds_the_table(flusher, table, [1, 2, 3])


def test_redis_killed_in_the_middle_of_a_large_flush(backend, own_server, write_behind):
    # A flush of many parts; the server is killed (SIGKILL) once some parts have run and restarted
    # from its append-only file. Some parts ran, others did not: the totals must still be exact.
    table = CounterTable()
    flusher = write_behind(table, quick_client(own_server, timeout=2.0), shards=64, part_size=200)
    keys = zipf_events(3, 300_000, distinct=60_000)
    table.add(keys, kind="likes")
    table.add(keys[::3], kind="comments")
    outcome = []

    def flush():
        try:
            outcome.append(flusher.flush())
        except Exception as exc:  # noqa: BLE001 - the failure is what this test wants
            outcome.append(exc)

    watcher = own_server.client()
    flushing = threading.Thread(target=flush)
    flushing.start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not outcome:
        if watcher.dbsize() > 40:  # some parts have run (markers and hashes exist)
            break
        time.sleep(0.001)
    own_server.stop(kill=True)
    flushing.join()
    watcher.close()
    own_server.start()
    assert isinstance(outcome[0], Exception), "the flush ended before the kill"
    in_doubt = flusher.in_doubt
    flushed = flusher.flush()
    assert flusher.in_doubt == 0
    # Some parts had run before the kill, some had not: both kinds were settled.
    assert flushed.settled == in_doubt and 0 < flushed.settled_applied < in_doubt
    assert_redis_holds_the_table(flusher, table, np.unique(keys))
