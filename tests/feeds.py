"""Generated feeds for the timeline tests: sources in feed order with the hard cases on purpose (equal
scores, a post in several sources, empty sources, -0.0 and infinities, extreme ids)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st

from igcore.timeline import Timeline

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1

ids = st.one_of(st.integers(-3, 40), st.sampled_from([INT64_MIN, INT64_MAX, 0, -1, 2**62]))
int_scores = st.one_of(st.integers(-4, 4), st.sampled_from([INT64_MIN, INT64_MAX]))
float_scores = st.sampled_from([0.0, -0.0, 1.5, -1.5, 2.0, np.inf, -np.inf, 1e300, 5e-324, -2.5])


@dataclass
class Source:
    """Entries in feed order; as arrays, or to be made into a Timeline of the backend under test."""

    scores: np.ndarray
    post_ids: np.ndarray
    author_ids: np.ndarray
    as_timeline: bool = False
    max_len: int = 800

    def make(self):
        """The source as merge takes it, under the backend serving now."""
        if not self.as_timeline:
            return (self.scores, self.post_ids, self.author_ids)
        timeline = Timeline(self.max_len, self.scores.dtype)
        timeline.insert_many(self.scores, self.post_ids, self.author_ids)
        return timeline


def in_feed_order(entries: list) -> list:
    return sorted(entries, key=lambda e: (e[0], e[1]), reverse=True)


@st.composite
def sources(draw, float_kind=None, max_sources=5, max_entries=12):
    """A list of `Source`s of one score kind, drawing post and author ids from small pools so that
    posts recur across sources and authors have several entries."""
    is_float = draw(st.booleans()) if float_kind is None else float_kind
    scores = float_scores if is_float else int_scores
    posts = draw(st.lists(ids, min_size=1, max_size=10, unique=True))
    authors = draw(st.lists(ids, min_size=1, max_size=4, unique=True))
    made = []
    for _ in range(draw(st.integers(0, max_sources))):
        entries = draw(
            st.lists(
                st.tuples(scores, st.sampled_from(posts), st.sampled_from(authors)), max_size=max_entries
            )
        )
        entries = in_feed_order(entries)
        made.append(
            Source(
                np.array([e[0] for e in entries], dtype=np.float64 if is_float else np.int64),
                np.array([e[1] for e in entries], dtype=np.int64),
                np.array([e[2] for e in entries], dtype=np.int64),
                as_timeline=draw(st.booleans()),
                max_len=draw(st.sampled_from([3, 800])),
            )
        )
    return made, authors


def page_lists(page) -> tuple:
    """A page as plain values, with float scores by their bits (so 0.0 and -0.0 differ)."""
    scores = page.scores.view(np.int64).tolist() if page.scores.dtype == np.float64 else page.scores.tolist()
    return (page.post_ids.tolist(), page.scores.dtype.str, scores, page.author_ids.tolist(), page.next_cursor)


def timeline_of(entries, max_len=800, score_dtype="int64") -> Timeline:
    """A Timeline of the current backend holding `entries`, inserted in turn."""
    timeline = Timeline(max_len, score_dtype)
    for entry in entries:
        timeline.insert(*entry)
    return timeline
