"""The exceptions of msgpack-python 1.x, with the same names and hierarchy.

``except ValueError`` catches every error in malformed input (``FormatError``, ``StackError``,
``ExtraData`` and the limit errors); ``OutOfData`` and ``BufferFull`` come from the streaming
``Unpacker`` only.
"""

from __future__ import annotations

from typing import Any


class UnpackException(Exception):
    """Base class of the errors that only unpacking raises (other exceptions can come from hooks)."""


class BufferFull(UnpackException):
    """The ``Unpacker`` would hold more than ``max_buffer_size`` bytes."""


class OutOfData(UnpackException):
    """The ``Unpacker`` needs more bytes to finish the next object."""


class FormatError(ValueError, UnpackException):
    """Invalid msgpack: a byte that starts no msgpack type (0xc1)."""


class StackError(ValueError, UnpackException):
    """Containers nested deeper than 1024 levels."""


# Kept for code written against msgpack-python 0.x; use ValueError.
UnpackValueError = ValueError


class ExtraData(UnpackValueError):
    """``unpackb`` found bytes after the first object; ``unpacked`` is the object, ``extra`` the rest."""

    def __init__(self, unpacked: Any, extra: bytes) -> None:
        self.unpacked = unpacked
        self.extra = extra

    def __str__(self) -> str:
        return "unpack(b) received extra data."


# Kept for code written against msgpack-python 0.x; packing raises the built-in exceptions.
PackException = Exception
PackValueError = ValueError
PackOverflowError = OverflowError
