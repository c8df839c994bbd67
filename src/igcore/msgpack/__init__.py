"""msgpack: a drop-in for msgpack-python 1.x (``import igcore.msgpack as msgpack``).

The same functions, classes, keyword arguments, defaults and exceptions, and the same bytes out: the
contract is in ``igcore._reference.msgpack``. Served by the backend chosen in ``igcore._backend``
(``backend_info()["hot_paths"]["msgpack"]``); a ``Packer`` or ``Unpacker`` keeps the backend it was
made with.
"""

from __future__ import annotations

import operator
from typing import TYPE_CHECKING, Any

from .. import _backend, _messages
from ._options import (
    DEFAULT_PACK,
    DEFAULT_UNPACK,
    byte_view,
    pack_options,
    pack_options_for,
    unpack_options_for,
    unpacker_options,
)
from .exceptions import (
    BufferFull,
    ExtraData,
    FormatError,
    OutOfData,
    PackException,
    PackOverflowError,
    PackValueError,
    StackError,
    UnpackException,
    UnpackValueError,
)
from .ext import ExtType, Timestamp

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import SupportsIndex

    from _typeshed import SupportsRead, SupportsWrite
    from typing_extensions import Buffer

    from ._options import SizedPairs

# The msgpack-python release whose API and behaviour this module follows (code that checks
# `msgpack.version` keeps working).
version = (1, 2, 4)

__all__ = [
    "BufferFull",
    "ExtType",
    "ExtraData",
    "FormatError",
    "OutOfData",
    "PackException",
    "PackOverflowError",
    "PackValueError",
    "Packer",
    "StackError",
    "Timestamp",
    "UnpackException",
    "UnpackValueError",
    "Unpacker",
    "dump",
    "dumps",
    "load",
    "loads",
    "pack",
    "packb",
    "unpack",
    "unpackb",
    "version",
]


# The kernels serving msgpack here and now: packb and unpackb of small messages are where a few hundred
# nanoseconds of lookup show.
_kernels = _backend.kernel_lookup("msgpack")


def packb(o: object, **kwargs: Any) -> bytes:
    """`o` packed into bytes. The keyword arguments are ``Packer``'s."""
    if not kwargs:
        return _kernels().packb(o, DEFAULT_PACK)
    return _kernels().packb(o, pack_options_for(kwargs)[0])


def unpackb(packed: Buffer, **kwargs: Any) -> Any:
    """The object packed in `packed` (any bytes-like object).

    Raises ``ExtraData`` when bytes follow the object, ``ValueError`` when the input is incomplete,
    ``FormatError`` for a byte that starts no msgpack type and ``StackError`` for nesting deeper than
    1024; other exceptions (``UnicodeDecodeError``, ``TypeError`` for an unhashable key, a hook's own)
    pass through. The keyword arguments are ``Unpacker``'s but ``read_size`` and ``max_buffer_size``;
    the ``max_*_len`` limits default to the length of `packed`.
    """
    options = unpack_options_for(kwargs) if kwargs else DEFAULT_UNPACK
    if type(packed) is not bytes:
        packed = byte_view(packed)
    return _kernels().unpackb(packed, options)


def pack(o: object, stream: SupportsWrite[bytes], **kwargs: Any) -> None:
    """Writes `o`, packed, to `stream` (anything with ``write``)."""
    stream.write(packb(o, **kwargs))


def unpack(stream: SupportsRead[bytes], **kwargs: Any) -> Any:
    """The object packed in the whole of `stream` (anything with ``read``); see ``unpackb``."""
    return unpackb(stream.read(), **kwargs)


# The names of marshal, pickle and json.
dumps, loads, dump, load = packb, unpackb, pack, unpack


class Packer:
    """Packs objects into msgpack bytes.

    - ``default``: called with an object of a type msgpack cannot hold; what it returns is packed.
    - ``use_single_float``: floats as float32 (default float64).
    - ``autoreset`` (default True): each ``pack`` returns its bytes. False: they accumulate; read them
      with ``bytes()`` / ``getbuffer()`` and empty the buffer with ``reset()``.
    - ``use_bin_type`` (default True): bytes as bin, and str8 for strings of 32..255 bytes. False: the
      old spec, where bytes are packed as str.
    - ``strict_types``: only exact types (no subclasses; a tuple is no list); others go to ``default``.
    - ``datetime``: a timezone-aware ``datetime.datetime`` as a msgpack timestamp.
    - ``unicode_errors``: the error handler for encoding str (default strict).
    - ``buf_size``: accepted for compatibility; the buffer grows as needed.

    One call at a time: a call made while another call on the same packer is in progress (another
    thread's, or one from a ``default`` that the first runs) raises ``RuntimeError``.
    """

    def __init__(
        self,
        *,
        default: Callable[[Any], Any] | None = None,
        use_single_float: bool = False,
        autoreset: bool = True,
        use_bin_type: bool = True,
        strict_types: bool = False,
        datetime: bool = False,
        unicode_errors: str | None = None,
        buf_size: int | None = None,
    ) -> None:
        options, autoreset = pack_options(
            default=default,
            use_single_float=use_single_float,
            autoreset=autoreset,
            use_bin_type=use_bin_type,
            strict_types=strict_types,
            datetime=datetime,
            unicode_errors=unicode_errors,
            buf_size=buf_size,
        )
        self._packer = _kernels().Packer(options, autoreset)

    def pack(self, obj: object) -> bytes | None:
        """Packs `obj`: returns its bytes with ``autoreset``, else appends them to the buffer."""
        return self._packer.pack(obj)

    def pack_map_pairs(self, pairs: SizedPairs) -> bytes | None:
        """Packs a map from `pairs`, a sized iterable of (key, value): keeps their order and repeats."""
        return self._packer.pack_map_pairs(pairs)

    def pack_array_header(self, size: SupportsIndex) -> bytes | None:
        """Packs the header of an array of `size` items (0 <= size < 2**32); pack the items next."""
        return self._packer.pack_array_header(_size(size))

    def pack_map_header(self, size: SupportsIndex) -> bytes | None:
        """Packs the header of a map of `size` pairs (0 <= size < 2**32); pack keys and values next."""
        return self._packer.pack_map_header(_size(size))

    def pack_ext_type(self, typecode: int, data: Buffer) -> bytes | None:
        """Packs an ext of type `typecode` (an int in -128..127) holding `data` (bytes-like)."""
        if not isinstance(typecode, int):
            raise TypeError(f"typecode must be an int, not {type(typecode).__name__}")
        return self._packer.pack_ext_type(typecode, byte_view(data))

    def bytes(self) -> bytes:
        """The bytes in the buffer (with ``autoreset=False``)."""
        return self._packer.bytes()

    def getbuffer(self) -> memoryview:
        """A read-only view of the bytes in the buffer."""
        return memoryview(self._packer.bytes())

    def reset(self) -> None:
        """Empties the buffer."""
        self._packer.reset()


def _size(size: SupportsIndex) -> int:
    size = operator.index(size)
    if not -(2**63) <= size < 2**63:
        raise OverflowError(_messages.INT_TOO_LARGE_FOR_C_LONG)
    return size


class Unpacker:
    """Unpacks a stream of msgpack objects, fed in pieces or read from a file.

    ``Unpacker(file_like=None, *, read_size=0, use_list=True, raw=False, timestamp=0,
    strict_map_key=True, object_hook=None, object_pairs_hook=None, list_hook=None,
    unicode_errors=None, max_buffer_size=100 MiB, ext_hook=ExtType, max_str_len=-1, max_bin_len=-1,
    max_array_len=-1, max_map_len=-1, max_ext_len=-1)``

    - Without `file_like`, ``feed(bytes)`` adds data; with it, ``file_like.read(read_size)`` is called
      whenever more bytes are needed (``read_size`` defaults to min(1 MiB, max_buffer_size)).
    - ``unpack()`` returns the next object or raises ``OutOfData``; iterating yields objects until the
      data runs out; ``skip()`` passes over one; ``read_array_header()`` / ``read_map_header()`` return
      the size of the container that comes next (its items are the next objects); ``read_bytes(n)``
      takes raw bytes; ``tell()`` is the stream offset of the next unread byte.
    - ``max_buffer_size`` (0: 2**31-1) bounds the bytes held: ``feed`` raises ``BufferFull`` beyond it.
      The ``max_*_len`` limits default to it (``max_map_len`` to half of it).
    - Options as in ``unpackb``: ``use_list``, ``raw``, ``timestamp`` (0 Timestamp, 1 float, 2 int
      nanoseconds, 3 datetime), ``strict_map_key``, the hooks, ``unicode_errors``.

    An object is built once all its bytes are here (until then ``OutOfData``, and nothing is
    consumed): msgpack-python's C extension builds it as bytes arrive. So ``tell()`` never points
    inside an object, the hooks run once per object, and an error leaves the position at the start of
    the object that raised it.

    One call at a time: a call made while another call on the same unpacker is in progress (another
    thread's, or one from a hook or ``file_like.read()`` that the first runs) raises ``RuntimeError``
    and changes nothing. Threads that share an unpacker put a lock around each call; each call then
    takes the next object of the stream, exactly once.
    """

    def __init__(self, file_like: SupportsRead[bytes] | None = None, **kwargs: Any) -> None:
        file_read, read_size, max_buffer_size, options = unpacker_options(file_like, **kwargs)
        self._feeding = file_read is None
        self._unpacker = _kernels().Unpacker(file_read, read_size, max_buffer_size, options)

    def feed(self, next_bytes: Buffer) -> None:
        """Adds bytes to the buffer (not with a `file_like`)."""
        if not self._feeding:
            raise AssertionError("unpacker.feed() is not be able to use with `file_like`.")
        self._unpacker.feed(byte_view(next_bytes))

    def unpack(self) -> Any:
        """The next object; ``OutOfData`` when its bytes are not all here yet."""
        return self._unpacker.unpack()

    def skip(self) -> None:
        """Passes over the next object; ``OutOfData`` when its bytes are not all here yet."""
        return self._unpacker.skip()

    def read_array_header(self) -> int:
        """The size of the array that comes next (``ValueError`` if something else does)."""
        return self._unpacker.read_array_header()

    def read_map_header(self) -> int:
        """The size of the map that comes next (``ValueError`` if something else does)."""
        return self._unpacker.read_map_header()

    def read_bytes(self, n: SupportsIndex) -> bytes:
        """Up to `n` raw bytes of the stream."""
        n = operator.index(n)
        if n < 0:
            raise ValueError("read_bytes: n must be non-negative")
        return self._unpacker.read_bytes(n)

    def tell(self) -> int:
        """The stream offset of the next unread byte."""
        return self._unpacker.tell()

    def __iter__(self) -> Unpacker:
        return self

    def __next__(self) -> Any:
        return next(self._unpacker)
