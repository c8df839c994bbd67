//! Whole-graph analytics for data pipelines. They run on the compact base (a graph with updates
//! pending is compacted into a copy first), where index order is id order.

use super::{Base, EdgeArrays, FollowGraph};
use crate::error::Result;

/// Row `u` of a direction, without neighbours beyond the users (which only a mapped file changed
/// under the graph holds).
fn neighbours<'a>(base: &Base<'a>, u: u32, out: bool) -> impl Iterator<Item = u32> + 'a {
    let n = base.n();
    let csr = if out { base.out } else { base.inn };
    csr.row(u)
        .targets
        .iter()
        .copied()
        .filter(move |&v| (v as usize) < n)
}

impl FollowGraph {
    /// Every follow as `(src, dst, times)`, ordered by source id, then target id.
    pub fn edges(&self) -> Result<EdgeArrays> {
        Ok(self.view()?.edges())
    }

    /// A component label per user (ascending id order), numbered by each component's smallest id.
    pub fn components(&self, strong: bool) -> Result<Vec<i64>> {
        let graph = self.compacted()?;
        let base = graph.clean_base()?;
        let root = if strong {
            strong_components(&base)
        } else {
            weak_components(&base)
        };
        // Number components in order of their smallest member: the first user met of each, scanning
        // users in ascending id (= index) order.
        let mut number = vec![u32::MAX; base.n()];
        let mut next = 0;
        Ok(root
            .iter()
            .map(|&r| {
                if number[r as usize] == u32::MAX {
                    number[r as usize] = next;
                    next += 1;
                }
                number[r as usize] as i64
            })
            .collect())
    }

    /// Triangles of the undirected simple graph.
    pub fn triangle_count(&self) -> Result<u64> {
        let graph = self.compacted()?;
        Ok(triangles(&graph.clean_base()?))
    }

    /// `h[k]`: how many users have exactly k follows out (`out`) or in.
    pub fn degree_histogram(&self, out: bool) -> Result<Vec<i64>> {
        let view = self.view()?;
        let mut histogram: Vec<i64> = Vec::new();
        for u in 0..view.n() as u32 {
            let d = view.degree(u, out);
            if d >= histogram.len() {
                histogram.resize(d + 1, 0);
            }
            histogram[d] += 1;
        }
        Ok(histogram)
    }
}

/// Union-find over follows either way; a component's root is its smallest index.
fn weak_components(base: &Base<'_>) -> Vec<u32> {
    let n = base.n();
    let mut parent: Vec<u32> = (0..n as u32).collect();
    fn root(parent: &mut [u32], mut x: u32) -> u32 {
        while parent[x as usize] != x {
            let up = parent[parent[x as usize] as usize];
            parent[x as usize] = up;
            x = up;
        }
        x
    }
    for u in 0..n as u32 {
        for v in neighbours(base, u, true) {
            let (a, b) = (root(&mut parent, u), root(&mut parent, v));
            if a != b {
                parent[a.max(b) as usize] = a.min(b);
            }
        }
    }
    (0..n as u32).map(|u| root(&mut parent, u)).collect()
}

/// Tarjan's strongly connected components, without recursion (deep graphs would overflow the stack).
/// Returns for each user a representative of its component.
fn strong_components(base: &Base<'_>) -> Vec<u32> {
    const UNSEEN: u32 = u32::MAX;
    let n = base.n();
    let mut index = vec![UNSEEN; n];
    let mut low = vec![0_u32; n];
    let mut on_stack = vec![false; n];
    let mut component = vec![UNSEEN; n];
    let mut stack: Vec<u32> = Vec::new();
    // (user, position of the next follow to look at)
    let mut calls: Vec<(u32, usize)> = Vec::new();
    let mut counter = 0_u32;
    for start in 0..n as u32 {
        if index[start as usize] != UNSEEN {
            continue;
        }
        calls.push((start, 0));
        index[start as usize] = counter;
        low[start as usize] = counter;
        counter += 1;
        stack.push(start);
        on_stack[start as usize] = true;
        while let Some(&mut (u, ref mut next)) = calls.last_mut() {
            let row = base.out.row(u).targets;
            if let Some(&v) = row.get(*next) {
                *next += 1;
                if v as usize >= n {
                    continue; // a mapped file changed under the graph
                }
                if index[v as usize] == UNSEEN {
                    index[v as usize] = counter;
                    low[v as usize] = counter;
                    counter += 1;
                    stack.push(v);
                    on_stack[v as usize] = true;
                    calls.push((v, 0));
                } else if on_stack[v as usize] {
                    low[u as usize] = low[u as usize].min(index[v as usize]);
                }
                continue;
            }
            calls.pop();
            if let Some(&(parent, _)) = calls.last() {
                low[parent as usize] = low[parent as usize].min(low[u as usize]);
            }
            if low[u as usize] == index[u as usize] {
                while let Some(w) = stack.pop() {
                    on_stack[w as usize] = false;
                    component[w as usize] = u;
                    if w == u {
                        break;
                    }
                }
            }
        }
    }
    component
}

/// Counts triangles of the undirected simple graph: each edge is oriented from the endpoint of lower
/// (degree, index) rank to the higher, so every out-list is at most about sqrt(2m) long, and each
/// triangle is found once, from its lowest-ranked corner.
fn triangles(base: &Base<'_>) -> u64 {
    let n = base.n();
    // Undirected neighbours: the union of following and followers (both ascending).
    let mut neighbours: Vec<Vec<u32>> = Vec::with_capacity(n);
    for u in 0..n as u32 {
        let (a, b) = (base.out.row(u).targets, base.inn.row(u).targets);
        let mut merged = Vec::with_capacity(a.len() + b.len());
        let (mut i, mut j) = (0, 0);
        while i < a.len() || j < b.len() {
            let next = match (a.get(i), b.get(j)) {
                (Some(&x), Some(&y)) if x == y => {
                    i += 1;
                    j += 1;
                    x
                }
                (Some(&x), Some(&y)) if x < y => {
                    i += 1;
                    x
                }
                (Some(_), Some(&y)) => {
                    j += 1;
                    y
                }
                (Some(&x), None) => {
                    i += 1;
                    x
                }
                (None, Some(&y)) => {
                    j += 1;
                    y
                }
                (None, None) => break,
            };
            if (next as usize) < n {
                merged.push(next); // beyond the users only in a mapped file changed under the graph
            }
        }
        neighbours.push(merged);
    }
    let rank_key = |u: u32| (neighbours[u as usize].len(), u);
    let forward: Vec<Vec<u32>> = (0..n as u32)
        .map(|u| {
            neighbours[u as usize]
                .iter()
                .copied()
                .filter(|&v| rank_key(v) > rank_key(u))
                .collect()
        })
        .collect();
    drop(neighbours);
    let mut mark = vec![u32::MAX; n];
    let mut count = 0_u64;
    for u in 0..n as u32 {
        for &v in &forward[u as usize] {
            mark[v as usize] = u;
        }
        for &v in &forward[u as usize] {
            for &w in &forward[v as usize] {
                if mark[w as usize] == u {
                    count += 1;
                }
            }
        }
    }
    count
}
