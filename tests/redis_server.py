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

    def __init__(
        self, directory: Path, append_only: bool = False, cluster: bool = False, own_every_slot: bool = True
    ):
        self.executable = require_redis()
        self.directory = directory
        self.append_only = append_only
        self.cluster = cluster  # a cluster node: of a cluster of this one node, unless own_every_slot=False
        self.own_every_slot = own_every_slot
        self.port = free_cluster_port() if cluster else free_port()
        self.process: subprocess.Popen | None = None
        self.paused = False

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
            command += [
                "--cluster-enabled", "yes",
                "--cluster-config-file", f"nodes-{self.port}.conf",
                # A master that does not answer for a second is failed over; its replica may take over
                # however long it was cut off (the tests pause replicas on purpose).
                "--cluster-node-timeout", "1000",
                "--cluster-replica-validity-factor", "0",
                "--repl-diskless-sync-delay", "0",  # a replica syncs at once, not 5 s later
            ]  # fmt: skip
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"redis-server exited at start: {self.process.stderr.read().decode()}")
            try:
                if self.client().ping():
                    return self._own_every_slot() if self.cluster and self.own_every_slot else self
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
        self.paused = True

    def resume(self) -> None:
        os.kill(self.process.pid, signal.SIGCONT)
        self.paused = False

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
        self.paused = False

    def restart(self) -> None:
        self.stop()
        self.start()


class RedisClusterNodes:
    """A real Redis Cluster on loopback: `masters` masters with `replicas` replicas each, made by
    ``redis-cli --cluster create``, every node in a folder of its own under `directory`. Kill a master
    with ``node.stop(kill=True)`` and `wait_for_failover`; `start` it again and it rejoins as a replica."""

    def __init__(self, directory: Path, masters: int = 3, replicas: int = 1):
        self.masters, self.replicas = masters, replicas
        self.nodes: list[RedisServer] = []
        for n in range(masters * (1 + replicas)):
            folder = directory / f"node-{n}"
            folder.mkdir()
            self.nodes.append(RedisServer(folder, cluster=True, own_every_slot=False))

    def start(self) -> RedisClusterNodes:
        cli = shutil.which("redis-cli")
        if cli is None:
            raise RuntimeError("redis-cli is not on PATH (Debian: apt-get install redis-tools)")
        try:
            for node in self.nodes:
                node.start()
            addresses = [f"127.0.0.1:{node.port}" for node in self.nodes]
            created = subprocess.run(
                [cli, "--cluster", "create", *addresses, "--cluster-replicas", str(self.replicas)]
                + ["--cluster-yes"],
                capture_output=True,
                text=True,
                timeout=60,
            )
            if created.returncode != 0:
                raise RuntimeError(f"redis-cli --cluster create failed: {created.stdout}{created.stderr}")
            self.wait_until_ok()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()

    def running(self) -> list[RedisServer]:
        """The nodes that are up and not paused."""
        return [node for node in self.nodes if node.process is not None and not node.paused]

    def cluster_info(self, node: RedisServer) -> dict[str, str]:
        client = node.quick_client(timeout=1, decode_responses=True)
        try:
            text = client.execute_command("CLUSTER", "INFO")
        finally:
            client.close()
        return dict(line.split(":", 1) for line in text.split() if ":" in line)

    def master_ports(self) -> list[int]:
        """The ports of the masters that serve slots, as the running nodes see them."""
        client = self.running()[0].quick_client(timeout=1, decode_responses=True)
        try:
            shards = client.execute_command("CLUSTER", "SLOTS")
        finally:
            client.close()
        return sorted({int(shard[2][1]) for shard in shards})

    def node_of_port(self, port: int) -> RedisServer:
        return next(node for node in self.nodes if node.port == port)

    def replicas_in_sync(self) -> bool:
        """Every running replica is linked to its master and has what the master has."""
        for node in self.running():
            client = node.quick_client(timeout=1, decode_responses=True)
            try:
                info = client.info("replication")
            finally:
                client.close()
            if info["role"] == "slave" and info.get("master_link_status") != "up":
                return False
        return True

    def wait_until_ok(self, seconds: float = 30) -> None:
        """Until every running node says the cluster is ok, all agree on `masters` masters, each with
        its slots, and every running replica is in sync with its master."""
        deadline = time.monotonic() + seconds
        while True:
            try:
                states = {self.cluster_info(node).get("cluster_state") for node in self.running()}
                if states == {"ok"} and len(self.master_ports()) == self.masters and self.replicas_in_sync():
                    return
            except Exception:  # noqa: BLE001 - a node not answering yet
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster was not ok within {seconds:g} s")
            time.sleep(0.1)

    def wait_for_failover(self, killed: RedisServer, seconds: float = 30) -> int:
        """Until a replica of `killed` (a master, stopped) serves its slots: the new master's port."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            try:
                ports = self.master_ports()
                if killed.port not in ports and len(ports) == self.masters:
                    self.wait_until_ok(max(1.0, deadline - time.monotonic()))
                    return next(p for p in ports if p not in self._masters_before)
            except Exception:  # noqa: BLE001 - nodes still voting
                pass
            time.sleep(0.1)
        raise RuntimeError(f"no replica took over from port {killed.port} within {seconds:g} s")

    def kill_master(self, port: int | None = None) -> RedisServer:
        """SIGKILLs a master (the first, unless `port` names one) and returns its node."""
        self._masters_before = self.master_ports()
        killed = self.node_of_port(port if port is not None else self._masters_before[0])
        killed.stop(kill=True)
        return killed

    def replica_of(self, master_port: int) -> RedisServer:
        client = self.node_of_port(master_port).quick_client(timeout=1, decode_responses=True)
        try:
            info = client.info("replication")
        finally:
            client.close()
        return self.node_of_port(int(info["slave0"]["port"]))

    def client(self, **options):
        from redis.cluster import ClusterNode, RedisCluster

        nodes = [ClusterNode("127.0.0.1", node.port) for node in self.running()]
        return RedisCluster(startup_nodes=nodes, **options)
