//! File locks (`flock`, `fcntl` record locks) as locks of the wait-for
//! graph. A file lock is shared between processes, so its identity is the
//! file's: a hash of its device and inode (`file_lock_addr`), the
//! same address in every process. Record locks are taken for the whole
//! file (their ranges are not told apart).
//!
//! The shim remembers which descriptor holds which file lock, so a `close`
//! (which releases it) pops it from the held stack.

use crate::sync::ForkMutex;
use core::ffi::c_int;
use core::sync::atomic::{AtomicUsize, Ordering};
use holdcheck_format::file_lock_addr;
use rustix::fd::BorrowedFd;
use std::collections::HashMap;

/// File paths by lock address, for the report.
static PATHS: ForkMutex<Option<HashMap<usize, String>>> = ForkMutex::new(None);
/// The file lock each descriptor holds.
static HELD_BY_FD: ForkMutex<Option<HashMap<c_int, usize>>> = ForkMutex::new(None);
/// How many descriptors hold a file lock: `close` looks no further while 0.
static HELD_COUNT: AtomicUsize = AtomicUsize::new(0);

/// The lock address of the file open on `fd`.
pub fn identity(fd: c_int) -> Option<usize> {
    // SAFETY: fd is the caller's descriptor for the duration of the call.
    let st = rustix::fs::fstat(unsafe { BorrowedFd::borrow_raw(fd) }).ok()?;
    let addr = file_lock_addr(st.st_dev, st.st_ino) as usize;
    let mut paths = PATHS.lock();
    let paths = paths.get_or_insert_with(HashMap::new);
    paths.entry(addr).or_insert_with(|| {
        std::fs::read_link(format!("/proc/self/fd/{fd}"))
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    Some(addr)
}

/// The path of the file a lock address stands for.
pub fn path_of(addr: usize) -> Option<String> {
    PATHS.lock().as_ref()?.get(&addr).cloned()
}

/// `fd` now holds the file lock `addr`.
pub fn held(fd: c_int, addr: usize) {
    if HELD_BY_FD
        .lock()
        .get_or_insert_with(HashMap::new)
        .insert(fd, addr)
        .is_none()
    {
        HELD_COUNT.fetch_add(1, Ordering::Relaxed);
    }
}

/// `fd` released its file lock (unlock or close): the lock, if it held one.
pub fn released(fd: c_int) -> Option<usize> {
    if HELD_COUNT.load(Ordering::Relaxed) == 0 {
        return None;
    }
    let addr = HELD_BY_FD.lock().as_mut()?.remove(&fd)?;
    HELD_COUNT.fetch_sub(1, Ordering::Relaxed);
    Some(addr)
}

/// Whether any descriptor holds a file lock (the `close` fast path).
pub fn any_held() -> bool {
    HELD_COUNT.load(Ordering::Relaxed) != 0
}

/// In a fork child: flock locks are shared with the parent's descriptors,
/// record locks are not inherited; the child starts with none.
///
/// # Safety
/// Only in a fork child (see `sync::ForkMutex::reset`).
pub unsafe fn after_fork_child() {
    PATHS.reset(None);
    HELD_BY_FD.reset(None);
    HELD_COUNT.store(0, Ordering::Relaxed);
}
