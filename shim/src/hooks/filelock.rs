//! `flock`, `fcntl` record locks (`F_SETLK`, `F_SETLKW` and the `F_OFD_`
//! variants) and `close`: file locks are locks of the graph, shared between
//! processes (see `filelocks`). A blocking lock is tried first, as every
//! lock is (see `locking`); `LOCK_NB` and `F_SETLK` are trylocks.

use super::locking::{acquire_blocking, acquire_try, release};
use crate::filelocks;
use crate::real;
use crate::thread;
use core::ffi::c_int;
use holdcheck_format::{LockKind, Mode};

super::with_caller_pc! {
    fn flock(fd: c_int, op: c_int) -> c_int => flock_impl, "rdx";
    fn fcntl(fd: c_int, cmd: c_int, arg: usize) -> c_int => fcntl_impl, "rcx";
    fn fcntl64(fd: c_int, cmd: c_int, arg: usize) -> c_int => fcntl64_impl, "rcx";
}

const K: LockKind = LockKind::File;

/// A libc result (-1 and errno) as an error code (0 when it succeeded),
/// with "would block" as `EBUSY`, which the lock hooks read as contended.
fn code(r: c_int) -> c_int {
    if r != -1 {
        return 0;
    }
    match std::io::Error::last_os_error()
        .raw_os_error()
        .unwrap_or(libc::EIO)
    {
        libc::EWOULDBLOCK | libc::EACCES => libc::EBUSY,
        e => e,
    }
}

/// An error code back as a libc result. A trylock's `EBUSY` is the call's
/// own "would block" error.
fn result(c: c_int, busy: c_int) -> c_int {
    if c == 0 {
        return 0;
    }
    // SAFETY: errno is this thread's.
    unsafe { *libc::__errno_location() = if c == libc::EBUSY { busy } else { c } };
    -1
}

/// Pops the file lock `fd` holds from this thread's held stack.
fn forget(fd: c_int) {
    if let Some(addr) = filelocks::released(fd) {
        release(addr, LockKind::File, |_| false, || 0);
    }
}

/// Takes a file lock with `lock`, or tries it with `try_lock`.
fn take(
    fd: c_int,
    mode: Mode,
    site: usize,
    blocking: bool,
    try_lock: impl Fn() -> c_int,
    lock: impl FnOnce() -> c_int,
) -> c_int {
    let Some(addr) = identify(fd) else {
        return if blocking { lock() } else { try_lock() };
    };
    // A conversion (shared to exclusive, or back) replaces the lock held.
    forget(fd);
    let c = if blocking {
        acquire_blocking(
            addr,
            K,
            mode,
            site,
            |_, _| code(try_lock()),
            |_| code(lock()),
        )
    } else {
        acquire_try(addr, K, mode, site, || code(try_lock()))
    };
    if c == 0 {
        filelocks::held(fd, addr);
    }
    c
}

fn identify(fd: c_int) -> Option<usize> {
    let st = thread::enter()?;
    let _errno = crate::sys::ErrnoGuard::save();
    let addr = filelocks::identity(fd);
    thread::leave(st);
    addr
}

unsafe extern "C-unwind" fn flock_impl(fd: c_int, op: c_int, site: usize) -> c_int {
    let real = move || unsafe { real::flock()(fd, op) };
    if op & libc::LOCK_UN != 0 {
        forget(fd);
        return real();
    }
    let mode = match op & (libc::LOCK_SH | libc::LOCK_EX) {
        libc::LOCK_EX => Mode::Write,
        libc::LOCK_SH => Mode::Read,
        _ => return real(),
    };
    let blocking = op & libc::LOCK_NB == 0;
    let c = take(
        fd,
        mode,
        site,
        blocking,
        move || unsafe { real::flock()(fd, op | libc::LOCK_NB) },
        real,
    );
    result(c, libc::EWOULDBLOCK)
}

/// `fcntl` and `fcntl64`: record-lock commands are locks; the rest pass
/// through.
unsafe fn fcntl_common(
    fd: c_int,
    cmd: c_int,
    arg: usize,
    site: usize,
    real: unsafe extern "C-unwind" fn(c_int, c_int, usize) -> c_int,
) -> c_int {
    let try_cmd = match cmd {
        libc::F_SETLK | libc::F_SETLKW => libc::F_SETLK,
        libc::F_OFD_SETLK | libc::F_OFD_SETLKW => libc::F_OFD_SETLK,
        libc::F_SETFL => {
            let r = real(fd, cmd, arg);
            crate::channel::flags_changed();
            return r;
        }
        _ => return real(fd, cmd, arg),
    };
    if arg == 0 {
        return real(fd, cmd, arg);
    }
    // SAFETY: these commands take a struct flock.
    let kind = unsafe { (*(arg as *const libc::flock)).l_type } as c_int;
    let mode = match kind {
        libc::F_WRLCK => Mode::Write,
        libc::F_RDLCK => Mode::Read,
        _ => {
            forget(fd);
            return real(fd, cmd, arg);
        }
    };
    let blocking = cmd != try_cmd;
    let c = take(
        fd,
        mode,
        site,
        blocking,
        move || unsafe { real(fd, try_cmd, arg) },
        move || unsafe { real(fd, cmd, arg) },
    );
    result(c, libc::EAGAIN)
}

unsafe extern "C-unwind" fn fcntl_impl(fd: c_int, cmd: c_int, arg: usize, site: usize) -> c_int {
    fcntl_common(fd, cmd, arg, site, real::fcntl())
}

unsafe extern "C-unwind" fn fcntl64_impl(fd: c_int, cmd: c_int, arg: usize, site: usize) -> c_int {
    fcntl_common(fd, cmd, arg, site, real::fcntl64())
}

/// `ioctl(FIONBIO)` changes a descriptor's blocking flag, as
/// `fcntl(F_SETFL)` does; every other request passes through.
#[no_mangle]
pub unsafe extern "C-unwind" fn ioctl(fd: c_int, request: libc::c_ulong, arg: usize) -> c_int {
    let r = real::ioctl()(fd, request, arg);
    if request == libc::FIONBIO {
        crate::channel::flags_changed();
    }
    r
}

#[no_mangle]
pub unsafe extern "C-unwind" fn close(fd: c_int) -> c_int {
    crate::channel::fd_closed(fd);
    if filelocks::any_held() {
        forget(fd);
    }
    let r = real::close()(fd);
    // Again once closed: a thread may have resolved it meanwhile.
    crate::channel::fd_changed(fd);
    r
}

/// `fclose` closes its descriptor inside libc, where `close` is not seen.
#[no_mangle]
pub unsafe extern "C-unwind" fn fclose(fp: *mut libc::FILE) -> c_int {
    let fd = if fp.is_null() { -1 } else { libc::fileno(fp) };
    crate::channel::fd_closed(fd);
    let r = real::fclose()(fp);
    crate::channel::fd_changed(fd);
    r
}

/// `dup2`/`dup3` close `new` first: what it was is forgotten.
#[no_mangle]
pub unsafe extern "C-unwind" fn dup2(old: c_int, new: c_int) -> c_int {
    crate::channel::fd_closed(new);
    if filelocks::any_held() && old != new {
        forget(new);
    }
    let r = real::dup2()(old, new);
    crate::channel::fd_changed(new);
    r
}

#[no_mangle]
pub unsafe extern "C-unwind" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    crate::channel::fd_closed(new);
    if filelocks::any_held() && old != new {
        forget(new);
    }
    let r = real::dup3()(old, new, flags);
    crate::channel::fd_changed(new);
    r
}

/// `close_range` closes a whole range of descriptors.
#[no_mangle]
pub unsafe extern "C-unwind" fn close_range(
    first: libc::c_uint,
    last: libc::c_uint,
    flags: c_int,
) -> c_int {
    if flags as libc::c_uint & libc::CLOSE_RANGE_CLOEXEC == 0 {
        for fd in first..=last.min(4095) {
            crate::channel::fd_closed(fd as c_int);
            if filelocks::any_held() {
                forget(fd as c_int);
            }
        }
    }
    let r = real::close_range()(first, last, flags);
    for fd in first..=last.min(4095) {
        crate::channel::fd_changed(fd as c_int);
    }
    r
}
