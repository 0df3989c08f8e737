//! `pthread_create`: the program's first thread starts the watchdog.
//!
//! This is the one place where starting a thread is as safe as it is for
//! the program: `pthread_create` allocates (the new thread's TLS) and may
//! need the loader's lock, so it must never run from a hook that a
//! `malloc` (jemalloc locks inside it) or a `dlopen` constructor reached.

use crate::real;
use core::ffi::{c_int, c_void};

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: *mut c_void,
    arg: *mut c_void,
) -> c_int {
    crate::watchdog::ensure_started();
    real::pthread_create()(thread, attr, start, arg)
}
