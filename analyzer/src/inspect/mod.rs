//! `holdcheck inspect PID`: the wait-for graph of a process that is hung
//! right now, with no preload: from /proc (threads, system calls, fds,
//! /proc/net/netlink) and the process's memory (glibc lock owner fields at
//! the futex a thread sleeps on). Read-only: it never writes to the process,
//! never stops or traces it.
//!
//! The snapshot it builds is the one the shim's watchdog builds from
//! published state, and the same analysis (`holdcheck_waitfor`)
//! finds the deadlocks and stalls.

mod glibc;
mod hung;
mod memory;
mod procfs;
mod snapshot;
mod stacks;
mod timeouts;
mod traces;
mod users;
mod wait;

pub use hung::GroupWatch;
pub use traces::{snapshot_group, SNAPSHOT_PREFIX};

use crate::findings;
use crate::report::Report;
use anyhow::Result;
use snapshot::observe;
use std::time::Duration;
use traces::{merge_shim_traces, shim_trace};

pub struct Options {
    /// The processes, analysed as one: a wait can pass from one to another
    /// through a kernel queue.
    pub pids: Vec<u32>,
    /// Samples of every thread, `interval` apart: a thread whose context
    /// switches and system call did not change has made no progress.
    pub samples: u32,
    pub interval: Duration,
    /// Age at which a wait chain is a stall and a blocked call is reported.
    pub stall_ms: u64,
    /// Take the user-space stacks of the threads that made no progress.
    pub stacks: bool,
    /// At the end of a run (`run` ending the command, said how: "at the
    /// timeout"): every blocked thread no finding explains goes into one
    /// `hang` finding, instead of the blocked calls shown one by one.
    pub ending: Option<String>,
}

/// Inspects one or more processes (one snapshot, one wait-for graph across
/// them) and reports.
pub fn inspect(o: &Options) -> Result<Report> {
    let (model, info) = observe(o)?;
    let traces: Vec<std::path::PathBuf> = info.pids.iter().filter_map(|&p| shim_trace(p)).collect();
    let mut model = if traces.is_empty() {
        model
    } else {
        merge_shim_traces(model, &traces)
    };
    let mut report = findings::analyse(&mut model);
    // From outside, a lock is seen only through a thread that waits for it.
    for f in report.findings.iter_mut() {
        for t in f.thread_states.iter_mut() {
            t.holds_unseen = true;
        }
    }
    // A finding without stacks says how to get them.
    if !o.stacks
        && traces.is_empty()
        && report
            .findings
            .iter()
            .any(|f| f.stacks.iter().all(|s| s.frames.is_empty()))
    {
        report.warnings.push(
            "no stacks were taken: `holdcheck inspect --stacks` takes the user-space stack of each blocked thread"
                .to_string(),
        );
    }
    let mut info = info;
    // The overview names the locks as the findings do (by their variable).
    for task in info.tasks.iter_mut() {
        let Some(b) = task.blocked_in.as_mut() else {
            continue;
        };
        for ((pid, addr), name) in &model.lock_names {
            if *pid == task.pid {
                let address = format!("{addr:#x}");
                if b.contains(&address) {
                    *b = b.replace(&address, name);
                }
            }
        }
    }
    report.inspect = Some(info);
    Ok(report)
}
