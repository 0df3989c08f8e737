//! Finding the cycles of the wait-for graph that can really happen.
//!
//! Strongly connected components come from petgraph (Kosaraju's, which is
//! iterative). Inside each, the chordless cycles of up to
//! [`SHORT_CYCLE_LEN`] nodes are enumerated (each once, from its smallest
//! node): a cycle with a chord holds a shorter one, and a thread holding
//! hundreds of locks at once would otherwise make their number explode.
//! Then, for every edge no reported potential deadlock goes through yet,
//! the shortest cycle through it is found breadth-first, so a ring of any
//! length up to [`MAX_CYCLE_LEN`] is found too, and so is a long cycle
//! whose chord only made a weaker one. A cycle whose locks include all of
//! a reported cycle's, graded no better, says nothing more and is left
//! out. A cycle is reported only if
//! a *witness* exists: one piece of evidence per edge such that
//! - around every node, the thread that waits and the thread that must act
//!   are different threads when the node is a queue (a thread that blocks
//!   sending into a queue only it drains is stuck whatever lock it holds:
//!   not a cycle through it);
//! - no gate lock is held across every edge of a lock-only cycle;
//! - at every lock node the wanted mode conflicts with the held mode (read
//!   against read conflicts only on a writer-preferring rwlock);
//! - trylock acquisitions never form edges (they are left out of the model);
//! - the cycle passes through a lock: holdcheck finds locks held while
//!   waiting, not protocols in which every party receives first.
//!
//! A cycle through queues needs a distinct thread at every node. A
//! lock-only cycle is *graded* ([`Grade`]): it could deadlock in this run
//! when one distinct thread per edge took its orders at times that could
//! overlap; when every witness has one thread taking two of its orders, or
//! two orders ordered by a thread start or join, it is a lock-order
//! inversion that had no chance to deadlock here, and is reported as one
//! (TSan, Helgrind and lockdep report both alike).

use crate::model::{Evidence, Evidences, Model, Node};
use crate::order::Sync;
use holdcheck_format::{LockRef, Mode};
use petgraph::algo::kosaraju_scc;
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{HashMap, HashSet, VecDeque};

/// Longest cycle enumerated exhaustively, in nodes.
pub const SHORT_CYCLE_LEN: usize = 8;
/// Longest cycle found at all (by the shortest cycle through an edge).
pub const MAX_CYCLE_LEN: usize = 1024;
/// Most cycles examined in one analysis.
pub const MAX_CYCLES: usize = 10_000;
/// Most witness-search steps per cycle.
const MAX_STEPS: usize = 200_000;
/// Most nodes visited by the breadth-first searches in one strongly
/// connected set (a ring of 100 000 locks would otherwise cost 10^8).
const MAX_BFS_VISITS: usize = 5_000_000;

/// Whether a cycle could deadlock in this run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grade {
    /// One distinct thread per edge, at times that could overlap (or a
    /// cycle through a queue): a potential deadlock.
    Concurrent,
    /// A lock-order inversion whose orders could not all be in force at
    /// once in this run; two threads running its code paths can deadlock.
    Serialized(Serialization),
}

/// Why a lock-order inversion could not deadlock in this run.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Serialization {
    /// Threads (pid, tid) that took two or more of its orders.
    pub same_thread: Vec<(u32, u32)>,
    /// The starts and joins that put two of its orders one after the other
    /// (within process `pid`).
    pub ordered_by: Vec<Sync>,
    pub pid: u32,
}

/// A cycle that can really happen, with the evidence that shows it.
#[derive(Debug, Clone)]
pub struct Cycle {
    /// Node indices in order; the last waits for the first.
    pub nodes: Vec<usize>,
    /// Evidence for each edge nodes[i] → nodes[i+1 mod n].
    pub witness: Vec<Evidence>,
    pub grade: Grade,
}

/// What the search left out.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Bounds {
    /// The number of cycles examined, or the nodes visited, hit a bound.
    pub truncated: bool,
    /// Sizes of the strongly connected sets in which no cycle was found
    /// although one longer than `MAX_CYCLE_LEN` nodes may exist.
    pub long_only: Vec<usize>,
}

/// Every valid cycle of the model, and what a bound cut out of the search.
pub fn find(model: &Model) -> (Vec<Cycle>, Bounds) {
    let mut g: DiGraph<usize, ()> = DiGraph::new();
    let idx: Vec<NodeIndex> = (0..model.nodes.len()).map(|i| g.add_node(i)).collect();
    for &(a, b) in model.edges.keys() {
        g.add_edge(idx[a], idx[b], ());
    }
    let mut search = Search {
        model,
        found: Vec::new(),
        seen: HashSet::new(),
        examined: 0,
        visits: 0,
        bounds: Bounds::default(),
    };
    // Kosaraju (iterative): a lock hierarchy is a long chain, too deep for
    // petgraph's recursive Tarjan on the stack.
    for scc in kosaraju_scc(&g) {
        if scc.len() < 2 {
            continue;
        }
        let members: HashSet<usize> = scc.iter().map(|n| g[*n]).collect();
        let component = Component {
            g: &g,
            idx: &idx,
            members: &members,
            edges: &model.edges,
        };
        let before = search.found.len();
        let mut cut = false;
        let mut sorted: Vec<usize> = members.iter().copied().collect();
        sorted.sort_unstable();
        for &start in &sorted {
            let mut path = vec![start];
            let joins = |a: usize, b: usize, c: usize| can_join(model, a, b, c);
            let go_on = enumerate(&component, &mut path, &joins, &mut cut, &mut |cycle| {
                search.seen.insert(cycle.to_vec());
                search.consider(cycle)
            });
            if !go_on {
                return search.done();
            }
        }
        // Chords left cycles out: an edge no potential deadlock covers
        // may still lie on one.
        cut |= search.found[before..]
            .iter()
            .any(|c| c.grade != Grade::Concurrent);
        if cut {
            // Cycles longer than the enumeration: the shortest through each
            // edge that no reported cycle covers yet.
            search.visits = 0;
            if !search.longer(&component, &sorted) {
                return search.done();
            }
            if search.found.len() == before && scc.len() > MAX_CYCLE_LEN {
                search.bounds.long_only.push(scc.len());
            }
        }
    }
    search.done()
}

/// The state of one analysis's cycle search.
struct Search<'a> {
    model: &'a Model,
    found: Vec<Cycle>,
    /// Cycles examined, as their node sets in rotation from the smallest.
    seen: HashSet<Vec<usize>>,
    examined: usize,
    visits: usize,
    bounds: Bounds,
}

impl Search<'_> {
    /// Examines one cycle; false once the search must stop.
    fn consider(&mut self, cycle: &[usize]) -> bool {
        self.examined += 1;
        if self.examined > MAX_CYCLES {
            self.bounds.truncated = true;
            return false;
        }
        if let Some((witness, grade)) = witness(self.model, cycle) {
            if !self
                .found
                .iter()
                .any(|f| within(&f.nodes, cycle, &f.grade, &grade))
            {
                self.found.push(Cycle {
                    nodes: cycle.to_vec(),
                    witness,
                    grade,
                });
            }
        }
        true
    }

    /// The shortest cycle through each edge of the component that no
    /// reported cycle of it goes through; false once a bound is hit.
    fn longer(&mut self, c: &Component, sorted: &[usize]) -> bool {
        let mut covered: HashSet<(usize, usize)> = HashSet::new();
        for cy in self.found.iter().filter(|c| c.grade == Grade::Concurrent) {
            let n = cy.nodes.len();
            covered.extend((0..n).map(|i| (cy.nodes[i], cy.nodes[(i + 1) % n])));
        }
        for &u in sorted {
            let mut outs: Vec<usize> = c.g.neighbors(c.idx[u]).map(|n| c.g[n]).collect();
            outs.sort_unstable();
            outs.dedup();
            for v in outs {
                if !c.members.contains(&v) || covered.contains(&(u, v)) {
                    continue;
                }
                let Some(path) = self.shortest_path(c, v, u) else {
                    if self.visits > MAX_BFS_VISITS {
                        // This set is too large to search through every
                        // edge: said as a set with long cycles only when
                        // none was found in it.
                        return true;
                    }
                    continue;
                };
                // The cycle u → v → … → u, rotated to start at its
                // smallest node (as the enumeration finds it).
                let mut cycle = vec![u];
                cycle.extend(path[..path.len() - 1].iter().copied());
                let m = (0..cycle.len()).min_by_key(|&i| cycle[i]).unwrap_or(0);
                cycle.rotate_left(m);
                if !self.seen.insert(cycle.clone()) {
                    // Examined already, valid or not.
                    covered.insert((u, v));
                    continue;
                }
                if !self.consider(&cycle) {
                    return false;
                }
                // Found, or left out as holding a reported cycle: its
                // edges need no search of their own.
                let n = cycle.len();
                covered.extend((0..n).map(|i| (cycle[i], cycle[(i + 1) % n])));
            }
        }
        true
    }

    /// Nodes of a shortest path from `from` to `to` inside the component
    /// (`from` first, `to` last), of at most `MAX_CYCLE_LEN` nodes.
    fn shortest_path(&mut self, c: &Component, from: usize, to: usize) -> Option<Vec<usize>> {
        let mut parent: HashMap<usize, usize> = HashMap::new();
        let mut depth: HashMap<usize, usize> = HashMap::new();
        let mut queue = VecDeque::from([from]);
        depth.insert(from, 1);
        while let Some(x) = queue.pop_front() {
            self.visits += 1;
            if self.visits > MAX_BFS_VISITS {
                return None;
            }
            if x == to {
                let mut path = vec![to];
                let mut y = to;
                while let Some(&p) = parent.get(&y) {
                    path.push(p);
                    y = p;
                }
                path.reverse();
                return Some(path);
            }
            let d = depth[&x];
            if d >= MAX_CYCLE_LEN - 1 {
                continue;
            }
            for n in c.g.neighbors(c.idx[x]) {
                let y = c.g[n];
                if c.members.contains(&y) && !depth.contains_key(&y) {
                    depth.insert(y, d + 1);
                    parent.insert(y, x);
                    queue.push_back(y);
                }
            }
        }
        None
    }

    fn done(mut self) -> (Vec<Cycle>, Bounds) {
        // A cycle found before a smaller one within it says nothing more.
        let all = std::mem::take(&mut self.found);
        let keep: Vec<bool> = all
            .iter()
            .map(|c| {
                !all.iter().any(|f| {
                    f.nodes.len() < c.nodes.len() && within(&f.nodes, &c.nodes, &f.grade, &c.grade)
                })
            })
            .collect();
        self.found = all
            .into_iter()
            .zip(keep)
            .filter_map(|(c, k)| k.then_some(c))
            .collect();
        (self.found, self.bounds)
    }
}

/// Whether cycle `small` (graded `small_grade`) makes `big` redundant: its
/// nodes are a strict subset of `big`'s, and `big` is graded no better.
fn within(small: &[usize], big: &[usize], small_grade: &Grade, big_grade: &Grade) -> bool {
    small.len() < big.len()
        && (small_grade == &Grade::Concurrent || big_grade != &Grade::Concurrent)
        && small.iter().all(|n| big.contains(n))
}

/// The graph one strongly connected set is searched in.
struct Component<'a> {
    g: &'a DiGraph<usize, ()>,
    idx: &'a [NodeIndex],
    members: &'a HashSet<usize>,
    edges: &'a crate::model::Edges,
}

impl Component<'_> {
    fn has_edge(&self, a: usize, b: usize) -> bool {
        self.edges.contains_key(&(a, b))
    }

    /// Whether `n` can extend `path` without a chord: no edge between it
    /// and a node of the path but the last (from which it comes) or the
    /// first (to which the cycle returns, once `n` closes it).
    fn chordless(&self, path: &[usize], n: usize) -> bool {
        let last = path.len() - 1;
        path[..last].iter().all(|&p| !self.has_edge(p, n))
            && path[1..].iter().all(|&p| !self.has_edge(n, p))
    }
}

/// Depth-first enumeration of the chordless cycles through `path[0]`
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
            if !c.chordless(path, n) {
                continue;
            }
            if path.len() >= SHORT_CYCLE_LEN {
                // A longer cycle may go on from here: found breadth-first.
                *cut = true;
                continue;
            }
            if path.len() >= 2 && c.has_edge(n, start) {
                // Only the cycle it closes has no chord.
                if joins(last, n, start) && joins(n, start, path[1]) {
                    path.push(n);
                    let go_on = on_cycle(path);
                    path.pop();
                    if !go_on {
                        return false;
                    }
                }
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
/// evidence of each, by different threads if b is a queue, whose modes
/// conflict at b. A necessary condition that prunes the search long before
/// the witness check.
fn can_join(model: &Model, a: usize, b: usize, c: usize) -> bool {
    let (Some(into), Some(out)) = (model.edges.get(&(a, b)), model.edges.get(&(b, c))) else {
        return false;
    };
    let node = &model.nodes[b];
    into.iter().any(|x| {
        out.iter().any(|y| {
            (node.is_lock() || !same_thread(x, y))
                && conflicts(model, node, x.wanted_mode, y.held_mode)
        })
    })
}

/// Whether the thread waiting for a lock in `wanted` mode is blocked by a
/// thread holding it in `held` mode.
pub(crate) fn conflicts(
    model: &Model,
    node: &Node,
    wanted: Option<Mode>,
    held: Option<Mode>,
) -> bool {
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

/// How strictly a witness's threads are chosen.
#[derive(Clone, Copy, PartialEq)]
enum Threads {
    /// A distinct thread per edge, and (lock-only) no two orders ordered
    /// by a thread start or join.
    Concurrent,
    /// Any threads (lock-only cycles: a serialized inversion).
    Any,
}

/// Finds one piece of evidence per edge that makes the cycle real, and
/// grades it.
fn witness(model: &Model, cycle: &[usize]) -> Option<(Vec<Evidence>, Grade)> {
    let n = cycle.len();
    if !cycle.iter().any(|&i| model.nodes[i].is_lock()) {
        return None;
    }
    let lock_only = cycle.iter().all(|&i| model.nodes[i].is_lock());
    let candidates: Vec<Evidences> = (0..n)
        .map(|i| model.edges.get(&(cycle[i], cycle[(i + 1) % n])))
        .collect::<Option<_>>()?;
    let w = Witness {
        model,
        cycle,
        lock_only,
        candidates: &candidates,
    };
    let mut chosen: Vec<&Evidence> = Vec::with_capacity(n);
    let mut steps = 0usize;
    if w.search(Threads::Concurrent, &mut chosen, &mut steps) {
        return Some((chosen.into_iter().cloned().collect(), Grade::Concurrent));
    }
    if !lock_only {
        return None;
    }
    chosen.clear();
    steps = 0;
    if !w.search(Threads::Any, &mut chosen, &mut steps) {
        return None;
    }
    let grade = Grade::Serialized(serialization(model, &chosen));
    Some((chosen.into_iter().cloned().collect(), grade))
}

/// Why the orders of a witness could not all be in force at once.
pub(crate) fn serialization(model: &Model, chosen: &[&Evidence]) -> Serialization {
    let mut s = Serialization {
        pid: chosen.first().map(|e| e.pid).unwrap_or(0),
        ..Serialization::default()
    };
    for (i, a) in chosen.iter().enumerate() {
        for b in &chosen[i + 1..] {
            if same_thread(a, b) {
                if !s.same_thread.contains(&(a.pid, a.tid)) {
                    s.same_thread.push((a.pid, a.tid));
                }
            } else if s.ordered_by.is_empty() {
                if let Some(path) = ordered(model, a, b) {
                    s.pid = a.pid;
                    s.ordered_by = path;
                }
            }
        }
    }
    s
}

/// The starts and joins that put one of two orders before the other, if
/// any (orders of different processes are never ordered here).
pub(crate) fn ordered(model: &Model, a: &Evidence, b: &Evidence) -> Option<Vec<Sync>> {
    if a.pid != b.pid || a.tid == b.tid {
        return None;
    }
    let threads = &model.processes.get(&a.pid)?.order;
    threads
        .before((a.tid, a.phase), (b.tid, b.phase))
        .or_else(|| threads.before((b.tid, b.phase), (a.tid, a.phase)))
}

/// One cycle's witness search.
struct Witness<'a> {
    model: &'a Model,
    cycle: &'a [usize],
    lock_only: bool,
    candidates: &'a [Evidences<'a>],
}

impl<'a> Witness<'a> {
    fn search(&self, threads: Threads, chosen: &mut Vec<&'a Evidence>, steps: &mut usize) -> bool {
        let (model, cycle) = (self.model, self.cycle);
        let i = chosen.len();
        let n = cycle.len();
        let strict = threads == Threads::Concurrent;
        if i == n {
            // The last edge's wanted mode against the first edge's held
            // mode, at the first node.
            let first = &model.nodes[cycle[0]];
            if !conflicts(model, first, chosen[n - 1].wanted_mode, chosen[0].held_mode) {
                return false;
            }
            if strict && same_thread(chosen[n - 1], chosen[0]) {
                return false;
            }
            return !self.lock_only || !gated(chosen);
        }
        for e in self.candidates[i].iter() {
            *steps += 1;
            if *steps > MAX_STEPS {
                return false;
            }
            if strict && self.lock_only {
                if chosen
                    .iter()
                    .any(|c| same_thread(c, e) || ordered(model, c, e).is_some())
                {
                    continue;
                }
            } else if strict && i > 0 && same_thread(chosen[i - 1], e) {
                continue;
            }
            if i > 0 {
                let node = &model.nodes[cycle[i]];
                if !conflicts(model, node, chosen[i - 1].wanted_mode, e.held_mode) {
                    continue;
                }
            }
            chosen.push(e);
            if self.search(threads, chosen, steps) {
                return true;
            }
            chosen.pop();
        }
        false
    }
}

fn same_thread(a: &Evidence, b: &Evidence) -> bool {
    a.pid == b.pid && a.tid == b.tid
}

/// Whether one lock was held across every edge (a gate: the threads can
/// never be inside the cycle at the same time).
pub(crate) fn gated(chosen: &[&Evidence]) -> bool {
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
            stack: None,
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
            phase: 0,
        }
    }

    fn meta(addr: u64, kind: LockKind, writer_preferring: bool) -> Record {
        Record::Lock {
            lock: lock(addr),
            kind,
            writer_preferring,
            recursive: false,
            file: None,
            init: None,
        }
    }

    fn cycles_of(records: Vec<Record>) -> Vec<Cycle> {
        let mut all = vec![Record::Header {
            version: TRACE_VERSION,
            pid: 10,
            ppid: 1,
            exe: "/x".into(),
            cmdline: vec![],
            call_clock_res_ns: None,
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

    fn same_thread_of(c: &Cycle) -> Vec<(u32, u32)> {
        match &c.grade {
            Grade::Serialized(s) => s.same_thread.clone(),
            Grade::Concurrent => panic!("graded concurrent: {c:?}"),
        }
    }

    #[test]
    fn abba_by_one_thread_is_a_serialized_inversion() {
        let c = cycles_of(vec![order(1, &[(A, W)], B, W), order(1, &[(B, W)], A, W)]);
        assert_eq!(c.len(), 1);
        assert_eq!(same_thread_of(&c[0]), vec![(10, 1)]);
        // The same with another thread on one side could deadlock.
        let c = cycles_of(vec![
            order(1, &[(A, W)], B, W),
            order(1, &[(B, W)], A, W),
            order(2, &[(B, W)], A, W),
        ]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].grade, Grade::Concurrent);
    }

    #[test]
    fn orders_separated_by_a_thread_start_are_serialized() {
        let start = Record::ThreadStart {
            tid: 2,
            parent: 1,
            seq: 0,
            handle: 7,
            stack: None,
        };
        let mut late = order(1, &[(A, W)], B, W);
        if let Record::LockOrder { phase, .. } = &mut late {
            *phase = 1;
        }
        // Main takes A then B before it starts the worker, which takes B
        // then A.
        let c = cycles_of(vec![
            order(1, &[(A, W)], B, W),
            start.clone(),
            order(2, &[(B, W)], A, W),
        ]);
        assert_eq!(c.len(), 1);
        let Grade::Serialized(s) = &c[0].grade else {
            panic!("{c:?}")
        };
        assert!(s.same_thread.is_empty());
        assert_eq!(s.ordered_by, vec![Sync::Start { thread: 2, by: 1 }]);
        // After the start, the same order overlaps the worker's.
        let c = cycles_of(vec![late, start, order(2, &[(B, W)], A, W)]);
        assert_eq!(c[0].grade, Grade::Concurrent);
    }

    #[test]
    fn a_ring_of_any_length_with_a_thread_per_edge_is_found() {
        for n in [9u64, 20, 64, 300] {
            let recs = (0..n)
                .map(|i| {
                    order(
                        i as u32 + 1,
                        &[(0x1000 + i * 64, W)],
                        0x1000 + (i + 1) % n * 64,
                        W,
                    )
                })
                .collect();
            let c = cycles_of(recs);
            assert_eq!(c.len(), 1, "ring of {n}");
            assert_eq!(c[0].nodes.len(), n as usize);
            assert_eq!(c[0].grade, Grade::Concurrent);
        }
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
            phase: 0,
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
    fn a_three_lock_cycle_with_two_threads_is_serialized() {
        let c = cycles_of(vec![
            order(1, &[(A, W)], B, W),
            order(2, &[(B, W)], C, W),
            order(2, &[(C, W)], A, W),
        ]);
        assert_eq!(c.len(), 1);
        assert_eq!(same_thread_of(&c[0]), vec![(10, 2)]);
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
