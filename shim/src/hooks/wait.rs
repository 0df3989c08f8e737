//! `waitpid` and `wait4` for one child: a wait on that process's exit.
//! A parent that waits for its child while holding a lock, when the child
//! waits on a queue that only that lock's other users would move, is a
//! cycle through two processes. Waits for any child, and `WNOHANG`, pass
//! through.

use super::io::{begin_on, end};
use crate::real;
use core::ffi::c_int;
use holdcheck_format::{Channel, Direction};
use libc::pid_t;

fn wait_begin(pid: pid_t, options: c_int, call: &'static str) -> Option<crate::facts::CallCtx> {
    if pid <= 0 || options & libc::WNOHANG != 0 {
        return None;
    }
    begin_on(-1, Direction::Recv, call, || {
        Some(Channel::Exit { pid: pid as u32 })
    })
}

#[no_mangle]
pub unsafe extern "C-unwind" fn waitpid(pid: pid_t, status: *mut c_int, options: c_int) -> pid_t {
    let ctx = wait_begin(pid, options, "waitpid");
    let r = real::waitpid()(pid, status, options);
    end(ctx);
    r
}

#[no_mangle]
pub unsafe extern "C-unwind" fn wait4(
    pid: pid_t,
    status: *mut c_int,
    options: c_int,
    usage: *mut libc::rusage,
) -> pid_t {
    let ctx = wait_begin(pid, options, "wait4");
    let r = real::wait4()(pid, status, options, usage);
    end(ctx);
    r
}
