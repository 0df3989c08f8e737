//! Steering for `holdcheck confirm`: a schedule pushed toward one predicted
//! cycle, so that it really deadlocks (after DeadlockFuzzer, PLDI 2009, for
//! locks and for the kernel queues between threads and processes).
//!
//! `HOLDCHECK_CONFIRM` names a plan the analyzer wrote: the cycle's edges,
//! each a site (the first frames of its stack, as module + offset) and for
//! most the site where the lock held across it was taken. A thread that
//! reaches an edge's site is either *parked* there (a lock edge, or the
//! acquisition of a queue's drainer) or *marked* (a lock held across a
//! blocking call: it must go on, to fill the queue and block; the mark
//! lasts while it holds that lock). Once every edge is ready — parked, or
//! holding its lock `blocked_ms` after its call began; a queue wait with no
//! lock held is the other party's own and not waited for — the parked
//! threads go on together, into the deadlock.
//! A park is bounded (`park_ms`), so the tool alone never hangs a program:
//! a delay at a point the unmodified program could also have been delayed.
//!
//! The edges' state lives in a page of a file every process of the run maps
//! shared (fork children inherit it, exec'd programs map it again), so the
//! processes of a cross-process cycle steer together; the analyzer reads it
//! afterwards for "which thread reached which site".
//!
//! Off, the lock hooks pay nothing (a steered run has its own value of the
//! shim's state word, which sends them down their slow path) and the I/O
//! hooks, slow anyway, one relaxed load of [`on`].

use crate::thread::ThreadState;
use core::sync::atomic::{AtomicBool, Ordering};
use holdcheck_format::steer::{
    self, EdgeKind as Kind, Place, PlanEdge, State, FREE, IN_CALL, MAX_EDGES, PARKED, STATE_BYTES,
    STATE_MAGIC,
};
use std::sync::OnceLock;

const MAX_FRAMES: usize = 2;
/// How often a park at one site may end without the others: then that
/// site parks no more in this run.
const MAX_PARKS: u32 = 3;

static ON: AtomicBool = AtomicBool::new(false);

/// Whether a plan steers this run (one relaxed load).
#[inline(always)]
pub fn on() -> bool {
    ON.load(Ordering::Relaxed)
}

struct Plan {
    edges: Vec<PlanEdge>,
    park_ns: u64,
    blocked_ns: u64,
    state: &'static State,
    /// The plan's places as addresses here, once the modules are known
    /// (`done` false until every place was found).
    addrs: crate::sync::SpinLock<Resolved>,
}

#[derive(Default, Clone)]
struct Resolved {
    done: bool,
    looks: u64,
    held: [u64; MAX_EDGES],
    frames: [[u64; MAX_FRAMES]; MAX_EDGES],
}

static PLAN: OnceLock<Option<Plan>> = OnceLock::new();

/// Reads the plan named by `HOLDCHECK_CONFIRM`, if any (at start-up, from
/// the configuration). A plan that cannot be read is said once and ignored.
pub fn load() {
    let plan = PLAN.get_or_init(|| {
        let path = std::env::var("HOLDCHECK_CONFIRM").ok()?;
        match read_plan(&path) {
            Ok(p) => Some(p),
            Err(e) => {
                crate::sys::say(&format!("HOLDCHECK_CONFIRM={path}: {e}; not steering"));
                None
            }
        }
    });
    ON.store(plan.is_some(), Ordering::Relaxed);
}

fn plan() -> Option<&'static Plan> {
    PLAN.get()?.as_ref()
}

fn read_plan(path: &str) -> Result<Plan, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    let plan = steer::Plan::parse(&text)?;
    Ok(Plan {
        park_ns: plan.park_ms * 1_000_000,
        blocked_ns: plan.blocked_ms * 1_000_000,
        state: map_state(&plan.state)?,
        edges: plan.edges,
        addrs: crate::sync::SpinLock::new(Resolved::default()),
    })
}

/// Maps the shared state page (the analyzer made the file, zeroed).
fn map_state(path: &str) -> Result<&'static State, String> {
    use rustix::fs::{Mode, OFlags};
    use std::os::fd::AsRawFd;
    let fd = rustix::fs::open(path, OFlags::RDWR | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| format!("{path}: {e}"))?;
    // A shorter file would fault past its end.
    let len = rustix::fs::fstat(&fd)
        .map_err(|e| format!("{path}: {e}"))?
        .st_size;
    if (len as usize) < STATE_BYTES {
        return Err(format!("{path}: {len} bytes, not a state page"));
    }
    // SAFETY: a new shared mapping of a file of at least a page, never
    // unmapped; every field is an atomic.
    let p = unsafe {
        libc::mmap(
            core::ptr::null_mut(),
            STATE_BYTES,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_SHARED,
            fd.as_raw_fd(),
            0,
        )
    };
    if p == libc::MAP_FAILED {
        return Err(format!("{path}: {}", std::io::Error::last_os_error()));
    }
    // SAFETY: as above; State is all atomics, valid for any bytes.
    let state = unsafe { &*(p as *const State) };
    state.magic.store(STATE_MAGIC, Ordering::Relaxed);
    Ok(state)
}

/// The plan's places as addresses in this process (the modules loaded
/// now; looked up again while some are missing, e.g. before a dlopen).
fn resolved(plan: &Plan) -> Resolved {
    let cur = plan.addrs.with(|r| {
        r.looks += 1;
        r.clone()
    });
    // A place not loaded yet is looked for again now and then, not on
    // every call (each look walks the loader's list).
    if cur.done || cur.looks > 1 && !cur.looks.is_multiple_of(256) {
        return cur;
    }
    let modules = crate::stack::modules();
    let at = |p: &Place| -> u64 {
        modules
            .iter()
            .find(|m| m.path == p.module)
            .map_or(0, |m| m.base + p.offset)
    };
    let mut r = Resolved {
        done: true,
        looks: cur.looks,
        ..Default::default()
    };
    for (i, e) in plan.edges.iter().enumerate() {
        if let Some(h) = &e.held {
            r.held[i] = at(h);
            r.done &= r.held[i] != 0;
        }
        for (j, f) in e.frames.iter().enumerate() {
            r.frames[i][j] = at(f);
            r.done &= r.frames[i][j] != 0;
        }
    }
    plan.addrs.with(|a| *a = r.clone());
    r
}

fn me(st: &mut ThreadState) -> u64 {
    (crate::sys::getpid() as u64) << 32 | st.tid() as u64
}

/// The edges of `kinds` whose site is `site` (and second frame the
/// caller's, unwound only when the first matched) and whose held lock,
/// if any, this thread holds.
fn matching(
    plan: &Plan,
    st: &ThreadState,
    site: u64,
    kinds: &[Kind],
    caller: &mut Option<u64>,
) -> u32 {
    let r = resolved(plan);
    let mut hits = 0u32;
    for (i, e) in plan.edges.iter().enumerate() {
        if !kinds.contains(&e.kind) || r.frames[i][0] != site {
            continue;
        }
        if e.frames.len() > 1 {
            let c = *caller.get_or_insert_with(|| {
                let s = crate::stack::capture(2);
                s.frames().get(1).copied().unwrap_or(0)
            });
            if c != r.frames[i][1] {
                continue;
            }
        }
        if e.held.is_some() && !st.held().iter().any(|h| h.site as u64 == r.held[i]) {
            continue;
        }
        hits |= 1 << i;
    }
    hits
}

/// The slot this thread is in, if any (one place at a time).
fn occupied_by(state: &State, n: usize, who: u64) -> Option<usize> {
    (0..n).find(|&i| state.slots[i].occupant.load(Ordering::Acquire) == who)
}

/// Takes the first free slot of `hits` (one whose site gave up waiting
/// too often parks no more). Counts the reach on the slot taken, or on the
/// first hit when none is.
fn take_slot(state: &State, n: usize, hits: u32, who: u64) -> Option<usize> {
    let taken = if occupied_by(state, n, who).is_some() {
        None
    } else {
        (0..n).find(|&i| {
            let s = &state.slots[i];
            hits & 1 << i != 0
                && s.timeouts.load(Ordering::Relaxed) < MAX_PARKS
                && s.occupant
                    .compare_exchange(0, who, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
        })
    };
    if let Some(i) = taken.or_else(|| (0..n).find(|&i| hits & 1 << i != 0)) {
        state.slots[i].reached.fetch_add(1, Ordering::Relaxed);
        state.slots[i].last.store(who, Ordering::Relaxed);
    }
    taken
}

fn free(slot: &steer::Slot) {
    slot.state.store(FREE, Ordering::Release);
    slot.occupant.store(0, Ordering::Release);
}

/// A lock held across a marked call stays marked until it is released:
/// the thread may block later in the same hold (a send, then the receive
/// of the reply). Seen here, at its next steered call or acquisition.
fn refresh_own(plan: &Plan, st: &ThreadState, who: u64) {
    let state = plan.state;
    if let Some(i) = occupied_by(state, plan.edges.len(), who) {
        let s = &state.slots[i];
        let held = s.held.load(Ordering::Relaxed);
        if s.state.load(Ordering::Acquire) == IN_CALL
            && held != 0
            && !st.held().iter().any(|h| h.addr as u64 == held)
        {
            free(s);
        }
    }
}

/// Before a blocking acquisition at `site` of the lock at `addr`: parks the
/// thread while its edge waits for the others.
#[cold]
#[inline(never)]
pub fn before_lock(st: &mut ThreadState, site: usize, addr: usize) {
    let Some(plan) = plan() else { return };
    let state = plan.state;
    if state.go.load(Ordering::Acquire) != 0 {
        return;
    }
    let _errno = crate::sys::ErrnoGuard::save();
    let who = me(st);
    refresh_own(plan, st, who);
    let mut caller = None;
    let kinds: &[Kind] = if st.held_len > 0 {
        &[Kind::Lock, Kind::Park]
    } else {
        &[Kind::Park]
    };
    let hits = matching(plan, st, site as u64, kinds, &mut caller);
    if hits == 0 {
        return;
    }
    let n = plan.edges.len();
    let Some(i) = take_slot(state, n, hits, who) else {
        return;
    };
    let slot = &state.slots[i];
    // The lock of the edge's held site (the innermost, for a drainer).
    let held_site = resolved(plan).held[i];
    let held = st
        .held()
        .iter()
        .rev()
        .find(|h| h.site as u64 == held_site)
        .or(st.held().last())
        .map_or(0, |h| h.addr as u64);
    slot.held.store(held, Ordering::Relaxed);
    slot.wanted.store(addr as u64, Ordering::Relaxed);
    let since = crate::sys::monotonic_ns();
    slot.since_ns.store(since, Ordering::Relaxed);
    slot.parked.fetch_add(1, Ordering::Relaxed);
    slot.state.store(PARKED, Ordering::Release);
    loop {
        if state.go.load(Ordering::Acquire) != 0 {
            break;
        }
        let now = crate::sys::monotonic_ns();
        if all_ready(plan, now) {
            state.released_ns.store(now, Ordering::Relaxed);
            state.go.store(1, Ordering::Release);
            break;
        }
        if now.saturating_sub(since) >= plan.park_ns {
            note_blocker(st, slot, who);
            slot.timeouts.fetch_add(1, Ordering::Relaxed);
            free(slot);
            return;
        }
        nap();
    }
    slot.waited_ns
        .store(crate::sys::monotonic_ns() - since, Ordering::Relaxed);
}

/// A park gave up: is another thread of this process waiting for a lock
/// this one holds (a gate taken around both orders)? Then that is what
/// kept it from its own site.
fn note_blocker(st: &ThreadState, slot: &steer::Slot, who: u64) {
    let me = who as u32;
    let held = st.held();
    let found = crate::live::REGISTRY.lock().iter().find_map(|p| {
        let tid = p.tid.load(Ordering::Relaxed);
        let lock = p.lock.load(Ordering::Relaxed);
        (tid != me
            && p.wait.load(Ordering::Relaxed) == crate::live::WAIT_LOCK
            && held.iter().any(|h| h.addr == lock))
        .then_some((tid, lock))
    });
    if let Some((tid, lock)) = found {
        slot.blocker
            .store(who >> 32 << 32 | tid as u64, Ordering::Relaxed);
        slot.blocker_lock.store(lock as u64, Ordering::Relaxed);
    }
}

/// A blocking call at the caller's site begins: an edge that holds a lock
/// across it (or waits on a queue in it) is marked, and goes on.
#[cold]
#[inline(never)]
pub fn call_begin(st: &mut ThreadState) -> Option<usize> {
    let plan = plan()?;
    let state = plan.state;
    if state.go.load(Ordering::Acquire) != 0 {
        return None;
    }
    let _errno = crate::sys::ErrnoGuard::save();
    let who = me(st);
    refresh_own(plan, st, who);
    let s = crate::stack::capture(2);
    let site = *s.frames().first()?;
    let mut caller = s.frames().get(1).copied();
    let hits = matching(plan, st, site, &[Kind::Call], &mut caller);
    if hits == 0 {
        return None;
    }
    let n = plan.edges.len();
    // The same site again in the same hold: the mark starts over.
    let i = match occupied_by(state, n, who) {
        Some(i) if hits & 1 << i != 0 => {
            state.slots[i].reached.fetch_add(1, Ordering::Relaxed);
            i
        }
        _ => take_slot(state, n, hits, who)?,
    };
    let slot = &state.slots[i];
    let (held, owner) = match resolved(plan).held[i] {
        0 => (0, 0),
        site => st
            .held()
            .iter()
            .rev()
            .find(|h| h.site as u64 == site)
            .map_or((0, 0), |h| (h.addr as u64, owner_code(h.kind, h.mode))),
    };
    slot.held.store(held, Ordering::Relaxed);
    slot.wanted.store(owner, Ordering::Relaxed);
    slot.since_ns
        .store(crate::sys::monotonic_ns(), Ordering::Relaxed);
    slot.state.store(IN_CALL, Ordering::Release);
    Some(i)
}

/// How the lock held across a call records its owner, in a Call slot's
/// `wanted` (0: it does not).
fn owner_code(kind: holdcheck_format::LockKind, mode: holdcheck_format::Mode) -> u64 {
    use holdcheck_format::{LockKind, Mode};
    match (kind, mode) {
        (LockKind::Mutex, _) => 1,
        (LockKind::Rwlock, Mode::Write) => 2,
        _ => 0,
    }
}

/// The marked call returned. A call with a lock held stays marked while
/// the lock is (see [`refresh_own`]); one without is done.
#[cold]
#[inline(never)]
pub fn call_end(slot: usize) {
    let Some(plan) = plan() else { return };
    let state = plan.state;
    let s = &state.slots[slot];
    if state.go.load(Ordering::Acquire) != 0 || s.held.load(Ordering::Relaxed) != 0 {
        return;
    }
    free(s);
}

/// Whether the edges that make the cycle are ready: each parked thread
/// parked, each lock held across a call held for `blocked_ms` since the
/// call began (it blocked there, or in the next one of that hold); the
/// parked lock edges of one process close a cycle (each wants a lock
/// another holds). A queue wait with no lock held is the other party's
/// own doing: counted when reached, not waited for.
fn all_ready(plan: &Plan, now: u64) -> bool {
    let n = plan.edges.len();
    let slots = &plan.state.slots[..n];
    let pid = crate::sys::getpid() as u64;
    for (e, s) in plan.edges.iter().zip(slots) {
        let who = s.occupant.load(Ordering::Acquire);
        let ready = match s.state.load(Ordering::Acquire) {
            PARKED => who != 0,
            IN_CALL => {
                who != 0
                    && now.saturating_sub(s.since_ns.load(Ordering::Relaxed)) >= plan.blocked_ns
                    && still_held(s, who, pid)
            }
            _ => false,
        };
        let optional = e.kind == Kind::Call && e.held.is_none();
        if !ready && !optional {
            return false;
        }
    }
    let locks: Vec<(u64, u64, u64)> = plan
        .edges
        .iter()
        .zip(slots)
        .filter(|(e, _)| e.kind == Kind::Lock)
        .map(|(_, s)| {
            (
                s.occupant.load(Ordering::Relaxed) >> 32,
                s.held.load(Ordering::Relaxed),
                s.wanted.load(Ordering::Relaxed),
            )
        })
        .collect();
    let one_process = locks.windows(2).all(|w| w[0].0 == w[1].0);
    !one_process
        || locks
            .iter()
            .all(|&(_, _, wanted)| locks.iter().any(|&(_, held, _)| held == wanted))
}

/// Whether a Call slot's thread still holds the lock it held across the
/// call, as the lock's owner field says (in this process; another
/// process's marks are trusted).
fn still_held(s: &steer::Slot, who: u64, pid: u64) -> bool {
    use holdcheck_format::{LockKind, Mode};
    let held = s.held.load(Ordering::Relaxed);
    if who >> 32 != pid || held == 0 {
        return true;
    }
    let kind = match s.wanted.load(Ordering::Relaxed) {
        1 => LockKind::Mutex,
        2 => LockKind::Rwlock,
        _ => return true,
    };
    crate::locks::owned_by(held as usize, kind, Mode::Write, who as u32) != Some(false)
}

/// A millisecond's sleep that is no cancellation point (the raw system
/// call, not glibc's `nanosleep`): a lock call must not become one.
fn nap() {
    let t = rustix::thread::Timespec {
        tv_sec: 0,
        tv_nsec: 1_000_000,
    };
    let _ = rustix::thread::nanosleep(&t);
}

#[cfg(test)]
mod tests {
    use super::*;
    use holdcheck_format::steer::Slot;

    fn edge(kind: Kind, held: bool) -> PlanEdge {
        let p = Place {
            module: "/m".into(),
            offset: 1,
        };
        PlanEdge {
            kind,
            held: held.then(|| p.clone()),
            frames: vec![p],
        }
    }

    /// A plan over a fresh state page (leaked: the shim's never goes).
    fn plan(edges: Vec<PlanEdge>) -> Plan {
        let page: &'static mut [u64; STATE_BYTES / 8] = Box::leak(Box::new([0; STATE_BYTES / 8]));
        // SAFETY: a zeroed, aligned page is a fresh State (all atomics).
        let state = unsafe { &*(page.as_ptr() as *const State) };
        Plan {
            edges,
            park_ns: 1_000_000_000,
            blocked_ns: 100,
            state,
            addrs: crate::sync::SpinLock::new(Resolved::default()),
        }
    }

    fn park(s: &Slot, who: u64, held: u64, wanted: u64) {
        s.occupant.store(who, Ordering::Relaxed);
        s.held.store(held, Ordering::Relaxed);
        s.wanted.store(wanted, Ordering::Relaxed);
        s.state.store(PARKED, Ordering::Relaxed);
    }

    #[test]
    fn parked_lock_edges_go_only_when_they_close_a_cycle() {
        let p = plan(vec![edge(Kind::Lock, true), edge(Kind::Lock, true)]);
        let pid = 7u64 << 32;
        let slots = &p.state.slots;
        assert!(!all_ready(&p, 1000), "nobody there yet");
        park(&slots[0], pid | 1, 0xa, 0xb);
        assert!(!all_ready(&p, 1000), "one of two edges");
        // The second thread holds another lock than the first wants.
        park(&slots[1], pid | 2, 0xc, 0xa);
        assert!(!all_ready(&p, 1000), "no cycle: b is held by nobody");
        park(&slots[1], pid | 2, 0xb, 0xa);
        assert!(all_ready(&p, 1000), "a -> b -> a");
    }

    #[test]
    fn a_held_call_counts_once_it_lasted_and_a_bare_queue_wait_is_optional() {
        let p = plan(vec![
            edge(Kind::Call, true),
            edge(Kind::Park, false),
            edge(Kind::Call, false),
        ]);
        let slots = &p.state.slots;
        // Another process's marks are trusted (no owner to read here).
        let other = 9u64 << 32;
        slots[0].occupant.store(other | 3, Ordering::Relaxed);
        slots[0].held.store(0x10, Ordering::Relaxed);
        slots[0].since_ns.store(1000, Ordering::Relaxed);
        slots[0].state.store(IN_CALL, Ordering::Relaxed);
        park(&slots[1], other | 4, 0, 0x10);
        assert!(
            !all_ready(&p, 1050),
            "the call began 50 ns ago: not blocked yet"
        );
        assert!(all_ready(&p, 1100), "blocked for the plan's 100 ns");
        // The queue wait with no lock (slot 2) was never marked: optional.
        free(&slots[1]);
        assert!(!all_ready(&p, 1100), "the drainer left its site");
    }
}
