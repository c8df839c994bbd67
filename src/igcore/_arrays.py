"""Argument checks at the door: every public function converts its inputs here, once, so that kernels
can trust them and an error message reads the same whichever backend runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from numpy.typing import NDArray

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1


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
        raise ValueError(f"{name} must be 1-D, got an array of shape {array.shape}")
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers (int64), got dtype {array.dtype}")
    if array.dtype == np.int64 and array.dtype.isnative:
        return np.ascontiguousarray(array)
    if array.dtype.kind == "u" and array.size and int(array.max()) > INT64_MAX:
        raise OverflowError(f"{name} holds a value outside the int64 range: {int(array.max())}")
    return np.ascontiguousarray(array, dtype=np.int64)


def _object_ints(array: NDArray[Any], name: str) -> NDArray[np.int64]:
    # numpy falls back to dtype=object for Python ints beyond uint64, or for mixed contents.
    flat = array.ravel().tolist()
    for value in flat:
        if not isinstance(value, (int, np.integer)) or isinstance(value, (bool, np.bool_)):
            raise TypeError(f"{name} must hold integers (int64), got {type(value).__name__}")
        if not INT64_MIN <= int(value) <= INT64_MAX:
            raise OverflowError(f"{name} holds a value outside the int64 range: {int(value)}")
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
            raise ValueError(f"{name} must be 1-D, got an array of shape {array.shape}")
        return np.ascontiguousarray(array, dtype=np.float64)
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
