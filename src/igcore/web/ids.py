"""Snowflake ids for statuses, follows, favourites, mutes and notifications, as Mastodon's.

``id = milliseconds since the Unix epoch << 16 | worker slot << 10 | sequence``: ids sort by time, so
``max_id``/``since_id`` paging is a range on the primary key and the id says when. Each worker takes a
slot (0..63) from Redis when it starts, so two workers never make the same id; within one millisecond a
worker makes up to 1,024 ids, then waits for the next millisecond.
"""

from __future__ import annotations

import threading
import time

SLOTS = 64
PER_MILLISECOND = 1024


def from_millis(millis: int, low: int = 0) -> int:
    """The smallest id of millisecond `millis` (plus `low`, below 2**16)."""
    return (millis << 16) | low


def to_seconds(snowflake: int) -> float:
    return (snowflake >> 16) / 1000.0


class IdGenerator:
    def __init__(self, slot: int = 0) -> None:
        if not 0 <= slot < SLOTS:
            raise ValueError(f"slot must be in [0, {SLOTS}), got {slot}")
        self.slot = slot
        self._lock = threading.Lock()
        self._millis = 0
        self._sequence = 0

    def next_id(self, millis: int | None = None) -> int:
        """A new id, after every id this generator made before (at `millis` or later)."""
        with self._lock:
            now = int(time.time() * 1000) if millis is None else millis
            if now < self._millis:
                now = self._millis  # the clock stepped back: keep ids increasing
            if now == self._millis:
                self._sequence += 1
                if self._sequence >= PER_MILLISECOND:
                    while now <= self._millis:
                        time.sleep(0.0002)
                        now = int(time.time() * 1000) if millis is None else now + 1
                    self._sequence = 0
            else:
                self._sequence = 0
            self._millis = now
            return from_millis(now, (self.slot << 10) | self._sequence)
