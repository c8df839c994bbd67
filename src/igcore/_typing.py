"""Type aliases of the public signatures: what the argument checks in ``igcore._arrays`` accept.

Only for type checkers: the modules of the package import these names under ``TYPE_CHECKING``, so that
importing igcore does not import ``numpy.typing``. They evaluate on every supported Python all the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Union

import numpy as np
from numpy.typing import NDArray

# Ids, counts, times: a 1-D integer array (any integer dtype, converted to int64 once) or a sequence of
# ints. Floats, bools and strings are refused at run time.
IntArrayLike = Union[NDArray[np.integer[Any]], Sequence[Union[int, np.integer[Any]]]]

# The scores of feed entries: integers (kept as int64) or floating-point numbers (float64).
ScoreArrayLike = Union[
    NDArray[np.integer[Any]],
    NDArray[np.floating[Any]],
    Sequence[Union[float, np.integer[Any], np.floating[Any]]],
]

# Scores as the kernels hold and return them: int64 or float64, one kind per feed.
ScoreArray = Union[NDArray[np.int64], NDArray[np.float64]]

# A score as one number: an int for int64 feeds, a float for float64 feeds.
Score = Union[int, float]

# One integer (a user id, a key, a time): a Python int or a numpy integer scalar, not a bool.
IntLike = Union[int, np.integer[Any]]

# One HyperLogLog element: an int (added as its decimal string), a str (its UTF-8 bytes) or bytes.
HllElement = Union[int, np.integer[Any], str, bytes, bytearray, memoryview]

# One score given to a timeline: an int (int64 timelines; converted for float64 ones) or a float.
ScoreLike = Union[int, float, np.integer[Any], np.floating[Any]]
