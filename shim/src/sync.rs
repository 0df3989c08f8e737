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
use core::sync::atomic::{AtomicBool, Ordering};
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

/// A lock for what fork handlers hold across a fork (the shim's heap, the
/// module snapshot): taken in the prepare handler, released in the parent
/// and the child handlers, so it can be locked and unlocked in different
/// functions. Never a pthread lock (the shim must not see its own locking),
/// and no futex: critical sections are short and never block, so a waiter
/// spins briefly, then yields its CPU to a preempted holder.
pub struct SpinLock<T> {
    locked: AtomicBool,
    value: UnsafeCell<T>,
}

// SAFETY: the value is only reached with `locked` held.
unsafe impl<T: Send> Sync for SpinLock<T> {}

impl<T> SpinLock<T> {
    pub const fn new(value: T) -> Self {
        SpinLock {
            locked: AtomicBool::new(false),
            value: UnsafeCell::new(value),
        }
    }

    pub fn raw_lock(&self) {
        let mut spins = 0u32;
        while self
            .locked
            .compare_exchange_weak(false, true, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
        {
            spins += 1;
            if spins < 64 {
                core::hint::spin_loop();
            } else {
                // SAFETY: sched_yield has no preconditions.
                unsafe { libc::sched_yield() };
            }
        }
    }

    /// # Safety
    /// This thread holds the lock (by `raw_lock`).
    pub unsafe fn raw_unlock(&self) {
        self.locked.store(false, Ordering::Release);
    }

    /// Runs `f` on the value with the lock held.
    pub fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> R {
        self.raw_lock();
        // SAFETY: the lock is held.
        let r = f(unsafe { &mut *self.value.get() });
        // SAFETY: taken above.
        unsafe { self.raw_unlock() };
        r
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
