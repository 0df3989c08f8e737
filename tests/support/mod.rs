//! Helpers shared by the end-to-end test binaries: build the examples, run
//! them under `holdcheck run` with a guard, read the JSON report. Each test
//! binary uses its own subset.
#![allow(dead_code)]

use holdcheck::model::Model;
use holdcheck::trace;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Held by tests that load both CPUs (lifecycle's spinning threads) and by
/// tests that measure latency, so that the two never overlap.
static CPU_HEAVY: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub fn exclusive_cpu() -> std::sync::MutexGuard<'static, ()> {
    CPU_HEAVY.lock().unwrap_or_else(|e| e.into_inner())
}

/// Whether an optional program the test needs is installed. When it is
/// not, the test says so in one line (on the terminal, past the test
/// harness's capture) and is skipped; with `HOLDCHECK_REQUIRE_ALL=1` (as
/// `.ci/run` sets it) a missing program fails the test instead.
pub fn need(program: &str, package: &str) -> bool {
    let found = if program.starts_with('/') {
        Path::new(program).exists()
    } else {
        Command::new("sh")
            .args(["-c", &format!("command -v {program}")])
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    found
        || skip(&format!(
            "{program} is not installed (apt-get install {package})"
        ))
}

/// Whether python3 can import `module`; skipped (or failed) as [`need`].
pub fn need_python_module(module: &str, install: &str) -> bool {
    let found = Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    found || skip(&format!("python3 cannot import {module} ({install})"))
}

/// Says why the current test is skipped, or fails it when every
/// optional program is required.
pub fn skip(why: &str) -> bool {
    let test = std::thread::current()
        .name()
        .unwrap_or("a test")
        .to_string();
    if std::env::var_os("HOLDCHECK_REQUIRE_ALL").is_some_and(|v| v == "1") {
        panic!("{test}: {why}, and HOLDCHECK_REQUIRE_ALL=1 requires it");
    }
    use std::io::Write;
    // Straight to the terminal: the harness captures eprintln! of a test
    // that passes, and a skip must be seen.
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    false
}

pub fn holdcheck_bin() -> &'static str {
    static CHECKED: OnceLock<()> = OnceLock::new();
    let bin = env!("CARGO_BIN_EXE_holdcheck");
    CHECKED.get_or_init(|| no_stale_shim_beside(Path::new(bin)));
    bin
}

/// holdcheck prefers a shim beside its binary to the copy it embeds, and
/// `cargo test` rebuilds the binary (with its copy) but not the shim that
/// `cargo build` left there: the suite would run a shim older than the
/// sources under test, and pass or fail on old code.
fn no_stale_shim_beside(bin: &Path) {
    let beside = bin.with_file_name("libholdcheck.so");
    let Ok(built) = beside.metadata().and_then(|m| m.modified()) else {
        return;
    };
    fn newest(dir: &Path) -> Option<std::time::SystemTime> {
        std::fs::read_dir(dir)
            .ok()?
            .flatten()
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                if m.is_dir() {
                    newest(&e.path())
                } else {
                    m.modified().ok()
                }
            })
            .max()
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let sources = ["shim/src", "format/src", "waitfor/src"]
        .iter()
        .filter_map(|d| newest(&root.join(d)))
        .max();
    if sources.is_some_and(|s| s > built) {
        panic!(
            "{} is older than the shim's sources: run `cargo build --release` before the tests \
             (holdcheck runs the shim beside it, not the one it embeds)",
            beside.display()
        );
    }
}

/// The `TMPDIR` holdcheck runs with in the tests, in the build's own
/// temporary directory: a `run` without `--out` that has findings keeps its
/// traces in `$TMPDIR`, and the suite must not leave them in the machine's
/// `/tmp`.
pub fn tmpdir() -> &'static Path {
    static TMP: OnceLock<PathBuf> = OnceLock::new();
    TMP.get_or_init(|| {
        let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tmpdir");
        std::fs::create_dir_all(&d).unwrap();
        d
    })
}

/// holdcheck with `TMPDIR` set to [`tmpdir`].
pub fn holdcheck_command() -> Command {
    let mut cmd = Command::new(holdcheck_bin());
    cmd.env("TMPDIR", tmpdir());
    cmd
}

/// The examples, built once per test run by the script the README names.
pub fn examples() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("examples");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/build.sh");
        let st = Command::new("sh")
            .arg(&script)
            .arg(&out)
            .status()
            .expect("cannot run examples/build.sh");
        assert!(st.success(), "examples/build.sh failed");
        out
    })
}

pub fn work_dir(name: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let d = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "run-{}-{}-{}",
        name,
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

pub struct Run {
    pub report: Value,
    pub code: i32,
    pub stdout: String,
    pub trace_dir: PathBuf,
}

/// Runs a holdcheck command line with a guard: if holdcheck itself is not
/// done `guard` after its start, it is interrupted (it then kills its
/// target's group) and the test fails.
pub fn holdcheck(args: &[&str], guard: Duration) -> (i32, String, String) {
    holdcheck_with(args, guard, "")
}

/// The same, with `HOLDCHECK_OPTIONS` for the shim.
pub fn holdcheck_with(args: &[&str], guard: Duration, options: &str) -> (i32, String, String) {
    holdcheck_in(args, guard, options, None)
}

/// The same, in a working directory.
pub fn holdcheck_in(
    args: &[&str],
    guard: Duration,
    options: &str,
    cwd: Option<&Path>,
) -> (i32, String, String) {
    let mut cmd = holdcheck_command();
    if let Some(d) = cwd {
        cmd.current_dir(d);
    }
    let child = cmd
        .args(args)
        .env("HOLDCHECK_OPTIONS", options)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("cannot start holdcheck");
    let pid = child.id() as i32;
    let start = Instant::now();
    let waiter = std::thread::spawn(move || child.wait_with_output().expect("wait for holdcheck"));
    while !waiter.is_finished() {
        if start.elapsed() > guard {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(pid, libc::SIGTERM) };
            std::thread::sleep(Duration::from_secs(2));
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            let _ = waiter.join();
            panic!("holdcheck {args:?} did not finish within {guard:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = waiter.join().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `holdcheck run --format json` on an example.
pub fn run_example(example: &str, args: &[&str], timeout_secs: u32) -> Run {
    run_example_with(example, args, timeout_secs, "")
}

/// The same, with `HOLDCHECK_OPTIONS` for the shim.
pub fn run_example_with(example: &str, args: &[&str], timeout_secs: u32, options: &str) -> Run {
    let exe = examples().join(example);
    let mut cmd = vec![exe.to_str().unwrap()];
    cmd.extend_from_slice(args);
    run_command(example, &cmd, None, timeout_secs, options)
}

/// `holdcheck run --format json` on any command (in `cwd`, if given).
pub fn run_command(
    name: &str,
    cmd: &[&str],
    cwd: Option<&Path>,
    timeout_secs: u32,
    options: &str,
) -> Run {
    let work = work_dir(name);
    let report = work.join("report.json");
    let trace_dir = work.join("trace");
    let timeout = timeout_secs.to_string();
    let mut argv = vec![
        "run",
        "--format",
        "json",
        "-o",
        report.to_str().unwrap(),
        "--out",
        trace_dir.to_str().unwrap(),
        "--timeout",
        &timeout,
        "--",
    ];
    argv.extend_from_slice(cmd);
    let (code, stdout, stderr) = holdcheck_in(
        &argv,
        Duration::from_secs(timeout_secs as u64 + 60),
        options,
        cwd,
    );
    let text = std::fs::read_to_string(&report)
        .unwrap_or_else(|e| panic!("no report from {name} {cmd:?} ({e}); stderr:\n{stderr}"));
    let report: Value = serde_json::from_str(&text).expect("the JSON report parses");
    for p in report["processes"].as_array().unwrap() {
        assert_gone(p["pid"].as_i64().unwrap() as i32);
    }
    Run {
        report,
        code,
        stdout,
        trace_dir,
    }
}

/// The target process no longer exists (holdcheck killed and reaped it).
pub fn assert_gone(pid: i32) {
    // SAFETY: signal 0 only checks for existence.
    let alive = unsafe { libc::kill(pid, 0) } == 0;
    assert!(!alive, "process {pid} was left behind");
}

pub fn findings<'a>(r: &'a Value, kind: &str) -> Vec<&'a Value> {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == kind)
        .collect()
}

pub fn thread_names(f: &Value) -> Vec<String> {
    let mut v: Vec<String> = f["threads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect();
    v.sort();
    v
}

/// The function names of stack number `index` (a JSON number) of a finding.
pub fn functions_at(f: &Value, index: &Value) -> Vec<String> {
    let i = index.as_u64().expect("a stack index") as usize;
    f["stacks"][i]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|fr| fr["function"].as_str().map(String::from))
        .collect()
}

/// A finding's edge of a relation (`held-across-call`, `produce`, ...).
pub fn edge_of<'a>(f: &'a Value, relation: &str) -> &'a Value {
    let edges = f["edges"].as_array().expect("a finding has edges");
    edges
        .iter()
        .find(|e| e["relation"] == relation)
        .unwrap_or_else(|| panic!("no {relation} edge: {edges:#?}"))
}

pub fn stack_functions(f: &Value, edge: &Value) -> Vec<String> {
    functions_at(f, &edge["stack"])
}

pub fn model_of(dir: &Path) -> Model {
    Model::build(&trace::read_dirs(&[dir.to_path_buf()]).expect("traces read"))
}

/// Whether locks X → Y and Y → X both have edges (a tempting inversion).
pub fn has_inversion(m: &Model) -> bool {
    m.edges.keys().iter().any(|&(a, b)| {
        m.nodes[a].is_lock() && m.nodes[b].is_lock() && m.edges.contains_key(&(b, a))
    })
}
