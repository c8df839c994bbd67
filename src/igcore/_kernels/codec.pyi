"""The codec kernels: what ``igcore.codec`` calls on ``_backend.kernels("codec")``.

This stub is the contract of the hot path, stated once. Each of its three modules implements it, with
these names and signatures and no other public name (the reference's own building blocks aside, listed
in .ci/stubtest-allowlist.txt): ``igcore._rust.codec`` (Rust), ``igcore._cy_codec`` (Cython) and
``igcore._reference.codec`` (pure Python, which defines the wire format byte for byte and every error).
``.ci/stubtest`` checks each module against this file, and tests/test_kernel_interface.py checks that
the three export the same names. A contributor adding or changing a kernel changes this file, the
reference and both compiled backends together.

Kernels receive arguments already checked and converted by the public layer: 1-D C-contiguous native
int64 arrays (float64 too for scores), of one length, and ``bytes`` to decode.
"""

from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

_Ids: TypeAlias = NDArray[np.int64]
_Scores: TypeAlias = NDArray[np.int64] | NDArray[np.float64]

def encode_ids(ids: _Ids) -> bytes: ...
def decode_ids(data: bytes) -> _Ids: ...
def encode_entries(scores: _Scores, post_ids: _Ids, author_ids: _Ids) -> bytes: ...

# Scores come back as float64 when the encoding says so, else int64.
def decode_entries(data: bytes) -> tuple[_Scores, _Ids, _Ids]: ...
