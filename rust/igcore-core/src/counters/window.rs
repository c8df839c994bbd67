//! `WindowedCounter`: counts per key in a ring of time buckets, for "trending in the last hour".
//!
//! The contract is `WindowedCounter` in `src/igcore/_reference/counters.py`.

use std::collections::HashMap;

use crate::error::{CounterError, Error, Result};
use crate::id_index::IdIndex;
use crate::numbers::floor_div;

use super::ranking::top_k;
use super::table::check_lengths;

/// How many keys ahead a table is asked for the slot of a key: a bucket of a busy minute, and the
/// window's sum of them, outgrow the cache, and a lookup that misses waits for memory unless asked early.
const PREFETCH_AHEAD: usize = 16;

/// One time bucket: a key's count is `counts[index.get(key)]`.
struct Bucket {
    number: i64,
    index: IdIndex,
    counts: Vec<i64>,
}

impl Bucket {
    /// An empty bucket sized for about `expected` keys: a bucket of a steady stream holds about as many
    /// keys as the one before it, and growing a table step by step costs more than sizing it once.
    fn new(number: i64, expected: usize) -> Self {
        Bucket {
            number,
            index: IdIndex::with_capacity(expected),
            counts: Vec::with_capacity(expected),
        }
    }

    /// Adds `delta` to `key`'s count (wrapping); returns +1 or -1 when it wrapped up or down, else 0.
    #[inline]
    fn add(&mut self, key: i64, delta: i64) -> Result<i64> {
        let (at, inserted) = self.index.insert(key)?;
        if inserted {
            self.counts.push(0);
        }
        let count = &mut self.counts[at as usize];
        let (sum, wrapped) = count.overflowing_add(delta);
        *count = sum;
        Ok(if wrapped { delta.signum() } else { 0 })
    }

    fn count(&self, key: i64) -> i64 {
        self.index.get(key).map_or(0, |at| self.counts[at as usize])
    }
}

pub struct WindowedCounter {
    bucket_seconds: i64,
    /// The ring: bucket number `b` lives in slot `b mod buckets` while it is in the ring.
    slots: Vec<Option<Bucket>>,
    /// The newest bucket of the ring: that of the latest `now` given to `add`.
    head: Option<i64>,
    too_old: u64,
    in_future: u64,
}

/// Where an event goes, or why it does not count.
enum Placement {
    Slot(usize),
    TooOld,
    InFuture,
}

impl WindowedCounter {
    pub fn new(bucket_seconds: i64, buckets: usize) -> Result<Self> {
        if bucket_seconds < 1 || buckets < 1 {
            return Err(CounterError::WindowShape {
                bucket_seconds,
                buckets,
            }
            .into());
        }
        let mut slots = Vec::new();
        slots.resize_with(buckets, || None);
        Ok(WindowedCounter {
            bucket_seconds,
            slots,
            head: None,
            too_old: 0,
            in_future: 0,
        })
    }

    fn bucket_of(&self, t: i64) -> i64 {
        floor_div(t, self.bucket_seconds)
    }

    fn buckets(&self) -> i128 {
        self.slots.len() as i128
    }

    fn slot_of(&self, bucket: i64) -> usize {
        bucket.rem_euclid(self.slots.len() as i64) as usize
    }

    /// Whether `bucket` is in the ring `head - buckets + 1 ..= head` (i128: no overflow at the edges).
    fn in_ring(&self, bucket: i64) -> bool {
        self.head
            .is_some_and(|head| bucket <= head && (head as i128 - bucket as i128) < self.buckets())
    }

    fn place(&self, head: i64, bucket: i64) -> Placement {
        if bucket > head {
            Placement::InFuture
        } else if head as i128 - bucket as i128 >= self.buckets() {
            Placement::TooOld
        } else {
            Placement::Slot(self.slot_of(bucket))
        }
    }

    /// Moves the head to `now`'s bucket if that is later, forgetting the buckets that leave the ring.
    fn advance(&mut self, now: i64) -> i64 {
        let now_bucket = self.bucket_of(now);
        if self.head.is_some_and(|head| head >= now_bucket) {
            return self.head.unwrap_or(now_bucket);
        }
        self.head = Some(now_bucket);
        for slot in 0..self.slots.len() {
            let stale = self.slots[slot]
                .as_ref()
                .is_some_and(|b| !self.in_ring(b.number));
            if stale {
                self.slots[slot] = None;
            }
        }
        now_bucket
    }

    /// Counts the events whose bucket is in the ring (after moving it to `now`); returns the numbers
    /// dropped as too old and as in the future. All or nothing on overflow (the head moves anyway).
    pub fn add(
        &mut self,
        keys: &[i64],
        timestamps: &[i64],
        deltas: Option<&[i64]>,
        now: i64,
    ) -> Result<(u64, u64)> {
        check_lengths(keys, Some(timestamps))?;
        check_lengths(keys, deltas)?;
        let head = self.advance(now);
        let delta_at = |i: usize| deltas.map_or(1, |d| d[i]);
        let (mut too_old, mut in_future) = (0_u64, 0_u64);
        // Counts wrap; as in `aggregate`, only a count's value after the call must fit, so the net
        // number of wraps of each (bucket, key) is kept aside (wraps are rare).
        let mut wraps: HashMap<(i64, i64), i64> = HashMap::new();
        // Events come mostly in time order: they are taken in runs that fall in one bucket, so that
        // the bucket is found once per run, not once per event.
        let mut start = 0;
        while start < keys.len() {
            let bucket = self.bucket_of(timestamps[start]);
            let end = start + self.run_in_bucket(bucket, &timestamps[start..]);
            let slot = match self.place(head, bucket) {
                Placement::TooOld => {
                    too_old += (end - start) as u64;
                    start = end;
                    continue;
                }
                Placement::InFuture => {
                    in_future += (end - start) as u64;
                    start = end;
                    continue;
                }
                Placement::Slot(slot) => slot,
            };
            let current = self.bucket_in(slot, bucket, end - start);
            let mut failed = None;
            for i in start..end {
                if let Some(&ahead) = keys.get(i + PREFETCH_AHEAD) {
                    current.index.prefetch(ahead);
                }
                match current.add(keys[i], delta_at(i)) {
                    Ok(0) => {}
                    Ok(wrapped) => *wraps.entry((bucket, keys[i])).or_insert(0) += wrapped,
                    Err(error) => {
                        failed = Some((i, error));
                        break;
                    }
                }
            }
            if let Some((i, error)) = failed {
                self.take_back(head, &keys[..i], &timestamps[..i], delta_at);
                return Err(error);
            }
            start = end;
        }
        if wraps.values().any(|&w| w != 0) {
            // A count that does not fit after the call: name it by its first event, take all back.
            let overflowing = keys.iter().zip(timestamps).find(|&(&key, &t)| {
                let bucket = self.bucket_of(t);
                matches!(self.place(head, bucket), Placement::Slot(_))
                    && wraps.get(&(bucket, key)).is_some_and(|&w| w != 0)
            });
            self.take_back(head, keys, timestamps, delta_at);
            let (key, t) = overflowing.map_or((0, 0), |(&key, &t)| (key, t));
            return Err(CounterError::CountOverflow { key, time: t }.into());
        }
        self.too_old = self.too_old.saturating_add(too_old);
        self.in_future = self.in_future.saturating_add(in_future);
        Ok((too_old, in_future))
    }

    /// How many of `timestamps`, from the first (in `bucket`), fall in `bucket` before one does not.
    fn run_in_bucket(&self, bucket: i64, timestamps: &[i64]) -> usize {
        // Near the ends of int64 a bucket's span is not representable: a run of one there.
        let Some(first) = bucket.checked_mul(self.bucket_seconds) else {
            return 1;
        };
        let last = first.saturating_add(self.bucket_seconds - 1);
        1 + timestamps[1..]
            .iter()
            .take_while(|&&t| first <= t && t <= last)
            .count()
    }

    /// The bucket numbered `bucket` in `slot`, made (sized for the events about to come, up to the
    /// distinct keys of the ring's largest bucket) when the slot holds another or none.
    fn bucket_in(&mut self, slot: usize, bucket: i64, events: usize) -> &mut Bucket {
        // A slot holding another bucket number holds one that has left the ring.
        if !matches!(&self.slots[slot], Some(b) if b.number == bucket) {
            let largest = self.slots.iter().flatten().map(|b| b.counts.len()).max();
            let expected = largest.unwrap_or(0).min(events);
            self.slots[slot] = Some(Bucket::new(bucket, expected));
        }
        // The slot holds the bucket by now: the closure never runs.
        self.slots[slot].get_or_insert_with(|| Bucket::new(bucket, 0))
    }

    /// Undoes the counted events among `keys`, last first (exact: wrapping arithmetic).
    fn take_back(
        &mut self,
        head: i64,
        keys: &[i64],
        timestamps: &[i64],
        delta_at: impl Fn(usize) -> i64,
    ) {
        for (j, (&key, &t)) in keys.iter().zip(timestamps).enumerate().rev() {
            let bucket = self.bucket_of(t);
            if let Placement::Slot(slot) = self.place(head, bucket) {
                if let Some(b) = &mut self.slots[slot] {
                    if let Some(at) = b.index.get(key) {
                        let count = &mut b.counts[at as usize];
                        *count = count.wrapping_sub(delta_at(j));
                    }
                }
            }
        }
    }

    /// Events dropped so far: (too old, in the future).
    pub fn dropped(&self) -> (u64, u64) {
        (self.too_old, self.in_future)
    }

    /// The buckets of the window of `window_buckets` buckets ending with `now`'s, that are in the ring.
    fn window(&self, now: i64, window_buckets: usize) -> Vec<&Bucket> {
        let last = self.bucket_of(now) as i128;
        let first = last - window_buckets as i128 + 1;
        self.slots
            .iter()
            .flatten()
            .filter(|b| {
                let number = b.number as i128;
                first <= number && number <= last && self.in_ring(b.number)
            })
            .collect()
    }

    /// Per key, its total over the window; a total beyond int64 is an error naming the first such key.
    pub fn sum(&self, keys: &[i64], now: i64, window_buckets: usize) -> Result<Vec<i64>> {
        let window = self.window(now, window_buckets);
        keys.iter()
            .map(|&key| {
                let total: i128 = window.iter().map(|b| b.count(key) as i128).sum();
                i64::try_from(total).map_err(|_| window_overflow(key))
            })
            .collect()
    }

    /// At most `k` keys with the largest non-zero window totals, largest first, ties by smaller key.
    pub fn top(&self, k: usize, now: i64, window_buckets: usize) -> Result<(Vec<i64>, Vec<i64>)> {
        let window = self.window(now, window_buckets);
        // Sum the window's buckets into one table; i128 so the sum does not depend on bucket order.
        let largest = window.iter().map(|b| b.counts.len()).max().unwrap_or(0);
        let mut index = IdIndex::with_capacity(largest);
        let mut totals: Vec<i128> = Vec::with_capacity(largest);
        for bucket in &window {
            let ids = bucket.index.ids();
            for (i, (&key, &count)) in ids.iter().zip(&bucket.counts).enumerate() {
                if let Some(&ahead) = ids.get(i + PREFETCH_AHEAD) {
                    index.prefetch(ahead);
                }
                let (at, inserted) = index.insert(key)?;
                if inserted {
                    totals.push(0);
                }
                totals[at as usize] += count as i128;
            }
        }
        let overflowing = index
            .ids()
            .iter()
            .zip(&totals)
            .filter(|(_, &t)| i64::try_from(t).is_err())
            .map(|(&key, _)| key)
            .min();
        if let Some(key) = overflowing {
            return Err(window_overflow(key));
        }
        let entries = index
            .ids()
            .iter()
            .zip(&totals)
            .map(|(&key, &t)| (key, t as i64));
        Ok(top_k(entries, k))
    }
}

fn window_overflow(key: i64) -> Error {
    CounterError::WindowTotalOverflow { key }.into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_in_the_window_and_drops_what_falls_outside() {
        let mut w = WindowedCounter::new(60, 3).unwrap();
        // now = 200: bucket 3; the ring is buckets 1..=3 (times 60..=239).
        let dropped = w
            .add(&[1, 2, 1, 3, 4], &[200, 130, 61, 59, 240], None, 200)
            .unwrap();
        assert_eq!(dropped, (1, 1));
        assert_eq!(w.sum(&[1, 2, 3, 4], 200, 3).unwrap(), vec![2, 1, 0, 0]);
        assert_eq!(w.sum(&[1, 2], 200, 1).unwrap(), vec![1, 0]);
        assert_eq!(w.top(5, 200, 3).unwrap(), (vec![1, 2], vec![2, 1]));
        // Moving on by two buckets forgets buckets 1 and 2.
        w.add(&[2], &[300], Some(&[5]), 300).unwrap();
        assert_eq!(w.sum(&[1, 2], 300, 3).unwrap(), vec![1, 5]);
        assert_eq!(w.dropped(), (1, 1));
        // An earlier `now` does not move the ring back.
        assert_eq!(w.add(&[9], &[10], None, 10).unwrap(), (1, 0));
    }

    #[test]
    fn negative_and_extreme_times_are_ordinary() {
        // Buckets are floor(t / 7): i64::MIN and i64::MIN + 6 fall in two neighbouring buckets.
        let mut w = WindowedCounter::new(7, 4).unwrap();
        let dropped = w
            .add(&[1, 1], &[i64::MIN, i64::MIN + 6], None, i64::MIN + 6)
            .unwrap();
        assert_eq!(dropped, (0, 0));
        assert_eq!(w.sum(&[1], i64::MIN + 6, 2).unwrap(), vec![2]);
        assert_eq!(w.sum(&[1], i64::MIN + 6, 1).unwrap(), vec![1]);
        let mut w = WindowedCounter::new(1, 2).unwrap();
        assert_eq!(
            w.add(&[1, 1, 1], &[i64::MAX, i64::MIN, -1], None, i64::MAX)
                .unwrap(),
            (2, 0)
        );
        assert_eq!(w.sum(&[1], i64::MAX, 2).unwrap(), vec![1]);
    }

    #[test]
    fn overflow_is_all_or_nothing_and_window_sums_do_not_depend_on_order() {
        let mut w = WindowedCounter::new(10, 3).unwrap();
        w.add(&[1, 1], &[0, 10], Some(&[i64::MAX, i64::MAX]), 20)
            .unwrap();
        // Only the count after the call must fit: MAX + 1 - 1 is fine.
        w.add(&[1, 1], &[0, 0], Some(&[1, -1]), 20).unwrap();
        let err = w.add(&[2, 1], &[0, 0], Some(&[5, 1]), 20).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the count for key 1 at time 0 does not fit in int64"
        );
        assert_eq!(w.sum(&[2], 20, 3).unwrap(), vec![0]);
        assert_eq!(
            w.sum(&[1], 20, 3).unwrap_err().to_string(),
            "the window total for key 1 does not fit in int64"
        );
        assert!(w.top(3, 20, 3).is_err());
        // MAX + MAX + MIN fits, though MAX + MAX alone does not.
        w.add(&[1], &[20], Some(&[i64::MIN]), 20).unwrap();
        assert_eq!(w.sum(&[1], 20, 3).unwrap(), vec![i64::MAX - 1]);
        assert_eq!(w.sum(&[1], 20, 2).unwrap(), vec![-1]);
        assert_eq!(w.top(3, 20, 3).unwrap(), (vec![1], vec![i64::MAX - 1]));
        assert_eq!(w.top(3, 20, 2).unwrap(), (vec![1], vec![-1]));
    }
}
