//! The follower graph: a compact graph over real 64-bit user ids.
//!
//! The reference is `src/igcore/_reference/graph.py`; its docstrings are the contract, and
//! `src/igcore/_graph_file.py` describes the layout, which is the file format too.
//!
//! Layout: users get dense `u32` indices in ascending id order, so that "ascending id" and "ascending
//! index" are one order; each direction is compressed sparse rows (`u64` offsets, `u32` neighbours,
//! each row ascending); one open-addressing table maps ids to indices. That is 8 bytes per follow for
//! both directions, plus about 26 bytes per user. The arrays live either in memory or in a mapped file
//! (see [`file`]).
//!
//! Follows and unfollows go to an [`Overlay`]: a touched user's whole row, rewritten, and users that
//! are new since the base was built. Queries read rows through [`View`], which looks in the overlay
//! first; `compact` folds the overlay into a new base.

mod analytics;
mod build;
mod edgelist;
pub mod file;
mod queries;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::error::{CommonError, GraphError, Result};
use crate::id_index::{id_hash, IdIndex};

pub use build::{build, Built};
pub use edgelist::{parse_edgelist, EdgeList};
pub use queries::WalkParams;

/// Follows as `(src, dst, times)` id arrays; times only on a timed graph.
pub type EdgeArrays = (Vec<i64>, Vec<i64>, Option<Vec<i64>>);

/// Marks a free slot of the id table.
pub const EMPTY_SLOT: u32 = u32::MAX;

/// The id table's size for `n` users: at most half full, at least 16 slots.
pub fn num_slots_for(n: usize) -> usize {
    (n.saturating_mul(2)).max(16).next_power_of_two()
}

/// One direction in compressed sparse rows: row `u` is `targets[offsets[u]..offsets[u + 1]]`.
#[derive(Clone, Copy)]
pub(crate) struct Csr<'a> {
    pub offsets: &'a [u64],
    pub targets: &'a [u32],
    /// Aligned with `targets` (timed graphs).
    pub times: Option<&'a [i64]>,
    /// Per row, positions within the row, newest first, ties by the smaller id (timed graphs).
    pub by_time: Option<&'a [u32]>,
}

impl<'a> Csr<'a> {
    /// Where row `u` lies in `targets`. A row outside the section (a mapped file changed under the
    /// graph) is empty: whatever the file holds, no read leaves a section.
    #[inline]
    fn range(&self, u: u32) -> std::ops::Range<usize> {
        let u = u as usize;
        match (self.offsets.get(u), self.offsets.get(u + 1)) {
            (Some(&start), Some(&end)) if start <= end && end <= self.targets.len() as u64 => {
                start as usize..end as usize
            }
            _ => 0..0,
        }
    }

    #[inline]
    pub fn row(&self, u: u32) -> Row<'a> {
        let range = self.range(u);
        Row {
            targets: &self.targets[range.clone()],
            times: self.times.map(|t| &t[range.clone()]),
            by_time: self.by_time.map(|b| &b[range]),
            by_index: true,
        }
    }

    #[inline]
    pub fn degree(&self, u: u32) -> usize {
        self.range(u).len()
    }
}

/// The compact layout, borrowed: what every kernel reads.
#[derive(Clone, Copy)]
pub(crate) struct Base<'a> {
    pub ids: &'a [i64],
    pub slots: &'a [u32],
    pub out: Csr<'a>,
    pub inn: Csr<'a>,
}

impl Base<'_> {
    /// The index of `id` in the id table. At most one probe per slot, and indices beyond the ids
    /// skipped: a table changed under the graph (a mapped file) cannot make it loop or read out of
    /// bounds.
    #[inline]
    pub fn lookup(&self, id: i64) -> Option<u32> {
        let mask = self.slots.len().wrapping_sub(1);
        let shift = 64 - self.slots.len().trailing_zeros();
        let mut pos = (id_hash(id).checked_shr(shift).unwrap_or(0)) as usize;
        for _ in 0..self.slots.len() {
            let index = *self.slots.get(pos)?;
            if index == EMPTY_SLOT {
                return None;
            }
            if self.ids.get(index as usize) == Some(&id) {
                return Some(index);
            }
            pos = (pos + 1) & mask;
        }
        None
    }

    pub fn n(&self) -> usize {
        self.ids.len()
    }

    /// Asks the memory system for the home slot of `id`, ahead of its lookup.
    #[inline]
    pub fn prefetch_slot(&self, id: i64) {
        let shift = 64 - self.slots.len().trailing_zeros();
        let pos = (id_hash(id) >> shift) as usize;
        crate::id_index::prefetch_read(self.slots.as_ptr().wrapping_add(pos));
    }
}

/// One user's row: neighbours in ascending id order, with their times on a timed graph.
#[derive(Clone, Copy)]
pub(crate) struct Row<'a> {
    pub targets: &'a [u32],
    pub times: Option<&'a [i64]>,
    /// Positions newest first; `None` for rows of the overlay (sorted when asked).
    pub by_time: Option<&'a [u32]>,
    /// Whether the row is ascending by index, too (always, unless it names users new since the base).
    pub by_index: bool,
}

/// A row rewritten by updates: neighbours ascending by id, their times when the graph is timed.
#[derive(Clone, Default)]
pub(crate) struct OwnedRow {
    pub targets: Vec<u32>,
    pub times: Vec<i64>,
}

/// Updates since the base was built.
#[derive(Clone, Default)]
pub(crate) struct Overlay {
    /// Users new since the base, at indices `base_n + i`.
    pub new_users: IdIndex,
    pub out: HashMap<u32, OwnedRow>,
    pub inn: HashMap<u32, OwnedRow>,
    /// Neighbours held in rewritten rows, both directions: the overlay's size.
    pub entries: usize,
}

impl Overlay {
    pub fn is_empty(&self) -> bool {
        self.new_users.is_empty() && self.out.is_empty() && self.inn.is_empty()
    }
}

/// A graph's arrays: built in memory, or the sections of a file (mapped or read).
pub(crate) enum Storage {
    Owned(OwnedArrays),
    File(file::FileArrays),
}

#[derive(Clone, Default)]
pub(crate) struct OwnedArrays {
    pub ids: Vec<i64>,
    pub slots: Vec<u32>,
    pub out_offsets: Vec<u64>,
    pub out_targets: Vec<u32>,
    pub in_offsets: Vec<u64>,
    pub in_sources: Vec<u32>,
    pub out_times: Vec<i64>,
    pub out_by_time: Vec<u32>,
    pub in_times: Vec<i64>,
    pub in_by_time: Vec<u32>,
}

impl OwnedArrays {
    fn base(&self, timed: bool) -> Base<'_> {
        Base {
            ids: &self.ids,
            slots: &self.slots,
            out: Csr {
                offsets: &self.out_offsets,
                targets: &self.out_targets,
                times: timed.then_some(&self.out_times[..]),
                by_time: timed.then_some(&self.out_by_time[..]),
            },
            inn: Csr {
                offsets: &self.in_offsets,
                targets: &self.in_sources,
                times: timed.then_some(&self.in_times[..]),
                by_time: timed.then_some(&self.in_by_time[..]),
            },
        }
    }

    fn nbytes(&self) -> usize {
        self.ids.len() * 8
            + self.slots.len() * 4
            + (self.out_offsets.len() + self.in_offsets.len()) * 8
            + (self.out_targets.len() + self.in_sources.len()) * 4
            + (self.out_times.len() + self.in_times.len()) * 8
            + (self.out_by_time.len() + self.in_by_time.len()) * 4
    }
}

/// A follow graph: the compact base, and the updates since it was built.
pub struct FollowGraph {
    storage: Storage,
    timed: bool,
    /// Set once the base has been checked (always, for a graph built in memory); holds the error of a
    /// file that failed its checks, so every later query reports it, too.
    verified: OnceLock<Result<()>>,
    overlay: Overlay,
}

/// When the overlay holds more neighbours than this share of the base's, updates fold it in.
const COMPACT_RATIO: usize = 1;
const COMPACT_MIN_ENTRIES: usize = 1 << 16;

impl FollowGraph {
    pub(crate) fn from_arrays(arrays: OwnedArrays, timed: bool) -> Self {
        let verified = OnceLock::new();
        let _ = verified.set(Ok(()));
        FollowGraph {
            storage: Storage::Owned(arrays),
            timed,
            verified,
            overlay: Overlay::default(),
        }
    }

    pub(crate) fn from_file(arrays: file::FileArrays, timed: bool) -> Self {
        FollowGraph {
            storage: Storage::File(arrays),
            timed,
            verified: OnceLock::new(),
            overlay: Overlay::default(),
        }
    }

    pub fn timed(&self) -> bool {
        self.timed
    }

    /// The base without checking it: for the checks themselves, and sizes read from the header.
    fn raw_base(&self) -> Base<'_> {
        match &self.storage {
            Storage::Owned(arrays) => arrays.base(self.timed),
            Storage::File(arrays) => arrays.base(),
        }
    }

    /// Checks a loaded file's body once (checksums, structure); later calls return the first answer.
    pub fn verify(&self) -> Result<()> {
        let outcome = self.verified.get_or_init(|| match &self.storage {
            Storage::Owned(_) => Ok(()),
            Storage::File(arrays) => arrays.verify(),
        });
        outcome.clone()
    }

    /// The checked base, with the overlay: what queries read.
    pub(crate) fn view(&self) -> Result<View<'_>> {
        self.verify()?;
        Ok(View {
            base: self.raw_base(),
            overlay: &self.overlay,
            timed: self.timed,
        })
    }

    pub fn num_users(&self) -> usize {
        self.raw_base().n() + self.overlay.new_users.len()
    }

    pub fn num_follows(&self) -> Result<usize> {
        let view = self.view()?;
        if self.overlay.out.is_empty() {
            return Ok(view.base.out.targets.len());
        }
        let base = view.base.out;
        let mut total = base.targets.len();
        for (&u, row) in &self.overlay.out {
            if (u as usize) < view.base.n() {
                // Saturating: rows of a mapped file changed under the graph may overlap.
                total = total.saturating_sub(base.degree(u));
            }
            total += row.targets.len();
        }
        Ok(total)
    }

    /// Bytes held: the base's arrays (mapped or in memory) and the overlay's rows.
    pub fn nbytes(&self) -> usize {
        let base = match &self.storage {
            Storage::Owned(arrays) => arrays.nbytes(),
            Storage::File(arrays) => arrays.nbytes(),
        };
        let per_entry = if self.timed { 12 } else { 4 };
        base + self.overlay.entries * per_entry + self.overlay.new_users.len() * 24
    }

    /// A graph without updates pending: this one, or a compacted copy.
    pub(crate) fn compacted(&self) -> Result<std::borrow::Cow<'_, FollowGraph>> {
        self.verify()?;
        if self.overlay.is_empty() {
            return Ok(std::borrow::Cow::Borrowed(self));
        }
        let view = self.view()?;
        let (src, dst, times) = view.edges();
        let users = view.user_ids();
        let built = build::build_with_users(&src, &dst, times.as_deref(), &users)?;
        Ok(std::borrow::Cow::Owned(built.graph))
    }

    /// Folds the overlay into a new base.
    pub fn compact(&mut self) -> Result<()> {
        if let std::borrow::Cow::Owned(graph) = self.compacted()? {
            *self = graph;
        }
        Ok(())
    }

    /// The base of a graph known to have no overlay.
    pub(crate) fn clean_base(&self) -> Result<Base<'_>> {
        debug_assert!(self.overlay.is_empty());
        self.verify()?;
        Ok(self.raw_base())
    }
}

impl Clone for FollowGraph {
    fn clone(&self) -> Self {
        // Only compacted copies are cloned (through `Cow`), and those live in memory.
        let arrays = match &self.storage {
            Storage::Owned(arrays) => arrays.clone(),
            Storage::File(arrays) => arrays.to_owned_arrays(),
        };
        let mut graph = FollowGraph::from_arrays(arrays, self.timed);
        graph.overlay = self.overlay.clone();
        graph
    }
}

/// The base and the overlay together: rows as the graph has them now.
#[derive(Clone, Copy)]
pub(crate) struct View<'a> {
    pub base: Base<'a>,
    pub overlay: &'a Overlay,
    pub timed: bool,
}

impl<'a> View<'a> {
    pub fn n(&self) -> usize {
        self.base.n() + self.overlay.new_users.len()
    }

    /// The id of user `index`; `i64::MIN` for an index beyond every user, which only a mapped file
    /// changed under the graph holds.
    #[inline]
    pub fn id(&self, index: u32) -> i64 {
        let base_n = self.base.n();
        match self.base.ids.get(index as usize) {
            Some(&id) => id,
            None => (index as usize)
                .checked_sub(base_n)
                .and_then(|i| self.overlay.new_users.ids().get(i))
                .map_or(i64::MIN, |&id| id),
        }
    }

    #[inline]
    pub fn lookup(&self, id: i64) -> Option<u32> {
        if let Some(index) = self.base.lookup(id) {
            return Some(index);
        }
        if self.overlay.new_users.is_empty() {
            return None;
        }
        self.overlay
            .new_users
            .get(id)
            .map(|i| i + self.base.n() as u32)
    }

    pub fn index(&self, id: i64) -> Result<u32> {
        Ok(self.lookup(id).ok_or(GraphError::UnknownId { id })?)
    }

    /// Whether index order is id order for every user (no users new since the base).
    pub fn sorted_indices(&self) -> bool {
        self.overlay.new_users.is_empty()
    }

    #[inline]
    pub fn row(&self, u: u32, out: bool) -> Row<'a> {
        let rows = if out {
            &self.overlay.out
        } else {
            &self.overlay.inn
        };
        if !rows.is_empty() {
            if let Some(row) = rows.get(&u) {
                return Row {
                    targets: &row.targets,
                    times: if self.timed { Some(&row.times) } else { None },
                    by_time: None,
                    by_index: self.overlay.new_users.is_empty(),
                };
            }
        }
        if (u as usize) < self.base.n() {
            if out {
                self.base.out.row(u)
            } else {
                self.base.inn.row(u)
            }
        } else {
            Row {
                targets: &[],
                times: if self.timed { Some(&[]) } else { None },
                by_time: None,
                by_index: true,
            }
        }
    }

    #[inline]
    pub fn degree(&self, u: u32, out: bool) -> usize {
        self.row(u, out).targets.len()
    }

    /// Asks the memory system for the start of row `u` of the base, ahead of its use.
    #[inline]
    pub fn prefetch_row(&self, u: u32, out: bool) {
        let csr = if out { &self.base.out } else { &self.base.inn };
        if let Some(&start) = csr.offsets.get(u as usize) {
            crate::id_index::prefetch_read(csr.targets.as_ptr().wrapping_add(start as usize));
        }
    }

    #[inline]
    pub fn prefetch_id(&self, x: u32) {
        crate::id_index::prefetch_read(self.base.ids.as_ptr().wrapping_add(x as usize));
    }

    /// Whether `row` holds user `v`.
    pub fn row_contains(&self, row: &Row<'_>, v: u32) -> bool {
        self.row_position(row, v).is_some()
    }

    pub fn row_position(&self, row: &Row<'_>, v: u32) -> Option<usize> {
        if row.by_index {
            row.targets.binary_search(&v).ok()
        } else {
            let id = self.id(v);
            row.targets.binary_search_by_key(&id, |&x| self.id(x)).ok()
        }
    }

    /// Every user's id, ascending.
    pub fn user_ids(&self) -> Vec<i64> {
        let mut ids = self.base.ids.to_vec();
        if !self.overlay.new_users.is_empty() {
            ids.extend_from_slice(self.overlay.new_users.ids());
            ids.sort_unstable();
        }
        ids
    }

    /// Every follow, ordered by source id, then target id.
    pub fn edges(&self) -> EdgeArrays {
        let mut order: Vec<u32> = (0..self.n() as u32).collect();
        if !self.sorted_indices() {
            order.sort_unstable_by_key(|&u| self.id(u));
        }
        let mut src = Vec::new();
        let mut dst = Vec::new();
        let mut times = Vec::new();
        for &u in &order {
            let row = self.row(u, true);
            let id = self.id(u);
            for (k, &v) in row.targets.iter().enumerate() {
                src.push(id);
                dst.push(self.id(v));
                if let Some(t) = row.times {
                    times.push(t[k]);
                }
            }
        }
        (src, dst, if self.timed { Some(times) } else { None })
    }
}

impl FollowGraph {
    /// Adds follows in order; returns how many were new. See the reference's `follow`.
    pub fn follow(&mut self, src: &[i64], dst: &[i64], times: Option<&[i64]>) -> Result<usize> {
        check_lengths(src, dst, times)?;
        if times.is_some() != self.timed {
            return Err(GraphError::TimestampsForTimedGraph.into());
        }
        self.verify()?;
        let mut added = 0;
        for i in 0..src.len() {
            let a = self.user_index_or_insert(src[i])?;
            let b = self.user_index_or_insert(dst[i])?;
            if a == b {
                continue;
            }
            let t = times.map_or(0, |t| t[i]);
            if self.row_insert(a, b, t, true) {
                self.row_insert(b, a, t, false);
                added += 1;
            }
        }
        self.maybe_compact()?;
        Ok(added)
    }

    /// Removes follows; returns how many existed.
    pub fn unfollow(&mut self, src: &[i64], dst: &[i64]) -> Result<usize> {
        check_lengths(src, dst, None)?;
        self.verify()?;
        let mut removed = 0;
        for (&a, &b) in src.iter().zip(dst) {
            let view = self.raw_view();
            let (Some(a), Some(b)) = (view.lookup(a), view.lookup(b)) else {
                continue;
            };
            if self.row_remove(a, b, true) {
                self.row_remove(b, a, false);
                removed += 1;
            }
        }
        self.maybe_compact()?;
        Ok(removed)
    }

    fn user_index_or_insert(&mut self, id: i64) -> Result<u32> {
        let base = self.raw_base();
        if let Some(index) = base.lookup(id) {
            return Ok(index);
        }
        let base_n = base.n();
        if base_n + self.overlay.new_users.len() >= crate::id_index::MAX_IDS {
            return Err(GraphError::TooManyUsers.into());
        }
        let (i, _) = self.overlay.new_users.insert(id)?;
        Ok(base_n as u32 + i)
    }

    /// The overlay's copy of row `u`, made from the base row when it is first touched.
    fn owned_row(&mut self, u: u32, out: bool) -> &mut OwnedRow {
        let base = match &self.storage {
            Storage::Owned(arrays) => arrays.base(self.timed),
            Storage::File(arrays) => arrays.base(),
        };
        let rows = if out {
            &mut self.overlay.out
        } else {
            &mut self.overlay.inn
        };
        let entries = &mut self.overlay.entries;
        rows.entry(u).or_insert_with(|| {
            if (u as usize) < base.n() {
                let row = if out {
                    base.out.row(u)
                } else {
                    base.inn.row(u)
                };
                *entries += row.targets.len();
                OwnedRow {
                    targets: row.targets.to_vec(),
                    times: row.times.map(|t| t.to_vec()).unwrap_or_default(),
                }
            } else {
                OwnedRow::default()
            }
        })
    }

    /// The graph as it is now, without checking the base (updates run after `verify`).
    fn raw_view(&self) -> View<'_> {
        View {
            base: self.raw_base(),
            overlay: &self.overlay,
            timed: self.timed,
        }
    }

    /// Inserts `v` into row `u`, keeping the row ascending by id; false when it was there.
    fn row_insert(&mut self, u: u32, v: u32, t: i64, out: bool) -> bool {
        let at = {
            let view = self.raw_view();
            let id = view.id(v);
            match view
                .row(u, out)
                .targets
                .binary_search_by_key(&id, |&x| view.id(x))
            {
                Ok(_) => return false,
                Err(at) => at,
            }
        };
        let timed = self.timed;
        let row = self.owned_row(u, out);
        row.targets.insert(at, v);
        if timed {
            row.times.insert(at, t);
        }
        self.overlay.entries += 1;
        true
    }

    /// Removes `v` from row `u`; false when it was not there.
    fn row_remove(&mut self, u: u32, v: u32, out: bool) -> bool {
        let at = {
            let view = self.raw_view();
            let row = view.row(u, out);
            match view.row_position(&row, v) {
                Some(at) => at,
                None => return false,
            }
        };
        let row = self.owned_row(u, out);
        row.targets.remove(at);
        if !row.times.is_empty() {
            row.times.remove(at);
        }
        true
    }

    fn maybe_compact(&mut self) -> Result<()> {
        let base_entries = 2 * self.raw_base().out.targets.len();
        if self.overlay.entries > COMPACT_MIN_ENTRIES.max(base_entries * COMPACT_RATIO) {
            self.compact()?;
        }
        Ok(())
    }
}

pub(crate) fn check_lengths(src: &[i64], dst: &[i64], times: Option<&[i64]>) -> Result<()> {
    if src.len() != dst.len() {
        return Err(CommonError::LengthsDiffer {
            first: "src",
            second: "dst",
            first_length: src.len(),
            second_length: dst.len(),
        }
        .into());
    }
    if let Some(times) = times {
        if times.len() != src.len() {
            return Err(CommonError::LengthsDiffer {
                first: "timestamps",
                second: "src",
                first_length: times.len(),
                second_length: src.len(),
            }
            .into());
        }
    }
    Ok(())
}
