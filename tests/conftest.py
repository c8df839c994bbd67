"""The `backend` fixture runs a test once per backend (rust, cython, python).

- ``IGCORE_BACKEND=rust`` (or cython, python) runs only that backend; unset or ``auto`` runs all three.
- ``IGCORE_REQUIRE_BACKENDS=rust,cython,python`` makes a backend that is not built a failure instead of
  a skip (CI sets it): a missing compiled backend must never pass silently.
- Test modules name their hot path in ``HOT_PATH``; a backend that does not serve it is skipped (or
  fails, when required).
- ``HYPOTHESIS_PROFILE=ci|expensive`` runs more generated examples.
- ``shared_data(name)`` finds a file of the team's shared data (real SNAP graphs, the msgpack test
  vectors) in ``IGCORE_DATA_DIR``, by default ``../shared/data`` beside the checkout. Where it is absent
  the test skips with the reason; with ``IGCORE_REQUIRE_DATA=1`` (CI) it fails instead.
- ``IGCORE_SANITIZER=address`` (set by ``make memcheck``) says the compiled backends run under
  AddressSanitizer: the tests that measure RSS or wall time run their code, then skip the measurement.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

import igcore
from igcore import _backend

# The `backend` fixture only selects a backend for the test's duration, so sharing it across the
# examples of one @given test is what we want.
SHARED_FIXTURE = [HealthCheck.function_scoped_fixture]
settings.register_profile("default", max_examples=100, deadline=None, suppress_health_check=SHARED_FIXTURE)
settings.register_profile(
    "ci", max_examples=300, deadline=None, suppress_health_check=[*SHARED_FIXTURE, HealthCheck.too_slow]
)
settings.register_profile(
    "expensive", max_examples=3000, deadline=None, suppress_health_check=list(HealthCheck)
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

REQUIRED = [b.strip() for b in os.environ.get("IGCORE_REQUIRE_BACKENDS", "").split(",") if b.strip()]
CHOSEN = os.environ.get("IGCORE_BACKEND", "auto").strip().lower() or "auto"
SELECTED = list(_backend.BACKENDS) if CHOSEN == "auto" else [CHOSEN]


DATA_DIR = Path(os.environ.get("IGCORE_DATA_DIR") or Path(__file__).resolve().parents[2] / "shared" / "data")
REQUIRE_DATA = os.environ.get("IGCORE_REQUIRE_DATA", "") not in ("", "0")
SANITIZER = os.environ.get("IGCORE_SANITIZER", "").strip()


def skip_measuring_under_sanitizer(what: str) -> None:
    """Skips the rest of the test under a sanitizer, whose quarantine of freed memory and slower memory
    accesses make RSS and timings measure the sanitizer, not the code. Call it after the code has run."""
    if SANITIZER:
        pytest.skip(f"{what} not measured under the {SANITIZER} sanitizer (IGCORE_SANITIZER)")


def shared_data(name: str) -> Path:
    """The path of `name` in the shared data folder; skips (or fails, when required) if it is absent."""
    path = DATA_DIR / name
    if not path.exists():
        message = f"shared data {name!r} not found in {DATA_DIR} (set IGCORE_DATA_DIR to the data folder)"
        if REQUIRE_DATA:
            pytest.fail(message + "; IGCORE_REQUIRE_DATA=1 asks for it")
        pytest.skip(message)
    return path


def pytest_report_header(config):
    return [
        f"igcore {igcore.__version__}: backends {', '.join(SELECTED)}"
        + (f" (required: {', '.join(REQUIRED)})" if REQUIRED else ""),
    ]


def pytest_generate_tests(metafunc):
    if "backend" in metafunc.fixturenames:
        metafunc.parametrize("backend", SELECTED, indirect=True)


@pytest.fixture
def backend(request):
    """The name of the backend under test; every hot path is served by it inside the test."""
    name = request.param
    hot_paths = getattr(request.module, "HOT_PATH", None)  # a module may test several: a tuple
    if hot_paths is None:
        raise RuntimeError(f"{request.module.__name__} uses the backend fixture but sets no HOT_PATH")
    for hot_path in (hot_paths,) if isinstance(hot_paths, str) else hot_paths:
        if name not in _backend.available(hot_path):
            reason = _backend._load(name, hot_path)[1]
            message = f"backend {name} does not serve {hot_path}: {reason}"
            if name in REQUIRED:
                pytest.fail(message + " (required by IGCORE_REQUIRE_BACKENDS)")
            pytest.skip(message)
    with igcore.use_backend(name):
        yield name


def reference(call, *args, **kwargs):
    """`call(*args, **kwargs)` under the pure-Python reference: its result, or the exception it raised."""
    with igcore.use_backend("python"):
        return outcome(call, *args, **kwargs)


def outcome(call, *args, **kwargs):
    """The result of a call, or ``(exception type, message)`` when it raises: what two backends compare."""
    try:
        return ("ok", call(*args, **kwargs))
    except Exception as exc:  # noqa: BLE001 - the exception is the outcome being compared
        return ("raised", type(exc), str(exc))


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    """A real redis-server for this test session (see tests/redis_server.py); stopped at the end."""
    from .redis_server import RedisServer

    server = RedisServer(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory):
    """A real Redis Cluster for this test session, three masters with a replica each (see
    tests/redis_server.py); stopped at the end. Tests that kill a master bring it back as a replica."""
    from .redis_server import RedisClusterNodes, require_redis

    require_redis()
    cluster = RedisClusterNodes(tmp_path_factory.mktemp("redis-cluster")).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def redis_client(redis_server):
    """A client of the session's server, on an empty database with the default configuration."""
    client = redis_server.client()
    client.flushall()
    client.config_set("hll-sparse-max-bytes", 3000)
    yield client
    client.close()


def assert_releases_the_gil(call, attempts: int = 3) -> None:
    """Fails unless `call()` lets other Python threads run while it works.

    The call is timed alone, then run in a thread while this one keeps running Python: the longest pause
    this thread sees must be far shorter than the call (it would be the whole call if the GIL were held).
    Give it a call that takes well over Python's switch interval (5 ms), and that can run 2 x `attempts`
    times: on a busy machine the OS may stop this thread for a while of its own, so a pause that long is
    measured again, up to `attempts` times; a call that holds the GIL fails every one.
    """
    import threading
    import time

    measured = []
    for _ in range(attempts):
        started = time.perf_counter()
        call()
        alone = time.perf_counter() - started
        done = threading.Event()

        def work(done=done):
            call()
            done.set()

        worker = threading.Thread(target=work)
        longest_pause, last = 0.0, time.perf_counter()
        worker.start()
        while not done.is_set():
            now = time.perf_counter()
            longest_pause = max(longest_pause, now - last)
            last = now
        worker.join()
        skip_measuring_under_sanitizer("the GIL release (pauses of other threads) is")
        if longest_pause < alone / 2:
            return
        measured.append((round(longest_pause, 4), round(alone, 4)))
    raise AssertionError(f"(longest pause, the call alone) in seconds, each attempt: {measured}")
