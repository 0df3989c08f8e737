//! `pthread_cond_{wait,timedwait,clockwait}`: the mutex is released while the
//! thread waits, and held again when the call returns.

use crate::real;
use crate::thread::{self, HeldEntry};
use core::ffi::{c_int, c_void};
use libc::timespec;

type P = *mut c_void;

/// Takes the mutex off the held stack for the wait and puts it back after.
/// If the wait is cancelled, the thread unwinds holding the mutex without an
/// entry: its cleanup handler's unlock then finds nothing to pop.
#[inline(always)]
fn waiting(m: P, real: impl FnOnce() -> c_int) -> c_int {
    let released: Option<HeldEntry> = thread::enter().and_then(|st| {
        let e = st.pop_held(m as usize);
        thread::leave(st);
        e
    });
    let r = real();
    if let Some(e) = released {
        if let Some(st) = thread::enter() {
            st.push_held(e);
            thread::leave(st);
        }
    }
    r
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_cond_wait(c: P, m: P) -> c_int {
    waiting(m, || unsafe { real::pthread_cond_wait()(c, m) })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_cond_timedwait(c: P, m: P, t: *const timespec) -> c_int {
    waiting(m, || unsafe { real::pthread_cond_timedwait()(c, m, t) })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_cond_clockwait(
    c: P,
    m: P,
    clock: c_int,
    t: *const timespec,
) -> c_int {
    waiting(m, || unsafe {
        real::pthread_cond_clockwait()(c, m, clock, t)
    })
}
