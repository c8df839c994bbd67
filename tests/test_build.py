"""The build: without a Rust toolchain the package still builds (Cython and Python) and records why Rust
is missing; with IGCORE_REQUIRE_NATIVE=1 the same build fails. These build a wheel from a copy of the
source tree, so they run only from a checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from .conftest import SANITIZER

ROOT = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (ROOT / "setup.py").exists(), reason="needs the source tree (a checkout)"),
    # The wheels built here hold extensions of their own, built without the sanitizer: under one, these
    # tests would check nothing that the sanitizer sees, and they are the slowest of the suite.
    pytest.mark.skipif(bool(SANITIZER), reason="builds its own wheels, none of them sanitized"),
]


def build_wheel_without_cargo(tmp_path: Path, **env: str) -> tuple[subprocess.CompletedProcess, Path]:
    source = tmp_path / "src"
    shutil.copytree(
        ROOT,
        source,
        ignore=shutil.ignore_patterns("target", "build", "dist", ".git", "*.so", "*.egg-info", "_build.json"),
    )
    # A PATH with Python but without cargo: the machine of a user with no Rust toolchain.
    no_rust = tmp_path / "bin"
    no_rust.mkdir()
    (no_rust / "python").symlink_to(sys.executable)
    path = os.pathsep.join([str(no_rust), "/usr/bin", "/bin"])
    out = tmp_path / "wheels"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), str(source)],
        capture_output=True,
        text=True,
        env={**os.environ, "PATH": path, "IGCORE_REQUIRE_NATIVE": "0", **env},
        timeout=900,
    )
    return done, out


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None, reason="needs a C compiler")
def test_without_rust_the_wheel_has_cython_and_python_and_says_why_rust_is_missing(tmp_path):
    done, out = build_wheel_without_cargo(tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = out.glob("igcore-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        report = json.loads(archive.read("igcore/_build.json"))
    assert any(n.startswith("igcore/_cy_counters") for n in names)
    assert not any(n.startswith("igcore/_rust") for n in names)
    assert "no Rust toolchain found" in report["skipped"]["igcore._rust"]


def test_without_rust_a_required_native_build_fails(tmp_path):
    # Rust alone: the failure to see is the missing toolchain, on a machine with or without a C compiler.
    done, _ = build_wheel_without_cargo(tmp_path, IGCORE_REQUIRE_NATIVE="1", IGCORE_BUILD="rust")
    assert done.returncode != 0
    assert "no Rust toolchain found" in done.stdout + done.stderr
