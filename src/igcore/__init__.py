"""igcore: the hot paths of a social network's Python web tier, compiled.

Each hot path (counters, timeline, codec, graph, msgpack) has one public module here and three
backends behind it: Rust, Cython and a pure-Python reference that defines the behaviour. See
``backend_info()``.
"""

import importlib
from types import ModuleType

from ._backend import BACKENDS, HOT_PATHS, BackendUnavailable, backend_info, backends, use_backend
from ._version import __version__ as __version__  # the one version (see _version)


def __getattr__(name: str) -> ModuleType:
    # Hot-path modules load on first use, so that a process that only wants `igcore.msgpack` does not
    # pay for numpy and the other hot paths at import.
    if name in HOT_PATHS:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *HOT_PATHS])


__all__ = [
    "BACKENDS",
    "HOT_PATHS",
    "BackendUnavailable",
    "backend_info",
    "backends",
    "codec",
    "counters",
    "timeline",
    "graph",
    "msgpack",
    "use_backend",
]
