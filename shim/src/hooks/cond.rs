//! `pthread_cond_*`. A condition variable is a queue of signals: a wait
//! with no timeout receives from it (the mutex is released while the thread
//! waits, and held again when the call returns), `signal` and `broadcast`
//! send to it and never block. So a lock held across the wait, while the
//! only signaller takes that lock before it signals, is a cycle like a lock
//! held across a `recv` whose producer needs it. A timed wait returns by
//! itself: only its mutex is accounted for.

use super::io::end;
use crate::facts::{self, Misuse};
use crate::thread::{self, HeldEntry, ThreadState};
use crate::{locks, real};
use core::ffi::{c_int, c_void};
use holdcheck_format::{Channel, Direction, LockKind, MisuseKind};
use libc::timespec;

type P = *mut c_void;

/// The condition variable as a channel (its process is the trace's).
fn condvar(st: &mut ThreadState, c: P) -> Channel {
    Channel::Condvar {
        pid: 0,
        addr: c as u64,
        gen: st.object_gen(c as usize),
    }
}

/// Whether a wait with mutex `m` goes ahead: a mutex the caller does not
/// hold is a misuse, and glibc fails the wait at once (`EPERM`) for every
/// kind of mutex that checks its owner (a destroyed one: `EINVAL`); a
/// normal mutex is unlocked blindly and the wait goes on. A condition
/// variable waited with a mutex other than the one it was first waited
/// with is a misuse too.
fn checked(st: &mut ThreadState, c: P, m: P, gen: u32) -> bool {
    let (c, m) = (c as usize, m as usize);
    let tid = st.tid();
    // SAFETY: the program passed this mutex to the wait being made.
    let s = unsafe { locks::state(m, LockKind::Mutex) };
    let mut goes_ahead = true;
    if s.destroyed {
        facts::misuse(st, Misuse::of(MisuseKind::UseDestroyed, m, LockKind::Mutex));
        goes_ahead = false;
    } else if s.owner != tid {
        let mut x = Misuse::of(MisuseKind::CondWaitUnheld, m, LockKind::Mutex);
        x.condvar = Some(c);
        x.owner = s.owner;
        facts::misuse(st, x);
        // SAFETY: as above.
        goes_ahead = !unsafe { locks::mutex_checks_owner(m) };
    }
    // Valid while the condition variable keeps its generation.
    let epoch = locks::object_epoch();
    let slot = &mut st.condvar_mutexes[(c >> 6) % thread::CONDVAR_GENS];
    if *slot != (c, epoch, m) {
        *slot = (c, epoch, m);
        if let Some(first) = locks::cond_mutex(c, gen, m, tid) {
            let mut x = Misuse::of(MisuseKind::CondTwoMutexes, m, LockKind::Mutex);
            x.condvar = Some(c);
            x.other = Some(first);
            facts::misuse(st, x);
        }
    }
    goes_ahead
}

/// Takes the mutex off the held stack for the wait and puts it back after;
/// a wait with no timeout is a receive from the condition variable.
/// If the wait is cancelled, the thread unwinds holding the mutex without an
/// entry: its cleanup handler's unlock then finds nothing to pop.
#[inline(always)]
fn waiting(c: P, m: P, forever: bool, real: impl FnOnce() -> c_int) -> c_int {
    let mut ctx = None;
    let released: Option<(HeldEntry, thread::HeldExtra)> = thread::enter().and_then(|st| {
        let _errno = crate::sys::ErrnoGuard::save();
        let chan = condvar(st, c);
        let Channel::Condvar { gen, .. } = chan else {
            unreachable!("condvar() makes a condition variable")
        };
        if !checked(st, c, m, gen) {
            // The call fails at once: no wait, and the mutex stays as it is.
            thread::leave(st);
            return None;
        }
        let e = st.take_held(m as usize);
        if forever {
            ctx = Some(facts::call_begin_on(
                st,
                -1,
                chan,
                Direction::Recv,
                "pthread_cond_wait",
            ));
        }
        thread::leave(st);
        e
    });
    let r = real();
    end(ctx);
    if let Some((mut e, mut x)) = released {
        if let Some(st) = thread::enter() {
            e.retaken = true;
            if st.push_held(e) && crate::config::extras() != 0 {
                // Held again from now: the wait is no part of the hold.
                if x.since != 0 {
                    x.since = crate::sys::monotonic_ns();
                }
                st.set_top_extra(x);
            }
            thread::leave(st);
        }
    }
    r
}

/// A signal: the locks this thread took since its previous signal are
/// what a waiter may wait for.
#[inline(always)]
fn signalling(c: P, call: &'static str, real: impl FnOnce() -> c_int) -> c_int {
    if let Some(st) = thread::enter() {
        let addr = c as u64;
        let chan = move |gen| Channel::Condvar { pid: 0, addr, gen };
        facts::nonblocking_send_on(st, c as usize, chan, call);
        thread::leave(st);
    }
    real()
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_cond_wait(c: P, m: P) -> c_int {
    waiting(c, m, true, move || unsafe {
        real::pthread_cond_wait()(c, m)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_cond_timedwait(c: P, m: P, t: *const timespec) -> c_int {
    waiting(c, m, t.is_null(), move || unsafe {
        real::pthread_cond_timedwait()(c, m, t)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_cond_clockwait(
    c: P,
    m: P,
    clock: c_int,
    t: *const timespec,
) -> c_int {
    waiting(c, m, t.is_null(), move || unsafe {
        real::pthread_cond_clockwait()(c, m, clock, t)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_cond_signal(c: P) -> c_int {
    signalling(c, "pthread_cond_signal", move || unsafe {
        real::pthread_cond_signal()(c)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_cond_broadcast(c: P) -> c_int {
    signalling(c, "pthread_cond_broadcast", move || unsafe {
        real::pthread_cond_broadcast()(c)
    })
}

// `init` and `destroy` start a new condition variable at the address.
super::with_caller_pc! {
    fn pthread_cond_init(c: P, attr: *const c_void) -> c_int => init, "rdx";
}

/// A new condition variable at the address, made here (its class: see
/// `facts::object_class_key`).
unsafe extern "C-unwind" fn init(c: P, attr: *const c_void, site: usize) -> c_int {
    super::locking::initialised(c as usize, site, move || unsafe {
        real::pthread_cond_init()(c, attr)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_cond_destroy(c: P) -> c_int {
    super::locking::new_generation(c as usize, move || unsafe {
        real::pthread_cond_destroy()(c)
    })
}
