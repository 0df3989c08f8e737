//! Lock classes, as lockdep has them: the locks of one array, or made by
//! one init call (or first held at one site, for a lock no init made), are
//! one class. Two threads that nest two locks of one class in opposite
//! address orders can deadlock on one pair, even when in this run they
//! never took the same pair: the instance graph has no cycle, the class
//! has one through itself. A class whose pairs are always taken in one
//! address order (a hash table that locks the lower of two buckets first)
//! is ordered, and silent; so is one whose pairs are nested under a gate.
//! A class of locks made at one init site or first held at one site must
//! show both orders at the same two lock calls of one function (code that
//! nests whatever its caller passes, `transfer(a, b)`): such a site may be
//! a lock wrapper's constructor that makes every lock of a program (a
//! JVM's `PlatformMonitor`), nested through the wrappers by rank, not by
//! address.

use crate::cycles::{self, Cycle, Grade};
use crate::model::{Evidence, Model, Node, Relation};
use holdcheck_format::LockRef;
use std::collections::{BTreeMap, HashMap, HashSet};

/// What makes locks one class.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ClassKey {
    /// The elements of one array variable (`stripes[3]`).
    Array { pid: u32, base: String },
    /// Made by the init call that returns to `site`.
    Init { pid: u32, site: u64 },
    /// First held at `site`, no init seen.
    FirstHeld { pid: u32, site: u64 },
}

/// A lock's class, if it has one other locks can share (a lock in a plain
/// variable, or a file lock, is only itself).
pub fn class_of(model: &Model, pid: u32, lock: LockRef) -> Option<ClassKey> {
    if lock.is_file() {
        return None;
    }
    if let Some(name) = model.lock_names.get(&(pid, lock.addr)) {
        let (base, _) = name.split_once('[')?;
        return Some(ClassKey::Array {
            pid,
            base: base.to_string(),
        });
    }
    let p = model.processes.get(&pid)?;
    if let Some(site) = p.locks.get(&lock).and_then(|m| m.init) {
        return Some(ClassKey::Init { pid, site });
    }
    p.first_held_at
        .get(&lock)
        .map(|&site| ClassKey::FirstHeld { pid, site })
}

/// Two locks of one class nested in opposite address orders.
pub struct ClassInversion {
    pub class: ClassKey,
    /// Its nodes are the ascending pair's locks (lower, then higher); its
    /// witness is the ascending order, then the descending one.
    pub cycle: Cycle,
    /// The locks the witness's threads took in each role.
    pub lower: Vec<LockRef>,
    pub higher: Vec<LockRef>,
    /// Each witness order's own held and wanted nodes.
    pub taken: [(usize, usize); 2],
}

/// An order between two locks of one class: the evidence, the held node
/// and the wanted node.
type Nested<'a> = (&'a Evidence, usize, usize);

/// The classes with two or more locks in one of these cycles: their
/// inversion is that cycle, reported with its own locks.
pub fn covered(model: &Model, cycles: &[Cycle]) -> HashSet<ClassKey> {
    let mut out = HashSet::new();
    for c in cycles {
        let mut seen = HashSet::new();
        for &n in &c.nodes {
            if let Node::Lock { pid, lock } = &model.nodes[n] {
                if let Some(k) = class_of(model, *pid, *lock) {
                    if !seen.insert(k.clone()) {
                        out.insert(k);
                    }
                }
            }
        }
    }
    out
}

/// Most orders of one thread, one class and one pair of calls looked at
/// (a million facts of one class must not make a trillion pairs).
const PER_THREAD: usize = 8;

/// Two orders of a class, one ascending and one descending, that could
/// deadlock: at the same two calls of one function (unless an array's),
/// under no common gate, in conflicting modes; by two threads that could
/// overlap (`Concurrent`), else by any (a serialized inversion).
fn witness<'a>(
    model: &Model,
    array: bool,
    up: &[Nested<'a>],
    down: &[Nested<'a>],
    one_function: &mut dyn FnMut(u32, u64, u64) -> bool,
) -> Option<((Nested<'a>, Nested<'a>), Grade)> {
    // By the calls that took them (any, for an array), a few per thread.
    type Calls = (Option<u64>, Option<u64>);
    let calls = |e: &Evidence| -> Calls {
        if array {
            return (None, None);
        }
        let site = model
            .processes
            .get(&e.pid)
            .and_then(|p| p.stacks.get(&e.stack))
            .and_then(|s| s.first().copied());
        (e.held_site, site)
    };
    let mut groups: BTreeMap<Calls, (Vec<Nested>, Vec<Nested>)> = BTreeMap::new();
    for (side, list) in [(0, up), (1, down)] {
        let mut per: HashMap<(Calls, u32, u32), usize> = HashMap::new();
        for n in list {
            let k = calls(n.0);
            let c = per.entry((k, n.0.pid, n.0.tid)).or_default();
            if *c < PER_THREAD {
                *c += 1;
                let g = groups.entry(k).or_default();
                if side == 0 { &mut g.0 } else { &mut g.1 }.push(*n);
            }
        }
    }
    let real = |u: &Nested, d: &Nested| {
        let (lower, higher) = (&model.nodes[u.1], &model.nodes[u.2]);
        !cycles::gated(&[u.0, d.0])
            && cycles::conflicts(model, lower, d.0.wanted_mode, u.0.held_mode)
            && cycles::conflicts(model, higher, u.0.wanted_mode, d.0.held_mode)
    };
    let concurrent = |u: &Nested, d: &Nested| {
        (u.0.pid, u.0.tid) != (d.0.pid, d.0.tid) && cycles::ordered(model, u.0, d.0).is_none()
    };
    let mut serialized = None;
    for ((held, wanted), (ups, downs)) in &groups {
        if ups.is_empty() || downs.is_empty() {
            continue;
        }
        if !array {
            let (Some(held), Some(wanted)) = (*held, *wanted) else {
                continue;
            };
            let pid = ups[0].0.pid;
            if held == wanted || !one_function(pid, held, wanted) {
                continue;
            }
        }
        for u in ups {
            for d in downs {
                if !real(u, d) {
                    continue;
                }
                if concurrent(u, d) {
                    return Some(((*u, *d), Grade::Concurrent));
                }
                serialized.get_or_insert((*u, *d));
            }
        }
    }
    serialized.map(|(u, d)| {
        let s = cycles::serialization(model, &[u.0, d.0]);
        ((u, d), Grade::Serialized(s))
    })
}

/// Every class nested both ways, with a witness: two threads whose orders
/// could overlap, under no common gate, in conflicting modes (else the
/// same thread's or start/join-ordered orders: a serialized inversion).
/// A class a reported cycle covers is left to it.
/// `one_function` says whether two code addresses of a process are in one
/// function (symbols are the caller's).
pub fn same_class_inversions(
    model: &Model,
    covered: &HashSet<ClassKey>,
    one_function: &mut dyn FnMut(u32, u64, u64) -> bool,
) -> Vec<ClassInversion> {
    // Each lock node's class, once (a million edges share their nodes).
    let mut ids: HashMap<ClassKey, usize> = HashMap::new();
    let mut keys: Vec<ClassKey> = Vec::new();
    let node_class: Vec<Option<usize>> = model
        .nodes
        .iter()
        .map(|n| match n {
            Node::Lock { pid, lock } => class_of(model, *pid, *lock).map(|k| {
                *ids.entry(k.clone()).or_insert_with(|| {
                    keys.push(k);
                    keys.len() - 1
                })
            }),
            Node::Queue { .. } => None,
        })
        .collect();
    let mut by_class: BTreeMap<usize, (Vec<Nested>, Vec<Nested>)> = BTreeMap::new();
    for ((a, b), evidence) in model.edges.iter() {
        let (Some(class), Some(other)) = (node_class[a], node_class[b]) else {
            continue;
        };
        let (Node::Lock { lock: la, .. }, Node::Lock { lock: lb, .. }) =
            (&model.nodes[a], &model.nodes[b])
        else {
            continue;
        };
        // A class is one process's (its key holds the pid).
        if class != other || la.addr == lb.addr {
            continue;
        }
        let (up, down) = by_class.entry(class).or_default();
        let side = if la.addr < lb.addr { up } else { down };
        side.extend(
            evidence
                .iter()
                .filter(|e| e.relation == Relation::LockOrder)
                .map(|e| (e, a, b)),
        );
    }
    let mut out = Vec::new();
    for (id, (up, down)) in by_class {
        let class = keys[id].clone();
        if up.is_empty() || down.is_empty() || covered.contains(&class) {
            continue;
        }
        // One pair taken both ways is an ordinary cycle of two locks: the
        // instance graph reports it.
        let pairs: HashSet<(usize, usize)> = up.iter().map(|&(_, a, b)| (a, b)).collect();
        if down.iter().any(|&(_, a, b)| pairs.contains(&(b, a))) {
            continue;
        }
        let array = matches!(class, ClassKey::Array { .. });
        let Some(((u, d), grade)) = witness(model, array, &up, &down, one_function) else {
            continue;
        };
        let lock = |node: usize| match &model.nodes[node] {
            Node::Lock { lock, .. } => Some(*lock),
            Node::Queue { .. } => None,
        };
        // The ascending pair's locks, then the descending pair's.
        let lower: Vec<LockRef> = [u.1, d.2].into_iter().filter_map(lock).collect();
        let higher: Vec<LockRef> = [u.2, d.1].into_iter().filter_map(lock).collect();
        out.push(ClassInversion {
            class,
            cycle: Cycle {
                nodes: vec![u.1, u.2],
                witness: vec![u.0.clone(), d.0.clone()],
                grade,
            },
            lower,
            higher,
            taken: [(u.1, u.2), (d.1, d.2)],
        });
    }
    out
}
