//! `holdcheck run`: runs a command with the shim preloaded and a fresh trace
//! directory, ends it (and its whole process group) on a timeout or Ctrl-C,
//! and leaves the traces for the report.

use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct RunOptions {
    pub command: Vec<OsString>,
    pub out: Option<PathBuf>,
    pub timeout: Option<Duration>,
}

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    Signalled(i32),
    /// Killed by holdcheck at the timeout.
    TimedOut,
    /// Killed by holdcheck after Ctrl-C / SIGTERM.
    Interrupted,
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Exited(c) => write!(f, "exited with status {c}"),
            Ending::Signalled(s) => write!(f, "was killed by signal {s}"),
            Ending::TimedOut => write!(f, "was still running at the timeout and was killed"),
            Ending::Interrupted => write!(f, "was interrupted and killed"),
        }
    }
}

impl Ending {
    pub fn info(&self) -> (&'static str, Option<i32>) {
        match self {
            Ending::Exited(c) => ("exited", Some(*c)),
            Ending::Signalled(s) => ("signalled", Some(*s)),
            Ending::TimedOut => ("timed-out", None),
            Ending::Interrupted => ("interrupted", None),
        }
    }
}

pub struct Outcome {
    pub dir: PathBuf,
    pub ending: Ending,
}

static INTERRUPTED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_interrupt(_: libc::c_int) {
    INTERRUPTED.store(true, Ordering::SeqCst);
}

/// A new private trace directory (the given one, which must hold no traces
/// yet, or a fresh one under the temporary directory).
pub fn trace_dir(out: Option<&Path>) -> Result<PathBuf> {
    match out {
        Some(d) => {
            std::fs::create_dir_all(d)
                .with_context(|| format!("cannot create trace directory {}", d.display()))?;
            if !crate::trace::trace_files(d)?.is_empty() {
                bail!(
                    "{} already holds traces of an earlier run; give --out an empty directory",
                    d.display()
                );
            }
            Ok(std::fs::canonicalize(d).unwrap_or_else(|_| d.to_path_buf()))
        }
        None => {
            let base = std::env::temp_dir();
            for n in 0..1000 {
                let d = base.join(format!("holdcheck-run-{}-{n}", std::process::id()));
                match std::fs::DirBuilder::new().mode(0o700).create(&d) {
                    Ok(()) => return Ok(d),
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot create {}", d.display()))
                    }
                }
            }
            bail!("cannot create a trace directory in {}", base.display())
        }
    }
}

/// Runs the command under the shim and waits for it (or the timeout).
pub fn run(opts: &RunOptions) -> Result<Outcome> {
    let Some((program, args)) = opts.command.split_first() else {
        bail!("no command given: holdcheck run [OPTIONS] -- COMMAND [ARGS...]");
    };
    let shim = crate::shim::locate()?;
    let dir = trace_dir(opts.out.as_deref())?;
    let _ = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700));

    let mut preload = OsString::from(&shim);
    if let Some(existing) = std::env::var_os("LD_PRELOAD").filter(|p| !p.is_empty()) {
        preload.push(":");
        preload.push(existing);
    }
    let mut options = OsString::from("verbosity=0");
    if let Some(user) = std::env::var_os("HOLDCHECK_OPTIONS").filter(|p| !p.is_empty()) {
        options.push(":");
        options.push(user);
    }
    // Orphans of the command (its children, once it is gone) come to us,
    // so the whole tree is reaped, not left as zombies.
    // SAFETY: a plain prctl on this process.
    unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .env("LD_PRELOAD", preload)
        .env("HOLDCHECK_DIR", &dir)
        .env("HOLDCHECK_OPTIONS", options)
        // Its own process group: the whole tree can be ended at once.
        .process_group(0);
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", program.to_string_lossy()))?;
    let pid = child.id() as libc::pid_t;

    // SAFETY: the handler only stores to an atomic.
    unsafe {
        libc::signal(
            libc::SIGINT,
            on_interrupt as *const () as libc::sighandler_t,
        );
        libc::signal(
            libc::SIGTERM,
            on_interrupt as *const () as libc::sighandler_t,
        );
    }
    let deadline = opts.timeout.map(|t| Instant::now() + t);
    let mut killed = None;
    loop {
        if exited_unreaped(pid) {
            break;
        }
        if INTERRUPTED.load(Ordering::SeqCst) {
            killed = Some(Ending::Interrupted);
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            killed = Some(Ending::TimedOut);
        }
        if killed.is_some() {
            // What the group waits for, across its processes, while it
            // still waits.
            if let Err(e) = crate::inspect::snapshot_group(pid as u32, &dir) {
                eprintln!("holdcheck: no snapshot of the hung processes: {e:#}");
            }
            kill_group(pid);
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    // Whatever the command left running in its group goes too, before the
    // leader is reaped (so the group id cannot be reused meanwhile).
    kill_group(pid);
    let status = reap(pid)?;
    reap_orphans();
    // SAFETY: restoring the default dispositions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
    }
    std::mem::forget(child); // reaped above
    let ending = killed.unwrap_or(status);
    Ok(Outcome { dir, ending })
}

/// Whether the child has exited, without reaping it.
fn exited_unreaped(pid: libc::pid_t) -> bool {
    // SAFETY: a zeroed siginfo_t is a valid out-parameter.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            libc::WEXITED | libc::WNOHANG | libc::WNOWAIT,
        );
        r == 0 && info.si_pid() != 0
    }
}

/// Reaps the command's descendants that outlived it (killed with its
/// group, reparented to us), for up to a second: one that left the group
/// and still runs is not waited for.
fn reap_orphans() {
    let deadline = Instant::now() + Duration::from_secs(1);
    loop {
        let mut status = 0;
        // SAFETY: waiting for any child of ours, without blocking.
        let r = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if r > 0 {
            continue;
        }
        if r < 0 || Instant::now() >= deadline {
            return; // ECHILD: none left
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn kill_group(pid: libc::pid_t) {
    // SAFETY: signalling our own child's process group.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
}

fn reap(pid: libc::pid_t) -> Result<Ending> {
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child.
        let r = unsafe { libc::waitpid(pid, &mut status, 0) };
        if r == pid {
            break;
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e).context("waitpid");
        }
    }
    Ok(if libc::WIFEXITED(status) {
        Ending::Exited(libc::WEXITSTATUS(status))
    } else {
        Ending::Signalled(libc::WTERMSIG(status))
    })
}
