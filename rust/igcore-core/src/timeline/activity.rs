//! Aggregated activity: "alice, bob and 3 others liked your post", grouped by verb, target and time
//! window, newest group first.

use crate::error::{CommonError, Result, TimelineError};
use crate::numbers::floor_div;

/// Groups in output order, in columns; group `g`'s recent actors are
/// `actors[actor_offsets[g]..actor_offsets[g + 1]]`, most recent first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ActivityGroups {
    pub verbs: Vec<i64>,
    pub target_ids: Vec<i64>,
    /// The window number: `floor_div(timestamp, window_seconds)`.
    pub windows: Vec<i64>,
    pub latest_timestamps: Vec<i64>,
    pub event_counts: Vec<i64>,
    pub actor_counts: Vec<i64>,
    pub actors: Vec<i64>,
    pub actor_offsets: Vec<i64>,
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Event {
    verb: i64,
    target: i64,
    window: i64,
    actor: i64,
    /// Negated timestamp, so that ascending order puts an actor's latest event first. Stored as the
    /// bitwise complement (`!ts`), which reverses the order of every int64 without overflow.
    newest: i64,
}

/// One group while it is being read: where its events lie in the sorted order.
struct Group {
    latest: i64,
    verb: i64,
    target: i64,
    window: i64,
    events: usize,
    /// (latest timestamp, actor) of each distinct actor.
    actors: Vec<(i64, i64)>,
}

/// See the reference's `aggregate_activity`. All four columns have one length; `window_seconds` >= 1.
pub fn aggregate_activity(
    actor_ids: &[i64],
    verbs: &[i64],
    target_ids: &[i64],
    timestamps: &[i64],
    window_seconds: i64,
    max_actors: usize,
) -> Result<ActivityGroups> {
    let n = actor_ids.len();
    if verbs.len() != n || target_ids.len() != n || timestamps.len() != n {
        return Err(TimelineError::ActivityLengthsDiffer {
            actor_ids: n,
            verbs: verbs.len(),
            target_ids: target_ids.len(),
            timestamps: timestamps.len(),
        }
        .into());
    }
    if window_seconds < 1 {
        return Err(CommonError::BelowMinimum {
            name: "window_seconds",
            minimum: 1,
            value: window_seconds,
        }
        .into());
    }
    let mut events: Vec<Event> = (0..n)
        .map(|i| Event {
            verb: verbs[i],
            target: target_ids[i],
            window: floor_div(timestamps[i], window_seconds),
            actor: actor_ids[i],
            newest: !timestamps[i],
        })
        .collect();
    // Sorted, a group is a run of events, and within it each actor a run that starts at its latest event.
    events.sort_unstable();

    let mut groups: Vec<Group> = Vec::new();
    let mut i = 0;
    while i < events.len() {
        let first = events[i];
        let mut group = Group {
            latest: i64::MIN,
            verb: first.verb,
            target: first.target,
            window: first.window,
            events: 0,
            actors: Vec::new(),
        };
        while i < events.len() {
            let e = events[i];
            if (e.verb, e.target, e.window) != (first.verb, first.target, first.window) {
                break;
            }
            let latest = !e.newest;
            // Sorted by actor, then newest first: an actor's first event is its latest.
            if group.actors.last().map(|&(_, actor)| actor) != Some(e.actor) {
                group.actors.push((latest, e.actor));
            }
            group.latest = group.latest.max(latest);
            group.events += 1;
            i += 1;
        }
        groups.push(group);
    }
    groups.sort_unstable_by(|a, b| {
        b.latest
            .cmp(&a.latest)
            .then(a.verb.cmp(&b.verb))
            .then(a.target.cmp(&b.target))
    });

    let mut out = ActivityGroups {
        actor_offsets: vec![0],
        ..ActivityGroups::default()
    };
    for mut group in groups {
        out.verbs.push(group.verb);
        out.target_ids.push(group.target);
        out.windows.push(group.window);
        out.latest_timestamps.push(group.latest);
        out.event_counts.push(group.events as i64);
        out.actor_counts.push(group.actors.len() as i64);
        // Most recent first; on equal times the larger actor id.
        let shown = max_actors.min(group.actors.len());
        if shown < group.actors.len() {
            group.actors.select_nth_unstable_by(shown, |a, b| b.cmp(a));
        }
        let recent = &mut group.actors[..shown];
        recent.sort_unstable_by(|a, b| b.cmp(a));
        out.actors.extend(recent.iter().map(|&(_, actor)| actor));
        out.actor_offsets.push(out.actors.len() as i64);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIKE: i64 = 1;
    const COMMENT: i64 = 2;

    #[test]
    fn groups_by_verb_target_and_window_newest_first() {
        // actor, verb, target, timestamp
        let events = [
            (10, LIKE, 500, 100),
            (11, LIKE, 500, 160),
            (12, LIKE, 500, 130),
            (10, LIKE, 500, 170), // alice again: one distinct actor, her latest time counts
            (13, COMMENT, 500, 150),
            (14, LIKE, 500, 3_700), // the next hour
            (15, LIKE, 501, 120),
        ];
        let column = |f: fn(&(i64, i64, i64, i64)) -> i64| events.iter().map(f).collect::<Vec<_>>();
        let got = aggregate_activity(
            &column(|e| e.0),
            &column(|e| e.1),
            &column(|e| e.2),
            &column(|e| e.3),
            3_600,
            2,
        )
        .unwrap();
        assert_eq!(got.target_ids, vec![500, 500, 500, 501]);
        assert_eq!(got.verbs, vec![LIKE, LIKE, COMMENT, LIKE]);
        assert_eq!(got.windows, vec![1, 0, 0, 0]);
        assert_eq!(got.latest_timestamps, vec![3_700, 170, 150, 120]);
        assert_eq!(got.event_counts, vec![1, 4, 1, 1]);
        assert_eq!(got.actor_counts, vec![1, 3, 1, 1]);
        assert_eq!(got.actor_offsets, vec![0, 1, 3, 4, 5]);
        assert_eq!(got.actors, vec![14, 10, 11, 13, 15]);
    }

    #[test]
    fn windows_floor_negative_times_and_extremes_do_not_overflow() {
        let got = aggregate_activity(
            &[1, 2, 3],
            &[0, 0, 0],
            &[0, 0, 0],
            &[-1, i64::MIN, i64::MAX],
            10,
            0,
        )
        .unwrap();
        assert_eq!(got.windows, vec![i64::MAX / 10, -1, i64::MIN / 10 - 1]);
        assert_eq!(got.actors, Vec::<i64>::new());
        assert_eq!(got.actor_counts, vec![1, 1, 1]);
    }

    #[test]
    fn bad_arguments_are_errors() {
        assert!(aggregate_activity(&[1], &[1], &[1], &[], 1, 3).is_err());
        assert!(aggregate_activity(&[1], &[1], &[1], &[1], 0, 3).is_err());
    }
}
