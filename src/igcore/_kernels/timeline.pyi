"""The timeline kernels: what ``igcore.timeline`` calls on ``_backend.kernels("timeline")``. The
reference defines what each kernel does, ties and errors included. Sources arrive in canonical form
(``accepts_sources`` says whether they are; ``merge_page`` refuses any other with ``TypeError``). The
rules every stub follows are in README.md beside it.
"""

from typing import TypeAlias, final

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Timeline",
    "TimelineStore",
    "accepts_sources",
    "aggregate_activity",
    "merge_page",
    "timeline_from_bytes",
]

_Ids: TypeAlias = NDArray[np.int64]
# One timeline, store or feed holds one kind of score: int64 or float64.
_Scores: TypeAlias = NDArray[np.int64] | NDArray[np.float64]
# (scores, post_ids, author_ids), of one length, in feed order unless said otherwise.
_Entries: TypeAlias = tuple[_Scores, _Ids, _Ids]
# A page's position: (float_scores, score, post_id), the key of the last entry of the previous page.
_After: TypeAlias = tuple[bool, int | float, int]
# (scores, post_ids, author_ids, has_more): the page in feed order, and whether the feed goes on.
_Page: TypeAlias = tuple[_Scores, _Ids, _Ids, bool]

@final
class Timeline:
    """A bounded, ordered, deduplicated timeline: at most `max_len` entries in feed order."""

    max_len: int
    float_scores: bool
    def __new__(cls, max_len: int, float_scores: bool) -> Timeline: ...
    def __init__(self, max_len: int, float_scores: bool) -> None: ...
    def __len__(self) -> int: ...
    def insert(self, score: int | float, post_id: int, author_id: int) -> bool: ...
    def insert_many(self, scores: _Scores, post_ids: _Ids, author_ids: _Ids) -> None: ...
    def remove_post(self, post_id: int) -> bool: ...
    def remove_author(self, author_id: int) -> int: ...
    def clear(self) -> None: ...
    def entries(self) -> _Entries: ...
    def copy(self) -> Timeline: ...
    def to_bytes(self) -> bytes: ...

def timeline_from_bytes(data: bytes, max_len: int) -> Timeline: ...

# Sources are this module's Timelines and canonical (scores, post_ids, author_ids) triples, of one
# score kind (the cursor's too).
# Whether merge_page takes these sources and cursor as they are: the public layer asks first, and
# converts the sources (or explains why it cannot) when not.
def accepts_sources(sources: list[object], after: _After | None) -> bool: ...
def merge_page(
    sources: list[Timeline | _Entries],
    limit: int,
    after: _After | None,
    exclude_authors: _Ids | None,
    per_author_cap: int | None,
) -> _Page: ...

@final
class TimelineStore:
    """Timelines keyed by user id, all with one `max_len` and one score kind."""

    max_len: int
    float_scores: bool
    def __new__(cls, max_len: int, float_scores: bool) -> TimelineStore: ...
    def __init__(self, max_len: int, float_scores: bool) -> None: ...
    def __len__(self) -> int: ...
    def contains(self, user_id: int) -> bool: ...
    def users(self) -> _Ids: ...
    def put(self, user_id: int, timeline: Timeline) -> None: ...
    def get(self, user_id: int) -> Timeline | None: ...
    def discard(self, user_id: int) -> bool: ...
    def merge_page(
        self,
        user_ids: _Ids,
        limit: int,
        after: _After | None,
        exclude_authors: _Ids | None,
        per_author_cap: int | None,
    ) -> _Page: ...
    def fanout(
        self, score: int | float, post_id: int, author_id: int, follower_ids: _Ids, create_missing: bool
    ) -> int: ...
    # `source`: a Timeline of this module with the store's score kind, or entries in array order.
    def backfill(self, user_id: int, source: Timeline | _Entries) -> None: ...
    def remove_author(self, user_id: int, author_id: int) -> int: ...

# Returns int64 arrays (verbs, target_ids, windows, latest_timestamps, event_counts, actor_counts,
# actors, actor_offsets).
def aggregate_activity(
    actor_ids: _Ids,
    verbs: _Ids,
    target_ids: _Ids,
    timestamps: _Ids,
    window_seconds: int,
    max_actors: int,
) -> tuple[_Ids, _Ids, _Ids, _Ids, _Ids, _Ids, _Ids, _Ids]: ...
