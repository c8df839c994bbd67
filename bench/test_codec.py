"""Id codec benchmarks: each igcore backend beside pickle, numpy tobytes + zlib, and msgpack."""

import pytest
from conftest import runner_params, time_runner


@pytest.mark.parametrize(("case", "runner"), runner_params("codec"))
def test_codec(benchmark, case, runner):
    time_runner(benchmark, case, runner)
