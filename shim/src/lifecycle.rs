//! Process life cycle: start-up, fork and exit.

use crate::{
    alloc, channel, config, filelocks, live, locks, real, recorder, stack, thread, watchdog,
};
use core::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;

#[used]
#[link_section = ".fini_array"]
static FINI: extern "C" fn() = fini;

extern "C" fn init() {
    // Hooks may have run already (other libraries' constructors). Whatever
    // a hook may need from the loader is settled now, while no dlopen can
    // be holding the loader's lock: the real functions, the thread-exit
    // key, the shim's own address range.
    crate::sys::note_stderr();
    real::resolve_all();
    locks::settle_trylock();
    #[cfg(not(test))]
    crate::hooks::settle_free();
    thread::exit_key();
    stack::shim_range();
    // The trace (its header) is written at once: an empty trace says the
    // shim ran and saw nothing, a missing one that it never loaded.
    if config::active() {
        // A failure was said, and the shim is passive.
        let _ = recorder::recorder().open();
    }
    // SAFETY: the handlers are plain functions of this library.
    unsafe {
        libc::pthread_atfork(
            Some(before_fork),
            Some(after_fork_parent),
            Some(after_fork_child),
        )
    };
}

/// What `before_fork` changed on the forking thread, restored after it
/// (glibc runs one fork's handlers at a time).
static FORK_WORD: AtomicUsize = AtomicUsize::new(0);
static FORK_BUSY: AtomicBool = AtomicBool::new(false);

/// Fork prepare: the other libraries' prepare handlers that run after this
/// one (jemalloc's lock every arena) pass through the hooks, and what the
/// child inherits from the shim is whole: its heap, its module list.
extern "C" fn before_fork() {
    let (w, busy) = thread::begin_pass_through();
    FORK_WORD.store(w, Ordering::Relaxed);
    FORK_BUSY.store(busy, Ordering::Relaxed);
    stack::fork_prepare();
    alloc::HEAP.fork_prepare();
}

extern "C" fn after_fork_parent() {
    alloc::HEAP.fork_done();
    stack::fork_parent();
    thread::end_pass_through((
        FORK_WORD.load(Ordering::Relaxed),
        FORK_BUSY.load(Ordering::Relaxed),
    ));
}

/// The child of a fork has one thread. Every internal lock and table starts
/// anew (see `sync`): whatever another thread held or was updating at the
/// fork is gone with it. The forking thread's held locks stay held in the
/// child. The child opens its trace at once, while it still has the
/// parent's credentials: a server's workers drop privileges right after
/// the fork, and could not create it later.
extern "C" fn after_fork_child() {
    alloc::HEAP.fork_done();
    stack::fork_child();
    crate::unwind::after_fork_child();
    // The parent's trace, still open here: the child says through it if it
    // cannot have a trace of its own.
    let parent_trace = recorder::inherited_fd();
    // SAFETY: in the fork child, before any other shim code runs there.
    unsafe {
        recorder::reset_in_child();
        locks::after_fork_child();
        channel::after_fork_child();
        live::after_fork_child();
        filelocks::after_fork_child();
        crate::facts::after_fork_child();
        thread::after_fork_child();
    }
    locks::EPOCH.fetch_add(1, Ordering::Relaxed);
    watchdog::after_fork_child();
    thread::end_pass_through((
        FORK_WORD.load(Ordering::Relaxed),
        FORK_BUSY.load(Ordering::Relaxed),
    ));
    if config::active() {
        thread::passing_through(|| {
            if let (Err(reason), Some(fd)) = (recorder::recorder().open(), parent_trace) {
                let line = holdcheck_format::Record::NoTrace {
                    pid: crate::sys::getpid(),
                    reason,
                }
                .to_line();
                // SAFETY: the parent's trace descriptor, inherited and open.
                let fd = unsafe { rustix::fd::BorrowedFd::borrow_raw(fd) };
                let _ = crate::sys::write_all(fd, &line);
            }
        });
    }
}

extern "C" fn fini() {
    // Before the recorder is taken: reporting writes to it. Nothing
    // unwinds out of a destructor the C library runs.
    if config::active() {
        let _ = std::panic::catch_unwind(watchdog::flush_ended);
    }
    // Read before the recorder is taken (never the registry under it).
    let published = crate::live::all_published();
    // Another thread may still be inside the recorder, or writing a batch
    // of it: wait a little, never forever.
    let mut rec = None;
    for _ in 0..200 {
        rec = recorder::try_recorder().filter(|r| !r.flushing());
        if rec.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let Some(mut rec) = rec else { return };
    // What running threads counted but did not give the recorder yet.
    crate::facts::give_tallies(&mut rec, &published);
    rec.flush_stats();
    let path = rec.path().map(str::to_string);
    drop(rec); // written now
    let verbosity = config::get().verbosity;
    if let (1.., Some(path)) = (verbosity, path) {
        let dir = std::path::Path::new(&path)
            .parent()
            .map(|d| d.display().to_string())
            .unwrap_or_default();
        let msg = format!("trace written to {path}; analyse it with: holdcheck report {dir}");
        // On stderr only when asked: the program's output stays its own.
        if verbosity >= 2 {
            crate::sys::say(&msg);
        } else {
            crate::sys::say_to_terminal(&msg);
        }
    }
}
