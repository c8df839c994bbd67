"""``igcore loadtest``: one quick load run end to end, the parts that turn wrk's output into figures, and
its refusal without wrk.

The load run is ``python -m igcore loadtest --quick`` in a child process, on a demo of its own in a
temporary folder; it runs once, not once per backend (it starts a server per backend itself). Without
wrk on PATH it skips, except under CI (``CI`` set), where it fails: CI installs wrk.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from importlib.util import find_spec

import pytest

import igcore
from igcore.cli import WEB_EXTRA
from igcore.web.loadtest import WRK_MISSING, Workload, lua_data, parse_results, percentiles, summarize
from tests.conftest import REQUIRED, SANITIZER
from tests.isolated import PACKAGE_ROOT
from tests.redis_server import require_redis

RUN_SECONDS = 300
missing_web = [module for module in WEB_EXTRA if find_spec(module) is None]
needs_web = pytest.mark.skipif(
    bool(missing_web),
    reason=f"the web extra is not installed ({', '.join(missing_web)}): pip install '.[web]'",
)


def child_environment(**extra: str) -> dict[str, str]:
    """The tests' environment without any web configuration of theirs, and the igcore under test."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("IGCORE_WEB_", "DJANGO_"))}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, environment.get("PYTHONPATH")]))
    return {**environment, **extra}


def require_wrk() -> None:
    if shutil.which("wrk") is None:
        message = "wrk is not on PATH (Debian: apt-get install wrk)"
        if os.environ.get("CI"):
            pytest.fail(message + "; under CI the load test must run")
        pytest.skip(message)


# -- the load run ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """The JSON report and the output of one ``igcore loadtest --quick``."""
    if missing_web:
        pytest.skip(f"the web extra is not installed ({', '.join(missing_web)})")
    require_wrk()
    require_redis()
    if SANITIZER:
        pytest.skip(f"a load run measures speed: not run under the {SANITIZER} sanitizer (IGCORE_SANITIZER)")
    folder = tmp_path_factory.mktemp("loadtest")
    report = folder / "report.json"
    done = subprocess.run(
        [sys.executable, "-m", "igcore", "loadtest", "--quick", "--json", str(report)]
        + ["--data-dir", str(folder / "data")],
        capture_output=True,
        text=True,
        cwd=folder,
        env=child_environment(),
        timeout=RUN_SECONDS,
    )
    assert done.returncode == 0, f"loadtest exited with {done.returncode}:\n{done.stdout}\n{done.stderr}"
    assert "Traceback" not in done.stderr
    return json.loads(report.read_text()), done.stdout


def _runs(report):
    for name, server in report["servers"].items():
        for scenario, runs in server["scenarios"].items():
            for kind, figures in runs.items():
                yield f"{name} {scenario} {kind}", figures


@pytest.mark.slow
def test_every_backend_and_the_peer_serve_every_scenario_without_errors(quick_run):
    report, output = quick_run
    expected = set(REQUIRED) or set(igcore.backends())
    servers = report["servers"]
    igcore_servers = {name for name, s in servers.items() if s["home_feeds"] == "igcore"}
    assert igcore_servers >= expected
    peers = [s for s in servers.values() if s["home_feeds"] == "sorted-set"]
    assert len(peers) == 1 and set(peers[0]["scenarios"]) == {"home"}
    for name in igcore_servers:
        assert set(servers[name]["scenarios"]) == {"mix", "home"}, name
    assert report["errors"] == 0
    for label, figures in _runs(report):
        assert figures["rps"] > 0 and figures["requests"] > 0, label
        assert figures["errors"] == 0 and not any(figures["socket_errors"].values()), (label, figures)
        assert set(figures["statuses"]) <= {"200"}, (label, figures["statuses"])
    meta = report["meta"]
    assert meta["quick"] and meta["accounts"] == 2000 and meta["connections"] == 16
    assert "scenario" in output and "visibility" in output and "memory" in output


@pytest.mark.slow
def test_latency_percentiles_are_ordered(quick_run):
    report, _ = quick_run
    for label, figures in _runs(report):
        for part, each in [("all", figures), *figures["endpoints"].items()]:
            assert 0 < each["p50_ms"] <= each["p99_ms"] <= each["p999_ms"], (label, part, each)
        if "offered_rps" in figures:
            assert figures["offered_rps"] > 0, label
    mix = next(iter(report["servers"].values()))["scenarios"]["mix"]["saturation"]
    assert {"home", "favourite", "status"} <= set(mix["endpoints"])  # the mix's main parts


@pytest.mark.slow
def test_visibility_and_memory_are_reported(quick_run):
    report, _ = quick_run
    visible = [s["visibility"] for s in report["servers"].values() if "visibility" in s]
    assert len(visible) == 2  # igcore and its peer, on one backend
    for figures in visible:
        assert figures["errors"] == 0
        assert figures["post_ms"] > 0 and 0 < figures["first_ms"] <= figures["last_ms"], figures
    for name, server in report["servers"].items():
        assert server["memory"], name
        for memory in server["memory"].values():
            assert 0 < memory["pss_mib"] <= memory["rss_mib"], (name, memory)
            assert memory["graph_pss_mib"] <= memory["graph_rss_mib"], (name, memory)


# -- the parts ------------------------------------------------------------------------------------------

RESULTS = """\
D 2000000
R 6
E connect 0
E read 1
E write 0
E timeout 0
L home 1000
L home 3000
L post 5000
S home 200 2
S post 200 1
L home 2000
L status 4000
L status 6000
S home 200 1
S status 200 1
S status 404 1
"""


def test_the_results_file_is_read_per_endpoint_across_threads():
    results = parse_results(RESULTS)
    assert results.duration_s == 2.0 and results.requests == 6
    assert results.socket_errors == {"connect": 0, "read": 1, "write": 0, "timeout": 0}
    assert results.latencies == {"home": [1000, 3000, 2000], "post": [5000], "status": [4000, 6000]}
    assert results.statuses == {"home": {200: 3}, "post": {200: 1}, "status": {200: 1, 404: 1}}
    summary = summarize(results)
    assert summary["requests"] == 6 and summary["rps"] == 3.0
    assert summary["errors"] == 2  # the 404 and the read error
    assert summary["endpoints"]["home"]["p50_ms"] == 2.0
    assert summary["endpoints"]["status"]["errors"] == 1
    assert summary["statuses"] == {"200": 5, "404": 1}


def test_a_line_the_script_does_not_write_is_refused():
    with pytest.raises(ValueError, match="unexpected line"):
        parse_results("X 1\n")


def test_percentiles_interpolate_as_numpy_does():
    microseconds = [ms * 1000 for ms in range(1, 1001)]  # 1 to 1000 ms
    p50, p99, p999 = percentiles(microseconds)
    assert math.isclose(p50, 500.5) and math.isclose(p99, 990.01) and math.isclose(p999, 999.001)
    assert percentiles([7000]) == (7.0, 7.0, 7.0)
    assert all(math.isnan(p) for p in percentiles([]))


def test_the_data_file_writes_ids_as_strings():
    """Lua's numbers are doubles: a snowflake id written as a number would lose its last digits."""
    workload = Workload(
        tokens=["a"],
        celebrity_tokens=["b"],
        statuses=[117707606602743808],
        accounts=[7],
        poster=7,
        poster_token="b",
        poster_followers=1,
        follower_tokens=["a"],
    )
    text = lua_data(workload)
    assert text.startswith("return {") and '"117707606602743808"' in text and '"7"' in text


# -- without wrk ----------------------------------------------------------------------------------------


@needs_web
def test_without_wrk_it_says_so_in_one_line_and_exits_2(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "igcore", "loadtest", "--quick"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=child_environment(PATH=str(tmp_path)),  # an empty folder: no wrk on it
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr == WRK_MISSING + "\n"
    assert not (tmp_path / "igcore-loadtest").exists()


def test_bench_leaves_the_load_run_out_below_its_quick_scale(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "igcore", "bench", "-k", "web", "--scale", "0.001"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=child_environment(),
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("web.loadtest left out: ")
    assert not (tmp_path / "igcore-loadtest").exists()
