//! `sem_*`: a semaphore is a queue of posts, like a condition variable
//! without its mutex. A wait with no timeout receives from it; `sem_post`
//! sends to it and never blocks. So a lock held across `sem_wait` while
//! the only poster takes that lock before it posts is a cycle. A timed
//! wait returns by itself, and `sem_trywait` never waits: they pass
//! through.

use super::io::end;
use crate::facts;
use crate::real;
use crate::thread;
use core::ffi::{c_int, c_uint, c_void};
use holdcheck_format::{Channel, Direction};
use libc::timespec;

type S = *mut c_void;

fn semaphore(st: &mut thread::ThreadState, s: S) -> Channel {
    Channel::Semaphore {
        pid: 0,
        addr: s as u64,
        gen: st.object_gen(s as usize),
    }
}

#[inline(always)]
fn waiting(s: S, call: &'static str, real: impl FnOnce() -> c_int) -> c_int {
    let ctx = thread::enter().map(|st| {
        let chan = semaphore(st, s);
        let ctx = facts::call_begin_on(st, -1, chan, Direction::Recv, call);
        thread::leave(st);
        ctx
    });
    let r = real();
    end(ctx);
    r
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sem_wait(s: S) -> c_int {
    waiting(s, "sem_wait", move || unsafe { real::sem_wait()(s) })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sem_timedwait(s: S, t: *const timespec) -> c_int {
    real::sem_timedwait()(s, t)
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sem_clockwait(s: S, clock: c_int, t: *const timespec) -> c_int {
    real::sem_clockwait()(s, clock, t)
}

/// A post: the locks this thread took since its previous post are what a
/// waiter may wait for.
#[no_mangle]
pub unsafe extern "C-unwind" fn sem_post(s: S) -> c_int {
    if let Some(st) = thread::enter() {
        let addr = s as u64;
        let chan = move |gen| Channel::Semaphore { pid: 0, addr, gen };
        facts::nonblocking_send_on(st, s as usize, chan, "sem_post");
        thread::leave(st);
    }
    real::sem_post()(s)
}

super::with_caller_pc! {
    fn sem_init(s: S, pshared: c_int, value: c_uint) -> c_int => init, "rcx";
}

/// `init` and `destroy` start a new semaphore at the address; `init` says
/// where it was made: its class, by which the facts of a semaphore made
/// per wait are sampled (`facts::object_class_key`).
unsafe extern "C-unwind" fn init(s: S, pshared: c_int, value: c_uint, site: usize) -> c_int {
    super::locking::initialised(s as usize, site, move || unsafe {
        real::sem_init()(s, pshared, value)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sem_destroy(s: S) -> c_int {
    super::locking::new_generation(s as usize, move || unsafe { real::sem_destroy()(s) })
}
