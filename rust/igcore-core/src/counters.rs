//! Counters: group-by-sum of event streams (here), counter tables with drain for write-behind
//! (`table`), windowed counts for trending (`window`) and a Redis-compatible HyperLogLog (`hll`).
//!
//! The reference is `src/igcore/_reference/counters.py`; see its docstrings for the contract.

use std::collections::HashMap;

pub mod hll;
mod ranking;
pub mod table;
pub mod window;

pub use hll::HyperLogLog;
pub use table::{CounterTable, Drained, Snapshot};
pub use window::WindowedCounter;

use crate::error::{CommonError, CounterError, Result};
use crate::id_index::{id_hash, prefetch_read};

/// Distinct keys in order of first appearance, with the total of each.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Totals {
    pub keys: Vec<i64>,
    pub sums: Vec<i64>,
}

/// Sums `deltas` per key (each event counts 1 when `deltas` is `None`).
///
/// Keys come out in order of first appearance. The check is on each key's final total: intermediate
/// sums may leave the int64 range as long as the total comes back into it, so the answer does not
/// depend on the order of events. A total outside int64 is an [`CounterError::TotalOverflow`] naming the first such
/// key in output order.
///
/// Large inputs are split over the machine's cores (see [`aggregate_in_parts`]).
pub fn aggregate(keys: &[i64], deltas: Option<&[i64]>) -> Result<Totals> {
    let parts = if keys.len() < PARALLEL_FROM {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    aggregate_in_parts(keys, deltas, parts)
}

/// Below this many events, one thread is quicker than starting more.
const PARALLEL_FROM: usize = 1 << 18;
const MAX_PARTS: usize = 16;

/// [`aggregate`] with the events split into `parts` contiguous chunks, each summed into its own table
/// by its own thread (the calling thread takes the first). The tables are then folded into the first
/// one in chunk order, so keys new to it arrive in order of first appearance. `parts` is clamped to
/// 1..=16; the answer is the same for every value.
pub fn aggregate_in_parts(keys: &[i64], deltas: Option<&[i64]>, parts: usize) -> Result<Totals> {
    let table = sum_events(keys, deltas, parts)?;
    if let Some(key) = table.first_overflowing_key() {
        return Err(CounterError::TotalOverflow { key }.into());
    }
    Ok(table.into_totals())
}

/// The exact sum of each key's deltas (each event counts 1 when `deltas` is `None`), keys in order of
/// first appearance: what `CounterTable` adds in one call. 128 bits, so no sum can overflow; the
/// work is [`aggregate`]'s, over the machine's cores for large inputs.
pub(crate) fn exact_sums(keys: &[i64], deltas: Option<&[i64]>) -> Result<Vec<(i64, i128)>> {
    let parts = if keys.len() < PARALLEL_FROM {
        1
    } else {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    };
    let table = sum_events(keys, deltas, parts)?;
    Ok(table
        .entries()
        .map(|(id, sum)| {
            let wraps = table.wraps.get(&id).copied().unwrap_or(0) as i128;
            (id, sum as i128 + (wraps << 64))
        })
        .collect())
}

/// Sums the events into one table, in `parts` chunks over as many threads (see `aggregate_in_parts`).
fn sum_events(keys: &[i64], deltas: Option<&[i64]>, parts: usize) -> Result<SumTable> {
    if let Some(deltas) = deltas {
        if deltas.len() != keys.len() {
            return Err(CommonError::LengthsDiffer {
                first: "keys",
                second: "deltas",
                first_length: keys.len(),
                second_length: deltas.len(),
            }
            .into());
        }
    }
    let parts = parts.clamp(1, MAX_PARTS).min(keys.len().max(1));
    let chunk = keys.len().div_ceil(parts);
    let fill = |part: usize| {
        let start = (part * chunk).min(keys.len());
        let end = (start + chunk).min(keys.len());
        match deltas {
            None => sum_chunk(&keys[start..end], |_| 1),
            Some(deltas) => sum_chunk(&keys[start..end], |i| deltas[start + i]),
        }
    };
    let table = if parts == 1 {
        fill(0)
    } else {
        std::thread::scope(|scope| {
            let workers: Vec<_> = (1..parts)
                .map(|part| scope.spawn(move || fill(part)))
                .collect();
            let mut table = fill(0);
            for worker in workers {
                // A worker only ends early by panicking; carry that panic on to the caller.
                let later = worker
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e));
                table.absorb(&later);
            }
            table
        })
    };
    Ok(table)
}

/// How many events ahead the loop asks the memory system for a key's slot. Zipf streams over many
/// keys miss the cache on the tail keys; prefetching overlaps those misses instead of waiting on each.
const PREFETCH_AHEAD: usize = 32;

/// Sums one chunk of events.
fn sum_chunk(keys: &[i64], delta_at: impl Fn(usize) -> i64) -> SumTable {
    // Start small: Zipf-like streams have few hot keys, and a small table keeps them in cache.
    let mut table = SumTable::with_capacity(512);
    for (i, &key) in keys.iter().enumerate() {
        if let Some(&ahead) = keys.get(i + PREFETCH_AHEAD) {
            table.prefetch(ahead);
        }
        table.add(key, delta_at(i));
    }
    table
}

#[derive(Clone, Copy)]
struct SumSlot {
    id: i64,
    sum: i64,
}

/// Marks a free slot; the key 0 itself is kept outside the slots. Zero, so that a new table is
/// zeroed memory, which the allocator hands out without writing it.
const VACANT: i64 = 0;
const FREE: SumSlot = SumSlot { id: VACANT, sum: 0 };

/// An open-addressing table of running sums (linear probing, at most half full), with the id and its
/// sum in one slot so that an event touches one cache line.
///
/// Sums wrap; `wraps` counts, per key, how often, so that the true total is `sum + wraps * 2**64` and
/// fits in int64 exactly when the wraps cancel out.
struct SumTable {
    slots: Vec<SumSlot>,
    /// 64 - log2(slots.len()): a key's home slot is the top bits of its hash.
    shift: u32,
    /// The keys in order of first appearance. Keys rather than slot positions, so that growing the
    /// table is one sequential pass over the old slots (see `grow`).
    order: Vec<i64>,
    has_zero_key: bool,
    zero_key_sum: i64,
    wraps: HashMap<i64, i64>,
}

impl SumTable {
    fn with_capacity(expected: usize) -> Self {
        let slots = (expected.saturating_mul(2)).max(16).next_power_of_two();
        SumTable {
            slots: vec![FREE; slots],
            shift: 64 - slots.trailing_zeros(),
            order: Vec::with_capacity(expected),
            has_zero_key: false,
            zero_key_sum: 0,
            wraps: HashMap::new(),
        }
    }

    #[inline(always)]
    fn home(&self, id: i64) -> usize {
        (id_hash(id) >> self.shift) as usize
    }

    #[inline(always)]
    fn prefetch(&self, id: i64) {
        let pos = self.home(id) & (self.slots.len() - 1);
        prefetch_read(self.slots.as_ptr().wrapping_add(pos));
    }

    #[inline(always)]
    fn add(&mut self, id: i64, delta: i64) {
        // Fast path: the id sits in its home slot (most of the time at a load factor of at most 1/2).
        let home = self.home(id);
        let slot = &mut self.slots[home];
        if slot.id == id && id != VACANT {
            let (sum, wrapped) = slot.sum.overflowing_add(delta);
            slot.sum = sum;
            if wrapped {
                self.note_wrap(id, delta);
            }
            return;
        }
        self.add_probing(id, delta, home);
    }

    #[inline(never)]
    fn add_probing(&mut self, id: i64, delta: i64, home: usize) {
        if id == VACANT {
            return self.add_zero_key(delta);
        }
        let mask = self.slots.len() - 1;
        let mut pos = home;
        loop {
            let slot = self.slots[pos];
            if slot.id == id {
                let (sum, wrapped) = slot.sum.overflowing_add(delta);
                self.slots[pos].sum = sum;
                if wrapped {
                    self.note_wrap(id, delta);
                }
                return;
            }
            if slot.id == VACANT {
                self.slots[pos] = SumSlot { id, sum: delta };
                self.order.push(id);
                if self.order.len() * 2 > self.slots.len() {
                    self.grow();
                }
                return;
            }
            pos = (pos + 1) & mask;
        }
    }

    #[cold]
    fn note_wrap(&mut self, id: i64, delta: i64) {
        *self.wraps.entry(id).or_insert(0) += delta.signum();
    }

    #[cold]
    fn add_zero_key(&mut self, delta: i64) {
        if !self.has_zero_key {
            self.has_zero_key = true;
            self.order.push(VACANT);
            self.zero_key_sum = delta;
            return;
        }
        let (sum, wrapped) = self.zero_key_sum.overflowing_add(delta);
        self.zero_key_sum = sum;
        if wrapped {
            self.note_wrap(VACANT, delta);
        }
    }

    /// Doubles the table. A key's new home is its old home times two (plus one more hash bit), so a
    /// sequential pass over the old slots fills the new table nearly sequentially, too: growing
    /// streams through memory instead of missing the cache on every key.
    fn grow(&mut self) {
        let doubled = vec![FREE; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        self.shift -= 1;
        let mask = self.slots.len() - 1;
        for slot in old.into_iter().filter(|s| s.id != VACANT) {
            let mut pos = self.home(slot.id);
            while self.slots[pos].id != VACANT {
                pos = (pos + 1) & mask;
            }
            self.slots[pos] = slot;
        }
    }

    /// The running sum of a key that is in the table.
    #[inline]
    fn sum_of(&self, id: i64) -> i64 {
        if id == VACANT {
            return self.zero_key_sum;
        }
        let mask = self.slots.len() - 1;
        let mut pos = self.home(id);
        while self.slots[pos].id != id {
            pos = (pos + 1) & mask;
        }
        self.slots[pos].sum
    }

    /// The keys and their sums, in order of first appearance.
    fn entries(&self) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.order.iter().enumerate().map(|(i, &id)| {
            if let Some(&ahead) = self.order.get(i + PREFETCH_AHEAD) {
                self.prefetch(ahead);
            }
            (id, self.sum_of(id))
        })
    }

    /// Adds the sums of a table built from later events (a later chunk) into this one: its keys that
    /// are new here come after this table's keys, in their own order, as first appearance wants.
    fn absorb(&mut self, later: &SumTable) {
        for (i, (id, sum)) in later.entries().enumerate() {
            if let Some(&ahead) = later.order.get(i + PREFETCH_AHEAD) {
                self.prefetch(ahead);
            }
            self.add(id, sum);
        }
        for (&id, &wraps) in &later.wraps {
            *self.wraps.entry(id).or_insert(0) += wraps;
        }
    }

    /// The first key, in order of first appearance, whose total does not fit in int64.
    fn first_overflowing_key(&self) -> Option<i64> {
        let overflowing = |id: &i64| self.wraps.get(id).is_some_and(|&w| w != 0);
        if !self.wraps.values().any(|&w| w != 0) {
            return None;
        }
        self.order.iter().copied().find(overflowing)
    }

    fn into_totals(self) -> Totals {
        let sums: Vec<i64> = self.entries().map(|(_, sum)| sum).collect();
        Totals {
            keys: self.order,
            sums,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;

    fn totals(keys: &[i64], sums: &[i64]) -> Totals {
        Totals {
            keys: keys.to_vec(),
            sums: sums.to_vec(),
        }
    }

    #[test]
    fn counts_in_order_of_first_appearance() {
        let got = aggregate(&[3, 1, 3, 2, 1, 3], None).unwrap();
        assert_eq!(got, totals(&[3, 1, 2], &[3, 2, 1]));
    }

    #[test]
    fn sums_deltas_including_negative_ones() {
        let got = aggregate(&[7, -7, 7], Some(&[5, -2, -6])).unwrap();
        assert_eq!(got, totals(&[7, -7], &[-1, -2]));
    }

    #[test]
    fn empty_input_gives_empty_totals() {
        assert_eq!(aggregate(&[], None).unwrap(), Totals::default());
        assert_eq!(aggregate(&[], Some(&[])).unwrap(), Totals::default());
    }

    #[test]
    fn extreme_ids_are_ordinary_keys() {
        let got = aggregate(&[i64::MAX, i64::MIN, 0, i64::MIN], None).unwrap();
        assert_eq!(got, totals(&[i64::MAX, i64::MIN, 0], &[1, 2, 1]));
        let got = aggregate(&[i64::MIN, 5], Some(&[-3, 4])).unwrap();
        assert_eq!(got, totals(&[i64::MIN, 5], &[-3, 4]));
    }

    #[test]
    fn a_total_that_overflows_is_an_error_naming_the_key() {
        let err = aggregate(&[1, 9, 9], Some(&[1, i64::MAX, 1])).unwrap_err();
        assert_eq!(err.to_string(), "the total for key 9 does not fit in int64");
        let err = aggregate(&[4, 4], Some(&[i64::MIN, -1])).unwrap_err();
        assert!(matches!(
            err,
            Error::Counters(CounterError::TotalOverflow { key: 4 })
        ));
        let err = aggregate(&[i64::MIN, i64::MIN], Some(&[i64::MIN, -1])).unwrap_err();
        assert_eq!(err, CounterError::TotalOverflow { key: i64::MIN }.into());
    }

    #[test]
    fn intermediate_wraps_that_cancel_are_fine() {
        let got = aggregate(&[1, 1, 1], Some(&[i64::MAX, 1, -1])).unwrap();
        assert_eq!(got, totals(&[1], &[i64::MAX]));
        let got = aggregate(&[2, 2, 2, 2], Some(&[i64::MIN, -1, 1, 0])).unwrap();
        assert_eq!(got, totals(&[2], &[i64::MIN]));
    }

    #[test]
    fn reports_the_first_overflowing_key_in_output_order() {
        let keys = [5, 6, 6, 5];
        let deltas = [i64::MAX, i64::MAX, 1, 1];
        let err = aggregate(&keys, Some(&deltas)).unwrap_err();
        assert_eq!(err.to_string(), "the total for key 5 does not fit in int64");
    }

    #[test]
    fn every_split_over_threads_gives_the_same_answer() {
        let mut state = 7_u64;
        let keys: Vec<i64> = (0..20_000)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                match i % 50 {
                    0 => i64::MIN,
                    1 => i64::MAX,
                    _ => ((state >> 40) % 2_000) as i64 - 1_000,
                }
            })
            .collect();
        let deltas: Vec<i64> = (0..keys.len() as i64).map(|i| i * 37 - 5_000).collect();
        let one = aggregate_in_parts(&keys, Some(&deltas), 1).unwrap();
        for parts in 2..=5 {
            assert_eq!(
                aggregate_in_parts(&keys, Some(&deltas), parts).unwrap(),
                one
            );
            assert_eq!(
                aggregate_in_parts(&keys, None, parts).unwrap(),
                aggregate_in_parts(&keys, None, 1).unwrap()
            );
        }
        let mut overflowing = deltas.clone();
        overflowing[10] = i64::MAX;
        overflowing[5_010] = i64::MAX;
        let single = aggregate_in_parts(&keys, Some(&overflowing), 1).unwrap_err();
        for parts in 2..=5 {
            assert_eq!(
                aggregate_in_parts(&keys, Some(&overflowing), parts).unwrap_err(),
                single
            );
        }
    }

    #[test]
    fn the_key_zero_kept_aside_is_an_ordinary_key() {
        // Many events of the key that marks free slots stay linear, and keep their place in the order.
        let mut keys = vec![0_i64; 100_000];
        keys[0] = 4;
        keys[99_999] = -4;
        let got = aggregate(&keys, None).unwrap();
        assert_eq!(got, totals(&[4, 0, -4], &[1, 99_998, 1]));
        let got = aggregate(&[0, 0], Some(&[i64::MAX, 1])).unwrap_err();
        assert_eq!(got.to_string(), "the total for key 0 does not fit in int64");
    }

    #[test]
    fn exact_sums_keep_what_does_not_fit_in_int64() {
        let got = exact_sums(&[3, 1, 3, 3], Some(&[i64::MAX, 5, i64::MAX, -1])).unwrap();
        assert_eq!(got, vec![(3, 2 * i64::MAX as i128 - 1), (1, 5)]);
        let got = exact_sums(&[0, 0], Some(&[i64::MIN, i64::MIN])).unwrap();
        assert_eq!(got, vec![(0, 2 * i64::MIN as i128)]);
        assert_eq!(exact_sums(&[7, 7], None).unwrap(), vec![(7, 2)]);
    }

    #[test]
    fn lengths_must_match() {
        assert!(matches!(
            aggregate(&[1, 2], Some(&[1])),
            Err(Error::Common(CommonError::LengthsDiffer {
                first_length: 2,
                second_length: 1,
                ..
            }))
        ));
    }

    #[test]
    fn agrees_with_a_btreemap_on_a_pseudo_random_stream() {
        use std::collections::BTreeMap;
        let mut state = 0x1234_5678_u64;
        let mut keys = Vec::new();
        let mut deltas = Vec::new();
        for i in 0..200_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            // Keys that share their low bits, the pattern a weak hash would pile into one bucket.
            keys.push((((state >> 33) % 30_000) as i64 - 15_000) << 20);
            deltas.push(if i % 7 == 0 {
                i64::MAX / 3
            } else {
                (state >> 50) as i64 - 4000
            });
        }
        let mut expected: BTreeMap<i64, i128> = BTreeMap::new();
        let mut first_seen: Vec<i64> = Vec::new();
        for (&k, &d) in keys.iter().zip(&deltas) {
            let total = expected.entry(k).or_insert_with(|| {
                first_seen.push(k);
                0
            });
            *total += d as i128;
        }
        match aggregate(&keys, Some(&deltas)) {
            Ok(got) => {
                assert_eq!(got.keys, first_seen);
                for (k, s) in got.keys.iter().zip(&got.sums) {
                    assert_eq!(*s as i128, expected[k]);
                }
            }
            Err(Error::Counters(CounterError::TotalOverflow { key })) => {
                let first = first_seen
                    .iter()
                    .find(|k| i64::try_from(expected[k]).is_err())
                    .expect("an overflow was reported, so some total is out of range");
                assert_eq!(key, *first);
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
        let counted = aggregate(&keys, None).unwrap();
        assert_eq!(counted.keys, first_seen);
        assert_eq!(counted.sums.iter().sum::<i64>(), keys.len() as i64);
    }
}
