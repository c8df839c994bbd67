"""pytest-benchmark runs of the cases registered in igcore.bench (the same inputs as `igcore bench`).

    python -m pytest bench/ --benchmark-only                  # full size
    IGCORE_BENCH_SCALE=0.1 python -m pytest bench/ ...        # a tenth of it

Benchmarks are grouped by case, so pytest-benchmark's table puts each backend beside the peers.
"""

from __future__ import annotations

import os

import pytest

from igcore import bench

SCALE = float(os.environ.get("IGCORE_BENCH_SCALE", bench.FULL))


def runner_params(hot_path: str):
    """(case, runner) pairs of one hot path, as pytest parameters named case[runner]."""
    return [
        pytest.param(case, runner, id=f"{case.name}[{runner.label}]")
        for case in bench.all_cases()
        if case.hot_path == hot_path
        for runner in case.runners()
    ]


_inputs: dict[str, object] = {}


def inputs_of(case: bench.Case):
    if case.name not in _inputs:
        _inputs.clear()  # one case's inputs at a time: they can be large
        _inputs[case.name] = case.make_inputs(SCALE)
    return _inputs[case.name]


def time_runner(benchmark, case: bench.Case, runner: bench.Runner):
    benchmark.group = f"{case.name}: {case.title(SCALE)}"
    data = inputs_of(case)
    with runner.context():
        if runner.slow:
            benchmark.pedantic(runner.call, args=(data,), rounds=2, iterations=1, warmup_rounds=0)
        else:
            benchmark.pedantic(runner.call, args=(data,), rounds=10, iterations=1, warmup_rounds=1)
