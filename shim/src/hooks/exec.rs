//! Starting programs: `execve` and its siblings, `posix_spawn(p)`. A
//! program started with an environment that drops the shim (no
//! `LD_PRELOAD` of it, another `HOLDCHECK_DIR`), or a set-uid one (the
//! loader ignores `LD_PRELOAD`), runs untraced: the trace says so, and the
//! report names it. The call itself is always passed through unchanged.

use crate::real;
use crate::recorder::recorder;
use crate::sys::ErrnoGuard;
use crate::thread;
use crate::untraced::{strings, untraced_reason};
use core::ffi::{c_char, c_int, CStr};
use holdcheck_format::Record;

extern "C" {
    static environ: *const *const c_char;
}

/// Records the start of a program that will run untraced. `program` is the
/// path or (for the `p` variants) the name searched in PATH. An exec
/// (`ends_image`) ends the other threads: the batch of records one of
/// them may be writing is waited for (not from a signal handler, which
/// passes through).
///
/// # Safety
/// The pointers are the caller's arguments to an exec or spawn call.
unsafe fn note_start(
    call: &str,
    ends_image: bool,
    program: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) {
    let Some(st) = thread::enter() else { return };
    let _errno = ErrnoGuard::save();
    if !program.is_null() {
        let program = CStr::from_ptr(program).to_string_lossy().into_owned();
        let env = strings(envp, 4096);
        if let Some(reason) = untraced_reason(&program, &env) {
            recorder().write_as_own_process(&Record::Untraced {
                call: call.to_string(),
                program,
                argv: strings(argv, 64),
                reason,
            });
        }
    }
    if ends_image {
        crate::recorder::drain();
    }
    thread::leave(st);
}

#[no_mangle]
pub unsafe extern "C-unwind" fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    note_start("execve", true, path, argv, envp);
    real::execve()(path, argv, envp)
}

#[no_mangle]
pub unsafe extern "C-unwind" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    note_start("execv", true, path, argv, environ);
    real::execv()(path, argv)
}

#[no_mangle]
pub unsafe extern "C-unwind" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    note_start("execvp", true, file, argv, environ);
    real::execvp()(file, argv)
}

#[no_mangle]
pub unsafe extern "C-unwind" fn execvpe(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    note_start("execvpe", true, file, argv, envp);
    real::execvpe()(file, argv, envp)
}

#[no_mangle]
pub unsafe extern "C-unwind" fn posix_spawn(
    pid: *mut libc::pid_t,
    path: *const c_char,
    actions: *mut core::ffi::c_void,
    attr: *mut core::ffi::c_void,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    note_start("posix_spawn", false, path, argv, envp);
    real::posix_spawn()(pid, path, actions, attr, argv, envp)
}

#[no_mangle]
pub unsafe extern "C-unwind" fn posix_spawnp(
    pid: *mut libc::pid_t,
    file: *const c_char,
    actions: *mut core::ffi::c_void,
    attr: *mut core::ffi::c_void,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    note_start("posix_spawnp", false, file, argv, envp);
    real::posix_spawnp()(pid, file, actions, attr, argv, envp)
}
