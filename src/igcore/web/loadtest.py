"""``igcore loadtest``: the web service under load, per backend, beside Mastodon's home-feed layout.

wrk drives the load, with one Lua script (``loadtest.lua``) that makes the whole seeded workload: a
bearer token per request, POST bodies, the next page of a home timeline from its ``Link`` header. wrk
runs one connection per thread, so that the script can time each request itself and count a late send
from when it was meant to go (the correction for coordinated omission).

One run, per backend (rust, cython, python), on a fresh copy of one pristine demo network:

1. warm up: every sampled account's home timeline once (feeds are built on first read), then the mix;
2. per scenario, as fast as possible (requests/s, CPU time per request of the workers and of Redis),
   then at a fixed rate, half of what the slowest backend managed (latency percentiles);
3. memory: each worker's Rss and Pss, and how much of the mapped follow graph the workers share.

Then the peer, ``--home-feeds sorted-set`` (a Redis sorted set per account, fanned out on write), on the
home timeline, and on both it and igcore: how soon the followers of the most followed account see its
new post. On a machine of several CPUs the service runs on one half, wrk and Redis on the other.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import http.client
import importlib.util
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, Callable, NoReturn

import numpy as np

from .. import __version__, _backend
from .serve import _at_least, _free_port, _Parser

WRK_MISSING = "igcore loadtest needs wrk on PATH (Debian/Ubuntu: apt-get install wrk)"
PLOT_NEEDS_MATPLOTLIB = "--plot needs matplotlib: pip install 'igcore[plot]'"
SCRIPT = Path(__file__).with_name("loadtest.lua")
DEFAULT_DATA_DIR = "igcore-loadtest"
SCENARIOS = ("mix", "home", "followers", "suggestions", "familiar_followers", "status")
QUICK_SCENARIOS = ("mix", "home")
# The order of the runs: the fixed rate of every scenario is half of what the first backend run (the
# slowest, python where it is selected) managed, so that every backend is offered the same load.
BACKEND_ORDER = ("python", "cython", "rust")
PEER = "sorted-set"
VISIBILITY_FOLLOWERS = 20
START_SECONDS = 120
STOP_SECONDS = 30
POLL_SECONDS = 30  # a follower that has not seen the post by then counts as an error


@dataclass(frozen=True)
class Size:
    accounts: int
    tokens: int  # sampled accounts that send requests
    duration: int  # seconds per measured run
    warm_mix: int  # seconds of the mix after the home-page warm-up
    visibility_rounds: int


FULL = Size(accounts=20_000, tokens=500, duration=10, warm_mix=3, visibility_rounds=5)
QUICK = Size(accounts=2_000, tokens=200, duration=2, warm_mix=1, visibility_rounds=3)
STATUS_SAMPLE = 3000
ACCOUNT_SAMPLE = 2000


class LoadtestError(Exception):
    """A problem said in one line on stderr; loadtest exits with status 2."""


def main(argv: list[str] | None = None) -> int:
    options = parse(argv)
    handler = signal.signal(signal.SIGTERM, _interrupt)  # unwind as Ctrl-C does: the servers stop
    try:
        report = run(options)
    except LoadtestError as exc:
        print(f"igcore loadtest: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("igcore loadtest: interrupted", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGTERM, handler)
    print(format_report(report), flush=True)
    if options.json:
        Path(options.json).write_text(json.dumps(report, indent=1) + "\n")
    if options.plot:
        plot(report, options.plot)
    errors = report["errors"]
    if errors:
        print(f"igcore loadtest: {errors:,} errors (non-2xx responses or socket errors)", file=sys.stderr)
        return 1
    return 0


def _interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt


# -- options ---------------------------------------------------------------------------------------------


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = _Parser(
        prog="igcore loadtest",
        description="Load-test the web service with wrk, per backend, beside Mastodon's home-feed layout.",
    )
    parser.add_argument(
        "--quick", action="store_true", help=f"{QUICK.accounts:,} accounts, mix and home, short runs"
    )
    parser.add_argument(
        "--duration", type=_at_least(1), metavar="S", help=f"seconds per run (default {FULL.duration})"
    )
    parser.add_argument(
        "--connections", type=_at_least(1), default=16, metavar="C", help="connections (default 16)"
    )
    parser.add_argument("--workers", type=_at_least(1), default=2, metavar="N", help="workers (default 2)")
    parser.add_argument("--backends", metavar="LIST", help="comma-separated (default: every one available)")
    parser.add_argument("--scenarios", metavar="LIST", help=f"comma-separated, of {', '.join(SCENARIOS)}")
    parser.add_argument(
        "--data-dir", default=DEFAULT_DATA_DIR, metavar="DIR", help=f"the demo (default ./{DEFAULT_DATA_DIR})"
    )
    parser.add_argument("--seed", type=int, default=0, help="the workload's seed (default 0)")
    parser.add_argument("--json", metavar="FILE", help="write every figure here")
    parser.add_argument("--plot", metavar="FILE", help="a PNG of requests/s and p99 (needs matplotlib)")
    options = parser.parse_args(argv)
    options.size = QUICK if options.quick else FULL
    if options.duration is None:
        options.duration = options.size.duration
    options.backends = _choose(parser, "backends", options.backends, _backend.BACKENDS, _backend.BACKENDS)
    available = _backend.backends()
    if options.backends == list(_backend.BACKENDS):
        options.backends = [b for b in options.backends if b in available]
    for name in options.backends:
        if name not in available:
            parser.error(f"--backends: {name} is not built here (igcore info says why)")
    options.backends.sort(key=BACKEND_ORDER.index)
    default = QUICK_SCENARIOS if options.quick else SCENARIOS
    options.scenarios = _choose(parser, "scenarios", options.scenarios, SCENARIOS, default)
    if options.plot and importlib.util.find_spec("matplotlib") is None:
        parser.error(PLOT_NEEDS_MATPLOTLIB)
    return options


def _choose(
    parser: argparse.ArgumentParser,
    name: str,
    value: str | None,
    known: tuple[str, ...],
    default: tuple[str, ...],
) -> list[str]:
    if value is None:
        return list(default)
    chosen = [item.strip() for item in value.split(",") if item.strip()]
    unknown = [item for item in chosen if item not in known]
    if unknown or not chosen:
        parser.error(f"--{name} takes a comma-separated list of {', '.join(known)}, not {value!r}")
    return list(dict.fromkeys(chosen))


# -- the run ---------------------------------------------------------------------------------------------


def run(options: argparse.Namespace, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Every measurement of one load run, as the JSON report holds them."""
    started = time.monotonic()

    def say(line: str) -> None:
        line = f"[{time.monotonic() - started:5.1f} s] {line}"
        if progress is None:
            print(line, file=sys.stderr, flush=True)
        else:
            progress(line)

    wrk = shutil.which("wrk")
    if wrk is None:
        raise LoadtestError(WRK_MISSING)
    size: Size = options.size
    demo = _demo(Path(options.data_dir), size.accounts, say)
    workload = _workload(demo, size.tokens, options.seed)
    service, load = _split_cpus()
    where = _where(service, load)
    say(
        f"{size.accounts:,} accounts, {len(workload.tokens)} tokens, {options.connections} connections, "
        f"{options.workers} workers, {options.duration} s per run; {where}"
    )
    report: dict[str, Any] = {
        "meta": _meta(options, wrk, service, load),
        "servers": {},
        "errors": 0,
    }
    rates: dict[str, float] = {}
    saved_affinity = os.sched_getaffinity(0)
    if load:
        os.sched_setaffinity(0, load)  # this process polls the servers too: it is load
    try:
        with tempfile.TemporaryDirectory(prefix="runs-", dir=demo.parent) as scratch:
            bench = _Bench(wrk, options, workload, Path(scratch), service, load, say)
            peer_backend = "rust" if "rust" in options.backends else options.backends[-1]
            for backend in options.backends:
                visibility = backend == peer_backend
                report["servers"][backend] = bench.server(
                    demo, backend, "igcore", options.scenarios, rates, visibility
                )
            peer_scenarios = [s for s in options.scenarios if s == "home"]
            peer = bench.server(demo, peer_backend, PEER, peer_scenarios, rates, True)
            report["servers"][f"{peer_backend}+{PEER}"] = peer
            report["meta"]["rates_from"] = options.backends[0]
    finally:
        os.sched_setaffinity(0, saved_affinity)
    report["errors"] = sum(server["errors"] for server in report["servers"].values())
    return report


def _meta(options: argparse.Namespace, wrk: str, service: set[int], load: set[int]) -> dict[str, Any]:
    import django
    import uvicorn

    return {
        "igcore": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "django": django.__version__,
        "uvicorn": uvicorn.__version__,
        "wrk": _version([wrk, "-v"]),
        "redis_server": _version(["redis-server", "--version"]),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "service_cpus": sorted(service),
        "load_cpus": sorted(load),
        "accounts": options.size.accounts,
        "quick": options.quick,
        "seed": options.seed,
        "duration_s": options.duration,
        "connections": options.connections,
        "workers": options.workers,
        "tokens_sampled": options.size.tokens,
        "warm_up_mix_s": options.size.warm_mix,
        "visibility_rounds": options.size.visibility_rounds,
        "backends": options.backends,
        "scenarios": options.scenarios,
        "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def _version(command: list[str]) -> str:
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=10)
    except OSError:
        return "unknown"
    lines = (done.stdout + done.stderr).strip().splitlines()
    return lines[0] if lines else "unknown"


def _split_cpus() -> tuple[set[int], set[int]]:
    """(the service's CPUs, the load generator's and Redis's): half and half; none pinned on one CPU."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        return set(), set()
    half = len(cpus) // 2
    return set(cpus[half:]), set(cpus[:half])


def _where(service: set[int], load: set[int]) -> str:
    if not service:
        return "no CPU pinning (one CPU)"
    return f"service on CPU {_cpus(service)}, wrk and Redis on CPU {_cpus(load)}"


def _cpus(cpus: set[int]) -> str:
    return ",".join(str(cpu) for cpu in sorted(cpus))


# -- the demo and the workload ---------------------------------------------------------------------------

DEMO_FILES = ("demo.sqlite3", "follows.igfg", "follows.igfg.events", "secret.key")
TOKENS_FILE = "loadtest-tokens.json"


def _demo(data_dir: Path, accounts: int, say: Callable[[str], None]) -> Path:
    """The pristine demo of `accounts` accounts in `data_dir`, built by ``igcore serve`` the first time."""
    demo = data_dir.resolve() / f"demo-{accounts}"
    if all((demo / name).exists() for name in DEMO_FILES):
        say(f"using the demo network in {demo}")
        return demo
    say(f"building a demo network of {accounts:,} accounts in {demo}")
    command = [sys.executable, "-m", "igcore", "serve", "--demo", "--setup-only", "--data-dir", str(demo)]
    command += ["--accounts", str(accounts)]
    done = subprocess.run(command, env=_child_env(), capture_output=True, text=True)
    if done.returncode != 0:
        raise LoadtestError(f"the demo setup failed: {_last_line(done.stderr or done.stdout)}")
    return demo


def _child_env(**extra: str) -> dict[str, str]:
    """This environment without any web configuration (each server's comes from its options)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("IGCORE_WEB_", "DJANGO_"))}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


@dataclass
class Workload:
    tokens: list[str]  # of the sampled accounts, the followers of `poster` among them
    celebrity_tokens: list[str]  # of the accounts above the fan-out limit
    statuses: list[int]
    accounts: list[int]
    poster: int  # the most followed account
    poster_token: str
    poster_followers: int
    follower_tokens: list[str]  # of followers of `poster`: whose home timelines show its post
    lua: str = ""  # the data file of the wrk script


def _workload(demo: Path, sample: int, seed: int) -> Workload:
    """Seeded samples of accounts (with a bearer token each), statuses and account ids, from the pristine
    demo. Tokens are issued into its database before any copy is made, and kept beside it for the next
    run; the database stores only their digests."""
    _setup_django(demo)
    from django.conf import settings
    from django.db import connections

    from igcore.graph import FollowGraph

    from .auth import issue_token
    from .models import Account, Status

    ids = np.array(Account.objects.order_by("id").values_list("id", flat=True), dtype=np.int64)
    src, dst = FollowGraph.load(str(demo / "follows.igfg")).edges()[:2]
    followers = np.bincount(np.searchsorted(ids, dst), minlength=len(ids))
    poster = int(ids[int(np.argmax(followers))])
    rng = random.Random(seed)
    sampled = rng.sample(ids.tolist(), min(sample, len(ids)))
    fans = rng.sample(
        sorted(set(src[dst == poster].tolist())), min(VISIBILITY_FOLLOWERS, int(followers.max()))
    )
    celebrities = ids[followers > settings.IGCORE_FANOUT_LIMIT].tolist()
    status_ids = Status.objects.order_by("id").values_list("id", flat=True)
    statuses = rng.sample(list(status_ids), min(STATUS_SAMPLE, len(status_ids)))
    accounts = rng.sample(ids.tolist(), min(ACCOUNT_SAMPLE, len(ids)))

    path = demo / TOKENS_FILE
    tokens: dict[str, str] = {}
    with contextlib.suppress(FileNotFoundError, ValueError):
        tokens = json.loads(path.read_text())
    needed = [*sampled, *fans, *celebrities, poster]
    fresh = {str(a): issue_token(a) for a in dict.fromkeys(needed) if str(a) not in tokens}
    if fresh:
        tokens.update(fresh)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # bearer tokens
        with os.fdopen(descriptor, "w") as out:
            json.dump(tokens, out)
    connections.close_all()  # SQLite folds its write-ahead log into the file: the copies see the tokens
    user_tokens = [tokens[str(a)] for a in dict.fromkeys([*sampled, *fans])]
    return Workload(
        tokens=user_tokens,
        celebrity_tokens=[tokens[str(a)] for a in celebrities] or user_tokens,
        statuses=statuses,
        accounts=accounts,
        poster=poster,
        poster_token=tokens[str(poster)],
        poster_followers=int(followers.max()),
        follower_tokens=[tokens[str(a)] for a in fans],
    )


def _setup_django(demo: Path) -> None:
    """Django on the pristine demo's database, configured as ``igcore serve --demo`` configures it."""
    import django

    secret = (demo / "secret.key").read_text().strip()
    os.environ.update(
        {
            "IGCORE_WEB_DATABASE_URL": f"sqlite:///{demo / 'demo.sqlite3'}",
            "IGCORE_WEB_GRAPH_PATH": str(demo / "follows.igfg"),
            "IGCORE_WEB_SECRET_KEY": secret,
        }
    )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "igcore.web.settings")
    django.setup()


def lua_data(workload: Workload) -> str:
    """The wrk script's data file: a Lua table. Ids are strings: Lua's numbers are doubles."""

    def strings(values: list[Any]) -> str:
        return "{" + ",".join(f'"{value}"' for value in values) + "}"

    return (
        f"return {{\n tokens = {strings(workload.tokens)},\n"
        f" celebrity_tokens = {strings(workload.celebrity_tokens)},\n"
        f" statuses = {strings(workload.statuses)},\n accounts = {strings(workload.accounts)},\n}}\n"
    )


# -- servers ---------------------------------------------------------------------------------------------


class _Server:
    """``igcore serve --demo`` on a copy of the demo, on the service's CPUs."""

    def __init__(self, copy: Path, backend: str, home_feeds: str, workers: int, service: set[int]) -> None:
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        command = [sys.executable, "-m", "igcore", "serve", "--demo", "--data-dir", str(copy)]
        command += ["--workers", str(workers), "--port", str(self.port), "--home-feeds", home_feeds]
        self.log_path = copy.parent / f"{copy.name}.log"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command,
                env=_child_env(IGCORE_BACKEND=backend),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: its workers and Redis go with it
                preexec_fn=(lambda: os.sched_setaffinity(0, service)) if service else None,
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise LoadtestError(f"the server exited with {self.process.returncode}: {self.last_line()}")
            with contextlib.suppress(OSError, http.client.HTTPException):
                if _get(self.port, "/api/v1/instance")[0] == 200 and len(self.worker_pids()) == self.workers:
                    return
            time.sleep(0.1)
        raise LoadtestError(f"the server did not answer within {START_SECONDS} s: {self.last_line()}")

    def last_line(self) -> str:
        return _last_line(self.log_path.read_text(errors="replace"))

    def worker_pids(self) -> list[int]:
        if self.workers == 1:  # uvicorn serves in the serve process itself
            return [self.process.pid]
        return [pid for pid in _descendants(self.process.pid) if b"spawn_main" in _read(pid, "cmdline")]

    def redis_pid(self) -> int | None:
        found = [
            pid for pid in _descendants(self.process.pid) if _read(pid, "comm").strip() == b"redis-server"
        ]
        return found[0] if found else None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(timeout=STOP_SECONDS)
        with contextlib.suppress(ProcessLookupError):  # whatever of its group is left
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()


def _read(pid: int, name: str) -> bytes:
    try:
        return Path(f"/proc/{pid}/{name}").read_bytes()
    except OSError:
        return b""


def _descendants(pid: int) -> list[int]:
    """Every process below `pid` (Linux's /proc/<pid>/task/<tid>/children)."""
    found: list[int] = []
    for children in Path(f"/proc/{pid}/task").glob("*/children"):
        with contextlib.suppress(OSError):
            for child in children.read_text().split():
                found += [int(child), *_descendants(int(child))]
    return found


def _cpu_ticks(pids: list[int]) -> int:
    """utime + stime of the processes, in clock ticks."""
    total = 0
    for pid in pids:
        fields = _read(pid, "stat").rsplit(b")", 1)[-1].split()
        if len(fields) > 12:
            total += int(fields[11]) + int(fields[12])
    return total


def _memory(pid: int) -> dict[str, float]:
    """The process's Rss and Pss, and those of its mapping of the follow-graph file, in MiB."""
    figures = {"rss_mib": 0.0, "pss_mib": 0.0, "graph_rss_mib": 0.0, "graph_pss_mib": 0.0}
    for line in _read(pid, "smaps_rollup").decode().splitlines():
        name, _, value = line.partition(":")
        if name in ("Rss", "Pss"):
            figures[f"{name.lower()}_mib"] = int(value.split()[0]) / 1024
    in_graph = False
    for line in _read(pid, "smaps").decode(errors="replace").splitlines():
        parts = line.split()
        if parts and "-" in parts[0] and len(parts) >= 5:  # a mapping's header line
            in_graph = parts[-1].endswith("/follows.igfg")
        elif in_graph and parts and parts[0] in ("Rss:", "Pss:"):
            figures[f"graph_{parts[0][:-1].lower()}_mib"] += int(parts[1]) / 1024
    return figures


def _get(
    port: int, path: str, token: str | None = None, connection: http.client.HTTPConnection | None = None
) -> tuple[int, bytes]:
    own = connection or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        own.request("GET", path, headers={"Authorization": f"Bearer {token}"} if token else {})
        response = own.getresponse()
        return response.status, response.read()
    finally:
        if connection is None:
            own.close()


# -- measuring -------------------------------------------------------------------------------------------


class _Bench:
    def __init__(
        self,
        wrk: str,
        options: argparse.Namespace,
        workload: Workload,
        scratch: Path,
        service: set[int],
        load: set[int],
        say: Callable[[str], None],
    ) -> None:
        self.wrk = wrk
        self.options = options
        self.workload = workload
        self.scratch = scratch
        self.service = service
        self.load = load
        self.say = say
        self.data_file = scratch / "workload.lua"
        self.data_file.write_text(lua_data(workload))
        self.runs = 0

    def server(
        self,
        demo: Path,
        backend: str,
        home_feeds: str,
        scenarios: list[str],
        rates: dict[str, float],
        visibility: bool,
    ) -> dict[str, Any]:
        name = backend if home_feeds == "igcore" else f"{backend}+{home_feeds}"
        copy = self.scratch / name
        shutil.copytree(demo, copy)  # every server starts from the same state
        self.say(f"{name}: starting igcore serve ({self.options.workers} workers)")
        server = _Server(copy, backend, home_feeds, self.options.workers, self.service)
        try:
            server.wait_ready()
            redis = server.redis_pid()
            if redis is not None and self.load:
                for task in Path(f"/proc/{redis}/task").glob("*"):
                    with contextlib.suppress(OSError):
                        os.sched_setaffinity(int(task.name), self.load)
            result: dict[str, Any] = {"backend": backend, "home_feeds": home_feeds, "scenarios": {}}
            self._warm_up(server, "mix" if home_feeds == "igcore" else "home")
            for scenario in scenarios:
                result["scenarios"][scenario] = self._scenario(server, name, scenario, rates, redis)
            if visibility:
                result["visibility"] = self._visibility(server, name)
            result["memory"] = {str(pid): _memory(pid) for pid in server.worker_pids()}
        finally:
            server.stop()
            shutil.rmtree(copy, ignore_errors=True)
        result["errors"] = sum(run["errors"] for s in result["scenarios"].values() for run in s.values())
        result["errors"] += result.get("visibility", {}).get("errors", 0)
        return result

    def _warm_up(self, server: _Server, scenario: str) -> None:
        count, seconds = len(self.workload.tokens), self.options.size.warm_mix
        self.say(f"  warming up: {count} home timelines, then {seconds} s of {scenario}")

        def read(tokens: list[str]) -> list[int]:
            connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
            try:
                return [
                    _get(server.port, "/api/v1/timelines/home?limit=20", t, connection)[0] for t in tokens
                ]
            finally:
                connection.close()

        tokens = self.workload.tokens
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            codes = [code for part in pool.map(read, [tokens[n::4] for n in range(4)]) for code in part]
        failed = [code for code in codes if code != 200]
        if failed:
            raise LoadtestError(f"the warm-up's home timelines failed: {len(failed)} answered {failed[0]}")
        self._wrk(server, scenario, 0.0, self.options.size.warm_mix)

    def _scenario(
        self, server: _Server, name: str, scenario: str, rates: dict[str, float], redis: int | None
    ) -> dict[str, Any]:
        workers = server.worker_pids()
        before = _cpu_ticks(workers), _cpu_ticks([redis] if redis else [])
        saturation = self._wrk(server, scenario, 0.0, self.options.duration)
        after = _cpu_ticks(workers), _cpu_ticks([redis] if redis else [])
        tick_ms = 1000 / os.sysconf("SC_CLK_TCK")
        requests = max(1, saturation["requests"])
        saturation["cpu_ms_per_request"] = (after[0] - before[0]) * tick_ms / requests
        saturation["redis_cpu_ms_per_request"] = (after[1] - before[1]) * tick_ms / requests
        rate = rates.setdefault(scenario, saturation["rps"] / 2)
        self.say(f"  {scenario}: {saturation['rps']:.1f} requests/s at saturation; now at {rate:.1f}/s")
        fixed = self._wrk(server, scenario, rate, self.options.duration)
        fixed["offered_rps"] = rate
        self.say(
            f"  {scenario}: p50 {fixed['p50_ms']:.1f} ms, p99 {fixed['p99_ms']:.1f} ms "
            f"at {fixed['rps']:.1f}/s; {saturation['errors'] + fixed['errors']} errors"
        )
        return {"saturation": saturation, "fixed_rate": fixed}

    def _wrk(self, server: _Server, scenario: str, rate: float, seconds: int) -> dict[str, Any]:
        """One wrk run: `rate` requests/s in all (0: as fast as possible) for `seconds`; its figures."""
        self.runs += 1
        connections = self.options.connections
        results = self.scratch / f"results-{self.runs}.txt"
        command = [self.wrk, "-t", str(connections), "-c", str(connections), "-d", f"{seconds}s"]
        command += ["--timeout", "30s", "-s", str(SCRIPT), server.url, "--", scenario]
        command += [f"{rate / connections:.6g}", str(self.options.seed * 100 + self.runs)]
        command += [str(self.data_file), str(results)]
        load = self.load
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=seconds + 120,
            preexec_fn=(lambda: os.sched_setaffinity(0, load)) if load else None,
        )
        if done.returncode != 0 or not results.exists():
            raise LoadtestError(f"wrk failed ({done.returncode}): {_last_line(done.stderr or done.stdout)}")
        return summarize(parse_results(results.read_text()))

    def _visibility(self, server: _Server, name: str) -> dict[str, Any]:
        """How soon the followers of the most followed account see its new post: the POST's latency, and
        from the POST's start until the first and the last of them had it on their first home page."""
        workload = self.workload
        rounds = self.options.size.visibility_rounds
        polling = len(workload.follower_tokens)
        self.say(f"  visibility: {rounds} posts by account {workload.poster}, {polling} followers polling")
        connections = [
            http.client.HTTPConnection("127.0.0.1", server.port, timeout=60) for _ in workload.follower_tokens
        ]
        figures: dict[str, list[float]] = {"post_ms": [], "first_ms": [], "last_ms": []}
        errors = 0

        def poll(job: tuple[http.client.HTTPConnection, str, bytes, float]) -> float | None:
            connection, token, needle, began = job
            while time.perf_counter() - began < POLL_SECONDS:
                status, body = _get(server.port, "/api/v1/timelines/home?limit=20", token, connection)
                if status == 200 and needle in body:
                    return (time.perf_counter() - began) * 1000
            return None

        try:
            with concurrent.futures.ThreadPoolExecutor(len(connections) or 1) as pool:
                for number in range(rounds):
                    began = time.perf_counter()
                    status_id = self._post(server, f"visibility probe {number} of {name}")
                    figures["post_ms"].append((time.perf_counter() - began) * 1000)
                    needle = f'"id":"{status_id}"'.encode()
                    jobs = [(c, t, needle, began) for c, t in zip(connections, workload.follower_tokens)]
                    seen = list(pool.map(poll, jobs))
                    errors += sum(1 for s in seen if s is None)
                    times = [s for s in seen if s is not None]
                    if times:
                        figures["first_ms"].append(min(times))
                        figures["last_ms"].append(max(times))
        finally:
            for connection in connections:
                connection.close()
        result: dict[str, Any] = {
            key: float(np.median(values)) if values else None for key, values in figures.items()
        }
        result.update(
            rounds=rounds,
            poster=workload.poster,
            poster_followers=workload.poster_followers,
            followers_polled=len(workload.follower_tokens),
            errors=errors,
            every_round=figures,
        )
        return result

    def _post(self, server: _Server, text: str) -> str:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            headers = {
                "Authorization": f"Bearer {self.workload.poster_token}",
                "Content-Type": "application/json",
            }
            connection.request("POST", "/api/v1/statuses", body=json.dumps({"status": text}), headers=headers)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise LoadtestError(f"posting a status answered {response.status}: {body[:200]!r}")
        return str(json.loads(body)["id"])


# -- results ---------------------------------------------------------------------------------------------


@dataclass
class Results:
    """What the wrk script wrote: latencies (µs) and status counts per endpoint, wrk's own figures."""

    duration_s: float = 0.0
    requests: int = 0
    socket_errors: dict[str, int] = field(default_factory=dict)
    latencies: dict[str, list[int]] = field(default_factory=dict)
    statuses: dict[str, dict[int, int]] = field(default_factory=dict)


def parse_results(text: str) -> Results:
    """The results file: ``D <µs>``, ``R <requests>``, ``E <kind> <count>``, ``L <endpoint> <µs>`` and
    ``S <endpoint> <status> <count>`` lines (several threads may count one endpoint and status)."""
    results = Results()
    for line in text.splitlines():
        kind, *rest = line.split()
        if kind == "D":
            results.duration_s = int(rest[0]) / 1e6
        elif kind == "R":
            results.requests = int(rest[0])
        elif kind == "E":
            results.socket_errors[rest[0]] = results.socket_errors.get(rest[0], 0) + int(rest[1])
        elif kind == "L":
            results.latencies.setdefault(rest[0], []).append(int(rest[1]))
        elif kind == "S":
            counts = results.statuses.setdefault(rest[0], {})
            counts[int(rest[1])] = counts.get(int(rest[1]), 0) + int(rest[2])
        else:
            raise ValueError(f"unexpected line in the results: {line!r}")
    return results


def percentiles(microseconds: list[int]) -> tuple[float, float, float]:
    """p50, p99 and p99.9 in milliseconds (numpy's linear interpolation; NaN when empty)."""
    if not microseconds:
        return (float("nan"),) * 3
    p50, p99, p999 = np.percentile(np.asarray(microseconds, dtype=np.float64) / 1000, [50, 99, 99.9])
    return float(p50), float(p99), float(p999)


def _figures(latencies: list[int], statuses: dict[int, int], seconds: float) -> dict[str, Any]:
    p50, p99, p999 = percentiles(latencies)
    failed = sum(count for status, count in statuses.items() if not 200 <= status < 300)
    return {
        "requests": len(latencies),
        "rps": len(latencies) / seconds if seconds else 0.0,
        "p50_ms": p50,
        "p99_ms": p99,
        "p999_ms": p999,
        "statuses": {str(status): count for status, count in sorted(statuses.items())},
        "errors": failed,
    }


def summarize(results: Results) -> dict[str, Any]:
    """Requests/s, latency percentiles and errors, in all and per endpoint."""
    every: list[int] = [us for values in results.latencies.values() for us in values]
    statuses: dict[int, int] = {}
    for counts in results.statuses.values():
        for status, count in counts.items():
            statuses[status] = statuses.get(status, 0) + count
    summary = _figures(every, statuses, results.duration_s)
    summary["duration_s"] = results.duration_s
    summary["socket_errors"] = dict(results.socket_errors)
    summary["errors"] += sum(results.socket_errors.values())
    summary["endpoints"] = {
        endpoint: _figures(values, results.statuses.get(endpoint, {}), results.duration_s)
        for endpoint, values in sorted(results.latencies.items())
    }
    return summary


# -- the report ------------------------------------------------------------------------------------------


def format_report(report: dict[str, Any]) -> str:
    meta = report["meta"]
    where = _where(set(meta["service_cpus"]), set(meta["load_cpus"]))
    lines = [
        f"igcore loadtest: {meta['accounts']:,} accounts, {meta['connections']} connections, "
        f"{meta['workers']} workers, {meta['duration_s']} s per run, seed {meta['seed']}; {where}",
        f"fixed rate: half of {meta['rates_from']}'s requests/s at saturation; "
        "latency counted from the intended send time",
        "",
    ]
    header = [
        "scenario",
        "server",
        "sat. req/s",
        "rate",
        "achieved",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "CPU ms/req",
        "Redis ms/req",
        "errors",
    ]
    rows = []
    servers = report["servers"]
    for scenario in meta["scenarios"]:
        for name, server in servers.items():
            figures = server["scenarios"].get(scenario)
            if figures is None:
                continue
            sat, fixed = figures["saturation"], figures["fixed_rate"]
            rows.append(
                [
                    scenario,
                    name,
                    f"{sat['rps']:.1f}",
                    f"{fixed['offered_rps']:.1f}",
                    f"{fixed['rps']:.1f}",
                    f"{fixed['p50_ms']:.1f}",
                    f"{fixed['p99_ms']:.1f}",
                    f"{fixed['p999_ms']:.1f}",
                    f"{sat['cpu_ms_per_request']:.2f}",
                    f"{sat['redis_cpu_ms_per_request']:.2f}",
                    str(sat["errors"] + fixed["errors"]),
                ]
            )
    lines += _table(header, rows)
    visible = {name: s["visibility"] for name, s in servers.items() if "visibility" in s}
    if visible:
        first = next(iter(visible.values()))
        lines += [
            "",
            f"visibility of a post by account {first['poster']} ({first['poster_followers']:,} followers), "
            f"{first['followers_polled']} followers polling, median of {first['rounds']} posts:",
        ]
        rows = [
            [name, _ms(v["post_ms"]), _ms(v["first_ms"]), _ms(v["last_ms"]), str(v["errors"])]
            for name, v in visible.items()
        ]
        lines += _table(["server", "POST ms", "first saw ms", "last saw ms", "unseen"], rows)
    lines += ["", "memory after the runs, MiB (Rss / Pss of each worker; of its mapping of follows.igfg):"]
    rows = []
    for name, server in servers.items():
        for pid, memory in server["memory"].items():
            rows.append(
                [
                    name,
                    pid,
                    f"{memory['rss_mib']:.1f} / {memory['pss_mib']:.1f}",
                    f"{memory['graph_rss_mib']:.1f} / {memory['graph_pss_mib']:.1f}",
                ]
            )
    lines += _table(["server", "worker", "Rss / Pss", "follows.igfg Rss / Pss"], rows)
    return "\n".join(lines)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  "
        + "  ".join(
            [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
            + [c.rjust(w) for c, w in zip(row[2:], widths[2:])]
        )
        for row in [header, *rows]
    ]


def plot(report: dict[str, Any], path: str) -> None:
    """Two panels: requests/s at saturation, and p99 at the fixed rate, a bar per server and scenario."""
    import matplotlib

    matplotlib.use("Agg")  # a file, no display
    import matplotlib.pyplot as plt

    scenarios = report["meta"]["scenarios"]
    servers = report["servers"]
    figure, panels = plt.subplots(1, 2, figsize=(12, 4.5))
    width = 0.8 / len(servers)
    for number, (name, server) in enumerate(servers.items()):
        places = [n + number * width for n, s in enumerate(scenarios) if s in server["scenarios"]]
        runs = [server["scenarios"][s] for s in scenarios if s in server["scenarios"]]
        panels[0].bar(places, [r["saturation"]["rps"] for r in runs], width, label=name)
        panels[1].bar(places, [r["fixed_rate"]["p99_ms"] for r in runs], width, label=name)
    for panel, title in zip(panels, ("requests/s at saturation", "p99 latency at the fixed rate (ms)")):
        panel.set_title(title)
        panel.set_xticks([n + 0.4 - width / 2 for n in range(len(scenarios))], scenarios, rotation=20)
        panel.legend()
    meta = report["meta"]
    figure.suptitle(
        f"igcore loadtest: {meta['accounts']:,} accounts, {meta['workers']} workers, "
        f"{meta['connections']} connections"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else "no output"
