"""The keyword arguments of msgpack-python 1.x, checked once at the door.

Every backend receives the same ``PackOptions`` / ``UnpackOptions``, so an invalid argument raises the
same error, with the same message, whichever backend runs (the messages are msgpack-python's).
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any, Callable, NamedTuple, Optional, TypeVar

from .. import _messages
from .ext import ExtType

if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Protocol, SupportsIndex

    from _typeshed import SupportsRead
    from typing_extensions import Buffer

    class SizedPairs(Protocol):
        """What ``pack_map_pairs`` takes: a sized iterable of (key, value)."""

        def __len__(self) -> int: ...
        def __iter__(self) -> Iterator[tuple[Any, Any]]: ...


_T = TypeVar("_T")

DEFAULT_MAX_BUFFER_SIZE = 100 * 1024 * 1024
INT_MAX = 2**31 - 1  # max_buffer_size=0 means this, as in msgpack-python
SSIZE_MIN, SSIZE_MAX = -(2**63), 2**63 - 1


class PackOptions(NamedTuple):
    default: Optional[Callable[[Any], Any]]
    use_single_float: bool
    use_bin_type: bool
    strict_types: bool
    datetime: bool
    unicode_errors: Optional[str]  # None: strict


class UnpackOptions(NamedTuple):
    use_list: bool
    raw: bool
    timestamp: int  # 0 Timestamp, 1 float, 2 int nanoseconds, 3 datetime
    strict_map_key: bool
    object_hook: Optional[Callable[[dict[Any, Any]], Any]]
    object_pairs_hook: Optional[Callable[[list[tuple[Any, Any]]], Any]]
    list_hook: Optional[Callable[[Any], Any]]  # receives a list, or a tuple without use_list
    ext_hook: Callable[[int, bytes], Any]
    unicode_errors: Optional[str]  # None: strict
    # -1: the default (unpackb: from the input's length; Unpacker: from max_buffer_size)
    max_str_len: int
    max_bin_len: int
    max_array_len: int
    max_map_len: int
    max_ext_len: int


def pack_options(
    *,
    default: Callable[[Any], Any] | None = None,
    use_single_float: bool = False,
    autoreset: bool = True,
    use_bin_type: bool = True,
    strict_types: bool = False,
    datetime: bool = False,
    unicode_errors: str | None = None,
    buf_size: int | None = None,
) -> tuple[PackOptions, bool]:
    """The options of a Packer (``buf_size`` is accepted and unused), and its ``autoreset``."""
    if default is not None and not callable(default):
        raise TypeError(_messages.NOT_CALLABLE.format(name="default"))
    options = PackOptions(
        default,
        bool(use_single_float),
        bool(use_bin_type),
        bool(strict_types),
        bool(datetime),
        _error_handler(unicode_errors),
    )
    return options, bool(autoreset)


def unpack_options(
    *,
    object_hook: Callable[[dict[Any, Any]], Any] | None = None,
    list_hook: Callable[[Any], Any] | None = None,
    use_list: bool = True,
    raw: bool = False,
    timestamp: SupportsIndex = 0,
    strict_map_key: bool = True,
    unicode_errors: str | None = None,
    object_pairs_hook: Callable[[list[tuple[Any, Any]]], Any] | None = None,
    ext_hook: Callable[[int, bytes], Any] = ExtType,
    max_str_len: SupportsIndex = -1,
    max_bin_len: SupportsIndex = -1,
    max_array_len: SupportsIndex = -1,
    max_map_len: SupportsIndex = -1,
    max_ext_len: SupportsIndex = -1,
) -> UnpackOptions:
    """The options of unpackb (the keyword arguments it takes, with its defaults)."""
    if object_hook is not None and object_pairs_hook is not None:
        raise TypeError("object_pairs_hook and object_hook are mutually exclusive.")
    for name, hook in (("object_hook", object_hook), ("object_pairs_hook", object_pairs_hook)):
        if hook is not None and not callable(hook):
            raise TypeError(_messages.NOT_CALLABLE.format(name=name))
    if list_hook is not None and not callable(list_hook):
        raise TypeError(_messages.NOT_CALLABLE.format(name="list_hook"))
    if not callable(ext_hook):
        raise TypeError(_messages.NOT_CALLABLE.format(name="ext_hook"))
    timestamp = operator.index(timestamp)
    if not 0 <= timestamp <= 3:
        raise ValueError("timestamp must be 0..3")
    return UnpackOptions(
        bool(use_list),
        bool(raw),
        timestamp,
        bool(strict_map_key),
        object_hook,
        object_pairs_hook,
        list_hook,
        ext_hook,
        _error_handler(unicode_errors),
        _ssize(max_str_len, "max_str_len"),
        _ssize(max_bin_len, "max_bin_len"),
        _ssize(max_array_len, "max_array_len"),
        _ssize(max_map_len, "max_map_len"),
        _ssize(max_ext_len, "max_ext_len"),
    )


def unpacker_options(
    file_like: SupportsRead[bytes] | None = None,
    *,
    read_size: SupportsIndex = 0,
    max_buffer_size: SupportsIndex = DEFAULT_MAX_BUFFER_SIZE,
    **options: Any,
) -> tuple[Callable[[int], bytes] | None, int, int, UnpackOptions]:
    """An Unpacker's arguments: ``(file_like.read or None, read_size, max_buffer_size, UnpackOptions)``."""
    file_read = None
    if file_like is not None:
        file_read = file_like.read
        if not callable(file_read):
            raise TypeError(_messages.NOT_CALLABLE.format(name="`file_like.read`"))
    max_buffer_size = _ssize(max_buffer_size, "max_buffer_size")
    read_size = _ssize(read_size, "read_size")
    if max_buffer_size < 0 or read_size < 0:
        raise ValueError("read_size and max_buffer_size must be non-negative")
    max_buffer_size = max_buffer_size or INT_MAX
    if read_size > max_buffer_size:
        raise ValueError("read_size should be less or equal to max_buffer_size")
    read_size = read_size or min(max_buffer_size, 1024**2)
    return file_read, read_size, max_buffer_size, unpack_options(**options)


_MEMO_SIZE = 64
_pack_memo: dict[Any, tuple[PackOptions, bool]] = {}
_unpack_memo: dict[Any, UnpackOptions] = {}


def _memoized(memo: dict[Any, _T], read: Callable[..., _T], kwargs: dict[str, Any]) -> _T:
    """`read(**kwargs)`, remembered for the same keyword arguments: a service calls packb/unpackb with
    the same few option sets over and over, and the backends then also reuse what they read from the
    one options object. Unhashable arguments are read every time."""
    try:
        # Types too: 1 == True == 1.0 as keys, but a float where an int belongs must still raise.
        key = (tuple(kwargs.items()), tuple(map(type, kwargs.values())))
        found = memo.get(key)
    except TypeError:
        return read(**kwargs)
    if found is None:
        found = read(**kwargs)
        if len(memo) >= _MEMO_SIZE:
            memo.clear()
        memo[key] = found
    return found


def pack_options_for(kwargs: dict[str, Any]) -> tuple[PackOptions, bool]:
    return _memoized(_pack_memo, pack_options, kwargs)


def unpack_options_for(kwargs: dict[str, Any]) -> UnpackOptions:
    return _memoized(_unpack_memo, unpack_options, kwargs)


def byte_view(data: Buffer) -> bytes | memoryview:
    """`data` as bytes, or as a flat, C-contiguous memoryview of single bytes (copied if it is not
    contiguous); what every backend unpacks from."""
    if type(data) is bytes:
        return data
    view = memoryview(data)  # TypeError: a bytes-like object is required
    if view.itemsize != 1:
        raise BufferError("cannot unpack from multi-byte object")
    if not view.c_contiguous:
        view = memoryview(view.tobytes())
    return view.cast("B") if view.ndim != 1 or view.format != "B" else view


def _error_handler(name: object) -> str | None:
    if name is not None and not isinstance(name, str):
        raise TypeError(f"unicode_errors must be a str or None, not {type(name).__name__}")
    return None if name == "strict" else name


def _ssize(value: SupportsIndex, name: str) -> int:
    value = operator.index(value)
    if not SSIZE_MIN <= value <= SSIZE_MAX:
        raise OverflowError(f"{name}: Python int too large to convert to C ssize_t")
    return value


DEFAULT_PACK, _ = pack_options()
DEFAULT_UNPACK = unpack_options()
