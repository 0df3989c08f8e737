//! `sigaction` and `signal`: every handler the program installs runs through
//! a trampoline that marks the thread as busy, so that interposed calls made
//! by a signal handler (the self-pipe trick's `write`, a lock) pass straight
//! through. The shim's bookkeeping may allocate or take its own locks, which
//! a handler that interrupted `malloc` or the shim must never do.
//!
//! The program sees its own handlers: `oldact` reports what it installed.
//! A handler that leaves by `siglongjmp` leaves the thread marked busy; its
//! calls then pass through untracked (never harmed).

use crate::real;
use crate::thread;
use core::ffi::{c_int, c_void};
use core::sync::atomic::{AtomicUsize, Ordering};

const NSIG: usize = 65;

/// The program's handler for each signal (0: none of ours installed).
static HANDLERS: [AtomicUsize; NSIG] = [const { AtomicUsize::new(0) }; NSIG];

/// Runs the program's handler for `sig` (given its address) with the thread
/// marked busy, so that its interposed calls pass straight through.
fn as_program(sig: c_int, call: impl FnOnce(usize)) {
    let h = HANDLERS
        .get(sig as usize)
        .map_or(0, |h| h.load(Ordering::Acquire));
    if h == 0 {
        return;
    }
    thread::passing_through(|| call(h));
}

extern "C" fn plain(sig: c_int) {
    // SAFETY: h is the handler the program installed for this signal.
    as_program(sig, |h| unsafe {
        core::mem::transmute::<usize, extern "C" fn(c_int)>(h)(sig)
    });
}

extern "C" fn with_info(sig: c_int, info: *mut libc::siginfo_t, ctx: *mut c_void) {
    type Handler = extern "C" fn(c_int, *mut libc::siginfo_t, *mut c_void);
    // SAFETY: h is the SA_SIGINFO handler the program installed.
    as_program(sig, |h| unsafe {
        core::mem::transmute::<usize, Handler>(h)(sig, info, ctx)
    });
}

fn is_trampoline(h: usize) -> bool {
    h == plain as *const () as usize || h == with_info as *const () as usize
}

#[no_mangle]
pub unsafe extern "C-unwind" fn sigaction(
    sig: c_int,
    act: *const libc::sigaction,
    oldact: *mut libc::sigaction,
) -> c_int {
    let slot = match HANDLERS.get(sig as usize) {
        Some(s) if sig > 0 => s,
        _ => return real::sigaction()(sig, act, oldact),
    };
    let previous = slot.load(Ordering::Acquire);
    let ours: libc::sigaction;
    let mut act_to_install = act;
    if !act.is_null() {
        let h = (*act).sa_sigaction;
        if h != libc::SIG_DFL && h != libc::SIG_IGN && !is_trampoline(h) {
            // The handler is in the table before the trampoline is installed.
            slot.store(h, Ordering::Release);
            let mut replaced = *act;
            replaced.sa_sigaction = if (*act).sa_flags & libc::SA_SIGINFO != 0 {
                with_info as *const () as usize
            } else {
                plain as *const () as usize
            };
            ours = replaced;
            act_to_install = &ours;
        }
    }
    let r = real::sigaction()(sig, act_to_install, oldact);
    if r != 0 && !act.is_null() {
        slot.store(previous, Ordering::Release);
    }
    // Report the program's own handler, not the trampoline.
    if r == 0 && !oldact.is_null() && is_trampoline((*oldact).sa_sigaction) {
        (*oldact).sa_sigaction = previous;
    }
    r
}

/// glibc's `signal` calls its internal sigaction, not the interposed one.
#[no_mangle]
pub unsafe extern "C-unwind" fn signal(
    sig: c_int,
    handler: libc::sighandler_t,
) -> libc::sighandler_t {
    let mut act: libc::sigaction = core::mem::zeroed();
    act.sa_sigaction = handler;
    act.sa_flags = libc::SA_RESTART; // BSD semantics, as glibc's signal()
    libc::sigemptyset(&mut act.sa_mask);
    libc::sigaddset(&mut act.sa_mask, sig);
    let mut old: libc::sigaction = core::mem::zeroed();
    if sigaction(sig, &act, &mut old) != 0 {
        return libc::SIG_ERR;
    }
    old.sa_sigaction
}
