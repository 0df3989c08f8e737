//! `pthread_setname_np`: a thread named by its creator after it already
//! recorded facts gets its new name in the trace.

use crate::real;
use crate::recorder::RECORDER;
use crate::sys::ErrnoGuard;
use crate::thread;
use core::ffi::{c_char, c_int, CStr};

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_setname_np(
    t: libc::pthread_t,
    name: *const c_char,
) -> c_int {
    let r = real::pthread_setname_np()(t, name);
    if r == 0 && !name.is_null() {
        if let Some(st) = thread::enter() {
            let _errno = ErrnoGuard::save();
            // The kernel keeps 15 bytes; so does the record.
            let bytes = CStr::from_ptr(name).to_bytes();
            let name = String::from_utf8_lossy(&bytes[..bytes.len().min(15)]);
            RECORDER.lock().renamed(t, &name);
            thread::leave(st);
        }
    }
    r
}
