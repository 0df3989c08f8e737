//! `dlclose`: the static locks of a library that was unloaded end with it.
//! Loaded again (often at the same address), its locks are new ones, not
//! the previous load's: what each load ordered is kept apart.

use crate::{locks, real, stack, thread};
use core::ffi::{c_int, c_void};

#[no_mangle]
pub unsafe extern "C-unwind" fn dlclose(handle: *mut c_void) -> c_int {
    // On every path: a fork child's unwinder must know, even of a dlclose
    // the hook otherwise passes through (and of one another thread of its
    // parent was making at the fork).
    stack::unloading();
    let Some(st) = thread::enter() else {
        let r = real::dlclose()(handle);
        stack::unloaded();
        return r;
    };
    let before = {
        let _errno = crate::sys::ErrnoGuard::save();
        stack::modules()
    };
    thread::leave(st);
    let r = real::dlclose()(handle);
    stack::unloaded();
    if let Some(st) = thread::enter() {
        let _errno = crate::sys::ErrnoGuard::save();
        let after = stack::modules();
        for m in before
            .iter()
            .filter(|m| !after.iter().any(|a| a.base == m.base && a.path == m.path))
        {
            for &(start, end) in &m.segments {
                locks::freed(start as usize, (end - start) as usize);
            }
        }
        thread::leave(st);
    }
    r
}
