//! `pthread_rwlock_*`.

use super::locking::{acquire_blocking, acquire_try, destroy, initialised, release, FirstTry};
use crate::real;
use core::ffi::{c_int, c_void};
use holdcheck_format::{LockKind, Mode};
use libc::timespec;

type L = *mut c_void;

super::with_caller_pc! {
    fn pthread_rwlock_rdlock(l: L) -> c_int => rdlock, "rsi";
    fn pthread_rwlock_wrlock(l: L) -> c_int => wrlock, "rsi";
    fn pthread_rwlock_tryrdlock(l: L) -> c_int => tryrdlock, "rsi";
    fn pthread_rwlock_trywrlock(l: L) -> c_int => trywrlock, "rsi";
    fn pthread_rwlock_timedrdlock(l: L, t: *const timespec) -> c_int => timedrdlock, "rdx";
    fn pthread_rwlock_timedwrlock(l: L, t: *const timespec) -> c_int => timedwrlock, "rdx";
    fn pthread_rwlock_clockrdlock(l: L, c: c_int, t: *const timespec) -> c_int => clockrdlock, "rcx";
    fn pthread_rwlock_clockwrlock(l: L, c: c_int, t: *const timespec) -> c_int => clockwrlock, "rcx";
    fn pthread_rwlock_init(l: L, attr: *const c_void) -> c_int => init, "rdx";
}

const K: LockKind = LockKind::Rwlock;

unsafe extern "C-unwind" fn rdlock(l: L, site: usize) -> c_int {
    acquire_blocking(
        l as usize,
        K,
        Mode::Read,
        site,
        ReadFirst,
        move |a| unsafe { real::pthread_rwlock_rdlock()(a as L) },
    )
}

unsafe extern "C-unwind" fn wrlock(l: L, site: usize) -> c_int {
    acquire_blocking(
        l as usize,
        K,
        Mode::Write,
        site,
        WriteFirst,
        move |a| unsafe { real::pthread_rwlock_wrlock()(a as L) },
    )
}

unsafe extern "C-unwind" fn tryrdlock(l: L, site: usize) -> c_int {
    acquire_try(l as usize, K, Mode::Read, site, move || unsafe {
        real::pthread_rwlock_tryrdlock()(l)
    })
}

unsafe extern "C-unwind" fn trywrlock(l: L, site: usize) -> c_int {
    acquire_try(l as usize, K, Mode::Write, site, move || unsafe {
        real::pthread_rwlock_trywrlock()(l)
    })
}

unsafe extern "C-unwind" fn timedrdlock(l: L, t: *const timespec, site: usize) -> c_int {
    acquire_blocking(
        l as usize,
        K,
        Mode::Read,
        site,
        ReadFirst,
        move |a| unsafe { real::pthread_rwlock_timedrdlock()(a as L, t) },
    )
}

unsafe extern "C-unwind" fn timedwrlock(l: L, t: *const timespec, site: usize) -> c_int {
    acquire_blocking(
        l as usize,
        K,
        Mode::Write,
        site,
        WriteFirst,
        move |a| unsafe { real::pthread_rwlock_timedwrlock()(a as L, t) },
    )
}

unsafe extern "C-unwind" fn clockrdlock(l: L, c: c_int, t: *const timespec, site: usize) -> c_int {
    acquire_blocking(
        l as usize,
        K,
        Mode::Read,
        site,
        ReadFirst,
        move |a| unsafe { real::pthread_rwlock_clockrdlock()(a as L, c, t) },
    )
}

unsafe extern "C-unwind" fn clockwrlock(l: L, c: c_int, t: *const timespec, site: usize) -> c_int {
    acquire_blocking(
        l as usize,
        K,
        Mode::Write,
        site,
        WriteFirst,
        move |a| unsafe { real::pthread_rwlock_clockwrlock()(a as L, c, t) },
    )
}

/// The try a blocking read lock begins with: in place in a read phase with
/// no primary writer (`locks::rwlock_read_in_place`), else glibc's.
#[derive(Clone, Copy)]
struct ReadFirst;

impl FirstTry for ReadFirst {
    #[inline(always)]
    fn in_place(&self, addr: usize, _tid: u32) -> Option<c_int> {
        // SAFETY: the rwlock the program passed to its read lock.
        unsafe { crate::locks::rwlock_read_in_place(addr) }
    }

    #[inline(always)]
    fn call(self, addr: usize, _tid: u32) -> c_int {
        // SAFETY: as above.
        unsafe { real::pthread_rwlock_tryrdlock()(addr as L) }
    }
}

/// The try a blocking write lock begins with: in place when the lock is
/// idle (`locks::rwlock_write_in_place`), else glibc's.
#[derive(Clone, Copy)]
struct WriteFirst;

impl FirstTry for WriteFirst {
    #[inline(always)]
    fn in_place(&self, addr: usize, tid: u32) -> Option<c_int> {
        // SAFETY: the rwlock the program passed to its write lock; `tid`
        // this thread's (the hooks pass it so).
        unsafe { crate::locks::rwlock_write_in_place(addr, tid) }
    }

    #[inline(always)]
    fn call(self, addr: usize, _tid: u32) -> c_int {
        // SAFETY: the rwlock the program passed to its write lock.
        unsafe { real::pthread_rwlock_trywrlock()(addr as L) }
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_rwlock_unlock(l: L) -> c_int {
    release(
        l as usize,
        LockKind::Rwlock,
        // SAFETY: the rwlock the program unlocks.
        |a| unsafe { crate::locks::rwlock_read_unlock_in_place(a) },
        move || unsafe { real::pthread_rwlock_unlock()(l) },
    )
}

unsafe extern "C-unwind" fn init(l: L, attr: *const c_void, site: usize) -> c_int {
    initialised(l as usize, site, move || unsafe {
        real::pthread_rwlock_init()(l, attr)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_rwlock_destroy(l: L) -> c_int {
    destroy(l as usize, LockKind::Rwlock, move || unsafe {
        real::pthread_rwlock_destroy()(l)
    })
}
