//! Process life cycle: start-up, fork and exit.

use crate::{channel, config, live, locks, recorder, thread, watchdog};

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
    // SAFETY: the handlers are plain functions of this library.
    unsafe {
        libc::pthread_atfork(
            Some(before_fork),
            Some(after_fork_parent),
            Some(after_fork_child),
        )
    };
}

/// Takes the shim's internal locks so that the child does not inherit one
/// held by a thread that does not exist there. Order: recorder, then lock
/// table (the only nesting the shim has).
extern "C" fn before_fork() {
    core::mem::forget(recorder::RECORDER.lock());
    core::mem::forget(locks::TABLE.lock());
    channel::lock_caches();
    core::mem::forget(live::REGISTRY.lock());
    core::mem::forget(live::CHANNELS.lock());
}

extern "C" fn after_fork_parent() {
    release_all();
}

extern "C" fn after_fork_child() {
    release_all();
    // The child opens its own trace at its first fact (the recorder sees the
    // new pid); the forking thread's held locks stay held in the child. No
    // other thread, the watchdog included, exists there.
    thread::with_state_unchecked(|s| s.after_fork_child());
    live::after_fork_child();
    watchdog::after_fork_child();
}

fn release_all() {
    // SAFETY: before_fork locked each of them on this thread and forgot the
    // guards.
    unsafe {
        live::CHANNELS.force_unlock();
        live::REGISTRY.force_unlock();
        channel::unlock_caches();
        locks::TABLE.force_unlock();
        recorder::RECORDER.force_unlock();
    }
}

extern "C" fn fini() {
    // Another thread may still be inside the recorder: wait a little, never
    // forever.
    let Some(mut rec) = recorder::RECORDER.try_lock_for(std::time::Duration::from_millis(200))
    else {
        return;
    };
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
