//! Fan-out on write: many timelines keyed by user id, in native memory.

use super::merge::{merge_page, Page, PageRequest};
use super::{Entry, Run, Timeline};
use crate::error::Result;
use crate::id_index::{prefetch_read, IdIndex};

/// Timelines by user id, all with one `max_len` and one score kind.
#[derive(Clone)]
pub struct TimelineStore {
    max_len: usize,
    float_scores: bool,
    /// user id -> slot in `timelines`; a discarded user keeps its slot, empty, for when it comes back.
    users: IdIndex,
    timelines: Vec<Option<Timeline>>,
    live: usize,
}

/// How far ahead fan-out asks for the memory of a follower's index slot, then of its timeline. A
/// fan-out to many followers touches one timeline per follower, each a cache miss; asking ahead
/// overlaps the misses instead of waiting on each in turn.
const INDEX_AHEAD: usize = 16;
const TIMELINE_AHEAD: usize = 8;

impl TimelineStore {
    pub fn new(max_len: usize, float_scores: bool) -> Self {
        TimelineStore {
            max_len: max_len.max(1),
            float_scores,
            users: IdIndex::default(),
            timelines: Vec::new(),
            live: 0,
        }
    }

    pub fn max_len(&self) -> usize {
        self.max_len
    }

    pub fn float_scores(&self) -> bool {
        self.float_scores
    }

    /// How many users have a timeline.
    pub fn len(&self) -> usize {
        self.live
    }

    pub fn is_empty(&self) -> bool {
        self.live == 0
    }

    pub fn get(&self, user_id: i64) -> Option<&Timeline> {
        let slot = self.users.get(user_id)?;
        self.timelines[slot as usize].as_ref()
    }

    pub fn contains(&self, user_id: i64) -> bool {
        self.get(user_id).is_some()
    }

    /// The user's timeline, created empty when missing.
    pub fn timeline_mut(&mut self, user_id: i64) -> Result<&mut Timeline> {
        let (slot, new) = self.users.insert(user_id)?;
        if new {
            self.timelines.push(None);
        }
        let timeline = &mut self.timelines[slot as usize];
        if timeline.is_none() {
            self.live += 1;
        }
        Ok(timeline.get_or_insert_with(|| Timeline::new(self.max_len, self.float_scores)))
    }

    /// Stores `timeline` for the user (the caller checks that its max_len and score kind are the store's).
    pub fn put(&mut self, user_id: i64, timeline: Timeline) -> Result<()> {
        *self.timeline_mut(user_id)? = timeline;
        Ok(())
    }

    pub fn discard(&mut self, user_id: i64) -> bool {
        let Some(slot) = self.users.get(user_id) else {
            return false;
        };
        let removed = self.timelines[slot as usize].take().is_some();
        self.live -= usize::from(removed);
        removed
    }

    /// The users with a timeline, ascending.
    pub fn users(&self) -> Vec<i64> {
        let mut users: Vec<i64> = self
            .users
            .ids()
            .iter()
            .zip(&self.timelines)
            .filter(|(_, t)| t.is_some())
            .map(|(&u, _)| u)
            .collect();
        users.sort_unstable();
        users
    }

    /// `merge_page` over the stored timelines of `user_ids`, in that order; users without one are skipped.
    pub fn merge_page(&self, user_ids: &[i64], request: &PageRequest<'_>) -> Result<Page> {
        let mut runs = Vec::with_capacity(user_ids.len());
        for (i, &user_id) in user_ids.iter().enumerate() {
            if let Some(&ahead) = user_ids.get(i + INDEX_AHEAD) {
                self.users.prefetch(ahead);
            }
            runs.extend(self.get(user_id).map(Timeline::run));
        }
        merge_page(&runs, request)
    }

    /// Inserts `entry` into the timeline of each follower (see the reference's `fanout`); returns
    /// how many inserts stood.
    pub fn fanout(
        &mut self,
        entry: Entry,
        follower_ids: &[i64],
        create_missing: bool,
    ) -> Result<usize> {
        if create_missing {
            for &follower in follower_ids {
                self.timeline_mut(follower)?;
            }
        }
        let mut stood = 0;
        for (i, &follower) in follower_ids.iter().enumerate() {
            if let Some(&ahead) = follower_ids.get(i + INDEX_AHEAD) {
                self.users.prefetch(ahead);
            }
            if let Some(&ahead) = follower_ids.get(i + TIMELINE_AHEAD) {
                if let Some(slot) = self.users.get(ahead) {
                    let timeline = &self.timelines[slot as usize];
                    prefetch_read(timeline);
                    if let Some(t) = timeline {
                        prefetch_read(t.entries().as_ptr());
                    }
                }
            }
            if let Some(slot) = self.users.get(follower) {
                if let Some(timeline) = &mut self.timelines[slot as usize] {
                    stood += usize::from(timeline.insert(entry));
                }
            }
        }
        Ok(stood)
    }

    /// On follow: `insert_run` of the author's entries into the user's timeline (created when missing).
    pub fn backfill(&mut self, user_id: i64, run: &Run<'_>) -> Result<()> {
        self.timeline_mut(user_id)?.insert_run(run);
        Ok(())
    }

    /// On unfollow: removes the author's entries from the user's timeline; how many.
    pub fn remove_author(&mut self, user_id: i64, author_id: i64) -> usize {
        let Some(slot) = self.users.get(user_id) else {
            return 0;
        };
        match &mut self.timelines[slot as usize] {
            Some(timeline) => timeline.remove_author(author_id),
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::timeline::test_support::{entry, request};

    #[test]
    fn fanout_reaches_stored_followers_and_skips_others() {
        let mut store = TimelineStore::new(2, false);
        store.timeline_mut(1).unwrap();
        store.timeline_mut(3).unwrap();
        assert_eq!(
            store.fanout(entry(10, 100, 9), &[1, 2, 3], false).unwrap(),
            2
        );
        assert!(!store.contains(2));
        assert_eq!(store.fanout(entry(20, 101, 9), &[1, 2], true).unwrap(), 2);
        assert_eq!(store.len(), 3);
        assert_eq!(store.users(), vec![1, 2, 3]);
        let page = store.merge_page(&[1, 2, 3], &request(10)).unwrap();
        assert_eq!(page.post_ids, vec![101, 100]);
    }

    #[test]
    fn many_followers_each_get_the_post() {
        let mut store = TimelineStore::new(4, false);
        let followers: Vec<i64> = (0..5_000).map(|i| i * 7919 + (1 << 40)).collect();
        assert_eq!(
            store.fanout(entry(1, 1, 1), &followers, true).unwrap(),
            5_000
        );
        assert_eq!(store.fanout(entry(1, 1, 1), &followers, false).unwrap(), 0);
        for &f in &followers {
            assert_eq!(store.get(f).unwrap().len(), 1);
        }
    }

    #[test]
    fn backfill_and_remove_author_follow_and_unfollow() {
        let mut store = TimelineStore::new(3, false);
        store.fanout(entry(50, 1, 7), &[42], true).unwrap();
        store.fanout(entry(40, 2, 7), &[42], false).unwrap();
        store.fanout(entry(30, 3, 7), &[42], false).unwrap();
        let mut author = Timeline::new(10, false);
        for (key, post) in [(45, 10), (35, 11), (5, 12)] {
            author.insert(entry(key, post, 8));
        }
        store.backfill(42, &author.run()).unwrap();
        let posts: Vec<i64> = store
            .get(42)
            .unwrap()
            .entries()
            .iter()
            .map(|e| e.post_id)
            .collect();
        assert_eq!(posts, vec![1, 10, 2]); // full: only entries above the lowest get in
        assert_eq!(store.remove_author(42, 8), 1);
        assert_eq!(store.remove_author(43, 8), 0);
        assert!(store.discard(42));
        assert!(!store.discard(42));
        assert_eq!(store.len(), 0);
    }
}
