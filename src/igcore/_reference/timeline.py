"""Timelines, defined in plain Python: feed order, merging, bounded timeline caches, fan-out, activity.

Entries and feed order
----------------------
An entry is ``(score, post_id, author_id)``. Scores are int64 (e.g. timestamps) or float64 (ranked
feeds); one timeline, one store and one merge hold one kind. Feed order is descending by the key
``(score, post_id)``: on equal scores the larger post id comes first. Float scores compare as numbers:
NaN is refused (it has no place in an order) and -0.0 is 0.0 (stored and returned as 0.0).

A post id appears at most once in a feed: when a post reaches it several times (a reshare, a post in two
sources), the entry with the greatest key stands and the others are dropped; on equal keys, the one met
first stands (the earlier source in a merge, the earlier insert in a timeline).

Kernels here receive checked arguments (see ``igcore.timeline``); the compiled backends answer exactly
as these functions do, errors included.
"""

from __future__ import annotations

import bisect
import math
import threading
import typing
from typing import Any, Optional, Union, cast

import numpy as np

from .. import _messages
from . import codec

# Not `from typing import TYPE_CHECKING`: a kernel module exports exactly the names of its stub.
if typing.TYPE_CHECKING:
    from collections.abc import Sequence

    from numpy.typing import NDArray
    from typing_extensions import TypeGuard

    Score = Union[int, float]  # int64 or float64 scores, as Python numbers
    Entry = tuple[Score, int, int]  # (score, post_id, author_id)
    ScoreArray = Union[NDArray[np.int64], NDArray[np.float64]]
    EntryArrays = tuple[ScoreArray, NDArray[np.int64], NDArray[np.int64]]  # scores, post ids, authors
    Cursor = tuple[bool, Score, int]  # (float_scores, score, post_id) of the last entry of a page
    PageArrays = tuple[ScoreArray, NDArray[np.int64], NDArray[np.int64], bool]

# The kernels, as src/igcore/_kernels/timeline.pyi states them; the rest of this module is their helpers.
__all__ = [
    "Timeline",
    "TimelineStore",
    "accepts_sources",
    "aggregate_activity",
    "merge_page",
    "timeline_from_bytes",
]

# -- entries -----------------------------------------------------------------------------------------


def _normal(score: Score, float_scores: bool) -> Score:
    """A score as the feed holds it: floats with -0.0 made 0.0; ints as they are."""
    return score + 0.0 if float_scores else score


def _arrays(entries: Sequence[Entry], float_scores: bool) -> EntryArrays:
    scores = cast(
        "ScoreArray", np.array([e[0] for e in entries], dtype=np.float64 if float_scores else np.int64)
    )
    post_ids = np.array([e[1] for e in entries], dtype=np.int64)
    author_ids = np.array([e[2] for e in entries], dtype=np.int64)
    return scores, post_ids, author_ids


# -- Timeline: a bounded, ordered, deduplicated cache ----------------------------------------------------


class Timeline:
    """The entries of one timeline in feed order, each post at most once, at most `max_len` of them.

    - ``insert(score, post_id, author_id) -> bool``: when the post is absent, the entry is added; when
      present with a lower key, the entry replaces it (author included); when present with an equal or
      greater key, nothing changes. Then, beyond `max_len`, the lowest entry is trimmed. Returns whether
      the entry now stands in the timeline.
    - ``insert_many(scores, post_ids, author_ids)``: ``insert`` of each entry, in array order.
    - ``remove_post(post_id) -> bool`` and ``remove_author(author_id) -> int`` (how many were removed);
      removing never brings back a trimmed entry.
    - Every method is atomic with respect to the others, from any thread: a reader sees the timeline
      before or after an update, never during one (here, each holds the timeline's lock).
    """

    __slots__ = ("max_len", "float_scores", "_entries", "_ranks", "_scores", "_lock")

    def __init__(self, max_len: int, float_scores: bool) -> None:
        self.max_len = max_len
        self.float_scores = float_scores
        self._entries: list[Entry] = []  # (score, post_id, author_id), feed order
        self._ranks: list[tuple[Score, int]] = []  # (-score, -post_id) of each entry: ascending, for bisect
        self._scores: dict[int, Score] = {}  # post_id -> score
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._entries)

    def _snapshot(self) -> list[Entry]:
        """The entries, (score, post_id, author_id) in feed order, as a new list."""
        with self._lock:
            return list(self._entries)

    def entries(self) -> EntryArrays:
        return _arrays(self._snapshot(), self.float_scores)

    def copy(self) -> Timeline:
        twin = Timeline(self.max_len, self.float_scores)
        with self._lock:
            twin._entries = list(self._entries)
            twin._ranks = list(self._ranks)
            twin._scores = dict(self._scores)
        return twin

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._ranks.clear()
            self._scores.clear()

    def _remove_at(self, position: int) -> Entry:
        del self._ranks[position]
        entry = self._entries.pop(position)
        del self._scores[entry[1]]
        return entry

    def insert(self, score: Score, post_id: int, author_id: int) -> bool:
        with self._lock:
            return self._insert(score, post_id, author_id)

    def _insert(self, score: Score, post_id: int, author_id: int) -> bool:
        score = _normal(score, self.float_scores)
        present = self._scores.get(post_id)
        if present is not None:
            if present >= score:
                return False
            self._remove_at(bisect.bisect_left(self._ranks, (-present, -post_id)))
        rank = (-score, -post_id)
        position = bisect.bisect_left(self._ranks, rank)
        self._ranks.insert(position, rank)
        self._entries.insert(position, (score, post_id, author_id))
        self._scores[post_id] = score
        if len(self._entries) > self.max_len:
            trimmed = self._remove_at(len(self._entries) - 1)
            return trimmed[1] != post_id
        return True

    def insert_many(
        self, scores: ScoreArray, post_ids: NDArray[np.int64], author_ids: NDArray[np.int64]
    ) -> None:
        entries = list(zip(scores.tolist(), post_ids.tolist(), author_ids.tolist()))
        with self._lock:
            for score, post_id, author_id in entries:
                self._insert(score, post_id, author_id)

    def remove_post(self, post_id: int) -> bool:
        with self._lock:
            present = self._scores.get(post_id)
            if present is None:
                return False
            self._remove_at(bisect.bisect_left(self._ranks, (-present, -post_id)))
            return True

    def remove_author(self, author_id: int) -> int:
        with self._lock:
            kept = [e for e in self._entries if e[2] != author_id]
            removed = len(self._entries) - len(kept)
            if removed:
                self._entries = kept
                self._ranks = [(-e[0], -e[1]) for e in kept]
                self._scores = {e[1]: e[0] for e in kept}
            return removed

    def to_bytes(self) -> bytes:
        """The entries in the codec's entries format (``igcore._reference.codec``), in feed order."""
        return codec.encode_entries(*self.entries())


def timeline_from_bytes(data: bytes, max_len: int) -> Timeline:
    """A timeline from ``to_bytes`` output, keeping its top `max_len` entries.

    Raises ``ValueError``: the codec's errors for bad bytes; for well-formed entries that no timeline
    holds, ``not a timeline: a NaN score at entry J``, ``not a timeline: entry J does not rank below
    entry J-1`` (keys must descend strictly), ``not a timeline: post P appears twice``, checked entry by
    entry from the first.
    """
    scores, post_ids, author_ids = codec.decode_entries(data)
    float_scores = scores.dtype == np.float64
    timeline = Timeline(max_len, float_scores)
    seen = set()
    previous = None
    entries = []
    for j, (score, post_id, author_id) in enumerate(
        zip(scores.tolist(), post_ids.tolist(), author_ids.tolist())
    ):
        if float_scores and math.isnan(score):
            raise ValueError(_messages.NOT_A_TIMELINE_NAN.format(entry=j))
        score = _normal(score, float_scores)
        if previous is not None and (score, post_id) >= previous:
            raise ValueError(_messages.NOT_A_TIMELINE_ORDER.format(entry=j, previous=j - 1))
        if post_id in seen:
            raise ValueError(_messages.DUPLICATE_POST.format(post_id=post_id))
        seen.add(post_id)
        previous = (score, post_id)
        entries.append((score, post_id, author_id))
    for score, post_id, author_id in entries[:max_len]:
        timeline._entries.append((score, post_id, author_id))
        timeline._ranks.append((-score, -post_id))
        timeline._scores[post_id] = score
    return timeline


# -- merge_page: fan-out on read -------------------------------------------------------------------------


def _accept(
    sources: Sequence[object], after: Cursor | None
) -> tuple[list[tuple[list[Entry], int | None]], bool]:
    """The sources as runs of entries, and whether scores are floats.

    Canonical sources are this backend's Timelines, or tuples of three 1-D C-contiguous native arrays
    of one length (int64 or float64 scores, int64 post and author ids), all of one score kind, the
    cursor's too. The public layer hands over nothing else (``accepts_sources`` tells it); anything else
    is refused here (``TypeError``, or ``ValueError`` for a cursor of the other score kind) rather than
    guessed at.
    """
    runs: list[tuple[list[Entry], int | None]] = []
    kinds: dict[bool, int] = {}  # float_scores -> the index of the first source of that kind
    for index, source in enumerate(sources):
        if type(source) is Timeline:
            runs.append((source._snapshot(), None))
            kinds.setdefault(source.float_scores, index)
            continue
        if not _canonical(source):
            raise TypeError(_messages.SOURCE_NOT_CANONICAL.format(index=index))
        scores, post_ids, author_ids = source
        float_scores = scores.dtype == np.float64
        runs.append((list(zip(scores.tolist(), post_ids.tolist(), author_ids.tolist())), index))
        kinds.setdefault(float_scores, index)
    if len(kinds) > 1:
        raise TypeError(
            _messages.SOURCES_MIX_SCORE_KINDS.format(int_index=kinds[False], float_index=kinds[True])
        )
    float_scores = next(iter(kinds), False)
    if after is not None and kinds and after[0] != float_scores:
        raise ValueError(
            _messages.CURSOR_SCORE_KIND.format(
                cursor_kind=_KIND_NAMES[after[0]], sources_kind=_KIND_NAMES[float_scores]
            )
        )
    return runs, (after[0] if after is not None and not kinds else float_scores)


_KIND_NAMES = {False: "int64", True: "float64"}


def _canonical(source: object) -> TypeGuard[EntryArrays]:
    """A tuple of three 1-D C-contiguous native arrays of one length: int64 or float64 scores, int64
    post and author ids."""
    if not isinstance(source, tuple) or len(source) != 3:
        return False
    scores, post_ids, author_ids = source
    if not all(type(a) is np.ndarray and a.ndim == 1 and a.flags.c_contiguous for a in source):
        return False
    if scores.dtype not in (np.int64, np.float64) or not scores.dtype.isnative:
        return False
    if any(a.dtype != np.int64 or not a.dtype.isnative for a in (post_ids, author_ids)):
        return False
    return len(scores) == len(post_ids) == len(author_ids)


def accepts_sources(sources: list[object], after: Cursor | None) -> bool:
    """Whether ``merge_page`` takes `sources` and the cursor `after` as they are (see ``_accept``):
    the public layer asks first, and converts the sources, or explains why it cannot, when not."""
    kinds = set() if after is None else {after[0]}
    for source in sources:
        if type(source) is Timeline:
            kinds.add(source.float_scores)
        elif _canonical(source):
            kinds.add(bool(source[0].dtype == np.float64))
        else:
            return False
    return len(kinds) <= 1


def _check_order(entries: Sequence[Entry], index: int, float_scores: bool) -> None:
    previous = None
    for j, (score, post_id, _) in enumerate(entries):
        if float_scores and math.isnan(score):
            raise ValueError(_messages.NAN_SCORE_IN_SOURCE.format(index=index, entry=j))
        key = (_normal(score, float_scores), post_id)
        if previous is not None and key > previous:
            raise ValueError(_messages.NOT_FEED_ORDER.format(index=index, entry=j, previous=j - 1))
        previous = key


def merge_page(
    sources: Sequence[object],
    limit: int,
    after: Cursor | None,
    exclude_authors: NDArray[np.int64] | None,
    per_author_cap: int | None,
) -> PageArrays:
    """One page of the feed that merges `sources` (canonical: see _accept).

    - The feed: every entry of every source whose author is not in `exclude_authors`, in feed order,
      each post once (the greatest key stands; on equal keys the earlier source). Muted authors are
      left out first, so a muted reshare never hides the original.
    - Each array source must be in feed order (equal keys allowed): ``ValueError("sources[I] is not in
      feed order: entry J ranks above entry J-1 (...)")`` or ``("sources[I] has a NaN score at index
      J")``, sources checked in turn, each from its first entry. Timelines are in order by construction.
    - `after`: None, or ``(float_scores, score, post_id)``, the key of the last entry of the previous
      page: the page starts at the first entry of the feed ranked strictly below it. A cursor names a
      position, so new entries above it never shift later pages.
    - The page takes up to `limit` entries in feed order; with `per_author_cap`, an author's entries
      beyond the cap on this page are skipped (dropped, not deferred: the feed stays in order).
    - Returns ``(scores, post_ids, author_ids, has_more)``; `has_more` says whether the feed holds an
      entry below the last one taken; it is False when the page reached the end of the feed.
    """
    runs, float_scores = _accept(sources, after)
    for entries, index in runs:
        if index is not None:
            _check_order(entries, index, float_scores)
    return _page(
        [entries for entries, _ in runs], float_scores, limit, after, exclude_authors, per_author_cap
    )


def _page(
    runs: Sequence[Sequence[Entry]],
    float_scores: bool,
    limit: int,
    after: Cursor | None,
    exclude_authors: NDArray[np.int64] | None,
    per_author_cap: int | None,
) -> PageArrays:
    """``merge_page`` of runs of entries already accepted and checked."""
    excluded = set(exclude_authors.tolist()) if exclude_authors is not None else set()

    candidates = []
    for entries in runs:
        for score, post_id, author_id in entries:
            if author_id not in excluded:
                candidates.append((_normal(score, float_scores), post_id, author_id))
    candidates.sort(key=lambda e: (e[0], e[1]), reverse=True)  # stable: earlier sources first on ties
    feed = []
    seen = set()
    for entry in candidates:
        if entry[1] not in seen:
            seen.add(entry[1])
            feed.append(entry)

    start = 0
    if after is not None:
        position = (after[1], after[2])
        while start < len(feed) and (feed[start][0], feed[start][1]) >= position:
            start += 1
    page: list[Entry] = []
    per_author: dict[int, int] = {}
    has_more = False
    for entry in feed[start:]:
        if len(page) == limit:
            has_more = True
            break
        if per_author_cap is not None:
            if per_author.get(entry[2], 0) >= per_author_cap:
                continue
            per_author[entry[2]] = per_author.get(entry[2], 0) + 1
        page.append(entry)
    return (*_arrays(page, float_scores), has_more)


# -- TimelineStore: fan-out on write ----------------------------------------------------------------------


class TimelineStore:
    """Timelines keyed by user id, all with one `max_len` and one score kind.

    - ``put(user_id, timeline)`` stores a copy; ``get(user_id)`` returns a copy, or None;
      ``discard(user_id) -> bool``; ``contains(user_id)``; ``users()``: the user ids, ascending.
    - ``merge_page(user_ids, ...)``: ``merge_page`` over the stored timelines of `user_ids`, in that
      order; users without a stored timeline contribute nothing.
    - ``fanout(score, post_id, author_id, follower_ids, create_missing) -> int``: ``insert`` into the
      timeline of each follower in turn; followers without one are skipped, or given an empty one first
      when `create_missing`. Returns how many of the inserts stood (``insert`` returned True).
    - ``backfill(user_id, source)`` (on follow): ``insert_many`` of the source's entries (a Timeline,
      in feed order, or arrays, in array order) into the user's timeline, which is created when missing.
      So, as Mastodon's FeedManager does, once the timeline is full only entries that rank above its
      lowest entry get in, and it stays within `max_len`.
    - ``remove_author(user_id, author_id) -> int`` (on unfollow): the timeline's ``remove_author``; 0
      without a timeline.
    - Every method is atomic with respect to the others, from any thread (as a Timeline's are).
    """

    def __init__(self, max_len: int, float_scores: bool) -> None:
        self.max_len = max_len
        self.float_scores = float_scores
        self._timelines: dict[int, Timeline] = {}
        self._lock = threading.Lock()  # held by every method, as each Timeline holds its own

    def __len__(self) -> int:
        return len(self._timelines)

    def contains(self, user_id: int) -> bool:
        return user_id in self._timelines

    def users(self) -> NDArray[np.int64]:
        with self._lock:
            return np.array(sorted(self._timelines), dtype=np.int64)

    def put(self, user_id: int, timeline: Timeline) -> None:
        copy = timeline.copy()
        with self._lock:
            self._timelines[user_id] = copy

    def get(self, user_id: int) -> Optional[Timeline]:
        with self._lock:
            timeline = self._timelines.get(user_id)
            return None if timeline is None else timeline.copy()

    def discard(self, user_id: int) -> bool:
        with self._lock:
            return self._timelines.pop(user_id, None) is not None

    def merge_page(
        self,
        user_ids: NDArray[np.int64],
        limit: int,
        after: Cursor | None,
        exclude_authors: NDArray[np.int64] | None,
        per_author_cap: int | None,
    ) -> PageArrays:
        with self._lock:
            timelines = [self._timelines.get(u) for u in user_ids.tolist()]
            runs = [t._entries for t in timelines if t is not None]
            return _page(runs, self.float_scores, limit, after, exclude_authors, per_author_cap)

    def fanout(
        self,
        score: Score,
        post_id: int,
        author_id: int,
        follower_ids: NDArray[np.int64],
        create_missing: bool,
    ) -> int:
        stood = 0
        with self._lock:
            for follower in follower_ids.tolist():
                timeline = self._timelines.get(follower)
                if timeline is None:
                    if not create_missing:
                        continue
                    timeline = self._timelines[follower] = Timeline(self.max_len, self.float_scores)
                stood += timeline.insert(score, post_id, author_id)
        return stood

    def backfill(self, user_id: int, source: Timeline | EntryArrays) -> None:
        entries = source.entries() if type(source) is Timeline else cast("EntryArrays", source)
        with self._lock:
            timeline = self._timelines.get(user_id)
            if timeline is None:
                timeline = self._timelines[user_id] = Timeline(self.max_len, self.float_scores)
            timeline.insert_many(*entries)

    def remove_author(self, user_id: int, author_id: int) -> int:
        with self._lock:
            timeline = self._timelines.get(user_id)
            return 0 if timeline is None else timeline.remove_author(author_id)


# -- aggregated activity ---------------------------------------------------------------------------------


def aggregate_activity(
    actor_ids: NDArray[np.int64],
    verbs: NDArray[np.int64],
    target_ids: NDArray[np.int64],
    timestamps: NDArray[np.int64],
    window_seconds: int,
    max_actors: int,
) -> tuple[NDArray[np.int64], ...]:
    """Groups activity events by ``(verb, target_id, window)``: "alice, bob and 3 others liked your post".

    - Windows are fixed (tumbling): ``window = timestamp // window_seconds`` (floor division, so
      negative times fall in their own windows). Fixed windows keep a group's identity stable as new
      events arrive, so a notification can be updated in place rather than re-grouped.
    - Per group: the latest timestamp, the number of events, the number of distinct actors, and the
      `max_actors` most recent distinct actors, ordered by each actor's latest event in the group,
      descending (on equal times, the larger actor id first).
    - Groups newest first: by latest timestamp descending, then verb ascending, then target ascending.
      The answer does not depend on the order of the events.
    - Returns int64 arrays ``(verbs, target_ids, windows, latest_timestamps, event_counts,
      actor_counts, actors, actor_offsets)``; group g's actors are
      ``actors[actor_offsets[g]:actor_offsets[g + 1]]``.
    """
    groups: dict[
        tuple[int, int, int], list[Any]
    ] = {}  # (verb, target, window) -> [latest, events, {actor: latest}]
    for actor, verb, target, timestamp in zip(
        actor_ids.tolist(), verbs.tolist(), target_ids.tolist(), timestamps.tolist()
    ):
        group = groups.setdefault((verb, target, timestamp // window_seconds), [timestamp, 0, {}])
        group[0] = max(group[0], timestamp)
        group[1] += 1
        group[2][actor] = max(group[2].get(actor, timestamp), timestamp)
    order = sorted(groups, key=lambda key: (-groups[key][0], key[0], key[1]))
    columns: list[list[int]] = [[] for _ in range(6)]
    actors: list[int] = []
    offsets = [0]
    for key in order:
        latest, events, by_actor = groups[key]
        for column, value in zip(columns, (key[0], key[1], key[2], latest, events, len(by_actor))):
            column.append(value)
        recent = sorted(by_actor.items(), key=lambda item: (item[1], item[0]), reverse=True)
        actors.extend(actor for actor, _ in recent[:max_actors])
        offsets.append(len(actors))
    return tuple(np.array(c, dtype=np.int64) for c in (*columns, actors, offsets))
