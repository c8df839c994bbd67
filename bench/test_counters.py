"""Counters benchmarks: each igcore backend beside collections.Counter and numpy."""

import pytest
from conftest import runner_params, time_runner


@pytest.mark.parametrize(("case", "runner"), runner_params("counters"))
def test_counters(benchmark, case, runner):
    time_runner(benchmark, case, runner)
