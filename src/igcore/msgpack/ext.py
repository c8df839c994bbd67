"""``ExtType`` and ``Timestamp``, as in msgpack-python 1.x."""

from __future__ import annotations

import datetime
import struct
from collections import namedtuple

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
_NANOS = 10**9


class ExtType(namedtuple("ExtType", "code data")):
    """An application-defined msgpack extension: ``code`` in 0..127 and its payload ``data`` (bytes)."""

    def __new__(cls, code: int, data: bytes) -> ExtType:
        if not isinstance(code, int):
            raise TypeError("code must be int")
        if not isinstance(data, bytes):
            raise TypeError("data must be bytes")
        if not 0 <= code <= 127:
            raise ValueError("code must be 0~127")
        return super().__new__(cls, code, data)


class Timestamp:
    """The msgpack timestamp extension (type -1): seconds since the Unix epoch and nanoseconds.

    ``seconds`` may be negative (times before 1970); ``nanoseconds`` is in 0..999,999,999 and adds to
    it. Immutable by convention, hashable, and equal only to another ``Timestamp``.
    """

    __slots__ = ("seconds", "nanoseconds")

    def __init__(self, seconds: int, nanoseconds: int = 0) -> None:
        if not isinstance(seconds, int):
            raise TypeError("seconds must be an integer")
        if not isinstance(nanoseconds, int):
            raise TypeError("nanoseconds must be an integer")
        if not 0 <= nanoseconds < _NANOS:
            raise ValueError("nanoseconds must be a non-negative integer less than 999999999.")
        self.seconds = seconds
        self.nanoseconds = nanoseconds

    def __repr__(self) -> str:
        return f"Timestamp(seconds={self.seconds}, nanoseconds={self.nanoseconds})"

    def __eq__(self, other: object) -> bool:
        if type(other) is self.__class__:
            return self.seconds == other.seconds and self.nanoseconds == other.nanoseconds
        return False

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    def __hash__(self) -> int:
        return hash((self.seconds, self.nanoseconds))

    @staticmethod
    def from_bytes(b: bytes) -> Timestamp:
        """The timestamp in a type -1 payload of 4, 8 or 12 bytes (timestamp 32, 64 or 96)."""
        if len(b) == 4:
            (seconds,) = struct.unpack("!L", b)
            nanoseconds = 0
        elif len(b) == 8:
            (data64,) = struct.unpack("!Q", b)
            seconds = data64 & 0x3_FFFF_FFFF
            nanoseconds = data64 >> 34
        elif len(b) == 12:
            nanoseconds, seconds = struct.unpack("!Iq", b)
        else:
            raise ValueError("Timestamp type can only be created from 32, 64, or 96-bit byte objects")
        return Timestamp(seconds, nanoseconds)

    def to_bytes(self) -> bytes:
        """The shortest type -1 payload that holds this timestamp."""
        if self.seconds >> 34 == 0:  # 0 <= seconds < 2**34
            data64 = self.nanoseconds << 34 | self.seconds
            if data64 >> 32 == 0:  # whole seconds below 2**32: timestamp 32
                return struct.pack("!L", data64)
            return struct.pack("!Q", data64)
        return struct.pack("!Iq", self.nanoseconds, self.seconds)

    @staticmethod
    def from_unix(unix_sec: int | float) -> Timestamp:
        """From seconds since the epoch (int or float)."""
        seconds = int(unix_sec // 1)
        nanoseconds = int((unix_sec % 1) * _NANOS)
        return Timestamp(seconds, nanoseconds)

    def to_unix(self) -> float:
        """Seconds since the epoch, as a float."""
        return self.seconds + self.nanoseconds / 1e9

    @staticmethod
    def from_unix_nano(unix_ns: int) -> Timestamp:
        """From nanoseconds since the epoch (int)."""
        return Timestamp(*divmod(unix_ns, _NANOS))

    def to_unix_nano(self) -> int:
        """Nanoseconds since the epoch (int)."""
        return self.seconds * _NANOS + self.nanoseconds

    def to_datetime(self) -> datetime.datetime:
        """A timezone-aware UTC ``datetime`` (to the microsecond, rounded down)."""
        return _EPOCH + datetime.timedelta(seconds=self.seconds, microseconds=self.nanoseconds // 1000)

    @staticmethod
    def from_datetime(dt: datetime.datetime) -> Timestamp:
        """From a ``datetime``; a naive one is taken as local time, as ``datetime.timestamp`` does."""
        if dt.tzinfo is None:
            dt = dt.astimezone()
        delta = dt - _EPOCH  # exact integer arithmetic: a float timestamp loses microseconds
        return Timestamp(seconds=delta.days * 86400 + delta.seconds, nanoseconds=delta.microseconds * 1000)
