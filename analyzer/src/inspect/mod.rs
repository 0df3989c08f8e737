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
use anyhow::Result;
use glibc::FutexWait;
use holdcheck_format::waitfor::{self, ChannelUsers, Env, HeldLock, Snap, Wait};
use holdcheck_format::{
    Channel, Direction, LockKind, LockRef, Mode, Observed, ObservedNode, ObservedThread, Waiting,
};
use procfs::{Syscall, Task};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

pub struct Options {
    pub pid: u32,
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
    match dir {
        Direction::Recv => Some(Channel::Unix {
            inode: Some(inode),
            path: None,
        }),
        Direction::Send => {
            holdcheck_format::sockdiag::unix_peer_inode(inode).map(|peer| Channel::Unix {
                inode: Some(peer),
                path: None,
            })
        }
    }
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
    pid: u32,
    names: &'a HashMap<u32, String>,
}

impl Env for InspectEnv<'_> {
    fn writer_preferring(&self, addr: u64, kind: LockKind) -> bool {
        kind == LockKind::Rwlock && glibc::writer_preferring(self.pid, addr)
    }
    fn lock_ref(&self, addr: u64) -> LockRef {
        LockRef { addr, gen: 0 }
    }
    fn thread_name(&self, tid: u32) -> String {
        self.names.get(&tid).cloned().unwrap_or_default()
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

/// Inspects a process and reports.
pub fn inspect(o: &Options) -> Result<Report> {
    let pid = o.pid;
    procfs::check_exists(pid)?;
    let mut warnings = Vec::new();
    let glibc_version = glibc::version(pid);
    let locks_readable = match &glibc_version {
        Ok(v) => match glibc::check(v) {
            Ok(()) => true,
            Err(e) => {
                warnings.push(e.to_string());
                false
            }
        },
        Err(e) => {
            warnings.push(e.to_string());
            false
        }
    };

    // Samples: who made no progress between the first and the last.
    let first = sample(pid)?;
    let first_netlink = procfs::netlink_sockets();
    for _ in 1..o.samples.max(1) {
        std::thread::sleep(o.interval);
    }
    let last = sample(pid)?;
    let netlink = procfs::netlink_sockets();
    let tcp = procfs::tcp_sockets();
    let now_ms = procfs::uptime_ms();
    let window_ms = o.interval.as_millis() as u64 * (o.samples.max(1) as u64 - 1);
    let before: HashMap<u32, &Task> = first.iter().map(|t| (t.tid, t)).collect();
    let stuck_task = |t: &Task| {
        matches!(t.syscall, Syscall::In { .. })
            && before
                .get(&t.tid)
                .is_some_and(|b| b.switches == t.switches && b.syscall == t.syscall)
    };
    let tids: HashSet<u32> = last.iter().map(|t| t.tid).collect();
    let names: HashMap<u32, String> = last.iter().map(|t| (t.tid, t.name.clone())).collect();

    // What each thread that made no progress waits for.
    let mut waits: BTreeMap<u32, Wait> = BTreeMap::new();
    let mut joins: HashSet<u32> = HashSet::new();
    let mut held: HashMap<u32, Vec<HeldLock>> = HashMap::new();
    let mut read_held: Vec<(u64, u32)> = Vec::new();
    let mut blocked_in: HashMap<u32, String> = HashMap::new();
    for t in last.iter().filter(|t| stuck_task(t)) {
        let Syscall::In { nr, args } = &t.syscall else {
            continue;
        };
        if *nr == 202 && locks_readable {
            match glibc::classify(pid, &tids, args[0], args[1], args[2]) {
                FutexWait::Lock {
                    addr,
                    kind,
                    mode,
                    owner,
                    readers,
                } => {
                    waits.insert(t.tid, Wait::Lock { addr, kind, mode });
                    blocked_in.insert(t.tid, format!("lock {} {addr:#x}", kind_name(kind)));
                    match owner {
                        Some(w) => add_held(&mut held, w, addr, Mode::Write, kind),
                        None if readers > 0 && !read_held.iter().any(|(a, _)| *a == addr) => {
                            read_held.push((addr, readers))
                        }
                        None => {}
                    }
                }
                FutexWait::Join { tid } => {
                    joins.insert(t.tid);
                    blocked_in.insert(t.tid, format!("pthread_join of T{tid}"));
                }
                FutexWait::Other => {
                    blocked_in.insert(
                        t.tid,
                        "futex (a condition variable, semaphore or other)".into(),
                    );
                }
            }
        } else if let Some((call, dir)) = channel_call(*nr) {
            if let Some(channel) = channel_of(pid, *nr, args, dir, &netlink, &tcp) {
                blocked_in.insert(
                    t.tid,
                    format!("{call}() on {} ({})", channel.describe(), dir.as_str()),
                );
                waits.insert(
                    t.tid,
                    Wait::Call {
                        call: call.to_string(),
                        channel,
                        dir,
                        reply: false,
                    },
                );
            }
        } else if let Some(watched) = polled_channels(pid, *nr, args, &netlink, &tcp) {
            blocked_in.insert(t.tid, format!("{} on {}", syscall_name(*nr), watched));
        } else {
            blocked_in.insert(t.tid, syscall_name(*nr));
        }
    }
    // Read holders are recorded nowhere: the likely ones are the blocked
    // threads not waiting on the lock (and not joining), if exactly as many
    // as the lock counts readers.
    for (addr, readers) in read_held {
        let candidates: Vec<u32> = last
            .iter()
            .filter(|t| stuck_task(t) && !joins.contains(&t.tid))
            .filter(
                |t| !matches!(waits.get(&t.tid), Some(Wait::Lock { addr: a, .. }) if *a == addr),
            )
            .filter(|t| {
                !held
                    .get(&t.tid)
                    .is_some_and(|h| h.iter().any(|x| x.addr == addr))
            })
            .map(|t| t.tid)
            .collect();
        let names_of: Vec<String> = candidates
            .iter()
            .map(|c| format!("T{c} \"{}\"", names[c]))
            .collect();
        if candidates.len() as u32 == readers {
            for c in &candidates {
                add_held(&mut held, *c, addr, Mode::Read, LockKind::Rwlock);
            }
            warnings.push(format!(
                "rwlock {addr:#x} is held by {readers} reader(s), recorded nowhere in its memory; likely: {}",
                names_of.join(", ")
            ));
        } else {
            warnings.push(format!(
                "rwlock {addr:#x} is held by {readers} reader(s), recorded nowhere in its memory; candidates: {}",
                if names_of.is_empty() { "none".to_string() } else { names_of.join(", ") }
            ));
        }
    }

    // A send that made no progress means a full queue that nobody drains. If
    // this process holds its receiving end, whoever would drain it is among
    // its threads that wait for a lock (the others are not reading it, or
    // the queue would move). An empty queue (a blocked receive) may get a
    // sender at any time: nothing is inferred for it.
    let lock_waiters: Vec<u32> = waits
        .iter()
        .filter(|(_, w)| matches!(w, Wait::Lock { .. }))
        .map(|(t, _)| *t)
        .collect();
    let mut users = ChannelUsers::default();
    let mut queues = Vec::new();
    for w in waits.values() {
        let Wait::Call { channel, dir, .. } = w else {
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
        if *dir == Direction::Send && other_end.contains(&pid) {
            users
                .recv
                .entry(channel.clone())
                .or_default()
                .extend(lock_waiters.iter().copied());
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

    // User-space stacks of the threads that made no progress.
    let mut stack_ids: HashMap<u32, u64> = HashMap::new();
    let mut stack_frames: HashMap<u64, Vec<u64>> = HashMap::new();
    let mut module_table = Vec::new();
    if o.stacks {
        match stacks::modules(pid) {
            Ok(mods) => {
                for t in last.iter().filter(|t| stuck_task(t)) {
                    match stacks::stack(pid, t.tid, &mods) {
                        Ok(frames) if !frames.is_empty() => {
                            let id = frames
                                .iter()
                                .fold(t.tid as u64 | 1 << 40, |h, f| h.rotate_left(7) ^ f);
                            stack_ids.insert(t.tid, id);
                            stack_frames.insert(id, frames);
                        }
                        Ok(_) => {}
                        Err(e) => warnings.push(format!("no stack for T{}: {e}", t.tid)),
                    }
                }
                module_table = mods.table;
            }
            Err(e) => warnings.push(format!("cannot read the modules of {pid}: {e}")),
        }
    }

    // The snapshot, on the boot clock of se.exec_start.
    let now_ns = (now_ms * 1e6) as u64;
    let snap: Vec<Snap> = last
        .iter()
        .map(|t| {
            let since_ms = t.last_ran_ms.unwrap_or(now_ms - window_ms as f64);
            let wait = waits.get(&t.tid).cloned();
            Snap {
                tid: t.tid,
                held: held.remove(&t.tid).unwrap_or_default(),
                since: if wait.is_some() {
                    (since_ms * 1e6).max(1.0) as u64
                } else {
                    0
                },
                wait,
                stack: stack_ids.get(&t.tid).copied().unwrap_or(0),
            }
        })
        .collect();
    let env = InspectEnv { pid, names: &names };
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

    // The kinds of the locks seen, for the report's nodes.
    let mut locks = HashMap::new();
    for w in waits.values() {
        if let Wait::Lock { addr, kind, .. } = w {
            locks.insert(
                LockRef {
                    addr: *addr,
                    gen: 0,
                },
                crate::model::LockMeta {
                    kind: *kind,
                    writer_preferring: *kind == LockKind::Rwlock
                        && glibc::writer_preferring(pid, *addr),
                    recursive: false,
                },
            );
        }
    }
    let mut model = Model::default();
    model.processes.insert(
        pid,
        Process {
            pid,
            ppid: procfs::ppid(pid),
            exe: procfs::exe(pid),
            cmdline: procfs::cmdline(pid),
            file: Default::default(),
            threads: names.clone(),
            locks,
            stacks: stack_frames,
            modules: module_table,
            ..Default::default()
        },
    );
    model.observed = observed.into_iter().map(|ob| (pid, ob)).collect();
    model.warnings = warnings;
    if let Some(trace) = shim_trace(pid) {
        model = merge_shim_trace(model, pid, &trace);
    }
    let mut report = findings::analyse(&model);
    report.inspect = Some(InspectInfo {
        pid,
        glibc: glibc_version.ok(),
        samples: o.samples,
        interval_ms: o.interval.as_millis() as u64,
        tasks: last
            .iter()
            .map(|t| TaskInfo {
                tid: t.tid,
                name: t.name.clone(),
                state: t.state.to_string(),
                blocked_in: blocked_in
                    .get(&t.tid)
                    .cloned()
                    .or_else(|| match &t.syscall {
                        Syscall::Running => None,
                        Syscall::Elsewhere => Some("(not in a system call)".into()),
                        Syscall::In { nr, .. } if stuck_task(t) => Some(syscall_name(*nr)),
                        Syscall::In { .. } => None,
                    }),
                no_progress_ms: stuck_task(t).then(|| {
                    t.last_ran_ms
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
    });
    Ok(report)
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

/// The shim's trace of the process, with what inspect saw added: its facts
/// (predicted cycles, hazards), its watchdog's observations, exact lock
/// kinds, acquisition sites, stacks and module table.
fn merge_shim_trace(seen: Model, pid: u32, trace: &std::path::Path) -> Model {
    let file = match crate::trace::read_file(trace) {
        Ok(f) => f,
        Err(e) => {
            let mut seen = seen;
            seen.warnings.push(format!(
                "the process runs with the shim, but its trace is unreadable: {e:#}"
            ));
            return seen;
        }
    };
    let mut merged = Model::build(std::slice::from_ref(&file));
    merged.warnings.extend(seen.warnings);
    merged.warnings.push(format!(
        "the process runs with the shim: its trace {} is merged",
        trace.display()
    ));
    let inspected = seen.processes.into_values().next().unwrap_or_default();
    let p = merged.processes.entry(pid).or_default();
    p.pid = pid;
    p.threads.extend(inspected.threads);
    for (k, v) in inspected.locks {
        p.locks.entry(k).or_insert(v);
    }
    p.stacks.extend(inspected.stacks);
    if p.modules.is_empty() {
        p.modules = inspected.modules;
    }
    merged.observed.extend(seen.observed);
    merged
}

fn kind_name(k: LockKind) -> &'static str {
    match k {
        LockKind::Mutex => "mutex",
        LockKind::Rwlock => "rwlock",
    }
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
