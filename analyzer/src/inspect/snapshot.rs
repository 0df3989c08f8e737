//! Sampling the processes and building the snapshot the wait-for
//! analysis runs on (`holdcheck_waitfor`), then the model and the
//! inspect section of the report.

use super::glibc;
use super::procfs;
use super::procfs::Syscall;
use super::procfs::Task;
use super::stacks;
use super::users::barrier_arrivers;
use super::users::peer_feeders;
use super::users::queue_users;
use super::users::traced_users;
use super::wait::blocked_call;
use super::wait::is_file_lock_wait;
use super::wait::read_waits;
use super::wait::waited_child;
use super::wait::{call_name, syscall_name};
use super::Options;
use crate::model::Model;
use crate::model::Process;
use crate::report::InspectInfo;
use crate::report::TaskInfo;
use anyhow::Result;
use holdcheck_format::Channel;
use holdcheck_format::Direction;
use holdcheck_format::LockKind;
use holdcheck_format::LockRef;
use holdcheck_format::Observed;
use holdcheck_format::ObservedNode;
use holdcheck_format::Waiting;
use holdcheck_waitfor as waitfor;
use holdcheck_waitfor::Env;
use holdcheck_waitfor::Snap;
use holdcheck_waitfor::Wait;
use std::collections::HashMap;
use std::collections::HashSet;

pub(super) struct InspectEnv<'a> {
    pub(super) pids: Vec<u32>,
    pub(super) names: &'a HashMap<u32, String>,
    pub(super) blocked_in: &'a HashMap<u32, String>,
    /// tid → index of its process in `pids`.
    pub(super) process_index: &'a HashMap<u32, usize>,
}

impl InspectEnv<'_> {
    /// The process of a thread of the snapshot.
    pub(super) fn process_of(&self, tid: u32) -> Option<u32> {
        self.process_index.get(&tid).map(|&i| self.pids[i])
    }
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
    fn program_addr(&self, addr: u64) -> u64 {
        decode(addr).1
    }
}

pub(super) fn sample(pid: u32) -> Result<Vec<Task>> {
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
pub(super) const PROCESS_SHIFT: u32 = 47;

pub(super) fn encode(idx: usize, addr: u64) -> u64 {
    addr | (idx as u64 + 1) << PROCESS_SHIFT
}

/// A lock address of the snapshot: the process it belongs to and its own
/// address. File locks belong to no process (their address is global).
pub(super) fn decode(addr: u64) -> (Option<usize>, u64) {
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
pub(super) struct Sampled {
    pub(super) pid: u32,
    pub(super) glibc: Result<String>,
    pub(super) locks_readable: bool,
    pub(super) first: Vec<Task>,
    pub(super) last: Vec<Task>,
}

impl Sampled {
    /// Why the process's glibc locks cannot be read, when they cannot: a
    /// thread blocked on one shows only its futex wait, and no thread is
    /// seen to hold it. Not said of a process with no glibc at all whose
    /// runtime's blind spot is said (`runtime`: a Go program).
    fn lock_blind_spot(&self, runtime: bool) -> Option<String> {
        let why = match &self.glibc {
            Ok(v) => glibc::check(v).err()?.to_string(),
            Err(_) if runtime => return None,
            Err(e) => e.to_string(),
        };
        Some(format!(
            "pid {}: {why}: a thread blocked on a lock shows only its futex wait, not which thread holds \
             the lock; `gdb -p {} -batch -ex 'thread apply all bt'` shows every thread's frames",
            self.pid, self.pid
        ))
    }

    /// The threads running at the first sample and the last: at work, or
    /// spinning on a lock (a spin lock's waiter never enters the kernel),
    /// which inspect does not tell apart.
    fn busy_blind_spot(&self) -> Option<String> {
        const NAMED: usize = 4;
        let running = |t: &Task| matches!(t.syscall, Syscall::Running);
        let busy: Vec<String> = self
            .last
            .iter()
            .filter(|t| running(t) && self.first.iter().any(|f| f.tid == t.tid && running(f)))
            .map(|t| format!("T{} \"{}\"", t.tid, t.name))
            .collect();
        let (n, mut named) = (busy.len(), busy.join(", "));
        match n {
            0 => return None,
            1..=NAMED => {}
            _ => named = format!("{} and {} more", busy[..NAMED].join(", "), n - NAMED),
        }
        Some(format!(
            "pid {}: {named} ran at every sample: a thread spinning on a lock (`pthread_spin_lock`, a \
             spin loop of its own) never waits in the kernel, and is not told from one at work; \
             `perf top -t TID` shows where one runs",
            self.pid
        ))
    }

    /// Whether a thread made no progress between the samples, in a call.
    pub(super) fn stuck(&self, t: &Task) -> bool {
        matches!(t.syscall, Syscall::In { .. })
            && self
                .first
                .iter()
                .find(|b| b.tid == t.tid)
                .is_some_and(|b| b.switches == t.switches && b.syscall == t.syscall)
    }
}

/// The processes asked for, the holders of the file locks their threads
/// wait for (from /proc/locks, as lslocks finds them), the owners of the
/// process-shared mutexes they wait for, and the children they wait for
/// (`wait4` of one child, or of any when there is one), and theirs in
/// turn: a wait is followed to the process that can end it.
fn with_followed(pids: &[u32]) -> Vec<u32> {
    // A pid given twice is one process.
    let mut all: Vec<u32> = Vec::new();
    for &p in pids {
        if !all.contains(&p) {
            all.push(p);
        }
    }
    let mut i = 0;
    while i < all.len() && all.len() < 64 {
        let pid = all[i];
        i += 1;
        // Only each thread's system call: a full sample of a process of
        // 1500 threads is most of inspect's time.
        for tid in procfs::tids(pid).unwrap_or_default() {
            let Ok(line) = std::fs::read_to_string(format!("/proc/{pid}/task/{tid}/syscall"))
            else {
                continue;
            };
            let Syscall::In { nr, args } = &procfs::parse_syscall(&line) else {
                continue;
            };
            let followed: Vec<u32> = if let Some(child) = waited_child(pid, *nr, args) {
                vec![child]
            } else if let Some((_, owner)) = (*nr == 202)
                .then(|| glibc::shared_mutex_owner(pid, args[0], args[1], args[2]))
                .flatten()
                // An owner that exited holding it: nothing to follow.
                .filter(|(tid, _)| !procfs::thread_exited(*tid, None))
            {
                vec![owner]
            } else if is_file_lock_wait(*nr, args) {
                procfs::file_lock_wait(pid, tid, args[0])
                    .map(|(addr, _)| {
                        procfs::file_lock_holders(addr)
                            .into_iter()
                            .map(|(h, _)| h)
                            .collect()
                    })
                    .unwrap_or_default()
            } else {
                continue;
            };
            for p in followed {
                if p != 0 && !all.contains(&p) && procfs::check_exists(p).is_ok() {
                    all.push(p);
                }
            }
        }
    }
    all
}

/// The snapshot of the processes: a model holding what they are seen to
/// wait for (its `observed`), and what /proc showed of each thread.
pub fn observe(o: &Options) -> Result<(Model, InspectInfo)> {
    anyhow::ensure!(!o.pids.is_empty(), "no process to inspect");
    for &pid in &o.pids {
        procfs::check_exists(pid)?;
    }
    let pids = with_followed(&o.pids);
    let mut procs = Vec::new();
    for &pid in &pids {
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
    // A wait's age counts from when its thread last ran, and a ptrace stop
    // (gdb, eu-stack, a `--stacks` before) makes it run: a call blocked for
    // minutes is young again after an attach. A thread that made no
    // progress but is younger than the stall threshold is watched until
    // it reaches it (at most 5 s more), so the finding is kept, with its
    // age a lower bound.
    let clocks = procfs::SchedClocks::calibrate();
    let sampled_ms = procfs::boot_clock_ms();
    let youngest = procs
        .iter()
        .flat_map(|p| p.last.iter().filter(|t| p.stuck(t)))
        .filter_map(|t| clocks.last_ran_ms(t))
        .map(|ran| sampled_ms - ran)
        .filter(|&age| age >= 0.0 && age < o.stall_ms as f64)
        .fold(f64::INFINITY, f64::min);
    if youngest.is_finite() {
        let more = (o.stall_ms as f64 - youngest + 20.0).min(5000.0);
        std::thread::sleep(std::time::Duration::from_millis(more as u64));
        for p in procs.iter_mut() {
            p.last = sample(p.pid).unwrap_or_default();
        }
    }
    let sockets = procfs::Sockets::read();
    let now_ms = procfs::boot_clock_ms();
    let window_ms = o.interval.as_millis() as u64 * (o.samples.max(1) as u64 - 1);

    let mut w = read_waits(&procs, &sockets);
    warnings.append(&mut w.warnings);
    let (mut users, queues) = queue_users(&procs, &w, &first_netlink, &sockets);
    traced_users(&procs, &mut users);
    peer_feeders(&procs, &w, &sockets.tcp, &mut users);

    // User-space stacks of the threads that made no progress.
    let mut stack_ids: HashMap<u32, u64> = HashMap::new();
    let mut frames_of: Vec<HashMap<u64, Vec<u64>>> = vec![HashMap::new(); procs.len()];
    let mut module_tables = vec![Vec::new(); procs.len()];
    let mut stopped_for_stack: Vec<String> = Vec::new();
    if o.stacks {
        for (idx, p) in procs.iter().enumerate() {
            match stacks::modules(p.pid) {
                Ok(mods) => {
                    for t in p.last.iter().filter(|t| p.stuck(t)) {
                        match stacks::stack(p.pid, t.tid, &mods) {
                            Ok((frames, taken)) if !frames.is_empty() => {
                                if taken == stacks::Taken::Stopped {
                                    stopped_for_stack.push(match &t.syscall {
                                        Syscall::In { nr, .. } => {
                                            format!("T{} ({})", t.tid, syscall_name(*nr))
                                        }
                                        _ => format!("T{}", t.tid),
                                    });
                                }
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
    } else {
        // Without stacks, the module table still names the locks.
        for (idx, p) in procs.iter().enumerate() {
            module_tables[idx] = stacks::module_table(p.pid).unwrap_or_default();
        }
    }
    w.name_objects(&module_tables);
    barrier_arrivers(&procs, &w, &mut users);

    if !stopped_for_stack.is_empty() {
        warnings.push(format!(
            "the stack of {} could not be unwound from the blocked call alone and was taken with a brief ptrace stop: a blocked epoll_wait, semop, sigtimedwait or socket call under a timeout returns EINTR to the program after one",
            stopped_for_stack.join(", ")
        ));
    }
    // The snapshot, on the boot clock.
    let now_ns = (now_ms * 1e6) as u64;
    let snap: Vec<Snap> = procs
        .iter()
        .flat_map(|p| p.last.iter().map(move |t| (p.pid, t)))
        .map(|(pid, t)| {
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
                // A timed lock ends by itself: never a deadlock.
                timed: matches!(wait, Some(Wait::Lock { .. }))
                    && matches!(&t.syscall, Syscall::In { nr, args }
                        if super::timeouts::timeout_of(pid, *nr, args, &t.wchan).is_some()),
                wait,
                stack: stack_ids.get(&t.tid).copied().unwrap_or(0),
            }
        })
        .collect();
    let env = InspectEnv {
        pids: procs.iter().map(|p| p.pid).collect(),
        names: &w.names,
        blocked_in: &w.blocked_in,
        process_index: &w.process_of,
    };
    let mut observed: Vec<Observed> = waitfor::analyse(&env, &snap, &users, now_ns, 0, o.stall_ms)
        .into_iter()
        .map(|f| f.observed)
        .collect();
    // Waits for a mutex whose owner exited holding it: for ever.
    for &(waiter, owner, process) in &w.orphans {
        // (A timed wait gives up at its deadline: no deadlock.)
        let Some(s) = snap.iter().find(|s| s.tid == waiter && !s.timed) else {
            continue;
        };
        let gone = waitfor::ExitedOwner {
            tid: owner,
            pid: Some(process),
            // A zombie main thread is still listed; a thread that is gone
            // has no name to read.
            name: w.names.get(&owner).cloned().unwrap_or_default(),
            mode: holdcheck_format::Mode::Write,
            site: 0,
        };
        observed.extend(waitfor::orphan_wait(&env, s, now_ns, &gone).map(|f| f.observed));
    }
    // Waiters for a rwlock whose readers cannot be named still wait: a
    // stall whose root is unknown, said so, with every waiter counted.
    for (addr, readers, candidates) in &w.unnamed_readers {
        let waiting: Vec<&Snap> = snap
            .iter()
            .filter(|s| matches!(&s.wait, Some(Wait::Lock { addr: a, .. }) if a == addr))
            .collect();
        let oldest = waiting
            .iter()
            .map(|s| now_ns.saturating_sub(s.since) / 1_000_000)
            .max()
            .unwrap_or(0);
        let reported = waiting.iter().any(|s| {
            observed
                .iter()
                .any(|f| f.threads.iter().any(|t| t.tid == s.tid))
        });
        if waiting.is_empty() || oldest < o.stall_ms || reported {
            continue;
        }
        let (_, raw) = decode(*addr);
        observed.push(Observed {
            kind: "stall".into(),
            title: format!(
                "{} thread{} stuck for {oldest} ms on rwlock {raw:#x}, held for reading by {readers} thread{} that inspect cannot name (readers are recorded nowhere; {})",
                waiting.len(),
                if waiting.len() == 1 { "" } else { "s" },
                if *readers == 1 { "" } else { "s" },
                if candidates.is_empty() {
                    "no blocked thread could be it: a reader that runs, or one of another process".to_string()
                } else {
                    format!("one of {}", candidates.join(", "))
                }
            ),
            nodes: vec![ObservedNode::Lock {
                pid: None,
                lock: LockRef {
                    addr: *addr,
                    gen: 0,
                },
                kind: LockKind::Rwlock,
                mode: holdcheck_format::Mode::Read,
            }],
            edges: Vec::new(),
            threads: waiting
                .iter()
                .map(|s| waitfor::observed_thread(&env, s, now_ns))
                .collect(),
            waiters: waiting.len() as u32,
        });
    }
    // Every other call blocked past the threshold: from outside, a request
    // awaiting its reply and an idle server look alike, so all are shown;
    // but a pipe's reader that holds no lock waits for its writer, as the
    // reader of an idle pipeline does (`sleep 1000 | grep x`), a server
    // in `accept` that holds no lock is idle, and so is a thread at a
    // barrier that holds none (its peers are at work): no finding.
    let involved: HashSet<u32> = observed
        .iter()
        .flat_map(|f| f.threads.iter().map(|t| t.tid))
        .collect();
    if let Some(ending) = &o.ending {
        let seen = HangSeen::Ended(ending);
        observed.extend(hang(&env, &snap, &involved, &queues, now_ns, seen));
    } else if observed.is_empty() && every_wait_closed(&procs) {
        // Never "no findings" of a process that cannot move; one that
        // has other findings says what holds it up there already.
        let seen = HangSeen::ForGood;
        observed.extend(hang(&env, &snap, &involved, &queues, now_ns, seen));
    }
    for s in snap
        .iter()
        .filter(|s| o.ending.is_none() && !involved.contains(&s.tid))
    {
        if let Some(Wait::Call {
            call, channel, dir, ..
        }) = &s.wait
        {
            // A join is a wait for a thread, shown where that thread is.
            if matches!(channel, Channel::Thread { .. }) {
                continue;
            }
            let idle_reader = *dir == Direction::Recv
                && s.held.is_empty()
                && matches!(
                    channel,
                    Channel::Pipe { .. }
                        | Channel::Fifo { .. }
                        | Channel::Listen { .. }
                        | Channel::Barrier { .. }
                );
            let waited = now_ns.saturating_sub(s.since) / 1_000_000;
            if waited >= o.stall_ms && !idle_reader {
                let mut ob = blocked_call(&env, s, call, channel, *dir, waited, o.samples);
                // The other end's process stopped: the cause, said.
                let other = queues
                    .iter()
                    .find(|q| q.description == channel.describe())
                    .map(|q| q.owner_pids.clone())
                    .unwrap_or_default();
                let stopped: Vec<String> = procs
                    .iter()
                    .filter(|p| other.contains(&p.pid) && !p.last.is_empty())
                    .filter(|p| {
                        p.last
                            .iter()
                            .all(|t| super::wait::stopped(t.state).is_some())
                    })
                    .map(|p| p.pid.to_string())
                    .collect();
                if *dir == Direction::Send && !stopped.is_empty() {
                    ob.title.push_str(&format!(
                        "; the process reading it (pid {}) is stopped, and drains nothing until it is continued",
                        stopped.join(", ")
                    ));
                }
                observed.push(ob);
            }
        }
    }
    // The other end of a blocked root's queue: named where a thread is
    // seen at it, else said to be unknown (a thread that merely has the
    // fd open may never read it).
    for ob in observed.iter_mut() {
        let Some(Waiting::Call {
            channel, direction, ..
        }) = ob.threads.first().and_then(|t| t.waiting.as_ref())
        else {
            continue;
        };
        if matches!(channel, Channel::Thread { .. } | Channel::Exit { .. })
            || ob.kind == "deadlock"
            || ob.title.contains("is stopped")
        {
            continue;
        }
        let root = ob.threads[0].tid;
        let (other, role, unknown) = match (channel, direction) {
            (Channel::Barrier { .. }, _) => (
                users.send.get(channel),
                "the threads still to arrive",
                "are unknown (a process-shared barrier: another process may arrive)",
            ),
            (_, Direction::Send) => (
                users.recv.get(channel),
                "its reader",
                "is unknown (no thread is seen at the other end)",
            ),
            (_, Direction::Recv) => (
                users.send.get(channel),
                "its writer",
                "is unknown (no thread is seen at the other end)",
            ),
        };
        let named: Vec<String> = other
            .into_iter()
            .flatten()
            .filter(|&&t| t != root)
            .map(|t| format!("T{t} \"{}\"", env.thread_name(*t)))
            .collect();
        ob.title.push_str(&if named.is_empty() {
            format!("; {role} {unknown}")
        } else {
            format!("; {role}: {}", named.join(", "))
        });
    }
    // Back to each process's own addresses, with the pid of every thread
    // and lock.
    let pid_of_tid = |tid: u32| env.process_of(tid);
    for ob in observed.iter_mut() {
        attribute(ob, &env.pids, &pid_of_tid);
    }

    // The kinds of the locks seen, for the report's nodes.
    let mut locks: Vec<rustc_hash::FxHashMap<LockRef, crate::model::LockMeta>> =
        vec![Default::default(); procs.len()];
    let mut file_paths = HashMap::new();
    for (tid, wait) in &w.waits {
        if let Wait::Lock { addr, kind, .. } = wait {
            let encoded = addr;
            // A file lock is every process's: known by the waiter's, and
            // named by its path.
            let (idx, addr) = match decode(*addr) {
                (Some(idx), addr) => (idx, addr),
                (None, addr) => match w.process_of.get(tid) {
                    Some(&idx) => {
                        if let Some(path) = w.file_paths.get(&addr) {
                            file_paths.insert(LockRef { addr, gen: 0 }, path.clone());
                        }
                        (idx, addr)
                    }
                    None => continue,
                },
            };
            let meta = crate::model::LockMeta {
                kind: *kind,
                writer_preferring: *kind == LockKind::Rwlock
                    && glibc::writer_preferring(procs[idx].pid, addr),
                recursive: false,
                init: None,
            };
            // Known to the process of the waiter and to that of each
            // holder (a process-shared mutex, a file lock): each names it.
            let holders = snap
                .iter()
                .filter(|s| s.held.iter().any(|h| h.addr == *encoded))
                .filter_map(|s| w.process_of.get(&s.tid).copied());
            for i in std::iter::once(idx).chain(holders) {
                locks[i].insert(LockRef { addr, gen: 0 }, meta);
            }
        }
    }
    let mut model = Model::default();
    model.file_paths = file_paths;
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
    // Each queue's ends as far as /proc shows them: the waiter's process on
    // its side, and for a send the processes holding the receiving end.
    for (tid, wait) in &w.waits {
        let (Wait::Call { channel, dir, .. }, Some(&idx)) = (wait, w.process_of.get(tid)) else {
            continue;
        };
        if !channel.is_queue() {
            continue;
        }
        let ends = model.ends.entry(channel.clone()).or_default();
        match dir {
            Direction::Send => {
                ends.0.insert(procs[idx].pid);
                let described = channel.describe();
                if let Some(q) = queues.iter().find(|q| q.description == described) {
                    ends.1.extend(q.owner_pids.iter().copied());
                }
            }
            Direction::Recv => {
                ends.1.insert(procs[idx].pid);
            }
        }
    }
    let info = InspectInfo {
        pid: procs[0].pid,
        pids: procs.iter().map(|p| p.pid).collect(),
        not_visible: procs
            .iter()
            .flat_map(|p| {
                let runtime = procfs::runtime_blind_spot(p.pid);
                let locks = p.lock_blind_spot(runtime.is_some());
                runtime.into_iter().chain(locks).chain(p.busy_blind_spot())
            })
            .collect(),
        file_locks: procs
            .iter()
            .flat_map(|p| procfs::held_file_locks(p.pid))
            .collect(),
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
                        Syscall::In { nr, .. } if p.stuck(t) => Some(call_name(*nr, &t.wchan)),
                        Syscall::In { .. } => None,
                    }),
                in_call: match &t.syscall {
                    Syscall::In { nr, .. } if !p.stuck(t) => Some(syscall_name(*nr)),
                    _ => None,
                },
                no_progress_ms: p.stuck(t).then(|| {
                    clocks
                        .last_ran_ms(t)
                        .map_or(window_ms, |r| (now_ms - r).max(0.0) as u64)
                }),
                timeout: match &t.syscall {
                    Syscall::In { nr, args } => {
                        super::timeouts::timeout_of(p.pid, *nr, args, &t.wchan)
                    }
                    _ => None,
                },
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
pub(super) fn attribute(ob: &mut Observed, pids: &[u32], pid_of_tid: &dyn Fn(u32) -> Option<u32>) {
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
        t.pid = pid_of_tid(t.tid).or(t.pid);
        for h in t.held.iter_mut() {
            fix(&mut h.lock);
        }
        if let Some(Waiting::Lock { lock, .. }) = &mut t.waiting {
            fix(lock);
        }
    }
}

/// Whether every thread of the sampled processes (but the shim's
/// watchdog) sleeps, unmoved between the samples, in a wait only another
/// of them could end (see `hung::closed_wait`): then nothing will ever
/// wake them, whether or not their waits make a cycle that is known to be
/// one (threads each waiting on a condition variable only the others
/// signalled).
fn every_wait_closed(procs: &[Sampled]) -> bool {
    let members: Vec<u32> = procs.iter().map(|p| p.pid).collect();
    let mut threads = procs.iter().flat_map(|p| {
        p.last
            .iter()
            .filter(|t| t.name != super::users::WATCHDOG_THREAD)
            .map(move |t| (p, t))
    });
    threads.clone().next().is_some()
        && threads.all(|(p, t)| {
            t.state == 'S'
                && p.stuck(t)
                && super::hung::closed_wait(p.pid, t.tid, &t.syscall, &members)
        })
}

/// How a hang was seen: the command ended by `run` (at the timeout, or
/// hung), or every thread of a live process in a wait nothing can end.
enum HangSeen<'a> {
    Ended(&'a str),
    ForGood,
}

/// The threads blocked when a run ended the command that no finding
/// explains, as one `hang` finding: each thread's wait, and the chain from
/// a join or a child's exit to the thread that blocks it (main joins the
/// worker, which waits in `recvfrom` on an empty queue). A command ended at
/// the timeout is never "0 findings" while its threads were blocked.
fn hang(
    env: &InspectEnv,
    snap: &[Snap],
    involved: &HashSet<u32>,
    queues: &[crate::report::QueueInfo],
    now_ns: u64,
    seen: HangSeen,
) -> Option<Observed> {
    let blocked: Vec<&Snap> = snap
        .iter()
        .filter(|s| !involved.contains(&s.tid))
        .filter(|s| s.wait.is_some() || env.blocked_in(s.tid).is_some())
        .collect();
    if blocked.is_empty() {
        return None;
    }
    // The thread a join waits for; for a wait4, the child's first
    // blocked thread (its main thread if that is blocked).
    let waits_for_thread = |s: &Snap| match &s.wait {
        Some(Wait::Call {
            channel: Channel::Thread { tid, .. },
            ..
        }) => Some(*tid),
        Some(Wait::Call {
            channel: Channel::Exit { pid },
            ..
        }) => blocked
            .iter()
            .filter(|t| t.tid != s.tid && env.process_of(t.tid) == Some(*pid))
            .min_by_key(|t| (t.tid != *pid, t.tid))
            .map(|t| t.tid),
        _ => None,
    };
    // What a thread is blocked in, with the state of its queue.
    let what = |s: &Snap| -> String {
        match &s.wait {
            Some(Wait::Call {
                call, channel, dir, ..
            }) => {
                let empty = *dir == Direction::Recv
                    && queues
                        .iter()
                        .any(|q| q.description == channel.describe() && q.rmem == Some(0));
                format!(
                    "blocked in {call}() on {}{}",
                    channel.describe(),
                    if empty {
                        " (nothing received: its queue is empty)"
                    } else {
                        ""
                    }
                )
            }
            Some(Wait::Lock { .. }) => "waiting for a lock".to_string(),
            None => format!("blocked in {}", env.blocked_in(s.tid).unwrap_or_default()),
        }
    };
    let name = |tid: u32| format!("T{tid} \"{}\"", env.thread_name(tid));
    // The threads others wait for first: the roots of the chains.
    let mut threads: Vec<&Snap> = blocked.clone();
    threads.sort_by_key(|s| waits_for_thread(s).is_some());
    let first = threads
        .iter()
        .find_map(|s| {
            let target = waits_for_thread(s)?;
            let t = snap.iter().find(|x| x.tid == target)?;
            Some(match &s.wait {
                Some(Wait::Call {
                    channel: Channel::Exit { pid },
                    ..
                }) => format!(
                    "{} waits in wait4 for the exit of process {pid}, whose thread {} is {}",
                    name(s.tid),
                    name(target),
                    what(t)
                ),
                _ => format!(
                    "{} waits in pthread_join for {}, which is {}",
                    name(s.tid),
                    name(target),
                    what(t)
                ),
            })
        })
        .unwrap_or_else(|| format!("{} is {}", name(threads[0].tid), what(threads[0])));
    let mut nodes: Vec<ObservedNode> = Vec::new();
    for s in &threads {
        if let Some(Wait::Call { channel, dir, .. }) = &s.wait {
            let n = ObservedNode::Channel {
                channel: channel.clone(),
                direction: *dir,
            };
            if !matches!(channel, Channel::Thread { .. }) && !nodes.contains(&n) {
                nodes.push(n);
            }
        }
    }
    Some(Observed {
        kind: "hang".into(),
        title: format!(
            "{} {}: {first}{}",
            threads.len(),
            match (seen, threads.len()) {
                (HangSeen::Ended(ending), 1) =>
                    format!("thread was blocked when the command was ended {ending}"),
                (HangSeen::Ended(ending), _) =>
                    format!("threads were blocked when the command was ended {ending}"),
                (HangSeen::ForGood, 1) =>
                    "thread is blocked for good, in a wait only another of its threads could end"
                        .to_string(),
                (HangSeen::ForGood, _) =>
                    "threads are blocked for good, each in a wait only another of them could end"
                        .to_string(),
            },
            if threads.len() > 2 {
                " (every thread's wait below)"
            } else {
                ""
            }
        ),
        nodes,
        edges: Vec::new(),
        threads: threads
            .iter()
            .map(|s| waitfor::observed_thread(env, s, now_ns))
            .collect(),
        waiters: 0,
    })
}
