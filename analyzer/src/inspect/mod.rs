//! `holdcheck inspect PID`: the wait-for graph of a process that is hung
//! right now, with no preload: from /proc (threads, system calls, fds,
//! /proc/net/netlink) and the process's memory (glibc lock owner fields at
//! the futex a thread sleeps on). Read-only: it never writes to the process,
//! never stops or traces it.
//!
//! The snapshot it builds is the one the shim's watchdog builds from
//! published state, and the same analysis (`holdcheck_format::waitfor`)
//! finds the deadlocks and stalls.

mod glibc;
mod memory;
mod procfs;
mod stacks;

use crate::findings;
use crate::model::{Model, Process};
use crate::report::{InspectInfo, QueueInfo, Report, TaskInfo};
use anyhow::{Context, Result};
use glibc::FutexWait;
use holdcheck_format::waitfor::{self, ChannelUsers, Env, HeldLock, Snap, Wait};
use holdcheck_format::{
    Channel, Direction, LockKind, LockRef, Mode, Observed, ObservedNode, ObservedThread, Waiting,
};
use procfs::{Syscall, Task};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

pub struct Options {
    /// The processes, analysed as one: a wait can pass from one to another
    /// through a kernel queue.
    pub pids: Vec<u32>,
    /// Samples of every thread, `interval` apart: a thread whose context
    /// switches and system call did not change has made no progress.
    pub samples: u32,
    pub interval: Duration,
    /// Age at which a wait chain is a stall and a blocked call is reported.
    pub stall_ms: u64,
    /// Take the user-space stacks of the threads that made no progress (a
    /// brief ptrace stop each).
    pub stacks: bool,
}

/// The system calls that wait on a kernel queue: (name, direction).
fn channel_call(nr: u64) -> Option<(&'static str, Direction)> {
    Some(match nr {
        0 => ("read", Direction::Recv),
        1 => ("write", Direction::Send),
        19 => ("readv", Direction::Recv),
        20 => ("writev", Direction::Send),
        44 => ("sendto", Direction::Send),
        45 => ("recvfrom", Direction::Recv),
        46 => ("sendmsg", Direction::Send),
        47 => ("recvmsg", Direction::Recv),
        299 => ("recvmmsg", Direction::Recv),
        307 => ("sendmmsg", Direction::Send),
        _ => return None,
    })
}

/// A readable name for other blocking system calls.
fn syscall_name(nr: u64) -> String {
    match nr {
        7 => "poll",
        23 => "select",
        35 => "nanosleep",
        42 => "connect",
        43 => "accept",
        61 => "wait4",
        202 => "futex",
        230 => "clock_nanosleep",
        232 => "epoll_wait",
        270 => "pselect6",
        271 => "ppoll",
        281 => "epoll_pwait",
        288 => "accept4",
        _ => return format!("syscall {nr}"),
    }
    .to_string()
}

/// The queue a blocked call on `fd` waits on, as the shim would name it.
fn channel_of(
    pid: u32,
    nr: u64,
    args: &[u64; 6],
    dir: Direction,
    netlink: &[procfs::NetlinkSocket],
    tcp: &[procfs::TcpSocket],
) -> Option<Channel> {
    let target = procfs::fd_target(pid, args[0])?;
    if let Some(inode) = procfs::bracket_inode(&target, "pipe") {
        return Some(Channel::Pipe { inode });
    }
    let inode = procfs::bracket_inode(&target, "socket")?;
    if let Some(nl) = netlink.iter().find(|s| s.inode == inode) {
        let port = match dir {
            Direction::Recv => nl.port,
            Direction::Send => send_port(pid, nr, args).unwrap_or(0),
        };
        return Some(Channel::Netlink {
            protocol: nl.protocol,
            port,
        });
    }
    if let Some(t) = tcp.iter().find(|t| t.inode == inode) {
        return Some(Channel::tcp(dir, t.local.clone(), t.remote.clone()));
    }
    // Otherwise a unix socket (the only other family sock_diag answers for).
    // A send on a connection not accepted yet names the sending socket,
    // as the shim does.
    let peer = match dir {
        Direction::Recv => None,
        Direction::Send => Some(holdcheck_format::sockdiag::unix_peer_inode(inode)),
    };
    Some(match peer {
        None => Channel::Unix {
            inode: Some(inode),
            path: None,
            from: None,
        },
        Some(Some(peer)) => Channel::Unix {
            inode: Some(peer),
            path: None,
            from: None,
        },
        Some(None) => Channel::Unix {
            inode: None,
            path: None,
            from: Some(inode),
        },
    })
}

/// What a thread blocked in poll/ppoll (its `pollfd` array) or epoll_wait
/// (the epoll fd's watched fds, from fdinfo) waits on: the queues, named.
fn polled_channels(
    pid: u32,
    nr: u64,
    args: &[u64; 6],
    netlink: &[procfs::NetlinkSocket],
    tcp: &[procfs::TcpSocket],
) -> Option<String> {
    // (fd, direction) pairs.
    let fds: Vec<(u64, Direction)> = match nr {
        7 | 271 => {
            let n = (args[1] as usize).min(64);
            let b = memory::read(pid, args[0], n * 8).ok()?;
            (0..n)
                .map(|i| {
                    let fd = memory::u32_at(&b, i * 8) as i32;
                    let events = u16::from_ne_bytes([b[i * 8 + 4], b[i * 8 + 5]]);
                    let dir = if events & libc::POLLOUT as u16 != 0 {
                        Direction::Send
                    } else {
                        Direction::Recv
                    };
                    (fd, dir)
                })
                .filter(|(fd, _)| *fd >= 0)
                .map(|(fd, d)| (fd as u64, d))
                .collect()
        }
        232 | 281 => {
            let info = std::fs::read_to_string(format!("/proc/{pid}/fdinfo/{}", args[0])).ok()?;
            info.lines()
                .filter_map(|l| {
                    let mut it = l.split_whitespace();
                    (it.next()? == "tfd:").then_some(())?;
                    let fd = it.next()?.parse().ok()?;
                    let events = u32::from_str_radix(it.nth(1)?, 16).ok()?;
                    let dir = if events & libc::EPOLLOUT as u32 != 0 {
                        Direction::Send
                    } else {
                        Direction::Recv
                    };
                    Some((fd, dir))
                })
                .take(64)
                .collect()
        }
        _ => return None,
    };
    let names: Vec<String> = fds
        .iter()
        .map(|&(fd, dir)| {
            // The queue a receive (or send) on this fd would wait on.
            let call = if dir == Direction::Recv { 45 } else { 44 };
            let mut a = [0u64; 6];
            a[0] = fd;
            match channel_of(pid, call, &a, dir, netlink, tcp) {
                Some(c) => format!("{} ({})", c.describe(), dir.as_str()),
                None => format!("fd {fd}"),
            }
        })
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

/// The destination port of a blocked netlink sendto/sendmsg, read from the
/// caller's sockaddr_nl.
fn send_port(pid: u32, nr: u64, args: &[u64; 6]) -> Option<u32> {
    let (addr, len) = match nr {
        44 => (args[4], args[5]),
        46 => {
            let msg = memory::read(pid, args[1], 16).ok()?;
            (memory::u64_at(&msg, 0), memory::u32_at(&msg, 8) as u64)
        }
        _ => return None,
    };
    if addr == 0 || len < 12 {
        return None;
    }
    let sa = memory::read(pid, addr, 12).ok()?;
    (u16::from_ne_bytes([sa[0], sa[1]]) == libc::AF_NETLINK as u16).then(|| memory::u32_at(&sa, 4))
}

struct InspectEnv<'a> {
    pids: Vec<u32>,
    names: &'a HashMap<u32, String>,
    blocked_in: &'a HashMap<u32, String>,
}

impl Env for InspectEnv<'_> {
    fn writer_preferring(&self, addr: u64, kind: LockKind) -> bool {
        let (idx, addr) = decode(addr);
        kind == LockKind::Rwlock
            && idx.is_some_and(|i| glibc::writer_preferring(self.pids[i], addr))
    }
    fn lock_ref(&self, addr: u64) -> LockRef {
        // Still encoded: `attribute` decodes it with the process.
        LockRef { addr, gen: 0 }
    }
    fn thread_name(&self, tid: u32) -> String {
        self.names.get(&tid).cloned().unwrap_or_default()
    }
    fn blocked_in(&self, tid: u32) -> Option<String> {
        self.blocked_in.get(&tid).cloned()
    }
}

fn sample(pid: u32) -> Result<Vec<Task>> {
    let mut v = Vec::new();
    for tid in procfs::tids(pid)? {
        if let Some(t) = procfs::task(pid, tid)? {
            v.push(t);
        }
    }
    Ok(v)
}

/// Lock addresses of several processes share one snapshot: user-space
/// addresses fit in 47 bits, so 1 + the process's index goes above them.
const PROCESS_SHIFT: u32 = 47;

fn encode(idx: usize, addr: u64) -> u64 {
    addr | (idx as u64 + 1) << PROCESS_SHIFT
}

/// A lock address of the snapshot: the process it belongs to and its own
/// address. File locks belong to no process (their address is global).
fn decode(addr: u64) -> (Option<usize>, u64) {
    if addr & holdcheck_format::FILE_LOCK_BIT != 0 {
        return (None, addr);
    }
    let idx = addr >> PROCESS_SHIFT;
    (
        (idx > 0).then(|| idx as usize - 1),
        addr & ((1 << PROCESS_SHIFT) - 1),
    )
}

/// One process as sampled.
struct Sampled {
    pid: u32,
    glibc: Result<String>,
    locks_readable: bool,
    first: Vec<Task>,
    last: Vec<Task>,
}

impl Sampled {
    /// Whether a thread made no progress between the samples, in a call.
    fn stuck(&self, t: &Task) -> bool {
        matches!(t.syscall, Syscall::In { .. })
            && self
                .first
                .iter()
                .find(|b| b.tid == t.tid)
                .is_some_and(|b| b.switches == t.switches && b.syscall == t.syscall)
    }
}

/// What the threads of all sampled processes wait for and hold.
#[derive(Default)]
struct Waits {
    /// By tid; lock addresses encoded with the process index.
    waits: BTreeMap<u32, Wait>,
    held: HashMap<u32, Vec<HeldLock>>,
    blocked_in: HashMap<u32, String>,
    /// tid → index of its process.
    process_of: HashMap<u32, usize>,
    /// File locks waited on (global addresses).
    file_waits: Vec<u64>,
    names: HashMap<u32, String>,
    warnings: Vec<String>,
}

/// Reads what each thread that made no progress waits for, and the owners
/// of the locks waited on.
fn read_waits(
    procs: &[Sampled],
    netlink: &[procfs::NetlinkSocket],
    tcp: &[procfs::TcpSocket],
) -> Waits {
    let mut w = Waits::default();
    for (idx, p) in procs.iter().enumerate() {
        let pid = p.pid;
        let tids: HashSet<u32> = p.last.iter().map(|t| t.tid).collect();
        for t in &p.last {
            w.process_of.insert(t.tid, idx);
            w.names.insert(t.tid, t.name.clone());
        }
        let mut joins: HashSet<u32> = HashSet::new();
        let mut read_held: Vec<(u64, u32)> = Vec::new();
        for t in p.last.iter().filter(|t| p.stuck(t)) {
            let Syscall::In { nr, args } = &t.syscall else {
                continue;
            };
            if *nr == 202 && p.locks_readable {
                match glibc::classify(pid, &tids, args[0], args[1], args[2]) {
                    FutexWait::Lock {
                        addr,
                        kind,
                        mode,
                        owner,
                        readers,
                    } => {
                        let a = encode(idx, addr);
                        w.waits.insert(
                            t.tid,
                            Wait::Lock {
                                addr: a,
                                kind,
                                mode,
                            },
                        );
                        w.blocked_in
                            .insert(t.tid, format!("lock {} {addr:#x}", kind.as_str()));
                        match owner {
                            Some(o) => add_held(&mut w.held, o, a, Mode::Write, kind),
                            None if readers > 0 && !read_held.iter().any(|(x, _)| *x == addr) => {
                                read_held.push((addr, readers))
                            }
                            None => {}
                        }
                    }
                    FutexWait::Join { tid } => {
                        joins.insert(t.tid);
                        w.blocked_in
                            .insert(t.tid, format!("pthread_join of T{tid}"));
                    }
                    FutexWait::Other => {
                        w.blocked_in.insert(
                            t.tid,
                            "futex (a condition variable, semaphore or other)".into(),
                        );
                    }
                }
            } else if *nr == 73 || (*nr == 72 && [7, 38].contains(&args[1])) {
                // flock, or fcntl F_SETLKW / F_OFD_SETLKW: a file lock.
                if let Some((addr, mode)) = procfs::file_lock_wait(pid, t.tid, args[0]) {
                    w.waits.insert(
                        t.tid,
                        Wait::Lock {
                            addr,
                            kind: LockKind::File,
                            mode,
                        },
                    );
                    w.file_waits.push(addr);
                    w.blocked_in.insert(
                        t.tid,
                        format!(
                            "lock file lock {}",
                            procfs::fd_target(pid, args[0]).unwrap_or_default()
                        ),
                    );
                }
            } else if *nr == 61 && (args[0] as i64 as i32) > 0 && args[2] & 1 == 0 {
                // wait4 for one child, without WNOHANG: its exit.
                let pid = args[0] as u32;
                w.blocked_in
                    .insert(t.tid, format!("wait4() for the exit of process {pid}"));
                w.waits.insert(
                    t.tid,
                    Wait::Call {
                        call: "wait4".into(),
                        channel: Channel::Exit { pid },
                        dir: Direction::Recv,
                        reply: false,
                    },
                );
            } else if let Some((call, dir)) = channel_call(*nr) {
                if let Some(channel) = channel_of(pid, *nr, args, dir, netlink, tcp) {
                    w.blocked_in.insert(
                        t.tid,
                        format!("{call}() on {} ({})", channel.describe(), dir.as_str()),
                    );
                    w.waits.insert(
                        t.tid,
                        Wait::Call {
                            call: call.to_string(),
                            channel,
                            dir,
                            reply: false,
                        },
                    );
                }
            } else if let Some(watched) = polled_channels(pid, *nr, args, netlink, tcp) {
                w.blocked_in
                    .insert(t.tid, format!("{} on {}", syscall_name(*nr), watched));
            } else {
                w.blocked_in.insert(t.tid, syscall_name(*nr));
            }
        }
        // Read holders are recorded nowhere: the likely ones are the blocked
        // threads not waiting on the lock (and not joining), if exactly as
        // many as the lock counts readers.
        for (addr, readers) in read_held {
            let a = encode(idx, addr);
            let candidates: Vec<u32> = p
                .last
                .iter()
                .filter(|t| p.stuck(t) && !joins.contains(&t.tid))
                .filter(
                    |t| !matches!(w.waits.get(&t.tid), Some(Wait::Lock { addr: x, .. }) if *x == a),
                )
                .filter(|t| {
                    !w.held
                        .get(&t.tid)
                        .is_some_and(|h| h.iter().any(|x| x.addr == a))
                })
                .map(|t| t.tid)
                .collect();
            let names_of: Vec<String> = candidates
                .iter()
                .map(|c| format!("T{c} \"{}\"", w.names[c]))
                .collect();
            if candidates.len() as u32 == readers {
                for c in &candidates {
                    add_held(&mut w.held, *c, a, Mode::Read, LockKind::Rwlock);
                }
                w.warnings.push(format!(
                    "pid {pid}: rwlock {addr:#x} is held by {readers} reader(s), recorded nowhere in its memory; likely: {}",
                    names_of.join(", ")
                ));
            } else {
                w.warnings.push(format!(
                    "pid {pid}: rwlock {addr:#x} is held by {readers} reader(s), recorded nowhere in its memory; candidates: {}",
                    if names_of.is_empty() { "none".to_string() } else { names_of.join(", ") }
                ));
            }
        }
    }
    // A file lock is held by a process, not a thread: every thread of the
    // holder is taken to hold it (the waiter is stuck only if all are).
    for addr in w.file_waits.clone() {
        for (holder, mode) in procfs::file_lock_holders(addr) {
            if let Some(p) = procs.iter().find(|p| p.pid == holder) {
                for t in &p.last {
                    add_held(&mut w.held, t.tid, addr, mode, LockKind::File);
                }
            }
        }
    }
    w
}

/// Who drains the queues that blocked sends wait on, and what /proc says
/// of those queues.
///
/// A send that made no progress means a full queue that nobody drains. If
/// a sampled process holds its receiving end, whoever would drain it is
/// among that process's threads that wait for a lock (the others are not
/// reading it, or the queue would move). An empty queue (a blocked receive)
/// may get a sender at any time: nothing is inferred for it.
fn queue_users(
    procs: &[Sampled],
    w: &Waits,
    first_netlink: &[procfs::NetlinkSocket],
    netlink: &[procfs::NetlinkSocket],
    tcp: &[procfs::TcpSocket],
) -> (ChannelUsers, Vec<QueueInfo>) {
    let mut users = ChannelUsers::default();
    let mut queues = Vec::new();
    for wait in w.waits.values() {
        let Wait::Call { channel, dir, .. } = wait else {
            continue;
        };
        let (other_end, rmem, drops) = match channel {
            Channel::Netlink { port, .. } => {
                let row = netlink.iter().find(|s| s.port == *port && *port != 0);
                let moved = row.is_some_and(|r| {
                    first_netlink
                        .iter()
                        .find(|f| f.inode == r.inode)
                        .is_some_and(|f| f.rmem != r.rmem || f.drops != r.drops)
                });
                let target = row.map(|r| format!("socket:[{}]", r.inode));
                let owners = if moved {
                    Vec::new()
                } else {
                    owner_pids(target.as_deref())
                };
                (owners, row.map(|r| r.rmem), row.map(|r| r.drops))
            }
            Channel::Pipe { inode } => (owner_pids(Some(&format!("pipe:[{inode}]"))), None, None),
            Channel::Unix { inode: Some(i), .. } => {
                (owner_pids(Some(&format!("socket:[{i}]"))), None, None)
            }
            // The receiving end of a TCP direction is the socket whose local
            // address is `dst` and remote address `src`.
            Channel::Tcp { dst, src } => {
                let end = tcp.iter().find(|t| t.local == *dst && t.remote == *src);
                (
                    owner_pids(end.map(|t| format!("socket:[{}]", t.inode)).as_deref()),
                    None,
                    None,
                )
            }
            _ => (Vec::new(), None, None),
        };
        if *dir == Direction::Send {
            for (idx, p) in procs.iter().enumerate() {
                if !other_end.contains(&p.pid) {
                    continue;
                }
                let lock_waiters = w.waits.iter().filter(|(tid, x)| {
                    matches!(x, Wait::Lock { .. }) && w.process_of.get(tid) == Some(&idx)
                });
                users
                    .recv
                    .entry(channel.clone())
                    .or_default()
                    .extend(lock_waiters.map(|(t, _)| *t));
            }
        }
        queues.push(QueueInfo {
            description: channel.describe(),
            rmem,
            drops,
            owner_pids: other_end,
        });
    }
    queues.sort_by(|a, b| a.description.cmp(&b.description));
    queues.dedup_by(|a, b| a.description == b.description);
    (users, queues)
}

/// Who drains and feeds each queue, by thread, as the shim recorded it for
/// the processes that run with it (threads that are gone are left out:
/// they will neither drain nor feed again).
fn traced_users(procs: &[Sampled], users: &mut ChannelUsers) {
    for p in procs {
        let Some(file) = shim_trace(p.pid).and_then(|t| crate::trace::read_file(&t).ok()) else {
            continue;
        };
        let alive: HashSet<u32> = p.last.iter().map(|t| t.tid).collect();
        for r in &file.records {
            if let holdcheck_format::Record::ChannelUse {
                tid,
                channel,
                direction,
                ..
            } = r
            {
                if alive.contains(tid) {
                    let m = match direction {
                        Direction::Recv => &mut users.recv,
                        Direction::Send => &mut users.send,
                    };
                    m.entry(channel.clone()).or_default().insert(*tid);
                }
            }
        }
    }
}

/// The feeders of a queue a blocked receive waits on, when the shim named
/// none: every thread of the sampled processes that hold the sending end
/// (the peer of a unix socket, the other end of a TCP connection, a pipe
/// open for writing). A feeder that is not stuck keeps the receive alive,
/// so taking them all never makes a deadlock up; an end held outside the
/// snapshot leaves the receive unknown, never stuck.
fn peer_feeders(procs: &[Sampled], w: &Waits, tcp: &[procfs::TcpSocket], users: &mut ChannelUsers) {
    for wait in w.waits.values() {
        let Wait::Call {
            channel,
            dir: Direction::Recv,
            ..
        } = wait
        else {
            continue;
        };
        if users.send.contains_key(channel) {
            continue;
        }
        let holders = match channel {
            Channel::Unix { inode: Some(i), .. } => {
                match holdcheck_format::sockdiag::unix_peer_inode(*i) {
                    Some(peer) => procfs::holders_of(&format!("socket:[{peer}]")),
                    None => continue,
                }
            }
            Channel::Tcp { dst, src } => {
                match tcp.iter().find(|t| t.local == *src && t.remote == *dst) {
                    Some(end) => procfs::holders_of(&format!("socket:[{}]", end.inode)),
                    None => continue,
                }
            }
            Channel::Pipe { inode } => {
                let mut h = procfs::holders_of(&format!("pipe:[{inode}]"));
                h.retain(|_, fds| fds.iter().any(|&writes| writes));
                h
            }
            // A process exits when all its threads are done.
            Channel::Exit { pid } => HashMap::from([(*pid, Vec::new())]),
            _ => continue,
        };
        if holders.is_empty()
            || holders
                .keys()
                .any(|pid| !procs.iter().any(|p| p.pid == *pid))
        {
            continue;
        }
        let feeders = users.send.entry(channel.clone()).or_default();
        for p in procs.iter().filter(|p| holders.contains_key(&p.pid)) {
            // The shim's watchdog never feeds the program's queues.
            feeders.extend(
                p.last
                    .iter()
                    .filter(|t| t.name != WATCHDOG_THREAD)
                    .map(|t| t.tid),
            );
        }
    }
}

/// Inspects one or more processes (one snapshot, one wait-for graph across
/// them) and reports.
pub fn inspect(o: &Options) -> Result<Report> {
    let (model, info) = observe(o)?;
    let traces: Vec<std::path::PathBuf> = info.pids.iter().filter_map(|&p| shim_trace(p)).collect();
    let model = if traces.is_empty() {
        model
    } else {
        merge_shim_traces(model, &traces)
    };
    let mut report = findings::analyse(&model);
    report.inspect = Some(info);
    Ok(report)
}

/// The thread name of the shim's watchdog (`shim/src/watchdog.rs`).
const WATCHDOG_THREAD: &str = "holdcheck-watch";

/// Prefix of the files `holdcheck run` leaves the group snapshot in, one
/// per process: `holdcheck.snapshot.<pid>.trace`.
pub const SNAPSHOT_PREFIX: &str = "holdcheck.snapshot.";

/// What every process of a group waits for right now, seen from outside
/// as one wait-for graph, written into the run's trace directory before the
/// group is killed: the waits that cross processes (a client blocked
/// sending to a deadlocked daemon) that no single process's watchdog sees.
/// Only deadlocks and stalls are kept (blocked calls are the watchdogs'),
/// with the stacks of the threads in them. Returns how many were kept.
pub fn snapshot_group(pgid: u32, dir: &std::path::Path) -> Result<usize> {
    use holdcheck_format::Record;
    let pids = procfs::group_members(pgid);
    anyhow::ensure!(!pids.is_empty(), "no process left in group {pgid}");
    let (model, _) = observe(&Options {
        pids,
        samples: 2,
        interval: Duration::from_millis(100),
        stall_ms: 0,
        stacks: true,
    })?;
    let mut files: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    for p in model.processes.values() {
        let mut out = Record::Header {
            version: holdcheck_format::TRACE_VERSION,
            pid: p.pid,
            ppid: p.ppid,
            exe: p.exe.clone(),
            cmdline: p.cmdline.clone(),
        }
        .to_line();
        if !p.stacks.is_empty() {
            for m in &p.modules {
                out.extend(
                    Record::Module {
                        path: m.path.clone(),
                        base: m.base,
                        segments: m.segments.clone(),
                    }
                    .to_line(),
                );
            }
            for (id, frames) in &p.stacks {
                out.extend(
                    Record::Stack {
                        id: *id,
                        frames: frames.clone(),
                    }
                    .to_line(),
                );
            }
        }
        files.insert(p.pid, out);
    }
    let mut kept = 0;
    for (pid, ob) in model.observed {
        if ob.kind == "deadlock" || ob.kind == "stall" {
            if let Some(out) = files.get_mut(&pid) {
                out.extend(Record::Observed(ob).to_line());
                kept += 1;
            }
        }
    }
    for (pid, out) in files {
        let path = dir.join(format!(
            "{SNAPSHOT_PREFIX}{pid}{}",
            holdcheck_format::TRACE_SUFFIX
        ));
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&path)
            .and_then(|mut f| f.write_all(&out))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(kept)
}

/// The snapshot of the processes: a model holding what they are seen to
/// wait for (its `observed`), and what /proc showed of each thread.
pub fn observe(o: &Options) -> Result<(Model, InspectInfo)> {
    anyhow::ensure!(!o.pids.is_empty(), "no process to inspect");
    let mut procs = Vec::new();
    for &pid in &o.pids {
        procfs::check_exists(pid)?;
        let glibc = glibc::version(pid);
        let locks_readable = glibc.as_ref().is_ok_and(|v| glibc::check(v).is_ok());
        procs.push(Sampled {
            pid,
            glibc,
            locks_readable,
            first: Vec::new(),
            last: Vec::new(),
        });
    }
    let mut warnings = Vec::new();
    for p in &procs {
        match &p.glibc {
            Ok(v) => {
                if let Err(e) = glibc::check(v) {
                    warnings.push(format!("pid {}: {e}", p.pid));
                }
            }
            Err(e) => warnings.push(format!("pid {}: {e}", p.pid)),
        }
    }

    // Samples: who made no progress between the first and the last.
    for p in procs.iter_mut() {
        p.first = sample(p.pid)?;
    }
    let first_netlink = procfs::netlink_sockets();
    for _ in 1..o.samples.max(1) {
        std::thread::sleep(o.interval);
    }
    for p in procs.iter_mut() {
        // A process that exited in between has no threads left.
        p.last = sample(p.pid).unwrap_or_default();
    }
    let netlink = procfs::netlink_sockets();
    let tcp = procfs::tcp_sockets();
    let clocks = procfs::SchedClocks::calibrate();
    let now_ms = procfs::boot_clock_ms();
    let window_ms = o.interval.as_millis() as u64 * (o.samples.max(1) as u64 - 1);

    let mut w = read_waits(&procs, &netlink, &tcp);
    warnings.append(&mut w.warnings);
    let (mut users, queues) = queue_users(&procs, &w, &first_netlink, &netlink, &tcp);
    traced_users(&procs, &mut users);
    peer_feeders(&procs, &w, &tcp, &mut users);

    // User-space stacks of the threads that made no progress.
    let mut stack_ids: HashMap<u32, u64> = HashMap::new();
    let mut frames_of: Vec<HashMap<u64, Vec<u64>>> = vec![HashMap::new(); procs.len()];
    let mut module_tables = vec![Vec::new(); procs.len()];
    if o.stacks {
        for (idx, p) in procs.iter().enumerate() {
            match stacks::modules(p.pid) {
                Ok(mods) => {
                    for t in p.last.iter().filter(|t| p.stuck(t)) {
                        match stacks::stack(p.pid, t.tid, &mods) {
                            Ok(frames) if !frames.is_empty() => {
                                let id = frames
                                    .iter()
                                    .fold(t.tid as u64 | 1 << 40, |h, f| h.rotate_left(7) ^ f);
                                stack_ids.insert(t.tid, id);
                                frames_of[idx].insert(id, frames);
                            }
                            Ok(_) => {}
                            Err(e) => warnings.push(format!("no stack for T{}: {e}", t.tid)),
                        }
                    }
                    module_tables[idx] = mods.table;
                }
                Err(e) => warnings.push(format!("cannot read the modules of {}: {e}", p.pid)),
            }
        }
    }

    // The snapshot, on the boot clock.
    let now_ns = (now_ms * 1e6) as u64;
    let snap: Vec<Snap> = procs
        .iter()
        .flat_map(|p| p.last.iter())
        .map(|t| {
            let since_ms = clocks.last_ran_ms(t).unwrap_or(now_ms - window_ms as f64);
            let wait = w.waits.get(&t.tid).cloned();
            Snap {
                tid: t.tid,
                held: w.held.remove(&t.tid).unwrap_or_default(),
                // Blocked, on something known or not: since it last ran.
                since: if wait.is_some() || w.blocked_in.contains_key(&t.tid) {
                    (since_ms * 1e6).max(1.0) as u64
                } else {
                    0
                },
                wait,
                stack: stack_ids.get(&t.tid).copied().unwrap_or(0),
            }
        })
        .collect();
    let env = InspectEnv {
        pids: procs.iter().map(|p| p.pid).collect(),
        names: &w.names,
        blocked_in: &w.blocked_in,
    };
    let mut observed: Vec<Observed> = waitfor::analyse(&env, &snap, &users, now_ns, 0, o.stall_ms)
        .into_iter()
        .map(|f| f.observed)
        .collect();
    // Every other call blocked past the threshold: from outside, a request
    // awaiting its reply and an idle server look alike, so all are shown.
    let involved: HashSet<u32> = observed
        .iter()
        .flat_map(|f| f.threads.iter().map(|t| t.tid))
        .collect();
    for s in snap.iter().filter(|s| !involved.contains(&s.tid)) {
        if let Some(Wait::Call {
            call, channel, dir, ..
        }) = &s.wait
        {
            let waited = now_ns.saturating_sub(s.since) / 1_000_000;
            if waited >= o.stall_ms {
                observed.push(blocked_call(
                    &env, s, call, channel, *dir, waited, o.samples,
                ));
            }
        }
    }
    // Back to each process's own addresses, with the pid of every thread
    // and lock.
    let pid_of_tid = |tid: u32| w.process_of.get(&tid).map(|&i| procs[i].pid);
    for ob in observed.iter_mut() {
        attribute(ob, &env.pids, &pid_of_tid);
    }

    // The kinds of the locks seen, for the report's nodes.
    let mut locks: Vec<HashMap<LockRef, crate::model::LockMeta>> =
        vec![HashMap::new(); procs.len()];
    for wait in w.waits.values() {
        if let Wait::Lock { addr, kind, .. } = wait {
            let (Some(idx), addr) = decode(*addr) else {
                continue;
            };
            locks[idx].insert(
                LockRef { addr, gen: 0 },
                crate::model::LockMeta {
                    kind: *kind,
                    writer_preferring: *kind == LockKind::Rwlock
                        && glibc::writer_preferring(procs[idx].pid, addr),
                    recursive: false,
                },
            );
        }
    }
    let mut model = Model::default();
    for (idx, p) in procs.iter().enumerate() {
        model.processes.insert(
            p.pid,
            Process {
                pid: p.pid,
                ppid: procfs::ppid(p.pid),
                exe: procfs::exe(p.pid),
                cmdline: procfs::cmdline(p.pid),
                file: Default::default(),
                threads: p.last.iter().map(|t| (t.tid, t.name.clone())).collect(),
                locks: std::mem::take(&mut locks[idx]),
                stacks: std::mem::take(&mut frames_of[idx]),
                modules: std::mem::take(&mut module_tables[idx]),
                ..Default::default()
            },
        );
    }
    model.observed = observed
        .into_iter()
        .map(|ob| {
            let pid = ob
                .threads
                .first()
                .and_then(|t| t.pid)
                .unwrap_or(procs[0].pid);
            (pid, ob)
        })
        .collect();
    model.warnings = warnings;
    let info = InspectInfo {
        pid: procs[0].pid,
        pids: procs.iter().map(|p| p.pid).collect(),
        glibc: procs[0].glibc.as_ref().ok().cloned(),
        samples: o.samples,
        interval_ms: o.interval.as_millis() as u64,
        tasks: procs
            .iter()
            .flat_map(|p| p.last.iter().map(move |t| (p, t)))
            .map(|(p, t)| TaskInfo {
                pid: p.pid,
                tid: t.tid,
                name: t.name.clone(),
                state: t.state.to_string(),
                blocked_in: w
                    .blocked_in
                    .get(&t.tid)
                    .cloned()
                    .or_else(|| match &t.syscall {
                        Syscall::Running => None,
                        Syscall::Elsewhere => Some("(not in a system call)".into()),
                        Syscall::In { nr, .. } if p.stuck(t) => Some(syscall_name(*nr)),
                        Syscall::In { .. } => None,
                    }),
                no_progress_ms: p.stuck(t).then(|| {
                    clocks
                        .last_ran_ms(t)
                        .map_or(window_ms, |r| (now_ms - r).max(0.0) as u64)
                }),
                syscall: match &t.syscall {
                    Syscall::Running => "running".into(),
                    Syscall::Elsewhere => "-1".into(),
                    Syscall::In { nr, args } => {
                        let a: Vec<String> = args.iter().map(|x| format!("{x:#x}")).collect();
                        format!("{nr} {}", a.join(" "))
                    }
                },
                wchan: t.wchan.clone(),
                kernel_stack: t.kernel_stack.clone(),
            })
            .collect(),
        queues,
    };
    Ok((model, info))
}

/// Decodes the lock addresses of a finding of the joint snapshot and names
/// the process of each thread and lock.
fn attribute(ob: &mut Observed, pids: &[u32], pid_of_tid: &dyn Fn(u32) -> Option<u32>) {
    let fix = |l: &mut LockRef| -> Option<u32> {
        let (idx, addr) = decode(l.addr);
        l.addr = addr;
        idx.map(|i| pids[i])
    };
    for n in ob.nodes.iter_mut() {
        if let ObservedNode::Lock { lock, pid, .. } = n {
            *pid = fix(lock);
        }
    }
    for t in ob.threads.iter_mut() {
        t.pid = pid_of_tid(t.tid);
        for h in t.held.iter_mut() {
            fix(&mut h.lock);
        }
        if let Some(Waiting::Lock { lock, .. }) = &mut t.waiting {
            fix(lock);
        }
    }
}

/// The trace file of a process that runs with the shim: in the trace
/// directory of its own environment, the newest for its pid (an exec starts
/// a new one).
fn shim_trace(pid: u32) -> Option<std::path::PathBuf> {
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).ok()?;
    if !maps.contains("libholdcheck") {
        return None;
    }
    let environ = std::fs::read(format!("/proc/{pid}/environ")).ok()?;
    let dir = environ
        .split(|&b| b == 0)
        .find_map(|v| v.strip_prefix(b"HOLDCHECK_DIR="))
        .map(|d| String::from_utf8_lossy(d).into_owned())
        .filter(|d| !d.is_empty())
        .or_else(|| {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
            let uid = status
                .lines()
                .find(|l| l.starts_with("Uid:"))?
                .split_whitespace()
                .nth(1)?
                .to_string();
            Some(format!("/tmp/holdcheck-{uid}"))
        })?;
    let prefix = format!("{}{pid}.", holdcheck_format::TRACE_PREFIX);
    crate::trace::trace_files(std::path::Path::new(&dir))
        .ok()?
        .into_iter()
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix))
        })
        .max_by_key(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .and_then(|n| {
                    n.strip_prefix(&prefix)?
                        .split('.')
                        .next()?
                        .parse::<u32>()
                        .ok()
                })
                .unwrap_or(0)
        })
}

/// The shim's traces of the processes, with what inspect saw added: their
/// facts (predicted cycles, hazards), their watchdogs' observations, exact
/// lock kinds, acquisition sites, stacks and module tables.
fn merge_shim_traces(seen: Model, traces: &[std::path::PathBuf]) -> Model {
    let mut files = Vec::new();
    let mut warnings = Vec::new();
    for t in traces {
        match crate::trace::read_file(t) {
            Ok(f) => {
                warnings.push(format!(
                    "the process runs with the shim: its trace {} is merged",
                    t.display()
                ));
                files.push(f);
            }
            Err(e) => warnings.push(format!(
                "the process runs with the shim, but its trace is unreadable: {e:#}"
            )),
        }
    }
    let mut merged = Model::build(&files);
    merged.warnings.extend(seen.warnings);
    merged.warnings.extend(warnings);
    for (pid, inspected) in seen.processes {
        let p = merged.processes.entry(pid).or_default();
        if p.pid == 0 {
            p.pid = pid;
            p.ppid = inspected.ppid;
            p.exe = inspected.exe.clone();
            p.cmdline = inspected.cmdline.clone();
        }
        p.threads.extend(inspected.threads);
        for (k, v) in inspected.locks {
            p.locks.entry(k).or_insert(v);
        }
        p.stacks.extend(inspected.stacks);
        if p.modules.is_empty() {
            p.modules = inspected.modules;
        }
    }
    merged.observed.extend(seen.observed);
    merged.fix_observed_generations();
    merged
}

fn add_held(
    held: &mut HashMap<u32, Vec<HeldLock>>,
    tid: u32,
    addr: u64,
    mode: Mode,
    kind: LockKind,
) {
    let v = held.entry(tid).or_default();
    if !v.iter().any(|h| h.addr == addr) {
        v.push(HeldLock {
            addr,
            mode,
            kind,
            site: 0,
        });
    }
}

fn owner_pids(target: Option<&str>) -> Vec<u32> {
    let mut v: Vec<u32> = target
        .map(|t| procfs::holders_of(t).into_keys().collect())
        .unwrap_or_default();
    v.sort_unstable();
    v
}

fn blocked_call(
    env: &InspectEnv,
    s: &Snap,
    call: &str,
    channel: &Channel,
    dir: Direction,
    waited_ms: u64,
    samples: u32,
) -> Observed {
    let thread = ObservedThread {
        tid: s.tid,
        pid: None,
        name: env.thread_name(s.tid),
        held: Vec::new(),
        waiting: Some(Waiting::Call {
            call: call.to_string(),
            channel: channel.clone(),
            direction: dir,
            awaiting_reply: false,
        }),
        waited_ms,
        stack: (s.stack != 0).then_some(s.stack),
    };
    Observed {
        kind: "stalled-call".into(),
        title: format!(
            "T{} \"{}\" blocked in {call}() on {} and has not moved for {} ms ({samples} samples)",
            s.tid,
            thread.name,
            channel.describe(),
            waited_ms
        ),
        nodes: vec![ObservedNode::Channel {
            channel: channel.clone(),
            direction: dir,
        }],
        edges: Vec::new(),
        threads: vec![thread],
        waiters: 0,
    }
}
