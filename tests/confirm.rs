//! `holdcheck confirm`: a prediction from one run, steered into the real
//! deadlock in another (or honestly not reproduced), with nothing left
//! running.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::*;

/// What a confirm printed and how it exited.
struct Confirmed {
    report: Value,
    code: i32,
    stderr: String,
}

/// Runs `example pred_args` for its prediction, then `holdcheck confirm` of
/// it on `example args`; checks that no process of any try is left.
fn confirm(example: &str, pred_args: &[&str], args: &[&str], extra: &[&str]) -> Confirmed {
    let predicted = run_example(example, pred_args, 60);
    let work = work_dir(&format!("confirm-{example}"));
    let prediction = work.join("prediction.json");
    std::fs::write(&prediction, predicted.report.to_string()).unwrap();
    confirm_file(example, &prediction, args, extra, &work)
}

fn confirm_file(
    example: &str,
    prediction: &Path,
    args: &[&str],
    extra: &[&str],
    work: &Path,
) -> Confirmed {
    let out = work.join("report.json");
    let tries = work.join("tries");
    let exe = examples().join(example);
    let mut argv = vec![
        "confirm",
        "--format",
        "json",
        "-o",
        out.to_str().unwrap(),
        "--out",
        tries.to_str().unwrap(),
        "--timeout",
        "20",
    ];
    argv.extend_from_slice(extra);
    argv.push(prediction.to_str().unwrap());
    argv.push("--");
    argv.push(exe.to_str().unwrap());
    argv.extend_from_slice(args);
    let (code, _, stderr) = holdcheck(&argv, Duration::from_secs(240));
    for pid in traced_pids(&tries) {
        assert_gone(pid);
    }
    let text = std::fs::read_to_string(&out)
        .unwrap_or_else(|e| panic!("no confirm report ({e}); stderr:\n{stderr}"));
    Confirmed {
        report: serde_json::from_str(&text).unwrap(),
        code,
        stderr,
    }
}

/// The pids of every trace file under `dir` (`holdcheck.PID.N.trace`).
fn traced_pids(dir: &Path) -> Vec<i32> {
    let mut pids = Vec::new();
    let mut todo: Vec<PathBuf> = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                todo.push(p);
            } else if let Some(pid) = p
                .file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| n.strip_prefix("holdcheck."))
                .and_then(|n| n.split('.').next())
                .and_then(|n| n.parse().ok())
            {
                pids.push(pid);
            }
        }
    }
    pids
}

fn lock_names(f: &Value) -> Vec<String> {
    let mut v: Vec<String> = f["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] == "lock")
        .filter_map(|n| n["name"].as_str().map(String::from))
        .collect();
    v.sort();
    v
}

/// The one finding of a confirm report: a live deadlock that reproduced
/// the prediction, through the prediction's locks and threads.
fn assert_confirmed(c: &Confirmed, locks: &[&str], threads: &[&str]) -> Value {
    let f = &c.report["findings"][0];
    let conf = &f["confirmation"];
    assert_eq!(
        conf["verdict"], "confirmed",
        "not confirmed: {conf:#}\nstderr:\n{}",
        c.stderr
    );
    assert_eq!(f["kind"], "deadlock", "{f:#}");
    assert_eq!(c.code, 1, "a confirmed deadlock fails the run");
    assert!(conf["reproduced_in"].as_u64().unwrap() >= 1);
    assert_eq!(conf["released"], true, "{conf:#}");
    assert_eq!(lock_names(f), locks, "{f:#}");
    let names = thread_names(f);
    for t in threads {
        assert!(names.iter().any(|n| n == t), "{t} not in {names:?}");
    }
    // Every parked site was reached by its thread and waited no longer
    // than the park bound.
    for s in conf["steps"].as_array().unwrap() {
        assert!(s["reached"].as_u64().unwrap() >= 1, "{s:#}");
        if s["action"] == "park" {
            assert!(s["parked"].as_u64().unwrap() >= 1, "{s:#}");
            assert!(s["waited_ms"].as_u64().unwrap() < 1000, "{s:#}");
        }
    }
    f.clone()
}

/// Whether a finding's cycle goes through a kernel queue of `family`.
fn through_queue(f: &Value, family: &str) -> bool {
    f["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|n| n["family"] == family)
}

/// The prediction came back, not reproduced, and nothing deadlocked.
fn assert_not_reproduced(c: &Confirmed, tries: u64) -> Value {
    let findings = c.report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{:#}", c.report);
    let f = &findings[0];
    let conf = &f["confirmation"];
    assert_eq!(conf["verdict"], "not-reproduced", "{conf:#}");
    assert!(conf["reproduced_in"].is_null());
    assert_eq!(conf["tries"], tries);
    assert_eq!(conf["endings"].as_array().unwrap().len() as u64, tries);
    assert_ne!(f["kind"], "deadlock");
    assert_eq!(c.code, 0, "not reproduced does not fail the run");
    f.clone()
}

#[test]
fn abba_kept_apart_by_time_is_confirmed() {
    let c = confirm("abba", &["--timed"], &["--timed"], &[]);
    let f = assert_confirmed(&c, &["lock_a", "lock_b"], &["a-then-b", "b-then-a"]);
    // The live finding is the watchdog's: each thread holds one lock and
    // waits for the other.
    let states = f["thread_states"].as_array().unwrap();
    assert!(states.len() >= 2, "{f:#}");
    let steps = f["confirmation"]["steps"].as_array().unwrap();
    assert_eq!(steps.len(), 2);
    assert_eq!(steps[0]["site"]["function"], "a_then_b");
    assert_eq!(steps[1]["site"]["function"], "b_then_a");
    assert_eq!(steps[0]["thread"]["name"], "a-then-b");
}

#[test]
fn five_dining_philosophers_are_confirmed() {
    let c = confirm("lockorder", &["dining", "5"], &["dining", "5"], &[]);
    let f = assert_confirmed(
        &c,
        &["ring[0]", "ring[1]", "ring[2]", "ring[3]", "ring[4]"],
        &["philosopher-0", "philosopher-4"],
    );
    // One philosopher per site, each a different thread.
    let mut who: Vec<&str> = f["confirmation"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["thread"]["name"].as_str().unwrap())
        .collect();
    who.sort();
    who.dedup();
    assert_eq!(who.len(), 5, "{who:?}");
}

#[test]
fn warnd_light_is_confirmed_through_its_netlink_queue() {
    let c = confirm("warnd", &["--light"], &["--light"], &[]);
    let f = assert_confirmed(&c, &["alarm_lock"], &["warn-sender", "nl-receiver"]);
    assert!(through_queue(&f, "netlink"), "{f:#}");
    let steps = f["confirmation"]["steps"].as_array().unwrap();
    let block = steps.iter().find(|s| s["action"] == "block").unwrap();
    assert_eq!(block["thread"]["name"], "warn-sender");
    // The sender filled the queue (256 messages) while the drainer waited.
    assert!(block["reached"].as_u64().unwrap() > 256, "{block:#}");
    let park = steps.iter().find(|s| s["action"] == "park").unwrap();
    assert_eq!(park["thread"]["name"], "nl-receiver");
    assert_eq!(park["site"]["function"], "handle_warn");
}

#[test]
fn a_pipe_between_threads_is_confirmed() {
    let c = confirm("pipe_deadlock", &["--light"], &["--light"], &[]);
    let f = assert_confirmed(&c, &["log_lock"], &["log-writer", "log-reader"]);
    assert!(through_queue(&f, "pipe"), "{f:#}");
}

#[test]
fn an_rpc_callback_across_two_processes_is_confirmed() {
    let c = confirm("rpc_callback", &["--timed"], &["--timed"], &[]);
    let f = assert_confirmed(&c, &["registry_lock"], &["rpc-caller", "cb-handler"]);
    assert_eq!(f["processes"].as_array().unwrap().len(), 2, "{f:#}");
}

#[test]
fn an_inversion_behind_a_barrier_is_not_reproduced() {
    // abba's threads take turns at a barrier the shim does not see: each
    // site is reached, never both at once.
    let c = confirm("abba", &[], &[], &["--tries", "2"]);
    let f = assert_not_reproduced(&c, 2);
    for s in f["confirmation"]["steps"].as_array().unwrap() {
        assert_eq!(s["reached"], 2, "{s:#}");
        assert_eq!(s["gave_up"], 2, "{s:#}");
        assert!(s["kept_apart_by"].is_null(), "{s:#}");
    }
}

#[test]
fn a_gate_lock_is_not_reproduced_and_named() {
    // The prediction from the ungated program, steered in the gated one:
    // each parked thread holds the gate the other waits for.
    let c = confirm("gate_lock", &["--ungated"], &[], &["--tries", "1"]);
    let f = assert_not_reproduced(&c, 1);
    let steps = f["confirmation"]["steps"].as_array().unwrap();
    let kept = steps
        .iter()
        .find_map(|s| s["kept_apart_by"].as_object())
        .unwrap_or_else(|| panic!("no kept_apart_by: {steps:#?}"));
    assert_eq!(kept["name"], "gate");
    // And the same prediction in the ungated program is real.
    let c = confirm("gate_lock", &["--ungated"], &["--ungated"], &[]);
    assert_confirmed(&c, &["lock_a", "lock_b"], &["forward", "backward"]);
}

#[test]
fn a_trylock_is_never_parked_nor_confirmed() {
    // The blocking variant's prediction; in the trylock program the
    // second thread only tries A, at another call, and never waits.
    let c = confirm("trylock", &["--blocking"], &[], &["--tries", "1"]);
    let f = assert_not_reproduced(&c, 1);
    let steps = f["confirmation"]["steps"].as_array().unwrap();
    assert_eq!(steps[1]["reached"], 0, "{steps:#?}");
    assert_eq!(steps[1]["parked"], 0, "{steps:#?}");
}

#[test]
fn serialized_inversions_are_not_reproduced_as_expected() {
    for mode in ["one-thread", "joined", "init-phase"] {
        let c = confirm("lockorder", &[mode], &[mode], &["--tries", "1"]);
        let f = assert_not_reproduced(&c, 1);
        assert_eq!(f["kind"], "lock-order-inversion", "{mode}: {f:#}");
        assert!(f["serialized"].is_object(), "{mode}: {f:#}");
    }
}

#[test]
fn a_cycle_too_long_to_steer_is_kept_and_says_why() {
    let c = confirm("lockorder", &["ring", "20"], &["ring", "20"], &[]);
    let f = &c.report["findings"][0];
    assert_eq!(f["confirmation"]["verdict"], "not-steered", "{f:#}");
    assert_eq!(f["nodes"].as_array().unwrap().len(), 20);
    let warnings = c.report["warnings"].to_string();
    assert!(warnings.contains("confirm steers at most 16"), "{warnings}");
    assert_eq!(c.code, 0);
}

#[test]
fn the_text_says_confirmed_and_how() {
    let predicted = run_example("abba", &["--timed"], 60);
    let work = work_dir("confirm-text");
    let prediction = work.join("prediction.json");
    std::fs::write(&prediction, predicted.report.to_string()).unwrap();
    let exe = examples().join("abba");
    let tries = work.join("tries");
    let (code, out, err) = holdcheck(
        &[
            "confirm",
            "--out",
            tries.to_str().unwrap(),
            prediction.to_str().unwrap(),
            "1",
            "--",
            exe.to_str().unwrap(),
            "--timed",
        ],
        Duration::from_secs(120),
    );
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(out.contains("CONFIRMED in try 1"), "{out}");
    assert!(out.contains("How it was reproduced"), "{out}");
    assert!(out.contains("arrived last and let the others go"), "{out}");
    assert!(
        out.contains("holdcheck: 1 of 1 predicted deadlock confirmed"),
        "{out}"
    );
    let pids = traced_pids(&tries);
    assert!(!pids.is_empty(), "no trace under {}", tries.display());
    for pid in pids {
        assert_gone(pid);
    }
}

#[test]
fn confirm_refuses_bad_input_clearly() {
    let work = work_dir("confirm-bad");
    let exe = examples().join("abba");
    let exe = exe.to_str().unwrap();
    // Not a report.
    let junk = work.join("junk.json");
    std::fs::write(&junk, "{ not json").unwrap();
    let (code, _, err) = holdcheck(
        &["confirm", junk.to_str().unwrap(), "--", exe],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("is not a holdcheck JSON report"), "{err}");
    // A finding number the report does not have.
    let predicted = run_example("abba", &["--timed"], 60);
    let prediction = work.join("prediction.json");
    std::fs::write(&prediction, predicted.report.to_string()).unwrap();
    let (code, _, err) = holdcheck(
        &["confirm", prediction.to_str().unwrap(), "3", "--", exe],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("there is no potential deadlock number 3"),
        "{err}"
    );
    // Another program than the one that made the prediction: its sites
    // are nowhere, and the report says why.
    let out = work.join("other.json");
    let other = examples().join("trylock");
    let (code, _, err) = holdcheck(
        &[
            "confirm",
            "--tries",
            "1",
            "--format",
            "json",
            "-o",
            out.to_str().unwrap(),
            prediction.to_str().unwrap(),
            "--",
            other.to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let warnings = r["warnings"].to_string();
    assert!(
        warnings.contains("the command never loaded") && warnings.contains("abba"),
        "{warnings}"
    );
    // A report with nothing to confirm says so and succeeds.
    let clean = run_example("gate_lock", &[], 60);
    let none = work.join("none.json");
    std::fs::write(&none, clean.report.to_string()).unwrap();
    let (code, out, err) = holdcheck(
        &["confirm", none.to_str().unwrap(), "--", exe],
        Duration::from_secs(30),
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(err.contains("holds no potential deadlock"), "{err}");
    // No command.
    let (code, _, err) = holdcheck(
        &["confirm", prediction.to_str().unwrap()],
        Duration::from_secs(30),
    );
    assert_eq!(code, 2, "{err}");
}
