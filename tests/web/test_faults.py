"""Faults of the web tier, on a real ``igcore serve`` (two workers): Redis restarted in the middle of a
run, a worker killed with SIGKILL, and slow or broken clients. One combination only (rust when selected,
else the first selected backend; SQLite), loopback only, each test bounded in time.

- **Redis restarted**: while it is down every answer is a 2xx or a 503 with Mastodon's error body (never
  a 500, never a request that hangs past REQUEST_BOUND); the service recovers by itself within
  RECOVERY_BOUND; a favourite retried until it got a 2xx is in the database once and counted once.
- **A worker killed**: the other one keeps serving; every favourite and follow that got a 2xx is in
  the database, and ``igcore serve --reconcile`` makes Redis's counts the database's.
- **Slow clients**: a slowloris, a client that never reads its answers and a burst of malformed requests
  do not keep a normal request from being answered within NORMAL_BOUND, on either worker.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sqlite3
import subprocess
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest

from . import User, error, eventually, ok, sign_up_many, worker_of
from .conftest import SELECTED, SERVE_COMMAND, _clean_environment

BACKEND = "rust" if "rust" in SELECTED else SELECTED[0]
SHARDS = 64  # igcore.web.keys.SHARDS: the WriteBehind hashes of favourites
REDIS_SOCKET_TIMEOUT = 5.0  # the socket timeout of the workers' Redis clients (igcore.web.worker)
# A request makes at most two Redis round trips that can each wait the whole socket timeout (its own,
# and the favourite's flush it waits for); the rest of its work is well under a second.
REQUEST_BOUND = 2 * REDIS_SOCKET_TIMEOUT + 2
RECOVERY_BOUND = 10.0  # from Redis answering again to every endpoint answering 2xx
NORMAL_BOUND = 1.0  # a normal request's answer while slow clients hold connections
DOWN_SECONDS = 3.0


@pytest.fixture
def aof_redis(tmp_path):
    from ..redis_server import RedisServer

    redis = RedisServer(tmp_path, append_only=True).start()
    yield redis
    redis.stop()


def favourites_hash(status_id: int) -> str:
    return f"igcore:counts:{{{status_id % SHARDS}}}:favourites"


def database_rows(server: Any, sql: str) -> list[tuple[Any, ...]]:
    with contextlib.closing(sqlite3.connect(Path(server.data_dir) / "demo.sqlite3", timeout=10)) as db:
        return db.execute(sql).fetchall()


def favourite_rows(server: Any, status_ids: list[int]) -> Counter[tuple[int, int]]:
    wanted = ",".join(str(i) for i in status_ids)
    rows = database_rows(
        server, f"SELECT account_id, status_id FROM igcore_favourite WHERE status_id IN ({wanted})"
    )
    return Counter((int(a), int(s)) for a, s in rows)


def timed(call: Any, *args: Any, **options: Any) -> tuple[httpx.Response | BaseException, float]:
    """`call(*args, **options)`'s answer (or its transport error) and how long it took."""
    began = time.monotonic()
    try:
        answer: httpx.Response | BaseException = call(*args, **options)
    except httpx.TransportError as exc:
        answer = exc
    return answer, time.monotonic() - began


def post_statuses(author: User, count: int) -> list[int]:
    return [int(author.post_status(f"fault {n}")["id"]) for n in range(count)]


# -- Redis restarted ---------------------------------------------------------------------------------


def test_redis_restarted_mid_run(servers, aof_redis):
    url = f"redis://127.0.0.1:{aof_redis.port}/0"
    server = servers.start(BACKEND, "sqlite", "--rate-limit", "off", "--redis", url)

    def restart(statuses: list[int]) -> tuple[float, float]:
        down_at = time.monotonic()
        aof_redis.stop()
        time.sleep(DOWN_SECONDS)
        aof_redis.start()  # the same port, and its append-only file: the same data
        return down_at, time.monotonic()

    try:
        with contextlib.closing(aof_redis.client()) as client:
            favourite_through(server, "redis", restart, client)
    finally:
        servers.release(server)


def test_redis_cluster_master_killed_mid_run(servers, tmp_path):
    """On a Redis Cluster, the master of the favourites' shard is SIGKILLed under load: its replica takes
    over, the killed node comes back as a replica, and every favourite answered 2xx is counted once
    (the counters waited for the replica: the new master has what the old one acknowledged)."""
    from ..redis_server import RedisClusterNodes

    cluster = RedisClusterNodes(tmp_path).start()
    server = servers.start_on_cluster(BACKEND, cluster)
    failover: dict[str, float] = {}

    def kill_a_master(statuses: list[int]) -> tuple[float, float]:
        with contextlib.closing(cluster.client()) as client:
            port = client.get_node_from_key(favourites_hash(statuses[0])).port
        down_at = time.monotonic()
        killed = cluster.kill_master(port)
        cluster.wait_for_failover(killed)
        failover["seconds"] = time.monotonic() - down_at
        killed.start()  # rejoins as its successor's replica: the counters' WAIT can be met again
        cluster.wait_until_ok()
        return down_at, time.monotonic()

    try:
        with contextlib.closing(cluster.client()) as client:
            # redis-py's cluster client retries a command while the slot map changes: a request may
            # ride through a failover without a 503.
            favourite_through(server, "cluster", kill_a_master, client, must_refuse=False)
        print(f"failover {failover['seconds']:.1f}s after the SIGKILL")
    finally:
        servers.release(server)
        cluster.stop()


def favourite_through(server: Any, prefix: str, fault: Any, client: Any, must_refuse: bool = True) -> None:
    """Fans favourite statuses from six threads (a 503 retried, as a client would) and read home feeds
    and statuses while `fault(statuses)` disrupts Redis and returns when it went and when it was back.
    While it is down every answer is a 2xx or a 503 within REQUEST_BOUND (some 503, if `must_refuse`);
    503s end within RECOVERY_BOUND of its return; every favourite is then one row and counted once, in
    Redis (read with `client`) and by the API."""
    authors_and_fans = sign_up_many(server.api, server.app_token(), 14, prefix)
    authors, fans = authors_and_fans[:2], authors_and_fans[2:]
    for fan in fans:
        for author in authors:
            fan.follow(author)
    statuses = [s for author in authors for s in post_statuses(author, 4)]
    # Every fan favourites every status once: distinct (account, status) pairs, shared out to threads.
    pairs = [(fan, status) for fan in fans for status in statuses]
    threads_count = 6
    shares = [pairs[n::threads_count] for n in range(threads_count)]
    answers: list[tuple[float, str, int | str, float]] = []  # (when, what, status or error, seconds)
    lock = threading.Lock()
    stop_at = [float("inf")]
    done_pairs: set[tuple[str, int]] = set()

    def check(what: str, answer: httpx.Response | BaseException, seconds: float) -> bool:
        with lock:
            code = answer.status_code if isinstance(answer, httpx.Response) else repr(answer)
            answers.append((time.monotonic(), what, code, seconds))
        assert isinstance(answer, httpx.Response), f"{what}: {answer!r} after {seconds:.1f}s"
        assert seconds < REQUEST_BOUND, f"{what} took {seconds:.1f}s"
        if answer.status_code == 503:
            error(answer, 503)
            return False
        assert 200 <= answer.status_code < 300, f"{what}: {answer.status_code} {answer.text[:500]}"
        return True

    def run(share: list[tuple[User, int]]) -> None:
        waiting = list(share)
        while waiting or time.monotonic() < stop_at[0]:
            if waiting:
                fan, status = waiting[0]
                answer, seconds = timed(
                    fan.api.post, f"/api/v1/statuses/{status}/favourite", timeout=REQUEST_BOUND + 5
                )
                if check("favourite", answer, seconds):
                    assert isinstance(answer, httpx.Response)
                    assert answer.json()["favourited"] is True, answer.text
                    waiting.pop(0)  # answered: done; a 503 is retried, as a client would
                    with lock:
                        done_pairs.add((fan.id, status))
                time.sleep(0.05)
            reader = share[len(waiting) % len(share)][0]
            answer, seconds = timed(reader.api.get, "/api/v1/timelines/home", timeout=REQUEST_BOUND + 5)
            check("home", answer, seconds)
            viewed = statuses[len(waiting) % len(statuses)]
            answer, seconds = timed(reader.api.get, f"/api/v1/statuses/{viewed}", timeout=REQUEST_BOUND + 5)
            check("view", answer, seconds)

    errors: list[BaseException] = []

    def guarded(share: list[tuple[User, int]]) -> None:
        try:
            run(share)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(share,), daemon=True) for share in shares]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    down_at, up_at = fault(statuses)
    stop_at[0] = up_at + RECOVERY_BOUND + 2
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[0]
    assert not any(thread.is_alive() for thread in threads)

    refused = [a for a in answers if a[2] == 503]
    assert refused or not must_refuse, "no request saw Redis down"
    last_503 = max((a[0] for a in refused), default=down_at)
    recovered = last_503 - up_at
    assert recovered < RECOVERY_BOUND, f"503s went on {recovered:.1f}s after Redis was back"
    after = [a for a in answers if a[0] > max(last_503, up_at)]
    assert {a[1] for a in after} >= {"home", "view"}, "no endpoint was tried after recovery"
    assert all(isinstance(a[2], int) and 200 <= a[2] < 300 for a in after)
    during = [a for a in answers if down_at <= a[0] <= up_at]
    print(
        f"\nRedis back {up_at - down_at:.1f}s after it went; {len(during)} answers meanwhile; "
        + (
            f"503s from {min(a[0] for a in refused) - down_at:.2f}s to {last_503 - down_at:.2f}s after it "
            f"went, the last {recovered:+.2f}s from its return; "
            if refused
            else "no 503; "
        )
        + f"{len(refused)} of {len(answers)} answers 503; slowest {max(a[3] for a in answers):.2f}s"
    )

    # A favourite made now, after the recovery, is answered too (and counted like the others).
    assert ok(authors[0].api.post(f"/api/v1/statuses/{statuses[-1]}/favourite"))["favourited"] is True
    pairs.append((authors[0], statuses[-1]))
    done_pairs.add((authors[0].id, statuses[-1]))

    # Every favourite got its 2xx at last: each is one row and counted once, in Redis and by the API.
    assert len(done_pairs) == len(pairs)
    rows = favourite_rows(server, statuses)
    assert rows == Counter((int(fan.id), status) for fan, status in pairs), rows
    per_status = Counter(status for _, status in pairs)
    for status in statuses:
        expected = per_status[status]

        def counted(status: int = status, expected: int = expected) -> None:
            stored = client.hget(favourites_hash(status), str(status))
            assert stored is not None and int(stored) == expected, (status, stored, expected)
            shown = ok(authors[0].api.get(f"/api/v1/statuses/{status}"))["favourites_count"]
            assert shown == expected, (status, shown, expected)

        eventually(counted, seconds=5)


# -- a worker killed ---------------------------------------------------------------------------------


@pytest.fixture
def own_redis(tmp_path):
    from ..redis_server import RedisServer

    redis = RedisServer(tmp_path).start()
    yield redis
    redis.stop()


def worker_pids(server: Any) -> set[int]:
    seen: set[int] = set()
    deadline = time.monotonic() + 20
    while len(seen) < 2:
        assert time.monotonic() < deadline, f"only saw workers {seen}"
        seen.add(int(worker_of(server.api.get("/api/v1/instance"))))
    return seen


def test_worker_killed_mid_run(servers, own_redis):
    url = f"redis://127.0.0.1:{own_redis.port}/0"
    server = servers.start(BACKEND, "sqlite", "--rate-limit", "off", "--redis", url)
    try:
        people = sign_up_many(server.api, server.app_token(), 14, "kill")
        authors, fans = people[:2], people[2:]
        statuses = [s for author in authors for s in post_statuses(author, 3)]
        jobs: list[tuple[str, User, Any]] = [("favourite", fan, s) for fan in fans for s in statuses]
        jobs += [("follow", fan, other) for fan in fans for other in fans if other is not fan][
            : len(jobs) // 2
        ]
        threads_count = 6
        shares = [jobs[n::threads_count] for n in range(threads_count)]
        answered: dict[str, set[tuple[int, int]]] = {"favourite": set(), "follow": set()}
        lock = threading.Lock()
        failures: list[BaseException] = []
        pids = worker_pids(server)
        victim = min(pids)
        killed_at = [float("inf")]
        after_kill: list[int] = []  # the workers that answered with a 2xx after the kill

        def run(share: list[tuple[str, User, Any]]) -> None:
            for kind, who, target in share:
                time.sleep(0.15)  # paced: the load goes on for seconds after the kill
                path = (
                    f"/api/v1/statuses/{target}/favourite"
                    if kind == "favourite"
                    else f"/api/v1/accounts/{target.id}/follow"
                )
                try:
                    response = who.api.post(path, timeout=15)
                except httpx.TransportError:
                    continue  # its worker died under it: no answer, so nothing to hold the server to
                if response.status_code >= 500:
                    error(response, 503)
                    continue
                ok(response)
                with lock:
                    answered[kind].add((int(who.id), int(target) if kind == "favourite" else int(target.id)))
                    if time.monotonic() > killed_at[0]:
                        after_kill.append(int(worker_of(response)))

        def guarded(share: list[tuple[str, User, Any]]) -> None:
            try:
                run(share)
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                failures.append(exc)

        threads = [threading.Thread(target=guarded, args=(share,), daemon=True) for share in shares]
        for thread in threads:
            thread.start()
        time.sleep(1.0)
        os.kill(victim, signal.SIGKILL)
        killed_at[0] = time.monotonic()
        # The other worker keeps serving at once: ten requests in a row, each answered within a second.
        for _ in range(10):
            answer, seconds = timed(server.api.get, "/api/v1/instance", timeout=5)
            assert isinstance(answer, httpx.Response) and answer.status_code == 200, answer
            assert int(worker_of(answer)) != victim
            assert seconds < 1.0, seconds
        for thread in threads:
            thread.join(timeout=60)
        assert not failures, failures[0]
        assert not any(thread.is_alive() for thread in threads)
        assert answered["favourite"] and answered["follow"]
        assert len(after_kill) > 20 and victim not in after_kill, after_kill
        print(
            f"\nworker {victim} killed; {sum(len(v) for v in answered.values())} of {len(jobs)} writes got a "
            f"2xx, {len(after_kill)} of them after the kill, in {time.monotonic() - killed_at[0]:.1f}s"
        )

        favourites = favourite_rows(server, statuses)
        for pair in answered["favourite"]:
            assert favourites[pair] == 1, pair
        follows = {
            (int(a), int(b))
            for a, b in database_rows(server, "SELECT account_id, target_account_id FROM igcore_follow")
        }
        assert answered["follow"] <= follows, answered["follow"] - follows
    finally:
        servers.release(server)  # stopped before the recount: nothing flushes meanwhile

    database = f"sqlite:///{Path(server.data_dir) / 'demo.sqlite3'}"
    env = _clean_environment(BACKEND)
    env["IGCORE_WEB_SECRET_KEY"] = "test"
    done = subprocess.run(
        [*SERVE_COMMAND, "--reconcile", "--redis", url, "--database", database],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    client = own_redis.client()
    in_database = Counter(status for _, status in favourite_rows(server, statuses).elements())
    for status in statuses:
        stored = client.hget(favourites_hash(status), str(status))
        assert (int(stored) if stored is not None else 0) == in_database[status], (status, stored)
    client.close()


# -- slow clients ------------------------------------------------------------------------------------


def connect(server: Any) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def test_slow_clients_do_not_stall_the_service(servers):
    server = servers.start(BACKEND, "sqlite", "--rate-limit", "off")
    stop = threading.Event()
    failures: list[BaseException] = []
    outcomes: dict[str, Any] = {}

    def slowloris() -> None:
        request = b"GET /api/v1/instance HTTP/1.1\r\nHost: localhost\r\nX-Slow: " + b"a" * 100
        with connect(server) as conn:
            sent = 0
            for byte in request:
                if stop.is_set():
                    break
                try:
                    conn.sendall(bytes([byte]))
                except OSError:
                    break  # the server closed it: fine
                sent += 1
                time.sleep(1.0)
            outcomes["slowloris bytes"] = sent

    token = sorted(server.demo_tokens.values())[0]
    big = ok(server.api.as_(token).get("/api/v1/timelines/home", params={"limit": 40}))
    assert len(big) == 40

    def never_reads() -> None:
        conns = []
        for _ in range(4):
            conn = connect(server)
            conn.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            # A home page of 40 statuses (tens of kilobytes), asked for again and again, never read.
            request = (
                b"GET /api/v1/timelines/home?limit=40 HTTP/1.1\r\nHost: localhost\r\n"
                b"Authorization: Bearer " + token.encode() + b"\r\n\r\n"
            )
            sent = 0
            with contextlib.suppress(OSError):
                conn.settimeout(0.5)
                for _ in range(2000):
                    conn.sendall(request)
                    sent += 1
            outcomes.setdefault("unread requests sent", []).append(sent)
            conns.append(conn)
        stop.wait(30)
        for conn in conns:
            conn.close()

    def malformed() -> None:
        garbage = [
            os.urandom(512),
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(200),  # a TLS hello
            b"GET / HTTP/9.9\r\n\r\n",
            b"NOT A REQUEST\r\n\r\n",
            b"GET /api/v1/instance HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
            b"GET /api/v1/instance HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 200_000 + b"\r\n\r\n",
            b"GET /api/v1/instance HTTP/1.1\r\n"
            + b"".join(b"X-%d: y\r\n" % n for n in range(5000))
            + b"\r\n",
            b"GET /" + b"p" * 100_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        ]
        slowest = 0.0
        for _ in range(10):
            for data in garbage:
                began = time.monotonic()
                with connect(server) as conn:
                    conn.settimeout(5)
                    with contextlib.suppress(OSError):
                        conn.sendall(data)
                        conn.shutdown(socket.SHUT_WR)
                    reply = b""
                    with contextlib.suppress(ConnectionResetError, BrokenPipeError):
                        while chunk := conn.recv(65536):
                            reply += chunk
                    assert not reply or reply.startswith(b"HTTP/1.1 4"), reply[:200]
                    assert b"Traceback" not in reply
                slowest = max(slowest, time.monotonic() - began)
        outcomes["malformed slowest"] = slowest

    def guarded(job: Any) -> Any:
        def run() -> None:
            try:
                job()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                failures.append(exc)

        return run

    try:
        threads = [threading.Thread(target=guarded(job), daemon=True) for job in (slowloris, never_reads)]
        threads += [threading.Thread(target=guarded(malformed), daemon=True) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(0.5)
        latencies: list[float] = []
        workers: set[str] = set()
        began = time.monotonic()
        while time.monotonic() - began < 8:
            answer, seconds = timed(server.api.get, "/api/v1/instance", timeout=5)
            assert isinstance(answer, httpx.Response) and answer.status_code == 200, answer
            workers.add(worker_of(answer))
            latencies.append(seconds)
            time.sleep(0.05)
        stop.set()
        for thread in threads:
            thread.join(timeout=30)
        assert not failures, failures[0]
        assert max(latencies) < NORMAL_BOUND, max(latencies)
        assert len(workers) == 2, f"only {workers} answered: a worker stalled"
        print(
            f"\n{len(latencies)} normal requests under slow clients: slowest {max(latencies) * 1000:.0f} ms, "
            f"median {sorted(latencies)[len(latencies) // 2] * 1000:.0f} ms; {outcomes}"
        )
    finally:
        servers.release(server)
