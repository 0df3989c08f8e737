//! Per-thread state: the held-lock stack, the recent-acquisitions ring that
//! queue dependencies are built from, and a cache of facts already recorded.
//!
//! It lives in static TLS (initial-exec model, zero-filled `.tbss`, no
//! destructor), so the fast path reaches it in two instructions: no
//! `__tls_get_addr` call, no allocation, nothing to run at thread exit.
//! Rust's `thread_local!` in a shared object uses the general-dynamic model
//! (a call per access), which cost more than the whole budget of a lock pair.
//! Initial-exec TLS is sound for a library loaded at start-up by
//! `LD_PRELOAD`; `dlopen`ing the shim later is not supported.

use holdcheck_format::{LockKind, Mode};

/// Deepest held-lock stack tracked; deeper acquisitions are passed through
/// and the trace says the analysis is partial.
pub const MAX_HELD: usize = 64;
/// Lock acquisitions remembered for queue dependencies (a power of two).
pub const RECENT: usize = 16;
/// Channels a thread's queue dependencies are tracked on at once.
pub const QUEUE_SLOTS: usize = 4;
/// Waits on other queues remembered per queue between two operations on it.
pub const WAITS_AFTER: usize = 2;
/// Direct-mapped cache of fact keys this thread already recorded.
pub const SEEN_CACHE: usize = 256;
/// Direct-mapped cache of the stacks of contended acquisitions, by call site.
pub const SITE_STACKS: usize = 32;
/// Direct-mapped cache of condition variables' generations.
pub const CONDVAR_GENS: usize = 8;

#[derive(Clone, Copy, Debug)]
pub struct HeldEntry {
    pub addr: usize,
    pub mode: Mode,
    pub kind: LockKind,
    pub site: usize,
}

#[cfg(test)]
impl HeldEntry {
    const EMPTY: HeldEntry = HeldEntry {
        addr: 0,
        mode: Mode::Write,
        kind: LockKind::Mutex,
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
    /// operation on this one: (packed queue, stack of that call), where
    /// packed is `(1 + channel id) << 1 | receiving`.
    pub waits_after: [(u32, u64); WAITS_AFTER],
}

impl QueueSlot {
    const EMPTY: QueueSlot = QueueSlot {
        key: 0,
        seq: 0,
        stack: 0,
        chan_id: 0,
        fd: 0,
        waits_after: [(0, 0); WAITS_AFTER],
    };
}

pub struct ThreadState {
    /// Set while the shim itself runs on this thread: interposed calls made
    /// by the shim (or a signal handler interrupting it) pass straight through.
    pub busy: bool,
    pub tid: u32,
    pub held: [HeldEntry; MAX_HELD],
    pub held_len: usize,
    /// Set when the held stack overflowed (reported once).
    pub overflowed: bool,
    pub recent: [HeldEntry; RECENT],
    pub recent_seq: u64,
    pub queues: [QueueSlot; QUEUE_SLOTS],
    pub next_queue_slot: usize,
    pub seen: [u64; SEEN_CACHE],
    /// This thread's record for the watchdog (null until its first wait).
    pub published: *const crate::live::Published,
    /// Set by the thread-exit destructor: never register again.
    pub exited: bool,
    /// 1 + the socket this thread last sent on (0: none): a receive on it
    /// waits for a reply.
    pub last_sent_fd: i32,
    /// (call site, stack id) of contended acquisitions already unwound.
    pub site_stacks: [(usize, u64); SITE_STACKS],
    /// (sites key, stack id) of lock-order facts already unwound: striped
    /// locks (an array of them, one taken per item) make a new fact per
    /// instance at the same code, which reuses the stack.
    pub order_stacks: [(u64, u64); SITE_STACKS],
    /// Set once a poll/select/epoll_wait of this thread reported readiness:
    /// an event loop's reads and writes follow readiness, so they are not
    /// waits that order its queues.
    pub event_loop: bool,
    /// (address, epoch, generation) of condition variables this thread
    /// used: valid while the epoch is (no lock or condition variable was
    /// initialised or destroyed since), so a signal in a loop does not take
    /// the lock table's lock.
    pub condvar_gens: [(usize, u64, u32); CONDVAR_GENS],
}

impl ThreadState {
    /// The state of a new thread: what `.tbss` holds, all zero bytes.
    #[cfg(test)]
    const fn new() -> Self {
        ThreadState {
            busy: false,
            tid: 0,
            held: [HeldEntry::EMPTY; MAX_HELD],
            held_len: 0,
            overflowed: false,
            recent: [HeldEntry::EMPTY; RECENT],
            recent_seq: 0,
            queues: [QueueSlot::EMPTY; QUEUE_SLOTS],
            next_queue_slot: 0,
            seen: [0; SEEN_CACHE],
            published: core::ptr::null(),
            exited: false,
            last_sent_fd: 0,
            site_stacks: [(0, 0); SITE_STACKS],
            order_stacks: [(0, 0); SITE_STACKS],
            event_loop: false,
            condvar_gens: [(0, 0, 0); CONDVAR_GENS],
        }
    }

    pub fn tid(&mut self) -> u32 {
        if self.tid == 0 {
            self.tid = crate::sys::gettid();
        }
        self.tid
    }

    pub fn held(&self) -> &[HeldEntry] {
        &self.held[..self.held_len]
    }

    /// Records a lock as held. Returns false when the stack is full.
    #[inline(always)]
    pub fn push_held(&mut self, entry: HeldEntry) -> bool {
        if self.held_len == MAX_HELD {
            self.overflowed = true;
            return false;
        }
        self.held[self.held_len] = entry;
        self.held_len += 1;
        true
    }

    /// Removes the innermost entry for `addr`; returns it if there was one.
    #[inline(always)]
    pub fn pop_held(&mut self, addr: usize) -> Option<HeldEntry> {
        let mut i = self.held_len;
        while i > 0 {
            i -= 1;
            if self.held[i].addr == addr {
                let e = self.held[i];
                // Usually the top: nothing to shift (and no memmove call).
                for j in i..self.held_len - 1 {
                    self.held[j] = self.held[j + 1];
                }
                self.held_len -= 1;
                return Some(e);
            }
        }
        None
    }

    /// Remembers a blocking acquisition for queue dependencies.
    #[inline(always)]
    pub fn note_recent(&mut self, entry: HeldEntry) {
        self.recent[(self.recent_seq as usize) & (RECENT - 1)] = entry;
        self.recent_seq += 1;
    }

    /// Whether a fact key was already recorded by this thread; marks it seen.
    pub fn seen_before(&mut self, key: u64) -> bool {
        let slot = &mut self.seen[(key as usize) % SEEN_CACHE];
        if *slot == key {
            return true;
        }
        *slot = key;
        false
    }

    /// Finds or claims the queue slot of a channel key. Returns the slot and
    /// the ring position of the previous operation on it (None the first
    /// time).
    pub fn queue_interval(&mut self, key: u64) -> (usize, Option<u64>) {
        let now = self.recent_seq;
        for (i, slot) in self.queues.iter_mut().enumerate() {
            if slot.key == key {
                let since = slot.seq;
                slot.seq = now;
                return (i, Some(since));
            }
        }
        let i = self.next_queue_slot;
        self.next_queue_slot = (i + 1) % QUEUE_SLOTS;
        self.queues[i] = QueueSlot {
            key,
            seq: now,
            ..QueueSlot::EMPTY
        };
        (i, None)
    }

    /// Notes a blocking call on queue `packed` (descriptor `fd`, 1-based)
    /// in every other queue this thread uses on another descriptor: a wait
    /// between two of their operations.
    pub fn note_wait_on(&mut self, slot: usize, fd: i32, packed: u32, stack: u64) {
        if self.event_loop {
            return;
        }
        for (i, q) in self.queues.iter_mut().enumerate() {
            if i == slot || q.key == 0 || q.fd == fd {
                continue;
            }
            if q.waits_after.iter().any(|w| w.0 == packed) {
                continue;
            }
            if let Some(free) = q.waits_after.iter_mut().find(|w| w.0 == 0) {
                *free = (packed, stack);
            }
        }
    }

    /// The acquisitions made since ring position `since` (at most RECENT).
    pub fn recent_range(&self, since: u64) -> core::ops::Range<u64> {
        since.max(self.recent_seq.saturating_sub(RECENT as u64))..self.recent_seq
    }

    /// The acquisition at ring position `seq` (one of [`Self::recent_range`]).
    pub fn recent_at(&self, seq: u64) -> HeldEntry {
        self.recent[(seq as usize) & (RECENT - 1)]
    }

    /// In a fork child: the forking thread lives on with a new tid, and
    /// registers anew with the child's watchdog; its channel ids pointed
    /// into the parent's table, which the child starts afresh.
    pub fn after_fork_child(&mut self) {
        self.tid = 0;
        self.seen = [0; SEEN_CACHE];
        self.published = core::ptr::null();
        self.queues = [QueueSlot::EMPTY; QUEUE_SLOTS];
        // Stack ids name records of the parent's trace.
        self.site_stacks = [(0, 0); SITE_STACKS];
        self.order_stacks = [(0, 0); SITE_STACKS];
        // Generations of the parent's lock table.
        self.condvar_gens = [(0, 0, 0); CONDVAR_GENS];
    }
}

// The per-thread state: `.tbss` (zero-filled per thread by the loader).
// ThreadState::new() is all zero bytes (checked by a test).
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".balign 64",
    ".globl holdcheck_thread_state",
    ".hidden holdcheck_thread_state",
    ".type holdcheck_thread_state, @object",
    ".size holdcheck_thread_state, {size}",
    "holdcheck_thread_state:",
    ".zero {size}",
    ".popsection",
    size = const core::mem::size_of::<ThreadState>(),
);

/// This thread's state, by the initial-exec TLS sequence.
#[inline(always)]
fn state_ptr() -> *mut ThreadState {
    let p: *mut ThreadState;
    // SAFETY: reads the thread pointer and the GOT entry of a TLS symbol of
    // this object; the result is this thread's copy of it.
    unsafe {
        core::arch::asm!(
            "mov {p}, qword ptr fs:0",
            "add {p}, qword ptr [rip + holdcheck_thread_state@GOTTPOFF]",
            p = out(reg) p,
            options(pure, readonly, nostack),
        );
    }
    p
}

/// This thread's state, or None while the shim itself is running on it (a
/// reentrant call) or when recording is off. The caller must clear `busy`
/// with [`leave`] before making the real call.
#[inline(always)]
pub fn enter() -> Option<&'static mut ThreadState> {
    if !crate::config::active() {
        return None;
    }
    // SAFETY: the state is only touched by its own thread, and `busy` keeps
    // reentrant calls (the shim's own, a signal handler's) from aliasing it.
    let st = unsafe { &mut *state_ptr() };
    if st.busy {
        return None;
    }
    st.busy = true;
    Some(st)
}

#[inline(always)]
pub fn leave(st: &mut ThreadState) {
    st.busy = false;
}

/// Runs `f` on this thread's state whatever `busy` says (fork handlers).
pub fn with_state_unchecked<R>(f: impl FnOnce(&mut ThreadState) -> R) -> R {
    // SAFETY: only used where no other shim code runs on this thread.
    f(unsafe { &mut *state_ptr() })
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
            .held
            .iter()
            .zip(fresh.held.iter())
            .all(|(a, b)| same(a, b)));
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
                z.recent_seq,
                z.next_queue_slot,
                z.exited,
                z.last_sent_fd,
                z.event_loop
            ),
            (
                fresh.busy,
                fresh.tid,
                fresh.held_len,
                fresh.overflowed,
                fresh.recent_seq,
                fresh.next_queue_slot,
                fresh.exited,
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
            && q.waits_after == [(0, 0); WAITS_AFTER]));
        assert!(z.seen.iter().all(|&k| k == 0));
        assert!(z.site_stacks.iter().all(|&(a, b)| a == 0 && b == 0));
        assert!(z.order_stacks.iter().all(|&(a, b)| a == 0 && b == 0));
    }

    #[test]
    fn the_tls_state_is_per_thread() {
        with_state_unchecked(|s| s.tid = 7);
        let other = std::thread::spawn(|| with_state_unchecked(|s| s.tid))
            .join()
            .unwrap();
        assert_eq!(other, 0);
        assert_eq!(with_state_unchecked(|s| s.tid), 7);
    }

    #[test]
    fn pop_takes_the_innermost_entry_of_an_address() {
        let mut st = ThreadState::new();
        for (addr, site) in [(1, 10), (2, 20), (1, 30)] {
            st.push_held(HeldEntry {
                addr,
                mode: Mode::Write,
                kind: LockKind::Mutex,
                site,
            });
        }
        assert_eq!(st.pop_held(1).unwrap().site, 30);
        assert_eq!(
            st.held().iter().map(|e| e.site).collect::<Vec<_>>(),
            [10, 20]
        );
        assert_eq!(st.pop_held(1).unwrap().site, 10);
        assert_eq!(st.held().iter().map(|e| e.site).collect::<Vec<_>>(), [20]);
        assert!(st.pop_held(9).is_none());
    }
}
