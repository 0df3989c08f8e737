//! Turning what a thread does into deduplicated facts (DESIGN.md, "The shim
//! records facts"). Called by the hooks on slow paths only; every function
//! here may take stacks, allocate and write the trace.

use crate::channel;
use crate::config;
use crate::locks;
use crate::recorder::{record_stack, recorder, Prepared};
use crate::sys::ErrnoGuard;
use crate::thread::{
    mix, Again, HeldEntry, OrderMemo, TakenWord, ThreadState, Waited, ORDER_MEMO, QUEUE_SLOTS,
    TAKEN_MEMO,
};
use holdcheck_format::{Channel, Direction, Held, LockKind, LockRef, MisuseKind, Mode, Record};
use std::hash::{Hash, Hasher};

fn mode_bits(m: Mode) -> u64 {
    match m {
        Mode::Write => 1,
        Mode::Read => 2,
    }
}

/// Key of a lock-order fact, as cached per thread: the lock, its mode, the
/// held set, and the lock epoch (a destroyed lock's facts never match).
///
/// The epoch changes whenever any known lock is destroyed or initialised
/// (a program that makes a lock per connection does so all the time), so a
/// per-thread miss only means "look again": the fact's identity in the
/// trace ([`fact_identity`]) is made of lock generations, and a fact seen
/// before under another epoch is neither unwound nor written again.
#[inline(always)]
pub fn lock_order_key(st: &ThreadState, addr: usize, mode: Mode) -> u64 {
    lock_order_key_at(st, addr, mode, locks::epoch())
}

/// [`lock_order_key`] under the lock epoch `epoch`.
#[inline(always)]
fn lock_order_key_at(st: &ThreadState, addr: usize, mode: Mode, epoch: u64) -> u64 {
    // The mode and phase above the address's 48 bits, in one multiply:
    // the multiplies are one chain, and the nested lock waits for it.
    let mut h = mix(epoch, order_lock_word(st, addr, mode));
    for e in st.held() {
        h = mix(h, lock_word(e));
    }
    h | 1
}

/// The acquired lock of a lock-order fact as its key takes it: the
/// address, with the mode and the thread's phase above its 48 bits.
#[inline(always)]
fn order_lock_word(st: &ThreadState, addr: usize, mode: Mode) -> u64 {
    let bits = mode_bits(mode) | (st.phase() as u64) << 8;
    addr as u64 ^ bits << 48
}

/// An acquisition's lock with its mode, as the per-thread fact keys take
/// it (a held lock of a lock-order fact, a lock taken between two
/// operations on a queue, one held across a call or at a thread's end).
#[inline(always)]
fn lock_word(e: &HeldEntry) -> u64 {
    e.addr as u64 ^ mode_bits(e.mode) << 60
}

/// A class as lock-order keys take it: folded to 32 bits, so that a held
/// entry keeps its lock's class in its padding (0: unknown).
fn folded(class: u64) -> u32 {
    if class == 0 {
        return 0;
    }
    ((class ^ class >> 32) as u32).max(1)
}

/// Key of a lock-order fact by lock class (see `locks::class_of`): the
/// acquired lock's class (`own`, folded), mode and site, and the set of the
/// held locks' (class, mode, site); a held lock of the acquired lock's own
/// class also says whether it is below or above it by address, so two
/// buckets taken in address order and against it are two facts.
/// `held_class` gives a held lock's folded class; None when it or `own` is
/// not known.
fn class_key(
    st: &ThreadState,
    addr: usize,
    mode: Mode,
    site: usize,
    own: u32,
    held_class: impl Fn(&HeldEntry) -> u32,
) -> Option<u64> {
    if own == 0 {
        return None;
    }
    // Sorted, so that the same locks held in another order are one fact.
    let mut elems = [0u64; 16];
    let (mut n, mut rest) = (0, 0u64);
    for e in st.held().iter().filter(|e| e.addr != addr) {
        let c = held_class(e);
        if c == 0 {
            return None;
        }
        let order = if c == own {
            1 + (e.addr < addr) as u64
        } else {
            0
        };
        let h = mix(mix(c as u64, e.site as u64), mode_bits(e.mode) | order << 4);
        if n < elems.len() {
            elems[n] = h;
            n += 1;
        } else {
            rest = mix(rest, h);
        }
    }
    elems[..n].sort_unstable();
    let bits = mode_bits(mode) | (st.phase() as u64) << 8;
    let mut k = mix(mix(own as u64, site as u64), bits);
    let mut prev = 0;
    for &h in &elems[..n] {
        if h != prev {
            k = mix(k, h);
            prev = h;
        }
    }
    Some(mix(k, rest) | 1)
}

/// Whether this thread's cache says it recorded "acquired `addr` (mode)
/// while holding the held stack" already: [`lock_order`]'s test, made
/// without marking anything (the state need not be entered).
#[inline(always)]
pub fn lock_order_recorded(st: &mut ThreadState, addr: usize, mode: Mode) -> bool {
    lock_order_recorded_at(st, addr, mode, locks::epoch())
}

/// [`lock_order_recorded`] under the lock epoch `epoch`.
#[inline(always)]
fn lock_order_recorded_at(st: &mut ThreadState, addr: usize, mode: Mode, epoch: u64) -> bool {
    let n = st.held_len;
    if n == 0 || n > ORDER_MEMO {
        return st.seen_peek(lock_order_key_at(st, addr, mode, epoch));
    }
    // The fact found last at this depth, compared whole.
    let mut memo = OrderMemo {
        epoch,
        lock: order_lock_word(st, addr, mode),
        held: [0; ORDER_MEMO],
    };
    for (w, e) in memo.held.iter_mut().zip(st.held()) {
        *w = lock_word(e);
    }
    if st.order_memo[n - 1] == memo {
        return true;
    }
    if !st.seen_peek(lock_order_key_at(st, addr, mode, epoch)) {
        return false;
    }
    st.order_memo[n - 1] = memo;
    true
}

/// Records "acquired `addr` (mode) while holding the held stack", unless
/// this thread already recorded it, or the trace has all the instances it
/// keeps of the same fact by lock class. Called before the real
/// acquisition, so a deadlocking acquisition is on disk before it blocks.
/// Returns the acquired lock's folded class when it was looked up (0
/// otherwise), for its held entry.
#[inline(always)]
pub fn lock_order(
    st: &mut ThreadState,
    addr: usize,
    kind: LockKind,
    mode: Mode,
    site: usize,
) -> u32 {
    let key = lock_order_key(st, addr, mode);
    if st.seen_before(key) {
        return 0;
    }
    lock_order_unseen(st, addr, kind, mode, site)
}

/// [`lock_order`] of an acquisition this thread's cache does not hold: out
/// of line, so that the hooks' steady path is the key and one probe.
#[inline(never)]
fn lock_order_unseen(
    st: &mut ThreadState,
    addr: usize,
    kind: LockKind,
    mode: Mode,
    site: usize,
) -> u32 {
    // The classes of the held locks, looked up once per hold: among
    // thousands of locks each lookup is a cache miss.
    st.fill_held_classes(|a| folded(locks::class_fast(a)));
    let own = folded(locks::class_fast(addr));
    // A lock per object: each new object's lock makes a new fact by
    // instance, the same one by class.
    if class_key(st, addr, mode, site, own, |e| e.class).is_some_and(|k| st.class_seen(k)) {
        return own;
    }
    let _errno = ErrnoGuard::save();
    // A recursive mutex already held by this thread cannot block: no order.
    // SAFETY: addr is the lock being acquired.
    if kind == LockKind::Mutex
        && st.held().iter().any(|e| e.addr == addr)
        && unsafe { locks::props(addr, kind) }.recursive
    {
        // Cached as seen: a new generation of it must be seen anew.
        locks::named(addr);
        return own;
    }
    let tid = st.tid();
    // The classes as the table knows them (and publishes them).
    let own = folded(locks::class_of(addr, site));
    let by_class = class_key(st, addr, mode, site, own, |e| {
        folded(locks::class_of(e.addr, e.site))
    })
    .unwrap_or(1);
    let lock = locks::lock_ref(addr);
    let mut held = held_list(st);
    held.retain(|(h, _)| h.lock.addr != addr as u64);
    let phase = st.phase();
    let identity = fact_identity(
        mode_bits(mode) | (phase as u64) << 8,
        Some(lock),
        held.iter().map(|(h, _)| h),
    );
    let mut locks = Vec::with_capacity(held.len() + 1);
    {
        let mut rec = recorder();
        if !rec.would_write(identity, tid) {
            return own;
        }
        if !rec.class_sample(by_class, tid) {
            drop(rec);
            st.class_full(by_class);
            return own;
        }
        rec.thread_fact(identity, tid);
        let all = core::iter::once((lock, kind)).chain(held.iter().map(|(h, k)| (h.lock, *k)));
        locks.extend(all.map(|(l, k)| (l, k, rec.unwritten(l))));
    }
    // The same acquisition (these locks, at these sites) was unwound
    // before, in another phase or lock epoch: its stack stands for this
    // one too. Not for other locks at the same sites: a wrapper such as
    // transfer(a, b) is called with (a, b) and (b, a) from different code,
    // and each order must show its own callers.
    let sites = st.held().iter().fold(
        mix(mix(site as u64, mode_bits(mode)), addr as u64),
        |h, e| mix(mix(h, e.site as u64), e.addr as u64),
    ) | 1;
    let slot = (sites as usize >> 3) % crate::thread::SITE_STACKS;
    let stack = match st.order_stacks[slot] {
        (k, id) if k == sites && id != 0 => id,
        _ => {
            let id = record_stack(config::get().stack_depth);
            st.order_stacks[slot] = (sites, id);
            id
        }
    };
    let fact = Record::LockOrder {
        tid,
        lock,
        mode,
        try_lock: false,
        held: held.into_iter().map(|(h, _)| h).collect(),
        stack,
        phase,
    };
    // SAFETY: the lock being acquired and the held ones are live.
    let prepared = unsafe { Prepared::new(&fact, &locks) };
    let mut rec = recorder();
    note_thread(&mut rec, st);
    // SAFETY: as above.
    unsafe { rec.write_prepared(&prepared) };
    own
}

/// A lock taken between two operations on a queue: the lock's identity and
/// the fact's key in the trace (the queue, the lock by generation, the site
/// and mode that took it).
fn queue_lock_base(ckey: u64, e: &HeldEntry) -> (LockRef, u64) {
    let lock = locks::lock_ref(e.addr);
    let base = mix(
        mix(ckey, lock.addr ^ (lock.gen as u64) << 48),
        e.site as u64 ^ mode_bits(e.mode) << 40,
    );
    (lock, base)
}

/// Names the thread in the trace, and its start (who made it, where) the
/// first time it is part of a fact: a thread per task that takes part in
/// none costs the trace nothing.
fn note_thread(rec: &mut crate::recorder::Recorder, st: &mut ThreadState) {
    let tid = st.tid();
    rec.thread(tid);
    if !st.start_recorded && st.parent.0 != 0 {
        st.start_recorded = true;
        rec.started(tid, st.parent.0, st.parent.1, st.created_stack);
    }
}

/// A fact's identity in the trace: `base` (what else it is about) with the
/// locks by generation, so it survives epoch changes and a reused address
/// is another fact.
fn fact_identity<'a>(
    base: u64,
    lock: Option<LockRef>,
    held: impl Iterator<Item = &'a Held>,
) -> u64 {
    let mut h = base;
    if let Some(l) = lock {
        h = mix(mix(h, l.addr), l.gen as u64);
    }
    for x in held {
        h = mix(
            mix(h, x.lock.addr ^ mode_bits(x.mode) << 60),
            x.lock.gen as u64 ^ x.site << 8,
        );
    }
    h | 1
}

/// The held stack's entries as the trace names them.
fn held_list(st: &ThreadState) -> Vec<(Held, LockKind)> {
    st.held()
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let stack = st.extra(i).stack;
            let h = Held {
                lock: locks::lock_ref(e.addr),
                mode: e.mode,
                site: e.site as u64,
                stack: (stack != 0).then_some(stack),
            };
            (h, e.kind)
        })
        .collect()
}

/// A channel's key in this thread's queue slots and in fact keys: FxHash,
/// like the other fact keys (SipHash was a quarter of a signal's cost).
fn channel_key(c: &Channel, dir: Direction) -> u64 {
    let mut h = rustc_hash::FxHasher::default();
    c.hash(&mut h);
    dir.hash(&mut h);
    h.finish() | 1
}

/// The generation of a semaphore or condition variable (0 for any other
/// channel).
fn object_gen_of(c: &Channel) -> u32 {
    match *c {
        Channel::Condvar { gen, .. } | Channel::Semaphore { gen, .. } => gen,
        _ => 0,
    }
}

/// `c` as generation `gen` of its object, if it is a semaphore or
/// condition variable (the live table names one by its latest generation).
fn with_object_gen(mut c: Channel, gen: u32) -> Channel {
    if let Channel::Condvar { gen: g, .. } | Channel::Semaphore { gen: g, .. } = &mut c {
        *g = gen;
    }
    c
}

/// The key of a semaphore's or condition variable's channel by the
/// object's class (where it was initialised; see `locks::class_of`), for
/// sampling the facts made on its generations; None for any other channel.
fn object_class_key(c: &Channel, dir: Direction) -> Option<u64> {
    let (family, addr) = match *c {
        Channel::Condvar { pid: 0, addr, .. } => (1, addr as usize),
        Channel::Semaphore { pid: 0, addr, .. } => (2, addr as usize),
        _ => return None,
    };
    // Never initialised through the hooks: its own class.
    let class = match locks::class_fast(addr) {
        0 => locks::class_of(addr, addr),
        c => c,
    };
    Some(mix(mix(class, family), dir as u64 + 1) | 1)
}

/// Whether the trace takes one more instance of the fact `key` by class
/// (claimed if so); one it has all its samples of is remembered by the
/// thread, which then asks no more.
fn class_sample(st: &mut ThreadState, key: u64, tid: u32) -> bool {
    if st.class_seen(key) {
        return false;
    }
    if recorder().class_sample(key, tid) {
        return true;
    }
    st.class_full(key);
    false
}

/// A held or taken lock as a fact by class takes it: its class, its mode
/// and the site that took it. A lock whose class is not published (never
/// nested nor initialised through the hooks, or forgotten by the lock-free
/// map) is looked up, not taken for a class of its own: a lock per request
/// would be a new fact per request, the trace growing with run time (a
/// Node.js server: 13 MB in two minutes). Slow path only: a fact new to the
/// trace.
fn lock_class_part(e: &HeldEntry) -> u64 {
    let class = match locks::class_fast(e.addr) {
        0 => locks::class_of(e.addr, e.site),
        c => c,
    };
    mix(mix(class, e.site as u64), mode_bits(e.mode))
}

/// [`queue_lock_base`] by class: a lock taken between two operations on
/// the channel `ck` (for an object, its class).
fn queue_lock_class_key(ck: u64, e: &HeldEntry) -> u64 {
    mix(mix(ck, 0x71), lock_class_part(e)) | 1
}

/// [`held_call_key`] by class: `call` on the channel `ck` (for an object,
/// its class) under the held locks.
fn held_call_class_key(st: &ThreadState, ck: u64, call: &'static str) -> u64 {
    let h = mix(mix(ck, 0x72), call.as_ptr() as u64);
    st.held().iter().fold(h, |h, e| mix(h, lock_class_part(e))) | 1
}

/// What a blocking-capable call needs to finish its bookkeeping.
pub struct CallCtx {
    /// The held-across-call fact being counted, if locks were held.
    pub fact: u64,
    pub start_ns: u64,
    /// The record the wait was published in, cleared when the call returns.
    pub published: Option<&'static crate::live::Published>,
    /// The slot `holdcheck confirm` marked this call in, if it steers.
    pub steer_slot: Option<usize>,
}

/// Whether an operation can block, and so publishes a wait; and whether
/// that wait stays published after the call returns (see
/// `live::Published::wait_call`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Blocking {
    No,
    Yes,
    Deferred,
}

/// Bookkeeping before a blocking-capable call on `fd`: resolve its channel,
/// record channel use and the queue dependencies closed by this operation,
/// and, if locks are held, the held-across-call fact. Returns None when the
/// call cannot block on another party.
pub fn call_begin(
    st: &mut ThreadState,
    fd: i32,
    dir: Direction,
    call: &'static str,
    dest: channel::Dest,
    blocking: Blocking,
) -> Option<CallCtx> {
    // Calls nothing that may set errno: no guard needed.
    if dest.addr.is_null() {
        if let Some(ctx) = again(st, fd, dir, call, blocking) {
            return Some(ctx);
        }
    }
    call_begin_new(st, fd, dir, call, dest, blocking)
}

/// [`call_begin`] of a call whose wait stays published after it returns
/// ([`Blocking::Deferred`]): nothing is left for after the call. Out of
/// line and returning nothing, so that the hook that calls it keeps no
/// [`CallCtx`] on its stack and can end in a jump to the call.
///
/// No lock is held (the hook defers only then): a call made again has no
/// held-across-call fact, so its fast path publishes the wait and builds
/// no [`CallCtx`].
#[inline(never)]
pub fn call_begin_deferred(
    st: &mut ThreadState,
    fd: i32,
    dir: Direction,
    call: &'static str,
    dest: channel::Dest,
) {
    if dest.addr.is_null() {
        if let Some((slot, _)) = made_again(st, fd, dir, call, false) {
            publish_wait(st, slot, fd, dir, call, true);
            return;
        }
    }
    let _ = call_begin_new(st, fd, dir, call, dest, Blocking::Deferred);
}

/// [`call_begin`] with something that may be new: out of line, so that
/// a call made again saves no registers for it.
#[cold]
#[inline(never)]
fn call_begin_new(
    st: &mut ThreadState,
    fd: i32,
    dir: Direction,
    call: &'static str,
    dest: channel::Dest,
    blocking: Blocking,
) -> Option<CallCtx> {
    let _errno = ErrnoGuard::save();
    let (chan, stamp) = channel::resolve_stamped(fd, dir, dest)?;
    record_new_peers();
    let again = stamp.map(|stamp| Again {
        fd,
        dir,
        call: call.as_ptr() as usize,
        stamp,
    });
    Some(queue_op(st, fd, chan, dir, call, blocking, again))
}

/// A call made again on a descriptor whose channel is cached, by a thread
/// that did nothing new since its previous operation on it (no lock taken
/// since, no wait on another queue not yet recorded, no held lock not
/// yet recorded across this call): a locked call the second time is a
/// published wait and a count, no system call beyond the call itself.
fn again(
    st: &mut ThreadState,
    fd: i32,
    dir: Direction,
    call: &'static str,
    blocking: Blocking,
) -> Option<CallCtx> {
    let (slot, fact) = made_again(st, fd, dir, call, true)?;
    let deferred = blocking == Blocking::Deferred;
    Some(call_ctx(
        fact,
        publish_wait(st, slot, fd, dir, call, deferred),
    ))
}

/// [`again`]'s test: the queue slot of a call made again, with its wait
/// noted, and the held-across-call fact it counts under if `blocking`.
#[inline(always)]
fn made_again(
    st: &mut ThreadState,
    fd: i32,
    dir: Direction,
    call: &'static str,
    blocking: bool,
) -> Option<(usize, u64)> {
    // Published at the first call (registering may allocate).
    if st.published.is_null() {
        return None;
    }
    let this = Again {
        fd,
        dir,
        call: call.as_ptr() as usize,
        stamp: channel::fd_stamp(fd)?,
    };
    let (slot, fact) = nothing_new(st, this, call, blocking)?;
    st.note_wait_fast(slot);
    Some((slot, fact))
}

/// The queue slot of the operation `this` when this thread did nothing new
/// since it last made it (see [`again`]), then brought up to now, and the
/// held-across-call fact a blocking one counts under.
#[inline(always)]
fn nothing_new(
    st: &mut ThreadState,
    this: Again,
    call: &'static str,
    blocking: bool,
) -> Option<(usize, u64)> {
    let slot = st.queues.iter().position(|q| q.again == Some(this))?;
    let q = &st.queues[slot];
    if q.chan_id == 0 {
        return None;
    }
    let (key, since) = (q.key, q.seq);
    let epoch = locks::epoch();
    // Locks taken since the previous operation on it: known ones only.
    if !taken_known(st, slot, key, since, epoch) {
        return None;
    }
    if st.queues[slot]
        .waits_after
        .iter()
        .any(|w| w.packed != 0 && !st.seen_peek(waited_key(key, w.packed, epoch)))
    {
        return None;
    }
    // The same, noted as bits by calls made again: each checked once.
    let pending = (st.wait_pending >> (8 * slot)) as u8;
    if pending != 0 {
        if st.wait_known_epoch != epoch {
            st.wait_known = 0;
            st.wait_known_epoch = epoch;
        }
        let unknown = pending & !((st.wait_known >> (8 * slot)) as u8);
        if unknown != 0 {
            for j in (0..QUEUE_SLOTS).filter(|j| unknown & (1 << j) != 0) {
                let w = st.waited_of(j)?;
                if !st.seen_peek(waited_key(key, w.packed, epoch)) {
                    return None;
                }
            }
            st.wait_known |= (unknown as u32) << (8 * slot);
        }
    }
    let fact = if blocking && st.held_len > 0 {
        let tid = st.tid();
        let fact = held_call_key(st, key, call, epoch, tid);
        if !st.seen_peek(fact) {
            return None;
        }
        fact
    } else {
        0
    };
    // Stores only where something changed: a steady loop writes one word.
    if st.queues[slot].waits_after.iter().any(|w| w.packed != 0) {
        st.queues[slot].waits_after = Default::default();
    }
    st.wait_pending &= !(0xff << (8 * slot));
    st.queues[slot].seq = st.recent_now();
    Some((slot, fact))
}

/// Whether every lock taken since `since` (the previous operation on the
/// queue of `slot`, whose key is `ckey`) is recorded as taken between two
/// of its operations. Each is first compared with the acquisition at its
/// place in the interval the previous time (the same, where a loop takes
/// the same locks); else its fact is looked up in the seen cache, and
/// remembered at its place once found.
#[inline(always)]
fn taken_known(st: &mut ThreadState, slot: usize, ckey: u64, since: u64, epoch: u64) -> bool {
    if st.queues[slot].taken_epoch != epoch {
        st.queues[slot].taken = [(0, 0); TAKEN_MEMO];
        st.queues[slot].taken_epoch = epoch;
    }
    for (place, seq) in st.recent_range(since).enumerate() {
        let e = st.recent_at(seq);
        let word = taken_word(&e);
        if place < TAKEN_MEMO && st.queues[slot].taken[place] == word {
            continue;
        }
        if !st.seen_peek(taken_key(ckey, &e, epoch)) {
            return false;
        }
        if place < TAKEN_MEMO {
            st.queues[slot].taken[place] = word;
        }
    }
    true
}

/// The acquisition `e` as [`taken_key`] tells it from others (its lock,
/// site and mode), exactly.
#[inline(always)]
fn taken_word(e: &HeldEntry) -> TakenWord {
    (e.addr, e.site | (mode_bits(e.mode) as usize) << 62)
}

/// The key of "took the lock of `e` between two operations on the queue
/// `ckey`" in a thread's seen facts.
fn taken_key(ckey: u64, e: &HeldEntry, epoch: u64) -> u64 {
    mix(mix(ckey, lock_word(e)), e.site as u64 ^ epoch) | 1
}

/// The key of "blocked on queue `packed` between two operations on the
/// queue `ckey`" in a thread's seen facts.
fn waited_key(ckey: u64, packed: u32, epoch: u64) -> u64 {
    mix(mix(ckey, packed as u64), epoch) | 1
}

/// The direction of a queue as [`Waited::packed`] has it.
fn packed_dir(packed: u32) -> Direction {
    if packed & 1 == 1 {
        Direction::Recv
    } else {
        Direction::Send
    }
}

/// The trace's key of "blocked on queue `packed` between two operations
/// on the queue `ckey`" (channel ids are the process's own, as the trace).
fn queue_wait_base(ckey: u64, packed: u32) -> u64 {
    mix(ckey, packed as u64)
}

/// The per-thread key of the held-across-call fact of `call` on queue
/// `ckey` under the held locks (each with the site that took it).
fn held_call_key(st: &ThreadState, ckey: u64, call: &'static str, epoch: u64, tid: u32) -> u64 {
    let mut h = mix(mix(ckey, call.as_ptr() as u64), epoch ^ tid as u64);
    for e in st.held() {
        h = mix(h, lock_word(e));
        h = mix(h, e.site as u64);
    }
    h | 1
}

/// Writes the unix socket pairs the channel resolver learnt.
pub fn record_new_peers() {
    for (inode, peer) in channel::take_new_peers() {
        recorder().write(&Record::UnixPeer { inode, peer });
    }
}

/// [`call_begin`] on a channel already resolved; `fd` is the descriptor
/// the call is made on, or -1 (waitpid).
pub fn call_begin_on(
    st: &mut ThreadState,
    fd: i32,
    chan: Channel,
    dir: Direction,
    call: &'static str,
) -> CallCtx {
    queue_op(st, fd, chan, dir, call, Blocking::Yes, None)
}

/// A send that never blocks (`pthread_cond_signal`, `sem_post`) on the
/// object at `addr` (`chan`: its channel, given its generation): its
/// channel use and the queue dependencies it closes (the locks taken since
/// this thread's previous signal), but no held-across-call fact, no
/// published wait. A steady signal (nothing new since the last one) makes
/// no system call and so saves no `errno`.
#[inline(always)]
pub fn nonblocking_send_on(
    st: &mut ThreadState,
    addr: usize,
    chan: impl FnOnce(u32) -> Channel,
    call: &'static str,
) {
    if st.held_len > 0 {
        st.note_announce();
    }
    let gen = st.object_gen(addr);
    if nothing_new(st, signal_again(call, addr, gen), call, false).is_none() {
        send_changed(st, chan, call, addr, gen);
    }
}

/// The [`Again`] of a signal or post on the object at `addr`, generation
/// `gen`: no descriptor, its stamp the object's.
#[inline(always)]
fn signal_again(call: &'static str, addr: usize, gen: u32) -> Again {
    Again {
        fd: -1,
        dir: Direction::Send,
        call: call.as_ptr() as usize,
        stamp: (gen, addr as u64),
    }
}

/// [`nonblocking_send_on`] with something new to record. Its channel and
/// [`Again`] are made here: made by the hook and passed, they are stored
/// on its stack on every path, and a hook whose stack a callee may read
/// cannot end in a tail call.
#[cold]
#[inline(never)]
fn send_changed(
    st: &mut ThreadState,
    chan: impl FnOnce(u32) -> Channel,
    call: &'static str,
    addr: usize,
    gen: u32,
) {
    let chan = chan(gen);
    let _errno = ErrnoGuard::save();
    let again = signal_again(call, addr, gen);
    queue_op(
        st,
        -1,
        chan,
        Direction::Send,
        call,
        Blocking::No,
        Some(again),
    );
}

fn queue_op(
    st: &mut ThreadState,
    fd: i32,
    chan: Channel,
    dir: Direction,
    call: &'static str,
    blocking: Blocking,
    again: Option<Again>,
) -> CallCtx {
    let _errno = ErrnoGuard::save();
    let can_block = blocking != Blocking::No;
    let ckey = channel_key(&chan, dir);
    let tid = st.tid();
    let epoch = locks::epoch();
    // The fast path's waits, where this path reads and changes the slots.
    st.materialize_waits(epoch);

    // A semaphore or condition variable made per object, or per wait as
    // Python's `threading.Condition` does: each generation is a new
    // channel with the same facts. The trace keeps samples of them by the
    // object's class, as it does of lock-order facts by the locks'.
    let class_ckey = object_class_key(&chan, dir);

    // The locks this thread acquired since its previous operation on this
    // queue: a consumer (or producer) waits for them before it can go on.
    // An object made per request is used once: its first operation counts
    // from the thread's previous one on an object of its class.
    let (slot, since) = st.queue_interval(ckey);
    let since = match class_ckey {
        Some(ck) => st.class_interval(ck, since),
        None => since,
    };
    let mut pending: Vec<HeldEntry> = Vec::new();
    if let Some(since) = since {
        // One entry at a time (a copy): seen_before needs the state.
        for seq in st.recent_range(since) {
            let e = st.recent_at(seq);
            if !st.seen_before(taken_key(ckey, &e, epoch))
                && !pending
                    .iter()
                    .any(|p| p.addr == e.addr && p.mode == e.mode && p.site == e.site)
            {
                pending.push(e);
            }
        }
    }
    // No lock in it: no epoch either.
    let use_key = mix(ckey, call.as_ptr() as u64) | 1;
    let mut new_use = !st.seen_before(use_key);
    // The per-thread cache forgets in a steady loop through more keys than
    // it holds: what the trace already has is no new fact, and no reason
    // to unwind a stack.
    if new_use || !pending.is_empty() {
        let rec = recorder();
        new_use = new_use && rec.would_write(use_key, tid);
        pending.retain(|e| rec.would_write(queue_lock_base(ckey, e).1, tid));
    }
    // Users of this generation, for the watchdog, whether or not the trace
    // takes one more sample of them.
    let noted_use = new_use;
    if let Some(ck) = class_ckey {
        if new_use && !class_sample(st, mix(ck, call.as_ptr() as u64) | 1, tid) {
            new_use = false;
        }
    }
    // A lock per request taken between two operations on one queue is a
    // new lock each time, the same fact by its class: sampled by it.
    let by_class = class_ckey.unwrap_or(ckey);
    pending.retain(|e| class_sample(st, queue_lock_class_key(by_class, e), tid));

    let chan_id = match st.queues[slot].chan_id {
        0 => {
            let id = crate::live::channel_id(&chan);
            st.queues[slot].chan_id = id + 1;
            id
        }
        known => known - 1,
    };
    if noted_use {
        crate::live::note_user(chan_id, dir, tid);
    }

    // Blocking calls on other queues since the previous operation on this
    // one: whoever waits on this queue may wait for those.
    let mut waits = core::mem::take(&mut st.queues[slot].waits_after);
    if since.is_none() {
        waits = Default::default();
    }
    for w in waits.iter_mut().filter(|w| w.packed != 0) {
        if st.seen_before(waited_key(ckey, w.packed, epoch)) {
            *w = Waited::NONE;
        }
    }
    // As above: only what the trace lacks is worth a stack.
    if waits.iter().any(|w| w.packed != 0) {
        let rec = recorder();
        for w in waits.iter_mut() {
            if w.packed != 0 && !rec.would_write(queue_wait_base(ckey, w.packed), tid) {
                *w = Waited::NONE;
            }
        }
    }
    // A wait on an object made per request is on a new channel each time:
    // the same fact by the object's class, sampled by it (and by this
    // queue's class). Those left are written, each with its channel as it
    // was waited on.
    let mut waited: Vec<(u32, Channel, Direction, u64)> = Vec::new();
    for w in waits.iter().filter(|w| w.packed != 0) {
        let (p, dir) = (w.packed, packed_dir(w.packed));
        let Some(c) = crate::live::channel_by_id((p >> 1) - 1) else {
            continue;
        };
        let part = object_class_key(&c, dir).unwrap_or(p as u64);
        if class_sample(st, mix(mix(by_class, 0x73), part) | 1, tid) {
            waited.push((p, with_object_gen(c, w.gen), dir, w.stack));
        }
    }
    let packed = Waited::pack(chan_id + 1, dir);
    let prev_stack = st.queues[slot].stack;
    if can_block {
        let gen = object_gen_of(&chan);
        st.note_wait_on(
            slot,
            fd + 1,
            Waited {
                packed,
                gen,
                stack: prev_stack,
            },
        );
    }
    st.queues[slot].fd = fd + 1;

    let new_waits = !waited.is_empty();
    // The held-across-call fact, keyed without a stack: the channel, the
    // call, and each held lock with the site that took it. A repeat (the
    // common case: the same call in a loop under the same lock) is only
    // counted, never unwound again.
    let mut fact = 0;
    let mut new_fact: Option<u64> = None;
    if can_block && st.held_len > 0 {
        fact = held_call_key(st, ckey, call, epoch, tid);
        let sampled =
            |st: &mut ThreadState| class_sample(st, held_call_class_key(st, by_class, call), tid);
        if !st.seen_before(fact) && sampled(st) {
            // Its identity by lock generations: the same fact under
            // another epoch is counted under its first id, not written
            // (nor unwound) again.
            let held: Vec<Held> = held_list(st).into_iter().map(|(h, _)| h).collect();
            let base = fact_identity(mix(ckey, call.as_ptr() as u64), None, held.iter());
            let mut rec = recorder();
            let (id, new) = rec.thread_fact(base, tid);
            rec.alias_fact(fact, id);
            if new {
                new_fact = Some(id);
            }
        }
    }
    if new_use || !pending.is_empty() || new_waits || new_fact.is_some() {
        let stack = record_stack(config::get().stack_depth);
        st.queues[slot].stack = stack;
        if prev_stack == 0 {
            // The first stack of this queue: the waits just noted get it.
            for q in st.queues.iter_mut() {
                for w in q
                    .waits_after
                    .iter_mut()
                    .filter(|w| w.packed == packed && w.stack == 0)
                {
                    w.stack = stack;
                }
            }
        }
        let held: Vec<(Held, LockKind)> = held_list(st);
        let mut rec = recorder();
        note_thread(&mut rec, st);
        // Claimed once per thread, channel and call (the stack is that
        // of the first such use).
        if new_use && rec.thread_fact(use_key, tid).1 {
            rec.write(&Record::ChannelUse {
                tid,
                channel: chan.clone(),
                direction: dir,
                call: call.to_string(),
                stack,
            });
        }
        for e in pending {
            let (lock, base) = queue_lock_base(ckey, &e);
            if !rec.thread_fact(base, tid).1 {
                continue;
            }
            // The lock may be gone by now: its kind is known from the
            // acquisition, its properties only while it lives, so read them
            // only if this thread still holds it.
            if st.held().iter().any(|h| h.addr == e.addr) {
                // SAFETY: held by this thread, hence alive.
                unsafe { rec.lock(lock, e.kind) };
            }
            rec.write(&Record::QueueLock {
                tid,
                channel: chan.clone(),
                direction: dir,
                lock,
                mode: e.mode,
                site: e.site as u64,
                stack,
            });
        }
        for (packed, waited, waited_direction, wstack) in waited {
            if !rec.thread_fact(queue_wait_base(ckey, packed), tid).1 {
                continue;
            }
            rec.write(&Record::QueueWait {
                tid,
                channel: chan.clone(),
                direction: dir,
                waited,
                waited_direction,
                stack: wstack,
            });
        }
        if let Some(id) = new_fact {
            // SAFETY: held by this thread, hence alive.
            unsafe {
                for (x, k) in &held {
                    rec.lock(x.lock, *k);
                }
            }
            rec.write(&Record::HeldAcrossCall {
                id,
                tid,
                held: held.into_iter().map(|(x, _)| x).collect(),
                call: call.to_string(),
                channel: chan,
                direction: dir,
                stack,
            });
        }
    }
    st.queues[slot].again = again;
    st.refresh_wait_spread();
    if !can_block {
        return call_ctx(fact, (0, None));
    }
    let deferred = blocking == Blocking::Deferred;
    call_ctx(fact, publish_wait(st, slot, fd, dir, call, deferred))
}

/// The bookkeeping a blocking call under held locks keeps for its end:
/// the fact it counts under, and its published wait ([`publish_wait`]).
fn call_ctx(
    fact: u64,
    (start_ns, published): (u64, Option<&'static crate::live::Published>),
) -> CallCtx {
    CallCtx {
        fact,
        start_ns,
        published,
        steer_slot: None,
    }
}

/// Publishes a blocking call's wait on the channel of queue slot `slot`
/// (its id known by then): its start and the record it is in.
#[inline(always)]
fn publish_wait(
    st: &mut ThreadState,
    slot: usize,
    fd: i32,
    dir: Direction,
    call: &'static str,
    deferred: bool,
) -> (u64, Option<&'static crate::live::Published>) {
    let chan_id = st.queues[slot].chan_id - 1;
    let now = crate::sys::coarse_ns();
    // A receive on the socket this thread last sent on waits for a reply.
    let awaiting_reply = match dir {
        Direction::Recv => fd >= 0 && st.last_sent_fd == fd + 1,
        Direction::Send => {
            st.last_sent_fd = fd + 1;
            false
        }
    };
    let published = crate::live::published(st);
    if let Some(p) = published {
        p.wait_call(
            call,
            chan_id,
            dir,
            awaiting_reply,
            st.queues[slot].stack,
            now,
            fd,
            deferred,
        );
    }
    (now, published)
}

/// Bookkeeping after the call returned: the wait is over; count the
/// held-across-call. Without the thread's state: only what goes to the
/// recorder enters it (the recorder's lock and writes must pass the hooks
/// untouched), so a call made again ends in a few stores.
#[inline]
pub fn call_end(ctx: CallCtx) {
    if let Some(p) = ctx.published {
        p.done();
    }
    if ctx.fact == 0 {
        return;
    }
    let ns = crate::sys::coarse_ns().saturating_sub(ctx.start_ns);
    if let Some(p) = ctx.published {
        if tally(p, ctx.fact, ns) {
            return;
        }
    }
    tally_given(ctx.published, ctx.fact, ns);
}

/// Calls of one fact a thread counts before the recorder hears of them: a
/// steady locked call takes no global lock. The watchdog gives the rest at
/// each look, and the exits of threads and of the process all of it.
const TALLY_FLUSH: u64 = 64;

/// A call at least this long reaches the recorder at once (it writes a
/// longer maximum as soon as it sees one; a hang must show).
const TALLY_LONG_NS: u64 = 1_000_000;

/// Counts one call of the held-across-call fact `key` in its tally in this
/// thread's record; false if the recorder must hear of it now (no tally
/// has the fact yet, enough calls were counted, or this one was long).
/// Written only by this thread: plain loads and stores (a signal handler's
/// call in between may lose one count, no more).
#[inline]
fn tally(p: &crate::live::Published, key: u64, ns: u64) -> bool {
    use core::sync::atomic::Ordering::Relaxed;
    let Some(t) = tally_of(p, key) else {
        return false;
    };
    let count = t.count.load(Relaxed) + 1;
    t.count.store(count, Relaxed);
    if ns > t.max_ns.load(Relaxed) {
        t.max_ns.store(ns, Relaxed);
    }
    count.saturating_sub(t.given.load(Relaxed)) < TALLY_FLUSH && ns < TALLY_LONG_NS
}

/// The tally of the held-across-call fact `key` in this thread's record.
fn tally_of(p: &crate::live::Published, key: u64) -> Option<&crate::live::Tally> {
    use core::sync::atomic::Ordering::Relaxed;
    p.tallies.iter().find(|t| t.key.load(Relaxed) == key)
}

/// [`tally`] refused: the call's count goes to the recorder, and a fact no
/// tally has takes a free one, else one by its key (a loop of a few locked
/// calls keeps each in its own).
#[cold]
#[inline(never)]
fn tally_given(published: Option<&crate::live::Published>, key: u64, ns: u64) {
    use core::sync::atomic::Ordering::Relaxed;
    let Some(st) = crate::thread::enter() else {
        return;
    };
    let _errno = ErrnoGuard::save();
    let mut rec = recorder();
    match published {
        None => rec.call_stats(key, 1, ns),
        Some(p) => {
            let tallies = &p.tallies;
            if let Some(t) = tally_of(p, key) {
                // Counted by `tally`.
                give(&mut rec, t);
            } else {
                let t = tallies
                    .iter()
                    .find(|t| t.key.load(Relaxed) == 0)
                    .unwrap_or(&tallies[(key as usize >> 4) % crate::live::TALLIES]);
                // The fact it counted before: what the recorder lacks of it.
                give(&mut rec, t);
                t.key.store(key, Relaxed);
                t.count.store(1, Relaxed);
                t.max_ns.store(ns, Relaxed);
                t.given.store(0, Relaxed);
                t.given_max.store(0, Relaxed);
                give(&mut rec, t);
            }
        }
    }
    drop(rec);
    crate::thread::leave(st);
}

/// Gives the recorder what a tally counted since it last did. Under the
/// recorder's lock (`rec`), so no call is given twice.
fn give(rec: &mut crate::recorder::Recorder, t: &crate::live::Tally) {
    use core::sync::atomic::Ordering::Relaxed;
    let key = t.key.load(Relaxed);
    let (count, max_ns) = (t.count.load(Relaxed), t.max_ns.load(Relaxed));
    let (given, given_max) = (t.given.load(Relaxed), t.given_max.load(Relaxed));
    if key != 0 && (count > given || max_ns > given_max) {
        rec.call_stats(key, count.saturating_sub(given), max_ns);
        t.given.store(count.max(given), Relaxed);
        t.given_max.store(max_ns.max(given_max), Relaxed);
    }
}

/// Gives the recorder what the threads of `published` counted (the
/// watchdog at each look, the process at its exit).
pub fn give_tallies(rec: &mut crate::recorder::Recorder, published: &[&crate::live::Published]) {
    for t in published.iter().flat_map(|p| p.tallies.iter()) {
        give(rec, t);
    }
}

/// Gives the recorder what this thread counted (at its exit).
pub fn flush_tallies(p: &crate::live::Published) {
    let _errno = ErrnoGuard::save();
    give_tallies(&mut recorder(), &[p]);
}

/// Says once that a bound was hit (the held stack overflowed).
pub fn partial(reason: &'static str) {
    let _errno = ErrnoGuard::save();
    recorder().partial(reason);
}

/// A thread exits still holding locks: each one that it really still holds
/// (a mutex or write lock whose owner field names it; a read lock, which
/// records no owner, as the held stack says) is recorded, since every later
/// locker will wait for it for ever. File locks are the process's, not the
/// thread's, and stay held rightly; a robust mutex is recovered by its next
/// locker.
pub fn exited_holding(st: &mut ThreadState) {
    let _errno = ErrnoGuard::save();
    let tid = st.tid();
    let mut held: Vec<HeldEntry> = st.held().to_vec();
    held.dedup_by_key(|e| e.addr); // a recursive mutex: once
    for e in held {
        if e.kind == LockKind::File {
            continue;
        }
        let owned = locks::owned_by(e.addr, e.kind, e.mode, tid);
        if owned == Some(false) {
            continue; // released by another thread, or not the owner
        }
        // A robust mutex is made for this: its next locker recovers it.
        if e.kind == LockKind::Mutex && locks::is_robust_mutex(e.addr) {
            continue;
        }
        let lock = locks::lock_ref(e.addr);
        let name = crate::sys::thread_name(None);
        {
            // The newest owner of each lock, a bounded number of locks.
            let mut orphans = crate::live::ORPHANS.lock();
            orphans.retain(|o| o.addr != e.addr);
            if orphans.len() < crate::live::MAX_ORPHANS {
                orphans.push(crate::live::Orphan {
                    addr: e.addr,
                    kind: e.kind,
                    mode: e.mode,
                    tid,
                    name,
                    site: e.site,
                });
            }
        }
        let mut rec = recorder();
        // Like every fact: a few threads per lock and site, not one record
        // per exiting thread.
        let base = mix(
            mix(0xe1, lock.addr ^ (lock.gen as u64) << 48),
            e.site as u64,
        );
        if !rec.thread_fact(base, tid).1 {
            continue;
        }
        rec.thread(tid);
        rec.ensure_modules();
        if owned.is_some() {
            // SAFETY: its owner field was readable and names this thread:
            // the lock is alive.
            unsafe { rec.lock(lock, e.kind) };
        }
        rec.write(&Record::ExitedHolding {
            tid,
            lock,
            kind: e.kind,
            mode: e.mode,
            site: e.site as u64,
        });
    }
}

/// A misuse seen by a hook (see [`holdcheck_format::MisuseKind`]).
pub struct Misuse {
    pub what: MisuseKind,
    pub addr: usize,
    pub kind: LockKind,
    pub condvar: Option<usize>,
    /// cond-two-mutexes: the first mutex and its waiter.
    pub other: Option<(usize, u32)>,
    pub other_stack: Option<u64>,
    pub site: Option<usize>,
    pub held_ns: Option<u64>,
    pub owner: u32,
}

impl Misuse {
    pub fn of(what: MisuseKind, addr: usize, kind: LockKind) -> Misuse {
        Misuse {
            what,
            addr,
            kind,
            condvar: None,
            other: None,
            other_stack: None,
            site: None,
            held_ns: None,
            owner: 0,
        }
    }
}

/// Records a misuse with the stack of the call making it: once per
/// thread, kind, lock (and condition variable, other mutex, acquisition
/// site), so a loop that repeats it writes one record.
pub fn misuse(st: &mut ThreadState, m: Misuse) {
    let _errno = ErrnoGuard::save();
    let key = mix(
        mix(
            mix(0x6d15, m.what as u64 ^ (m.addr as u64) << 8),
            m.condvar.unwrap_or(0) as u64 ^ m.other.map_or(0, |o| o.0 as u64) << 1,
        ),
        mix(m.site.unwrap_or(0) as u64, locks::epoch()),
    ) | 1;
    if st.seen_before(key) {
        return;
    }
    let tid = st.tid();
    let lock = locks::lock_ref(m.addr);
    let condvar = m.condvar.map(locks::lock_ref);
    let other = m.other.map(|(a, _)| locks::lock_ref(a));
    let stack = record_stack(config::get().stack_depth);
    let identity = mix(
        fact_identity(mix(key, stack), Some(lock), std::iter::empty()),
        condvar.map_or(0, |c| c.gen as u64),
    );
    let mut rec = recorder();
    if !rec.thread_fact(identity, tid).1 {
        return;
    }
    rec.thread(tid);
    if m.kind != LockKind::File {
        // SAFETY: the program passed this lock to the call being made.
        unsafe { rec.lock(lock, m.kind) };
    }
    if let (Some(o), Some((addr, _))) = (other, m.other) {
        // The first mutex may be gone since: read only if it is there.
        if crate::sys::read_own_u32(addr + 20).is_some() {
            // SAFETY: readable, and a mutex when it was waited with.
            unsafe { rec.lock(o, LockKind::Mutex) };
        }
    }
    // The other threads it names, while they have a name.
    for t in [m.owner, m.other.map_or(0, |o| o.1)] {
        if t != 0 && t != tid {
            let name = crate::sys::thread_name(Some(t));
            if !name.is_empty() {
                rec.name_thread(t, name);
            }
        }
    }
    rec.write(&Record::Misuse(holdcheck_format::Misuse {
        tid,
        what: m.what,
        lock,
        kind: m.kind,
        stack,
        condvar,
        other,
        other_tid: m.other.map(|o| o.1),
        other_stack: m.other_stack,
        site: m.site.map(|s| s as u64),
        held_ns: m.held_ns,
        owner: (m.owner != 0).then_some(m.owner),
    }));
}

/// Threads that ended lately and the locks each took last, for a join made
/// under a lock (looked up when the join returns): a small ring, as a
/// thread is joined soon after it ends or not at all.
struct Ended {
    next: usize,
    /// ENDED of them, on the heap: a thread on a 16 KiB stack ends here.
    slots: Vec<EndedThread>,
}

#[derive(Clone, Copy)]
struct EndedThread {
    tid: u32,
    handle: libc::pthread_t,
    name: [u8; 16],
    n: u8,
    locks: [HeldEntry; crate::thread::RECENT],
}

const ENDED: usize = 64;

static ENDED_RING: crate::sync::ForkMutex<Option<Box<Ended>>> = crate::sync::ForkMutex::new(None);

/// Thread-end facts written, at most (a thread per task joined under a
/// lock would otherwise grow the trace with every task).
const MAX_END_FACTS: u32 = 4096;
static END_FACTS: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// A thread ends: the distinct locks of its recent acquisitions are kept
/// for whoever joins it.
pub fn thread_ending(st: &mut ThreadState) {
    if st.recent_seq == 0 {
        return;
    }
    let tid = st.tid();
    // The latest acquisition of each lock; not one under which the thread
    // signalled or posted: a thread that says it is done, under the lock,
    // and then ends is joined after that handshake (pigz's `join_all`),
    // not in a cycle with it.
    let mut locks = [st.recent[0]; crate::thread::RECENT];
    let mut n = 0;
    let mut seen = [0usize; crate::thread::RECENT];
    let mut k = 0;
    for seq in st.recent_range(0).rev() {
        let e = st.recent_at(seq);
        if seen[..k].contains(&e.addr) {
            continue;
        }
        seen[k] = e.addr;
        k += 1;
        if !e.announced {
            locks[n] = e;
            n += 1;
        }
    }
    // Its name, for the report: gone with the thread (one system call).
    let mut name = [0u8; 16];
    // SAFETY: PR_GET_NAME writes at most 16 bytes.
    unsafe { libc::prctl(libc::PR_GET_NAME, name.as_mut_ptr()) };
    let ended = EndedThread {
        tid,
        // SAFETY: pthread_self has no preconditions.
        handle: unsafe { libc::pthread_self() },
        name,
        n: n as u8,
        locks,
    };
    let mut blank = ended;
    blank.tid = 0;
    let mut g = ENDED_RING.lock();
    let ring = g.get_or_insert_with(|| {
        Box::new(Ended {
            next: 0,
            slots: vec![blank; ENDED],
        })
    });
    let i = ring.next;
    ring.slots[i] = ended;
    ring.next = (i + 1) % ENDED;
}

/// The thread of a handle whose thread has ended and is not joined yet
/// (the newest one: a handle is reused only after its join).
pub fn ended_thread(handle: libc::pthread_t) -> Option<u32> {
    let g = ENDED_RING.lock();
    let ring = g.as_ref()?;
    (1..=ENDED)
        .map(|k| &ring.slots[(ring.next + ENDED - k) % ENDED])
        .find(|s| s.tid != 0 && s.handle == handle)
        .map(|s| s.tid)
}

/// This thread joined `joined` while holding locks: the locks `joined`
/// took last are what the join waited for (the thread had to take them
/// before it could end), written as its thread-end queue's dependencies.
/// Not a lock this thread holds since a condition wait: that join follows
/// a handshake under the lock (the thread said it was done, under it,
/// and this one waited for that), so the thread's uses of it are over.
pub fn thread_end_locks(st: &mut ThreadState, joined: u32) {
    let found = {
        let mut g = ENDED_RING.lock();
        g.as_mut().and_then(|ring| {
            let slot = ring.slots.iter_mut().find(|s| s.tid == joined)?;
            slot.tid = 0;
            Some(*slot)
        })
    };
    let Some(ended) = found else { return };
    let len = ended.name.iter().position(|&b| b == 0).unwrap_or(16);
    let name = String::from_utf8_lossy(&ended.name[..len]).into_owned();
    let ended = &ended.locks[..ended.n as usize];
    let chan = Channel::Thread {
        pid: 0,
        tid: joined,
    };
    for &e in ended {
        if st.held().iter().any(|h| h.addr == e.addr && h.retaken) {
            continue;
        }
        let key = mix(mix(0x7e4d, joined as u64), lock_word(&e)) | 1;
        if st.seen_before(key) {
            continue;
        }
        if END_FACTS.fetch_add(1, core::sync::atomic::Ordering::Relaxed) >= MAX_END_FACTS {
            partial("thread-end facts capped (4096 joins made under a lock)");
            return;
        }
        let lock = locks::lock_ref(e.addr);
        let mut rec = recorder();
        rec.name_thread(joined, name.clone());
        // The joined thread may have freed the lock: its kind is read only
        // from memory that is still there.
        let end = e.addr + if e.kind == LockKind::Rwlock { 52 } else { 20 };
        if e.kind != LockKind::File && crate::sys::read_own_u32(end).is_some() {
            // SAFETY: readable, and a lock of this kind when it was taken.
            unsafe { rec.lock(lock, e.kind) };
        }
        rec.write(&Record::QueueLock {
            tid: joined,
            channel: chan.clone(),
            direction: Direction::Send,
            lock,
            mode: e.mode,
            site: e.site as u64,
            stack: 0,
        });
    }
}

/// In a fork child: the parent's ended threads are not the child's.
///
/// # Safety
/// Only in a fork child (see `sync::ForkMutex::reset`).
pub unsafe fn after_fork_child() {
    ENDED_RING.reset(None);
    END_FACTS.store(0, core::sync::atomic::Ordering::Relaxed);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(addr: usize, site: usize, mode: Mode) -> HeldEntry {
        HeldEntry::new(addr, LockKind::Mutex, mode, site)
    }

    /// The locks taken between two operations on a queue, compared with
    /// those of the previous interval at their places: the same locks are
    /// known with no lookup; another lock, site or mode at a place is
    /// looked up, and a new lock epoch forgets what was compared.
    #[test]
    fn a_queue_slot_remembers_the_taken_locks_it_found_recorded() {
        let mut st = Box::new(ThreadState::new());
        let (ckey, epoch) = (0x51, 3);
        st.queues[0].key = ckey;
        let (a, b) = (
            entry(0x1000, 0x40_1000, Mode::Write),
            entry(0x2000, 0x40_2000, Mode::Write),
        );
        let interval = |st: &mut ThreadState, es: &[HeldEntry]| {
            let since = st.recent_now();
            for &e in es {
                st.note_recent(e);
            }
            since
        };
        // Nothing recorded: not known, and nothing remembered.
        let since = interval(&mut st, &[a, b]);
        assert!(!taken_known(&mut st, 0, ckey, since, epoch));
        assert_eq!(st.queues[0].taken, [(0, 0); TAKEN_MEMO]);
        // Recorded: known, and remembered at their places.
        st.seen_before(taken_key(ckey, &a, epoch));
        st.seen_before(taken_key(ckey, &b, epoch));
        assert!(taken_known(&mut st, 0, ckey, since, epoch));
        assert_eq!(st.queues[0].taken[..2], [taken_word(&a), taken_word(&b)]);
        // The next interval takes them again: known from the slot alone
        // (the seen cache forgot them).
        st.seen = [[0; 2]; crate::thread::SEEN_CACHE];
        let since = interval(&mut st, &[a, b]);
        assert!(taken_known(&mut st, 0, ckey, since, epoch));
        // Another lock, the same lock read-locked or at another site, at
        // the first place: each a fact of its own, not recorded.
        for other in [
            entry(0x3000, 0x40_1000, Mode::Write),
            entry(0x1000, 0x40_1000, Mode::Read),
            entry(0x1000, 0x40_1008, Mode::Write),
        ] {
            let since = interval(&mut st, &[other, b]);
            assert!(!taken_known(&mut st, 0, ckey, since, epoch));
        }
        // The same locks after a lock was destroyed or made (a new epoch):
        // looked up again under it.
        let since = interval(&mut st, &[a, b]);
        assert!(!taken_known(&mut st, 0, ckey, since, epoch + 1));
        assert_eq!(st.queues[0].taken_epoch, epoch + 1);
        assert_eq!(st.queues[0].taken, [(0, 0); TAKEN_MEMO]);
    }

    /// A nested acquisition's lock-order fact, remembered per depth once
    /// found recorded: the same lock under the same held locks is known
    /// again; another held lock, mode or epoch is looked up.
    #[test]
    fn a_lock_order_found_recorded_is_remembered_whole() {
        let mut st = Box::new(ThreadState::new());
        let (outer, inner, epoch) = (entry(0x1000, 0x40_1000, Mode::Write), 0x2000, 3);
        let recorded = |st: &mut ThreadState, mode| lock_order_recorded_at(st, inner, mode, epoch);
        assert!(st.push_held(outer));
        assert!(!recorded(&mut st, Mode::Write));
        assert_eq!(st.order_memo[0], OrderMemo::EMPTY);
        st.seen_before(lock_order_key_at(&st, inner, Mode::Write, epoch));
        assert!(recorded(&mut st, Mode::Write));
        // Known from the memo alone once the seen cache forgot it.
        st.seen = [[0; 2]; crate::thread::SEEN_CACHE];
        assert!(recorded(&mut st, Mode::Write));
        // Read-locked, or under another outer lock: other facts.
        assert!(!recorded(&mut st, Mode::Read));
        st.take_held(outer.addr);
        assert!(st.push_held(entry(0x3000, 0x40_1000, Mode::Write)));
        assert!(!recorded(&mut st, Mode::Write));
        // Two held: the depth of its own, which the first does not answer.
        assert!(st.push_held(outer));
        assert!(!recorded(&mut st, Mode::Write));
        // Under the first outer lock again, its fact is still remembered;
        // under a new lock epoch it is looked up again.
        st.take_held(outer.addr);
        st.take_held(0x3000);
        assert!(st.push_held(outer));
        assert!(recorded(&mut st, Mode::Write));
        assert!(!lock_order_recorded_at(
            &mut st,
            inner,
            Mode::Write,
            epoch + 1
        ));
    }
}
