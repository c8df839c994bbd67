"""The igcore command: info, and a bench run at a tiny scale (the real figures come from `igcore bench`)."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

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


def test_bench_compares_each_runner_with_an_earlier_run(tmp_path):
    baseline = tmp_path / "baseline.json"
    done = igcore_command("bench", "--scale", "0.0005", "-k", "codec.encode_ids", "--json", str(baseline))
    assert done.returncode == 0, done.stderr
    taken = json.loads(baseline.read_text())
    case = taken["cases"][0]
    faster, slower, gone, *_ = case["results"]
    faster["best_s"] *= 100  # then 100 times slower than now: now is faster
    slower["best_s"] /= 100
    case["results"].remove(gone)  # a runner the earlier run lacked
    case["results"].append({**slower, "runner": "a peer no longer installed"})
    baseline.write_text(json.dumps(taken))
    done = igcore_command("bench", "--scale", "0.0005", "-k", case["name"], "--compare", str(baseline))
    assert done.returncode == 0, done.stderr
    table = done.stdout[done.stdout.index("compared with the run of") :]
    rows = {line.split("  ")[2].strip(): line for line in table.splitlines()[2:]}
    assert rows[faster["runner"]].endswith("faster") and rows[slower["runner"]].endswith("slower")
    assert rows[gone["runner"]].endswith("new")
    assert rows["a peer no longer installed"].endswith("not run now")


@pytest.mark.parametrize(
    ("content", "said"),
    [
        (None, "No such file"),
        ("{not json", "not the JSON of igcore bench --json"),
        ('{"meta": {"scale": 0.5}, "cases": []}', "taken at scale 0.5, this run at 0.0005"),
    ],
)
def test_bench_refuses_a_baseline_it_cannot_compare_with(tmp_path, content, said):
    baseline = tmp_path / "baseline.json"
    if content is not None:
        baseline.write_text(content)
    done = igcore_command("bench", "--scale", "0.0005", "--compare", str(baseline))
    assert done.returncode == 2 and said in done.stderr, done.stderr
    assert "[1/" not in done.stderr  # refused before anything ran


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


def test_version_prints_the_package_version():
    done = igcore_command("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"igcore {igcore.__version__}"


def test_info_json_is_the_backend_report_and_the_environment():
    done = igcore_command("info", "--json")
    assert done.returncode == 0, done.stderr
    details = json.loads(done.stdout)  # stdout holds the JSON and nothing else
    assert details["version"] == igcore.__version__
    assert details["backends"] == igcore.backends()
    assert details["python"] == platform.python_version()
    assert set(details["hot_paths"]) == set(igcore.HOT_PATHS)
    for state in details["hot_paths"].values():
        assert state["backend"] in igcore.BACKENDS and state["backend"] in state["available"]


HIDE_RUST = "import sys; sys.modules['igcore._rust'] = None\n"  # an import of it fails: rust is not built


def run_cli_without_rust(*args: str, backend: str) -> subprocess.CompletedProcess:
    code = HIDE_RUST + f"from igcore.cli import main; sys.exit(main({list(args)!r}))"
    return subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "IGCORE_BACKEND": backend},
    )


def test_info_fails_when_the_named_backend_cannot_serve_every_hot_path():
    done = run_cli_without_rust("info", backend="rust")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "served by none" in done.stdout  # the table is still printed
    for hot_path in igcore.HOT_PATHS:
        assert f"backend 'rust' cannot serve {hot_path}" in done.stderr
    as_json = run_cli_without_rust("info", "--json", backend="rust")
    assert as_json.returncode == 1
    assert all(s["backend"] is None for s in json.loads(as_json.stdout)["hot_paths"].values())


def test_info_succeeds_under_auto_when_a_compiled_backend_is_missing():
    done = run_cli_without_rust("info", backend="auto")
    assert done.returncode == 0, done.stderr
    assert "rust: not built" in done.stdout


def test_bench_json_to_stdout_leaves_stdout_to_the_json():
    done = igcore_command("bench", "--scale", "0.0005", "-k", "codec.encode_ids", "--json", "-")
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert [c["name"] for c in results["cases"]] and all(
        "codec.encode_ids" in c["name"] for c in results["cases"]
    )
    assert "vs python" in done.stderr  # the table went to stderr


def test_help_states_the_exit_codes():
    done = igcore_command("--help")
    assert done.returncode == 0
    assert "exit codes:" in done.stdout and "  2    cannot run" in done.stdout
