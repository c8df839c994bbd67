"""``igcore serve``: the web service on uvicorn + uvloop, or ``--demo`` on a seeded network.

Every setting reaches Django, and each uvicorn worker process, through the ``IGCORE_WEB_*`` environment
variables (see ``igcore.web.settings``). ``--demo`` sets them all from its options: a data folder holds
the SQLite database, the follow-graph file and the secret key, so a second start serves the same network.
Without ``--demo`` the operator's environment (or ``DJANGO_SETTINGS_MODULE``) configures the service,
and ``--redis`` / ``--database`` override it.

Without a Redis to use (``--redis``, ``--redis-cluster``, or ``IGCORE_WEB_REDIS_URL`` /
``IGCORE_WEB_REDIS_CLUSTER`` outside the demo) serve starts a ``redis-server`` of its own on a free
loopback port, without persistence, and stops it when it stops. On a cluster it first checks that every
master has the replicas that the counters wait for (``--redis-replicas``).
Before serving, it migrates the database, seeds the demo network into an empty one, rebuilds the
follow-graph file from the database and, into a Redis of its own, recounts the counters.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path
from types import FrameType
from typing import Any, Iterator, NoReturn
from urllib.parse import urlsplit, urlunsplit

APPLICATION = "igcore.web.asgi:application"
DEFAULT_ACCOUNTS = 20000
DEFAULT_DATA_DIR = "igcore-demo"


class ServeError(Exception):
    """A problem said in one line on stderr; serve exits with status 2."""


class _Stop(BaseException):
    """SIGTERM before serving: unwinds the setup (a seeding transaction rolls back); serve exits 0."""


def _stop(signum: int, frame: FrameType | None) -> NoReturn:
    raise _Stop


def _keep_going(signum: int, frame: FrameType | None) -> None:
    """While uvicorn serves it handles SIGINT and SIGTERM itself, and raises them again once it has
    stopped, with the handlers it found: this one, so that serve goes on to stop its Redis."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    _check_options(parser, args)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, _stop)
    try:
        with contextlib.ExitStack() as cleanup:
            try:
                return _run(args, cleanup)
            finally:
                # Stopping now, whatever happened: let no second signal cut the cleanup short.
                for sig in handlers:
                    signal.signal(sig, signal.SIG_IGN)
    except ServeError as exc:
        print(f"igcore serve: {exc}", file=sys.stderr)
        return 2
    except _Stop:
        return 0
    except KeyboardInterrupt:
        print("igcore serve: interrupted", file=sys.stderr)
        return 130
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="igcore serve",
        description="Serve the igcore web service (the Mastodon client API) on uvicorn + uvloop.",
        epilog="Without --demo the IGCORE_WEB_* environment variables configure it (igcore.web.settings).",
    )
    parser.add_argument("--demo", action="store_true", help="serve a demo network, seeded on the first start")
    parser.add_argument(
        "--reconcile", action="store_true", help="recount Redis's counters from the database, then exit"
    )
    parser.add_argument("--host", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, help="port to listen on (default 8000)")
    parser.add_argument("--workers", type=_at_least(1), metavar="N", help="processes (default: one per CPU)")
    parser.add_argument("--redis", metavar="URL", help="the Redis to use (default: start a redis-server)")
    parser.add_argument(
        "--redis-cluster", type=_address, metavar="HOST:PORT", help="the Redis Cluster of this node, instead"
    )
    parser.add_argument(
        "--redis-replicas",
        type=_at_least(0),
        metavar="N",
        help="counter writes count once N replicas have them (default: 1 on a cluster, else 0)",
    )
    parser.add_argument(
        "--database", metavar="URL", help="sqlite:///<path> or postgres://user@host:port/name"
    )
    parser.add_argument(
        "--fanout-limit", type=_at_least(0), metavar="N", help="fan out posts of at most N followers"
    )
    parser.add_argument(
        "--home-feeds",
        choices=("igcore", "sorted-set"),
        help="home feeds: igcore's (default) or Mastodon's sorted sets (the benchmark peer)",
    )
    parser.add_argument("--rate-limit", type=_rate_limit, metavar="N/SECONDS|off", help="requests per token")
    parser.add_argument(
        "--setup-only", action="store_true", help="migrate, seed, write the graph file and tokens, then exit"
    )
    demo = parser.add_argument_group("demo options")
    demo.add_argument("--data-dir", metavar="DIR", help=f"the demo's files (default ./{DEFAULT_DATA_DIR})")
    demo.add_argument(
        "--accounts",
        type=_at_least(2),
        metavar="N",
        help=f"accounts to generate (default {DEFAULT_ACCOUNTS})",
    )
    demo.add_argument(
        "--graph", metavar="EDGELIST", help="follows from a SNAP edge list instead (.txt or .gz)"
    )
    demo.add_argument("--seed", type=int, default=0, help="the generator's seed (default 0)")
    demo.add_argument("--tokens", metavar="FILE", help="write bearer tokens of 5 demo accounts here (JSON)")
    return parser


def _check_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.demo:
        for name in ("data_dir", "accounts", "graph", "tokens"):
            if getattr(args, name) is not None:
                parser.error(f"--{name.replace('_', '-')} is a demo option: add --demo")
    if args.accounts is not None and args.graph is not None:
        parser.error("--graph and --accounts exclude each other: the edge list names the accounts")
    if args.reconcile:
        for name in ("host", "port", "workers", "accounts", "graph", "tokens"):
            if getattr(args, name) is not None:
                parser.error(f"--reconcile only recounts: --{name} does not go with it")
        if args.setup_only:
            parser.error("--reconcile only recounts: --setup-only does not go with it")
        if args.demo and args.redis is None and args.redis_cluster is None:
            parser.error("--reconcile needs the Redis to recount: pass --redis or --redis-cluster")
    if args.redis is not None and args.redis_cluster is not None:
        parser.error("--redis and --redis-cluster exclude each other: one Redis holds the online state")
    if args.redis is not None and urlsplit(args.redis).scheme not in ("redis", "rediss", "unix"):
        parser.error(f"--redis {args.redis!r}: use redis://host:port/db")
    if args.database is not None:
        scheme = urlsplit(args.database).scheme
        if scheme not in ("sqlite", "postgres", "postgresql"):
            parser.error(
                f"--database {args.database!r}: use sqlite:///<path> or postgres://user@host:port/name"
            )
        if scheme != "sqlite" and find_spec("psycopg") is None:
            parser.error("a PostgreSQL database needs psycopg: pip install 'igcore[web]'")


def _run(args: argparse.Namespace, cleanup: contextlib.ExitStack) -> int:
    host = args.host or "127.0.0.1"
    port = 8000 if args.port is None else args.port
    workers = args.workers or os.cpu_count() or 1
    serving = not (args.setup_only or args.reconcile)
    if args.graph is not None:
        _check_readable(args.graph)
    if serving:
        _check_port(host, port)

    settings: dict[str, str] = {}
    if args.demo:
        settings.update(_demo_settings(args))
    if args.database is not None:
        settings["IGCORE_WEB_DATABASE_URL"] = args.database
    if args.fanout_limit is not None:
        settings["IGCORE_WEB_FANOUT_LIMIT"] = str(args.fanout_limit)
    if args.home_feeds is not None:
        settings["IGCORE_WEB_HOME_FEEDS"] = args.home_feeds
    if args.rate_limit is not None:
        settings["IGCORE_WEB_RATE_LIMIT"] = args.rate_limit
    if args.redis_replicas is not None:
        settings["IGCORE_WEB_REDIS_REPLICAS"] = str(args.redis_replicas)
    if args.redis_cluster is not None:
        settings["IGCORE_WEB_REDIS_CLUSTER"] = args.redis_cluster
    elif args.redis is not None or args.demo:
        settings["IGCORE_WEB_REDIS_CLUSTER"] = ""  # the demo's Redis is its own or --redis
    cluster = settings.get("IGCORE_WEB_REDIS_CLUSTER", os.environ.get("IGCORE_WEB_REDIS_CLUSTER", ""))
    redis_url = args.redis or (None if args.demo or cluster else os.environ.get("IGCORE_WEB_REDIS_URL"))
    own_redis = redis_url is None and not cluster and not args.reconcile
    if own_redis:
        redis_url = cleanup.enter_context(_redis_server())
        print(f"started redis-server on {redis_url} (it stops with serve)", flush=True)
    if redis_url is not None:
        settings["IGCORE_WEB_REDIS_URL"] = redis_url
    os.environ.update(settings)  # before Django reads them; the workers inherit them
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "igcore.web.settings")
    _setup_django()
    from django.conf import settings as django_settings

    redis_name = _redis_name()
    if django_settings.IGCORE_REDIS_CLUSTER:
        _check_replicas(redis_name, django_settings.IGCORE_REDIS_REPLICAS)
    if args.reconcile:
        _reconcile(redis_name)
        return 0
    if args.demo:
        _seed(args)
    _write_graph_file(str(django_settings.IGCORE_GRAPH_PATH), redis_name)
    if own_redis:
        _reconcile(redis_name)
    if args.tokens is not None:
        _write_tokens(args.tokens, str(django_settings.IGCORE_GRAPH_PATH))
    if not serving:
        return 0

    from igcore import _backend

    # What serves each hot path, from the backends loaded to serve it (backend_info would load them all).
    served: set[str] = set()
    for hot_path in _backend.HOT_PATHS:
        with contextlib.suppress(_backend.BackendUnavailable):
            served.add(_backend.current(hot_path))
    backends = sorted(served)
    plural = "s" if workers != 1 else ""
    print(
        f"igcore serving on http://{_host_in_url(host)}:{port} ({workers} worker{plural}, "
        f"{'/'.join(backends)} backend, database {_database()}, redis {redis_name})",
        flush=True,
    )
    if args.demo:
        print("demo accounts: user<id>, each with the password igcore-demo", flush=True)
    _serve(host, port, workers)
    return 0


# -- configuration ---------------------------------------------------------------------------------------


def _demo_settings(args: argparse.Namespace) -> dict[str, str]:
    data_dir = Path(args.data_dir or DEFAULT_DATA_DIR).resolve()
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
        secret_key = _secret_key(data_dir / "secret.key")
    except OSError as exc:
        raise ServeError(f"cannot use the data folder {data_dir}: {exc.strerror or exc}") from None
    return {
        "IGCORE_WEB_DATABASE_URL": f"sqlite:///{data_dir / 'demo.sqlite3'}",
        "IGCORE_WEB_GRAPH_PATH": str(data_dir / "follows.igfg"),
        "IGCORE_WEB_SECRET_KEY": secret_key,
        "IGCORE_WEB_DEMO": "1",
        "IGCORE_WEB_RATE_LIMIT": "off",  # a load test from one address is the demo's point
    }


def _secret_key(path: Path) -> str:
    """The demo's secret key: made once, kept beside its database (so sessions and signed cursors
    survive a restart), readable by its owner only."""
    with contextlib.suppress(FileNotFoundError):
        key = path.read_text().strip()
        if key:
            return key
    key = secrets.token_urlsafe(50)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        out.write(key + "\n")
    return key


def _setup_django() -> None:
    import django
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import call_command
    from django.db import Error as DatabaseError

    try:
        django.setup()
        call_command("migrate", verbosity=0)
    except ImproperlyConfigured as exc:
        raise ServeError(str(exc)) from None
    except DatabaseError as exc:
        raise ServeError(f"cannot use the database {_database()}: {_first_line(exc)}") from None


def _database() -> str:
    """The database as the banner and errors show it: a SQLite path, or PostgreSQL's host and name."""
    from django.db import connection

    details = connection.settings_dict
    if "sqlite" in details["ENGINE"]:
        return str(details["NAME"])
    where = details["HOST"] or "localhost"
    if details["PORT"]:
        where += f":{details['PORT']}"
    return f"postgres {where}/{details['NAME']}"


# -- Redis -----------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _redis_server() -> Iterator[str]:
    """A redis-server of serve's own: loopback, a free port, no persistence, a temporary folder."""
    executable = shutil.which("redis-server")
    if executable is None:
        raise ServeError("redis-server is not on PATH: install it (Debian: redis-server) or pass --redis URL")
    directory = tempfile.mkdtemp(prefix="igcore-redis-")
    process: subprocess.Popen[bytes] | None = None
    try:
        for _attempt in range(3):  # another process may take the free port first
            port = _free_port()
            command = [
                executable,
                "--bind", "127.0.0.1",
                "--port", str(port),
                "--dir", directory,
                "--save", "",
                "--appendonly", "no",
                "--logfile", os.path.join(directory, "redis.log"),
            ]  # fmt: skip
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                # Its own session, so that a Ctrl-C at the terminal leaves it to us: the workers write
                # their counters to it while they shut down, and only then do we stop it.
                start_new_session=True,
                preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
            )
            if _answers(process, port):
                break
            _end(process)
            process = None
        else:
            raise ServeError(
                f"redis-server did not start: {_last_line(os.path.join(directory, 'redis.log'))}"
            )
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        if process is not None:
            _end(process)
        shutil.rmtree(directory, ignore_errors=True)


def _die_with_parent() -> None:
    """Runs in the redis-server child before it starts: should serve be killed outright (SIGKILL),
    the kernel sends SIGTERM to its Redis (Linux's PR_SET_PDEATHSIG)."""
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)


def _answers(process: subprocess.Popen[bytes], port: int, timeout: float = 10) -> bool:
    import redis

    client = redis.Redis(host="127.0.0.1", port=port, socket_connect_timeout=0.5, socket_timeout=1)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and process.poll() is None:
            with contextlib.suppress(redis.RedisError):
                if client.ping():
                    return True
            time.sleep(0.02)
        return False
    finally:
        client.close()


def _end(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _redis_name() -> str:
    """The service's Redis, as the log names it: its URL without a password, or the cluster's node."""
    from django.conf import settings

    if settings.IGCORE_REDIS_CLUSTER:
        return f"cluster {settings.IGCORE_REDIS_CLUSTER}"
    return _without_password(str(settings.IGCORE_REDIS_URL))


@contextlib.contextmanager
def _redis_client(redis_name: str, doing: str) -> Iterator[Any]:
    """A client of the service's Redis; a Redis error inside is a one-line ServeError."""
    import redis

    from . import clients

    client = None
    try:
        client = clients.sync_client(socket_timeout=30, socket_connect_timeout=5)
        yield client
    except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
        raise ServeError(f"cannot {doing} Redis at {redis_name}: {_first_line(exc)}") from None
    finally:
        if client is not None:
            client.close()


def _check_replicas(redis_name: str, wanted: int) -> None:
    """Every master of the cluster has at least `wanted` replicas: the counters wait for that many."""
    with _redis_client(redis_name, "reach") as client:
        nodes: dict[str, Any] = client.cluster_nodes()
    masters = {node["node_id"]: address for address, node in nodes.items() if "master" in node["flags"]}
    replicas = dict.fromkeys(masters, 0)
    for node in nodes.values():
        if "slave" in node["flags"] and node.get("master_id") in replicas:
            replicas[node["master_id"]] += 1
    short = sorted(masters[m] for m, n in replicas.items() if n < wanted)
    if short:
        raise ServeError(
            f"the cluster's masters {', '.join(short)} have fewer than {wanted} replicas, which the counters "
            "wait for: pass --redis-replicas with what each master has (0: no waiting, a failover may "
            "lose the last counts)"
        )


def _last_graph_event(redis_name: str) -> str:
    """The id of the last follow event in Redis ("0-0" when there is none)."""
    from .keys import GRAPH_EVENTS

    with _redis_client(redis_name, "read") as client:
        last: Any = client.xrevrange(GRAPH_EVENTS, "+", "-", count=1)
    if not last:
        return "0-0"
    entry_id = last[0][0]
    return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


def _reconcile(redis_name: str) -> None:
    from django.db import Error as DatabaseError

    from .maintenance import reconcile

    try:
        with _redis_client(redis_name, "recount") as client:
            statuses = reconcile(client)
    except DatabaseError as exc:
        raise ServeError(f"cannot read the database {_database()}: {_first_line(exc)}") from None
    print(
        f"recounted Redis's counters from the database: favourites of {statuses:,} statuses ({redis_name})",
        flush=True,
    )


# -- the demo network, the graph file, tokens ------------------------------------------------------------


def _seed(args: argparse.Namespace) -> None:
    from . import demo
    from .models import Account

    existing = Account.objects.count()
    if existing:
        if args.accounts is not None or args.graph is not None:
            print(
                f"the database holds {existing:,} accounts already: keeping them "
                "(a new --data-dir seeds anew)",
                flush=True,
            )
        return
    what = args.graph or f"{args.accounts or DEFAULT_ACCOUNTS:,} generated accounts"
    print(f"seeding the demo network from {what} (seed {args.seed})", flush=True)
    try:
        report = demo.build(
            accounts=None if args.graph else args.accounts or DEFAULT_ACCOUNTS,
            edgelist=args.graph,
            seed=args.seed,
        )
    except (OSError, ValueError) as exc:
        raise ServeError(f"cannot seed from {args.graph}: {_first_line(exc)}") from None
    print(
        f"seeded {report['accounts']:,} accounts, {report['follows']:,} follows, {report['statuses']:,} "
        f"statuses and {report['favourites']:,} favourites in {report['seconds']:.1f} s",
        flush=True,
    )


def _write_graph_file(path: str, redis_name: str) -> None:
    from .graphfile import write_graph_file

    stream_id = _last_graph_event(redis_name)  # first: the table read after it holds every event before it
    try:
        follows = write_graph_file(path, stream_id)
    except OSError as exc:
        raise ServeError(f"cannot write the graph file {path}: {exc.strerror or exc}") from None
    print(f"graph file {path}: {follows:,} follows", flush=True)


def _write_tokens(path: str, graph_path: str) -> None:
    """Bearer tokens of five demo accounts, chosen for what they exercise, as ``{username: token}``."""
    import numpy as np
    from django.conf import settings

    from igcore.graph import FollowGraph

    from .auth import issue_token
    from .models import Account

    rows = np.array(list(Account.objects.order_by("id").values_list("id", "statuses_count")), dtype=np.int64)
    ids, statuses = rows[:, 0], rows[:, 1]
    src, dst = FollowGraph.load(graph_path).edges()[:2]
    followers = np.bincount(np.searchsorted(ids, dst), minlength=len(ids))
    following = np.bincount(np.searchsorted(ids, src), minlength=len(ids))
    pulled = "; above the fan-out limit, so its posts are pulled into home feeds"
    roles = [
        (
            "most",
            followers,
            "the most followers" + (pulled if followers.max() > settings.IGCORE_FANOUT_LIMIT else ""),
        ),
        ("most", following, "follows the most: the longest home-feed merge"),
        ("median", followers, "the median follower count"),
        ("most", statuses, "posts the most"),
        ("median", following, "the median following count: a typical reader"),
    ]
    free = np.ones(len(ids), dtype=bool)
    tokens: dict[str, str] = {}
    lines = []
    for pick, values, role in roles[: len(ids)]:
        candidates = np.flatnonzero(free)  # ascending ids: ties go to the smallest
        if pick == "most":
            index = int(candidates[np.argmax(values[candidates])])
        else:
            index = int(candidates[np.argsort(values[candidates], kind="stable")[len(candidates) // 2]])
        free[index] = False
        username = f"user{ids[index]}"
        tokens[username] = issue_token(int(ids[index]))
        lines.append(f"  {username}: {role} ({followers[index]:,} followers, follows {following[index]:,})")
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as out:
            os.fchmod(out.fileno(), 0o600)  # bearer tokens: the owner's only, even over an older file
            json.dump(tokens, out, indent=1)
            out.write("\n")
    except OSError as exc:
        raise ServeError(f"cannot write the tokens to {path}: {exc.strerror or exc}") from None
    print(f"bearer tokens written to {path}:", *lines, sep="\n", flush=True)


# -- serving ---------------------------------------------------------------------------------------------


class _SupervisorErrors:
    """Counts the errors uvicorn's supervisor logs. With several workers uvicorn.run returns, as after
    a signal, when a worker fails to start; the error it logged tells the two apart. (A logger's
    filters outlive uvicorn's logging configuration, its handlers do not.)"""

    def __init__(self) -> None:
        self.count = 0

    def filter(self, record: Any) -> bool:
        if record.levelno >= 40:  # logging.ERROR
            self.count += 1
        return True


def _serve(host: str, port: int, workers: int) -> None:
    import logging

    import uvicorn
    from django.db import connections

    connections.close_all()  # each worker opens its own
    errors = _SupervisorErrors()
    logging.getLogger("uvicorn.error").addFilter(errors)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, _keep_going)
    try:
        uvicorn.run(
            APPLICATION,
            host=host,
            port=port,
            workers=workers,
            loop="uvloop",
            http="httptools",
            lifespan="on",
            log_level="warning",
            timeout_graceful_shutdown=10,
        )
    except SystemExit as exc:  # uvicorn's way to say that the server could not start
        if exc.code not in (0, None):
            raise ServeError("the server did not start (the error is above)") from None
    finally:
        logging.getLogger("uvicorn.error").removeFilter(errors)
    if workers > 1 and errors.count:
        raise ServeError("the server stopped: a worker did not start (the error is above)")


# -- small parts -----------------------------------------------------------------------------------------


def _check_readable(path: str) -> None:
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise ServeError(f"cannot read the edge list {path}: {exc.strerror or exc}") from None


def _check_port(host: str, port: int) -> None:
    """Fails early, before any setup, when uvicorn could not listen there."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise ServeError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _host_in_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return urlunsplit(parts._replace(netloc=netloc))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _last_line(path: str) -> str:
    lines = []
    with contextlib.suppress(OSError), open(path, errors="replace") as log:
        lines = [line.strip() for line in log if line.strip()]
    return lines[-1] if lines else "it wrote no log"


def _address(value: str) -> str:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{value!r} is not HOST:PORT")
    return value


def _port(value: str) -> int:
    port = _integer(value)
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is 1 to 65535, not {value}")
    return port


def _at_least(smallest: int) -> Any:
    def check(value: str) -> int:
        number = _integer(value)
        if number < smallest:
            raise argparse.ArgumentTypeError(f"must be at least {smallest}, not {value}")
        return number

    return check


def _integer(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {value!r}") from None


def _rate_limit(value: str) -> str:
    """``off`` or ``<requests>/<seconds>``, both positive (what IGCORE_WEB_RATE_LIMIT takes)."""
    if value.strip().lower() == "off":
        return "off"
    requests, _, seconds = value.partition("/")
    if not (requests.strip().isdigit() and seconds.strip().isdigit() and int(requests) and int(seconds)):
        raise argparse.ArgumentTypeError(f"use <requests>/<seconds> (e.g. 300/300) or off, not {value!r}")
    return value.strip()
