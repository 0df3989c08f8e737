//! Lock misuse that leads to hangs and corruption: each kind reported once,
//! as a `misuse` finding with the stack of the call that made it; the same
//! calls made rightly are silent.

mod support;

use serde_json::Value;
use support::*;

/// The one finding of `misuse MODE`: a misuse of kind `relation`, made in
/// `function`.
fn one_misuse(mode: &str, options: &str, relation: &str, function: &str) -> (Run, Value) {
    let r = run_example_with("misuse", &[mode], 60, options);
    assert!(r.stdout.contains("done"), "{}", r.stdout);
    let all = r.report["findings"].as_array().unwrap();
    assert_eq!(all.len(), 1, "{mode}: {all:#?}");
    let f = all[0].clone();
    assert_eq!(f["kind"], "misuse", "{f:#}");
    assert_eq!(r.code, 1, "a misuse fails the run");
    let e = edge_of(&f, relation);
    assert_eq!(stack_functions(&f, e)[0], function, "{f:#}");
    // The location is the program's frame: the function itself, or its
    // caller when the function is a few instructions around the call (a
    // wrapper).
    let frames = &f["stacks"][e["stack"].as_u64().unwrap() as usize]["frames"];
    let first = frames
        .as_array()
        .unwrap()
        .iter()
        .find(|fr| fr["wrapper"] != true)
        .unwrap();
    assert_eq!(f["location"]["function"], first["function"], "{f:#}");
    (r, f)
}

#[test]
fn unlocking_an_unlocked_mutex_is_a_misuse() {
    let (_, f) = one_misuse("unlock-unlocked", "", "unlock-not-held", "flush_stats");
    assert!(
        f["title"].as_str().unwrap().contains("it was not locked"),
        "{f:#}"
    );
}

#[test]
fn unlocking_another_threads_mutex_names_its_holder() {
    let (_, f) = one_misuse("unlock-other", "", "unlock-not-held", "release_for_holder");
    assert!(
        f["title"].as_str().unwrap().contains("\"holder\""),
        "{}",
        f["title"]
    );
}

#[test]
fn a_refused_relock_followed_by_two_unlocks_shows_both_calls() {
    let (_, f) = one_misuse("relock-ignored", "", "relock-ignored", "update_twice");
    let edges = f["edges"].as_array().unwrap();
    assert_eq!(edges.len(), 2, "the unlock and the refused relock: {f:#}");
    assert!(f["stacks"][1]["what"].as_str().unwrap().contains("EDEADLK"));
    let unlock = f["stacks"][0]["frames"][0]["line"].as_u64().unwrap();
    let relock = f["stacks"][1]["frames"][0]["line"].as_u64().unwrap();
    assert!(relock < unlock, "the relock comes first: {f:#}");
}

#[test]
fn a_relock_refused_and_handled_is_not_a_misuse() {
    // relock --errorcheck: EDEADLK, and the program unlocks once.
    let r = run_example("relock", &["--errorcheck"], 60);
    assert_eq!(r.code, 0, "{:#}", r.report["findings"]);
}

#[test]
fn destroying_a_held_mutex_is_a_misuse() {
    let (_, f) = one_misuse("destroy-locked", "", "destroy-locked", "shutdown_stats");
    let title = f["title"].as_str().unwrap();
    assert!(
        title.contains("(its own)") && title.contains("taken at shutdown_stats"),
        "{title}"
    );
}

#[test]
fn destroying_a_held_spinlock_is_a_misuse() {
    let (_, f) = one_misuse(
        "spin-destroy-locked",
        "",
        "destroy-locked",
        "spin_table_free",
    );
    assert_eq!(f["nodes"][0]["kind"], "spinlock", "{f:#}");
}

#[test]
fn unlocking_a_free_spinlock_is_a_misuse() {
    // glibc keeps a free spinlock at 1 and a taken one at 0: a reading
    // the other way round called every destroy of a free spinlock a
    // misuse (unbound: 8 576 at its exit) and this one nothing.
    let (_, f) = one_misuse(
        "spin-unlock-unlocked",
        "",
        "unlock-not-held",
        "spin_release_twice",
    );
    assert_eq!(f["nodes"][0]["kind"], "spinlock", "{f:#}");
}

#[test]
fn locking_a_destroyed_mutex_is_a_misuse() {
    one_misuse("use-destroyed", "", "use-destroyed", "late_update");
}

#[test]
fn a_condition_wait_with_a_mutex_not_held_is_a_misuse_and_no_wait() {
    // The wait fails at once (EPERM): the lock held around it is not held
    // across a blocking call, so there is no hazard.
    let (r, f) = one_misuse("cond-unheld", "", "cond-wait-unheld", "wait_without_lock");
    assert!(r.stdout.contains("EPERM"), "{}", r.stdout);
    assert!(f["title"].as_str().unwrap().contains("condition variable"));
}

#[test]
fn one_condition_variable_waited_with_two_mutexes_is_a_misuse() {
    let (_, f) = one_misuse("cond-two-mutexes", "", "cond-two-mutexes", "timed_wait");
    let nodes = f["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "both mutexes: {f:#}");
    assert_ne!(nodes[0]["address"], nodes[1]["address"]);
    assert_eq!(f["edges"][0]["thread"]["name"], "second-waiter");
}

#[test]
fn a_lock_held_past_the_threshold_is_reported_only_when_asked() {
    let (_, f) = one_misuse("hold-long", "hold_ms=100", "held-too-long", "slow_update");
    let ns = f["edges"][0]["max_ns"].as_u64().unwrap();
    assert!(ns >= 300_000_000, "{ns}");
    assert_eq!(f["edges"][0]["held_at"]["function"], "slow_update");
    let r = run_example("misuse", &["hold-long"], 60);
    assert_eq!(r.code, 0, "{:#}", r.report["findings"]);
}

#[test]
fn the_same_calls_made_rightly_are_silent() {
    // A relock refused and handled, a destroy of an unlocked mutex made
    // again, one condition variable with one mutex, a cancelled wait whose
    // cleanup handler unlocks, a lock released by another function,
    // spinlocks made, used and destroyed.
    let r = run_example_with("misuse", &["clean"], 60, "hold_ms=1000");
    assert!(r.stdout.contains("misuse clean"), "{}", r.stdout);
    assert_eq!(r.code, 0, "{:#}", r.report["findings"]);
    assert!(r.report["findings"].as_array().unwrap().is_empty());
}
