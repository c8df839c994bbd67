"""The igcore command: info, and a bench run at a tiny scale (the real figures come from `igcore bench`)."""

from __future__ import annotations

import json
import subprocess
import sys

import igcore


def igcore_command(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "igcore", *args], capture_output=True, text=True, timeout=300
    )


def test_info_lists_backends_and_what_serves_each_hot_path():
    done = igcore_command("info")
    assert done.returncode == 0, done.stderr
    assert f"igcore {igcore.__version__}" in done.stdout
    for backend in igcore.BACKENDS:
        assert f"  {backend}" in done.stdout
    for hot_path in igcore.HOT_PATHS:
        assert f"  {hot_path}" in done.stdout and "served by" in done.stdout


def test_bench_runs_every_case_checks_answers_and_writes_json(tmp_path):
    report = tmp_path / "bench.json"
    done = igcore_command("bench", "--scale", "0.0005", "--json", str(report))
    assert done.returncode == 0, done.stderr
    assert "vs python" in done.stdout and "[1/" in done.stderr
    results = json.loads(report.read_text())
    assert results["meta"]["scale"] == 0.0005
    for case in results["cases"]:
        runners = {r["runner"]: r for r in case["results"]}
        assert "igcore python (reference)" in runners
        for result in case["results"]:
            assert result["error"] is None, (case["name"], result)
            assert result["best_s"] > 0


def test_bench_refuses_an_unknown_case():
    done = igcore_command("bench", "-k", "no-such-case")
    assert done.returncode == 2
    assert "no benchmark matches" in done.stderr


def test_bench_repeats_a_fast_call_within_rounds_and_reports_seconds_per_call():
    from igcore import bench

    calls = []
    times = bench.measure(calls.append, None, min_time=0.05, max_rounds=bench.MAX_ROUNDS)
    # Each round repeated the call, so there were many more calls than rounds...
    assert len(calls) > 10 * len(times) >= 30
    # ...and each figure is the time of one call, not of the round.
    assert max(times) < bench.ROUND_TIME


def test_bench_times_a_slow_call_once_per_round():
    import time

    from igcore import bench

    calls = []

    def slow(_):
        calls.append(None)
        time.sleep(0.002)

    times = bench.measure(slow, None, min_time=0.001, max_rounds=bench.MAX_ROUNDS)
    # One call finds the call slow enough to time alone; then at most three rounds, a call each.
    assert len(calls) == len(times) + 1 <= 4
    assert min(times) >= 0.002
