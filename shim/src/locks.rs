//! Lock identity and metadata.
//!
//! A lock is (address, generation): `init` and `destroy` start a new
//! generation, and so does freeing the memory it lives in (a C++
//! `std::mutex` is never initialised nor destroyed through pthreads: only
//! `free`, which `operator delete` calls, says its life ended), so an
//! address reused for another lock is another node. The table is touched
//! only on slow paths (a new fact), by init/destroy of a lock a record
//! names (or of one not known yet), and by a `free` of memory on a page
//! that holds a known lock; the fast path never looks a lock up. Each
//! lock's class (see [`class_of`]) is published beside it for the paths
//! that take no lock.

use crate::sync::ForkMutex;
use core::ffi::c_int;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use crossbeam_utils::CachePadded;
use holdcheck_format::{LockKind, LockRef, Mode};
use std::collections::{BTreeMap, HashMap};

/// Bumped whenever a named lock (see `Entry::named`) changes generation;
/// per-thread caches of recorded facts include it, so they never match a
/// fact of an older lock. On a cache line of its own: every nested lock
/// reads it, and a line shared with what another thread writes (the
/// object epoch, the channel table's and the recorder's locks) was a miss
/// for each (`nested_pair_object_churn`, medians of 9 runs: +28 ns a pair
/// over native, +10 ns padded, as without the churn).
pub static EPOCH: CachePadded<AtomicU64> = CachePadded::new(AtomicU64::new(1));

/// Bumped whenever a watched object (a semaphore or condition variable
/// whose generation a thread cached: see `Entry::watched`) changes
/// generation; the threads' caches of objects' generations include it.
/// Kept apart from [`EPOCH`]: an object made per wait (Python's locks)
/// changes generation at every wait, and must not send every thread's
/// lock-order facts back to the slow path.
pub static OBJECT_EPOCH: CachePadded<AtomicU64> = CachePadded::new(AtomicU64::new(1));

/// What the table knows of a live lock.
#[derive(Clone, Copy, Default)]
struct Entry {
    gen: u32,
    /// Its current generation was handed out (a fact or a thread's cache
    /// may name it): only a named lock's change of generation bumps
    /// [`EPOCH`]. A lock made and destroyed in a loop, never named, leaves
    /// every thread's cache valid.
    named: bool,
    /// The same for a semaphore or condition variable whose current
    /// generation a thread cached ([`object_gen`]): its change bumps
    /// [`OBJECT_EPOCH`].
    watched: bool,
    /// Where it was last initialised (the return address of its
    /// `pthread_*_init`), 0 if it never was: its name in reports when no
    /// variable names it, and its class.
    init: u64,
    /// Its class when it was never initialised (see [`class_of`]), 0 until
    /// asked.
    class: u64,
    /// Its memory was freed: no lock is known here until one is used again
    /// (kept, not removed, for its next generation: a `free` per object is
    /// then one search of the map).
    dead: bool,
}

#[derive(Default)]
pub struct Table {
    /// Locks by address (ordered: a `free` ends those in its block), and
    /// where one was, the generation the next lock there gets.
    live: BTreeMap<usize, Entry>,
}

impl Table {
    /// The entry of the lock at `addr`, made known if it was not.
    fn entry(&mut self, addr: usize) -> &mut Entry {
        self.revive(addr).0
    }

    /// [`Self::entry`], and whether the lock was known before.
    fn revive(&mut self, addr: usize) -> (&mut Entry, bool) {
        let e = self.live.entry(addr).or_insert(Entry {
            dead: true,
            ..Entry::default()
        });
        let was_known = !e.dead;
        if e.dead {
            e.dead = false;
            known(addr);
        }
        (e, was_known)
    }

    /// The entry of a known lock.
    fn known(&mut self, addr: usize) -> Option<&mut Entry> {
        self.live.get_mut(&addr).filter(|e| !e.dead)
    }
}

/// The table, in shards by page: two threads making and ending locks in
/// their own objects (their own malloc arenas) rarely meet on one.
const SHARDS: usize = 16;
const _: () = assert!(SHARDS <= 32); // `freed` keeps them in a u32
static TABLES: [ForkMutex<Option<Table>>; SHARDS] = [const { ForkMutex::new(None) }; SHARDS];

fn shard_of_page(page: usize) -> usize {
    (page as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) as usize >> 60
}

/// The shard that knows the lock at `addr`.
fn table(addr: usize) -> std::sync::MutexGuard<'static, Option<Table>> {
    TABLES[shard_of_page(addr >> 12) % SHARDS].lock()
}

/// Known locks per page (hashed): a `free` whose pages hold none, the
/// common case, is decided without the table's lock.
const PAGE_BUCKETS: usize = 4096;
static PAGES: [AtomicU32; PAGE_BUCKETS] = [const { AtomicU32::new(0) }; PAGE_BUCKETS];
/// Set once a lock is known (never cleared but in a fork child: a count
/// would be one more cache line every thread writes at each init and free).
static KNOWN: AtomicBool = AtomicBool::new(false);

/// A lock becomes known at `addr`.
fn known(addr: usize) {
    bucket(addr).fetch_add(1, Ordering::Relaxed);
    if !KNOWN.load(Ordering::Relaxed) {
        KNOWN.store(true, Ordering::Relaxed);
    }
}

/// A page's bucket, hashed: two threads' malloc arenas are 64 MB apart,
/// and the same offset in each must not share a counter.
fn page_bucket(page: usize) -> &'static AtomicU32 {
    &PAGES[((page as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32) as usize % PAGE_BUCKETS]
}

fn bucket(addr: usize) -> &'static AtomicU32 {
    page_bucket(addr >> 12)
}

/// The current identity of the lock at `addr`.
pub fn lock_ref(addr: usize) -> LockRef {
    let mut g = table(addr);
    let e = g.get_or_insert_with(Table::default).entry(addr);
    name(addr, e);
    LockRef {
        addr: addr as u64,
        gen: e.gen,
    }
}

/// The lock at `addr` is named by a thread's cache of seen facts (without
/// its identity being looked up): a change of its generation must bump
/// [`EPOCH`].
pub fn named(addr: usize) {
    let mut g = table(addr);
    name(addr, g.get_or_insert_with(Table::default).entry(addr));
}

fn name(addr: usize, e: &mut Entry) {
    if !e.named {
        e.named = true;
        publish(addr, e);
    }
}

/// The current generation of the semaphore or condition variable at
/// `addr`, for a thread to cache until [`OBJECT_EPOCH`] changes.
pub fn object_gen(addr: usize) -> u32 {
    let mut g = table(addr);
    let e = g.get_or_insert_with(Table::default).entry(addr);
    if !e.watched {
        e.watched = true;
        publish(addr, e);
    }
    e.gen
}

/// Publishes a known lock's class, and whether it is named, for the
/// lock-free paths.
fn publish(addr: usize, e: &Entry) {
    let class = if e.init != 0 { e.init } else { e.class };
    let cached = e.named || e.watched;
    CLASSES.publish(addr, class | if cached { NAMED } else { 0 });
}

/// In a published class: the lock is named or the object watched (see
/// `Entry::named`, `Entry::watched`). Classes are user-space addresses,
/// below it.
const NAMED: u64 = 1 << 63;

/// A known lock starts a new generation. Only a named lock's generation
/// matters: no record or cache holds another's, so another goes on with
/// the one it has (a lock made and destroyed in a loop takes no lock of
/// the shim's).
fn next_generation(addr: usize, e: &mut Entry) {
    e.gen += 1;
    if e.named || e.watched {
        bump_epochs(e.named, e.watched);
        e.named = false;
        e.watched = false;
        publish(addr, e);
    }
}

/// A named lock (`named`) or a watched object (`watched`) changed
/// generation.
fn bump_epochs(named: bool, watched: bool) {
    if named {
        EPOCH.fetch_add(1, Ordering::Relaxed);
    }
    if watched {
        OBJECT_EPOCH.fetch_add(1, Ordering::Relaxed);
    }
}

/// Whether [`new_generation`] of the lock at `addr` would change nothing
/// (known, of a known class, and neither named nor watched): lock-free,
/// for the hooks.
#[inline(always)]
pub fn generation_changes_nothing(addr: usize) -> bool {
    let seen = CLASSES.get(addr);
    seen != 0 && seen & NAMED == 0
}

/// Whether [`initialised`] of the lock at `addr` by `site` would change
/// nothing (known, made there before, and neither named nor watched): lock-free.
#[inline(always)]
pub fn init_changes_nothing(addr: usize, site: u64) -> bool {
    CLASSES.get(addr) == site
}

/// `init` or `destroy` of the lock at `addr`: later uses are a new lock.
pub fn new_generation(addr: usize) {
    // Known, of a known class, and neither named nor watched: nothing to change.
    let seen = CLASSES.get(addr);
    if seen != 0 && seen & NAMED == 0 {
        return;
    }
    let mut g = table(addr);
    if let Some(e) = g.as_mut().and_then(|t| t.known(addr)) {
        next_generation(addr, e);
    }
}

/// `init` of the lock at `addr` by the call returning to `site`: a known
/// lock starts a new generation; an unknown one becomes known, so that a
/// `free` of its memory forgets where it was made.
pub fn initialised(addr: usize, site: u64) {
    // Known, made here before, and neither named nor watched: nothing to change.
    if CLASSES.get(addr) == site {
        return;
    }
    let mut g = table(addr);
    let t = g.get_or_insert_with(Table::default);
    // One search of the map: a known lock starts a new generation, an
    // unknown one becomes known.
    let (e, was_known) = t.revive(addr);
    if was_known {
        next_generation(addr, e);
    }
    e.init = site;
    e.class = 0;
    publish(addr, e);
}

// Lock classes, as lockdep has them: a lock's class is where it was
// initialised (the return address of its `pthread_*_init`); a lock never
// initialised through pthreads is its own class when it is in a loaded
// object (a static lock: one of a kind), else (on the heap, a C++
// `std::mutex` in an object) the site that first took it. Lock-order facts
// are deduplicated per class (`facts::lock_order`), so a program that makes
// a lock per object records as much as one that has a single object. Code
// addresses and lock addresses never coincide, and neither is 0.

/// The class of the lock at `addr`, which `site` is taking (or holds): its
/// init site, or as above. Takes the table's lock; publishes the class for
/// [`class_fast`].
pub fn class_of(addr: usize, site: usize) -> u64 {
    let mut g = table(addr);
    let e = g.get_or_insert_with(Table::default).entry(addr);
    if e.init == 0 && e.class == 0 {
        e.class = if in_loaded_object(addr) {
            addr as u64
        } else {
            site as u64
        };
    }
    publish(addr, e);
    if e.init != 0 {
        e.init
    } else {
        e.class
    }
}

/// The class of the lock at `addr` if it was published, else 0: no lock
/// taken, for the lock-order path.
#[inline]
pub fn class_fast(addr: usize) -> u64 {
    CLASSES.get(addr) & !NAMED
}

/// Whether `addr` is in a loaded object's mapping (its data or bss), as
/// glibc's lock-free `_dl_find_object` says; without it, every address is
/// taken for one (its own class: more facts, none merged wrongly).
fn in_loaded_object(addr: usize) -> bool {
    let Some(find) = crate::real::dl_find_object() else {
        return true;
    };
    // struct dl_find_object: flags, map start, map end, link map, eh_frame,
    // 7 reserved words (glibc 2.35).
    let mut out = [0u64; 12];
    // SAFETY: `out` is as large as glibc's struct dl_find_object.
    unsafe { find(addr as *mut _, out.as_mut_ptr() as *mut _) == 0 }
}

/// Address → class, readable without a lock: open addressing over fixed
/// arrays, one region per table shard, written under that shard's lock
/// only. A reader sees a class, 0 (unknown: it asks [`class_of`]), or for
/// a moment an older class.
///
/// A page of it never written is read as empty without being touched, so
/// that each page's first access is a write: a page read first maps the
/// kernel's zero page, and the write after it takes a second fault and a
/// TLB shootdown on every CPU the program runs on (`manylocks --stress`,
/// 16 384 locks: 2 048 faults, the shootdowns 7% of perf's samples; now
/// 1 024 faults and none).
///
/// The locks of one page of the program's memory are looked up in one
/// window of the map (see [`home_of`]): an array of locks touches a few
/// pages of it, and locks side by side share its lines, where a hash of
/// each address spread them over all of it (`--stress 250000`: 1 722 page
/// faults in the run, now 950, and each `init` and `destroy` a miss of a
/// line nothing else used).
#[repr(C, align(4096))]
struct ClassMap {
    slots: [Slot; CLASS_SLOTS],
    /// One byte per page of `slots`: written at least once.
    written: [AtomicU8; CLASS_PAGES],
    used: [AtomicUsize; SHARDS],
}

/// An address and its class, side by side: a lookup of a lock whose line
/// is not cached (a nested acquisition among thousands of locks) misses
/// once, not twice.
#[repr(align(16))]
struct Slot {
    key: AtomicUsize,
    val: AtomicU64,
}

/// 16 MB of address space, touched only where locks are: 8 192 windows
/// (see [`home_of`]), so that the pages of locks of a large program seldom
/// share one.
const CLASS_SLOTS: usize = 1 << 20;
const REGION: usize = CLASS_SLOTS / SHARDS;
const SLOTS_PER_PAGE: usize = 4096 / core::mem::size_of::<Slot>();
const CLASS_PAGES: usize = CLASS_SLOTS / SLOTS_PER_PAGE;
const _: () = assert!(REGION.is_multiple_of(SLOTS_PER_PAGE));
/// Slots of the window of one page of the program's memory: one per 32
/// bytes (a lock takes more).
const WINDOW: usize = 4096 >> 5;

/// `addr`'s first slot in its shard's region (taken modulo its size): its
/// page's window, chosen by a hash of the page, and its place in the page,
/// the window's slots permuted by the same hash (two pages laid out alike
/// that share a window do not put each lock on its twin's slot; a
/// collision probes on, as with any hash).
#[inline(always)]
fn home_of(addr: usize) -> usize {
    let h = ((addr >> 12) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 32;
    let window = (h >> 8) as usize % (REGION / WINDOW);
    window * WINDOW + (((addr & 0xfff) >> 5) ^ (h as usize & (WINDOW - 1)))
}

/// Probes per lookup: a lock not found within them is looked up the slow way.
const CLASS_PROBES: usize = 8;

static CLASSES: ClassMap = ClassMap {
    slots: [const {
        Slot {
            key: AtomicUsize::new(0),
            val: AtomicU64::new(0),
        }
    }; CLASS_SLOTS],
    written: [const { AtomicU8::new(0) }; CLASS_PAGES],
    used: [const { AtomicUsize::new(0) }; SHARDS],
};

/// Where a probe for an address ended.
enum Probe {
    /// The slot holding it.
    Found(usize),
    /// The first empty slot (it is not in the map).
    Empty(usize),
    /// Neither, within [`CLASS_PROBES`] slots.
    Full,
}

impl ClassMap {
    /// Looks for `addr` in the slots it may be in, in its shard's region.
    /// A page never written is taken as empty without reading it.
    #[inline(always)]
    fn probe(&self, addr: usize, order: Ordering) -> Probe {
        let region = shard_of_page(addr >> 12) * REGION;
        let home = home_of(addr);
        match self.key(region + home % REGION, order) {
            k if k == addr => Probe::Found(region + home % REGION),
            0 => Probe::Empty(region + home % REGION),
            _ => self.probe_further(addr, region, home, order),
        }
    }

    /// [`Self::probe`] past the first slot (taken by another address): out
    /// of line, so that the usual lookup is a few instructions.
    #[cold]
    #[inline(never)]
    fn probe_further(&self, addr: usize, region: usize, home: usize, order: Ordering) -> Probe {
        for i in 1..CLASS_PROBES {
            let slot = region + (home.wrapping_add(i) % REGION);
            match self.key(slot, order) {
                k if k == addr => return Probe::Found(slot),
                0 => return Probe::Empty(slot),
                _ => {}
            }
        }
        Probe::Full
    }

    /// The key in `slot`; 0 for a page never written, which stays untouched.
    #[inline(always)]
    fn key(&self, slot: usize, order: Ordering) -> usize {
        if !self.page_written(slot / SLOTS_PER_PAGE) {
            return 0;
        }
        self.slots[slot].key.load(order)
    }

    /// Whether `page` of the slots was ever written.
    #[inline(always)]
    fn page_written(&self, page: usize) -> bool {
        self.written[page].load(Ordering::Acquire) != 0
    }

    fn get(&self, addr: usize) -> u64 {
        let Probe::Found(slot) = self.probe(addr, Ordering::Acquire) else {
            return 0;
        };
        let v = self.slots[slot].val.load(Ordering::Acquire);
        // Cleared meanwhile: unknown.
        if self.slots[slot].key.load(Ordering::Acquire) == addr {
            v
        } else {
            0
        }
    }

    /// Under the lock of `addr`'s shard.
    fn publish(&self, addr: usize, class: u64) {
        match self.probe(addr, Ordering::Relaxed) {
            Probe::Found(slot) => self.slots[slot].val.store(class, Ordering::Release),
            Probe::Empty(slot) => self.insert(addr, slot, class),
            Probe::Full => {}
        }
    }

    /// [`Self::publish`] of an address not in the map, into the empty
    /// `slot`: out of line (a lock's first publication).
    #[inline(never)]
    fn insert(&self, addr: usize, slot: usize, class: u64) {
        // Addresses come and go (objects freed): when a region is three
        // quarters full it starts again; what it forgot is asked of the
        // table once more.
        let used = &self.used[shard_of_page(addr >> 12)];
        if used.fetch_add(1, Ordering::Relaxed) >= REGION / 4 * 3 {
            self.clear_region(addr);
            return self.publish(addr, class);
        }
        self.slots[slot].val.store(class, Ordering::Release);
        self.slots[slot].key.store(addr, Ordering::Release);
        let page = slot / SLOTS_PER_PAGE;
        if !self.page_written(page) {
            self.written[page].store(1, Ordering::Release);
        }
    }

    /// Under the lock of `addr`'s shard: the lock at `addr` ended; its
    /// memory may hold a lock of another class next.
    fn forget(&self, addr: usize) {
        if let Probe::Found(slot) = self.probe(addr, Ordering::Relaxed) {
            self.slots[slot].val.store(0, Ordering::Release);
        }
    }

    /// Empties the slots `range` (whole pages), of the pages ever written.
    fn clear_slots(&self, range: core::ops::Range<usize>, order: Ordering) {
        for first in range.step_by(SLOTS_PER_PAGE) {
            if !self.page_written(first / SLOTS_PER_PAGE) {
                continue;
            }
            for s in &self.slots[first..first + SLOTS_PER_PAGE] {
                if s.key.load(Ordering::Relaxed) != 0 {
                    s.key.store(0, order);
                }
            }
        }
    }

    /// Under the lock of `addr`'s shard: empties its region.
    fn clear_region(&self, addr: usize) {
        let shard = shard_of_page(addr >> 12);
        self.clear_slots(shard * REGION..(shard + 1) * REGION, Ordering::Release);
        self.used[shard].store(0, Ordering::Relaxed);
    }

    /// In a fork child.
    fn clear(&self) {
        self.clear_slots(0..CLASS_SLOTS, Ordering::Relaxed);
        for u in self.used.iter() {
            u.store(0, Ordering::Relaxed);
        }
    }
}

/// Where the lock at `addr` was initialised, if the shim saw it.
pub fn init_site(addr: usize) -> Option<u64> {
    table(addr)
        .as_ref()?
        .live
        .get(&addr)
        .filter(|e| !e.dead)
        .map(|e| e.init)
        .filter(|&i| i != 0)
}

/// Whether any lock was known yet.
#[inline]
pub fn any_known() -> bool {
    KNOWN.load(Ordering::Relaxed)
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
    (first..=last).any(|page| page_bucket(page).load(Ordering::Relaxed) != 0)
}

/// Memory `[start, start + len)` was freed: every lock in it has ended; a
/// lock made there later is a new one.
pub fn freed(start: usize, len: usize) {
    let (first, last) = (start >> 12, (start + len.max(1) - 1) >> 12);
    // The shards of its pages, as a bit set.
    let mut shards: u32 = if last - first >= SHARDS * 4 {
        (1 << SHARDS) - 1
    } else {
        (first..=last).fold(0, |m, page| m | 1 << shard_of_page(page))
    };
    let (mut named, mut watched) = (false, false);
    while shards != 0 {
        let i = shards.trailing_zeros() as usize;
        shards &= shards - 1;
        let (n, w) = freed_in(&mut TABLES[i].lock(), start, len);
        named |= n;
        watched |= w;
    }
    bump_epochs(named, watched);
}

/// [`freed`] in one shard: whether a named lock ended, and whether a
/// watched object did.
fn freed_in(g: &mut Option<Table>, start: usize, len: usize) -> (bool, bool) {
    let Some(t) = g.as_mut() else {
        return (false, false);
    };
    let (mut named, mut watched) = (false, false);
    let end = start.saturating_add(len);
    // One search, from the start (a bounded range searches for both ends).
    for (&addr, e) in t.live.range_mut(start..).take_while(|(&a, _)| a < end) {
        if e.dead {
            continue;
        }
        named |= e.named;
        watched |= e.watched;
        *e = Entry {
            gen: e.gen + 1,
            dead: true,
            ..Entry::default()
        };
        CLASSES.forget(addr);
        bucket(addr).fetch_sub(1, Ordering::Relaxed);
    }
    (named, watched)
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
    for t in TABLES.iter() {
        t.reset(None);
    }
    CLASSES.clear();
    COND_MUTEX.reset(None);
    for b in PAGES.iter() {
        b.store(0, Ordering::Relaxed);
    }
    KNOWN.store(false, Ordering::Relaxed);
}

/// See [`OBJECT_EPOCH`].
#[inline(always)]
pub fn object_epoch() -> u64 {
    OBJECT_EPOCH.load(Ordering::Relaxed)
}

/// See [`EPOCH`].
#[inline(always)]
pub fn epoch() -> u64 {
    EPOCH.load(Ordering::Relaxed)
}

/// glibc 2.36 x86_64 lock layouts (LOWLEVEL.md): `pthread_mutex_t`
/// `__lock`, `__owner`, `__nusers`, `__kind`; `pthread_rwlock_t`
/// `__readers`, `__cur_writer`, `__flags`; a spinlock is one int at 0.
const MUTEX_LOCK: usize = 0;
const MUTEX_OWNER: usize = 8;
const MUTEX_NUSERS: usize = 12;
const MUTEX_KIND: usize = 16;
const RWLOCK_READERS: usize = 0;
const RWLOCK_WRPHASE_FUTEX: usize = 8;
const RWLOCK_WRITERS_FUTEX: usize = 12;
const RWLOCK_WRITER: usize = 24;
const RWLOCK_FLAGS: usize = 48;
/// Bits of an rwlock's `__readers` (glibc's pthread_rwlock_common.c): a
/// write phase, a primary writer, and the count of readers above them.
const RW_WRPHASE: u32 = 1;
const RW_WRLOCKED: u32 = 2;
const RW_RWAITING: u32 = 4;
const RW_READER: u32 = 1 << 3;
const RW_READER_OVERFLOW: u32 = 1 << 31;

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
/// bit 3), `__cur_writer` 24; a spinlock is one int, 1 when free and 0 or
/// below when taken: x86_64's `pthread_spin_lock` decrements it, and
/// `pthread_spin_init` is its unlock, which stores 1).
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
            locked: Some(word(0) as i32 <= 0),
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

/// Whether `pthread_mutex_lock` of the mutex at `addr` can only return 0
/// (or never return): glibc 2.36 takes a `PTHREAD_MUTEX_TIMED_NP` mutex
/// (`__kind` 0: normal, not robust, shared, priority or elision-tagged)
/// by its simple path, which has no error return. A destroyed mutex
/// (`__kind` -1) and every other kind can refuse.
///
/// # Safety
/// As [`state`], for a mutex.
#[inline(always)]
pub unsafe fn mutex_lock_cannot_fail(addr: usize) -> bool {
    core::ptr::read_volatile((addr + MUTEX_KIND) as *const u32) == 0
}

/// Whether [`mutex_trylock`] may take a normal mutex itself: set at
/// start-up unless glibc's tunables force lock elision (glibc would then
/// elide a normal mutex's lock; taking it plainly is still correct, but
/// not what the program asked its C library for).
static OWN_TRYLOCK: AtomicBool = AtomicBool::new(false);

/// At start-up: whether the shim's own trylock of a normal mutex is what
/// glibc's would do (`GLIBC_TUNABLES` does not turn elision on).
pub fn settle_trylock() {
    // SAFETY: getenv's result is read before any other call.
    let tunables = unsafe { libc::getenv(c"GLIBC_TUNABLES".as_ptr()) };
    let elision = !tunables.is_null()
        // SAFETY: a C string from the environment.
        && unsafe { core::ffi::CStr::from_ptr(tunables) }
            .to_bytes()
            .windows(b"elision.enable=1".len())
            .any(|w| w == b"elision.enable=1");
    OWN_TRYLOCK.store(!elision, Ordering::Relaxed);
}

/// `pthread_mutex_trylock` of the mutex at `addr` for thread `tid` (0: not
/// known), made the way glibc 2.36 makes it for a normal mutex (`__kind`
/// 0): if `__lock` is 0, a compare-and-swap to 1, then `__owner` and
/// `__nusers` (LOWLEVEL.md). glibc's own trylock reaches that path
/// through a jump table and five saved registers: 1.5 to 2.3 ns more
/// than its lock, on a 7 ns pair here. None for any other mutex, an
/// unknown thread, or lock elision turned on: glibc's trylock then.
///
/// # Safety
/// As [`state`], for a mutex the caller locks (`tid` its kernel tid).
#[inline(always)]
pub unsafe fn mutex_try_in_place(addr: usize, tid: u32) -> Option<c_int> {
    // SAFETY: as this function's.
    let lock = unsafe { mutex_lock_word_if_own(addr, tid) }?;
    if lock.load(Ordering::Relaxed) != 0
        || lock
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_err()
    {
        return Some(libc::EBUSY);
    }
    // SAFETY: the mutex is this thread's now.
    unsafe { mutex_owned(addr, tid) };
    Some(0)
}

/// `__lock` of the mutex at `addr`, where the shim may take it itself for
/// thread `tid`: a normal mutex, a known thread, no lock elision.
///
/// # Safety
/// As [`mutex_try_in_place`].
#[inline(always)]
unsafe fn mutex_lock_word_if_own(addr: usize, tid: u32) -> Option<&'static AtomicU32> {
    if tid == 0 || !mutex_lock_cannot_fail(addr) || !OWN_TRYLOCK.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: `__lock`, an aligned int of a live mutex, is what glibc's
    // atomics work on.
    Some(unsafe { &*((addr + MUTEX_LOCK) as *const AtomicU32) })
}

/// What glibc records once its lock of the mutex at `addr` succeeded, and
/// writes plainly: `__owner` (thread `tid`) and one more `__nusers`.
///
/// # Safety
/// `addr` is a live mutex this thread just took.
#[inline(always)]
unsafe fn mutex_owned(addr: usize, tid: u32) {
    // SAFETY: ints of the live mutex, the caller's now.
    unsafe {
        ((addr + MUTEX_OWNER) as *mut u32).write(tid);
        let nusers = (addr + MUTEX_NUSERS) as *mut u32;
        nusers.write(nusers.read().wrapping_add(1));
    }
}

/// `pthread_mutex_lock` of a normal mutex while the process has one
/// thread, made in place the way glibc 2.36 makes it then
/// (`lll_mutex_lock_optimized`: a private mutex whose `__lock` is 0 is
/// taken by a plain store, no atomic), then `__owner` and `__nusers`.
/// False (nothing done) for any other mutex, a held one, an unknown
/// thread, or lock elision turned on: glibc's lock then.
///
/// # Safety
/// As [`mutex_try_in_place`], called only while
/// [`crate::sys::single_threaded`] (no other thread can race the store).
#[inline(always)]
pub unsafe fn mutex_lock_alone(addr: usize, tid: u32) -> bool {
    // SAFETY: as this function's.
    let Some(lock) = (unsafe { mutex_lock_word_if_own(addr, tid) }) else {
        return false;
    };
    if lock.load(Ordering::Relaxed) != 0 {
        return false;
    }
    lock.store(1, Ordering::Relaxed);
    // SAFETY: the mutex is this thread's now.
    unsafe { mutex_owned(addr, tid) };
    true
}

/// `pthread_mutex_unlock` of a normal mutex (`__kind` 0), made in place
/// the way glibc 2.36's `__pthread_mutex_unlock_usercnt` makes it:
/// `__owner` cleared, `__nusers` decremented, then `__lock` released (a
/// plain store while the process has one thread, else an exchange, and
/// one waiter woken if the old value said some wait). glibc reaches that
/// through two calls and a jump table: about 23 instructions against 8.
/// False (nothing done) for any other kind of mutex: glibc's unlock then.
/// A normal mutex checks no owner, in glibc as here.
///
/// # Safety
/// As [`state`], for a mutex the caller unlocks.
#[inline(always)]
pub unsafe fn mutex_unlock_in_place(addr: usize) -> bool {
    if !mutex_lock_cannot_fail(addr) {
        return false;
    }
    // SAFETY: fields of the live mutex the caller unlocks; glibc writes
    // these two plainly too.
    unsafe {
        ((addr + MUTEX_OWNER) as *mut u32).write(0);
        let nusers = (addr + MUTEX_NUSERS) as *mut u32;
        nusers.write(nusers.read().wrapping_sub(1));
    }
    // SAFETY: `__lock`, an aligned int of the live mutex.
    let lock = unsafe { &*((addr + MUTEX_LOCK) as *const AtomicU32) };
    if crate::sys::single_threaded() {
        lock.store(0, Ordering::Release);
    } else if lock.swap(0, Ordering::Release) > 1 {
        // A waiter (glibc's `lll_unlock`). The mutex may be destroyed and
        // its memory reused as soon as the swap is made, as in glibc: a
        // failed or spurious wake is harmless, and the raw call leaves
        // errno alone.
        let _ = rustix::thread::futex::wake(lock, rustix::thread::futex::Flags::PRIVATE, 1);
    }
    true
}

/// `pthread_rwlock_tryrdlock` of the rwlock at `addr`, made in place in
/// the one state where glibc's is a single compare-and-swap and its lock
/// takes the same path: a read phase with no primary writer (`__readers`
/// without `WRPHASE` or `WRLOCKED`), one more reader. None in any other
/// state, when the swap loses a race, or with lock elision turned on:
/// glibc's trylock decides then.
///
/// # Safety
/// `addr` is a live rwlock the caller read-locks.
#[inline(always)]
pub unsafe fn rwlock_read_in_place(addr: usize) -> Option<c_int> {
    if !OWN_TRYLOCK.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: `__readers`, an aligned int of a live rwlock, is what
    // glibc's atomics work on.
    let readers = unsafe { &*((addr + RWLOCK_READERS) as *const AtomicU32) };
    let r = readers.load(Ordering::Relaxed);
    // (No sum that could wrap: glibc never lets the count near the top.)
    if r & (RW_WRPHASE | RW_WRLOCKED) != 0 || r >= RW_READER_OVERFLOW - RW_READER {
        return None;
    }
    readers
        .compare_exchange(r, r + RW_READER, Ordering::Acquire, Ordering::Relaxed)
        .ok()
        .map(|_| 0)
}

/// `pthread_rwlock_unlock` of a read lock, made in place in the one state
/// where glibc 2.36's is a single compare-and-swap that wakes nobody: no
/// writer recorded (`__cur_writer` 0: glibc tells a read unlock from a
/// write unlock by it) and a read phase with no primary writer and no
/// reader waiting for one (`__readers` without `WRPHASE`, `WRLOCKED` or
/// `RWAITING`): one reader fewer. False (nothing done) in any other state
/// or when the swap loses a race: glibc's unlock then, which may hand the
/// lock over and wake its waiters.
///
/// # Safety
/// `addr` is a live rwlock the caller unlocks.
#[inline(always)]
pub unsafe fn rwlock_read_unlock_in_place(addr: usize) -> bool {
    // SAFETY: ints of the live rwlock, which glibc's atomics work on.
    let (writer, readers) = unsafe {
        (
            &*((addr + RWLOCK_WRITER) as *const AtomicU32),
            &*((addr + RWLOCK_READERS) as *const AtomicU32),
        )
    };
    if writer.load(Ordering::Relaxed) != 0 {
        return false;
    }
    let r = readers.load(Ordering::Relaxed);
    r & (RW_WRPHASE | RW_WRLOCKED | RW_RWAITING) == 0
        && r >= RW_READER
        && readers
            .compare_exchange(r, r - RW_READER, Ordering::Release, Ordering::Relaxed)
            .is_ok()
}

/// `pthread_rwlock_trywrlock` of the rwlock at `addr` for thread `tid`,
/// made in place when the lock is idle (`__readers` 0, a read phase, or
/// `WRPHASE` alone, a write phase: where a write lock left it), as glibc's
/// makes it there: the swap to a primary writer in a write phase, then
/// `__writers_futex`, `__wrphase_futex` if the swap started the write
/// phase, and `__cur_writer`. None in any other state, for an unknown
/// thread, when the swap loses a race, or with lock elision turned on:
/// glibc's trylock decides then.
///
/// # Safety
/// `addr` is a live rwlock the caller write-locks; `tid` its kernel tid.
#[inline(always)]
pub unsafe fn rwlock_write_in_place(addr: usize, tid: u32) -> Option<c_int> {
    if tid == 0 || !OWN_TRYLOCK.load(Ordering::Relaxed) {
        return None;
    }
    // SAFETY: as in `rwlock_read_in_place`.
    let readers = unsafe { &*((addr + RWLOCK_READERS) as *const AtomicU32) };
    let r = readers.load(Ordering::Relaxed);
    if r & !RW_WRPHASE != 0
        || readers
            .compare_exchange(
                r,
                RW_WRPHASE | RW_WRLOCKED,
                Ordering::Acquire,
                Ordering::Relaxed,
            )
            .is_err()
    {
        return None;
    }
    // SAFETY: ints of the live rwlock, stored relaxed and in this order, as
    // glibc's trywrlock stores them once its swap succeeded (a write phase
    // it did not start keeps its futex word: readers may wait on it).
    unsafe {
        (*((addr + RWLOCK_WRITERS_FUTEX) as *const AtomicU32)).store(1, Ordering::Relaxed);
        if r & RW_WRPHASE == 0 {
            (*((addr + RWLOCK_WRPHASE_FUTEX) as *const AtomicU32)).store(1, Ordering::Relaxed);
        }
        (*((addr + RWLOCK_WRITER) as *const AtomicU32)).store(tid, Ordering::Relaxed);
    }
    Some(0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use core::ffi::c_void;

    #[test]
    fn a_normal_mutex_tried_in_place_is_held_as_glibc_would_hold_it() {
        settle_trylock();
        let tid = crate::sys::gettid();
        let m: &mut libc::pthread_mutex_t = Box::leak(Box::new(libc::PTHREAD_MUTEX_INITIALIZER));
        let a = m as *mut libc::pthread_mutex_t as usize;
        let word = |off: usize| unsafe { ((a + off) as *const u32).read_volatile() };
        // SAFETY: a live mutex, locked by this thread.
        assert_eq!(unsafe { mutex_try_in_place(a, tid) }, Some(0));
        assert_eq!(
            (word(MUTEX_LOCK), word(MUTEX_OWNER), word(MUTEX_NUSERS)),
            (1, tid, 1)
        );
        // SAFETY: as above.
        assert_eq!(unsafe { mutex_try_in_place(a, tid) }, Some(libc::EBUSY));
        // glibc's unlock and destroy find it as its own lock left it.
        // SAFETY: the mutex, held by this thread.
        unsafe {
            assert_eq!(libc::pthread_mutex_unlock(m), 0);
            assert_eq!(
                (word(MUTEX_LOCK), word(MUTEX_OWNER), word(MUTEX_NUSERS)),
                (0, 0, 0)
            );
            assert_eq!(libc::pthread_mutex_destroy(m), 0);
        }
        // An unknown thread, or any other kind of mutex: glibc's trylock.
        let mut e: libc::pthread_mutex_t = libc::PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP;
        let ea = &mut e as *mut libc::pthread_mutex_t as usize;
        // SAFETY: live mutexes.
        unsafe {
            assert_eq!(mutex_try_in_place(ea, tid), None);
            assert_eq!(mutex_try_in_place(a, 0), None);
        }
    }

    /// The 40 bytes of a mutex.
    fn mutex_bytes(m: &libc::pthread_mutex_t) -> [u8; 40] {
        // SAFETY: a pthread_mutex_t is 40 plain bytes here.
        unsafe { core::mem::transmute_copy(m) }
    }

    #[test]
    fn a_normal_mutex_locked_and_unlocked_in_place_is_as_glibc_leaves_it() {
        settle_trylock();
        let tid = crate::sys::gettid();
        let fresh = || -> &'static mut libc::pthread_mutex_t {
            Box::leak(Box::new(libc::PTHREAD_MUTEX_INITIALIZER))
        };
        let (ours, theirs) = (fresh(), fresh());
        let a = ours as *mut libc::pthread_mutex_t as usize;
        let t = theirs as *mut libc::pthread_mutex_t;
        // SAFETY: live mutexes, locked and unlocked by this thread; glibc's
        // own functions reached through the shim's resolution.
        unsafe {
            for _ in 0..3 {
                assert!(mutex_lock_alone(a, tid));
                assert_eq!(crate::real::pthread_mutex_lock()(t.cast()), 0);
                assert_eq!(mutex_bytes(ours), mutex_bytes(theirs));
                // Held: not taken again.
                assert!(!mutex_lock_alone(a, tid));
                assert!(mutex_unlock_in_place(a));
                assert_eq!(crate::real::pthread_mutex_unlock()(t.cast()), 0);
                assert_eq!(mutex_bytes(ours), mutex_bytes(theirs));
            }
            // Taken by glibc, released in place, and the other way round.
            assert_eq!(crate::real::pthread_mutex_lock()(a as *mut c_void), 0);
            assert!(mutex_unlock_in_place(a));
            assert!(mutex_lock_alone(a, tid));
            assert_eq!(crate::real::pthread_mutex_unlock()(a as *mut c_void), 0);
            assert_eq!(mutex_bytes(ours), mutex_bytes(theirs));
            assert_eq!(crate::real::pthread_mutex_destroy()(a as *mut c_void), 0);
        }
        // Every other kind is glibc's, and left untouched.
        for init in [
            libc::PTHREAD_ERRORCHECK_MUTEX_INITIALIZER_NP,
            libc::PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP,
        ] {
            let m = Box::leak(Box::new(init));
            let before = mutex_bytes(m);
            let ma = m as *mut libc::pthread_mutex_t as usize;
            // SAFETY: a live mutex.
            unsafe {
                assert!(!mutex_lock_alone(ma, tid));
                assert!(!mutex_unlock_in_place(ma));
            }
            assert_eq!(mutex_bytes(m), before);
        }
    }

    #[test]
    fn a_mutex_released_in_place_wakes_its_waiter() {
        let m: &'static mut libc::pthread_mutex_t =
            Box::leak(Box::new(libc::PTHREAD_MUTEX_INITIALIZER));
        let a = m as *mut libc::pthread_mutex_t as usize;
        // SAFETY: a live mutex.
        assert_eq!(
            unsafe { crate::real::pthread_mutex_lock()(a as *mut c_void) },
            0
        );
        let (tx, rx) = std::sync::mpsc::channel();
        let waiter = std::thread::spawn(move || {
            // SAFETY: as above; glibc's lock waits on the futex.
            let r = unsafe { crate::real::pthread_mutex_lock()(a as *mut c_void) };
            tx.send(r).unwrap();
            // SAFETY: taken just above.
            unsafe { crate::real::pthread_mutex_unlock()(a as *mut c_void) };
        });
        // The waiter is asleep once glibc marked the lock contended (2).
        let word = || unsafe { ((a + MUTEX_LOCK) as *const AtomicU32).as_ref() }.unwrap();
        let start = std::time::Instant::now();
        while word().load(Ordering::Acquire) != 2 {
            assert!(start.elapsed().as_secs() < 10, "the waiter never waited");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
        // SAFETY: held by this thread.
        assert!(unsafe { mutex_unlock_in_place(a) });
        let got = rx.recv_timeout(std::time::Duration::from_secs(10));
        assert_eq!(got, Ok(0), "the waiter was not woken");
        waiter.join().unwrap();
        assert_eq!(word().load(Ordering::Acquire), 0);
    }

    /// The 56 bytes of an rwlock.
    fn rw_bytes(l: &libc::pthread_rwlock_t) -> [u8; 56] {
        // SAFETY: a pthread_rwlock_t is 56 plain bytes here.
        unsafe { core::mem::transmute_copy(l) }
    }

    /// Fresh rwlocks of each kind glibc has, private and shared (leaked:
    /// a lock never moves once made).
    fn rwlocks() -> Vec<&'static mut libc::pthread_rwlock_t> {
        let mut v = Vec::new();
        for kind in [0, 1, 2] {
            for pshared in [libc::PTHREAD_PROCESS_PRIVATE, libc::PTHREAD_PROCESS_SHARED] {
                // SAFETY: attributes made, used and destroyed here.
                unsafe {
                    let mut a: libc::pthread_rwlockattr_t = core::mem::zeroed();
                    assert_eq!(libc::pthread_rwlockattr_init(&mut a), 0);
                    extern "C" {
                        fn pthread_rwlockattr_setkind_np(
                            a: *mut libc::pthread_rwlockattr_t,
                            k: c_int,
                        ) -> c_int;
                    }
                    assert_eq!(pthread_rwlockattr_setkind_np(&mut a, kind), 0);
                    assert_eq!(libc::pthread_rwlockattr_setpshared(&mut a, pshared), 0);
                    let l = Box::leak(Box::new(libc::PTHREAD_RWLOCK_INITIALIZER));
                    assert_eq!(libc::pthread_rwlock_init(l, &a), 0);
                    libc::pthread_rwlockattr_destroy(&mut a);
                    v.push(l);
                }
            }
        }
        v
    }

    #[test]
    fn an_rwlock_tried_in_place_is_held_as_glibcs_own_trylock_holds_it() {
        settle_trylock();
        let tid = crate::sys::gettid();
        for (ours, theirs) in rwlocks().into_iter().zip(rwlocks()) {
            let a = ours as *mut libc::pthread_rwlock_t as usize;
            // SAFETY: live rwlocks, locked and unlocked by this thread.
            unsafe {
                // Read: twice (two readers), each as glibc's try would.
                for _ in 0..2 {
                    assert_eq!(rwlock_read_in_place(a), Some(0));
                    assert_eq!(libc::pthread_rwlock_tryrdlock(theirs), 0);
                    assert_eq!(rw_bytes(ours), rw_bytes(theirs));
                }
                // Read-locked: no write in place.
                assert_eq!(rwlock_write_in_place(a, tid), None);
                // Each read released in place, as glibc's unlock would.
                for _ in 0..2 {
                    assert!(rwlock_read_unlock_in_place(a));
                    assert_eq!(libc::pthread_rwlock_unlock(theirs), 0);
                    assert_eq!(rw_bytes(ours), rw_bytes(theirs));
                }
                // Idle: nothing to release.
                assert!(!rwlock_read_unlock_in_place(a));
                assert_eq!(rw_bytes(ours), rw_bytes(theirs));
                // Write, from the idle read phase.
                assert_eq!(rwlock_write_in_place(a, tid), Some(0));
                assert_eq!(libc::pthread_rwlock_trywrlock(theirs), 0);
                assert_eq!(rw_bytes(ours), rw_bytes(theirs));
                // Write-locked: nothing in place; glibc refuses both.
                assert_eq!(rwlock_read_in_place(a), None);
                assert_eq!(rwlock_write_in_place(a, tid), None);
                assert!(!rwlock_read_unlock_in_place(a));
                assert_eq!(libc::pthread_rwlock_tryrdlock(ours), libc::EBUSY);
                assert_eq!(libc::pthread_rwlock_unlock(ours), 0);
                assert_eq!(libc::pthread_rwlock_unlock(theirs), 0);
                assert_eq!(rw_bytes(ours), rw_bytes(theirs));
                // Idle in a write phase now: a reader is glibc's to
                // let in (it ends the phase); a writer is taken in place.
                assert_eq!(rwlock_read_in_place(a), None);
                assert_eq!(rwlock_write_in_place(a, tid), Some(0));
                assert_eq!(libc::pthread_rwlock_trywrlock(theirs), 0);
                assert_eq!(rw_bytes(ours), rw_bytes(theirs));
                assert_eq!(libc::pthread_rwlock_unlock(ours), 0);
                assert_eq!(libc::pthread_rwlock_unlock(theirs), 0);
                assert_eq!(rw_bytes(ours), rw_bytes(theirs));
                // glibc's own locks and destroy go on from the same state.
                assert_eq!(libc::pthread_rwlock_rdlock(ours), 0);
                assert_eq!(libc::pthread_rwlock_unlock(ours), 0);
                assert_eq!(libc::pthread_rwlock_wrlock(ours), 0);
                assert_eq!(libc::pthread_rwlock_unlock(ours), 0);
                assert_eq!(libc::pthread_rwlock_destroy(ours), 0);
            }
        }
        // An unknown thread: glibc's.
        let mut l = libc::PTHREAD_RWLOCK_INITIALIZER;
        // SAFETY: a live rwlock.
        assert_eq!(
            unsafe { rwlock_write_in_place(&mut l as *mut _ as usize, 0) },
            None
        );
    }

    #[test]
    fn a_read_unlock_that_must_hand_the_rwlock_over_is_left_to_glibc() {
        settle_trylock();
        for l in rwlocks() {
            let a = l as *mut libc::pthread_rwlock_t as usize;
            // SAFETY: a live rwlock, read-locked here.
            assert_eq!(unsafe { rwlock_read_in_place(a) }, Some(0));
            let (tx, rx) = std::sync::mpsc::channel();
            let writer = std::thread::spawn(move || {
                // SAFETY: the live rwlock; glibc's wrlock waits for the reader.
                let r = unsafe { libc::pthread_rwlock_wrlock(a as *mut libc::pthread_rwlock_t) };
                tx.send(r).unwrap();
                // SAFETY: write-locked just above.
                unsafe { libc::pthread_rwlock_unlock(a as *mut libc::pthread_rwlock_t) };
            });
            // The writer waits once it made itself the primary writer.
            let readers = || unsafe { &*((a + RWLOCK_READERS) as *const AtomicU32) };
            let start = std::time::Instant::now();
            while readers().load(Ordering::Acquire) & RW_WRLOCKED == 0 {
                assert!(start.elapsed().as_secs() < 10, "the writer never came");
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
            // SAFETY: read-locked by this thread.
            unsafe {
                assert!(!rwlock_read_unlock_in_place(a));
                assert_eq!(libc::pthread_rwlock_unlock(l), 0);
            }
            let got = rx.recv_timeout(std::time::Duration::from_secs(10));
            assert_eq!(got, Ok(0), "the writer was not handed the lock");
            writer.join().unwrap();
        }
    }

    /// Whether the page holding `p` is mapped (a read maps the zero page).
    fn mapped(p: *const Slot) -> bool {
        let page = p as usize & !4095;
        let mut v = 0u8;
        // SAFETY: one page of this process's own memory, one result byte.
        assert_eq!(unsafe { libc::mincore(page as *mut _, 4096, &mut v) }, 0);
        v & 1 != 0
    }

    #[test]
    fn the_locks_of_one_page_share_a_window_and_its_lines() {
        // 64 locks of 64 bytes (an array of rwlocks) on one page.
        let page = 0x5555_1234_5000usize;
        let homes: Vec<usize> = (0..64).map(|i| home_of(page + i * 64)).collect();
        assert!(homes.iter().all(|h| h / WINDOW == homes[0] / WINDOW));
        let mut slots = homes.clone();
        slots.sort_unstable();
        slots.dedup();
        assert_eq!(slots.len(), 64, "each its own slot");
        // Two to a line of four slots: 32 lines, 512 bytes of the map.
        let mut lines: Vec<usize> = homes.iter().map(|h| h / 4).collect();
        lines.sort_unstable();
        lines.dedup();
        assert_eq!(lines.len(), 32);
        // Mutexes of 40 bytes, packed: each its own slot too.
        let mut m: Vec<usize> = (0..102).map(|i| home_of(page + i * 40)).collect();
        m.sort_unstable();
        m.dedup();
        assert_eq!(m.len(), 102);
    }

    #[test]
    fn a_class_map_page_is_first_touched_by_a_write() {
        let map = &CLASSES;
        // An address whose first slot is on a page nobody touched yet.
        let (addr, slot) = (1..1_000_000usize)
            .map(|i| 0x7f00_0000_0000 + i * 4096 + 64)
            .map(|a| {
                let region = shard_of_page(a >> 12) * REGION;
                (a, region + home_of(a) % REGION)
            })
            .find(|&(_, s)| !map.page_written(s / SLOTS_PER_PAGE) && !mapped(&map.slots[s]))
            .expect("an untouched page of the class map");
        // Looked up, unknown: the page is still not mapped.
        assert_eq!(map.get(addr), 0);
        assert!(!mapped(&map.slots[slot]));
        // Published: written, mapped, and found.
        map.publish(addr, 0x4242);
        assert!(map.page_written(slot / SLOTS_PER_PAGE));
        assert!(mapped(&map.slots[slot]));
        assert_eq!(map.get(addr), 0x4242);
        map.forget(addr);
        assert_eq!(map.get(addr), 0);
    }
}
