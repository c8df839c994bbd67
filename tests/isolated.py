"""Running a case in a fresh interpreter, for cases that may crash the process.

A test of a memory error must not take the test session down with it, and must fail, not pass, when the
process dies: `run_isolated` runs the code under one backend in a child interpreter (the igcore that the
tests import, whatever is installed) and fails the test when the child dies of a signal, reports a
sanitizer error, or outlives its time limit.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import igcore

SANITIZER_ERROR = re.compile(r"==\d+==ERROR: \w+Sanitizer")
# The folder that holds the igcore package under test, so that the child imports the same one.
PACKAGE_ROOT = str(Path(igcore.__file__).resolve().parents[1])


def run_isolated(code: str, backend: str, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    """Runs `code` with IGCORE_BACKEND=`backend` in a new interpreter; its result, if it did not crash."""
    environment = {**os.environ, **env, "IGCORE_BACKEND": backend}
    environment["PYTHONPATH"] = os.pathsep.join(filter(None, [PACKAGE_ROOT, environment.get("PYTHONPATH")]))
    try:
        result = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            capture_output=True,
            text=True,
            env=environment,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"the case did not finish within {timeout} s on {backend}")
    if result.returncode < 0:
        name = signal.Signals(-result.returncode).name
        pytest.fail(f"the case died of {name} on {backend}:\n{result.stderr[-4000:]}")
    if SANITIZER_ERROR.search(result.stderr):  # a report, not a warning (a refused allocation warns)
        pytest.fail(f"the case hit a sanitizer error on {backend}:\n{result.stderr[-4000:]}")
    return result


def assert_ran_cleanly(result: subprocess.CompletedProcess) -> str:
    """The child's standard output, after checking that it exited 0."""
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout
