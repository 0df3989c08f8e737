//! Whether a program this process starts will run with the shim: the
//! environment it gets must keep `LD_PRELOAD` of the shim and the same
//! `HOLDCHECK_DIR`, and the loader must honour them (not set-uid).

use core::ffi::{c_char, CStr};
use std::os::unix::fs::MetadataExt;

/// The strings of a NULL-terminated array (at most `limit`).
///
/// # Safety
/// `v` is null or a NULL-terminated array of C strings.
pub unsafe fn strings(v: *const *const c_char, limit: usize) -> Vec<String> {
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
pub fn untraced_reason(program: &str, env: &[String]) -> Option<String> {
    let preload = env_value(env, "LD_PRELOAD").unwrap_or("");
    if !preload.contains("libholdcheck") {
        return Some("its environment has no LD_PRELOAD of the shim".into());
    }
    let ours = std::env::var("HOLDCHECK_DIR").unwrap_or_default();
    if env_value(env, "HOLDCHECK_DIR").unwrap_or("") != ours {
        return Some("its environment moves HOLDCHECK_DIR".into());
    }
    // A process that gave up its user (a daemon's worker dropping root)
    // starts a program that cannot create its trace in the run's
    // directory (root's alone): it runs untraced, and says so only on its
    // stderr. (A default directory is each user's own: it gets one.)
    let cfg = crate::config::get();
    if !cfg.dir_is_default {
        use rustix::fs::{accessat, Access, AtFlags, CWD};
        let (dir, can) = (cfg.dir.as_str(), Access::WRITE_OK | Access::EXEC_OK);
        if accessat(CWD, dir, can, AtFlags::EACCESS).is_err() {
            // SAFETY: no preconditions.
            let euid = unsafe { libc::geteuid() };
            return Some(format!(
                "it runs as uid {euid}, which cannot create its trace in {dir}"
            ));
        }
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
