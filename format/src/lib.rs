//! The holdcheck trace schema, shared by the shim (writer) and the analyzer
//! (reader), and the plan and shared state of `holdcheck confirm`
//! ([`steer`]).
//!
//! A trace is one file per process, `holdcheck.<pid>.<n>.trace`, in JSON Lines:
//! every line is one [`Record`]. The shim writes each record with a single
//! `write(2)` on an `O_APPEND` descriptor, so a record is either wholly on disk
//! or not at all (a `kill -9` can leave at most one truncated last line, which
//! the reader reports and skips).
//!
//! Records are *facts*, deduplicated by the shim: a trace grows with the number
//! of distinct behaviours, not with run time. Stacks, locks, channels, threads
//! and modules are metadata records that facts refer to by id.

use serde::{Deserialize, Serialize};

pub mod steer;

/// Bumped whenever a record changes incompatibly.
pub const TRACE_VERSION: u32 = 1;

/// File name prefix and suffix of trace files inside a trace directory.
pub const TRACE_PREFIX: &str = "holdcheck.";
pub const TRACE_SUFFIX: &str = ".trace";

/// How a lock is held or wanted.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// A mutex, or an rwlock held for writing.
    Write,
    /// An rwlock held for reading.
    Read,
}

mod line;

/// Mixes a value into a hash (FxHash-style): fact keys and identities only
/// need to spread, fast.
#[inline(always)]
pub fn mix(h: u64, v: u64) -> u64 {
    (h.rotate_left(5) ^ v).wrapping_mul(0x517c_c1b7_2722_0a95)
}

/// The lock address of a file (device and inode): the same in every
/// process, and in the shim and `inspect` alike.
pub fn file_lock_addr(dev: u64, ino: u64) -> u64 {
    FILE_LOCK_BIT | mix(dev, ino) >> 1
}

impl LockRef {
    /// A file lock, whose identity does not depend on the process.
    pub fn is_file(&self) -> bool {
        self.addr & FILE_LOCK_BIT != 0
    }
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Write => "write",
            Mode::Read => "read",
        }
    }
}

/// Which side of a kernel queue a thread waits on.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Waiting for room in the queue (send, write).
    Send,
    /// Waiting for data in the queue (recv, read).
    Recv,
}

impl Direction {
    /// The side that waits for a party on this side: receivers wait for
    /// senders, senders for receivers.
    pub fn opposite(self) -> Direction {
        match self {
            Direction::Send => Direction::Recv,
            Direction::Recv => Direction::Send,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Send => "send",
            Direction::Recv => "recv",
        }
    }
}

/// A lock as seen by one process: its address and the generation of that
/// address (every `init`/`destroy` starts a new one, so a reused address is a
/// new lock).
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct LockRef {
    pub addr: u64,
    pub gen: u32,
}

/// A lock held by a thread when something else happened.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Held {
    pub lock: LockRef,
    pub mode: Mode,
    /// Return address of the call that acquired it (one frame, taken for free
    /// on the fast path).
    pub site: u64,
    /// The whole stack of that call, when the shim records one per
    /// acquisition (`HOLDCHECK_OPTIONS=held_stacks=1`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<u64>,
}

/// What kind of pthread object a lock is.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    Mutex,
    Rwlock,
    /// A file lock (`flock`, `fcntl` record locks), shared between
    /// processes: its identity is the file's, the same in every process.
    File,
    /// A `pthread_spinlock_t`: its waiters spin (they run, never sleep).
    Spin,
}

impl LockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LockKind::Mutex => "mutex",
            LockKind::Rwlock => "rwlock",
            LockKind::File => "file lock",
            LockKind::Spin => "spinlock",
        }
    }
}

/// The bit that marks a file lock's address: its address is a hash of the
/// file's device and inode, the same in every process.
pub const FILE_LOCK_BIT: u64 = 1 << 63;

/// The identity of a kernel queue, global across processes: both ends of one
/// channel resolve to the same value, different channels never do.
///
/// A channel names the *receive queue*: a send on a socket lands in the queue
/// of the peer, a receive drains the socket's own queue.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(tag = "family", rename_all = "lowercase")]
pub enum Channel {
    /// A netlink socket's receive queue, by protocol and port id.
    Netlink { protocol: u32, port: u32 },
    /// An AF_UNIX socket's receive queue: by the receiving socket's inode, or
    /// for an unconnected datagram send by the bound path it was sent to.
    /// A send on a connection its server has not accepted yet (the
    /// receiving socket has no inode yet) names the sending socket in
    /// `from`; the receiver's [`Record::UnixPeer`] maps it to `inode`.
    Unix {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        inode: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        path: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<u64>,
    },
    /// An anonymous pipe, by its inode (both ends share it).
    Pipe { inode: u64 },
    /// A named pipe, by device and inode.
    Fifo { dev: u64, inode: u64 },
    /// A TCP connection's direction: the queue of `dst` fed by `src`.
    Tcp { dst: String, src: String },
    /// A UDP socket's receive queue, by its local address.
    Udp { dst: String },
    /// A listening socket's queue of connections not yet accepted:
    /// `connect` waits for room in it, `accept` for a connection. By
    /// address: `unix:/path`, `unix:@name`, or `tcp:PORT` (a loopback
    /// connect reaches a wildcard listener alike).
    Listen { addr: String },
    /// The exit of a process: `waitpid` waits for it.
    Exit { pid: u32 },
    /// A condition variable of a process, by address and generation
    /// (`pthread_cond_destroy` starts a new one): `pthread_cond_wait`
    /// without a timeout waits to receive a signal, `pthread_cond_signal`
    /// and `pthread_cond_broadcast` send one (and never block).
    Condvar { pid: u32, addr: u64, gen: u32 },
    /// A POSIX semaphore of a process, by address and generation:
    /// `sem_wait` without a timeout waits to receive a post, `sem_post`
    /// sends one (and never blocks).
    Semaphore { pid: u32, addr: u64, gen: u32 },
    /// The end of a thread of a process: `pthread_join` waits for it, and
    /// the thread sends it when it returns or exits.
    Thread { pid: u32, tid: u32 },
    /// A pthread barrier of a process, by address (and its variable's
    /// name, where one holds it): `pthread_barrier_wait` waits to receive
    /// the arrival of the threads still to come, each of which sends it.
    /// Read from outside only (`holdcheck inspect`).
    Barrier {
        pid: u32,
        addr: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
    },
}

impl Channel {
    /// A TCP connection's queue as seen from one end: a send lands in the
    /// peer's queue (fed by us), a receive drains ours (fed by the peer).
    pub fn tcp(dir: Direction, local: String, peer: String) -> Channel {
        match dir {
            Direction::Send => Channel::Tcp {
                dst: peer,
                src: local,
            },
            Direction::Recv => Channel::Tcp {
                dst: local,
                src: peer,
            },
        }
    }

    /// A short human name: `netlink protocol 2 port 4242`.
    pub fn describe(&self) -> String {
        match self {
            Channel::Netlink { protocol, port } => {
                format!("netlink {} port {port}", netlink_protocol(*protocol))
            }
            Channel::Unix { inode, path, from } => match (inode, path, from) {
                (_, Some(p), _) => format!("unix socket {p}"),
                (Some(i), None, _) => format!("unix socket inode {i}"),
                (None, None, Some(f)) => {
                    format!("unix socket fed by inode {f} (connection not accepted yet)")
                }
                (None, None, None) => "unix socket".to_string(),
            },
            Channel::Pipe { inode } => format!("pipe inode {inode}"),
            Channel::Fifo { inode, .. } => format!("fifo inode {inode}"),
            Channel::Tcp { dst, src } => format!("tcp {src} -> {dst}"),
            Channel::Udp { dst } => format!("udp {dst}"),
            Channel::Listen { addr } => format!("listening socket {addr}"),
            Channel::Exit { pid } => format!("exit of process {pid}"),
            Channel::Condvar { addr, .. } => format!("condition variable {addr:#x}"),
            Channel::Semaphore { addr, .. } => format!("semaphore {addr:#x}"),
            Channel::Thread { tid, .. } => format!("end of thread {tid}"),
            Channel::Barrier { name: Some(n), .. } => format!("barrier {n}"),
            Channel::Barrier { addr, .. } => format!("barrier {addr:#x}"),
        }
    }

    /// A kernel queue between processes or threads (a socket, a pipe, a
    /// fifo), not a thread's end, a child's exit or a wake-up.
    pub fn is_queue(&self) -> bool {
        !matches!(
            self,
            Channel::Exit { .. }
                | Channel::Condvar { .. }
                | Channel::Semaphore { .. }
                | Channel::Thread { .. }
                | Channel::Barrier { .. }
        )
    }

    /// A queue of signals that a send never blocks on (a condition
    /// variable, a semaphore): any one sender can wake a receiver.
    pub fn is_posted(&self) -> bool {
        matches!(self, Channel::Condvar { .. } | Channel::Semaphore { .. })
    }

    pub fn family(&self) -> &'static str {
        match self {
            Channel::Netlink { .. } => "netlink",
            Channel::Unix { .. } => "unix",
            Channel::Pipe { .. } => "pipe",
            Channel::Fifo { .. } => "fifo",
            Channel::Tcp { .. } => "tcp",
            Channel::Udp { .. } => "udp",
            Channel::Listen { .. } => "listen",
            Channel::Exit { .. } => "exit",
            Channel::Condvar { .. } => "condvar",
            Channel::Semaphore { .. } => "semaphore",
            Channel::Thread { .. } => "thread",
            Channel::Barrier { .. } => "barrier",
        }
    }
}

/// A netlink protocol by its name in netlink(7) (`NETLINK_USERSOCK`), or
/// `protocol N`.
pub fn netlink_protocol(p: u32) -> String {
    let name = match p {
        0 => "NETLINK_ROUTE",
        2 => "NETLINK_USERSOCK",
        4 => "NETLINK_SOCK_DIAG",
        5 => "NETLINK_NFLOG",
        6 => "NETLINK_XFRM",
        7 => "NETLINK_SELINUX",
        8 => "NETLINK_ISCSI",
        9 => "NETLINK_AUDIT",
        10 => "NETLINK_FIB_LOOKUP",
        11 => "NETLINK_CONNECTOR",
        12 => "NETLINK_NETFILTER",
        15 => "NETLINK_KOBJECT_UEVENT",
        16 => "NETLINK_GENERIC",
        _ => return format!("protocol {p}"),
    };
    name.to_string()
}

/// Most locks one thread is tracked holding at once (a record names at
/// most this many held locks); beyond it the analysis is partial.
pub const MAX_HELD: usize = 1024;

/// A thread's facts are told apart by phase: phase `k` runs from its
/// `k`-th `pthread_create`/`pthread_join` to the next. Phases from
/// `PHASES - 1` on are one (a thread that starts a thread per task would
/// otherwise record its facts again for each).
pub const PHASES: u32 = 16;

fn is_zero(x: &u32) -> bool {
    *x == 0
}

/// One line of a trace file.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Record {
    /// First record of every trace file.
    Header {
        version: u32,
        pid: u32,
        ppid: u32,
        exe: String,
        cmdline: Vec<String>,
        /// The tick of the clock that times blocking calls
        /// ([`Record::CallStats`]' `max_ns`), in ns: a call took its
        /// `max_ns` give or take one tick. Absent in older traces.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        call_clock_res_ns: Option<u64>,
    },
    /// A loaded ELF object: `base` is the load bias (`dlpi_addr`), segments
    /// are absolute `[start, end)` ranges of its PT_LOAD segments.
    Module {
        path: String,
        base: u64,
        segments: Vec<(u64, u64)>,
    },
    /// A thread's name (written again when it changes).
    Thread { tid: u32, name: String },
    /// A call stack: return addresses, innermost first, shim frames removed.
    Stack { id: u64, frames: Vec<u64> },
    /// A lock's metadata, written before the first fact that names it.
    Lock {
        lock: LockRef,
        kind: LockKind,
        /// rwlock only: glibc's writer-preferring kind
        /// (`PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP`), under which a
        /// queued writer blocks new readers.
        #[serde(default)]
        writer_preferring: bool,
        /// mutex only: a recursive mutex.
        #[serde(default)]
        recursive: bool,
        /// file lock only: the file's path.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        file: Option<String>,
        /// Return address of the `pthread_*_init` call that made it, when
        /// the shim saw one (a lock on the heap is named by it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        init: Option<u64>,
    },
    /// A lock-order fact: `tid` acquired `lock` in `mode` while holding
    /// `held` (innermost last). `try_lock` acquisitions cannot block: the
    /// shim records none now, and the analyzer ignores those of older
    /// traces.
    LockOrder {
        tid: u32,
        lock: LockRef,
        mode: Mode,
        #[serde(default)]
        try_lock: bool,
        held: Vec<Held>,
        stack: u64,
        /// The thread's phase when it first did this (see [`PHASES`]): a
        /// fact is recorded again in each phase, so the analysis knows
        /// whether it came before or after a thread the same thread
        /// started or joined.
        #[serde(default, skip_serializing_if = "is_zero")]
        phase: u32,
    },
    /// Thread `tid` (pthread handle `handle`) started; `parent` created it
    /// at the end of its phase `seq` (its `seq`-th create or join, from 0).
    ThreadStart {
        tid: u32,
        parent: u32,
        seq: u32,
        handle: u64,
        /// The stack of the `pthread_create` call that made it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        stack: Option<u64>,
    },
    /// Thread `tid` joined thread `joined` (a successful `pthread_join`):
    /// the end of its phase `seq`. Everything `joined` did comes before
    /// what `tid` does next.
    ThreadJoined { tid: u32, joined: u32, seq: u32 },
    /// `held` were held while a blocking-capable call ran on a channel.
    /// `id` is the fact id that [`Record::CallStats`] updates.
    HeldAcrossCall {
        id: u64,
        tid: u32,
        held: Vec<Held>,
        call: String,
        channel: Channel,
        direction: Direction,
        stack: u64,
    },
    /// Running count and longest duration of a [`Record::HeldAcrossCall`]
    /// fact; the reader keeps the largest values seen.
    CallStats { id: u64, count: u64, max_ns: u64 },
    /// `tid` sends to (`Send`) or receives from (`Recv`) a channel in a
    /// blocking-capable call.
    ChannelUse {
        tid: u32,
        channel: Channel,
        direction: Direction,
        call: String,
        stack: u64,
    },
    /// A queue dependency on a lock:
    /// - `direction: Recv` (a drain dependency): a consumer of `channel`
    ///   acquired `lock` between two receives from it, so the queue is not
    ///   drained while the consumer waits for the lock;
    /// - `direction: Send` (a produce dependency): a producer of `channel`
    ///   acquired `lock` between two sends to it, so nothing arrives while the
    ///   producer waits for the lock.
    QueueLock {
        tid: u32,
        channel: Channel,
        direction: Direction,
        lock: LockRef,
        mode: Mode,
        /// Return address of the lock acquisition.
        site: u64,
        /// Stack of the channel call that closed the interval.
        stack: u64,
    },
    /// A queue dependency on another queue: a consumer (`direction: Recv`)
    /// or producer (`direction: Send`) of `channel` blocked in a call on
    /// `waited` (from side `waited_direction`), on another descriptor,
    /// between two operations on `channel`. So whoever waits on `channel`
    /// may wait for `waited` too: the edge that joins an RPC to the
    /// callback it makes. A reply on the socket a request came in on is not
    /// such a dependency (the request was already there).
    QueueWait {
        tid: u32,
        channel: Channel,
        direction: Direction,
        waited: Channel,
        waited_direction: Direction,
        /// Stack of the blocking call on `waited`.
        stack: u64,
    },
    /// This process started a program that will run without the shim
    /// (its environment drops `LD_PRELOAD` or moves `HOLDCHECK_DIR`, or it is
    /// set-uid): that program is not traced.
    Untraced {
        /// `execve`, `posix_spawn`, …
        call: String,
        program: String,
        argv: Vec<String>,
        reason: String,
    },
    /// A connected unix socket `inode` receives from socket `peer`: a
    /// channel named `from: peer` (sent before the connection was accepted)
    /// is this socket's queue.
    UnixPeer { inode: u64, peer: u64 },
    /// A bound of the shim was hit; the analysis of this process is partial.
    Partial { reason: String },
    /// Thread `tid` exited (or was cancelled) still holding `lock`, taken
    /// at `site`: every later locker of it waits for ever.
    ExitedHolding {
        tid: u32,
        lock: LockRef,
        kind: LockKind,
        mode: Mode,
        site: u64,
    },
    /// Thread `tid` misused a lock (or a condition variable with it).
    Misuse(Misuse),
    /// Fork child `pid` of this process could not create a trace of its
    /// own (written by the child, through the descriptor of this trace it
    /// inherited): what it did is not analysed.
    NoTrace { pid: u32, reason: String },
    /// Something the live watchdog saw while the process ran: a real
    /// deadlock, a stall, or a stalled call.
    Observed(Observed),
}

/// A misuse of a lock (or of a condition variable with it): see
/// [`MisuseKind`]. `stack` is the misusing call's.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Misuse {
    pub tid: u32,
    pub what: MisuseKind,
    pub lock: LockRef,
    pub kind: LockKind,
    pub stack: u64,
    /// The condition variable (cond-wait-unheld, cond-two-mutexes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condvar: Option<LockRef>,
    /// cond-two-mutexes: the mutex the condition variable was waited
    /// with first, by thread `other_tid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other: Option<LockRef>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_tid: Option<u32>,
    /// The stack of the earlier call it goes with: the relock glibc
    /// refused (relock-ignored).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub other_stack: Option<u64>,
    /// Return address of the acquisition of the lock (held-too-long,
    /// destroy-locked by its holder).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<u64>,
    /// held-too-long: how long it was held, in nanoseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_ns: Option<u64>,
    /// The thread that held the lock (unlock-not-held, destroy-locked),
    /// when the lock records an owner.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<u32>,
}

/// What a [`Record::Misuse`] is.
#[derive(Serialize, Deserialize, Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum MisuseKind {
    /// Unlocked a lock this thread does not hold (unlocked, or another
    /// thread's).
    UnlockNotHeld,
    /// A relock glibc refused with `EDEADLK`, after which the thread
    /// unlocked the lock as if it had taken it twice: its first unlock
    /// released the lock its caller still counts on.
    RelockIgnored,
    /// Destroyed a lock that is locked.
    DestroyLocked,
    /// Locked or unlocked a destroyed lock (not initialised again).
    UseDestroyed,
    /// `pthread_cond_wait` with a mutex the thread does not hold.
    CondWaitUnheld,
    /// One condition variable waited on with two different mutexes.
    CondTwoMutexes,
    /// A lock held longer than the threshold (`HOLDCHECK_HOLD_MS`).
    HeldTooLong,
}

impl MisuseKind {
    pub fn as_str(self) -> &'static str {
        match self {
            MisuseKind::UnlockNotHeld => "unlock-not-held",
            MisuseKind::RelockIgnored => "relock-ignored",
            MisuseKind::DestroyLocked => "destroy-locked",
            MisuseKind::UseDestroyed => "use-destroyed",
            MisuseKind::CondWaitUnheld => "cond-wait-unheld",
            MisuseKind::CondTwoMutexes => "cond-two-mutexes",
            MisuseKind::HeldTooLong => "held-too-long",
        }
    }
}

/// `Waiting::Other` of an observed thread that has exited (the owner of a
/// lock it left held).
pub const EXITED: &str = "exited";

/// What a thread waits for right now.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "on", rename_all = "lowercase")]
pub enum Waiting {
    /// Blocked acquiring a lock.
    Lock {
        lock: LockRef,
        kind: LockKind,
        mode: Mode,
    },
    /// Blocked in a call on a kernel queue.
    Call {
        call: String,
        channel: Channel,
        direction: Direction,
        /// The thread sent on the same socket before: it waits for a reply.
        #[serde(default)]
        awaiting_reply: bool,
    },
    /// Blocked in a system call tied to no lock or queue holdcheck knows
    /// (seen from outside: the futex of a condition variable, a semaphore).
    Other { what: String },
}

/// A thread as the watchdog saw it.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ObservedThread {
    pub tid: u32,
    /// Its process, when the snapshot spanned several (else the trace's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    pub name: String,
    pub held: Vec<Held>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting: Option<Waiting>,
    /// How long it had been waiting, in milliseconds.
    #[serde(default)]
    pub waited_ms: u64,
    /// Stack of the wait, when the shim took one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<u64>,
}

/// A node of an observed wait cycle or chain.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ObservedNode {
    Lock {
        lock: LockRef,
        kind: LockKind,
        mode: Mode,
        /// Its process, when the snapshot spanned several.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
    },
    Channel {
        channel: Channel,
        direction: Direction,
    },
}

/// An edge of an observed cycle: `tid` holds (or drains, or feeds) node
/// `from` and waits for node `to`.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct ObservedEdge {
    pub from: usize,
    pub to: usize,
    pub tid: u32,
    /// `lock-order`, `held-across-call`, `drain`, `produce`, or
    /// `waits-behind` (a reader queued behind a writer).
    pub relation: String,
}

/// A live finding.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct Observed {
    /// `deadlock`, `stall` or `stalled-call`.
    pub kind: String,
    pub title: String,
    /// A deadlock's cycle in order (the last waits for the first); a stall's
    /// contended lock and what its holder is blocked on; a stalled call's
    /// held locks and channel.
    pub nodes: Vec<ObservedNode>,
    pub edges: Vec<ObservedEdge>,
    /// The threads involved: for a stall, the root holder first.
    pub threads: Vec<ObservedThread>,
    /// Stall: how many threads wait behind the root.
    #[serde(default)]
    pub waiters: u32,
}

impl Record {
    /// Calls `f` on every channel the record names.
    pub fn channels_mut(&mut self, mut f: impl FnMut(&mut Channel)) {
        match self {
            Record::HeldAcrossCall { channel, .. }
            | Record::ChannelUse { channel, .. }
            | Record::QueueLock { channel, .. } => f(channel),
            Record::QueueWait {
                channel, waited, ..
            } => {
                f(channel);
                f(waited);
            }
            Record::Observed(o) => {
                for n in o.nodes.iter_mut() {
                    if let ObservedNode::Channel { channel, .. } = n {
                        f(channel);
                    }
                }
                for t in o.threads.iter_mut() {
                    if let Some(Waiting::Call { channel, .. }) = &mut t.waiting {
                        f(channel);
                    }
                }
            }
            _ => {}
        }
    }

    /// Serialises one record as a trace line (with the newline).
    pub fn to_line(&self) -> Vec<u8> {
        let mut v = Vec::new();
        self.write_line(&mut v)
            .expect("trace records always serialise");
        v
    }

    /// Appends the record's trace line (with the newline) to `out`; on an
    /// error, `out` is left as it was.
    pub fn write_line(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        if line::write_fast(self, out) {
            return Ok(());
        }
        let start = out.len();
        match serde_json::to_writer(&mut *out, self) {
            Ok(()) => {
                out.push(b'\n');
                Ok(())
            }
            Err(e) => {
                out.truncate(start);
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_through_a_line() {
        let r = Record::HeldAcrossCall {
            id: 7,
            tid: 42,
            held: vec![Held {
                lock: LockRef {
                    addr: 0x1000,
                    gen: 1,
                },
                mode: Mode::Write,
                site: 0x4011,
                stack: None,
            }],
            call: "sendto".into(),
            channel: Channel::Netlink {
                protocol: 2,
                port: 4242,
            },
            direction: Direction::Send,
            stack: 9,
        };
        let line = r.to_line();
        assert_eq!(*line.last().unwrap(), b'\n');
        let back: Record = serde_json::from_slice(&line).unwrap();
        assert_eq!(back, r);
        let text = String::from_utf8(line).unwrap();
        assert!(text.contains(r#""family":"netlink""#), "{text}");
    }

    #[test]
    fn both_ends_of_a_tcp_connection_name_one_queue_per_direction() {
        let a = "127.0.0.1:1000".to_string();
        let b = "127.0.0.1:2000".to_string();
        // A sends to B: the queue B receives from.
        assert_eq!(
            Channel::tcp(Direction::Send, a.clone(), b.clone()),
            Channel::tcp(Direction::Recv, b.clone(), a.clone())
        );
        assert_ne!(
            Channel::tcp(Direction::Send, a.clone(), b.clone()),
            Channel::tcp(Direction::Send, b, a)
        );
    }

    #[test]
    fn channel_descriptions_name_the_queue() {
        let c = Channel::Netlink {
            protocol: 2,
            port: 7,
        };
        assert_eq!(c.describe(), "netlink NETLINK_USERSOCK port 7");
        assert_eq!(c.family(), "netlink");
        let other = Channel::Netlink {
            protocol: 31,
            port: 7,
        };
        assert_eq!(other.describe(), "netlink protocol 31 port 7");
        let u = Channel::Unix {
            inode: Some(5),
            path: None,
            from: None,
        };
        assert_eq!(u.describe(), "unix socket inode 5");
    }
}
