"""Follower-graph benchmarks: each igcore backend beside networkx, rustworkx, igraph and scipy.sparse."""

import pytest
from conftest import runner_params, time_runner


@pytest.mark.parametrize(("case", "runner"), runner_params("graph"))
def test_graph(benchmark, case, runner):
    time_runner(benchmark, case, runner)
