"""msgpack benchmarks: each igcore backend beside msgpack-python, ormsgpack, msgspec and pickle."""

import pytest
from conftest import runner_params, time_runner


@pytest.mark.parametrize(("case", "runner"), runner_params("msgpack"))
def test_msgpack(benchmark, case, runner):
    time_runner(benchmark, case, runner)
