//! `pthread_spin_*`: a spinlock is a lock like a mutex (its waiters spin
//! instead of sleeping), so an inversion of two spinlocks is a deadlock
//! that burns two CPUs.

use super::locking::{acquire_blocking, acquire_try, destroy, new_generation, release};
use crate::real;
use core::ffi::{c_int, c_void};
use holdcheck_format::{LockKind, Mode};

type S = *mut c_void;

super::with_caller_pc! {
    fn pthread_spin_lock(s: S) -> c_int => lock, "rsi";
    fn pthread_spin_trylock(s: S) -> c_int => trylock, "rsi";
}

const W: Mode = Mode::Write;
const K: LockKind = LockKind::Spin;

unsafe extern "C-unwind" fn lock(s: S, site: usize) -> c_int {
    acquire_blocking(
        s as usize,
        K,
        W,
        site,
        move |a, _| unsafe { real::pthread_spin_trylock()(a as S) },
        move |a| unsafe { real::pthread_spin_lock()(a as S) },
    )
}

unsafe extern "C-unwind" fn trylock(s: S, site: usize) -> c_int {
    acquire_try(s as usize, K, W, site, move || unsafe {
        real::pthread_spin_trylock()(s)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_spin_unlock(s: S) -> c_int {
    release(
        s as usize,
        K,
        |_| false,
        move || unsafe { real::pthread_spin_unlock()(s) },
    )
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_spin_init(s: S, pshared: c_int) -> c_int {
    new_generation(s as usize, move || unsafe {
        real::pthread_spin_init()(s, pshared)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_spin_destroy(s: S) -> c_int {
    destroy(s as usize, K, move || unsafe {
        real::pthread_spin_destroy()(s)
    })
}
