//! A map from sparse 64-bit ids to dense indices 0, 1, 2, ... in order of first insertion, and the id
//! hashing shared by igcore's open-addressing tables.
//!
//! Real user and post ids are sparse 63-bit numbers; kernels work on dense `u32` indices so that
//! per-id state lives in plain vectors. Open addressing with linear probing keeps a lookup to one
//! cache line in the common case; the table is at most half full.

use crate::error::{CommonError, Result};

const EMPTY: u32 = u32::MAX;
/// The largest number of distinct ids one index can hold (indices are `u32`, `u32::MAX` marks empty).
pub const MAX_IDS: usize = (u32::MAX - 1) as usize;

#[derive(Clone, Copy)]
struct Slot {
    id: i64,
    index: u32,
}

const VACANT: Slot = Slot {
    id: 0,
    index: EMPTY,
};

#[derive(Clone)]
pub struct IdIndex {
    slots: Vec<Slot>,
    /// 64 - log2(slots.len()): the hash keeps its top bits.
    shift: u32,
    ids: Vec<i64>,
}

/// The hash of an id for open-addressing tables: use its top bits (`>> (64 - log2(slots))`).
///
/// Fold the high half into the low half, then Fibonacci hashing: the top bits of the product depend on
/// every bit of the id, so sequential ids and ids that differ only in high bits both spread.
#[inline(always)]
pub fn id_hash(id: i64) -> u64 {
    let x = id as u64;
    (x ^ (x >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// Asks the memory system for the cache line at `ptr` ahead of its use. Tables far larger than the
/// cache miss on most lookups; prefetching a few lookups ahead overlaps those misses.
#[inline(always)]
pub fn prefetch_read<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, even for an address outside any allocation.
    unsafe {
        std::arch::x86_64::_mm_prefetch(ptr as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

impl Default for IdIndex {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

impl IdIndex {
    /// An empty index sized for about `expected` ids without growing.
    pub fn with_capacity(expected: usize) -> Self {
        let slots = (expected.saturating_mul(2)).max(16).next_power_of_two();
        IdIndex {
            slots: vec![VACANT; slots],
            shift: 64 - slots.trailing_zeros(),
            ids: Vec::with_capacity(expected),
        }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The ids in order of first insertion: `ids()[i]` is the id whose index is `i`.
    pub fn ids(&self) -> &[i64] {
        &self.ids
    }

    pub fn into_ids(self) -> Vec<i64> {
        self.ids
    }

    /// Asks the memory system for `id`'s home slot, ahead of a `get` or `insert` of it: tables far
    /// larger than the cache miss on most lookups, and prefetching a few lookups ahead overlaps them.
    #[inline(always)]
    pub fn prefetch(&self, id: i64) {
        let pos = (id_hash(id) >> self.shift) as usize;
        prefetch_read(self.slots.as_ptr().wrapping_add(pos));
    }

    /// The index of `id`, if it was inserted.
    #[inline]
    pub fn get(&self, id: i64) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut pos = (id_hash(id) >> self.shift) as usize;
        loop {
            let slot = self.slots[pos];
            if slot.index == EMPTY {
                return None;
            }
            if slot.id == id {
                return Some(slot.index);
            }
            pos = (pos + 1) & mask;
        }
    }

    /// The index of `id`, inserting it (with the next free index) when it is new.
    /// Returns `(index, inserted)`.
    #[inline]
    pub fn insert(&mut self, id: i64) -> Result<(u32, bool)> {
        let mask = self.slots.len() - 1;
        let mut pos = (id_hash(id) >> self.shift) as usize;
        loop {
            let slot = self.slots[pos];
            if slot.index == EMPTY {
                break;
            }
            if slot.id == id {
                return Ok((slot.index, false));
            }
            pos = (pos + 1) & mask;
        }
        if self.ids.len() >= MAX_IDS {
            return Err(CommonError::TooManyIds { max: MAX_IDS }.into());
        }
        let index = self.ids.len() as u32;
        self.slots[pos] = Slot { id, index };
        self.ids.push(id);
        if self.ids.len() * 2 > self.slots.len() {
            self.grow();
        }
        Ok((index, true))
    }

    fn grow(&mut self) {
        let slots = self.slots.len() * 2;
        self.slots = vec![VACANT; slots];
        self.shift = 64 - slots.trailing_zeros();
        let mask = slots - 1;
        for (index, &id) in self.ids.iter().enumerate() {
            let mut pos = (id_hash(id) >> self.shift) as usize;
            while self.slots[pos].index != EMPTY {
                pos = (pos + 1) & mask;
            }
            self.slots[pos] = Slot {
                id,
                index: index as u32,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_indices_in_first_insertion_order() {
        let mut index = IdIndex::default();
        let ids = [5_i64, -1, i64::MIN, i64::MAX, 5, 0, -1];
        let got: Vec<(u32, bool)> = ids.iter().map(|&id| index.insert(id).unwrap()).collect();
        assert_eq!(
            got,
            vec![
                (0, true),
                (1, true),
                (2, true),
                (3, true),
                (0, false),
                (4, true),
                (1, false)
            ]
        );
        assert_eq!(index.ids(), &[5, -1, i64::MIN, i64::MAX, 0]);
        assert_eq!(index.get(i64::MAX), Some(3));
        assert_eq!(index.get(7), None);
    }

    #[test]
    fn grows_past_many_ids_and_keeps_every_index() {
        let mut index = IdIndex::with_capacity(0);
        // Ids that share their low bits, the pattern a weak hash would pile into one bucket.
        let ids: Vec<i64> = (0..100_000_i64).map(|i| i << 40).collect();
        for (i, &id) in ids.iter().enumerate() {
            assert_eq!(index.insert(id).unwrap(), (i as u32, true));
        }
        for (i, &id) in ids.iter().enumerate() {
            assert_eq!(index.get(id), Some(i as u32));
        }
        assert_eq!(index.len(), ids.len());
    }
}
