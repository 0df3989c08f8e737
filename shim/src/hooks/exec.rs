//! Starting programs: `execve` and its siblings, `posix_spawn(p)`. A
//! program started with an environment that drops the shim (no
//! `LD_PRELOAD` of it, another `HOLDCHECK_DIR`), or a set-uid one (the
//! loader ignores `LD_PRELOAD`), runs untraced: the trace says so, and the
//! report names it. The call itself is always passed through unchanged.

use crate::real;
use crate::recorder::RECORDER;
use crate::sys::ErrnoGuard;
use crate::thread;
use core::ffi::{c_char, c_int, CStr};
use holdcheck_format::Record;
use std::os::unix::fs::MetadataExt;

extern "C" {
    static environ: *const *const c_char;
}

/// The strings of a NULL-terminated array (at most `limit`).
///
/// # Safety
/// `v` is null or a NULL-terminated array of C strings.
unsafe fn strings(v: *const *const c_char, limit: usize) -> Vec<String> {
    let mut out = Vec::new();
    if v.is_null() {
        return out;
    }
    let mut i = 0;
    while i < limit && !(*v.add(i)).is_null() {
        out.push(CStr::from_ptr(*v.add(i)).to_string_lossy().into_owned());
        i += 1;
    }
    out
}

/// The value of `name=` in an environment array.
fn env_value<'a>(env: &'a [String], name: &str) -> Option<&'a str> {
    env.iter()
        .find_map(|e| e.strip_prefix(name)?.strip_prefix('='))
}

/// Why a program started with `env` will not be traced, if it will not.
fn untraced_reason(program: &str, env: &[String]) -> Option<String> {
    let preload = env_value(env, "LD_PRELOAD").unwrap_or("");
    if !preload.contains("libholdcheck") {
        return Some("its environment has no LD_PRELOAD of the shim".into());
    }
    let ours = std::env::var("HOLDCHECK_DIR").unwrap_or_default();
    if env_value(env, "HOLDCHECK_DIR").unwrap_or("") != ours {
        return Some("its environment moves HOLDCHECK_DIR".into());
    }
    // The loader ignores LD_PRELOAD (but for set-uid libraries in system
    // directories) when a program changes credentials.
    if let Ok(m) = std::fs::metadata(program) {
        // SAFETY: no preconditions.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let setuid = m.mode() & libc::S_ISUID != 0 && m.uid() != euid;
        let setgid = m.mode() & libc::S_ISGID != 0 && m.gid() != egid;
        if setuid || setgid {
            return Some("it is set-uid or set-gid: the loader ignores LD_PRELOAD".into());
        }
    }
    None
}

/// Records the start of a program that will run untraced. `program` is the
/// path or (for the `p` variants) the name searched in PATH.
///
/// # Safety
/// The pointers are the caller's arguments to an exec or spawn call.
unsafe fn note_start(
    call: &str,
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
            RECORDER.lock().write(&Record::Untraced {
                call: call.to_string(),
                program,
                argv: strings(argv, 64),
                reason,
            });
        }
    }
    thread::leave(st);
}

#[no_mangle]
pub unsafe extern "C-unwind" fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    note_start("execve", path, argv, envp);
    real::execve()(path, argv, envp)
}

#[no_mangle]
pub unsafe extern "C-unwind" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    note_start("execv", path, argv, environ);
    real::execv()(path, argv)
}

#[no_mangle]
pub unsafe extern "C-unwind" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    note_start("execvp", file, argv, environ);
    real::execvp()(file, argv)
}

#[no_mangle]
pub unsafe extern "C-unwind" fn execvpe(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    note_start("execvpe", file, argv, envp);
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
    note_start("posix_spawn", path, argv, envp);
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
    note_start("posix_spawnp", file, argv, envp);
    real::posix_spawnp()(pid, file, actions, attr, argv, envp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_start_without_the_shim_in_its_environment_is_untraced() {
        let keep = |dir: &str| {
            vec![
                "PATH=/bin".to_string(),
                "LD_PRELOAD=/x/libholdcheck.so".to_string(),
                format!("HOLDCHECK_DIR={dir}"),
            ]
        };
        let ours = std::env::var("HOLDCHECK_DIR").unwrap_or_default();
        assert_eq!(untraced_reason("/bin/true", &keep(&ours)), None);
        assert!(untraced_reason("/bin/true", &["PATH=/bin".to_string()])
            .unwrap()
            .contains("LD_PRELOAD"));
        assert!(untraced_reason("/bin/true", &keep("/elsewhere"))
            .unwrap()
            .contains("HOLDCHECK_DIR"));
    }
}
