"""The pipelines with one worker process and with two: the speed-up, and the memory per worker.

    python bench/pipelines_scale.py [--scale 1.0] [--events 10000000] [--json FILE]

On the benchmark graph of `igcore bench` (200,000 users, about 2 million follows at scale 1) and a
seeded event log (Zipf keys, four kinds, small deltas), written as Parquet in a temporary folder:
``rollup``, ``build_graph`` and ``suggest_all``, each on a fresh local cluster of 1 and then 2 worker
processes (one thread each). Each answer is checked against the single-process one. Memory is each
worker's peak resident set (VmHWM), read from the workers when the job ends.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from dask.distributed import Client, LocalCluster

from igcore import pipelines
from igcore.bench.data import small_deltas, zipf_keys
from igcore.bench.graph import follows
from igcore.counters import aggregate
from igcore.graph import FollowGraph

KINDS = np.array(["like", "view", "comment", "share"])


def peak_rss_mib() -> float:
    """This process's peak resident set, VmHWM (not ru_maxrss, which a spawned worker inherits from
    the process that started it)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def write(folder: str, columns: dict, files: int) -> None:
    os.makedirs(folder)
    length = len(next(iter(columns.values())))
    cuts = np.linspace(0, length, files + 1).astype(int)
    for number, (start, stop) in enumerate(zip(cuts[:-1], cuts[1:])):
        table = pa.table({name: values[start:stop] for name, values in columns.items()})
        pq.write_table(table, os.path.join(folder, f"part-{number:03d}.parquet"), row_group_size=500_000)


def timed(workers: int, job) -> tuple[float, list[float], object]:
    with (
        LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as cluster,
        Client(cluster) as client,
    ):
        client.run(lambda: None)  # the workers are up before the clock starts
        started = time.perf_counter()
        answer = job(client)
        took = time.perf_counter() - started
        memory = sorted(client.run(peak_rss_mib).values())
    return took, memory, answer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="igcore-pipelines-")
    src, dst = follows(args.scale)
    keys = zipf_keys(args.events, max(args.events // 20, 1), 1.1, seed=3)
    kinds = KINDS[np.random.default_rng(4).integers(0, len(KINDS), args.events)]
    deltas = small_deltas(args.events, seed=5)
    write(f"{folder}/follows", {"src": src, "dst": dst}, files=8)
    write(f"{folder}/events", {"key": keys, "kind": kinds, "delta": deltas}, files=8)
    print(f"data in {folder}: {len(src):,} follow rows, {args.events:,} events", file=sys.stderr)

    graph = FollowGraph.from_edges(src, dst)
    graph.save(f"{folder}/expected.igfg")
    expected_totals = {
        kind: aggregate(keys[kinds == kind], deltas[kinds == kind]) for kind in dict.fromkeys(kinds.tolist())
    }
    figures: dict[str, dict] = {}
    for workers in (1, 2):
        out = f"{folder}/w{workers}"
        jobs = {
            "rollup": lambda c, out=out: pipelines.rollup(f"{folder}/events", c),
            "build_graph": lambda c, out=out: pipelines.build_graph(f"{folder}/follows", f"{out}.igfg", c),
            "suggest_all": lambda c, out=out: pipelines.suggest_all(
                f"{folder}/expected.igfg", f"{out}-s", client=c
            ),
        }
        for name, job in jobs.items():
            took, memory, answer = timed(workers, job)
            if name == "rollup":
                for kind, totals in expected_totals.items():
                    assert answer[kind].keys.tolist() == totals.keys.tolist(), kind
                    assert answer[kind].sums.tolist() == totals.sums.tolist(), kind
            figures.setdefault(name, {})[workers] = {"seconds": took, "worker_peak_rss_mib": memory}
            print(f"{name}, {workers} worker(s): {took:.2f} s, worker peak RSS {memory} MiB", file=sys.stderr)
        with open(f"{out}.igfg", "rb") as a, open(f"{folder}/expected.igfg", "rb") as b:
            assert a.read() == b.read(), "build_graph wrote another file"
    users = graph.num_users
    print(
        f"\n{'job':12} {'1 worker s':>11} {'2 workers s':>12} {'speed-up':>9} {'RSS/worker MiB (1; 2)':>24}"
    )
    for name, runs in figures.items():
        one, two = runs[1], runs[2]
        rss = f"{max(one['worker_peak_rss_mib']):.0f}; {max(two['worker_peak_rss_mib']):.0f}"
        speedup = one["seconds"] / two["seconds"]
        print(f"{name:12} {one['seconds']:11.2f} {two['seconds']:12.2f} {speedup:9.2f} {rss:>24}")
    per_account = figures["suggest_all"][1]["seconds"] / users
    print(f"\nsuggest_all: {per_account * 1e6:.1f} us per account on one worker ({users:,} accounts)")
    if args.json:
        with open(args.json, "w") as out_file:
            sizes = {"users": users, "follows": int(graph.num_follows), "events": args.events}
            json.dump({**sizes, "figures": figures}, out_file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
