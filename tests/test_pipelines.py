"""igcore.pipelines on a real Dask cluster (two worker processes on loopback): each answer equals the
single-process igcore call on the same data, generated and SNAP's; a worker killed in the middle of
suggest_all leaves a complete, correct output."""

from __future__ import annotations

import importlib.util
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from igcore import pipelines
from igcore.counters import aggregate
from igcore.graph import FollowGraph, read_edgelist

from .conftest import shared_data

if importlib.util.find_spec("distributed") is None or importlib.util.find_spec("pyarrow") is None:
    if os.environ.get("IGCORE_REQUIRE_PIPELINES", "") not in ("", "0"):
        pytest.fail(pipelines.PIPELINES_MISSING + "; IGCORE_REQUIRE_PIPELINES=1 asks for it", pytrace=False)
    pytest.skip(pipelines.PIPELINES_MISSING, allow_module_level=True)

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from dask.distributed import Client, LocalCluster  # noqa: E402

pytestmark = pytest.mark.slow
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def cluster() -> LocalCluster:
    return LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")


@pytest.fixture(scope="module")
def client():
    with cluster() as local, Client(local) as dask:
        yield dask


def write_parts(folder, columns: dict, files: int, row_group_size: int) -> None:
    """`columns` cut into `files` Parquet files of several row groups each, in order."""
    os.makedirs(folder)
    length = len(next(iter(columns.values())))
    cuts = np.linspace(0, length, files + 1).astype(int)
    for number, (start, stop) in enumerate(zip(cuts[:-1], cuts[1:])):
        table = pa.table({name: values[start:stop] for name, values in columns.items()})
        pq.write_table(
            table, os.path.join(folder, f"part-{number:03d}.parquet"), row_group_size=row_group_size
        )


# -- rollup ----------------------------------------------------------------------------------------------


def single_process_rollup(keys, kinds, deltas=None):
    return {
        kind: aggregate(keys[kinds == kind], None if deltas is None else deltas[kinds == kind])
        for kind in dict.fromkeys(kinds.tolist())
    }


def assert_same_totals(got, expected):
    assert list(got) == list(expected)  # kinds in order of first appearance
    for kind, totals in expected.items():
        assert got[kind].keys.tolist() == totals.keys.tolist(), kind
        assert got[kind].sums.tolist() == totals.sums.tolist(), kind


@pytest.mark.parametrize("with_deltas", [True, False])
def test_rollup_equals_aggregate_per_kind(client, tmp_path, with_deltas):
    rng = np.random.default_rng(7)
    n = 120_000
    # Negative, huge and repeated keys; a kind that appears only late; deltas of both signs.
    keys = rng.choice(np.array([INT64_MIN, -1, 0, 5, 2**40, INT64_MAX]), n)
    keys[::3] = rng.integers(-1000, 1000, len(keys[::3]))
    kinds = rng.choice(np.array(["like", "view", "comment"]), n)
    kinds[-5:] = "share"
    columns = {"key": keys, "kind": kinds}
    deltas = rng.integers(-50, 50, n) if with_deltas else None
    if deltas is not None:
        columns["delta"] = deltas
    write_parts(tmp_path / "events", columns, files=5, row_group_size=7_000)
    got = pipelines.rollup(tmp_path / "events", client=client, out=tmp_path / "totals")
    expected = single_process_rollup(keys, kinds, deltas)
    assert_same_totals(got, expected)
    written = pq.read_table(tmp_path / "totals")
    assert written.column_names == ["kind", "key", "total"]
    rows = list(zip(*(written.column(c).to_pylist() for c in written.column_names)))
    assert rows == [
        (k, key, total) for k, t in expected.items() for key, total in zip(t.keys.tolist(), t.sums.tolist())
    ]
    assert not [name for name in os.listdir(tmp_path) if ".partial-" in name or ".old-" in name]


def test_rollup_reads_a_glob_and_other_integer_widths(client, tmp_path):
    keys = np.array([3, 1, 3, 2, 1, 3], dtype=np.int32)
    kinds = np.array(["a", "b", "a", "a", "b", "c"])
    write_parts(tmp_path / "logs", {"key": keys, "kind": kinds}, files=3, row_group_size=1)
    got = pipelines.rollup(str(tmp_path / "logs" / "part-*.parquet"), client=client)
    assert_same_totals(got, single_process_rollup(keys.astype(np.int64), kinds))


def test_rollup_of_partial_totals_that_overflow_raises(client, tmp_path):
    keys = np.array([1, 1], dtype=np.int64)
    write_parts(tmp_path / "e", {"key": keys, "kind": ["x", "x"], "delta": [INT64_MAX, 1]}, 2, 1)
    with pytest.raises(OverflowError):
        pipelines.rollup(tmp_path / "e", client=client)


def test_rollup_says_what_is_wrong_with_its_input(client, tmp_path):
    with pytest.raises(FileNotFoundError, match="no Parquet files"):
        pipelines.rollup(tmp_path / "nothing-here", client=client)
    write_parts(tmp_path / "nokind", {"key": [1, 2]}, 1, 10)
    with pytest.raises(ValueError, match="no column 'kind'"):
        pipelines.rollup(tmp_path / "nokind", client=client)
    write_parts(tmp_path / "floats", {"key": [1.5, 2.0], "kind": ["a", "b"]}, 1, 10)
    with pytest.raises(ValueError, match="is double, not a column of integers"):
        pipelines.rollup(tmp_path / "floats", client=client)
    write_parts(tmp_path / "nulls", {"key": pa.array([1, None]), "kind": ["a", "b"]}, 1, 10)
    with pytest.raises(ValueError, match="1 nulls"):
        pipelines.rollup(tmp_path / "nulls", client=client)
    write_parts(tmp_path / "ok", {"key": [1], "kind": ["a"]}, 1, 10)
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError, match="overwrite=True, or --overwrite, replaces it"):
        pipelines.rollup(tmp_path / "ok", client=client, out=tmp_path / "taken")
    pipelines.rollup(tmp_path / "ok", client=client, out=tmp_path / "taken", overwrite=True)
    assert pq.read_table(tmp_path / "taken").column("total").to_pylist() == [1]


# -- build_graph -----------------------------------------------------------------------------------------


def assert_same_graph(path, src, dst, ts, report):
    expected = FollowGraph.from_edges(src, dst, ts)
    built = FollowGraph.load(path)
    assert report.duplicates == expected.build_report.duplicates
    assert report.self_follows == expected.build_report.self_follows
    assert report.self_followers.tolist() == expected.build_report.self_followers.tolist()
    assert built.user_ids().tolist() == expected.user_ids().tolist()
    for got, want in zip(built.edges(), expected.edges()):
        assert got.tolist() == want.tolist()
    expected.save(str(path) + ".expected")
    with open(path, "rb") as a, open(str(path) + ".expected", "rb") as b:
        assert a.read() == b.read()  # the same file, byte for byte


@pytest.mark.parametrize("timed", [True, False])
def test_build_graph_equals_from_edges(client, tmp_path, timed):
    rng = np.random.default_rng(11)
    n = 60_000
    src = rng.integers(0, 4_000, n) * 10**12  # big ids
    dst = rng.integers(0, 4_000, n) * 10**12
    src[:200] = dst[:200]  # self-follows, some repeated
    src[-300:], dst[-300:] = src[:300], dst[:300]  # repeats across files, the later at other times
    ts = rng.integers(-(10**9), 10**12, n) if timed else None
    columns = {"src": src, "dst": dst, **({"ts": ts} if timed else {})}
    write_parts(tmp_path / "edges", columns, files=4, row_group_size=5_000)
    report = pipelines.build_graph(tmp_path / "edges", tmp_path / "graph.igfg", client=client)
    assert report.duplicates >= 100 and report.self_follows >= 400  # the repeats made above
    assert_same_graph(tmp_path / "graph.igfg", src, dst, ts, report)


@pytest.mark.parametrize("name", ["email-Eu-core.txt.gz", "email-Eu-core-temporal.txt.gz"])
def test_build_graph_of_a_snap_graph(client, tmp_path, name):
    columns = read_edgelist(shared_data(name))
    src, dst = columns[0], columns[1]
    ts = columns[2] if len(columns) > 2 else None
    write_parts(tmp_path / "snap", {"src": src, "dst": dst, **({} if ts is None else {"ts": ts})}, 3, 20_000)
    report = pipelines.build_graph(tmp_path / "snap", tmp_path / "snap.igfg", client=client)
    assert_same_graph(tmp_path / "snap.igfg", src, dst, ts, report)


# -- suggest_all -----------------------------------------------------------------------------------------


def assert_suggestions_of_every_user(out, graph_path, limit, method):
    graph = FollowGraph.load(graph_path)
    table = pq.read_table(out)
    assert table.column_names == ["user", "rank", "suggestion", "score"]
    users, ranks, ids, scores = (table.column(c).to_numpy() for c in table.column_names)
    expected_users, expected_ranks, expected_ids, expected_scores = [], [], [], []
    for user in graph.user_ids().tolist():
        found = graph.suggest(user, limit, method)
        expected_users += [user] * len(found.ids)
        expected_ranks += range(1, len(found.ids) + 1)
        expected_ids += found.ids.tolist()
        expected_scores += found.scores.tolist()
    assert users.tolist() == expected_users
    assert ranks.tolist() == expected_ranks
    assert ids.tolist() == expected_ids
    assert scores.tolist() == expected_scores
    assert not [name for name in os.listdir(out) if name.startswith(".")]


@pytest.mark.parametrize("method", ["common", "adamic_adar"])
def test_suggest_all_equals_suggest_for_every_user(client, tmp_path, method):
    rng = np.random.default_rng(3)
    graph = FollowGraph.from_edges(rng.integers(0, 3_000, 40_000), rng.integers(0, 3_000, 40_000))
    graph.save(tmp_path / "g.igfg")
    rows = pipelines.suggest_all(
        tmp_path / "g.igfg", tmp_path / "out", limit=7, method=method, client=client, users_per_task=450
    )
    assert rows == pq.read_table(tmp_path / "out").num_rows > 0
    assert len(os.listdir(tmp_path / "out")) == 7  # 3,000 users, 450 a task
    assert_suggestions_of_every_user(tmp_path / "out", tmp_path / "g.igfg", 7, method)


def test_suggest_all_of_a_snap_graph(client, tmp_path):
    graph = FollowGraph.from_edges(*read_edgelist(shared_data("Wiki-Vote.txt.gz")))
    graph.save(tmp_path / "wiki.igfg")
    pipelines.suggest_all(tmp_path / "wiki.igfg", tmp_path / "out", client=client, users_per_task=1_000)
    assert_suggestions_of_every_user(tmp_path / "out", tmp_path / "wiki.igfg", 20, "common")


def test_suggest_all_refuses_what_it_cannot_mean(client, tmp_path):
    FollowGraph.from_edges([1], [2]).save(tmp_path / "g.igfg")
    with pytest.raises(ValueError, match="method must be"):
        pipelines.suggest_all(tmp_path / "g.igfg", tmp_path / "o", method="pagerank", client=client)
    with pytest.raises(ValueError, match="users_per_task must be at least 1"):
        pipelines.suggest_all(tmp_path / "g.igfg", tmp_path / "o", users_per_task=0, client=client)
    with pytest.raises(ValueError, match="igfg"):
        (tmp_path / "junk.igfg").write_bytes(b"not a graph")
        pipelines.suggest_all(tmp_path / "junk.igfg", tmp_path / "o", client=client)
    assert not (tmp_path / "o").exists()


def test_a_worker_killed_during_suggest_all_leaves_a_complete_output(tmp_path):
    rng = np.random.default_rng(5)
    users = 12_000
    graph = FollowGraph.from_edges(rng.integers(0, users, 400_000), rng.integers(0, users, 400_000))
    graph.save(tmp_path / "g.igfg")
    with cluster() as local, Client(local) as dask:
        pids = dask.run(os.getpid)
        outcome: dict = {}

        def run() -> None:
            try:
                outcome["rows"] = pipelines.suggest_all(
                    tmp_path / "g.igfg", tmp_path / "out", client=dask, users_per_task=100
                )
            except BaseException as exc:  # reported below, in the test's thread
                outcome["error"] = exc

        job = threading.Thread(target=run)
        job.start()
        # Kill a worker while it is working on a task, once some parts are written.
        killed = None
        deadline = time.monotonic() + 60
        while killed is None and job.is_alive() and time.monotonic() < deadline:
            written = [p for p in tmp_path.glob("out.partial-*/part-*.parquet")]
            busy = [address for address, tasks in dask.processing().items() if tasks]
            if len(written) >= 5 and busy:
                killed = busy[0]
                os.kill(pids[killed], signal.SIGKILL)
            time.sleep(0.005)
        job.join(timeout=300)
        assert killed is not None, "the run ended before a worker could be killed"
        assert "error" not in outcome, outcome.get("error")
        assert outcome["rows"] == pq.read_table(tmp_path / "out").num_rows
    assert_suggestions_of_every_user(tmp_path / "out", tmp_path / "g.igfg", 20, "common")


def test_the_command_line_runs_each_job(tmp_path):
    rng = np.random.default_rng(2)
    keys, kinds = rng.integers(0, 50, 4_000), rng.choice(np.array(["like", "view"]), 4_000)
    write_parts(tmp_path / "events", {"key": keys, "kind": kinds}, 2, 500)
    src, dst = rng.integers(0, 300, 3_000), rng.integers(0, 300, 3_000)
    write_parts(tmp_path / "edges", {"src": src, "dst": dst}, 2, 500)

    def igcore(*args: str) -> subprocess.CompletedProcess:
        command = [sys.executable, "-m", "igcore", "pipeline", "--workers", "2", *args]
        return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=tmp_path)

    done = igcore("rollup", "events", "--out", "totals")
    assert done.returncode == 0, done.stderr
    expected = single_process_rollup(keys, kinds)
    for kind, totals in expected.items():
        assert f"{kind}: {len(totals.keys):,} keys, {int(totals.sums.sum()):,} in all" in done.stdout
    assert "8/8 tasks" in done.stderr  # the progress bar, on stderr: a task per row group
    done = igcore("build-graph", "edges", "g.igfg")
    assert done.returncode == 0, done.stderr
    assert_same_graph(tmp_path / "g.igfg", src, dst, None, FollowGraph.from_edges(src, dst).build_report)
    done = igcore("suggest-all", "g.igfg", "out", "--limit", "4")
    assert done.returncode == 0, done.stderr
    assert_suggestions_of_every_user(tmp_path / "out", tmp_path / "g.igfg", 4, "common")
    again = igcore("suggest-all", "g.igfg", "out")
    assert again.returncode == 1 and "--overwrite" in again.stderr
    assert igcore("suggest-all", "g.igfg", "out", "--overwrite").returncode == 0
    assert igcore("rollup").returncode == 2  # a usage error


# -- Arrow -----------------------------------------------------------------------------------------------


def test_totals_go_to_arrow_and_back_without_a_copy():
    totals = aggregate(np.array([5, -1, 5, INT64_MAX, INT64_MIN]))
    table = totals.to_arrow()
    assert table.column_names == ["key", "total"]
    assert np.shares_memory(table.column("key").chunk(0).to_numpy(), totals.keys)
    back = type(totals).from_arrow(table)
    assert np.shares_memory(back.keys, totals.keys) and np.shares_memory(back.sums, totals.sums)
    assert back.keys.tolist() == totals.keys.tolist() and back.sums.tolist() == totals.sums.tolist()
    # Other layouts convert, with a copy: several chunks, a narrower type.
    chunked = pa.concat_tables([table.slice(0, 2), table.slice(2)])
    assert type(totals).from_arrow(chunked).keys.tolist() == totals.keys.tolist()
    narrow = pa.table({"key": pa.array([1, 2], pa.int32()), "total": pa.array([3, 4], pa.uint8())})
    assert type(totals).from_arrow(narrow).sums.tolist() == [3, 4]
    with pytest.raises(ValueError, match="no column 'total'"):
        type(totals).from_arrow(pa.table({"key": [1]}))
    with pytest.raises(ValueError, match="1 nulls"):
        type(totals).from_arrow(pa.table({"key": [1, None], "total": [1, 2]}))
    with pytest.raises(pa.ArrowInvalid):  # beyond int64: the cast refuses, nothing wraps
        type(totals).from_arrow(pa.table({"key": pa.array([2**64 - 1], pa.uint64()), "total": [1]}))


@pytest.mark.parametrize("timed", [False, True])
def test_a_follow_graph_goes_to_arrow_and_back(timed):
    rng = np.random.default_rng(9)
    src, dst = rng.integers(-50, 50, 2_000), rng.integers(-50, 50, 2_000)
    times = rng.integers(0, 10**9, 2_000) if timed else None
    graph = FollowGraph.from_edges(src, dst, times)
    table = graph.to_arrow()
    assert table.column_names == (["src", "dst", "ts"] if timed else ["src", "dst"])
    again = FollowGraph.from_arrow(table)
    for got, want in zip(again.edges(), graph.edges()):
        assert got.tolist() == want.tolist()
    assert again.has_timestamps == timed
