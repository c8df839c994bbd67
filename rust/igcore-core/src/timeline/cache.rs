//! A bounded timeline cache: the top `max_len` entries of one feed, in feed order, each post once.

use super::{float_key, key_float, Entry, Run};
use crate::codec::{self, DecodedEntries, ScoreColumn};
use crate::error::{Result, TimelineError};
use crate::id_index::IdIndex;
use crate::numbers;

/// Entries in feed order (highest first), in one vector: a page is a slice of it, and a new post, which
/// usually ranks at or near the top, moves the rest by one memmove.
#[derive(Clone, Debug)]
pub struct Timeline {
    max_len: usize,
    float_scores: bool,
    entries: Vec<Entry>,
    /// At least the largest post id here (it may be larger, after removals). Post ids grow with time,
    /// so a new post is usually above it and known to be absent without a scan: fan-out of a new post
    /// costs O(1) per timeline, not O(entries).
    post_id_bound: i64,
}

impl PartialEq for Timeline {
    fn eq(&self, other: &Self) -> bool {
        (self.max_len, self.float_scores, &self.entries)
            == (other.max_len, other.float_scores, &other.entries)
    }
}

impl Eq for Timeline {}

impl Timeline {
    /// An empty timeline; `max_len` is at least 1. Memory grows with the entries, not with `max_len`.
    pub fn new(max_len: usize, float_scores: bool) -> Self {
        Timeline {
            max_len: max_len.max(1),
            float_scores,
            entries: Vec::new(),
            post_id_bound: i64::MIN,
        }
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    pub fn float_scores(&self) -> bool {
        self.float_scores
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn run(&self) -> Run<'_> {
        Run::Entries(&self.entries)
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.post_id_bound = i64::MIN;
    }

    /// Where `post_id` sits, if it is here. A scan: timelines hold hundreds of entries, and a scan
    /// over one vector beats a per-timeline hash index in memory and, at this size, in time.
    #[inline]
    fn position_of(&self, post_id: i64) -> Option<usize> {
        if post_id > self.post_id_bound {
            return None;
        }
        self.entries.iter().position(|e| e.post_id == post_id)
    }

    /// See the reference's `Timeline.insert`: returns whether the entry now stands.
    pub fn insert(&mut self, entry: Entry) -> bool {
        if let Some(i) = self.position_of(entry.post_id) {
            if self.entries[i].key >= entry.key {
                return false;
            }
            self.entries.remove(i);
        }
        let at = self.entries.partition_point(|e| e.rank() > entry.rank());
        if at >= self.max_len {
            return false; // it would be the entry trimmed
        }
        if self.entries.len() == self.max_len {
            self.entries.pop();
        }
        self.entries.insert(at, entry);
        self.post_id_bound = self.post_id_bound.max(entry.post_id);
        true
    }

    /// `insert` of each entry of `run`, in its order.
    pub fn insert_run(&mut self, run: &Run<'_>) {
        if let Run::Entries(entries) = run {
            // A timeline is in feed order: reserve once, as a merge of a followee's timeline would grow.
            self.entries
                .reserve(entries.len().min(self.max_len.saturating_sub(self.len())));
        }
        for i in 0..run.len() {
            self.insert(run.get(i));
        }
    }

    pub fn remove_post(&mut self, post_id: i64) -> bool {
        match self.position_of(post_id) {
            Some(i) => {
                self.entries.remove(i);
                true
            }
            None => false,
        }
    }

    pub fn remove_author(&mut self, author_id: i64) -> usize {
        let before = self.entries.len();
        self.entries.retain(|e| e.author_id != author_id);
        before - self.entries.len()
    }

    /// The scores of the entries (keys as scores for int64 timelines).
    pub fn keys(&self) -> impl ExactSizeIterator<Item = i64> + '_ {
        self.entries.iter().map(|e| e.key)
    }

    pub fn float_score_values(&self) -> impl ExactSizeIterator<Item = f64> + '_ {
        self.entries.iter().map(|e| key_float(e.key))
    }

    /// The codec's entries format, in feed order.
    pub fn to_bytes(&self) -> Vec<u8> {
        let keys: Vec<i64> = self.keys().collect();
        let posts: Vec<i64> = self.entries.iter().map(|e| e.post_id).collect();
        let authors: Vec<i64> = self.entries.iter().map(|e| e.author_id).collect();
        // A float timeline's keys are the codec's float keys (it never holds -0.0).
        let scores = if self.float_scores {
            ScoreColumn::FloatKeys(&keys)
        } else {
            ScoreColumn::Int(&keys)
        };
        match codec::encode_entries(scores, &posts, &authors) {
            Ok(bytes) => bytes,
            Err(_) => unreachable_lengths(),
        }
    }

    /// A timeline from `to_bytes` output, keeping its top `max_len` entries; see the reference's
    /// `timeline_from_bytes` for the checks and messages.
    pub fn from_bytes(data: &[u8], max_len: usize) -> Result<Self> {
        Self::from_decoded(codec::decode_entries(data)?, max_len)
    }

    fn from_decoded(decoded: DecodedEntries, max_len: usize) -> Result<Self> {
        let mut timeline = Timeline::new(max_len, decoded.float_scores);
        let n = decoded.post_ids.len();
        let mut seen = IdIndex::with_capacity(n);
        timeline.entries.reserve(n.min(timeline.max_len));
        let mut previous: Option<(i64, i64)> = None;
        for j in 0..n {
            let mut key = decoded.keys[j];
            if decoded.float_scores {
                let score = numbers::key_float_bits(key);
                if score.is_nan() {
                    return Err(TimelineError::NotATimelineNan { entry: j }.into());
                }
                key = float_key(score);
            }
            let entry = Entry {
                key,
                post_id: decoded.post_ids[j],
                author_id: decoded.author_ids[j],
            };
            if previous.is_some_and(|p| entry.rank() >= p) {
                return Err(TimelineError::NotATimelineOrder {
                    entry: j,
                    previous: j - 1,
                }
                .into());
            }
            if !seen.insert(entry.post_id)?.1 {
                return Err(TimelineError::DuplicatePost {
                    post_id: entry.post_id,
                }
                .into());
            }
            previous = Some(entry.rank());
            if timeline.entries.len() < timeline.max_len {
                timeline.entries.push(entry);
                timeline.post_id_bound = timeline.post_id_bound.max(entry.post_id);
            }
        }
        Ok(timeline)
    }
}

#[cold]
fn unreachable_lengths() -> Vec<u8> {
    // The three columns come from one vector of entries, so their lengths always agree.
    Vec::new()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::test_support::entry;

    fn posts(timeline: &Timeline) -> Vec<i64> {
        timeline.entries().iter().map(|e| e.post_id).collect()
    }

    #[test]
    fn keeps_feed_order_and_the_top_entries() {
        let mut timeline = Timeline::new(3, false);
        assert!(timeline.insert(entry(10, 1, 0)));
        assert!(timeline.insert(entry(30, 2, 0)));
        assert!(timeline.insert(entry(20, 3, 0)));
        assert!(timeline.insert(entry(20, 4, 0))); // ties: larger post id first; trims post 1
        assert_eq!(posts(&timeline), vec![2, 4, 3]);
        assert!(!timeline.insert(entry(5, 5, 0))); // below a full timeline
        assert_eq!(posts(&timeline), vec![2, 4, 3]);
    }

    #[test]
    fn a_post_keeps_its_greatest_key() {
        let mut timeline = Timeline::new(10, false);
        timeline.insert(entry(10, 1, 7));
        assert!(!timeline.insert(entry(10, 1, 8))); // equal: the first stands
        assert!(!timeline.insert(entry(5, 1, 8)));
        assert!(timeline.insert(entry(15, 1, 9)));
        assert_eq!(timeline.entries(), &[entry(15, 1, 9)]);
    }

    #[test]
    fn the_post_id_bound_never_hides_a_present_post() {
        let mut timeline = Timeline::new(10, false);
        timeline.insert(entry(10, 100, 0));
        timeline.insert(entry(20, 5, 0));
        assert!(timeline.remove_post(100)); // the bound stays at 100: larger than needed, never smaller
        assert!(!timeline.insert(entry(1, 5, 0)));
        assert!(timeline.insert(entry(30, 5, 1)));
        assert_eq!(timeline.entries(), &[entry(30, 5, 1)]);
        timeline.clear();
        assert!(timeline.insert(entry(1, i64::MIN, 0)));
        assert!(!timeline.insert(entry(0, i64::MIN, 0)));
    }

    #[test]
    fn removes_posts_and_authors() {
        let mut timeline = Timeline::new(10, false);
        for i in 0..6 {
            timeline.insert(entry(i, i, i % 2));
        }
        assert!(timeline.remove_post(4));
        assert!(!timeline.remove_post(4));
        assert_eq!(timeline.remove_author(1), 3);
        assert_eq!(posts(&timeline), vec![2, 0]);
    }

    #[test]
    fn bytes_round_trip_and_foreign_entries_are_refused() {
        let mut timeline = Timeline::new(10, true);
        for (i, score) in [0.5, -0.0, f64::INFINITY, -3.25].into_iter().enumerate() {
            timeline.insert(entry(float_key(score), i as i64, 9));
        }
        let bytes = timeline.to_bytes();
        assert_eq!(Timeline::from_bytes(&bytes, 10).unwrap(), timeline);
        let trimmed = Timeline::from_bytes(&bytes, 2).unwrap();
        assert_eq!(trimmed.entries(), &timeline.entries()[..2]);

        let unordered = codec::encode_entries(ScoreColumn::Int(&[1, 2]), &[1, 2], &[0, 0]).unwrap();
        assert_eq!(
            Timeline::from_bytes(&unordered, 10)
                .unwrap_err()
                .to_string(),
            "not a timeline: entry 1 does not rank below entry 0"
        );
        let twice = codec::encode_entries(ScoreColumn::Int(&[2, 1]), &[5, 5], &[0, 0]).unwrap();
        assert_eq!(
            Timeline::from_bytes(&twice, 10).unwrap_err().to_string(),
            "not a timeline: post 5 appears twice"
        );
        let nan = codec::encode_entries(ScoreColumn::Float(&[f64::NAN]), &[1], &[0]).unwrap();
        assert!(Timeline::from_bytes(&nan, 10).is_err());
    }
}
