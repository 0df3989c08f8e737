//! The calls that can block on another party: sends and receives on sockets,
//! reads and writes on pipes, FIFOs and sockets. A call that cannot block
//! (`MSG_DONTWAIT`, an `O_NONBLOCK` descriptor, a regular file) is passed
//! through with no bookkeeping.

use crate::channel::Dest;
use crate::facts::{self, Blocking, CallCtx};
use crate::real;
use crate::thread;
use core::ffi::{c_int, c_uint, c_void};
use holdcheck_format::Direction;
use libc::{iovec, mmsghdr, msghdr, size_t, sockaddr, socklen_t, ssize_t, timespec, MSG_DONTWAIT};

fn begin(fd: c_int, dir: Direction, call: &'static str, dest: Dest) -> Option<CallCtx> {
    let st = thread::enter()?;
    let mut ctx = facts::call_begin(st, fd, dir, call, dest, Blocking::Yes);
    if let Some(c) = ctx.as_mut() {
        steered(st, c);
    }
    thread::leave(st);
    ctx
}

/// The bookkeeping before a call with no lock held, when the watchdog can
/// check a thread's system call: the call's wait stays published after it
/// returns (see `live::Published::wait_call`), so nothing is left to do
/// after the call. False, having done nothing, when a lock is held (the
/// call is counted under it when it returns), under `holdcheck confirm`,
/// or when the watchdog cannot check: [`begin`] then does it all.
///
/// Given only scalars, and keeping nothing for after: a hook whose stack
/// a callee may write (a [`CallCtx`] returned) cannot end in a jump to
/// the call.
#[inline(always)]
fn begin_deferred(fd: c_int, dir: Direction, call: &'static str, dest: Dest) -> bool {
    if !crate::live::deferring() || crate::config::steering() {
        return false;
    }
    let Some(st) = thread::enter() else {
        return false;
    };
    let deferred = st.held_len == 0;
    if deferred {
        facts::call_begin_deferred(st, fd, dir, call, dest);
    }
    thread::leave(st);
    deferred
}

/// The bookkeeping before a blocking call on a channel the hook resolves
/// itself (`fd` -1 when the call has none).
pub(super) fn begin_on(
    fd: c_int,
    dir: Direction,
    call: &'static str,
    resolve: impl FnOnce() -> Option<holdcheck_format::Channel>,
) -> Option<CallCtx> {
    let st = thread::enter()?;
    let _errno = crate::sys::ErrnoGuard::save();
    let ctx = resolve().map(|chan| {
        facts::record_new_peers();
        let mut ctx = facts::call_begin_on(st, fd, chan, dir, call);
        steered(st, &mut ctx);
        ctx
    });
    thread::leave(st);
    ctx
}

/// Under `holdcheck confirm`, a call of the steered cycle is marked.
#[inline(always)]
fn steered(st: &mut thread::ThreadState, ctx: &mut CallCtx) {
    if crate::config::steering() {
        ctx.steer_slot = crate::steer::call_begin(st);
    }
}

/// The bookkeeping after the call.
pub(super) fn end(ctx: Option<CallCtx>) {
    if let Some(ctx) = ctx {
        if let Some(slot) = ctx.steer_slot {
            crate::steer::call_end(slot);
        }
        facts::call_end(ctx);
    }
}

/// Runs a socket call with bookkeeping unless its flags make it non-blocking.
#[inline(always)]
fn sock_call<R>(
    fd: c_int,
    flags: c_int,
    dir: Direction,
    call: &'static str,
    dest: Dest,
    real: impl FnOnce() -> R,
) -> R {
    if flags & MSG_DONTWAIT != 0 || begin_deferred(fd, dir, call, dest) {
        return real();
    }
    let ctx = begin(fd, dir, call, dest);
    let r = real();
    end(ctx);
    r
}

fn msg_dest(msg: *const msghdr) -> Dest {
    if msg.is_null() {
        return Dest::NONE;
    }
    // SAFETY: the caller passes a valid msghdr.
    unsafe {
        Dest {
            addr: (*msg).msg_name as *const sockaddr,
            len: (*msg).msg_namelen,
        }
    }
}

#[no_mangle]
pub unsafe extern "C-unwind" fn send(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
) -> ssize_t {
    sock_call(
        fd,
        flags,
        Direction::Send,
        "send",
        Dest::NONE,
        move || unsafe { real::send()(fd, buf, len, flags) },
    )
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const sockaddr,
    alen: socklen_t,
) -> ssize_t {
    let dest = Dest { addr, len: alen };
    sock_call(fd, flags, Direction::Send, "sendto", dest, move || unsafe {
        real::sendto()(fd, buf, len, flags, addr, alen)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    sock_call(
        fd,
        flags,
        Direction::Send,
        "sendmsg",
        msg_dest(msg),
        move || unsafe { real::sendmsg()(fd, msg, flags) },
    )
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sendmmsg(
    fd: c_int,
    v: *mut mmsghdr,
    n: c_uint,
    flags: c_int,
) -> c_int {
    let dest = if v.is_null() || n == 0 {
        Dest::NONE
    } else {
        msg_dest(unsafe { &(*v).msg_hdr })
    };
    sock_call(
        fd,
        flags,
        Direction::Send,
        "sendmmsg",
        dest,
        move || unsafe { real::sendmmsg()(fd, v, n, flags) },
    )
}

#[no_mangle]
pub unsafe extern "C-unwind" fn recv(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
) -> ssize_t {
    sock_call(
        fd,
        flags,
        Direction::Recv,
        "recv",
        Dest::NONE,
        move || unsafe { real::recv()(fd, buf, len, flags) },
    )
}

#[no_mangle]
pub unsafe extern "C-unwind" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    len: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    alen: *mut socklen_t,
) -> ssize_t {
    sock_call(
        fd,
        flags,
        Direction::Recv,
        "recvfrom",
        Dest::NONE,
        move || unsafe { real::recvfrom()(fd, buf, len, flags, addr, alen) },
    )
}

#[no_mangle]
pub unsafe extern "C-unwind" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    sock_call(
        fd,
        flags,
        Direction::Recv,
        "recvmsg",
        Dest::NONE,
        move || unsafe { real::recvmsg()(fd, msg, flags) },
    )
}

#[no_mangle]
pub unsafe extern "C-unwind" fn recvmmsg(
    fd: c_int,
    v: *mut mmsghdr,
    n: c_uint,
    flags: c_int,
    t: *mut timespec,
) -> c_int {
    sock_call(
        fd,
        flags,
        Direction::Recv,
        "recvmmsg",
        Dest::NONE,
        move || unsafe { real::recvmmsg()(fd, v, n, flags, t) },
    )
}

#[no_mangle]
pub unsafe extern "C-unwind" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    sock_call(fd, 0, Direction::Recv, "read", Dest::NONE, move || unsafe {
        real::read()(fd, buf, n)
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    sock_call(
        fd,
        0,
        Direction::Send,
        "write",
        Dest::NONE,
        move || unsafe { real::write()(fd, buf, n) },
    )
}

#[no_mangle]
pub unsafe extern "C-unwind" fn readv(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    sock_call(
        fd,
        0,
        Direction::Recv,
        "readv",
        Dest::NONE,
        move || unsafe { real::readv()(fd, iov, n) },
    )
}

#[no_mangle]
pub unsafe extern "C-unwind" fn writev(fd: c_int, iov: *const iovec, n: c_int) -> ssize_t {
    sock_call(
        fd,
        0,
        Direction::Send,
        "writev",
        Dest::NONE,
        move || unsafe { real::writev()(fd, iov, n) },
    )
}
