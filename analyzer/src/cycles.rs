//! Finding the cycles of the wait-for graph that can really happen.
//!
//! Strongly connected components come from petgraph; inside each, elementary
//! cycles are enumerated (each once, from its smallest node, bounded in
//! length and number). A cycle is reported only if a *witness* exists: one
//! piece of evidence per edge such that
//! - a lock-only cycle involves two or more distinct threads, one per edge;
//! - no gate lock is held across every edge of a lock-only cycle;
//! - at every lock node the wanted mode conflicts with the held mode (read
//!   against read conflicts only on a writer-preferring rwlock);
//! - trylock acquisitions never form edges (they are left out of the model).

use crate::model::{Evidence, Model, Node};
use holdcheck_format::{LockRef, Mode};
use petgraph::algo::tarjan_scc;
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

/// Every valid cycle of the model, and whether a bound cut the search.
pub fn find(model: &Model) -> (Vec<Cycle>, bool) {
    let mut g: DiGraph<usize, ()> = DiGraph::new();
    let idx: Vec<NodeIndex> = (0..model.nodes.len()).map(|i| g.add_node(i)).collect();
    for &(a, b) in model.edges.keys() {
        g.add_edge(idx[a], idx[b], ());
    }
    let mut found = Vec::new();
    let mut examined = 0usize;
    let mut truncated = false;
    for scc in tarjan_scc(&g) {
        if scc.len() < 2 {
            continue;
        }
        let members: HashSet<usize> = scc.iter().map(|n| g[*n]).collect();
        let mut sorted: Vec<usize> = members.iter().copied().collect();
        sorted.sort_unstable();
        for &start in &sorted {
            let mut path = vec![start];
            enumerate(&g, &idx, &members, start, &mut path, &mut |cycle| {
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
                return (found, true);
            }
        }
    }
    (found, truncated)
}

/// Depth-first enumeration of the elementary cycles through `start` whose
/// other nodes are all greater than it (so each cycle is found once).
fn enumerate(
    g: &DiGraph<usize, ()>,
    idx: &[NodeIndex],
    members: &HashSet<usize>,
    start: usize,
    path: &mut Vec<usize>,
    on_cycle: &mut dyn FnMut(&[usize]) -> bool,
) -> bool {
    let last = *path.last().expect("path starts with start");
    let mut next: Vec<usize> = g.neighbors(idx[last]).map(|n| g[n]).collect();
    next.sort_unstable();
    next.dedup();
    for n in next {
        if n == start {
            if path.len() >= 2 && !on_cycle(path) {
                return false;
            }
        } else if n > start
            && members.contains(&n)
            && !path.contains(&n)
            && path.len() < MAX_CYCLE_LEN
        {
            path.push(n);
            let go_on = enumerate(g, idx, members, start, path, on_cycle);
            path.pop();
            if !go_on {
                return false;
            }
        }
    }
    true
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
        return !lock_only || !gated(chosen);
    }
    for e in candidates[i].iter() {
        *steps += 1;
        if *steps > MAX_STEPS {
            return false;
        }
        if lock_only && chosen.iter().any(|c| c.pid == e.pid && c.tid == e.tid) {
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
