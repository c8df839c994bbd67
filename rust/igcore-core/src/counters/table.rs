//! `CounterTable`: named counter kinds per key, with totals and the deltas pending since the last drain.
//!
//! The contract is `CounterTable` in `src/igcore/_reference/counters.py`.

use crate::error::{CommonError, CounterError, Error, Result};
use crate::id_index::IdIndex;

use super::exact_sums;
use super::ranking::top_k;

/// How many keys ahead a loop asks for a key's slot in the index (see `IdIndex::prefetch`).
const PREFETCH_AHEAD: usize = 16;

/// What one (kind, key) holds: side by side, so that an event touches one cache line.
#[derive(Clone, Copy, Default)]
struct Count {
    total: i64,
    pending: i64,
}

/// The deltas a drain took, per kind: `(keys, deltas)`, keys in no particular order until `sorted`.
pub struct Drained(pub Vec<(Vec<i64>, Vec<i64>)>);

impl Drained {
    /// Puts each kind's keys in ascending order. Kept apart from `drain` so that a caller can sort
    /// after letting go of the table's lock.
    pub fn sorted(mut self) -> Self {
        for (keys, deltas) in &mut self.0 {
            let mut pairs: Vec<(i64, i64)> =
                keys.iter().copied().zip(deltas.iter().copied()).collect();
            pairs.sort_unstable_by_key(|&(key, _)| key);
            (*keys, *deltas) = pairs.into_iter().unzip();
        }
        self
    }
}

/// Every (key, total, pending) of one kind with something non-zero, keys ascending: what `add_table`
/// adds into another table.
pub struct Snapshot(Vec<Vec<(i64, i64, i64)>>);

pub struct CounterTable {
    kinds: Vec<String>,
    /// Key -> dense index, in order of first insertion; `counts[kind][index]`.
    index: IdIndex,
    counts: Vec<Vec<Count>>,
}

impl CounterTable {
    pub fn new(kinds: Vec<String>) -> Self {
        let counts = kinds.iter().map(|_| Vec::new()).collect();
        CounterTable {
            kinds,
            index: IdIndex::default(),
            counts,
        }
    }

    pub fn kinds(&self) -> &[String] {
        &self.kinds
    }

    fn kind(&self, kind: usize) -> Result<usize> {
        if kind < self.kinds.len() {
            Ok(kind)
        } else {
            Err(CounterError::NoKind { kind }.into())
        }
    }

    /// The dense index of `key`, inserting it (with zero counts in every kind) when new.
    #[inline]
    fn slot(&mut self, key: i64) -> Result<usize> {
        let (index, inserted) = self.index.insert(key)?;
        if inserted {
            for counts in &mut self.counts {
                counts.push(Count::default());
            }
        }
        Ok(index as usize)
    }

    fn total_overflow(&self, kind: usize, key: i64) -> Error {
        CounterError::KindTotalOverflow {
            kind: self.kinds[kind].clone(),
            key,
        }
        .into()
    }

    fn pending_overflow(&self, kind: usize, key: i64) -> Error {
        CounterError::PendingDeltaOverflow {
            kind: self.kinds[kind].clone(),
            key,
        }
        .into()
    }

    /// Adds each key's deltas (1 per event when `deltas` is `None`) to its total and pending delta.
    /// Only the values after the call must fit in int64; otherwise nothing changes and the first key,
    /// in order of first appearance, whose total (checked first) or pending delta would not fit is
    /// named. The call's events are summed first, by [`aggregate`](super::aggregate)'s machinery, so
    /// the table itself sees each distinct key once.
    pub fn add(&mut self, kind: usize, keys: &[i64], deltas: Option<&[i64]>) -> Result<()> {
        let kind = self.kind(kind)?;
        check_lengths(keys, deltas)?;
        let batch = exact_sums(keys, deltas)?;
        let updates = self.checked(kind, &batch, true, 1)?;
        self.apply(kind, &batch, updates)
    }

    /// The new (total, pending) of each key of `batch`, with `sign` times its sum added (to the total
    /// too when `with_total`), or the error for the first one that does not fit. Changes nothing.
    fn checked(
        &self,
        kind: usize,
        batch: &[(i64, i128)],
        with_total: bool,
        sign: i128,
    ) -> Result<Vec<Count>> {
        let counts = &self.counts[kind];
        let mut updates = Vec::with_capacity(batch.len());
        for (j, &(key, sum)) in batch.iter().enumerate() {
            if let Some(&(ahead, _)) = batch.get(j + PREFETCH_AHEAD) {
                self.index.prefetch(ahead);
            }
            let current = self
                .index
                .get(key)
                .map_or(Count::default(), |at| counts[at as usize]);
            let moved = |value: i64| i64::try_from(value as i128 + sign * sum).ok();
            let total = if with_total {
                moved(current.total).ok_or_else(|| self.total_overflow(kind, key))?
            } else {
                current.total
            };
            let pending = moved(current.pending).ok_or_else(|| self.pending_overflow(kind, key))?;
            updates.push(Count { total, pending });
        }
        Ok(updates)
    }

    /// Stores the values `checked` computed.
    fn apply(&mut self, kind: usize, batch: &[(i64, i128)], updates: Vec<Count>) -> Result<()> {
        for (j, (&(key, _), update)) in batch.iter().zip(updates).enumerate() {
            if let Some(&(ahead, _)) = batch.get(j + PREFETCH_AHEAD) {
                self.index.prefetch(ahead);
            }
            let at = self.slot(key)?;
            self.counts[kind][at] = update;
        }
        Ok(())
    }

    /// The totals of `keys` (0 for a key never added).
    pub fn get(&self, kind: usize, keys: &[i64]) -> Result<Vec<i64>> {
        let kind = self.kind(kind)?;
        let counts = &self.counts[kind];
        Ok(keys
            .iter()
            .map(|&key| {
                self.index
                    .get(key)
                    .map_or(0, |at| counts[at as usize].total)
            })
            .collect())
    }

    /// At most `k` keys with the largest non-zero totals, largest first, ties by the smaller key.
    pub fn top(&self, kind: usize, k: usize) -> Result<(Vec<i64>, Vec<i64>)> {
        let kind = self.kind(kind)?;
        let entries = self
            .index
            .ids()
            .iter()
            .zip(&self.counts[kind])
            .map(|(&key, count)| (key, count.total));
        Ok(top_k(entries, k))
    }

    /// Takes every non-zero pending delta, per kind, and sets it to zero (unsorted: see
    /// [`Drained::sorted`]).
    pub fn drain(&mut self) -> Drained {
        let ids = self.index.ids();
        let per_kind = self
            .counts
            .iter_mut()
            .map(|counts| {
                let mut keys = Vec::new();
                let mut deltas = Vec::new();
                for (&key, count) in ids.iter().zip(counts.iter_mut()) {
                    if count.pending != 0 {
                        keys.push(key);
                        deltas.push(std::mem::take(&mut count.pending));
                    }
                }
                (keys, deltas)
            })
            .collect();
        Drained(per_kind)
    }

    /// Adds `deltas` to the pending deltas of `keys` (subtracts them when `retract`); totals do not
    /// change. All or nothing, with the rule of [`add`](Self::add).
    pub fn restore(
        &mut self,
        kind: usize,
        keys: &[i64],
        deltas: &[i64],
        retract: bool,
    ) -> Result<()> {
        let kind = self.kind(kind)?;
        check_lengths(keys, Some(deltas))?;
        let batch = exact_sums(keys, Some(deltas))?;
        let updates = self.checked(kind, &batch, false, if retract { -1 } else { 1 })?;
        self.apply(kind, &batch, updates)
    }

    /// Everything `add_table` needs from this table, read at once.
    pub fn snapshot(&self) -> Snapshot {
        let ids = self.index.ids();
        Snapshot(
            self.counts
                .iter()
                .map(|counts| {
                    let mut entries: Vec<(i64, i64, i64)> = ids
                        .iter()
                        .zip(counts)
                        .filter(|(_, c)| c.total != 0 || c.pending != 0)
                        .map(|(&key, c)| (key, c.total, c.pending))
                        .collect();
                    entries.sort_unstable_by_key(|e| e.0);
                    entries
                })
                .collect(),
        )
    }

    /// Adds another table's totals and pending deltas (taken with [`snapshot`](Self::snapshot)),
    /// all or nothing: every sum is checked (kind by kind, keys ascending, total then pending) before
    /// anything changes.
    pub fn add_table(&mut self, theirs: &Snapshot) -> Result<()> {
        if theirs.0.len() != self.kinds.len() {
            return Err(CounterError::KindCountsDiffer {
                theirs: theirs.0.len(),
                mine: self.kinds.len(),
            }
            .into());
        }
        for (kind, entries) in theirs.0.iter().enumerate() {
            let counts = &self.counts[kind];
            for &(key, total, pending) in entries {
                let mine = self
                    .index
                    .get(key)
                    .map_or(Count::default(), |at| counts[at as usize]);
                if mine.total.checked_add(total).is_none() {
                    return Err(self.total_overflow(kind, key));
                }
                if mine.pending.checked_add(pending).is_none() {
                    return Err(self.pending_overflow(kind, key));
                }
            }
        }
        for (kind, entries) in theirs.0.iter().enumerate() {
            for &(key, total, pending) in entries {
                let at = self.slot(key)?;
                let count = &mut self.counts[kind][at];
                // Checked above; wrapping only keeps this free of a panic path.
                count.total = count.total.wrapping_add(total);
                count.pending = count.pending.wrapping_add(pending);
            }
        }
        Ok(())
    }
}

pub(crate) fn check_lengths(keys: &[i64], other: Option<&[i64]>) -> Result<()> {
    match other {
        Some(other) if other.len() != keys.len() => Err(CommonError::LengthsDiffer {
            first: "keys",
            second: "deltas",
            first_length: keys.len(),
            second_length: other.len(),
        }
        .into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> CounterTable {
        CounterTable::new(vec!["likes".into(), "views".into()])
    }

    #[test]
    fn adds_gets_and_ranks() {
        let mut t = table();
        t.add(0, &[7, 3, 7, 9], None).unwrap();
        t.add(1, &[3], Some(&[40])).unwrap();
        t.add(0, &[9, 5], Some(&[1, -2])).unwrap();
        assert_eq!(t.get(0, &[7, 3, 9, 5, 1]).unwrap(), vec![2, 1, 2, -2, 0]);
        assert_eq!(t.get(1, &[3, 7]).unwrap(), vec![40, 0]);
        assert_eq!(t.top(0, 3).unwrap(), (vec![7, 9, 3], vec![2, 2, 1]));
        assert!(t.add(2, &[1], None).is_err());
    }

    #[test]
    fn drain_takes_pending_deltas_once_and_keeps_totals() {
        let mut t = table();
        t.add(0, &[5, 1, 5], None).unwrap();
        t.add(0, &[2, 2], Some(&[3, -3])).unwrap();
        let drained = t.drain().sorted();
        assert_eq!(drained.0[0], (vec![1, 5], vec![1, 2]));
        assert_eq!(drained.0[1], (vec![], vec![]));
        assert_eq!(t.drain().sorted().0[0], (vec![], vec![]));
        assert_eq!(t.get(0, &[5]).unwrap(), vec![2]);
        t.restore(0, &[1, 5], &[1, 2], false).unwrap();
        t.restore(0, &[5], &[2], true).unwrap();
        assert_eq!(t.drain().sorted().0[0], (vec![1], vec![1]));
        assert_eq!(t.get(0, &[1, 5]).unwrap(), vec![1, 2]);
    }

    #[test]
    fn an_overflowing_add_changes_nothing() {
        let mut t = table();
        t.add(0, &[1, 2], Some(&[5, i64::MAX - 1])).unwrap();
        let err = t.add(0, &[1, 3, 2, 1], Some(&[1, 1, 2, 1])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the likes total for key 2 does not fit in int64"
        );
        // Only the value after the call must fit: the order of the call's events does not matter.
        t.add(0, &[2, 2], Some(&[5, -5])).unwrap();
        t.add(0, &[7, 7, 7], Some(&[i64::MAX, i64::MAX, i64::MIN]))
            .unwrap();
        assert_eq!(t.get(0, &[7]).unwrap(), vec![i64::MAX - 1]);
        t.add(0, &[7], Some(&[-(i64::MAX - 1)])).unwrap();
        assert_eq!(t.get(0, &[1, 2, 3]).unwrap(), vec![5, i64::MAX - 1, 0]);
        assert_eq!(t.top(0, 5).unwrap(), (vec![2, 1], vec![i64::MAX - 1, 5]));
        // Pending can overflow while the total does not.
        let mut t = table();
        t.add(0, &[4], Some(&[i64::MIN + 1])).unwrap();
        t.drain();
        t.add(0, &[4], Some(&[i64::MAX])).unwrap();
        let err = t.add(0, &[4], Some(&[1])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the pending likes delta for key 4 does not fit in int64"
        );
        assert_eq!(t.get(0, &[4]).unwrap(), vec![0]);
    }

    #[test]
    fn restore_is_all_or_nothing_even_with_extreme_deltas() {
        let mut t = table();
        t.restore(0, &[1], &[i64::MIN], true).unwrap_err();
        t.restore(0, &[1, 2], &[i64::MIN, -1], false).unwrap();
        let err = t.restore(0, &[2, 1], &[i64::MIN, -1], false).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the pending likes delta for key 2 does not fit in int64"
        );
        // A retraction of i64::MIN that succeeded is taken back exactly when a later one fails.
        t.restore(0, &[1, 3], &[i64::MIN, i64::MIN], true)
            .unwrap_err();
        assert_eq!(t.drain().sorted().0[0], (vec![1, 2], vec![i64::MIN, -1]));
    }

    #[test]
    fn add_table_adds_both_and_checks_first() {
        let mut a = table();
        let mut b = table();
        a.add(0, &[1, 2], Some(&[10, 20])).unwrap();
        b.add(0, &[2, 3], Some(&[5, 6])).unwrap();
        b.add(1, &[3], None).unwrap();
        a.add_table(&b.snapshot()).unwrap();
        assert_eq!(a.get(0, &[1, 2, 3]).unwrap(), vec![10, 25, 6]);
        assert_eq!(a.get(1, &[3]).unwrap(), vec![1]);
        let drained = a.drain().sorted();
        assert_eq!(drained.0[0], (vec![1, 2, 3], vec![10, 25, 6]));
        let mut big = table();
        big.add(1, &[3], Some(&[i64::MAX])).unwrap();
        let err = a.add_table(&big.snapshot()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "the views total for key 3 does not fit in int64"
        );
        assert_eq!(a.get(1, &[3]).unwrap(), vec![1]);
    }
}
