"""The kernel interface: each hot path's three modules export exactly the names of its stub.

The stub ``src/igcore/_kernels/<hot path>.pyi`` states the kernels the public layer calls; ``.ci/stubtest``
checks their signatures. Here, on every backend that is built: the module's public names are the stub's
(the reference's in its ``__all__``, the rest of it being their helpers), each class has
the stub's methods and no other public one, and the attributes the stub states can be read on an object.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from igcore import _backend

from .conftest import REQUIRED, SELECTED

ROOT = Path(__file__).resolve().parents[1]
STUBS = ROOT / "src" / "igcore" / "_kernels"


def public(name: str) -> bool:
    return not name.startswith("_")


class Stub:
    """The public names of one stub: module-level names, and per class its methods and attributes."""

    def __init__(self, hot_path: str):
        tree = ast.parse((STUBS / f"{hot_path}.pyi").read_text())
        self.names: set[str] = set()
        self.methods: dict[str, set[str]] = {}
        self.attributes: dict[str, set[str]] = {}
        for node in tree.body:
            if isinstance(node, ast.ClassDef) and public(node.name):
                self.names.add(node.name)
                self.methods[node.name] = {
                    n.name for n in node.body if isinstance(n, ast.FunctionDef) and public(n.name)
                }
                self.attributes[node.name] = {
                    n.target.id
                    for n in node.body
                    if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and public(n.target.id)
                }
            elif isinstance(node, ast.FunctionDef):
                self.names.add(node.name)
            elif isinstance(node, (ast.AnnAssign, ast.Assign)):
                targets = [node.target] if isinstance(node, ast.AnnAssign) else node.targets
                self.names.update(t.id for t in targets if isinstance(t, ast.Name))
        self.names = {n for n in self.names if public(n)}


def kernel_module(backend: str, hot_path: str) -> ModuleType:
    """The backend's module of `hot_path`; skips when it is not built (fails when it is required)."""
    module, reason = _backend._load(backend, hot_path)
    if module is None:
        message = f"backend {backend} does not serve {hot_path}: {reason}"
        if backend in REQUIRED:
            pytest.fail(message + " (required by IGCORE_REQUIRE_BACKENDS)")
        pytest.skip(message)
    return module


def full_name(backend: str, hot_path: str) -> str:
    return {
        "rust": f"igcore._rust.{hot_path}",
        "cython": f"igcore._cy_{hot_path}",
        "python": f"igcore._reference.{hot_path}",
    }[backend]


def exported(module: ModuleType, backend: str, hot_path: str) -> set[str]:
    """The public names a module defines: not those it imports (modules, names of other modules,
    ``from __future__`` features)."""
    own = {module.__name__, full_name(backend, hot_path)}  # a Rust submodule's __name__ is "timeline"
    names = set()
    for name in dir(module):
        value = getattr(module, name)
        if not public(name) or inspect.ismodule(value) or type(value).__module__ == "__future__":
            continue
        origin = getattr(value, "__module__", None)
        if isinstance(origin, str) and (inspect.isclass(value) or callable(value)) and origin not in own:
            continue  # imported: typing.Optional, igcore.msgpack.ext.ExtType, ...
        names.add(name)
    return names


BACKENDS = [b for b in _backend.BACKENDS if b in SELECTED]
CASES = [(b, h) for b in BACKENDS for h in _backend.HOT_PATHS]


def test_every_hot_path_has_a_stub():
    assert {p.stem for p in STUBS.glob("*.pyi")} == set(_backend.HOT_PATHS)
    for hot_path in _backend.HOT_PATHS:
        assert Stub(hot_path).names, hot_path


@pytest.mark.parametrize(("backend_name", "hot_path"), CASES)
def test_the_module_exports_the_names_of_the_stub(backend_name, hot_path):
    module = kernel_module(backend_name, hot_path)
    stub = Stub(hot_path)
    names = exported(module, backend_name, hot_path)
    if backend_name == "python":  # the reference names its kernels; the rest is their helpers
        names = set(module.__all__)
    assert sorted(names - stub.names) == [], (
        f"{full_name(backend_name, hot_path)} exports names the stub lacks"
    )
    assert sorted(stub.names - names) == [], f"{full_name(backend_name, hot_path)} lacks names of the stub"
    if hasattr(module, "__all__"):  # PyO3 and the reference list a module's names in __all__
        assert sorted(module.__all__) == sorted(stub.names)


@pytest.mark.parametrize(("backend_name", "hot_path"), CASES)
def test_each_class_has_the_methods_of_the_stub(backend_name, hot_path):
    module = kernel_module(backend_name, hot_path)
    stub = Stub(hot_path)
    for name, methods in stub.methods.items():
        cls = getattr(module, name, None)
        if cls is None:
            continue  # the names test above says so
        members = {m for m in dir(cls) if public(m)}
        # The stub's attributes may live on instances (the reference's plain classes): checked below.
        extra = members - methods - stub.attributes[name]
        assert sorted(extra) == [], f"{full_name(backend_name, hot_path)}.{name} has members the stub lacks"
        assert sorted(methods - members) == [], f"{full_name(backend_name, hot_path)}.{name} lacks methods"


# An object of each class whose stub states attributes (the reference sets them on the instance, where
# neither stubtest nor dir(class) sees them).
def _graph(module):
    return module.build(np.array([1], np.int64), np.array([2], np.int64), None)[0]


OBJECTS = {
    ("timeline", "Timeline"): lambda module: module.Timeline(8, False),
    ("timeline", "TimelineStore"): lambda module: module.TimelineStore(8, True),
    ("graph", "Graph"): _graph,
}


@pytest.mark.parametrize(("backend_name", "hot_path"), CASES)
def test_the_attributes_of_the_stub_are_on_objects(backend_name, hot_path):
    module = kernel_module(backend_name, hot_path)
    stub = Stub(hot_path)
    for name, attributes in stub.attributes.items():
        if not attributes:
            continue
        assert (hot_path, name) in OBJECTS, f"add a way to make a {name} to OBJECTS"
        obj = OBJECTS[(hot_path, name)](module)
        missing = sorted(a for a in attributes if not hasattr(obj, a))
        assert missing == [], f"a {full_name(backend_name, hot_path)}.{name} lacks attributes"


def test_the_reference_names_its_kernels():
    for hot_path in _backend.HOT_PATHS:
        module = kernel_module("python", hot_path)
        assert sorted(module.__all__) == sorted(Stub(hot_path).names), hot_path
        assert all(callable(getattr(module, name)) for name in module.__all__), hot_path
