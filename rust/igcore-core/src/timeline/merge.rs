//! Fan-out on read: one page of the feed that merges many runs, as a k-way merge over a binary heap
//! of run heads. A page touches O(k + page log k) entries plus, for a cursor, the entries above it;
//! no entry is copied until it is taken.

use std::cmp::Ordering;
use std::collections::binary_heap::PeekMut;
use std::collections::BinaryHeap;

use super::{Entry, Run, Scores};
use crate::error::{Result, TimelineError};
use crate::id_index::IdIndex;

/// How many runs ahead the merge asks for a run's first entry: runs are separate allocations (one per
/// timeline), so reading each head is a cache miss unless it was asked for in advance.
const PREFETCH_AHEAD: usize = 8;

/// What a page asks for (the reference's `merge_page` arguments, checked).
#[derive(Clone, Copy, Debug)]
pub struct PageRequest<'a> {
    /// At least 1.
    pub limit: usize,
    /// The rank `(key, post_id)` of the previous page's last entry: the page starts strictly below it.
    pub after: Option<(i64, i64)>,
    pub exclude_authors: &'a [i64],
    pub per_author_cap: Option<usize>,
}

/// A page: keys, post ids and author ids in feed order, and whether the feed goes on below it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Page {
    pub keys: Vec<i64>,
    pub post_ids: Vec<i64>,
    pub author_ids: Vec<i64>,
    pub has_more: bool,
}

impl Page {
    fn with_capacity(n: usize) -> Self {
        Page {
            keys: Vec::with_capacity(n),
            post_ids: Vec::with_capacity(n),
            author_ids: Vec::with_capacity(n),
            has_more: false,
        }
    }

    fn push(&mut self, entry: Entry) {
        self.keys.push(entry.key);
        self.post_ids.push(entry.post_id);
        self.author_ids.push(entry.author_id);
    }

    fn len(&self) -> usize {
        self.post_ids.len()
    }
}

/// Checks that caller-supplied columns are in feed order (equal ranks allowed) and hold no NaN score;
/// `index` names the source in the messages, which are the reference's.
pub fn check_order(run: &Run<'_>, index: usize) -> Result<()> {
    let Run::Columns {
        scores, post_ids, ..
    } = *run
    else {
        return Ok(()); // timelines are in order by construction
    };
    let disorder = |j: usize| TimelineError::NotFeedOrder {
        index,
        entry: j,
        previous: j - 1,
    };
    match scores {
        Scores::Int(keys) => {
            // Branch-free over pairs so that the common, ordered case is one quick pass.
            let bad = keys
                .windows(2)
                .zip(post_ids.windows(2))
                .position(|(k, p)| (k[1] > k[0]) | ((k[1] == k[0]) & (p[1] > p[0])));
            if let Some(j) = bad {
                return Err(disorder(j + 1).into());
            }
        }
        Scores::Float(floats) => {
            let mut previous: Option<(i64, i64)> = None;
            for (j, (&score, &post_id)) in floats.iter().zip(post_ids).enumerate() {
                if score.is_nan() {
                    return Err(TimelineError::NanScoreInSource { index, entry: j }.into());
                }
                let rank = (super::float_key(score), post_id);
                if previous.is_some_and(|p| rank > p) {
                    return Err(disorder(j).into());
                }
                previous = Some(rank);
            }
        }
    }
    Ok(())
}

/// The head of one run in the heap: the rank of its next entry, which run, and where in it. Small
/// (32 bytes), so that sifting moves little; the author is read when the entry is taken.
#[derive(Clone, Copy, Debug)]
struct Head {
    key: i64,
    post_id: i64,
    run: usize,
    pos: usize,
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    /// The max-heap pops the greatest rank first, and on equal ranks the earlier run: that entry stands.
    #[inline(always)]
    fn cmp(&self, other: &Self) -> Ordering {
        match self.key.cmp(&other.key) {
            Ordering::Equal => match self.post_id.cmp(&other.post_id) {
                Ordering::Equal => other.run.cmp(&self.run),
                unequal => unequal,
            },
            unequal => unequal,
        }
    }
}

impl Head {
    #[inline(always)]
    fn at(run: &Run<'_>, r: usize, pos: usize) -> Self {
        let (key, post_id) = run.rank_at(pos);
        Head {
            key,
            post_id,
            run: r,
            pos,
        }
    }
}

/// One page of the feed that merges `runs` (each in feed order): see the reference's `merge_page`.
///
/// Below a cursor, the page must leave out posts that the feed already placed above it (a reshare:
/// the same post, higher, in another run). Rather than collect every post above the cursor (thousands
/// on a deep page), the page is merged first and then only its own posts are looked for above the
/// cursor, in one sequential pass; a post found there is set aside and the page merged again (rare:
/// it takes a reshare that straddles the cursor).
pub fn merge_page(runs: &[Run<'_>], request: &PageRequest<'_>) -> Result<Page> {
    let excluded = IdSet::new(request.exclude_authors)?;
    let starts: Vec<usize> = match request.after {
        None => vec![0; runs.len()],
        Some(rank) => runs.iter().map(|run| run.count_at_or_above(rank)).collect(),
    };
    let mut placed_above = IdIndex::default();
    loop {
        let (page, lookahead) = merge_below(runs, &starts, request, &excluded, &placed_above)?;
        if request.after.is_none() {
            return Ok(page);
        }
        let mut mine = IdIndex::with_capacity(page.len() + 1);
        for &post_id in page.post_ids.iter().chain(&lookahead) {
            mine.insert(post_id)?;
        }
        let mut found = false;
        for (run, &start) in runs.iter().zip(&starts) {
            for j in 0..start {
                let entry = run.get(j);
                if mine.get(entry.post_id).is_some()
                    && !excluded.contains(entry.author_id)
                    && placed_above.insert(entry.post_id)?.1
                {
                    found = true;
                }
            }
        }
        if !found {
            return Ok(page);
        }
    }
}

/// A set of ids to test against; empty without allocating.
struct IdSet(Option<IdIndex>);

impl IdSet {
    fn new(ids: &[i64]) -> Result<Self> {
        if ids.is_empty() {
            return Ok(IdSet(None));
        }
        let mut set = IdIndex::with_capacity(ids.len());
        for &id in ids {
            set.insert(id)?;
        }
        Ok(IdSet(Some(set)))
    }

    #[inline]
    fn contains(&self, id: i64) -> bool {
        self.0.as_ref().is_some_and(|set| set.get(id).is_some())
    }
}

/// The page that starts at `starts` in each run, leaving out excluded authors and the posts in
/// `placed_above`; and the post id of the entry after the page, if there is one.
fn merge_below(
    runs: &[Run<'_>],
    starts: &[usize],
    request: &PageRequest<'_>,
    excluded: &IdSet,
    placed_above: &IdIndex,
) -> Result<(Page, Option<i64>)> {
    let mut heads = Vec::with_capacity(runs.len());
    let mut remaining = 0_usize;
    for (r, (run, &start)) in runs.iter().zip(starts).enumerate() {
        if let Some((ahead, &at)) = runs
            .get(r + PREFETCH_AHEAD)
            .zip(starts.get(r + PREFETCH_AHEAD))
        {
            ahead.prefetch(at);
        }
        if start < run.len() {
            heads.push(Head::at(run, r, start));
            remaining += run.len() - start;
        }
    }
    let mut heap = BinaryHeap::from(heads);
    let mut page = Page::with_capacity(request.limit.min(remaining));
    // The posts of this page, to drop a post met again lower down.
    let mut seen = IdIndex::with_capacity(request.limit.saturating_add(1).min(1024));
    // Per author: how many entries this page holds (only with a cap).
    let mut authors = IdIndex::default();
    let mut per_author: Vec<usize> = Vec::new();
    while let Some(mut head) = heap.peek_mut() {
        let run = &runs[head.run];
        let entry = run.get(head.pos);
        if head.pos + 1 < run.len() {
            *head = Head::at(run, head.run, head.pos + 1);
            drop(head); // sifts the run's next entry into place
        } else {
            PeekMut::pop(head);
        }
        if excluded.contains(entry.author_id)
            || (!placed_above.is_empty() && placed_above.get(entry.post_id).is_some())
            || !seen.insert(entry.post_id)?.1
        {
            continue;
        }
        if page.len() == request.limit {
            page.has_more = true;
            return Ok((page, Some(entry.post_id)));
        }
        if let Some(cap) = request.per_author_cap {
            let (index, new) = authors.insert(entry.author_id)?;
            if new {
                per_author.push(0);
            }
            let count = &mut per_author[index as usize];
            if *count >= cap {
                continue;
            }
            *count += 1;
        }
        page.push(entry);
    }
    Ok((page, None))
}

#[cfg(test)]
mod tests {
    use super::super::{float_key, Run, Scores};
    use super::*;
    use crate::timeline::test_support::request;

    struct Columns {
        keys: Vec<i64>,
        posts: Vec<i64>,
        authors: Vec<i64>,
    }

    impl Columns {
        fn new(entries: &[(i64, i64, i64)]) -> Self {
            Columns {
                keys: entries.iter().map(|e| e.0).collect(),
                posts: entries.iter().map(|e| e.1).collect(),
                authors: entries.iter().map(|e| e.2).collect(),
            }
        }

        fn run(&self) -> Run<'_> {
            Run::columns(Scores::Int(&self.keys), &self.posts, &self.authors)
        }
    }

    fn posts(page: &Page) -> Vec<i64> {
        page.post_ids.clone()
    }

    #[test]
    fn merges_in_feed_order_with_ties_broken_by_post_id() {
        let a = Columns::new(&[(30, 1, 10), (20, 5, 10), (10, 2, 10)]);
        let b = Columns::new(&[(30, 4, 20), (20, 3, 20), (5, 6, 20)]);
        let page = merge_page(&[a.run(), b.run()], &request(10)).unwrap();
        assert_eq!(posts(&page), vec![4, 1, 5, 3, 2, 6]);
        assert_eq!(page.keys, vec![30, 30, 20, 20, 10, 5]);
        assert!(!page.has_more);
    }

    #[test]
    fn a_post_in_several_sources_stands_once_at_its_greatest_key() {
        let a = Columns::new(&[(50, 7, 1), (10, 8, 1)]);
        let b = Columns::new(&[(40, 8, 2), (30, 7, 2)]);
        let page = merge_page(&[a.run(), b.run()], &request(10)).unwrap();
        assert_eq!(posts(&page), vec![7, 8]);
        assert_eq!(page.author_ids, vec![1, 2]);
        // equal keys: the earlier source's entry stands
        let c = Columns::new(&[(9, 1, 100)]);
        let d = Columns::new(&[(9, 1, 200)]);
        let page = merge_page(&[d.run(), c.run()], &request(10)).unwrap();
        assert_eq!(page.author_ids, vec![200]);
    }

    #[test]
    fn pages_through_a_cursor_exactly() {
        let a = Columns::new(&[(9, 1, 1), (7, 3, 1), (5, 5, 1), (3, 7, 1)]);
        let b = Columns::new(&[(8, 2, 2), (7, 3, 2), (4, 6, 2), (1, 3, 2)]);
        let runs = [a.run(), b.run()];
        let whole = merge_page(&runs, &request(100)).unwrap();
        assert_eq!(posts(&whole), vec![1, 2, 3, 5, 6, 7]);
        for limit in 1..=7 {
            let mut got = Vec::new();
            let mut after = None;
            loop {
                let page = merge_page(
                    &runs,
                    &PageRequest {
                        after,
                        ..request(limit)
                    },
                )
                .unwrap();
                got.extend_from_slice(&page.post_ids);
                if !page.has_more {
                    break;
                }
                let last = page.len() - 1;
                after = Some((page.keys[last], page.post_ids[last]));
            }
            assert_eq!(got, whole.post_ids, "limit {limit}");
        }
    }

    #[test]
    fn excluded_authors_go_first_and_the_cap_skips_within_a_page() {
        let a = Columns::new(&[(9, 1, 1), (8, 2, 1), (7, 3, 1), (6, 4, 2)]);
        let b = Columns::new(&[(10, 2, 3), (5, 5, 2)]);
        let runs = [a.run(), b.run()];
        // author 3's reshare of post 2 is muted, so author 1's entry for it stands
        let page = merge_page(
            &runs,
            &PageRequest {
                exclude_authors: &[3],
                ..request(10)
            },
        )
        .unwrap();
        assert_eq!(posts(&page), vec![1, 2, 3, 4, 5]);
        let page = merge_page(
            &runs,
            &PageRequest {
                per_author_cap: Some(1),
                ..request(3)
            },
        )
        .unwrap();
        assert_eq!(posts(&page), vec![2, 1, 4]);
        assert!(page.has_more);
    }

    #[test]
    fn order_checks_name_the_source_and_entry() {
        let good = Columns::new(&[(3, 1, 0), (3, 0, 0), (1, 5, 0)]);
        assert!(check_order(&good.run(), 0).is_ok());
        let bad = Columns::new(&[(3, 1, 0), (3, 2, 0)]);
        assert_eq!(
            check_order(&bad.run(), 4).unwrap_err(),
            TimelineError::NotFeedOrder {
                index: 4,
                entry: 1,
                previous: 0
            }
            .into()
        );
        let floats = [1.0, f64::NAN];
        let run = Run::columns(Scores::Float(&floats), &[1, 2], &[0, 0]);
        assert_eq!(
            check_order(&run, 0).unwrap_err(),
            TimelineError::NanScoreInSource { index: 0, entry: 1 }.into()
        );
    }

    #[test]
    fn float_scores_order_as_numbers_and_minus_zero_is_zero() {
        let floats = [2.5, 0.0, -0.0, -1.0];
        let posts_ = [1, 3, 2, 4];
        let run = Run::columns(Scores::Float(&floats), &posts_, &[0, 0, 0, 0]);
        assert!(check_order(&run, 0).is_ok());
        let page = merge_page(&[run], &request(10)).unwrap();
        assert_eq!(page.keys[1], float_key(0.0));
        assert_eq!(page.keys[2], float_key(0.0));
    }

    #[test]
    fn a_huge_limit_allocates_only_what_the_feed_holds() {
        let a = Columns::new(&[(1, 1, 1)]);
        let page = merge_page(&[a.run()], &request(usize::MAX)).unwrap();
        assert_eq!(posts(&page), vec![1]);
    }
}
