//! Building the compact layout from follows over arbitrary ids.

use super::{num_slots_for, FollowGraph, OwnedArrays, EMPTY_SLOT};
use crate::error::{GraphError, Result};
use crate::id_index::{id_hash, IdIndex};

/// A built graph and what the build dropped (see the reference's `build`).
pub struct Built {
    pub graph: FollowGraph,
    /// Input rows that repeated an earlier follow.
    pub duplicates: usize,
    /// Input rows that were self-follows.
    pub self_follows: usize,
    /// Users who followed themselves, ascending.
    pub self_followers: Vec<i64>,
}

/// A graph from the follows `src[i] follows dst[i]` (with `times[i]`). See the reference's `build`.
pub fn build(src: &[i64], dst: &[i64], times: Option<&[i64]>) -> Result<Built> {
    build_with_users(src, dst, times, &[])
}

/// [`build`], with `users` added as users even when no follow names them (compaction keeps users
/// whose follows are all gone).
pub(crate) fn build_with_users(
    src: &[i64],
    dst: &[i64],
    times: Option<&[i64]>,
    users: &[i64],
) -> Result<Built> {
    super::check_lengths(src, dst, times)?;
    // Dense indices in order of first appearance, then renumbered in ascending id order: then rows
    // ascending by index are ascending by id, and ties "by the smaller id" compare indices.
    let mut index = IdIndex::with_capacity((src.len() / 4).max(users.len()));
    let mut src_first = Vec::with_capacity(src.len());
    let mut dst_first = Vec::with_capacity(src.len());
    const AHEAD: usize = 16;
    for (i, (&a, &b)) in src.iter().zip(dst).enumerate() {
        if let (Some(&a_next), Some(&b_next)) = (src.get(i + AHEAD), dst.get(i + AHEAD)) {
            index.prefetch(a_next);
            index.prefetch(b_next);
        }
        src_first.push(index.insert(a)?.0);
        dst_first.push(index.insert(b)?.0);
    }
    for &user in users {
        index.insert(user)?;
    }
    let first_ids = index.into_ids();
    let n = first_ids.len();
    let mut order: Vec<u32> = (0..n as u32).collect();
    order.sort_unstable_by_key(|&i| first_ids[i as usize]);
    let mut rank = vec![0_u32; n];
    for (r, &i) in order.iter().enumerate() {
        rank[i as usize] = r as u32;
    }
    let ids: Vec<i64> = order.iter().map(|&i| first_ids[i as usize]).collect();
    drop(first_ids);

    // Follows as (source, target) in the new numbering, without self-follows.
    let mut self_follower = vec![false; n];
    let mut self_follows = 0;
    let mut out_degree = vec![0_u64; n + 1];
    for (a, b) in src_first.iter_mut().zip(dst_first.iter_mut()) {
        *a = rank[*a as usize];
        *b = rank[*b as usize];
        if a == b {
            self_follows += 1;
            self_follower[*a as usize] = true;
        } else {
            out_degree[*a as usize + 1] += 1;
        }
    }
    drop(rank);
    let mut offsets = out_degree;
    for u in 0..n {
        offsets[u + 1] += offsets[u];
    }
    let kept = offsets[n] as usize;
    let mut cursor: Vec<u64> = offsets[..n].to_vec();
    let mut targets = vec![0_u32; kept];
    let mut row_times = vec![0_i64; if times.is_some() { kept } else { 0 }];
    for (i, (&a, &b)) in src_first.iter().zip(&dst_first).enumerate() {
        if a == b {
            continue;
        }
        let at = cursor[a as usize] as usize;
        cursor[a as usize] += 1;
        targets[at] = b;
        if let Some(times) = times {
            row_times[at] = times[i];
        }
    }
    drop((src_first, dst_first, cursor));

    // Each row ascending, repeats collapsed (keeping the earliest time), compacted in place.
    let timed = times.is_some();
    let mut out_offsets = vec![0_u64; n + 1];
    let mut write = 0;
    let mut pairs: Vec<(u32, i64)> = Vec::new();
    for u in 0..n {
        let (start, end) = (offsets[u] as usize, offsets[u + 1] as usize);
        if timed {
            pairs.clear();
            pairs.extend(
                targets[start..end]
                    .iter()
                    .copied()
                    .zip(row_times[start..end].iter().copied()),
            );
            pairs.sort_unstable();
            let mut last = None;
            for &(v, t) in &pairs {
                if last != Some(v) {
                    targets[write] = v;
                    row_times[write] = t;
                    write += 1;
                    last = Some(v);
                }
            }
        } else {
            targets[start..end].sort_unstable();
            let mut last = None;
            for k in start..end {
                let v = targets[k];
                if last != Some(v) {
                    targets[write] = v;
                    write += 1;
                    last = Some(v);
                }
            }
        }
        out_offsets[u + 1] = write as u64;
    }
    drop(offsets);
    targets.truncate(write);
    targets.shrink_to_fit();
    row_times.truncate(if timed { write } else { 0 });
    row_times.shrink_to_fit();
    let duplicates = kept - write;

    // Followers: the transpose. Sources come in ascending order, so each row is ascending.
    let mut in_offsets = vec![0_u64; n + 1];
    for &v in &targets {
        in_offsets[v as usize + 1] += 1;
    }
    for u in 0..n {
        in_offsets[u + 1] += in_offsets[u];
    }
    let mut cursor: Vec<u64> = in_offsets[..n].to_vec();
    let mut sources = vec![0_u32; write];
    let mut in_times = vec![0_i64; if timed { write } else { 0 }];
    for u in 0..n {
        for k in out_offsets[u] as usize..out_offsets[u + 1] as usize {
            let v = targets[k] as usize;
            let at = cursor[v] as usize;
            cursor[v] += 1;
            sources[at] = u as u32;
            if timed {
                in_times[at] = row_times[k];
            }
        }
    }
    drop(cursor);

    let (out_by_time, in_by_time) = if timed {
        (
            by_time(&out_offsets, &targets, &row_times),
            by_time(&in_offsets, &sources, &in_times),
        )
    } else {
        (Vec::new(), Vec::new())
    };
    let slots = id_table(&ids)?;
    let self_followers = (0..n)
        .filter(|&u| self_follower[u])
        .map(|u| ids[u])
        .collect();
    let arrays = OwnedArrays {
        ids,
        slots,
        out_offsets,
        out_targets: targets,
        in_offsets,
        in_sources: sources,
        out_times: row_times,
        out_by_time,
        in_times,
        in_by_time,
    };
    Ok(Built {
        graph: FollowGraph::from_arrays(arrays, timed),
        duplicates,
        self_follows,
        self_followers,
    })
}

/// Per row, the positions within the row ordered newest first, ties by the smaller neighbour.
pub(crate) fn by_time(offsets: &[u64], targets: &[u32], times: &[i64]) -> Vec<u32> {
    let mut order = Vec::with_capacity(targets.len());
    for u in 0..offsets.len().saturating_sub(1) {
        let (start, end) = (offsets[u] as usize, offsets[u + 1] as usize);
        let first = order.len();
        order.extend(0..(end - start) as u32);
        // The row is ascending by neighbour, so a stable sort by time keeps ties in id order.
        order[first..].sort_by_key(|&k| std::cmp::Reverse(times[start + k as usize]));
    }
    order
}

/// The id table for ascending `ids`: id i at its hash's slot or the next free one after it.
pub(crate) fn id_table(ids: &[i64]) -> Result<Vec<u32>> {
    if ids.len() > crate::id_index::MAX_IDS {
        return Err(GraphError::TooManyUsers.into());
    }
    let num_slots = num_slots_for(ids.len());
    let shift = 64 - num_slots.trailing_zeros();
    let mask = num_slots - 1;
    let mut slots = vec![EMPTY_SLOT; num_slots];
    for (i, &id) in ids.iter().enumerate() {
        let mut pos = (id_hash(id) >> shift) as usize;
        while slots[pos] != EMPTY_SLOT {
            pos = (pos + 1) & mask;
        }
        slots[pos] = i as u32;
    }
    Ok(slots)
}
