//! Turning the model's valid cycles and held-across-call facts into report
//! findings, symbolised.

use crate::cycles::{self, Cycle, Grade, Serialization};
use crate::model::{Evidence, HeldCall, Model, Node, Relation};
use crate::order::Sync;
use crate::report::labels::{self, node_label};
use crate::report::*;
use crate::symbolize::{program_frame, site_frame, site_frames, Frame, Symbols};
use holdcheck_format::{Direction, LockRef, Mode};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::fmt::Write;

/// Names the model's locks, analyses it and builds the report.
pub fn analyse(model: &mut Model) -> Report {
    let mut syms = Symbols::default();
    crate::symbolize::name_locks(model, &mut syms);
    let model: &Model = model;
    let (cycles, bounds) = cycles::find(model);
    let mut warnings = model.warnings.clone();
    if bounds.truncated {
        warnings.push(format!(
            "the cycle search stopped after {} cycles; some potential deadlocks may be missing",
            cycles::MAX_CYCLES
        ));
    }
    for n in &bounds.long_only {
        warnings.push(format!(
            "{n} locks and queues wait on each other, in no cycle of at most {} nodes; longer cycles are not searched",
            cycles::MAX_CYCLE_LEN
        ));
    }
    let truncated = bounds.truncated || !bounds.long_only.is_empty();
    let covered_classes = crate::classes::covered(model, &cycles);
    let mut findings = Vec::new();
    // Edges of reported cycles: a lock held across a call on such an edge is
    // part of that deadlock (another call site of it), not a hazard of its own.
    let mut cycle_edges: HashSet<(usize, usize)> = HashSet::new();
    // The same observation made twice (the watchdog, then inspect) is one
    // finding: the first, which has the shim's exact sites.
    let mut observed: Vec<Finding> = Vec::new();
    for (pid, o) in crate::observed::unexplained_hangs(&model.observed) {
        let f = crate::observed::finding(model, &mut syms, pid, o);
        match observed
            .iter_mut()
            .find(|g| g.kind == f.kind && same_nodes(&g.nodes, &f.nodes))
        {
            Some(g) => add_waiters(g, f),
            None => observed.push(f),
        }
    }
    fold_stalls_into_deadlocks(&mut observed);
    for group in variant_groups(model, cycles) {
        let c = &group[0];
        for v in &group {
            let n = v.nodes.len();
            cycle_edges.extend((0..n).map(|i| (v.nodes[i], v.nodes[(i + 1) % n])));
        }
        let mut f = cycle_finding(model, &mut syms, c);
        f.variants = group[1..]
            .iter()
            .map(|v| cycle_text(model, &v.nodes))
            .collect();
        // A cycle the watchdog saw happen is reported as the deadlock.
        let seen_live = observed
            .iter()
            .any(|o| o.kind == DEADLOCK && same_nodes(&o.nodes, &f.nodes));
        if !seen_live {
            findings.push(f);
        }
    }
    // Locks of one class nested both ways, on pairs that never met.
    let mut one_function = |pid: u32, a: u64, b: u64| {
        let function = |syms: &mut Symbols, pc| {
            syms.frames(model, pid, pc)
                .first()
                .and_then(|f| f.function.clone())
        };
        let fa = function(&mut syms, a);
        fa.is_some() && fa == function(&mut syms, b)
    };
    let inversions =
        crate::classes::same_class_inversions(model, &covered_classes, &mut one_function);
    for ci in inversions {
        findings.push(class_finding(model, &mut syms, &ci));
    }
    // The edges of observed findings, too, explain their held-across-calls.
    for (pid, o) in &model.observed {
        let idx: Vec<Option<usize>> = o
            .nodes
            .iter()
            .map(|n| model.node_index(&crate::observed::node(n, *pid)))
            .collect();
        for e in &o.edges {
            if let (Some(a), Some(b)) = (idx[e.from], idx[e.to]) {
                cycle_edges.insert((a, b));
            }
        }
    }
    observed.sort_by_key(|f| weight(&f.kind));
    let live_deadlocks: Vec<Finding> = observed
        .iter()
        .filter(|f| f.kind == DEADLOCK)
        .cloned()
        .collect();
    let live_others: Vec<Finding> = observed
        .into_iter()
        .filter(|f| f.kind != DEADLOCK)
        .collect();
    findings.splice(0..0, live_deadlocks);
    // Stalls after the predicted deadlocks; stalled calls after hazards.
    let (stalls, stalled_calls): (Vec<Finding>, Vec<Finding>) = live_others
        .into_iter()
        .partition(|f| f.kind == STALL || f.kind == HANG);
    findings.extend(stalls);
    findings.extend(misuse(model, &mut syms));
    findings.extend(hazards(model, &mut syms, &cycle_edges));
    findings.extend(stalled_calls);

    let mut partial = truncated;
    for p in model.processes.values() {
        for r in &p.partial {
            partial = true;
            warnings.push(format!("pid {}: analysis partial: {r}", p.pid));
        }
    }
    for f in &mut findings {
        f.processes = processes_of(model, &f.threads);
        f.signature = crate::report::filter::signature(f);
    }
    let mut findings = merge_repeats(findings);
    for f in &mut findings {
        add_creations(model, &mut syms, f);
    }
    let processes = model
        .processes
        .values()
        .map(|p| ProcessInfo {
            pid: p.pid,
            ppid: p.ppid,
            exe: p.exe.clone(),
            cmdline: p.cmdline.clone(),
            trace: p.file.display().to_string(),
            threads: {
                let mut t: Vec<ThreadRef> = p
                    .threads
                    .iter()
                    .map(|(tid, name)| ThreadRef {
                        pid: p.pid,
                        tid: *tid,
                        name: name.clone(),
                    })
                    .collect();
                t.sort();
                t
            },
        })
        .collect();
    let mut report = Report::new(processes, findings);
    report.warnings = warnings;
    report.partial = partial;
    report.untraced = model.untraced.clone();
    report
}

/// Cycles that are one bug seen through different calls: the same locks
/// and the same threads (a client that holds a lock across both the send of
/// its request and the receive of the reply closes the cycle both ways).
/// Each group is led by the likeliest variant: the fewest waits for room in
/// a queue (a queue is far more often empty than full), then the shortest.
fn variant_groups(model: &Model, cycles: Vec<Cycle>) -> Vec<Vec<Cycle>> {
    type Key = (Vec<usize>, Vec<(u32, u32)>);
    let key = |c: &Cycle| -> Key {
        let mut locks: Vec<usize> = c
            .nodes
            .iter()
            .copied()
            .filter(|&i| model.nodes[i].is_lock())
            .collect();
        locks.sort_unstable();
        let mut threads: Vec<(u32, u32)> = c.witness.iter().map(|e| (e.pid, e.tid)).collect();
        threads.sort_unstable();
        threads.dedup();
        (locks, threads)
    };
    let rank = |c: &Cycle| {
        let sends = c
            .nodes
            .iter()
            .filter(|&&i| {
                matches!(
                    model.nodes[i],
                    Node::Queue {
                        dir: Direction::Send,
                        ..
                    }
                )
            })
            .count();
        (sends, c.nodes.len(), c.nodes.clone())
    };
    let mut groups: BTreeMap<Key, Vec<Cycle>> = BTreeMap::new();
    for c in cycles {
        groups.entry(key(&c)).or_default().push(c);
    }
    let mut out: Vec<Vec<Cycle>> = groups
        .into_values()
        .map(|mut g| {
            g.sort_by_key(|c| rank(c));
            g
        })
        .collect();
    out.sort_by_key(|g| (g[0].nodes.len(), g[0].nodes.clone()));
    out
}

/// `mutex 0x… (write) -> unix socket … (recv) -> mutex 0x… (write)`.
fn cycle_text(model: &Model, nodes: &[usize]) -> String {
    let mut labels: Vec<String> = nodes
        .iter()
        .map(|&i| node_label(&node_info(model, &model.nodes[i], None)))
        .collect();
    if let Some(first) = labels.first().cloned() {
        labels.push(first);
    }
    labels.join(" -> ")
}

/// One finding per signature: the same code doing the same thing in other
/// threads or processes (each worker child of a supervisor) is the same
/// bug. The first is kept, with the count and every process and thread.
fn merge_repeats(findings: Vec<Finding>) -> Vec<Finding> {
    let mut out: Vec<Finding> = Vec::new();
    for f in findings {
        // Without a stack the signature only says what kind of nodes it
        // has: too little to call two findings one.
        let sited = f.stacks.iter().any(|s| !s.frames.is_empty());
        match out.iter_mut().find(|g| sited && g.signature == f.signature) {
            Some(g) => {
                g.occurrences += f.occurrences;
                for t in f.threads {
                    if !g.threads.contains(&t) {
                        g.threads.push(t);
                    }
                }
                for p in f.processes {
                    if !g.processes.contains(&p) {
                        g.processes.push(p);
                    }
                }
                g.threads.sort();
                g.processes.sort_by_key(|p| p.pid);
            }
            None => out.push(f),
        }
    }
    out
}

const MAX_CREATIONS: usize = 32;

/// Where the threads a finding shows (its edges' and its live states')
/// were created, with the stack of each `pthread_create`.
fn add_creations(model: &Model, syms: &mut Symbols, f: &mut Finding) {
    let mut shown: Vec<ThreadRef> = f.edges.iter().map(|e| e.thread.clone()).collect();
    shown.extend(f.thread_states.iter().map(|s| s.thread.clone()));
    let mut seen = HashSet::new();
    shown.retain(|t| seen.insert((t.pid, t.tid)));
    // A thousand readers queued on one lock were made by a few calls.
    shown.truncate(MAX_CREATIONS);
    for t in shown {
        let Some(&(parent, stack)) = model
            .processes
            .get(&t.pid)
            .and_then(|p| p.created.get(&t.tid))
        else {
            continue;
        };
        let stack = stack.map(|id| {
            f.stacks.push(StackInfo {
                pid: t.pid,
                tid: parent,
                what: format!("pthread_create of thread {}", t.tid),
                frames: syms.stack(model, t.pid, id),
            });
            f.stacks.len() - 1
        });
        f.created.push(ThreadCreation {
            by: thread_ref(model, t.pid, parent),
            thread: t,
            stack,
        });
    }
}

/// The processes of a finding's threads, in pid order.
fn processes_of(model: &Model, threads: &[ThreadRef]) -> Vec<ProcessRef> {
    let pids: BTreeSet<u32> = threads.iter().map(|t| t.pid).collect();
    pids.into_iter()
        .map(|pid| {
            let p = model.processes.get(&pid);
            ProcessRef {
                pid,
                exe: p.map(|p| p.exe.clone()).unwrap_or_default(),
                cmdline: p.map(|p| p.cmdline.clone()).unwrap_or_default(),
            }
        })
        .collect()
}

/// A stall whose root holder is stuck in an observed deadlock is part of
/// it: its waiters wait on that deadlock. (Seen from outside, at a run's
/// timeout, a thread in a condition-variable wait is blocked in a futex
/// that names nothing; the watchdog inside knew what it waited for.)
fn fold_stalls_into_deadlocks(observed: &mut Vec<Finding>) {
    let mut i = 0;
    while i < observed.len() {
        let root = match observed[i].thread_states.first() {
            Some(t) if observed[i].kind == STALL => t.thread.clone(),
            _ => {
                i += 1;
                continue;
            }
        };
        match observed
            .iter()
            .position(|g| g.kind == DEADLOCK && g.threads.contains(&root))
        {
            Some(d) => {
                let stall = observed.remove(i);
                add_waiters(&mut observed[if d > i { d - 1 } else { d }], stall);
            }
            None => i += 1,
        }
    }
}

/// Adds to a live finding the threads another view of it saw waiting on it
/// (a snapshot of the whole run sees the other processes stuck behind a
/// deadlock that one process's watchdog saw).
fn add_waiters(g: &mut Finding, f: Finding) {
    let mut added = 0;
    for mut t in f.thread_states {
        // By id: another view may not know a thread's name (one that
        // exited, seen from outside).
        if g.threads
            .iter()
            .any(|x| x.pid == t.thread.pid && x.tid == t.thread.tid)
        {
            continue;
        }
        t.stack = t.stack.map(|i| {
            g.stacks.push(f.stacks[i].clone());
            g.stacks.len() - 1
        });
        g.threads.push(t.thread.clone());
        g.thread_states.push(t);
        added += 1;
    }
    if added > 0 {
        g.threads.sort();
        g.waiters = Some(g.waiters.unwrap_or(0) + added);
        let _ = write!(g.title, "; {added} more wait on them");
    }
}

/// Whether two findings have the same nodes (in any rotation).
fn same_nodes(a: &[NodeInfo], b: &[NodeInfo]) -> bool {
    let key = |n: &NodeInfo| match n {
        NodeInfo::Lock {
            address,
            pid,
            generation,
            ..
        } => format!("lock {pid} {address} {generation}"),
        NodeInfo::Channel {
            direction,
            description,
            ..
        } => format!("chan {description} {direction}"),
    };
    let mut x: Vec<String> = a.iter().map(key).collect();
    let mut y: Vec<String> = b.iter().map(key).collect();
    x.sort();
    y.sort();
    x == y
}

pub(crate) fn thread_ref(model: &Model, pid: u32, tid: u32) -> ThreadRef {
    ThreadRef {
        pid,
        tid,
        name: model
            .processes
            .get(&pid)
            .map(|p| p.thread_name(tid).to_string())
            .unwrap_or_default(),
    }
}

fn lock_kind(model: &Model, pid: u32, lock: LockRef) -> (&'static str, bool) {
    match model.lock_meta(pid, lock) {
        Some(m) => (m.kind.as_str(), m.writer_preferring),
        None => ("lock", false),
    }
}

/// Processes by pid and program name.
fn process_names(
    model: &Model,
    pids: Option<&std::collections::BTreeSet<u32>>,
) -> Vec<ProcessName> {
    pids.into_iter()
        .flatten()
        .map(|&pid| process_name(model, pid))
        .collect()
}

/// A process by pid and program name (`cli`).
pub(crate) fn process_name(model: &Model, pid: u32) -> ProcessName {
    ProcessName {
        pid,
        name: model
            .processes
            .get(&pid)
            .map(|p| program_name(&p.cmdline, &p.exe))
            .unwrap_or_default(),
    }
}

/// A process's program, as `ps` shows it: its first argument's file name
/// (a script's, not its interpreter's). A process that wrote a title over
/// its arguments (Chromium's zygote: one argument, the whole command line
/// with spaces) is named by the title's first word, and one started as
/// `/proc/self/exe` by its executable.
fn program_name(cmdline: &[String], exe: &str) -> String {
    let base = |path: &str| path.rsplit('/').next().unwrap_or(path).to_string();
    let first = match cmdline {
        [title] if title.contains(' ') && title != exe => title.split(' ').next().unwrap_or(title),
        [first, ..] => first.as_str(),
        [] => exe,
    };
    if first.is_empty() || first.starts_with("/proc/") {
        return base(exe);
    }
    base(first)
}

pub(crate) fn node_info(model: &Model, node: &Node, mode: Option<Mode>) -> NodeInfo {
    match node {
        Node::Lock { pid, lock } => {
            let (kind, writer_preferring) = lock_kind(model, *pid, *lock);
            NodeInfo::Lock {
                kind: kind.to_string(),
                address: format!("{:#x}", lock.addr),
                mode: mode.map(|m| m.as_str().to_string()),
                pid: *pid,
                generation: lock.gen,
                writer_preferring,
                file: model.file_paths.get(lock).cloned(),
                name: model.lock_names.get(&(*pid, lock.addr)).cloned(),
                origin: model.lock_origins.get(&(*pid, *lock)).cloned(),
                class: None,
            }
        }
        Node::Queue { channel, dir } => NodeInfo::Channel {
            direction: dir.as_str().to_string(),
            channel: channel.clone(),
            description: channel.describe(),
            senders: process_names(model, model.ends.get(channel).map(|e| &e.0)),
            receiving: process_names(model, model.ends.get(channel).map(|e| &e.1)),
            receivers: model
                .receivers
                .get(channel)
                .into_iter()
                .flatten()
                .map(|&(pid, tid)| thread_ref(model, pid, tid))
                .collect(),
        },
    }
}

/// The stack of a held lock's acquisition: recorded whole, or made of its
/// site and the callers of the site's function when that function is on
/// `later` (the stack of what the thread does while holding it), since
/// it has not returned in between. A site in a lock wrapper (which has
/// returned) is all that is known then; the bool says the stack is whole.
fn held_frames(
    syms: &mut Symbols,
    model: &Model,
    e: &Evidence,
    later: &[Frame],
) -> Option<(Vec<Frame>, bool)> {
    if let Some(id) = e.held_stack {
        return Some((syms.stack(model, e.pid, id), true));
    }
    let mut frames = site_frames(syms, model, e.pid, e.held_site.filter(|&p| p != 0)?);
    let outer = frames.last()?.clone();
    let whole = !outer.tiny && outer.function.is_some();
    if whole {
        let at = later
            .iter()
            .position(|f| !f.inlined && f.function == outer.function && f.module == outer.module);
        match at {
            Some(k) => frames.extend(later[k + 1..].iter().cloned()),
            None => return Some((frames, false)),
        }
    }
    crate::symbolize::mark_wrappers(&mut frames);
    Some((frames, whole))
}

fn evidence_edge(
    model: &Model,
    syms: &mut Symbols,
    e: &Evidence,
    (from, from_node): (usize, &Node),
    (to, to_node): (usize, &Node),
    stacks: &mut Vec<StackInfo>,
) -> EdgeInfo {
    let frames = syms.stack(model, e.pid, e.stack);
    let (relation, call, what) = match &e.relation {
        Relation::LockOrder => {
            let what = match to_node {
                Node::Lock { pid, lock } => {
                    let (kind, _) = lock_kind(model, *pid, *lock);
                    format!("acquires {kind} {:#x}", lock.addr)
                }
                Node::Queue { .. } => "acquires".to_string(),
            };
            ("lock-order", None, what)
        }
        Relation::HeldAcrossCall { fact } => {
            let call = model
                .held_calls
                .get(&(e.pid, *fact))
                .map_or("a blocking call", |h| h.call.as_str());
            let what = match to_node {
                Node::Queue { channel, dir } => {
                    format!("{call}() on {} ({})", channel.describe(), dir.as_str())
                }
                _ => format!("{call}()"),
            };
            ("held-across-call", Some(call.to_string()), what)
        }
        Relation::QueueLock { dir } => {
            let what = match dir {
                Direction::Recv => "receives between acquisitions",
                Direction::Send => "sends between acquisitions",
            };
            (
                if *dir == Direction::Recv {
                    "drain"
                } else {
                    "produce"
                },
                None,
                what.to_string(),
            )
        }
        Relation::QueueWait { dir } => {
            let what = match to_node {
                Node::Queue { channel, dir: d } => format!(
                    "{} it, and in between blocks on {} ({})",
                    if *dir == Direction::Recv {
                        "drains"
                    } else {
                        "feeds"
                    },
                    channel.describe(),
                    d.as_str()
                ),
                _ => String::new(),
            };
            ("queue-wait", None, what)
        }
        Relation::ExitWait => {
            let what = match to_node {
                Node::Queue { channel, dir } => {
                    format!(
                        "blocks on {} ({}) before it exits",
                        channel.describe(),
                        dir.as_str()
                    )
                }
                _ => String::new(),
            };
            ("exit-wait", None, what)
        }
        Relation::ThreadEnd => {
            let what = match to_node {
                Node::Lock { pid, lock } => {
                    let (kind, _) = lock_kind(model, *pid, *lock);
                    format!("acquires {kind} {:#x} before it ends", lock.addr)
                }
                Node::Queue { channel, dir } => format!(
                    "blocks on {} ({}) before it ends",
                    channel.describe(),
                    dir.as_str()
                ),
            };
            ("thread-end", None, what)
        }
    };
    let (count, max_ns) = match &e.relation {
        Relation::HeldAcrossCall { fact, .. } => match model.held_calls.get(&(e.pid, *fact)) {
            Some(h) => (Some(h.count), Some(h.max_ns)),
            None => (None, None),
        },
        _ => (None, None),
    };
    let max_ns_tick = max_ns.and_then(|_| call_tick(model, e.pid));
    let held = held_frames(syms, model, e, &frames);
    stacks.push(StackInfo {
        pid: e.pid,
        tid: e.tid,
        what,
        frames,
    });
    let stack = stacks.len() - 1;
    let held_at = match &held {
        Some((f, _)) => program_frame(f),
        None => site_frame(syms, model, e.pid, e.held_site),
    };
    let held_stack = held.map(|(frames, whole)| {
        let label = node_label(&node_info(model, from_node, e.held_mode));
        stacks.push(StackInfo {
            pid: e.pid,
            tid: e.tid,
            what: if whole {
                format!("{label} acquired")
            } else {
                format!(
                    "{label} acquired in a lock wrapper, whose callers are recorded with HOLDCHECK_OPTIONS=held_stacks=1"
                )
            },
            frames,
        });
        stacks.len() - 1
    });
    EdgeInfo {
        from,
        to,
        relation: relation.to_string(),
        thread: thread_ref(model, e.pid, e.tid),
        call,
        held_mode: e.held_mode.map(|m| m.as_str().to_string()),
        wanted_mode: e.wanted_mode.map(|m| m.as_str().to_string()),
        held_at,
        acquired_at: site_frame(syms, model, e.pid, e.wanted_site),
        count,
        max_ns,
        max_ns_tick,
        stack,
        held_stack,
    }
}

/// The tick of the clock process `pid`'s blocking calls were timed with.
fn call_tick(model: &Model, pid: u32) -> Option<u64> {
    model.processes.get(&pid)?.call_clock_res_ns
}

fn cycle_finding(model: &Model, syms: &mut Symbols, c: &Cycle) -> Finding {
    let n = c.nodes.len();
    let nodes: Vec<NodeInfo> = (0..n)
        .map(|i| node_info(model, &model.nodes[c.nodes[i]], c.witness[i].held_mode))
        .collect();
    let taken: Vec<(usize, usize)> = (0..n).map(|i| (c.nodes[i], c.nodes[(i + 1) % n])).collect();
    predicted_finding(model, syms, c, nodes, &taken)
}

/// A predicted cycle's finding: `nodes` as shown, edge i from node i to
/// the next with its witness, `taken[i]` the model's nodes that edge's
/// thread really held and wanted (a class's locks differ per edge).
fn predicted_finding(
    model: &Model,
    syms: &mut Symbols,
    c: &Cycle,
    nodes: Vec<NodeInfo>,
    taken: &[(usize, usize)],
) -> Finding {
    let n = nodes.len();
    let mut stacks = Vec::new();
    let edges: Vec<EdgeInfo> = (0..n)
        .map(|i| {
            let (held, wanted) = taken[i];
            evidence_edge(
                model,
                syms,
                &c.witness[i],
                (i, &model.nodes[held]),
                ((i + 1) % n, &model.nodes[wanted]),
                &mut stacks,
            )
        })
        .collect();
    let threads: Vec<ThreadRef> = edges
        .iter()
        .map(|e| e.thread.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let serialized = match &c.grade {
        Grade::Concurrent => None,
        Grade::Serialized(s) => Some(serialized_info(model, s)),
    };
    let location = edges
        .iter()
        .find(|e| e.relation == "held-across-call")
        .or(edges.first())
        .and_then(|e| program_frame(&stacks[e.stack].frames));
    let kind = if serialized.is_some() {
        LOCK_ORDER_INVERSION
    } else {
        POTENTIAL_DEADLOCK
    };
    let mut f = Finding::new(
        kind,
        String::new(),
        (nodes, edges),
        threads,
        stacks,
        location,
    );
    f.serialized = serialized;
    f.title = labels::cycle_title(&f);
    f
}

/// A same-class inversion: two nodes, the class's lower- and
/// higher-addressed lock, each edge with the locks its thread really took.
fn class_finding(
    model: &Model,
    syms: &mut Symbols,
    ci: &crate::classes::ClassInversion,
) -> Finding {
    let c = &ci.cycle;
    let label = |l: &LockRef| {
        let pid = c.witness[0].pid;
        model
            .lock_names
            .get(&(pid, l.addr))
            .cloned()
            .unwrap_or_else(|| format!("{:#x}", l.addr))
    };
    let nodes: Vec<NodeInfo> = (0..2)
        .map(|i| {
            let mut n = node_info(model, &model.nodes[c.nodes[i]], c.witness[i].held_mode);
            if let NodeInfo::Lock { name, class, .. } = &mut n {
                if let crate::classes::ClassKey::Array { base, .. } = &ci.class {
                    *name = Some(format!("{base}[*]"));
                }
                let (role, locks) = if i == 0 {
                    ("lower", &ci.lower)
                } else {
                    ("higher", &ci.higher)
                };
                *class = Some(LockClass {
                    role: role.to_string(),
                    instances: locks.iter().map(label).collect(),
                });
            }
            n
        })
        .collect();
    predicted_finding(model, syms, c, nodes, &ci.taken)
}

/// A cycle's serialization, with its threads named.
fn serialized_info(model: &Model, s: &Serialization) -> Serialized {
    let same_thread: Vec<ThreadRef> = s
        .same_thread
        .iter()
        .map(|&(pid, tid)| thread_ref(model, pid, tid))
        .collect();
    let ordered_by: Vec<SyncEvent> = s
        .ordered_by
        .iter()
        .map(|e| {
            let (event, thread, by) = match *e {
                Sync::Start { thread, by } => ("start", thread, by),
                Sync::Join { thread, by } => ("join", thread, by),
            };
            SyncEvent {
                event: event.to_string(),
                thread: thread_ref(model, s.pid, thread),
                by: thread_ref(model, s.pid, by),
            }
        })
        .collect();
    Serialized {
        by: if same_thread.is_empty() {
            START_JOIN
        } else {
            SAME_THREAD
        }
        .to_string(),
        same_thread,
        ordered_by,
    }
}

/// Locks left held for ever: a thread exited (or was cancelled) holding
/// them. One finding per lock and thread, with where it was taken. Then
/// the other misuses, one finding each (repeats merge by signature).
fn misuse(model: &Model, syms: &mut Symbols) -> Vec<Finding> {
    let mut out = Vec::new();
    for (pid, x) in &model.misuses {
        out.push(misuse_finding(model, syms, *pid, x));
    }
    for x in &model.exited_holding {
        let node = node_info(model, &Node::lock(x.pid, x.lock), Some(x.mode));
        let thread = thread_ref(model, x.pid, x.tid);
        let taken = site_frame(syms, model, x.pid, Some(x.site));
        let title = format!(
            "{} exited holding {}{}: every later locker of it waits for ever",
            labels::thread_label(&thread),
            node_label(&node),
            taken
                .as_ref()
                .map(|f| format!(", taken at {}", f.short()))
                .unwrap_or_default()
        );
        let stacks = vec![StackInfo {
            pid: x.pid,
            tid: x.tid,
            what: format!("{} taken", node_label(&node)),
            frames: taken.iter().cloned().collect(),
        }];
        let edges = vec![EdgeInfo {
            from: 0,
            to: 0,
            relation: "exited-holding".to_string(),
            thread: thread.clone(),
            call: None,
            held_mode: Some(x.mode.as_str().to_string()),
            wanted_mode: None,
            held_at: taken.clone(),
            acquired_at: None,
            count: None,
            max_ns: None,
            max_ns_tick: None,
            stack: 0,
            held_stack: None,
        }];
        out.push(Finding::new(
            MISUSE,
            title,
            (vec![node], edges),
            vec![thread],
            stacks,
            taken,
        ));
    }
    out
}

/// One misuse of a lock, with the stack of the call that made it (and,
/// for an ignored relock, of the relock glibc refused).
fn misuse_finding(
    model: &Model,
    syms: &mut Symbols,
    pid: u32,
    x: &holdcheck_format::Misuse,
) -> Finding {
    use holdcheck_format::MisuseKind as K;
    let thread = thread_ref(model, pid, x.tid);
    let who = labels::thread_label(&thread);
    let lock = node_info(model, &Node::lock(pid, x.lock), None);
    let mut nodes = vec![lock.clone()];
    let other = x.other.map(|o| node_info(model, &Node::lock(pid, o), None));
    if let Some(o) = &other {
        nodes.push(o.clone());
    }
    let condvar = x
        .condvar
        .map(|c| format!("condition variable {:#x}", c.addr));
    let owner = |o: Option<u32>| match o {
        Some(t) if t == x.tid => " (its own)".to_string(),
        Some(t) => format!(
            " (held by {})",
            labels::thread_label(&thread_ref(model, pid, t))
        ),
        None => String::new(),
    };
    let taken = site_frame(syms, model, pid, x.site);
    let at = |f: &Option<Frame>| {
        f.as_ref()
            .map(|f| format!(", taken at {}", f.short()))
            .unwrap_or_default()
    };
    let l = node_label(&lock);
    let (title, what) = match x.what {
        K::UnlockNotHeld => (
            format!(
                "{who} unlocked {l}, which it does not hold{}",
                match x.owner {
                    Some(_) => owner(x.owner),
                    None => " (it was not locked)".to_string(),
                }
            ),
            format!("unlocks {l}"),
        ),
        K::RelockIgnored => (
            format!(
                "{who} locked {l} again while holding it; glibc refused (EDEADLK) and the thread unlocked it as if it held it twice, so its first unlock released the lock its caller still counted on"
            ),
            format!("unlocks {l} once more than it locked it"),
        ),
        K::DestroyLocked => (
            format!(
                "{who} destroyed {l} while it was locked{}{}",
                owner(x.owner),
                at(&taken)
            ),
            format!("destroys {l}"),
        ),
        K::UseDestroyed => (
            format!(
                "{who} used {l} after it was destroyed: glibc fails the call (EINVAL) and the caller goes on without the lock"
            ),
            format!("uses {l}"),
        ),
        K::CondWaitUnheld => (
            format!(
                "{who} waited on {} with {l}, which it does not hold{}",
                condvar.as_deref().unwrap_or("a condition variable"),
                owner(x.owner)
            ),
            format!(
                "waits on {} with {l}",
                condvar.as_deref().unwrap_or("a condition variable")
            ),
        ),
        K::CondTwoMutexes => (
            format!(
                "{} is waited on with two mutexes: {} by {}, and {l} by {who} (POSIX leaves this undefined; a signal can wake a thread whose predicate another mutex guards)",
                condvar.as_deref().unwrap_or("a condition variable"),
                other.as_ref().map(node_label).unwrap_or_default(),
                x.other_tid
                    .map(|t| labels::thread_label(&thread_ref(model, pid, t)))
                    .unwrap_or_else(|| "another thread".to_string()),
            ),
            format!(
                "waits on {} with {l}",
                condvar.as_deref().unwrap_or("a condition variable")
            ),
        ),
        K::HeldTooLong => (
            format!(
                "{who} held {l} for {}{} (the threshold is HOLDCHECK_OPTIONS=hold_ms)",
                labels::duration(x.held_ns.unwrap_or(0)),
                at(&taken)
            ),
            format!("releases {l}"),
        ),
    };
    let frames = syms.stack(model, pid, x.stack);
    let location = program_frame(&frames);
    let mut stacks = vec![StackInfo {
        pid,
        tid: x.tid,
        what,
        frames,
    }];
    let edge = |stack: usize| EdgeInfo {
        from: 0,
        to: nodes.len() - 1,
        relation: x.what.as_str().to_string(),
        thread: thread.clone(),
        call: None,
        held_mode: None,
        wanted_mode: None,
        held_at: taken.clone(),
        acquired_at: None,
        count: None,
        max_ns: x.held_ns,
        max_ns_tick: None,
        stack,
        held_stack: None,
    };
    let mut edges = vec![edge(0)];
    if let Some(refused) = x.other_stack {
        stacks.push(StackInfo {
            pid,
            tid: x.tid,
            what: format!("locks {l} again, refused with EDEADLK"),
            frames: syms.stack(model, pid, refused),
        });
        edges.push(edge(1));
    }
    Finding::new(
        MISUSE,
        title,
        (nodes, edges),
        vec![thread],
        stacks,
        location,
    )
}

fn hazards(
    model: &Model,
    syms: &mut Symbols,
    cycle_edges: &HashSet<(usize, usize)>,
) -> Vec<Finding> {
    type Key = (u32, Vec<(LockRef, Mode)>, String, Direction, u64);
    let mut groups: BTreeMap<Key, Vec<&HeldCall>> = BTreeMap::new();
    for ((pid, _), h) in &model.held_calls {
        let queue = Node::Queue {
            channel: h.channel.clone(),
            dir: h.dir,
        };
        let in_cycle = h.held.iter().any(|x| {
            let edge = (
                model.node_index(&Node::lock(*pid, x.lock)),
                model.node_index(&queue),
            );
            matches!(edge, (Some(a), Some(b)) if cycle_edges.contains(&(a, b)))
        });
        if in_cycle {
            continue;
        }
        let mut held: Vec<(LockRef, Mode)> = h.held.iter().map(|x| (x.lock, x.mode)).collect();
        held.sort();
        groups
            .entry((*pid, held, h.call.clone(), h.dir, h.stack))
            .or_default()
            .push(h);
    }
    let mut out: Vec<(u64, Finding)> = Vec::new();
    for ((pid, _, call, dir, stack), calls) in groups {
        let first = calls[0];
        let count: u64 = calls.iter().map(|c| c.count).sum();
        let max_ns = calls.iter().map(|c| c.max_ns).max().unwrap_or(0);
        let tick = call_tick(model, pid);
        let mut nodes: Vec<NodeInfo> = first
            .held
            .iter()
            .map(|h| node_info(model, &Node::lock(pid, h.lock), Some(h.mode)))
            .collect();
        let qi = nodes.len();
        nodes.push(node_info(
            model,
            &Node::Queue {
                channel: first.channel.clone(),
                dir,
            },
            None,
        ));
        let frames = syms.stack(model, pid, stack);
        let queues: BTreeSet<String> = calls.iter().map(|c| c.channel.describe()).collect();
        let more = match queues.len() {
            1 => String::new(),
            n => format!(" (and {} more queues)", n - 1),
        };
        let what = format!(
            "{call}() on {} ({}){more}",
            first.channel.describe(),
            dir.as_str()
        );
        let stacks = vec![StackInfo {
            pid,
            tid: first.tid,
            what: what.clone(),
            frames: frames.clone(),
        }];
        let mut edges = Vec::new();
        for c in &calls {
            for (i, h) in c.held.iter().enumerate() {
                edges.push(EdgeInfo {
                    from: i,
                    to: qi,
                    relation: "held-across-call".to_string(),
                    thread: thread_ref(model, pid, c.tid),
                    call: Some(call.clone()),
                    held_mode: Some(h.mode.as_str().to_string()),
                    wanted_mode: None,
                    held_at: site_frame(syms, model, pid, Some(h.site)),
                    acquired_at: None,
                    count: Some(c.count),
                    max_ns: Some(c.max_ns),
                    max_ns_tick: tick,
                    stack: 0,
                    held_stack: None,
                });
            }
        }
        let threads: Vec<ThreadRef> = calls
            .iter()
            .map(|c| thread_ref(model, pid, c.tid))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let held_labels: Vec<String> = nodes[..qi].iter().map(node_label).collect();
        let title = format!(
            "{} held across a blocking {call}() on {}{more} ({} call{}, longest {})",
            held_labels.join(", "),
            node_label(&nodes[qi]),
            count,
            if count == 1 { "" } else { "s" },
            labels::call_duration(max_ns, tick)
        );
        out.push((
            max_ns,
            Finding::new(
                HAZARD,
                title,
                (nodes, edges),
                threads,
                stacks,
                program_frame(&frames),
            ),
        ));
    }
    out.sort_by_key(|f| std::cmp::Reverse(f.0));
    out.into_iter().map(|(_, f)| f).collect()
}

#[cfg(test)]
mod tests {
    use super::program_name;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn a_process_is_named_by_its_program_as_ps_shows_it() {
        let exe = "/usr/lib/chromium/chromium";
        assert_eq!(program_name(&args(&[exe, "--headless"]), exe), "chromium");
        // A script: its own name, not its interpreter's.
        assert_eq!(
            program_name(&args(&["/bin/sh", "/usr/bin/chromium"]), "/usr/bin/dash"),
            "sh"
        );
        // A title written over the arguments, with slashes in its options.
        let title = "/usr/lib/chromium/chromium --type=zygote --user-data-dir=/root/.config/x/scoped_dir8N35SJ --no-sandbox";
        assert_eq!(program_name(&args(&[title]), exe), "chromium");
        assert_eq!(
            program_name(&args(&["/proc/self/exe", "--type=utility"]), exe),
            "chromium"
        );
        assert_eq!(program_name(&[], exe), "chromium");
        assert_eq!(program_name(&args(&[""]), exe), "chromium");
        // A path with a space, run with no arguments, is no title.
        let spaced = "/opt/Lock Tools/lock daemon";
        assert_eq!(program_name(&args(&[spaced]), spaced), "lock daemon");
    }
}
