//! Counters: group-by-sum of event streams.
//!
//! The reference is `src/igcore/_reference/counters.py`; see its docstrings for the contract.

use std::collections::HashMap;

use crate::error::{Error, Result};

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
/// depend on the order of events. A total outside int64 is an [`Error::Overflow`] naming the first such
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
    if let Some(deltas) = deltas {
        if deltas.len() != keys.len() {
            return Err(Error::InvalidInput(format!(
                "keys and deltas differ in length ({} != {})",
                keys.len(),
                deltas.len()
            )));
        }
    }
    let parts = parts.clamp(1, MAX_PARTS).min(keys.len().max(1));
    let chunk = keys.len().div_ceil(parts);
    let fill = |part: usize| {
        let start = (part * chunk).min(keys.len());
        let end = (start + chunk).min(keys.len());
        match deltas {
            None => sum_chunk(&keys[start..end], |_| 1, start),
            Some(deltas) => sum_chunk(&keys[start..end], |i| deltas[start + i], start),
        }
    };
    let mut table = if parts == 1 {
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
    table.shrink_wraps();
    if let Some(key) = table.first_overflowing_key() {
        return Err(Error::Overflow(format!(
            "the total for key {key} does not fit in int64"
        )));
    }
    Ok(table.into_totals())
}

/// How many events ahead the loop asks the memory system for a key's slot. Zipf streams over many
/// keys miss the cache on the tail keys; prefetching overlaps those misses instead of waiting on each.
const PREFETCH_AHEAD: usize = 32;

/// Sums one chunk of events; `offset` is the chunk's position in the whole input.
fn sum_chunk(keys: &[i64], delta_at: impl Fn(usize) -> i64, offset: usize) -> SumTable {
    // Start small: Zipf-like streams have few hot keys, and a small table keeps them in cache.
    let mut table = SumTable::with_capacity(512);
    for (i, &key) in keys.iter().enumerate() {
        if let Some(&ahead) = keys.get(i + PREFETCH_AHEAD) {
            table.prefetch(ahead);
        }
        table.add(key, delta_at(i), offset + i);
    }
    table
}

#[derive(Clone, Copy)]
struct SumSlot {
    id: i64,
    sum: i64,
}

/// Marks a free slot. The key `i64::MIN` itself is kept outside the slots.
const VACANT: i64 = i64::MIN;
/// Stands for the key `i64::MIN` in `order`.
const MIN_KEY: usize = usize::MAX;

/// An open-addressing table of running sums, with the id and its sum in one slot so that an event
/// touches one cache line. Sums wrap; `wraps` counts, per key, how often, so that the true total is
/// `sum + wraps * 2**64` and fits in int64 exactly when the wraps cancel out.
struct SumTable {
    slots: Vec<SumSlot>,
    /// 64 - log2(slots.len()): the hash keeps its top bits.
    shift: u32,
    /// Slot positions in order of first appearance (`MIN_KEY` for the key `i64::MIN`).
    order: Vec<usize>,
    /// For each entry of `order`, the position in the input of the key's first event.
    first_at: Vec<usize>,
    has_min_key: bool,
    min_key_sum: i64,
    wraps: HashMap<i64, i64>,
}

#[inline(always)]
fn hash(id: i64) -> u64 {
    // Fold the high half into the low half, then Fibonacci hashing: the top bits of the product depend
    // on every bit of the id, so sequential ids and ids that differ only in high bits both spread.
    let x = id as u64;
    (x ^ (x >> 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

#[inline(always)]
fn prefetch_read<T>(ptr: *const T) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint; it never faults, even for an address outside any allocation.
    unsafe {
        std::arch::x86_64::_mm_prefetch(ptr as *const i8, std::arch::x86_64::_MM_HINT_T0);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

impl SumTable {
    fn with_capacity(expected: usize) -> Self {
        let slots = (expected.saturating_mul(2)).max(16).next_power_of_two();
        SumTable {
            slots: vec![SumSlot { id: VACANT, sum: 0 }; slots],
            shift: 64 - slots.trailing_zeros(),
            order: Vec::with_capacity(expected),
            first_at: Vec::with_capacity(expected),
            has_min_key: false,
            min_key_sum: 0,
            wraps: HashMap::new(),
        }
    }

    #[inline(always)]
    fn home(&self, id: i64) -> usize {
        (hash(id) >> self.shift) as usize
    }

    #[inline(always)]
    fn prefetch(&self, id: i64) {
        let pos = self.home(id) & (self.slots.len() - 1);
        prefetch_read(self.slots.as_ptr().wrapping_add(pos));
    }

    #[inline(always)]
    fn add(&mut self, id: i64, delta: i64, at: usize) {
        // Fast path: the id sits in its home slot (most of the time at a load factor of at most 1/2).
        let home = self.home(id);
        // SAFETY: `home` keeps the top log2(slots.len()) bits of the hash, so it is below slots.len().
        let slot = unsafe { self.slots.get_unchecked_mut(home) };
        if slot.id == id && id != VACANT {
            let (sum, wrapped) = slot.sum.overflowing_add(delta);
            slot.sum = sum;
            if wrapped {
                self.note_wrap(id, delta);
            }
            return;
        }
        self.add_probing(id, delta, home, at);
    }

    #[inline(never)]
    fn add_probing(&mut self, id: i64, delta: i64, home: usize, at: usize) {
        if id == VACANT {
            return self.add_min_key(delta, at);
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
                self.order.push(pos);
                self.first_at.push(at);
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
    fn add_min_key(&mut self, delta: i64, at: usize) {
        if !self.has_min_key {
            self.has_min_key = true;
            self.order.push(MIN_KEY);
            self.first_at.push(at);
            self.min_key_sum = delta;
            return;
        }
        let (sum, wrapped) = self.min_key_sum.overflowing_add(delta);
        self.min_key_sum = sum;
        if wrapped {
            self.note_wrap(VACANT, delta);
        }
    }

    fn grow(&mut self) {
        let doubled = vec![SumSlot { id: VACANT, sum: 0 }; self.slots.len() * 2];
        let old = std::mem::replace(&mut self.slots, doubled);
        self.shift -= 1;
        let mask = self.slots.len() - 1;
        for i in 0..self.order.len() {
            let at = self.order[i];
            if at == MIN_KEY {
                continue;
            }
            let slot = old[at];
            let mut pos = self.home(slot.id);
            while self.slots[pos].id != VACANT {
                pos = (pos + 1) & mask;
            }
            self.slots[pos] = slot;
            self.order[i] = pos;
        }
    }

    fn entry(&self, at: usize) -> (i64, i64) {
        if at == MIN_KEY {
            (i64::MIN, self.min_key_sum)
        } else {
            let slot = self.slots[at];
            (slot.id, slot.sum)
        }
    }

    /// Adds the sums of a table built from later events (a later chunk) into this one.
    fn absorb(&mut self, later: &SumTable) {
        for (i, (&at, &first)) in later.order.iter().zip(&later.first_at).enumerate() {
            if let Some(&ahead) = later.order.get(i + PREFETCH_AHEAD) {
                if ahead != MIN_KEY {
                    self.prefetch(later.slots[ahead].id);
                }
            }
            let (key, sum) = later.entry(at);
            self.add(key, sum, first);
        }
        for (&key, &wraps) in &later.wraps {
            *self.wraps.entry(key).or_insert(0) += wraps;
        }
    }

    /// Forgets keys whose wraps cancelled out.
    fn shrink_wraps(&mut self) {
        self.wraps.retain(|_, w| *w != 0);
    }

    /// The first key, in order of first appearance, whose total does not fit in int64.
    fn first_overflowing_key(&self) -> Option<i64> {
        if self.wraps.is_empty() {
            return None;
        }
        self.order
            .iter()
            .map(|&at| self.entry(at).0)
            .find(|key| self.wraps.contains_key(key))
    }

    fn into_totals(self) -> Totals {
        let (keys, sums) = self.order.iter().map(|&at| self.entry(at)).unzip();
        Totals { keys, sums }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(
            err,
            Error::Overflow("the total for key 9 does not fit in int64".into())
        );
        let err = aggregate(&[4, 4], Some(&[i64::MIN, -1])).unwrap_err();
        assert!(matches!(err, Error::Overflow(_)));
        let err = aggregate(&[i64::MIN, i64::MIN], Some(&[i64::MIN, -1])).unwrap_err();
        assert_eq!(
            err,
            Error::Overflow(format!(
                "the total for key {} does not fit in int64",
                i64::MIN
            ))
        );
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
        assert_eq!(
            err,
            Error::Overflow("the total for key 5 does not fit in int64".into())
        );
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
    fn many_events_of_the_extreme_key_stay_linear() {
        let keys = vec![i64::MIN; 100_000];
        let got = aggregate(&keys, None).unwrap();
        assert_eq!(got, totals(&[i64::MIN], &[100_000]));
    }

    #[test]
    fn lengths_must_match() {
        assert!(matches!(
            aggregate(&[1, 2], Some(&[1])),
            Err(Error::InvalidInput(_))
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
            Err(Error::Overflow(msg)) => {
                let first = first_seen
                    .iter()
                    .find(|k| i64::try_from(expected[k]).is_err())
                    .expect("an overflow was reported, so some total is out of range");
                assert_eq!(
                    msg,
                    format!("the total for key {first} does not fit in int64")
                );
            }
            Err(other) => panic!("unexpected error {other:?}"),
        }
        let counted = aggregate(&keys, None).unwrap();
        assert_eq!(counted.keys, first_seen);
        assert_eq!(counted.sums.iter().sum::<i64>(), keys.len() as i64);
    }
}
