"""One policy for the GIL in both compiled backends: the sizes from which long work runs without the GIL
are named once per language (rust/igcore-py/src/guard.rs, cython/_cy_guard.pxd), and the two agree."""

from __future__ import annotations

import importlib

import pytest

from .conftest import REQUIRED


def _thresholds(module_name: str) -> dict:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        backend = "rust" if "_rust" in module_name else "cython"
        if backend in REQUIRED:
            pytest.fail(f"{module_name} is not built (required by IGCORE_REQUIRE_BACKENDS): {exc}")
        pytest.skip(f"{module_name} is not built")
    return dict(module._GIL_RELEASE_ABOVE)


def test_rust_and_cython_release_the_gil_from_the_same_sizes():
    rust = _thresholds("igcore._rust")
    assert rust and all(type(size) is int and size > 0 for size in rust.values())
    for cython_module in ("igcore._cy_timeline", "igcore._cy_codec"):
        assert _thresholds(cython_module) == rust, cython_module


def test_the_names_say_the_hot_path_and_what_is_counted():
    for name in _thresholds("igcore._rust"):
        hot_path, _, counted = name.partition("_")
        assert hot_path in ("timeline", "codec", "graph", "counters", "msgpack") and counted, name
