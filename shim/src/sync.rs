//! The shim's internal lock: a `std::sync::Mutex` (a futex whose whole
//! state is the lock word: no global table of waiters) that a fork child
//! can replace with a fresh one.
//!
//! After fork the child has one thread. A lock another thread held, or was
//! waiting for, at the moment of the fork would stay locked for ever (or be
//! handed to a waiter that no longer exists), so the child does not unlock
//! anything: it resets every internal lock, and the data behind it, to a new
//! value. Nothing is taken before the fork, so fork never waits for the shim.

use core::cell::UnsafeCell;
use std::sync::{Mutex, MutexGuard, TryLockError};

pub struct ForkMutex<T> {
    inner: UnsafeCell<Mutex<T>>,
}

// SAFETY: access goes through the inner Mutex; `reset` is only called in a
// fork child, where no other thread exists.
unsafe impl<T: Send> Sync for ForkMutex<T> {}

impl<T> ForkMutex<T> {
    pub const fn new(value: T) -> Self {
        ForkMutex {
            inner: UnsafeCell::new(Mutex::new(value)),
        }
    }

    fn mutex(&self) -> &Mutex<T> {
        // SAFETY: only `reset` writes, and only where nobody holds a reference.
        unsafe { &*self.inner.get() }
    }

    /// Locks; a panic while it was held does not stop the shim (poisoning
    /// is ignored: every critical section leaves consistent state).
    pub fn lock(&self) -> MutexGuard<'_, T> {
        self.mutex().lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn try_lock(&self) -> Option<MutexGuard<'_, T>> {
        match self.mutex().try_lock() {
            Ok(g) => Some(g),
            Err(TryLockError::Poisoned(e)) => Some(e.into_inner()),
            Err(TryLockError::WouldBlock) => None,
        }
    }

    /// Replaces the lock and its data with new ones; the old are leaked
    /// (they may be mid-update by a thread that no longer exists).
    ///
    /// # Safety
    /// Only in a fork child, before anything else of the shim runs there.
    pub unsafe fn reset(&self, value: T) {
        core::ptr::write(self.inner.get(), Mutex::new(value));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_lock_is_free_whatever_state_it_was_in() {
        static M: ForkMutex<u32> = ForkMutex::new(1);
        let held = M.lock();
        core::mem::forget(held); // as if a thread that vanished held it
        assert!(M.try_lock().is_none());
        // SAFETY: a test: nothing else uses M.
        unsafe { M.reset(7) };
        assert_eq!(*M.try_lock().expect("free again"), 7);
    }
}
