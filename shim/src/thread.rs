//! Per-thread state: the held-lock stack, the recent-acquisitions ring that
//! queue dependencies are built from, and a cache of facts already recorded.
//!
//! A thread's state is a block from the shim's heap, made on its first
//! hooked call and reused after it exits; one word of static TLS
//! (initial-exec model, zero-filled `.tbss`) points at it, so the fast path
//! reaches it in three instructions: no `__tls_get_addr` call, no
//! allocation. Rust's `thread_local!` in a shared object uses the
//! general-dynamic model (a call per access), which cost more than the whole
//! budget of a lock pair; and glibc takes static TLS out of every thread's
//! stack, so the block itself must not be TLS. Initial-exec TLS is sound for
//! a library loaded at start-up by `LD_PRELOAD`; `dlopen`ing the shim later
//! is not supported.

use holdcheck_format::{LockKind, Mode};

/// Deepest held-lock stack tracked; deeper acquisitions are passed through
/// and the trace says the analysis is partial. The stack is the last field
/// of the state block, and a reused block is cleared only up to it: the
/// pages of entries no thread reached are never touched.
pub use holdcheck_format::MAX_HELD;
/// Lock acquisitions remembered for queue dependencies (a power of two).
pub const RECENT: usize = 16;
/// Channels a thread's queue dependencies are tracked on at once.
pub const QUEUE_SLOTS: usize = 4;
/// Waits on other queues remembered per queue between two operations on it.
pub const WAITS_AFTER: usize = 2;
/// Acquisitions between two operations on a queue remembered as recorded,
/// by their place in the interval (see [`QueueSlot::taken`]).
pub const TAKEN_MEMO: usize = 4;
/// Direct-mapped cache of fact keys this thread already recorded.
pub const SEEN_CACHE: usize = 256;
/// Sets of the cache of lock-order facts by class that are full.
const CLASS_SEEN_SETS: usize = 128;
/// Direct-mapped cache of the stacks of contended acquisitions, by call site.
pub const SITE_STACKS: usize = 32;
/// Direct-mapped cache of the ring positions of a thread's last operation
/// on an object of each class (semaphores, condition variables).
pub const CLASS_OPS: usize = 8;
/// Direct-mapped cache of condition variables' generations.
pub const CONDVAR_GENS: usize = 8;

/// The set of a fact key in a per-thread cache. Every key is odd (0 is an
/// empty way): its lowest bit would leave half the sets unused, and three
/// keys of a steady loop meeting in a two-way set evict each other at
/// every turn (`manylocks --stress`: 2 000 or 40 000 slow lookups in a
/// run, by the luck of its keys).
#[inline(always)]
fn set_of(key: u64, sets: usize) -> usize {
    (key >> 1) as usize % sets
}

/// Three words with no padding (`repr(C)`, checked below), stored as such
/// by [`HeldEntry::store_to`].
#[derive(Clone, Copy, Debug)]
#[repr(C)]
pub struct HeldEntry {
    pub addr: usize,
    pub site: usize,
    /// Its lock's class as lock-order keys take it (folded to 32 bits),
    /// once a lock-order fact looked it up; 0 until then.
    pub class: u32,
    pub mode: Mode,
    pub kind: LockKind,
    /// Held again by a condition wait: a join
    /// made under it follows a handshake with the thread it joins.
    pub retaken: bool,
    /// (Recent entries) the thread signalled or posted while it held this
    /// acquisition: it announced something under the lock, as a thread
    /// that says it is done before it ends does.
    pub announced: bool,
}

const _: () = assert!(core::mem::size_of::<HeldEntry>() == 24);

impl HeldEntry {
    /// An acquisition of `addr` at `site`, its class not known yet.
    #[inline(always)]
    pub fn new(addr: usize, kind: LockKind, mode: Mode, site: usize) -> Self {
        HeldEntry {
            addr,
            mode,
            kind,
            retaken: false,
            announced: false,
            class: 0,
            site,
        }
    }

    /// The entry's third word (class, mode, kind, flags): with `addr` and
    /// `site`, the whole entry in three registers, for calls that must take
    /// few arguments.
    #[inline(always)]
    pub fn tail(self) -> EntryTail {
        // SAFETY: as in `store_to`.
        let w: [u64; 3] = unsafe { core::mem::transmute(self) };
        EntryTail(w[2])
    }

    /// The entry whose parts these are ([`Self::tail`]).
    #[inline(always)]
    pub fn from_parts(addr: usize, site: usize, tail: EntryTail) -> Self {
        // SAFETY: three words of an entry (the tail made only by `tail`).
        unsafe { core::mem::transmute([addr as u64, site as u64, tail.0]) }
    }

    /// Whether this is `other`, word for word (its flags too): each word
    /// compared in memory (compared whole, the entries are spilled to the
    /// stack for a vector compare: stores, and registers saved for them).
    #[inline(always)]
    pub fn same_as(&self, other: HeldEntry) -> bool {
        // SAFETY: as in `store_to`.
        let b: [u64; 3] = unsafe { core::mem::transmute(other) };
        let a = (self as *const HeldEntry).cast::<u64>();
        // SAFETY: three initialised words (as in `store_to`).
        unsafe { *a == b[0] && *a.add(1) == b[1] && *a.add(2) == b[2] }
    }

    /// Writes this entry as three words. Copied whole, it is spilled and
    /// read back as one 16-byte load over two 8-byte stores, which
    /// store-to-load forwarding cannot serve (a stall of about the cost of
    /// the whole lock pair, measured on the single-thread path); and each
    /// store counts where the hook's stores must drain before the next
    /// atomic.
    #[inline(always)]
    pub fn store_to(self, dst: *mut HeldEntry) {
        // SAFETY: three words, no padding (asserted above), every byte
        // initialised.
        let w: [u64; 3] = unsafe { core::mem::transmute(self) };
        let dst = dst.cast::<u64>();
        // SAFETY: the caller's slot, valid for writes, 8-byte aligned.
        unsafe {
            dst.write(w[0]);
            dst.add(1).write(w[1]);
            dst.add(2).write(w[2]);
        }
    }
}

/// The third word of a [`HeldEntry`] (made only from one).
#[derive(Clone, Copy)]
pub struct EntryTail(u64);

/// What an acquisition records when asked to (`config::extras`), kept
/// beside the held stack so that an entry stays three words.
#[derive(Clone, Copy, Debug, Default)]
pub struct HeldExtra {
    /// When it was acquired (monotonic ns), with a hold-time threshold.
    pub since: u64,
    /// The stack of the acquisition, with `held_stacks=1`.
    pub stack: u64,
    /// Its site, again (for a report made once the entry is gone).
    pub site: usize,
}

#[cfg(test)]
impl HeldEntry {
    const EMPTY: HeldEntry = HeldEntry {
        addr: 0,
        mode: Mode::Write,
        kind: LockKind::Mutex,
        retaken: false,
        announced: false,
        class: 0,
        site: 0,
    };
}

/// A channel this thread used, and the recent-ring position at that time:
/// every lock acquired since then was acquired between two operations on it.
#[derive(Clone, Copy)]
pub struct QueueSlot {
    pub key: u64,
    pub seq: u64,
    /// The last stack recorded for an operation on this channel.
    pub stack: u64,
    /// 1 + the channel's id in the live table (0: not looked up yet), so the
    /// table's lock is taken once per thread and channel, not per call.
    pub chan_id: u32,
    /// 1 + the descriptor of the last operation on it.
    pub fd: i32,
    /// Blocking calls on other queues (other descriptors) since the last
    /// operation on this one.
    pub waits_after: [Waited; WAITS_AFTER],
    /// The call last made on it, when what it was made on is known not to
    /// have changed (`facts::nothing_new`): the same call again, with
    /// nothing new since, is only a published wait (a signal: nothing).
    pub again: Option<Again>,
    /// The acquisitions between its last two operations found recorded
    /// (as `facts::taken_key` has them, at lock epoch `taken_epoch`), by
    /// their place in the interval: a steady loop takes the same locks in
    /// the same order each time, and compares each with the one at its
    /// place instead of hashing it into the seen cache.
    pub taken: [TakenWord; TAKEN_MEMO],
    pub taken_epoch: u64,
}

/// Depths of the held stack whose last recorded lock-order fact is kept
/// as an [`OrderMemo`].
pub const ORDER_MEMO: usize = 2;

/// A lock-order fact found recorded, as what its key is made of (see
/// `facts::lock_order_key`): the acquired lock with its mode and phase, the
/// held locks with their modes, the lock epoch. A loop that takes the same
/// nested lock again compares these, loads that do not wait on each other,
/// where the key is a chain of multiplies the acquisition waits for.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct OrderMemo {
    pub epoch: u64,
    pub lock: u64,
    pub held: [u64; ORDER_MEMO],
}

impl OrderMemo {
    pub const EMPTY: OrderMemo = OrderMemo {
        epoch: 0,
        lock: 0,
        held: [0; ORDER_MEMO],
    };
}

/// An acquisition as a fact of a queue slot names it: the lock's address,
/// and its site with the mode in the top bits (a site is a user-space code
/// address, below 2^47), so that the pair is exact.
pub type TakenWord = (usize, usize);

impl QueueSlot {
    /// Whether a blocking call on descriptor `fd` (1-based) is a wait
    /// between two operations of this slot: one in use on another
    /// descriptor. The one test of [`ThreadState::note_wait_on`] and of
    /// the bits the fast path notes instead.
    fn waits_for_call_on(&self, fd: i32) -> bool {
        self.key != 0 && self.fd != fd
    }

    /// Remembers a wait on another queue since its last operation: once
    /// per queue, in the first free place (none left: not remembered).
    fn note_waited(&mut self, w: Waited) {
        if self.waits_after.iter().any(|x| x.packed == w.packed) {
            return;
        }
        if let Some(free) = self.waits_after.iter_mut().find(|x| x.packed == 0) {
            *free = w;
        }
    }
}

/// A blocking call on another queue, remembered by a queue slot.
#[derive(Clone, Copy, Default, PartialEq, Eq, Debug)]
pub struct Waited {
    /// `(1 + channel id) << 1 | receiving`; 0: none.
    pub packed: u32,
    /// The generation of the semaphore or condition variable waited on:
    /// the live table knows such an object by its address, and a later
    /// generation may have its id by the time this wait is written.
    pub gen: u32,
    /// The stack of that call.
    pub stack: u64,
}

impl Waited {
    pub const NONE: Waited = Waited {
        packed: 0,
        gen: 0,
        stack: 0,
    };

    /// [`Self::packed`] of a call in direction `dir` on the channel whose
    /// id plus one is `chan_id1` (as a queue slot keeps it).
    pub fn pack(chan_id1: u32, dir: holdcheck_format::Direction) -> u32 {
        chan_id1 << 1 | (dir == holdcheck_format::Direction::Recv) as u32
    }
}

/// A call on a descriptor whose channel the cache holds (the descriptor,
/// direction, call and the cache's stamp of the descriptor), or a signal
/// or post (descriptor -1, stamp: the object's generation and address).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Again {
    pub fd: i32,
    pub dir: holdcheck_format::Direction,
    pub call: usize,
    pub stamp: (u32, u64),
}

impl QueueSlot {
    const EMPTY: QueueSlot = QueueSlot {
        key: 0,
        seq: 0,
        stack: 0,
        chan_id: 0,
        fd: 0,
        waits_after: [Waited::NONE; WAITS_AFTER],
        again: None,
        taken: [(0, 0); TAKEN_MEMO],
        taken_epoch: 0,
    };
}

#[repr(C)]
pub struct ThreadState {
    /// Set while the shim itself runs on this thread: interposed calls made
    /// by the shim (or a signal handler interrupting it) pass straight through.
    pub busy: bool,
    pub tid: u32,
    pub held_len: usize,
    /// Set when the held stack overflowed (reported once).
    pub overflowed: bool,
    /// Set once a queue slot is claimed ([`Self::used_queues`]): here, on
    /// the line the lock hooks touch anyway, not on the slots'.
    pub queues_used: bool,
    // From here to `queues`: what a blocking call made again reads, on the
    // block's first lines. It runs right after a system call, with the
    // caches cold, and each line it touches then costs (BENCHMARKS.md).
    /// This thread's record for the watchdog (null until its first wait).
    pub published: *const crate::live::Published,
    /// 1 + the socket this thread last sent on (0: none): a receive on it
    /// waits for a reply.
    pub last_sent_fd: i32,
    pub recent_seq: u64,
    /// `recent_seq` when a queue operation last took it as its now
    /// ([`Self::recent_now`]).
    pub recent_read: u64,
    /// Set once a poll/select/epoll_wait of this thread reported readiness:
    /// an event loop's reads and writes follow readiness, so they are not
    /// waits that order its queues.
    pub event_loop: bool,
    /// Blocking calls the fast path made, as bits: bit `j` of byte `i` is
    /// a call on queue slot `j` since the last operation on slot `i`, not
    /// yet among slot `i`'s `waits_after` (the slow path writes them there
    /// first, [`Self::materialize_waits`]). A steady loop over a few
    /// queues sets and clears bits where the list would be rewritten,
    /// slot by slot, on every call.
    pub wait_pending: u32,
    /// Bit `j` of byte `i`: the wait on slot `j` between operations on
    /// slot `i` is a fact already recorded, while the lock epoch is
    /// `wait_known_epoch` and neither slot is claimed anew.
    pub wait_known: u32,
    pub wait_known_epoch: u64,
    /// Per slot, what a blocking call on it ORs into `wait_pending`: its
    /// bit in the byte of every other slot in use on another descriptor
    /// (as [`Self::note_wait_on`] chooses them). Made again by every slow
    /// operation, the only place a slot's key or descriptor changes.
    pub wait_spread: [u32; QUEUE_SLOTS],
    pub queues: [QueueSlot; QUEUE_SLOTS],
    pub next_queue_slot: usize,
    pub recent: [HeldEntry; RECENT],
    /// Two-way: a steady loop whose keys collide must not evict each
    /// other at every turn.
    pub seen: [[u64; 2]; SEEN_CACHE],
    /// The lock-order facts last found recorded with one and with two
    /// locks held (see [`OrderMemo`]).
    pub order_memo: [OrderMemo; ORDER_MEMO],
    /// Lock-order facts by class (`facts::class_key`) whose samples the
    /// trace has all it keeps of: a new instance of them is no new fact.
    /// Four ways per set: a few dozen such facts must all stay.
    pub class_seen: [[u64; 4]; CLASS_SEEN_SETS],
    /// (call site, stack id) of contended acquisitions already unwound.
    pub site_stacks: [(usize, u64); SITE_STACKS],
    /// (acquisition key, stack id) of lock-order facts already unwound: a
    /// fact made again in a new phase or lock epoch reuses its stack.
    pub order_stacks: [(u64, u64); SITE_STACKS],
    /// (address, object epoch, generation) of condition variables and
    /// semaphores this thread used: valid while the object epoch is (no
    /// object a thread cached was initialised or destroyed since), so a
    /// signal in a loop does not take the lock table's lock.
    pub condvar_gens: [(usize, u64, u32); CONDVAR_GENS],
    /// (class key, ring position) of the last operation on an object of a
    /// class: see [`Self::class_interval`].
    pub class_ops: [(u64, u64); CLASS_OPS],
    /// Threads this thread created or joined: its phase (the trace's
    /// `phase` of a fact, capped at `PHASES - 1`).
    pub syncs: u32,
    /// Who created this thread, and at the end of which of its phases
    /// (tid 0: not created through the hook, e.g. the main thread).
    pub parent: (u32, u32),
    /// The stack of the `pthread_create` that made it (0: unknown).
    pub created_stack: u64,
    /// Whether this thread's start is in the trace: written with its first
    /// lock-order or queue fact, so a thread per task that takes part in
    /// none (or whose facts other threads already recorded) costs the
    /// trace nothing.
    pub start_recorded: bool,
    /// The last relock glibc refused with `EDEADLK`: (lock, stack). An
    /// unlock of it that finds it not held is the program carrying on.
    pub refused: (usize, u64),
    /// Condition variables' mutexes this thread waited with: (condvar,
    /// epoch, mutex), so a wait with the same pair skips the shared table.
    pub condvar_mutexes: [(usize, u64, usize); CONDVAR_GENS],
    /// The held-lock stack, valid up to `held_len`: last, see [`MAX_HELD`].
    pub held: [core::mem::MaybeUninit<HeldEntry>; MAX_HELD],
    /// Beside each entry, what `config::extras` asked for: valid up to
    /// `held_len` only when extras are on (they are on or off for the
    /// whole run).
    pub held_extra: [core::mem::MaybeUninit<HeldExtra>; MAX_HELD],
}

/// Bytes of a state block before the held-lock stack: what a reused block
/// clears.
const CLEARED: usize = core::mem::offset_of!(ThreadState, held);

impl ThreadState {
    /// The stack of the call at `site` (a lock's contended acquisition, a
    /// `pthread_create`), unwound once per thread and site, then cached.
    pub fn site_stack(&mut self, site: usize) -> u64 {
        let slot = &mut self.site_stacks[(site >> 2) % SITE_STACKS];
        if slot.0 != site || slot.1 == 0 {
            *slot = (
                site,
                crate::recorder::record_stack(crate::config::get().stack_depth),
            );
        }
        slot.1
    }

    /// The state of a new thread: what `.tbss` holds, all zero bytes.
    #[cfg(test)]
    pub(crate) const fn new() -> Self {
        ThreadState {
            busy: false,
            tid: 0,
            held_len: 0,
            overflowed: false,
            queues_used: false,
            recent: [HeldEntry::EMPTY; RECENT],
            recent_seq: 0,
            recent_read: 0,
            wait_pending: 0,
            wait_known: 0,
            wait_known_epoch: 0,
            wait_spread: [0; QUEUE_SLOTS],
            queues: [QueueSlot::EMPTY; QUEUE_SLOTS],
            next_queue_slot: 0,
            seen: [[0; 2]; SEEN_CACHE],
            order_memo: [OrderMemo::EMPTY; ORDER_MEMO],
            class_seen: [[0; 4]; CLASS_SEEN_SETS],
            published: core::ptr::null(),
            last_sent_fd: 0,
            site_stacks: [(0, 0); SITE_STACKS],
            order_stacks: [(0, 0); SITE_STACKS],
            event_loop: false,
            condvar_gens: [(0, 0, 0); CONDVAR_GENS],
            class_ops: [(0, 0); CLASS_OPS],
            syncs: 0,
            parent: (0, 0),
            created_stack: 0,
            start_recorded: false,
            refused: (0, 0),
            condvar_mutexes: [(0, 0, 0); CONDVAR_GENS],
            held: [core::mem::MaybeUninit::uninit(); MAX_HELD],
            held_extra: [core::mem::MaybeUninit::uninit(); MAX_HELD],
        }
    }

    /// The phase this thread's facts are in: facts before and after a
    /// `pthread_create` or `pthread_join` are told apart.
    #[inline(always)]
    pub fn phase(&self) -> u32 {
        self.syncs.min(holdcheck_format::PHASES - 1)
    }

    pub fn tid(&mut self) -> u32 {
        if self.tid == 0 {
            self.tid = crate::sys::gettid();
        }
        self.tid
    }

    #[inline(always)]
    pub fn held(&self) -> &[HeldEntry] {
        // SAFETY: the entries below `held_len` were written by push_held.
        unsafe { core::slice::from_raw_parts(self.held.as_ptr().cast(), self.held_len) }
    }

    /// Writes `entry` just above the held stack, not held yet: readers
    /// of the stack (this thread's hooks, the watchdog) stop at
    /// `held_len`. Returns false when the stack is full. A hook stages
    /// its entry before the real call so that it keeps nothing across it
    /// (each register saved for that is a store). Only a lock taken by a
    /// signal handler in that call could overwrite it, and a handler's
    /// hooked calls pass straight through (`hooks::signal`); a handler
    /// installed by a raw system call is not wrapped, and one that took a
    /// pthread lock there (not async-signal-safe) would leave its own
    /// lock's entry in place of the interrupted one (as it would see the
    /// single-threaded path's entry a moment early: `Parked::unentered`).
    #[inline(always)]
    pub fn stage_held(&mut self, entry: HeldEntry) -> bool {
        let Some(slot) = self.held.get_mut(self.held_len) else {
            return false;
        };
        entry.store_to(slot.as_mut_ptr());
        true
    }

    /// The entry [`Self::stage_held`] wrote (which returned true).
    #[inline(always)]
    pub fn staged(&self) -> HeldEntry {
        // SAFETY: written by stage_held, below MAX_HELD; three words read
        // as such (see `HeldEntry::store_to`).
        unsafe {
            let w = self
                .held
                .as_ptr()
                .add(self.held_len)
                .cast::<[u64; 3]>()
                .read();
            core::mem::transmute::<[u64; 3], HeldEntry>(w)
        }
    }

    /// The staged entry is held from now.
    #[inline(always)]
    pub fn hold_staged(&mut self) {
        self.held_len += 1;
    }

    /// Records a lock as held at `n`, the stack's length, which the caller
    /// found below [`MAX_HELD`] (read once: the stores of a lock's try in
    /// between would make the compiler read it again). Nothing is written
    /// past the stack, whatever `n`.
    #[inline(always)]
    pub fn push_at(&mut self, n: usize, entry: HeldEntry) {
        if let Some(slot) = self.held.get_mut(n) {
            entry.store_to(slot.as_mut_ptr());
            self.held_len = n + 1;
        }
    }

    /// Records a lock as held. Returns false when the stack is full.
    #[inline(always)]
    pub fn push_held(&mut self, entry: HeldEntry) -> bool {
        let n = self.held_len;
        // One test for both the full stack and the bounds check.
        let Some(slot) = self.held.get_mut(n) else {
            self.overflowed = true;
            return false;
        };
        entry.store_to(slot.as_mut_ptr());
        self.held_len = n + 1;
        true
    }

    /// Gives every held entry whose class is not known yet the one `class`
    /// finds for its lock (0 if none).
    pub fn fill_held_classes(&mut self, class: impl Fn(usize) -> u32) {
        let n = self.held_len.min(MAX_HELD);
        for slot in &mut self.held[..n] {
            // SAFETY: below held_len.
            let e = unsafe { slot.assume_init_mut() };
            if e.class == 0 {
                e.class = class(e.addr);
            }
        }
    }

    /// The index of the innermost entry for `addr` (usually the top).
    #[inline(always)]
    fn find_held(&self, addr: usize) -> Option<usize> {
        let mut i = self.held_len.min(MAX_HELD);
        while i > 0 {
            i -= 1;
            // SAFETY: below held_len.
            if unsafe { self.held[i].assume_init_ref() }.addr == addr {
                return Some(i);
            }
        }
        None
    }

    /// Removes entry `i` (and its extra, when extras are on).
    #[inline(always)]
    fn remove_held(&mut self, i: usize) {
        if i + 1 < self.held_len {
            self.shift_held(i);
        }
        self.held_len -= 1;
    }

    /// Moves the entries above `i` down by one (an unlock out of order).
    #[cold]
    #[inline(never)]
    fn shift_held(&mut self, i: usize) {
        let n = self.held_len;
        self.held.copy_within(i + 1..n, i);
        if crate::config::extras() != 0 {
            self.held_extra.copy_within(i + 1..n, i);
        }
    }

    /// Removes the top entry if it is `addr` (the usual unlock); says
    /// whether it did. Only while extras are off ([`crate::config::plainly_on`]):
    /// it leaves the entry's extra behind.
    #[inline(always)]
    pub fn pop_top(&mut self, addr: usize) -> bool {
        let n = self.held_len;
        // SAFETY: below held_len.
        let hit = n.wrapping_sub(1) < MAX_HELD
            && unsafe { self.held[n - 1].assume_init_ref() }.addr == addr;
        if hit {
            self.held_len = n - 1;
        }
        hit
    }

    /// Removes the innermost entry for `addr`, with its extra.
    pub fn take_held(&mut self, addr: usize) -> Option<(HeldEntry, HeldExtra)> {
        let i = self.find_held(addr)?;
        let got = (self.held()[i], self.extra(i));
        self.remove_held(i);
        Some(got)
    }

    /// Removes the innermost entry for `addr`: None if there was none,
    /// else its extra (all zero when extras are off).
    #[inline(always)]
    pub fn release_held(&mut self, addr: usize) -> Option<HeldExtra> {
        let i = self.find_held(addr)?;
        let x = self.extra(i);
        self.remove_held(i);
        Some(x)
    }

    /// The extra of entry `i` (all zero when extras are off).
    #[inline(always)]
    pub fn extra(&self, i: usize) -> HeldExtra {
        if crate::config::extras() == 0 || i >= self.held_len.min(MAX_HELD) {
            return HeldExtra::default();
        }
        // SAFETY: below held_len with extras on: written by set_top_extra.
        unsafe { self.held_extra[i].assume_init() }
    }

    /// Sets the extra of the top entry (extras on).
    pub fn set_top_extra(&mut self, x: HeldExtra) {
        if self.held_len > 0 {
            self.held_extra[self.held_len - 1] = core::mem::MaybeUninit::new(x);
        }
    }

    /// The generation of the condition variable or semaphore at `addr`
    /// (cached while no object a thread cached is made or destroyed, so a
    /// signal in a loop does not take the lock table's lock).
    pub fn object_gen(&mut self, addr: usize) -> u32 {
        let epoch = crate::locks::object_epoch();
        let slot = &mut self.condvar_gens[(addr >> 6) % CONDVAR_GENS];
        if slot.0 != addr || slot.1 != epoch {
            *slot = (addr, epoch, looked_up_gen(addr));
        }
        slot.2
    }

    /// Whether this thread made an operation on a queue (in this process:
    /// a fork child starts with none).
    #[inline(always)]
    pub fn used_queues(&self) -> bool {
        self.queues_used
    }

    /// Remembers a blocking acquisition for queue dependencies. The same
    /// acquisition as the latest one (lock, site, mode, class and flags),
    /// with no queue operation since, is not noted again: the ring's
    /// readers take the distinct locks of a range, and no range can begin
    /// between the two. A steady loop over one lock then stores nothing
    /// here (each store drains before the lock's atomic).
    #[inline(always)]
    pub fn note_recent(&mut self, entry: HeldEntry) {
        let seq = self.recent_seq;
        let top = &self.recent[(seq as usize).wrapping_sub(1) & (RECENT - 1)];
        // Before the first acquisition the slot read is empty (address 0).
        if top.same_as(entry) && self.recent_read != seq {
            return;
        }
        entry.store_to(&mut self.recent[(seq as usize) & (RECENT - 1)]);
        self.recent_seq = seq + 1;
    }

    /// The ring position now, as a queue operation takes it (the start of
    /// its next range): an acquisition after it is always noted.
    #[inline(always)]
    pub fn recent_now(&mut self) -> u64 {
        self.recent_read = self.recent_seq;
        self.recent_seq
    }

    /// Whether a fact key was already recorded by this thread, without
    /// marking it.
    pub fn seen_peek(&self, key: u64) -> bool {
        self.seen[set_of(key, SEEN_CACHE)].contains(&key)
    }

    /// Whether a fact key was already recorded by this thread; marks it seen.
    #[inline]
    pub fn seen_before(&mut self, key: u64) -> bool {
        let set = &mut self.seen[set_of(key, SEEN_CACHE)];
        if set.contains(&key) {
            return true;
        }
        *set = [key, set[0]];
        false
    }

    /// Whether a lock-order fact by class has all its samples (see
    /// [`Self::class_full`]).
    #[inline]
    pub fn class_seen(&self, key: u64) -> bool {
        self.class_seen[set_of(key, CLASS_SEEN_SETS)].contains(&key)
    }

    /// The trace keeps no more samples of this lock-order fact by class.
    pub fn class_full(&mut self, key: u64) {
        let set = &mut self.class_seen[set_of(key, CLASS_SEEN_SETS)];
        if !set.contains(&key) {
            set.rotate_right(1);
            set[0] = key;
        }
    }

    /// Finds or claims the queue slot of a channel key. Returns the slot and
    /// the ring position of the previous operation on it (None the first
    /// time).
    pub fn queue_interval(&mut self, key: u64) -> (usize, Option<u64>) {
        let now = self.recent_now();
        for (i, slot) in self.queues.iter_mut().enumerate() {
            if slot.key == key {
                let since = slot.seq;
                slot.seq = now;
                return (i, Some(since));
            }
        }
        let i = self.next_queue_slot;
        self.next_queue_slot = (i + 1) % QUEUE_SLOTS;
        self.queues_used = true;
        // What was known of waits on or between it was of another queue.
        self.wait_known &= !(0x0101_0101 << i | 0xff << (8 * i));
        self.queues[i] = QueueSlot {
            key,
            seq: now,
            ..QueueSlot::EMPTY
        };
        (i, None)
    }

    /// The interval of an operation on an object of class `ck` (see
    /// `facts::object_class_key`) whose own queue slot gave `since`: that,
    /// or else the ring position of this thread's previous operation on an
    /// object of the class (None if it made none, or forgot it).
    pub fn class_interval(&mut self, ck: u64, since: Option<u64>) -> Option<u64> {
        let now = self.recent_now();
        let e = &mut self.class_ops[(ck as usize >> 3) % CLASS_OPS];
        let prev = (e.0 == ck).then_some(e.1);
        *e = (ck, now);
        since.or(prev)
    }

    /// Notes a blocking call on queue `packed` (descriptor `fd`, 1-based)
    /// in every other queue this thread uses on another descriptor: a wait
    /// between two of their operations.
    pub fn note_wait_on(&mut self, slot: usize, fd: i32, w: Waited) {
        if self.event_loop {
            return;
        }
        for (i, q) in self.queues.iter_mut().enumerate() {
            if i != slot && q.waits_for_call_on(fd) {
                q.note_waited(w);
            }
        }
    }

    /// [`Self::note_wait_on`] for the fast path: a call made again on
    /// queue slot `slot` with nothing new, noted as a bit in each slot it
    /// would be written to.
    #[inline(always)]
    pub fn note_wait_fast(&mut self, slot: usize) {
        if !self.event_loop {
            self.wait_pending |= self.wait_spread[slot];
        }
    }

    /// The waits noted as bits, written to the slots' `waits_after` as
    /// [`Self::note_wait_on`] would have written them, less those known to
    /// be recorded (`waits_after` holds two: a third, new, must not be
    /// crowded out by known ones). Called before anything reads or changes
    /// the slots (a slot's identity is what its bit names).
    pub fn materialize_waits(&mut self, epoch: u64) {
        let mut pending = core::mem::take(&mut self.wait_pending);
        if self.wait_known_epoch == epoch {
            pending &= !self.wait_known;
        }
        if pending == 0 {
            return;
        }
        for i in 0..QUEUE_SLOTS {
            let bits = (pending >> (8 * i)) as u8;
            for j in (0..QUEUE_SLOTS).filter(|j| bits & (1 << j) != 0) {
                if let Some(w) = self.waited_of(j) {
                    self.queues[i].note_waited(w);
                }
            }
        }
    }

    /// The wait a call made again on slot `j` is (None if the slot has no
    /// such call).
    pub fn waited_of(&self, j: usize) -> Option<Waited> {
        let q = &self.queues[j];
        let a = q.again?;
        if q.chan_id == 0 {
            return None;
        }
        Some(Waited {
            packed: Waited::pack(q.chan_id, a.dir),
            gen: if a.fd < 0 { a.stamp.0 } else { 0 },
            stack: q.stack,
        })
    }

    /// Makes [`Self::wait_spread`] again from the slots' keys and
    /// descriptors.
    pub fn refresh_wait_spread(&mut self) {
        for s in 0..QUEUE_SLOTS {
            let fd = self.queues[s].fd;
            let mut m = 0u32;
            for (i, q) in self.queues.iter().enumerate() {
                if i != s && q.waits_for_call_on(fd) {
                    m |= 1 << (8 * i);
                }
            }
            self.wait_spread[s] = m << s;
        }
    }

    /// The acquisitions made since ring position `since` (at most RECENT).
    pub fn recent_range(&self, since: u64) -> core::ops::Range<u64> {
        since.max(self.recent_seq.saturating_sub(RECENT as u64))..self.recent_seq
    }

    /// A signal or post made now, under the held locks: their latest
    /// recent acquisitions are marked as announcing.
    pub fn note_announce(&mut self) {
        for i in 0..self.held_len.min(MAX_HELD) {
            // SAFETY: below held_len.
            let addr = unsafe { self.held[i].assume_init_ref() }.addr;
            if let Some(seq) = self
                .recent_range(0)
                .rev()
                .find(|&q| self.recent_at(q).addr == addr)
            {
                self.recent[(seq as usize) & (RECENT - 1)].announced = true;
            }
        }
    }

    /// The acquisition at ring position `seq` (one of [`Self::recent_range`]).
    pub fn recent_at(&self, seq: u64) -> HeldEntry {
        self.recent[(seq as usize) & (RECENT - 1)]
    }

    /// In a fork child: the forking thread lives on with a new tid, and
    /// registers anew with the child's watchdog; its channel ids pointed
    /// into the parent's table, which the child starts afresh.
    pub fn after_fork_child(&mut self) {
        self.tid = crate::sys::gettid();
        self.seen = [[0; 2]; SEEN_CACHE];
        self.order_memo = [OrderMemo::EMPTY; ORDER_MEMO];
        self.class_seen = [[0; 4]; CLASS_SEEN_SETS];
        self.published = core::ptr::null();
        self.queues = [QueueSlot::EMPTY; QUEUE_SLOTS];
        self.queues_used = false;
        self.wait_pending = 0;
        self.wait_known = 0;
        self.wait_spread = [0; QUEUE_SLOTS];
        // Stack ids name records of the parent's trace.
        self.site_stacks = [(0, 0); SITE_STACKS];
        self.order_stacks = [(0, 0); SITE_STACKS];
        // Generations of the parent's lock table.
        self.condvar_gens = [(0, 0, 0); CONDVAR_GENS];
        self.class_ops = [(0, 0); CLASS_OPS];
        // The first thread of a new process: no creator in it, no phases.
        self.syncs = 0;
        self.parent = (0, 0);
        self.created_stack = 0;
        self.start_recorded = false;
        self.refused = (0, 0);
        self.condvar_mutexes = [(0, 0, 0); CONDVAR_GENS];
    }
}

// Static TLS holds one word per thread: a pointer to the thread's state
// (allocated from the shim's heap on the thread's first hooked call), or
// NONE / PASS. glibc carves static TLS out of every thread's stack, so a
// 16 KiB-stack thread must not lose kilobytes of it to the shim.
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".balign 8",
    ".globl holdcheck_thread_word",
    ".hidden holdcheck_thread_word",
    ".type holdcheck_thread_word, @object",
    ".size holdcheck_thread_word, 8",
    "holdcheck_thread_word:",
    ".zero 8",
    ".popsection",
);

/// The thread has no state yet.
const NONE: usize = 0;
/// Every hook passes through on this thread: it is exiting, its state is
/// being made, or it belongs to the shim (the watchdog).
const PASS: usize = 1;

/// This thread's TLS word, by the initial-exec TLS sequence.
#[inline(always)]
fn word() -> *mut usize {
    let p: *mut usize;
    // SAFETY: reads the thread pointer and the GOT entry of a TLS symbol of
    // this object; the result is this thread's copy of it.
    unsafe {
        core::arch::asm!(
            "mov {p}, qword ptr fs:0",
            "add {p}, qword ptr [rip + holdcheck_thread_word@GOTTPOFF]",
            p = out(reg) p,
            options(pure, readonly, nostack),
        );
    }
    p
}

/// This thread's TLS word's value: [`word`] read in one instruction less
/// (the hooks' fast path reads it on every call).
#[inline(always)]
fn load_word() -> usize {
    let w: usize;
    // SAFETY: as in `word`; reads this thread's copy.
    unsafe {
        core::arch::asm!(
            "mov {w}, qword ptr [rip + holdcheck_thread_word@GOTTPOFF]",
            "mov {w}, qword ptr fs:[{w}]",
            w = out(reg) w,
            options(pure, readonly, nostack),
        );
    }
    w
}

/// This thread's state, or None while the shim itself is running on it (a
/// reentrant call) or when recording is off. The caller must clear `busy`
/// with [`leave`] before making the real call.
#[inline(always)]
pub fn enter() -> Option<&'static mut ThreadState> {
    if !crate::config::active() {
        return None;
    }
    enter_active()
}

/// [`enter`] once the caller saw the shim active.
#[inline(always)]
pub fn enter_active() -> Option<&'static mut ThreadState> {
    let w = load_word();
    if w <= PASS {
        return first_enter(w);
    }
    // SAFETY: a state block owned by this thread until it exits; `busy`
    // keeps reentrant calls (the shim's own, a signal handler's) from
    // aliasing it.
    let st = unsafe { &mut *(w as *mut ThreadState) };
    if st.busy {
        return None;
    }
    st.busy = true;
    Some(st)
}

/// The generation of the object at `addr` from the lock table (whose lock
/// may make a system call: `errno` is saved here, not by the signal hooks).
#[cold]
#[inline(never)]
fn looked_up_gen(addr: usize) -> u32 {
    let _errno = crate::sys::ErrnoGuard::save();
    crate::locks::object_gen(addr)
}

/// [`enter_active`] without entering: the state of a thread the shim is
/// not busy on, to enter with [`reenter`] after a real call, as a hook that
/// only pushes what the call acquired does (one busy store pair fewer).
/// Makes no call, so that the hook's fast path saves no register first.
#[inline(always)]
pub fn peek_active() -> Peek {
    let w = load_word();
    if w <= PASS {
        // A thread's first call (its block is made by `enter`), or one
        // the shim does not track.
        return if w == NONE { Peek::New } else { Peek::Busy };
    }
    let st = w as *mut ThreadState;
    // SAFETY: this thread's block (as in `enter_active`), read only.
    if unsafe { (*st).busy } {
        return Peek::Busy;
    }
    Peek::Ready(Parked(st))
}

/// The state [`peek_active`] found ready, found again by a function the
/// hook called or after the real call: passed or kept, it would take a
/// seventh argument register or a saved one (a store).
///
/// # Safety
/// [`peek_active`] returned [`Peek::Ready`] on this thread in this hook,
/// and the state is not entered now.
#[inline(always)]
pub unsafe fn parked() -> Parked {
    Parked(load_word() as *mut ThreadState)
}

/// What [`peek_active`] found.
pub enum Peek {
    Ready(Parked),
    /// The shim runs on this thread (or never tracks it): pass through.
    Busy,
    /// The thread has no state yet: [`enter`] makes it.
    New,
}

/// A thread's first hooked call: its state block, from the pool of exited
/// threads' blocks or new from the shim's heap (never the program's malloc).
#[cold]
#[inline(never)]
fn first_enter(w: usize) -> Option<&'static mut ThreadState> {
    if w != NONE {
        return None;
    }
    // SAFETY: this thread's word. Hooks called while the block is made (a
    // signal handler's) pass through.
    unsafe { *word() = PASS };
    let reused = POOL.lock().pop();
    let st: *mut ThreadState = match reused {
        Some(p) => {
            // SAFETY: an exited thread's block, no longer referenced; all
            // zero bytes is a fresh state (tested below), and entries of
            // the held stack past `held_len` are never read.
            unsafe { core::ptr::write_bytes(p as *mut u8, 0, CLEARED) };
            p as *mut ThreadState
        }
        None => {
            let layout = std::alloc::Layout::new::<ThreadState>();
            // SAFETY: a non-zero-sized layout.
            let p = unsafe { std::alloc::alloc(layout) };
            if p.is_null() {
                return None; // stays PASS: this thread is not tracked
            }
            // SAFETY: a new block of the layout's size; as above.
            unsafe { core::ptr::write_bytes(p, 0, CLEARED) };
            p as *mut ThreadState
        }
    };
    // SAFETY: the key exists (made at start-up); the destructor gets the
    // block back when the thread exits.
    unsafe { libc::pthread_setspecific(exit_key(), st as *const libc::c_void) };
    // SAFETY: this thread's word; the block is this thread's.
    unsafe {
        *word() = st as usize;
        (*st).busy = true;
        // Known from the start: the lock hooks write it into a normal
        // mutex they take (`locks::mutex_trylock`).
        (*st).tid = crate::sys::gettid();
        Some(&mut *st)
    }
}

/// Blocks of exited threads, for the next new thread.
static POOL: crate::sync::ForkMutex<Vec<usize>> = crate::sync::ForkMutex::new(Vec::new());

static EXIT_KEY: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(u32::MAX);

/// The pthread key whose destructor takes a thread's block back. Made in
/// the constructor, so that it is one of the first keys (glibc keeps keys
/// 0-31 without allocating in `pthread_setspecific`).
pub fn exit_key() -> libc::pthread_key_t {
    use core::sync::atomic::Ordering;
    let k = EXIT_KEY.load(Ordering::Acquire);
    if k != u32::MAX {
        return k;
    }
    let mut k: libc::pthread_key_t = 0;
    // SAFETY: k is a valid out-parameter; the destructor is a plain fn.
    if unsafe { libc::pthread_key_create(&mut k, Some(on_thread_exit)) } != 0 {
        return 0;
    }
    match EXIT_KEY.compare_exchange(u32::MAX, k, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => k,
        Err(other) => {
            // SAFETY: k was made here and never used.
            unsafe { libc::pthread_key_delete(k) };
            other
        }
    }
}

/// A thread exits: the watchdog forgets it, later hooks of its exit pass
/// through, and its block goes back to the pool.
extern "C" fn on_thread_exit(p: *mut libc::c_void) {
    // SAFETY: the block this thread registered under the key.
    let st = unsafe { &mut *(p as *mut ThreadState) };
    if !st.busy && crate::config::active() {
        st.busy = true;
        if st.held_len > 0 {
            crate::facts::exited_holding(st);
        }
        crate::facts::thread_ending(st);
        if !st.published.is_null() {
            // SAFETY: set by `live::published` to a leaked record.
            crate::facts::flush_tallies(unsafe { &*st.published });
        }
        st.busy = false;
    }
    crate::live::unpublish(st);
    // SAFETY: this thread's word.
    unsafe { *word() = PASS };
    POOL.lock().push(p as usize);
}

#[inline(always)]
pub fn leave(st: &mut ThreadState) {
    st.busy = false;
}

/// A thread's state found ready by [`peek_active`] and not entered: the
/// lock hooks enter it with [`reenter`] after the real call.
pub struct Parked(*mut ThreadState);

impl Parked {
    /// The state, not entered (`busy` left clear), for a hook's few
    /// stores to its held stack between which it makes no call. Nothing
    /// else runs on this thread meanwhile but a signal handler, whose
    /// hooked calls pass straight through (`hooks::signal`): the flag
    /// would guard nothing there, and costs two stores per call. (A
    /// handler installed by a raw system call is not wrapped; one that
    /// locked in that window would make a call POSIX does not allow in a
    /// handler.)
    #[inline(always)]
    pub fn unentered(&self) -> &'static mut ThreadState {
        // SAFETY: this thread's block, as in `reenter`; not entered, so no
        // other reference to it is live on this thread.
        unsafe { &mut *self.0 }
    }

    /// The thread's kernel tid, which its state learns when it is made
    /// (and again in a fork child).
    #[inline(always)]
    pub fn tid(&self) -> u32 {
        // SAFETY: this thread's block, as in `reenter`.
        unsafe { (*self.0).tid }
    }

    /// How many locks the thread holds (its shim not busy, nothing else
    /// writes it meanwhile but a signal handler, which leaves it as it was).
    #[inline(always)]
    pub fn held_len(&self) -> usize {
        // SAFETY: this thread's block, as in `reenter`.
        unsafe { (*self.0).held_len }
    }
}

/// A state found by [`peek_active`], entered after a real call. Any signal
/// handler that ran in the call entered and left it again (or jumped out
/// of the hook's frame, which then never comes here); if the shim went
/// off meanwhile, what the hook writes is its own thread's state only.
#[inline(always)]
pub fn reenter(p: Parked) -> &'static mut ThreadState {
    // SAFETY: this thread's block, which lives until the thread exits; not
    // busy, as above, so no other reference to it is live.
    let st = unsafe { &mut *p.0 };
    st.busy = true;
    st
}

/// This thread's state if it has one, whatever `busy` says (fork handlers).
pub fn current() -> Option<&'static mut ThreadState> {
    let w = load_word();
    // SAFETY: as in `enter`; only used where no other shim code runs on
    // this thread.
    (w > PASS).then(|| unsafe { &mut *(w as *mut ThreadState) })
}

/// Runs `f` with every hook of this thread passing through (a signal
/// handler of the program, the fork handlers of other libraries).
pub fn passing_through<R>(f: impl FnOnce() -> R) -> R {
    let saved = begin_pass_through();
    let r = f();
    end_pass_through(saved);
    r
}

/// Makes this thread's hooks pass through; returns what to restore.
pub fn begin_pass_through() -> (usize, bool) {
    let w = load_word();
    match current() {
        Some(st) => {
            let was = st.busy;
            st.busy = true;
            (w, was)
        }
        None => {
            // SAFETY: this thread's word.
            unsafe { *word() = PASS };
            (w, false)
        }
    }
}

pub fn end_pass_through((w, was): (usize, bool)) {
    if w > PASS {
        // SAFETY: the block the word pointed at when this began; a thread
        // does not exit in between.
        unsafe { (*(w as *mut ThreadState)).busy = was };
    } else {
        // SAFETY: this thread's word.
        unsafe { *word() = w };
    }
}

/// This thread belongs to the shim: its calls pass through for good.
pub fn pass_through_forever() {
    // SAFETY: this thread's word (a thread of the shim has no block).
    unsafe { *word() = PASS };
}

/// In a fork child: the other threads' blocks are gone with their threads
/// (leaked), and the pool starts empty.
///
/// # Safety
/// Only in a fork child (see `sync::ForkMutex::reset`).
pub unsafe fn after_fork_child() {
    POOL.reset(Vec::new());
    if let Some(st) = current() {
        st.after_fork_child();
    }
}

/// Mixes values into a fact key (shared with the analyzer's identities).
pub use holdcheck_format::mix;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zero_bytes_as_tbss_gives_them_decode_as_a_fresh_state() {
        // SAFETY: every field of ThreadState is an integer, bool, raw
        // pointer or fieldless enum whose first variant is 0: this checks it.
        let z: ThreadState = unsafe { core::mem::zeroed() };
        let fresh = ThreadState::new();
        let same = |a: &HeldEntry, b: &HeldEntry| {
            a.addr == b.addr && a.mode == b.mode && a.kind == b.kind && a.site == b.site
        };
        assert!(z
            .recent
            .iter()
            .zip(fresh.recent.iter())
            .all(|(a, b)| same(a, b)));
        assert_eq!(
            (
                z.busy,
                z.tid,
                z.held_len,
                z.overflowed,
                z.queues_used,
                z.recent_seq,
                z.next_queue_slot,
                z.last_sent_fd,
                z.event_loop
            ),
            (
                fresh.busy,
                fresh.tid,
                fresh.held_len,
                fresh.overflowed,
                fresh.queues_used,
                fresh.recent_seq,
                fresh.next_queue_slot,
                fresh.last_sent_fd,
                fresh.event_loop
            )
        );
        assert!(z.published.is_null());
        assert!(z.queues.iter().all(|q| q.key == 0
            && q.seq == 0
            && q.stack == 0
            && q.chan_id == 0
            && q.fd == 0
            && q.waits_after == [Waited::NONE; WAITS_AFTER]
            && q.taken == [(0, 0); TAKEN_MEMO]
            && q.taken_epoch == 0));
        assert!(z.seen.iter().flatten().all(|&k| k == 0));
        assert!(z.order_memo == [OrderMemo::EMPTY; ORDER_MEMO]);
        assert!(z.site_stacks.iter().all(|&(a, b)| a == 0 && b == 0));
        assert!(z.order_stacks.iter().all(|&(a, b)| a == 0 && b == 0));
    }

    #[test]
    fn the_state_is_per_thread_and_made_on_first_use() {
        crate::config::force_active_for_tests();
        let st = enter().expect("a state");
        st.tid = 7;
        leave(st);
        let (other, kernel) = std::thread::spawn(|| {
            let st = enter().expect("a state");
            let tid = st.tid;
            leave(st);
            (tid, crate::sys::gettid())
        })
        .join()
        .unwrap();
        // Its own, known from its state's start (a normal mutex's owner).
        assert_eq!(other, kernel);
        let st = enter().expect("the same state");
        assert_eq!(st.tid, 7);
        assert!(enter().is_none(), "a reentrant call passes through");
        leave(st);
    }

    #[test]
    fn pop_takes_the_innermost_entry_of_an_address() {
        let mut st = ThreadState::new();
        for (addr, site) in [(1, 10), (2, 20), (1, 30)] {
            st.push_held(HeldEntry {
                addr,
                mode: Mode::Write,
                kind: LockKind::Mutex,
                retaken: false,
                announced: false,
                class: 0,
                site,
            });
        }
        assert_eq!(st.take_held(1).unwrap().0.site, 30);
        assert_eq!(
            st.held().iter().map(|e| e.site).collect::<Vec<_>>(),
            [10, 20]
        );
        assert_eq!(st.take_held(1).unwrap().0.site, 10);
        assert_eq!(st.held().iter().map(|e| e.site).collect::<Vec<_>>(), [20]);
        assert!(st.take_held(9).is_none());
    }

    #[test]
    fn a_lock_taken_again_with_no_queue_operation_between_is_noted_once() {
        let mut st = ThreadState::new();
        let a = HeldEntry::new(1, LockKind::Mutex, Mode::Write, 10);
        let b = HeldEntry::new(2, LockKind::Mutex, Mode::Write, 20);
        let addrs = |st: &ThreadState, since| {
            st.recent_range(since)
                .map(|q| st.recent_at(q).addr)
                .collect::<Vec<_>>()
        };
        st.note_recent(a);
        st.note_recent(a);
        assert_eq!(addrs(&st, 0), [1]);
        // A queue operation begins a range: the same lock after it is in it.
        let since = st.recent_now();
        st.note_recent(a);
        assert_eq!(addrs(&st, since), [1]);
        st.note_recent(b);
        st.note_recent(a);
        assert_eq!(addrs(&st, 0), [1, 1, 2, 1]);
        // Announced under it (a signal): taken again, it is not.
        st.push_held(a);
        st.note_announce();
        assert!(st.recent_at(3).announced);
        st.note_recent(a);
        assert_eq!(addrs(&st, 0), [1, 1, 2, 1, 1]);
        assert!(!st.recent_at(4).announced);
        // Another site or mode is another acquisition.
        st.note_recent(HeldEntry::new(1, LockKind::Mutex, Mode::Read, 10));
        st.note_recent(HeldEntry::new(1, LockKind::Mutex, Mode::Write, 11));
        assert_eq!(st.recent_seq, 7);
    }

    /// Four queue slots as a thread using two socket pairs has them: 1-based
    /// descriptors 4, 5, 6, 6 (slots 2 and 3 send and receive on one socket).
    fn four_queues() -> Box<ThreadState> {
        let mut st = Box::new(ThreadState::new());
        for (i, fd) in [4, 5, 6, 6].into_iter().enumerate() {
            st.queues[i] = QueueSlot {
                key: 1 + i as u64,
                chan_id: 11 + i as u32,
                fd,
                stack: 100 + i as u64,
                again: Some(Again {
                    fd: fd - 1,
                    dir: if i % 2 == 0 {
                        holdcheck_format::Direction::Send
                    } else {
                        holdcheck_format::Direction::Recv
                    },
                    call: 0x1000,
                    stamp: (1, 1),
                }),
                ..QueueSlot::EMPTY
            };
        }
        st.refresh_wait_spread();
        st
    }

    fn waits(st: &ThreadState, slot: usize) -> Vec<Waited> {
        let mut w: Vec<Waited> = st.queues[slot]
            .waits_after
            .iter()
            .copied()
            .filter(|w| w.packed != 0)
            .collect();
        w.sort_by_key(|w| w.packed);
        w
    }

    #[test]
    fn waits_noted_as_bits_are_written_as_each_call_would_have_written_them() {
        let (mut eager, mut bits) = (four_queues(), four_queues());
        for j in [1, 2] {
            let w = eager.waited_of(j).expect("a call made again");
            let fd = eager.queues[j].fd;
            eager.note_wait_on(j, fd, w);
            bits.note_wait_fast(j);
        }
        bits.materialize_waits(1);
        assert_eq!(bits.wait_pending, 0);
        for slot in 0..QUEUE_SLOTS {
            assert_eq!(waits(&bits, slot), waits(&eager, slot), "slot {slot}");
        }
        // Slot 0 waited on 1 and 2; 3 on 1 only (2 is its own socket).
        assert_eq!(
            waits(&bits, 0),
            [
                Waited {
                    packed: 12 << 1 | 1,
                    gen: 0,
                    stack: 101
                },
                Waited {
                    packed: 13 << 1,
                    gen: 0,
                    stack: 102
                }
            ]
        );
        assert_eq!(waits(&bits, 3).len(), 1);

        // An event loop's calls follow readiness: no wait noted.
        let mut looping = four_queues();
        looping.event_loop = true;
        looping.note_wait_fast(1);
        assert_eq!(looping.wait_pending, 0);
    }

    #[test]
    fn a_wait_known_to_be_recorded_leaves_room_for_a_new_one() {
        // Slot 0 waited on 1, 2 and 3 since its last call; the wait on 1
        // is a recorded fact. The two others fit in its two places.
        let mut st = four_queues();
        for j in [1, 2, 3] {
            st.note_wait_fast(j);
        }
        st.wait_known = 1 << 1;
        st.wait_known_epoch = 5;
        let pending = st.wait_pending;
        st.materialize_waits(5);
        let packed: Vec<u32> = waits(&st, 0).iter().map(|w| w.packed).collect();
        assert_eq!(packed, [13 << 1, 14 << 1 | 1]);
        // In another lock epoch, nothing is known: the first two are kept.
        let mut st = four_queues();
        st.wait_pending = pending;
        st.wait_known = 1 << 1;
        st.wait_known_epoch = 5;
        st.materialize_waits(6);
        let packed: Vec<u32> = waits(&st, 0).iter().map(|w| w.packed).collect();
        assert_eq!(packed, [12 << 1 | 1, 13 << 1]);
        // A slot claimed anew forgets what was known of it.
        let mut st = four_queues();
        st.wait_known = 0x0707_0707;
        st.next_queue_slot = 1;
        st.queue_interval(99);
        assert_eq!(st.wait_known, 0x0505_0005);
    }

    #[test]
    fn a_staged_entry_is_held_only_once_it_is_made_so() {
        let mut st = ThreadState::new();
        let a = HeldEntry::new(1, LockKind::Mutex, Mode::Write, 10);
        let b = HeldEntry::new(2, LockKind::Rwlock, Mode::Read, 20);
        st.push_held(a);
        assert!(st.stage_held(b));
        assert_eq!(st.held().len(), 1, "staged, not held");
        assert!(st.staged().same_as(b));
        st.hold_staged();
        assert_eq!(st.held().iter().map(|e| e.addr).collect::<Vec<_>>(), [1, 2]);
        st.held_len = MAX_HELD;
        assert!(!st.stage_held(b), "no room above a full stack");
    }

    #[test]
    fn odd_keys_use_every_set_and_a_few_dozen_full_class_facts_all_stay() {
        let mut st = ThreadState::new();
        // Keys are odd: they must still spread over all the sets.
        let sets: std::collections::BTreeSet<usize> = (0..1024u64)
            .map(|k| set_of(k << 1 | 1, SEEN_CACHE))
            .collect();
        assert_eq!(sets.len(), SEEN_CACHE);
        // Four full class facts in one set, as a steady loop's keys may be:
        // none evicts another.
        let keys: Vec<u64> = (0..4u64)
            .map(|i| (i * CLASS_SEEN_SETS as u64 + 5) << 1 | 1)
            .collect();
        assert!(keys.iter().all(|&k| set_of(k, CLASS_SEEN_SETS) == 5));
        for &k in &keys {
            st.class_full(k);
        }
        for _ in 0..3 {
            for &k in &keys {
                assert!(st.class_seen(k));
                st.class_full(k);
            }
        }
        // A fifth evicts the oldest only.
        let fifth = (4 * CLASS_SEEN_SETS as u64 + 5) << 1 | 1;
        st.class_full(fifth);
        assert!(st.class_seen(fifth) && !st.class_seen(keys[0]));
        assert!(keys[1..].iter().all(|&k| st.class_seen(k)));
    }
}
