//! The graph model of DESIGN.md, built from the facts of every process.
//!
//! Nodes are locks and queue directions; an edge X → Y means "something that
//! holds X can wait for Y". Each edge keeps every piece of evidence for it
//! (which thread, in which modes, holding what else, at which stack), so the
//! validity filters can look for a real witness.

mod edges;
mod streamed;

pub use edges::{Edges, Evidences};

use crate::trace::TraceFile;
use holdcheck_format::{Channel, Direction, Held, LockKind, LockRef, Mode, Observed, Record};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;

/// A node of the wait-for graph.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Node {
    /// A lock of one process.
    Lock { pid: u32, lock: LockRef },
    /// A kernel queue, waited on from one side.
    Queue { channel: Channel, dir: Direction },
}

impl Node {
    /// The node of a lock seen by process `pid`: a file lock is one node
    /// for every process (pid 0), any other lock is the process's own.
    pub fn lock(pid: u32, lock: LockRef) -> Node {
        Node::Lock {
            pid: if lock.is_file() { 0 } else { pid },
            lock,
        }
    }

    pub fn is_lock(&self) -> bool {
        matches!(self, Node::Lock { .. })
    }
}

/// A lock node's key in `Model::lock_index`.
fn lock_key(pid: u32, lock: LockRef) -> (u64, u64) {
    (lock.addr, (u64::from(pid) << 32) | u64::from(lock.gen))
}

/// Why an edge exists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Relation {
    /// Acquired the `to` lock while holding the `from` lock.
    LockOrder,
    /// Held the `from` lock during a blocking call on the `to` queue: the
    /// call is `Model::held_calls[(pid, fact)]`.
    HeldAcrossCall { fact: u64 },
    /// Drains (`dir` recv) or feeds (`dir` send) the `from` queue and
    /// acquires the `to` lock between two operations on it.
    QueueLock { dir: Direction },
    /// Drains (`dir` recv) or feeds (`dir` send) the `from` queue and
    /// blocks on the `to` queue between two operations on it.
    QueueWait { dir: Direction },
    /// The `from` node is the exit of this thread's process, which blocks
    /// on the `to` queue while it runs.
    ExitWait,
    /// The `from` node is this thread's end (`pthread_join` under a lock
    /// waits for it): the thread takes the `to` lock before it ends. Only
    /// the locks the shim saw the thread take last, when the join
    /// returned, count: its earlier facts may all come before the join.
    ThreadEnd,
}

/// One observation behind an edge.
#[derive(Debug, Clone)]
pub struct Evidence {
    pub pid: u32,
    pub tid: u32,
    pub relation: Relation,
    /// Mode in which the `from` lock is held (lock sources only).
    pub held_mode: Option<Mode>,
    /// Where the `from` lock was acquired (one frame).
    pub held_site: Option<u64>,
    /// The whole stack of that acquisition, when the shim recorded it
    /// (`held_stacks=1`).
    pub held_stack: Option<u64>,
    /// Mode wanted on the `to` lock (lock targets only).
    pub wanted_mode: Option<Mode>,
    /// Where the `to` lock is acquired, for queue dependencies (one frame).
    pub wanted_site: Option<u64>,
    /// Other locks held at the time (gate candidates).
    pub others_held: Vec<LockRef>,
    /// The stack of the blocking acquisition or call.
    pub stack: u64,
    /// The thread's phase when it did this (lock orders; 0 otherwise).
    pub phase: u32,
}

impl Evidence {
    /// Evidence of `relation` by a thread at `stack`, with nothing held or
    /// wanted.
    pub fn bare(pid: u32, tid: u32, relation: Relation, stack: u64) -> Evidence {
        Evidence {
            pid,
            tid,
            relation,
            held_mode: None,
            held_site: None,
            held_stack: None,
            wanted_mode: None,
            wanted_site: None,
            others_held: Vec::new(),
            stack,
            phase: 0,
        }
    }
}

/// What a lock is, from its metadata record.
#[derive(Debug, Clone, Copy)]
pub struct LockMeta {
    pub kind: LockKind,
    pub writer_preferring: bool,
    pub recursive: bool,
    /// Return address of its `pthread_*_init`, when the shim saw one.
    pub init: Option<u64>,
}

/// A loaded object of a process.
#[derive(Debug, Clone)]
pub struct Module {
    pub path: String,
    pub base: u64,
    pub segments: Vec<(u64, u64)>,
}

/// Everything known of one process.
#[derive(Debug, Default)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    pub exe: String,
    pub cmdline: Vec<String>,
    pub file: PathBuf,
    pub threads: HashMap<u32, String>,
    pub stacks: HashMap<u64, Vec<u64>>,
    pub modules: Vec<Module>,
    /// FxHash here and in `first_held_at`: a trace may name 100 000 locks,
    /// and each of a million facts updates `first_held_at`.
    pub locks: rustc_hash::FxHashMap<LockRef, LockMeta>,
    /// Where each lock was first seen held (the site of the acquisition
    /// of the first fact naming it as held): a lock without an init or a
    /// variable is named by it.
    pub first_held_at: rustc_hash::FxHashMap<LockRef, u64>,
    /// Who created each thread, and the stack of that `pthread_create`.
    pub created: HashMap<u32, (u32, Option<u64>)>,
    /// Bounds the shim hit: the analysis of this process is partial.
    pub partial: Vec<String>,
    /// The tick of the clock its blocking calls were timed with (the
    /// trace header's; None in older traces).
    pub call_clock_res_ns: Option<u64>,
    /// Its threads' starts and joins.
    pub order: crate::order::Threads,
}

impl Process {
    pub fn thread_name(&self, tid: u32) -> &str {
        self.threads.get(&tid).map(String::as_str).unwrap_or("")
    }
}

/// A held-across-call fact with its statistics.
#[derive(Debug, Clone)]
pub struct HeldCall {
    pub pid: u32,
    pub tid: u32,
    pub held: Vec<Held>,
    pub call: String,
    pub channel: Channel,
    pub dir: Direction,
    pub stack: u64,
    pub count: u64,
    pub max_ns: u64,
}

/// A thread that exited still holding a lock (`Record::ExitedHolding`).
#[derive(Debug, Clone)]
pub struct ExitedHolding {
    pub pid: u32,
    pub tid: u32,
    pub lock: LockRef,
    pub kind: LockKind,
    pub mode: Mode,
    pub site: u64,
}

#[derive(Debug, Default)]
pub struct Model {
    /// Locks named after the variable that holds them (`symbolize::
    /// name_locks`), by process and address.
    pub lock_names: HashMap<(u32, u64), String>,
    /// Where the locks no variable names were made: their init site, or
    /// where they were first held (`symbolize::name_locks`).
    pub lock_origins: HashMap<(u32, LockRef), crate::report::LockOrigin>,
    pub processes: BTreeMap<u32, Process>,
    pub nodes: Vec<Node>,
    /// The queue nodes' places in `nodes`.
    node_index: rustc_hash::FxHashMap<Node, usize>,
    /// The lock nodes' places, by a key of 16 bytes: a million facts look
    /// their nodes up twice each, at random, a cache miss each; in a table
    /// a third the size of one of `Node`s (72 bytes an entry) they take
    /// 6 MB less and a few percent less time (BENCHMARKS.md).
    lock_index: rustc_hash::FxHashMap<(u64, u64), u32>,
    /// (from, to) → evidence.
    pub edges: Edges,
    /// Held-across-call facts by (pid, fact id).
    pub held_calls: BTreeMap<(u32, u64), HeldCall>,
    /// Programs started without the shim, by the pid that started them.
    pub untraced: Vec<crate::report::UntracedStart>,
    /// The paths of file locks.
    pub file_paths: HashMap<LockRef, String>,
    /// Every blocking-capable channel use: (pid, tid, channel, direction,
    /// stack).
    pub uses: Vec<(u32, u32, Channel, Direction, u64)>,
    /// Locks that threads still held when they exited.
    pub exited_holding: Vec<ExitedHolding>,
    /// Misuses of locks (`Record::Misuse`), with their process.
    pub misuses: Vec<(u32, holdcheck_format::Misuse)>,
    /// The threads (pid, tid) that receive from each queue.
    pub receivers: HashMap<Channel, std::collections::BTreeSet<(u32, u32)>>,
    /// The processes seen at each end of each queue: (senders, receivers).
    pub ends: HashMap<Channel, (BTreeSet<u32>, BTreeSet<u32>)>,
    /// What the live watchdogs reported, by pid.
    pub observed: Vec<(u32, Observed)>,
    pub warnings: Vec<String>,
}

impl Model {
    pub fn node(&mut self, n: Node) -> usize {
        let next = self.nodes.len();
        let i = match &n {
            Node::Lock { pid, lock } => {
                let i = *self
                    .lock_index
                    .entry(lock_key(*pid, *lock))
                    .or_insert(u32::try_from(next).expect("fewer than 4 G nodes"));
                i as usize
            }
            Node::Queue { .. } => {
                if let Some(&i) = self.node_index.get(&n) {
                    return i;
                }
                self.node_index.insert(n.clone(), next);
                next
            }
        };
        if i == next {
            self.nodes.push(n);
        }
        i
    }

    pub fn node_index(&self, n: &Node) -> Option<usize> {
        match n {
            Node::Lock { pid, lock } => self
                .lock_index
                .get(&lock_key(*pid, *lock))
                .map(|&i| i as usize),
            Node::Queue { .. } => self.node_index.get(n).copied(),
        }
    }

    fn edge(&mut self, from: Node, to: Node, e: Evidence) {
        let (a, b) = (self.node(from), self.node(to));
        if a != b {
            self.edges.push((a, b), e);
        }
    }

    pub fn lock_meta(&self, pid: u32, lock: LockRef) -> Option<LockMeta> {
        if lock.is_file() {
            // Every process that took it knows it the same way.
            return self
                .processes
                .values()
                .find_map(|p| p.locks.get(&lock).copied());
        }
        self.processes.get(&pid)?.locks.get(&lock).copied()
    }

    /// Builds the model from trace files read whole (the same way as
    /// [`Model::from_dirs`], which reads them as it builds).
    pub fn build(traces: &[TraceFile]) -> Model {
        streamed::build(traces)
    }

    /// What the model needs once every trace is in.
    fn finish(mut self) -> Model {
        self.add_exit_waits();
        self.edges.seal();
        self.drop_condvar_edges_some_signaller_breaks();
        self.fix_observed_generations();
        self
    }

    /// A condition variable's (or semaphore's) waiter stays blocked only
    /// if *every* thread that signals (posts) it needs the lock first: one signaller that takes the
    /// lock and another that does not (a JVM's heap lock waits) is no
    /// cycle, since the other can always signal. So an edge (condvar,
    /// recv) → L stands only when each signaller of the condvar acquired
    /// L between two of its signals.
    fn drop_condvar_edges_some_signaller_breaks(&mut self) {
        let mut signallers: HashMap<&Channel, std::collections::BTreeSet<(u32, u32)>> =
            HashMap::new();
        for (pid, tid, channel, dir, _) in &self.uses {
            if channel.is_posted() && *dir == Direction::Send {
                signallers.entry(channel).or_default().insert((*pid, *tid));
            }
        }
        let nodes = &self.nodes;
        let mut dropped = std::collections::HashSet::new();
        for ((from, to), ev) in self.edges.iter() {
            let Node::Queue {
                channel,
                dir: Direction::Recv,
            } = &nodes[from]
            else {
                continue;
            };
            if !channel.is_posted() {
                continue;
            }
            if !nodes[to].is_lock() {
                continue;
            }
            let needing: std::collections::BTreeSet<(u32, u32)> = ev
                .iter()
                .filter(|e| matches!(e.relation, Relation::QueueLock { .. }))
                .map(|e| (e.pid, e.tid))
                .collect();
            if needing.is_empty() {
                continue;
            }
            if signallers
                .get(channel)
                .is_some_and(|all| all.iter().any(|t| !needing.contains(t)))
            {
                dropped.insert((from, to));
            }
        }
        self.edges.remove(&dropped);
    }

    /// A process exits only after the blocking calls it makes: whoever
    /// waits for its exit (`waitpid`) may wait for what it waits on.
    fn add_exit_waits(&mut self) {
        let exits: Vec<u32> = self
            .nodes
            .iter()
            .filter_map(|n| match n {
                Node::Queue {
                    channel: Channel::Exit { pid },
                    ..
                } => Some(*pid),
                _ => None,
            })
            .collect();
        for pid in exits {
            let from = Node::Queue {
                channel: Channel::Exit { pid },
                dir: Direction::Recv,
            };
            let uses: Vec<_> = self.uses.iter().filter(|u| u.0 == pid).cloned().collect();
            for (pid, tid, channel, dir, stack) in uses {
                let e = Evidence::bare(pid, tid, Relation::ExitWait, stack);
                self.edge(from.clone(), Node::Queue { channel, dir }, e);
            }
        }
    }

    /// A lock seen from outside (in a snapshot of memory) has an address
    /// but no generation: it is the current one, the newest the process's
    /// trace knows for that address.
    pub fn fix_observed_generations(&mut self) {
        let processes = &self.processes;
        let current = |pid: u32, l: &mut holdcheck_format::LockRef| {
            let known = processes.get(&pid).map(|p| &p.locks);
            if known.is_some_and(|k| k.contains_key(l)) {
                return;
            }
            if let Some(gen) =
                known.and_then(|k| k.keys().filter(|k| k.addr == l.addr).map(|k| k.gen).max())
            {
                l.gen = gen;
            }
        };
        for (pid, ob) in self.observed.iter_mut() {
            for n in ob.nodes.iter_mut() {
                if let holdcheck_format::ObservedNode::Lock { lock, pid: p, .. } = n {
                    current(p.unwrap_or(*pid), lock);
                }
            }
            for t in ob.threads.iter_mut() {
                let tp = t.pid.unwrap_or(*pid);
                for h in t.held.iter_mut() {
                    current(tp, &mut h.lock);
                }
                if let Some(holdcheck_format::Waiting::Lock { lock, .. }) = &mut t.waiting {
                    current(tp, lock);
                }
            }
        }
    }

    /// Starts adding the trace of process `pid`.
    fn begin_trace(&mut self, pid: u32, path: &std::path::Path) -> Adding {
        self.processes.entry(pid).or_insert_with(|| Process {
            pid,
            file: path.to_path_buf(),
            ..Default::default()
        });
        Adding {
            pid,
            stats: HashMap::new(),
        }
    }

    /// Adds one record of the trace being added.
    fn add_record(&mut self, adding: &mut Adding, r: &Record) {
        let pid = adding.pid;
        let stats = &mut adding.stats;
        match r {
            Record::Header {
                ppid,
                exe,
                cmdline,
                call_clock_res_ns,
                ..
            } => {
                // The file's process (a second header naming another
                // pid, in a damaged trace, describes the same one). A
                // snapshot's trace, written from outside, does not know
                // the clock the shim timed calls with: it keeps the
                // shim's.
                let p = self.proc(pid);
                p.ppid = *ppid;
                p.exe = exe.clone();
                p.cmdline = cmdline.clone();
                if call_clock_res_ns.is_some() {
                    p.call_clock_res_ns = *call_clock_res_ns;
                }
            }
            Record::Module {
                path,
                base,
                segments,
            } => {
                self.proc(pid).modules.push(Module {
                    path: path.clone(),
                    base: *base,
                    segments: segments.clone(),
                });
            }
            Record::Thread { tid, name } => {
                self.proc(pid).threads.insert(*tid, name.clone());
            }
            Record::ThreadStart {
                tid,
                parent,
                seq,
                stack,
                ..
            } => {
                let p = self.proc(pid);
                p.order.started(*tid, *parent, *seq);
                p.created.insert(*tid, (*parent, *stack));
            }
            Record::ThreadJoined { tid, joined, seq } => {
                self.proc(pid).order.joined(*tid, *joined, *seq);
            }
            Record::Stack { id, frames } => {
                self.proc(pid).stacks.insert(*id, frames.clone());
            }
            Record::Lock {
                lock,
                kind,
                writer_preferring,
                recursive,
                file,
                init,
            } => {
                if let Some(path) = file {
                    self.file_paths.insert(*lock, path.clone());
                }
                self.proc(pid).locks.insert(
                    *lock,
                    LockMeta {
                        kind: *kind,
                        writer_preferring: *writer_preferring,
                        recursive: *recursive,
                        init: *init,
                    },
                );
            }
            Record::LockOrder {
                tid,
                lock,
                mode,
                try_lock,
                held,
                stack,
                phase,
            } => {
                // A trylock orders nothing (the shim no longer records
                // one; older traces have them).
                if *try_lock {
                    return;
                }
                let first = &mut self.proc(pid).first_held_at;
                for h in held.iter().filter(|h| h.site != 0) {
                    first.entry(h.lock).or_insert(h.site);
                }
                for h in held {
                    let e = Evidence {
                        pid,
                        tid: *tid,
                        relation: Relation::LockOrder,
                        held_mode: Some(h.mode),
                        held_site: Some(h.site),
                        held_stack: h.stack,
                        wanted_mode: Some(*mode),
                        wanted_site: None,
                        others_held: others(held, h, Some(*lock)),
                        stack: *stack,
                        phase: *phase,
                    };
                    self.edge(Node::lock(pid, h.lock), Node::lock(pid, *lock), e);
                }
            }
            Record::HeldAcrossCall {
                id,
                tid,
                held,
                call,
                channel,
                direction,
                stack,
            } => {
                // A file lock belongs to a process (`fcntl`) or to an open
                // file (`flock`): no thread of its own process waits for
                // it, but through a second open of the file. Held across a
                // wait that only this process's threads can end (a
                // condition variable, a thread's end), it holds up none of
                // them: no edge, no hazard (mariadbd holds its data files'
                // record locks for its whole run, across every wait of its
                // main thread).
                let in_process =
                    matches!(channel, Channel::Condvar { .. } | Channel::Thread { .. });
                let held: Vec<Held> = held
                    .iter()
                    .filter(|h| !(in_process && h.lock.is_file()))
                    .copied()
                    .collect();
                if held.is_empty() {
                    return;
                }
                for h in &held {
                    let e = Evidence {
                        pid,
                        tid: *tid,
                        relation: Relation::HeldAcrossCall { fact: *id },
                        held_mode: Some(h.mode),
                        held_site: Some(h.site),
                        held_stack: h.stack,
                        wanted_mode: None,
                        wanted_site: None,
                        others_held: others(&held, h, None),
                        stack: *stack,
                        phase: 0,
                    };
                    let q = Node::Queue {
                        channel: channel.clone(),
                        dir: *direction,
                    };
                    self.edge(Node::lock(pid, h.lock), q, e);
                }
                self.held_calls.insert(
                    (pid, *id),
                    HeldCall {
                        pid,
                        tid: *tid,
                        held,
                        call: call.clone(),
                        channel: channel.clone(),
                        dir: *direction,
                        stack: *stack,
                        count: 1,
                        max_ns: 0,
                    },
                );
            }
            Record::CallStats { id, count, max_ns } => {
                let s = stats.entry(*id).or_default();
                s.0 = s.0.max(*count);
                s.1 = s.1.max(*max_ns);
            }
            Record::QueueLock {
                tid,
                channel,
                direction,
                lock,
                mode,
                site,
                stack,
            } => {
                // A consumer (recv) that needs the lock keeps senders
                // waiting; a producer (send) that needs it keeps
                // receivers waiting.
                let waiting_side = direction.opposite();
                let e = Evidence {
                    pid,
                    tid: *tid,
                    relation: if matches!(channel, Channel::Thread { .. }) {
                        Relation::ThreadEnd
                    } else {
                        Relation::QueueLock { dir: *direction }
                    },
                    held_mode: None,
                    held_site: None,
                    held_stack: None,
                    wanted_mode: Some(*mode),
                    wanted_site: Some(*site),
                    others_held: Vec::new(),
                    stack: *stack,
                    phase: 0,
                };
                let q = Node::Queue {
                    channel: channel.clone(),
                    dir: waiting_side,
                };
                self.edge(q, Node::lock(pid, *lock), e);
            }
            Record::QueueWait {
                tid,
                channel,
                direction,
                waited,
                waited_direction,
                stack,
            } => {
                let e = Evidence::bare(pid, *tid, Relation::QueueWait { dir: *direction }, *stack);
                let from = Node::Queue {
                    channel: channel.clone(),
                    dir: direction.opposite(),
                };
                let to = Node::Queue {
                    channel: waited.clone(),
                    dir: *waited_direction,
                };
                self.edge(from, to, e);
            }
            Record::ChannelUse {
                tid,
                channel,
                direction,
                stack,
                ..
            } => {
                if *direction == Direction::Recv {
                    self.receivers
                        .entry(channel.clone())
                        .or_default()
                        .insert((pid, *tid));
                }
                let ends = self.ends.entry(channel.clone()).or_default();
                match direction {
                    Direction::Send => ends.0.insert(pid),
                    Direction::Recv => ends.1.insert(pid),
                };
                self.uses
                    .push((pid, *tid, channel.clone(), *direction, *stack));
            }
            Record::UnixPeer { .. } => {}
            Record::Untraced {
                call,
                program,
                argv,
                reason,
            } => self.untraced.push(crate::report::UntracedStart {
                pid,
                call: call.clone(),
                program: program.clone(),
                argv: argv.clone(),
                reason: reason.clone(),
            }),
            Record::Partial { reason } => self.proc(pid).partial.push(reason.clone()),
            Record::Misuse(m) => self.misuses.push((pid, m.clone())),
            Record::ExitedHolding {
                tid,
                lock,
                kind,
                mode,
                site,
            } => self.exited_holding.push(ExitedHolding {
                pid,
                tid: *tid,
                lock: *lock,
                kind: *kind,
                mode: *mode,
                site: *site,
            }),
            Record::NoTrace { pid: child, reason } => self.proc(pid).partial.push(format!(
                "its child pid {child} left no trace ({reason}): what the child did is not analysed"
            )),
            Record::Observed(o) => {
                for t in &o.threads {
                    self.proc(pid)
                        .threads
                        .entry(t.tid)
                        .or_insert_with(|| t.name.clone());
                }
                self.observed.push((pid, o.clone()));
            }
        }
    }

    /// Ends the trace being added: its calls' statistics join their facts.
    fn end_trace(&mut self, adding: Adding) {
        let pid = adding.pid;
        for (id, (count, max_ns)) in adding.stats {
            if let Some(h) = self.held_calls.get_mut(&(pid, id)) {
                h.count = h.count.max(count);
                h.max_ns = h.max_ns.max(max_ns);
            }
        }
    }

    fn proc(&mut self, pid: u32) -> &mut Process {
        self.processes.entry(pid).or_default()
    }
}

/// One trace being added: its process, and the statistics of its
/// held-across-call facts, which join their facts when the trace ends.
struct Adding {
    pid: u32,
    stats: HashMap<u64, (u64, u64)>,
}

/// A trace file without a header still belongs to some process: it gets a
/// pid of its own, so its facts do not merge with another's.
struct Pids {
    anonymous: u32,
}

impl Default for Pids {
    fn default() -> Self {
        Pids {
            anonymous: u32::MAX,
        }
    }
}

impl Pids {
    /// The pid of a trace, from its first record.
    fn of(&mut self, first: Option<&Record>) -> u32 {
        match first {
            Some(Record::Header { pid, .. }) => *pid,
            _ => {
                self.anonymous -= 1;
                self.anonymous
            }
        }
    }
}

/// The traces with every queue under one name: a unix queue named by its
/// sender (sent before the connection was accepted) gets the name of its
/// receiving socket, when some trace knows it. Copies only when needed.
pub fn canonical_channels(traces: &[TraceFile]) -> std::borrow::Cow<'_, [TraceFile]> {
    let aliases = unix_aliases(traces);
    if aliases.is_empty() {
        return std::borrow::Cow::Borrowed(traces);
    }
    let mut v = traces.to_vec();
    rename(&mut v, &aliases);
    std::borrow::Cow::Owned(v)
}

/// Gives every aliased unix queue of the traces its receiver's name.
fn rename(traces: &mut [TraceFile], aliases: &HashMap<u64, u64>) {
    if aliases.is_empty() {
        return;
    }
    for r in traces.iter_mut().flat_map(|t| t.records.iter_mut()) {
        r.channels_mut(|c| canonical(c, aliases));
    }
}

/// Sending unix socket → the socket that receives from it, from every
/// trace's [`Record::UnixPeer`].
fn unix_aliases(traces: &[TraceFile]) -> HashMap<u64, u64> {
    traces
        .iter()
        .flat_map(|t| t.records.iter())
        .filter_map(|r| match r {
            Record::UnixPeer { inode, peer } => Some((*peer, *inode)),
            _ => None,
        })
        .collect()
}

fn canonical(c: &mut Channel, aliases: &HashMap<u64, u64>) {
    if let Channel::Unix {
        inode: inode @ None,
        path: None,
        from: from @ Some(_),
    } = c
    {
        if let Some(&receiver) = from.as_ref().and_then(|f| aliases.get(f)) {
            *inode = Some(receiver);
            *from = None;
        }
    }
}

/// The locks held besides `h` (and besides the lock being acquired).
fn others(held: &[Held], h: &Held, acquiring: Option<LockRef>) -> Vec<LockRef> {
    held.iter()
        .map(|x| x.lock)
        .filter(|l| *l != h.lock && Some(*l) != acquiring)
        .collect()
}
