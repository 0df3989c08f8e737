//! What every lock hook does, whatever the primitive.
//!
//! A blocking acquisition first *tries* the lock: uncontended, that is the
//! whole cost (the same as the real lock). Contended, the thread publishes
//! its wait (with the stack of this call site, unwound the first time this
//! thread contends there) and then blocks in the real call, untouched: a
//! waiter is never taken out of the lock's queue, so a writer-preferring
//! rwlock or a fair mutex behaves as it would without the shim.

use crate::facts;
use crate::live;
use crate::recorder::record_stack;
use crate::thread::{self, HeldEntry};
use crate::{config, sys};
use core::ffi::c_int;
use holdcheck_format::{LockKind, Mode};

/// The lock-order fact (only when other locks are held and this thread has
/// not recorded it), before anything can block.
#[inline(always)]
fn before(addr: usize, kind: LockKind, mode: Mode, site: usize, try_lock: bool) {
    if let Some(st) = thread::enter() {
        if st.held_len > 0 {
            facts::lock_order(st, addr, kind, mode, site, try_lock);
        }
        thread::leave(st);
    }
}

/// Whether a lock call's result means the lock is now held (a robust
/// mutex whose owner died is held too).
#[inline(always)]
fn acquired(r: c_int) -> bool {
    r == 0 || r == libc::EOWNERDEAD
}

/// The push onto the held stack after a successful acquisition.
#[inline(always)]
fn after(r: c_int, entry: HeldEntry, blocking: bool) -> c_int {
    if acquired(r) {
        if let Some(st) = thread::enter() {
            if !st.push_held(entry) {
                facts::partial(
                    "held-lock stack overflowed (more than 64 locks held by one thread)",
                );
            }
            if blocking {
                st.note_recent(entry);
            }
            thread::leave(st);
        }
    }
    r
}

/// A trylock: it never waits, so it orders nothing.
#[inline(always)]
pub fn acquire_try(
    addr: usize,
    kind: LockKind,
    mode: Mode,
    site: usize,
    trylock: impl FnOnce() -> c_int,
) -> c_int {
    before(addr, kind, mode, site, true);
    let r = trylock();
    after(
        r,
        HeldEntry {
            addr,
            mode,
            kind,
            site,
        },
        false,
    )
}

/// lock, rdlock, wrlock, and the program's own timed variants (`lock` is
/// the real call, whichever it is).
#[inline(always)]
pub fn acquire_blocking(
    addr: usize,
    kind: LockKind,
    mode: Mode,
    site: usize,
    trylock: impl FnOnce() -> c_int,
    lock: impl FnOnce() -> c_int,
) -> c_int {
    before(addr, kind, mode, site, false);
    let entry = HeldEntry {
        addr,
        mode,
        kind,
        site,
    };
    let r = trylock();
    if r != libc::EBUSY {
        return after(r, entry, true);
    }
    let p = announce(addr, kind, mode, site);
    let r = lock();
    if let Some(p) = p {
        p.done();
    }
    after(r, entry, true)
}

/// Publishes "waiting for this lock since now", with the stack of the call
/// site (unwound once per thread and site, then cached).
fn announce(
    addr: usize,
    kind: LockKind,
    mode: Mode,
    site: usize,
) -> Option<&'static live::Published> {
    let st = thread::enter()?;
    let _errno = sys::ErrnoGuard::save();
    let p = live::published(st);
    if let Some(p) = p {
        let slot = &mut st.site_stacks[(site >> 2) % thread::SITE_STACKS];
        if slot.0 != site || slot.1 == 0 {
            *slot = (site, record_stack(config::get().stack_depth));
        }
        p.wait_lock(addr, kind, mode, slot.1, sys::monotonic_ns());
    }
    thread::leave(st);
    p
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
