//! `pthread_create` and `pthread_join`: the program's first thread starts
//! the watchdog, and every start and join is written down, so the analysis
//! knows which of two threads' lock orders could not overlap (an init phase
//! before the workers start, a thread joined before the next is made).
//!
//! This is the one place where starting a thread is as safe as it is for
//! the program: `pthread_create` allocates (the new thread's TLS) and may
//! need the loader's lock, so it must never run from a hook that a
//! `malloc` (jemalloc locks inside it) or a `dlopen` constructor reached.

use crate::facts::{self, CallCtx};
use crate::real;
use crate::recorder::recorder;
use crate::sys::ErrnoGuard;
use crate::thread;
use core::ffi::{c_int, c_void};
use holdcheck_format::{Channel, Direction};

type P = *mut c_void;

/// What the new thread needs to say who made it, then run its routine.
#[derive(Clone, Copy)]
struct Start {
    start: P,
    arg: P,
    parent: u32,
    seq: u32,
    /// The stack of the `pthread_create` call.
    stack: u64,
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: P,
    arg: P,
) -> c_int {
    crate::watchdog::ensure_started();
    let Some(st) = thread::enter() else {
        return real::pthread_create()(thread, attr, start, arg);
    };
    let parent = st.tid();
    let seq = st.syncs;
    // Where it was made, for the reports: unwound every time (a cache by
    // call site would give every thread a `spawn` helper makes the first
    // one's callers); a thread start costs far more than an unwind.
    let stack = {
        let _errno = crate::sys::ErrnoGuard::save();
        crate::recorder::record_stack(crate::config::get().stack_depth)
    };
    // From the shim's own heap, freed by the new thread.
    let boxed = Box::into_raw(Box::new(Start {
        start,
        arg,
        parent,
        seq,
        stack,
    }));
    thread::leave(st);
    let r = real::pthread_create()(thread, attr, started as P, boxed as P);
    if r != 0 {
        drop(Box::from_raw(boxed));
        return r;
    }
    if let Some(st) = thread::current() {
        st.syncs = st.syncs.saturating_add(1);
    }
    r
}

/// The new thread's first frame: notes who made it (recorded with its
/// first lock-order fact), then runs the program's routine. Nothing with a
/// destructor lives across that call (`pthread_exit` and cancellation
/// unwind through here).
unsafe extern "C-unwind" fn started(p: P) -> P {
    let s = *Box::from_raw(p as *mut Start);
    if let Some(st) = thread::enter() {
        st.parent = (s.parent, s.seq);
        st.created_stack = s.stack;
        thread::leave(st);
    }
    let routine: unsafe extern "C-unwind" fn(P) -> P = core::mem::transmute(s.start);
    routine(s.arg)
}

/// Offset of `tid` in glibc's `struct pthread` (x86_64, 2.36), checked
/// against the calling thread before it is trusted: the kernel writes it
/// before `pthread_create` returns and clears it when the thread ends.
const PTHREAD_TID: usize = 0x2d0;

/// The kernel's id of a joinable thread from its handle, 0 once it ended;
/// None when this glibc lays `struct pthread` out otherwise.
fn handle_tid(st: &mut thread::ThreadState, handle: libc::pthread_t) -> Option<u32> {
    use core::sync::atomic::{AtomicU8, Ordering};
    static LAYOUT: AtomicU8 = AtomicU8::new(0); // 0 unknown, 1 good, 2 bad
    let read = |h: libc::pthread_t| {
        // SAFETY: a handle of a thread not joined yet points at its
        // descriptor, which lives until the join.
        unsafe { core::ptr::read_volatile((h as usize + PTHREAD_TID) as *const u32) }
    };
    if LAYOUT.load(Ordering::Relaxed) == 0 {
        // SAFETY: pthread_self has no preconditions.
        let me = unsafe { libc::pthread_self() };
        let good = read(me) == st.tid();
        LAYOUT.store(if good { 1 } else { 2 }, Ordering::Relaxed);
    }
    (LAYOUT.load(Ordering::Relaxed) == 1).then(|| read(handle))
}

/// The thread a join made under a lock is about to wait for, by its
/// handle, and, for a join that waits for ever, its wait on the thread's
/// end: a lock held across it that the thread needs is a deadlock. A join
/// under no lock waits for no lock (and a thread per task joined so would
/// name a new queue per task): only its phase counts, when it returns.
fn joining(handle: libc::pthread_t, forever: bool) -> Joining {
    let Some(st) = thread::enter() else {
        return (None, None, None);
    };
    // The thread's start, if it recorded it, before a prune of ended
    // threads could forget it.
    let recorded = recorder().pthread_tid(handle);
    if st.held_len == 0 {
        thread::leave(st);
        return (None, None, recorded);
    }
    let _errno = ErrnoGuard::save();
    // A thread that has ended already is known by the handle it left.
    let tid = match handle_tid(st, handle) {
        Some(0) => facts::ended_thread(handle),
        Some(t) => Some(t),
        None => recorder()
            .pthread_tid(handle)
            .or_else(|| facts::ended_thread(handle)),
    };
    let ctx = match tid {
        Some(t) if forever => Some(facts::call_begin_on(
            st,
            -1,
            Channel::Thread { pid: 0, tid: t },
            Direction::Recv,
            "pthread_join",
        )),
        _ => None,
    };
    thread::leave(st);
    (tid, ctx, recorded)
}

/// What a join hook learnt before the real call: the thread (under a
/// lock), the wait's bookkeeping, the thread as its recorded start names
/// it.
type Joining = (Option<u32>, Option<CallCtx>, Option<u32>);

/// A join returned `r`: on success, this thread's phase ends there (for a
/// thread whose start is in the trace: it recorded facts), and if the
/// join was made under a lock, the locks the joined thread took last are
/// what the join waited for.
fn joined(handle: libc::pthread_t, (under_lock, ctx, before): Joining, r: c_int) {
    super::io::end(ctx);
    if r != 0 {
        return;
    }
    let Some(st) = thread::enter() else {
        return;
    };
    let _errno = ErrnoGuard::save();
    // The joined thread started before it exited, so its start is recorded
    // by now; its handle is reused only by a later pthread_create.
    let recorded = before.or_else(|| recorder().pthread_tid(handle));
    if let Some(j) = recorded {
        let tid = st.tid();
        recorder().joined(tid, handle, j, st.syncs);
    }
    if let Some(j) = under_lock.or(recorded) {
        if st.held_len > 0 {
            facts::thread_end_locks(st, j);
        }
    }
    st.syncs = st.syncs.saturating_add(1);
    thread::leave(st);
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_join(thread: libc::pthread_t, retval: *mut P) -> c_int {
    let j = joining(thread, true);
    let r = real::pthread_join()(thread, retval);
    joined(thread, j, r);
    r
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_tryjoin_np(
    thread: libc::pthread_t,
    retval: *mut P,
) -> c_int {
    let j = joining(thread, false);
    let r = real::pthread_tryjoin_np()(thread, retval);
    joined(thread, j, r);
    r
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_timedjoin_np(
    thread: libc::pthread_t,
    retval: *mut P,
    abstime: *const libc::timespec,
) -> c_int {
    let j = joining(thread, abstime.is_null());
    let r = real::pthread_timedjoin_np()(thread, retval, abstime);
    joined(thread, j, r);
    r
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_clockjoin_np(
    thread: libc::pthread_t,
    retval: *mut P,
    clock: c_int,
    abstime: *const libc::timespec,
) -> c_int {
    let j = joining(thread, abstime.is_null());
    let r = real::pthread_clockjoin_np()(thread, retval, clock, abstime);
    joined(thread, j, r);
    r
}
