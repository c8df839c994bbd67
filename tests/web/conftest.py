"""Real servers for the HTTP tests: ``igcore serve`` as a subprocess, two workers, its own redis-server.

- Per database, one demo is built once (``igcore serve --demo --setup-only``: the seeded database, the
  graph file and the bearer tokens of five demo accounts); every server serves a copy of it (the data
  folder copied; on PostgreSQL a database made from the demo's as a template).
- The ``server`` fixture is one server per (backend, database), shared by every test of that pair: the
  suite runs once per pair. Tests sign up their own accounts, so they depend on no other test.
- Backends as in tests/conftest.py: ``IGCORE_BACKEND`` picks one, ``IGCORE_REQUIRE_BACKENDS`` makes a
  missing one a failure. Databases: SQLite always; PostgreSQL when ``IGCORE_TEST_POSTGRES_URL`` gives an
  admin URL (``postgres://user@host:port/postgres``), otherwise its cases skip with the reason (fail
  with ``IGCORE_REQUIRE_POSTGRES=1``, as CI sets). redis-server as in tests/redis_server.py; the web
  extra (Django, uvicorn...) likewise: skipped without it, a failure with ``IGCORE_REQUIRE_REDIS=1``.
- A server must answer ``GET /api/v1/instance`` within START_SECONDS, and exit 0 within STOP_SECONDS
  of SIGTERM, with no traceback in its output and nothing of its process group left running: a clean
  shutdown is part of the contract. A server's failure to stop cleanly is reported as an error of the
  test during which its fixture was torn down (the first test of the next pair, or the last test).
- Home-timeline tests (marked ``home_feeds``) also run on one more server: ``--home-feeds sorted-set``
  (Mastodon's layout, the benchmark peer), one backend (rust where selected) on SQLite only.
- Every test of a server also runs on one more: ``--redis-cluster`` on a Redis Cluster of three masters
  with a replica each, started for it (one backend, rust where selected, on SQLite): the online state
  in cluster form (tagged keys, scripts of one slot, counters that wait for a replica).
- The main servers run with ``--rate-limit off``: the suite sends hundreds of requests per token in a
  few seconds; the rate limit has its own server (test_rate_limit.py).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest

from igcore import _backend

from ..conftest import REQUIRED, SELECTED
from ..redis_server import REQUIRE_REDIS, RedisClusterNodes, free_port, require_redis
from . import Api, ok, sign_up, sign_up_many

SERVE_COMMAND = [sys.executable, "-m", "igcore", "serve"]
DATABASES = ("sqlite", "postgres")
DEMO_ACCOUNTS = 400
FANOUT_LIMIT = 5
START_SECONDS = 60
STOP_SECONDS = 20
SETUP_SECONDS = 300
TEST_ENV = {"IGCORE_WEB_PASSWORD_ITERATIONS": "1000"}  # cheap password hashes: tests only
POSTGRES_URL = os.environ.get("IGCORE_TEST_POSTGRES_URL", "").strip()
REQUIRE_POSTGRES = os.environ.get("IGCORE_REQUIRE_POSTGRES", "") not in ("", "0")
COMBINATIONS = [(backend, database, ()) for backend in SELECTED for database in DATABASES]
# The extra server of the tests marked home_feeds: the home timeline in Mastodon's layout.
PEER_BACKEND = "rust" if "rust" in SELECTED else SELECTED[0]
HOME_FEEDS_PEER = (PEER_BACKEND, "sqlite", ("--home-feeds", "sorted-set"))
# The extra server of every test on a Redis Cluster: its address is the cluster's, once it started.
CLUSTER_ADDRESS = "<the web tests' cluster>"
ON_CLUSTER = (PEER_BACKEND, "sqlite", ("--redis-cluster", CLUSTER_ADDRESS))
IGNORED_ERRORS = ("errorstat_MOVED", "errorstat_ERR")


def _server_id(combination: tuple[str, str, tuple[str, ...]]) -> str:
    backend, database, extra = combination
    if combination == ON_CLUSTER:
        return f"{backend}-{database}-redis-cluster"
    return "-".join([backend, database, *(extra[1:] if extra else ())])


# (database, backend) -> the answers of the demo accounts' requests, taken as each server started,
# before any test changed anything (compared across backends by test_backends_agree.py).
DEMO_ANSWERS: dict[tuple[str, str], object] = {}


def require_backend(backend: str) -> None:
    for hot_path in _backend.HOT_PATHS:
        if backend not in _backend.available(hot_path):
            message = f"backend {backend} does not serve {hot_path}: {_backend._load(backend, hot_path)[1]}"
            if backend in REQUIRED:
                pytest.fail(message + " (required by IGCORE_REQUIRE_BACKENDS)")
            pytest.skip(message)


def require_web(database: str) -> None:
    """The web extra importable (the server runs in this Python), or skip; a failure where Redis is
    required (CI): these tests are Redis tests too, and must not skip there."""
    needed = ["django", "uvicorn", "uvloop", "orjson", "redis"] + (
        ["psycopg"] if database == "postgres" else []
    )
    missing = [name for name in needed if importlib.util.find_spec(name) is None]
    if missing:
        message = f"the web extra is not installed (missing {', '.join(missing)}; pip install '.[web]')"
        if REQUIRE_REDIS:
            pytest.fail(message + "; IGCORE_REQUIRE_REDIS=1 asks for the tests that need Redis")
        pytest.skip(message)


def require_database(database: str) -> None:
    if database != "postgres" or POSTGRES_URL:
        return
    message = "PostgreSQL not configured: set IGCORE_TEST_POSTGRES_URL to an admin URL"
    if REQUIRE_POSTGRES:
        pytest.fail(message + "; IGCORE_REQUIRE_POSTGRES=1 asks for it")
    pytest.skip(message)


def _database_url(name: str) -> str:
    parts = urlsplit(POSTGRES_URL)
    return urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, ""))


def _postgres(sql: str) -> None:
    import psycopg

    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(sql)


def _clean_environment(backend: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("IGCORE_WEB_")}
    env.update(TEST_ENV, IGCORE_BACKEND=backend, PYTHONUNBUFFERED="1")
    return env


def _still_running(group: int, seconds: float = 5.0) -> list[str]:
    """The live processes of a process group (Linux's /proc), waited for up to `seconds` to end."""
    deadline = time.monotonic() + seconds
    while True:
        found = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z" and int(fields[2]) == group:
                    command = (stat.parent / "cmdline").read_bytes().replace(b"\0", b" ")[:200]
                    found.append(f"{stat.parent.name}: {command.decode(errors='replace')}")
            except (OSError, IndexError, ValueError):
                continue
        if not found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


class Demo:
    """One database's demo, built once; `copy` gives a server its own copy of it."""

    def __init__(self, database: str, root: Path) -> None:
        self.database = database
        self.root = root
        self.directory = root / f"demo-{database}"
        self.database_url: str | None = None
        self.copies: list[str] = []  # PostgreSQL databases made from the demo's
        self.tokens: dict[str, str] = {}
        self._count = 0

    def build(self) -> Demo:
        command = [*SERVE_COMMAND, "--demo", "--setup-only", "--data-dir", str(self.directory)]
        command += ["--accounts", str(DEMO_ACCOUNTS), "--tokens", str(self.directory / "tokens.json")]
        if self.database == "postgres":
            name = f"igcore_test_{os.getpid()}_demo"
            _postgres(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            _postgres(f"CREATE DATABASE {name}")
            self.database_url = _database_url(name)
            command += ["--database", self.database_url]
        self.directory.mkdir(parents=True)
        done = subprocess.run(
            command, env=_clean_environment("auto"), capture_output=True, text=True, timeout=SETUP_SECONDS
        )
        assert done.returncode == 0, (
            f"the demo setup failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
        )
        self.tokens = json.loads((self.directory / "tokens.json").read_text())
        assert len(self.tokens) == 5, self.tokens
        return self

    def copy(self) -> tuple[Path, str | None]:
        """A data folder (and on PostgreSQL a database) of the server's own, as the demo left them."""
        self._count += 1
        directory = self.root / f"{self.database}-{self._count}"
        shutil.copytree(self.directory, directory)
        if self.database != "postgres":
            return directory, None
        name = f"igcore_test_{os.getpid()}_{self._count}"
        _postgres(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        _postgres(f"CREATE DATABASE {name} TEMPLATE igcore_test_{os.getpid()}_demo")
        self.copies.append(name)
        return directory, _database_url(name)

    def drop(self, url: str | None) -> None:
        if url is not None:
            name = urlsplit(url).path.lstrip("/")
            _postgres(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            if name in self.copies:
                self.copies.remove(name)

    def close(self) -> None:
        if self.database == "postgres" and self.database_url is not None:
            for name in list(self.copies):
                _postgres(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
            self.drop(self.database_url)


class Server:
    """One ``igcore serve`` process and what a test needs to speak to it."""

    def __init__(
        self,
        backend: str,
        database: str,
        data_dir: Path,
        database_url: str | None,
        tokens: dict[str, str],
        logs: Path,
        extra: tuple[str, ...] = (),
    ) -> None:
        self.backend = backend
        self.database = database
        self.data_dir = data_dir
        self.database_url = database_url
        self.demo_tokens = tokens
        self.extra = extra
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.api = Api(self.base_url)
        self.stdout_path = logs / f"serve-{self.port}.out"
        self.stderr_path = logs / f"serve-{self.port}.err"
        self.process: subprocess.Popen | None = None
        self.returncode: int | None = None
        self.left: list[str] = []  # what the server left running when it stopped
        self._app_token: str | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<server {self.backend}+{self.database} on {self.base_url}>"

    def start(self) -> Server:
        command = [*SERVE_COMMAND, "--demo", "--data-dir", str(self.data_dir), "--port", str(self.port)]
        command += ["--workers", "2", "--fanout-limit", str(FANOUT_LIMIT), *self.extra]
        if self.database_url:
            command += ["--database", self.database_url]
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                command,
                env=_clean_environment(self.backend),
                stdout=out,
                stderr=err,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own process group: its workers and redis-server with it
            )
        deadline = time.monotonic() + START_SECONDS
        while True:
            if self.process.poll() is not None:
                self.returncode = self.process.returncode
                left = self._end_group(self.process.pid)
                pytest.fail(
                    f"{self!r} exited with {self.returncode} while starting"
                    + (f", leaving {left} running (killed)" if left else "")
                    + f":\n{self.output()}"
                )
            try:
                if self.api.get("/api/v1/instance", timeout=2).status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                self.kill()
                pytest.fail(f"{self!r} did not answer within {START_SECONDS} s:\n{self.output()}")
            time.sleep(0.1)

    def stop(self) -> int:
        """SIGTERM, then the exit code (the process is killed, and -9 returned, past STOP_SECONDS).
        What it left running of its process group is killed, and named in `left`."""
        if self.process is None:
            return self.returncode if self.returncode is not None else 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=STOP_SECONDS)
            except subprocess.TimeoutExpired:
                self.kill()
        self.left = self._end_group(self.process.pid, seconds=5.0)
        self.returncode = self.process.returncode
        self.process = None
        return self.returncode

    def kill(self) -> None:
        """A server that would not stop: it and what it started (its process group, made for it)."""
        if self.process is not None:
            if self.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
            self._end_group(self.process.pid)
            self.returncode = self.process.returncode

    @staticmethod
    def _end_group(group: int, seconds: float = 1.0) -> list[str]:
        """Kills what is left of the server's process group (its workers, its redis-server) once
        `seconds` have passed; returns what that was."""
        left = _still_running(group, seconds)
        if left:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(group, signal.SIGKILL)
        return left

    def stdout(self) -> str:
        return self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""

    def output(self, tail: int = 6000) -> str:
        return f"--- stdout ---\n{self.stdout()[-tail:]}\n--- stderr ---\n{self.stderr()[-tail:]}"

    def app_token(self) -> str:
        """A client-credentials token of an app registered once per server (sign-ups need one)."""
        with self._lock:
            if self._app_token is None:
                app = ok(
                    self.api.post(
                        "/api/v1/apps",
                        data={"client_name": "igcore tests", "redirect_uris": "urn:ietf:wg:oauth:2.0:oob"},
                    )
                )
                form = {
                    "grant_type": "client_credentials",
                    "client_id": app["client_id"],
                    "client_secret": app["client_secret"],
                }
                self._app_token = ok(self.api.post("/oauth/token", data=form))["access_token"]
            return self._app_token

    def assert_clean_exit(self) -> None:
        code = self.stop()
        left = self.left
        assert not left, f"{self!r} exited but left processes running: {left}\n{self.output()}"
        assert code == 0, f"{self!r} exited with {code} after SIGTERM (not 0):\n{self.output()}"
        assert "Traceback" not in self.stderr() + self.stdout(), (
            f"a traceback in {self!r}'s output:\n{self.output()}"
        )


class Servers:
    """Starts servers on copies of the demos (built on first use), and cleans everything up."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.demos: dict[str, Demo] = {}
        self.running: list[tuple[Server, Demo]] = []

    def demo(self, database: str) -> Demo:
        if database not in self.demos:
            self.demos[database] = Demo(database, self.root)  # kept even if the build fails: cleanup
            self.demos[database].build()
        return self.demos[database]

    def start(self, backend: str, database: str, *extra: str, on: Server | None = None) -> Server:
        """A server of `backend` on a fresh copy of `database`'s demo (or on the data of the stopped
        server `on`), with `extra` options of ``igcore serve``."""
        require_redis()
        require_web(database)
        require_backend(backend)
        require_database(database)
        demo = self.demo(database)
        data_dir, url = demo.copy() if on is None else (on.data_dir, on.database_url)
        server = Server(backend, database, data_dir, url, demo.tokens, self.root, extra)
        self.running.append((server, demo))
        return server.start()

    def start_on_cluster(self, backend: str, cluster: RedisClusterNodes) -> Server:
        """A server of `backend` on a copy of the SQLite demo and on `cluster`, emptied, into which the
        demo's counts were recounted first (``igcore serve --reconcile``), as an operator would."""
        require_redis()
        require_web("sqlite")
        address = f"127.0.0.1:{cluster.nodes[0].port}"
        for node in cluster.running():
            with contextlib.suppress(Exception):  # a replica refuses: its master's FLUSHALL reaches it
                node.client().flushall()
        for node in cluster.running():
            node.client().config_resetstat()  # the errors counted from here on are the service's
        demo = self.demo("sqlite")
        done = subprocess.run(
            [*SERVE_COMMAND, "--demo", "--reconcile", "--data-dir", str(demo.directory)]
            + ["--redis-cluster", address],
            env=_clean_environment(backend),
            capture_output=True,
            text=True,
            timeout=SETUP_SECONDS,
        )
        assert done.returncode == 0, f"--reconcile on the cluster failed:\n{done.stdout}\n{done.stderr}"
        return self.start(backend, "sqlite", "--rate-limit", "off", "--redis-cluster", address)

    def release(self, server: Server) -> None:
        """Stops a server (if still running) and drops its database copy."""
        for entry in list(self.running):
            if entry[0] is server:
                self.running.remove(entry)
                server.stop()
                entry[1].drop(server.database_url)

    def close(self) -> None:
        for server, _ in list(self.running):
            self.release(server)
        for demo in self.demos.values():
            demo.close()


@pytest.fixture(scope="session")
def servers(tmp_path_factory):
    """The session's server launcher (`start(backend, database, *serve_options)`)."""
    launcher = Servers(tmp_path_factory.mktemp("web"))
    yield launcher
    launcher.close()


def pytest_generate_tests(metafunc):
    """Every test that uses a server runs on each (backend, database), then on the cluster server; those
    marked home_feeds also on the sorted-set server (last, so that the servers the others share keep
    their places)."""
    if "server" in metafunc.fixturenames:
        combinations = [*COMBINATIONS, ON_CLUSTER]
        if metafunc.definition.get_closest_marker("home_feeds") is not None:
            combinations.append(HOME_FEEDS_PEER)
        ids = [_server_id(c) for c in combinations]
        metafunc.parametrize("server", combinations, ids=ids, indirect=True, scope="session")


@pytest.fixture(scope="session")
def server(request, servers):
    """The server of one (backend, database[, options]), shared by the tests of that combination;
    stopped with SIGTERM at the end, which must exit 0 with no traceback."""
    from . import demo_answers

    backend, database, extra = request.param
    cluster = None
    if request.param == ON_CLUSTER:
        cluster = request.getfixturevalue("web_redis_cluster")
        running = servers.start_on_cluster(backend, cluster)
    else:
        running = servers.start(backend, database, "--rate-limit", "off", *extra)
    if not extra:
        DEMO_ANSWERS[(database, backend)] = demo_answers(running)
    elif request.param == ON_CLUSTER:
        DEMO_ANSWERS[(database, _server_id(ON_CLUSTER))] = demo_answers(running)
    yield running
    try:
        running.assert_clean_exit()
        if cluster is not None:
            # No command of the service named keys of several slots (CROSSSLOT), wrote to a replica
            # (READONLY) or failed while it ran (a script touching a key outside its slot, say). A MOVED
            # is a redirect that redis-py follows; ERR counts the CLIENT SETINFO that it sends and older
            # Redis versions do not know.
            refused = {}
            for node in cluster.running():
                client = node.client()
                errors = {k: v for k, v in client.info("errorstats").items() if k not in IGNORED_ERRORS}
                failed = {k: v for k, v in client.info("commandstats").items() if v.get("failed_calls")}
                if errors or failed:
                    refused[node.port] = {"errors": errors, "failed": failed}
            assert not refused, f"the cluster's nodes refused commands of the service: {refused}"
    finally:
        servers.release(running)


@pytest.fixture(scope="session")
def web_redis_cluster(tmp_path_factory):
    """The cluster server's Redis Cluster, of its own: the counters' cluster tests kill its masters."""
    require_redis()
    cluster = RedisClusterNodes(tmp_path_factory.mktemp("web-redis-cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture(scope="session")
def crowd(server):
    """45 accounts signed up once per server, for what needs many actors (followers above the fan-out
    limit, favourites). Tests use them only as actors on their own fresh authors and statuses."""
    return sign_up_many(server.api, server.app_token(), 45, "crowd")


@pytest.fixture
def new_user(server):
    """Signs up a fresh account: ``new_user()``."""
    return lambda prefix="t": sign_up(server.api, server.app_token(), prefix)


@pytest.fixture
def new_users(server):
    """Signs up `n` fresh accounts at once: ``new_users(n)``."""
    return lambda n, prefix="t": sign_up_many(server.api, server.app_token(), n, prefix)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """The comparison across backends runs last, when every server has recorded its demo answers."""
    last = [
        item
        for item in items
        if getattr(item, "module", None) and item.module.__name__.endswith(".test_backends_agree")
    ]
    items[:] = [item for item in items if item not in last] + last
