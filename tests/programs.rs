//! Real programs from Debian's packages run unharmed under the shim: the
//! same output and exit status as natively, and no deadlock or potential
//! deadlock reported (what they do report is printed, for the record).
//! `.ci/run` installs them (and requires them all); elsewhere a test whose
//! program is missing says so and is skipped.

mod support;

/// memcached and its load client, shared with the benchmark suite (which
/// uses more of it).
#[allow(dead_code)]
#[path = "../bench/src/memcached.rs"]
mod memcached;

use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use support::*;

/// Runs a command natively, then under `holdcheck run`: the same exit
/// status and standard output, and no deadlock of any kind reported.
/// Returns the report.
fn same_under_shim(name: &str, cmd: &[&str], cwd: &Path) -> Value {
    same_under_shim_from(name, cmd, cwd, &|| {})
}

/// The same, with `reset` run before each of the two runs (a build or a
/// database starts from the same state).
fn same_under_shim_from(name: &str, cmd: &[&str], cwd: &Path, reset: &dyn Fn()) -> Value {
    let r = same_output_under_shim(name, cmd, cwd, reset);
    assert_clean(name, &r);
    r
}

/// Runs a command natively, then under `holdcheck run`: the same exit
/// status and standard output. Returns the report.
fn same_output_under_shim(name: &str, cmd: &[&str], cwd: &Path, reset: &dyn Fn()) -> Value {
    reset();
    let native = Command::new(cmd[0])
        .args(&cmd[1..])
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    reset();
    let run = run_command(name, cmd, Some(cwd), 120, "");
    let r = run.report;
    assert_eq!(
        r["run"]["code"],
        native.status.code().unwrap_or(-1),
        "{name}: exit status differs"
    );
    assert!(
        run.stdout.as_bytes() == native.stdout.as_slice(),
        "{name}: output differs under the shim:\n--- native\n{}\n--- shim\n{}",
        String::from_utf8_lossy(&native.stdout),
        run.stdout
    );
    r
}

/// No deadlock, no potential deadlock; other findings are printed.
fn assert_clean(name: &str, r: &Value) {
    for kind in ["deadlock", "potential-deadlock"] {
        assert!(
            findings(r, kind).is_empty(),
            "{name}: false {kind}: {:#}",
            r["findings"]
        );
    }
    for f in r["findings"].as_array().unwrap() {
        eprintln!("{name}: {}: {}", f["kind"], f["title"]);
    }
}

/// Whether a process of the run was the program at a path ending so.
fn traced(r: &Value, exe_suffix: &str) -> bool {
    traced_count(r, exe_suffix) > 0
}

/// How many processes of the run were the program at a path ending so.
fn traced_count(r: &Value, exe_suffix: &str) -> usize {
    r["processes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["exe"].as_str().is_some_and(|e| e.ends_with(exe_suffix)))
        .count()
}

/// A file of text, a few MB.
fn text_file(dir: &Path, mb: usize) -> std::path::PathBuf {
    let p = dir.join("input.txt");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&p).unwrap());
    for i in 0..mb * 20_000 {
        writeln!(
            f,
            "line {i} of holdcheck's test input: locks, queues, {}",
            i * 7919 % 1000
        )
        .unwrap();
    }
    p
}

#[test]
fn pigz_compresses_the_same_under_the_shim() {
    if !need("pigz", "pigz") {
        return;
    }
    let dir = work_dir("pigz-in");
    let input = text_file(&dir, 8);
    // Compared by digest: the output is binary.
    let script = format!("pigz -p 2 -c {} | sha256sum", input.display());
    let r = same_under_shim("pigz", &["sh", "-c", &script], &dir);
    assert!(traced(&r, "/pigz"), "pigz itself ran under the shim");
}

#[test]
fn xz_with_threads_compresses_the_same_under_the_shim() {
    if !need("xz", "xz-utils") {
        return;
    }
    let dir = work_dir("xz-in");
    let input = text_file(&dir, 8);
    let script = format!("xz -T2 -3 -c {} | sha256sum", input.display());
    let r = same_under_shim("xz", &["sh", "-c", &script], &dir);
    assert!(traced(&r, "/xz"), "xz itself ran under the shim");
}

#[test]
fn python_threads_sqlite_and_file_locks_are_unharmed() {
    if !need("python3", "python3") {
        return;
    }
    let dir = work_dir("py");
    // Threads sharing a queue and a lock, and threads writing one SQLite
    // database (its internal mutexes and fcntl record locks).
    std::fs::write(
        dir.join("work.py"),
        r#"
import queue, sqlite3, threading
q, lock, total = queue.Queue(), threading.Lock(), [0]
def worker():
    while True:
        n = q.get()
        if n is None:
            return
        with lock:
            total[0] += n
ts = [threading.Thread(target=worker) for _ in range(16)]
for t in ts: t.start()
for i in range(20000): q.put(i)
for t in ts: q.put(None)
for t in ts: t.join()
print("sum", total[0])
db = "t.db"
c = sqlite3.connect(db); c.execute("create table if not exists t(x)"); c.execute("delete from t"); c.commit(); c.close()
def writer(k):
    c = sqlite3.connect(db, timeout=30)
    for i in range(200):
        with c:
            c.execute("insert into t values (?)", (k * 1000 + i,))
    c.close()
ws = [threading.Thread(target=writer, args=(k,)) for k in range(4)]
for w in ws: w.start()
for w in ws: w.join()
print("rows", sqlite3.connect(db).execute("select count(*), sum(x) from t").fetchone())
"#,
    )
    .unwrap();
    same_under_shim("python3", &["python3", "work.py"], &dir);
}

#[test]
fn sqlite3_cli_is_unharmed() {
    if !need("sqlite3", "sqlite3") {
        return;
    }
    let dir = work_dir("sqlite");
    let db = dir.join("db.sqlite");
    same_under_shim_from(
        "sqlite3",
        &[
            "sqlite3",
            "db.sqlite",
            "create table t(x); insert into t values (1),(2),(3); select sum(x) from t;",
        ],
        &dir,
        &|| {
            let _ = std::fs::remove_file(&db);
        },
    );
}

#[test]
fn git_grep_and_index_pack_are_unharmed() {
    if !need("git", "git") {
        return;
    }
    let dir = work_dir("git");
    let git = |args: &[&str]| {
        let st = Command::new("git")
            .args(args)
            .current_dir(&dir)
            .env("GIT_AUTHOR_NAME", "t")
            .env("GIT_AUTHOR_EMAIL", "t@t")
            .env("GIT_COMMITTER_NAME", "t")
            .env("GIT_COMMITTER_EMAIL", "t@t")
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "git {args:?}");
    };
    git(&["init", "-q"]);
    for i in 0..200 {
        std::fs::write(
            dir.join(format!("f{i}.c")),
            format!("int lock_{i}(void) {{ return {i}; }}\n"),
        )
        .unwrap();
    }
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "files"]);
    git(&["repack", "-a", "-d", "-q"]);
    same_under_shim(
        "git grep",
        &["git", "grep", "--threads=4", "-n", "lock_1"],
        &dir,
    );
    let pack = std::fs::read_dir(dir.join(".git/objects/pack"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|e| e == "pack"))
        .unwrap();
    std::fs::copy(&pack, dir.join("copy.pack")).unwrap();
    same_under_shim(
        "git index-pack",
        &["git", "index-pack", "--threads=2", "copy.pack"],
        &dir,
    );
}

#[test]
fn gdb_batch_is_unharmed() {
    if !need("gdb", "gdb") {
        return;
    }
    let dir = work_dir("gdb");
    same_under_shim(
        "gdb",
        &["gdb", "-nx", "-batch", "-ex", "print 6*7", "/bin/true"],
        &dir,
    );
}

#[test]
fn make_j2_of_a_small_project_is_unharmed() {
    if !need("make", "make") {
        return;
    }
    let dir = work_dir("make");
    let mut rules = String::from("all:");
    for i in 0..12 {
        std::fs::write(
            dir.join(format!("u{i}.c")),
            format!("int u{i}(void) {{ return {i}; }}\n"),
        )
        .unwrap();
        rules.push_str(&format!(" u{i}.o"));
    }
    rules.push_str("\n\t@echo built\n%.o: %.c\n\t@cc -c $< -o $@\n");
    std::fs::write(dir.join("Makefile"), rules).unwrap();
    let clean = || {
        for i in 0..12 {
            let _ = std::fs::remove_file(dir.join(format!("u{i}.o")));
        }
    };
    let r = same_under_shim_from("make", &["make", "-s", "-j2"], &dir, &clean);
    // Every compiler process was traced.
    assert!(
        r["processes"].as_array().unwrap().len() > 12,
        "{:#}",
        r["processes"]
    );
}

#[test]
fn memcached_answers_every_request_right_under_the_shim() {
    if !need("memcached", "memcached") {
        return;
    }
    const THREADS: u32 = 4;
    const CLIENTS: usize = 4;
    const OPS: usize = 3000;
    // Natively first: the load is checked (every get returns what was set)
    // and the exit status on SIGTERM noted.
    let port = memcached::free_port().unwrap();
    let server = memcached::Memcached::start(port, THREADS, |_| {}).unwrap();
    memcached::load(port, CLIENTS, OPS).unwrap();
    let (native, _) = server.stop().unwrap();

    let dir = work_dir("memcached");
    let (code, shim, _) = holdcheck(&["shim-path"], std::time::Duration::from_secs(30));
    assert_eq!(code, 0);
    let port = memcached::free_port().unwrap();
    let server = memcached::Memcached::start(port, THREADS, |c| {
        c.env("LD_PRELOAD", shim.trim()).env("HOLDCHECK_DIR", &dir);
    })
    .unwrap();
    memcached::load(port, CLIENTS, OPS).expect("every request answered right under the shim");
    let (status, err) = server.stop().unwrap();
    assert_eq!(status.code(), native.code(), "exit status differs: {err}");

    let (code, out, err) = holdcheck(
        &["report", "--format", "json", dir.to_str().unwrap()],
        std::time::Duration::from_secs(60),
    );
    assert!(code == 0 || code == 1, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert!(traced(&r, "/memcached"), "memcached ran under the shim");
    assert_clean("memcached", &r);
}

/// A script of tests/programs/, copied into a fresh directory.
fn script_dir(name: &str, files: &[&str]) -> std::path::PathBuf {
    let dir = work_dir(name);
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/programs");
    for f in files {
        std::fs::copy(here.join(f), dir.join(f)).unwrap();
    }
    // World-readable, for workers that run as nobody.
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    dir
}

#[test]
fn redis_with_jemalloc_under_its_benchmark_is_unharmed() {
    if !need("redis-server", "redis-server") {
        return;
    }
    if !need("redis-benchmark", "redis-tools") {
        return;
    }
    let dir = script_dir("redis", &["redis.sh"]);
    let port = memcached::free_port().unwrap().to_string();
    let r = same_under_shim("redis", &["sh", "redis.sh", &port], &dir);
    // Debian's redis-server is a link to redis-check-rdb.
    assert!(
        traced(&r, "/redis-server") || traced(&r, "/redis-check-rdb"),
        "redis-server ran under the shim: {:#}",
        r["processes"]
    );
    assert_eq!(r["run"]["code"], 0);
}

#[test]
fn nginx_master_and_workers_under_a_local_load_are_unharmed() {
    if !need("nginx", "nginx-light") {
        return;
    }
    let dir = script_dir("nginx", &["nginx.sh"]);
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::write(dir.join("www/index.html"), "holdcheck nginx page\n").unwrap();
    let port = memcached::free_port().unwrap().to_string();
    let r = same_under_shim("nginx", &["sh", "nginx.sh", &port], &dir);
    // The master and both workers (which drop privileges as root) traced.
    let nginx = traced_count(&r, "/nginx");
    assert!(
        nginx >= 3,
        "{nginx} nginx processes traced: {:#}",
        r["processes"]
    );
    assert_ne!(r["partial"], true, "{:#}", r["warnings"]);
}

#[test]
fn a_jvm_thread_pool_is_unharmed() {
    if !need("java", "default-jre-headless") {
        return;
    }
    let dir = script_dir("jvm", &["Pool.java"]);
    let r = same_under_shim("jvm", &["java", "Pool.java"], &dir);
    assert!(traced(&r, "/java"), "the JVM ran under the shim");
}

#[test]
fn headless_chromium_and_its_zygote_children_are_unharmed_with_whole_stacks() {
    if !need("chromium", "chromium") {
        return;
    }
    let dir = work_dir("chromium");
    let page = dir.join("page.html");
    std::fs::write(
        &page,
        "<p id=x>static</p><script>document.getElementById('x').textContent = 'from script'</script>\n",
    )
    .unwrap();
    let profile = format!("--user-data-dir={}", dir.join("profile").display());
    let url = format!("file://{}", page.display());
    let cmd = [
        "chromium",
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--no-first-run",
        &profile,
        "--dump-dom",
        &url,
    ];
    let r = same_output_under_shim("chromium", &cmd, &dir, &|| {});
    // No live deadlock. A potential one is reported in some runs, and is
    // one: a thread that posts a task to the main thread holds the task
    // queue's lock while it writes a wake-up byte into a pipe, blocking
    // (Debian's build of MessagePumpGlib makes it with pipe(2)), whose
    // only reader takes that lock between its reads. Only the pump's
    // writing one byte per empty queue keeps the pipe from filling.
    assert!(findings(&r, "deadlock").is_empty(), "{:#}", r["findings"]);
    for f in findings(&r, "potential-deadlock") {
        let title = f["title"].as_str().unwrap();
        assert!(
            title.contains("held across a blocking write() on pipe")
                && title.ends_with("whose only drainer needs that lock"),
            "{f:#}"
        );
    }
    // The browser, its Zygotes and the renderers they fork (which never
    // exec) all traced.
    let chromium = traced_count(&r, "/chromium");
    assert!(
        chromium >= 4,
        "{chromium} chromium processes: {:#}",
        r["processes"]
    );
    // Chromium has unwind tables for few of its functions, frame pointers
    // in all: its stacks go on past the first frame (each had one).
    let stacks: Vec<usize> = r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["stacks"].as_array().unwrap())
        .map(|s| s["frames"].as_array().unwrap().len())
        .collect();
    let deep = stacks.iter().filter(|&&n| n >= 4).count();
    assert!(
        stacks.len() >= 3 && deep * 4 >= stacks.len() * 3,
        "frames per stack: {stacks:?}"
    );
}
