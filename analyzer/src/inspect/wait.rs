//! Resolving what a blocked thread waits for, from its system call and
//! its process's memory: a lock (a futex at a glibc lock, its owner read
//! from the lock), a kernel queue (a socket, a pipe, a child's exit), or
//! a call that names neither.

use super::glibc;
use super::glibc::FutexWait;
use super::memory;
use super::procfs;
use super::procfs::via;
use super::procfs::Syscall;
use super::snapshot::encode;
use super::snapshot::InspectEnv;
use super::snapshot::Sampled;
use holdcheck_format::Channel;
use holdcheck_format::Direction;
use holdcheck_format::LockKind;
use holdcheck_format::Mode;
use holdcheck_format::Observed;
use holdcheck_format::ObservedNode;
use holdcheck_format::ObservedThread;
use holdcheck_format::Waiting;
use holdcheck_waitfor::Env;
use holdcheck_waitfor::HeldLock;
use holdcheck_waitfor::Snap;
use holdcheck_waitfor::Wait;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::collections::HashSet;

pub(super) use holdcheck_waitfor::syscall::channel_call;

/// The call a thread in `restart_syscall` (a call a signal interrupted,
/// resumed: after `gdb -p` or `strace -p` let go of it, every timed wait)
/// waits in as, where its registers still hold the arguments of the call
/// it resumed: a futex wait (by its wchan), or a poll of an array (by its
/// wchan, and a pointer and a count where `select` has a count and a
/// pointer); else `nr` itself.
pub(super) fn resumed_as(nr: u64, args: &[u64; 6], wchan: &str) -> u64 {
    use super::timeouts::{resumed, Resumed};
    if nr != 219 {
        return nr;
    }
    match resumed(wchan) {
        Resumed::Futex => 202,
        Resumed::Poll if args[0] >= 0x10000 && (1..=1024).contains(&args[1]) => 7,
        _ => nr,
    }
}

/// The call a blocked thread is in, by name; `restart_syscall` by what it
/// resumed.
pub(super) fn call_name(nr: u64, wchan: &str) -> String {
    if nr == 219 {
        return super::timeouts::resumed_call(wchan);
    }
    syscall_name(nr)
}

/// Whether a blocked call waits for a file lock: `flock`, or `fcntl`
/// `F_SETLKW` / `F_OFD_SETLKW`.
pub(super) fn is_file_lock_wait(nr: u64, args: &[u64; 6]) -> bool {
    nr == 73 || (nr == 72 && [7, 38].contains(&args[1]))
}

/// The child a blocked `wait4` (without `WNOHANG`) of process `pid` waits
/// for: the one it names, or its only child when it waits for any.
pub(super) fn waited_child(pid: u32, nr: u64, args: &[u64; 6]) -> Option<u32> {
    if nr != 61 || args[2] & 1 != 0 {
        return None;
    }
    match args[0] as i64 as i32 {
        p if p > 0 => Some(p as u32),
        _ => only_child(pid),
    }
}

/// The one child of a process, when it has exactly one: a `wait4(-1)`
/// waits for it.
fn only_child(pid: u32) -> Option<u32> {
    let kids = procfs::children(pid);
    (kids.len() == 1).then(|| kids[0])
}

/// What a stopped thread's state says (`T` stopped by a signal, `t`
/// stopped under a tracer), None when it is not stopped.
pub(super) fn stopped(state: char) -> Option<&'static str> {
    match state {
        'T' => Some("stopped (state T: SIGSTOP or a job-control stop; it runs again on SIGCONT)"),
        't' => Some("stopped under a tracer (state t: a debugger holds it)"),
        _ => None,
    }
}

/// The name of a system call of this machine's architecture (x86_64).
pub(super) fn syscall_name(nr: u64) -> String {
    match syscalls::Sysno::new(nr as usize) {
        Some(s) => s.name().to_string(),
        None => format!("syscall {nr}"),
    }
}

/// The queue a blocked call on `fd` waits on, as the shim would name it.
pub(super) fn channel_of(
    pid: u32,
    nr: u64,
    args: &[u64; 6],
    dir: Direction,
    sockets: &procfs::Sockets,
) -> Option<Channel> {
    let target = procfs::fd_target(pid, args[0])?;
    if let Some(inode) = procfs::bracket_inode(&target, "pipe") {
        return Some(Channel::Pipe { inode });
    }
    let inode = procfs::bracket_inode(&target, "socket")?;
    if let Some(nl) = sockets.netlink.iter().find(|s| s.inode == inode) {
        let port = match dir {
            Direction::Recv => nl.port,
            Direction::Send => send_port(pid, nr, args).unwrap_or(0),
        };
        return Some(Channel::Netlink {
            protocol: nl.protocol,
            port,
        });
    }
    if let Some(t) = sockets.tcp.iter().find(|t| t.inode == inode) {
        // `accept` waits on the queue of connections, named as the shim
        // names it (by port: a loopback connect reaches a wildcard alike).
        if t.listening {
            let port = t.local.rsplit_once(':').map_or("", |(_, p)| p);
            return Some(Channel::Listen {
                addr: format!("tcp:{port}"),
            });
        }
        return Some(Channel::tcp(dir, t.local.clone(), t.remote.clone()));
    }
    if let Some((_, path)) = sockets
        .unix_listeners
        .iter()
        .find(|(i, path)| *i == inode && !path.is_empty())
    {
        return Some(Channel::Listen {
            addr: format!("unix:{path}"),
        });
    }
    // Otherwise a unix socket (the only other family sock_diag answers for).
    // A send on a connection not accepted yet names the sending socket,
    // as the shim does.
    let peer = match dir {
        Direction::Recv => None,
        Direction::Send => Some(holdcheck_waitfor::sockdiag::unix_peer_inode(inode)),
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
pub(super) fn polled_channels(
    pid: u32,
    nr: u64,
    args: &[u64; 6],
    sockets: &procfs::Sockets,
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
            let info =
                std::fs::read_to_string(format!("/proc/{}/fdinfo/{}", via(pid), args[0])).ok()?;
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
            match channel_of(pid, call, &a, dir, sockets) {
                Some(c) => format!("{} ({})", c.describe(), dir.as_str()),
                None => format!("fd {fd}"),
            }
        })
        .collect();
    (!names.is_empty()).then(|| names.join(", "))
}

/// The destination port of a blocked netlink sendto/sendmsg, read from the
/// caller's sockaddr_nl.
pub(super) fn send_port(pid: u32, nr: u64, args: &[u64; 6]) -> Option<u32> {
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

/// What the threads of all sampled processes wait for and hold.
#[derive(Default)]
pub(super) struct Waits {
    /// By tid; lock addresses encoded with the process index.
    pub(super) waits: BTreeMap<u32, Wait>,
    pub(super) held: HashMap<u32, Vec<HeldLock>>,
    pub(super) blocked_in: HashMap<u32, String>,
    /// tid → index of its process.
    pub(super) process_of: HashMap<u32, usize>,
    /// File locks waited on (global addresses).
    pub(super) file_waits: Vec<u64>,
    /// The paths of the files whose locks are waited on.
    pub(super) file_paths: HashMap<u64, String>,
    pub(super) names: HashMap<u32, String>,
    pub(super) warnings: Vec<String>,
    /// Rwlocks held for reading by threads inspect cannot tell apart
    /// (readers are recorded nowhere, and more threads could be them):
    /// the encoded address, the count of readers, the candidates.
    pub(super) unnamed_readers: Vec<(u64, u32, Vec<String>)>,
    /// (waiter, owner, the owner's process) of the mutexes whose owner
    /// exited holding them.
    pub(super) orphans: Vec<(u32, u32, u32)>,
    /// The condition variables, semaphores and barriers waited on, by
    /// waiter: named by their variable once the modules are read
    /// ([`Waits::name_objects`]).
    pub(super) object_waits: HashMap<u32, ObjectWait>,
    /// The barriers waited on (pid, address) that are private to their
    /// process.
    pub(super) private_barriers: HashSet<(u32, u64)>,
}

/// A wait on a glibc object that is not a lock.
pub(super) struct ObjectWait {
    call: &'static str,
    what: &'static str,
    addr: u64,
    /// What the object says of the wait (a barrier's arrivals), after
    /// its name.
    state: String,
}

impl Waits {
    /// Thread `tid` waits in `call` on the `what` at `addr`.
    fn object_wait(&mut self, tid: u32, call: &'static str, what: &'static str, addr: u64) {
        self.object_wait_in(tid, call, what, addr, String::new());
    }

    /// [`Self::object_wait`], with what the object says of it.
    fn object_wait_in(
        &mut self,
        tid: u32,
        call: &'static str,
        what: &'static str,
        addr: u64,
        state: String,
    ) {
        self.blocked_in
            .insert(tid, format!("{call} on {what} {addr:#x}{state}"));
        self.object_waits.insert(
            tid,
            ObjectWait {
                call,
                what,
                addr,
                state,
            },
        );
    }

    /// Names the condition variables, semaphores and barriers waited on
    /// after their variables, as locks are: `modules` by process index.
    pub(super) fn name_objects(&mut self, modules: &[Vec<crate::model::Module>]) {
        let mut variables = crate::symbolize::Variables::default();
        for (tid, o) in &self.object_waits {
            let Some(mods) = self.process_of.get(tid).and_then(|&i| modules.get(i)) else {
                continue;
            };
            // glibc's sizes: an array is indexed.
            let each = match o.what {
                "semaphore" | "barrier" => 32,
                _ => 48,
            };
            if let Some(name) = variables.label(mods, o.addr, each) {
                self.blocked_in
                    .insert(*tid, format!("{} on {} {name}{}", o.call, o.what, o.state));
                // A barrier's channel by its name too: every waiter of
                // one names it alike.
                if let Some(Wait::Call {
                    channel: Channel::Barrier { name: n, .. },
                    ..
                }) = self.waits.get_mut(tid)
                {
                    *n = Some(name);
                }
            }
        }
    }

    /// Thread `tid` of process `idx` waits for the lock at `addr`; returns
    /// the address as the snapshot keys it.
    fn lock_wait(&mut self, tid: u32, idx: usize, addr: u64, kind: LockKind, mode: Mode) -> u64 {
        let a = encode(idx, addr);
        self.waits.insert(
            tid,
            Wait::Lock {
                addr: a,
                kind,
                mode,
            },
        );
        self.blocked_in
            .insert(tid, format!("lock {} {addr:#x}", kind.as_str()));
        a
    }
}

/// Reads what each thread that made no progress waits for, and the owners
/// of the locks waited on.
pub(super) fn read_waits(procs: &[Sampled], sockets: &procfs::Sockets) -> Waits {
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
        // A stopped thread waits for no one: it runs again only when
        // continued. It is a cause of its own, said as such.
        for t in &p.last {
            if let Some(why) = stopped(t.state) {
                let inside = match &t.syscall {
                    Syscall::In { nr, .. } => format!(", in {}()", syscall_name(*nr)),
                    _ => String::new(),
                };
                w.blocked_in.insert(t.tid, format!("{why}{inside}"));
            }
        }
        for t in p.last.iter().filter(|t| p.stuck(t)) {
            let Syscall::In { nr, args } = &t.syscall else {
                continue;
            };
            if stopped(t.state).is_some() {
                continue;
            }
            let resumed = *nr == 219;
            let nr = &resumed_as(*nr, args, &t.wchan);
            if *nr == 202 && p.locks_readable {
                match glibc::classify(pid, &tids, args[0], args[1], args[2], args[3] != 0) {
                    FutexWait::Lock {
                        addr,
                        kind,
                        mode,
                        owner,
                        readers,
                    } => {
                        let a = w.lock_wait(t.tid, idx, addr, kind, mode);
                        match owner {
                            Some(o) => add_held(&mut w.held, o, a, Mode::Write, kind),
                            None if readers > 0 && !read_held.iter().any(|(x, _)| *x == addr) => {
                                read_held.push((addr, readers))
                            }
                            None => {}
                        }
                    }
                    FutexWait::Orphaned {
                        addr,
                        owner,
                        process,
                    } => {
                        w.lock_wait(t.tid, idx, addr, LockKind::Mutex, Mode::Write);
                        w.orphans.push((t.tid, owner, process));
                    }
                    FutexWait::Join { tid } => {
                        joins.insert(t.tid);
                        w.blocked_in
                            .insert(t.tid, format!("pthread_join of T{tid}"));
                        // A wait for that thread's end: stuck when it is.
                        w.waits.insert(
                            t.tid,
                            Wait::Call {
                                call: "pthread_join".into(),
                                channel: Channel::Thread { pid, tid },
                                dir: Direction::Recv,
                                reply: false,
                            },
                        );
                    }
                    FutexWait::Cond { addr } => {
                        w.object_wait(t.tid, "pthread_cond_wait", "condition variable", addr)
                    }
                    FutexWait::Semaphore { addr } => {
                        w.object_wait(t.tid, "sem_wait", "semaphore", addr)
                    }
                    FutexWait::Barrier {
                        addr,
                        arrived,
                        count,
                        private,
                    } => {
                        w.object_wait_in(
                            t.tid,
                            "pthread_barrier_wait",
                            "barrier",
                            addr,
                            format!(" ({arrived} of {count} threads arrived)"),
                        );
                        // A wait for the arrival of the threads still to
                        // come (see `users::barrier_arrivers`).
                        w.waits.insert(
                            t.tid,
                            Wait::Call {
                                call: "pthread_barrier_wait".into(),
                                channel: Channel::Barrier {
                                    pid,
                                    addr,
                                    name: None,
                                },
                                dir: Direction::Recv,
                                reply: false,
                            },
                        );
                        if private {
                            w.private_barriers.insert((pid, addr));
                        }
                    }
                    FutexWait::Other => {
                        w.blocked_in
                            .insert(t.tid, crate::report::labels::UNREAD_FUTEX.into());
                    }
                }
            } else if *nr == 202 {
                // No glibc it knows: the futex may be any lock's.
                w.blocked_in
                    .insert(t.tid, crate::report::labels::UNREADABLE_LOCKS_FUTEX.into());
            } else if is_file_lock_wait(*nr, args) {
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
                    let path = procfs::fd_target(pid, args[0]).unwrap_or_default();
                    w.blocked_in.insert(t.tid, format!("lock file lock {path}"));
                    if !path.is_empty() {
                        w.file_paths.insert(addr, path);
                    }
                }
            } else if let Some(pid) = waited_child(pid, *nr, args) {
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
                if let Some(channel) = channel_of(pid, *nr, args, dir, sockets) {
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
            } else if let Some(watched) = polled_channels(pid, *nr, args, sockets) {
                let call = if resumed {
                    "restart_syscall (a poll or ppoll resumed after a signal)".to_string()
                } else {
                    syscall_name(*nr)
                };
                w.blocked_in.insert(t.tid, format!("{call} on {watched}"));
            } else {
                let nr = if resumed { 219 } else { *nr };
                w.blocked_in.insert(t.tid, call_name(nr, &t.wchan));
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
                w.unnamed_readers.push((a, readers, names_of));
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

pub(super) fn add_held(
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

pub(super) fn blocked_call(
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
