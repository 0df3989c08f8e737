//! What the shim and the analyzer must never do to a system: write through
//! a symlink planted in a shared directory, leave traces readable by
//! others, or touch a process they have no right to.

mod support;

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};
use std::time::Duration;
use support::*;

fn shim() -> String {
    let (code, path, _) = holdcheck(&["shim-path"], Duration::from_secs(30));
    assert_eq!(code, 0);
    path.trim().to_string()
}

/// A copy of the shim that another user can load: `shim-path` may point
/// into root's private `~/.cache` (where the embedded copy is extracted).
fn shim_readable_by_all() -> std::path::PathBuf {
    let dir = work_dir("shared-shim");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let copy = dir.join("libholdcheck.so");
    std::fs::copy(shim(), &copy).unwrap();
    std::fs::set_permissions(&copy, std::fs::Permissions::from_mode(0o644)).unwrap();
    copy
}

#[test]
fn traces_are_private_and_a_planted_symlink_is_never_followed() {
    let dir = work_dir("symlink");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    let victim = dir.join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    // A shell that waits, so its pid is known before the traced program
    // (exec'd in its place, same pid) starts; the shim is only in the
    // exec'd program's environment.
    let mut sh = Command::new("sh")
        .arg("-c")
        .arg("read go; LD_PRELOAD=\"$0\" exec \"$1\" --light")
        .arg(shim())
        .arg(examples().join("warnd"))
        .env("HOLDCHECK_DIR", &dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let pid = sh.id();
    // Every name the shim could pick for that pid points at the victim.
    for n in 0..4 {
        std::os::unix::fs::symlink(&victim, dir.join(format!("holdcheck.{pid}.{n}.trace")))
            .unwrap();
    }
    writeln!(sh.stdin.take().unwrap(), "go").unwrap();
    let st = sh.wait().unwrap();
    assert!(st.success(), "the program runs on");
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "written through a symlink"
    );
    // The trace went to a name of its own, private.
    let traces: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_file() && !p.is_symlink() && p.to_string_lossy().ends_with(".trace"))
        .collect();
    assert_eq!(traces.len(), 1, "{traces:?}");
    let mode = std::fs::metadata(&traces[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "{}", traces[0].display());
}

#[test]
fn a_default_trace_directory_that_is_not_private_is_refused() {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run as another user");
        return;
    }
    // User nobody's default directory, planted world-writable by another
    // user (root here) before nobody's program runs.
    let dir = std::path::Path::new("/tmp/holdcheck-65534");
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir(dir).unwrap();
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    // The shim only in the program nobody runs: in setpriv (run by root)
    // it would leave root's trace in /tmp/holdcheck-0.
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .args(["sh", "-c", "LD_PRELOAD=\"$0\" exec \"$1\""])
        .arg(shim_readable_by_all())
        .arg(examples().join("abba"))
        .env_remove("HOLDCHECK_DIR")
        .output()
        .expect("setpriv (util-linux) runs");
    let written = std::fs::read_dir(dir).unwrap().count();
    let _ = std::fs::remove_dir_all(dir);
    assert!(out.status.success(), "the program runs on");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("/tmp/holdcheck-65534"), "{err}");
    assert_eq!(written, 0, "nothing written in it");
}

#[test]
fn inspect_without_the_right_to_a_process_says_so_and_touches_nothing() {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to run inspect as another user");
        return;
    }
    let mut target = Command::new(examples().join("idle"))
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(200));
    let out = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
        .arg(holdcheck_bin())
        .args(["inspect", "--stacks", &target.id().to_string()])
        .output()
        .expect("setpriv (util-linux) runs");
    let _ = target.kill();
    let _ = target.wait();
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("permission") || err.contains("Permission"),
        "says why: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}
