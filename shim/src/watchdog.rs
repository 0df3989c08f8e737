//! The live watchdog: a thread of the shim's own that, every interval, reads
//! the published state of every thread and runs the wait-for analysis of
//! `holdcheck_waitfor` on it, reporting each deadlock, stall and
//! stalled call once, on stderr and in the trace, while the process is still
//! hung; and each stall that passed `ended_stall_ms` but ended before
//! `stall_ms`, once it ended.

use crate::config;
use crate::live;
use crate::live::{Published, CALL_DEFERRED, CALL_REPLY, CHANNELS, REGISTRY, WAIT_CALL, WAIT_LOCK};
use crate::locks;
use crate::recorder::recorder;
use crate::sync::ForkMutex;
use crate::sys;
use crate::thread::{self, HeldEntry};
use core::sync::atomic::{AtomicBool, Ordering};
use holdcheck_format::{
    Channel, Direction, LockKind, LockRef, Mode, Observed, ObservedNode, Record, Waiting,
};
use holdcheck_waitfor::{self as waitfor, ChannelUsers, Env, HeldLock, Snap, Wait};
use std::collections::HashSet;
use std::time::Duration;

static STARTED: AtomicBool = AtomicBool::new(false);

/// Starts the watchdog thread once per process (again in a fork child),
/// when the program starts its first thread (the `pthread_create` hook). A
/// single-threaded program gets none: its threads cannot wait on each
/// other, and an extra thread would cost it glibc's single-threaded lock
/// fast path (no `lock` prefix).
///
/// A plain pthread, not `std::thread`: std's spawn registers thread-local
/// destructors through `__cxa_thread_atexit_impl`, which takes the
/// loader's lock, and the program may be inside a `dlopen`.
pub fn ensure_started() {
    if !config::active() || STARTED.swap(true, Ordering::AcqRel) {
        return;
    }
    let _errno = sys::ErrnoGuard::save();
    // SAFETY: plain libc calls with valid out-parameters; `entry` is a
    // plain function that never unwinds out.
    let ok = unsafe {
        let mut attr: libc::pthread_attr_t = core::mem::zeroed();
        libc::pthread_attr_init(&mut attr);
        libc::pthread_attr_setstacksize(&mut attr, 256 * 1024);
        libc::pthread_attr_setdetachstate(&mut attr, libc::PTHREAD_CREATE_DETACHED);
        let mut t: libc::pthread_t = 0;
        let r = crate::real::pthread_create()(
            &mut t,
            &attr,
            entry as *mut core::ffi::c_void,
            core::ptr::null_mut(),
        );
        libc::pthread_attr_destroy(&mut attr);
        if r == 0 {
            crate::real::pthread_setname_np()(t, c"holdcheck-watch".as_ptr());
        }
        r == 0
    };
    if !ok {
        config::go_passive("cannot start the watchdog thread");
    }
}

extern "C" fn entry(_: *mut core::ffi::c_void) -> *mut core::ffi::c_void {
    // Nothing unwinds into the program's thread machinery.
    let _ = std::panic::catch_unwind(run);
    core::ptr::null_mut()
}

/// A sleep that overran by this much means the process was stopped.
const PAUSE_MS: u64 = 500;

/// How often the watchdog checks that the program still has a thread.
const LAST_THREAD_CHECK_MS: u64 = 100;

/// Whether every thread but this one has exited (a main thread that called
/// `pthread_exit` stays as a zombie until the process ends). The watchdog
/// must not keep alive a process whose threads are all gone.
fn only_thread_left(me: u32) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return false;
    };
    let tids: Vec<u32> = dir
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
        .filter(|&t| t != me)
        .collect();
    // The cheap case first: more than the zombie main thread is left.
    if tids.len() > 1 {
        return false;
    }
    tids.iter().all(|t| {
        std::fs::read_to_string(format!("/proc/self/task/{t}/stat"))
            .ok()
            .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().next()?.to_string()))
            .is_some_and(|state| state == "Z" || state == "X")
    })
}

pub fn after_fork_child() {
    STARTED.store(false, Ordering::Release);
    // SAFETY: called in the fork child before any other shim code runs.
    unsafe { ENDED.reset(EndedStalls::new()) };
}

/// At exit: the stalls still pending end with the process, and are
/// reported (a stall can last to the very end of a short program). Never
/// waits long for the watchdog, which may be mid-look.
pub fn flush_ended() {
    let mut pending = None;
    for _ in 0..200 {
        pending = ENDED.try_lock().map(|mut e| std::mem::take(&mut e.live));
        if pending.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    for (_, o, _) in pending.unwrap_or_default() {
        report(&ended(&o));
    }
}

fn run() {
    // Everything this thread does passes through the hooks untouched.
    thread::pass_through_forever();
    let cfg = config::get();
    let mut seen: HashSet<u64> = HashSet::new();
    let me = sys::gettid();
    // Calls may leave their waits published once a thread's system call
    // can be read here, to check them against.
    crate::live::set_deferring(
        syscall_of(me).is_some_and(|s| s != holdcheck_waitfor::syscall::Syscall::Elsewhere),
    );
    // When the process last ran again after being stopped (SIGSTOP,
    // Ctrl-Z, a debugger): no wait is older than that, since a stopped
    // process is not stalled, its waits only paused.
    let mut resumed_at = 0u64;
    loop {
        // In slices: the process must end when its last thread does.
        let mut slept = 0;
        while slept < cfg.watchdog_ms {
            let slice = (cfg.watchdog_ms - slept).min(LAST_THREAD_CHECK_MS);
            let before = sys::monotonic_ns();
            std::thread::sleep(Duration::from_millis(slice));
            let after = sys::monotonic_ns();
            if after.saturating_sub(before) > (slice + PAUSE_MS) * 1_000_000 {
                resumed_at = after;
            }
            slept += slice;
            if only_thread_left(me) {
                // What the program's last thread would have done: glibc
                // calls exit(0) when the last thread exits.
                // SAFETY: exit runs the program's atexit handlers, as it
                // would have.
                unsafe { libc::exit(0) };
            }
        }
        if !config::active() {
            continue;
        }
        // Calls under locks that threads counted: on disk at each look.
        let published = crate::live::all_published();
        crate::facts::give_tallies(&mut crate::recorder::recorder(), &published);
        let (mut snap, deferred) = snapshot();
        for t in snap.iter_mut().filter(|t| t.since != 0) {
            t.since = t.since.max(resumed_at);
        }
        let users = channel_users(&snap);
        let now = sys::monotonic_ns();
        // Down to the ended-stall threshold: a stall younger than stall_ms
        // is a candidate, reported if it ends before it gets there.
        let low = match cfg.ended_stall_ms {
            0 => cfg.stall_ms,
            e => e.min(cfg.stall_ms),
        };
        let found = checked(&mut snap, &deferred, |snap| {
            waitfor::analyse(&ShimEnv, snap, &users, now, cfg.watchdog_ms, low)
        });
        let (found, young): (Vec<_>, Vec<_>) = found.into_iter().partition(|f| {
            !matches!(f.observed.kind.as_str(), "stall" | "stalled-call")
                || oldest_wait_ms(&f.observed) >= cfg.stall_ms
        });
        let (gone, found) = {
            let mut ended = ENDED.lock();
            for f in young.into_iter().filter(|f| f.observed.kind == "stall") {
                ended.see(f);
            }
            let found: Vec<_> = found
                .into_iter()
                .chain(orphan_waits(&snap, now, cfg.watchdog_ms))
                .collect();
            for obs in &found {
                ended.forget(obs.key);
            }
            (ended.gone(), found)
        };
        for o in gone {
            report(&o);
        }
        for obs in found {
            if seen.insert(obs.key) {
                report(&obs.observed);
                if obs.observed.kind == "deadlock" && cfg.abort_on_deadlock {
                    sys::say("on_deadlock=abort: aborting for a core dump");
                    crate::recorder::drain();
                    // SAFETY: the documented way to leave a core.
                    unsafe { libc::abort() };
                }
            }
        }
    }
}

/// A wait left published after its call returned (see
/// `live::Published::wait_call`): its thread, call and descriptor.
struct Deferred {
    tid: u32,
    call: &'static str,
    fd: i32,
}

/// What `analyse` finds, once every wait that a finding rests on was
/// checked against what `/proc` shows its thread in:
/// - a wait left published after its call, whose thread is no longer in
///   that call, is gone (its thread runs, as it would had its hook cleared
///   the wait);
/// - a lock wait of a deadlock whose thread waits with a timeout (a timed
///   lock) ends by itself: not a deadlock (see [`Snap::timed`]).
///
/// The snapshot is then analysed again. Only the threads of findings are
/// read: a server's thousand threads idle in `recv` cost nothing at each
/// look.
fn checked(
    snap: &mut [Snap],
    deferred: &[Deferred],
    analyse: impl Fn(&[Snap]) -> Vec<waitfor::Finding>,
) -> Vec<waitfor::Finding> {
    let mut read: HashSet<u32> = HashSet::new();
    loop {
        let found = analyse(snap);
        let gone: Vec<u32> = found
            .iter()
            .flat_map(|f| f.observed.threads.iter().map(|t| t.tid))
            .filter_map(|tid| deferred.iter().find(|d| d.tid == tid))
            .filter(|d| read.insert(d.tid) && !in_call(d))
            .map(|d| d.tid)
            .collect();
        let locks_waited = |tid: u32| {
            snap.iter()
                .any(|s| s.tid == tid && matches!(s.wait, Some(Wait::Lock { .. })))
        };
        let timed: Vec<u32> = found
            .iter()
            .filter(|f| f.observed.kind == "deadlock")
            .flat_map(|f| f.observed.threads.iter().map(|t| t.tid))
            .filter(|&tid| locks_waited(tid) && read.insert(tid) && in_timed_wait(tid))
            .collect();
        if gone.is_empty() && timed.is_empty() {
            return found;
        }
        for s in snap.iter_mut() {
            if gone.contains(&s.tid) {
                s.wait = None;
                s.since = 0;
            }
            s.timed |= timed.contains(&s.tid);
        }
    }
}

/// What thread `tid` of this process is in now, as `/proc` says.
fn syscall_of(tid: u32) -> Option<holdcheck_waitfor::syscall::Syscall> {
    let line = std::fs::read_to_string(format!("/proc/self/task/{tid}/syscall")).ok()?;
    Some(holdcheck_waitfor::syscall::parse(&line))
}

/// Whether a thread waits for a lock with a timeout (see [`checked`]).
fn in_timed_wait(tid: u32) -> bool {
    syscall_of(tid).is_some_and(|s| holdcheck_waitfor::syscall::is_timed_futex_wait(&s))
}

/// Whether the thread of a wait left published is still in its call.
fn in_call(d: &Deferred) -> bool {
    syscall_of(d.tid).is_some_and(|s| holdcheck_waitfor::syscall::is_call_on(&s, d.call, d.fd))
}

/// The longest wait of an observation's threads.
fn oldest_wait_ms(o: &Observed) -> u64 {
    o.threads.iter().map(|t| t.waited_ms).max().unwrap_or(0)
}

/// Stalls past `ended_stall_ms` but short of `stall_ms`, kept while they
/// last and reported once they are gone: a 3 s read under a rwlock with
/// 21 threads queued behind it is the whole story of a slow service even
/// though it ended by itself.
struct EndedStalls {
    /// By the stall's key (its root and when its root's wait began): its
    /// largest look so far, and whether it was seen at the last look.
    live: Vec<(u64, Observed, bool)>,
}

static ENDED: ForkMutex<EndedStalls> = ForkMutex::new(EndedStalls::new());

impl EndedStalls {
    const fn new() -> EndedStalls {
        EndedStalls { live: Vec::new() }
    }

    fn see(&mut self, f: waitfor::Finding) {
        let o = f.observed;
        match self.live.iter_mut().find(|(k, _, _)| *k == f.key) {
            Some((_, kept, seen)) => {
                *seen = true;
                if (o.waiters, oldest_wait_ms(&o)) >= (kept.waiters, oldest_wait_ms(kept)) {
                    *kept = o;
                }
            }
            None => self.live.push((f.key, o, true)),
        }
    }

    /// Reported live after all: no longer a candidate.
    fn forget(&mut self, key: u64) {
        self.live.retain(|(k, _, _)| *k != key);
    }

    /// The stalls not seen at this look, as findings that say they ended;
    /// the others wait for the next look.
    fn gone(&mut self) -> Vec<Observed> {
        let mut out = Vec::new();
        self.live.retain_mut(|(_, o, seen)| {
            if std::mem::take(seen) {
                return true;
            }
            out.push(ended(o));
            false
        });
        out
    }
}

/// A stall that ended, said so: how many waited, how long at most, behind
/// whom and what that thread was doing.
fn ended(o: &Observed) -> Observed {
    let Some(root) = o.threads.first() else {
        return o.clone();
    };
    let what = match &root.waiting {
        Some(Waiting::Call { call, channel, .. }) => {
            format!("blocked in {call}() on {}", channel.describe())
        }
        Some(Waiting::Lock { .. }) => "waiting for a lock".to_string(),
        Some(Waiting::Other { what }) => format!("blocked in {what}"),
        None => "running".to_string(),
    };
    let mut done = o.clone();
    done.title = format!(
        "{} thread{} waited behind T{} \"{}\" (the longest at least {} ms), which held the lock and was {what}; the stall ended by itself",
        o.waiters,
        if o.waiters == 1 { "" } else { "s" },
        root.tid,
        root.name,
        o.threads.iter().skip(1).map(|t| t.waited_ms).max().unwrap_or(0),
    );
    done
}

/// Threads waiting (for at least `min_ms`) for a lock whose owner thread
/// exited holding it (see [`waitfor::orphan_wait`]).
fn orphan_waits(snap: &[Snap], now: u64, min_ms: u64) -> Vec<waitfor::Finding> {
    let orphans = live::ORPHANS.lock().clone();
    if orphans.is_empty() {
        return Vec::new();
    }
    let mut out = Vec::new();
    for s in snap {
        let Some(Wait::Lock { addr, .. }) = &s.wait else {
            continue;
        };
        if s.since == 0 || now.saturating_sub(s.since) < min_ms * 1_000_000 {
            continue;
        }
        let Some(o) = orphans.iter().find(|o| o.addr as u64 == *addr) else {
            continue;
        };
        if !o.still_owned() {
            continue; // released for it since: not this
        }
        if in_timed_wait(s.tid) {
            continue; // it gives up at its deadline: no deadlock
        }
        let owner = waitfor::ExitedOwner {
            tid: o.tid,
            pid: None,
            name: o.name.clone(),
            mode: o.mode,
            site: o.site as u64,
        };
        out.extend(waitfor::orphan_wait(&ShimEnv, s, now, &owner));
    }
    out
}

/// One thread as read from its published record.
///
/// Only the channels waited on are read: a program with 200 000 semaphores
/// had the whole table copied at every look (0.6 s of CPU in 5 s idle).
/// The channel table, then the registry: nothing takes them the other way.
/// With them, the waits left published after their calls.
fn snapshot() -> (Vec<Snap>, Vec<Deferred>) {
    let channels = CHANNELS.lock();
    let channel = |id: u32| Some(channels.as_ref()?.list.get(id as usize)?.channel.clone());
    let reg = REGISTRY.lock();
    let (mut out, mut deferred) = (Vec::new(), Vec::new());
    for p in reg.iter().filter(|p| p.in_use.load(Ordering::Acquire)) {
        if let Some((s, d)) = read_one(p, &channel) {
            deferred.extend(d);
            out.push(s);
        }
    }
    (out, deferred)
}

fn read_one(
    p: &Published,
    channel: &dyn Fn(u32) -> Option<Channel>,
) -> Option<(Snap, Option<Deferred>)> {
    let st = p.state.load(Ordering::Acquire);
    if st.is_null() {
        return None;
    }
    let since = p.since.load(Ordering::Acquire);
    let kind = p.wait.load(Ordering::Relaxed);
    let tid = p.tid.load(Ordering::Relaxed);
    let mut deferred = None;
    let wait = match kind {
        WAIT_LOCK => {
            let bits = p.lock_bits.load(Ordering::Relaxed);
            Some(Wait::Lock {
                addr: p.lock.load(Ordering::Relaxed) as u64,
                kind: match bits >> 1 {
                    1 => LockKind::Rwlock,
                    2 => LockKind::File,
                    3 => LockKind::Spin,
                    _ => LockKind::Mutex,
                },
                mode: if bits & 1 != 0 {
                    Mode::Read
                } else {
                    Mode::Write
                },
            })
        }
        WAIT_CALL => {
            let (ptr, len) = (
                p.call_ptr.load(Ordering::Relaxed),
                p.call_len.load(Ordering::Relaxed),
            );
            // SAFETY: ptr/len were taken from a &'static str.
            let call: &'static str = unsafe {
                core::str::from_utf8_unchecked(core::slice::from_raw_parts(ptr as *const u8, len))
            };
            let bits = p.call_bits.load(Ordering::Relaxed);
            let channel = channel(p.channel.load(Ordering::Relaxed))?;
            if bits & CALL_DEFERRED != 0 {
                let fd = p.fd.load(Ordering::Relaxed);
                deferred = Some(Deferred { tid, call, fd });
            }
            Some(Wait::Call {
                call: call.to_string(),
                channel,
                dir: if bits & 1 != 0 {
                    Direction::Recv
                } else {
                    Direction::Send
                },
                reply: bits & CALL_REPLY != 0,
            })
        }
        _ => None,
    };
    let stack = p.stack.load(Ordering::Relaxed);
    // SAFETY: the thread is registered (REGISTRY is held), so its state
    // lives; a torn read of a running thread's stack is filtered by the
    // age rules of the analysis.
    let held = unsafe {
        let len =
            core::ptr::read_volatile(core::ptr::addr_of!((*st).held_len)).min(thread::MAX_HELD);
        let base = core::ptr::addr_of!((*st).held).cast::<HeldEntry>();
        (0..len)
            .map(|i| {
                let h: HeldEntry = core::ptr::read_volatile(base.add(i));
                HeldLock {
                    addr: h.addr as u64,
                    mode: h.mode,
                    kind: h.kind,
                    site: h.site as u64,
                }
            })
            .collect::<Vec<_>>()
    };
    if p.since.load(Ordering::Acquire) != since {
        return None;
    }
    let snap = Snap {
        tid,
        held,
        wait: if since == 0 { None } else { wait },
        since,
        stack,
        // Read from /proc only for the waits a deadlock rests on: see `checked`.
        timed: false,
    };
    Some((snap, deferred.filter(|_| since != 0)))
}

/// What the analysis asks, answered from inside the process.
struct ShimEnv;

impl Env for ShimEnv {
    fn writer_preferring(&self, addr: u64, kind: LockKind) -> bool {
        // SAFETY: asked only of a lock a registered thread holds: alive.
        kind == LockKind::Rwlock && unsafe { locks::props(addr as usize, kind) }.writer_preferring
    }

    fn lock_ref(&self, addr: u64) -> LockRef {
        locks::lock_ref(addr as usize)
    }

    fn thread_name(&self, tid: u32) -> String {
        sys::thread_name(Some(tid))
    }
}

/// Who receives from and sends to each channel a thread of `snap` waits
/// on, as the shim saw it (the analysis asks of no other).
fn channel_users(snap: &[Snap]) -> ChannelUsers {
    let mut u = ChannelUsers::default();
    let g = CHANNELS.lock();
    let Some(t) = g.as_ref() else { return u };
    for s in snap {
        let Some(Wait::Call { channel, .. }) = &s.wait else {
            continue;
        };
        if let Some(k) = t.known(channel) {
            u.recv
                .insert(channel.clone(), k.users(Direction::Recv).collect());
            u.send
                .insert(channel.clone(), k.users(Direction::Send).collect());
        }
    }
    u
}

fn node_text(n: &ObservedNode) -> String {
    match n {
        ObservedNode::Lock {
            lock, kind, mode, ..
        } => {
            format!("{} {:#x} ({})", kind.as_str(), lock.addr, mode.as_str())
        }
        ObservedNode::Channel { channel, direction } => {
            format!("{} ({})", channel.describe(), direction.as_str())
        }
    }
}

/// Says it on stderr at once, and writes it to the trace for the report.
fn report(o: &Observed) {
    let mut text = format!(
        "==================\nWARNING: holdcheck: {} (pid {})\n  {}\n",
        o.kind,
        sys::getpid(),
        o.title
    );
    // A wait on a lock whose owner exited is no cycle.
    if o.kind == "deadlock" && o.edges.iter().any(|e| e.relation != "exited-holding") {
        let mut cycle: Vec<String> = o.nodes.iter().map(node_text).collect();
        if let Some(f) = cycle.first().cloned() {
            cycle.push(f);
        }
        text.push_str(&format!("  Cycle: {}\n", cycle.join(" -> ")));
    }
    for t in &o.threads {
        let held: Vec<String> = t
            .held
            .iter()
            .map(|h| format!("{:#x} ({})", h.lock.addr, h.mode.as_str()))
            .collect();
        let holds = if held.is_empty() {
            "holds no lock".to_string()
        } else {
            format!("holds {}", held.join(", "))
        };
        let waits = match &t.waiting {
            Some(Waiting::Lock { lock, mode, .. }) => {
                format!("waits for lock {:#x} ({})", lock.addr, mode.as_str())
            }
            Some(Waiting::Call {
                call,
                channel,
                direction,
                ..
            }) => {
                format!(
                    "blocked in {call}() on {} ({})",
                    channel.describe(),
                    direction.as_str()
                )
            }
            Some(Waiting::Other { what }) if what == holdcheck_format::EXITED => {
                text.push_str(&format!(
                    "  T{} \"{}\": {holds}, and has exited\n",
                    t.tid, t.name
                ));
                continue;
            }
            Some(Waiting::Other { what }) => format!("blocked in {what}"),
            None => "running".to_string(),
        };
        text.push_str(&format!(
            "  T{} \"{}\": {holds}, {waits} for {} ms\n",
            t.tid, t.name, t.waited_ms
        ));
    }
    let dir = recorder()
        .path()
        .and_then(|p| {
            std::path::Path::new(p)
                .parent()
                .map(|d| d.display().to_string())
        })
        .unwrap_or_default();
    text.push_str(&format!(
        "  stacks: holdcheck report {dir}\n==================\n"
    ));
    sys::say_bytes(text.as_bytes());
    recorder().write(&Record::Observed(o.clone()));
}
