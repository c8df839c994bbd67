"""WriteBehind under faults, against a real redis-server.

A script that fails midway, replies lost after Redis ran the command (under both reply decodings), an
exception at any step after the drain, and Redis killed or paused mid-flush while threads keep adding.
Each case ends, after recovery and further flushes, with Redis holding exactly what was added.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from igcore.counters import CounterTable

from .redis_server import RedisServer, require_redis

HOT_PATH = "counters"
INT64_MAX = 2**63 - 1
DECODINGS = [pytest.param(False, id="bytes"), pytest.param(True, id="str")]


@pytest.fixture
def redis():
    require_redis()
    import redis

    return redis


@pytest.fixture
def write_behind(redis):
    from igcore.counters.redis import WriteBehind

    return WriteBehind


@pytest.fixture
def flush_error(redis):
    from igcore.counters.redis import FlushError

    return FlushError


@pytest.fixture
def own_server(tmp_path):
    """A server of this test's own, with an append-only file so that a killed server comes back with
    everything it had answered."""
    server = RedisServer(tmp_path, append_only=True).start()
    yield server
    server.stop()


class Faults:
    """What the next commands sent over a `faulty_client` meet; each fault fires once."""

    def __init__(self):
        self.before_send = None  # an exception raised instead of sending, or a callable run first
        self.after_send = None  # an exception raised once the commands are sent, before any reply
        self.drop_reply = None  # how many replies pass before one is read (so it ran) and dropped


def faulty_client(redis, server, faults, decode_responses=False, timeout=0.5):
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    class FaultyConnection(redis.Connection):
        def send_packed_command(self, command, check_health=True):
            fault, faults.before_send = faults.before_send, None
            if isinstance(fault, BaseException):
                raise fault
            if fault is not None:
                fault()
            super().send_packed_command(command, check_health)
            fault, faults.after_send = faults.after_send, None
            if fault is not None:
                self.disconnect()  # as an interrupted read leaves it: the replies are gone
                raise fault

        def read_response(self, *args, **kwargs):
            reply = super().read_response(*args, **kwargs)
            if faults.drop_reply is not None:
                faults.drop_reply -= 1
                if faults.drop_reply < 0:
                    faults.drop_reply = None
                    self.disconnect()
                    raise redis.ConnectionError("the reply was lost")
            return reply

    pool = redis.ConnectionPool(
        connection_class=FaultyConnection,
        host="127.0.0.1",
        port=server.port,
        decode_responses=decode_responses,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )
    client = redis.Redis(connection_pool=pool)
    client.ping()  # connected before any fault is armed
    return client


def assert_redis_holds_the_table(flusher, table, keys):
    for kind in table.kinds:
        assert flusher.totals(kind, keys).tolist() == table.get(keys, kind).tolist(), kind


def flush_until_settled(flusher, attempts=10):
    """Flushes until a flush finds nothing to send or settle (at most `attempts` times; Redis is up)."""
    for _ in range(attempts):
        if flusher.flush().fields == 0 and not flusher.in_doubt:
            return
    raise AssertionError(f"still sending after {attempts} flushes; {flusher.in_doubt} parts in doubt")


# -- a part failing midway -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stored, delta, reason",
    [
        pytest.param("seven", 5, "not an integer", id="not-an-integer"),
        pytest.param(str(INT64_MAX - 2), 5, "overflow", id="overflow"),
    ],
)
def test_a_part_failing_midway_applies_none_of_its_fields(
    redis_client, write_behind, flush_error, stored, delta, reason
):
    table = CounterTable()
    flusher = write_behind(table, redis_client, shards=2)
    redis_client.hset("igcore:{0}:likes", "6", stored)  # key 6 is in shard 0, as are 2 and 4
    table.add([2, 4, 6, 1, 3], [1, 1, delta, 1, 1], kind="likes")  # sent in key order: 6 after 2 and 4
    table.add([4], [7], kind="views")  # and then the views
    with pytest.raises(flush_error, match=rf"(?i)refused 1 field.*likes of key 6.*{reason}"):
        flusher.flush()
    # The part of shard 0 changed nothing, not even the fields it had incremented before key 6's.
    assert redis_client.hgetall("igcore:{0}:likes") == {b"6": stored.encode()}
    assert not redis_client.exists("igcore:{0}:views")
    assert not redis_client.keys("igcore:{0}:batch:*")
    assert flusher.totals("likes", [1, 3]).tolist() == [1, 1]  # shard 1's part ran
    for _ in range(3):  # the rest of the part goes once; the refused delta waits, set aside
        flusher.flush()
    assert flusher.totals("likes", [2, 4]).tolist() == [1, 1]
    assert flusher.totals("views", [4]).tolist() == [7]
    assert redis_client.hget("igcore:{0}:likes", "6") == stored.encode()
    assert flusher.refused == {"likes": {6: delta}}
    assert not flusher.held and not flusher.in_doubt
    # Repaired in Redis, the set-aside delta goes out with the next flush, once.
    redis_client.hset("igcore:{0}:likes", "6", 10)
    flusher.retry_refused()
    assert flusher.refused == {}
    flusher.flush()
    flusher.flush()
    assert flusher.totals("likes", [6]).tolist() == [10 + delta]


def test_a_hash_of_another_type_sets_its_fields_aside(redis_client, write_behind, flush_error):
    table = CounterTable()
    flusher = write_behind(table, redis_client, shards=2)
    redis_client.set("igcore:{1}:likes", "not a hash")
    table.add([1, 3, 2], [5, 6, 7], kind="likes")
    table.add([1], [8], kind="views")
    message = r"refused 2 fields.*likes of key 1 \(igcore:\{1\}:likes\): WRONGTYPE"
    with pytest.raises(flush_error, match=message):
        flusher.flush()
    assert flusher.refused == {"likes": {1: 5, 3: 6}}
    assert not redis_client.exists("igcore:{1}:views")  # the rest of the part waits for the next flush
    assert flusher.totals("likes", [2]).tolist() == [7]
    flusher.flush()
    assert flusher.totals("views", [1]).tolist() == [8]
    redis_client.delete("igcore:{1}:likes")
    flusher.retry_refused()
    flusher.flush()
    assert_redis_holds_the_table(flusher, table, [1, 2, 3])


# -- replies lost after Redis ran the command, under both decodings ------------------------------------------


@pytest.mark.parametrize("decode_responses", DECODINGS)
def test_a_reply_lost_after_redis_ran_the_batch_counts_once(
    own_server, write_behind, redis, decode_responses
):
    faults = Faults()
    client = faulty_client(redis, own_server, faults, decode_responses)
    table = CounterTable()
    flusher = write_behind(table, client, shards=4)
    table.add([1, 2, 3, 4, 5], [1, 2, 3, 4, 5], kind="likes")
    faults.drop_reply = 3  # Redis answered all four parts; the last answer is lost
    with pytest.raises(redis.ConnectionError, match="the reply was lost"):
        flusher.flush()
    assert flusher.in_doubt == 4  # keys 1 and 5 share shard 1
    table.add([1], [10], kind="likes")
    flushed = flusher.flush()
    assert (flushed.settled, flushed.settled_applied) == (4, 4)
    assert flusher.totals("likes", [1, 2, 3, 4, 5]).tolist() == [11, 2, 3, 4, 5]
    assert not flusher.held and not flusher.in_doubt


@pytest.mark.parametrize("decode_responses", DECODINGS)
def test_a_reply_lost_midway_through_the_batch_counts_once(own_server, write_behind, redis, decode_responses):
    faults = Faults()
    client = faulty_client(redis, own_server, faults, decode_responses)
    table = CounterTable()
    flusher = write_behind(table, client, shards=16, part_size=10)
    keys = np.arange(-500, 500)
    table.add(keys, keys * 3, kind="views")
    faults.drop_reply = 30  # thirty parts answered, then the connection drops
    with pytest.raises(redis.ConnectionError):
        flusher.flush()
    table.add(keys[::5], kind="views")
    flush_until_settled(flusher)
    assert_redis_holds_the_table(flusher, table, keys)


@pytest.mark.parametrize("decode_responses", DECODINGS)
def test_a_lost_settling_reply_is_settled_again(own_server, write_behind, redis, decode_responses):
    faults = Faults()
    client = faulty_client(redis, own_server, faults, decode_responses)
    table = CounterTable()
    flusher = write_behind(table, client, shards=4)
    table.add([1, 2, 3], [4, 5, 6], kind="shares")
    own_server.stop()
    with pytest.raises(redis.ConnectionError):
        flusher.flush()  # the parts never reached Redis
    own_server.start()
    faults.drop_reply = 1  # the settling script runs (fences the parts off); its answer is lost
    with pytest.raises(redis.ConnectionError, match="the reply was lost"):
        flusher.flush()
    assert flusher.in_doubt == 3
    flushed = flusher.flush()  # reads the "fenced" markers: the deltas go out again
    assert (flushed.settled, flushed.settled_applied, flushed.fields) == (3, 0, 3)
    assert flusher.totals("shares", [1, 2, 3]).tolist() == [4, 5, 6]


# -- anything raised after the drain -------------------------------------------------------------------------


class EvalRaises:
    """A client whose pipelines raise on queueing a script: after the drain, before anything is sent."""

    def __init__(self, client, error):
        self.client, self.error = client, error

    def pipeline(self, *args, **kwargs):
        pipe = self.client.pipeline(*args, **kwargs)
        error, self.error = self.error, None
        if error is not None:
            queue = pipe.execute_command

            def execute_command(*args, **kwargs):
                if args[0] == "EVAL":
                    raise error
                return queue(*args, **kwargs)

            pipe.execute_command = execute_command
        return pipe

    def __getattr__(self, name):
        return getattr(self.client, name)


@pytest.mark.parametrize(
    "where, error",
    [
        pytest.param("queueing", TypeError("eval() takes 1 positional argument"), id="queueing-TypeError"),
        pytest.param("queueing", MemoryError(), id="queueing-MemoryError"),
        pytest.param("sending", KeyboardInterrupt(), id="sending-KeyboardInterrupt"),
        pytest.param("sent", KeyboardInterrupt(), id="sent-KeyboardInterrupt"),
        pytest.param("sent", SystemExit(3), id="sent-SystemExit"),
    ],
)
def test_an_exception_after_the_drain_loses_nothing(own_server, write_behind, redis, where, error):
    faults = Faults()
    client = faulty_client(redis, own_server, faults)
    if where == "queueing":
        client = EvalRaises(client, error)
    elif where == "sending":
        faults.before_send = error
    else:
        faults.after_send = error
    table = CounterTable()
    flusher = write_behind(table, client, shards=4)
    table.add([1, 2, 3, 4], [1, 2, 3, 4], kind="comments")
    with pytest.raises(type(error)):
        flusher.flush()
    assert flusher.held == {"comments": {1: 1, 2: 2, 3: 3, 4: 4}}  # drained, and held by the flusher
    table.add([2, 5], kind="comments")
    flush_until_settled(flusher)
    assert_redis_holds_the_table(flusher, table, [1, 2, 3, 4, 5])


def test_deltas_that_cannot_go_back_into_the_table_are_kept(own_server, write_behind, redis):
    # While a flush is out, the table gathers a pending delta that, with the drained one, leaves int64:
    # the drained delta could not be put back into the table; the flusher keeps it instead.
    faults = Faults()
    table = CounterTable()
    flusher = write_behind(table, faulty_client(redis, own_server, faults), shards=4)
    table.add([1], [-100], kind="likes")
    flusher.flush()
    table.add([1], [10], kind="likes")

    def fail():
        table.add([1], [INT64_MAX - 5], kind="likes")
        raise redis.ConnectionError("Redis went away")

    faults.before_send = fail
    with pytest.raises(redis.ConnectionError):
        flusher.flush()
    flush_until_settled(flusher)  # INT64_MAX + 5 to send: in two flushes
    assert flusher.totals("likes", [1]).tolist() == table.get([1], "likes").tolist() == [INT64_MAX - 95]


def test_a_client_that_is_not_redis_is_refused_before_anything_is_drained(write_behind, redis):
    table = CounterTable()
    table.add([1, 2], kind="likes")
    for client in (object(), redis.asyncio.Redis(), "redis://localhost"):
        with pytest.raises(TypeError, match=r"redis\.Redis or (a )?redis\.cluster\.RedisCluster"):
            write_behind(table, client)
    assert table.drain()["likes"].deltas.tolist() == [1, 1]  # nothing was taken


def test_a_cluster_of_one_node_flushes_as_one_server_does(tmp_path, write_behind, redis):
    from redis.cluster import RedisCluster

    server = RedisServer(tmp_path, cluster=True).start()
    try:
        cluster = RedisCluster(host="127.0.0.1", port=server.port)
        table = CounterTable()
        flusher = write_behind(table, cluster, shards=8)
        table.add([1, 2, 9, -7], [5, 6, 7, 8], kind="likes")
        assert flusher.flush().parts == 2  # shard 1 (keys 1, 9 and -7: Python's modulo) and shard 2
        assert flusher.totals("likes", [1, 2, 9, -7, 3]).tolist() == [5, 6, 7, 8, 0]
        cluster.close()
    finally:
        server.stop()


# -- Redis killed or paused mid-flush, with threads adding meanwhile -----------------------------------------


@pytest.mark.parametrize("decode_responses", DECODINGS)
def test_threads_adding_while_redis_is_paused_killed_and_restarted(
    own_server, write_behind, redis, decode_responses
):
    table = CounterTable()
    client = own_server.quick_client(timeout=0.3, decode_responses=decode_responses)
    flusher = write_behind(table, client, shards=8, part_size=40)
    universe = np.arange(-1000, 1000, 7)
    stop = threading.Event()
    added = [0, 0]

    def add(seed, slot):
        rng = np.random.default_rng(seed)
        while not stop.is_set():
            keys = rng.choice(universe, size=50)
            table.add(keys, rng.integers(-3, 10, size=50), kind="likes")
            table.add(keys[:10], kind="views")
            added[slot] += 1

    adders = [threading.Thread(target=add, args=(seed, seed)) for seed in range(2)]
    for adder in adders:
        adder.start()
    failures = 0

    def flush():
        nonlocal failures
        try:
            flusher.flush()
        except (redis.RedisError, OSError):
            failures += 1

    try:
        for fault in ["none", "pause", "none", "kill-paused", "none", "down", "pause", "kill-paused", "none"]:
            flush()
            table.add([universe[0]], kind="views")  # so that the next flush has something to send
            if fault == "pause":  # the batch waits in the paused server's socket, runs on resume
                own_server.pause()
                flush()
                own_server.resume()
            elif fault == "kill-paused":  # the batch waits in the socket and never runs
                own_server.pause()
                flush()
                own_server.stop(kill=True)
                own_server.start()
            elif fault == "down":
                own_server.stop(kill=True)
                flush()
                flush()
                own_server.start()
    finally:
        stop.set()
        for adder in adders:
            adder.join()
    assert failures >= 6 and min(added) > 0
    flush_until_settled(flusher)
    assert_redis_holds_the_table(flusher, table, universe)


def test_redis_killed_while_a_large_flush_runs_with_threads_adding(own_server, write_behind, redis):
    table = CounterTable()
    flusher = write_behind(table, own_server.quick_client(timeout=2.0), shards=64, part_size=100)
    universe = np.arange(0, 40_000, 3)
    table.add(universe, kind="likes")
    stop = threading.Event()

    def add():
        rng = np.random.default_rng(7)
        while not stop.is_set():
            table.add(rng.choice(universe, size=200), kind="likes")

    adder = threading.Thread(target=add)
    adder.start()
    outcome = []

    def flush():
        try:
            outcome.append(flusher.flush())
        except (redis.RedisError, OSError) as exc:
            outcome.append(exc)

    watcher = own_server.client()
    flushing = threading.Thread(target=flush)
    flushing.start()
    for _ in range(100_000):  # until some of the parts have run (or the flush has ended)
        if outcome or watcher.dbsize() > 30:
            break
    own_server.stop(kill=True)
    flushing.join()
    watcher.close()
    own_server.start()
    stop.set()
    adder.join()
    flush_until_settled(flusher)
    assert_redis_holds_the_table(flusher, table, universe)
