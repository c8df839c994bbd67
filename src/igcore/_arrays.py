"""Argument checks at the door: every public function converts its inputs here, once, so that kernels
can trust them and an error message reads the same whichever backend runs and whichever hot path.

The rule for integers, the same in every hot path:
- An id, a timestamp, a count or a limit is an int64: an ``int`` or a numpy integer (never a bool or a
  float: ``TypeError``); outside the int64 range it raises ``OverflowError``.
- A count or a limit below its smallest meaningful value raises ``ValueError`` ("must be at least").
- A limit above what there is takes all there is (a page of ``limit=10**18`` holds the whole feed), up to
  int64; only a size with a stated maximum (e.g. ``WindowedCounter``'s buckets) raises ``ValueError``
  above it ("must be at most").
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, Optional

import numpy as np

from . import _messages

if TYPE_CHECKING:
    from numpy.typing import NDArray

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


def int64(value: object, name: str) -> int:
    """One int64 value (an id, a timestamp, a score) as a Python int."""
    if type(value) is int and INT64_MIN <= value <= INT64_MAX:  # the common case, quickly
        return value
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(_messages.BOOL_NOT_INT.format(name=name))
    try:
        number = operator.index(value)  # type: ignore[arg-type]  # any object: a non-integer raises below
    except TypeError:
        raise TypeError(_messages.NOT_AN_INT.format(name=name, type=type(value).__name__)) from None
    if not INT64_MIN <= number <= INT64_MAX:
        raise OverflowError(_messages.OUTSIDE_INT64.format(name=name, value=number))
    return number


def count(value: object, name: str, smallest: int = 0, largest: int = INT64_MAX) -> int:
    """A count, limit, size or offset: an int64 of at least `smallest` (and at most `largest`, when a
    size has a stated maximum)."""
    if type(value) is int and smallest <= value <= largest:  # the common case, quickly
        return value
    number = int64(value, name)
    if number < smallest:
        raise ValueError(_messages.BELOW_MINIMUM.format(name=name, minimum=smallest, value=number))
    if number > largest:
        raise ValueError(_messages.ABOVE_MAXIMUM.format(name=name, maximum=largest, value=number))
    return number


def optional_count(value: object, name: str, smallest: int = 0) -> Optional[int]:
    """``count``, or None for None (no limit)."""
    return None if value is None else count(value, name, smallest)


def int64_array(values: object, name: str) -> NDArray[np.int64]:
    """`values` as a 1-D, C-contiguous, native int64 array.

    A native int64 contiguous array comes back as it is (no copy); other integer dtypes are converted
    once; plain sequences of ints are accepted. Floats, bools, strings, objects and other shapes raise.
    """
    if isinstance(values, np.ndarray):
        array = values
    elif isinstance(values, (int, float, str, bytes, np.generic)) or values is None:
        raise TypeError(f"{name} must be a 1-D array or sequence of ints, not {type(values).__name__}")
    else:
        array = np.asarray(values)
        if array.size == 0 and array.ndim == 1:
            return np.empty(0, dtype=np.int64)
        if array.dtype.kind not in "iu":
            # numpy turns ints beyond int64 into float64 or object; look at each element to say which.
            array = _object_ints(np.array(values, dtype=object), name)
    if array.ndim != 1:
        raise ValueError(_messages.NOT_ONE_D.format(name=name, shape=array.shape))
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers (int64), got dtype {array.dtype}")
    if array.dtype == np.int64 and array.dtype.isnative:
        return _aligned(np.ascontiguousarray(array))
    if array.dtype.kind == "u" and array.size and int(array.max()) > INT64_MAX:
        raise OverflowError(_messages.ARRAY_VALUE_OUTSIDE_INT64.format(name=name, value=int(array.max())))
    return np.ascontiguousarray(array, dtype=np.int64)


def _aligned(array: NDArray[Any]) -> NDArray[Any]:
    """`array`, or an aligned copy of it: the kernels read elements in place, which needs them aligned
    (an array over a buffer at an odd offset is not)."""
    return array if array.flags.aligned else array.copy()


def _object_ints(array: NDArray[Any], name: str) -> NDArray[np.int64]:
    # numpy falls back to dtype=object for Python ints beyond uint64, or for mixed contents.
    flat = array.ravel().tolist()
    for value in flat:
        if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must hold integers (int64), got {type(value).__name__}")
        if not INT64_MIN <= int(value) <= INT64_MAX:
            raise OverflowError(_messages.ARRAY_VALUE_OUTSIDE_INT64.format(name=name, value=int(value)))
    return np.array(flat, dtype=np.int64).reshape(array.shape)


def score_array(values: object, name: str) -> NDArray[np.int64] | NDArray[np.float64]:
    """`values` as a 1-D, C-contiguous, native int64 or float64 array: the scores of feed entries.

    Integers become int64 (as ``int64_array`` does); floating-point numbers become float64. Contiguous
    int64 and float64 arrays come back as they are (no copy). Bools, strings and objects raise.
    """
    array = values
    if not isinstance(values, np.ndarray) and isinstance(values, (list, tuple)):
        array = np.asarray(values)  # a list of floats (or of ints and floats) is a float64 array
    if isinstance(array, np.ndarray) and array.dtype.kind == "f":
        if array.ndim != 1:
            raise ValueError(_messages.NOT_ONE_D.format(name=name, shape=array.shape))
        return _aligned(np.ascontiguousarray(array, dtype=np.float64))
    return int64_array(values, name)


def byte_string(data: Any, name: str) -> bytes:  # anything: memoryview() is the check
    """`data` as ``bytes``: bytes as they are; bytearray, memoryview or another buffer copied once."""
    if type(data) is bytes:
        return data
    if isinstance(data, str):
        raise TypeError(f"{name} must be bytes or a buffer, not str")
    try:
        view = memoryview(data)
    except TypeError:
        raise TypeError(f"{name} must be bytes or a buffer, not {type(data).__name__}") from None
    return view.tobytes()
