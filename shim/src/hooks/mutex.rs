//! `pthread_mutex_*`.

use super::locking::{
    acquire_blocking, acquire_blocking_or_alone, acquire_try, destroy, initialised, release,
    FirstTry,
};
use crate::real;
use core::ffi::{c_int, c_void};
use holdcheck_format::{LockKind, Mode};
use libc::timespec;

type M = *mut c_void;

super::with_caller_pc! {
    fn pthread_mutex_lock(m: M) -> c_int => lock, "rsi";
    fn pthread_mutex_trylock(m: M) -> c_int => trylock, "rsi";
    fn pthread_mutex_timedlock(m: M, t: *const timespec) -> c_int => timedlock, "rdx";
    fn pthread_mutex_clocklock(m: M, c: c_int, t: *const timespec) -> c_int => clocklock, "rcx";
    fn pthread_mutex_init(m: M, attr: *const c_void) -> c_int => init, "rdx";
}

const W: Mode = Mode::Write;
const K: LockKind = LockKind::Mutex;

unsafe extern "C-unwind" fn lock(m: M, site: usize) -> c_int {
    acquire_blocking_or_alone(
        m as usize,
        K,
        W,
        site,
        // SAFETY: the program passed this mutex to its lock.
        |a| unsafe { crate::locks::mutex_lock_cannot_fail(a) },
        MutexFirst,
        move |a| unsafe { real::pthread_mutex_lock()(a as M) },
    )
}

unsafe extern "C-unwind" fn trylock(m: M, site: usize) -> c_int {
    acquire_try(m as usize, K, W, site, move || unsafe {
        real::pthread_mutex_trylock()(m)
    })
}

unsafe extern "C-unwind" fn timedlock(m: M, t: *const timespec, site: usize) -> c_int {
    acquire_blocking(m as usize, K, W, site, MutexFirst, move |a| unsafe {
        real::pthread_mutex_timedlock()(a as M, t)
    })
}

unsafe extern "C-unwind" fn clocklock(m: M, c: c_int, t: *const timespec, site: usize) -> c_int {
    acquire_blocking(m as usize, K, W, site, MutexFirst, move |a| unsafe {
        real::pthread_mutex_clocklock()(a as M, c, t)
    })
}

/// The try a blocking lock begins with: a normal mutex is tried in place
/// (`locks::mutex_try_in_place`), any other by glibc.
#[derive(Clone, Copy)]
struct MutexFirst;

impl FirstTry for MutexFirst {
    #[inline(always)]
    fn in_place(&self, addr: usize, tid: u32) -> Option<c_int> {
        // SAFETY: the mutex the program passed to its lock; `tid` this
        // thread's (the hooks pass it so).
        unsafe { crate::locks::mutex_try_in_place(addr, tid) }
    }

    /// glibc's trylock (the hooks call it where [`Self::in_place`] is
    /// None).
    #[inline(always)]
    fn call(self, addr: usize, _tid: u32) -> c_int {
        // SAFETY: the mutex the program passed to its lock.
        unsafe { real::pthread_mutex_trylock()(addr as M) }
    }

    #[inline(always)]
    fn alone(&self, addr: usize, tid: u32) -> bool {
        // SAFETY: as for `in_place`; the hooks call it only while the
        // process has one thread.
        unsafe { crate::locks::mutex_lock_alone(addr, tid) }
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_mutex_unlock(m: M) -> c_int {
    release(
        m as usize,
        K,
        // SAFETY: the mutex the program unlocks.
        |a| unsafe { crate::locks::mutex_unlock_in_place(a) },
        move || unsafe { real::pthread_mutex_unlock()(m) },
    )
}

unsafe extern "C-unwind" fn init(m: M, attr: *const c_void, site: usize) -> c_int {
    initialised(m as usize, site, move || unsafe {
        real::pthread_mutex_init()(m, attr)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_mutex_destroy(m: M) -> c_int {
    destroy(m as usize, K, move || unsafe {
        real::pthread_mutex_destroy()(m)
    })
}
