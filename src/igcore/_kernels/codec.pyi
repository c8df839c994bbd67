"""The codec kernels: what ``igcore.codec`` calls on ``_backend.kernels("codec")``. The reference defines
the wire format byte for byte and every error; the kernels decode ``bytes``. The rules every stub follows
are in README.md beside it.
"""

from typing import TypeAlias

import numpy as np
from numpy.typing import NDArray

__all__ = ["decode_entries", "decode_ids", "encode_entries", "encode_ids"]

_Ids: TypeAlias = NDArray[np.int64]
_Scores: TypeAlias = NDArray[np.int64] | NDArray[np.float64]

def encode_ids(ids: _Ids) -> bytes: ...
def decode_ids(data: bytes) -> _Ids: ...
def encode_entries(scores: _Scores, post_ids: _Ids, author_ids: _Ids) -> bytes: ...

# Scores come back as float64 when the encoding says so, else int64.
def decode_entries(data: bytes) -> tuple[_Scores, _Ids, _Ids]: ...
