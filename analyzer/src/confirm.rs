//! `holdcheck confirm`: makes a predicted deadlock happen, on demand.
//!
//! For each potential deadlock chosen, the command is run again under the
//! shim with a plan (`holdcheck_format::steer`) that steers its threads
//! toward the cycle: each edge's site is where a thread is parked (a lock
//! edge; a queue's drainer before it takes the lock) or marked while it
//! blocks in its call (a lock held across a send into the queue). Once all
//! are there, the parked threads go on together. A try whose traces then
//! hold a live deadlock through the same locks *confirms* the prediction;
//! after N tries without one it is *not reproduced*, with what each edge's
//! site saw (reached, parked, gave up).

use crate::report::{
    ConfirmInfo, ConfirmStep, Confirmation, Finding, KeptApart, NodeInfo, Report, ThreadRef,
    DEADLOCK, LOCK_ORDER_INVERSION, POTENTIAL_DEADLOCK,
};
use crate::run::{self, Ending, RunOptions};
use crate::symbolize::Frame;
use anyhow::{bail, Context, Result};
use holdcheck_format::steer::{self, EdgeKind, Place, Plan, PlanEdge, MAX_EDGES, STATE_BYTES};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub struct Options {
    pub command: Vec<OsString>,
    pub tries: u32,
    /// Each try ends at the latest after this.
    pub timeout: Duration,
    /// How long a thread waits at its site for the others, at most.
    pub park_ms: u64,
    /// Where the tries' traces go (a new directory by default).
    pub out: Option<PathBuf>,
}

/// The predictions in the input a confirm can steer toward (after the
/// caller's suppressions and baseline).
pub fn predictions(input: &Path) -> Result<Report> {
    if input.is_dir() {
        return crate::analyse_dirs(&[input.to_path_buf()]);
    }
    let text = std::fs::read_to_string(input)
        .with_context(|| format!("cannot read {}", input.display()))?;
    serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a holdcheck JSON report (`holdcheck run --format json -o FILE`)",
            input.display()
        )
    })
}

/// The findings of `report` to confirm: potential deadlocks and lock-order
/// inversions, all or the one `which` names.
pub fn targets(report: &Report, which: Option<&str>) -> Result<Vec<Finding>> {
    let steerable: Vec<&Finding> = report
        .findings
        .iter()
        .filter(|f| f.kind == POTENTIAL_DEADLOCK || f.kind == LOCK_ORDER_INVERSION)
        .collect();
    let Some(which) = which else {
        return Ok(steerable.into_iter().cloned().collect());
    };
    if let Ok(n) = which.parse::<usize>() {
        return match steerable.get(n.wrapping_sub(1)) {
            Some(f) => Ok(vec![(*f).clone()]),
            None => bail!(
                "there is no potential deadlock number {n}: the report has {} (numbered from 1)",
                steerable.len()
            ),
        };
    }
    let found: Vec<Finding> = steerable
        .into_iter()
        .filter(|f| f.signature.starts_with(which))
        .cloned()
        .collect();
    match found.len() {
        0 => bail!("no potential deadlock of the report has the signature {which}"),
        1 => Ok(found),
        n => bail!("{n} potential deadlocks have signatures starting {which}: give more of it"),
    }
}

/// The plan's edges for a finding: each edge's site as module + offset.
pub fn plan_edges(f: &Finding) -> Result<Vec<PlanEdge>> {
    if f.edges.len() > MAX_EDGES {
        bail!(
            "its cycle has {} edges; confirm steers at most {MAX_EDGES}",
            f.edges.len()
        );
    }
    f.edges
        .iter()
        .map(|e| {
            let stack = f
                .stacks
                .get(e.stack)
                .map(|s| s.frames.as_slice())
                .unwrap_or_default();
            // Inlined frames share the next frame's address.
            let frames: Vec<&Frame> = stack.iter().filter(|fr| !fr.inlined).collect();
            let (kind, held, frames) = match e.relation.as_str() {
                "lock-order" => (EdgeKind::Lock, e.held_at.as_ref(), frames),
                "held-across-call" | "queue-wait" => (EdgeKind::Call, e.held_at.as_ref(), frames),
                "drain" | "produce" => (
                    EdgeKind::Park,
                    None,
                    e.acquired_at.iter().collect::<Vec<_>>(),
                ),
                r => bail!("an edge of relation {r} cannot be steered"),
            };
            let frames = frames
                .iter()
                .take(2)
                .map(|fr| place(fr))
                .collect::<Result<Vec<_>>>()?;
            if frames.is_empty() {
                bail!("an edge of thread {} has no site to steer at", e.thread.tid);
            }
            Ok(PlanEdge {
                kind,
                held: held.map(place).transpose()?,
                frames,
            })
        })
        .collect()
}

fn place(f: &Frame) -> Result<Place> {
    let (Some(module), Some(offset)) = (&f.module, &f.offset) else {
        bail!("the frame at {} has no module and offset", f.pc);
    };
    Ok(Place {
        module: module.clone(),
        offset: u64::from_str_radix(offset.trim_start_matches("0x"), 16)
            .with_context(|| format!("bad offset {offset}"))?,
    })
}

/// Steers toward each target in turn; returns the report: for each, the
/// live deadlock that confirmed it or the prediction, with what was seen.
pub fn confirm(opts: &Options, targets: Vec<Finding>) -> Result<Report> {
    if opts.command.is_empty() {
        bail!("no command given: holdcheck confirm REPORT [FINDING] -- COMMAND [ARGS...]");
    }
    let base = run::trace_dir(opts.out.as_deref())?;
    let mut findings = Vec::new();
    let mut processes = Vec::new();
    let mut warnings = Vec::new();
    for (k, target) in targets.into_iter().enumerate() {
        let dir = base.join(format!("finding-{}", k + 1));
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        // A cycle that cannot be steered is kept, unconfirmed, and says why.
        let edges = match plan_edges(&target) {
            Ok(e) => e,
            Err(e) => {
                warnings.push(format!(
                    "finding {} ({}): not steered: {e:#}",
                    k + 1,
                    target.signature
                ));
                let mut kept = target;
                kept.confirmation = Some(unsteered(&kept));
                findings.push(kept);
                continue;
            }
        };
        let (finding, procs, missing) = confirm_one(opts, &target, edges, &dir)?;
        for m in missing {
            warnings.push(format!(
                "finding {}: the command never loaded {m}, where the prediction's sites are: \
                 confirm runs the program that made the prediction (a rebuilt one needs a new one)",
                k + 1
            ));
        }
        findings.push(finding);
        processes.extend(procs);
    }
    let mut report = Report::new(processes, findings);
    report.warnings = warnings;
    report.confirm = Some(ConfirmInfo {
        command: opts
            .command
            .iter()
            .map(|c| c.to_string_lossy().into_owned())
            .collect(),
        tries: opts.tries,
        trace_dir: base.display().to_string(),
    });
    Ok(report)
}

/// Up to `tries` steered runs toward one target.
fn confirm_one(
    opts: &Options,
    target: &Finding,
    edges: Vec<PlanEdge>,
    dir: &Path,
) -> Result<(Finding, Vec<crate::report::ProcessInfo>, Vec<String>)> {
    let mut steps = steps_of(target);
    let mut last_procs = Vec::new();
    let mut endings = Vec::new();
    // The plan's modules no process of any try loaded.
    let mut missing: Vec<String> = edges
        .iter()
        .flat_map(|e| e.frames.iter().chain(&e.held))
        .map(|p| p.module.clone())
        .collect();
    missing.sort();
    missing.dedup();
    for t in 1..=opts.tries {
        let state_path = dir.join(format!("try-{t}.state"));
        std::fs::write(&state_path, vec![0u8; STATE_BYTES])
            .with_context(|| format!("cannot write {}", state_path.display()))?;
        let plan = Plan {
            state: state_path.display().to_string(),
            park_ms: opts.park_ms,
            blocked_ms: 100,
            edges: edges.clone(),
        };
        let plan_path = dir.join(format!("try-{t}.plan"));
        std::fs::write(&plan_path, plan.render())
            .with_context(|| format!("cannot write {}", plan_path.display()))?;
        let log = std::fs::File::create(dir.join(format!("try-{t}.log")))?;
        let state = StateFile {
            path: state_path.clone(),
        };
        let released_state = state.clone();
        let run_opts = RunOptions {
            command: opts.command.clone(),
            out: Some(dir.join(format!("try-{t}"))),
            timeout: Some(opts.timeout),
            keep_running: false,
            output: Some(std::sync::Arc::new(log.into())),
            env: vec![("HOLDCHECK_CONFIRM".into(), plan_path.into_os_string())],
            released: Some(Box::new(move || released_state.released())),
        };
        let outcome = run::run(&run_opts)?;
        if outcome.ending == Ending::Interrupted {
            bail!("interrupted");
        }
        let seen = state.slots();
        let released = state.released();
        endings.push(match outcome.ending.info() {
            (what, Some(code)) => format!("{what} {code}"),
            (what, None) => what.to_string(),
        });
        let traces = crate::trace::read_dirs(std::slice::from_ref(&outcome.dir))
            .with_context(|| format!("the traces of try {t} in {}", outcome.dir.display()))?;
        let mut model = crate::model::Model::build(&traces);
        let report = crate::findings::analyse(&mut model);
        missing.retain(|m| {
            !model
                .processes
                .values()
                .any(|p| p.modules.iter().any(|pm| &pm.path == m))
        });
        for (step, s) in steps.iter_mut().zip(&seen) {
            step.reached += s.reached;
            step.parked += s.parked;
            step.gave_up += s.timeouts;
            if let Some(who) = s.last {
                step.thread = Some(thread_ref(&report, who));
            }
            step.waited_ms = (released && s.waited_ns > 0).then_some(s.waited_ns / 1_000_000);
            if let Some((who, lock)) = s.blocker {
                let pid = (who >> 32) as u32;
                step.kept_apart_by = Some(KeptApart {
                    thread: thread_ref(&report, who),
                    lock: format!("{lock:#x}"),
                    name: model.lock_names.get(&(pid, lock)).cloned(),
                });
            }
        }
        let live = report
            .findings
            .iter()
            .find(|f| f.kind == DEADLOCK && same_locks(f, target));
        if let Some(live) = live {
            let mut found = live.clone();
            found.confirmation = Some(Confirmation {
                verdict: "confirmed".into(),
                of: target.signature.clone(),
                of_title: target.title.clone(),
                tries: t,
                reproduced_in: Some(t),
                released,
                endings,
                steps,
                trace_dir: outcome.dir.display().to_string(),
            });
            return Ok((found, report.processes, missing));
        }
        last_procs = report.processes;
    }
    let mut kept = target.clone();
    kept.confirmation = Some(Confirmation {
        verdict: "not-reproduced".into(),
        of: target.signature.clone(),
        of_title: target.title.clone(),
        tries: opts.tries,
        reproduced_in: None,
        released: false,
        endings,
        steps,
        trace_dir: dir.display().to_string(),
    });
    Ok((kept, last_procs, missing))
}

/// The confirmation of a prediction no try was made for.
fn unsteered(target: &Finding) -> Confirmation {
    Confirmation {
        verdict: "not-steered".into(),
        of: target.signature.clone(),
        of_title: target.title.clone(),
        tries: 0,
        reproduced_in: None,
        released: false,
        endings: Vec::new(),
        steps: Vec::new(),
        trace_dir: String::new(),
    }
}

/// One step per edge of the target, its counts empty.
fn steps_of(target: &Finding) -> Vec<ConfirmStep> {
    target
        .edges
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let site = target
                .stacks
                .get(e.stack)
                .and_then(|s| s.frames.iter().find(|f| !f.wrapper))
                .or(e.acquired_at.as_ref())
                .cloned();
            ConfirmStep {
                edge: i,
                action: match e.relation.as_str() {
                    "held-across-call" | "queue-wait" => "block",
                    _ => "park",
                }
                .into(),
                site: match e.relation.as_str() {
                    "drain" | "produce" => e.acquired_at.clone(),
                    _ => site,
                },
                held_at: e.held_at.clone(),
                thread: None,
                reached: 0,
                parked: 0,
                gave_up: 0,
                waited_ms: None,
                kept_apart_by: None,
            }
        })
        .collect()
}

/// The thread `pid << 32 | tid` with its name from the try's report.
fn thread_ref(report: &Report, who: u64) -> ThreadRef {
    let (pid, tid) = ((who >> 32) as u32, who as u32);
    let name = report
        .processes
        .iter()
        .filter(|p| p.pid == pid)
        .flat_map(|p| &p.threads)
        .find(|t| t.tid == tid)
        .map(|t| t.name.clone())
        .unwrap_or_default();
    ThreadRef { pid, tid, name }
}

/// Whether a live deadlock goes through the locks of the prediction (by
/// variable, by where a heap lock was made, by kind for the rest).
pub fn same_locks(live: &Finding, target: &Finding) -> bool {
    let key = |n: &NodeInfo| match n {
        NodeInfo::Lock {
            kind, name, origin, ..
        } => Some(match (name, origin) {
            (Some(n), _) => format!("{kind} {n}"),
            (None, Some(o)) => format!(
                "{kind} {}:{}",
                o.at.function.as_deref().unwrap_or("?"),
                o.at.line.unwrap_or(0)
            ),
            _ => kind.clone(),
        }),
        NodeInfo::Channel { .. } => None,
    };
    let wanted: Vec<String> = target.nodes.iter().filter_map(key).collect();
    let got: Vec<String> = live.nodes.iter().filter_map(key).collect();
    !wanted.is_empty() && wanted.iter().all(|w| got.contains(w))
}

/// The state page of a try, as the shims left it.
#[derive(Clone)]
struct StateFile {
    path: PathBuf,
}

/// What one edge's slot saw.
struct SlotSeen {
    reached: u32,
    parked: u32,
    timeouts: u32,
    last: Option<u64>,
    waited_ns: u64,
    /// The thread that waited for a lock of the parked one, and the lock.
    blocker: Option<(u64, u64)>,
}

impl StateFile {
    fn bytes(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap_or_default()
    }

    fn released(&self) -> bool {
        let o = std::mem::offset_of!(steer::State, go);
        self.bytes()
            .get(o..o + 4)
            .is_some_and(|s| s != [0, 0, 0, 0])
    }

    /// The slots, read with the layout of `steer::State` (a file written
    /// through shared mappings: its bytes are the page).
    fn slots(&self) -> Vec<SlotSeen> {
        use std::mem::offset_of;
        let b = self.bytes();
        let u32_at = |o: usize| {
            b.get(o..o + 4)
                .map_or(0, |s| u32::from_ne_bytes(s.try_into().unwrap_or_default()))
        };
        let u64_at = |o: usize| {
            b.get(o..o + 8)
                .map_or(0, |s| u64::from_ne_bytes(s.try_into().unwrap_or_default()))
        };
        let size = std::mem::size_of::<steer::Slot>();
        (0..MAX_EDGES)
            .map(|i| {
                let o = offset_of!(steer::State, slots) + i * size;
                let last = u64_at(o + offset_of!(steer::Slot, last));
                let blocker = u64_at(o + offset_of!(steer::Slot, blocker));
                SlotSeen {
                    reached: u32_at(o + offset_of!(steer::Slot, reached)),
                    parked: u32_at(o + offset_of!(steer::Slot, parked)),
                    timeouts: u32_at(o + offset_of!(steer::Slot, timeouts)),
                    last: (last != 0).then_some(last),
                    waited_ns: u64_at(o + offset_of!(steer::Slot, waited_ns)),
                    blocker: (blocker != 0)
                        .then(|| (blocker, u64_at(o + offset_of!(steer::Slot, blocker_lock)))),
                }
            })
            .collect()
    }
}
