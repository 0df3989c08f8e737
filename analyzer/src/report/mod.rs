//! The report: what the analysis found, in a form that renders as text or
//! JSON. The JSON keys are documented in docs/report-json.md and stable.

pub mod filter;
pub mod graph;
pub mod html;
pub mod labels;
pub mod sarif;
pub mod svg;
pub mod text;

use crate::symbolize::Frame;
use holdcheck_format::Channel;
use serde::{Deserialize, Serialize};

/// Bumped when a key of the JSON report changes incompatibly.
pub const REPORT_VERSION: u32 = 1;

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Report {
    pub version: u32,
    pub processes: Vec<ProcessInfo>,
    pub findings: Vec<Finding>,
    pub summary: Summary,
    /// Problems met while reading traces (bad or truncated records).
    pub warnings: Vec<String>,
    /// True when a bound cut the analysis short (see `warnings`).
    pub partial: bool,
    /// Findings left out by `--suppressions` and by `--baseline`.
    #[serde(default)]
    pub suppressed: usize,
    #[serde(default)]
    pub baselined: usize,
    /// Suppression rules that matched no finding (`file:line: rule`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unmatched_suppressions: Vec<String>,
    /// Programs the processes started that run without the shim: nothing
    /// of them is in the report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub untraced: Vec<UntracedStart>,
    /// For `holdcheck run`: the command and how it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run: Option<RunInfo>,
    /// For `holdcheck inspect`: what /proc showed of each thread and queue.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inspect: Option<InspectInfo>,
    /// For `holdcheck confirm`: the command steered and the tries' traces
    /// (each finding says what its tries gave in `confirmation`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm: Option<ConfirmInfo>,
}

impl Report {
    /// A report of these findings, with nothing else to say.
    pub fn new(processes: Vec<ProcessInfo>, findings: Vec<Finding>) -> Report {
        Report {
            version: REPORT_VERSION,
            processes,
            summary: Summary::of(&findings),
            findings,
            warnings: Vec::new(),
            partial: false,
            suppressed: 0,
            baselined: 0,
            unmatched_suppressions: Vec::new(),
            untraced: Vec::new(),
            run: None,
            inspect: None,
            confirm: None,
        }
    }
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ConfirmInfo {
    pub command: Vec<String>,
    /// Tries asked per finding.
    pub tries: u32,
    /// Where the tries' traces are (`finding-K/try-N`).
    pub trace_dir: String,
}

/// One role in a same-class inversion: the lower- or the higher-addressed
/// lock of the pairs its threads nest.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct LockClass {
    /// `lower` or `higher`.
    pub role: String,
    /// The locks the threads took in this role (names, or addresses).
    pub instances: Vec<String>,
}

/// What steering toward a predicted cycle gave (`holdcheck confirm`).
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Confirmation {
    /// `confirmed`: the finding is the live deadlock that a steered run
    /// reached; `not-reproduced`: it is the prediction, and no try hung;
    /// `not-steered`: no try was made (a warning says why).
    pub verdict: String,
    /// The prediction's signature and title.
    pub of: String,
    pub of_title: String,
    /// Tries made.
    pub tries: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reproduced_in: Option<u32>,
    /// Whether every edge's thread got to its site and the parked ones were
    /// let go together (in the try that reproduced it).
    #[serde(default)]
    pub released: bool,
    /// How each try ended (`exited 0`, `deadlocked`, `signalled 11`, …).
    #[serde(default)]
    pub endings: Vec<String>,
    /// One per edge of the prediction, counted over all tries.
    pub steps: Vec<ConfirmStep>,
    /// The traces of the try that reproduced it, or of all tries.
    pub trace_dir: String,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ConfirmStep {
    /// Index of the edge in the prediction's `edges`.
    pub edge: usize,
    /// `park` (the thread waits at the site for the others) or `block`
    /// (it goes on into its blocking call, the lock held, and is counted
    /// once it stays there).
    pub action: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<Frame>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_at: Option<Frame>,
    /// The last thread that reached the site.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread: Option<ThreadRef>,
    /// Times a thread reached the site (holding the edge's lock), was
    /// parked there, and gave up waiting for the others.
    pub reached: u32,
    pub parked: u32,
    pub gave_up: u32,
    /// How long the parked thread waited before all were there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waited_ms: Option<u64>,
    /// When a park gave up: a thread that meanwhile waited for a lock the
    /// parked thread held (a gate around both orders keeps them apart).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kept_apart_by: Option<KeptApart>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct KeptApart {
    pub thread: ThreadRef,
    /// The lock's address, and its variable when it has one.
    pub lock: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct InspectInfo {
    /// The first process inspected.
    pub pid: u32,
    /// Every process inspected (one wait-for graph across them).
    #[serde(default)]
    pub pids: Vec<u32>,
    /// The process's glibc version, when it uses glibc.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub glibc: Option<String>,
    pub samples: u32,
    pub interval_ms: u64,
    pub tasks: Vec<TaskInfo>,
    /// The kernel queues blocked threads wait on.
    pub queues: Vec<QueueInfo>,
    /// What inspect cannot see in these processes (a language runtime's
    /// own locks), and how to see it: a report with no finding says
    /// nothing of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub not_visible: Vec<String>,
    /// The file locks the processes hold, waited for or not (/proc/locks).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub file_locks: Vec<FileLockInfo>,
}

/// A file lock a process holds.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct FileLockInfo {
    pub pid: u32,
    /// The file, by the path of the holder's fd on it.
    pub path: String,
    /// `POSIX` (fcntl), `FLOCK`, `OFDLCK` (open file description), `LEASE`.
    pub kind: String,
    /// `read` or `write`.
    pub mode: String,
    /// The byte range (`START-END`), when not the whole file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub range: Option<String>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct TaskInfo {
    #[serde(default)]
    pub pid: u32,
    pub tid: u32,
    pub name: String,
    /// The scheduler state: R, S, D, …
    pub state: String,
    /// What it is blocked in, when it made no progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked_in: Option<String>,
    /// How long it has not run, when it made no progress.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub no_progress_ms: Option<u64>,
    /// The system call it was in at the last sample, when it ran between
    /// samples all the same (a timed wait woken again and again, a retry
    /// loop): not blocked, and not known to be running either.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub in_call: Option<String>,
    /// The timeout of the call it is in, when its arguments give one: it
    /// returns by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<CallTimeout>,
    /// /proc/PID/task/TID/syscall: the number and arguments, `running`, or
    /// `-1` (blocked outside a system call).
    pub syscall: String,
    pub wchan: String,
    /// The kernel stack, where readable.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_stack: Vec<String>,
}

/// A blocked call's timeout, as its arguments give it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct CallTimeout {
    /// A deadline: the time left until it, in ms (negative: passed, the
    /// call is returning).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_ms: Option<i64>,
    /// A timeout counted from the call's start (not known here), in ms.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_ms: Option<u64>,
    /// The call is a sleep: the timeout is all it waits for.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sleep: bool,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct QueueInfo {
    pub description: String,
    /// netlink: bytes waiting in the receive queue (`Rmem`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rmem: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub drops: Option<u64>,
    /// The processes holding the queue's receiving end.
    pub owner_pids: Vec<u32>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct RunInfo {
    pub command: Vec<String>,
    pub trace_dir: String,
    /// `exited`, `signalled`, `timed-out` or `interrupted`.
    pub ending: String,
    /// Exit status or signal number, when it exited or was signalled.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<i32>,
    /// `run --repeat N`: how many runs were made and how they ended (the
    /// ending and code above are the last run's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repeat: Option<RepeatInfo>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct RepeatInfo {
    /// Runs made (fewer than asked when interrupted).
    pub runs: u32,
    pub asked: u32,
    /// How many runs ended each way (`exited`, `timed-out`, …).
    pub endings: std::collections::BTreeMap<String, u32>,
    /// The most processes and threads one run had (`processes` lists
    /// every run's).
    #[serde(default)]
    pub processes_per_run: usize,
    #[serde(default)]
    pub threads_per_run: usize,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ProcessInfo {
    pub pid: u32,
    pub ppid: u32,
    pub exe: String,
    pub cmdline: Vec<String>,
    pub trace: String,
    pub threads: Vec<ThreadRef>,
}

#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub deadlock: usize,
    #[serde(rename = "potential-deadlock")]
    pub potential_deadlock: usize,
    /// Lock-order inversions that could not deadlock in this run (one
    /// thread took two of the orders, or a thread start or join ordered
    /// them).
    #[serde(rename = "lock-order-inversion", default)]
    pub lock_order_inversion: usize,
    pub stall: usize,
    pub hazard: usize,
    #[serde(rename = "stalled-call")]
    pub stalled_call: usize,
    /// Lock misuse that leaves a lock held for ever (a thread that exited
    /// holding it).
    #[serde(default)]
    pub misuse: usize,
    /// Threads blocked when `run` ended the command that no other finding
    /// explains.
    #[serde(default)]
    pub hang: usize,
}

impl Summary {
    /// Counts findings by kind.
    pub fn of(findings: &[Finding]) -> Summary {
        let mut s = Summary::default();
        for f in findings {
            match f.kind.as_str() {
                DEADLOCK => s.deadlock += 1,
                POTENTIAL_DEADLOCK => s.potential_deadlock += 1,
                LOCK_ORDER_INVERSION => s.lock_order_inversion += 1,
                STALL => s.stall += 1,
                HAZARD => s.hazard += 1,
                MISUSE => s.misuse += 1,
                HANG => s.hang += 1,
                _ => s.stalled_call += 1,
            }
        }
        s
    }

    pub fn total(&self) -> usize {
        self.deadlock
            + self.potential_deadlock
            + self.lock_order_inversion
            + self.stall
            + self.hazard
            + self.stalled_call
            + self.misuse
            + self.hang
    }
}

/// Kinds of findings, in order of weight.
pub const DEADLOCK: &str = "deadlock";
pub const POTENTIAL_DEADLOCK: &str = "potential-deadlock";
/// A lock-order cycle that had no chance to deadlock in this run (see
/// [`Serialized`]); two threads running its code paths can.
pub const LOCK_ORDER_INVERSION: &str = "lock-order-inversion";
pub const STALL: &str = "stall";
/// The command ended by `run` (timeout, Ctrl-C) with threads blocked that
/// no other finding explains: each thread's wait and the chain between.
pub const HANG: &str = "hang";
pub const HAZARD: &str = "hazard";
pub const STALLED_CALL: &str = "stalled-call";
/// A lock left held for ever: its thread exited holding it.
pub const MISUSE: &str = "misuse";

/// Every kind, in order of weight (reports list the heaviest first).
pub const KINDS: [&str; 8] = [
    DEADLOCK,
    POTENTIAL_DEADLOCK,
    LOCK_ORDER_INVERSION,
    STALL,
    HANG,
    MISUSE,
    HAZARD,
    STALLED_CALL,
];

/// A kind's rank in [`KINDS`] (unknown kinds last).
pub fn weight(kind: &str) -> usize {
    KINDS.iter().position(|k| *k == kind).unwrap_or(KINDS.len())
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Finding {
    /// One of `deadlock`, `potential-deadlock`, `lock-order-inversion`,
    /// `stall`, `hang`, `misuse`, `hazard`, `stalled-call`.
    pub kind: String,
    /// One line that says what is wrong.
    pub title: String,
    /// The cycle's nodes in order (the last waits for the first), or the
    /// locks and channel of a hazard.
    pub nodes: Vec<NodeInfo>,
    /// How each node waits for the next, and who showed it.
    pub edges: Vec<EdgeInfo>,
    pub threads: Vec<ThreadRef>,
    pub stacks: Vec<StackInfo>,
    /// Where the finding's first blocking call or acquisition happens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Frame>,
    /// Live findings: each thread's state when the watchdog saw it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub thread_states: Vec<ThreadState>,
    /// Stall: how many threads wait behind the root holder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiters: Option<u32>,
    /// Stable across runs of the same build: the kind and the sorted sites
    /// (function and file:line). The same bug in many runs has one.
    #[serde(default)]
    pub signature: String,
    /// The processes of its threads: a finding can span several.
    #[serde(default)]
    pub processes: Vec<ProcessRef>,
    /// Potential deadlocks: the other cycles through the same locks and
    /// threads (the same bug through other calls), as `a -> b -> a` text.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<String>,
    /// How many findings of this signature the analysis merged into this
    /// one (the same code in other threads or processes).
    #[serde(default = "one")]
    pub occurrences: usize,
    /// `run --repeat N`: in how many runs it was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runs: Option<u32>,
    /// Lock-order inversions: why this run could not deadlock on it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub serialized: Option<Serialized>,
    /// Where its threads were created, when the shim saw it.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub created: Vec<ThreadCreation>,
    /// `holdcheck confirm`: what steering toward it gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmation: Option<Confirmation>,
}

/// A thread's creation: by whom, and the stack of that `pthread_create`.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ThreadCreation {
    pub thread: ThreadRef,
    pub by: ThreadRef,
    /// Index in `stacks` of the `pthread_create` call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<usize>,
}

/// Why a lock-order inversion had no chance to deadlock in this run.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct Serialized {
    /// `same-thread` (one thread took two of its orders) or `start-join`
    /// (a thread start or join put two of its orders one after the other).
    pub by: String,
    /// The threads that took two or more of its orders.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub same_thread: Vec<ThreadRef>,
    /// The starts and joins that order two of its orders, first to last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ordered_by: Vec<SyncEvent>,
}

/// A thread start or join.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SyncEvent {
    /// `start` or `join`.
    pub event: String,
    /// The thread started or joined.
    pub thread: ThreadRef,
    /// The thread that created or joined it.
    pub by: ThreadRef,
}

/// `Serialized::by` values.
pub const SAME_THREAD: &str = "same-thread";
pub const START_JOIN: &str = "start-join";

fn one() -> usize {
    1
}

impl Finding {
    /// A finding of `kind` with its graph and stacks; what the analysis adds
    /// later (signature, processes, merged counts) starts empty.
    pub fn new(
        kind: &str,
        title: String,
        graph: (Vec<NodeInfo>, Vec<EdgeInfo>),
        threads: Vec<ThreadRef>,
        stacks: Vec<StackInfo>,
        location: Option<Frame>,
    ) -> Finding {
        let (nodes, edges) = graph;
        Finding {
            kind: kind.to_string(),
            title,
            nodes,
            edges,
            threads,
            stacks,
            location,
            thread_states: Vec::new(),
            waiters: None,
            signature: String::new(),
            processes: Vec::new(),
            variants: Vec::new(),
            occurrences: 1,
            runs: None,
            serialized: None,
            created: Vec::new(),
            confirmation: None,
        }
    }
}

/// A program started without the shim.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct UntracedStart {
    /// The process that started it.
    pub pid: u32,
    /// `execve`, `posix_spawn`, …
    pub call: String,
    pub program: String,
    pub argv: Vec<String>,
    pub reason: String,
}

/// A process named by a finding.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ProcessRef {
    pub pid: u32,
    pub exe: String,
    pub cmdline: Vec<String>,
}

/// A thread as the watchdog saw it.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ThreadState {
    pub thread: ThreadRef,
    /// The locks it holds (`mutex 0x… (write)`).
    pub holds: Vec<String>,
    /// Seen from outside (inspect): a lock shows only when some thread
    /// waits for it, so `holds` lists those, not every lock it holds.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub holds_unseen: bool,
    /// Its wait is on a futex holdcheck cannot read: what that is (`Rust
    /// std::sync::Mutex` when its stack says, else `futex`), or on a glibc
    /// semaphore (`semaphore`), which may be used as a lock and records no
    /// holder either. Whoever holds it, if anyone, is unknown, so no other
    /// thread is said to hold no lock it waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unread_wait: Option<String>,
    /// What it waits for: `lock rwlock 0x… (write)`, or
    /// `sendto() on netlink NETLINK_USERSOCK port 7 (send)`; absent if running.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waiting: Option<String>,
    pub waited_ms: u64,
    /// Waiting in a receive after sending on the same socket.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub awaiting_reply: bool,
    /// Index in `stacks` of its wait's stack, when one was taken.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stack: Option<usize>,
}

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum NodeInfo {
    Lock {
        /// `mutex` or `rwlock`.
        kind: String,
        address: String,
        /// How the lock is held along the cycle: `write` (mutexes too) or
        /// `read`.
        #[serde(skip_serializing_if = "Option::is_none")]
        mode: Option<String>,
        pid: u32,
        generation: u32,
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        writer_preferring: bool,
        /// A file lock's file (its `pid` is 0: it is every process's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<String>,
        /// The variable that holds it (`alarm_lock`, `forks[3]`), from its
        /// module's symbols; none for a lock on the heap or the stack.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// A lock no variable holds: where it was made.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<LockOrigin>,
        /// A same-class inversion's node: its locks' class and their role
        /// (then `name` is the class, `stripes[*]`, and `address` one of
        /// its locks).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        class: Option<LockClass>,
    },
    Channel {
        /// `send` (waiting for room) or `recv` (waiting for data).
        direction: String,
        #[serde(flatten)]
        channel: Channel,
        description: String,
        /// The threads that receive from it (whose process holds its
        /// receiving end), as the shim saw them.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        receivers: Vec<ThreadRef>,
        /// The processes seen sending to it and receiving from it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        senders: Vec<ProcessName>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        receiving: Vec<ProcessName>,
    },
}

/// A process by its pid and program name (`cli`).
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ProcessName {
    pub pid: u32,
    pub name: String,
}

/// Where a lock on the heap (or the stack) was made.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct LockOrigin {
    /// `init` (its `pthread_*_init` call) or `first-held` (the first
    /// acquisition seen to hold it, for a lock never initialised by a
    /// call, such as a C++ `std::mutex`).
    pub how: String,
    pub at: Frame,
}

/// `LockOrigin::how` values.
pub const ORIGIN_INIT: &str = "init";
pub const ORIGIN_FIRST_HELD: &str = "first-held";

#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ThreadRef {
    pub pid: u32,
    pub tid: u32,
    pub name: String,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct EdgeInfo {
    /// Index in `nodes` of the node held (or queue waited on).
    pub from: usize,
    /// Index in `nodes` of what is waited for next.
    pub to: usize,
    /// `lock-order`, `held-across-call`, `drain`, `produce` or
    /// `queue-wait` (and `waits-behind` in live findings).
    pub relation: String,
    pub thread: ThreadRef,
    /// The blocking call (held-across-call) or the channel call (drain,
    /// produce).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_mode: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wanted_mode: Option<String>,
    /// Where the held lock was acquired.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_at: Option<Frame>,
    /// Where the wanted lock is acquired (drain, produce).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub acquired_at: Option<Frame>,
    /// Calls seen and the longest one (held-across-call).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_ns: Option<u64>,
    /// The tick of the clock `max_ns` of a held-across-call was measured
    /// with: the longest call took `max_ns` give or take this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_ns_tick: Option<u64>,
    /// Index in `stacks` of the acquisition or call stack.
    pub stack: usize,
    /// Index in `stacks` of the held lock's acquisition: recorded whole
    /// (`held_stacks=1`), or the held lock's site followed by the callers
    /// of its function, when that function is still on `stack`; just the
    /// site when it was taken in a lock wrapper that has returned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_stack: Option<usize>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct StackInfo {
    pub pid: u32,
    pub tid: u32,
    /// What the stack shows: `sendto() on netlink NETLINK_USERSOCK port 7 (send)`.
    pub what: String,
    pub frames: Vec<Frame>,
}
