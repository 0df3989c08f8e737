//! Published thread state, read by the watchdog.
//!
//! A thread publishes only when it is about to block (a contended lock, a
//! blocking-capable call): what it waits on and since when. Its held locks
//! are read by the watchdog straight from its thread state. The uncontended
//! fast path publishes nothing.
//!
//! A socket or pipe call made with no lock held is the exception: its wait stays
//! published after the call returns (see [`Published::wait_call`]), and
//! the watchdog believes it only while the thread is in that system call.
//!
//! A thread registers on its first wait. When it exits, `thread`'s key
//! destructor takes it out of the registry before its state block is
//! reused, under the registry lock that the watchdog holds while it reads,
//! so the watchdog never reads another thread's state as this one's.

use crate::sync::ForkMutex;
use crate::thread::ThreadState;
use crate::Fixed;
use core::sync::atomic::{
    AtomicBool, AtomicI32, AtomicPtr, AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering,
};
use holdcheck_format::{Channel, Direction, LockKind, Mode};
use smallvec::SmallVec;
use std::collections::HashMap;

pub const WAIT_NONE: u8 = 0;
pub const WAIT_LOCK: u8 = 1;
pub const WAIT_CALL: u8 = 2;

/// In `call_bits`: awaiting a reply; left published after the call.
pub const CALL_REPLY: u8 = 2;
pub const CALL_DEFERRED: u8 = 4;

/// What one thread shows the watchdog. Written only by its thread.
///
/// A wait's fields come first, on one cache line of their own: a blocking
/// call writes them right after a system call has left the caches cold,
/// and each line it touches then costs (see BENCHMARKS.md).
#[repr(C, align(64))]
pub struct Published {
    /// When the current wait began (monotonic ns); written last, so a reader
    /// that sees the same value before and after its reads saw one wait.
    pub since: AtomicU64,
    pub call_ptr: AtomicUsize,
    pub call_len: AtomicUsize,
    pub stack: AtomicU64,
    pub lock: AtomicUsize,
    pub channel: AtomicU32,
    pub wait: AtomicU8,
    /// bit 0: receiving; bit 1: awaiting a reply; bit 2: left published
    /// after the call (see [`Published::wait_call`]).
    pub call_bits: AtomicU8,
    /// bit 0: read mode; bits 1-2: mutex 0, rwlock 1, file lock 2.
    pub lock_bits: AtomicU8,
    pub in_use: AtomicBool,
    pub tid: AtomicU32,
    /// The descriptor of the call waited in (-1: none).
    pub fd: AtomicI32,
    pub state: AtomicPtr<ThreadState>,
    /// Calls under locks this thread counts (`facts::tally`): here, where
    /// the watchdog and the exit of the process find them.
    pub tallies: [Tally; TALLIES],
}

/// Tallies per thread: a steady loop of locked calls uses one or two.
pub const TALLIES: usize = 4;

/// One held-across-call fact's calls, counted by its thread without a
/// lock; what the recorder has of them is given under the recorder's lock,
/// by the thread or by the watchdog (so a process killed in a hang has its
/// counts on disk).
#[derive(Default)]
pub struct Tally {
    /// The fact's key (0: none). Changed by its thread, under the recorder.
    pub key: AtomicU64,
    /// Calls since `key` was set, and the longest. Written by its thread only.
    pub count: AtomicU64,
    pub max_ns: AtomicU64,
    /// What the recorder has of them. Written under the recorder's lock.
    pub given: AtomicU64,
    pub given_max: AtomicU64,
}

impl Published {
    fn new() -> Self {
        Published {
            in_use: AtomicBool::new(true),
            tid: AtomicU32::new(0),
            fd: AtomicI32::new(-1),
            state: AtomicPtr::new(core::ptr::null_mut()),
            wait: AtomicU8::new(WAIT_NONE),
            since: AtomicU64::new(0),
            lock: AtomicUsize::new(0),
            lock_bits: AtomicU8::new(0),
            call_ptr: AtomicUsize::new(0),
            call_len: AtomicUsize::new(0),
            channel: AtomicU32::new(0),
            call_bits: AtomicU8::new(0),
            stack: AtomicU64::new(0),
            tallies: Default::default(),
        }
    }

    /// Announces a lock wait.
    pub fn wait_lock(&self, addr: usize, kind: LockKind, mode: Mode, stack: u64, now: u64) {
        self.lock.store(addr, Ordering::Relaxed);
        let kind_bits = match kind {
            LockKind::Mutex => 0,
            LockKind::Rwlock => 1,
            LockKind::File => 2,
            LockKind::Spin => 3,
        };
        let bits = (mode == Mode::Read) as u8 | kind_bits << 1;
        self.lock_bits.store(bits, Ordering::Relaxed);
        self.stack.store(stack, Ordering::Relaxed);
        self.wait.store(WAIT_LOCK, Ordering::Relaxed);
        self.since.store(now, Ordering::Release);
    }

    /// Announces a blocking call on a channel (on descriptor `fd`, -1 if
    /// none). A `deferred` wait is not cleared when the call returns: the
    /// hook of a call made with no lock held has nothing else to do
    /// after it, and so ends in a jump to the call (a call and a return,
    /// and the stores after a system call has left the caches cold: a
    /// socket round trip took +205 ns over native with them, +128 without,
    /// medians of 24 runs; see BENCHMARKS.md). The watchdog believes such
    /// a wait only while `/proc` shows the thread in the call's system
    /// call on `fd`.
    #[allow(clippy::too_many_arguments)]
    pub fn wait_call(
        &self,
        call: &'static str,
        channel: u32,
        dir: Direction,
        awaiting_reply: bool,
        stack: u64,
        now: u64,
        fd: i32,
        deferred: bool,
    ) {
        self.call_ptr
            .store(call.as_ptr() as usize, Ordering::Relaxed);
        self.call_len.store(call.len(), Ordering::Relaxed);
        self.channel.store(channel, Ordering::Relaxed);
        self.fd.store(fd, Ordering::Relaxed);
        let bits = (dir == Direction::Recv) as u8
            | if awaiting_reply { CALL_REPLY } else { 0 }
            | if deferred { CALL_DEFERRED } else { 0 };
        self.call_bits.store(bits, Ordering::Relaxed);
        self.stack.store(stack, Ordering::Relaxed);
        self.wait.store(WAIT_CALL, Ordering::Relaxed);
        self.since.store(now, Ordering::Release);
    }

    pub fn done(&self) {
        self.wait.store(WAIT_NONE, Ordering::Relaxed);
        self.since.store(0, Ordering::Release);
    }
}

/// Whether calls may leave their waits published (see
/// [`Published::wait_call`]): set by the watchdog once it has read a
/// thread's system call from `/proc` (without `/proc`, or before the
/// watchdog runs, every wait is cleared when its call returns).
static DEFERRING: AtomicBool = AtomicBool::new(false);

#[inline(always)]
pub fn deferring() -> bool {
    DEFERRING.load(Ordering::Relaxed)
}

pub fn set_deferring(on: bool) {
    DEFERRING.store(on, Ordering::Relaxed);
}

pub static REGISTRY: ForkMutex<Vec<&'static Published>> = ForkMutex::new(Vec::new());

/// Every published record, for what reads their tallies (none if a thread
/// holds the registry: never wait for it).
pub fn all_published() -> Vec<&'static Published> {
    REGISTRY.try_lock().map(|r| r.clone()).unwrap_or_default()
}

/// A thread exits (its state block is about to be reused): the watchdog
/// stops reading it, under the registry lock it reads with.
pub fn unpublish(st: &mut ThreadState) {
    if st.published.is_null() {
        return;
    }
    let _reg = REGISTRY.lock();
    // SAFETY: set by `published` to a leaked, never-freed record.
    let p = unsafe { &*st.published };
    p.done();
    p.state.store(core::ptr::null_mut(), Ordering::Relaxed);
    p.in_use.store(false, Ordering::Release);
    st.published = core::ptr::null();
}

/// This thread's published record, registering it on first use.
#[inline]
pub fn published(st: &mut ThreadState) -> Option<&'static Published> {
    if !st.published.is_null() {
        // SAFETY: set by `register` to a leaked, never-freed record.
        return Some(unsafe { &*st.published });
    }
    register(st)
}

#[cold]
#[inline(never)]
fn register(st: &mut ThreadState) -> Option<&'static Published> {
    let tid = st.tid();
    let p: &'static Published = {
        let mut reg = REGISTRY.lock();
        let free = reg
            .iter()
            .find(|p| !p.in_use.load(Ordering::Acquire))
            .copied();
        let p = match free {
            Some(p) => {
                p.in_use.store(true, Ordering::Relaxed);
                p
            }
            None => {
                let p: &'static Published = Box::leak(Box::new(Published::new()));
                reg.push(p);
                p
            }
        };
        p.done();
        p.tid.store(tid, Ordering::Relaxed);
        p.state.store(st as *mut ThreadState, Ordering::Release);
        p
    };
    st.published = p;
    Some(p)
}

/// A channel the live table knows, and the threads that receive from it
/// and send to it, each once per direction. A channel has few: four are
/// kept in place (a vector per direction was a heap block each, times every
/// semaphore a program has).
pub struct Known {
    pub channel: Channel,
    /// Thread ids, [`SENDS`] set on a sender's.
    users: SmallVec<[u32; 4]>,
}

/// In [`Known::users`]: the thread sends (thread ids are below 2^31).
const SENDS: u32 = 1 << 31;

impl Known {
    fn new(c: &Channel) -> Known {
        Known {
            channel: c.clone(),
            users: SmallVec::new(),
        }
    }

    /// The threads that use it in direction `dir`.
    pub fn users(&self, dir: Direction) -> impl Iterator<Item = u32> + '_ {
        let sends = if dir == Direction::Send { SENDS } else { 0 };
        self.users
            .iter()
            .filter(move |&&u| u & SENDS == sends)
            .map(|&u| u & !SENDS)
    }
}

/// Channels by id. A semaphore or condition variable is known by its
/// address alone (one generation of it lives at a time), in a map of its
/// own with a small key: a program may keep hundreds of thousands of them.
#[derive(Default)]
pub struct Channels {
    /// (pid, address, whether a semaphore) of an object.
    objects: HashMap<(u32, u64, bool), u32, Fixed>,
    others: HashMap<Channel, u32, Fixed>,
    pub list: Vec<Known>,
}

/// A semaphore's or condition variable's key in [`Channels::objects`]:
/// its address, whatever its generation.
fn object_key(c: &Channel) -> Option<(u32, u64, bool)> {
    match *c {
        Channel::Condvar { pid, addr, .. } => Some((pid, addr, false)),
        Channel::Semaphore { pid, addr, .. } => Some((pid, addr, true)),
        _ => None,
    }
}

impl Channels {
    /// The id of a channel (interned). A new generation of a semaphore or
    /// condition variable takes over its address's id, with no users yet:
    /// a program that makes one per wait (Python's `threading.Condition`)
    /// must not grow the table, and the watchdog's every look, with each
    /// wait.
    fn id(&mut self, c: &Channel) -> u32 {
        let Some(key) = object_key(c) else {
            return self.other_id(c);
        };
        let next = self.list.len() as u32;
        let id = *self.objects.entry(key).or_insert(next);
        if id == next {
            self.push(c);
        } else {
            let k = &mut self.list[id as usize];
            if k.channel != *c {
                *k = Known::new(c);
            }
        }
        id
    }

    fn other_id(&mut self, c: &Channel) -> u32 {
        if let Some(&id) = self.others.get(c) {
            return id;
        }
        let id = self.list.len() as u32;
        self.others.insert(c.clone(), id);
        self.push(c);
        id
    }

    fn push(&mut self, c: &Channel) {
        self.list.push(Known::new(c));
    }

    /// `c` and its users, if it is the channel its id names now (a
    /// semaphore's or condition variable's newer generation has its users
    /// of its own).
    pub fn known(&self, c: &Channel) -> Option<&Known> {
        let id = match object_key(c) {
            Some(key) => self.objects.get(&key),
            None => self.others.get(c),
        };
        self.list.get(*id? as usize).filter(|k| k.channel == *c)
    }
}

pub static CHANNELS: ForkMutex<Option<Channels>> = ForkMutex::new(None);

/// The id of a channel (interned; see [`Channels::id`]).
pub fn channel_id(c: &Channel) -> u32 {
    CHANNELS.lock().get_or_insert_with(Channels::default).id(c)
}

/// The channel of an id.
pub fn channel_by_id(id: u32) -> Option<Channel> {
    Some(
        CHANNELS
            .lock()
            .as_ref()?
            .list
            .get(id as usize)?
            .channel
            .clone(),
    )
}

/// Remembers that `tid` uses channel `id` in direction `dir`.
pub fn note_user(id: u32, dir: Direction, tid: u32) {
    let mut g = CHANNELS.lock();
    if let Some(k) = g.as_mut().and_then(|t| t.list.get_mut(id as usize)) {
        let u = tid | if dir == Direction::Send { SENDS } else { 0 };
        if !k.users.contains(&u) {
            k.users.push(u);
        }
    }
}

/// A lock whose owner thread exited holding it (see `facts::exited_holding`).
#[derive(Clone)]
pub struct Orphan {
    pub addr: usize,
    pub kind: LockKind,
    pub mode: Mode,
    pub tid: u32,
    pub name: String,
    pub site: usize,
}

impl Orphan {
    /// Whether the exited thread still owns it (a mutex's `__owner`, a
    /// write-locked rwlock's `__cur_writer`); a read lock records no owner.
    pub fn still_owned(&self) -> bool {
        crate::locks::owned_by(self.addr, self.kind, self.mode, self.tid) == Some(true)
    }
}

/// Locks left held by exited threads remembered for the watchdog, at most.
pub const MAX_ORPHANS: usize = 1024;

/// Locks left held by exited threads, for the watchdog.
pub static ORPHANS: ForkMutex<Vec<Orphan>> = ForkMutex::new(Vec::new());

/// In a fork child: no other thread exists, and the forking thread
/// registers anew (the parent's records are leaked with the old registry).
///
/// # Safety
/// Only in a fork child (see `sync::ForkMutex::reset`).
pub unsafe fn after_fork_child() {
    REGISTRY.reset(Vec::new());
    ORPHANS.reset(Vec::new());
    CHANNELS.reset(None);
}
