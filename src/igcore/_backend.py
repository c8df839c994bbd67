"""Choosing a backend per hot path.

Every hot path exists three times: ``rust`` (``igcore._rust.<hot path>``), ``cython``
(``igcore._cy_<hot path>``) and ``python`` (``igcore._reference.<hot path>``, always present).
``IGCORE_BACKEND=auto|rust|cython|python`` picks one for the process; ``use_backend`` picks one for a
block of code (per thread and per asyncio task, as it is a context variable). ``auto`` takes, per hot
path, the first of rust, cython, python that is built.
"""

from __future__ import annotations

import importlib
import json
import os
from contextlib import contextmanager
from contextvars import ContextVar
from types import ModuleType
from typing import Any, Callable, Iterator

from ._version import __version__

BACKENDS = ("rust", "cython", "python")
CHOICES = ("auto", *BACKENDS)
HOT_PATHS = ("counters", "timeline", "codec", "graph", "msgpack")


class BackendUnavailable(ImportError):
    """A backend was asked for by name but is not built (or does not serve that hot path)."""


def _check_choice(name: str, source: str) -> str:
    choice = name.strip().lower()
    if choice not in CHOICES:
        raise ValueError(
            f"{source}={name!r} is not a backend; choose one of {', '.join(CHOICES)} "
            f"(available here: {', '.join(backends())})"
        )
    return choice


# (backend, hot path) -> (kernel module, None) or (None, why it is unavailable)
_loaded: dict[tuple[str, str], tuple[ModuleType | None, str | None]] = {}


# kernel module -> the backend it belongs to, as loaded here (never worked out from module names)
_backend_of: dict[ModuleType, str] = {}


def _load(backend: str, hot_path: str) -> tuple[ModuleType | None, str | None]:
    key = (backend, hot_path)
    if key not in _loaded:
        _loaded[key] = _import_kernels(backend, hot_path)
        module = _loaded[key][0]
        if module is not None:
            _backend_of[module] = backend
    return _loaded[key]


def _not_built(module: str, exc: ImportError) -> str:
    """Why `module` cannot be imported: the reason the build recorded when it skipped it, if any."""
    try:
        with open(os.path.join(os.path.dirname(__file__), "_build.json")) as report:
            skipped = json.load(report).get("skipped", {})
    except (OSError, ValueError):
        skipped = {}
    if module in skipped:
        return f"not built: {skipped[module]}"
    return f"not built ({exc})"


def _import_kernels(backend: str, hot_path: str) -> tuple[ModuleType | None, str | None]:
    if backend == "python":
        return importlib.import_module(f"igcore._reference.{hot_path}"), None
    if backend == "cython":
        try:
            return importlib.import_module(f"igcore._cy_{hot_path}"), None
        except ImportError as exc:
            return None, _not_built(f"igcore._cy_{hot_path}", exc)
    try:
        from . import _rust
    except ImportError as exc:
        return None, _not_built("igcore._rust", exc)
    # mypy cannot see the compiled igcore._rust (its interface is in igcore/_kernels/*.pyi, checked by
    # .ci/stubtest) and finds it through the package's __getattr__, as a bare module without __version__.
    if _rust.__version__ != __version__:  # type: ignore[attr-defined]
        return None, f"stale build: igcore._rust is {_rust.__version__}, the package is {__version__}"  # type: ignore[attr-defined]
    kernels = getattr(_rust, hot_path, None)
    if kernels is None:
        return None, f"built without the {hot_path} kernels"
    return kernels, None


def kernel_lookup(hot_path: str) -> Callable[[], ModuleType]:
    """A function that answers ``kernels(hot_path)``, for a hot path whose calls are so short that the
    lookup shows (msgpack's packb of a small message): it remembers the answer per requested name.

    Defined before this module picks its default backend: loading a backend may import a public module
    that asks for its lookup while this module is still loading."""
    serving: dict[str, ModuleType] = {}

    def lookup() -> ModuleType:
        requested = _requested.get()
        try:
            return serving[requested]
        except KeyError:
            module = serving[requested] = kernels(hot_path)
            return module

    return lookup


def available(hot_path: str) -> list[str]:
    """The backends that serve `hot_path`, fastest first."""
    return [b for b in BACKENDS if _load(b, hot_path)[0] is not None]


def backends() -> list[str]:
    """The backends that serve every hot path, fastest first (``python`` always)."""
    return [b for b in BACKENDS if all(_load(b, h)[0] is not None for h in HOT_PATHS)]


_from_environment = _check_choice(os.environ.get("IGCORE_BACKEND", "auto") or "auto", "IGCORE_BACKEND")
_requested: ContextVar[str] = ContextVar("igcore_backend", default=_from_environment)
# (requested name, hot path) -> the kernel module that serves it
_serving: dict[tuple[str, str], ModuleType] = {}


def kernels(hot_path: str) -> ModuleType:
    """The kernel module serving `hot_path` under the backend requested here and now."""
    requested = _requested.get()
    try:
        return _serving[(requested, hot_path)]
    except KeyError:
        pass
    module: ModuleType | None
    if requested == "auto":
        # The first backend that loads, and only it: the ones after it are not imported (python always
        # loads, so there is one).
        module = next(m for m in (_load(b, hot_path)[0] for b in BACKENDS) if m)
    else:
        module, reason = _load(requested, hot_path)
        if module is None:
            raise BackendUnavailable(
                f"backend {requested!r} cannot serve {hot_path}: {reason}; "
                f"available for {hot_path}: {', '.join(available(hot_path))}"
            )
    _serving[(requested, hot_path)] = module
    return module


def backend_name(module: ModuleType) -> str:
    """Which backend a kernel module (one that ``kernels`` returned) belongs to."""
    return _backend_of[module]


def current(hot_path: str) -> str:
    """The name of the backend that serves `hot_path` here and now."""
    return backend_name(kernels(hot_path))


def backend_info() -> dict[str, Any]:
    """Which backend serves each hot path, which others could, and why any other cannot."""
    requested = _requested.get()
    hot_paths = {}
    for hot_path in HOT_PATHS:
        unavailable = {b: _load(b, hot_path)[1] for b in BACKENDS if _load(b, hot_path)[0] is None}
        try:
            serving, error = current(hot_path), None
        except BackendUnavailable as exc:
            serving, error = None, str(exc)
        hot_paths[hot_path] = {
            "backend": serving,
            "available": available(hot_path),
            "unavailable": unavailable,
            **({"error": error} if error else {}),
        }
    return {"requested": requested, "version": __version__, "hot_paths": hot_paths}


@contextmanager
def use_backend(name: str) -> Iterator[str]:
    """Serve every hot path from backend `name` inside the ``with`` block (this thread/task only).

    Raises ``ValueError`` for an unknown name and ``BackendUnavailable`` when the backend is not built
    for any hot path; a hot path it does not serve raises ``BackendUnavailable`` when it is used.
    """
    choice = _check_choice(name, "backend")
    if choice != "auto" and not any(_load(choice, h)[0] is not None for h in HOT_PATHS):
        reasons = "; ".join(f"{h}: {_load(choice, h)[1]}" for h in HOT_PATHS)
        raise BackendUnavailable(
            f"backend {choice!r} is not available ({reasons}); available: {', '.join(backends())}"
        )
    token = _requested.set(choice)
    try:
        yield choice
    finally:
        _requested.reset(token)
