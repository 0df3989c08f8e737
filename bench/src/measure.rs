//! Running a program and measuring it: wall time, peak RSS, output.

use anyhow::{bail, Context, Result};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

pub struct Measured {
    pub wall: Duration,
    /// Peak resident set of the process (kB): its VmHWM, read while it
    /// runs. (wait4's ru_maxrss would count this benchmark's own memory:
    /// a child spawned with vfork semantics starts out in our address
    /// space.)
    pub max_rss_kb: u64,
    pub stdout: Vec<u8>,
}

/// What the shim needs in a command's environment.
pub fn under_shim(cmd: &mut Command, shim: &Path, trace_dir: &Path) {
    // Options of the caller's environment are kept (after ours).
    let mut options = String::from("verbosity=0");
    if let Ok(more) = std::env::var("HOLDCHECK_OPTIONS") {
        if !more.is_empty() {
            options = format!("{options}:{more}");
        }
    }
    cmd.env("LD_PRELOAD", shim)
        .env("HOLDCHECK_DIR", trace_dir)
        .env("HOLDCHECK_OPTIONS", options);
}

/// The command runs with the same address layout every time, as under
/// `setarch -R` (`personality(ADDR_NO_RANDOMIZE)`). Where a process's
/// stack, heap and libraries land swings a system call's cost: on this
/// project's machines a native socket round trip took either about 2.73
/// or 3.13 us, by process, from one run to the next, a swing four times
/// the budget of what the shim may add to it. Native, floor and shim runs
/// are all made so.
pub fn fixed_layout(cmd: &mut Command) -> &mut Command {
    use std::os::unix::process::CommandExt;
    // SAFETY: between fork and exec only personality(2) runs, which is
    // async-signal-safe and allocates nothing.
    unsafe {
        cmd.pre_exec(|| {
            let current = libc::personality(0xffff_ffff);
            if current != -1 {
                libc::personality(
                    current as libc::c_ulong | libc::ADDR_NO_RANDOMIZE as libc::c_ulong,
                );
            }
            Ok(())
        })
    }
}

/// Runs a command to completion; fails if it fails.
pub fn run(cmd: &mut Command) -> Result<Measured> {
    run_allowing(cmd, &[0])
}

/// Runs a command to completion; fails unless it exits with one of `codes`.
pub fn run_allowing(cmd: &mut Command, codes: &[i32]) -> Result<Measured> {
    let start = Instant::now();
    let child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("cannot start {:?}", cmd.get_program()))?;
    let pid = child.id() as libc::pid_t;
    // Read the output in threads while we wait for the process ourselves
    // (wait4 gives its rusage).
    let mut child = child;
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut out, &mut v).map(|_| v)
    });
    let err_t = std::thread::spawn(move || {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut err, &mut v).map(|_| v)
    });
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hwm_t = {
        let done = done.clone();
        std::thread::spawn(move || {
            let mut peak = 0u64;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                if let Some(kb) = vm_hwm(pid) {
                    peak = peak.max(kb);
                }
                std::thread::sleep(Duration::from_millis(2));
            }
            peak
        })
    };
    // Wait without reaping, so the last VmHWM can still be read.
    // SAFETY: a zeroed siginfo is a valid out-parameter; pid is our child.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOWAIT,
        );
    }
    let last = vm_hwm(pid);
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let peak = hwm_t.join().unwrap().max(last.unwrap_or(0));
    let mut status = 0;
    // SAFETY: a zeroed rusage is a valid out-parameter; pid is our child.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
    let wall = start.elapsed();
    std::mem::forget(child); // reaped above
    if r != pid {
        bail!("wait4: {}", std::io::Error::last_os_error());
    }
    let stdout = out_t.join().unwrap()?;
    let stderr = err_t.join().unwrap()?;
    let st = ExitStatus::from_raw(status);
    if !st.code().is_some_and(|c| codes.contains(&c)) {
        bail!(
            "{:?} failed ({st}): {}",
            cmd.get_program(),
            String::from_utf8_lossy(&stderr)
        );
    }
    Ok(Measured {
        wall,
        max_rss_kb: peak,
        stdout,
    })
}

/// A live process's peak resident set (kB), from /proc.
fn vm_hwm(pid: libc::pid_t) -> Option<u64> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// A fresh, private directory for traces.
pub fn trace_dir(base: &Path, name: &str) -> Result<std::path::PathBuf> {
    let d = base.join(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d)?;
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o700))?;
    Ok(d)
}

/// Total size of the files in a directory (its traces).
pub fn dir_bytes(d: &Path) -> u64 {
    std::fs::read_dir(d)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .sum()
}

/// Whether a program is on PATH.
pub fn have(program: &str) -> bool {
    Command::new("sh")
        .args(["-c", &format!("command -v {program}")])
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
