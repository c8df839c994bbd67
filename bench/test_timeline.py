"""Timeline benchmarks: each igcore backend beside heapq, numpy, sortedcontainers, pickle and msgpack."""

import pytest
from conftest import runner_params, time_runner


@pytest.mark.parametrize(("case", "runner"), runner_params("timeline"))
def test_timeline(benchmark, case, runner):
    time_runner(benchmark, case, runner)
