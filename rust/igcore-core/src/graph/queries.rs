//! Queries about single users, suggestions and traversal: the calls a web tier makes per request.

use std::cell::RefCell;
use std::cmp::Ordering;

use super::{FollowGraph, Row, View};
use crate::error::Result;
use crate::id_index::prefetch_read;

/// A user's entry in a scoring pass: the epoch that last touched it, and its score so far. One
/// 16-byte slot, so that scoring a candidate touches one cache line.
#[derive(Clone, Copy, Default)]
struct ScoreSlot {
    stamp: u32,
    count: u32,
    score: f64,
}

impl ScoreSlot {
    /// Starts the slot of candidate `c` afresh, once per pass (`seen`), and lists it in `touched`.
    #[inline(always)]
    fn claim(&mut self, seen: u32, c: u32, touched: &mut Vec<u32>) {
        if self.stamp != seen {
            *self = ScoreSlot {
                stamp: seen,
                count: 0,
                score: 0.0,
            };
            touched.push(c);
        }
    }
}

/// Per-thread scratch space sized to the graph: epoch stamps instead of hash sets (a new query bumps
/// the epoch instead of clearing the arrays).
#[derive(Default)]
struct Scratch {
    /// Traversals: a bit per user, all clear between calls.
    visited: Vec<u64>,
    /// Scoring passes.
    slots: Vec<ScoreSlot>,
    score_epoch: u32,
    touched: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

impl Scratch {
    /// Sets up a suggestion pass for user `u` of `view`: fresh epochs `(skip, seen)`, with `skip`
    /// stamped on the user, the accounts it follows and the excluded ids (no suggestion names them),
    /// and the slots of the view's users. Neighbours >= n come only from a mapped file changed under
    /// the graph: skipped.
    fn suggestion_pass(
        &mut self,
        view: &View<'_>,
        u: u32,
        followed: &[u32],
        exclude: &[i64],
    ) -> (u32, u32, &mut [ScoreSlot], &mut Vec<u32>) {
        let n = view.n();
        let skip = self.fresh_scores(n);
        let Scratch { slots, touched, .. } = self;
        let slots = &mut slots[..n];
        slots[u as usize].stamp = skip;
        for &f in followed {
            if let Some(slot) = slots.get_mut(f as usize) {
                slot.stamp = skip;
            }
        }
        for &id in exclude {
            if let Some(x) = view.lookup(id) {
                slots[x as usize].stamp = skip;
            }
        }
        (skip, skip + 1, slots, touched)
    }

    /// Makes room for `n` users; returns two scoring epochs (`e` marks users to skip, `e + 1` users
    /// scored) that no slot holds yet.
    fn fresh_scores(&mut self, n: usize) -> u32 {
        if self.slots.len() < n {
            self.slots.resize(n, ScoreSlot::default());
        }
        if self.score_epoch >= u32::MAX - 2 {
            self.slots.iter_mut().for_each(|s| s.stamp = 0);
            self.score_epoch = 0;
        }
        self.score_epoch += 2;
        self.touched.clear();
        self.score_epoch - 1
    }
}

fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        // Only a re-entrant call could find it taken; give that one its own space.
        Err(_) => f(&mut Scratch::default()),
    })
}

/// How many neighbours ahead a scoring pass asks for a candidate's slot.
const PREFETCH_AHEAD: usize = 8;

/// Parameters of a personalised random walk (see the reference's `random_walk_suggest`).
#[derive(Clone, Copy, Debug)]
pub struct WalkParams {
    pub walks: u64,
    pub walk_length: u64,
    pub restart_prob: f64,
    pub seed: u64,
    pub limit: usize,
}

/// splitmix64, exactly as the reference defines it.
pub(crate) struct SplitMix64(pub u64);

impl SplitMix64 {
    #[inline]
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    #[inline]
    fn below(&mut self, n: usize) -> usize {
        ((self.next() as u128 * n as u128) >> 64) as usize
    }

    #[inline]
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 * (1.0 / (1_u64 << 53) as f64)
    }
}

/// A page of a user's list: `(ids, times)`.
pub type Listing = (Vec<i64>, Option<Vec<i64>>);

impl<'a> View<'a> {
    /// Positions of `row`, newest first, ties by the smaller id.
    fn time_order(&self, row: &Row<'a>) -> std::borrow::Cow<'a, [u32]> {
        if let Some(order) = row.by_time {
            return std::borrow::Cow::Borrowed(order);
        }
        let times = row.times.unwrap_or_default();
        let mut order: Vec<u32> = (0..row.targets.len() as u32).collect();
        // Rows are ascending by id, so a stable sort by time keeps ties in id order.
        order.sort_by_key(|&k| std::cmp::Reverse(times[k as usize]));
        std::borrow::Cow::Owned(order)
    }

    /// Iterates the shorter of two rows and keeps what the other holds: ascending by id.
    fn intersect(&self, a: &Row<'_>, b: &Row<'_>, mut keep: impl FnMut(u32)) {
        let (short, long) = if a.targets.len() <= b.targets.len() {
            (a, b)
        } else {
            (b, a)
        };
        for &v in short.targets {
            if self.row_contains(long, v) {
                keep(v);
            }
        }
    }

    /// Ranks scored candidates: the `limit` best by score, ties broken by the smaller id. A heap of
    /// the best `limit` seen so far: one comparison for most candidates when `limit` is small.
    fn ranked(
        &self,
        candidates: &[u32],
        score: impl Fn(u32) -> f64,
        prefetch: impl Fn(u32),
        limit: usize,
    ) -> (Vec<i64>, Vec<f64>) {
        let sorted = self.sorted_indices();
        let key = |c: u32| if sorted { c as i64 } else { self.id(c) };
        // Orders entries from best to worst.
        let order = |a: &(f64, i64, u32), b: &(f64, i64, u32)| -> Ordering {
            b.0.total_cmp(&a.0).then(a.1.cmp(&b.1))
        };
        let mut best: Vec<(f64, i64, u32)> = Vec::with_capacity(limit.min(candidates.len()) + 1);
        if limit >= candidates.len() {
            best.extend(candidates.iter().map(|&c| (score(c), key(c), c)));
        } else if limit > 0 {
            let mut heap = std::collections::BinaryHeap::with_capacity(limit);
            for (i, &c) in candidates.iter().enumerate() {
                if let Some(&ahead) = candidates.get(i + PREFETCH_AHEAD) {
                    prefetch(ahead);
                }
                let entry = Ranked((score(c), key(c), c));
                if heap.len() < limit {
                    heap.push(entry);
                } else if let Some(mut worst) = heap.peek_mut() {
                    if order(&entry.0, &worst.0) == Ordering::Less {
                        *worst = entry;
                    }
                }
            }
            best.extend(heap.into_iter().map(|r| r.0));
        }
        best.sort_unstable_by(order);
        (
            best.iter().map(|e| self.id(e.2)).collect(),
            best.iter().map(|e| e.0).collect(),
        )
    }
}

/// A scored candidate in the ranking heap, which keeps the worst of the best on top.
struct Ranked((f64, i64, u32));

impl PartialEq for Ranked {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Ranked {
    /// Greater means worse: a lower score, or an equal score and a larger id.
    fn cmp(&self, other: &Self) -> Ordering {
        other
            .0
             .0
            .total_cmp(&self.0 .0)
            .then(self.0 .1.cmp(&other.0 .1))
    }
}

impl FollowGraph {
    pub fn contains(&self, id: i64) -> Result<bool> {
        Ok(self.view()?.lookup(id).is_some())
    }

    pub fn user_ids(&self) -> Result<Vec<i64>> {
        Ok(self.view()?.user_ids())
    }

    /// Whom `user` follows (`out`) or who follows `user`; see the reference's `neighbours`.
    pub fn neighbours(
        &self,
        user: i64,
        out: bool,
        since: Option<i64>,
        until: Option<i64>,
        offset: usize,
        limit: Option<usize>,
    ) -> Result<Listing> {
        let view = self.view()?;
        let row = view.row(view.index(user)?, out);
        let page = |len: usize| {
            let start = offset.min(len);
            start..start.saturating_add(limit.unwrap_or(usize::MAX)).min(len)
        };
        let Some(times) = row.times else {
            let range = page(row.targets.len());
            return Ok((
                row.targets[range].iter().map(|&v| view.id(v)).collect(),
                None,
            ));
        };
        let order = view.time_order(&row);
        // A position beyond the row (a mapped file changed under the graph) reads nothing: i64::MIN.
        let time = |k: u32| times.get(k as usize).copied().unwrap_or(i64::MIN);
        let target = |k: u32| {
            row.targets
                .get(k as usize)
                .map_or(i64::MIN, |&v| view.id(v))
        };
        // Newest first: the follows before `until` start where times drop below it, and those from
        // `since` on end where times drop below `since`.
        let first = until.map_or(0, |until| order.partition_point(|&k| time(k) >= until));
        let last = since.map_or(order.len(), |since| {
            order.partition_point(|&k| time(k) >= since)
        });
        let window = &order[first..last.max(first)];
        let range = page(window.len());
        let chosen = &window[range];
        Ok((
            chosen.iter().map(|&k| target(k)).collect(),
            Some(chosen.iter().map(|&k| time(k)).collect()),
        ))
    }

    /// How many users `user` follows (`out`) or is followed by.
    pub fn degree(&self, user: i64, out: bool) -> Result<usize> {
        let view = self.view()?;
        Ok(view.degree(view.index(user)?, out))
    }

    /// How many users each of `users` follows (`out`) or is followed by.
    pub fn counts(&self, users: &[i64], out: bool) -> Result<Vec<i64>> {
        let view = self.view()?;
        users
            .iter()
            .map(|&id| Ok(view.degree(view.index(id)?, out) as i64))
            .collect()
    }

    /// For each pair, whether `a[i]` follows `b[i]` (false for unknown users).
    pub fn is_following(&self, a: &[i64], b: &[i64]) -> Result<Vec<bool>> {
        super::check_lengths(a, b, None)?;
        let view = self.view()?;
        let mut found = Vec::with_capacity(a.len());
        for (i, (&a_id, &b_id)) in a.iter().zip(b).enumerate() {
            // Id lookups miss the cache on large graphs; ask for the slots of later pairs now.
            if let (Some(&a_next), Some(&b_next)) =
                (a.get(i + PREFETCH_AHEAD), b.get(i + PREFETCH_AHEAD))
            {
                view.base.prefetch_slot(a_next);
                view.base.prefetch_slot(b_next);
            }
            found.push(match (view.lookup(a_id), view.lookup(b_id)) {
                (Some(x), Some(y)) => {
                    // Search the shorter of x's following and y's followers.
                    let (following, followers) = (view.row(x, true), view.row(y, false));
                    if following.targets.len() <= followers.targets.len() {
                        view.row_contains(&following, y)
                    } else {
                        view.row_contains(&followers, x)
                    }
                }
                _ => false,
            });
        }
        Ok(found)
    }

    pub fn mutual_follows(&self, user: i64) -> Result<Vec<i64>> {
        let view = self.view()?;
        let u = view.index(user)?;
        let mut found = Vec::new();
        view.intersect(&view.row(u, true), &view.row(u, false), |v| {
            found.push(view.id(v))
        });
        Ok(found)
    }

    /// Users both `a` and `b` follow (`out`), or users who follow both.
    pub fn common(&self, a: i64, b: i64, out: bool) -> Result<Vec<i64>> {
        let view = self.view()?;
        let (a, b) = (view.index(a)?, view.index(b)?);
        let mut found = Vec::new();
        view.intersect(&view.row(a, out), &view.row(b, out), |v| {
            found.push(view.id(v))
        });
        Ok(found)
    }

    /// Accounts `viewer` follows that follow `target`: the first `limit` ids and the total.
    pub fn followed_by(&self, viewer: i64, target: i64, limit: usize) -> Result<(Vec<i64>, usize)> {
        let view = self.view()?;
        let (viewer, target) = (view.index(viewer)?, view.index(target)?);
        let mut first = Vec::new();
        let mut total = 0;
        view.intersect(&view.row(viewer, true), &view.row(target, false), |v| {
            if first.len() < limit {
                first.push(view.id(v));
            }
            total += 1;
        });
        Ok((first, total))
    }

    /// Friends of friends, scored by common neighbours or Adamic-Adar; see the reference's `suggest`.
    pub fn suggest(
        &self,
        user: i64,
        limit: usize,
        adamic_adar: bool,
        exclude: &[i64],
    ) -> Result<(Vec<i64>, Vec<f64>)> {
        let view = self.view()?;
        let u = view.index(user)?;
        let followed = view.row(u, true);
        Ok(with_scratch(|scratch| {
            let (skip, seen, slots, touched) =
                scratch.suggestion_pass(&view, u, followed.targets, exclude);
            // Terms are added in ascending id order of f, the order the reference adds them in. The
            // followees' rows lie all over memory: ask for the next rows, and for candidates' slots,
            // a few steps ahead of their use, so that the misses overlap.
            let followees = followed.targets;
            for (i, &f) in followees.iter().enumerate() {
                if let Some(&ahead) = followees.get(i + PREFETCH_AHEAD) {
                    view.prefetch_row(ahead, true);
                }
                let row = view.row(f, true).targets;
                if row.is_empty() {
                    continue;
                }
                if let Some(&next) = followees.get(i + 1) {
                    for &c in view.row(next, true).targets.iter().take(PREFETCH_AHEAD) {
                        prefetch_read(slots.as_ptr().wrapping_add(c as usize));
                    }
                }
                let weight = if adamic_adar {
                    1.0 / ((row.len() + view.degree(f, false)) as f64).ln()
                } else {
                    1.0
                };
                for (k, &c) in row.iter().enumerate() {
                    if let Some(&ahead) = row.get(k + PREFETCH_AHEAD) {
                        prefetch_read(slots.as_ptr().wrapping_add(ahead as usize));
                    }
                    let Some(slot) = slots.get_mut(c as usize) else {
                        continue;
                    };
                    if slot.stamp == skip {
                        continue;
                    }
                    slot.claim(seen, c, touched);
                    slot.count += 1;
                    slot.score += weight;
                }
            }
            let slots = &*slots;
            let ahead = |c: u32| prefetch_read(slots.as_ptr().wrapping_add(c as usize));
            // Touched candidates are below n, so these reads are in bounds.
            if adamic_adar {
                view.ranked(touched, |c| slots[c as usize].score, ahead, limit)
            } else {
                view.ranked(touched, |c| slots[c as usize].count as f64, ahead, limit)
            }
        }))
    }

    /// Personalised random walks with restart; see the reference's `random_walk_suggest`.
    pub fn random_walk_suggest(
        &self,
        user: i64,
        params: WalkParams,
        exclude: &[i64],
    ) -> Result<(Vec<i64>, Vec<f64>)> {
        let view = self.view()?;
        let u = view.index(user)?;
        let start = view.row(u, true).targets;
        if start.is_empty() || params.walks == 0 || params.walk_length == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        Ok(with_scratch(|scratch| {
            let (skip, seen, slots, touched) = scratch.suggestion_pass(&view, u, start, exclude);
            let mut rng = SplitMix64(params.seed);
            for _ in 0..params.walks {
                let mut current = u;
                for _ in 0..params.walk_length {
                    let mut followees = view.row(current, true).targets;
                    if followees.is_empty() {
                        followees = start;
                    }
                    current = followees[rng.below(followees.len())];
                    match slots.get_mut(current as usize) {
                        Some(slot) if slot.stamp != skip => {
                            slot.claim(seen, current, touched);
                            slot.count += 1;
                        }
                        Some(_) => {}
                        // Beyond every user: a mapped file changed under the graph; start over.
                        None => current = u,
                    }
                    if rng.unit() < params.restart_prob {
                        current = u;
                    }
                }
            }
            let slots = &*slots;
            let ahead = |c: u32| prefetch_read(slots.as_ptr().wrapping_add(c as usize));
            view.ranked(
                touched,
                |c| slots[c as usize].count as f64,
                ahead,
                params.limit,
            )
        }))
    }

    /// Breadth-first search; see the reference's `bfs`. Returns `(ids, depths)`.
    pub fn bfs(
        &self,
        user: i64,
        max_depth: u64,
        max_nodes: Option<usize>,
        out: bool,
    ) -> Result<(Vec<i64>, Vec<i64>)> {
        let view = self.view()?;
        let u = view.index(user)?;
        let max_nodes = max_nodes.unwrap_or(usize::MAX);
        if max_nodes == 0 {
            return Ok((Vec::new(), Vec::new()));
        }
        // Visited users as a bitset: 1 bit per user stays in cache where a stamp array would not;
        // only the bits of the users reached are cleared afterwards.
        let n = view.n();
        let (order, depths) = with_scratch(|scratch| {
            let words = n.div_ceil(64);
            let seen = &mut scratch.visited;
            if seen.len() < words {
                seen.resize(words, 0);
            }
            let mut order = vec![u];
            let mut depths = vec![0_i64];
            seen[u as usize / 64] |= 1 << (u % 64);
            let mut level_start = 0;
            let mut depth = 0;
            // Ends when a level reaches no one new, however deep max_depth allows.
            'levels: while depth < max_depth && level_start < order.len() {
                depth += 1;
                let level_end = order.len();
                for i in level_start..level_end {
                    if let Some(&ahead) = order.get(i + PREFETCH_AHEAD) {
                        view.prefetch_row(ahead, out);
                    }
                    for &v in view.row(order[i], out).targets {
                        if v as usize >= n {
                            continue; // a mapped file changed under the graph
                        }
                        let (word, bit) = (v as usize / 64, 1_u64 << (v % 64));
                        if seen[word] & bit == 0 {
                            if order.len() == max_nodes {
                                break 'levels;
                            }
                            seen[word] |= bit;
                            order.push(v);
                            depths.push(depth as i64);
                        }
                    }
                }
                level_start = level_end;
            }
            for &x in &order {
                seen[x as usize / 64] = 0;
            }
            (order, depths)
        });
        let ids = order
            .iter()
            .enumerate()
            .map(|(i, &x)| {
                if let Some(&ahead) = order.get(i + 4 * PREFETCH_AHEAD) {
                    view.prefetch_id(ahead);
                }
                view.id(x)
            })
            .collect();
        Ok((ids, depths))
    }
}
