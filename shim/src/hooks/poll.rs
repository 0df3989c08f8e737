//! `poll`, `ppoll`, `select`, `pselect`, `epoll_wait`, `epoll_pwait`.
//!
//! A wait with no timeout on exactly one descriptor is a wait on its queue
//! (a client polling for its reply): it is recorded like the receive or
//! send it stands for. A wait on several descriptors ends when any one is
//! ready: that is an event loop, which blocks on no single queue, so it
//! adds no edge, and its thread's later reads and writes (which follow
//! readiness) order none of its queues. A wait with a timeout returns by
//! itself and passes through.

use super::io::{begin_on, end};
use crate::channel;
use crate::real;
use crate::thread;
use core::ffi::c_int;
use holdcheck_format::Direction;
use libc::{fd_set, nfds_t, pollfd, sigset_t, timespec, timeval};

/// The thread multiplexes several descriptors: an event loop.
fn event_loop() {
    if let Some(st) = thread::enter() {
        st.event_loop = true;
        thread::leave(st);
    }
}

/// Runs a wait on one descriptor with the bookkeeping of a call on it.
fn wait_on_one<R>(fd: c_int, dir: Direction, call: &'static str, real: impl FnOnce() -> R) -> R {
    let ctx = begin_on(fd, dir, call, || channel::resolve_polled(fd, dir));
    let r = real();
    end(ctx);
    r
}

/// What a pollfd array waits on, if it is exactly one descriptor.
///
/// # Safety
/// `fds` points at `n` pollfds.
unsafe fn single_pollfd(fds: *const pollfd, n: nfds_t) -> Option<(c_int, Direction)> {
    let v = core::slice::from_raw_parts(fds, n as usize);
    let mut live = v.iter().filter(|p| p.fd >= 0);
    let p = live.next()?;
    if live.next().is_some() {
        return None;
    }
    let dir = if p.events & libc::POLLOUT != 0 {
        Direction::Send
    } else {
        Direction::Recv
    };
    Some((p.fd, dir))
}

/// Poll-family calls: no timeout and one descriptor is a wait on it,
/// several descriptors an event loop.
///
/// # Safety
/// `fds` points at `n` pollfds.
unsafe fn polled<R>(
    fds: *const pollfd,
    n: nfds_t,
    forever: bool,
    call: &'static str,
    real: impl FnOnce() -> R,
) -> R {
    if fds.is_null() || n == 0 {
        return real();
    }
    match single_pollfd(fds, n) {
        Some((fd, dir)) if forever => wait_on_one(fd, dir, call, real),
        Some(_) => real(),
        None => {
            event_loop();
            real()
        }
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn poll(fds: *mut pollfd, n: nfds_t, timeout: c_int) -> c_int {
    polled(fds, n, timeout < 0, "poll", || {
        real::poll()(fds, n, timeout)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn ppoll(
    fds: *mut pollfd,
    n: nfds_t,
    t: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    polled(fds, n, t.is_null(), "ppoll", || {
        real::ppoll()(fds, n, t, mask)
    })
}

/// The one descriptor a select waits on (read or write set), if one.
///
/// # Safety
/// The sets are null or valid for `nfds` descriptors.
unsafe fn single_selected(
    nfds: c_int,
    r: *const fd_set,
    w: *const fd_set,
) -> Result<Option<(c_int, Direction)>, ()> {
    let mut found = None;
    for fd in 0..nfds.clamp(0, libc::FD_SETSIZE as c_int) {
        for (set, dir) in [(r, Direction::Recv), (w, Direction::Send)] {
            if !set.is_null() && libc::FD_ISSET(fd, set) {
                if found.is_some() {
                    return Err(()); // several: an event loop
                }
                found = Some((fd, dir));
            }
        }
    }
    Ok(found)
}

/// Select-family calls.
///
/// # Safety
/// The sets are null or valid for `nfds` descriptors.
unsafe fn selected<R>(
    nfds: c_int,
    r: *const fd_set,
    w: *const fd_set,
    forever: bool,
    call: &'static str,
    real: impl FnOnce() -> R,
) -> R {
    match single_selected(nfds, r, w) {
        Ok(Some((fd, dir))) if forever => wait_on_one(fd, dir, call, real),
        Ok(_) => real(),
        Err(()) => {
            event_loop();
            real()
        }
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn select(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    t: *mut timeval,
) -> c_int {
    selected(nfds, r, w, t.is_null(), "select", || {
        real::select()(nfds, r, w, e, t)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn pselect(
    nfds: c_int,
    r: *mut fd_set,
    w: *mut fd_set,
    e: *mut fd_set,
    t: *const timespec,
    mask: *const sigset_t,
) -> c_int {
    selected(nfds, r, w, t.is_null(), "pselect", || {
        real::pselect()(nfds, r, w, e, t, mask)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn epoll_wait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
) -> c_int {
    event_loop();
    real::epoll_wait()(epfd, events, max, timeout)
}

#[no_mangle]
pub unsafe extern "C-unwind" fn epoll_pwait(
    epfd: c_int,
    events: *mut libc::epoll_event,
    max: c_int,
    timeout: c_int,
    mask: *const sigset_t,
) -> c_int {
    event_loop();
    real::epoll_pwait()(epfd, events, max, timeout, mask)
}
