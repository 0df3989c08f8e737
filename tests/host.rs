//! The shim never harms its host: programs of the shapes real daemons have
//! (examples/c/host.c), each of which the shim once hung, killed, corrupted
//! or grew without bound, run under `holdcheck run` exactly as natively.
//! Each mode checks its own result; the tests also check that holdcheck
//! did not have to kill it and reported no deadlock.

mod support;

use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

fn host() -> String {
    examples().join("host").to_str().unwrap().to_string()
}

/// The program ended by itself with status 0, printed `expect`, and no
/// deadlock of any kind was reported.
fn unharmed(r: &Run, expect: &str) {
    assert_eq!(r.report["run"]["ending"], "exited", "{:#}", r.report["run"]);
    assert_eq!(r.report["run"]["code"], 0, "stdout: {}", r.stdout);
    assert!(r.stdout.contains(expect), "stdout: {}", r.stdout);
    for kind in ["deadlock", "potential-deadlock", "stall"] {
        assert!(
            findings(&r.report, kind).is_empty(),
            "a {kind} in a healthy program: {:#}",
            r.report["findings"]
        );
    }
}

/// The allocator library's path, if installed (else the case is skipped).
fn allocator(lib: &str, package: &str) -> Option<String> {
    let path = format!("/usr/lib/x86_64-linux-gnu/{lib}");
    need(&path, package).then_some(path)
}

#[test]
fn programs_whose_allocator_locks_inside_malloc_run_unharmed() {
    let shim = holdcheck::shim::locate().unwrap();
    let shim = shim.to_str().unwrap();
    let host = host();
    for (lib, package) in [
        ("libjemalloc.so.2", "libjemalloc2"),
        ("libtcmalloc_minimal.so.4", "libtcmalloc-minimal4"),
        ("libmimalloc.so.2", "libmimalloc2.0"),
    ] {
        let Some(lib) = allocator(lib, package) else {
            continue;
        };
        // The allocator before the shim (as a user preloads it) and after.
        for preload in [format!("{lib}:{shim}"), format!("{shim}:{lib}")] {
            let env = format!("LD_PRELOAD={preload}");
            let r = run_command("alloc", &["env", &env, &host, "alloc"], None, 60, "");
            unharmed(&r, "alloc: done");
            let r = run_command("alloc-ls", &["env", &env, "ls", "/"], None, 60, "");
            assert_eq!(r.report["run"]["code"], 0, "ls under {preload}");
            assert!(
                r.stdout.contains("proc"),
                "ls under {preload}: {}",
                r.stdout
            );
        }
    }
}

#[test]
fn a_daemon_that_closes_its_descriptors_keeps_its_data_and_its_stderr() {
    let work = work_dir("closefds");
    let file = work.join("own.dat");
    let r = run_command(
        "closefds",
        &[&host(), "closefds", file.to_str().unwrap()],
        None,
        60,
        "",
    );
    // host checks its file and its stderr file hold exactly what it wrote.
    unharmed(&r, "closefds: done");
    // The shim went on recording after the program closed its descriptor.
    let lock_orders = trace_records(&r.trace_dir, "lock_order");
    assert!(lock_orders >= 2, "{lock_orders} lock orders in the trace");
}

#[test]
fn a_library_constructor_that_waits_for_its_thread_does_not_hang() {
    let r = run_command("dlopen", &[&host(), "dlopen"], None, 30, "");
    unharmed(&r, "dlopen: done");
}

#[test]
fn forks_while_another_thread_loads_libraries_never_hang_a_child() {
    let r = run_command("forks", &[&host(), "forks", "150"], None, 120, "");
    unharmed(&r, "forks: 0 of 150 children failed");
}

#[test]
fn a_thread_on_a_16k_stack_has_its_stack() {
    let r = run_command("smallstack", &[&host(), "smallstack"], None, 30, "");
    unharmed(&r, "smallstack: done");
}

#[test]
fn a_child_that_drops_privileges_is_traced() {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: dropping privileges needs root");
        return;
    }
    let r = run_command("privdrop", &[&host(), "privdrop"], None, 60, "");
    assert_eq!(r.report["run"]["code"], 0, "stdout: {}", r.stdout);
    // The inversion of the child (uid 65534) is in the report: its trace
    // was opened before it dropped privileges.
    let found = findings(&r.report, "potential-deadlock");
    assert!(
        found
            .iter()
            .any(|f| thread_names(f) == ["worker-ab", "worker-ba"]),
        "the child's inversion is missing: {:#}",
        r.report["findings"]
    );
}

#[test]
fn a_thread_per_task_keeps_the_trace_and_memory_bounded() {
    let r = run_command("tasks", &[&host(), "tasks", "20"], None, 80, "");
    unharmed(&r, "tasks: ");
    let size: u64 = std::fs::read_dir(&r.trace_dir)
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum();
    let tasks: u64 = r.stdout.trim().rsplit(' ').next().unwrap().parse().unwrap();
    eprintln!("{tasks} tasks, trace {size} bytes");
    assert!(tasks > 1000, "only {tasks} tasks in 20 s");
    assert!(size < 64 * 1024, "the trace grew to {size} bytes");
}

/// Records of one kind in a trace directory.
fn trace_records(dir: &Path, kind: &str) -> usize {
    let needle = format!("\"{kind}\"");
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| {
            std::fs::read_to_string(e.path())
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains(&needle))
                .count()
        })
        .sum()
}

#[test]
fn an_interactive_command_reads_its_terminal() {
    // A pseudo-terminal, with holdcheck as the session leader on it, as
    // in a terminal window.
    let (mut master, slave) = {
        let (mut m, mut s) = (0, 0);
        // SAFETY: valid out-parameters.
        let r = unsafe {
            libc::openpty(
                &mut m,
                &mut s,
                std::ptr::null_mut(),
                std::ptr::null(),
                std::ptr::null(),
            )
        };
        assert_eq!(r, 0, "openpty");
        // SAFETY: fresh descriptors we own.
        unsafe {
            (
                std::fs::File::from_raw_fd_owned(m),
                std::fs::File::from_raw_fd_owned(s),
            )
        }
    };
    let work = work_dir("tty");
    let mut child = Command::new(holdcheck_bin())
        .args(["run", "--out"])
        .arg(work.join("trace"))
        .args(["--timeout", "30", "--", "sh", "-c", "read x; echo got:$x"])
        .stdin(slave.try_clone().unwrap())
        .stdout(slave.try_clone().unwrap())
        .stderr(slave)
        .process_group(0)
        .spawn_with(|| {
            // SAFETY: in the child: a new session with the pty as its
            // controlling terminal.
            unsafe {
                libc::setsid();
                libc::ioctl(0, libc::TIOCSCTTY, 0);
            }
        });
    std::thread::sleep(Duration::from_millis(500));
    master.write_all(b"hello\n").unwrap();
    let mut seen = String::new();
    let start = Instant::now();
    let mut buf = [0u8; 4096];
    set_nonblocking(&master);
    while !seen.contains("got:hello") && start.elapsed() < Duration::from_secs(20) {
        match master.read(&mut buf) {
            Ok(n) if n > 0 => seen.push_str(&String::from_utf8_lossy(&buf[..n])),
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
    let done = wait_for(&mut child, Duration::from_secs(20));
    assert!(
        seen.contains("got:hello"),
        "the command never read: {seen:?}"
    );
    assert_eq!(done, Some(0), "holdcheck: {seen}");
}

trait FromRawOwned {
    /// # Safety
    /// `fd` is an open descriptor nobody else owns.
    unsafe fn from_raw_fd_owned(fd: i32) -> Self;
}

impl FromRawOwned for std::fs::File {
    unsafe fn from_raw_fd_owned(fd: i32) -> Self {
        use std::os::fd::FromRawFd;
        std::fs::File::from_raw_fd(fd)
    }
}

trait SpawnWith {
    fn spawn_with(&mut self, f: fn()) -> std::process::Child;
}

impl SpawnWith for Command {
    fn spawn_with(&mut self, f: fn()) -> std::process::Child {
        // SAFETY: `f` makes only async-signal-safe calls.
        unsafe {
            self.pre_exec(move || {
                f();
                Ok(())
            });
        }
        self.spawn().expect("cannot start holdcheck")
    }
}

fn set_nonblocking(f: &std::fs::File) {
    use std::os::fd::AsRawFd;
    // SAFETY: plain fcntl on our descriptor.
    unsafe {
        let fl = libc::fcntl(f.as_raw_fd(), libc::F_GETFL);
        libc::fcntl(f.as_raw_fd(), libc::F_SETFL, fl | libc::O_NONBLOCK);
    }
}

/// Waits for a child; kills its group if it is not done in time.
fn wait_for(child: &mut std::process::Child, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            return st.code();
        }
        if start.elapsed() > limit {
            // SAFETY: our child's group.
            unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn run_out_leaves_an_existing_directory_as_it_is_and_refuses_a_shared_one() {
    let work = work_dir("out");
    // A shared directory, like /tmp: refused, its mode untouched.
    let shared = work.join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let (code, _, stderr) = holdcheck(
        &["run", "--out", shared.to_str().unwrap(), "--", "true"],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("shared"), "{stderr}");
    let mode = std::fs::metadata(&shared).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        mode,
        0o1777,
        "holdcheck changed the mode of {}",
        shared.display()
    );
    // A symlink to a directory: refused, the target untouched.
    let target = work.join("target");
    std::fs::create_dir(&target).unwrap();
    std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
    let link = work.join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let (code, _, stderr) = holdcheck(
        &["run", "--out", link.to_str().unwrap(), "--", "true"],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("symbolic link"), "{stderr}");
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o755);
    // An existing private directory of ours is used as it is.
    let (code, _, stderr) = holdcheck(
        &["run", "--out", target.to_str().unwrap(), "--", "true"],
        Duration::from_secs(30),
    );
    assert_eq!(code, 0, "{stderr}");
    let mode = std::fs::metadata(&target).unwrap().permissions().mode() & 0o7777;
    assert_eq!(
        mode, 0o755,
        "holdcheck changed the mode of an existing directory"
    );
    // One it creates is private.
    let fresh = work.join("fresh/sub");
    let (code, _, stderr) = holdcheck(
        &["run", "--out", fresh.to_str().unwrap(), "--", "true"],
        Duration::from_secs(30),
    );
    assert_eq!(code, 0, "{stderr}");
    let mode = std::fs::metadata(&fresh).unwrap().permissions().mode() & 0o7777;
    assert_eq!(mode, 0o700);
}

#[test]
fn a_stopped_and_continued_process_is_not_a_stall() {
    // Stalls after 1.5 s; the process is stopped for 3 s, holding a lock
    // in a read that the ticker feeds every 50 ms once it runs again.
    let r = run_command(
        "paused",
        &[&host(), "paused"],
        None,
        60,
        "stall_ms=1500:watchdog_ms=200",
    );
    unharmed(&r, "paused: done");
    assert!(
        findings(&r.report, "stalled-call").is_empty(),
        "a pause reported as a stalled call: {:#}",
        r.report["findings"]
    );
}

#[test]
fn cpp_objects_at_a_reused_heap_address_are_different_locks() {
    let bin = examples().join("heap_reuse");
    // examples/build.sh builds the C++ examples where a C++ compiler is.
    if !need(
        bin.to_str().unwrap(),
        "g++, then examples/build.sh builds it",
    ) {
        return;
    }
    let bin = bin.to_str().unwrap();
    let r = run_command("heap-reuse", &[bin], None, 60, "");
    unharmed(&r, "heap_reuse: ");
    // The allocator did reuse the address (else the test proves nothing).
    let reused: u32 = r.stdout.split_whitespace().nth(1).unwrap().parse().unwrap();
    assert!(reused >= 10, "{}", r.stdout);
    // Both orders on one live object: the real inversion is still found.
    let r = run_command("heap-reuse-inverted", &[bin, "inverted"], None, 60, "");
    assert_eq!(
        findings(&r.report, "potential-deadlock").len(),
        1,
        "{:#}",
        r.report["findings"]
    );
}

#[test]
fn a_library_loaded_again_at_the_same_address_has_new_locks() {
    let r = run_command("reload", &[&host(), "reload"], None, 60, "");
    unharmed(&r, "reload: ");
    if !r.stdout.contains("same address") {
        eprintln!(
            "note: the library was loaded at another address: {}",
            r.stdout
        );
    }
}

#[test]
fn a_child_that_cannot_trace_is_named_and_the_analysis_called_partial() {
    let r = run_command("notrace", &[&host(), "notrace"], None, 60, "");
    assert_eq!(r.report["run"]["code"], 0, "stdout: {}", r.stdout);
    let child: u64 = r.stdout.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert_eq!(r.report["partial"], true, "{:#}", r.report);
    let warnings = r.report["warnings"].to_string();
    assert!(
        warnings.contains(&format!("its child pid {child} left no trace")),
        "{warnings}"
    );
}
