"""Timelines: home-feed merging (fan-out on read), bounded timeline caches, fan-out on write, and
aggregated activity.

- ``merge_page(sources, limit, cursor, ...)`` pages through the feed that merges timelines and
  ``(scores, post_ids, author_ids)`` arrays, deduplicated, filtered, with exact pagination.
- ``Timeline``: a bounded, ordered, deduplicated cache of one feed, with a compact binary form.
- ``TimelineStore``: many timelines keyed by user id in native memory; ``fanout``, ``backfill`` and
  ``remove_author`` keep them up to date as posts arrive and users follow and unfollow.
- ``aggregate_activity``: "alice, bob and 3 others liked your post".

The meaning (feed order, ties, duplicates, limits, errors) is defined in ``igcore._reference.timeline``.
Arguments are checked here, once, so that errors read the same on every backend. A ``Timeline`` or
``TimelineStore`` keeps the backend that was serving when it was made; ``to_backend`` converts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import math
import struct
from typing import TYPE_CHECKING, Any, Iterator, NamedTuple, Optional, TypeVar, Union, overload

import numpy as np

from . import _backend, _messages
from ._arrays import INT64_MAX, INT64_MIN, byte_string, count, int64, int64_array, optional_count
from .codec import Entries, entry_arrays

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from collections.abc import Set as AbstractSet
    from types import ModuleType

    from numpy.typing import DTypeLike, NDArray
    from typing_extensions import Buffer

    from ._typing import IntArrayLike, IntLike, Score, ScoreArray, ScoreArrayLike, ScoreLike

    # (float_scores, score, post_id): the key of the last entry of the previous page.
    Cursor = tuple[bool, Score, int]
    # What a kernel's merge_page answers: the page's arrays and whether the feed goes on.
    KernelPage = tuple[ScoreArray, NDArray[np.int64], NDArray[np.int64], bool]

_T = TypeVar("_T")

__all__ = [
    "Activity",
    "Page",
    "Timeline",
    "TimelineStore",
    "aggregate_activity",
    "backfill",
    "cursor_after",
    "fanout",
    "merge_page",
    "remove_author",
]

HOT_PATH = "timeline"
DEFAULT_MAX_LEN = 800  # Instagram-like home caches hold a few hundred entries; Mastodon keeps 400.


class Page(NamedTuple):
    """One page of a feed: numpy arrays in feed order (the fields of ``Entries``, in its order), and the
    cursor of the next page (None when the feed holds nothing more)."""

    scores: Union[NDArray[np.int64], NDArray[np.float64]]
    post_ids: NDArray[np.int64]
    author_ids: NDArray[np.int64]
    next_cursor: Optional[str]


# -- arguments ---------------------------------------------------------------------------------------


def _float_scores(score_dtype: DTypeLike) -> bool:
    try:
        dtype = np.dtype(score_dtype)
    except TypeError:
        dtype = None
    if dtype == np.int64:
        return False
    if dtype == np.float64:
        return True
    raise ValueError(f"score_dtype must be int64 or float64, not {score_dtype!r}")


def _score(value: object, float_scores: bool, name: str = "score") -> Score:
    """One score as a timeline of this kind holds it: an int64 int, or a float64 that is not NaN."""
    if not float_scores:
        if isinstance(value, (float, np.floating)):
            raise TypeError(f"this timeline holds int64 scores; {name} is a float ({value!r})")
        return int64(value, name)
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a number, not {type(value).__name__}")
    value = float(value)
    if math.isnan(value):
        raise ValueError(f"{name} is NaN, which has no place in feed order")
    return value


def _scores(scores: ScoreArray, float_scores: bool, name: str = "scores") -> ScoreArray:
    """Score arrays for a timeline of this kind: ints are converted for a float timeline, never back."""
    if float_scores:
        if scores.dtype != np.float64:
            scores = scores.astype(np.float64)
        if np.isnan(scores).any():
            raise ValueError(f"{name} hold NaN, which has no place in feed order")
    elif scores.dtype != np.int64:
        raise TypeError(f"this timeline holds int64 scores; {name} are {scores.dtype}")
    return scores


def _ids(values: object, name: str) -> NDArray[np.int64]:
    """`int64_array`, with the common case (a contiguous native int64 array) checked first, quickly."""
    if (
        type(values) is np.ndarray
        and values.dtype is _INT64
        and values.ndim == 1
        and values.flags.c_contiguous
    ):
        return values
    return int64_array(values, name)


_INT64 = np.dtype(np.int64)


def _author_set(exclude_authors: IntArrayLike | AbstractSet[IntLike] | None) -> Optional[NDArray[np.int64]]:
    if exclude_authors is None:
        return None
    if isinstance(exclude_authors, (set, frozenset)):
        exclude_authors = list(exclude_authors)
    return _ids(exclude_authors, "exclude_authors")


def _dtype_name(float_scores: bool) -> str:
    return "float64" if float_scores else "int64"


# -- cursors -----------------------------------------------------------------------------------------
#
# A cursor names a position: the key (score, post_id) of the last entry of a page. The next page starts
# strictly below it, so posts arriving at the top never shift later pages, and no entry is lost or
# repeated. It is 18 bytes (version, score kind, score, post id) and a 16-byte BLAKE2b tag, in URL-safe
# base64 without padding (46 characters). Without a `cursor_key` the tag is a checksum: it catches a
# truncated or corrupted cursor. With a `cursor_key` (a server secret) it is a keyed MAC: a client cannot
# forge or alter a cursor. Either way a bad cursor raises ValueError, never a wrong page.

_CURSOR_VERSION = 1
_CURSOR_PAYLOAD = struct.Struct("<BBqq")
_CURSOR_TAG = 16
_CURSOR_PERSON = b"igcore cursor"
_FLOAT_BITS = struct.Struct("<d")
_INT_BITS = struct.Struct("<q")


# The BLAKE2b state after absorbing a key, per key: tagging a cursor copies it, cheaper than keying anew.
_keyed_states: dict[object, hashlib.blake2b] = {}


def _cursor_tag(payload: bytes, cursor_key: object) -> bytes:
    try:
        state = _keyed_states[cursor_key]
    except (KeyError, TypeError):  # a new key, or an unhashable one (a bytearray)
        state = _keyed_state(cursor_key)
    tag = state.copy()
    tag.update(payload)
    return tag.digest()


def _keyed_state(cursor_key: object) -> hashlib.blake2b:
    if cursor_key is None:
        key = b""
    elif isinstance(cursor_key, str):
        key = cursor_key.encode()
    elif isinstance(cursor_key, (bytes, bytearray, memoryview)):
        key = bytes(cursor_key)
    else:
        raise TypeError(f"cursor_key must be bytes or str, not {type(cursor_key).__name__}")
    if len(key) > hashlib.blake2b.MAX_KEY_SIZE:
        key = hashlib.blake2b(key).digest()
    state = hashlib.blake2b(digest_size=_CURSOR_TAG, key=key, person=_CURSOR_PERSON)
    if isinstance(cursor_key, (str, bytes)) or cursor_key is None:
        if len(_keyed_states) >= 16:  # a few server secrets at a time; never grow without bound
            _keyed_states.clear()
        _keyed_states[cursor_key] = state
    return state


def _encode_cursor(float_scores: bool, score: Score, post_id: int, cursor_key: object) -> str:
    score_bits = _INT_BITS.unpack(_FLOAT_BITS.pack(score))[0] if float_scores else score
    payload = _CURSOR_PAYLOAD.pack(_CURSOR_VERSION, int(float_scores), score_bits, post_id)
    raw = payload + _cursor_tag(payload, cursor_key)
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def cursor_after(score: ScoreLike, post_id: IntLike, *, cursor_key: str | Buffer | None = None) -> str:
    """The cursor of the page that starts just below the entry ``(score, post_id)``, in any feed: paging
    from a known entry, as Mastodon's ``max_id`` does (where scores are the post ids,
    ``cursor=cursor_after(max_id, max_id)``). An int score is for a feed of int64 scores, a float for
    float64. `cursor_key` signs it as ``merge_page`` would."""
    float_scores = isinstance(score, (float, np.floating))
    return _encode_cursor(float_scores, _score(score, float_scores), int64(post_id, "post_id"), cursor_key)


def _decode_cursor(cursor: object, cursor_key: object) -> Cursor | None:
    """``(float_scores, score, post_id)`` from a cursor, or None for None; ValueError when it is bad."""
    if cursor is None:
        return None
    if not isinstance(cursor, str):
        raise TypeError(f"cursor must be a str or None, not {type(cursor).__name__}")
    size = _CURSOR_PAYLOAD.size + _CURSOR_TAG
    try:
        raw = base64.urlsafe_b64decode(cursor.encode("ascii") + b"==")
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise ValueError(_messages.MALFORMED_CURSOR) from None
    if len(raw) != size or len(cursor) != (4 * size + 2) // 3:
        raise ValueError(_messages.MALFORMED_CURSOR)
    payload, tag = raw[: _CURSOR_PAYLOAD.size], raw[_CURSOR_PAYLOAD.size :]
    if not hmac.compare_digest(tag, _cursor_tag(payload, cursor_key)):
        raise ValueError("cursor failed verification: corrupted, forged, or made with another cursor_key")
    version, kind, score_bits, post_id = _CURSOR_PAYLOAD.unpack(payload)
    if version != _CURSOR_VERSION or kind > 1:
        raise ValueError(_messages.MALFORMED_CURSOR)
    if kind == 0:
        return False, score_bits, post_id
    score = _FLOAT_BITS.unpack(_INT_BITS.pack(score_bits))[0]
    if math.isnan(score):
        raise ValueError(_messages.MALFORMED_CURSOR)
    return True, score, post_id


def _make_page(result: KernelPage, cursor_key: object) -> Page:
    scores, post_ids, author_ids, has_more = result
    next_cursor = None
    if has_more:
        last_score = scores.item(-1)
        next_cursor = _encode_cursor(type(last_score) is float, last_score, post_ids.item(-1), cursor_key)
    return Page(scores, post_ids, author_ids, next_cursor)


# -- merge_page ---------------------------------------------------------------------------------------


def merge_page(
    sources: Iterable[Timeline | tuple[ScoreArrayLike, IntArrayLike, IntArrayLike]],
    limit: int = 50,
    cursor: Optional[str] = None,
    exclude_authors: IntArrayLike | AbstractSet[IntLike] | None = None,
    per_author_cap: Optional[int] = None,
    *,
    cursor_key: str | Buffer | None = None,
) -> Page:
    """One page of the feed that merges `sources` (fan-out on read).

    - `sources`: ``Timeline`` objects and ``(scores, post_ids, author_ids)`` array triples, each in feed
      order (checked: ``ValueError`` names the source and the entry otherwise). All hold one score kind,
      int64 or float64; mixing them raises ``TypeError`` (convert explicitly, e.g. ``.astype(float)``).
      The hybrid home feed is one call: ``merge_page([home_timeline, *celebrity_timelines], ...)``.
    - The feed holds each post once (the entry with the greatest ``(score, post_id)`` key stands; on
      equal keys the earlier source's), leaves out `exclude_authors` (mutes, blocks) first, and is in
      feed order: descending by score, then by post id.
    - `limit`: the most entries on the page (at least 1). `per_author_cap`: at most this many entries of
      one author on a page; the others are skipped, not deferred.
    - `cursor`: the previous page's ``next_cursor``; pages are exact: their concatenation is the whole
      feed, nothing lost or repeated, whatever the page size (less what ``per_author_cap`` skips).
      `cursor_key`: a server secret that signs cursors, so that a forged cursor is refused; the same key
      must be given for every page. A malformed or tampered cursor raises ``ValueError``.

    Returns a ``Page``. Runs on the backend of the Timelines among `sources` (on the current backend when
    there are none); a Timeline of another backend raises ``TypeError``.
    """
    limit = count(limit, "limit", 1)
    after = _decode_cursor(cursor, cursor_key)
    excluded = _author_set(exclude_authors)
    cap = optional_count(per_author_cap, "per_author_cap", 1)
    if not isinstance(sources, (list, tuple)):
        if isinstance(sources, (Timeline, np.ndarray, str, bytes)) or not hasattr(sources, "__iter__"):
            raise TypeError(
                f"sources must be a list of Timelines and (scores, post_ids, author_ids) triples, "
                f"not {type(sources).__name__}"
            )
        sources = list(sources)
    elif type(sources) is not list:
        sources = list(sources)
    # The explicit step: the kernels say whether they take the sources as they are; if not, they are
    # converted here, or the problem explained. Canonical arrays alone (thousands of followees' columns,
    # the costly case to look through twice) are taken by the current backend's kernels as they are.
    kernels = _backend.kernels(HOT_PATH)
    if kernels.accepts_sources(sources, after):
        return _make_page(kernels.merge_page(sources, limit, after, excluded, cap), cursor_key)
    owner = next((s for s in sources if type(s) is Timeline), None)
    kernels = owner._kernels if owner is not None else kernels
    cores = [s._core if type(s) is Timeline else s for s in sources]
    if not kernels.accepts_sources(cores, after):
        cores = _canonical_sources(sources, kernels, after)
    return _make_page(kernels.merge_page(cores, limit, after, excluded, cap), cursor_key)


def _canonical_sources(sources: Sequence[Any], kernels: ModuleType, after: Cursor | None) -> list[Any]:
    """Each source as its backend object or as three canonical arrays; a clear error otherwise."""
    cores = []
    kinds: dict[bool, int] = {}  # float_scores -> the index of the first source of that kind
    for i, source in enumerate(sources):
        if type(source) is Timeline:
            if source._kernels is not kernels:
                raise TypeError(
                    _messages.SOURCE_OF_ANOTHER_BACKEND.format(
                        index=i, backend=source.backend, feed_backend=_backend.backend_name(kernels)
                    )
                )
            cores.append(source._core)
            kinds.setdefault(source._core.float_scores, i)
            continue
        if isinstance(source, (TimelineStore, str, bytes, dict)) or not hasattr(source, "__len__"):
            raise TypeError(_messages.NOT_A_SOURCE.format(what=f"sources[{i}]", type=type(source).__name__))
        if len(source) != 3:
            raise ValueError(_messages.NOT_A_TRIPLE.format(what=f"sources[{i}]", count=len(source)))
        scores, post_ids, author_ids = source
        try:
            arrays = entry_arrays(scores, post_ids, author_ids)
        except (TypeError, ValueError, OverflowError) as exc:
            raise type(exc)(f"sources[{i}]: {exc}") from None
        cores.append(arrays)
        kinds.setdefault(arrays[0].dtype == np.float64, i)
    if len(kinds) > 1:
        raise TypeError(
            _messages.SOURCES_MIX_SCORE_KINDS.format(int_index=kinds[False], float_index=kinds[True])
        )
    if after is not None and kinds and after[0] not in kinds:
        raise ValueError(
            _messages.CURSOR_SCORE_KIND.format(
                cursor_kind=_dtype_name(after[0]), sources_kind=_dtype_name(not after[0])
            )
        )
    return cores


# -- Timeline ----------------------------------------------------------------------------------------


class _Native:
    """What a Timeline and a TimelineStore share: a core object in one backend's native memory."""

    __slots__ = ("_core", "_kernels")
    _core: Any  # the backend's object (see igcore._reference.timeline)
    _kernels: ModuleType

    @property
    def max_len(self) -> int:
        return self._core.max_len

    @property
    def score_dtype(self) -> np.dtype[Any]:
        return np.dtype(np.float64 if self._core.float_scores else np.int64)

    @property
    def backend(self) -> str:
        """The backend that holds it: rust, cython or python."""
        return _backend.backend_name(self._kernels)


class Timeline(_Native):
    """A bounded, ordered, deduplicated timeline cache: the top `max_len` entries of one feed.

    Always in feed order (descending by ``(score, post_id)``), each post once: inserting a post again
    keeps the entry with the greater key. Beyond `max_len`, the lowest entries are trimmed. Scores are
    int64 (``score_dtype="int64"``, e.g. timestamps) or float64 (ranked feeds); ints given to a float
    timeline become floats, floats given to an int timeline raise ``TypeError``.

    Held in the native memory of the backend that serves timelines when it is made (``backend``);
    ``to_backend(name)`` copies it into another. ``to_bytes`` / ``from_bytes``: the compact form of
    ``igcore.codec.encode_entries``, the same bytes from every backend.
    """

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable; typeshed types object.__hash__ as a method

    def __init__(self, max_len: int = DEFAULT_MAX_LEN, score_dtype: DTypeLike = "int64") -> None:
        kernels = _backend.kernels(HOT_PATH)
        self._kernels = kernels
        self._core = kernels.Timeline(count(max_len, "max_len", 1), _float_scores(score_dtype))

    @classmethod
    def _wrap(cls, core: Any, kernels: ModuleType) -> Timeline:
        timeline = cls.__new__(cls)
        timeline._core = core
        timeline._kernels = kernels
        return timeline

    def insert(self, score: ScoreLike, post_id: IntLike, author_id: IntLike) -> bool:
        """Adds one entry; returns whether it now stands (False when the post is already there with an
        equal or greater key, or when the entry ranks below a full timeline)."""
        core = self._core
        # The common case, checked inline (a call per argument would cost more than the insert).
        if (
            type(post_id) is int
            and type(author_id) is int
            and INT64_MIN <= post_id <= INT64_MAX
            and INT64_MIN <= author_id <= INT64_MAX
            and (
                (type(score) is float and score == score)  # not NaN
                if core.float_scores
                else (type(score) is int and INT64_MIN <= score <= INT64_MAX)
            )
        ):
            return core.insert(score, post_id, author_id)
        return core.insert(
            _score(score, core.float_scores), int64(post_id, "post_id"), int64(author_id, "author_id")
        )

    def insert_many(self, scores: ScoreArrayLike, post_ids: IntArrayLike, author_ids: IntArrayLike) -> None:
        """``insert`` of each entry, in array order (the arrays need not be in feed order)."""
        scores, post_ids, author_ids = entry_arrays(scores, post_ids, author_ids)
        self._core.insert_many(_scores(scores, self._core.float_scores), post_ids, author_ids)

    def remove_post(self, post_id: IntLike) -> bool:
        """Removes the post's entry (a deleted post); returns whether it was there."""
        return self._core.remove_post(int64(post_id, "post_id"))

    def remove_author(self, author_id: IntLike) -> int:
        """Removes every entry of the author (on unfollow, block); returns how many."""
        return self._core.remove_author(int64(author_id, "author_id"))

    def clear(self) -> None:
        self._core.clear()

    def page(
        self,
        limit: int = 50,
        cursor: Optional[str] = None,
        exclude_authors: IntArrayLike | AbstractSet[IntLike] | None = None,
        per_author_cap: Optional[int] = None,
        *,
        cursor_key: str | Buffer | None = None,
    ) -> Page:
        """A page of this timeline: ``merge_page([self], ...)``."""
        return merge_page([self], limit, cursor, exclude_authors, per_author_cap, cursor_key=cursor_key)

    def entries(self) -> Entries:
        """The entries in feed order, as three new arrays."""
        return Entries(*self._core.entries())

    def __len__(self) -> int:
        return len(self._core)

    def __iter__(self) -> Iterator[tuple[Score, int, int]]:
        scores, post_ids, author_ids = self._core.entries()
        return zip(scores.tolist(), post_ids.tolist(), author_ids.tolist())

    def __eq__(self, other: object) -> bool:
        """Equal when they hold the same entries with the same `max_len` and score dtype (a timeline of
        another backend may be equal: comparing reads both, it mixes nothing)."""
        if not isinstance(other, Timeline):
            return NotImplemented
        if (self.max_len, self.score_dtype) != (other.max_len, other.score_dtype):
            return False
        mine, theirs = self._core.entries(), other._core.entries()
        return all(np.array_equal(a, b) for a, b in zip(mine, theirs))

    def __repr__(self) -> str:
        return (
            f"<Timeline of {len(self)} entries, max_len={self.max_len}, {self.score_dtype} scores, "
            f"{self.backend} backend>"
        )

    def copy(self) -> Timeline:
        return Timeline._wrap(self._core.copy(), self._kernels)

    def to_backend(self, name: str) -> Timeline:
        """A copy held by backend `name` (an explicit conversion; the copy is equal to this one)."""
        with _backend.use_backend(name):
            kernels = _backend.kernels(HOT_PATH)
        return Timeline._wrap(kernels.timeline_from_bytes(self.to_bytes(), self.max_len), kernels)

    def to_bytes(self) -> bytes:
        """The entries in the compact form of ``igcore.codec.encode_entries`` (identical bytes from every
        backend), for a cache such as Redis or memcached. `max_len` is configuration, not data: give it
        again to ``from_bytes``."""
        return self._core.to_bytes()

    @classmethod
    def from_bytes(cls, data: Buffer, max_len: int = DEFAULT_MAX_LEN) -> Timeline:
        """A timeline from ``to_bytes`` output (of any backend), keeping its top `max_len` entries.
        Truncated, corrupted or foreign bytes raise ``ValueError``; the score dtype comes from the data."""
        max_len = count(max_len, "max_len", 1)
        kernels = _backend.kernels(HOT_PATH)
        return cls._wrap(kernels.timeline_from_bytes(byte_string(data, "data"), max_len), kernels)


# -- TimelineStore and fan-out on write ---------------------------------------------------------------


class TimelineStore(_Native):
    """Timelines keyed by user id, held in native memory: the home timelines of a web tier's users.

    ``store[user_id] = timeline`` stores a copy; ``store[user_id]`` returns a copy (``KeyError`` when
    absent); ``del store[user_id]``; ``user_id in store``; ``len(store)``; ``users()``. Every timeline
    shares the store's `max_len` and score dtype. ``store.merge_page(user_ids, ...)`` merges stored
    timelines as ``merge_page`` does, with no Python object per timeline or entry. ``fanout``,
    ``backfill`` and ``remove_author`` update it as posts arrive and users follow and unfollow.
    """

    __slots__ = ()
    __hash__ = None  # type: ignore[assignment]  # mutable, so unhashable (as Timeline)

    def __init__(self, max_len: int = DEFAULT_MAX_LEN, score_dtype: DTypeLike = "int64") -> None:
        kernels = _backend.kernels(HOT_PATH)
        self._kernels = kernels
        self._core = kernels.TimelineStore(count(max_len, "max_len", 1), _float_scores(score_dtype))

    def __len__(self) -> int:
        return len(self._core)

    def __contains__(self, user_id: IntLike) -> bool:
        return self._core.contains(int64(user_id, "user_id"))

    def users(self) -> NDArray[np.int64]:
        """The user ids that have a timeline, ascending."""
        return self._core.users()

    def __getitem__(self, user_id: IntLike) -> Timeline:
        core = self._core.get(int64(user_id, "user_id"))
        if core is None:
            raise KeyError(user_id)
        return Timeline._wrap(core, self._kernels)

    @overload
    def get(self, user_id: IntLike) -> Timeline | None: ...
    @overload
    def get(self, user_id: IntLike, default: _T) -> Timeline | _T: ...
    def get(self, user_id: IntLike, default: object = None) -> object:
        core = self._core.get(int64(user_id, "user_id"))
        return default if core is None else Timeline._wrap(core, self._kernels)

    def __setitem__(self, user_id: IntLike, timeline: Timeline) -> None:
        user_id = int64(user_id, "user_id")
        self._core.put(user_id, self._own(timeline, "the timeline")._core)

    def __delitem__(self, user_id: IntLike) -> None:
        if not self._core.discard(int64(user_id, "user_id")):
            raise KeyError(user_id)

    def _own(self, timeline: object, what: str) -> Timeline:
        """`timeline` when it fits this store (its backend, max_len and score dtype)."""
        if not isinstance(timeline, Timeline):
            raise TypeError(f"{what} must be a Timeline, not {type(timeline).__name__}")
        if timeline._kernels is not self._kernels:
            raise TypeError(
                _messages.HELD_BY_ANOTHER_BACKEND.format(
                    what=what, backend=timeline.backend, store_backend=self.backend
                )
            )
        if (timeline.max_len, timeline.score_dtype) != (self.max_len, self.score_dtype):
            raise ValueError(
                f"{what} has max_len={timeline.max_len} and {timeline.score_dtype} scores; this store "
                f"holds max_len={self.max_len} and {self.score_dtype} scores"
            )
        return timeline

    def merge_page(
        self,
        user_ids: IntArrayLike,
        limit: int = 50,
        cursor: Optional[str] = None,
        exclude_authors: IntArrayLike | AbstractSet[IntLike] | None = None,
        per_author_cap: Optional[int] = None,
        *,
        cursor_key: str | Buffer | None = None,
    ) -> Page:
        """``merge_page`` of the stored timelines of `user_ids` (fan-out on read over the store); users
        without a timeline contribute nothing."""
        user_ids = _ids(user_ids, "user_ids")
        limit = count(limit, "limit", 1)
        after = _decode_cursor(cursor, cursor_key)
        float_scores = self._core.float_scores
        if after is not None and after[0] != float_scores:
            raise ValueError(
                f"the cursor belongs to a feed with {_dtype_name(after[0])} scores; "
                f"this store has {_dtype_name(float_scores)} scores"
            )
        excluded = _author_set(exclude_authors)
        cap = optional_count(per_author_cap, "per_author_cap", 1)
        return _make_page(self._core.merge_page(user_ids, limit, after, excluded, cap), cursor_key)

    def __repr__(self) -> str:
        return (
            f"<TimelineStore of {len(self)} timelines, max_len={self.max_len}, {self.score_dtype} scores, "
            f"{self.backend} backend>"
        )


def fanout(
    store: TimelineStore,
    score: ScoreLike,
    post_id: IntLike,
    author_id: IntLike,
    follower_ids: IntArrayLike,
    *,
    create_missing: bool = False,
) -> int:
    """Fan-out on write: inserts one post into the timeline of each follower (as ``Timeline.insert``).

    Followers without a timeline in the store are skipped (their feed is built on read when they come
    back, as large services do for inactive users), or given an empty one with ``create_missing=True``.
    Returns how many timelines took the post.
    """
    if not isinstance(store, TimelineStore):
        raise TypeError(_messages.NOT_A_TIMELINE_STORE.format(type=type(store).__name__))
    core = store._core
    return core.fanout(
        _score(score, core.float_scores),
        int64(post_id, "post_id"),
        int64(author_id, "author_id"),
        _ids(follower_ids, "follower_ids"),
        bool(create_missing),
    )


def backfill(
    store: TimelineStore,
    user_id: IntLike,
    author_timeline: Timeline | tuple[ScoreArrayLike, IntArrayLike, IntArrayLike],
) -> None:
    """On follow: the author's entries into the user's timeline (created when missing), as
    ``insert_many`` does, so a full timeline takes only entries that rank above its lowest entry and
    stays within ``max_len`` (as Mastodon's FeedManager does). `author_timeline`: a ``Timeline`` of the
    store's backend, or ``(scores, post_ids, author_ids)`` arrays."""
    if not isinstance(store, TimelineStore):
        raise TypeError(_messages.NOT_A_TIMELINE_STORE.format(type=type(store).__name__))
    user_id = int64(user_id, "user_id")
    float_scores = store._core.float_scores
    if isinstance(author_timeline, Timeline):
        if author_timeline._kernels is not store._kernels:
            raise TypeError(
                _messages.HELD_BY_ANOTHER_BACKEND.format(
                    what="author_timeline", backend=author_timeline.backend, store_backend=store.backend
                )
            )
        if author_timeline._core.float_scores != float_scores:
            raise TypeError(
                f"author_timeline has {author_timeline.score_dtype} scores and the store "
                f"{_dtype_name(float_scores)}; convert explicitly"
            )
        source = author_timeline._core
    else:
        if isinstance(author_timeline, (str, bytes, dict)) or not hasattr(author_timeline, "__len__"):
            raise TypeError(
                _messages.NOT_A_SOURCE.format(what="author_timeline", type=type(author_timeline).__name__)
            )
        if len(author_timeline) != 3:
            raise ValueError(
                _messages.NOT_A_TRIPLE.format(what="author_timeline", count=len(author_timeline))
            )
        scores, post_ids, author_ids = entry_arrays(*author_timeline)
        source = (_scores(scores, float_scores), post_ids, author_ids)
    store._core.backfill(user_id, source)


def remove_author(store: TimelineStore, user_id: IntLike, author_id: IntLike) -> int:
    """On unfollow: removes the author's entries from the user's timeline; returns how many."""
    if not isinstance(store, TimelineStore):
        raise TypeError(_messages.NOT_A_TIMELINE_STORE.format(type=type(store).__name__))
    return store._core.remove_author(int64(user_id, "user_id"), int64(author_id, "author_id"))


# -- aggregated activity -------------------------------------------------------------------------------


class Activity(NamedTuple):
    """Activity groups, newest first, in columns (int64 arrays of one length, plus the actors).

    Group ``g`` is: ``verbs[g]`` on ``target_ids[g]`` in window ``windows[g]`` (the window starts at
    ``windows[g] * window_seconds``), last at ``latest_timestamps[g]``, with ``event_counts[g]`` events by
    ``actor_counts[g]`` distinct actors, the most recent of whom are ``actors_of(g)``.
    """

    verbs: NDArray[np.int64]
    target_ids: NDArray[np.int64]
    windows: NDArray[np.int64]
    latest_timestamps: NDArray[np.int64]
    event_counts: NDArray[np.int64]
    actor_counts: NDArray[np.int64]
    actors: NDArray[np.int64]
    actor_offsets: NDArray[np.int64]

    def actors_of(self, group: int) -> NDArray[np.int64]:
        """The most recent distinct actors of group `group`, most recent first."""
        return self.actors[self.actor_offsets[group] : self.actor_offsets[group + 1]]


def aggregate_activity(
    actor_ids: IntArrayLike,
    verbs: IntArrayLike,
    target_ids: IntArrayLike,
    timestamps: IntArrayLike,
    window_seconds: int,
    max_actors: int = 3,
) -> Activity:
    """Groups activity by ``(verb, target)`` within fixed time windows, newest group first: what a
    notification feed shows as "alice, bob and 3 others liked your post".

    `actor_ids`, `verbs` (small ints: like, comment, follow...), `target_ids` and `timestamps` (int64,
    e.g. seconds) are arrays of one length; events may come in any order. Windows are
    ``timestamp // window_seconds``. Each group holds its latest timestamp, its event count, its number
    of distinct actors, and its `max_actors` most recent distinct actors. Returns an ``Activity``.
    """
    columns = [
        int64_array(values, name)
        for values, name in (
            (actor_ids, "actor_ids"),
            (verbs, "verbs"),
            (target_ids, "target_ids"),
            (timestamps, "timestamps"),
        )
    ]
    lengths = [len(c) for c in columns]
    if len(set(lengths)) > 1:
        names = ("actor_ids", "verbs", "target_ids", "timestamps")
        raise ValueError(_messages.ACTIVITY_LENGTHS_DIFFER.format(**dict(zip(names, lengths))))
    window_seconds = count(window_seconds, "window_seconds", 1)
    max_actors = count(max_actors, "max_actors")
    return Activity(*_backend.kernels(HOT_PATH).aggregate_activity(*columns, window_seconds, max_actors))
