//! What every lock hook does, whatever the primitive.

use crate::facts;
use crate::thread::{self, HeldEntry};
use core::ffi::c_int;
use holdcheck_format::{LockKind, Mode};

/// Whether an acquisition can wait.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// lock, rdlock, wrlock, and the timed variants (they wait, boundedly).
    Blocking,
    /// trylock: never waits, so it orders nothing.
    Try,
}

/// An acquisition: the lock-order fact (only when other locks are held and
/// this thread has not recorded it), the real call, then the push.
#[inline(always)]
pub fn acquire(
    addr: usize,
    kind: LockKind,
    mode: Mode,
    site: usize,
    wait: Wait,
    real: impl FnOnce() -> c_int,
) -> c_int {
    if let Some(st) = thread::enter() {
        if st.held_len > 0 {
            facts::lock_order(st, addr, kind, mode, wait == Wait::Try);
        }
        thread::leave(st);
    }
    let r = real();
    if r == 0 {
        if let Some(st) = thread::enter() {
            let entry = HeldEntry {
                addr,
                mode,
                kind,
                site,
            };
            if !st.push_held(entry) {
                facts::partial(
                    "held-lock stack overflowed (more than 64 locks held by one thread)",
                );
            }
            if wait == Wait::Blocking {
                st.note_recent(entry);
            }
            thread::leave(st);
        }
    }
    r
}

/// A release: the pop, then the real call.
#[inline(always)]
pub fn release(addr: usize, real: impl FnOnce() -> c_int) -> c_int {
    if let Some(st) = thread::enter() {
        st.pop_held(addr);
        thread::leave(st);
    }
    real()
}

/// `init` or `destroy`: the address starts a new lock generation.
#[inline(always)]
pub fn new_generation(addr: usize, real: impl FnOnce() -> c_int) -> c_int {
    if let Some(st) = thread::enter() {
        crate::locks::new_generation(addr);
        thread::leave(st);
    }
    real()
}
