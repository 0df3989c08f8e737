//! Lock identity and metadata.
//!
//! A lock is (address, generation): `init` and `destroy` start a new
//! generation, and so does freeing the memory it lives in (a C++
//! `std::mutex` is never initialised nor destroyed through pthreads: only
//! `free`, which `operator delete` calls, says its life ended), so an
//! address reused for another lock is another node. The table is touched
//! only on slow paths (a new fact), by init/destroy, and by a `free` of
//! memory on a page that holds a known lock; the fast path never looks a
//! lock up.

use crate::sync::ForkMutex;
use core::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use holdcheck_format::{LockKind, LockRef, Mode};
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::{BTreeMap, HashMap};

/// Bumped whenever a named lock (see `Table::named`) changes generation;
/// per-thread caches of recorded facts include it, so they never match a
/// fact of an older lock.
pub static EPOCH: AtomicU64 = AtomicU64::new(1);

#[derive(Default)]
pub struct Table {
    /// Known locks: address → generation.
    live: BTreeMap<usize, u32>,
    /// Addresses whose lock's memory was freed: the generation the next
    /// lock there gets.
    retired: FxHashMap<usize, u32>,
    /// Where each known lock was last initialised (the return address of
    /// its `pthread_*_init`): its name in reports when no variable names it.
    inits: FxHashMap<usize, u64>,
    /// Known locks whose current generation a fact or a thread's cache may
    /// name (its identity was handed out): only their change of generation
    /// must bump [`EPOCH`]. A lock made and destroyed in a loop, never
    /// named, leaves every thread's cache valid.
    named: FxHashSet<usize>,
}

pub static TABLE: ForkMutex<Option<Table>> = ForkMutex::new(None);

/// Known locks per page (hashed): a `free` whose pages hold none, the
/// common case, is decided without the table's lock.
const PAGE_BUCKETS: usize = 4096;
static PAGES: [AtomicU32; PAGE_BUCKETS] = [const { AtomicU32::new(0) }; PAGE_BUCKETS];
/// Known locks in all.
static KNOWN: AtomicUsize = AtomicUsize::new(0);

fn bucket(addr: usize) -> &'static AtomicU32 {
    &PAGES[(addr >> 12) % PAGE_BUCKETS]
}

/// The current identity of the lock at `addr`.
pub fn lock_ref(addr: usize) -> LockRef {
    let mut g = TABLE.lock();
    let t = g.get_or_insert_with(Table::default);
    let gen = match t.live.get(&addr) {
        Some(&gen) => gen,
        None => {
            let gen = t.retired.remove(&addr).unwrap_or(0);
            t.live.insert(addr, gen);
            bucket(addr).fetch_add(1, Ordering::Relaxed);
            KNOWN.fetch_add(1, Ordering::Relaxed);
            gen
        }
    };
    t.named.insert(addr);
    LockRef {
        addr: addr as u64,
        gen,
    }
}

/// The lock at `addr` is named by a thread's cache of seen facts (without
/// its identity being looked up): a change of its generation must bump
/// [`EPOCH`].
pub fn named(addr: usize) {
    let mut g = TABLE.lock();
    g.get_or_insert_with(Table::default).named.insert(addr);
}

/// `init` or `destroy` of the lock at `addr`: later uses are a new lock.
pub fn new_generation(addr: usize) {
    let mut g = TABLE.lock();
    let Some(t) = g.as_mut() else { return };
    if let Some(gen) = t.live.get_mut(&addr) {
        *gen += 1;
        if t.named.remove(&addr) {
            EPOCH.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// `init` of the lock at `addr` by the call returning to `site`: a known
/// lock starts a new generation; an unknown one becomes known, so that a
/// `free` of its memory forgets where it was made.
pub fn initialised(addr: usize, site: u64) {
    let mut g = TABLE.lock();
    let t = g.get_or_insert_with(Table::default);
    match t.live.get_mut(&addr) {
        Some(gen) => {
            *gen += 1;
            if t.named.remove(&addr) {
                EPOCH.fetch_add(1, Ordering::Relaxed);
            }
        }
        None => {
            let gen = t.retired.remove(&addr).unwrap_or(0);
            t.live.insert(addr, gen);
            bucket(addr).fetch_add(1, Ordering::Relaxed);
            KNOWN.fetch_add(1, Ordering::Relaxed);
        }
    }
    t.inits.insert(addr, site);
}

/// Where the lock at `addr` was initialised, if the shim saw it.
pub fn init_site(addr: usize) -> Option<u64> {
    TABLE.lock().as_ref()?.inits.get(&addr).copied()
}

/// Whether any lock is known at all.
#[inline]
pub fn any_known() -> bool {
    KNOWN.load(Ordering::Relaxed) != 0
}

/// Whether memory `[start, start + len)` may hold a known lock: false for
/// sure when no page of it holds one. Lock-free, for the `free` hook.
#[inline]
pub fn may_hold_locks(start: usize, len: usize) -> bool {
    let first = start >> 12;
    let last = (start + len.max(1) - 1) >> 12;
    if last - first >= PAGE_BUCKETS {
        return true;
    }
    (first..=last).any(|page| PAGES[page % PAGE_BUCKETS].load(Ordering::Relaxed) != 0)
}

/// Memory `[start, start + len)` was freed: every lock in it has ended; a
/// lock made there later is a new one.
pub fn freed(start: usize, len: usize) {
    let mut g = TABLE.lock();
    let Some(t) = g.as_mut() else { return };
    let gone: Vec<(usize, u32)> = t
        .live
        .range(start..start.saturating_add(len))
        .map(|(&a, &g)| (a, g))
        .collect();
    let mut named = false;
    for (addr, gen) in &gone {
        t.live.remove(addr);
        t.inits.remove(addr);
        named |= t.named.remove(addr);
        t.retired.insert(*addr, gen + 1);
        bucket(*addr).fetch_sub(1, Ordering::Relaxed);
        KNOWN.fetch_sub(1, Ordering::Relaxed);
    }
    if named {
        EPOCH.fetch_add(1, Ordering::Relaxed);
    }
}

/// The mutex each condition variable was first waited with, by the
/// condition variable's address: (its generation, the mutex, the waiter).
type CondMutexes = HashMap<usize, (u32, usize, u32)>;
static COND_MUTEX: ForkMutex<Option<CondMutexes>> = ForkMutex::new(None);

/// A wait on condition variable `c` (generation `gen`) with mutex `m` by
/// `tid`: the other mutex and its waiter when the condition variable was
/// waited with another one first.
pub fn cond_mutex(c: usize, gen: u32, m: usize, tid: u32) -> Option<(usize, u32)> {
    let mut g = COND_MUTEX.lock();
    let t = g.get_or_insert_with(HashMap::new);
    match t.get(&c) {
        Some(&(g0, m0, t0)) if g0 == gen => (m0 != m).then_some((m0, t0)),
        _ => {
            t.insert(c, (gen, m, tid));
            None
        }
    }
}

/// In a fork child: the table starts anew (see `sync`).
///
/// # Safety
/// Only in a fork child.
pub unsafe fn after_fork_child() {
    TABLE.reset(None);
    COND_MUTEX.reset(None);
    for b in PAGES.iter() {
        b.store(0, Ordering::Relaxed);
    }
    KNOWN.store(0, Ordering::Relaxed);
}

pub fn epoch() -> u64 {
    EPOCH.load(Ordering::Relaxed)
}

/// glibc 2.36 x86_64 lock layouts (LOWLEVEL.md): `pthread_mutex_t`
/// `__lock`, `__owner`, `__kind`; `pthread_rwlock_t` `__readers`,
/// `__cur_writer`, `__flags`; a spinlock is one int at 0.
const MUTEX_LOCK: usize = 0;
const MUTEX_OWNER: usize = 8;
const MUTEX_KIND: usize = 16;
const RWLOCK_READERS: usize = 0;
const RWLOCK_WRITER: usize = 24;
const RWLOCK_FLAGS: usize = 48;

/// The owner field of a lock held in `mode` (glibc 2.36, x86_64:
/// `pthread_mutex_t.__owner` at 8, `pthread_rwlock_t.__cur_writer` at 24),
/// None where glibc records no owner (a read lock, a file lock).
fn owner_offset(kind: LockKind, mode: Mode) -> Option<usize> {
    match (kind, mode) {
        (LockKind::Mutex, _) => Some(MUTEX_OWNER),
        (LockKind::Rwlock, Mode::Write) => Some(RWLOCK_WRITER),
        _ => None,
    }
}

/// Whether thread `tid` owns the lock at `addr`, as its owner field says:
/// Some(false) when another or nobody does, None when the lock records no
/// owner. Read through the kernel, so memory that is gone reads as not
/// owned rather than faulting.
pub fn owned_by(addr: usize, kind: LockKind, mode: Mode, tid: u32) -> Option<bool> {
    let at = owner_offset(kind, mode)?;
    Some(crate::sys::read_own_u32(addr + at) == Some(tid))
}

/// Whether the mutex at `addr` is robust (`__kind` bit 16): its next
/// locker gets EOWNERDEAD and recovers it. Read as [`owned_by`].
pub fn is_robust_mutex(addr: usize) -> bool {
    crate::sys::read_own_u32(addr + MUTEX_KIND).is_some_and(|k| k & 16 != 0)
}

/// What a lock's memory says of its state right now.
#[derive(Clone, Copy, Debug, Default)]
pub struct LockState {
    /// Whether it is locked; None when its memory does not say (a file
    /// lock).
    pub locked: Option<bool>,
    /// The thread holding it (a mutex, a write-locked rwlock), 0 when none
    /// or not recorded.
    pub owner: u32,
    /// Read-locked by some thread (an rwlock records how many, not who).
    pub readers: bool,
    /// A destroyed mutex (glibc sets its `__kind` to -1).
    pub destroyed: bool,
}

/// Reads a lock's state from its memory (glibc 2.36, x86_64:
/// `pthread_mutex_t` `__lock` 0, `__owner` 8, `__kind` 16;
/// `pthread_rwlock_t` `__readers` 0 (bit 1 write-locked, readers from
/// bit 3), `__cur_writer` 24; a spinlock is one int, 0 when free).
///
/// # Safety
/// `addr` must point at a lock of `kind` the program passed to a call (its
/// memory is the program's and readable).
pub unsafe fn state(addr: usize, kind: LockKind) -> LockState {
    let word = |at: usize| core::ptr::read_volatile((addr + at) as *const u32);
    match kind {
        LockKind::Mutex => LockState {
            locked: Some(word(MUTEX_LOCK) != 0),
            owner: word(MUTEX_OWNER),
            readers: false,
            destroyed: word(MUTEX_KIND) == u32::MAX,
        },
        LockKind::Rwlock => {
            let r = word(RWLOCK_READERS);
            LockState {
                locked: Some(r >> 3 != 0 || r & 2 != 0),
                owner: word(RWLOCK_WRITER),
                readers: r >> 3 != 0,
                destroyed: false,
            }
        }
        LockKind::Spin => LockState {
            locked: Some(word(0) != 0),
            ..LockState::default()
        },
        LockKind::File => LockState::default(),
    }
}

/// The kind of a mutex (`__kind` & 3): 0 normal, 1 recursive, 2 error
/// checking, 3 adaptive; robust mutexes have bit 4 set. glibc checks the
/// owner on unlock for every kind but normal and adaptive.
///
/// # Safety
/// As [`state`], for a mutex.
pub unsafe fn mutex_checks_owner(addr: usize) -> bool {
    let k = core::ptr::read_volatile((addr + MUTEX_KIND) as *const u32);
    k & 3 == 1 || k & 3 == 2 || k & 16 != 0
}

/// What glibc 2.36 keeps in a lock's memory that the analysis needs.
pub struct LockProps {
    pub writer_preferring: bool,
    pub recursive: bool,
}

/// Reads a lock's kind from its memory (glibc 2.36, x86_64 layouts:
/// `pthread_mutex_t.__kind` at 16, `pthread_rwlock_t.__flags` at 48).
///
/// # Safety
/// `addr` must point at a live lock of `kind`.
pub unsafe fn props(addr: usize, kind: LockKind) -> LockProps {
    match kind {
        LockKind::Mutex => {
            let k = core::ptr::read_volatile((addr + MUTEX_KIND) as *const i32);
            LockProps {
                writer_preferring: false,
                // PTHREAD_MUTEX_RECURSIVE_NP, also with the robust,
                // priority and process-shared bits set.
                recursive: k & 3 == 1,
            }
        }
        LockKind::File | LockKind::Spin => LockProps {
            writer_preferring: false,
            recursive: false,
        },
        LockKind::Rwlock => {
            let flags = core::ptr::read_volatile((addr + RWLOCK_FLAGS) as *const u32);
            LockProps {
                // Only PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP (2) makes
                // glibc block new readers behind a waiting writer;
                // PREFER_WRITER_NP (1) behaves as PREFER_READER.
                writer_preferring: flags == 2,
                recursive: false,
            }
        }
    }
}
