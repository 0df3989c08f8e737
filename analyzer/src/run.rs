//! `holdcheck run`: runs a command with the shim preloaded and a fresh trace
//! directory, ends it (and its whole process group) on a timeout or Ctrl-C,
//! and leaves the traces for the report.

use anyhow::{bail, Context, Result};
use std::ffi::OsString;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

pub struct RunOptions {
    pub command: Vec<OsString>,
    pub out: Option<PathBuf>,
    pub timeout: Option<Duration>,
    /// Do not end the command when the watchdog reports a deadlock.
    pub keep_running: bool,
    /// Where the command's standard output and error go instead of ours
    /// (`--repeat` on a terminal relays them, see `repeat`).
    pub output: Option<std::sync::Arc<std::os::fd::OwnedFd>>,
    /// More environment for the command (`confirm`'s plan).
    pub env: Vec<(OsString, OsString)>,
    /// `confirm`: true once the steered threads were let go; the command
    /// then has [`SETTLE`] to deadlock (and be ended) or finish.
    pub released: Option<Box<dyn Fn() -> bool>>,
}

/// How long a command runs on after `confirm` released its steered threads
/// (the watchdog looks once a second; a cycle across processes is seen by
/// the snapshot at the end).
pub const SETTLE: Duration = Duration::from_secs(4);

/// How the command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    Exited(i32),
    Signalled(i32),
    /// Killed by holdcheck at the timeout.
    TimedOut,
    /// Killed by holdcheck after Ctrl-C / SIGTERM.
    Interrupted,
    /// Killed by holdcheck once the shim's watchdog reported a deadlock:
    /// nothing in it could ever move again.
    Deadlocked,
    /// Killed by holdcheck once every thread of the group was blocked in a
    /// wait only another of them could end (seen from outside).
    Hung,
}

impl std::fmt::Display for Ending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Ending::Exited(c) => write!(f, "exited with status {c}"),
            Ending::Signalled(s) => write!(f, "was killed by signal {s}"),
            Ending::TimedOut => write!(f, "was still running at the timeout and was killed"),
            Ending::Interrupted => write!(f, "was interrupted and killed"),
            Ending::Deadlocked => write!(
                f,
                "deadlocked (seen by the watchdog) and was killed at once"
            ),
            Ending::Hung => write!(
                f,
                "hung (every thread blocked in a wait only another of its threads could end) and was killed"
            ),
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
            Ending::Deadlocked => ("deadlocked", None),
            Ending::Hung => ("hung", None),
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
///
/// Only a directory holdcheck creates is made private (0700). A given one
/// that exists is used as it is, and refused if it is a symbolic link or
/// shared (writable by others, sticky, or another user's): traces are
/// `0600` in any case, and `--out /tmp` must never change `/tmp`.
pub fn trace_dir(out: Option<&Path>) -> Result<PathBuf> {
    match out {
        Some(d) => {
            match std::fs::symlink_metadata(d) {
                Ok(m) => check_given_dir(d, &m)?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    std::fs::DirBuilder::new()
                        .recursive(true)
                        .mode(0o700)
                        .create(d)
                        .with_context(|| {
                            format!("cannot create trace directory {}", d.display())
                        })?;
                }
                Err(e) => {
                    return Err(e)
                        .with_context(|| format!("cannot use trace directory {}", d.display()))
                }
            }
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

/// An existing `--out` directory must be a plain directory of this user
/// that nobody else can write to.
fn check_given_dir(d: &Path, m: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let shown = d.display();
    if m.file_type().is_symlink() {
        bail!("--out {shown} is a symbolic link; give the directory itself");
    }
    if !m.is_dir() {
        bail!("--out {shown} is not a directory");
    }
    // SAFETY: no preconditions.
    let uid = unsafe { libc::geteuid() };
    if m.uid() != uid {
        bail!(
            "--out {shown} belongs to uid {}, not to you (uid {uid}); give a directory of your own",
            m.uid()
        );
    }
    if m.mode() & 0o1022 != 0 {
        bail!(
            "--out {shown} is shared (mode {:o}): others could plant files among the traces; \
             give a directory only you can write to (holdcheck leaves its mode alone)",
            m.mode() & 0o7777
        );
    }
    Ok(())
}

/// Runs the command under the shim and waits for it (or the timeout).
pub fn run(opts: &RunOptions) -> Result<Outcome> {
    let Some((program, args)) = opts.command.split_first() else {
        bail!("no command given: holdcheck run [OPTIONS] -- COMMAND [ARGS...]");
    };
    let shim = crate::shim::locate()?;
    let dir = trace_dir(opts.out.as_deref())?;

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
        .envs(opts.env.iter().map(|(k, v)| (k, v)))
        // Its own process group: the whole tree can be ended at once.
        .process_group(0);
    if let Some(fd) = &opts.output {
        cmd.stdout(fd.try_clone()?).stderr(fd.try_clone()?);
    }
    let terminal = Terminal::ours();
    if terminal.is_some() {
        // The command's group gets the terminal before it runs, or its
        // first read would stop it (SIGTTIN), as a shell does for a job.
        // SAFETY: only async-signal-safe calls between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                libc::setpgid(0, 0);
                Terminal::give_to(libc::getpid());
                Ok(())
            });
        }
    }
    let child = cmd
        .spawn()
        .with_context(|| format!("cannot start {}", program.to_string_lossy()))?;
    let pid = child.id() as libc::pid_t;
    if terminal.is_some() {
        Terminal::give_to(pid);
    }

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
    let mut deadline = opts.timeout.map(|t| Instant::now() + t);
    // `run` can keep a deadlocked command running; `confirm` cannot.
    let keep_hint = if opts.released.is_some() {
        ""
    } else {
        " (--keep-running lets it run on)"
    };
    let mut released_at: Option<Instant> = None;
    let mut killed = None;
    let mut watch = DeadlockWatch::default();
    // Every half second: is the whole group hung, seen from outside?
    let mut group = crate::inspect::GroupWatch::default();
    let mut said_keep_running = false;
    let mut deadlock_seen: Option<Instant> = None;
    let mut tick = 0u32;
    loop {
        if exited_unreaped(pid) {
            break;
        }
        if terminal.is_some() && stopped(pid) {
            // Ctrl-Z: the job stops as a whole, holdcheck with it, and
            // goes on where it was when the shell continues it.
            Terminal::give_to(terminal.unwrap_or(0));
            // SAFETY: stopping ourselves, then continuing our child's group.
            unsafe {
                libc::raise(libc::SIGSTOP);
                Terminal::give_to(pid);
                libc::kill(-pid, libc::SIGCONT);
            }
        }
        tick += 1;
        if released_at.is_none() && opts.released.as_ref().is_some_and(|r| r()) {
            let settle = Instant::now() + SETTLE;
            released_at = Some(Instant::now());
            deadline = Some(deadline.map_or(settle, |d| d.min(settle)));
        }
        // Every 100 ms: has a watchdog reported a deadlock?
        let deadlocked = tick.is_multiple_of(10) && watch.seen_in(&dir);
        if INTERRUPTED.load(Ordering::SeqCst) {
            killed = Some(Ending::Interrupted);
        } else if deadline.is_some_and(|d| Instant::now() >= d) {
            killed = Some(Ending::TimedOut);
        } else if !opts.keep_running
            && deadlock_seen.is_none()
            && tick.is_multiple_of(50)
            && group.hung(pid as u32)
        {
            eprintln!(
                "holdcheck: every thread of the command is blocked in a wait only another of \
                 its threads could end: ending it{keep_hint}"
            );
            killed = Some(Ending::Hung);
        } else if deadlocked && !opts.keep_running {
            // A moment for the processes blocked behind it to get there
            // too, so that the snapshot shows them in its wait chain.
            let at = *deadlock_seen.get_or_insert_with(|| {
                eprintln!("holdcheck: the watchdog saw a deadlock: ending the command{keep_hint}");
                Instant::now()
            });
            if at.elapsed() >= DEADLOCK_GRACE {
                killed = Some(Ending::Deadlocked);
            }
        } else if deadlocked && !said_keep_running {
            said_keep_running = true;
            eprintln!(
                "holdcheck: the watchdog saw a deadlock; the command runs on \
                 (--keep-running): Ctrl-C ends it and prints the report"
            );
        }
        if killed.is_some() {
            // What the group waits for, across its processes, while it
            // still waits.
            let ending = match killed {
                Some(Ending::TimedOut) => "at the timeout",
                Some(Ending::Interrupted) => "when it was interrupted",
                Some(Ending::Hung) => "once all its threads were blocked for good",
                _ => "after the deadlock",
            };
            if let Err(e) = crate::inspect::snapshot_group(pid as u32, &dir, ending) {
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
    if let Some(ours) = terminal {
        Terminal::give_to(ours);
    }
    // SAFETY: restoring the default dispositions.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_DFL);
        libc::signal(libc::SIGTERM, libc::SIG_DFL);
    }
    std::mem::forget(child); // reaped above
    let ending = killed.unwrap_or(status);
    Ok(Outcome { dir, ending })
}

/// How long a deadlocked command runs on before it is ended.
const DEADLOCK_GRACE: Duration = Duration::from_millis(500);

/// Reads what the traces gained since the last look, for an observed
/// deadlock record: the shim's watchdog writes one as soon as it sees
/// threads that wait on each other for ever.
#[derive(Default)]
struct DeadlockWatch {
    /// Trace file → bytes already read (up to the last whole line).
    read: std::collections::HashMap<PathBuf, u64>,
    seen: bool,
}

impl DeadlockWatch {
    fn seen_in(&mut self, dir: &Path) -> bool {
        use std::io::{Read, Seek, SeekFrom};
        if self.seen {
            return true;
        }
        let Ok(files) = crate::trace::trace_files(dir) else {
            return false;
        };
        for f in files {
            let done = self.read.entry(f.clone()).or_insert(0);
            let Ok(mut file) = std::fs::File::open(&f) else {
                continue;
            };
            let len = file.metadata().map_or(0, |m| m.len());
            if len <= *done || file.seek(SeekFrom::Start(*done)).is_err() {
                continue;
            }
            // A bounded read a time: a trace grows by kilobytes.
            let mut buf = Vec::new();
            let _ = file.take(8 << 20).read_to_end(&mut buf);
            let Some(end) = buf.iter().rposition(|&b| b == b'\n') else {
                continue;
            };
            *done += end as u64 + 1;
            for line in buf[..end].split(|&b| b == b'\n') {
                // Cheap test first; parse only observed records.
                if !line.starts_with(b"{\"t\":\"observed\"") {
                    continue;
                }
                if let Ok(holdcheck_format::Record::Observed(o)) = serde_json::from_slice(line) {
                    if o.kind == "deadlock" {
                        self.seen = true;
                    }
                }
            }
        }
        self.seen
    }
}

/// The terminal on standard input, when holdcheck's group has it in the
/// foreground (an interactive run): the command's group gets it while it
/// runs, and holdcheck takes it back at the end.
struct Terminal;

impl Terminal {
    /// Our process group, if stdin is a terminal whose foreground it is.
    /// Not when our output goes into a pipe: then holdcheck is part of a
    /// pipeline (`holdcheck run … | less`) whose other members share our
    /// group and may read the terminal themselves.
    fn ours() -> Option<libc::pid_t> {
        use std::os::unix::fs::FileTypeExt;
        let stdout_is_pipe =
            std::fs::metadata("/proc/self/fd/1").is_ok_and(|m| m.file_type().is_fifo());
        if stdout_is_pipe {
            return None;
        }
        // SAFETY: plain queries of descriptor 0 and of this process.
        unsafe {
            if libc::isatty(0) != 1 {
                return None;
            }
            let pg = libc::getpgrp();
            (libc::tcgetpgrp(0) == pg).then_some(pg)
        }
    }

    /// Makes `pgrp` the terminal's foreground group. SIGTTOU (sent to a
    /// background group that does this) is blocked meanwhile.
    fn give_to(pgrp: libc::pid_t) {
        // SAFETY: async-signal-safe calls with valid arguments.
        unsafe {
            let mut block: libc::sigset_t = std::mem::zeroed();
            let mut old: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut block);
            libc::sigaddset(&mut block, libc::SIGTTOU);
            libc::pthread_sigmask(libc::SIG_BLOCK, &block, &mut old);
            libc::tcsetpgrp(0, pgrp);
            libc::pthread_sigmask(libc::SIG_SETMASK, &old, std::ptr::null_mut());
        }
    }
}

/// Whether the child was stopped (by a signal) since the last look.
fn stopped(pid: libc::pid_t) -> bool {
    child_event(pid, libc::WSTOPPED)
}

/// Whether the child has exited, without reaping it.
fn exited_unreaped(pid: libc::pid_t) -> bool {
    child_event(pid, libc::WEXITED | libc::WNOWAIT)
}

/// Whether `waitid` reports an event of `what` for the child, now.
fn child_event(pid: libc::pid_t, what: libc::c_int) -> bool {
    // SAFETY: a zeroed siginfo_t is a valid out-parameter.
    unsafe {
        let mut info: libc::siginfo_t = std::mem::zeroed();
        let r = libc::waitid(
            libc::P_PID,
            pid as libc::id_t,
            &mut info,
            what | libc::WNOHANG,
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
