"""A real ``redis-server`` for the tests, on a free loopback port, in a temporary directory.

No persistence unless asked for (the fault tests ask for an append-only file, in the temp directory),
nothing written elsewhere. Without ``redis-server`` on PATH the tests that need it skip with the reason;
with ``IGCORE_REQUIRE_REDIS=1`` (CI) they fail instead.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

REQUIRE_REDIS = os.environ.get("IGCORE_REQUIRE_REDIS", "") not in ("", "0")


def require_redis() -> str:
    """The path of ``redis-server`` and the ``redis`` client importable, or skip (fail when required)."""
    server = shutil.which("redis-server")
    problem = None
    if server is None:
        problem = "redis-server is not on PATH (Debian: apt-get install redis-server)"
    else:
        try:
            import redis  # noqa: F401
        except ImportError:
            problem = "the Python client `redis` is not installed (pip install 'igcore[test]')"
    if problem:
        if REQUIRE_REDIS:
            pytest.fail(problem + "; IGCORE_REQUIRE_REDIS=1 asks for it")
        pytest.skip(problem)
    return server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def free_cluster_port() -> int:
    """A free port whose cluster bus port (10000 above) is free too."""
    for _ in range(100):
        port = free_port()
        if port + 10000 <= 65535:
            try:
                with socket.socket() as probe:
                    probe.bind(("127.0.0.1", port + 10000))
                return port
            except OSError:
                pass
    raise RuntimeError("found no port with a free cluster bus port")


class RedisServer:
    """One ``redis-server`` process; `stop`, `pause`, `resume` and `restart` are for the fault tests."""

    def __init__(self, directory: Path, append_only: bool = False, cluster: bool = False):
        self.executable = require_redis()
        self.directory = directory
        self.append_only = append_only
        self.cluster = cluster  # a Redis Cluster of this one node, holding every slot
        self.port = free_cluster_port() if cluster else free_port()
        self.process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        command = [
            self.executable,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.append_only else "no",
            "--appendfsync", "always",
            "--logfile", str(self.directory / "redis.log"),
            "--protected-mode", "yes",
        ]  # fmt: skip
        if self.cluster:
            command += ["--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{self.port}.conf"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start: {self.process.stderr.read().decode()}")
            try:
                if self.client().ping():
                    return self._own_every_slot() if self.cluster else self
            except Exception:  # noqa: BLE001 - not up yet
                time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on port {self.port} within 10 s")

    def _own_every_slot(self) -> RedisServer:
        client = self.client()
        if b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
            client.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        deadline = time.monotonic() + 10
        while b"cluster_state:ok" not in client.execute_command("CLUSTER", "INFO"):
            if time.monotonic() > deadline:
                raise RuntimeError("the one-node cluster did not come up within 10 s")
            time.sleep(0.02)
        client.close()
        return self

    def quick_client(self, timeout: float = 0.5, **options):
        """A client that gives up fast and never retries by itself, so that a fault reaches the caller."""
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        return self.client(
            socket_timeout=timeout, socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0), **options
        )

    def client(self, **options):
        import redis

        return redis.Redis(host="127.0.0.1", port=self.port, **options)

    def pause(self) -> None:
        """Freezes the server: it accepts nothing and answers nothing until `resume`."""
        os.kill(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)

    def stop(self, kill: bool = False) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            if kill:
                self.process.kill()  # at once, even when paused: nothing more runs
            else:
                self.resume()
                self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()
        self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()
