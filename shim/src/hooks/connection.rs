//! `connect` and `accept`: waits on a listening socket's queue of
//! connections (`connect` for room in it, `accept` for a connection), so a
//! server that accepts only after it takes a lock, or a client that
//! connects holding one, joins the wait-for graph.

use super::io::{begin_on, end};
use crate::channel;
use crate::real;
use crate::thread;
use core::ffi::c_int;
use holdcheck_format::Direction;
use libc::{sockaddr, socklen_t};

#[no_mangle]
pub unsafe extern "C-unwind" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    let ctx = begin_on(fd, Direction::Send, "connect", || {
        if channel::is_nonblocking(fd) {
            return None;
        }
        channel::listen_of_addr(addr, len)
    });
    let r = real::connect()(fd, addr, len);
    end(ctx);
    // Its peer (where its sends go) is another now.
    crate::channel::fd_changed(fd);
    r
}

fn accept_begin(fd: c_int, call: &'static str) -> Option<crate::facts::CallCtx> {
    begin_on(fd, Direction::Recv, call, || {
        if channel::is_nonblocking(fd) {
            return None;
        }
        channel::listen_of_fd(fd)
    })
}

/// A unix connection just accepted: its client is learnt while it is
/// surely alive.
fn accepted(r: c_int) {
    channel::fd_changed(r);
    if r >= 0 {
        if let Some(st) = thread::enter() {
            let _errno = crate::sys::ErrnoGuard::save();
            channel::note_accepted(r);
            crate::facts::record_new_peers();
            thread::leave(st);
        }
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn accept(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> c_int {
    let ctx = accept_begin(fd, "accept");
    let r = real::accept()(fd, addr, len);
    end(ctx);
    accepted(r);
    r
}

#[no_mangle]
pub unsafe extern "C-unwind" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    let ctx = accept_begin(fd, "accept4");
    let r = real::accept4()(fd, addr, len, flags);
    end(ctx);
    accepted(r);
    r
}
