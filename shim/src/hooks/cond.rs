//! `pthread_cond_*`. A condition variable is a queue of signals: a wait
//! with no timeout receives from it (the mutex is released while the thread
//! waits, and held again when the call returns), `signal` and `broadcast`
//! send to it and never block. So a lock held across the wait, while the
//! only signaller takes that lock before it signals, is a cycle like a lock
//! held across a `recv` whose producer needs it. A timed wait returns by
//! itself: only its mutex is accounted for.

use super::io::end;
use crate::facts;
use crate::real;
use crate::thread::{self, HeldEntry, ThreadState};
use core::ffi::{c_int, c_void};
use holdcheck_format::{Channel, Direction};
use libc::timespec;

type P = *mut c_void;

/// The condition variable as a channel (its process is the trace's).
fn condvar(st: &mut ThreadState, c: P) -> Channel {
    let addr = c as usize;
    let epoch = crate::locks::epoch();
    let slot = &mut st.condvar_gens[(addr >> 6) % thread::CONDVAR_GENS];
    if slot.0 != addr || slot.1 != epoch {
        *slot = (addr, epoch, crate::locks::lock_ref(addr).gen);
    }
    Channel::Condvar {
        pid: 0,
        addr: addr as u64,
        gen: slot.2,
    }
}

/// Takes the mutex off the held stack for the wait and puts it back after;
/// a wait with no timeout is a receive from the condition variable.
/// If the wait is cancelled, the thread unwinds holding the mutex without an
/// entry: its cleanup handler's unlock then finds nothing to pop.
#[inline(always)]
fn waiting(c: P, m: P, forever: bool, real: impl FnOnce() -> c_int) -> c_int {
    let mut ctx = None;
    let released: Option<HeldEntry> = thread::enter().and_then(|st| {
        let e = st.pop_held(m as usize);
        if forever {
            let _errno = crate::sys::ErrnoGuard::save();
            let chan = condvar(st, c);
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
    if let Some(e) = released {
        if let Some(st) = thread::enter() {
            st.push_held(e);
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
        let _errno = crate::sys::ErrnoGuard::save();
        let chan = condvar(st, c);
        facts::nonblocking_send_on(st, chan, call);
        thread::leave(st);
    }
    real()
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_cond_wait(c: P, m: P) -> c_int {
    waiting(c, m, true, || unsafe { real::pthread_cond_wait()(c, m) })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_cond_timedwait(c: P, m: P, t: *const timespec) -> c_int {
    waiting(c, m, t.is_null(), || unsafe {
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
    waiting(c, m, t.is_null(), || unsafe {
        real::pthread_cond_clockwait()(c, m, clock, t)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_cond_signal(c: P) -> c_int {
    signalling(c, "pthread_cond_signal", || unsafe {
        real::pthread_cond_signal()(c)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_cond_broadcast(c: P) -> c_int {
    signalling(c, "pthread_cond_broadcast", || unsafe {
        real::pthread_cond_broadcast()(c)
    })
}

/// `init` and `destroy` start a new condition variable at the address.
#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_cond_init(c: P, attr: *const c_void) -> c_int {
    super::locking::new_generation(c as usize, || unsafe { real::pthread_cond_init()(c, attr) })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_cond_destroy(c: P) -> c_int {
    super::locking::new_generation(c as usize, || unsafe { real::pthread_cond_destroy()(c) })
}
