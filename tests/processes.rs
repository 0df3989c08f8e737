//! End-to-end tests of waits that cross processes: every process of a run
//! is traced, channels join them, and one report covers them all.

mod support;

use serde_json::Value;
use std::collections::BTreeSet;
use support::*;

/// The pids an example printed as `NAME: client C, server S`.
fn printed_pids(stdout: &str, prefix: &str) -> (u64, u64) {
    let line = stdout
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no '{prefix}' line in: {stdout}"));
    let nums: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|w| w.parse().ok())
        .collect();
    (nums[0], nums[1])
}

fn pids_of(f: &Value) -> BTreeSet<u64> {
    f["processes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect()
}

/// The pids receiving from each channel node of a finding.
fn receiving_pids(node: &Value) -> BTreeSet<u64> {
    node["receivers"]
        .as_array()
        .map(|v| v.iter().map(|t| t["pid"].as_u64().unwrap()).collect())
        .unwrap_or_default()
}

#[test]
fn an_rpc_whose_callback_needs_the_callers_lock_is_predicted_across_two_processes() {
    let r = run_example("rpc_callback", &["--light"], 60);
    assert_eq!(r.report["run"]["ending"], "exited", "{:#}", r.report["run"]);
    let (client, server) = printed_pids(&r.stdout, "rpc_callback: client");
    let found = findings(&r.report, "potential-deadlock");
    assert_eq!(found.len(), 1, "one bug, one finding: {:#}", r.report);
    let f = found[0];
    assert_eq!(pids_of(f), BTreeSet::from([client, server]));
    let server_cmd = f["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["pid"] == server)
        .unwrap()["cmdline"]
        .to_string();
    assert!(server_cmd.contains("--server"), "{server_cmd}");

    // The lock is the client's mutex; the two queues are unix sockets, one
    // received by each process: both directions of the conversation.
    let nodes = f["nodes"].as_array().unwrap();
    let locks: Vec<&Value> = nodes.iter().filter(|n| n["type"] == "lock").collect();
    assert_eq!(locks.len(), 1);
    assert_eq!(locks[0]["kind"], "mutex");
    assert_eq!(locks[0]["pid"], client);
    let queues: Vec<&Value> = nodes.iter().filter(|n| n["type"] == "channel").collect();
    assert_eq!(queues.len(), 2, "{nodes:#?}");
    assert!(queues.iter().all(|q| q["family"] == "unix"));
    let receivers: Vec<BTreeSet<u64>> = queues.iter().map(|q| receiving_pids(q)).collect();
    assert!(
        receivers.contains(&BTreeSet::from([client])),
        "{receivers:?}"
    );
    assert!(
        receivers.contains(&BTreeSet::from([server])),
        "{receivers:?}"
    );
    // Each queue is named with its two ends' processes: sent by one,
    // received by the other.
    for q in &queues {
        let ends = |key: &str| -> Vec<u64> {
            q[key]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    assert_eq!(p["name"], "rpc_callback", "{q}");
                    p["pid"].as_u64().unwrap()
                })
                .collect()
        };
        let (from, to) = (ends("senders"), ends("receiving"));
        assert_eq!(from.len(), 1, "{q}");
        assert_eq!(to.len(), 1, "{q}");
        assert_ne!(from, to, "{q}");
    }
    let text = holdcheck::report::text::render(&serde_json::from_value(r.report.clone()).unwrap());
    assert!(
        text.contains(&format!(
            "from rpc_callback[{server}] to rpc_callback[{client}]"
        )),
        "{text}"
    );

    // Who does what: the caller holds the lock across its call, the server
    // waits for the callback's answer before replying, the callback handler
    // needs the lock before answering.
    let edge = |rel: &str| edge_of(f, rel);
    let held = edge("held-across-call");
    assert_eq!(held["thread"]["name"], "rpc-caller");
    assert_eq!(held["thread"]["pid"], client);
    assert!(stack_functions(f, held).contains(&"refresh_registry".to_string()));
    let wait = edge("queue-wait");
    assert_eq!(wait["thread"]["name"], "rpc-server");
    assert_eq!(wait["thread"]["pid"], server);
    assert!(stack_functions(f, wait).contains(&"call_back".to_string()));
    let produce = edge("produce");
    assert_eq!(produce["thread"]["name"], "cb-handler");
    assert_eq!(
        produce["acquired_at"]["function"], "answer_callback",
        "{produce:#}"
    );
}

#[test]
fn an_rpc_without_callbacks_under_a_lock_is_no_deadlock() {
    // The same client and server, but no call is made while the server
    // calls back: request and reply alone never close a cycle.
    let r = run_example("rpc_callback", &["--no-callback"], 60);
    assert_eq!(r.report["run"]["ending"], "exited", "{:#}", r.report["run"]);
    assert!(
        findings(&r.report, "potential-deadlock").is_empty(),
        "{:#}",
        r.report["findings"]
    );
}

#[test]
fn an_rpc_that_really_hangs_is_a_deadlock_through_both_processes() {
    let r = run_example("rpc_callback", &["--stress"], 4);
    assert_eq!(r.report["run"]["ending"], "timed-out");
    let (client, server) = printed_pids(&r.stdout, "rpc_callback: client");
    let found = findings(&r.report, "deadlock");
    assert_eq!(found.len(), 1, "{:#}", r.report["findings"]);
    let f = found[0];
    assert_eq!(pids_of(f), BTreeSet::from([client, server]));
    assert_eq!(
        thread_names(f),
        ["cb-handler", "rpc-caller", "rpc-server"],
        "{f:#}"
    );
    let caller = f["thread_states"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["thread"]["name"] == "rpc-caller")
        .unwrap();
    assert!(
        caller["holds"][0].as_str().unwrap().starts_with("mutex"),
        "{caller:#}"
    );
    assert!(caller["waiting"].as_str().unwrap().contains("unix socket"));
    // Stacks taken from outside show the program, never the shim.
    let caller_stack = functions_at(f, &caller["stack"]);
    assert!(
        caller_stack.contains(&"rpc".to_string()),
        "{caller_stack:?}"
    );
    assert!(!caller_stack.iter().any(|s| s.contains("holdcheck")));
}

#[test]
fn logins_blocked_behind_the_warnd_deadlock_are_in_its_wait_chain() {
    let r = run_example("warnd", &["--stress", "--cli", "2"], 15);
    // Ended once the watchdog saw the deadlock, the logins blocked by then.
    assert_eq!(r.report["run"]["ending"], "deadlocked");
    let warnd = r.report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["exe"].as_str().unwrap().ends_with("/warnd"))
        .unwrap()["pid"]
        .as_u64()
        .unwrap();
    let port: u64 = r
        .stdout
        .split("port ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .and_then(|s| s.parse().ok())
        .expect("warnd prints its port");
    let found = findings(&r.report, "deadlock");
    assert_eq!(found.len(), 1, "{:#}", r.report["findings"]);
    let f = found[0];
    let clis: Vec<&Value> = f["thread_states"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["thread"]["name"] == "cli")
        .collect();
    assert_eq!(clis.len(), 2, "{f:#}");
    for c in &clis {
        assert_ne!(c["thread"]["pid"], warnd);
        let waiting = c["waiting"].as_str().unwrap();
        assert!(
            waiting.starts_with("sendmsg()")
                && waiting.contains(&format!("netlink NETLINK_USERSOCK port {port} (send)")),
            "{waiting}"
        );
    }
    // The two clis, and warnd's main thread, which joins a thread of the
    // cycle.
    assert_eq!(f["waiters"], 3, "{f:#}");
    assert!(
        f["thread_states"]
            .as_array()
            .unwrap()
            .iter()
            .any(|t| t["thread"]["pid"] == warnd
                && t["waiting"]
                    .as_str()
                    .is_some_and(|w| w.starts_with("pthread_join()"))),
        "{f:#}"
    );
    assert_eq!(pids_of(f).len(), 3);
    // The cycle itself is warnd's.
    let cycle_threads: BTreeSet<&str> = f["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["thread"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        cycle_threads,
        BTreeSet::from(["nl-receiver", "warn-sender"])
    );

    // The report made later from the trace directory says the same.
    let (code, out, err) = holdcheck(
        &["report", "--format", "json", r.trace_dir.to_str().unwrap()],
        std::time::Duration::from_secs(60),
    );
    assert_eq!(code, 1, "{err}");
    let later: Value = serde_json::from_str(&out).unwrap();
    let f = findings(&later, "deadlock")[0];
    let clis = f["thread_states"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["thread"]["name"] == "cli")
        .count();
    assert_eq!(clis, 2, "{f:#}");
}

/// `launcher ARGS… abba`: the report of the run, the launcher's pid and
/// the child's.
fn launch_abba(args: &[&str]) -> (Run, u64, u64) {
    let abba = examples().join("abba");
    let mut argv: Vec<&str> = args.to_vec();
    argv.push(abba.to_str().unwrap());
    let r = run_example("launcher", &argv, 60);
    assert_eq!(r.report["run"]["ending"], "exited", "{:#}", r.report["run"]);
    let child: u64 = r
        .stdout
        .split("child ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no child pid in {}", r.stdout));
    let launcher = r.report["processes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["exe"].as_str().unwrap().ends_with("/launcher"))
        .expect("the launcher's own trace")["pid"]
        .as_u64()
        .unwrap();
    (r, launcher, child)
}

#[test]
fn a_child_started_by_fork_and_exec_has_its_finding_in_the_parents_run() {
    for args in [&[][..], &["--spawn"][..], &["--vfork"][..]] {
        let (r, launcher, child) = launch_abba(args);
        let found = findings(&r.report, "potential-deadlock");
        assert_eq!(found.len(), 1, "{args:?}: {:#}", r.report["findings"]);
        assert_eq!(pids_of(found[0]), BTreeSet::from([child]), "{args:?}");
        let p = r.report["processes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["pid"] == child && p["exe"].as_str().unwrap().ends_with("/abba"))
            .unwrap_or_else(|| panic!("{args:?}: no abba process: {:#}", r.report["processes"]));
        assert_eq!(p["ppid"], launcher, "{args:?}");
        assert!(r.report["untraced"].is_null(), "{args:?}");
    }
}

#[test]
fn a_child_started_without_the_shim_is_named_as_untraced() {
    for (args, call) in [
        (&["--clear-env"][..], "execve"),
        (&["--spawn", "--clear-env"][..], "posix_spawn"),
    ] {
        let (r, _, _) = launch_abba(args);
        assert!(r.report["findings"].as_array().unwrap().is_empty());
        let u = &r.report["untraced"][0];
        assert_eq!(u["call"], call, "{args:?}: {:#}", r.report);
        assert!(u["program"].as_str().unwrap().ends_with("/abba"));
        assert!(u["reason"].as_str().unwrap().contains("LD_PRELOAD"));
    }
}

/// A daemon's worker gives up root (setuid to nobody): its own trace goes
/// on (opened while it was still root), and the program it then executes,
/// which cannot create a trace in the run's directory (root's alone), is
/// named as untraced, with why: never left out in silence.
#[test]
fn a_program_started_after_giving_up_root_is_named_as_untraced() {
    // SAFETY: no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: needs root to give it up");
        return;
    }
    let r = run_example("dropuid", &["--exec", "/bin/true"], 60);
    assert_eq!(r.report["run"]["code"], 0, "{:#}", r.report["run"]);
    assert_eq!(r.stdout, "dropuid: ok\n");
    let found = findings(&r.report, "lock-order-inversion");
    assert_eq!(
        found.len(),
        1,
        "the worker's orders, after setuid: {:#}",
        r.report["findings"]
    );
    assert_eq!(thread_names(found[0]), ["first", "second"]);
    let u = &r.report["untraced"][0];
    assert_eq!(u["program"], "/bin/true", "{:#}", r.report["untraced"]);
    assert_eq!(u["call"], "execv");
    let reason = u["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("it runs as uid 65534, which cannot create its trace in"),
        "{reason}"
    );
}

#[test]
fn both_ends_of_every_kind_of_channel_name_one_queue_and_no_two_channels_merge() {
    use holdcheck_format::{Channel, Direction, Record};
    use std::collections::BTreeMap;
    let r = run_example("channels", &[], 60);
    assert_eq!(r.report["run"]["code"], 0, "{:#}", r.report["run"]);
    assert!(r.stdout.contains("channels: done"));
    // (thread name, direction) → the channels its data calls used.
    let mut seen: BTreeMap<(String, Direction), BTreeSet<Channel>> = BTreeMap::new();
    let mut listens: BTreeMap<String, Channel> = BTreeMap::new();
    let data_calls = [
        "send", "sendto", "sendmsg", "write", "recv", "recvfrom", "recvmsg", "read",
    ];
    let traces = holdcheck::trace::read_dirs(std::slice::from_ref(&r.trace_dir)).unwrap();
    // The early sender named the queue by itself: its server had not
    // accepted the connection, so the receiving socket had no inode yet.
    let named_by_sender = traces.iter().flat_map(|t| &t.records).any(|rec| {
        matches!(
            rec,
            Record::ChannelUse {
                channel: Channel::Unix { from: Some(_), .. },
                direction: Direction::Send,
                ..
            }
        )
    });
    assert!(named_by_sender, "the early send did not run before accept");
    for t in holdcheck::model::canonical_channels(&traces).iter() {
        let mut names = BTreeMap::new();
        for rec in &t.records {
            if let Record::Thread { tid, name } = rec {
                names.insert(*tid, name.clone());
            }
        }
        for rec in &t.records {
            if let Record::ChannelUse {
                tid,
                channel,
                direction,
                call,
                ..
            } = rec
            {
                let name = names.get(tid).cloned().unwrap_or_default();
                if matches!(channel, Channel::Listen { .. }) {
                    assert!(["connect", "accept"].contains(&call.as_str()), "{call}");
                    let old = listens.insert(name.clone(), channel.clone());
                    assert!(old.is_none(), "{name}: two listening sockets");
                }
                if data_calls.contains(&call.as_str()) && name.contains('-') {
                    seen.entry((name, *direction))
                        .or_default()
                        .insert(channel.clone());
                }
            }
        }
    }
    let kinds = [
        ("spstream-a", "unix"),
        ("spstream-b", "unix"),
        ("spdgram", "unix"),
        ("unixpath", "unix"),
        ("abstract", "unix"),
        ("early", "unix"),
        ("unixdgram", "unix"),
        ("pipe-a", "pipe"),
        ("pipe-b", "pipe"),
        ("fifo", "fifo"),
        ("tcp-a", "tcp"),
        ("tcp-b", "tcp"),
        ("udp", "udp"),
        ("netlink", "netlink"),
    ];
    let mut all = BTreeSet::new();
    for (kind, family) in kinds {
        let one = |side: &str, dir: Direction| -> Channel {
            let key = (format!("{side}-{kind}"), dir);
            let v = seen
                .get(&key)
                .unwrap_or_else(|| panic!("no {key:?} channel use: {seen:#?}"));
            assert_eq!(v.len(), 1, "{key:?}: {v:?}");
            v.iter().next().unwrap().clone()
        };
        let sent = one("send", Direction::Send);
        let received = one("recv", Direction::Recv);
        assert_eq!(sent, received, "{kind}: the two ends differ");
        assert_eq!(sent.family(), family, "{kind}: {sent:?}");
        assert!(
            all.insert(sent.clone()),
            "{kind} merged with another: {sent:?}"
        );
    }
    // connect and accept wait on the listening socket's queue: one name,
    // one per listener.
    for kind in ["unixpath", "abstract", "early", "tcp-a", "tcp-b"] {
        let connect = &listens[&format!("send-{kind}")];
        let accept = &listens[&format!("recv-{kind}")];
        assert_eq!(connect, accept, "{kind}");
        assert!(all.insert(connect.clone()), "{kind}: {connect:?}");
    }
}

#[test]
fn a_parent_waiting_for_its_child_under_the_lock_its_log_reader_needs_is_predicted() {
    let r = run_example("supervisor", &["--light"], 60);
    assert_eq!(r.report["run"]["ending"], "exited", "{:#}", r.report["run"]);
    let found = findings(&r.report, "potential-deadlock");
    assert_eq!(found.len(), 1, "{:#}", r.report["findings"]);
    let f = found[0];
    // Three jobs, three children: the same code, one finding.
    assert_eq!(f["occurrences"], 3, "{f:#}");
    assert_eq!(pids_of(f).len(), 4);
    let families: BTreeSet<&str> = f["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n["family"].as_str())
        .collect();
    assert_eq!(families, BTreeSet::from(["exit", "pipe"]));
    let edges = f["edges"].as_array().unwrap();
    let held = edges
        .iter()
        .find(|e| e["relation"] == "held-across-call")
        .unwrap();
    assert_eq!(held["call"], "waitpid");
    assert_eq!(held["thread"]["name"], "supervisor");
    assert!(stack_functions(f, held).contains(&"finish_job".to_string()));
    let exit = edges.iter().find(|e| e["relation"] == "exit-wait").unwrap();
    assert_eq!(exit["thread"]["name"], "worker");
    assert!(stack_functions(f, exit).contains(&"run_worker".to_string()));
    let drain = edges.iter().find(|e| e["relation"] == "drain").unwrap();
    assert_eq!(drain["thread"]["name"], "log-reader");
}

#[test]
fn a_parent_really_stuck_waiting_for_its_child_is_a_deadlock() {
    let r = run_example("supervisor", &["--stress"], 30);
    // No single process's watchdog sees a wait that crosses processes:
    // run sees the whole group blocked for good and ends it before the
    // timeout.
    assert_eq!(r.report["run"]["ending"], "hung");
    let found = findings(&r.report, "deadlock");
    assert_eq!(found.len(), 1, "{:#}", r.report["findings"]);
    assert_eq!(
        thread_names(found[0]),
        ["log-reader", "supervisor", "worker"]
    );
    assert_eq!(pids_of(found[0]).len(), 2);
}

#[test]
fn a_poll_for_the_reply_under_the_lock_is_a_wait_on_its_queue() {
    use holdcheck::model::Relation;
    let r = run_example("rpc_callback", &["--light", "--poll"], 60);
    assert_eq!(findings(&r.report, "potential-deadlock").len(), 1);
    let m = model_of(&r.trace_dir);
    let polls = m
        .edges
        .iter()
        .flat_map(|(_, ev)| ev.iter())
        .filter(|e| matches!(&e.relation, Relation::HeldAcrossCall { fact } if m.held_calls[&(e.pid, *fact)].call == "poll"))
        .count();
    assert_eq!(polls, 1, "one poll under the lock, on the reply queue");
}

/// Removes the lock files a filelock run left (a killed run cannot).
fn remove_lock_files(r: &Run) {
    for p in r.report["processes"].as_array().unwrap() {
        for name in ["spool", "index"] {
            let _ = std::fs::remove_file(format!("/tmp/holdcheck-filelock-{}-{name}", p["pid"]));
        }
    }
}

#[test]
fn file_locks_taken_in_opposite_orders_by_two_processes_are_predicted() {
    let r = run_example("filelock", &["--light"], 60);
    remove_lock_files(&r);
    assert_eq!(r.report["run"]["ending"], "exited", "{:#}", r.report["run"]);
    let found = findings(&r.report, "potential-deadlock");
    assert_eq!(found.len(), 1, "{:#}", r.report["findings"]);
    let f = found[0];
    assert_eq!(pids_of(f).len(), 2);
    assert_eq!(thread_names(f), ["compactor", "indexer"]);
    let mut files: Vec<&str> = f["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            assert_eq!(n["kind"], "file lock", "{n:#}");
            assert_eq!(n["pid"], 0, "a file lock is every process's: {n:#}");
            n["file"].as_str().unwrap()
        })
        .collect();
    files.sort();
    assert!(
        files[0].ends_with("-index") && files[1].ends_with("-spool"),
        "{files:?}"
    );
}

/// A daemon's record lock on its pid file, held for its whole run: no
/// other thread of the process can wait for it, so the waits its holder
/// makes on condition variables are no hazard by it; the mutex held
/// across one of them still is.
#[test]
fn a_record_lock_held_across_condvar_waits_is_no_hazard_but_a_mutex_still_is() {
    let r = run_example("filelock", &["--pidfile"], 60);
    remove_lock_files(&r);
    assert_eq!(r.report["run"]["code"], 0, "{:#}", r.report["run"]);
    let all = r.report["findings"].as_array().unwrap();
    assert_eq!(all.len(), 1, "{all:#?}");
    let f = &all[0];
    assert_eq!(f["kind"], "hazard", "{f:#}");
    let kinds: Vec<&str> = f["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            n["kind"]
                .as_str()
                .unwrap_or(n["family"].as_str().unwrap_or(""))
        })
        .collect();
    assert_eq!(kinds, ["mutex", "condvar"], "{:#}", f["nodes"]);
    assert!(f["title"]
        .as_str()
        .unwrap()
        .starts_with("mutex state_lock held across"));
}

#[test]
fn shared_file_locks_in_any_order_are_no_deadlock() {
    let r = run_example("filelock", &["--shared"], 60);
    remove_lock_files(&r);
    assert_eq!(r.report["run"]["ending"], "exited");
    assert!(findings(&r.report, "potential-deadlock").is_empty());
}

#[test]
fn processes_stuck_on_each_others_file_locks_are_a_deadlock() {
    let r = run_example("filelock", &["--stress"], 30);
    remove_lock_files(&r);
    // No single process's watchdog sees a wait that crosses processes:
    // run sees the whole group blocked for good and ends it before the
    // timeout.
    assert_eq!(r.report["run"]["ending"], "hung");
    let found = findings(&r.report, "deadlock");
    assert_eq!(found.len(), 1, "{:#}", r.report["findings"]);
    assert_eq!(thread_names(found[0]), ["compactor", "indexer"]);
    assert_eq!(pids_of(found[0]).len(), 2);
}
