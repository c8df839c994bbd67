//! Timelines: feed order, the k-way merge behind fan-out on read, bounded timeline caches, the store
//! behind fan-out on write, and aggregated activity.
//!
//! The reference is `src/igcore/_reference/timeline.py`; its docstrings are the contract. Everything
//! here works on integer keys: an int64 score is its own key, a float64 score's key is [`float_key`],
//! so one code path serves both kinds and the caller converts keys back with [`key_float`].

mod activity;
mod cache;
mod merge;
mod store;

pub use activity::{aggregate_activity, ActivityGroups};
pub use cache::Timeline;
pub use merge::{check_order, merge_page, Page, PageRequest};
pub use store::TimelineStore;

use crate::id_index::prefetch_read;
use crate::numbers::{float_bits_key, key_float_bits};

/// The key of a float64 score in feed order: -0.0 counts as 0.0, then the order-preserving bits key.
/// NaN has no place in feed order; callers refuse it before it gets here.
#[inline(always)]
pub fn float_key(score: f64) -> i64 {
    float_bits_key(score + 0.0)
}

/// The float64 score of a [`float_key`].
#[inline(always)]
pub fn key_float(key: i64) -> f64 {
    key_float_bits(key)
}

/// One feed entry; `key` is the score (int64) or its [`float_key`] (float64).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Entry {
    pub key: i64,
    pub post_id: i64,
    pub author_id: i64,
}

impl Entry {
    /// Where the entry sits in feed order: greater ranks come first.
    #[inline(always)]
    pub fn rank(&self) -> (i64, i64) {
        (self.key, self.post_id)
    }
}

/// The scores of a run of array entries.
#[derive(Clone, Copy, Debug)]
pub enum Scores<'a> {
    Int(&'a [i64]),
    Float(&'a [f64]),
}

/// One source of a merge, in feed order: caller-supplied columns, or a timeline's entries.
#[derive(Clone, Copy, Debug)]
pub enum Run<'a> {
    Columns {
        scores: Scores<'a>,
        post_ids: &'a [i64],
        author_ids: &'a [i64],
    },
    Entries(&'a [Entry]),
}

impl<'a> Run<'a> {
    /// Columns of one length (the caller checks the lengths).
    pub fn columns(scores: Scores<'a>, post_ids: &'a [i64], author_ids: &'a [i64]) -> Self {
        Run::Columns {
            scores,
            post_ids,
            author_ids,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Run::Columns { post_ids, .. } => post_ids.len(),
            Run::Entries(entries) => entries.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The entry at `i` (< len).
    #[inline(always)]
    pub fn get(&self, i: usize) -> Entry {
        match *self {
            Run::Columns {
                scores,
                post_ids,
                author_ids,
            } => Entry {
                key: match scores {
                    Scores::Int(s) => s[i],
                    Scores::Float(s) => float_key(s[i]),
                },
                post_id: post_ids[i],
                author_id: author_ids[i],
            },
            Run::Entries(entries) => entries[i],
        }
    }

    /// The rank `(key, post_id)` of the entry at `i` (< len), without reading its author.
    #[inline(always)]
    pub fn rank_at(&self, i: usize) -> (i64, i64) {
        match *self {
            Run::Columns {
                scores, post_ids, ..
            } => (
                match scores {
                    Scores::Int(s) => s[i],
                    Scores::Float(s) => float_key(s[i]),
                },
                post_ids[i],
            ),
            Run::Entries(entries) => entries[i].rank(),
        }
    }

    /// Asks the memory system for the entry at `i` ahead of its use (a hint; any `i` is harmless).
    #[inline(always)]
    pub fn prefetch(&self, i: usize) {
        match *self {
            Run::Columns {
                scores, post_ids, ..
            } => {
                match scores {
                    Scores::Int(s) => prefetch_read(s.as_ptr().wrapping_add(i)),
                    Scores::Float(s) => prefetch_read(s.as_ptr().wrapping_add(i)),
                }
                prefetch_read(post_ids.as_ptr().wrapping_add(i));
            }
            Run::Entries(entries) => prefetch_read(entries.as_ptr().wrapping_add(i)),
        }
    }

    /// The number of leading entries that rank at or above `rank` (runs are in feed order).
    pub fn count_at_or_above(&self, rank: (i64, i64)) -> usize {
        let (mut low, mut high) = (0, self.len());
        while low < high {
            let mid = low + (high - low) / 2;
            if self.rank_at(mid) >= rank {
                low = mid + 1;
            } else {
                high = mid;
            }
        }
        low
    }
}

/// What the tests of the timeline modules share: an entry and a first-page request, briefly.
#[cfg(test)]
pub(crate) mod test_support {
    use super::{Entry, PageRequest};

    pub(crate) fn entry(key: i64, post_id: i64, author_id: i64) -> Entry {
        Entry {
            key,
            post_id,
            author_id,
        }
    }

    pub(crate) fn request(limit: usize) -> PageRequest<'static> {
        PageRequest {
            limit,
            after: None,
            exclude_authors: &[],
            per_author_cap: None,
        }
    }
}
