"""``igcore serve``: its refusals of bad options, and the demo network it seeds, on temporary SQLite.

Each case runs ``python -m igcore serve`` (or ``igcore.web.demo.build``) in a child process, as a person
would: serve sets its process's environment and configures Django once, as a service does. The databases
are read back with the standard library's sqlite3, not through the code under test.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import socket
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timedelta, timezone
from importlib.util import find_spec
from pathlib import Path

import pytest

from igcore.cli import WEB_EXTRA
from tests.conftest import shared_data
from tests.isolated import PACKAGE_ROOT
from tests.redis_server import require_redis

missing = [module for module in WEB_EXTRA if find_spec(module) is None]
pytestmark = pytest.mark.skipif(
    bool(missing),
    reason=f"igcore serve needs the web extra ({', '.join(missing)}): pip install 'igcore[web]'",
)

BUILD = """
import json, os, sys
from datetime import datetime
os.environ["IGCORE_WEB_DATABASE_URL"] = "sqlite:///" + sys.argv[1]
import django
django.setup()
from django.core.management import call_command
call_command("migrate", verbosity=0)
from igcore.web import demo
now = datetime.fromisoformat(sys.argv[4]) if len(sys.argv) > 4 else None
print(json.dumps(demo.build(accounts=int(sys.argv[2]), seed=int(sys.argv[3]), now=now)))
"""


def child_environment(**extra: str) -> dict[str, str]:
    """The tests' environment without any web configuration of theirs, and the igcore under test."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("IGCORE_WEB_", "DJANGO_"))}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, environment.get("PYTHONPATH")]))
    return {**environment, **extra}


def serve(*args: str, cwd: Path, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "igcore", "serve", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=child_environment(**env),
        timeout=timeout,
    )


def setup_demo(data_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """``igcore serve --demo --setup-only``: seeds the folder's network (with a Redis of its own)."""
    require_redis()
    done = serve("--demo", "--setup-only", "--data-dir", str(data_dir), *args, cwd=data_dir.parent)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    return done


def build(database: Path, accounts: int, seed: int, now: datetime | None = None) -> dict:
    """``demo.build`` into a new SQLite database; its report."""
    arguments = [str(database), str(accounts), str(seed)] + ([now.isoformat()] if now else [])
    done = subprocess.run(
        [sys.executable, "-c", BUILD, *arguments],
        capture_output=True,
        text=True,
        env=child_environment(IGCORE_WEB_SECRET_KEY="test", DJANGO_SETTINGS_MODULE="igcore.web.settings"),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


FAVOURITES_PER_STATUS = "SELECT status_id, count(*) FROM igcore_favourite GROUP BY status_id"


def rows(database: Path, query: str, *parameters: object) -> list[tuple]:
    connection = sqlite3.connect(database)
    try:
        return connection.execute(query, parameters).fetchall()
    finally:
        connection.close()


def millis(text: str) -> int:
    """Milliseconds since the epoch of a datetime as Django's SQLite backend stores it (UTC)."""
    moment = datetime.fromisoformat(text).replace(tzinfo=timezone.utc)
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


def network(database: Path) -> dict[str, list[tuple]]:
    """What a demo network is, without its times and ids made of times."""
    return {
        "accounts": rows(
            database, "SELECT id, username, email, display_name, statuses_count FROM igcore_account"
        ),
        "follows": sorted(rows(database, "SELECT account_id, target_account_id FROM igcore_follow")),
        "statuses": sorted(rows(database, "SELECT account_id, text FROM igcore_status")),
        "favourites": sorted(
            rows(
                database,
                "SELECT f.account_id, s.account_id, s.text FROM igcore_favourite f "
                "JOIN igcore_status s ON s.id = f.status_id",
            )
        ),
    }


def whole(database: Path) -> dict[str, list[tuple]]:
    """Every row of every table the demo fills, in id order; but the password hash, salted at random."""
    tables = ["account", "status", "follow", "favourite", "notification"]
    whole = {table: rows(database, f"SELECT * FROM igcore_{table} ORDER BY id") for table in tables}
    columns = [c[1] for c in rows(database, "PRAGMA table_info(igcore_account)")]
    password = columns.index("password")
    whole["account"] = [row[:password] + row[password + 1 :] for row in whole["account"]]
    return whole


def one_line_error(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    return lines[0]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# -- refusals -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "said"),
    [
        (
            ["--demo", "--graph", "follows.txt", "--accounts", "100"],
            "--graph and --accounts exclude each other",
        ),
        (["--accounts", "100"], "--accounts is a demo option"),
        (["--tokens", "tokens.json"], "--tokens is a demo option"),
        (["--demo", "--accounts", "1"], "at least 2"),
        (["--demo", "--accounts", "many"], "not a whole number"),
        (["--demo", "--workers", "0"], "at least 1"),
        (["--demo", "--port", "70000"], "1 to 65535"),
        (["--demo", "--database", "mysql://db.invalid/igcore"], "use sqlite:///<path> or postgres://"),
        (["--demo", "--redis", "http://127.0.0.1:6379"], "use redis://host:port/db"),
        (["--demo", "--redis-cluster", "127.0.0.1"], "'127.0.0.1' is not HOST:PORT"),
        (["--demo", "--redis-cluster", "127.0.0.1:0"], "'127.0.0.1:0' is not HOST:PORT"),
        (
            ["--demo", "--redis", "redis://127.0.0.1:6379/0", "--redis-cluster", "127.0.0.1:7000"],
            "--redis and --redis-cluster exclude each other",
        ),
        (["--demo", "--redis-replicas", "-1"], "at least 0"),
        (["--demo", "--rate-limit", "fast"], "<requests>/<seconds>"),
        (["--demo", "--rate-limit", "0/60"], "<requests>/<seconds>"),
        (["--demo", "--reconcile"], "--reconcile needs the Redis to recount"),
        (["--reconcile", "--port", "8001"], "--port does not go with it"),
        (["--demo", "--no-such-option"], "unrecognized arguments"),
        (["--demo", "--graph", "missing.txt"], "cannot read the edge list missing.txt: No such file"),
    ],
)
def test_serve_refuses_bad_options_in_one_line(tmp_path, arguments, said):
    if "--demo" in arguments:
        arguments = [*arguments, "--data-dir", "demo"]
    assert said in one_line_error(serve(*arguments, cwd=tmp_path))
    assert not (tmp_path / "demo").exists()  # refused before anything was made


def test_serve_refuses_a_port_in_use_before_any_setup(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = serve("--demo", "--data-dir", "demo", "--port", str(port), cwd=tmp_path)
    assert f"cannot listen on 127.0.0.1:{port}" in one_line_error(done)
    assert not (tmp_path / "demo").exists()


def test_serve_without_redis_server_says_what_to_do(tmp_path):
    nothing = tmp_path / "empty-bin"
    nothing.mkdir()
    done = serve("--demo", "--setup-only", "--data-dir", "demo", cwd=tmp_path, PATH=str(nothing))
    line = one_line_error(done)
    assert "redis-server is not on PATH" in line and "--redis" in line


def test_serve_refuses_a_malformed_edge_list_in_one_line(tmp_path):
    require_redis()
    edges = tmp_path / "follows.txt"
    edges.write_text("0 1\n1 two\n")
    done = serve("--demo", "--setup-only", "--data-dir", "demo", "--graph", str(edges), cwd=tmp_path)
    line = one_line_error(done)
    assert "cannot seed from" in line and "follows.txt" in line and "line 2" in line
    assert rows(tmp_path / "demo" / "demo.sqlite3", "SELECT count(*) FROM igcore_account") == [(0,)]


def test_cli_without_the_web_extra_says_how_to_install_it():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["django"] = None  # as if not installed
        from igcore.cli import main
        assert main(["info"]) == 0  # needs no Django
        sys.exit(main(["serve", "--demo"]))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=child_environment(), timeout=120
    )
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip() == (
        "igcore serve needs the web extra (django missing): pip install 'igcore[web]'"
    )


def test_serve_without_demo_needs_its_configuration(tmp_path):
    require_redis()
    database = f"sqlite:///{tmp_path / 'service.sqlite3'}"
    done = serve("--setup-only", "--database", database, cwd=tmp_path)
    assert "set IGCORE_WEB_SECRET_KEY" in one_line_error(done)


def test_sigterm_while_seeding_rolls_back_and_stops_its_redis(tmp_path):
    require_redis()
    process = subprocess.Popen(
        [sys.executable, "-m", "igcore", "serve", "--demo", "--setup-only", "--data-dir", "demo"],
        cwd=tmp_path,
        env=child_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        redis_port = None
        for line in process.stdout:
            if line.startswith("started redis-server on "):
                redis_port = int(line.split("127.0.0.1:")[1].split("/")[0])
            if line.startswith("seeding the demo network"):  # 20,000 accounts: many seconds to go
                break
        time.sleep(1)
        process.send_signal(signal.SIGTERM)
        _, errors = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, errors
    assert "Traceback" not in errors
    assert rows(tmp_path / "demo" / "demo.sqlite3", "SELECT count(*) FROM igcore_account") == [(0,)]
    assert redis_port is not None
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", redis_port), timeout=5),
    ):
        pass  # its redis-server is gone


# -- the demo network -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A demo network of 1,500 accounts set up by ``igcore serve --demo --setup-only``, with tokens."""
    data_dir = tmp_path_factory.mktemp("serve") / "demo"
    before = datetime.now(timezone.utc)
    done = setup_demo(
        data_dir, "--accounts", "1500", "--seed", "3", "--tokens", str(data_dir / "tokens.json")
    )
    return data_dir, done.stdout, before, datetime.now(timezone.utc)


def test_demo_seeds_the_requested_accounts_with_one_shared_password(demo):
    data_dir, output, _, _ = demo
    database = data_dir / "demo.sqlite3"
    accounts = rows(database, "SELECT id, username, email, password FROM igcore_account ORDER BY id")
    assert [a[0] for a in accounts] == list(range(1, 1501))
    assert all(
        username == f"user{i}" and email == f"user{i}@demo.invalid" for i, username, email, _ in accounts
    )
    assert "seeded 1,500 accounts" in output
    # Hashed once: every row holds the same Django PBKDF2 hash, of the documented password.
    assert len({a[3] for a in accounts}) == 1
    algorithm, iterations, salt, hashed = accounts[0][3].split("$")
    assert algorithm == "pbkdf2_sha256"
    expected = hashlib.pbkdf2_hmac("sha256", b"igcore-demo", salt.encode(), int(iterations))
    assert base64.b64decode(hashed) == expected


def test_demo_follows_are_heavy_tailed_and_come_after_both_accounts(demo):
    data_dir, _, _, _ = demo
    database = data_dir / "demo.sqlite3"
    follows = rows(database, "SELECT id, account_id, target_account_id, created_at FROM igcore_follow")
    joined = dict(rows(database, "SELECT id, created_at FROM igcore_account"))
    assert len({(a, b) for _, a, b, _ in follows}) == len(follows)
    for follow_id, a, b, created_at in follows:
        assert a != b
        assert follow_id >> 16 == millis(created_at)  # a snowflake of its time
        assert created_at > joined[a] and created_at > joined[b]
    followers = sorted(rows(database, "SELECT count(*) FROM igcore_follow GROUP BY target_account_id"))
    following = sorted(rows(database, "SELECT count(*) FROM igcore_follow GROUP BY account_id"))
    assert followers[-1][0] >= 20 * followers[len(followers) // 2][0]  # a few celebrities
    assert following[-1][0] >= 10 * following[len(following) // 2][0]  # a few who follow many
    assert 10 <= following[len(following) // 2][0] <= 30


def test_demo_at_full_size_has_celebrities_beyond_the_fan_out_limit(tmp_path):
    # Only the graph (the database rows take the rest of the ~25 s of a full seeding).
    code = textwrap.dedent(
        """
        import django, numpy as np
        django.setup()
        from igcore.web.demo import _generated_follows
        src, dst = _generated_follows(np.random.default_rng(0), 20000)
        followers = np.bincount(dst, minlength=20000)
        print(int((followers > 1000).sum()), int((followers > 3000).sum()), int(np.median(np.bincount(src))))
        """
    )
    env = child_environment(
        IGCORE_WEB_SECRET_KEY="test",
        IGCORE_WEB_DATABASE_URL=f"sqlite:///{tmp_path / 'unused.sqlite3'}",
        DJANGO_SETTINGS_MODULE="igcore.web.settings",
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    above_limit, several_thousand, median_following = map(int, done.stdout.split())
    assert above_limit >= 10 and several_thousand >= 3
    assert 15 <= median_following <= 25


def test_demo_statuses_favourites_and_notifications_agree(demo):
    data_dir, _, before, after = demo
    database = data_dir / "demo.sqlite3"
    statuses = rows(database, "SELECT id, account_id, text, created_at FROM igcore_status")
    assert 4 <= len(statuses) / 1500 <= 6  # about five per account
    month_before = millis((before - timedelta(days=30)).replace(tzinfo=None).isoformat())
    for status_id, _, text, created_at in statuses:
        assert status_id >> 16 == millis(created_at)
        assert month_before <= millis(created_at) <= millis(after.replace(tzinfo=None).isoformat())
        assert text[0].isupper() and text.endswith(".") and len(text.split()) >= 3
    counted = rows(
        database,
        "SELECT count(*) FROM igcore_account a WHERE statuses_count != "
        "(SELECT count(*) FROM igcore_status s WHERE s.account_id = a.id) OR coalesce(last_status_at, '') != "
        "coalesce((SELECT max(created_at) FROM igcore_status s WHERE s.account_id = a.id), '')",
    )
    assert counted == [(0,)]
    favourites = rows(
        database,
        "SELECT f.id, f.account_id, s.account_id, f.created_at, s.created_at, EXISTS (SELECT 1 FROM "
        "igcore_follow x WHERE x.account_id = f.account_id AND x.target_account_id = s.account_id) "
        "FROM igcore_favourite f JOIN igcore_status s ON s.id = f.status_id",
    )
    assert len(favourites) > 1000
    for favourite_id, _, _, liked_at, posted_at, follows_author in favourites:
        assert follows_author and liked_at > posted_at and favourite_id >> 16 == millis(liked_at)
    notifications = rows(
        database,
        "SELECT count(*) FROM igcore_notification n JOIN igcore_favourite f ON f.id = n.id "
        "JOIN igcore_status s ON s.id = f.status_id WHERE n.type = 'favourite' "
        "AND n.account_id = s.account_id AND n.from_account_id = f.account_id "
        "AND n.status_id = f.status_id AND n.created_at = f.created_at",
    )
    assert notifications == [(len(favourites),)]
    assert rows(database, "SELECT count(*) FROM igcore_notification") == notifications  # none for follows


def test_demo_writes_the_graph_file_secret_key_and_tokens(demo):
    from igcore.graph import FollowGraph

    data_dir, output, _, _ = demo
    database = data_dir / "demo.sqlite3"
    graph = FollowGraph.load(data_dir / "follows.igfg")
    follows = rows(database, "SELECT account_id, target_account_id, id FROM igcore_follow")
    assert graph.num_follows == len(follows)
    assert sorted(zip(*(a.tolist() for a in graph.edges()))) == sorted(follows)
    assert (data_dir / "follows.igfg.events").read_text().strip() == "0-0"  # a new Redis: no events yet

    assert stat.S_IMODE((data_dir / "secret.key").stat().st_mode) == 0o600
    tokens_path = data_dir / "tokens.json"
    assert stat.S_IMODE(tokens_path.stat().st_mode) == 0o600
    tokens = json.loads(tokens_path.read_text())
    assert len(tokens) == 5
    for username, token in tokens.items():
        digest = hashlib.sha256(token.encode()).hexdigest()
        owner = rows(
            database,
            "SELECT a.username FROM igcore_token t JOIN igcore_account a ON a.id = t.account_id "
            "WHERE t.digest = ?",
            digest,
        )
        assert owner == [(username,)]
        assert f"  {username}: " in output
    celebrity = rows(
        database,
        "SELECT target_account_id FROM igcore_follow GROUP BY target_account_id "
        "ORDER BY count(*) DESC, target_account_id LIMIT 1",
    )[0][0]
    assert re.search(rf"user{celebrity}: the most followers", output)


def test_demo_restarts_on_the_network_it_seeded(demo):
    data_dir, _, _, _ = demo
    key = (data_dir / "secret.key").read_text()
    accounts = rows(data_dir / "demo.sqlite3", "SELECT count(*) FROM igcore_account")
    done = setup_demo(data_dir, "--accounts", "40")
    assert "holds 1,500 accounts already" in done.stdout and "seeded" not in done.stdout
    assert rows(data_dir / "demo.sqlite3", "SELECT count(*) FROM igcore_account") == accounts
    assert (data_dir / "secret.key").read_text() == key


def test_reconcile_recounts_a_given_redis_then_exits(demo, redis_server):
    data_dir, _, _, _ = demo
    arguments = ["--reconcile", "--database", f"sqlite:///{data_dir / 'demo.sqlite3'}"]
    key = {"IGCORE_WEB_SECRET_KEY": "test"}
    done = serve(*arguments, "--redis", f"redis://127.0.0.1:{redis_server.port}/9", cwd=data_dir, **key)
    assert done.returncode == 0, done.stderr
    assert "recounted Redis's counters from the database" in done.stdout
    assert "igcore serving" not in done.stdout and "started redis-server" not in done.stdout
    nobody = f"redis://127.0.0.1:{free_port()}/0"
    assert "cannot recount Redis at" in one_line_error(
        serve(*arguments, "--redis", nobody, cwd=data_dir, **key)
    )


def test_reconcile_recounts_a_redis_cluster_and_checks_its_replicas(demo, tmp_path):
    """On a cluster: the counters' hashes recounted on every master; a cluster whose masters lack the
    replicas that the counters wait for, or that is not there, refused in one line."""
    from ..redis_server import RedisClusterNodes

    require_redis()
    data_dir, _, _, _ = demo
    arguments = ["--reconcile", "--database", f"sqlite:///{data_dir / 'demo.sqlite3'}"]
    key = {"IGCORE_WEB_SECRET_KEY": "test"}
    cluster = RedisClusterNodes(tmp_path, masters=3, replicas=0).start()
    try:
        address = f"127.0.0.1:{cluster.nodes[0].port}"
        line = one_line_error(serve(*arguments, "--redis-cluster", address, cwd=data_dir, **key))
        assert "have fewer than 1 replicas" in line and "--redis-replicas" in line
        done = serve(*arguments, "--redis-cluster", address, "--redis-replicas", "0", cwd=data_dir, **key)
        assert done.returncode == 0, done.stderr
        assert f"({'cluster ' + address})" in done.stdout
        expected = dict(rows(data_dir / "demo.sqlite3", FAVOURITES_PER_STATUS))
        stored: dict[int, int] = {}
        for node in cluster.running():
            client = node.client()
            for name in client.scan_iter(match="igcore:counts:*:favourites"):
                stored.update({int(k): int(v) for k, v in client.hgetall(name).items()})
        assert stored == expected and len(stored) > 100
    finally:
        cluster.stop()
    nobody = f"127.0.0.1:{free_port()}"
    assert "cannot reach Redis at cluster" in one_line_error(
        serve(*arguments, "--redis-cluster", nobody, cwd=data_dir, **key)
    )


def test_demo_is_the_same_for_a_seed_but_its_times(tmp_path):
    now = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)
    first = build(tmp_path / "first.sqlite3", 500, seed=11, now=now)
    again = build(tmp_path / "again.sqlite3", 500, seed=11, now=now)
    assert first["accounts"] == 500
    assert {k: v for k, v in first.items() if k != "seconds"} == {
        k: v for k, v in again.items() if k != "seconds"
    }
    assert whole(tmp_path / "first.sqlite3") == whole(tmp_path / "again.sqlite3")  # ids and times too
    later = build(tmp_path / "later.sqlite3", 500, seed=11, now=now + timedelta(days=40))
    assert later["follows"] == first["follows"]
    assert network(tmp_path / "later.sqlite3") == network(tmp_path / "first.sqlite3")
    assert whole(tmp_path / "later.sqlite3")["follow"] != whole(tmp_path / "first.sqlite3")["follow"]
    build(tmp_path / "other.sqlite3", 500, seed=12, now=now)
    assert network(tmp_path / "other.sqlite3")["follows"] != network(tmp_path / "first.sqlite3")["follows"]


def test_demo_from_an_edge_list_takes_snap_ids_plus_one(tmp_path):
    edges = tmp_path / "tiny.txt"
    # Comments, a repeated follow, a self-loop (its node is still an account), a gap in the ids, CRLF.
    edges.write_bytes(
        b"# Directed graph\r\n# FromNodeId\tToNodeId\r\n0\t1\r\n1\t0\r\n0\t1\r\n2\t2\r\n5\t0\r\n"
    )
    setup_demo(tmp_path / "demo", "--graph", str(edges))
    database = tmp_path / "demo" / "demo.sqlite3"
    assert rows(database, "SELECT id FROM igcore_account ORDER BY id") == [(1,), (2,), (3,), (6,)]
    assert sorted(rows(database, "SELECT account_id, target_account_id FROM igcore_follow")) == [
        (1, 2),
        (2, 1),
        (6, 1),
    ]


def test_demo_from_wiki_vote_has_every_node_and_edge(tmp_path):
    path = shared_data("Wiki-Vote.txt.gz")
    expected = json.loads(shared_data("snap_stats_computed.json").read_text())["Wiki-Vote.txt.gz"]
    done = setup_demo(tmp_path / "demo", "--graph", str(path))
    database = tmp_path / "demo" / "demo.sqlite3"
    assert rows(database, "SELECT count(*) FROM igcore_account") == [(expected["nodes"],)]
    assert rows(database, "SELECT count(*) FROM igcore_follow") == [
        (expected["edges"] - expected["self_loops"],)
    ]
    assert f"seeded {expected['nodes']:,} accounts" in done.stdout


# -- serving --------------------------------------------------------------------------------------------


@pytest.mark.skipif(find_spec("igcore.web.asgi") is None, reason="needs igcore.web.asgi")
@pytest.mark.parametrize("workers", [1, 2])
def test_serve_answers_then_stops_on_sigterm_with_its_redis(tmp_path, workers):
    require_redis()
    setup_demo(tmp_path / "demo", "--accounts", "200")
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "igcore", "serve", "--demo", "--data-dir", "demo", "--port", str(port)]
        + ["--workers", str(workers)],
        cwd=tmp_path,
        env=child_environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "serve did not answer within 60 s"
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=5) as client:
                    client.sendall(
                        b"GET /api/v1/instance HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
                    )
                    assert client.recv(64).startswith(b"HTTP/1.1 ")
                break
            except ConnectionRefusedError:
                time.sleep(0.1)
        process.send_signal(signal.SIGTERM)
        output, errors = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, errors
    assert "Traceback" not in errors
    banner = re.search(
        r"igcore serving on http://127\.0\.0\.1:(\d+) \((\d+) workers?, .* redis (\S+)\)", output
    )
    assert banner and int(banner[1]) == port and int(banner[2]) == workers
    redis_port = int(banner[3].rsplit(":", 1)[1].split("/")[0])
    with (
        pytest.raises(ConnectionRefusedError),
        socket.create_connection(("127.0.0.1", redis_port), timeout=5),
    ):
        pass  # its redis-server is gone
