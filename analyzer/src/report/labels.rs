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

/// `rwlock alarm_lock (write)`, `mutex 0x5555` or `netlink protocol 2 port
/// 7 (send)`.
pub fn node_label(n: &NodeInfo) -> String {
    match n {
        NodeInfo::Lock { kind, mode, .. } => {
            let what = lock_what(n).unwrap_or_default();
            // A mode says something only of a lock that has two.
            let mode = mode
                .as_ref()
                .filter(|_| kind == "rwlock" || kind == "file lock");
            match mode {
                Some(m) => format!("{kind} {what} ({m})"),
                None => format!("{kind} {what}"),
            }
        }
        NodeInfo::Channel {
            direction,
            description,
            ..
        } => format!("{description} ({direction})"),
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
            ..
        } => Some(match (file.as_ref().or(name.as_ref()), origin) {
            (Some(name), _) => name.clone(),
            (None, Some(o)) => {
                let how = if o.how == ORIGIN_INIT {
                    "initialised"
                } else {
                    "first held"
                };
                format!("{address} {how} in {}", frame_brief(&o.at))
            }
            (None, None) => address.clone(),
        }),
        NodeInfo::Channel { .. } => None,
    }
}

/// `account_new (abba.c:70)`: a function and its file's name and line.
pub fn frame_brief(f: &Frame) -> String {
    let function = f.function.clone().unwrap_or_else(|| f.pc.clone());
    match (&f.file, f.line) {
        (Some(file), Some(line)) => {
            let base = file.rsplit('/').next().unwrap_or(file);
            format!("{function} ({base}:{line})")
        }
        _ => function,
    }
}
