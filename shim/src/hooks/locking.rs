//! What every lock hook does, whatever the primitive.
//!
//! A blocking acquisition first *tries* the lock: uncontended, that is the
//! whole cost (the same as the real lock; a normal mutex, and an rwlock in
//! the states where glibc's try is one compare-and-swap, are tried in
//! place, as glibc's trylock would, with no call). Contended, the thread publishes
//! its wait (with the stack of this call site, unwound the first time this
//! thread contends there) and then blocks in the real call, untouched: a
//! waiter is never taken out of the lock's queue, so a writer-preferring
//! rwlock or a fair mutex behaves as it would without the shim. In a
//! process with one thread nothing can contend: the real lock is taken at
//! once (glibc's single-thread path); a normal mutex's entry is pushed
//! before it, and the mutex is taken in place as glibc takes it then (a
//! plain store), or the hook ends in a jump to glibc. A release pops its
//! entry, then releases a normal mutex, or an rwlock's read lock that
//! wakes nobody, in place, or jumps to the library's unlock.

use crate::facts::{self, Misuse};
use crate::live;
use crate::recorder::record_stack;
use crate::thread::{self, HeldEntry};
use crate::{config, sys};
use core::ffi::c_int;
use holdcheck_format::{LockKind, MisuseKind, Mode};

/// The lock-order fact (only when other locks are held and this thread has
/// not recorded it), before anything can block, while the shim starts, is
/// off, records extras, or steers for `holdcheck confirm` (which may park
/// the thread here): off the fast path, which does the same in
/// [`acquire_blocking`]. Returns the acquired lock's class, as
/// [`facts::lock_order`] does, for its held entry.
#[cold]
#[inline(never)]
fn before_otherwise(addr: usize, kind: LockKind, mode: Mode, site: usize) -> u32 {
    let Some(st) = thread::enter() else { return 0 };
    let class = if st.held_len > 0 {
        facts::lock_order(st, addr, kind, mode, site)
    } else {
        0
    };
    if crate::steer::on() {
        crate::steer::before_lock(st, site, addr);
    }
    thread::leave(st);
    class
}

/// How a blocking acquisition tries its lock first. Any closure given the
/// lock and the thread's tid (0 where the hook does not know it) is the
/// library's trylock; a normal mutex, and an rwlock in the states where
/// glibc's try is one compare-and-swap, are tried in place first
/// ([`super::mutex`], [`super::rwlock`]), with no call, so that the hook
/// saves no register.
pub trait FirstTry {
    /// The try made in place (0 or `EBUSY`), or None where only the
    /// library can try this lock.
    #[inline(always)]
    fn in_place(&self, _addr: usize, _tid: u32) -> Option<c_int> {
        None
    }

    /// The library's trylock.
    fn call(self, addr: usize, tid: u32) -> c_int;

    /// The lock taken in place while the process has one thread, as the
    /// library takes it then (true), or nothing done: the library's lock.
    #[inline(always)]
    fn alone(&self, _addr: usize, _tid: u32) -> bool {
        false
    }
}

impl<F: FnOnce(usize, u32) -> c_int> FirstTry for F {
    #[inline(always)]
    fn call(self, addr: usize, tid: u32) -> c_int {
        self(addr, tid)
    }
}

/// Whether a lock call's result means the lock is now held (a robust
/// mutex whose owner died is held too).
#[inline(always)]
fn acquired(r: c_int) -> bool {
    r == 0 || r == libc::EOWNERDEAD
}

/// The push onto the held stack after a successful acquisition; a
/// refusal that says the program misuses the lock is noted.
#[inline(always)]
fn after(r: c_int, entry: HeldEntry, blocking: bool) -> c_int {
    match thread::enter() {
        Some(st) => after_entered(st, r, entry, blocking, false),
        None => r,
    }
}

/// [`after`] by a hook that entered the thread's state already; leaves it.
/// `plain`: the hook saw [`config::plainly_on`], so there are no extras.
#[inline(always)]
fn after_entered(
    st: &mut thread::ThreadState,
    r: c_int,
    entry: HeldEntry,
    blocking: bool,
    plain: bool,
) -> c_int {
    // Every rare case ends in a call made last (a tail call): nothing the
    // hook holds needs to outlive a call, so it saves fewer registers
    // (each one saved is a store).
    if !acquired(r) {
        thread::leave(st);
        return refused(r, entry.addr, entry.kind);
    }
    if blocking {
        st.note_recent(entry);
    }
    if !st.push_held(entry) {
        return overflowed(st, r);
    }
    if !plain && config::extras() != 0 {
        return extra(st, r);
    }
    thread::leave(st);
    r
}

/// The held stack is full: the push was not made; leaves the state.
#[cold]
#[inline(never)]
fn overflowed(st: &mut thread::ThreadState, r: c_int) -> c_int {
    facts::partial("held-lock stack overflowed (more than 1024 locks held by one thread)");
    thread::leave(st);
    r
}

/// What an acquisition records when asked to: its time (`hold_ms`), its
/// whole stack (`held_stacks=1`). Leaves the state; returns `r`.
#[cold]
#[inline(never)]
fn extra(st: &mut thread::ThreadState, r: c_int) -> c_int {
    let extras = config::extras();
    let mut x = thread::HeldExtra {
        site: st.held().last().map_or(0, |e| e.site),
        ..Default::default()
    };
    if extras & config::EXTRA_HOLD_TIME != 0 {
        x.since = sys::monotonic_ns();
    }
    if extras & config::EXTRA_HELD_STACKS != 0 {
        let _errno = sys::ErrnoGuard::save();
        x.stack = record_stack(config::get().stack_depth);
    }
    st.set_top_extra(x);
    thread::leave(st);
    r
}

/// glibc refused a lock: `EDEADLK`, the thread holds it already (the
/// program going on as if it held it twice is seen at its extra unlock);
/// `EINVAL` on a destroyed mutex, a use after destroy. Returns `r`.
#[cold]
#[inline(never)]
fn refused(r: c_int, addr: usize, kind: LockKind) -> c_int {
    if r != libc::EDEADLK && r != libc::EINVAL {
        return r;
    }
    let Some(st) = thread::enter() else { return r };
    let _errno = sys::ErrnoGuard::save();
    if r == libc::EDEADLK {
        st.refused = (addr, record_stack(config::get().stack_depth));
    } else if kind == LockKind::Mutex
        // SAFETY: the program passed this mutex to the call just made.
        && unsafe { crate::locks::state(addr, kind) }.destroyed
    {
        facts::misuse(st, Misuse::of(MisuseKind::UseDestroyed, addr, kind));
    }
    thread::leave(st);
    r
}

/// A trylock: it never waits, so it orders nothing and records no
/// lock-order fact (as for ThreadSanitizer and lockdep); the lock it takes
/// is held for what follows.
#[inline(always)]
pub fn acquire_try(
    addr: usize,
    kind: LockKind,
    mode: Mode,
    site: usize,
    trylock: impl FnOnce() -> c_int,
) -> c_int {
    let r = trylock();
    after(r, HeldEntry::new(addr, kind, mode, site), false)
}

/// lock, rdlock, wrlock, and the program's own timed variants (`lock` is
/// the real call, whichever it is, given the lock's address; `trylock`
/// is given the thread's tid too, 0 where the hook does not know it). Nothing
/// held, the usual case, the thread's state is entered only for the push
/// after the call; never across a wait. This path is counted in stores
/// (measured: an uncontended pair is bound by them, and they drain before
/// the next atomic): no entry is built in memory before the push, no
/// register saved that a path does not need.
#[inline(always)]
pub fn acquire_blocking(
    addr: usize,
    kind: LockKind,
    mode: Mode,
    site: usize,
    trylock: impl FirstTry,
    lock: impl FnOnce(usize) -> c_int,
) -> c_int {
    acquire_blocking_or_alone(addr, kind, mode, site, |_| false, trylock, lock)
}

/// [`acquire_blocking`] of a call that `cannot_fail` (given the lock's
/// address) says can only succeed or wait for ever, such as
/// `pthread_mutex_lock` of a normal mutex. While the process has one
/// thread and this one holds nothing, the entry is pushed *before* the
/// real call, which is then made last (a tail call), or in place where
/// `trylock` can ([`FirstTry::alone`]): the hook keeps nothing across it,
/// so it saves no register, makes no call of its own and finds no state
/// again after it. No other thread can hold the lock
/// or read the held stack meanwhile; a signal handler that runs in the
/// call sees the lock as held a moment early.
#[inline(always)]
pub fn acquire_blocking_or_alone(
    addr: usize,
    kind: LockKind,
    mode: Mode,
    site: usize,
    cannot_fail: impl FnOnce(usize) -> bool,
    trylock: impl FirstTry,
    lock: impl FnOnce(usize) -> c_int,
) -> c_int {
    if !config::plainly_on() {
        return acquire_unentered(addr, kind, mode, site, trylock, lock);
    }
    let parked = match thread::peek_active() {
        thread::Peek::Ready(parked) => parked,
        // Passed through: a call made while the shim runs on this thread
        // (a signal handler's), or a thread of the shim's own.
        thread::Peek::Busy => return passed(addr, lock),
        thread::Peek::New => return acquire_unentered(addr, kind, mode, site, trylock, lock),
    };
    // Every path below but a lock tried in place leaves by a tail call: at
    // most six arguments, all in registers (the entry as its parts, the
    // lock as the closures' argument, the thread's state found again), so
    // that this dispatch stores nothing but the held entry, not even a
    // saved register.
    let tail = HeldEntry::new(addr, kind, mode, site).tail();
    if parked.held_len() > 0 {
        return acquire_nested(addr, site, tail, trylock, lock);
    }
    if crate::sys::single_threaded() {
        if cannot_fail(addr) && pushed_alone(&parked, HeldEntry::from_parts(addr, site, tail)) {
            if trylock.alone(addr, parked.tid()) {
                return 0;
            }
            return lock(addr);
        }
        return take_alone(addr, site, tail, lock);
    }
    // Nothing held: the stack has room, and a lock tried in place is taken
    // here, with no call.
    take_in_place_or_else(parked, 0, addr, site, tail, trylock, lock)
}

/// The push of [`acquire_blocking_or_alone`] before the real call, for a
/// thread holding nothing in a process with one thread: false (nothing
/// done) once the thread used a queue, whose operations read its recent
/// acquisitions (pushed after the call, by [`take_alone`]).
#[inline(always)]
fn pushed_alone(parked: &thread::Parked, entry: HeldEntry) -> bool {
    let st = parked.unentered();
    // The stack is empty: the push cannot overflow.
    !st.used_queues() && st.push_held(entry)
}

/// [`acquire_blocking`] with locks held: the lock-order fact first, then
/// the acquisition ([`take`]). Called only by [`acquire_blocking`] once
/// it found the thread's state ready. A fact this thread recorded is a key
/// and a probe of its cache, read without entering the state (a store to
/// set `busy` and one to clear it) and leaving by a tail call: the
/// registers the key needs are saved here, not on the acquisition's path.
#[inline(never)]
fn acquire_nested(
    addr: usize,
    site: usize,
    tail: thread::EntryTail,
    trylock: impl FirstTry,
    lock: impl FnOnce(usize) -> c_int,
) -> c_int {
    // SAFETY: `acquire_blocking` found the state ready.
    let st = unsafe { thread::parked() }.unentered();
    let mode = HeldEntry::from_parts(addr, site, tail).mode;
    if !facts::lock_order_recorded(st, addr, mode) {
        return acquire_new_order(addr, site, tail, trylock, lock);
    }
    take(addr, site, tail, trylock, lock)
}

/// [`acquire_nested`] of an order this thread's cache does not hold: the
/// fact recorded (or found in the trace), then [`take`].
#[cold]
#[inline(never)]
fn acquire_new_order(
    addr: usize,
    site: usize,
    tail: thread::EntryTail,
    trylock: impl FirstTry,
    lock: impl FnOnce(usize) -> c_int,
) -> c_int {
    // SAFETY: as in `acquire_nested`.
    let st = thread::reenter(unsafe { thread::parked() });
    let e = HeldEntry::from_parts(addr, site, tail);
    let class = facts::lock_order(st, addr, e.kind, e.mode, site);
    let tail = HeldEntry { class, ..e }.tail();
    thread::leave(st);
    take(addr, site, tail, trylock, lock)
}

/// The acquisition once its lock-order fact is settled, with locks held
/// (the state ready, not entered): [`take_alone`] in a process with one
/// thread, else the lock tried ([`take_in_place_or_else`]); the real call
/// and its note with the stack full ([`take_overflowing`]). Called by
/// [`acquire_nested`] and [`acquire_new_order`] ([`acquire_blocking_or_alone`]
/// makes the same choice itself, with no lock held, the usual case).
#[inline(never)]
fn take(
    addr: usize,
    site: usize,
    tail: thread::EntryTail,
    trylock: impl FirstTry,
    lock: impl FnOnce(usize) -> c_int,
) -> c_int {
    if crate::sys::single_threaded() {
        return take_alone(addr, site, tail, lock);
    }
    // SAFETY: ready, as its callers found it; not entered: only stores to
    // its held stack follow, and no call (a signal handler that runs
    // meanwhile leaves the state as it found it).
    let parked = unsafe { thread::parked() };
    let n = parked.held_len();
    if n >= thread::MAX_HELD {
        return take_overflowing(addr, site, tail, trylock, lock);
    }
    take_in_place_or_else(parked, n, addr, site, tail, trylock, lock)
}

/// The lock tried in place, then pushed at `n` (the held stack's length,
/// below [`thread::MAX_HELD`]), or the wait if the try fails; a lock only
/// the library can try goes to [`take_by_call`]. Every path but the push
/// leaves by a tail call. An in-place try only ever succeeds (0) or finds
/// the lock taken (`EBUSY`): anything else is the library's to answer.
#[inline(always)]
fn take_in_place_or_else(
    parked: thread::Parked,
    n: usize,
    addr: usize,
    site: usize,
    tail: thread::EntryTail,
    trylock: impl FirstTry,
    lock: impl FnOnce(usize) -> c_int,
) -> c_int {
    let Some(r) = trylock.in_place(addr, parked.tid()) else {
        return take_by_call(addr, site, tail, trylock, lock);
    };
    if r == libc::EBUSY {
        return contended(addr, site, tail, thread::reenter(parked), lock);
    }
    // Held only now, after the try: the watchdog reads the held stacks of
    // other threads, and an entry for a lock another thread holds would
    // name a second holder of it for that moment.
    let st = parked.unentered();
    let entry = HeldEntry::from_parts(addr, site, tail);
    st.note_recent(entry);
    st.push_at(n, entry);
    r
}

/// [`take_in_place_or_else`] of a lock only the library can try: the
/// entry is staged above the held stack before the call and read back
/// after it, so that only the state's address is kept across the call, in
/// the one register the call's stack alignment saves anyway (each
/// register saved is a store, and every store drains before the lock's
/// atomic).
#[inline(never)]
fn take_by_call(
    addr: usize,
    site: usize,
    tail: thread::EntryTail,
    trylock: impl FirstTry,
    lock: impl FnOnce(usize) -> c_int,
) -> c_int {
    // SAFETY: ready and not entered, as its callers found it.
    let parked = unsafe { thread::parked() };
    // Its callers found room on the held stack; `staged` below reads what
    // this wrote only if it did.
    if !parked
        .unentered()
        .stage_held(HeldEntry::from_parts(addr, site, tail))
    {
        return take_overflowing(addr, site, tail, trylock, lock);
    }
    let r = trylock.call(addr, parked.tid());
    let st = parked.unentered();
    let entry = st.staged();
    if r == libc::EBUSY {
        return contended(
            entry.addr,
            entry.site,
            entry.tail(),
            thread::reenter(parked),
            lock,
        );
    }
    if !acquired(r) {
        return refused(r, entry.addr, entry.kind);
    }
    // Held only now, as in `take_in_place_or_else`.
    st.note_recent(entry);
    st.hold_staged();
    r
}

/// [`take`] with the held stack full: the real call, and the
/// overflow noted.
#[cold]
#[inline(never)]
fn take_overflowing(
    addr: usize,
    site: usize,
    tail: thread::EntryTail,
    trylock: impl FirstTry,
    lock: impl FnOnce(usize) -> c_int,
) -> c_int {
    let r = trylock.call(addr, 0);
    // SAFETY: ready, as its callers found it.
    let st = thread::reenter(unsafe { thread::parked() });
    if r == libc::EBUSY {
        return contended(addr, site, tail, st, lock);
    }
    after_entered(st, r, HeldEntry::from_parts(addr, site, tail), true, true)
}

/// An acquisition in a process with one thread: no other thread can hold the
/// lock (or watch the wait), so the real call is made directly, glibc's
/// own single-thread path without the atomic a trylock costs. It may still
/// wait (on itself, on another process's file lock), outside the thread's
/// state as every wait. Called only as [`take`] is, or as
/// [`acquire_blocking_or_alone`] calls it, with the state ready.
#[inline(never)]
fn take_alone(
    addr: usize,
    site: usize,
    tail: thread::EntryTail,
    lock: impl FnOnce(usize) -> c_int,
) -> c_int {
    let r = lock(addr);
    // SAFETY: ready, as its callers found it (a signal handler that ran in
    // the call left it as it found it).
    let st = thread::reenter(unsafe { thread::parked() });
    // The recent acquisitions are read at a queue operation (those since
    // the previous one on the same queue) and when a thread ends for its
    // joiner: alone in its process and with no queue used yet, nothing
    // will read this one.
    let recent = st.used_queues();
    after_entered(st, r, HeldEntry::from_parts(addr, site, tail), recent, true)
}

/// The real call, out of line: the hook's checks before its fast path
/// then make no call, so that the paths that leave by a tail call save no
/// register.
#[cold]
#[inline(never)]
fn passed(addr: usize, call: impl FnOnce(usize) -> c_int) -> c_int {
    call(addr)
}

/// A lock another thread holds: the wait published, then the real call.
#[cold]
#[inline(never)]
fn contended(
    addr: usize,
    site: usize,
    tail: thread::EntryTail,
    // After the entry's parts, which stay in the registers they came in.
    st: &mut thread::ThreadState,
    lock: impl FnOnce(usize) -> c_int,
) -> c_int {
    let entry = HeldEntry::from_parts(addr, site, tail);
    let p = announce(st, &entry);
    thread::leave(st);
    wait_for(p, entry, lock)
}

/// [`acquire_blocking`] after [`before_otherwise`]: the state is entered
/// for each step, as when the shim starts or steers.
#[cold]
#[inline(never)]
fn acquire_unentered(
    addr: usize,
    kind: LockKind,
    mode: Mode,
    site: usize,
    trylock: impl FirstTry,
    lock: impl FnOnce(usize) -> c_int,
) -> c_int {
    let entry = HeldEntry {
        class: before_otherwise(addr, kind, mode, site),
        ..HeldEntry::new(addr, kind, mode, site)
    };
    if crate::sys::single_threaded() {
        return after(lock(addr), entry, true);
    }
    let r = trylock.call(addr, 0);
    if r != libc::EBUSY {
        return after(r, entry, true);
    }
    let p = thread::enter().and_then(|st| {
        let p = announce(st, &entry);
        thread::leave(st);
        p
    });
    wait_for(p, entry, lock)
}

/// A contended acquisition's wait: the real call, outside the thread's
/// state, with the wait it published (if any) withdrawn when it returns.
#[inline(always)]
fn wait_for(
    p: Option<&'static live::Published>,
    entry: HeldEntry,
    lock: impl FnOnce(usize) -> c_int,
) -> c_int {
    let r = lock(entry.addr);
    if let Some(p) = p {
        p.done();
    }
    after(r, entry, true)
}

/// Publishes "waiting for the lock of `entry` since now", with the stack
/// of its call site (unwound once per thread and site, then cached).
fn announce(st: &mut thread::ThreadState, entry: &HeldEntry) -> Option<&'static live::Published> {
    let _errno = sys::ErrnoGuard::save();
    let p = live::published(st);
    if let Some(p) = p {
        let stack = st.site_stack(entry.site);
        p.wait_lock(
            entry.addr,
            entry.kind,
            entry.mode,
            stack,
            sys::monotonic_ns(),
        );
    }
    p
}

/// A release: the pop, then the real call. A release of a lock this
/// thread was not seen taking is looked at closer, off the fast path.
/// On the fast path alone, `in_place` (given the lock's address) may make
/// the release itself, exactly as the library would, and say so (true);
/// every other path makes the real call.
#[inline(always)]
pub fn release(
    addr: usize,
    kind: LockKind,
    in_place: impl FnOnce(usize) -> bool,
    real: impl FnOnce() -> c_int,
) -> c_int {
    if !config::plainly_on() {
        return release_otherwise_then(addr, kind, real);
    }
    // The common case in a few instructions: the innermost lock, and
    // nothing recorded beside it. Every other case calls out and makes
    // the real call itself, so that no path saves a register.
    match thread::peek_active() {
        thread::Peek::Ready(parked) => {
            if !parked.unentered().pop_top(addr) {
                return release_slow_then(addr, kind, thread::reenter(parked), real);
            }
            if in_place(addr) {
                return 0;
            }
        }
        // Passed through untouched (see `acquire_blocking_or_alone`).
        thread::Peek::Busy => {}
        // A thread's first hooked call: its state is made there.
        thread::Peek::New => return release_otherwise_then(addr, kind, real),
    }
    real()
}

/// [`release_slow`] from [`release`]'s fast path, then the real call.
#[cold]
#[inline(never)]
fn release_slow_then(
    addr: usize,
    kind: LockKind,
    // After the lock's own arguments, which stay in their registers.
    st: &mut thread::ThreadState,
    real: impl FnOnce() -> c_int,
) -> c_int {
    release_slow(st, addr, kind);
    thread::leave(st);
    real()
}

/// [`release`] while the shim starts, is off, steers or records extras,
/// or of a thread with no state yet; then the real call.
#[cold]
#[inline(never)]
fn release_otherwise_then(addr: usize, kind: LockKind, real: impl FnOnce() -> c_int) -> c_int {
    if let Some(st) = thread::enter() {
        release_slow(st, addr, kind);
        thread::leave(st);
    }
    real()
}

/// A release of a lock that is not the innermost held, or with extras.
#[cold]
#[inline(never)]
fn release_slow(st: &mut thread::ThreadState, addr: usize, kind: LockKind) {
    match st.release_held(addr) {
        Some(x) => {
            if x.since != 0 {
                held_for(st, addr, kind, x);
            }
        }
        None => not_held(st, addr, kind),
    }
}

/// A lock held past the hold-time threshold (`hold_ms`), at its release.
#[cold]
#[inline(never)]
fn held_for(st: &mut thread::ThreadState, addr: usize, kind: LockKind, x: thread::HeldExtra) {
    let threshold = config::hold_ns();
    let held = sys::monotonic_ns().saturating_sub(x.since);
    if threshold != 0 && held >= threshold {
        let mut m = Misuse::of(MisuseKind::HeldTooLong, addr, kind);
        m.site = Some(x.site);
        m.held_ns = Some(held);
        facts::misuse(st, m);
    }
}

/// An unlock of a lock not on this thread's held stack. It may still be
/// this thread's (taken while the shim passed calls through, or before the
/// stack overflowed): it is a misuse only when the lock's memory says it
/// is unlocked or another thread's. A read lock records no owner, and a
/// spinlock no owner at all: held by someone, they are left alone.
#[cold]
#[inline(never)]
fn not_held(st: &mut thread::ThreadState, addr: usize, kind: LockKind) {
    if kind == LockKind::File || st.overflowed {
        return;
    }
    let tid = st.tid();
    // SAFETY: the program passed this lock to the unlock being made.
    let s = unsafe { crate::locks::state(addr, kind) };
    let what = if s.destroyed {
        MisuseKind::UseDestroyed
    } else if s.owner == tid || s.readers || s.locked != Some(false) && s.owner == 0 {
        return;
    } else if st.refused.0 == addr {
        MisuseKind::RelockIgnored
    } else {
        MisuseKind::UnlockNotHeld
    };
    let mut m = Misuse::of(what, addr, kind);
    m.owner = s.owner;
    if what == MisuseKind::RelockIgnored {
        m.other_stack = Some(st.refused.1);
        st.refused = (0, 0);
    }
    facts::misuse(st, m);
}

/// `init`: the address starts a new lock generation. Like the two below,
/// it takes the thread's state only when that changes something: a lock
/// made and destroyed in a loop is a lock-free lookup each.
#[inline(always)]
pub fn new_generation(addr: usize, real: impl FnOnce() -> c_int) -> c_int {
    if config::active() && !crate::locks::generation_changes_nothing(addr) {
        new_generation_slow(addr);
    }
    real()
}

#[cold]
#[inline(never)]
fn new_generation_slow(addr: usize) {
    if let Some(st) = thread::enter() {
        crate::locks::new_generation(addr);
        thread::leave(st);
    }
}

/// `pthread_mutex_init`, `pthread_rwlock_init`: a new generation, and
/// `site` is where the lock was made (a heap lock's name in reports).
#[inline(always)]
pub fn initialised(addr: usize, site: usize, real: impl FnOnce() -> c_int) -> c_int {
    if config::active() && !crate::locks::init_changes_nothing(addr, site as u64) {
        initialised_slow(addr, site);
    }
    real()
}

#[cold]
#[inline(never)]
fn initialised_slow(addr: usize, site: usize) {
    if let Some(st) = thread::enter() {
        crate::locks::initialised(addr, site as u64);
        thread::leave(st);
    }
}

/// `destroy`: a locked lock is a misuse (glibc refuses a locked mutex
/// with `EBUSY`, and destroys an rwlock or spinlock all the same); the
/// address starts a new lock generation.
#[inline(always)]
pub fn destroy(addr: usize, kind: LockKind, real: impl FnOnce() -> c_int) -> c_int {
    if config::active() {
        // SAFETY: the program passed this lock to the destroy being made.
        let s = unsafe { crate::locks::state(addr, kind) };
        let locked = s.locked == Some(true) && !s.destroyed;
        if locked || !crate::locks::generation_changes_nothing(addr) {
            destroy_slow(addr, kind, locked.then_some(s.owner));
        }
    }
    real()
}

/// [`destroy`] of a locked lock (`owner`: what its memory says), or one
/// whose new generation changes something.
#[cold]
#[inline(never)]
fn destroy_slow(addr: usize, kind: LockKind, owner: Option<u32>) {
    let Some(st) = thread::enter() else { return };
    if let Some(owner) = owner {
        let mut m = Misuse::of(MisuseKind::DestroyLocked, addr, kind);
        m.owner = owner;
        m.site = st
            .held()
            .iter()
            .rev()
            .find(|e| e.addr == addr)
            .map(|e| e.site);
        facts::misuse(st, m);
    }
    crate::locks::new_generation(addr);
    thread::leave(st);
}
