//! Finding the cycles of the wait-for graph that can really happen.
//!
//! Strongly connected components come from petgraph (Kosaraju's, which is
//! iterative); inside each, elementary
//! cycles are enumerated (each once, from its smallest node, bounded in
//! length and number). A cycle is reported only if a *witness* exists: one
//! piece of evidence per edge such that
//! - a lock-only cycle involves two or more distinct threads, one per edge;
//! - around every node, the thread that waits and the thread that must act
//!   are different threads (a thread that blocks sending into a queue only
//!   it drains is stuck whatever lock it holds: not a cycle through it);
//! - no gate lock is held across every edge of a lock-only cycle;
//! - at every lock node the wanted mode conflicts with the held mode (read
//!   against read conflicts only on a writer-preferring rwlock);
//! - trylock acquisitions never form edges (they are left out of the model);
//! - the cycle passes through a lock: holdcheck finds locks held while
//!   waiting, not protocols in which every party receives first.

use crate::model::{Evidence, Model, Node};
use holdcheck_format::{LockRef, Mode};
use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::HashSet;

/// Longest cycle enumerated, in nodes.
pub const MAX_CYCLE_LEN: usize = 8;
/// Most cycles examined in one analysis.
pub const MAX_CYCLES: usize = 10_000;
/// Most witness-search steps per cycle.
const MAX_STEPS: usize = 200_000;

/// A cycle that can really happen, with the evidence that shows it.
#[derive(Debug, Clone)]
pub struct Cycle {
    /// Node indices in order; the last waits for the first.
    pub nodes: Vec<usize>,
    /// Evidence for each edge nodes[i] → nodes[i+1 mod n].
    pub witness: Vec<Evidence>,
}

/// What the search left out.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Bounds {
    /// The number of cycles examined hit `MAX_CYCLES`.
    pub truncated: bool,
    /// Sizes of the strongly connected sets in which no cycle of at most
    /// `MAX_CYCLE_LEN` nodes was found and the search was cut at that
    /// length (their cycles are longer).
    pub long_only: Vec<usize>,
}

/// Every valid cycle of the model, and what a bound cut out of the search.
pub fn find(model: &Model) -> (Vec<Cycle>, Bounds) {
    let mut g: DiGraph<usize, ()> = DiGraph::new();
    let idx: Vec<NodeIndex> = (0..model.nodes.len()).map(|i| g.add_node(i)).collect();
    for &(a, b) in model.edges.keys() {
        g.add_edge(idx[a], idx[b], ());
    }
    let mut found = Vec::new();
    let mut examined = 0usize;
    let mut truncated = false;
    let mut long_only = Vec::new();
    // Kosaraju (iterative): a lock hierarchy is a long chain, too deep for
    // petgraph's recursive Tarjan on the stack.
    for scc in kosaraju_scc(&g) {
        if scc.len() < 2 {
            continue;
        }
        let members: HashSet<usize> = scc.iter().map(|n| g[*n]).collect();
        let examined_before = examined;
        let mut cut = false;
        let mut sorted: Vec<usize> = members.iter().copied().collect();
        sorted.sort_unstable();
        for &start in &sorted {
            let mut path = vec![start];
            let joins = |a: usize, b: usize, c: usize| can_join(model, a, b, c);
            let component = Component {
                g: &g,
                idx: &idx,
                members: &members,
            };
            enumerate(&component, &mut path, &joins, &mut cut, &mut |cycle| {
                examined += 1;
                if examined > MAX_CYCLES {
                    truncated = true;
                    return false;
                }
                if let Some(witness) = witness(model, cycle) {
                    found.push(Cycle {
                        nodes: cycle.to_vec(),
                        witness,
                    });
                }
                true
            });
            if truncated {
                return (
                    found,
                    Bounds {
                        truncated,
                        long_only,
                    },
                );
            }
        }
        if examined == examined_before && cut {
            long_only.push(scc.len());
        }
    }
    (
        found,
        Bounds {
            truncated,
            long_only,
        },
    )
}

/// The graph one strongly connected set is searched in.
struct Component<'a> {
    g: &'a DiGraph<usize, ()>,
    idx: &'a [NodeIndex],
    members: &'a HashSet<usize>,
}

/// Depth-first enumeration of the elementary cycles through `path[0]`
/// whose other nodes are all greater than it (so each cycle is found once).
fn enumerate(
    c: &Component,
    path: &mut Vec<usize>,
    joins: &dyn Fn(usize, usize, usize) -> bool,
    cut: &mut bool,
    on_cycle: &mut dyn FnMut(&[usize]) -> bool,
) -> bool {
    let (g, idx, members) = (c.g, c.idx, c.members);
    let start = path[0];
    let last = *path.last().expect("path starts with start");
    let mut next: Vec<usize> = g.neighbors(idx[last]).map(|n| g[n]).collect();
    next.sort_unstable();
    next.dedup();
    // The edge into `last` and the edge out of it must be able to meet there.
    let prev = (path.len() >= 2).then(|| path[path.len() - 2]);
    for n in next {
        if prev.is_some_and(|p| !joins(p, last, n)) {
            continue;
        }
        if n == start {
            if path.len() >= 2 && joins(last, start, path[1]) && !on_cycle(path) {
                return false;
            }
        } else if n > start && members.contains(&n) && !path.contains(&n) {
            if path.len() >= MAX_CYCLE_LEN {
                // A longer cycle may go on from here: not searched.
                *cut = true;
                continue;
            }
            path.push(n);
            let go_on = enumerate(c, path, joins, cut, on_cycle);
            path.pop();
            if !go_on {
                return false;
            }
        }
    }
    true
}

/// Whether edges a → b and b → c can be consecutive in a witness: some
/// evidence of each, by different threads, whose modes conflict at b. A
/// necessary condition that prunes the search long before the witness check.
fn can_join(model: &Model, a: usize, b: usize, c: usize) -> bool {
    let (Some(into), Some(out)) = (model.edges.get(&(a, b)), model.edges.get(&(b, c))) else {
        return false;
    };
    let node = &model.nodes[b];
    into.iter().any(|x| {
        out.iter()
            .any(|y| !same_thread(x, y) && conflicts(model, node, x.wanted_mode, y.held_mode))
    })
}

/// Whether the thread waiting for a lock in `wanted` mode is blocked by a
/// thread holding it in `held` mode.
fn conflicts(model: &Model, node: &Node, wanted: Option<Mode>, held: Option<Mode>) -> bool {
    let (Some(w), Some(h)) = (wanted, held) else {
        return true;
    };
    if w == Mode::Write || h == Mode::Write {
        return true;
    }
    // Read against read: only a writer-preferring rwlock makes a reader wait
    // behind a queued writer (assumed to exist: why else prefer writers).
    match node {
        Node::Lock { pid, lock } => model
            .lock_meta(*pid, *lock)
            .is_some_and(|m| m.writer_preferring),
        Node::Queue { .. } => true,
    }
}

/// Finds one piece of evidence per edge that makes the cycle real.
fn witness(model: &Model, cycle: &[usize]) -> Option<Vec<Evidence>> {
    let n = cycle.len();
    if !cycle.iter().any(|&i| model.nodes[i].is_lock()) {
        return None;
    }
    let lock_only = cycle.iter().all(|&i| model.nodes[i].is_lock());
    let candidates: Vec<&Vec<Evidence>> = (0..n)
        .map(|i| model.edges.get(&(cycle[i], cycle[(i + 1) % n])))
        .collect::<Option<_>>()?;
    let mut chosen: Vec<&Evidence> = Vec::with_capacity(n);
    let mut steps = 0usize;
    let ok = search(
        model,
        cycle,
        lock_only,
        &candidates,
        &mut chosen,
        &mut steps,
    );
    ok.then(|| chosen.into_iter().cloned().collect())
}

fn search<'a>(
    model: &Model,
    cycle: &[usize],
    lock_only: bool,
    candidates: &[&'a Vec<Evidence>],
    chosen: &mut Vec<&'a Evidence>,
    steps: &mut usize,
) -> bool {
    let i = chosen.len();
    let n = cycle.len();
    if i == n {
        // The last edge's wanted mode against the first edge's held mode, at
        // the first node.
        let first = &model.nodes[cycle[0]];
        if !conflicts(model, first, chosen[n - 1].wanted_mode, chosen[0].held_mode) {
            return false;
        }
        if same_thread(chosen[n - 1], chosen[0]) {
            return false;
        }
        return !lock_only || !gated(chosen);
    }
    for e in candidates[i].iter() {
        *steps += 1;
        if *steps > MAX_STEPS {
            return false;
        }
        if lock_only && chosen.iter().any(|c| same_thread(c, e)) {
            continue;
        }
        if i > 0 && same_thread(chosen[i - 1], e) {
            continue;
        }
        if i > 0 {
            let node = &model.nodes[cycle[i]];
            if !conflicts(model, node, chosen[i - 1].wanted_mode, e.held_mode) {
                continue;
            }
        }
        chosen.push(e);
        if search(model, cycle, lock_only, candidates, chosen, steps) {
            return true;
        }
        chosen.pop();
    }
    false
}

fn same_thread(a: &Evidence, b: &Evidence) -> bool {
    a.pid == b.pid && a.tid == b.tid
}

/// Whether one lock was held across every edge (a gate: the threads can
/// never be inside the cycle at the same time).
fn gated(chosen: &[&Evidence]) -> bool {
    let mut common: Option<HashSet<(u32, LockRef)>> = None;
    for e in chosen {
        let held: HashSet<(u32, LockRef)> = e.others_held.iter().map(|l| (e.pid, *l)).collect();
        common = Some(match common {
            None => held,
            Some(c) => c.intersection(&held).copied().collect(),
        });
    }
    common.is_some_and(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::trace::TraceFile;
    use holdcheck_format::{Channel, Direction, Held, LockKind, Record, TRACE_VERSION};

    const A: u64 = 0xa000;
    const B: u64 = 0xb000;
    const C: u64 = 0xc000;
    const G: u64 = 0x6000;

    fn lock(addr: u64) -> LockRef {
        LockRef { addr, gen: 0 }
    }

    fn held(addr: u64, mode: Mode) -> Held {
        Held {
            lock: lock(addr),
            mode,
            site: 0,
        }
    }

    /// tid acquires `to` (mode) while holding `from` (modes).
    fn order(tid: u32, from: &[(u64, Mode)], to: u64, mode: Mode) -> Record {
        Record::LockOrder {
            tid,
            lock: lock(to),
            mode,
            try_lock: false,
            held: from.iter().map(|&(a, m)| held(a, m)).collect(),
            stack: 1,
        }
    }

    fn meta(addr: u64, kind: LockKind, writer_preferring: bool) -> Record {
        Record::Lock {
            lock: lock(addr),
            kind,
            writer_preferring,
            recursive: false,
            file: None,
        }
    }

    fn cycles_of(records: Vec<Record>) -> Vec<Cycle> {
        let mut all = vec![Record::Header {
            version: TRACE_VERSION,
            pid: 10,
            ppid: 1,
            exe: "/x".into(),
            cmdline: vec![],
        }];
        all.extend(records);
        let t = TraceFile {
            path: "t".into(),
            records: all,
            warnings: vec![],
        };
        let (c, bounds) = find(&Model::build(&[t]));
        assert_eq!(bounds, Bounds::default());
        c
    }

    const W: Mode = Mode::Write;
    const R: Mode = Mode::Read;

    #[test]
    fn abba_by_two_threads_is_a_cycle() {
        let c = cycles_of(vec![order(1, &[(A, W)], B, W), order(2, &[(B, W)], A, W)]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].nodes.len(), 2);
        let tids: HashSet<u32> = c[0].witness.iter().map(|e| e.tid).collect();
        assert_eq!(tids, HashSet::from([1, 2]));
    }

    #[test]
    fn abba_by_one_thread_is_no_deadlock() {
        assert!(cycles_of(vec![order(1, &[(A, W)], B, W), order(1, &[(B, W)], A, W)]).is_empty());
    }

    #[test]
    fn a_gate_lock_held_across_both_orders_filters_the_cycle() {
        let gated = cycles_of(vec![
            order(1, &[(G, W), (A, W)], B, W),
            order(2, &[(G, W), (B, W)], A, W),
        ]);
        assert!(gated.is_empty());
        // The same inversion with the gate held on one side only is real.
        let half = cycles_of(vec![
            order(1, &[(G, W), (A, W)], B, W),
            order(2, &[(B, W)], A, W),
        ]);
        assert_eq!(half.len(), 1);
    }

    #[test]
    fn a_trylock_edge_orders_nothing() {
        let mut try_edge = order(2, &[(B, W)], A, W);
        if let Record::LockOrder { try_lock, .. } = &mut try_edge {
            *try_lock = true;
        }
        assert!(cycles_of(vec![order(1, &[(A, W)], B, W), try_edge]).is_empty());
    }

    #[test]
    fn read_against_read_conflicts_only_on_a_writer_preferring_rwlock() {
        let recs = |wp| {
            vec![
                meta(A, LockKind::Rwlock, wp),
                meta(B, LockKind::Mutex, false),
                order(1, &[(A, R)], B, W),
                order(2, &[(B, W)], A, R),
            ]
        };
        assert!(
            cycles_of(recs(false)).is_empty(),
            "default rwlock: readers never wait for readers"
        );
        assert_eq!(
            cycles_of(recs(true)).len(),
            1,
            "writer-preferring: a queued writer blocks the reader"
        );
        // A writer on one side conflicts whatever the kind.
        let rw = cycles_of(vec![
            meta(A, LockKind::Rwlock, false),
            order(1, &[(A, R)], B, W),
            order(2, &[(B, W)], A, W),
        ]);
        assert_eq!(rw.len(), 1);
    }

    #[test]
    fn a_reused_address_is_another_lock() {
        let newer = LockRef { addr: A, gen: 1 };
        let second_life = Record::LockOrder {
            tid: 2,
            lock: newer,
            mode: W,
            try_lock: false,
            held: vec![held(B, W)],
            stack: 1,
        };
        assert!(cycles_of(vec![order(1, &[(A, W)], B, W), second_life]).is_empty());
    }

    #[test]
    fn a_three_lock_cycle_is_one_finding_of_three_nodes() {
        let c = cycles_of(vec![
            order(1, &[(A, W)], B, W),
            order(2, &[(B, W)], C, W),
            order(3, &[(C, W)], A, W),
        ]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].nodes.len(), 3);
    }

    #[test]
    fn a_three_lock_cycle_needs_three_threads() {
        let c = cycles_of(vec![
            order(1, &[(A, W)], B, W),
            order(2, &[(B, W)], C, W),
            order(2, &[(C, W)], A, W),
        ]);
        assert!(c.is_empty());
    }

    fn held_send(tid: u32, addr: u64, mode: Mode, chan: &Channel) -> Record {
        Record::HeldAcrossCall {
            id: 5,
            tid,
            held: vec![held(addr, mode)],
            call: "sendto".into(),
            channel: chan.clone(),
            direction: Direction::Send,
            stack: 1,
        }
    }

    fn drain(tid: u32, chan: &Channel, addr: u64, mode: Mode) -> Record {
        Record::QueueLock {
            tid,
            channel: chan.clone(),
            direction: Direction::Recv,
            lock: lock(addr),
            mode,
            site: 0,
            stack: 2,
        }
    }

    #[test]
    fn a_lock_held_across_a_send_whose_drainer_needs_it_is_a_cycle() {
        let q = Channel::Netlink {
            protocol: 2,
            port: 7,
        };
        let c = cycles_of(vec![
            meta(A, LockKind::Rwlock, false),
            held_send(1, A, W, &q),
            drain(2, &q, A, W),
        ]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].nodes.len(), 2);
        // A reader draining a queue fed under a read lock does not conflict.
        let r = cycles_of(vec![
            meta(A, LockKind::Rwlock, false),
            held_send(1, A, R, &q),
            drain(2, &q, A, R),
        ]);
        assert!(r.is_empty());
    }

    #[test]
    fn a_thread_sending_into_a_queue_only_it_drains_is_no_cycle_through_its_lock() {
        let q = Channel::Pipe { inode: 3 };
        let c = cycles_of(vec![held_send(1, A, W, &q), drain(1, &q, A, W)]);
        assert!(c.is_empty());
        // Two such threads, crossing their locks over private queues.
        let q2 = Channel::Pipe { inode: 4 };
        let c = cycles_of(vec![
            held_send(1, A, W, &q),
            drain(1, &q, B, W),
            held_send(2, B, W, &q2),
            drain(2, &q2, A, W),
        ]);
        assert!(c.is_empty(), "{c:?}");
    }

    #[test]
    fn a_drainer_of_another_queue_makes_no_cycle() {
        let q = Channel::Netlink {
            protocol: 2,
            port: 7,
        };
        let other = Channel::Netlink {
            protocol: 2,
            port: 8,
        };
        assert!(cycles_of(vec![held_send(1, A, W, &q), drain(2, &other, A, W)]).is_empty());
    }

    #[test]
    fn a_recv_under_a_lock_whose_producer_needs_it_is_a_cycle() {
        let q = Channel::Unix {
            inode: Some(42),
            path: None,
            from: None,
        };
        let c = cycles_of(vec![
            Record::HeldAcrossCall {
                id: 6,
                tid: 1,
                held: vec![held(A, W)],
                call: "recv".into(),
                channel: q.clone(),
                direction: Direction::Recv,
                stack: 1,
            },
            Record::QueueLock {
                tid: 2,
                channel: q,
                direction: Direction::Send,
                lock: lock(A),
                mode: W,
                site: 0,
                stack: 2,
            },
        ]);
        assert_eq!(c.len(), 1);
    }
}
