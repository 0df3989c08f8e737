//! `pthread_create` and `pthread_join`: the program's first thread starts
//! the watchdog, and every start and join is written down, so the analysis
//! knows which of two threads' lock orders could not overlap (an init phase
//! before the workers start, a thread joined before the next is made).
//!
//! This is the one place where starting a thread is as safe as it is for
//! the program: `pthread_create` allocates (the new thread's TLS) and may
//! need the loader's lock, so it must never run from a hook that a
//! `malloc` (jemalloc locks inside it) or a `dlopen` constructor reached.

use crate::real;
use crate::recorder::RECORDER;
use crate::sys::ErrnoGuard;
use crate::thread;
use core::ffi::{c_int, c_void};

type P = *mut c_void;

/// What the new thread needs to say who made it, then run its routine.
#[derive(Clone, Copy)]
struct Start {
    start: P,
    arg: P,
    parent: u32,
    seq: u32,
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
    // From the shim's own heap, freed by the new thread.
    let boxed = Box::into_raw(Box::new(Start {
        start,
        arg,
        parent,
        seq,
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
        thread::leave(st);
    }
    let routine: unsafe extern "C-unwind" fn(P) -> P = core::mem::transmute(s.start);
    routine(s.arg)
}

/// The thread a join is about to wait for, if it has recorded its start
/// (a thread just created may not have run yet: then it is looked up when
/// the join returns).
fn joining(handle: libc::pthread_t) -> Option<u32> {
    let st = thread::enter()?;
    let tid = RECORDER.lock().pthread_tid(handle);
    thread::leave(st);
    tid
}

/// A join returned `r`: on success, this thread's phase ends there.
fn joined(handle: libc::pthread_t, joined: Option<u32>, r: c_int) {
    if r != 0 {
        return;
    }
    let Some(st) = thread::enter() else {
        return;
    };
    let _errno = ErrnoGuard::save();
    // The joined thread started before it exited, so its start is recorded
    // by now; its handle is reused only by a later pthread_create.
    let joined = joined.or_else(|| RECORDER.lock().pthread_tid(handle));
    if let Some(j) = joined {
        let tid = st.tid();
        RECORDER.lock().joined(tid, handle, j, st.syncs);
    }
    st.syncs = st.syncs.saturating_add(1);
    thread::leave(st);
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_join(thread: libc::pthread_t, retval: *mut P) -> c_int {
    let j = joining(thread);
    let r = real::pthread_join()(thread, retval);
    joined(thread, j, r);
    r
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pthread_tryjoin_np(
    thread: libc::pthread_t,
    retval: *mut P,
) -> c_int {
    let j = joining(thread);
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
    let j = joining(thread);
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
    let j = joining(thread);
    let r = real::pthread_clockjoin_np()(thread, retval, clock, abstime);
    joined(thread, j, r);
    r
}
