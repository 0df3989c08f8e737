//! The wait-for analysis of a snapshot of threads: who holds which lock, who
//! waits for what (a lock, or a call on a kernel queue), and from that the
//! deadlocks, stalls and stalled calls. One engine, two sources of state: the
//! shim's watchdog (published thread state, inside the process) and
//! `holdcheck inspect` (/proc and the process's memory, from outside).
//!
//! - `deadlock`: threads that wait on each other in a cycle, through locks
//!   and kernel queues; a thread is stuck only when everything it waits for
//!   is stuck (every conflicting holder, every drainer or feeder of its
//!   queue); a queue moving in the other direction, or with an end unknown
//!   here, is never called stuck;
//! - `stall`: a lock-wait chain older than the threshold, with its root (the
//!   holder at the head) and what that root is blocked on;
//! - `stalled-call`: a call older than the threshold made while holding a
//!   lock, or waiting for a reply to a request sent on the same socket. An
//!   idle thread in `recv` holding nothing is normal and never reported.

pub mod sockdiag;
pub mod syscall;

use holdcheck_format::{
    mix, Channel, Direction, Held, LockKind, LockRef, Mode, Observed, ObservedEdge, ObservedNode,
    ObservedThread, Waiting,
};
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// What the analysis asks of the place the snapshot came from.
pub trait Env {
    /// Whether the rwlock at `addr` is writer-preferring (asked only of a
    /// lock some thread holds, so it is alive).
    fn writer_preferring(&self, addr: u64, kind: LockKind) -> bool;
    /// The identity (generation) of the lock at `addr`.
    fn lock_ref(&self, addr: u64) -> LockRef;
    fn thread_name(&self, tid: u32) -> String;
    /// What a thread with no wait of its own is blocked in, if the place
    /// knows (inspect: the system call), so it is not called running.
    fn blocked_in(&self, _tid: u32) -> Option<String> {
        None
    }
    /// The address of the lock at `addr` as the program knows it (inspect
    /// keys the locks of several processes apart in the snapshot).
    fn program_addr(&self, addr: u64) -> u64 {
        addr
    }
}

/// A lock a thread holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct HeldLock {
    pub addr: u64,
    pub mode: Mode,
    pub kind: LockKind,
    /// Return address of the acquisition, 0 when unknown.
    pub site: u64,
}

/// One thread of the snapshot.
#[derive(Clone, Debug)]
pub struct Snap {
    pub tid: u32,
    pub held: Vec<HeldLock>,
    /// What it waits for; None while it runs.
    pub wait: Option<Wait>,
    /// When the wait began (ns, on the clock of `now`); 0 if not waiting.
    pub since: u64,
    /// Stack id of the wait in the trace, 0 if none.
    pub stack: u64,
    /// Its wait ends by itself at a deadline (a timed lock, as its system
    /// call's arguments say): never stuck for ever, so no deadlock; a
    /// long one is a stall.
    pub timed: bool,
}

/// What a thread waits for.
#[derive(Clone, Debug, PartialEq)]
pub enum Wait {
    Lock {
        addr: u64,
        kind: LockKind,
        mode: Mode,
    },
    Call {
        call: String,
        channel: Channel,
        dir: Direction,
        reply: bool,
    },
}

/// A finding, with a key that stays the same while the same threads wait
/// the same waits (so it is reported once).
pub struct Finding {
    pub key: u64,
    pub observed: Observed,
}

fn conflicts(wanted: Mode, held: Mode) -> bool {
    wanted == Mode::Write || held == Mode::Write
}

fn writer_preferring(env: &dyn Env, addr: u64, kind: LockKind, snap: &[Snap]) -> bool {
    // Read the kind only while some thread holds the lock (it is alive).
    kind == LockKind::Rwlock
        && snap.iter().any(|s| s.held.iter().any(|h| h.addr == addr))
        && env.writer_preferring(addr, kind)
}

/// Why a waiting thread waits for another: the thread index and relation.
type Succ = Vec<(usize, &'static str)>;

/// The live wait-for graph: for each waiting thread, whom it waits for, or
/// None when it can go on by itself (the other end of its queue is waiting
/// too, or is outside this process).
fn successors(env: &dyn Env, snap: &[Snap], users: &ChannelUsers) -> Vec<Option<Succ>> {
    snap.iter()
        .map(|s| match &s.wait {
            None => None,
            Some(Wait::Lock { addr, kind, mode }) => {
                let mut v: Succ = Vec::new();
                // The waiting thread itself may be a holder: a default mutex
                // locked again, or a write lock asked for under its own read
                // lock, waits for ever. (A recursive mutex never waits, and
                // glibc fails the other self-relocks with EDEADLK at once, so
                // their wait never grows old.)
                for (j, o) in snap.iter().enumerate() {
                    if o.held.iter().any(|h| h.addr == *addr && conflicts(*mode, h.mode)) {
                        v.push((j, "holds"));
                    }
                }
                if *mode == Mode::Read && writer_preferring(env, *addr, *kind, snap) {
                    for (j, o) in snap.iter().enumerate() {
                        if matches!(&o.wait, Some(Wait::Lock { addr: a, mode: Mode::Write, .. }) if a == addr) {
                            v.push((j, "waits-behind"));
                        }
                    }
                }
                (!v.is_empty()).then_some(v)
            }
            Some(Wait::Call { channel, dir, .. }) => {
                // Room appears only if a receiver drains; data only if a
                // sender feeds. If one of them is itself waiting on the
                // other side of this queue, the queue is moving.
                let opposite = dir.opposite();
                let moving = snap.iter().any(|o| {
                    matches!(&o.wait, Some(Wait::Call { channel: c, dir: d, .. }) if c == channel && *d == opposite)
                });
                if moving {
                    return None;
                }
                let others = users.of(channel, opposite);
                let v: Succ = snap
                    .iter()
                    .enumerate()
                    .filter(|(_, o)| others.contains(&o.tid))
                    .map(|(j, _)| {
                        (
                            j,
                            match (channel, dir) {
                                (Channel::Thread { .. }, _) => "ends",
                                (Channel::Barrier { .. }, _) => "arrives",
                                (_, Direction::Send) => "drains",
                                (_, Direction::Recv) => "feeds",
                            },
                        )
                    })
                    .collect();
                // Every other party must be a thread we see; an unknown one
                // (another process) might still act.
                (!v.is_empty() && v.len() == others.len()).then_some(v)
            }
        })
        .collect()
}

/// Whether `s`'s wait is for parties known to be all who can end it: the
/// holders of a lock, the thread a join waits for, the users of a queue
/// when they are every thread that can use it. The feeders of a condition
/// variable or a pipe seen so far are not: a thread that never signalled
/// it may (a worker that signalled "up" once, then waits on the same
/// condition variable for work, is its own only feeder until the main
/// thread first signals it).
fn known_parties(s: &Snap, users: &ChannelUsers) -> bool {
    match &s.wait {
        Some(Wait::Call {
            channel: Channel::Thread { .. },
            ..
        }) => true,
        Some(Wait::Call { channel, dir, .. }) => users
            .exhaustive
            .contains(&(channel.clone(), dir.opposite())),
        _ => true,
    }
}

/// The stuck threads (of `stuck`, where every successor of a stuck thread
/// is stuck) that wait, directly or not, on a cycle with a wait on known
/// parties in it (see [`known_parties`]). A cycle made only of queues
/// whose other ends are the threads seen using them (threads that each
/// wait on a condition variable the other signalled) may be ended by a
/// thread not seen yet: a hang, told as such when the run ends, never a
/// deadlock (which ends the program).
fn anchored(
    snap: &[Snap],
    succ: &[Option<Succ>],
    stuck: &[bool],
    users: &ChannelUsers,
) -> Vec<bool> {
    use petgraph::graph::{DiGraph, NodeIndex};
    let mut g = DiGraph::<usize, ()>::new();
    let nodes: Vec<NodeIndex> = (0..snap.len()).map(|i| g.add_node(i)).collect();
    for (i, v) in succ.iter().enumerate().filter(|(i, _)| stuck[*i]) {
        for (j, _) in v.iter().flatten() {
            g.add_edge(nodes[i], nodes[*j], ());
        }
    }
    // Components come sinks first (petgraph's Tarjan gives them in reverse
    // topological order): what a component waits on is settled before it.
    // An edge inside a component closes a cycle; one from a wait on known
    // parties makes it sure.
    let mut component = vec![usize::MAX; snap.len()];
    let mut reaches_sure: Vec<bool> = Vec::new();
    for (k, scc) in petgraph::algo::tarjan_scc(&g).iter().enumerate() {
        for n in scc {
            component[g[*n]] = k;
        }
        let mut sure = false;
        // (A thread not stuck has no edge here, and adds nothing.)
        for i in scc.iter().map(|n| g[*n]).filter(|&i| stuck[i]) {
            for (j, _) in succ[i].iter().flatten() {
                sure |= if component[*j] == k {
                    known_parties(&snap[i], users)
                } else {
                    reaches_sure[component[*j]]
                };
            }
        }
        reaches_sure.push(sure);
    }
    (0..snap.len())
        .map(|i| stuck[i] && reaches_sure[component[i]])
        .collect()
}

/// Who uses each channel, by tid: the threads that receive from it (its
/// drainers) and that send to it (its feeders).
#[derive(Default, Debug, Clone)]
pub struct ChannelUsers {
    pub recv: BTreeMap<Channel, BTreeSet<u32>>,
    pub send: BTreeMap<Channel, BTreeSet<u32>>,
    /// The (channel, direction) whose users are every thread that can use
    /// it that way (the only thread left holding a pipe's end), not only
    /// those seen to: see [`analyse`].
    pub exhaustive: BTreeSet<(Channel, Direction)>,
}

impl ChannelUsers {
    fn of(&self, c: &Channel, dir: Direction) -> BTreeSet<u32> {
        // A thread's end comes from that thread alone.
        if let (Channel::Thread { tid, .. }, Direction::Send) = (c, dir) {
            return BTreeSet::from([*tid]);
        }
        let m = if dir == Direction::Recv {
            &self.recv
        } else {
            &self.send
        };
        m.get(c).cloned().unwrap_or_default()
    }
}

fn age_ms(s: &Snap, now: u64) -> u64 {
    if s.since == 0 {
        0
    } else {
        now.saturating_sub(s.since) / 1_000_000
    }
}

/// Finds what to report in one snapshot of the threads: deadlocks, stalls
/// and stalled calls. `now` is on the clock of the snapshot's `since`
/// values; waits younger than `interval_ms` are never called stuck.
pub fn analyse(
    env: &dyn Env,
    snap: &[Snap],
    users: &ChannelUsers,
    now: u64,
    interval_ms: u64,
    stall_ms: u64,
) -> Vec<Finding> {
    let succ = successors(env, snap, users);
    // Stuck: waiting at least an interval, and everything waited for is
    // stuck too (greatest fixpoint), and held up by a cycle that is known
    // to be one (see `anchored`).
    let mut stuck: Vec<bool> = (0..snap.len())
        .map(|i| succ[i].is_some() && !snap[i].timed && age_ms(&snap[i], now) >= interval_ms)
        .collect();
    loop {
        loop {
            let mut changed = false;
            for i in 0..snap.len() {
                if stuck[i]
                    && succ[i]
                        .as_ref()
                        .is_some_and(|v| v.iter().any(|(j, _)| !stuck[*j]))
                {
                    stuck[i] = false;
                    changed = true;
                }
            }
            if !changed {
                break;
            }
        }
        let known = anchored(snap, &succ, &stuck, users);
        if known == stuck {
            break;
        }
        stuck = known;
    }
    let mut out = Vec::new();
    let mut in_cycle: HashSet<usize> = HashSet::new();
    for start in 0..snap.len() {
        if !stuck[start] || in_cycle.contains(&start) {
            continue;
        }
        // Follow first successors inside the stuck set until one repeats.
        let mut path = vec![start];
        let cycle = loop {
            let cur = *path.last().unwrap();
            // A thread waiting for a lock first: a cycle through a lock
            // says who holds what (any successor closes some cycle, as
            // all of them are stuck).
            let v = succ[cur].as_ref().unwrap();
            let next = v
                .iter()
                .find(|(j, _)| matches!(snap[*j].wait, Some(Wait::Lock { .. })))
                .unwrap_or(&v[0])
                .0;
            if let Some(pos) = path.iter().position(|&p| p == next) {
                break path[pos..].to_vec();
            }
            path.push(next);
        };
        if cycle.iter().any(|i| in_cycle.contains(i)) {
            continue;
        }
        in_cycle.extend(cycle.iter().copied());
        let victims: Vec<usize> = (0..snap.len())
            .filter(|i| stuck[*i] && !cycle.contains(i))
            .collect();
        out.push(deadlock(env, snap, &succ, &cycle, &victims, now));
    }

    // Stalls: lock waits whose chain ends at a thread that is not stuck in
    // a cycle (the root holder). Every waiter behind a root counts; the
    // stall is reported once the oldest of them passes the threshold.
    let mut roots: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..snap.len() {
        if stuck[i] || !matches!(snap[i].wait, Some(Wait::Lock { .. })) {
            continue;
        }
        let mut cur = i;
        let mut path = vec![i];
        while let Some(Some(v)) = succ.get(cur).map(|s| s.as_ref()) {
            if !matches!(snap[cur].wait, Some(Wait::Lock { .. })) {
                break;
            }
            let next = v.iter().find(|(_, r)| *r == "holds").unwrap_or(&v[0]).0;
            if let Some(pos) = path.iter().position(|&p| p == next) {
                // A cycle of waits none of them stuck (a timed one ends
                // it): one of its threads stands as the root of them all.
                cur = *path[pos..].iter().min().expect("a cycle has a thread");
                break;
            }
            path.push(next);
            cur = next;
        }
        if cur != i && !stuck[cur] {
            roots.entry(cur).or_default().push(i);
        }
    }
    roots.retain(|_, waiters| waiters.iter().any(|&w| age_ms(&snap[w], now) >= stall_ms));
    let mut stall_roots = HashSet::new();
    for (root, waiters) in roots {
        stall_roots.insert(root);
        out.push(stall(env, snap, root, &waiters, now));
    }

    // Stalled calls: a call waiting past the threshold holding a lock or
    // awaiting a reply. A holder that others already wait for becomes a
    // stall's root once their waits are old enough: reported there, once.
    for (i, s) in snap.iter().enumerate() {
        let has_waiters = succ.iter().flatten().any(|v| {
            v.iter()
                .any(|(j, r)| *j == i && (*r == "holds" || *r == "waits-behind"))
        });
        if stuck[i] || stall_roots.contains(&i) || has_waiters || age_ms(s, now) < stall_ms {
            continue;
        }
        if let Some(Wait::Call { reply, .. }) = &s.wait {
            if *reply || !s.held.is_empty() {
                out.push(stalled_call(env, s, now));
            }
        }
    }
    out
}

/// A thread that exited holding a lock (its name empty when not known).
pub struct ExitedOwner {
    pub tid: u32,
    /// Its process, when it is not the snapshot's own.
    pub pid: Option<u32>,
    pub name: String,
    pub mode: Mode,
    /// Return address of its acquisition, 0 when unknown.
    pub site: u64,
}

/// `s` waits for a lock whose owner exited holding it: nobody can ever
/// release it, so the wait is a deadlock, the owner's exit its cause.
/// None when `s` waits for no lock.
pub fn orphan_wait(env: &dyn Env, s: &Snap, now: u64, owner: &ExitedOwner) -> Option<Finding> {
    let Some(Wait::Lock { addr, kind, .. }) = &s.wait else {
        return None;
    };
    let lock = env.lock_ref(*addr);
    let waiter = observed_thread(env, s, now);
    let named = |tid: u32, name: &str| match name {
        "" => format!("T{tid}"),
        n => format!("T{tid} \"{n}\""),
    };
    let title = format!(
        "{} waits for ever for {} {:#x}: its owner {} exited holding it",
        named(s.tid, &waiter.name),
        kind.as_str(),
        env.program_addr(*addr),
        named(owner.tid, &owner.name),
    );
    let gone = ObservedThread {
        tid: owner.tid,
        pid: owner.pid,
        name: match owner.name.as_str() {
            "" => "(exited)".to_string(),
            n => format!("{n} (exited)"),
        },
        held: vec![Held {
            lock,
            mode: owner.mode,
            site: owner.site,
            stack: None,
        }],
        waiting: Some(Waiting::Other {
            what: holdcheck_format::EXITED.into(),
        }),
        waited_ms: 0,
        stack: None,
    };
    Some(Finding {
        key: mix(mix(0x0e1, s.tid as u64), s.since) ^ owner.tid as u64,
        observed: Observed {
            kind: "deadlock".into(),
            title,
            nodes: vec![ObservedNode::Lock {
                pid: None,
                lock,
                kind: *kind,
                mode: owner.mode,
            }],
            // No cycle: the owner's exit is what the wait waits on.
            edges: vec![ObservedEdge {
                from: 0,
                to: 0,
                tid: owner.tid,
                relation: "exited-holding".into(),
            }],
            threads: vec![waiter, gone],
            waiters: 0,
        },
    })
}

fn held_of(env: &dyn Env, h: &HeldLock) -> Held {
    Held {
        lock: env.lock_ref(h.addr),
        mode: h.mode,
        site: h.site,
        stack: None,
    }
}

pub fn observed_thread(env: &dyn Env, s: &Snap, now: u64) -> ObservedThread {
    ObservedThread {
        tid: s.tid,
        pid: None,
        name: env.thread_name(s.tid),
        held: s.held.iter().map(|h| held_of(env, h)).collect(),
        waiting: match &s.wait {
            None => env.blocked_in(s.tid).map(|what| Waiting::Other { what }),
            Some(w) => Some(match w {
                Wait::Lock { addr, kind, mode } => Waiting::Lock {
                    lock: env.lock_ref(*addr),
                    kind: *kind,
                    mode: *mode,
                },
                Wait::Call {
                    call,
                    channel,
                    dir,
                    reply,
                } => Waiting::Call {
                    call: call.to_string(),
                    channel: channel.clone(),
                    direction: *dir,
                    awaiting_reply: *reply,
                },
            }),
        },
        waited_ms: age_ms(s, now),
        stack: (s.stack != 0).then_some(s.stack),
    }
}

/// The resource a waiting thread waits for, as a node; for a lock, in the
/// mode `holder` holds it.
fn resource(env: &dyn Env, s: &Snap, holder: &Snap) -> ObservedNode {
    match s.wait.as_ref().expect("a waiting thread") {
        Wait::Lock { addr, kind, mode } => ObservedNode::Lock {
            pid: None,
            lock: env.lock_ref(*addr),
            kind: *kind,
            mode: holder
                .held
                .iter()
                .find(|h| h.addr == *addr)
                .map_or(*mode, |h| h.mode),
        },
        Wait::Call { channel, dir, .. } => ObservedNode::Channel {
            channel: channel.clone(),
            direction: *dir,
        },
    }
}

fn key_of(kind: &str, parts: impl IntoIterator<Item = (u32, u64)>) -> u64 {
    let mut h = mix(0x9e37, kind.len() as u64 ^ kind.as_bytes()[0] as u64);
    let mut parts: Vec<(u32, u64)> = parts.into_iter().collect();
    parts.sort_unstable();
    for (t, s) in parts {
        h = mix(mix(h, t as u64), s);
    }
    h
}

fn deadlock(
    env: &dyn Env,
    snap: &[Snap],
    succ: &[Option<Succ>],
    cycle: &[usize],
    victims: &[usize],
    now: u64,
) -> Finding {
    // Start at a lock, if there is one: it reads best.
    let n = cycle.len();
    let first = (0..n)
        .find(|&k| matches!(snap[cycle[k]].wait, Some(Wait::Lock { .. })))
        .unwrap_or(0);
    let order: Vec<usize> = (0..n).map(|k| cycle[(first + k) % n]).collect();
    // Node k: what thread order[k] waits for (held by order[k+1]).
    let nodes: Vec<ObservedNode> = (0..n)
        .map(|k| resource(env, &snap[order[k]], &snap[order[(k + 1) % n]]))
        .collect();
    // Edge k-1 → k is thread order[k]: it holds (drains, feeds) node k-1
    // and waits for node k.
    let edges: Vec<ObservedEdge> = (0..n)
        .map(|k| {
            let prev = (k + n - 1) % n;
            let relation = match (&nodes[prev], &nodes[k]) {
                (ObservedNode::Lock { .. }, ObservedNode::Lock { .. }) => {
                    let waits_behind = succ[order[prev]].as_ref().is_some_and(|v| {
                        v.iter()
                            .any(|(j, r)| *j == order[k] && *r == "waits-behind")
                    });
                    if waits_behind {
                        "waits-behind"
                    } else {
                        "lock-order"
                    }
                }
                (ObservedNode::Lock { .. }, ObservedNode::Channel { .. }) => "held-across-call",
                (
                    ObservedNode::Channel {
                        channel: Channel::Thread { .. },
                        ..
                    },
                    _,
                ) => "thread-end",
                (
                    ObservedNode::Channel {
                        channel: Channel::Barrier { .. },
                        ..
                    },
                    _,
                ) => "barrier-arrival",
                (
                    ObservedNode::Channel {
                        direction: Direction::Send,
                        ..
                    },
                    _,
                ) => "drain",
                (ObservedNode::Channel { .. }, _) => "produce",
            };
            ObservedEdge {
                from: prev,
                to: k,
                tid: snap[order[k]].tid,
                relation: relation.to_string(),
            }
        })
        .collect();
    let mut threads: Vec<ObservedThread> = order
        .iter()
        .map(|&i| observed_thread(env, &snap[i], now))
        .collect();
    threads.extend(victims.iter().map(|&i| observed_thread(env, &snap[i], now)));
    let names: Vec<String> = order
        .iter()
        .map(|&i| format!("T{} \"{}\"", snap[i].tid, env.thread_name(snap[i].tid)))
        .collect();
    let title = format!(
        "{}{}",
        if n == 1 {
            format!("{} waits for ever for a lock it holds itself", names[0])
        } else {
            format!(
                "{n} threads wait on each other for ever: {}",
                names.join(", ")
            )
        },
        if victims.is_empty() {
            String::new()
        } else {
            format!("; {} more wait on them", victims.len())
        }
    );
    Finding {
        key: key_of(
            "deadlock",
            order.iter().map(|&i| (snap[i].tid, snap[i].since)),
        ),
        observed: Observed {
            kind: "deadlock".into(),
            title,
            nodes,
            edges,
            threads,
            waiters: victims.len() as u32,
        },
    }
}

fn call_node(s: &Snap) -> Option<ObservedNode> {
    match &s.wait {
        Some(Wait::Call { channel, dir, .. }) => Some(ObservedNode::Channel {
            channel: channel.clone(),
            direction: *dir,
        }),
        _ => None,
    }
}

fn stall(env: &dyn Env, snap: &[Snap], root: usize, waiters: &[usize], now: u64) -> Finding {
    let r = &snap[root];
    // Every thread that waits, directly or not, behind the root.
    let mut behind: BTreeSet<usize> = waiters.iter().copied().collect();
    for (i, s) in snap.iter().enumerate() {
        if let Some(Wait::Lock { addr, .. }) = &s.wait {
            if r.held.iter().any(|h| h.addr == *addr) || waiters.contains(&i) {
                behind.insert(i);
            }
        }
    }
    behind.remove(&root);
    let mut nodes: Vec<ObservedNode> = r
        .held
        .iter()
        .filter(|h| {
            behind
                .iter()
                .any(|&w| matches!(&snap[w].wait, Some(Wait::Lock { addr, .. }) if *addr == h.addr))
        })
        .map(|h| ObservedNode::Lock {
            pid: None,
            lock: env.lock_ref(h.addr),
            kind: h.kind,
            mode: h.mode,
        })
        .collect();
    let what = match &r.wait {
        Some(Wait::Call { call, channel, .. }) => {
            format!("blocked in {call}() on {}", channel.describe())
        }
        // A lock one of those behind it holds: a cycle of waits, not stuck,
        // so a timed wait in it ends it.
        Some(Wait::Lock { addr, .. })
            if behind
                .iter()
                .any(|&i| snap[i].held.iter().any(|h| h.addr == *addr))
                && (r.timed || behind.iter().any(|&i| snap[i].timed)) =>
        {
            "waiting for a lock in turn, in a cycle of waits that a timed one ends at its deadline"
                .to_string()
        }
        Some(Wait::Lock { .. }) => "waiting for a lock".to_string(),
        None => env
            .blocked_in(r.tid)
            .map_or_else(|| "running".to_string(), |w| format!("blocked in {w}")),
    };
    let mut edges = Vec::new();
    if let Some(c) = call_node(r) {
        let ci = nodes.len();
        nodes.push(c);
        edges.extend((0..ci).map(|i| ObservedEdge {
            from: i,
            to: ci,
            tid: r.tid,
            relation: "held-across-call".to_string(),
        }));
    }
    let mut threads = vec![observed_thread(env, r, now)];
    threads.extend(behind.iter().map(|&i| observed_thread(env, &snap[i], now)));
    let oldest = behind
        .iter()
        .map(|&i| age_ms(&snap[i], now))
        .max()
        .unwrap_or(0);
    let title = format!(
        "{} thread{} stuck for {} ms behind T{} \"{}\", which holds the lock and is {}",
        behind.len(),
        if behind.len() == 1 { "" } else { "s" },
        oldest,
        r.tid,
        env.thread_name(r.tid),
        what
    );
    Finding {
        key: key_of("stall", [(r.tid, r.since)]),
        observed: Observed {
            kind: "stall".into(),
            title,
            nodes,
            edges,
            threads,
            waiters: behind.len() as u32,
        },
    }
}

fn stalled_call(env: &dyn Env, s: &Snap, now: u64) -> Finding {
    let Some(Wait::Call {
        call,
        channel,
        reply,
        ..
    }) = &s.wait
    else {
        unreachable!("only calls are stalled calls")
    };
    let mut nodes: Vec<ObservedNode> = s
        .held
        .iter()
        .map(|h| ObservedNode::Lock {
            pid: None,
            lock: env.lock_ref(h.addr),
            kind: h.kind,
            mode: h.mode,
        })
        .collect();
    let ci = nodes.len();
    nodes.extend(call_node(s));
    let edges = (0..ci)
        .map(|i| ObservedEdge {
            from: i,
            to: ci,
            tid: s.tid,
            relation: "held-across-call".to_string(),
        })
        .collect();
    let why = if *reply {
        "waiting for a reply that has not come"
    } else {
        "holding a lock"
    };
    let title = format!(
        "T{} \"{}\" blocked in {call}() on {} for {} ms, {why}",
        s.tid,
        env.thread_name(s.tid),
        channel.describe(),
        age_ms(s, now)
    );
    Finding {
        key: key_of("stalled-call", [(s.tid, s.since)]),
        observed: Observed {
            kind: "stalled-call".into(),
            title,
            nodes,
            edges,
            threads: vec![observed_thread(env, s, now)],
            waiters: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = 1_000_000;

    fn held(addr: u64, mode: Mode, kind: LockKind) -> HeldLock {
        HeldLock {
            addr,
            mode,
            kind,
            site: 0,
        }
    }

    fn snap(tid: u32, held: Vec<HeldLock>, wait: Option<Wait>, since: u64) -> Snap {
        Snap {
            tid,
            held,
            wait,
            since,
            stack: 0,
            timed: false,
        }
    }

    struct TestEnv;

    impl Env for TestEnv {
        fn writer_preferring(&self, _addr: u64, _kind: LockKind) -> bool {
            false
        }
        fn lock_ref(&self, addr: u64) -> LockRef {
            LockRef { addr, gen: 0 }
        }
        fn thread_name(&self, tid: u32) -> String {
            format!("t{tid}")
        }
    }

    fn users(recv: &[(Channel, &[u32])], send: &[(Channel, &[u32])]) -> ChannelUsers {
        ChannelUsers {
            recv: recv
                .iter()
                .map(|(c, t)| (c.clone(), t.iter().copied().collect()))
                .collect(),
            send: send
                .iter()
                .map(|(c, t)| (c.clone(), t.iter().copied().collect()))
                .collect(),
            exhaustive: BTreeSet::new(),
        }
    }

    fn nl() -> Channel {
        Channel::Netlink {
            protocol: 2,
            port: 7,
        }
    }

    fn lock_wait(addr: u64, mode: Mode, kind: LockKind) -> Option<Wait> {
        Some(Wait::Lock { addr, kind, mode })
    }

    fn send_wait(c: Channel) -> Option<Wait> {
        Some(Wait::Call {
            call: "sendto".into(),
            channel: c,
            dir: Direction::Send,
            reply: false,
        })
    }

    fn recv_wait(c: Channel, reply: bool) -> Option<Wait> {
        Some(Wait::Call {
            call: "recvfrom".into(),
            channel: c,
            dir: Direction::Recv,
            reply,
        })
    }

    // The lock addresses here are never dereferenced: their kinds are mutex
    // or an rwlock nobody holds.
    const L: u64 = 0x1000;
    const M: u64 = 0x2000;

    /// warnd hung: T1 holds L and sends into the full port, T2 (its
    /// drainer) waits for L; both waits began at `since`.
    fn warnd_hung(since: u64) -> (Vec<Snap>, ChannelUsers) {
        let s = vec![
            snap(
                1,
                vec![held(L, Mode::Write, LockKind::Mutex)],
                send_wait(nl()),
                since,
            ),
            snap(2, vec![], lock_wait(L, Mode::Write, LockKind::Mutex), since),
        ];
        (s, users(&[(nl(), &[2])], &[(nl(), &[1])]))
    }

    #[test]
    fn warnd_lock_and_queue_cycle_is_a_deadlock() {
        let now = 10_000 * MS;
        let (s, u) = warnd_hung(1_000 * MS);
        let f = analyse(&TestEnv, &s, &u, now, 500, 5_000);
        assert_eq!(
            f.len(),
            1,
            "{:?}",
            f.iter().map(|x| &x.observed.title).collect::<Vec<_>>()
        );
        let o = &f[0].observed;
        assert_eq!(o.kind, "deadlock");
        assert!(matches!(
            o.nodes[0],
            ObservedNode::Lock {
                mode: Mode::Write,
                ..
            }
        ));
        assert!(matches!(
            o.nodes[1],
            ObservedNode::Channel {
                direction: Direction::Send,
                ..
            }
        ));
        assert_eq!(o.edges[1].relation, "held-across-call");
        assert_eq!(o.edges[1].tid, 1);
        assert_eq!(o.edges[0].relation, "drain");
        assert_eq!(o.edges[0].tid, 2);
    }

    fn condvar(addr: u64) -> Channel {
        Channel::Condvar {
            pid: 0,
            addr,
            gen: 0,
        }
    }

    /// A worker that signalled "up" once, then waits on the same condition
    /// variable for work: its own only feeder seen, and no deadlock (the
    /// main thread signals it later).
    /// Two threads each holding the lock the other waits for: a deadlock,
    /// unless a wait has a deadline (a timed lock, which ends it by
    /// itself): then a stall once it is old enough, never before.
    #[test]
    fn a_lock_cycle_through_a_timed_wait_is_a_stall_not_a_deadlock() {
        let now = 10_000 * MS;
        let cycle = |timed: bool, since: u64| {
            let mut s = vec![
                snap(
                    1,
                    vec![held(M, Mode::Write, LockKind::Mutex)],
                    lock_wait(M + 64, Mode::Write, LockKind::Mutex),
                    since,
                ),
                snap(
                    2,
                    vec![held(M + 64, Mode::Write, LockKind::Mutex)],
                    lock_wait(M, Mode::Write, LockKind::Mutex),
                    since,
                ),
            ];
            s[1].timed = timed;
            s
        };
        let kinds = |s: &[Snap]| -> Vec<String> {
            analyse(&TestEnv, s, &ChannelUsers::default(), now, 500, 5_000)
                .into_iter()
                .map(|f| f.observed.kind)
                .collect()
        };
        assert_eq!(kinds(&cycle(false, 9_000 * MS)), ["deadlock"]);
        assert_eq!(kinds(&cycle(true, 9_000 * MS)), Vec::<String>::new());
        assert_eq!(kinds(&cycle(true, MS)), ["stall"]);
        let f = analyse(
            &TestEnv,
            &cycle(true, MS),
            &ChannelUsers::default(),
            now,
            500,
            5_000,
        );
        assert!(
            f[0].observed
                .title
                .ends_with("a cycle of waits that a timed one ends at its deadline"),
            "{}",
            f[0].observed.title
        );
    }

    #[test]
    fn a_thread_waiting_on_a_condvar_only_it_signalled_is_not_stuck() {
        let now = 10_000 * MS;
        let s = vec![snap(1, vec![], recv_wait(condvar(L), false), MS)];
        let u = users(&[(condvar(L), &[1])], &[(condvar(L), &[1])]);
        let f = analyse(&TestEnv, &s, &u, now, 500, 5_000);
        assert!(
            f.is_empty(),
            "{:?}",
            f.iter().map(|x| &x.observed.title).collect::<Vec<_>>()
        );
    }

    /// Two threads, each waiting on a condition variable the other one
    /// signalled: a cycle of queues whose feeders are those seen, which a
    /// thread not seen yet may end; and a thread waiting for a lock one of
    /// them holds waits on no known deadlock either (a stall).
    #[test]
    fn a_cycle_of_queues_with_feeders_only_seen_is_not_a_deadlock() {
        let now = 10_000 * MS;
        let s = vec![
            snap(
                1,
                vec![held(M, Mode::Write, LockKind::Mutex)],
                recv_wait(condvar(L), false),
                MS,
            ),
            snap(2, vec![], recv_wait(condvar(L + 8), false), MS),
            snap(3, vec![], lock_wait(M, Mode::Write, LockKind::Mutex), MS),
        ];
        let mut u = users(&[], &[(condvar(L), &[2]), (condvar(L + 8), &[1])]);
        let f = analyse(&TestEnv, &s, &u, now, 500, 5_000);
        let kinds: Vec<&str> = f.iter().map(|x| x.observed.kind.as_str()).collect();
        assert_eq!(
            kinds,
            ["stall"],
            "{:?}",
            f.iter().map(|x| &x.observed.title).collect::<Vec<_>>()
        );
        // The same feeders known to be the only threads that can signal:
        // a deadlock, with the lock's waiter behind it.
        u.exhaustive.insert((condvar(L), Direction::Send));
        let f = analyse(&TestEnv, &s, &u, now, 500, 5_000);
        let kinds: Vec<&str> = f.iter().map(|x| x.observed.kind.as_str()).collect();
        assert_eq!(kinds, ["deadlock"]);
        assert_eq!(f[0].observed.threads.len(), 3);
    }

    #[test]
    fn a_young_wait_is_not_yet_a_deadlock() {
        let (s, u) = warnd_hung(1_000 * MS);
        assert!(analyse(&TestEnv, &s, &u, 1_100 * MS, 500, 5_000).is_empty());
    }

    #[test]
    fn a_drainer_waiting_in_recv_means_the_queue_moves() {
        let now = 10_000 * MS;
        let s = vec![
            snap(
                1,
                vec![held(L, Mode::Write, LockKind::Mutex)],
                send_wait(nl()),
                1_000 * MS,
            ),
            snap(2, vec![], recv_wait(nl(), false), 1_000 * MS),
        ];
        let u = users(&[(nl(), &[2])], &[(nl(), &[1])]);
        let f = analyse(&TestEnv, &s, &u, now, 500, 60_000);
        assert!(f.is_empty());
    }

    #[test]
    fn a_queue_drained_outside_the_process_is_not_a_deadlock_here() {
        let now = 10_000 * MS;
        let s = vec![snap(
            1,
            vec![held(L, Mode::Write, LockKind::Mutex)],
            send_wait(nl()),
            1_000 * MS,
        )];
        let f = analyse(&TestEnv, &s, &users(&[], &[(nl(), &[1])]), now, 500, 60_000);
        assert!(f.is_empty());
    }

    #[test]
    fn abba_live_is_a_deadlock_of_two_locks() {
        let now = 10_000 * MS;
        let s = vec![
            snap(
                1,
                vec![held(L, Mode::Write, LockKind::Mutex)],
                lock_wait(M, Mode::Write, LockKind::Mutex),
                MS,
            ),
            snap(
                2,
                vec![held(M, Mode::Write, LockKind::Mutex)],
                lock_wait(L, Mode::Write, LockKind::Mutex),
                MS,
            ),
            snap(3, vec![], lock_wait(L, Mode::Write, LockKind::Mutex), MS),
        ];
        let f = analyse(&TestEnv, &s, &users(&[], &[]), now, 500, 5_000);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].observed.kind, "deadlock");
        assert_eq!(f[0].observed.nodes.len(), 2);
        assert_eq!(f[0].observed.waiters, 1, "thread 3 waits on the cycle");
        // A thread first in the snapshot, waiting on the cycle since too
        // short a time to be stuck, is neither stuck nor in the way.
        let mut young = vec![snap(
            4,
            vec![],
            lock_wait(M, Mode::Write, LockKind::Mutex),
            now - MS,
        )];
        young.extend(s);
        let f = analyse(&TestEnv, &young, &users(&[], &[]), now, 500, 5_000);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].observed.kind, "deadlock");
        assert_eq!(f[0].observed.waiters, 1, "thread 3, not the young 4");
    }

    #[test]
    fn a_thread_waiting_for_a_lock_it_holds_is_a_deadlock_of_one() {
        let now = 10_000 * MS;
        let s = vec![
            // Locks its own default mutex again.
            snap(
                1,
                vec![held(L, Mode::Write, LockKind::Mutex)],
                lock_wait(L, Mode::Write, LockKind::Mutex),
                MS,
            ),
            // Waits behind it.
            snap(2, vec![], lock_wait(L, Mode::Write, LockKind::Mutex), MS),
        ];
        let f = analyse(&TestEnv, &s, &users(&[], &[]), now, 500, 5_000);
        assert_eq!(f.len(), 1);
        let o = &f[0].observed;
        assert_eq!(o.kind, "deadlock");
        assert_eq!(o.nodes.len(), 1);
        assert_eq!(o.edges.len(), 1);
        assert_eq!((o.edges[0].from, o.edges[0].to, o.edges[0].tid), (0, 0, 1));
        assert!(o.title.contains("holds itself"), "{}", o.title);
        assert_eq!(o.waiters, 1, "thread 2 waits on it");
    }

    #[test]
    fn a_reader_asking_again_for_its_read_lock_is_not_stuck_on_itself() {
        let now = 10_000 * MS;
        // An rwlock nobody else holds: a second read lock is granted; if the
        // thread is seen waiting, it is not for itself.
        let s = vec![snap(
            1,
            vec![held(M, Mode::Read, LockKind::Rwlock)],
            lock_wait(M, Mode::Read, LockKind::Rwlock),
            MS,
        )];
        let f = analyse(&TestEnv, &s, &users(&[], &[]), now, 500, 5_000);
        assert!(f.is_empty());
        // Its write lock asked for under its own read lock is stuck.
        let s = vec![snap(
            1,
            vec![held(M, Mode::Read, LockKind::Rwlock)],
            lock_wait(M, Mode::Write, LockKind::Rwlock),
            MS,
        )];
        let f = analyse(&TestEnv, &s, &users(&[], &[]), now, 500, 5_000);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].observed.kind, "deadlock");
    }

    #[test]
    fn a_holder_blocked_in_a_call_is_the_root_of_a_stall() {
        let pipe = Channel::Pipe { inode: 9 };
        let now = 10_000 * MS;
        let s = vec![
            snap(
                1,
                vec![held(L, Mode::Write, LockKind::Mutex)],
                recv_wait(pipe.clone(), false),
                MS,
            ),
            snap(2, vec![], lock_wait(L, Mode::Write, LockKind::Mutex), MS),
            snap(3, vec![], lock_wait(L, Mode::Write, LockKind::Mutex), MS),
        ];
        // Nobody in the process feeds the pipe: not a deadlock, a stall.
        let f = analyse(&TestEnv, &s, &users(&[(pipe, &[1])], &[]), now, 500, 5_000);
        assert_eq!(
            f.len(),
            1,
            "{:?}",
            f.iter().map(|x| &x.observed.title).collect::<Vec<_>>()
        );
        let o = &f[0].observed;
        assert_eq!(o.kind, "stall");
        assert_eq!(o.threads[0].tid, 1);
        assert_eq!(o.waiters, 2);
        assert!(o.title.contains("blocked in recvfrom()"), "{}", o.title);
    }

    #[test]
    fn a_stall_counts_every_waiter_behind_the_root_young_or_old() {
        let pipe = Channel::Pipe { inode: 9 };
        let now = 10_000 * MS;
        let s = vec![
            snap(
                1,
                vec![held(L, Mode::Write, LockKind::Mutex)],
                recv_wait(pipe.clone(), false),
                MS,
            ),
            snap(
                2,
                vec![],
                lock_wait(L, Mode::Write, LockKind::Mutex),
                4_000 * MS,
            ),
            snap(
                3,
                vec![],
                lock_wait(L, Mode::Write, LockKind::Mutex),
                9_900 * MS,
            ),
        ];
        let f = analyse(&TestEnv, &s, &users(&[(pipe, &[1])], &[]), now, 500, 5_000);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].observed.waiters, 2);
    }

    #[test]
    fn a_client_awaiting_a_reply_from_an_idle_server_is_a_stalled_call() {
        let server_port = Channel::Netlink {
            protocol: 2,
            port: 1,
        };
        let client_port = Channel::Netlink {
            protocol: 2,
            port: 2,
        };
        let now = 100_000 * MS;
        let s = vec![
            snap(1, vec![], recv_wait(server_port.clone(), false), MS),
            snap(2, vec![], recv_wait(client_port.clone(), true), MS),
        ];
        let u = users(
            &[(server_port.clone(), &[1]), (client_port, &[2])],
            &[(server_port, &[2])],
        );
        let f = analyse(&TestEnv, &s, &u, now, 500, 5_000);
        assert_eq!(
            f.len(),
            1,
            "{:?}",
            f.iter().map(|x| &x.observed.title).collect::<Vec<_>>()
        );
        assert_eq!(f[0].observed.kind, "stalled-call");
        assert_eq!(f[0].observed.threads[0].tid, 2);
    }

    #[test]
    fn an_idle_receiver_is_not_reported_but_an_unanswered_request_is() {
        let now = 100_000 * MS;
        let idle = vec![snap(1, vec![], recv_wait(nl(), false), MS)];
        assert!(analyse(&TestEnv, &idle, &users(&[], &[]), now, 500, 5_000).is_empty());
        let asked = vec![snap(1, vec![], recv_wait(nl(), true), MS)];
        let f = analyse(&TestEnv, &asked, &users(&[], &[]), now, 500, 5_000);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].observed.kind, "stalled-call");
    }
}
