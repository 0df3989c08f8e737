//! End-to-end tests: every example runs under the shim through
//! `holdcheck run`, and the JSON report is checked. Hanging examples run with
//! a timeout; holdcheck kills their process group, and each test checks that
//! nothing is left behind.

mod support;

use holdcheck::model::Node;
use serde_json::Value;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use support::*;

fn assert_no_deadlock(r: &Run, what: &str) {
    let bad: Vec<&Value> = r.report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "deadlock" || f["kind"] == "potential-deadlock")
        .collect();
    assert!(bad.is_empty(), "{what}: false deadlock finding: {bad:#?}");
}

#[test]
fn warnd_light_predicts_the_netlink_deadlock() {
    let r = run_example("warnd", &["--light"], 60);
    assert_eq!(r.code, 1, "findings exit status");
    assert_eq!(r.report["run"]["ending"], "exited");
    assert_eq!(r.report["run"]["code"], 0, "the light run never hangs");
    // The port the receiver printed is the port in the cycle.
    let port: u64 = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("warnd: receiver on netlink protocol 2 port "))
        .expect("warnd prints its port")
        .trim()
        .parse()
        .unwrap();

    let pd = findings(&r.report, "potential-deadlock");
    assert_eq!(
        pd.len(),
        1,
        "one potential deadlock: {:#?}",
        r.report["findings"]
    );
    let f = pd[0];
    let nodes = f["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["type"], "lock");
    assert_eq!(nodes[0]["kind"], "rwlock");
    assert_eq!(nodes[0]["mode"], "write");
    // Named by its variable; the address stays in the JSON.
    assert_eq!(nodes[0]["name"], "alarm_lock");
    assert!(nodes[0]["address"].as_str().unwrap().starts_with("0x"));
    assert!(
        f["title"]
            .as_str()
            .unwrap()
            .starts_with("rwlock alarm_lock (write) held across"),
        "{}",
        f["title"]
    );
    assert_eq!(nodes[1]["type"], "channel");
    assert_eq!(nodes[1]["family"], "netlink");
    assert_eq!(nodes[1]["direction"], "send");
    assert_eq!(nodes[1]["protocol"], 2);
    assert_eq!(nodes[1]["port"], port);
    assert_eq!(thread_names(f), ["nl-receiver", "warn-sender"]);

    let edges = f["edges"].as_array().unwrap();
    let send = edges
        .iter()
        .find(|e| e["relation"] == "held-across-call")
        .expect("held-across-call edge");
    assert_eq!(send["thread"]["name"], "warn-sender");
    assert_eq!(send["call"], "sendto");
    assert_eq!(send["held_mode"], "write");
    assert!(
        send["count"].as_u64().unwrap() >= 100,
        "every alarm counted: {send}"
    );
    // Timed with the kernel's coarse clock: the report gives its tick, so
    // a reader knows `max_ns` to within it.
    assert_eq!(send["max_ns_tick"], coarse_tick_ns(), "{send}");
    let fns = stack_functions(f, send);
    assert!(
        fns.iter().any(|s| s == "send_warn"),
        "sendto call site symbolised: {fns:?}"
    );
    assert!(fns.iter().any(|s| s == "fun_nl_sendto"), "{fns:?}");
    assert_eq!(send["held_at"]["function"], "raise_alarm");
    assert!(
        !fns.iter()
            .any(|s| s.contains("holdcheck") || s.contains("backtrace")),
        "no shim frames: {fns:?}"
    );

    let drain = edges
        .iter()
        .find(|e| e["relation"] == "drain")
        .expect("drain edge");
    assert_eq!(drain["thread"]["name"], "nl-receiver");
    assert_eq!(drain["wanted_mode"], "write");
    assert_eq!(drain["acquired_at"]["function"], "handle_warn");
    assert!(stack_functions(f, drain)
        .iter()
        .any(|s| s == "receiver_main"));
    assert!(f["location"]["file"].as_str().unwrap().ends_with("warnd.c"));
}

#[test]
fn warnd_light_text_report_reads_like_a_sanitizer_report() {
    let work = work_dir("warnd-text");
    let exe = examples().join("warnd");
    let (code, stdout, _) = holdcheck(
        &[
            "run",
            "--out",
            work.join("t").to_str().unwrap(),
            "--",
            exe.to_str().unwrap(),
            "--light",
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 1);
    assert!(
        stdout.contains("WARNING: holdcheck: potential deadlock"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Cycle: rwlock alarm_lock (write)"),
        "{stdout}"
    );
    assert!(stdout.contains("netlink NETLINK_USERSOCK port"), "{stdout}");
    // The queue with its process: sender and receiver are warnd.
    assert!(stdout.contains("(send) in warnd["), "{stdout}");
    assert!(stdout.contains("\"warn-sender\""), "{stdout}");
    assert!(stdout.contains("in send_warn "), "{stdout}");
    // Sends into a queue the receiver drains: most far shorter than the
    // clock's tick. The longest is said as bounds ("under 4.0 ms", "4-12
    // ms" for one the scheduler held up), never as a precise "0 ns" or
    // "4.0 ms" the clock cannot tell.
    let longest = stdout
        .split("400 calls, longest ")
        .nth(1)
        .and_then(|s| s.split(']').next())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        longest.starts_with("under ") || !longest.contains('.'),
        "{longest}"
    );
    assert!(!longest.ends_with(" ns"), "{longest}");
    assert!(stdout.contains("warnd.c:"), "{stdout}");
    assert!(
        stdout.contains("SUMMARY: holdcheck: potential-deadlock"),
        "{stdout}"
    );
    assert!(
        stdout.contains("1 potential deadlock in 1 process"),
        "{stdout}"
    );

    // The same traces, read again by `holdcheck report`.
    let (code, again, _) = holdcheck(
        &["report", work.join("t").to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(code, 1);
    assert!(again.contains("SUMMARY: holdcheck: potential-deadlock"));
}

/// The tick of `CLOCK_MONOTONIC_COARSE`, which the shim times calls with.
fn coarse_tick_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: t is a valid out-parameter.
    assert_eq!(
        unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut t) },
        0
    );
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Watchdog settings of the live tests: a short interval, a short stall
/// threshold.
const LIVE: &str = "watchdog_ms=300:stall_ms=1000";
const INTERVAL_MS: u64 = 300;

fn thread_state<'a>(f: &'a Value, name: &str) -> &'a Value {
    f["thread_states"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["thread"]["name"] == name)
        .unwrap_or_else(|| panic!("no thread {name} in {f:#}"))
}

/// The thread named `name` in an inspect report's overview.
fn inspect_task<'a>(r: &'a Value, name: &str) -> &'a Value {
    r["inspect"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == name)
        .unwrap_or_else(|| panic!("no thread {name} in {:#}", r["inspect"]))
}

/// The report's only finding, which must be of `kind`.
fn only_finding<'a>(r: &'a Value, kind: &str) -> &'a Value {
    assert_eq!(only_kinds(r), [kind], "{:#}", r["findings"]);
    &r["findings"][0]
}

fn only_kinds(r: &Value) -> Vec<String> {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap().to_string())
        .collect()
}

/// The stress run deadlocks for real in netlink_attachskb; the watchdog
/// says so while it hangs, within two intervals of the hang.
#[test]
fn warnd_stress_is_reported_live_as_a_deadlock() {
    let _cpu = exclusive_cpu();
    let r = run_example_with("warnd", &["--stress"], 6, LIVE);
    // The run ends by itself, well before the timeout, once the
    // watchdog saw the deadlock.
    assert_eq!(
        r.report["run"]["ending"], "deadlocked",
        "the stress run hangs, and run ends it"
    );
    assert_eq!(r.code, 1);
    let port: u64 = r
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("warnd: receiver on netlink protocol 2 port "))
        .expect("warnd prints its port")
        .trim()
        .parse()
        .unwrap();
    let d = findings(&r.report, "deadlock");
    assert_eq!(d.len(), 1, "{:#?}", r.report["findings"]);
    let f = d[0];
    let nodes = f["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert_eq!(nodes[0]["kind"], "rwlock");
    assert_eq!(nodes[0]["mode"], "write");
    assert_eq!(nodes[1]["family"], "netlink");
    assert_eq!(nodes[1]["direction"], "send");
    assert_eq!(nodes[1]["port"], port);
    let edges = f["edges"].as_array().unwrap();
    let send = edges
        .iter()
        .find(|e| e["relation"] == "held-across-call")
        .unwrap();
    assert_eq!(send["thread"]["name"], "warn-sender");
    assert_eq!(send["call"], "sendto");
    let drain = edges.iter().find(|e| e["relation"] == "drain").unwrap();
    assert_eq!(drain["thread"]["name"], "nl-receiver");
    assert_eq!(drain["wanted_mode"], "write");

    let sender = thread_state(f, "warn-sender");
    assert!(sender["holds"][0]
        .as_str()
        .unwrap()
        .starts_with("rwlock alarm_lock (write)"));
    assert!(sender["waiting"]
        .as_str()
        .unwrap()
        .starts_with("sendto() on netlink"));
    let receiver = thread_state(f, "nl-receiver");
    assert!(receiver["waiting"]
        .as_str()
        .unwrap()
        .starts_with("lock rwlock alarm_lock"));
    let i = receiver["stack"]
        .as_u64()
        .expect("the receiver's wait has a stack") as usize;
    assert_eq!(f["stacks"][i]["frames"][0]["function"], "handle_warn");

    // Reported within two intervals of the moment the cycle closed (the
    // later of the two waits), with a little slack for a loaded machine.
    let closed = [sender, receiver]
        .iter()
        .map(|t| t["waited_ms"].as_u64().unwrap())
        .min()
        .unwrap();
    assert!(
        closed < 2 * INTERVAL_MS + 100,
        "reported {closed} ms after the hang"
    );
    assert_eq!(
        findings(&r.report, "hazard").len(),
        0,
        "the held-across-call is part of the deadlock"
    );
}

#[test]
fn abba_is_a_potential_deadlock_with_both_acquisition_stacks() {
    let r = run_example("abba", &[], 60);
    assert_eq!(r.code, 1);
    let pd = findings(&r.report, "potential-deadlock");
    assert_eq!(pd.len(), 1, "{:#?}", r.report["findings"]);
    let f = pd[0];
    let nodes = f["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    assert!(nodes
        .iter()
        .all(|n| n["type"] == "lock" && n["kind"] == "mutex"));
    assert_eq!(thread_names(f), ["a-then-b", "b-then-a"]);
    let edges = f["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2);
    let mut holders = Vec::new();
    for e in edges {
        assert_eq!(e["relation"], "lock-order");
        let fns = stack_functions(f, e);
        assert_eq!(
            fns.first().map(String::as_str),
            Some("take_second"),
            "{fns:?}"
        );
        holders.push(e["held_at"]["function"].as_str().unwrap().to_string());
    }
    holders.sort();
    assert_eq!(holders, ["a_then_b", "b_then_a"]);
}

#[test]
fn abba_that_really_hangs_is_a_live_deadlock_with_both_owners() {
    let start = Instant::now();
    let r = run_example_with("abba", &["--hang"], 3, LIVE);
    assert!(start.elapsed() < Duration::from_secs(30));
    assert_eq!(r.report["run"]["ending"], "deadlocked");
    assert_eq!(
        only_kinds(&r.report),
        ["deadlock"],
        "the predicted cycle is the observed one"
    );
    let f = findings(&r.report, "deadlock")[0];
    assert!(f["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["kind"] == "mutex"));
    for name in ["a-then-b", "b-then-a"] {
        let t = thread_state(f, name);
        assert_eq!(t["holds"].as_array().unwrap().len(), 1, "{t}");
        assert!(t["waiting"].as_str().unwrap().starts_with("lock mutex"));
    }
    // The locks by their variables; a mutex has no mode in words.
    let mut names: Vec<&str> = f["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["lock_a", "lock_b"]);
    // In the text, each thread's stack once (its edge's, not again under
    // Threads).
    let (_, text, _) = holdcheck(
        &["report", r.trace_dir.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(text.matches("in take_second ").count(), 2, "{text}");
    assert!(
        text.contains("Cycle: mutex lock_a -> mutex lock_b -> mutex lock_a")
            || text.contains("Cycle: mutex lock_b -> mutex lock_a -> mutex lock_b"),
        "{text}"
    );
}

/// Locks in heap objects have no variable: each is named by where it was
/// initialised (account_new), with its address to tell the two apart; the
/// cycle line uses aliases then, and every thread says where it was made.
#[test]
fn heap_locks_are_named_by_their_init_site_and_threads_by_their_creation() {
    let r = run_example("abba", &["--heap"], 30);
    let f = findings(&r.report, "potential-deadlock")[0];
    let nodes = f["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2);
    for n in nodes {
        assert!(n.get("name").is_none(), "{n}");
        assert_eq!(n["origin"]["how"], "init", "{n}");
        assert_eq!(n["origin"]["at"]["function"], "account_new", "{n}");
        assert!(n["origin"]["at"]["file"]
            .as_str()
            .unwrap()
            .ends_with("abba.c"));
    }
    assert_ne!(nodes[0]["address"], nodes[1]["address"]);
    // Both threads were made by main, through spawn, on two lines.
    let created = f["created"].as_array().expect("creations");
    let mut made: Vec<(String, u64)> = created
        .iter()
        .map(|c| {
            assert_eq!(c["by"]["tid"], c["by"]["pid"], "by the main thread: {c}");
            let fns = functions_at(f, &c["stack"]);
            assert!(
                fns.starts_with(&["spawn".to_string(), "main".to_string()]),
                "{fns:?}"
            );
            let line = f["stacks"][c["stack"].as_u64().unwrap() as usize]["frames"][1]["line"]
                .as_u64()
                .unwrap();
            (c["thread"]["name"].as_str().unwrap().to_string(), line)
        })
        .collect();
    made.sort();
    assert_eq!(made.len(), 2, "{created:?}");
    assert_eq!(made[0].0, "a-then-b");
    assert_eq!(made[1].0, "b-then-a");
    assert_ne!(
        made[0].1, made[1].1,
        "each thread has its own creation stack"
    );

    let (_, text, _) = holdcheck(
        &["report", r.trace_dir.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert!(text.contains("Cycle: M0 -> M1 -> M0"), "{text}");
    assert!(
        text.contains(" initialised in account_new (abba.c:"),
        "{text}"
    );
    assert!(
        text.contains("and then acquires M"),
        "predicted, not waited: {text}"
    );
    assert_eq!(text.matches("(main thread) at:").count(), 2, "{text}");
    assert!(
        text.contains("holdcheck: 1 potential deadlock in 1 process"),
        "{text}"
    );
}

/// A default mutex locked again by its holder hangs for ever: a deadlock of
/// one thread, with the thread that waits behind it.
#[test]
fn a_mutex_locked_again_by_its_holder_is_a_live_deadlock_of_one_thread() {
    let r = run_example_with("relock", &[], 3, LIVE);
    assert_eq!(r.report["run"]["ending"], "deadlocked");
    assert_eq!(only_kinds(&r.report), ["deadlock"], "{:#}", r.report);
    let f = findings(&r.report, "deadlock")[0];
    assert!(
        f["title"].as_str().unwrap().contains("holds itself"),
        "{}",
        f["title"]
    );
    let nodes = f["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 1);
    assert_eq!(nodes[0]["kind"], "mutex");
    let edges = f["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 1);
    assert_eq!(
        (edges[0]["from"].as_u64(), edges[0]["to"].as_u64()),
        (Some(0), Some(0))
    );
    assert!(stack_functions(f, &edges[0]).contains(&"refresh_cache".to_string()));
    let main = thread_state(f, "relock");
    assert_eq!(main["holds"].as_array().unwrap().len(), 1, "{main}");
    assert!(main["waiting"].as_str().unwrap().starts_with("lock mutex"));
    // The worker waits behind it.
    assert_eq!(f["waiters"], 1);
    thread_state(f, "cache-worker");
}

#[test]
fn a_write_lock_asked_for_under_its_own_read_lock_is_a_live_deadlock() {
    let r = run_example_with("relock", &["--rwlock"], 3, LIVE);
    assert_eq!(r.report["run"]["ending"], "deadlocked");
    assert_eq!(only_kinds(&r.report), ["deadlock"], "{:#}", r.report);
    let f = findings(&r.report, "deadlock")[0];
    assert_eq!(f["nodes"][0]["kind"], "rwlock");
    assert!(stack_functions(f, &f["edges"][0]).contains(&"rewrite_table".to_string()));
}

/// An error-checking mutex fails the relock with EDEADLK, a recursive one
/// grants it: neither waits, and neither is a finding.
#[test]
fn relocks_that_glibc_refuses_or_grants_are_not_findings() {
    for (flag, rc) in [("--errorcheck", "EDEADLK"), ("--recursive", "0")] {
        let r = run_example_with("relock", &[flag], 30, LIVE);
        assert_eq!(r.report["run"]["code"], 0, "{flag}");
        assert!(
            r.stdout.contains(&format!("second lock returned {rc}")),
            "{flag}: {}",
            r.stdout
        );
        assert_no_deadlock(&r, flag);
        assert!(
            only_kinds(&r.report).is_empty(),
            "{flag}: {:#}",
            r.report["findings"]
        );
    }
}

/// Without --timeout, and with --keep-running (else run ends a deadlocked
/// command by itself), Ctrl-C (SIGINT to holdcheck) ends the hung command's
/// process group and reports what the watchdog saw.
/// Runs warnd --stress under `holdcheck run` with extra options: exit
/// status, stderr, the JSON report.
fn warnd_stress_run(name: &str, extra: &[&str]) -> (i32, String, Value) {
    warnd_stress_run_with(name, extra, "watchdog_ms=500")
}

/// [`warnd_stress_run`] with the shim's options.
fn warnd_stress_run_with(name: &str, extra: &[&str], options: &str) -> (i32, String, Value) {
    let work = work_dir(name);
    let report = work.join("r.json");
    let exe = examples().join("warnd");
    let mut args = vec!["run", "--format", "json", "-o", report.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["--", exe.to_str().unwrap(), "--stress"]);
    let (code, _, stderr) = holdcheck_with(&args, Duration::from_secs(60), options);
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    for p in r["processes"].as_array().unwrap() {
        assert_gone(p["pid"].as_i64().unwrap() as i32);
    }
    (code, stderr, r)
}

/// `on_deadlock=abort`: the watchdog says what it saw, and the process
/// aborts only once that is in its trace (records are written in batches,
/// perhaps by another thread: an abort must not lose the one in flight).
/// The run, told to keep the deadlocked command running, sees it die of
/// SIGABRT, and reports the deadlock from the trace.
#[test]
fn on_deadlock_abort_aborts_once_the_deadlock_is_in_the_trace() {
    let (code, stderr, r) = warnd_stress_run_with(
        "abort",
        &["--keep-running", "--timeout", "30"],
        "watchdog_ms=500:on_deadlock=abort",
    );
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("on_deadlock=abort: aborting"), "{stderr}");
    assert_eq!(r["run"]["ending"], "signalled", "{:#}", r["run"]);
    assert_eq!(r["run"]["code"], libc::SIGABRT, "{:#}", r["run"]);
    // A deadlock is what the watchdog observed: it came from the trace.
    assert_eq!(findings(&r, "deadlock").len(), 1, "{:#}", r["findings"]);
}

/// No --timeout: the run ends once the watchdog saw the deadlock (the
/// guard of 60 s would fail the test otherwise).
#[test]
fn a_deadlocked_run_without_a_timeout_ends_by_itself() {
    let (code, stderr, r) = warnd_stress_run("ends-itself", &[]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("the watchdog saw a deadlock"), "{stderr}");
    assert_eq!(r["run"]["ending"], "deadlocked");
    assert_eq!(findings(&r, "deadlock").len(), 1, "{:#}", r["findings"]);
}

/// A command killed at the timeout while main joins a worker that waits
/// in netlink `recvfrom` for nothing: no lock anywhere, yet the report
/// explains the hang, chain and queue, instead of "0 findings".
#[test]
fn a_run_killed_at_the_timeout_explains_what_every_thread_waited_for() {
    let r = run_example("waits", &["join-recv"], 3);
    assert_eq!(r.report["run"]["ending"], "timed-out");
    assert_eq!(r.code, 1, "{:#}", r.report["findings"]);
    assert_eq!(
        only_kinds(&r.report),
        ["hang"],
        "{:#}",
        r.report["findings"]
    );
    let f = &r.report["findings"][0];
    let title = f["title"].as_str().unwrap();
    for want in [
        "at the timeout",
        "\"waits\" waits in pthread_join for",
        "\"nl-worker\", which is blocked in recvfrom() on netlink NETLINK_USERSOCK port",
        "nothing received",
    ] {
        assert!(title.contains(want), "{want:?} in {title}");
    }
    assert_eq!(f["nodes"][0]["family"], "netlink", "{f:#}");
    let worker = thread_state(f, "nl-worker");
    assert!(worker["waited_ms"].as_u64().unwrap() >= 2000, "{worker}");
    let frames = functions_at(f, &worker["stack"]);
    assert!(frames.iter().any(|x| x == "nl_worker_main"), "{frames:?}");
    let main = thread_state(f, "waits");
    assert!(
        main["waiting"]
            .as_str()
            .unwrap()
            .starts_with("pthread_join()"),
        "{main}"
    );
}

/// `run` with no `--timeout` on a program that hangs where no watchdog
/// is: the group is watched from outside, and the run ends by itself.
fn run_without_timeout(name: &str, cmd: &[&str]) -> Value {
    let work = work_dir(name);
    let out = work.join("r.json");
    let mut args = vec!["run", "--format", "json", "-o", out.to_str().unwrap(), "--"];
    args.extend_from_slice(cmd);
    let (code, _, err) = holdcheck(&args, Duration::from_secs(60));
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("every thread of the command is blocked"),
        "{err}"
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(r["run"]["ending"], "hung", "{:#}", r["run"]);
    for p in r["processes"].as_array().unwrap() {
        assert_gone(p["pid"].as_i64().unwrap() as i32);
    }
    r
}

/// A single-threaded program that locks its mutex again has no watchdog
/// (the shim starts none for one thread): the run sees it from outside,
/// ends it, and the snapshot says it waits for itself.
#[test]
fn a_single_threaded_relock_ends_the_run_by_itself_as_a_deadlock() {
    let exe = examples().join("single");
    let r = run_without_timeout("single-relock", &[exe.to_str().unwrap(), "relock"]);
    assert_eq!(only_kinds(&r), ["deadlock"], "{:#}", r["findings"]);
    let f = &r["findings"][0];
    assert_eq!(f["location"]["function"], "reload_config", "{f:#}");
}

/// A static binary (no shim at all) reading a pipe only it could write.
#[test]
fn a_static_binary_stuck_in_read_ends_the_run_by_itself_as_a_hang() {
    let exe = examples().join("single_static");
    let r = run_without_timeout("single-static", &[exe.to_str().unwrap(), "read"]);
    assert_eq!(only_kinds(&r), ["hang"], "{:#}", r["findings"]);
    let f = &r["findings"][0];
    assert!(
        f["title"].as_str().unwrap().contains("read() on pipe"),
        "{f:#}"
    );
    assert_eq!(f["nodes"][0]["family"], "pipe", "{f:#}");
}

/// A parent in wait4 for a child stuck reading a pipe only they hold: the
/// hang follows the wait to the child's thread, across the two processes.
#[test]
fn a_parent_waiting_for_a_stuck_child_is_one_hang_across_both() {
    let exe = examples().join("single");
    let r = run_without_timeout("single-child", &[exe.to_str().unwrap(), "child"]);
    assert_eq!(only_kinds(&r), ["hang"], "{:#}", r["findings"]);
    let f = &r["findings"][0];
    let title = f["title"].as_str().unwrap();
    assert!(
        title.contains("waits in wait4 for the exit of process")
            && title.contains("is blocked in read() on pipe"),
        "{title}"
    );
    assert_eq!(f["processes"].as_array().unwrap().len(), 2, "{f:#}");
}

/// The lost wakeup: two consumers wait on condition variables whose
/// signals came first, main joins them. No lock is held; every thread is
/// blocked in a wait only another could end: a hang with each one's wait,
/// live (the run ends by itself) and at a timeout alike.
#[test]
fn a_lost_wakeup_is_a_hang_with_every_threads_wait() {
    let exe = examples().join("lost_wakeup");
    let r = run_without_timeout("lost-wakeup", &[exe.to_str().unwrap()]);
    assert_eq!(only_kinds(&r), ["hang"], "{:#}", r["findings"]);
    let f = &r["findings"][0];
    let mut names = thread_names(f);
    names.sort();
    assert_eq!(names, ["consumer-a", "consumer-b", "lost_wakeup"], "{f:#}");
    for c in ["consumer-a", "consumer-b"] {
        let t = thread_state(f, c);
        let frames = functions_at(f, &t["stack"]);
        assert!(frames.iter().any(|x| x == "consumer_main"), "{frames:?}");
    }
    assert!(
        thread_state(f, "lost_wakeup")["waiting"]
            .as_str()
            .unwrap()
            .starts_with("pthread_join()"),
        "{f:#}"
    );
    // With a timeout, the same (ended before it).
    let r = run_example("lost_wakeup", &[], 30);
    assert_eq!(r.report["run"]["ending"], "hung");
    assert_eq!(
        only_kinds(&r.report),
        ["hang"],
        "{:#}",
        r.report["findings"]
    );
}

/// --keep-running: the deadlocked command runs on to the timeout.
#[test]
fn keep_running_lets_a_deadlocked_command_run_to_the_timeout() {
    let (code, stderr, r) = warnd_stress_run("keep-running", &["--keep-running", "--timeout", "4"]);
    assert_eq!(code, 1, "{stderr}");
    assert!(stderr.contains("Ctrl-C ends it"), "{stderr}");
    assert_eq!(r["run"]["ending"], "timed-out");
    assert_eq!(findings(&r, "deadlock").len(), 1, "{:#}", r["findings"]);
}

#[test]
fn ctrl_c_ends_a_hung_run_and_reports() {
    let work = work_dir("ctrl-c");
    let report = work.join("r.json");
    let exe = examples().join("abba");
    let child = holdcheck_command()
        .args([
            "run",
            "--format",
            "json",
            "-o",
            report.to_str().unwrap(),
            "--keep-running",
            "--",
        ])
        .arg(&exe)
        .arg("--hang")
        .env("HOLDCHECK_OPTIONS", LIVE)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    std::thread::sleep(Duration::from_millis(2500));
    // SAFETY: signalling our own child.
    unsafe { libc::kill(pid, libc::SIGINT) };
    let start = Instant::now();
    let out = child.wait_with_output().unwrap();
    assert!(start.elapsed() < Duration::from_secs(20));
    assert_eq!(out.status.code(), Some(1));
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["run"]["ending"], "interrupted");
    assert_eq!(findings(&r, "deadlock").len(), 1, "{:#}", r["findings"]);
    for p in r["processes"].as_array().unwrap() {
        assert_gone(p["pid"].as_i64().unwrap() as i32);
    }
}

#[test]
fn the_rwlock_stall_names_its_root_and_counts_the_waiters() {
    let r = run_example_with("rwlock_stall", &[], 3, LIVE);
    let f = only_finding(&r.report, "stall");
    assert_stall_root(f, "slow-holder", "rwlock table (read)", "read() on pipe");
    assert_eq!(f["waiters"], 4, "the writer and three readers");
    assert!(functions_at(f, &f["thread_states"][0]["stack"]).contains(&"slow_holder".to_string()));
}

/// The mmap_sem story that ends by itself: a 3 s read under a read lock,
/// a writer queued, 20 readers behind it. The stall never reaches
/// `stall_ms` (5 s), yet it is reported once it ended, with its root, the
/// read, the 21 threads and the longest wait the watchdog saw.
#[test]
fn a_stall_that_ended_by_itself_is_still_a_stall() {
    let r = run_example("rwlock_stall", &["--ends"], 30);
    assert_eq!(r.report["run"]["ending"], "exited", "{:#}", r.report["run"]);
    let f = only_finding(&r.report, "stall");
    assert_stall_root(f, "slow-holder", "rwlock table (read)", "read() on pipe");
    assert_eq!(f["waiters"], 21, "the writer and twenty readers");
    let title = f["title"].as_str().unwrap();
    assert!(title.contains("ended by itself"), "{title}");
    let longest = f["thread_states"].as_array().unwrap()[1..]
        .iter()
        .map(|t| t["waited_ms"].as_u64().unwrap())
        .max()
        .unwrap();
    assert!((1000..5000).contains(&longest), "{longest} ms");
    assert!(title.contains(&format!("at least {longest} ms")), "{title}");
}

#[test]
fn a_request_without_reply_is_one_stalled_call_and_the_idle_server_none() {
    let r = run_example_with("nl_request", &[], 3, LIVE);
    let f = only_finding(&r.report, "stalled-call");
    let t = &f["thread_states"][0];
    assert_eq!(t["thread"]["name"], "metrics-client");
    assert_eq!(t["awaiting_reply"], true);
    assert!(t["waiting"]
        .as_str()
        .unwrap()
        .starts_with("recvfrom() on netlink NETLINK_USERSOCK"));
    assert!(functions_at(f, &t["stack"]).contains(&"query_metrics".to_string()));
}

/// A call made again with no lock held leaves its wait published after it
/// returns (the hook ends in a jump to the call); the watchdog believes it
/// only while /proc shows the thread in that call. The thousand-and-first
/// question is never answered: that recv is a stalled call.
#[test]
fn a_call_made_again_that_never_returns_is_a_stalled_call() {
    let r = run_example_with("call_again", &[], 3, LIVE);
    // The idle server is no finding.
    let t = &only_finding(&r.report, "stalled-call")["thread_states"][0];
    assert_eq!(t["thread"]["name"], "client", "{t}");
    assert_eq!(t["awaiting_reply"], true, "{t}");
    assert!(
        t["waiting"]
            .as_str()
            .unwrap()
            .starts_with("recv() on unix socket"),
        "{t}"
    );
}

/// The same thousand questions, all answered; then the client sleeps
/// holding a mutex another thread waits for. Its last recv's wait is still
/// published, but the client is no longer in it: the stall's root is
/// running (asleep), not blocked in recv, and no stalled call is made up.
#[test]
fn a_wait_left_published_after_its_call_is_not_believed_once_the_call_returned() {
    let r = run_example_with("call_again", &["--after"], 30, LIVE);
    assert_eq!(r.stdout, "call_again: ok\n");
    let f = only_finding(&r.report, "stall");
    let root = &f["thread_states"][0];
    assert_eq!(root["thread"]["name"], "client", "{f:#}");
    assert!(
        root["holds"][0]
            .as_str()
            .unwrap()
            .contains("hold_table_asleep"),
        "{root}"
    );
    assert!(root["waiting"].is_null(), "{root}");
    let title = f["title"].as_str().unwrap();
    assert!(
        title.ends_with("which holds the lock and is running"),
        "{title}"
    );
}

#[test]
fn a_mutex_held_across_a_write_into_a_full_pipe_is_a_live_deadlock() {
    let r = run_example_with("pipe_deadlock", &[], 3, LIVE);
    let d = findings(&r.report, "deadlock");
    assert_eq!(d.len(), 1, "{:#?}", r.report["findings"]);
    let nodes = d[0]["nodes"].as_array().unwrap();
    assert_eq!(nodes[0]["kind"], "mutex");
    assert_eq!(nodes[1]["family"], "pipe");
    assert_eq!(nodes[1]["direction"], "send");
    // main too: it joins the writer (seen from outside, in the group
    // snapshot), so it waits on the deadlock.
    let names = thread_names(d[0]);
    assert!(
        names == ["log-reader", "log-writer"]
            || names == ["log-reader", "log-writer", "pipe_deadlock"],
        "{names:?}"
    );
}

#[test]
fn idle_threads_condvar_waits_and_healthy_programs_get_no_live_finding() {
    // Waits of 1.5 s against a 0.5 s stall threshold.
    let opts = "watchdog_ms=100:stall_ms=500";
    let r = run_example_with("idle", &["1500"], 30, opts);
    assert_eq!(r.code, 0, "{:#?}", r.report["findings"]);
    assert_eq!(r.report["run"]["code"], 0);
    for (example, args) in [
        ("condvar", &[][..]),
        ("warnd", &["--light"][..]),
        ("gate_lock", &[][..]),
    ] {
        let r = run_example_with(example, args, 30, opts);
        let live: Vec<String> = only_kinds(&r.report)
            .into_iter()
            .filter(|k| k == "deadlock" || k == "stall" || k == "stalled-call")
            .collect();
        assert!(live.is_empty(), "{example}: {live:?}");
    }
}

#[test]
fn gate_lock_is_not_a_deadlock() {
    let r = run_example("gate_lock", &[], 60);
    assert_no_deadlock(&r, "gate lock");
    let m = model_of(&r.trace_dir);
    assert!(
        has_inversion(&m),
        "the trap was exercised: A→B and B→A are in the trace"
    );
}

#[test]
fn trylock_is_not_a_deadlock() {
    let r = run_example("trylock", &[], 60);
    assert_no_deadlock(&r, "trylock");
    // The trap was exercised: 600 trylocks under a held lock, some of them
    // taking their lock (both orders of A and B, one of them only tried).
    let taken: u32 = r
        .stdout
        .strip_prefix("trylock: 600 tries under a held lock, ")
        .and_then(|s| s.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{}", r.stdout));
    assert!(taken > 0, "{}", r.stdout);
}

/// A lock held across `pthread_cond_wait` whose only signaller takes it
/// between signals: predicted from a run that never hangs.
#[test]
fn a_lock_held_across_a_condvar_wait_its_signaller_needs_is_predicted() {
    let r = run_example("cond_lock", &["--light"], 60);
    assert_eq!(r.report["run"]["code"], 0);
    assert_eq!(
        only_kinds(&r.report),
        ["potential-deadlock"],
        "{:#}",
        r.report
    );
    let f = findings(&r.report, "potential-deadlock")[0];
    let nodes = f["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{nodes:#?}");
    let lock = nodes.iter().find(|n| n["type"] == "lock").unwrap();
    assert_eq!(lock["kind"], "mutex");
    let cv = nodes.iter().find(|n| n["type"] == "channel").unwrap();
    assert_eq!(cv["family"], "condvar");
    assert_eq!(cv["direction"], "recv");
    let edge = |rel: &str| edge_of(f, rel);
    let held = edge("held-across-call");
    assert_eq!(held["thread"]["name"], "flusher");
    assert_eq!(held["call"], "pthread_cond_wait");
    assert!(stack_functions(f, held).contains(&"wait_for_batch".to_string()));
    let produce = edge("produce");
    assert_eq!(produce["thread"]["name"], "collector");
    assert_eq!(
        produce["acquired_at"]["function"], "reload_config",
        "{produce:#}"
    );
}

#[test]
fn a_lock_held_across_a_condvar_wait_that_really_hangs_is_a_live_deadlock() {
    let r = run_example_with("cond_lock", &["--hang"], 3, LIVE);
    assert_eq!(r.report["run"]["ending"], "deadlocked");
    assert_eq!(only_kinds(&r.report), ["deadlock"], "{:#}", r.report);
    let f = findings(&r.report, "deadlock")[0];
    let flusher = thread_state(f, "flusher");
    assert_eq!(flusher["holds"].as_array().unwrap().len(), 1, "{flusher}");
    let waiting = flusher["waiting"].as_str().unwrap();
    assert!(
        waiting.contains("pthread_cond_wait") && waiting.contains("condition variable"),
        "{waiting}"
    );
    let collector = thread_state(f, "collector");
    assert!(
        collector["waiting"]
            .as_str()
            .unwrap()
            .starts_with("lock mutex"),
        "{collector}"
    );
}

/// Threads idle on condition variables only they signalled so far (one
/// waits on the one it signalled to say it was up; two wait on the one
/// each of them signalled): the watchdog sees them wait, each for a
/// feeder it saw, for longer than its interval, and must not call that a
/// deadlock, which ends the program (mariadbd was killed so at start-up).
#[test]
fn threads_idle_on_condvars_only_they_signalled_are_not_a_deadlock() {
    let r = run_example_with("idle_waits", &[], 60, LIVE);
    assert_eq!(r.report["run"]["code"], 0, "{:#}", r.report["run"]);
    assert_eq!(r.stdout, "idle_waits: ok\n");
    assert_eq!(
        r.report["findings"],
        serde_json::json!([]),
        "{:#}",
        r.report["findings"]
    );
}

/// The same program with the lock let go before the wait: nothing.
#[test]
fn a_condvar_wait_under_no_other_lock_is_not_a_finding() {
    let r = run_example_with("cond_lock", &["--ordered"], 60, LIVE);
    assert_eq!(r.report["run"]["code"], 0);
    assert!(
        only_kinds(&r.report).is_empty(),
        "{:#}",
        r.report["findings"]
    );
    // The signals and waits were seen: the condition variable is a queue
    // of the model, with its signaller's locks between signals.
    let m = model_of(&r.trace_dir);
    assert!(m.nodes.iter().any(|n| format!("{n:?}").contains("Condvar")));
}

/// The same cycle, with a second signaller that never takes the lock: it
/// can always wake the waiter, so the wait is no cycle.
#[test]
fn a_condvar_that_another_signaller_can_wake_is_no_cycle() {
    let r = run_example("cond_lock", &["--light", "--two-signallers"], 60);
    assert_eq!(r.report["run"]["code"], 0);
    assert!(
        findings(&r.report, "potential-deadlock").is_empty(),
        "{:#}",
        r.report["findings"]
    );
    assert!(thread_names_of_run(&r).contains(&"heartbeat".to_string()));
}

fn thread_names_of_run(r: &Run) -> Vec<String> {
    let m = model_of(&r.trace_dir);
    m.processes
        .values()
        .flat_map(|p| p.threads.values().cloned())
        .collect()
}

#[test]
fn condvar_waits_are_not_findings() {
    let r = run_example("condvar", &[], 60);
    assert_eq!(
        r.code, 0,
        "no finding of any kind: {:#?}",
        r.report["findings"]
    );
    assert_eq!(r.report["summary"]["hazard"], 0);
    let m = model_of(&r.trace_dir);
    assert!(
        !m.edges.is_empty(),
        "the queue lock → stats lock order was recorded"
    );
}

#[test]
fn readers_on_a_default_rwlock_are_not_a_deadlock() {
    let r = run_example("rwlock_readers", &[], 60);
    assert_no_deadlock(&r, "reader/reader on a default rwlock");
    assert!(
        has_inversion(&model_of(&r.trace_dir)),
        "read→mutex and mutex→read were recorded"
    );
}

#[test]
fn readers_on_a_writer_preferring_rwlock_are_a_deadlock() {
    let r = run_example("rwlock_readers", &["--writer-preferring"], 60);
    let pd = findings(&r.report, "potential-deadlock");
    assert_eq!(pd.len(), 1, "{:#?}", r.report["findings"]);
    let rw = pd[0]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["kind"] == "rwlock")
        .expect("the rwlock is in the cycle");
    assert_eq!(rw["mode"], "read");
    assert_eq!(rw["writer_preferring"], true);
}

#[test]
fn a_destroyed_and_reused_address_is_not_a_deadlock() {
    let r = run_example("reuse", &[], 60);
    assert_no_deadlock(&r, "reused lock address");
    let m = model_of(&r.trace_dir);
    let gens: Vec<(u64, u32)> = m
        .nodes
        .iter()
        .filter_map(|n| match n {
            Node::Lock { lock, .. } => Some((lock.addr, lock.gen)),
            _ => None,
        })
        .collect();
    assert!(
        gens.iter()
            .any(|(a, g)| gens.iter().any(|(a2, g2)| a == a2 && g != g2)),
        "one address, two lock generations: {gens:?}"
    );
}

#[test]
fn non_blocking_sends_under_a_lock_are_not_findings() {
    let r = run_example("nonblocking", &[], 60);
    assert_eq!(r.code, 0, "{:#?}", r.report["findings"]);
    assert_eq!(
        r.report["processes"].as_array().unwrap().len(),
        1,
        "the shim ran"
    );
}

#[test]
fn waits_between_queues_made_by_calls_made_again_are_all_recorded() {
    use holdcheck_format::{Channel, Direction, Record};
    // One thread, two socket pairs A and B: a steady loop on A, one on B,
    // then one through both (see queuewaits.c). Every call after a loop's
    // first turn is the shim's fast path, which notes its waits as bits;
    // the third loop's waits between calls must all be in the trace: 12
    // (4 queues, each waiting between two of its calls on the 3 others).
    // Before the bits, a third wait between two calls was crowded out by
    // the two before it (10 of 12).
    let r = run_example("queuewaits", &["2000"], 60);
    assert_eq!(r.code, 0, "{}", r.stdout);
    let inode = |name: &str| -> u64 {
        let words: Vec<&str> = r.stdout.lines().next().unwrap().split(' ').collect();
        let at = words.iter().position(|w| *w == name).unwrap();
        words[at + 1].parse().unwrap()
    };
    let (a, b) = (inode("A"), inode("B"));
    let queue = |c: &Channel, d: &Direction| -> String {
        let Channel::Unix { inode: Some(i), .. } = c else {
            panic!("not a socket pair's queue: {c:?}");
        };
        let pair = if *i == a {
            "A"
        } else if *i == b {
            "B"
        } else {
            "?"
        };
        format!("{pair}/{d:?}")
    };
    let mut waits: Vec<String> = holdcheck::trace::read_dirs(std::slice::from_ref(&r.trace_dir))
        .unwrap()
        .into_iter()
        .flat_map(|t| t.records)
        .filter_map(|rec| match rec {
            Record::QueueWait {
                channel,
                direction,
                waited,
                waited_direction,
                ..
            } => Some(format!(
                "{} <- {}",
                queue(&channel, &direction),
                queue(&waited, &waited_direction)
            )),
            _ => None,
        })
        .collect();
    waits.sort();
    waits.dedup();
    let queues = ["A/Send", "A/Recv", "B/Send", "B/Recv"];
    let mut want: Vec<String> = queues
        .iter()
        .flat_map(|q| {
            queues
                .iter()
                .filter(move |w| *w != q)
                .map(move |w| format!("{q} <- {w}"))
        })
        .collect();
    want.sort();
    assert_eq!(waits, want);
    assert_eq!(
        r.report["findings"],
        serde_json::json!([]),
        "{:#}",
        r.report
    );
}

#[test]
fn holdcheck_errors_are_clear_and_have_their_own_status() {
    let empty = work_dir("empty");
    let (code, _, err) = holdcheck(
        &["report", empty.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2);
    assert!(err.contains("no trace files"), "{err}");

    let (code, _, err) = holdcheck(
        &["run", "--", "/nonexistent/program"],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2);
    assert!(err.contains("cannot start /nonexistent/program"), "{err}");

    let (code, _, err) = holdcheck(
        &["run", "--timeout", "soon", "--", "true"],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2);
    assert!(err.contains("not a positive number of seconds"), "{err}");

    // A static program ignores LD_PRELOAD: said, not mistaken for clean.
    let (code, _, err) = holdcheck(
        &["run", "--", "/sbin/ldconfig", "-p"],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2);
    assert!(err.contains("did not load"), "{err}");
}

#[test]
fn the_shim_leaves_a_programs_output_and_status_alone() {
    let work = work_dir("status");
    let (code, stdout, _) = holdcheck(
        &[
            "run",
            "--format",
            "json",
            "-o",
            work.join("r.json").to_str().unwrap(),
            "--",
            "sh",
            "-c",
            "echo hello; printf 'a\\nb\\n' | sort -r; exit 3",
        ],
        Duration::from_secs(30),
    );
    assert_eq!(code, 0, "no findings");
    assert_eq!(stdout, "hello\nb\na\n");
    let r: Value =
        serde_json::from_str(&std::fs::read_to_string(work.join("r.json")).unwrap()).unwrap();
    assert_eq!(r["run"]["code"], 3);
    assert!(
        r["processes"].as_array().unwrap().len() >= 2,
        "the pipeline's children were traced too"
    );
}

/// An example started without the shim, in its own process group, killed
/// (the whole group) when dropped.
struct Hung {
    child: std::process::Child,
    stdout: String,
}

impl Hung {
    /// Starts the example and waits until it has hung.
    fn start(example: &str, args: &[&str]) -> Hung {
        let mut child = Command::new(examples().join(example))
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        // The first line of output (warnd's port), without waiting for EOF.
        let mut stdout = String::new();
        if example == "warnd" || args.first().is_some_and(|a| a.starts_with("accept")) {
            use std::io::BufRead;
            let out = child.stdout.take().unwrap();
            std::io::BufReader::new(out).read_line(&mut stdout).unwrap();
        }
        std::thread::sleep(Duration::from_millis(1200));
        Hung { child, stdout }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The one child of process `parent` (a zombie too).
    fn only_child(parent: u32) -> u32 {
        std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
            .unwrap()
            .trim()
            .parse()
            .expect("one child")
    }

    fn tid_named(&self, name: &str) -> u64 {
        let pid = self.pid();
        std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| {
                std::fs::read_to_string(e.path().join("comm")).is_ok_and(|c| c.trim() == name)
            })
            .and_then(|e| e.file_name().to_str()?.parse().ok())
            .unwrap_or_else(|| panic!("no thread {name}"))
    }
}

impl Drop for Hung {
    fn drop(&mut self) {
        // SAFETY: killing our own child's process group.
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

fn inspect_json(pid: u32) -> (i32, Value, Duration) {
    inspect_json_of(&[pid], &[])
}

/// `holdcheck inspect` of several processes as one, with more options.
fn inspect_json_of(pids: &[u32], options: &[&str]) -> (i32, Value, Duration) {
    let work = work_dir("inspect");
    let out = work.join("r.json");
    let pids: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
    let mut args = vec!["inspect", "--format", "json", "-o", out.to_str().unwrap()];
    args.extend_from_slice(options);
    args.extend(pids.iter().map(String::as_str));
    let start = Instant::now();
    let (code, _, err) = holdcheck(&args, Duration::from_secs(60));
    let took = start.elapsed();
    let text = std::fs::read_to_string(&out).unwrap_or_else(|e| panic!("no report ({e}): {err}"));
    (code, serde_json::from_str(&text).unwrap(), took)
}

#[test]
fn inspect_finds_the_warnd_deadlock_without_the_shim() {
    let _cpu = exclusive_cpu();
    let hung = Hung::start("warnd", &["--stress"]);
    let port: u64 = hung
        .stdout
        .trim()
        .strip_prefix("warnd: receiver on netlink protocol 2 port ")
        .expect("warnd prints its port")
        .parse()
        .unwrap();
    let sender = hung.tid_named("warn-sender");
    let (code, r, took) = inspect_json(hung.pid());
    assert!(took < Duration::from_secs(2), "inspect took {took:?}");
    assert_eq!(code, 1);
    assert_eq!(only_kinds(&r), ["deadlock"], "{:#}", r["findings"]);
    let f = &r["findings"][0];
    let nodes = f["nodes"].as_array().unwrap();
    assert_eq!(nodes[0]["kind"], "rwlock");
    assert_eq!(nodes[0]["mode"], "write");
    // Named by its variable from outside too, without --stacks.
    assert_eq!(nodes[0]["name"], "alarm_lock", "{:#}", nodes[0]);
    assert_eq!(nodes[1]["family"], "netlink");
    assert_eq!(nodes[1]["port"], port);
    let send = f["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["relation"] == "held-across-call")
        .unwrap();
    assert_eq!(
        send["thread"]["tid"], sender,
        "the write owner read from the lock is the sender"
    );
    assert_eq!(send["call"], "sendto");
    let receiver = thread_state(f, "nl-receiver");
    assert!(receiver["waiting"]
        .as_str()
        .unwrap()
        .starts_with("lock rwlock"));
    let q = inspect_queue(&r, &format!("netlink NETLINK_USERSOCK port {port}"));
    assert!(q["rmem"].as_u64().unwrap() > 0, "the queue is full: {q}");
    let t = r["inspect"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tid"] == sender)
        .unwrap();
    assert!(
        t["wchan"].as_str().unwrap().contains("netlink_attachskb"),
        "{t}"
    );
    let waiter = inspect_task(&r, "nl-receiver");
    assert_eq!(waiter["blocked_in"], "lock rwlock alarm_lock", "{waiter}");
}

/// The queue of an inspect report's overview, by its description.
fn inspect_queue<'a>(r: &'a Value, description: &str) -> &'a Value {
    r["inspect"]["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["description"] == description)
        .unwrap_or_else(|| panic!("no queue {description}: {:#}", r["inspect"]["queues"]))
}

/// The root of a stall: its name, the lock it holds first and its wait.
fn assert_stall_root(f: &Value, name: &str, holds: &str, waiting: &str) {
    let root = &f["thread_states"][0];
    assert_eq!(root["thread"]["name"], name, "{f:#}");
    assert!(
        root["holds"][0].as_str().unwrap().starts_with(holds),
        "{root}"
    );
    assert!(
        root["waiting"].as_str().unwrap().starts_with(waiting),
        "{root}"
    );
}

/// A mutex held in a full pipe whose reader is blocked reading another
/// pipe: from outside, which thread would read the full pipe is not
/// known, so the thread waiting for the mutex is in a stall behind the
/// writer, not named a drainer in a deadlock.
#[test]
fn inspect_names_no_reader_it_cannot_see() {
    let hung = Hung::start("pipe_deadlock", &["--reader-elsewhere"]);
    let (_, r, _) = inspect_json(hung.pid());
    assert!(findings(&r, "deadlock").is_empty(), "{:#}", r["findings"]);
    let stalls = findings(&r, "stall");
    assert_eq!(stalls.len(), 1, "{:#}", r["findings"]);
    assert_stall_root(stalls[0], "log-writer", "mutex", "write() on pipe");
    let title = stalls[0]["title"].as_str().unwrap();
    assert!(title.contains("its reader is unknown"), "{title}");
    assert_eq!(
        thread_state(stalls[0], "stats")["waiting"]
            .as_str()
            .map(|w| w.starts_with("lock mutex")),
        Some(true)
    );
}

/// The subprocess deadlock: a parent writes into its child's stdin while
/// the child writes into a full stdout only the parent reads. Each pipe's
/// receiving end is the process that holds it open for reading (not the
/// one holding its write end): one deadlock across the two processes.
#[test]
fn inspect_finds_the_subprocess_pipe_deadlock_across_two_processes() {
    let hung = Hung::start("pipe_deadlock", &["--subprocess"]);
    let parent = hung.pid();
    let child: u32 = std::fs::read_to_string(format!("/proc/{parent}/task/{parent}/children"))
        .unwrap()
        .split_whitespace()
        .next()
        .expect("the child")
        .parse()
        .unwrap();
    let (code, r, _) = inspect_json_of(&[parent, child], &[]);
    assert_eq!(code, 1);
    assert_eq!(only_kinds(&r), ["deadlock"], "{:#}", r["findings"]);
    let f = &r["findings"][0];
    let nodes = f["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{f:#}");
    assert!(nodes
        .iter()
        .all(|n| n["family"] == "pipe" && n["direction"] == "send"));
    let mut pids: Vec<u64> = f["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["thread"]["pid"].as_u64().unwrap())
        .collect();
    pids.sort();
    let mut want = vec![parent as u64, child as u64];
    want.sort();
    assert_eq!(pids, want);
    // Each pipe's receiving end is one process: not the writer's too.
    for q in r["inspect"]["queues"].as_array().unwrap() {
        assert_eq!(q["owner_pids"].as_array().unwrap().len(), 1, "{q}");
    }
    // Each pipe is named with both ends' processes, one to the other.
    for n in nodes {
        let end = |key: &str| n[key][0]["pid"].as_u64().unwrap_or(0);
        let (from, to) = (end("senders"), end("receiving"));
        assert!(from != 0 && to != 0 && from != to, "{n}");
        assert!(want.contains(&from) && want.contains(&to), "{n}");
    }
}

/// A shell pipeline in its own process group, killed when dropped.
struct Pipeline(std::process::Child);

impl Pipeline {
    fn start(script: &str) -> Pipeline {
        let child = Command::new("sh")
            .args(["-c", script])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(800));
        Pipeline(child)
    }

    /// The pids of the group's processes running `name`.
    fn pids_of(&self, name: &str) -> Vec<u32> {
        let pgid = self.0.id() as i32;
        let mut v: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .filter(|pid| {
                // SAFETY: getpgid has no preconditions.
                let group = unsafe { libc::getpgid(*pid as i32) };
                group == pgid
                    && std::fs::read_to_string(format!("/proc/{pid}/comm"))
                        .is_ok_and(|c| c.trim() == name)
            })
            .collect();
        v.sort();
        v
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // SAFETY: killing our own child's process group.
        unsafe { libc::kill(-(self.0.id() as i32), libc::SIGKILL) };
        let _ = self.0.wait();
    }
}

/// An idle pipeline is no finding: its reader waits for its writer, as
/// it should. The call it waits in is named (`read`, not a number).
#[test]
fn inspect_of_an_idle_pipeline_is_silent() {
    let p = Pipeline::start("sleep 1000 | grep x");
    let grep = p.pids_of("grep");
    assert_eq!(grep.len(), 1);
    assert_idle(grep[0], "read()");
}

/// A thread in a timed wait that keeps waking (a poll loop; a JVM thread
/// parked on a monitor wakes to look at it again) ran between the
/// samples: not blocked, and not "running" either, but in its call.
#[test]
fn inspect_says_a_wait_that_keeps_waking_is_in_its_call() {
    let p = Pipeline::start("exec perl -e 'select(undef, undef, undef, 0.05) while 1'");
    let perl = p.pids_of("perl");
    assert_eq!(perl.len(), 1);
    let (code, r, _) = inspect_json(perl[0]);
    assert_eq!(code, 0, "{:#}", r["findings"]);
    let task = &r["inspect"]["tasks"][0];
    assert!(task.get("blocked_in").is_none(), "{task}");
    assert!(task.get("no_progress_ms").is_none(), "{task}");
    assert!(
        task["in_call"].as_str().unwrap().contains("select"),
        "{task}"
    );
    // Its timeout is read from select's arguments: 50 ms from its start.
    assert_eq!(task["timeout"]["after_ms"], 50, "{task}");
    let text =
        holdcheck::report::labels::task_doing(&serde_json::from_value(task.clone()).unwrap());
    assert!(
        text.ends_with("with a timeout of 50 ms: it returns by itself at most that long after it began; it ran between samples"),
        "{text}"
    );
}

/// After a debugger let go of a process (the first thing an on-call person
/// tries), each of its timed waits is in `restart_syscall`; its registers
/// still hold what it waits on: a condition variable's wait and deadline,
/// the pipe a poll watches.
#[test]
fn inspect_sees_through_waits_a_debugger_interrupted() {
    if !need("gdb", "gdb") {
        return;
    }
    let hung = Hung::start("timed_waits", &[]);
    let st = Command::new("gdb")
        .args(["-p", &hung.pid().to_string(), "-batch", "-ex", "detach"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(st.success());
    std::thread::sleep(Duration::from_millis(300));
    let (code, r, _) = inspect_json(hung.pid());
    assert_eq!(code, 0, "{:#}", r["findings"]);
    let mono = inspect_task(&r, "cond-mono");
    assert!(
        mono["syscall"].as_str().unwrap().starts_with("219 "),
        "{mono}"
    );
    assert_eq!(
        mono["blocked_in"], "pthread_cond_wait on condition variable mono",
        "{mono}"
    );
    let left = mono["timeout"]["left_ms"].as_i64().unwrap();
    assert!((500_000..=600_000).contains(&left), "{mono}");
    let poller = inspect_task(&r, "poller");
    assert!(
        poller["blocked_in"]
            .as_str()
            .unwrap()
            .starts_with("restart_syscall (a poll or ppoll resumed after a signal) on pipe inode "),
        "{poller}"
    );
}

/// A lock held across `sem_wait`, the poster waiting for that lock: from
/// outside, the waiter is seen in `sem_wait` on the semaphore by its
/// variable, behind which the poster is stuck.
#[test]
fn inspect_names_the_semaphore_a_lock_holder_waits_on() {
    let hung = Hung::start("waits", &["sem-hang"]);
    let (code, r, _) = inspect_json(hung.pid());
    assert_eq!(code, 1, "{:#}", r["findings"]);
    let f = &r["findings"][0];
    let title = f["title"].as_str().unwrap();
    assert!(
        title.ends_with("which holds the lock and is blocked in sem_wait on semaphore ready"),
        "{title}"
    );
    let producer = inspect_task(&r, "producer");
    assert_eq!(
        producer["blocked_in"], "lock mutex cache_lock",
        "{producer}"
    );
}

/// A lock held at a private barrier, the only thread still to arrive
/// waiting for that lock: read from outside, the barrier by its variable
/// and its arrivals, and the two waits a deadlock. At a process-shared
/// barrier another process might arrive: a stall, that says so. A thread
/// at a barrier while its peer sleeps is no finding.
#[test]
fn inspect_reads_barrier_waits_and_the_deadlock_through_one() {
    let hung = Hung::start("waits", &["barrier-hang"]);
    let (code, r, _) = inspect_json(hung.pid());
    assert_eq!(code, 1, "{:#}", r["findings"]);
    assert_eq!(only_kinds(&r), ["deadlock"], "{:#}", r["findings"]);
    let at_barrier = "pthread_barrier_wait on barrier start_line (1 of 2 threads arrived)";
    assert_eq!(inspect_task(&r, "waits")["blocked_in"], at_barrier);
    assert_eq!(
        inspect_task(&r, "worker")["blocked_in"],
        "lock mutex config_lock"
    );
    let f = &r["findings"][0];
    let holder = thread_state(f, "waits");
    assert_eq!(holder["holds"][0], "mutex config_lock", "{f:#}");
    assert_eq!(
        holder["waiting"], "pthread_barrier_wait() on barrier start_line",
        "{f:#}"
    );
    assert_eq!(
        thread_state(f, "worker")["waiting"],
        "lock mutex config_lock"
    );
    let mut relations: Vec<&str> = f["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["relation"].as_str().unwrap())
        .collect();
    relations.sort();
    assert_eq!(relations, ["barrier-arrival", "held-across-call"], "{f:#}");
    let (_, text, _) = holdcheck(
        &["inspect", &hung.pid().to_string()],
        Duration::from_secs(60),
    );
    assert!(
        text.contains("must arrive at barrier start_line for its waiters to go on, and first waits for mutex config_lock"),
        "{text}"
    );
    assert!(
        text.contains("Cycle: mutex config_lock -> barrier start_line -> mutex config_lock"),
        "{text}"
    );
    drop(hung);

    // Under `run`, the hung command is read from outside the same way:
    // the shim's own thread is no thread to arrive.
    let r = run_example("waits", &["barrier-hang"], 60);
    assert_eq!(r.report["run"]["ending"], "hung", "{:#}", r.report["run"]);
    let deadlocks = findings(&r.report, "deadlock");
    assert_eq!(deadlocks.len(), 1, "{:#}", r.report["findings"]);
    assert!(
        deadlocks[0]["edges"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["relation"] == "barrier-arrival"),
        "{:#}",
        deadlocks[0]
    );
    // The lock by its variable, as inspect names it.
    assert_eq!(
        thread_state(deadlocks[0], "worker")["waiting"],
        "lock mutex config_lock",
        "{:#}",
        deadlocks[0]
    );

    let hung = Hung::start("waits", &["barrier-shared-hang"]);
    let (_, r, _) = inspect_json(hung.pid());
    assert_eq!(only_kinds(&r), ["stall"], "{:#}", r["findings"]);
    let title = r["findings"][0]["title"].as_str().unwrap();
    assert!(
        title.ends_with("the threads still to arrive are unknown (a process-shared barrier: another process may arrive)"),
        "{title}"
    );
    drop(hung);

    let hung = Hung::start("waits", &["barrier-sleep"]);
    let (code, r, _) = inspect_json(hung.pid());
    assert_eq!(code, 0, "{:#}", r["findings"]);
    assert!(only_kinds(&r).is_empty(), "{:#}", r["findings"]);
    assert_eq!(inspect_task(&r, "waits")["blocked_in"], at_barrier);
}

/// Threads in waits with timeouts ten minutes away (a server's idle pool)
/// are shown with when each returns by itself, read from the call's own
/// arguments: a deadline on the clock its call names, or a timeout from
/// the call's start. Nothing is a hang; the main thread's join has none.
#[test]
fn inspect_says_when_a_timed_wait_returns_by_itself() {
    let hung = Hung::start("timed_waits", &[]);
    let (code, r, _) = inspect_json(hung.pid());
    assert_eq!(code, 0, "{:#}", r["findings"]);
    assert!(only_kinds(&r).is_empty(), "{:#}", r["findings"]);
    let task = |name: &str| inspect_task(&r, name);
    let started = 1200 + 60_000; // Hung's wait, and a margin for a slow machine
    for name in ["cond-mono", "cond-real"] {
        let t = task(name);
        let left = t["timeout"]["left_ms"]
            .as_i64()
            .unwrap_or_else(|| panic!("{t}"));
        assert!(
            (600_000 - started..=600_000).contains(&left),
            "{name}: {left} ms left: {t}"
        );
        assert!(t["timeout"].get("sleep").is_none(), "{t}");
        let text =
            holdcheck::report::labels::task_doing(&serde_json::from_value(t.clone()).unwrap());
        assert!(text.contains("it returns by itself in"), "{text}");
    }
    let t = task("poller");
    assert_eq!(t["timeout"]["after_ms"], 600_000, "{t}");
    let t = task("sleeper");
    assert_eq!(t["timeout"]["after_ms"], 600_000, "{t}");
    assert_eq!(t["timeout"]["sleep"], true, "{t}");
    let text = holdcheck::report::labels::task_doing(&serde_json::from_value(t.clone()).unwrap());
    assert!(text.contains("a sleep of 600.0 s"), "{text}");
    let t = task("timed_waits");
    assert!(t.get("timeout").is_none(), "a join has no timeout: {t}");
}

/// Every thread waits on a condition variable only the others signalled,
/// or joins one of them: no cycle is known to be one (who else might
/// signal is not known), but nothing outside can wake any of them (private
/// futexes, no timeout, no signal handler): a hang, never "no findings".
#[test]
fn inspect_calls_a_process_whose_every_thread_waits_for_good_a_hang() {
    let hung = Hung::start("idle_waits", &["--hang"]);
    let (code, r, _) = inspect_json(hung.pid());
    assert_eq!(code, 1, "{:#}", r["findings"]);
    assert_eq!(only_kinds(&r), ["hang"], "{:#}", r["findings"]);
    let f = &r["findings"][0];
    let title = f["title"].as_str().unwrap();
    assert!(
        title.starts_with("4 threads are blocked for good"),
        "{title}"
    );
    assert!(title.contains("waits in pthread_join for"), "{title}");
    let mut names: Vec<&str> = f["thread_states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["thread"]["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["handler", "idle_waits", "peer-a", "peer-b"]);
    // Each wait is on the condition variable it is, by its variable: read
    // from glibc's layout around the futex word, without the shim.
    for (name, cond) in [
        ("handler", "handler_cond"),
        ("peer-a", "peers_cond"),
        ("peer-b", "peers_cond"),
    ] {
        let t = inspect_task(&r, name);
        assert_eq!(
            t["blocked_in"],
            format!("pthread_cond_wait on condition variable {cond}"),
            "{t}"
        );
    }
    assert!(
        title.contains("which is blocked in pthread_cond_wait on condition variable handler_cond"),
        "{title}"
    );
}

/// inspect of a process whose thread is idle in `call`: shown blocked
/// there, and no finding.
fn assert_idle(pid: u32, call: &str) {
    let (code, r, _) = inspect_json(pid);
    assert_eq!(code, 0, "{:#}", r["findings"]);
    assert!(only_kinds(&r).is_empty(), "{:#}", r["findings"]);
    let task = &r["inspect"]["tasks"][0];
    assert!(
        task["blocked_in"].as_str().unwrap().starts_with(call),
        "{task}"
    );
}

/// A call blocked in `accept` waits on the listening socket's queue of
/// connections, named by its port (not "tcp 0.0.0.0:0 -> ..."); an idle
/// server is no finding.
#[test]
fn inspect_names_a_listening_socket_by_its_port() {
    let hung = Hung::start("waits", &["accept-hang"]);
    let port = hung
        .stdout
        .trim()
        .strip_prefix("waits: listening on port ")
        .expect("waits prints its port")
        .to_string();
    let (code, r, _) = inspect_json(hung.pid());
    assert_eq!(code, 1, "{:#}", r["findings"]);
    let f = findings(&r, "stall")[0];
    assert_stall_root(f, "waits", "mutex", "accept");
    let queue = f["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["family"] == "listen")
        .unwrap_or_else(|| panic!("{f:#}"));
    assert_eq!(queue["addr"], format!("tcp:{port}"), "{f:#}");
    let q = inspect_queue(&r, &format!("listening socket tcp:{port}"));
    assert_eq!(q["owner_pids"][0], hung.pid(), "{q}");
    let idle = Hung::start("waits", &["accept-idle"]);
    assert_idle(idle.pid(), "accept");
}

/// `yes | cat` with cat stopped: the writer's full pipe is not drained
/// because its reader is stopped, and the report says so.
#[test]
fn inspect_names_a_stopped_reader_as_the_cause() {
    let p = Pipeline::start("yes | cat > /dev/null");
    let cat = p.pids_of("cat");
    let yes = p.pids_of("yes");
    assert_eq!((cat.len(), yes.len()), (1, 1));
    // SAFETY: stopping a process of our own group.
    unsafe { libc::kill(cat[0] as i32, libc::SIGSTOP) };
    std::thread::sleep(Duration::from_millis(1500));
    let (_, r, _) = inspect_json_of(&[yes[0], cat[0]], &["--stall-ms", "500"]);
    let stalled = findings(&r, "stalled-call");
    assert_eq!(stalled.len(), 1, "{:#}", r["findings"]);
    let title = stalled[0]["title"].as_str().unwrap();
    assert!(title.contains("write()"), "{title}");
    assert!(
        title.contains(&format!("(pid {}) is stopped", cat[0])),
        "{title}"
    );
    let t = r["inspect"]["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["pid"] == cat[0])
        .unwrap();
    assert!(
        t["blocked_in"]
            .as_str()
            .unwrap()
            .starts_with("stopped (state T"),
        "{t}"
    );
}

/// A main thread that called `pthread_exit` leaves a zombie leader whose
/// maps and descriptors are empty: they are read through a live thread.
#[test]
fn inspect_sees_through_a_zombie_leader() {
    let hung = Hung::start("abba", &["--hang", "--main-exits"]);
    let stat = std::fs::read_to_string(format!("/proc/{}/stat", hung.pid())).unwrap();
    assert_eq!(
        stat.rsplit_once(')').unwrap().1.trim_start().chars().next(),
        Some('Z'),
        "the leader has exited: {stat}"
    );
    let (code, r, _) = inspect_json(hung.pid());
    assert_eq!(code, 1);
    assert_eq!(only_kinds(&r), ["deadlock"], "{:#}", r["findings"]);
    assert!(
        r["inspect"]["glibc"]
            .as_str()
            .unwrap_or_default()
            .starts_with("2."),
        "{:#}",
        r["inspect"]
    );
}

/// Given only one of two processes stuck on each other's file locks,
/// inspect follows the wait to the holder (from /proc/locks) and reports
/// the one deadlock, with the files' paths.
#[test]
fn inspect_follows_a_file_lock_to_its_holder() {
    let hung = Hung::start("filelock", &["--stress"]);
    let (code, r, _) = inspect_json(hung.pid());
    for name in ["spool", "index"] {
        let _ = std::fs::remove_file(format!("/tmp/holdcheck-filelock-{}-{name}", hung.pid()));
    }
    assert_eq!(code, 1);
    assert_eq!(only_kinds(&r), ["deadlock"], "{:#}", r["findings"]);
    let f = &r["findings"][0];
    assert_eq!(f["processes"].as_array().unwrap().len(), 2, "{f:#}");
    for n in f["nodes"].as_array().unwrap() {
        assert_eq!(n["kind"], "file lock", "{n}");
        assert!(
            n["file"]
                .as_str()
                .unwrap()
                .starts_with("/tmp/holdcheck-filelock-"),
            "{n}"
        );
    }
}

/// A thread exited holding a mutex; main waits for it for ever. From the
/// outside, inspect reads the mutex's owner, finds that thread gone, and
/// says so: a deadlock with no cycle, not "no findings" and not a futex
/// it cannot name.
#[test]
fn inspect_names_a_mutex_whose_owner_exited_holding_it() {
    let hung = Hung::start("exit_holding", &["--hang"]);
    let (code, r, _) = inspect_json(hung.pid());
    assert_eq!(code, 1);
    assert_eq!(only_kinds(&r), ["deadlock"], "{:#}", r["findings"]);
    let f = &r["findings"][0];
    let title = f["title"].as_str().unwrap();
    assert!(
        title.contains("waits for ever for mutex") && title.ends_with("exited holding it"),
        "{title}"
    );
    assert_eq!(f["nodes"][0]["name"], "table_lock", "{f:#}");
    assert_eq!(f["edges"][0]["relation"], "exited-holding", "{f:#}");
    let gone = f["edges"][0]["thread"]["tid"].as_u64().unwrap();
    assert_ne!(gone, hung.pid() as u64);
    assert!(
        !std::path::Path::new(&format!("/proc/{}/task/{gone}", hung.pid())).exists(),
        "the owner named is gone"
    );
    let (_, text, _) = holdcheck(
        &["inspect", &hung.pid().to_string()],
        Duration::from_secs(60),
    );
    assert!(text.contains("exited holding mutex table_lock"), "{text}");
    assert!(!text.contains("Cycle:"), "no cycle: {text}");
}

/// The same across processes: a forked child takes a process-shared mutex
/// and exits holding it (a zombie: not reaped), then the parent locks it.
/// The owner named is the child's thread, in the child's process.
#[test]
fn inspect_names_a_shared_mutex_whose_owner_process_exited() {
    let hung = Hung::start("exit_holding", &["--process-hang"]);
    let parent = hung.pid();
    let child = Hung::only_child(parent) as u64;
    let (code, r, _) = inspect_json(parent);
    assert_eq!(code, 1, "{:#}", r["findings"]);
    assert_eq!(only_kinds(&r), ["deadlock"], "{:#}", r["findings"]);
    let f = &r["findings"][0];
    assert!(
        f["title"].as_str().unwrap().ends_with("exited holding it"),
        "{f:#}"
    );
    let e = &f["edges"][0];
    assert_eq!(e["relation"], "exited-holding", "{e:#}");
    assert_eq!(e["thread"]["tid"], child, "{e:#}");
    assert_eq!(e["thread"]["pid"], child, "{e:#}");
    let pids: Vec<u64> = f["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert_eq!(pids, [parent as u64, child], "{f:#}");
}

/// A file lock that no descriptor names any more (the file locked,
/// mapped, its descriptor closed, as the JVM keeps its hsperfdata file)
/// is named by the mapping's path, not by an inode number.
#[test]
fn inspect_names_a_locked_file_kept_only_by_its_mapping() {
    let hung = Hung::start("filelock", &["--mapped"]);
    let path = format!("/tmp/holdcheck-filelock-{}-spool", hung.pid());
    let (code, r, _) = inspect_json(hung.pid());
    let _ = std::fs::remove_file(&path);
    assert_eq!(code, 0, "{:#}", r["findings"]);
    let locks = r["inspect"]["file_locks"]
        .as_array()
        .unwrap_or_else(|| panic!("no file lock: {:#}", r["inspect"]));
    assert!(
        locks
            .iter()
            .any(|l| l["path"] == path.as_str() && l["kind"] == "FLOCK" && l["mode"] == "write"),
        "{locks:#?}"
    );
}

/// A Python program stuck on its own lock: inspect cannot see the
/// interpreter's locks, says so and how to see them, and never calls
/// what it saw "holds no lock", with stacks or without.
#[test]
fn inspect_says_what_it_cannot_see_in_python() {
    if !need("python3", "python3") {
        return;
    }
    // Two threads that take two locks in opposite orders, and meet; with
    // SIGINT ignored (as in the background), so that Python installs no
    // handler that could wake them: blocked for good, a hang.
    let p = Pipeline::start(
        "trap '' INT; exec python3 -c 'import threading as t
a, b, both = t.Lock(), t.Lock(), t.Barrier(2)
def take(x, y):
    with x:
        both.wait()
        with y:
            pass
t.Thread(target=take, args=(b, a)).start()
take(a, b)'",
    );
    // Blocked longer than a stall takes.
    std::thread::sleep(Duration::from_millis(1000));
    let py = p.0.id();
    let (_, r, _) = inspect_json_of(&[py], &["--stacks"]);
    let nv = blind_spots(&r);
    assert!(
        nv[0].contains("runs Python") && nv[0].contains("py-spy dump"),
        "{nv:?}"
    );
    // CPython's lock is a glibc semaphore: seen as one, and named as the
    // Python lock its stack shows, whose holder nothing records.
    let task = &r["inspect"]["tasks"][0];
    assert!(
        task["blocked_in"]
            .as_str()
            .unwrap()
            .starts_with("sem_wait on semaphore 0x"),
        "{task}"
    );
    assert_eq!(
        thread_states(&r, "waiting"),
        ["a futex wait on a Python lock (which records no holder)"; 2],
        "{:#}",
        r["findings"]
    );
    assert_text_says_some_locks_are_not_visible(py);
    // Without stacks (inspect's default) the waits are bare semaphores,
    // which record no holder either: neither thread is said to hold no
    // lock the other waits for.
    let (_, r, _) = inspect_json_of(&[py], &[]);
    assert_eq!(
        thread_states(&r, "unread_wait"),
        ["semaphore"; 2],
        "{:#}",
        r["findings"]
    );
    let (_, text, _) = holdcheck(&["inspect", &py.to_string()], Duration::from_secs(60));
    assert!(
        !text.contains("holds no lock another thread waits for"),
        "{text}"
    );
    assert_eq!(
        text.matches("whether it holds the semaphore").count(),
        2,
        "{text}"
    );
}

/// A static binary deadlocked on two pthread mutexes: its glibc is
/// linked in, where inspect cannot find it, so no lock owner is read.
/// inspect says so (never a clean bill), calls each wait a futex that may
/// be any lock's, and says of no thread that it "holds no lock another
/// thread waits for".
#[test]
fn inspect_of_a_static_binary_says_its_locks_cannot_be_read() {
    let hung = Hung::start("abba_static", &["--hang"]);
    let (_, r, _) = inspect_json(hung.pid());
    let nv = blind_spots(&r);
    assert_eq!(nv.len(), 1, "{nv:?}");
    let said = nv[0];
    assert!(
        said.contains("does not use glibc") && said.contains("lock owners cannot be read"),
        "{said}"
    );
    assert_eq!(only_kinds(&r), ["hang"], "{:#}", r["findings"]);
    let unread = thread_states(&r, "unread_wait");
    // The two threads in the deadlock, and main in its join (a futex too).
    assert_eq!(
        unread, ["futex, locks unreadable"; 3],
        "{:#}",
        r["findings"]
    );
    let (_, text, _) = holdcheck(
        &["inspect", &hung.pid().to_string()],
        Duration::from_secs(60),
    );
    assert!(
        !text.contains("holds no lock another thread waits for")
            && !text.contains("holds no pthread lock"),
        "{text}"
    );
    assert_eq!(
        text.matches("holds no lock holdcheck could read").count(),
        3,
        "{text}"
    );
    assert!(
        text.contains("no progress") && text.contains("some locks are not visible here"),
        "{text}"
    );
}

/// A Rust program deadlocked on two `std::sync::Mutex`es, futexes that
/// record no holder: inspect says a Rust program's locks are not visible
/// (never a clean "no findings"); `run` ends it as hung, with no timeout
/// (the SIGSEGV and SIGBUS handlers Rust's std installs are no way to
/// wake it), in a hang that names each wait's lock from its stack, and
/// says of neither thread that it "holds no lock another thread waits
/// for". Taken in one order, the same locks give no finding.
#[test]
fn a_rust_deadlock_on_std_mutexes_is_never_a_clean_bill() {
    let hung = Hung::start("rustlocks", &["deadlock"]);
    let (_, r, _) = inspect_json(hung.pid());
    let nv = blind_spots(&r);
    assert!(
        nv[0].contains("has Rust's standard library in it (a Rust program"),
        "{nv:?}"
    );
    assert_text_says_some_locks_are_not_visible(hung.pid());
    drop(hung);

    let r = run_example("rustlocks", &["deadlock"], 60);
    assert_eq!(r.report["run"]["ending"], "hung", "{:#}", r.report["run"]);
    let hangs = findings(&r.report, "hang");
    assert_eq!(hangs.len(), 1, "{:#}", r.report["findings"]);
    // The title names the wait as the thread section does.
    let title = hangs[0]["title"].as_str().unwrap();
    assert!(
        title.contains("is blocked in a futex wait on a Rust std::sync::Mutex"),
        "{title}"
    );
    let states = hangs[0]["thread_states"].as_array().unwrap();
    assert_eq!(states.len(), 2, "{states:#?}");
    for t in states {
        assert_eq!(t["unread_wait"], "Rust std::sync::Mutex", "{t:#}");
        assert_eq!(
            t["waiting"],
            "a futex wait on a Rust std::sync::Mutex (which records no holder)"
        );
    }
    let exe = examples().join("rustlocks");
    let (_, text, err) = holdcheck(
        &[
            "run",
            "--timeout",
            "60",
            "--",
            exe.to_str().unwrap(),
            "deadlock",
        ],
        Duration::from_secs(90),
    );
    let text = text + &err;
    assert!(
        !text.contains("holds no lock another thread waits for"),
        "{text}"
    );
    assert_eq!(
        text.matches("whether it holds the Rust std::sync::Mutex")
            .count(),
        2,
        "{text}"
    );

    let r = run_example("rustlocks", &["ordered"], 30);
    assert_eq!(r.report["run"]["code"], 0);
    assert_eq!(r.stdout, "rustlocks ordered: ok\n");
    assert_eq!(r.report["findings"].as_array().unwrap().len(), 0);
}

/// A `std::sync::Condvar` waits on a futex word of Rust's own that may
/// read 0, as glibc's condition variable and semaphore words do: inspect
/// must not call it either (nor name a variable for it); it stays a
/// futex it cannot read, in a process whose blind spot is said.
#[test]
fn inspect_never_calls_a_rust_condvar_a_glibc_one() {
    let hung = Hung::start("rustlocks", &["condvar"]);
    let (_, r, _) = inspect_json(hung.pid());
    for name in ["idle-waiter", "timed-waiter"] {
        let t = inspect_task(&r, name);
        assert_eq!(
            t["blocked_in"],
            holdcheck::report::labels::UNREAD_FUTEX,
            "{t}"
        );
    }
    let timed = inspect_task(&r, "timed-waiter");
    assert!(
        timed["timeout"]["left_ms"].as_i64().unwrap() > 500_000,
        "{timed}"
    );
    assert!(r["inspect"]["not_visible"].as_array().is_some(), "{r:#}");
}

/// What an inspect report says it cannot see (at least one thing).
fn blind_spots(r: &Value) -> Vec<&str> {
    r["inspect"]["not_visible"]
        .as_array()
        .expect("a blind spot said")
        .iter()
        .map(|n| n.as_str().expect("a blind spot is a string"))
        .collect()
}

/// Field `key` of every thread state of every finding of report `r`.
fn thread_states<'a>(r: &'a Value, key: &str) -> Vec<&'a Value> {
    r["findings"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|f| f["thread_states"].as_array().unwrap())
        .map(|t| &t[key])
        .collect()
}

/// The text of `inspect PID` ends in a summary that says what it could not
/// see, never a clean "0 findings".
fn assert_text_says_some_locks_are_not_visible(pid: u32) {
    let (_, text, _) = holdcheck(&["inspect", &pid.to_string()], Duration::from_secs(60));
    assert!(
        text.contains("some locks are not visible here, see above"),
        "{text}"
    );
}

/// Two threads deadlocked on spin locks never wait in the kernel: inspect
/// cannot tell them from threads at work, and says so, naming them, where
/// it would have said a clean "no findings". A program whose threads all
/// wait in the kernel gets no such line.
#[test]
fn inspect_says_threads_running_at_every_sample_may_be_spinning() {
    let _cpu = exclusive_cpu();
    let hung = Hung::start("lockorder", &["spin-hang"]);
    let (_, r, _) = inspect_json(hung.pid());
    let busy: Vec<&str> = blind_spots(&r)
        .into_iter()
        .filter(|n| n.contains("ran at every sample"))
        .collect();
    assert_eq!(busy.len(), 1, "{:#}", r["inspect"]);
    assert!(
        busy[0].contains("\"s-then-t\"") && busy[0].contains("\"t-then-s\""),
        "{}",
        busy[0]
    );
    assert_text_says_some_locks_are_not_visible(hung.pid());
    drop(hung);

    let hung = Hung::start("idle_waits", &["--hang"]);
    let (_, r, _) = inspect_json(hung.pid());
    let said = r["inspect"]["not_visible"].to_string();
    assert!(!said.contains("ran at every sample"), "{said}");
}

/// Two threads that meet each holding the lock the other then asks for
/// with `pthread_mutex_timedlock`: both give up at their deadline (2.5 s,
/// past the watchdog's look) and the program ends, as it does natively.
/// The watchdog saw a cycle of waits that each end by themselves: no
/// deadlock, the program not ended; the inversion is predicted, and the
/// wait reported as a stall that ended.
#[test]
fn a_cycle_of_timed_lock_waits_is_no_deadlock_and_the_run_goes_on() {
    let r = run_example("abba", &["--hang", "--timedlock=2500"], 60);
    assert_eq!(r.report["run"]["ending"], "exited", "{:#}", r.report["run"]);
    assert_eq!(r.report["run"]["code"], 0);
    assert_eq!(r.stdout, "abba: done\n");
    let kinds = only_kinds(&r.report);
    assert!(!kinds.iter().any(|k| k == "deadlock"), "{kinds:?}");
    assert_eq!(
        findings(&r.report, "potential-deadlock").len(),
        1,
        "{kinds:?}"
    );
    assert!(kinds.iter().any(|k| k == "stall"), "{kinds:?}");

    // From outside, an hour's deadline: one stall, the two waits behind
    // one holder, never a deadlock.
    let hung = Hung::start("abba", &["--hang", "--timedlock=3600000"]);
    let (_, r, _) = inspect_json(hung.pid());
    assert_eq!(only_kinds(&r), ["stall"], "{:#}", r["findings"]);
    assert_eq!(
        r["findings"][0]["thread_states"].as_array().unwrap().len(),
        2
    );
    for t in ["a-then-b", "b-then-a"] {
        let task = inspect_task(&r, t);
        assert!(
            task["timeout"]["left_ms"].as_i64().unwrap() > 3_000_000,
            "{task}"
        );
        assert!(
            task["blocked_in"]
                .as_str()
                .unwrap()
                .starts_with("lock mutex lock_"),
            "{task}"
        );
    }
}

/// Robust mutexes keep their owner's tid in the lock word, and glibc
/// waits with it: the deadlock reads as any mutex's, in one process and
/// across two (the owner followed to the child from the parent's pid).
#[test]
fn inspect_reads_robust_mutex_owners() {
    let hung = Hung::start("abba", &["--hang", "--robust"]);
    let (code, r, _) = inspect_json(hung.pid());
    assert_eq!(code, 1, "{:#}", r["findings"]);
    assert_eq!(only_kinds(&r), ["deadlock"], "{:#}", r["findings"]);
    let f = &r["findings"][0];
    for (name, holds, waits) in [
        ("a-then-b", "mutex lock_a", "lock mutex lock_b"),
        ("b-then-a", "mutex lock_b", "lock mutex lock_a"),
    ] {
        let t = thread_state(f, name);
        assert_eq!(t["holds"][0], holds, "{t:#}");
        assert_eq!(t["waiting"], waits, "{t:#}");
    }
    drop(hung);

    let hung = Hung::start("abba", &["--hang", "--robust", "--processes"]);
    let child = Hung::only_child(hung.pid());
    let (_, r, _) = inspect_json(hung.pid());
    assert_eq!(only_kinds(&r), ["deadlock"], "{:#}", r["findings"]);
    let mut pids = r["findings"][0]["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect::<Vec<_>>();
    pids.sort();
    assert_eq!(pids, [hung.pid() as u64, child as u64]);
}

/// A priority-inheritance mutex: the kernel keeps the owner's tid in the
/// lock word, and refuses the lock that would close a cycle (`EDEADLK`),
/// after which glibc's lock waits for ever on a word of its own. The
/// thread in the kernel's lock wait is read as waiting for the mutex, held
/// by the other, whose own wait stays a futex inspect cannot read. (Two
/// sides entering the kernel at once can both be refused; the example
/// closes the cycle only once the first side sleeps in its lock call.)
#[test]
fn inspect_reads_priority_inheritance_mutex_owners() {
    let hung = Hung::start("abba", &["--hang", "--pi"]);
    let (_, r, _) = inspect_json(hung.pid());
    assert_eq!(only_kinds(&r), ["stall"], "{:#}", r["findings"]);
    let f = &r["findings"][0];
    let (waiter, holder) = match thread_state(f, "a-then-b")["waiting"].as_str() {
        Some(w) if w.starts_with("lock mutex") => ("a-then-b", "b-then-a"),
        _ => ("b-then-a", "a-then-b"),
    };
    let w = thread_state(f, waiter)["waiting"]
        .as_str()
        .unwrap()
        .to_string();
    let held = w.strip_prefix("lock ").unwrap();
    let h = thread_state(f, holder);
    assert_eq!(h["holds"][0], held, "{f:#}");
    assert_eq!(h["unread_wait"], "futex", "{f:#}");
}

/// Two processes over two process-shared mutexes in shared memory, each
/// holding one and waiting for the other: from the parent's pid alone,
/// the owner read from the lock is a thread of the child, which inspect
/// follows, and the two waits are one deadlock across the processes.
#[test]
fn inspect_names_process_shared_mutex_owners_across_processes() {
    let hung = Hung::start("abba", &["--processes", "--hang"]);
    let parent = hung.pid();
    let child = Hung::only_child(parent);
    let (code, r, _) = inspect_json(parent);
    assert_eq!(code, 1, "{:#}", r["findings"]);
    assert_eq!(only_kinds(&r), ["deadlock"], "{:#}", r["findings"]);
    let f = &r["findings"][0];
    let mut pids: Vec<u64> = f["thread_states"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["thread"]["pid"].as_u64().unwrap())
        .collect();
    pids.sort();
    assert_eq!(pids, [parent as u64, child as u64], "{f:#}");
    for t in f["thread_states"].as_array().unwrap() {
        assert!(t["holds"][0].as_str().unwrap().starts_with("mutex"), "{t}");
        assert!(
            t["waiting"].as_str().unwrap().starts_with("lock mutex"),
            "{t}"
        );
    }
}

/// A Go program whose thread waits in netlink `recvfrom` for a reply that
/// never comes: the call is reported with its port and the socket's owner,
/// and the report says the Go runtime's own locks are not visible.
#[test]
fn inspect_reports_a_go_thread_in_netlink_recvfrom_and_what_it_cannot_see() {
    if !need("go", "golang-go") {
        return;
    }
    let work = work_dir("inspect-go");
    let bin = work.join("nl_request_go");
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/go/nl_request.go");
    let built = Command::new("go")
        .arg("build")
        .arg("-o")
        .arg(&bin)
        .arg(&src)
        .env(
            "GOCACHE",
            std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("gocache"),
        )
        .env("GO111MODULE", "off")
        .output()
        .unwrap();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let mut p = Pipeline(
        Command::new(&bin)
            .stdout(Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    let mut line = String::new();
    use std::io::BufRead;
    std::io::BufReader::new(p.0.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let port: u64 = line
        .trim()
        .strip_prefix("nl_request: client on netlink protocol 2 port ")
        .expect("the Go program prints its port")
        .parse()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let pid = p.0.id();
    let (code, r, _) = inspect_json(pid);
    assert_eq!(code, 1, "{:#}", r["findings"]);
    let f = findings(&r, "stalled-call")[0];
    assert_eq!(f["nodes"][0]["family"], "netlink", "{f:#}");
    assert_eq!(f["nodes"][0]["port"], port, "{f:#}");
    assert!(
        f["thread_states"][0]["waiting"]
            .as_str()
            .unwrap()
            .starts_with("recvfrom()"),
        "{f:#}"
    );
    let q = inspect_queue(&r, &format!("netlink NETLINK_USERSOCK port {port}"));
    assert_eq!(q["owner_pids"][0], pid, "{q}");
    let nv = r["inspect"]["not_visible"][0].as_str().unwrap_or_default();
    assert!(
        nv.contains("Go program") && nv.contains("not visible"),
        "{nv}"
    );
    assert_text_says_some_locks_are_not_visible(pid);
}

/// sqlite3 in a transaction, between statements: it holds a POSIX write
/// lock no one waits for, and inspect says so with the file's path.
#[test]
fn inspect_names_the_file_locks_a_process_holds() {
    if !need("sqlite3", "sqlite3") {
        return;
    }
    let work = work_dir("inspect-sqlite");
    let db = work.join("t.db");
    // Killed with its group however the test ends.
    let mut p = Pipeline(
        Command::new("sqlite3")
            .arg(&db)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    use std::io::Write;
    let mut stdin = p.0.stdin.take().unwrap();
    writeln!(
        stdin,
        "CREATE TABLE t(x); BEGIN EXCLUSIVE; INSERT INTO t VALUES(1);"
    )
    .unwrap();
    stdin.flush().unwrap();
    std::thread::sleep(Duration::from_millis(800));
    let pid = p.0.id();
    let (code, r, _) = inspect_json(pid);
    assert_eq!(code, 0, "{:#}", r["findings"]);
    let locks = r["inspect"]["file_locks"]
        .as_array()
        .unwrap_or_else(|| panic!("no file lock said: {:#}", r["inspect"]));
    assert!(
        locks.iter().any(|l| l["path"] == db.to_str().unwrap()
            && l["kind"] == "POSIX"
            && l["mode"] == "write"
            && l["pid"] == pid),
        "{locks:?}"
    );
}

/// A parent in `wait()` for any child, of which it has one, holding the
/// lock its log thread needs to drain the child's output: from the
/// parent's pid alone, the wait is followed to the child, and the one
/// deadlock goes through both processes.
#[test]
fn inspect_follows_a_wait_for_any_child_to_the_only_child() {
    let hung = Hung::start("supervisor", &["--stress", "--any-child"]);
    let (code, r, _) = inspect_json_of(&[hung.pid(), hung.pid()], &[]);
    assert_eq!(code, 1);
    assert_eq!(only_kinds(&r), ["deadlock"], "{:#}", r["findings"]);
    let f = &r["findings"][0];
    assert_eq!(f["processes"].as_array().unwrap().len(), 2, "{f:#}");
    assert!(
        f["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|n| n["family"] == "exit"),
        "{f:#}"
    );
    // The pid given twice is one process: its threads are listed once.
    let tasks = r["inspect"]["tasks"].as_array().unwrap();
    let mut tids: Vec<u64> = tasks.iter().map(|t| t["tid"].as_u64().unwrap()).collect();
    let n = tids.len();
    tids.sort();
    tids.dedup();
    assert_eq!(tids.len(), n, "{tasks:#?}");
}

/// Threads that end while inspect reads them are skipped: inspect of a
/// process that starts a thread per task never fails for it.
#[test]
fn inspect_skips_threads_that_end_during_the_scan() {
    let hung = Hung::start("host", &["tasks", "30"]);
    for _ in 0..8 {
        let (code, _, _) = inspect_json(hung.pid());
        assert_ne!(code, 2, "inspect failed on a thread that ended");
    }
}

#[test]
fn inspect_finds_a_real_abba_with_both_owners() {
    let hung = Hung::start("abba", &["--hang"]);
    let (code, r, _) = inspect_json(hung.pid());
    assert_eq!(code, 1);
    assert_eq!(only_kinds(&r), ["deadlock"], "{:#}", r["findings"]);
    let f = &r["findings"][0];
    for name in ["a-then-b", "b-then-a"] {
        let t = thread_state(f, name);
        assert_eq!(t["holds"].as_array().unwrap().len(), 1, "{t}");
        // Named by their variables, read from outside.
        assert!(
            t["holds"][0].as_str().unwrap().starts_with("mutex lock_"),
            "{t}"
        );
        assert!(
            t["waiting"]
                .as_str()
                .unwrap()
                .starts_with("lock mutex lock_"),
            "{t}"
        );
    }
}

#[test]
fn inspect_points_the_rwlock_stall_at_the_thread_in_read() {
    let hung = Hung::start("rwlock_stall", &[]);
    let (_, r, _) = inspect_json(hung.pid());
    assert_eq!(only_kinds(&r), ["stall"], "{:#}", r["findings"]);
    let f = &r["findings"][0];
    let root = &f["thread_states"][0];
    assert_eq!(root["thread"]["name"], "slow-holder");
    assert!(root["waiting"]
        .as_str()
        .unwrap()
        .starts_with("read() on pipe"));
    assert_eq!(f["waiters"], 4);
}

/// Readers queued on one lock with one stack are one entry in the text,
/// with their count and tids.
#[test]
fn inspect_text_groups_threads_with_the_same_stack() {
    let hung = Hung::start("rwlock_stall", &[]);
    let (code, text, _) = holdcheck(
        &["inspect", "--stacks", &hung.pid().to_string()],
        Duration::from_secs(60),
    );
    assert_eq!(code, 1, "{text}");
    assert_eq!(
        text.matches("waits for lock rwlock").count(),
        2,
        "the writer and one reader: {text}"
    );
    assert!(
        text.contains("and 2 more threads in the same state with the same stack: T"),
        "{text}"
    );
}

/// A rwlock held for reading by one of two blocked threads that hold
/// nothing else: which one is unknown, and the stall is still reported,
/// with every waiter counted and both candidates named.
#[test]
fn inspect_reports_a_rwlock_stall_whose_reader_it_cannot_name() {
    let hung = Hung::start("rwlock_stall", &["--bystander"]);
    let (code, r, _) = inspect_json(hung.pid());
    assert_eq!(code, 1);
    assert_eq!(only_kinds(&r), ["stall"], "{:#}", r["findings"]);
    let f = &r["findings"][0];
    assert_eq!(f["waiters"], 4, "{f:#}");
    let title = f["title"].as_str().unwrap();
    assert!(title.contains("cannot name"), "{title}");
    assert!(
        title.contains("\"slow-holder\"") && title.contains("\"bystander\""),
        "{title}"
    );
    assert_eq!(f["nodes"][0]["kind"], "rwlock", "{f:#}");
    assert!(
        !r["inspect"]["queues"]
            .as_array()
            .unwrap()
            .iter()
            .any(|q| q["description"]
                .as_str()
                .unwrap()
                .starts_with("end of thread")),
        "{:#}",
        r["inspect"]["queues"]
    );
}

/// From outside, a holder waiting on a condition variable is blocked on
/// it (read from glibc's layout around its futex word, named by its
/// variable), not called running.
#[test]
fn inspect_says_a_stall_root_in_a_condvar_wait_is_blocked() {
    let hung = Hung::start("cond_lock", &["--hang"]);
    let (_, r, _) = inspect_json(hung.pid());
    assert_eq!(only_kinds(&r), ["stall"], "{:#}", r["findings"]);
    let f = &r["findings"][0];
    let root = &f["thread_states"][0];
    assert_eq!(root["thread"]["name"], "flusher");
    assert_eq!(root["holds"].as_array().unwrap().len(), 1, "{root}");
    assert_eq!(
        root["waiting"], "pthread_cond_wait on condition variable batch_ready_cond",
        "{root}"
    );
    assert!(root["waited_ms"].as_u64().unwrap() > 0, "{root}");
    assert!(
        f["title"]
            .as_str()
            .unwrap()
            .contains("is blocked in pthread_cond_wait on condition variable batch_ready_cond"),
        "{}",
        f["title"]
    );
    assert_eq!(
        thread_state(f, "collector")["waiting"]
            .as_str()
            .map(|w| w.starts_with("lock mutex")),
        Some(true)
    );
}

#[test]
fn inspect_shows_a_netlink_recv_that_has_not_moved() {
    let started = std::time::Instant::now();
    let hung = Hung::start("nl_request", &[]);
    let client = hung.tid_named("metrics-client");
    let (_, r, _) = inspect_json(hung.pid());
    let alive_ms = started.elapsed().as_millis() as u64;
    let stalled = findings(&r, "stalled-call");
    let f = stalled
        .iter()
        .find(|f| f["threads"][0]["tid"] == client)
        .unwrap_or_else(|| panic!("{:#}", r["findings"]));
    assert_eq!(f["nodes"][0]["family"], "netlink");
    assert_eq!(f["nodes"][0]["protocol"], 2);
    assert!(f["nodes"][0]["port"].as_u64().unwrap() > 0);
    // How long on the clock it is measured by: never longer than the
    // process has lived (the scheduler's clock can lag the boot clock).
    let waited = f["thread_states"][0]["waited_ms"].as_u64().unwrap();
    assert!(
        (1000..=alive_ms + 100).contains(&waited),
        "waited {waited} ms in a process {alive_ms} ms old"
    );
}

/// gdb attaches, reads and detaches: every thread ran again, so its wait
/// looks young; inspect watches it until it is old enough, and the
/// stalled call is still reported.
#[test]
fn a_wait_keeps_its_finding_after_a_debugger_attached() {
    if !need("gdb", "gdb") {
        return;
    }
    let hung = Hung::start("nl_request", &[]);
    let client = hung.tid_named("metrics-client");
    std::thread::sleep(Duration::from_millis(800));
    let gdb = Command::new("gdb")
        .args([
            "-batch",
            "-nx",
            "-p",
            &hung.pid().to_string(),
            "-ex",
            "info threads",
        ])
        .output()
        .unwrap();
    assert!(
        gdb.status.success(),
        "{}",
        String::from_utf8_lossy(&gdb.stderr)
    );
    let (_, r, took) = inspect_json(hung.pid());
    let f = findings(&r, "stalled-call")
        .into_iter()
        .find(|f| f["threads"][0]["tid"] == client)
        .unwrap_or_else(|| panic!("the recv lost its finding: {:#}", r["findings"]));
    assert_eq!(f["nodes"][0]["family"], "netlink");
    let waited = f["thread_states"][0]["waited_ms"].as_u64().unwrap();
    assert!(waited >= 1000, "waited {waited} ms");
    assert!(took < Duration::from_secs(4), "inspect took {took:?}");
}

#[test]
fn inspect_of_a_vanished_process_says_so() {
    let (code, _, err) = holdcheck(&["inspect", "999999999"], Duration::from_secs(30));
    assert_eq!(code, 2);
    assert!(err.contains("no process 999999999"), "{err}");
}

/// A fork child is single-threaded, and its shim starts its queues anew:
/// the lock it takes between two reads of a pipe is still noted for the
/// next read (it was not while the parent's queue slots had moved the
/// child's first one off the first slot, which was all the lock hook's
/// "used a queue yet" looked at).
#[test]
fn a_fork_child_records_the_lock_it_takes_between_two_reads() {
    use holdcheck_format::{Direction, Record};
    let r = run_example("lifecycle", &["forkqueue"], 30);
    assert_eq!(r.report["run"]["code"], 0);
    assert_eq!(r.stdout, "lifecycle forkqueue: ok\n");
    let traces = holdcheck::trace::read_dirs(std::slice::from_ref(&r.trace_dir)).unwrap();
    assert_eq!(traces.len(), 2, "the parent's trace and the child's");
    let drains: Vec<(u32, u64)> = traces
        .iter()
        .flat_map(|t| &t.records)
        .filter_map(|rec| match rec {
            Record::QueueLock {
                tid,
                direction: Direction::Recv,
                site,
                ..
            } => Some((*tid, *site)),
            _ => None,
        })
        .collect();
    assert_eq!(
        drains.len(),
        1,
        "one drain dependency, the child's: {drains:?}"
    );
    let procs = r.report["processes"].as_array().unwrap();
    let pids: Vec<u64> = procs.iter().map(|p| p["pid"].as_u64().unwrap()).collect();
    let child = procs
        .iter()
        .find(|p| pids.contains(&p["ppid"].as_u64().unwrap()))
        .expect("the forked child among the processes")["pid"]
        .as_u64()
        .unwrap();
    assert_eq!(
        u64::from(drains[0].0),
        child,
        "taken by the child (its main thread)"
    );
}

/// A child made by the raw fork system call runs none of the fork
/// handlers that give a glibc fork child a trace of its own; the shim still
/// tells it from its parent (by a page the kernel empties in a fork child)
/// before its first record. Its order (b then a) goes to its own trace:
/// written into its parent's, it would be a false lock-order inversion
/// against the parent's a then b.
#[test]
fn a_child_of_a_raw_fork_records_into_a_trace_of_its_own() {
    use holdcheck_format::Record;
    let r = run_example("lifecycle", &["rawfork"], 30);
    assert_eq!(r.report["run"]["code"], 0);
    assert_eq!(r.stdout, "lifecycle rawfork: ok\n");
    assert_eq!(
        r.report["findings"],
        serde_json::json!([]),
        "{:#}",
        r.report
    );
    let traces = holdcheck::trace::read_dirs(std::slice::from_ref(&r.trace_dir)).unwrap();
    let pid_of = |t: &holdcheck::trace::TraceFile| {
        t.records.iter().find_map(|rec| match rec {
            Record::Header { pid, ppid, .. } => Some((*pid, *ppid)),
            _ => None,
        })
    };
    let mut orders: Vec<(u32, u32, usize)> = traces
        .iter()
        .map(|t| {
            let (pid, ppid) = pid_of(t).expect("every trace has its header");
            let n = t
                .records
                .iter()
                .filter(|rec| matches!(rec, Record::LockOrder { .. }))
                .count();
            (pid, ppid, n)
        })
        .collect();
    assert_eq!(
        orders.len(),
        2,
        "the parent's trace and the child's: {orders:?}"
    );
    if orders[0].1 == orders[1].0 {
        orders.swap(0, 1);
    }
    let (parent, child) = (orders[0], orders[1]);
    assert_eq!(
        child.1, parent.0,
        "one trace is the other's child's: {orders:?}"
    );
    assert_eq!((parent.2, child.2), (1, 1), "one order each: {orders:?}");
}

/// fork/exec from threads, cancellation through interposed calls, signal
/// handlers that lock or write to a self-pipe while the thread they
/// interrupt allocates, threads exiting with locks held: the program behaves
/// as without the shim, and no false deadlock comes of it.
#[test]
fn process_life_cycle_events_leave_the_program_unharmed() {
    let _cpu = exclusive_cpu();
    for mode in ["fork", "cancel", "signal", "exit", "selfpipe"] {
        let r = run_example_with("lifecycle", &[mode], 60, "watchdog_ms=100:stall_ms=2000");
        assert_eq!(r.report["run"]["code"], 0, "{mode}: exit status");
        assert_eq!(
            r.stdout,
            format!("lifecycle {mode}: ok\n"),
            "{mode}: output"
        );
        assert_no_deadlock(&r, mode);
        assert_eq!(
            r.report["partial"], false,
            "{mode}: {:#}",
            r.report["warnings"]
        );
        assert_eq!(findings(&r.report, "stall").len(), 0, "{mode}");
        if mode == "fork" {
            assert!(
                r.report["processes"].as_array().unwrap().len() > 10,
                "every child wrote its own trace"
            );
        }
        if mode == "exit" {
            // Fifty threads, each with its own pipe, at two call sites.
            assert_eq!(
                findings(&r.report, "hazard").len(),
                2,
                "{:#}",
                r.report["findings"]
            );
        }
    }
}

/// An unwritable trace directory: one line on stderr, and the program runs
/// on unharmed.
#[test]
fn an_unwritable_trace_directory_leaves_the_program_alone() {
    let (code, path, _) = holdcheck(&["shim-path"], Duration::from_secs(30));
    assert_eq!(code, 0);
    let shim = PathBuf::from(path.trim());
    assert!(shim.is_file(), "{}", shim.display());
    let out = Command::new(examples().join("abba"))
        .env("LD_PRELOAD", &shim)
        .env("HOLDCHECK_DIR", "/proc/holdcheck-cannot-write-here")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8_lossy(&out.stdout), "abba: done\n");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("holdcheck: cannot create trace file"),
        "{err}"
    );
    assert!(err.contains("the program runs on"), "{err}");
}

/// `inspect --stacks`: each blocked thread's user-space stack, symbolised,
/// and the process left exactly as it was (not stopped, still blocked where
/// it was, nothing traced).
#[test]
fn inspect_stacks_are_symbolised_and_leave_the_process_as_it_was() {
    let hung = Hung::start("warnd", &["--stress"]);
    let pid = hung.pid();
    let wchans = || -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/task"))
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("wchan")).ok())
            .collect();
        v.sort();
        v
    };
    let before = wchans();
    let work = work_dir("inspect-stacks");
    let out = work.join("r.json");
    let (code, _, err) = holdcheck(
        &[
            "inspect",
            "--stacks",
            "--format",
            "json",
            "-o",
            out.to_str().unwrap(),
            &pid.to_string(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 1, "{err}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let f = findings(&r, "deadlock")[0];
    let sender = thread_state(f, "warn-sender");
    let frames = functions_at(f, &sender["stack"]);
    for want in ["fun_nl_sendto", "send_warn", "raise_alarm", "sender_main"] {
        assert!(frames.iter().any(|f| f == want), "{want} in {frames:?}");
    }
    assert!(
        f["location"]["function"] == "fun_nl_sendto",
        "{}",
        f["location"]
    );
    // Unharmed: same waits, not stopped, not traced.
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(wchans(), before);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    assert!(status.contains("State:\tS"), "{status}");
    assert!(status.contains("TracerPid:\t0"), "{status}");
}

/// `--stacks` on threads blocked in calls that a ptrace stop interrupts
/// (epoll_wait, recv under SO_RCVTIMEO, sigwaitinfo, semop): each stack is
/// unwound from the blocked call alone, and none of the calls returns
/// EINTR in the program (which prints it if one does). The epoll thread's
/// frame needs the frame pointer, found on its stack.
#[test]
fn inspect_stacks_leave_interruptible_calls_uninterrupted() {
    let mut hung = Hung::start("interrupt", &[]);
    let pid = hung.pid();
    let (code, r, _) = inspect_json_of(&[pid], &["--stacks"]);
    std::thread::sleep(Duration::from_millis(300));
    // SAFETY: killing our own child's process group.
    unsafe { libc::kill(-(pid as i32), libc::SIGKILL) };
    let mut out = String::new();
    use std::io::Read;
    hung.child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    assert!(out.contains("interrupt: ready"), "{out}");
    assert!(!out.contains("EINTR"), "a call was interrupted: {out}");
    assert_eq!(code, 1);
    assert!(
        !r["warnings"].to_string().contains("ptrace stop"),
        "{}",
        r["warnings"]
    );
    let stalls = findings(&r, "stall");
    for (thread, function) in [
        ("epoller", "epoller_main"),
        ("receiver", "receiver_main"),
        ("sigwaiter", "sigwaiter_main"),
        ("semwaiter", "semwaiter_main"),
    ] {
        let f = stalls
            .iter()
            .find(|f| f["thread_states"][0]["thread"]["name"] == thread)
            .unwrap_or_else(|| panic!("no stall behind {thread}: {:#}", r["findings"]));
        let frames = functions_at(f, &f["thread_states"][0]["stack"]);
        let at = frames.iter().position(|x| x == function);
        assert!(
            at.is_some_and(|i| frames[i + 1..].iter().any(|x| x == "start_thread")),
            "{thread}: {frames:?}"
        );
    }
}

/// A process hung with the shim loaded: inspect merges the shim's trace
/// (exact acquisition sites, the watchdog's observation) and reports the
/// deadlock once.
#[test]
fn inspect_merges_the_trace_of_a_process_running_with_the_shim() {
    let (code, path, _) = holdcheck(&["shim-path"], Duration::from_secs(30));
    assert_eq!(code, 0);
    let dir = work_dir("inspect-shim");
    let mut child = Command::new(examples().join("warnd"))
        .arg("--stress")
        .env("LD_PRELOAD", path.trim())
        .env("HOLDCHECK_DIR", &dir)
        .env("HOLDCHECK_OPTIONS", "verbosity=0:watchdog_ms=300")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    let (code, r, _) = inspect_json(child.id());
    // SAFETY: killing our own child's process group.
    unsafe { libc::kill(-(child.id() as i32), libc::SIGKILL) };
    let _ = child.wait();
    assert_eq!(code, 1);
    assert_eq!(only_kinds(&r), ["deadlock"], "{:#}", r["findings"]);
    assert!(r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .any(|w| w.as_str().unwrap().contains("is merged")));
    let f = &r["findings"][0];
    let send = f["edges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["relation"] == "held-across-call")
        .unwrap();
    assert_eq!(
        send["held_at"]["function"], "raise_alarm",
        "the exact acquisition site from the shim"
    );
}

/// DOT and HTML: the cycle's nodes as shapes, its edges in red with thread
/// and call; the HTML page is self-contained (an inline SVG, no URL but the
/// SVG namespace).
#[test]
fn dot_and_html_reports_draw_the_cycle() {
    let r = run_example("warnd", &["--light"], 60);
    let dir = r.trace_dir.to_str().unwrap().to_string();
    let (code, dot, _) = holdcheck(
        &["report", "--format", "dot", &dir],
        Duration::from_secs(60),
    );
    assert_eq!(code, 1);
    assert!(dot.starts_with("digraph holdcheck {"), "{dot}");
    assert!(
        dot.contains("shape=box, label=\"rwlock alarm_lock"),
        "{dot}"
    );
    assert!(
        dot.contains("shape=ellipse, label=\"netlink NETLINK_USERSOCK port"),
        "{dot}"
    );
    assert!(dot.contains("warn-sender (pid "), "{dot}");
    assert!(dot.contains("): sendto()\", color=red"), "{dot}");

    let (code, html, _) = holdcheck(
        &["report", "--format", "html", &dir],
        Duration::from_secs(60),
    );
    assert_eq!(code, 1);
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), 1, "one graph for one finding");
    assert!(
        html.contains(">netlink NETLINK_USERSOCK port"),
        "the channel is drawn"
    );
    assert!(html.contains("SUMMARY: holdcheck: potential-deadlock"));
    let urls: Vec<&str> = html
        .match_indices("http")
        .map(|(i, _)| &html[i..(i + 30).min(html.len())])
        .collect();
    assert!(
        urls.iter()
            .all(|u| u.starts_with("http://www.w3.org/2000/svg")),
        "{urls:?}"
    );
}

/// poll and epoll_wait: inspect names the queues a thread waits on.
#[test]
fn inspect_names_what_poll_and_epoll_wait_on() {
    let hung = Hung::start("poll_wait", &[]);
    let (_, r, _) = inspect_json(hung.pid());
    let task = |name: &str| -> String {
        inspect_task(&r, name)["blocked_in"]
            .as_str()
            .unwrap_or_else(|| panic!("{name}: {:#}", r["inspect"]))
            .to_string()
    };
    let p = task("poller");
    assert!(p.starts_with("poll on pipe inode "), "{p}");
    assert!(p.contains("(recv), unix socket inode "), "{p}");
    let e = task("epoller");
    assert!(e.starts_with("epoll_wait on pipe inode "), "{e}");
}

/// CI controls: a signature per finding that holds across runs, a
/// suppressions file by function name, a baseline that hides known findings
/// and shows a new one, and SARIF with locations at the sites.
#[test]
fn signatures_suppressions_baseline_and_sarif() {
    let light = run_example("warnd", &["--light"], 60);
    let again = run_example("warnd", &["--light"], 60);
    let sig = |r: &Value| r["findings"][0]["signature"].as_str().unwrap().to_string();
    assert_eq!(
        sig(&light.report),
        sig(&again.report),
        "the same bug, the same signature"
    );
    let dir = light.trace_dir.to_str().unwrap().to_string();
    let work = work_dir("controls");

    // A suppression by function name silences it; another name does not.
    let sup = work.join("sup.txt");
    std::fs::write(&sup, "# known\npotential-deadlock:fun:send_warn\n").unwrap();
    let (code, out, _) = holdcheck(
        &["report", "--suppressions", sup.to_str().unwrap(), &dir],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("1 finding(s) suppressed"), "{out}");
    std::fs::write(&sup, "fun:some_other_function\nsrc:warnd.c\n").unwrap();
    let (code, out, _) = holdcheck(
        &["report", "--suppressions", sup.to_str().unwrap(), &dir],
        Duration::from_secs(60),
    );
    // By file name, not only by whole path; the rule that matched nothing
    // is named.
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("suppression matched nothing: ")
            && out.contains("sup.txt:1: fun:some_other_function"),
        "{out}"
    );
    std::fs::write(&sup, "fun:some_other_function\n").unwrap();
    let (code, _, _) = holdcheck(
        &["report", "--suppressions", sup.to_str().unwrap(), &dir],
        Duration::from_secs(60),
    );
    assert_eq!(code, 1);
    std::fs::write(&sup, "fun\n").unwrap();
    let (code, _, err) = holdcheck(
        &["report", "--suppressions", sup.to_str().unwrap(), &dir],
        Duration::from_secs(60),
    );
    assert_eq!(code, 2);
    assert!(err.contains("sup.txt:1"), "{err}");

    // The warnd report as a baseline hides warnd's finding, not ABBA's.
    let base = work.join("base.json");
    std::fs::write(&base, serde_json::to_string(&light.report).unwrap()).unwrap();
    let (code, out, _) = holdcheck(
        &["report", "--baseline", base.to_str().unwrap(), &dir],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{out}");
    let abba = run_example("abba", &[], 60);
    let (code, out, _) = holdcheck(
        &[
            "report",
            "--baseline",
            base.to_str().unwrap(),
            abba.trace_dir.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 1, "a new finding shows: {out}");

    // SARIF 2.1.0: one result per finding, located at the send call, the
    // other sites related, fingerprinted.
    let (code, sarif, _) = holdcheck(
        &["report", "--format", "sarif", &dir],
        Duration::from_secs(60),
    );
    assert_eq!(code, 1);
    let s: Value = serde_json::from_str(&sarif).unwrap();
    assert_eq!(s["version"], "2.1.0");
    let run = &s["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "holdcheck");
    let results = run["results"].as_array().unwrap();
    assert_eq!(results.len(), 1);
    let res = &results[0];
    assert_eq!(res["ruleId"], "potential-deadlock");
    assert_eq!(res["level"], "error");
    let loc = &res["locations"][0]["physicalLocation"];
    assert!(
        loc["artifactLocation"]["uri"]
            .as_str()
            .unwrap()
            .ends_with("warnd.c"),
        "{loc}"
    );
    assert!(loc["region"]["startLine"].as_u64().unwrap() > 0);
    assert!(res["relatedLocations"].as_array().unwrap().len() >= 2);
    assert_eq!(
        res["partialFingerprints"]["holdcheck/v1"],
        sig(&light.report)
    );
}

#[test]
fn a_stress_run_reports_a_flaky_inversion_once_with_the_runs_that_showed_it() {
    let work = work_dir("repeat");
    let report = work.join("report.json");
    let exe = examples().join("flaky");
    let (code, stdout, stderr) = holdcheck(
        &[
            "run",
            "--repeat",
            "20",
            "--format",
            "json",
            "-o",
            report.to_str().unwrap(),
            "--out",
            work.join("traces").to_str().unwrap(),
            "--",
            exe.to_str().unwrap(),
        ],
        Duration::from_secs(120),
    );
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    // Not a terminal: one plain line per run.
    assert_eq!(stderr.matches("holdcheck: run ").count(), 20, "{stderr}");
    assert_eq!(r["run"]["repeat"]["runs"], 20);
    assert_eq!(r["run"]["repeat"]["endings"]["exited"], 20);
    for k in 1..=20 {
        assert!(work.join(format!("traces/run-{k}")).is_dir());
    }
    let inverted = stdout.matches("flaky: inverted").count() as u64;
    let found = findings(&r, "potential-deadlock");
    if inverted == 0 {
        // (2/3)^20: every run took the right order.
        assert!(found.is_empty() && code == 0);
        return;
    }
    assert_eq!(code, 1);
    assert_eq!(found.len(), 1, "one finding: {:#}", r["findings"]);
    assert_eq!(found[0]["runs"], inverted, "{:#}", found[0]);
    assert_eq!(thread_names(found[0]), ["reporter", "updater"]);
}

#[test]
fn mutex_kinds_dlopen_and_process_endings_are_left_as_they_are() {
    for mode in [
        "kinds",
        "pshared",
        "dlopen",
        "mainexit",
        "exitrace",
        "ctor",
        "exclusion",
    ] {
        let start = Instant::now();
        let r = run_example("mutexkinds", &[mode], 60);
        assert_eq!(
            r.report["run"]["ending"], "exited",
            "{mode}: {:#}",
            r.report["run"]
        );
        assert_eq!(r.report["run"]["code"], 0, "{mode}: exit status");
        assert_eq!(
            r.stdout,
            format!("mutexkinds {mode}: ok\n"),
            "{mode}: output"
        );
        assert_no_deadlock(&r, mode);
        // A process whose threads have all exited ends (the watchdog must
        // not keep it alive), and soon.
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{mode} took {:?}",
            start.elapsed()
        );
        if mode == "kinds" {
            // A recursive relock and a dead robust owner are no finding;
            // the error-checking relock (EDEADLK) that the program follows
            // with two unlocks (the second, EPERM, on purpose) is the one
            // misuse.
            let all = r.report["findings"].as_array().unwrap();
            assert_eq!(all.len(), 1, "{all:#?}");
            assert_eq!(all[0]["kind"], "misuse");
            assert_eq!(all[0]["edges"][0]["relation"], "relock-ignored");
        }
        if mode == "dlopen" {
            // The library's nested locks were seen, through each load.
            let m = model_of(&r.trace_dir);
            assert!(m
                .edges
                .keys()
                .iter()
                .any(|&(a, b)| m.nodes[a].is_lock() && m.nodes[b].is_lock()));
        }
    }
}

/// A thread that returns holding a mutex: a misuse finding with the thread
/// and where it took the lock, whether or not the run then hangs on it.
#[test]
fn a_thread_that_exits_holding_a_mutex_is_a_misuse() {
    let r = run_example("exit_holding", &["--light"], 60);
    assert_eq!(r.code, 1);
    let found = findings(&r.report, "misuse");
    assert_eq!(found.len(), 1, "{:#}", r.report["findings"]);
    let f = found[0];
    assert_eq!(thread_names(f), ["worker"]);
    assert_eq!(f["nodes"][0]["kind"], "mutex", "{f:#}");
    assert_eq!(f["edges"][0]["relation"], "exited-holding");
    assert_eq!(f["location"]["function"], "update_table", "{f:#}");
    assert_eq!(r.report["summary"]["misuse"], 1);

    // The hang that follows is a live deadlock whose cause is the exited
    // owner, and the run ends by itself with both findings.
    let r = run_example_with("exit_holding", &["--hang"], 30, LIVE);
    assert_eq!(r.report["run"]["ending"], "deadlocked");
    assert_eq!(
        findings(&r.report, "misuse").len(),
        1,
        "{:#}",
        r.report["findings"]
    );
    let dead = findings(&r.report, "deadlock");
    assert_eq!(dead.len(), 1, "{:#}", r.report["findings"]);
    let title = dead[0]["title"].as_str().unwrap();
    assert!(title.contains("exited holding it"), "{title}");
    assert!(title.contains("\"worker\""), "{title}");

    // A timed lock of it gives up at its deadline (2.5 s): no deadlock,
    // the run goes on to the program's end, the misuse all the same.
    let r = run_example_with("exit_holding", &["--timed"], 30, LIVE);
    assert_eq!(r.report["run"]["ending"], "exited", "{:#}", r.report["run"]);
    assert_eq!(r.stdout, "exit_holding: the table lock is held for good\n");
    assert_eq!(
        only_kinds(&r.report),
        ["misuse"],
        "{:#}",
        r.report["findings"]
    );
}

/// The same lock unlocked for the worker by another thread before it
/// exits: it no longer owns it, so it did not exit holding it; the unlock
/// by a thread that does not hold it is the misuse (as TSan says).
#[test]
fn a_lock_released_for_a_thread_before_it_exits_is_an_unlock_not_held_only() {
    let r = run_example("exit_holding", &["--handed-over"], 60);
    assert_eq!(r.report["run"]["code"], 0);
    assert!(r.stdout.contains("is free"), "{}", r.stdout);
    let m = findings(&r.report, "misuse");
    assert_eq!(m.len(), 1, "{:#}", r.report["findings"]);
    assert_eq!(m[0]["edges"][0]["relation"], "unlock-not-held");
    assert!(
        m[0]["title"].as_str().unwrap().contains("\"worker\""),
        "{}",
        m[0]["title"]
    );
}

#[test]
fn a_socket_closed_by_fclose_is_forgotten_when_a_pipe_takes_its_descriptors() {
    // Channels are cached per descriptor; fclose closes inside libc, where
    // no close is seen, so it is interposed too. The socket pair's cached
    // channels must not stand for the pipe on the same numbers.
    let r = run_example("pipe_deadlock", &["--light", "--reused-fds"], 60);
    assert!(r.stdout.contains("descriptors reused"), "{}", r.stdout);
    let f = findings(&r.report, "potential-deadlock");
    assert_eq!(f.len(), 1, "{:#}", r.report["findings"]);
    let families: Vec<&Value> = f[0]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.get("family"))
        .collect();
    assert_eq!(families, ["pipe"], "{:#}", f[0]["nodes"]);
}

#[test]
fn every_call_made_under_a_lock_is_counted_though_repeats_skip_the_recorder() {
    // The writer makes exactly 100 writes under log_lock; repeats are
    // counted in its own tallies and given to the recorder in batches, the
    // rest at its exit.
    let r = run_example("pipe_deadlock", &["--light"], 60);
    let f = findings(&r.report, "potential-deadlock");
    assert_eq!(f.len(), 1, "{:#}", r.report["findings"]);
    let e = edge_of(f[0], "held-across-call");
    assert_eq!(e["call"], "write", "{e:#}");
    assert_eq!(e["count"], 100, "{e:#}");
}
