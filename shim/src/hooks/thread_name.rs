//! `pthread_setname_np` and `prctl(PR_SET_NAME)`: a thread named after it
//! already recorded facts gets its new name in the trace.

use crate::real;
use crate::recorder::recorder;
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
            recorder().renamed(t, &name);
            thread::leave(st);
        }
    }
    r
}

#[no_mangle]
pub unsafe extern "C-unwind" fn prctl(
    option: c_int,
    a2: libc::c_ulong,
    a3: libc::c_ulong,
    a4: libc::c_ulong,
    a5: libc::c_ulong,
) -> c_int {
    let r = real::prctl()(option, a2, a3, a4, a5);
    if r == 0 && option == libc::PR_SET_NAME && a2 != 0 {
        if let Some(st) = thread::enter() {
            let _errno = ErrnoGuard::save();
            // PR_SET_NAME names the calling thread.
            let self_thread = libc::pthread_self();
            let bytes = CStr::from_ptr(a2 as *const c_char).to_bytes();
            let name = String::from_utf8_lossy(&bytes[..bytes.len().min(15)]);
            recorder().renamed(self_thread, &name);
            thread::leave(st);
        }
    }
    r
}
