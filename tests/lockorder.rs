//! Lock-order verdicts on the shapes the peers' own deadlock tests hold
//! (TSan, Helgrind, lockdep): every inversion they report is reported, and
//! graded by whether this run could have deadlocked on it.

mod support;

use serde_json::Value;
use support::*;

/// The one lock-order finding of a run, of the kind expected.
fn only<'a>(r: &'a Run, kind: &str) -> &'a Value {
    let all = r.report["findings"].as_array().unwrap();
    assert_eq!(all.len(), 1, "{:#}", r.report["findings"]);
    assert_eq!(all[0]["kind"], kind, "{:#}", all[0]);
    &all[0]
}

/// A run that found nothing and exited as the program did.
fn assert_silent(r: &Run) {
    assert_eq!(r.code, 0, "{:#}", r.report["findings"]);
    assert!(r.report["findings"].as_array().unwrap().is_empty());
}

/// The lock addresses of a finding's nodes, in cycle order.
fn lock_nodes(f: &Value) -> Vec<String> {
    f["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            assert_eq!(n["type"], "lock");
            n["address"].as_str().unwrap().to_string()
        })
        .collect()
}

/// The caller of `transfer` in each edge's stack: which code path took
/// that order.
fn transfer_callers(f: &Value) -> Vec<String> {
    f["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let frames = &f["stacks"][e["stack"].as_u64().unwrap() as usize]["frames"];
            let frames = frames.as_array().unwrap();
            assert_eq!(frames[0]["function"], "transfer", "{frames:#?}");
            format!(
                "{}:{}",
                frames[1]["function"].as_str().unwrap(),
                frames[1]["line"]
            )
        })
        .collect()
}

/// Each order of `lockorder one-thread` shows its own caller:
/// transfer(a, b) and transfer(b, a) are called from two lines of main.
fn assert_two_callers_in_main(f: &Value) {
    assert_two_callers_in(f, "main");
}

/// The same, called from two lines of `function`.
fn assert_two_callers_in(f: &Value, function: &str) {
    let mut callers = transfer_callers(f);
    callers.sort();
    callers.dedup();
    assert_eq!(callers.len(), 2, "{callers:?}");
    assert!(
        callers
            .iter()
            .all(|c| c.starts_with(&format!("{function}:"))),
        "{callers:?}"
    );
}

#[test]
fn one_thread_taking_two_orders_is_a_graded_inversion_with_both_call_paths() {
    let r = run_example("lockorder", &["one-thread"], 60);
    assert_eq!(r.code, 1, "an inversion fails the run by default");
    let f = only(&r, "lock-order-inversion");
    assert_eq!(lock_nodes(f).len(), 2);
    // C variables one letter long are named as they are (a C++ demangler
    // would read `a` and `b` as the types `signed char` and `bool`).
    let mut names: Vec<&str> = f["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap_or("?"))
        .collect();
    names.sort();
    assert_eq!(names, ["a", "b"], "{f:#}");
    assert_eq!(f["serialized"]["by"], "same-thread");
    assert_eq!(f["serialized"]["same_thread"][0]["name"], "lockorder");
    assert_eq!(r.report["summary"]["lock-order-inversion"], 1);
    assert_eq!(r.report["summary"]["potential-deadlock"], 0);
    assert_two_callers_in_main(f);
    // The text says why this run could not deadlock, and that two threads can.
    let (code, text, _) = holdcheck(
        &["report", r.trace_dir.to_str().unwrap()],
        std::time::Duration::from_secs(30),
    );
    assert_eq!(code, 1);
    assert!(
        text.contains("took two of its orders one after the other"),
        "{text}"
    );
    assert!(
        text.contains("Two threads running these code paths"),
        "{text}"
    );
    assert!(text.contains("1 lock-order inversion in"), "{text}");
    // SARIF grades it a warning; a potential deadlock is an error.
    let (_, sarif, _) = holdcheck(
        &["report", "--format", "sarif", r.trace_dir.to_str().unwrap()],
        std::time::Duration::from_secs(30),
    );
    let sarif: Value = serde_json::from_str(&sarif).unwrap();
    let result = &sarif["runs"][0]["results"][0];
    assert_eq!(result["ruleId"], "lock-order-inversion");
    assert_eq!(result["level"], "warning");
    // Reported, but not failing, on request.
    let (code, _, _) = holdcheck(
        &[
            "report",
            "--serialized-inversions",
            "warn",
            r.trace_dir.to_str().unwrap(),
        ],
        std::time::Duration::from_secs(30),
    );
    assert_eq!(code, 0);
}

#[test]
fn a_program_whose_code_is_not_its_first_executable_segment_has_whole_stacks() {
    // lockorder linked with its `.text` in a segment of its own, after one
    // holding `.init` and `.plt` (node is laid out so): each stack ended
    // after its first frame.
    let r = run_example("lockorder_splittext", &["one-thread"], 60);
    let f = only(&r, "lock-order-inversion");
    assert_two_callers_in_main(f);
}

#[test]
fn a_program_without_unwind_tables_has_its_stacks_by_frame_pointer() {
    // lockorder built as Chromium is (no FDE covers its functions, frame
    // pointers kept): each stack ended at `transfer`.
    let r = run_example("lockorder_nofde", &["one-thread"], 60);
    let f = only(&r, "lock-order-inversion");
    assert_two_callers_in_main(f);
    // The same in a fork child that does not exec (Chromium's renderers,
    // forked by its Zygote): it unwinds with what its parent knew.
    // And in one whose parent never unwound (a Zygote's): it builds its
    // own from the program headers its parent listed at the fork.
    for mode in ["forked", "forked-first"] {
        let r = run_example("lockorder_nofde", &[mode], 60);
        let f = only(&r, "lock-order-inversion");
        assert_ne!(
            f["edges"][0]["thread"]["pid"], r.report["processes"][0]["pid"],
            "{mode}: {f:#}"
        );
        assert_two_callers_in(f, "in_a_child");
    }
}

/// A fork child that loads a library after the fork (a Zygote's renderer
/// loading its GL library) and nests locks in it: the library's frames are
/// unwound through and named, though the child must not ask the loader
/// (found by glibc's lock-free `_dl_find_object`); each stack had one
/// frame, unnamed.
#[test]
fn a_fork_child_unwinds_and_names_a_library_it_loaded_after_the_fork() {
    let r = run_example("lockorder", &["forked-dlopen"], 60);
    let f = only(&r, "lock-order-inversion");
    assert_ne!(
        f["edges"][0]["thread"]["pid"], r.report["processes"][0]["pid"],
        "{f:#}"
    );
    assert_two_callers_in(f, "in_a_child");
    for s in f["stacks"].as_array().unwrap() {
        let module = s["frames"][0]["module"].as_str().unwrap_or_default();
        assert!(module.ends_with("/liblocky.so"), "{s:#}");
    }
}

#[test]
fn one_thread_abcabc_is_one_three_lock_inversion() {
    let r = run_example("lockorder", &["abcabc"], 60);
    assert_eq!(r.code, 1);
    let f = only(&r, "lock-order-inversion");
    assert_eq!(lock_nodes(f).len(), 3);
    assert_eq!(f["serialized"]["by"], "same-thread");
}

#[test]
fn an_init_phase_before_the_worker_starts_is_ordered_by_that_start() {
    let r = run_example("lockorder", &["init-phase"], 60);
    assert_eq!(r.code, 1);
    let f = only(&r, "lock-order-inversion");
    let s = &f["serialized"];
    assert_eq!(s["by"], "start-join", "{s:#}");
    assert_eq!(s["ordered_by"].as_array().unwrap().len(), 1, "{s:#}");
    assert_eq!(s["ordered_by"][0]["event"], "start");
    assert_eq!(s["ordered_by"][0]["thread"]["name"], "worker");
    assert_eq!(s["ordered_by"][0]["by"]["name"], "lockorder");
    assert!(
        f["title"].as_str().unwrap().contains("the start of"),
        "{f:#}"
    );
}

#[test]
fn a_thread_joined_before_the_next_starts_is_ordered_by_join_then_start() {
    let r = run_example("lockorder", &["joined"], 60);
    assert_eq!(r.code, 1);
    let f = only(&r, "lock-order-inversion");
    let events: Vec<(String, String)> = f["serialized"]["ordered_by"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["event"].as_str().unwrap().to_string(),
                e["thread"]["name"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        events,
        [
            ("join".to_string(), "first".to_string()),
            ("start".to_string(), "second".to_string())
        ]
    );
}

#[test]
fn two_threads_running_at_once_stay_a_potential_deadlock() {
    let r = run_example("abba", &[], 60);
    assert_eq!(r.code, 1);
    let f = only(&r, "potential-deadlock");
    assert!(f.get("serialized").is_none(), "{f:#}");
    assert_eq!(r.report["summary"]["lock-order-inversion"], 0);
}

#[test]
fn rings_of_2_to_64_locks_one_thread_per_edge_are_potential_deadlocks() {
    for n in [2usize, 3, 8, 9, 16, 33, 64] {
        let r = run_example("lockorder", &["ring", &n.to_string()], 120);
        assert_eq!(r.code, 1, "ring of {n}");
        let f = only(&r, "potential-deadlock");
        assert_eq!(lock_nodes(f).len(), n, "ring of {n}");
        assert_eq!(thread_names(f).len(), n, "ring of {n}");
        assert_eq!(r.report["partial"], false, "ring of {n}");
        // Named by the array that holds them, each by its index.
        let mut names: Vec<String> = f["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["name"].as_str().unwrap_or("?").to_string())
            .collect();
        names.sort();
        let mut want: Vec<String> = (0..n).map(|i| format!("ring[{i}]")).collect();
        want.sort();
        assert_eq!(names, want, "ring of {n}");
    }
}

/// The two roles of a same-class inversion: the class's name or origin,
/// and the locks the threads took in each role.
fn class_roles(f: &Value) -> Vec<(String, Vec<String>)> {
    f["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            let c = &n["class"];
            let locks = c["instances"]
                .as_array()
                .unwrap_or_else(|| panic!("no class: {n:#}"))
                .iter()
                .map(|l| l.as_str().unwrap().to_string())
                .collect();
            (c["role"].as_str().unwrap().to_string(), locks)
        })
        .collect()
}

#[test]
fn stripes_of_one_class_nested_both_ways_are_a_potential_deadlock() {
    // No pair is ever taken both ways (the instance graph has no cycle):
    // lockdep's class rule still sees it, and so does holdcheck.
    let r = run_example("striped", &[], 60);
    assert_eq!(r.code, 1);
    let f = only(&r, "potential-deadlock");
    assert!(
        f["title"]
            .as_str()
            .unwrap()
            .contains("within one lock class: two mutexes stripes[*]"),
        "{}",
        f["title"]
    );
    for n in f["nodes"].as_array().unwrap() {
        assert_eq!(n["name"], "stripes[*]", "{n:#}");
    }
    let roles = class_roles(f);
    assert_eq!(roles[0].0, "lower");
    assert_eq!(roles[1].0, "higher");
    // "up" took 2i then 2i+1; "down" took 2j+1 then 2j, on other pairs.
    let index = |l: &str| -> usize { l["stripes[".len()..l.len() - 1].parse().unwrap() };
    let (lower, higher) = (&roles[0].1, &roles[1].1);
    assert_eq!(lower.len(), 2, "{roles:?}");
    for (lo, hi) in lower.iter().zip(higher) {
        assert_eq!(index(lo) + 1, index(hi), "{roles:?}");
    }
    assert_ne!(lower[0], lower[1], "the pairs never met: {roles:?}");
    let mut names = thread_names(f);
    names.sort();
    assert_eq!(names, ["down", "up"]);
    // Each edge's stack is the thread's own move_entry call.
    let callers: Vec<String> = f["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| functions_at(f, &e["stack"])[1].clone())
        .collect();
    assert_eq!(callers, ["up", "down"]);
}

#[test]
fn stripes_always_taken_lowest_first_are_silent() {
    let r = run_example("striped", &["--ordered"], 60);
    assert_silent(&r);
}

#[test]
fn heap_stripes_are_one_class_by_their_init_call() {
    let r = run_example("striped", &["--heap"], 60);
    let f = only(&r, "potential-deadlock");
    for n in f["nodes"].as_array().unwrap() {
        assert!(n["name"].is_null(), "{n:#}");
        assert_eq!(n["origin"]["how"], "init");
        assert_eq!(n["origin"]["at"]["function"], "stripe_new");
    }
    let roles = class_roles(f);
    assert!(roles[0].1.iter().all(|l| l.starts_with("0x")), "{roles:?}");
    assert!(
        f["title"]
            .as_str()
            .unwrap()
            .contains("two mutexes initialised in stripe_new"),
        "{}",
        f["title"]
    );
}

#[test]
fn both_orders_under_one_gate_lock_are_silent() {
    let r = run_example("lockorder", &["gated"], 60);
    assert_silent(&r);
}

#[test]
fn a_baseline_and_suppressions_cover_graded_inversions() {
    let r = run_example("lockorder", &["one-thread"], 60);
    let dir = work_dir("lockorder-baseline");
    let base = dir.join("base.json");
    let (code, _, _) = holdcheck(
        &[
            "report",
            "--format",
            "json",
            "-o",
            base.to_str().unwrap(),
            r.trace_dir.to_str().unwrap(),
        ],
        std::time::Duration::from_secs(30),
    );
    assert_eq!(code, 1);
    let (code, out, _) = holdcheck(
        &[
            "report",
            "--format",
            "json",
            "--baseline",
            base.to_str().unwrap(),
            r.trace_dir.to_str().unwrap(),
        ],
        std::time::Duration::from_secs(30),
    );
    assert_eq!(code, 0);
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["baselined"], 1);
    let sup = dir.join("sup.txt");
    std::fs::write(&sup, "lock-order-inversion:fun:transfer\n").unwrap();
    let (code, out, _) = holdcheck(
        &[
            "report",
            "--format",
            "json",
            "--suppressions",
            sup.to_str().unwrap(),
            r.trace_dir.to_str().unwrap(),
        ],
        std::time::Duration::from_secs(30),
    );
    assert_eq!(code, 0, "{out}");
    let v: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["suppressed"], 1);
}

#[test]
fn a_spinlock_inversion_is_predicted() {
    let r = run_example("lockorder", &["spin"], 60);
    assert_eq!(r.code, 1);
    let f = only(&r, "potential-deadlock");
    for n in f["nodes"].as_array().unwrap() {
        assert_eq!(n["kind"], "spinlock", "{n:#}");
    }
    assert_eq!(thread_names(f), ["s-then-t", "t-then-s"]);
}

#[test]
fn a_spinlock_deadlock_is_seen_live_and_ends_the_run() {
    let r = run_example("lockorder", &["spin-hang"], 30);
    assert_eq!(
        r.report["run"]["ending"], "deadlocked",
        "{:#}",
        r.report["run"]
    );
    let live = findings(&r.report, "deadlock");
    assert_eq!(live.len(), 1, "{:#}", r.report["findings"]);
    assert_eq!(thread_names(live[0]), ["s-then-t", "t-then-s"]);
    assert!(live[0]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .all(|n| n["kind"] == "spinlock"));
}

#[test]
fn a_thread_holding_300_locks_at_once_leaves_the_analysis_whole() {
    let r = run_example("lockorder", &["nested", "300"], 120);
    assert_eq!(r.code, 1, "{}", r.stdout);
    let f = only(&r, "potential-deadlock");
    // The one inversion: the first and the last of the 300, not the
    // countless longer cycles through the locks held in between.
    assert_eq!(lock_nodes(f).len(), 2, "{f:#}");
    assert_eq!(thread_names(f), ["nester", "reverser"]);
    assert!(
        r.report["warnings"].as_array().unwrap().is_empty(),
        "{:#}",
        r.report["warnings"]
    );
    for p in r.report["processes"].as_array().unwrap() {
        assert!(
            p["partial"].is_null() || p["partial"] == Value::Array(vec![]),
            "{p:#}"
        );
    }
}

/// The finding of a `waits` run with a cycle through a wait on `family`.
fn wait_cycle<'a>(r: &'a Run, kind: &str, family: &str) -> &'a Value {
    let f = only(r, kind);
    let nodes = f["nodes"].as_array().unwrap();
    assert_eq!(nodes.len(), 2, "{f:#}");
    assert_eq!(nodes.iter().filter(|n| n["type"] == "lock").count(), 1);
    assert!(
        nodes
            .iter()
            .any(|n| n["type"] == "channel" && n["family"] == family),
        "{f:#}"
    );
    f
}

#[test]
fn a_lock_held_across_a_join_of_a_thread_that_needs_it_is_a_potential_deadlock() {
    let r = run_example("waits", &["join"], 60);
    assert_eq!(r.code, 1);
    let f = wait_cycle(&r, "potential-deadlock", "thread");
    let join = edge_of(f, "held-across-call");
    assert_eq!(join["call"], "pthread_join");
    assert_eq!(stack_functions(f, join)[0], "finish_indexing");
    let end = edge_of(f, "thread-end");
    assert_eq!(end["thread"]["name"], "indexer");
    assert_eq!(end["acquired_at"]["function"], "index_batch");
}

/// A `waits` run that hangs: ended once the watchdog saw the deadlock.
fn hung_waits(mode: &str) -> Run {
    let r = run_example("waits", &[mode], 30);
    assert_eq!(
        r.report["run"]["ending"], "deadlocked",
        "{:#}",
        r.report["run"]
    );
    r
}

#[test]
fn a_join_under_the_lock_its_thread_waits_for_is_a_live_deadlock() {
    let r = hung_waits("join-hang");
    let f = wait_cycle(&r, "deadlock", "thread");
    assert_eq!(thread_names(f), ["indexer", "waits"]);
    assert_eq!(edge_of(f, "thread-end")["thread"]["name"], "indexer");
}

#[test]
fn a_join_made_after_the_lock_is_released_is_nothing() {
    let r = run_example("waits", &["join-clean"], 60);
    assert_silent(&r);
}

#[test]
fn a_lock_held_across_sem_wait_whose_poster_needs_it_is_a_potential_deadlock() {
    let r = run_example("waits", &["sem"], 60);
    assert_eq!(r.code, 1);
    let f = wait_cycle(&r, "potential-deadlock", "semaphore");
    assert_eq!(edge_of(f, "held-across-call")["call"], "sem_wait");
    let post = edge_of(f, "produce");
    assert_eq!(post["thread"]["name"], "producer");
    assert_eq!(post["acquired_at"]["function"], "produce");
}

#[test]
fn a_sem_wait_under_the_lock_its_poster_waits_for_is_a_live_deadlock() {
    let r = hung_waits("sem-hang");
    let f = wait_cycle(&r, "deadlock", "semaphore");
    assert_eq!(thread_names(f), ["producer", "waits"]);
}

#[test]
fn a_poster_that_needs_no_lock_makes_sem_wait_no_cycle() {
    let r = run_example("waits", &["sem-clean"], 60);
    // Only the lock held across the wait, which is a hazard, not a cycle.
    let all = r.report["findings"].as_array().unwrap();
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0]["kind"], "hazard");
}

/// The program frames of a finding's acquisition stacks, one per edge.
fn callers(f: &Value) -> Vec<String> {
    let mut v: Vec<String> = f["edges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let frames = f["stacks"][e["stack"].as_u64().unwrap() as usize]["frames"]
                .as_array()
                .unwrap();
            assert_eq!(frames[0]["function"], "Lock::lock()", "{frames:#?}");
            assert_eq!(frames[0]["wrapper"], true, "{frames:#?}");
            frames[1]["function"].as_str().unwrap().to_string()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn two_inversions_through_one_lock_wrapper_are_two_findings() {
    if !examples().join("wrapper").exists() {
        skip("no C++ compiler: the wrapper example is not built");
        return;
    }
    let r = run_example("wrapper", &[], 60);
    let all = findings(&r.report, "potential-deadlock");
    assert_eq!(all.len(), 2, "{:#}", r.report["findings"]);
    assert_ne!(all[0]["signature"], all[1]["signature"]);
    let mut pairs: Vec<Vec<String>> = all.iter().map(|f| callers(f)).collect();
    pairs.sort();
    assert_eq!(pairs, [["audit", "deposit"], ["evict", "insert"]]);
    for f in &all {
        assert_eq!(f["occurrences"], 1, "{f:#}");
        // Without held stacks, the held lock's site is the wrapper's, and
        // the report says so.
        let e = &f["edges"][0];
        let held = &f["stacks"][e["held_stack"].as_u64().unwrap() as usize];
        assert!(
            held["what"].as_str().unwrap().contains("held_stacks=1"),
            "{held:#}"
        );
    }
}

#[test]
fn held_stacks_show_where_the_wrapper_was_called_for_the_held_lock() {
    if !examples().join("wrapper").exists() {
        skip("no C++ compiler: the wrapper example is not built");
        return;
    }
    let r = run_example_with("wrapper", &[], 60, "held_stacks=1");
    let all = findings(&r.report, "potential-deadlock");
    assert_eq!(all.len(), 2, "{:#}", r.report["findings"]);
    let src = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/cpp/wrapper.cpp"),
    )
    .unwrap();
    // The line of each function's first lock() call: where it took the
    // lock it holds when it asks for the second.
    let first_lock = |func: &str| -> u64 {
        let start = src
            .lines()
            .position(|l| l.contains(&format!("void {func}()")))
            .unwrap();
        (src.lines()
            .skip(start)
            .position(|l| l.contains(".lock()"))
            .unwrap()
            + start
            + 1) as u64
    };
    for f in &all {
        for e in f["edges"].as_array().unwrap() {
            let held = &f["stacks"][e["held_stack"].as_u64().unwrap() as usize];
            let frames = held["frames"].as_array().unwrap();
            assert_eq!(frames[0]["function"], "Lock::lock()", "{held:#}");
            let func = frames[1]["function"].as_str().unwrap();
            assert_eq!(e["held_at"]["function"], func);
            assert_eq!(frames[1]["line"], first_lock(func), "{held:#}");
            assert_eq!(e["held_at"]["line"], first_lock(func));
        }
    }
}

/// Lock-order records and bytes of a run's trace.
fn trace_size(r: &Run) -> (usize, u64) {
    let (mut orders, mut bytes) = (0, 0);
    for e in std::fs::read_dir(&r.trace_dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        bytes += text.len() as u64;
        orders += text
            .lines()
            .filter(|l| l.starts_with("{\"t\":\"lock_order\""))
            .count();
    }
    (orders, bytes)
}

#[test]
fn a_lock_per_object_makes_a_trace_that_grows_with_classes_not_objects() {
    // Each object's mutex is a new lock, taken under one outer lock: one
    // fact by class (the init call in object_new), however many objects.
    let small = run_example("manylocks", &["--objects", "2000"], 120);
    let large = run_example("manylocks", &["--objects", "200000"], 120);
    for r in [&small, &large] {
        assert_silent(r);
        assert_eq!(r.report["partial"], false);
    }
    let (small_orders, small_bytes) = trace_size(&small);
    let (large_orders, large_bytes) = trace_size(&large);
    assert!(small_orders >= 1, "the fact is recorded");
    // Instances kept as evidence: 64 per fact by class, and one per thread.
    assert!(
        large_orders <= 2 * (64 + 4),
        "{large_orders} lock-order records"
    );
    assert!(
        large_bytes <= small_bytes + 32 * 1024,
        "trace {small_bytes} bytes at 4 000 objects, {large_bytes} at 400 000"
    );
}

#[test]
fn thousands_of_locks_always_taken_in_address_order_are_silent_and_small() {
    // ThreadSanitizer's deadlock detector stress test, in C: 4 threads,
    // 16 384 rwlocks of one init call, random nestings (up to 10 deep, all
    // ascending), destroyed and initialised again. No cycle is possible.
    let r = run_example("manylocks", &["--stress", "100000"], 120);
    assert_silent(&r);
    assert_eq!(r.report["partial"], false);
    let (orders, bytes) = trace_size(&r);
    assert!(orders > 0, "nestings are recorded");
    assert!(
        bytes < 5 << 20,
        "trace of {bytes} bytes, {orders} lock orders"
    );
}
