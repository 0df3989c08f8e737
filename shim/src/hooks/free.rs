//! `free` (and so C++ `operator delete`): the end of every lock that lived
//! in the freed memory. A `std::mutex` is never initialised nor destroyed
//! through pthreads, so without this two objects that never coexisted at
//! one heap address would be one lock, and their orders an inversion.
//!
//! The common case costs two atomic loads and the allocator's
//! `malloc_usable_size`; only a block on a page that holds a known lock
//! goes to the lock table.

use crate::{locks, real};
use core::ffi::c_void;
use core::sync::atomic::{AtomicBool, Ordering};

/// Set by the constructor when the next `free` and `malloc_usable_size`
/// are the same allocator's: a block's size is only asked of the
/// allocator that owns it.
static TRACKING: AtomicBool = AtomicBool::new(false);

/// Decides, at start-up (the loader's lock is free then), whether freed
/// blocks can be measured.
pub fn settle() {
    let same_object = |a: usize, b: usize| {
        // SAFETY: dladdr only reads the loader's tables; zeroed out-params.
        unsafe {
            let (mut x, mut y): (libc::Dl_info, libc::Dl_info) =
                (core::mem::zeroed(), core::mem::zeroed());
            libc::dladdr(a as *const c_void, &mut x) != 0
                && libc::dladdr(b as *const c_void, &mut y) != 0
                && x.dli_fbase == y.dli_fbase
        }
    };
    // The functions' own addresses (`real::free()` is a trampoline while
    // another thread is still resolving them).
    let f = real::resolvers::free();
    let m = real::resolvers::malloc_usable_size();
    TRACKING.store(same_object(f, m), Ordering::Relaxed);
}

#[no_mangle]
pub unsafe extern "C-unwind" fn free(p: *mut c_void) {
    if !p.is_null() && locks::any_known() && TRACKING.load(Ordering::Relaxed) {
        let len = real::malloc_usable_size()(p);
        if locks::may_hold_locks(p as usize, len) {
            let _errno = crate::sys::ErrnoGuard::save();
            locks::freed(p as usize, len);
        }
    }
    if let Some(f) = real::free_if_resolved() {
        f(p)
    }
}
