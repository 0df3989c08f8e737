//! Live findings: what a process's watchdog saw (a deadlock, a stall, a
//! stalled call), turned into report findings with symbolised stacks.

use crate::findings::{node_info, thread_ref};
use crate::model::{Model, Node};
use crate::report::labels::{
    is_glibc_object_wait, is_semaphore_wait, node_label, runtime_lock, runtime_wait,
    title_with_runtime_wait, unread_futex, with_direction,
};
use crate::report::HANG;
use crate::report::{EdgeInfo, Finding, NodeInfo, StackInfo, ThreadRef, ThreadState};
use crate::symbolize::Symbols;
use crate::symbolize::{program_frame, site_frame};
use holdcheck_format::{Channel, Observed, ObservedNode, ObservedThread, Waiting};
use std::collections::HashSet;

/// `pid` is the process whose trace (or snapshot) reported it; nodes and
/// threads of a snapshot that spanned several processes name their own.
pub(crate) fn node(n: &ObservedNode, pid: u32) -> Node {
    match n {
        ObservedNode::Lock { lock, pid: p, .. } => Node::lock(p.unwrap_or(pid), *lock),
        ObservedNode::Channel { channel, direction } => Node::Queue {
            channel: channel.clone(),
            dir: *direction,
        },
    }
}

/// What the observation shows of each queue's ends: a thread blocked
/// sending or receiving on it is at that end; one that drains (or feeds) it
/// is at its receiving (or sending) end.
fn add_ends(model: &Model, pid: u32, o: &Observed, nodes: &mut [NodeInfo]) {
    let pid_of = |tid: u32| {
        o.threads
            .iter()
            .find(|t| t.tid == tid)
            .and_then(|t| t.pid)
            .unwrap_or(pid)
    };
    let mut add = |i: usize, send: bool, p: u32| {
        if let Some(NodeInfo::Channel {
            channel,
            senders,
            receiving,
            ..
        }) = nodes.get_mut(i)
        {
            if !channel.is_queue() {
                return;
            }
            let side = if send { senders } else { receiving };
            if !side.iter().any(|s| s.pid == p) {
                side.push(crate::findings::process_name(model, p));
                side.sort_by_key(|s| s.pid);
            }
        }
    };
    for e in &o.edges {
        match e.relation.as_str() {
            "drain" => add(e.from, false, pid_of(e.tid)),
            "produce" => add(e.from, true, pid_of(e.tid)),
            _ => {}
        }
    }
    for t in &o.threads {
        let Some(Waiting::Call {
            channel, direction, ..
        }) = &t.waiting
        else {
            continue;
        };
        let p = t.pid.unwrap_or(pid);
        for (i, n) in o.nodes.iter().enumerate() {
            if matches!(n, ObservedNode::Channel { channel: c, .. } if c == channel) {
                add(i, *direction == holdcheck_format::Direction::Send, p);
            }
        }
    }
}

fn waiting_text(model: &Model, pid: u32, w: &Waiting) -> String {
    match w {
        Waiting::Lock { lock, mode, .. } => {
            let n = node_info(model, &Node::lock(pid, *lock), Some(*mode));
            // A lock of unknown kind is labelled "lock 0x…" already.
            let label = node_label(&n);
            if label.starts_with("lock ") {
                label
            } else {
                format!("lock {label}")
            }
        }
        Waiting::Call {
            call,
            channel,
            direction,
            ..
        } => format!(
            "{call}() on {}",
            with_direction(channel.describe(), channel, direction.as_str())
        ),
        Waiting::Other { what } => what.clone(),
    }
}

fn thread_of(model: &Model, pid: u32, t: &ObservedThread) -> ThreadRef {
    let mut r = thread_ref(model, t.pid.unwrap_or(pid), t.tid);
    if !t.name.is_empty() {
        r.name = t.name.clone();
    }
    r
}

/// The observations without the hangs that other findings explain: a hang
/// (every blocked thread when `run` ended the command) is kept only when
/// one of its threads is explained by no other finding, neither directly
/// nor by joining a thread that is, and, when there are other findings,
/// is not merely idle (waiting to receive, holding nothing, awaiting no
/// reply: a server's idle thread beside the finding that explains the
/// run).
pub fn unexplained_hangs(observed: &[(u32, Observed)]) -> Vec<(u32, &Observed)> {
    let others: Vec<&Observed> = observed
        .iter()
        .map(|(_, o)| o)
        .filter(|o| o.kind != HANG)
        .collect();
    let mut explained: HashSet<u32> = others
        .iter()
        .flat_map(|o| o.threads.iter().map(|t| t.tid))
        .collect();
    let joined = |t: &ObservedThread| match &t.waiting {
        Some(Waiting::Call {
            channel: Channel::Thread { tid, .. },
            ..
        }) => Some(*tid),
        _ => None,
    };
    let hang_threads = || {
        observed
            .iter()
            .filter(|(_, o)| o.kind == HANG)
            .flat_map(|(_, o)| o.threads.iter())
    };
    // A join of an explained thread is explained, and so on up the chain.
    loop {
        let more: Vec<u32> = hang_threads()
            .filter(|t| !explained.contains(&t.tid))
            .filter(|t| joined(t).is_some_and(|j| explained.contains(&j)))
            .map(|t| t.tid)
            .collect();
        if more.is_empty() {
            break;
        }
        explained.extend(more);
    }
    let idle = |t: &ObservedThread| {
        t.held.is_empty()
            && joined(t).is_none()
            && !matches!(
                t.waiting,
                Some(Waiting::Call {
                    awaiting_reply: true,
                    ..
                }) | Some(Waiting::Lock { .. })
            )
    };
    observed
        .iter()
        .filter(|(_, o)| {
            o.kind != HANG
                || o.threads
                    .iter()
                    .any(|t| !explained.contains(&t.tid) && (others.is_empty() || !idle(t)))
        })
        .map(|(pid, o)| (*pid, o))
        .collect()
}

pub fn finding(model: &Model, syms: &mut Symbols, pid: u32, o: &Observed) -> Finding {
    let mut nodes: Vec<_> = o
        .nodes
        .iter()
        .map(|n| {
            let mode = match n {
                ObservedNode::Lock { mode, .. } => Some(*mode),
                ObservedNode::Channel { .. } => None,
            };
            node_info(model, &node(n, pid), mode)
        })
        .collect();
    let mut stacks: Vec<StackInfo> = Vec::new();
    let mut thread_states = Vec::new();
    let mut stack_of_tid = std::collections::HashMap::new();
    let mut title = o.title.clone();
    for t in &o.threads {
        let pid = t.pid.unwrap_or(pid);
        let frames = t.stack.map(|id| syms.stack(model, pid, id));
        // A futex wait inspect could not read, or a glibc semaphore or
        // condition variable a runtime's locks are made of (Python's): a
        // runtime's lock, when its stack names one.
        let what = match &t.waiting {
            Some(Waiting::Other { what }) => what.as_str(),
            _ => "",
        };
        let unread = unread_futex(what);
        let runtime = frames
            .as_deref()
            .and_then(runtime_lock)
            .filter(|_| unread.is_some() || is_glibc_object_wait(what));
        // A semaphore records no holder either: one used as a lock (a
        // binary semaphore, or a runtime's lock whose stack was not taken)
        // is held by whoever took it, and whoever would post it is unknown.
        let unread_wait = runtime
            .or(unread)
            .or_else(|| is_semaphore_wait(what).then_some("semaphore"))
            .map(str::to_string);
        if let Some(lock) = runtime {
            title = title_with_runtime_wait(&title, t.tid, what, lock);
        }
        let waiting = t.waiting.as_ref().map(|w| match runtime {
            Some(lock) => runtime_wait(lock),
            None => waiting_text(model, pid, w),
        });
        let stack = frames.map(|frames| {
            stacks.push(StackInfo {
                pid,
                tid: t.tid,
                what: waiting.clone().unwrap_or_else(|| "running".into()),
                frames,
            });
            stacks.len() - 1
        });
        if let Some(i) = stack {
            stack_of_tid.insert(t.tid, i);
        }
        thread_states.push(ThreadState {
            // A hang is read from outside, where a lock shows only through
            // its waiters.
            holds_unseen: o.kind == HANG,
            thread: thread_of(model, pid, t),
            holds: t
                .held
                .iter()
                .map(|h| {
                    let n = node_info(model, &Node::lock(pid, h.lock), Some(h.mode));
                    let at = site_frame(syms, model, pid, Some(h.site))
                        .map(|f| f.short())
                        .unwrap_or_default();
                    if at.is_empty() {
                        node_label(&n)
                    } else {
                        format!("{} acquired at {at}", node_label(&n))
                    }
                })
                .collect(),
            waiting,
            unread_wait,
            waited_ms: t.waited_ms,
            awaiting_reply: matches!(
                t.waiting,
                Some(Waiting::Call {
                    awaiting_reply: true,
                    ..
                })
            ),
            stack,
        });
    }
    add_ends(model, pid, o, &mut nodes);
    // An edge without a stack of its own points at an empty one.
    let mut empty_stack = None;
    let edges: Vec<EdgeInfo> = o
        .edges
        .iter()
        .map(|e| {
            let t = o.threads.iter().find(|t| t.tid == e.tid);
            let pid = t.and_then(|t| t.pid).unwrap_or(pid);
            let call = match t.and_then(|t| t.waiting.as_ref()) {
                Some(Waiting::Call { call, .. }) => Some(call.clone()),
                _ => None,
            };
            let from_lock = match &o.nodes[e.from] {
                ObservedNode::Lock { lock, .. } => Some(*lock),
                _ => None,
            };
            let held = t.and_then(|t| t.held.iter().find(|h| Some(h.lock) == from_lock));
            let wanted_mode = match t.and_then(|t| t.waiting.as_ref()) {
                Some(Waiting::Lock { mode, .. }) => Some(mode.as_str().to_string()),
                _ => None,
            };
            let stack = match stack_of_tid.get(&e.tid) {
                Some(&i) => i,
                None => *empty_stack.get_or_insert_with(|| {
                    stacks.push(StackInfo {
                        pid,
                        tid: e.tid,
                        what: "no stack was taken".into(),
                        frames: Vec::new(),
                    });
                    stacks.len() - 1
                }),
            };
            EdgeInfo {
                from: e.from,
                to: e.to,
                relation: e.relation.clone(),
                thread: t
                    .map(|t| thread_of(model, pid, t))
                    .unwrap_or_else(|| thread_ref(model, pid, e.tid)),
                call,
                held_mode: held.map(|h| h.mode.as_str().to_string()),
                wanted_mode,
                held_at: held.and_then(|h| site_frame(syms, model, pid, Some(h.site))),
                acquired_at: None,
                count: None,
                max_ns: None,
                max_ns_tick: None,
                stack,
                held_stack: None,
            }
        })
        .collect();
    let mut threads: Vec<ThreadRef> = o.threads.iter().map(|t| thread_of(model, pid, t)).collect();
    threads.sort();
    threads.dedup();
    // Where the bug is: the call made while holding the lock, as for a
    // predicted cycle; else the first stack there is.
    let location = edges
        .iter()
        .filter(|e| e.relation == "held-across-call")
        .chain(edges.iter())
        .find_map(|e| program_frame(&stacks[e.stack].frames))
        .or_else(|| stacks.iter().find_map(|s| program_frame(&s.frames)));
    let mut f = Finding::new(&o.kind, title, (nodes, edges), threads, stacks, location);
    f.thread_states = thread_states;
    f.waiters = (o.kind == "stall" || o.waiters > 0).then_some(o.waiters);
    f
}
