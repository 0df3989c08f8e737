//! Process life cycle: start-up, fork and exit.

use crate::{channel, config, filelocks, live, locks, recorder, thread, watchdog};

#[used]
#[link_section = ".init_array"]
static INIT: extern "C" fn() = init;

#[used]
#[link_section = ".fini_array"]
static FINI: extern "C" fn() = fini;

extern "C" fn init() {
    // Hooks may have run already (other libraries' constructors); this only
    // makes sure the configuration is read early and fork is handled.
    // The trace (its header) is written at once: an empty trace says the
    // shim ran and saw nothing, a missing one that it never loaded.
    if config::active() {
        recorder::RECORDER.lock().open();
    }
    // SAFETY: the handler is a plain function of this library.
    unsafe { libc::pthread_atfork(None, None, Some(after_fork_child)) };
}

/// The child of a fork has one thread. Every internal lock and table starts
/// anew (see `sync`): whatever another thread held or was updating at the
/// fork is gone with it. The child opens its own trace at its first fact;
/// the forking thread's held locks stay held in the child.
extern "C" fn after_fork_child() {
    // SAFETY: in the fork child, before any other shim code runs there.
    unsafe {
        recorder::RECORDER.reset(recorder::Recorder::new());
        locks::TABLE.reset(None);
        channel::after_fork_child();
        live::after_fork_child();
        filelocks::after_fork_child();
    }
    locks::EPOCH.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
    thread::with_state_unchecked(|s| s.after_fork_child());
    watchdog::after_fork_child();
}

extern "C" fn fini() {
    // Another thread may still be inside the recorder: wait a little, never
    // forever.
    let mut rec = None;
    for _ in 0..200 {
        rec = recorder::RECORDER.try_lock();
        if rec.is_some() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let Some(mut rec) = rec else { return };
    rec.flush_stats();
    if config::get().verbosity >= 1 {
        if let Some(path) = rec.path() {
            let dir = std::path::Path::new(path)
                .parent()
                .map(|d| d.display().to_string())
                .unwrap_or_default();
            crate::sys::say(&format!(
                "trace written to {path}; analyse it with: holdcheck report {dir}"
            ));
        }
    }
}
