"""Conformance of timeline.aggregate_activity: "alice, bob and 3 others liked your post"."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from igcore.timeline import Activity, aggregate_activity

from .conftest import outcome, reference
from .feeds import INT64_MAX, INT64_MIN

HOT_PATH = "timeline"
LIKE, COMMENT = 1, 2
HOUR = 3600


def groups(activity: Activity) -> list:
    return [
        (
            int(activity.verbs[g]),
            int(activity.target_ids[g]),
            int(activity.windows[g]),
            int(activity.latest_timestamps[g]),
            int(activity.event_counts[g]),
            int(activity.actor_counts[g]),
            activity.actors_of(g).tolist(),
        )
        for g in range(len(activity.verbs))
    ]


def columns(events):
    if not events:
        return [], [], [], []
    return [list(c) for c in zip(*events)]


EVENTS = [  # actor, verb, target, timestamp
    (10, LIKE, 500, 100),
    (11, LIKE, 500, 160),
    (12, LIKE, 500, 130),
    (10, LIKE, 500, 170),  # the same actor again: one distinct actor, at her latest time
    (13, COMMENT, 500, 150),
    (14, LIKE, 500, HOUR + 100),  # the next window
    (15, LIKE, 501, 120),
]


def test_groups_by_verb_target_and_window_newest_first(backend):
    activity = aggregate_activity(*columns(EVENTS), window_seconds=HOUR, max_actors=2)
    assert isinstance(activity, Activity)
    assert groups(activity) == [
        (LIKE, 500, 1, HOUR + 100, 1, 1, [14]),
        (LIKE, 500, 0, 170, 4, 3, [10, 11]),  # "10, 11 and 1 other liked post 500"
        (COMMENT, 500, 0, 150, 1, 1, [13]),
        (LIKE, 501, 0, 120, 1, 1, [15]),
    ]
    assert activity.actor_offsets.tolist() == [0, 1, 3, 4, 5]
    assert all(c.dtype == np.int64 for c in activity)


def test_the_answer_does_not_depend_on_the_order_of_events(backend):
    expected = groups(aggregate_activity(*columns(EVENTS), HOUR))
    for seed in range(5):
        shuffled = [EVENTS[i] for i in np.random.default_rng(seed).permutation(len(EVENTS))]
        assert groups(aggregate_activity(*columns(shuffled), HOUR)) == expected


def test_ties_between_actors_and_groups(backend):
    events = [(1, LIKE, 7, 50), (3, LIKE, 7, 50), (2, LIKE, 7, 50), (9, LIKE, 6, 50), (9, COMMENT, 6, 50)]
    activity = aggregate_activity(*columns(events), 100, max_actors=5)
    # equal times: the larger actor first; equal group times: verb, then target, ascending
    assert groups(activity) == [
        (LIKE, 6, 0, 50, 1, 1, [9]),
        (LIKE, 7, 0, 50, 3, 3, [3, 2, 1]),
        (COMMENT, 6, 0, 50, 1, 1, [9]),
    ]


def test_windows_floor_negative_times_and_extremes(backend):
    events = [(1, 0, 0, -1), (2, 0, 0, INT64_MIN), (3, 0, 0, INT64_MAX), (4, 0, 0, 0)]
    activity = aggregate_activity(*columns(events), 10, max_actors=0)
    assert activity.windows.tolist() == [INT64_MAX // 10, 0, -1, INT64_MIN // 10]
    assert activity.actors.tolist() == [] and activity.actor_counts.tolist() == [1, 1, 1, 1]


def test_no_events(backend):
    activity = aggregate_activity([], [], [], [], 60)
    assert len(activity.verbs) == 0 and activity.actor_offsets.tolist() == [0]


@pytest.mark.parametrize(
    ("args", "error", "message"),
    [
        (([1], [1], [1], [1, 2], 60), ValueError, r"differ in length \(1, 1, 1, 2\)"),
        (([1], [1], [1], [1], 0), ValueError, "window_seconds must be at least 1, got 0"),
        (([1], [1], [1], [1], 60, -1), ValueError, "max_actors must be at least 0, got -1"),
        (([1], [1], [1], [1.5], 60), TypeError, "timestamps must hold integers"),
        (([1], [1], [1], [1], 1.5), TypeError, "window_seconds must be an int, not float"),
    ],
)
def test_bad_arguments_raise_a_clear_error(backend, args, error, message):
    with pytest.raises(error, match=message):
        aggregate_activity(*args)


small = st.integers(-3, 3)
events = st.lists(
    st.tuples(
        st.one_of(small, st.sampled_from([INT64_MIN, INT64_MAX])),
        st.integers(0, 2),
        small,
        st.one_of(st.integers(-30, 30), st.sampled_from([INT64_MIN, INT64_MAX, INT64_MIN + 1])),
    ),
    max_size=40,
)


@given(events, st.integers(1, 25), st.integers(0, 4))
def test_matches_the_reference(backend, generated, window, max_actors):
    args = (*columns(generated), window, max_actors)
    got, expected = outcome(aggregate_activity, *args), reference(aggregate_activity, *args)
    assert _plain(got) == _plain(expected)


def _plain(result):
    if result[0] == "ok":
        return ("ok", [c.tolist() for c in result[1]])
    return result
