//! The shim's traces of an inspected process, merged into what was seen
//! from outside, and the group snapshot `holdcheck run` takes of a hung
//! command before it kills it.

use super::procfs;
use super::procfs::via;
use super::snapshot::observe;
use super::Options;
use crate::model::Model;
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::time::Duration;

/// Prefix of the files `holdcheck run` leaves the group snapshot in, one
/// per process: `holdcheck.snapshot.<pid>.trace`.
pub const SNAPSHOT_PREFIX: &str = "holdcheck.snapshot.";

/// What every process of a group waits for right now, seen from outside
/// as one wait-for graph, written into the run's trace directory before the
/// group is killed: the waits that cross processes (a client blocked
/// sending to a deadlocked daemon) that no single process's watchdog sees.
/// Only deadlocks and stalls are kept (blocked calls are the watchdogs'),
/// with the stacks of the threads in them. Returns how many were kept.
pub fn snapshot_group(pgid: u32, dir: &std::path::Path, ending: &str) -> Result<usize> {
    use holdcheck_format::Record;
    let pids = procfs::group_members(pgid);
    anyhow::ensure!(!pids.is_empty(), "no process left in group {pgid}");
    let (model, _) = observe(&Options {
        pids,
        samples: 2,
        interval: Duration::from_millis(100),
        stall_ms: 0,
        stacks: true,
        ending: Some(ending.to_string()),
    })?;
    let mut files: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for p in model.processes.values() {
        let mut out = Record::Header {
            version: holdcheck_format::TRACE_VERSION,
            pid: p.pid,
            ppid: p.ppid,
            exe: p.exe.clone(),
            cmdline: p.cmdline.clone(),
            call_clock_res_ns: p.call_clock_res_ns,
        }
        .to_line();
        // The locks seen, with their kinds: the report names them by
        // their variables from the modules, as inspect does.
        for (lock, meta) in &p.locks {
            out.extend(
                Record::Lock {
                    lock: *lock,
                    kind: meta.kind,
                    writer_preferring: meta.writer_preferring,
                    recursive: meta.recursive,
                    file: model.file_paths.get(lock).cloned(),
                    init: meta.init,
                }
                .to_line(),
            );
        }
        if !p.stacks.is_empty() || !p.locks.is_empty() {
            for m in &p.modules {
                out.extend(
                    Record::Module {
                        path: m.path.clone(),
                        base: m.base,
                        segments: m.segments.clone(),
                    }
                    .to_line(),
                );
            }
            for (id, frames) in &p.stacks {
                out.extend(
                    Record::Stack {
                        id: *id,
                        frames: frames.clone(),
                    }
                    .to_line(),
                );
            }
        }
        files.insert(p.pid, out);
    }
    let mut kept = 0;
    for (pid, ob) in model.observed {
        if ["deadlock", "stall", "hang"].contains(&ob.kind.as_str()) {
            if let Some(out) = files.get_mut(&pid) {
                out.extend(Record::Observed(ob).to_line());
                kept += 1;
            }
        }
    }
    for (pid, out) in files {
        let path = dir.join(format!(
            "{SNAPSHOT_PREFIX}{pid}{}",
            holdcheck_format::TRACE_SUFFIX
        ));
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .and_then(|mut f| f.write_all(&out))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(kept)
}

/// The trace file of a process that runs with the shim: in the trace
/// directory of its own environment, the newest for its pid (an exec starts
/// a new one).
pub(super) fn shim_trace(pid: u32) -> Option<std::path::PathBuf> {
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", via(pid))).ok()?;
    if !maps.contains("libholdcheck") {
        return None;
    }
    let environ = std::fs::read(format!("/proc/{}/environ", via(pid))).ok()?;
    let dir = environ
        .split(|&b| b == 0)
        .find_map(|v| v.strip_prefix(b"HOLDCHECK_DIR="))
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .filter(|d| !d.is_empty())
        .or_else(|| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let uid = procfs::key_value(&status, "Uid:")?;
            Some(format!("/tmp/holdcheck-{uid}"))
        })?;
    let prefix = format!("{}{pid}.", holdcheck_format::TRACE_PREFIX);
    crate::trace::trace_files(std::path::Path::new(&dir))
        .ok()?
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .max_by_key(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| {
                    n.strip_prefix(&prefix)?
                        .split('.')
                        .next()?
                        .parse::<u32>()
                        .ok()
                })
                .unwrap_or(0)
        })
}

/// The shim's traces of the processes, with what inspect saw added: their
/// facts (predicted cycles, hazards), their watchdogs' observations, exact
/// lock kinds, acquisition sites, stacks and module tables.
pub(super) fn merge_shim_traces(seen: Model, traces: &[std::path::PathBuf]) -> Model {
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    for t in traces {
        match crate::trace::read_file(t) {
            Ok(f) => {
                warnings.push(format!(
                    "the process runs with the shim: its trace {} is merged",
                    t.display()
                ));
                files.push(f);
            }
            Err(e) => warnings.push(format!(
                "the process runs with the shim, but its trace is unreadable: {e:#}"
            )),
        }
    }
    let mut merged = Model::build(&files);
    merged.warnings.extend(seen.warnings);
    merged.warnings.extend(warnings);
    for (pid, inspected) in seen.processes {
        let p = merged.processes.entry(pid).or_default();
        if p.pid == 0 {
            p.pid = pid;
            p.ppid = inspected.ppid;
            p.exe = inspected.exe.clone();
            p.cmdline = inspected.cmdline.clone();
        }
        p.threads.extend(inspected.threads);
        for (k, v) in inspected.locks {
            p.locks.entry(k).or_insert(v);
        }
        p.stacks.extend(inspected.stacks);
        if p.modules.is_empty() {
            p.modules = inspected.modules;
        }
    }
    merged.observed.extend(seen.observed);
    merged.fix_observed_generations();
    merged
}
