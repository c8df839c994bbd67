"""msgpack, defined in plain Python: the behaviour of msgpack-python 1.x (its C extension).

The public layer (``igcore.msgpack``) checks the keyword arguments and hands every kernel here a
``PackOptions`` or ``UnpackOptions`` (see ``igcore.msgpack._options``); the bytes to unpack arrive as
``bytes`` or a C-contiguous memoryview of single bytes.

Packing (``packb``, ``Packer``)
- Types are tried in this order, each including subclasses unless ``strict_types``: None, True, False,
  int, float, bytes/bytearray, str, dict, ExtType, Timestamp (the exact class only), list/tuple
  (``strict_types``: list only), memoryview, then a timezone-aware ``datetime.datetime`` (exact class)
  when ``datetime`` is set. Anything else goes to ``default`` (once per object; what it returns is packed
  in its place) or raises ``TypeError("can not serialize 'T' object")``; a naive datetime with
  ``datetime`` set and no ``default`` raises ``ValueError``.
- Every value takes its shortest form: ints by value (non-negative ints as unsigned formats, negative
  ones as signed), str as fixstr/str8/16/32 (str8 only with ``use_bin_type``), bytes as bin8/16/32 (as
  str formats without ``use_bin_type``), containers with fix/16/32 headers, ExtType as fixext when the
  payload is 1, 2, 4, 8 or 16 bytes long, Timestamp as timestamp 32, 64 or 96 (the first that holds it).
- Floats are float64, or float32 with ``use_single_float`` (rounded to nearest; a finite value beyond
  float32 raises ``OverflowError``).
- An int outside [-2**63, 2**64) goes to ``default`` or raises ``OverflowError("Integer value out of
  range")``. A str that is not valid UTF-8 (lone surrogates) raises ``UnicodeEncodeError`` unless
  ``unicode_errors`` names another handler. A Timestamp whose seconds are outside int64 raises
  ``OverflowError``.
- Dicts are packed in iteration order (``items()``), lists and tuples in order. A container whose
  iteration yields another number of items than its length (changed while packed, or a subclass that
  disagrees with itself) raises ``RuntimeError`` (msgpack-python writes a header that lies).
- Nesting: the top object is at depth 0; an object at depth 1025 raises
  ``ValueError("recursion limit exceeded.")``.
- After an error the packer's buffer is empty (``autoreset=False`` loses what it held).

Unpacking (``unpackb``, ``Unpacker``)
- nil, bool, int (every width), float32/64 (as float), str (as str, or bytes with ``raw``), bin (bytes),
  array (list, or tuple without ``use_list``), map (dict), ext -1 (per ``timestamp``: 0 ``Timestamp``,
  1 float seconds, 2 int nanoseconds, 3 aware UTC ``datetime``), other ext types (``ext_hook(code,
  data)``, by default ``ExtType``).
- Maps: keys must be str or bytes (exact types) when ``strict_map_key``, else ``ValueError("T is not
  allowed for map key when strict_map_key=True")``, checked as each key-value pair is inserted; later
  duplicates replace earlier values (as ``dict`` does; the first key object stays); an unhashable key
  raises ``TypeError``. Equal str keys may be one shared object (msgpack-python interns them; the
  compiled backends share short keys from a cache). ``object_pairs_hook`` receives a list of (key,
  value) tuples instead of a dict, ``object_hook`` the dict; ``list_hook`` receives each list (or
  tuple).
- Limits: an array or map header above ``max_array_len`` / ``max_map_len`` raises ``ValueError("N
  exceeds max_array_len(M)")`` as soon as the header is read; a str, bin or ext longer than its limit
  raises once its bytes are all present (so a header that lies about a length never allocates: it is
  incomplete input). The 1025th nested container raises ``StackError``; the byte 0xc1 raises
  ``FormatError``. ``unpackb``'s limits default to the input's length (``max_map_len`` to half of it).
- Invalid UTF-8 in a str raises ``UnicodeDecodeError`` unless ``unicode_errors`` names a handler.
- ext -1 with a payload that is not 4, 8 or 12 bytes, or with nanoseconds above 999,999,999, raises
  ``ValueError``; with ``timestamp=3`` a timestamp beyond ``datetime``'s range raises ``OverflowError``
  (msgpack-python's message: ``days=N; too large to convert to C int`` past 2**31 days, else
  ``timedelta``'s or ``datetime``'s).
- ``unpackb``: truncated input raises ``ValueError("Unpack failed: incomplete input")``, bytes after the
  first object raise ``ExtraData(obj, extra)``. Errors are raised in the order of the bytes.

The streaming ``Unpacker`` (see its docstring) builds an object only once all of its bytes have arrived.
"""

from __future__ import annotations

import builtins
import datetime as _dt
import functools
import struct
import threading
import typing
from collections.abc import Callable, Iterable, Iterator
from typing import Any, TypeVar, Union, cast

from .. import _messages
from ..msgpack.exceptions import BufferFull, ExtraData, FormatError, OutOfData, StackError
from ..msgpack.ext import ExtType, Timestamp

# Not `from typing import TYPE_CHECKING`: a kernel module exports exactly the names of its stub.
if typing.TYPE_CHECKING:
    from typing_extensions import Buffer

    from ..msgpack._options import PackOptions, SizedPairs, UnpackOptions

    # What unpacking reads from: the caller's bytes or memoryview, or an Unpacker's own buffer.
    Bytes = Union[bytes, bytearray, memoryview]
    # Where a map's pairs go as they are read (see _Reader.new_map).
    MapItems = Union[list[tuple[Any, Any]], dict[Any, Any]]

_F = TypeVar("_F", bound=Callable[..., Any])
_T = TypeVar("_T")

# The kernels, as src/igcore/_kernels/msgpack.pyi states them; the rest of this module is their helpers.
__all__ = ["Packer", "Unpacker", "packb", "unpackb"]

NEST_LIMIT = 1024  # packing: deepest object depth allowed (the top object is at depth 0)
MAX_OPEN_CONTAINERS = 1024  # unpacking: containers open at once
ITEM_LIMIT = 2**32 - 1  # longest str, bin, ext, array or map the format can describe
INT_MAX = 2**31 - 1  # max_buffer_size=0 means this
_EPOCH = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
_NANOS = 10**9


# -- packing -------------------------------------------------------------------------------------------------


def _one_call_at_a_time(method: _F) -> _F:
    """The Packer or Unpacker method, refusing to start while another call on the same object is in
    progress (another thread's, or one from a hook that the first runs): ``RuntimeError``."""

    @functools.wraps(method)
    def guarded(self: Any, *args: Any) -> Any:
        if not self._busy.acquire(blocking=False):
            name = type(self).__name__
            raise RuntimeError(_messages.CALL_IN_PROGRESS.format(name=name))
        try:
            return method(self, *args)
        finally:
            self._busy.release()

    return cast(_F, guarded)


def packb(obj: object, options: PackOptions) -> bytes:
    """`obj` packed with `options` (a ``PackOptions``)."""
    return cast(bytes, Packer(options, True).pack(obj))  # autoreset: pack returns the bytes


class Packer:
    """Packs objects into an internal buffer; with `autoreset` each call returns its bytes and empties it.

    One call at a time: a call made while another is in progress on the same packer (another thread's,
    or one from a `default` that the first runs) raises ``RuntimeError``."""

    def __init__(self, options: PackOptions, autoreset: bool) -> None:
        self._options = options
        self._autoreset = autoreset
        self._buffer = bytearray()
        self._busy = threading.Lock()  # held for each call (see _one_call_at_a_time)

    def _done(self) -> bytes | None:
        if self._autoreset:
            packed = bytes(self._buffer)
            self._buffer.clear()
            return packed
        return None

    def _guarded(self, write: Callable[[], None]) -> bytes | None:
        try:
            write()
        except BaseException:
            self._buffer.clear()
            raise
        return self._done()

    @_one_call_at_a_time
    def pack(self, obj: object) -> bytes | None:
        return self._guarded(lambda: _Writer(self._buffer, self._options).pack(obj, 0))

    @_one_call_at_a_time
    def pack_map_pairs(self, pairs: SizedPairs) -> bytes | None:
        """A map of `pairs` (a sized iterable of (key, value)); keys and values start at depth 0."""

        def write() -> None:
            size = len(pairs)
            if size > ITEM_LIMIT:
                raise ValueError(_messages.MAP_HEADER_TOO_LARGE)
            writer = _Writer(self._buffer, self._options)
            writer.map_header(size)
            for key, value in pairs:
                writer.pack(key, 0)
                writer.pack(value, 0)

        return self._guarded(write)

    @_one_call_at_a_time
    def pack_array_header(self, size: int) -> bytes | None:
        """The header of an array of `size` items (the items are packed by later calls)."""
        if size < 0:
            raise ValueError(_messages.ARRAY_SIZE_NEGATIVE)
        if size > ITEM_LIMIT:
            raise ValueError(_messages.ARRAY_HEADER_TOO_LARGE)
        _Writer(self._buffer, self._options).array_header(size)
        return self._done()

    @_one_call_at_a_time
    def pack_map_header(self, size: int) -> bytes | None:
        """The header of a map of `size` pairs (keys and values are packed by later calls)."""
        if size < 0:
            raise ValueError(_messages.MAP_SIZE_NEGATIVE)
        if size > ITEM_LIMIT:
            raise ValueError(_messages.MAP_HEADER_TOO_LARGE)
        _Writer(self._buffer, self._options).map_header(size)
        return self._done()

    @_one_call_at_a_time
    def pack_ext_type(self, code: int, data: Buffer) -> bytes | None:
        """An ext of type `code` (-128..127, an int) and payload `data` (bytes-like)."""
        payload = memoryview(data).cast("B")
        if len(payload) > ITEM_LIMIT:
            raise ValueError(_messages.EXT_HEADER_TOO_LARGE)
        _Writer(self._buffer, self._options).ext(code, payload)
        return self._done()

    @_one_call_at_a_time
    def bytes(self) -> bytes:
        return bytes(self._buffer)

    @_one_call_at_a_time
    def reset(self) -> None:
        self._buffer.clear()


class _Writer:
    """Appends the msgpack form of objects to `out`."""

    def __init__(self, out: bytearray, options: PackOptions) -> None:
        self.out = out
        self.default = options.default
        self.use_single_float = options.use_single_float
        self.use_bin_type = options.use_bin_type
        self.strict = options.strict_types
        self.datetime = options.datetime
        self.unicode_errors = options.unicode_errors

    def pack(self, obj: object, depth: int) -> None:
        """Packs `obj`, found at `depth`. Containers are walked with an explicit stack, not recursion, so
        the 1024 levels allowed do not depend on Python's recursion limit."""
        # Each entry: an iterator over the objects still to pack inside an open container, and their depth.
        pending: list[tuple[Any, int]] = []
        while True:
            children = self.pack_one(obj, depth)
            if children is not None:
                pending.append((iter(children), depth + 1))
            while pending:
                items, child_depth = pending[-1]
                obj = next(items, _END)
                if obj is not _END:
                    depth = child_depth
                    break
                pending.pop()
            else:
                return

    def pack_one(self, obj: object, depth: int) -> Iterator[Any] | None:
        """Writes `obj` if it is a scalar, or the header of a container and returns its children."""
        if depth > NEST_LIMIT:
            raise ValueError(_messages.RECURSION_LIMIT)
        if self.default is not None:
            children = self.pack_known(obj, depth, will_default=True)
            if children is not _UNKNOWN:
                return cast("Iterator[Any] | None", children)
            obj = self.default(obj)
        return cast("Iterator[Any] | None", self.pack_known(obj, depth, will_default=False))

    def pack_known(self, obj: Any, depth: int, will_default: bool) -> object:
        # The children of a container (an iterator), None, or _UNKNOWN (only when `will_default`).
        out = self.out
        strict = self.strict

        def is_a(types: tuple[type, ...]) -> bool:
            return type(obj) in types if strict else isinstance(obj, types)

        if obj is None:
            out.append(0xC0)
        elif obj is True:
            out.append(0xC3)
        elif obj is False:
            out.append(0xC2)
        elif is_a((int,)):
            if not -(2**63) <= obj < 2**64:
                if will_default:
                    return _UNKNOWN
                raise OverflowError(_messages.INT_OUT_OF_RANGE)
            self.int(obj)
        elif is_a((float,)):
            if self.use_single_float:
                out.append(0xCA)
                out += struct.pack(">f", obj)  # OverflowError beyond float32's finite range
            else:
                out.append(0xCB)
                out += struct.pack(">d", obj)
        elif is_a((bytes, bytearray)):
            if len(obj) > ITEM_LIMIT:
                raise ValueError(_messages.OBJECT_TOO_LARGE.format(type=type(obj).__name__))
            self.bin_header(len(obj))
            out += obj
        elif is_a((str,)):
            encoded = obj.encode("utf-8", self.unicode_errors or "strict")
            if len(encoded) > ITEM_LIMIT:
                raise ValueError(_messages.STR_TOO_LARGE)
            self.str_header(len(encoded))
            out += encoded
        elif is_a((dict,)):
            if len(obj) > ITEM_LIMIT:
                raise ValueError(_messages.DICT_TOO_LARGE)
            self.map_header(len(obj))
            return _counted(_flat_pairs(obj.items()), 2 * len(obj), "dictionary")
        elif is_a((ExtType,)):
            if len(obj.data) > ITEM_LIMIT:
                raise ValueError(_messages.EXT_TOO_LARGE)
            self.ext(obj.code, obj.data)
        elif type(obj) is Timestamp:
            self.timestamp(obj.seconds, obj.nanoseconds)
        elif type(obj) is list if strict else isinstance(obj, (list, tuple)):
            if len(obj) > ITEM_LIMIT:
                raise ValueError(_messages.LIST_TOO_LARGE)
            self.array_header(len(obj))
            return _counted(obj, len(obj), "list")
        elif isinstance(obj, memoryview):
            if not obj.c_contiguous:
                raise BufferError(_messages.MEMORYVIEW_NOT_CONTIGUOUS)
            payload = obj.cast("B")
            if len(payload) > ITEM_LIMIT:
                raise ValueError(_messages.MEMORYVIEW_TOO_LARGE)
            self.bin_header(len(payload))
            out += payload
        elif self.datetime and type(obj) is _dt.datetime and obj.tzinfo is not None:
            delta = obj - _EPOCH
            self.timestamp(delta.days * 86400 + delta.seconds, delta.microseconds * 1000)
        elif will_default:
            return _UNKNOWN
        elif self.datetime and type(obj) is _dt.datetime:
            raise ValueError(_messages.NAIVE_DATETIME.format(type=_type_name(obj)))
        else:
            raise TypeError(_messages.CANNOT_SERIALIZE.format(type=_type_name(obj)))
        return None

    def int(self, value: int) -> None:
        out = self.out
        if value >= 0:
            if value < 0x80:
                out.append(value)  # positive fixint
            elif value <= 0xFF:
                out += bytes((0xCC, value))
            elif value <= 0xFFFF:
                out += struct.pack(">BH", 0xCD, value)
            elif value <= 0xFFFF_FFFF:
                out += struct.pack(">BI", 0xCE, value)
            else:
                out += struct.pack(">BQ", 0xCF, value)
        elif value >= -32:
            out.append(value & 0xFF)  # negative fixint
        elif value >= -0x80:
            out += struct.pack(">Bb", 0xD0, value)
        elif value >= -0x8000:
            out += struct.pack(">Bh", 0xD1, value)
        elif value >= -0x8000_0000:
            out += struct.pack(">Bi", 0xD2, value)
        else:
            out += struct.pack(">Bq", 0xD3, value)

    def str_header(self, n: builtins.int) -> None:
        if n < 32:
            self.out.append(0xA0 | n)
        elif self.use_bin_type and n <= 0xFF:  # str8 came with bin in the 2013 spec
            self.out += bytes((0xD9, n))
        elif n <= 0xFFFF:
            self.out += struct.pack(">BH", 0xDA, n)
        else:
            self.out += struct.pack(">BI", 0xDB, n)

    def bin_header(self, n: builtins.int) -> None:
        if not self.use_bin_type:
            self.str_header(n)
        elif n <= 0xFF:
            self.out += bytes((0xC4, n))
        elif n <= 0xFFFF:
            self.out += struct.pack(">BH", 0xC5, n)
        else:
            self.out += struct.pack(">BI", 0xC6, n)

    def array_header(self, n: builtins.int) -> None:
        if n < 16:
            self.out.append(0x90 | n)
        elif n <= 0xFFFF:
            self.out += struct.pack(">BH", 0xDC, n)
        else:
            self.out += struct.pack(">BI", 0xDD, n)

    def map_header(self, n: builtins.int) -> None:
        if n < 16:
            self.out.append(0x80 | n)
        elif n <= 0xFFFF:
            self.out += struct.pack(">BH", 0xDE, n)
        else:
            self.out += struct.pack(">BI", 0xDF, n)

    def ext(self, code: builtins.int, data: bytes | memoryview) -> None:
        """An ext header and payload; `code` must fit a signed byte (``OverflowError`` otherwise)."""
        if not -128 <= code <= 127:
            raise OverflowError(_messages.EXT_CODE_TOO_LARGE)
        n = len(data)
        fixext = {1: 0xD4, 2: 0xD5, 4: 0xD6, 8: 0xD7, 16: 0xD8}
        if n in fixext:
            self.out.append(fixext[n])
        elif n <= 0xFF:
            self.out += bytes((0xC7, n))
        elif n <= 0xFFFF:
            self.out += struct.pack(">BH", 0xC8, n)
        else:
            self.out += struct.pack(">BI", 0xC9, n)
        self.out.append(code & 0xFF)
        self.out += data

    def timestamp(self, seconds: builtins.int, nanoseconds: builtins.int) -> None:
        if not -(2**63) <= seconds < 2**63:
            raise OverflowError(_messages.INT_TOO_LARGE_FOR_C_LONG)
        self.ext(-1, Timestamp(seconds, nanoseconds).to_bytes())


_END = object()  # an iterator's end
_UNKNOWN = object()  # pack_known: a type left to `default`


def _counted(items: Iterable[_T], announced: int, what: str) -> Iterator[_T]:
    """`items`, checked to be as many as the header announced (a container that changed size while
    being packed would leave a header that lies)."""
    count = 0
    for item in items:
        count += 1
        yield item
    if count != announced:
        raise RuntimeError(_messages.CHANGED_SIZE.format(what=what))


def _flat_pairs(items: Iterable[tuple[_T, _T]]) -> Iterator[_T]:
    for key, value in items:
        yield key
        yield value


def _type_name(obj: object) -> str:
    """The name C code shows for a type: a class defined in Python by its name, a built-in type by its
    full name (``datetime.datetime``, but ``int``)."""
    cls = type(obj)
    if cls.__flags__ & _HEAP_TYPE or cls.__module__ == "builtins":
        return cls.__name__
    return f"{cls.__module__}.{cls.__name__}"


_HEAP_TYPE = 1 << 9  # Py_TPFLAGS_HEAPTYPE: a class created at run time (by a class statement)


# -- unpacking -----------------------------------------------------------------------------------------------


class _Incomplete(Exception):
    """The bytes end inside an object."""


def unpackb(data: Bytes, options: UnpackOptions) -> Any:
    """The single object in `data`; see the module docstring for errors."""
    limits = _Limits.for_input(options, len(data))
    reader = _Reader(options, limits)
    try:
        obj, end = reader.read(data, 0)
    except _Incomplete:
        raise ValueError(_messages.INCOMPLETE_INPUT) from None
    if end < len(data):
        raise ExtraData(obj, bytes(data[end:]))
    return obj


class _Limits:
    """Longest str, bin, ext, array and map accepted."""

    __slots__ = ("str", "bin", "array", "map", "ext")

    def __init__(self, options: UnpackOptions, default: int) -> None:
        self.str = default if options.max_str_len == -1 else options.max_str_len
        self.bin = default if options.max_bin_len == -1 else options.max_bin_len
        self.array = default if options.max_array_len == -1 else options.max_array_len
        self.map = default // 2 if options.max_map_len == -1 else options.max_map_len
        self.ext = default if options.max_ext_len == -1 else options.max_ext_len

    @classmethod
    def for_input(cls, options: UnpackOptions, length: int) -> _Limits:
        return cls(options, length)


# Formats 0xc0..0xdf (and the fix ranges, handled in _Reader.header): (kind, bytes of the length or
# value that follow the marker, struct format of them).
_NIL, _FALSE, _TRUE, _INT, _FLOAT, _STR, _BIN, _EXT, _FIXEXT, _ARRAY, _MAP = range(11)
_FORMATS = {
    0xC0: (_NIL, 0, ""),
    0xC2: (_FALSE, 0, ""),
    0xC3: (_TRUE, 0, ""),
    0xC4: (_BIN, 1, ">B"),
    0xC5: (_BIN, 2, ">H"),
    0xC6: (_BIN, 4, ">I"),
    0xC7: (_EXT, 1, ">B"),
    0xC8: (_EXT, 2, ">H"),
    0xC9: (_EXT, 4, ">I"),
    0xCA: (_FLOAT, 4, ">f"),
    0xCB: (_FLOAT, 8, ">d"),
    0xCC: (_INT, 1, ">B"),
    0xCD: (_INT, 2, ">H"),
    0xCE: (_INT, 4, ">I"),
    0xCF: (_INT, 8, ">Q"),
    0xD0: (_INT, 1, ">b"),
    0xD1: (_INT, 2, ">h"),
    0xD2: (_INT, 4, ">i"),
    0xD3: (_INT, 8, ">q"),
    0xD4: (_FIXEXT, 1, ""),
    0xD5: (_FIXEXT, 2, ""),
    0xD6: (_FIXEXT, 4, ""),
    0xD7: (_FIXEXT, 8, ""),
    0xD8: (_FIXEXT, 16, ""),
    0xD9: (_STR, 1, ">B"),
    0xDA: (_STR, 2, ">H"),
    0xDB: (_STR, 4, ">I"),
    0xDC: (_ARRAY, 2, ">H"),
    0xDD: (_ARRAY, 4, ">I"),
    0xDE: (_MAP, 2, ">H"),
    0xDF: (_MAP, 4, ">I"),
}


def header(data: Bytes, pos: int) -> tuple[int, Any, int]:
    """The header at `pos`: ``(kind, value, end)``. `value` is the int, float, bool or None itself for
    scalars, the length of a str, bin or ext payload, or the item count of an array or map; `end` is
    where the payload (or the next object) starts. Raises ``_Incomplete`` or ``FormatError``."""
    if pos >= len(data):
        raise _Incomplete
    marker = data[pos]
    if marker <= 0x7F:
        return _INT, marker, pos + 1
    if marker >= 0xE0:
        return _INT, marker - 0x100, pos + 1
    if marker <= 0x8F:
        return _MAP, marker & 0x0F, pos + 1
    if marker <= 0x9F:
        return _ARRAY, marker & 0x0F, pos + 1
    if marker <= 0xBF:
        return _STR, marker & 0x1F, pos + 1
    if marker not in _FORMATS:
        raise FormatError(_messages.INVALID_BYTE.format(byte=marker, offset=pos))
    kind, size, fmt = _FORMATS[marker]
    end = pos + 1 + size
    if kind in (_NIL, _FALSE, _TRUE):
        return kind, (None, False, True)[kind], end
    if kind == _FIXEXT:
        return _EXT, size, pos + 1
    if end > len(data):
        raise _Incomplete
    (value,) = struct.unpack_from(fmt, data, pos + 1)
    return kind, value, end


class _Reader:
    """Builds objects from msgpack bytes with the options of one unpackb call or Unpacker."""

    def __init__(self, options: UnpackOptions, limits: _Limits) -> None:
        self.options = options
        self.limits = limits

    def read(self, data: Bytes, pos: int) -> tuple[Any, int]:
        """The object at `pos` and the offset after it. Open containers are kept on an explicit stack,
        so the 1024 levels allowed do not depend on Python's recursion limit."""
        limits = self.limits
        # Each open container: [items so far, items still to read, is a map, key awaiting its value].
        stack: list[list[Any]] = []
        while True:
            kind, value, pos = header(data, pos)
            if kind in (_ARRAY, _MAP):
                if len(stack) >= MAX_OPEN_CONTAINERS:
                    raise StackError(_messages.NESTED_TOO_DEEP.format(levels=MAX_OPEN_CONTAINERS))
                is_map = kind == _MAP
                limit, name = (limits.map, "max_map_len") if is_map else (limits.array, "max_array_len")
                if value > limit:
                    raise ValueError(
                        _messages.LIMIT_EXCEEDED.format(length=value, limit_name=name, limit=limit)
                    )
                if value > 0:
                    stack.append([self.new_map() if is_map else [], value, is_map, _END])
                    continue
                obj = self.finish_map(self.new_map()) if is_map else self.finish_array([])
            else:
                obj, pos = self.scalar(data, kind, value, pos)
            # Hand the object to the innermost open container; a container that is now full is
            # finished and handed to the one around it, and so on.
            while stack:
                frame = stack[-1]
                items, remaining, is_map, key = frame
                if is_map:
                    if key is _END:
                        frame[3] = obj
                        break
                    self.insert(items, self.map_key(key), obj)
                    frame[3] = _END
                else:
                    items.append(obj)
                frame[1] = remaining = remaining - 1
                if remaining:
                    break
                stack.pop()
                obj = self.finish_map(items) if is_map else self.finish_array(items)
            else:
                return obj, pos

    def scalar(self, data: Bytes, kind: int, value: Any, pos: int) -> tuple[Any, int]:
        if kind in (_STR, _BIN, _EXT):
            payload_end = pos + value + (kind == _EXT)  # an ext's type byte precedes its payload
            if payload_end > len(data):
                raise _Incomplete
            if kind == _EXT:
                return self.ext(data[pos], data[pos + 1 : payload_end]), payload_end
            payload = data[pos:payload_end]
            if kind == _BIN:
                if value > self.limits.bin:
                    raise ValueError(
                        _messages.LIMIT_EXCEEDED.format(
                            length=value, limit_name="max_bin_len", limit=self.limits.bin
                        )
                    )
                return bytes(payload), payload_end
            if value > self.limits.str:
                raise ValueError(
                    _messages.LIMIT_EXCEEDED.format(
                        length=value, limit_name="max_str_len", limit=self.limits.str
                    )
                )
            if self.options.raw:
                return bytes(payload), payload_end
            return str(payload, "utf-8", self.options.unicode_errors or "strict"), payload_end
        return value, pos  # nil, bools, ints and floats are whole in their header

    def ext(self, code_byte: int, payload: Bytes) -> Any:
        if len(payload) > self.limits.ext:
            raise ValueError(
                _messages.LIMIT_EXCEEDED.format(
                    length=len(payload), limit_name="max_ext_len", limit=self.limits.ext
                )
            )
        code = code_byte - 0x100 if code_byte >= 0x80 else code_byte
        if code != -1:
            return self.options.ext_hook(code, bytes(payload))
        seconds, nanoseconds = _timestamp_fields(payload)
        wanted = self.options.timestamp
        if wanted == 1:
            return seconds + nanoseconds / 1e9
        if wanted == 2:
            return seconds * _NANOS + nanoseconds
        if wanted == 3:
            days = abs(seconds) // 86400 * (1 if seconds >= 0 else -1)  # as C divides: toward zero
            if not -(2**31) <= days < 2**31:
                raise OverflowError(_messages.TIMESTAMP_DAYS_OVERFLOW.format(days=days))
            return _EPOCH + _dt.timedelta(seconds=seconds, microseconds=nanoseconds // 1000)
        return Timestamp(seconds, nanoseconds)

    def map_key(self, key: Any) -> Any:
        if self.options.strict_map_key and type(key) not in (str, bytes):
            raise ValueError(_messages.MAP_KEY_NOT_ALLOWED.format(type=_type_name(key)))
        return key

    def finish_array(self, items: list[Any]) -> Any:
        result = items if self.options.use_list else tuple(items)
        if self.options.list_hook is not None:
            result = self.options.list_hook(result)
        return result

    def new_map(self) -> MapItems:
        """Where a map's pairs go as they are read: a list for object_pairs_hook, else a dict."""
        return [] if self.options.object_pairs_hook is not None else {}

    def insert(self, items: MapItems, key: Any, value: Any) -> None:
        """Adds a pair at once, as it is read (an unhashable key raises ``TypeError`` right there)."""
        if type(items) is list:
            items.append((key, value))
        else:
            items[key] = value

    def finish_map(self, items: Any) -> Any:  # a list of pairs with object_pairs_hook, else a dict
        if self.options.object_pairs_hook is not None:
            return self.options.object_pairs_hook(items)
        if self.options.object_hook is not None:
            return self.options.object_hook(items)
        return items


def _timestamp_fields(payload: Bytes) -> tuple[int, int]:
    if len(payload) == 4:
        return struct.unpack(">I", payload)[0], 0
    if len(payload) == 8:
        (data64,) = struct.unpack(">Q", payload)
        seconds, nanoseconds = data64 & 0x3_FFFF_FFFF, data64 >> 34
    elif len(payload) == 12:
        nanoseconds, seconds = struct.unpack(">Iq", payload)
    else:
        raise ValueError(_messages.INVALID_TIMESTAMP.format(length=len(payload)))
    if nanoseconds >= _NANOS:
        raise ValueError(_messages.TIMESTAMP_NANOSECONDS)
    return seconds, nanoseconds


# -- the streaming unpacker ----------------------------------------------------------------------------------


def find_end(data: Bytes, pos: int, limits: _Limits | None, scan: list[Any]) -> int | None:
    """Where the object starting at `pos` ends, or None if `data` holds only part of it.

    Reads headers only (nothing is built). `scan` carries the walk across calls as more bytes arrive:
    ``[offset reached, items left in each open container]``; start it as ``[pos, []]``. With `limits`,
    array and map headers are checked against them as ``read`` does; ``FormatError`` and ``StackError``
    are raised as ``read`` raises them."""
    offset, open_counts = scan
    while True:
        try:
            kind, value, next_offset = header(data, offset)
        except _Incomplete:
            scan[0] = offset
            return None
        if kind in (_STR, _BIN, _EXT):
            next_offset += value + (kind == _EXT)
            if next_offset > len(data):
                scan[0] = offset
                return None
        elif kind in (_ARRAY, _MAP):
            if len(open_counts) >= MAX_OPEN_CONTAINERS:
                raise StackError(_messages.NESTED_TOO_DEEP.format(levels=MAX_OPEN_CONTAINERS))
            if limits is not None:
                limit, name = (limits.map, "max_map_len") if kind == _MAP else (limits.array, "max_array_len")
                if value > limit:
                    raise ValueError(
                        _messages.LIMIT_EXCEEDED.format(length=value, limit_name=name, limit=limit)
                    )
            if value:
                open_counts.append(value * 2 if kind == _MAP else value)
                offset = next_offset
                continue
        offset = next_offset
        # One item done: close every container it completes.
        while open_counts:
            open_counts[-1] -= 1
            if open_counts[-1]:
                break
            open_counts.pop()
        else:
            return offset


_ARRAY_MARKERS = (*range(0x90, 0xA0), 0xDC, 0xDD)  # fixarray, array 16, array 32
_MAP_MARKERS = (*range(0x80, 0x90), 0xDE, 0xDF)


class Unpacker:
    """Unpacks a stream of objects, fed as bytes (``feed``) or read from a file (``file_read``).

    - An object is built only once all of its bytes have arrived: until then ``unpack`` raises
      ``OutOfData`` (iteration stops) and nothing is consumed, so the next call starts it again. The
      bytes of an incomplete object are walked once (``find_end``), not rebuilt on every call.
    - ``max_buffer_size`` bounds the bytes held (the unread ones, including the start of an incomplete
      object): ``feed`` raises ``BufferFull`` beyond it, and so does reading a file when it is reached.
    - ``tell()`` is the stream offset of the next unread byte: after whole objects, headers and
      ``read_bytes``.
    - After an error the position stays at the start of the object that raised it.
    - One call at a time: a call made while another call on the same unpacker is in progress (from
      another thread, or from a hook or ``file_read`` that the first call runs) raises
      ``RuntimeError`` and changes nothing. Threads that share an unpacker serialize their calls (a
      lock around each); each call then sees the stream exactly as if they were made from one thread.
    - With a file, ``read_size`` bytes are read whenever the buffer lacks bytes; an empty read is the
      end of the stream.
    """

    def __init__(
        self,
        file_read: Callable[[int], bytes] | None,
        read_size: int,
        max_buffer_size: int,
        options: UnpackOptions,
    ) -> None:
        self._options = options
        self._file_read = file_read
        self._read_size = read_size
        self._max_buffer_size = max_buffer_size
        self._reader = _Reader(options, _Limits(options, max_buffer_size))
        self._buffer = bytearray()
        self._pos = 0  # the next unread byte in _buffer
        self._offset = 0  # the stream offset of _buffer[0]
        self._scan: list[Any] | None = None  # find_end's progress through an incomplete object
        self._scan_limits = False
        # Held for the whole of each call: taken without waiting, so a second call (another thread's,
        # or a hook's) raises instead of interleaving with the first.
        self._busy = threading.Lock()

    @_one_call_at_a_time
    def feed(self, data: Bytes) -> None:
        if len(self._buffer) - self._pos + len(data) > self._max_buffer_size:
            raise BufferFull
        self._drop_consumed()
        self._buffer += data

    def _drop_consumed(self) -> None:
        if self._pos:
            if self._scan is not None:
                self._scan[0] -= self._pos
            del self._buffer[: self._pos]
            self._offset += self._pos
            self._pos = 0

    def _read_file(self) -> bool:
        """Reads more of the file; False at its end."""
        if self._file_read is None:
            return False
        room = self._max_buffer_size - (len(self._buffer) - self._pos)
        if room <= 0:
            raise BufferFull
        chunk = self._file_read(min(self._read_size, room))
        if not chunk:
            return False
        if not isinstance(chunk, bytes):
            raise TypeError(_messages.READ_NOT_BYTES.format(type=type(chunk).__name__))
        self._drop_consumed()
        self._buffer += chunk
        return True

    def _next_object(self, build: bool) -> Any:
        """The next whole object (built, or skipped: None); OutOfData when its bytes are not all here."""
        with_limits = build  # skipping checks no limits, as msgpack-python's does not
        while True:
            if self._pos < len(self._buffer):
                if self._scan is None or self._scan_limits != with_limits:
                    self._scan, self._scan_limits = [self._pos, []], with_limits
                try:
                    end = find_end(
                        self._buffer, self._pos, self._reader.limits if with_limits else None, self._scan
                    )
                except BaseException:
                    self._scan = None  # the next call walks the object again, and raises again
                    raise
                if end is not None:
                    self._scan = None
                    obj = None
                    if build:
                        obj = self._reader.read(self._buffer, self._pos)[0]
                    self._pos = end
                    return obj
            if not self._read_file():
                raise OutOfData(_messages.NO_MORE_DATA)

    @_one_call_at_a_time
    def unpack(self) -> Any:
        return self._next_object(build=True)

    @_one_call_at_a_time
    def skip(self) -> None:
        self._next_object(build=False)

    def __iter__(self) -> Unpacker:
        return self

    @_one_call_at_a_time
    def __next__(self) -> Any:
        try:
            return self._next_object(build=True)
        except OutOfData:
            raise StopIteration from None

    def _container_header(self, markers: tuple[int, ...]) -> int:
        """The size in the array or map header that comes next; its first byte must be in `markers`
        (else ``ValueError``, however few bytes are here)."""
        while True:
            if self._pos < len(self._buffer):
                if self._buffer[self._pos] not in markers:
                    raise ValueError(_messages.UNEXPECTED_TYPE_HEADER)
                try:
                    _, value, end = header(self._buffer, self._pos)
                except _Incomplete:
                    pass
                else:
                    self._scan = None
                    self._pos = end
                    return cast(int, value)
            if not self._read_file():
                raise OutOfData(_messages.NO_MORE_DATA)

    @_one_call_at_a_time
    def read_array_header(self) -> int:
        """The item count of the array that comes next; its items are the next objects."""
        return self._container_header(_ARRAY_MARKERS)

    @_one_call_at_a_time
    def read_map_header(self) -> int:
        """The pair count of the map that comes next; its keys and values are the next objects."""
        return self._container_header(_MAP_MARKERS)

    @_one_call_at_a_time
    def read_bytes(self, n: int) -> bytes:
        """Up to `n` raw bytes of the stream (fewer at its end)."""
        taken = bytes(self._buffer[self._pos : self._pos + n])
        self._pos += len(taken)
        self._scan = None
        if len(taken) < n and self._file_read is not None:
            more = self._file_read(n - len(taken))
            self._offset += len(more)  # read past the (now empty) buffer
            taken += more
        return taken

    @_one_call_at_a_time
    def tell(self) -> int:
        return self._offset + self._pos
