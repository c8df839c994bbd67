//! How every stateful object of `igcore._rust` shares its state between threads, and when work lets
//! go of the GIL. One policy for all of them:
//!
//! - **One lock per object**, a read-write lock ([`Guarded`]): queries share it, changes hold it
//!   alone. Timeline, TimelineStore, CounterTable, WindowedCounter, HyperLogLog and Graph keep their
//!   core value in one.
//! - **Waiting for a lock happens without the GIL.** Long work ([`Work::Long`]) releases the GIL,
//!   then takes the lock. Quick work ([`Work::Quick`]) tries the lock with the GIL held (handing the
//!   GIL over would cost more than the work) and, when another thread holds it, waits without the GIL
//!   too. Nothing that holds a lock takes the GIL back, so the GIL and the locks cannot deadlock.
//! - **Several locks at once** ([`read_all`]) are taken in address order, each once, so two threads
//!   that read the same objects cannot deadlock, and a thread never reads one lock twice (which can
//!   block behind a waiting writer).
//! - **A poisoned lock raises.** A lock is poisoned when a change panicked while holding it alone (a
//!   bug: the panic itself reached Python as a `PanicException`). The value may be half-changed, so
//!   every later call on the object raises `RuntimeError` ([`poisoned`]) instead of reading it. A
//!   panicking query does not poison a read-write lock.
//! - **msgpack's Packer and Unpacker serve one call at a time** ([`one_call_at_a_time`]): their calls
//!   run Python code (hooks, `default`, `file_like.read()`) in the middle, which may call the same
//!   object again on the same thread, where waiting for a lock would deadlock; a call made while
//!   another is in progress raises `RuntimeError` instead.
//! - **Sizes above which work releases the GIL** are named here ([`GIL_RELEASE_ABOVE`]); the Cython
//!   backends use the same names and values. Work on a size at or above its threshold runs without
//!   the GIL; below, releasing and taking back the GIL costs more than the work.

use std::sync::{LockResult, RwLock, RwLockReadGuard, TryLockError, TryLockResult};

use pyo3::prelude::*;
use pyo3::{PyClass, PyRefMut};

use crate::error::{busy, poisoned, KernelError};

/// Entries that timeline work inserts, merges or reads (array sources of a merge, `insert_many`,
/// `backfill`, the bytes of `timeline_from_bytes`, the events of `aggregate_activity`).
pub(crate) const TIMELINE_ENTRIES: usize = 1 << 15;
/// Users whose stored timelines a store's `merge_page` reads (or that `users` lists).
pub(crate) const TIMELINE_USERS: usize = 1 << 15;
/// Followers that a fan-out inserts into.
pub(crate) const TIMELINE_FOLLOWERS: usize = 1 << 15;
/// Ids encoded into an id list or entries, or bytes decoded from one.
pub(crate) const CODEC_IDS: usize = 1 << 16;

/// Every threshold by name, as `igcore._rust._GIL_RELEASE_ABOVE` shows them (the Cython guard's
/// names and values).
pub(crate) const GIL_RELEASE_ABOVE: [(&str, usize); 4] = [
    ("timeline_entries", TIMELINE_ENTRIES),
    ("timeline_users", TIMELINE_USERS),
    ("timeline_followers", TIMELINE_FOLLOWERS),
    ("codec_ids", CODEC_IDS),
];

/// How long a piece of work is, for the choice of releasing the GIL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Work {
    /// Quicker than releasing and taking back the GIL: runs with it, unless the lock is taken.
    Quick,
    /// Runs without the GIL.
    Long,
}

impl Work {
    /// Long from `threshold` items on.
    pub(crate) fn sized(items: usize, threshold: usize) -> Self {
        if items >= threshold {
            Work::Long
        } else {
            Work::Quick
        }
    }
}

/// Runs `work` without the GIL when it is long.
pub(crate) fn maybe_detach<T: Send>(py: Python<'_>, work: Work, f: impl FnOnce() -> T + Send) -> T {
    match work {
        Work::Long => py.detach(f),
        Work::Quick => f(),
    }
}

/// The state of a stateful object, behind its one lock.
pub(crate) struct Guarded<T>(RwLock<T>);

impl<T: Send + Sync> Guarded<T> {
    pub(crate) fn new(value: T) -> Self {
        Guarded(RwLock::new(value))
    }

    /// Runs `f` on the value, shared with other readers.
    pub(crate) fn read<R: Send>(
        &self,
        py: Python<'_>,
        work: Work,
        f: impl FnOnce(&T) -> R + Send,
    ) -> Result<R, KernelError> {
        locked(
            py,
            work,
            || self.0.try_read(),
            || self.0.read(),
            |guard| f(&guard),
        )
    }

    /// Runs `f` on the value, held alone.
    pub(crate) fn write<R: Send>(
        &self,
        py: Python<'_>,
        work: Work,
        f: impl FnOnce(&mut T) -> R + Send,
    ) -> Result<R, KernelError> {
        locked(
            py,
            work,
            || self.0.try_write(),
            || self.0.write(),
            |mut guard| f(&mut guard),
        )
    }

    /// As `read`, for work that may itself fail.
    pub(crate) fn try_read<R: Send>(
        &self,
        py: Python<'_>,
        work: Work,
        f: impl FnOnce(&T) -> igcore_core::Result<R> + Send,
    ) -> Result<R, KernelError> {
        Ok(self.read(py, work, f)??)
    }

    /// As `write`, for work that may itself fail.
    pub(crate) fn try_write<R: Send>(
        &self,
        py: Python<'_>,
        work: Work,
        f: impl FnOnce(&mut T) -> igcore_core::Result<R> + Send,
    ) -> Result<R, KernelError> {
        Ok(self.write(py, work, f)??)
    }

    fn try_read_now(&self) -> Option<Result<RwLockReadGuard<'_, T>, KernelError>> {
        match self.0.try_read() {
            Ok(guard) => Some(Ok(guard)),
            Err(TryLockError::Poisoned(_)) => Some(Err(poisoned())),
            Err(TryLockError::WouldBlock) => None,
        }
    }
}

/// `f` under a lock: quick work first tries it with the GIL held (cheaper than handing the GIL over);
/// otherwise, or when it is taken, the lock is waited for without the GIL.
fn locked<G, R: Send>(
    py: Python<'_>,
    work: Work,
    try_lock: impl FnOnce() -> TryLockResult<G>,
    lock: impl FnOnce() -> LockResult<G> + Send,
    f: impl FnOnce(G) -> R + Send,
) -> Result<R, KernelError> {
    if work == Work::Quick {
        match try_lock() {
            Ok(guard) => return Ok(f(guard)),
            Err(TryLockError::Poisoned(_)) => return Err(poisoned()),
            Err(TryLockError::WouldBlock) => {}
        }
    }
    py.detach(|| lock().map(f).map_err(|_| ()))
        .map_err(|()| poisoned())
}

/// `read` over several objects at once (the same one may appear more than once): `f` sees their
/// values in the order given.
pub(crate) fn read_all<T: Send + Sync, R: Send>(
    py: Python<'_>,
    guards: &[&Guarded<T>],
    work: Work,
    f: impl FnOnce(&[&T]) -> R + Send,
) -> Result<R, KernelError> {
    if work == Work::Quick {
        let mut held = Vec::with_capacity(guards.len());
        for guarded in guards {
            match guarded.try_read_now() {
                Some(Ok(guard)) => held.push(guard),
                Some(Err(err)) => return Err(err),
                None => break,
            }
        }
        if held.len() == guards.len() {
            let values: Vec<&T> = held.iter().map(|g| &**g).collect();
            return Ok(f(&values));
        }
    }
    py.detach(|| {
        // Each lock once, in address order (see the module's comment).
        let address = |guarded: &&Guarded<T>| *guarded as *const Guarded<T> as usize;
        let mut unique = guards.to_vec();
        unique.sort_unstable_by_key(address);
        unique.dedup_by_key(|guarded| address(guarded));
        let mut held = Vec::with_capacity(unique.len());
        for guarded in &unique {
            held.push(guarded.0.read().map_err(|_| ())?);
        }
        let values: Vec<&T> = guards
            .iter()
            .filter_map(|guarded| {
                let at = unique
                    .binary_search_by_key(&address(guarded), address)
                    .ok()?;
                held.get(at).map(|g| &**g)
            })
            .collect();
        Ok(f(&values))
    })
    .map_err(|()| poisoned())
}

/// The object, borrowed for one call; a call made while another is in progress on it (another
/// thread's, or one from Python code that the first runs) raises `RuntimeError`. `class` names the
/// object in the message.
pub(crate) fn one_call_at_a_time<'py, T: PyClass<Frozen = pyo3::pyclass::boolean_struct::False>>(
    slf: &Bound<'py, T>,
    class: &'static str,
) -> PyResult<PyRefMut<'py, T>> {
    slf.try_borrow_mut().map_err(|_| busy(class))
}
