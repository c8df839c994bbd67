//! Queries about single users, suggestions and traversal: the calls a web tier makes per request.

use std::cell::RefCell;
use std::cmp::Ordering;

use super::{FollowGraph, Row, View};
use crate::error::Result;

/// Per-thread scratch space sized to the graph: epoch stamps instead of hash sets (a new query bumps
/// the epoch instead of clearing the array), and one score per user.
struct Scratch {
    stamp: Vec<u32>,
    epoch: u32,
    score: Vec<f64>,
    touched: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch { stamp: Vec::new(), epoch: 0, score: Vec::new(), touched: Vec::new() })
    };
}

impl Scratch {
    /// Makes room for `n` users and returns `count` fresh epochs (`e`, `e + 1`, ...) that no stamp
    /// holds yet.
    fn fresh(&mut self, n: usize, count: u32) -> u32 {
        if self.stamp.len() < n {
            self.stamp.resize(n, 0);
            self.score.resize(n, 0.0);
        }
        if self.epoch > u32::MAX - count - 1 {
            self.stamp.iter_mut().for_each(|s| *s = 0);
            self.epoch = 0;
        }
        let first = self.epoch + 1;
        self.epoch += count;
        self.touched.clear();
        first
    }
}

fn with_scratch<R>(f: impl FnOnce(&mut Scratch) -> R) -> R {
    SCRATCH.with(|scratch| match scratch.try_borrow_mut() {
        Ok(mut scratch) => f(&mut scratch),
        // Only a re-entrant call could find it taken; give that one its own space.
        Err(_) => f(&mut Scratch {
            stamp: Vec::new(),
            epoch: 0,
            score: Vec::new(),
            touched: Vec::new(),
        }),
    })
}

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
struct SplitMix64(u64);

impl SplitMix64 {
    #[inline]
    fn next(&mut self) -> u64 {
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

    /// Ranks scored candidates: the `limit` best by score, ties broken by the smaller id.
    fn ranked(&self, candidates: &mut [u32], score: &[f64], limit: usize) -> (Vec<i64>, Vec<f64>) {
        let sorted = self.sorted_indices();
        let cmp = |a: &u32, b: &u32| -> Ordering {
            score[*b as usize]
                .total_cmp(&score[*a as usize])
                .then_with(|| {
                    if sorted {
                        a.cmp(b)
                    } else {
                        self.id(*a).cmp(&self.id(*b))
                    }
                })
        };
        let top = limit.min(candidates.len());
        if top == 0 {
            return (Vec::new(), Vec::new());
        }
        if top < candidates.len() {
            candidates.select_nth_unstable_by(top - 1, cmp);
        }
        let best = &mut candidates[..top];
        best.sort_unstable_by(cmp);
        (
            best.iter().map(|&c| self.id(c)).collect(),
            best.iter().map(|&c| score[c as usize]).collect(),
        )
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
            return Ok((row.targets[range].iter().map(|&v| view.id(v)).collect(), None));
        };
        let order = view.time_order(&row);
        // Newest first: the follows before `until` start where times drop below it, and those from
        // `since` on end where times drop below `since`.
        let first = until.map_or(0, |until| order.partition_point(|&k| times[k as usize] >= until));
        let last = since.map_or(order.len(), |since| {
            order.partition_point(|&k| times[k as usize] >= since)
        });
        let window = &order[first..last.max(first)];
        let range = page(window.len());
        let chosen = &window[range];
        Ok((
            chosen.iter().map(|&k| view.id(row.targets[k as usize])).collect(),
            Some(chosen.iter().map(|&k| times[k as usize]).collect()),
        ))
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
        Ok(a.iter()
            .zip(b)
            .map(|(&a, &b)| match (view.lookup(a), view.lookup(b)) {
                (Some(a), Some(b)) => {
                    let (following, followers) = (view.row(a, true), view.row(b, false));
                    if following.targets.len() <= followers.targets.len() {
                        view.row_contains(&following, b)
                    } else {
                        view.row_contains(&followers, a)
                    }
                }
                _ => false,
            })
            .collect())
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
            let skip = scratch.fresh(view.n(), 2);
            let seen = skip + 1;
            let Scratch {
                stamp,
                score,
                touched,
                ..
            } = scratch;
            stamp[u as usize] = skip;
            for &f in followed.targets {
                stamp[f as usize] = skip;
            }
            for &id in exclude {
                if let Some(x) = view.lookup(id) {
                    stamp[x as usize] = skip;
                }
            }
            // Terms are added in ascending id order of f, the order the reference adds them in.
            for &f in followed.targets {
                let row = view.row(f, true);
                if row.targets.is_empty() {
                    continue;
                }
                let weight = if adamic_adar {
                    1.0 / ((row.targets.len() + view.degree(f, false)) as f64).ln()
                } else {
                    1.0
                };
                for &c in row.targets {
                    let s = stamp[c as usize];
                    if s == skip {
                        continue;
                    }
                    if s != seen {
                        stamp[c as usize] = seen;
                        score[c as usize] = 0.0;
                        touched.push(c);
                    }
                    score[c as usize] += weight;
                }
            }
            view.ranked(touched, score, limit)
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
        if start.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        Ok(with_scratch(|scratch| {
            let skip = scratch.fresh(view.n(), 2);
            let seen = skip + 1;
            let Scratch {
                stamp,
                score,
                touched,
                ..
            } = scratch;
            stamp[u as usize] = skip;
            for &f in start {
                stamp[f as usize] = skip;
            }
            for &id in exclude {
                if let Some(x) = view.lookup(id) {
                    stamp[x as usize] = skip;
                }
            }
            let mut rng = SplitMix64(params.seed);
            for _ in 0..params.walks {
                let mut current = u;
                for _ in 0..params.walk_length {
                    let mut followees = view.row(current, true).targets;
                    if followees.is_empty() {
                        followees = start;
                    }
                    current = followees[rng.below(followees.len())];
                    let s = stamp[current as usize];
                    if s != skip {
                        if s != seen {
                            stamp[current as usize] = seen;
                            score[current as usize] = 0.0;
                            touched.push(current);
                        }
                        score[current as usize] += 1.0;
                    }
                    if rng.unit() < params.restart_prob {
                        current = u;
                    }
                }
            }
            view.ranked(touched, score, params.limit)
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
        let (order, depths) = with_scratch(|scratch| {
            let visited = scratch.fresh(view.n(), 1);
            let stamp = &mut scratch.stamp;
            let mut order = vec![u];
            let mut depths = vec![0_i64];
            stamp[u as usize] = visited;
            let mut level_start = 0;
            let mut depth = 0;
            'levels: while depth < max_depth && level_start < order.len() {
                depth += 1;
                let level_end = order.len();
                for i in level_start..level_end {
                    for &v in view.row(order[i], out).targets {
                        if stamp[v as usize] != visited {
                            if order.len() == max_nodes {
                                break 'levels;
                            }
                            stamp[v as usize] = visited;
                            order.push(v);
                            depths.push(depth as i64);
                        }
                    }
                }
                level_start = level_end;
            }
            (order, depths)
        });
        Ok((order.iter().map(|&x| view.id(x)).collect(), depths))
    }
}
