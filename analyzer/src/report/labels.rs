//! Words for findings' data: what every report format calls a lock, a
//! queue, a thread or a duration. Findings are data; the analysis and each
//! format take their labels from here, so they say the same thing.

use super::*;
use crate::symbolize::Frame;

/// `60.6 µs`, `2.5 ms`, `1826 ms`, `15.2 s`: one style, milliseconds below
/// 10 s (as the titles count waits).
pub fn duration(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..=9_999_999 => format!("{:.1} ms", ns as f64 / 1e6),
        // Whole milliseconds below 10 s, as the titles count waits.
        10_000_000..=9_999_999_999 => format!("{} ms", ns / 1_000_000),
        _ => format!("{:.1} s", ns as f64 / 1e9),
    }
}

/// A blocking call's duration as a clock with ticks of `res` ns measured
/// it (`None`: exact, or not known): the call took `ns` give or take a
/// tick, so a measure of a few ticks is said as the bounds it gives,
/// never as a precise `0 ns` or `4.0 ms`.
pub fn call_duration(ns: u64, res: Option<u64>) -> String {
    let res = match res {
        Some(r) if r > 1 => r,
        _ => return duration(ns),
    };
    if ns >= res.saturating_mul(10) {
        // Within a tenth: said as measured.
        return duration(ns);
    }
    let hi = ns + res;
    if ns <= res {
        return format!("under {}", duration(hi));
    }
    let lo = ns - res;
    if res >= 1_000_000 {
        // Whole milliseconds, rounded outwards.
        format!("{}-{} ms", lo / 1_000_000, hi.div_ceil(1_000_000))
    } else {
        format!("{} to {}", duration(lo), duration(hi))
    }
}

/// What an inspected thread was doing, in a few words: what it is blocked
/// in; the call it was in though it ran between samples (only that is
/// known: a timed wait that keeps waking, or a loop); or running.
pub fn task_doing(t: &TaskInfo) -> String {
    let timeout = t.timeout.as_ref().map(call_timeout);
    match (&t.blocked_in, &t.in_call, timeout) {
        (Some(b), _, None) => b.clone(),
        (Some(b), _, Some(w)) => format!("{b}, {w}"),
        (None, Some(c), None) => {
            format!("in {c}, but ran between samples (a timed wait or a loop)")
        }
        (None, Some(c), Some(w)) => format!("in {c}, {w}; it ran between samples"),
        (None, None, _) => "running".to_string(),
    }
}

/// What a blocked call's timeout says: when it returns by itself.
pub fn call_timeout(t: &CallTimeout) -> String {
    let ms = |ms: u64| duration(ms.saturating_mul(1_000_000));
    match (t.left_ms, t.after_ms, t.sleep) {
        (Some(left), _, _) if left < 0 => format!(
            "{} passed {} ago: it is returning",
            if t.sleep {
                "a sleep whose end"
            } else {
                "with a timeout that"
            },
            ms(left.unsigned_abs())
        ),
        (Some(left), _, true) => format!("a sleep that ends in {}", ms(left as u64)),
        (Some(left), _, false) => {
            format!(
                "with a timeout: it returns by itself in {}",
                ms(left as u64)
            )
        }
        (None, Some(after), true) => format!("a sleep of {}", ms(after)),
        (None, Some(after), false) => format!(
            "with a timeout of {}: it returns by itself at most that long after it began",
            ms(after)
        ),
        (None, None, true) => "a sleep whose end the kernel keeps (not readable here)".into(),
        (None, None, false) => {
            "with a timeout the kernel keeps (not readable here): it returns by itself".into()
        }
    }
}

pub fn thread_label(t: &ThreadRef) -> String {
    if t.name.is_empty() {
        format!("Thread T{} (pid {})", t.tid, t.pid)
    } else {
        format!("Thread T{} \"{}\" (pid {})", t.tid, t.name, t.pid)
    }
}

/// `T12 "main"`.
pub fn thread_short(t: &ThreadRef) -> String {
    if t.name.is_empty() && t.tid == t.pid {
        format!("T{} (main thread)", t.tid)
    } else if t.name.is_empty() {
        format!("T{}", t.tid)
    } else {
        format!("T{} \"{}\"", t.tid, t.name)
    }
}

/// Why a lock-order inversion could not deadlock in this run, in words.
pub fn serialized_reason(s: &Serialized) -> String {
    if !s.same_thread.is_empty() {
        let who: Vec<String> = s.same_thread.iter().map(thread_short).collect();
        return format!(
            "{} took two of its orders one after the other, so this run could not deadlock on it",
            who.join(" and ")
        );
    }
    let how: Vec<String> = s
        .ordered_by
        .iter()
        .map(|e| {
            let what = if e.event == "join" { "join" } else { "start" };
            format!(
                "the {what} of {} (by {})",
                thread_short(&e.thread),
                thread_short(&e.by)
            )
        })
        .collect();
    format!(
        "{} put its orders one after the other, so this run could not deadlock on it",
        how.join(", then ")
    )
}

/// A predicted cycle's one-line title, from its data: a lock-order
/// inversion (and why this run could not deadlock on it), or a lock held
/// across a blocking call whose other end needs that lock.
pub fn cycle_title(f: &Finding) -> String {
    let locks = f
        .nodes
        .iter()
        .filter(|n| matches!(n, NodeInfo::Lock { .. }))
        .count();
    let queues = f.nodes.len() - locks;
    let edges = &f.edges;
    let class = f.nodes.iter().find_map(|n| match n {
        NodeInfo::Lock {
            class: Some(_),
            kind,
            ..
        } => Some((kind, lock_what(n).unwrap_or_default())),
        _ => None,
    });
    if let Some((kind, what)) = class {
        // `stripes[*] (the lower-addressed of two)`: the class alone.
        let class = what.split(" (the ").next().unwrap_or_default();
        let how = match &f.serialized {
            Some(s) => serialized_reason(s),
            None => format!(
                "{} threads, on pairs that never met in this run",
                f.threads.len()
            ),
        };
        let kinds = if kind == "mutex" {
            "mutexes".to_string()
        } else {
            format!("{kind}s")
        };
        return format!(
            "lock-order inversion within one lock class: two {kinds} {class} nested in \
             opposite address orders; {how}"
        );
    }
    if let Some(s) = &f.serialized {
        format!(
            "lock-order inversion: {locks} locks taken in opposite orders; {}",
            serialized_reason(s)
        )
    } else if queues == 0 {
        format!(
            "lock-order inversion: {locks} locks taken in opposite orders by {} threads",
            f.threads.len()
        )
    } else if let Some(held) = edges.iter().find(|e| e.relation == "held-across-call") {
        let lock = node_label(&f.nodes[held.from]);
        let queue = node_label(&f.nodes[held.to]);
        let needs = if let Some(w) = edges.iter().find(|e| e.relation == "queue-wait") {
            format!(
                "while the other end first waits on {}, in a cycle back to that lock",
                node_label(&f.nodes[w.to])
            )
        } else if edges.iter().any(|e| e.relation == "drain") {
            "whose only drainer needs that lock".to_string()
        } else if edges.iter().any(|e| e.relation == "produce") {
            "whose producer needs that lock first".to_string()
        } else {
            "in a cycle back to that lock".to_string()
        };
        format!(
            "{lock} held across a blocking {}() on {queue}, {needs}",
            held.call.as_deref().unwrap_or("call")
        )
    } else {
        format!("cycle through {locks} locks and {queues} kernel queues")
    }
}

/// `rwlock alarm_lock (write)`, `mutex 0x5555` or `netlink NETLINK_USERSOCK port
/// 7 (send)`.
pub fn node_label(n: &NodeInfo) -> String {
    match n {
        NodeInfo::Lock { kind, mode, .. } => {
            let what = lock_what(n).unwrap_or_default();
            with_mode(format!("{kind} {what}"), kind, mode.as_deref())
        }
        NodeInfo::Channel {
            direction,
            description,
            channel,
            senders,
            receiving,
            ..
        } => {
            let ends = if channel.is_queue() {
                queue_ends(senders, receiving, |p| format!("{}[{}]", p.name, p.pid))
            } else {
                String::new()
            };
            format!(
                "{}{ends}",
                with_direction(description.clone(), channel, direction)
            )
        }
    }
}

/// A channel's label with the direction of its use: `pipe inode 7
/// (recv)`; a barrier's alone (arrivals have no direction).
pub fn with_direction(
    what: String,
    channel: &holdcheck_format::Channel,
    direction: &str,
) -> String {
    match channel {
        holdcheck_format::Channel::Barrier { .. } => what,
        _ => format!("{what} ({direction})"),
    }
}

/// The processes at a queue's two ends: ` in warnd[12]` (one process at
/// both), ` from cli[13] to warnd[12]`, or the one end known.
fn queue_ends(
    senders: &[ProcessName],
    receiving: &[ProcessName],
    name: impl Fn(&ProcessName) -> String,
) -> String {
    let list = |ps: &[ProcessName]| {
        let mut v: Vec<String> = ps.iter().map(&name).collect();
        v.dedup();
        if v.len() > 3 {
            let more = v.len() - 2;
            v.truncate(2);
            v.push(format!("{more} more"));
        }
        v.join(", ")
    };
    match (senders.is_empty(), receiving.is_empty()) {
        (true, true) => String::new(),
        (false, false) if senders == receiving && senders.len() == 1 => {
            format!(" in {}", list(senders))
        }
        (false, false) => format!(" from {} to {}", list(senders), list(receiving)),
        (false, true) => format!(" from {}", list(senders)),
        (true, false) => format!(" to {}", list(receiving)),
    }
}

/// What a lock is called in words: its file, its variable, else where it
/// was made with its address (two locks of one init site differ by it),
/// else its address; nothing for a queue.
pub fn lock_what(n: &NodeInfo) -> Option<String> {
    match n {
        NodeInfo::Lock {
            file,
            name,
            address,
            origin,
            class,
            ..
        } => {
            let what = match (file.as_ref().or(name.as_ref()), origin) {
                (Some(name), _) => name.clone(),
                // A class is where its locks were made, not one address.
                (None, Some(o)) if class.is_some() => origin_words(o),
                (None, Some(o)) => format!("{address} {}", origin_words(o)),
                (None, None) => address.clone(),
            };
            Some(match class {
                Some(c) => format!("{what} (the {}-addressed of two)", c.role),
                None => what,
            })
        }
        NodeInfo::Channel { .. } => None,
    }
}

/// `initialised in account_new (abba.c:70)`, or `first held in …`.
fn origin_words(o: &LockOrigin) -> String {
    let how = if o.how == ORIGIN_INIT {
        "initialised"
    } else {
        "first held"
    };
    format!("{how} in {}", frame_brief(&o.at))
}

/// Whether a lock of `kind` has modes worth saying: a mutex's is always
/// "write", a rwlock's or file lock's tells readers from writers.
pub fn shows_mode(kind: &str) -> bool {
    kind == "rwlock" || kind == "file lock"
}

/// `what` with the mode it is held or wanted in, where the kind has two.
pub fn with_mode(what: String, kind: &str, mode: Option<&str>) -> String {
    match mode.filter(|_| shows_mode(kind)) {
        Some(m) => format!("{what} ({m})"),
        None => what,
    }
}

/// `account_new (abba.c:70)`: a function and its file's name and line;
/// in stripped code, `chromium+0x3e4b189`: its object and offset (its
/// address alone would differ in every run).
pub fn frame_brief(f: &Frame) -> String {
    let function = f
        .function
        .clone()
        .unwrap_or_else(|| match (&f.module, &f.offset) {
            (Some(m), Some(o)) => format!("{}+{o}", m.rsplit('/').next().unwrap_or(m)),
            _ => f.pc.clone(),
        });
    match (&f.file, f.line) {
        (Some(file), Some(line)) => {
            let base = file.rsplit('/').next().unwrap_or(file);
            format!("{function} ({base}:{line})")
        }
        _ => function,
    }
}

/// What an edge's thread does, in a few words, for a picture's arrow (a
/// live finding's threads wait; a predicted one's took the next lock).
pub fn edge_action(f: &Finding, e: &EdgeInfo) -> String {
    let live = f.kind == DEADLOCK || !f.thread_states.is_empty();
    match (e.relation.as_str(), &e.call) {
        ("held-across-call", Some(c)) => format!("{c}()"),
        ("lock-order", _) if live && e.from == e.to => "waits for it again".to_string(),
        ("lock-order", _) if live => "waits to acquire".to_string(),
        ("lock-order", _) => "then acquires".to_string(),
        ("drain", _) => "drains, then acquires".to_string(),
        ("produce", _) => "feeds, then acquires".to_string(),
        ("waits-behind", _) => "queued behind a writer".to_string(),
        ("queue-wait", _) => "serves it, first waits on".to_string(),
        ("exit-wait", _) => "exits only after".to_string(),
        ("barrier-arrival", _) => "arrives only after".to_string(),
        ("exited-holding", _) => "exited holding it".to_string(),
        (r, _) => r.to_string(),
    }
}

/// A thread by its name, quoted (`"nl-receiver"`), as it is in every run:
/// ids are not.
pub fn thread_name(t: &ThreadRef) -> String {
    match (t.name.is_empty(), t.tid == t.pid) {
        (false, _) => format!("\"{}\"", t.name),
        (true, true) => "main".to_string(),
        (true, false) => "(unnamed)".to_string(),
    }
}

/// A node in words that are the same in every run of the same build: a
/// lock by its variable or where it was made, never its address; a queue
/// by its kind and stable names (a netlink protocol, a unix path, a
/// listening port), never its port number, inode or pid.
pub fn stable_node_label(n: &NodeInfo) -> String {
    match n {
        NodeInfo::Lock {
            kind,
            mode,
            file,
            name,
            origin,
            ..
        } => {
            let what = match (file.as_ref().or(name.as_ref()), origin) {
                (Some(n), _) => format!("{kind} {n}"),
                (None, Some(o)) => format!("{kind} {}", origin_words(o)),
                (None, None) => format!("a {kind}"),
            };
            with_mode(what, kind, mode.as_deref())
        }
        NodeInfo::Channel {
            direction,
            channel,
            senders,
            receiving,
            ..
        } => {
            use holdcheck_format::Channel as C;
            let what = match channel {
                C::Netlink { protocol, .. } => format!(
                    "netlink {} socket",
                    holdcheck_format::netlink_protocol(*protocol)
                ),
                C::Unix { path: Some(p), .. } => format!("unix socket {p}"),
                C::Unix { .. } => "unix socket".to_string(),
                C::Pipe { .. } => "pipe".to_string(),
                C::Fifo { .. } => "fifo".to_string(),
                C::Tcp { .. } => "tcp connection".to_string(),
                C::Udp { .. } => "udp socket".to_string(),
                C::Listen { addr } => format!("listening socket {addr}"),
                C::Exit { .. } => "exit of a child process".to_string(),
                C::Condvar { .. } => "condition variable".to_string(),
                C::Semaphore { .. } => "semaphore".to_string(),
                C::Thread { .. } => "end of a thread".to_string(),
                C::Barrier { .. } => channel.describe(),
            };
            // Programs by name only: pids differ from run to run.
            let ends = if channel.is_queue() {
                queue_ends(senders, receiving, |p| p.name.clone())
            } else {
                String::new()
            };
            format!("{}{ends}", with_direction(what, channel, direction))
        }
    }
}

/// A text with what differs between runs taken out: addresses (`0x…`),
/// thread ids (`T1234` becomes `T`), and the number after `pid`, `port`,
/// `inode`, `process` or `thread` (becomes `N`). For messages that must
/// be equal in two runs (SARIF's, which code scanning matches).
pub fn stable(text: &str) -> String {
    const COUNTED: [&str; 6] = ["pid", "port", "inode", "process", "thread", "processes"];
    let mut out: Vec<String> = Vec::new();
    let mut prev = String::new();
    for word in text.split(' ') {
        // Leading and trailing punctuation stay: "(pid 12)" -> "(pid N)".
        let start = word
            .find(|c: char| c.is_ascii_alphanumeric())
            .unwrap_or(word.len());
        let end = word
            .rfind(|c: char| c.is_ascii_alphanumeric())
            .map_or(start, |i| i + 1);
        let (pre, core, post) = (&word[..start], &word[start..end], &word[end..]);
        let hex = core.len() > 2
            && core.starts_with("0x")
            && core[2..].chars().all(|c| c.is_ascii_hexdigit());
        let digits = !core.is_empty() && core.chars().all(|c| c.is_ascii_digit());
        let tid = core.len() > 1
            && core.starts_with('T')
            && core[1..].chars().all(|c| c.is_ascii_digit());
        let core_out = if hex {
            None
        } else if digits && COUNTED.contains(&prev.as_str()) {
            Some("N".to_string())
        } else if tid {
            Some("T".to_string())
        } else {
            Some(core.to_string())
        };
        prev = core.to_ascii_lowercase();
        match core_out {
            Some(c) => out.push(format!("{pre}{c}{post}")),
            // An address alone in parentheses leaves nothing behind.
            None if pre.is_empty() && post.is_empty() => {}
            None if pre == "(" && post.starts_with(')') => match out.last_mut() {
                Some(last) => last.push_str(&post[1..]),
                None => out.push(post[1..].to_string()),
            },
            None => out.push(format!("{pre}{post}")),
        }
    }
    out.retain(|w| !w.is_empty());
    out.join(" ")
}

/// A futex wait inspect cannot tie to a lock it can read (a condition
/// variable, a semaphore, a runtime's own lock).
pub const UNREAD_FUTEX: &str = "futex (a condition variable, semaphore or other)";

/// A futex wait in a process whose glibc locks inspect cannot read (a
/// static binary, another libc, a glibc it does not know): it may be a
/// pthread lock too.
pub const UNREADABLE_LOCKS_FUTEX: &str =
    "futex (a lock or other: this process's locks cannot be read)";

/// `unread_wait` of a futex wait in a process whose locks cannot be read.
pub const UNREADABLE_LOCKS: &str = "futex, locks unreadable";

/// What an inspected wait on a futex no lock was read from is, as a
/// thread state's `unread_wait` says it: `futex` (not a glibc lock), or
/// [`UNREADABLE_LOCKS`] (any lock, a pthread one too).
pub fn unread_futex(what: &str) -> Option<&'static str> {
    match what {
        UNREAD_FUTEX => Some("futex"),
        UNREADABLE_LOCKS_FUTEX => Some(UNREADABLE_LOCKS),
        _ => None,
    }
}

/// Locks of language runtimes built on a bare futex, by a function of
/// their contended path (as symbolized, `<…>` stripped): a thread blocked
/// in one waits on that lock, whose holder the lock records nowhere
/// holdcheck can read.
const RUNTIME_LOCKS: &[(&str, &str)] = &[
    (
        "std::sys::sync::mutex::futex::Mutex",
        "Rust std::sync::Mutex",
    ),
    (
        "std::sys::sync::rwlock::futex::RwLock",
        "Rust std::sync::RwLock",
    ),
    (
        "std::sys::sync::condvar::futex::Condvar",
        "Rust std::sync::Condvar",
    ),
    ("std::sys::sync::once::futex::Once", "Rust std::sync::Once"),
    ("parking_lot::raw_mutex::RawMutex", "parking_lot Mutex"),
    ("parking_lot::raw_rwlock::RawRwLock", "parking_lot RwLock"),
    ("parking_lot::condvar::Condvar", "parking_lot Condvar"),
    // CPython's locks are glibc semaphores, its GIL a condition variable.
    ("PyThread_acquire_lock", "Python lock"),
    ("take_gil", "Python GIL"),
];

/// Whether an inspected wait is on a glibc semaphore or condition variable
/// (which a runtime's lock may be made of).
pub fn is_glibc_object_wait(what: &str) -> bool {
    is_semaphore_wait(what) || what.starts_with("pthread_cond_wait on condition variable ")
}

/// Whether an inspected wait is on a glibc semaphore.
pub fn is_semaphore_wait(what: &str) -> bool {
    what.starts_with("sem_wait on semaphore ")
}

/// What a futex wait holdcheck cannot read is on, from its stack: the
/// runtime lock of its innermost frame that names one.
pub fn runtime_lock(frames: &[crate::symbolize::Frame]) -> Option<&'static str> {
    frames.iter().find_map(|f| {
        let name = f.function.as_deref()?.trim_start_matches('<');
        RUNTIME_LOCKS
            .iter()
            .find(|(prefix, _)| name.starts_with(prefix))
            .map(|(_, what)| *what)
    })
}

/// A thread's wait on a runtime's lock (see [`runtime_lock`]).
pub fn runtime_wait(lock: &str) -> String {
    format!("a futex wait on a {lock} (which records no holder)")
}

/// A hang's title, which names thread `tid` as blocked in `was` (a futex
/// it could not read, or a glibc object a runtime's lock is made of), with
/// that wait named as the runtime lock its stack shows (the title is made
/// where the process is read, its stacks symbolized later).
pub fn title_with_runtime_wait(title: &str, tid: u32, was: &str, lock: &str) -> String {
    let generic = format!("blocked in {was}");
    // The thread's name, then "is" or ", which is", then its wait.
    let named = format!("T{tid} \"");
    let Some(at) = title.find(&named).map(|i| i + named.len()) else {
        return title.to_string();
    };
    let Some(start) = title[at..].find(&generic).map(|i| at + i).filter(|&i| {
        let between = &title[at..i];
        let name = between
            .strip_suffix("\" is ")
            .or_else(|| between.strip_suffix("\", which is "));
        name.is_some_and(|n| !n.contains('"'))
    }) else {
        return title.to_string();
    };
    format!(
        "{}blocked in {}{}",
        &title[..start],
        runtime_wait(lock),
        &title[start + generic.len()..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inspected_thread_is_running_only_when_in_no_call() {
        let task = |blocked_in: Option<&str>, in_call: Option<&str>| TaskInfo {
            pid: 1,
            tid: 1,
            name: "t".into(),
            state: "S".into(),
            blocked_in: blocked_in.map(Into::into),
            no_progress_ms: None,
            in_call: in_call.map(Into::into),
            timeout: None,
            syscall: String::new(),
            wchan: String::new(),
            kernel_stack: vec![],
        };
        assert_eq!(task_doing(&task(Some("read()"), None)), "read()");
        assert_eq!(
            task_doing(&task(None, Some("futex"))),
            "in futex, but ran between samples (a timed wait or a loop)"
        );
        assert_eq!(task_doing(&task(None, None)), "running");
        let timed = |left_ms, after_ms, sleep| TaskInfo {
            timeout: Some(CallTimeout {
                left_ms,
                after_ms,
                sleep,
            }),
            ..task(
                Some("futex (a condition variable, semaphore or other)"),
                None,
            )
        };
        assert_eq!(
            task_doing(&timed(Some(27_100), None, false)),
            "futex (a condition variable, semaphore or other), with a timeout: it returns by itself in 27.1 s"
        );
        assert_eq!(
            task_doing(&timed(Some(-3), None, false)),
            "futex (a condition variable, semaphore or other), with a timeout that passed 3.0 ms ago: it is returning"
        );
        assert_eq!(
            task_doing(&timed(None, Some(5000), true)),
            "futex (a condition variable, semaphore or other), a sleep of 5000 ms"
        );
        let ran = TaskInfo {
            timeout: Some(CallTimeout {
                left_ms: None,
                after_ms: Some(250),
                sleep: false,
            }),
            ..task(None, Some("poll"))
        };
        assert_eq!(
            task_doing(&ran),
            "in poll, with a timeout of 250 ms: it returns by itself at most that long after it began; it ran between samples"
        );
    }

    #[test]
    fn a_frame_in_brief_is_its_function_or_its_object_and_offset() {
        let mut f = Frame {
            pc: "0x55d493f0b189".into(),
            function: None,
            file: None,
            line: None,
            module: Some("/usr/lib/chromium/chromium".into()),
            offset: Some("0x3e4b189".into()),
            inlined: false,
            wrapper: false,
            tiny: false,
        };
        assert_eq!(frame_brief(&f), "chromium+0x3e4b189");
        f.module = None;
        assert_eq!(frame_brief(&f), "0x55d493f0b189");
        f.function = Some("account_new".into());
        f.file = Some("/src/abba.c".into());
        f.line = Some(70);
        assert_eq!(frame_brief(&f), "account_new (abba.c:70)");
    }

    #[test]
    fn a_call_timed_in_ticks_is_said_as_its_bounds() {
        let tick = Some(4_000_000);
        assert_eq!(call_duration(0, tick), "under 4.0 ms");
        assert_eq!(call_duration(4_000_000, tick), "under 8.0 ms");
        assert_eq!(call_duration(8_000_000, tick), "4-12 ms");
        // A tickless kernel's coarse clock moves between ticks too.
        assert_eq!(call_duration(11_500_000, tick), "7-16 ms");
        assert_eq!(call_duration(36_000_000, tick), "32-40 ms");
        // Ten ticks and more: within a tenth, said as measured.
        assert_eq!(call_duration(40_000_000, tick), "40 ms");
        assert_eq!(call_duration(1_826_000_000, tick), "1826 ms");
        // A finer tick.
        assert_eq!(call_duration(150_000, Some(100_000)), "50.0 µs to 250.0 µs");
        // An exact clock, or a trace that does not say.
        assert_eq!(call_duration(60_640, Some(1)), "60.6 µs");
        assert_eq!(call_duration(0, None), "0 ns");
    }

    #[test]
    fn a_hang_title_names_the_runtime_lock_of_the_thread_it_names() {
        let t = format!("2 threads were blocked when the command was ended: T5 \"main\" is blocked in {UNREAD_FUTEX}");
        assert_eq!(
            title_with_runtime_wait(&t, 5, UNREAD_FUTEX, "Rust std::sync::Mutex"),
            "2 threads were blocked when the command was ended: T5 \"main\" is blocked in a futex wait on a Rust std::sync::Mutex (which records no holder)"
        );
        assert_eq!(
            title_with_runtime_wait(&t, 6, UNREAD_FUTEX, "Rust std::sync::Mutex"),
            t
        );
        let joined = format!("1 thread was blocked: T1 \"a\" waits in pthread_join for T2 \"b\", which is blocked in {UNREAD_FUTEX}");
        assert!(title_with_runtime_wait(&joined, 2, UNREAD_FUTEX, "parking_lot Mutex")
            .ends_with("T2 \"b\", which is blocked in a futex wait on a parking_lot Mutex (which records no holder)"));
        // Not T1's wait: unchanged.
        assert_eq!(
            title_with_runtime_wait(&joined, 1, UNREAD_FUTEX, "parking_lot Mutex"),
            joined
        );
    }

    #[test]
    fn runtime_locks_are_named_from_the_innermost_frame_that_names_one() {
        let frame = |f: &str| crate::symbolize::Frame {
            function: Some(f.into()),
            ..crate::symbolize::bare(1)
        };
        let stack = |fs: &[&str]| fs.iter().map(|f| frame(f)).collect::<Vec<_>>();
        assert_eq!(
            runtime_lock(&stack(&[
                "syscall",
                "<std::sys::sync::rwlock::futex::RwLock>::write_contended",
                "<std::sys::sync::mutex::futex::Mutex>::lock_contended",
            ])),
            Some("Rust std::sync::RwLock")
        );
        assert_eq!(
            runtime_lock(&stack(&[
                "syscall",
                "parking_lot::raw_mutex::RawMutex::lock_slow"
            ])),
            Some("parking_lot Mutex")
        );
        assert_eq!(
            runtime_lock(&stack(&[
                "__futex_abstimed_wait_common",
                "pthread_cond_wait",
                "main"
            ])),
            None
        );
    }

    #[test]
    fn stable_text_has_no_run_specific_numbers() {
        assert_eq!(
            stable("rwlock 0x55d0 held across sendto() on netlink protocol 2 port 29976 (send)"),
            "rwlock held across sendto() on netlink protocol 2 port N (send)"
        );
        assert_eq!(
            stable("Thread T1234 \"a\" (pid 77) waits (0x7f00)."),
            "Thread T \"a\" (pid N) waits."
        );
        assert_eq!(
            stable("pipe inode 4242, 3 threads"),
            "pipe inode N, 3 threads"
        );
    }
}
