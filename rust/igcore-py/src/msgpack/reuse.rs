//! The memory of the explicit stacks that packing and unpacking walk containers with, kept between
//! calls on a thread: most messages are small, and allocating their stacks anew would cost more than
//! walking them.

use std::cell::Cell;
use std::mem::ManuallyDrop;
use std::ops::{Deref, DerefMut};
use std::thread::LocalKey;

/// A stack grown beyond this many elements by one large message is given back, not kept.
const MAX_KEPT: usize = 1 << 16;

/// A thread's kept stack memory, as an empty vector of the element type with its lifetimes erased.
pub(crate) type Kept<S> = LocalKey<Cell<Vec<S>>>;

/// An empty vector lent from `kept` (or a new one, if a call further up the thread holds it), given
/// back when dropped.
pub(crate) struct Lent<T, S: 'static> {
    stack: ManuallyDrop<Vec<T>>,
    kept: &'static Kept<S>,
}

/// The same vector, emptied, with another element type.
///
/// # Safety
/// `T` and `U` differ only in lifetimes (so have one layout); the vector holds no element after this.
unsafe fn recast<T, U>(mut stack: Vec<T>) -> Vec<U> {
    stack.clear();
    let mut stack = ManuallyDrop::new(stack);
    // SAFETY: an empty vector's buffer, of the same layout (the caller's promise), handed over whole:
    // the original is never dropped.
    unsafe { Vec::from_raw_parts(stack.as_mut_ptr().cast::<U>(), 0, stack.capacity()) }
}

impl<T, S: 'static> Lent<T, S> {
    /// # Safety
    /// `T` and `S` differ only in lifetimes.
    pub unsafe fn new(kept: &'static Kept<S>) -> Self {
        let stack = kept.try_with(Cell::take).unwrap_or_default();
        Self {
            // SAFETY: as the caller promises.
            stack: ManuallyDrop::new(unsafe { recast(stack) }),
            kept,
        }
    }
}

impl<T, S: 'static> Drop for Lent<T, S> {
    fn drop(&mut self) {
        // SAFETY: taken once, here.
        let stack = unsafe { ManuallyDrop::take(&mut self.stack) };
        if stack.capacity() <= MAX_KEPT {
            // SAFETY: `new`'s promise; recast empties it first (its elements are dropped here, on the
            // thread that made them, with the GIL held as it is for the whole call).
            let stack = unsafe { recast::<T, S>(stack) };
            let _ = self.kept.try_with(|kept| kept.set(stack));
        }
    }
}

impl<T, S: 'static> Deref for Lent<T, S> {
    type Target = Vec<T>;
    fn deref(&self) -> &Vec<T> {
        &self.stack
    }
}

impl<T, S: 'static> DerefMut for Lent<T, S> {
    fn deref_mut(&mut self) -> &mut Vec<T> {
        &mut self.stack
    }
}
