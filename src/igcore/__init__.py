"""igcore: the hot paths of a social network's Python web tier, compiled.

Each hot path (counters, timeline, codec, graph, msgpack) has one public module here and three
backends behind it: Rust, Cython and a pure-Python reference that defines the behaviour. See
``backend_info()``.
"""

__version__ = "0.1.0"

from . import codec, counters, graph, msgpack, timeline  # noqa: E402
from ._backend import BACKENDS, HOT_PATHS, BackendUnavailable, backend_info, backends, use_backend  # noqa: E402

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
