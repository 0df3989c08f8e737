//! libholdcheck.so — the part of holdcheck that runs inside the target.
//!
//! Loaded with `LD_PRELOAD`, it interposes the pthread lock functions and the
//! calls that can block on another party, keeps a per-thread held-lock stack,
//! and writes deduplicated facts (lock order, locks held across blocking
//! calls, queue dependencies) to one trace file per process under
//! `HOLDCHECK_DIR`. The analyzer (`holdcheck report`) turns them into findings.
//!
//! Rules it lives by: the uncontended fast path only pushes and pops the
//! held stack; stacks, allocation and the internal lock are for slow paths
//! (a fact not seen before); interposed calls made by the shim itself pass
//! through; on any internal failure the shim says one line and goes passive.

// The unit-test build leaves the exported hooks out (a test binary must not
// interpose its own pthread calls), so what only they use looks unused there.
#![cfg_attr(test, allow(dead_code))]

#[cfg(not(target_arch = "x86_64"))]
compile_error!("the holdcheck shim supports x86_64 Linux (glibc) only");

mod alloc;
mod channel;
mod config;
mod facts;
mod filelocks;
#[cfg(not(test))]
mod hooks;
mod lifecycle;
mod live;
mod locks;
mod real;
mod recorder;
mod stack;
mod steer;
mod sync;
mod sys;
mod thread;
mod untraced;
mod unwind;
mod watchdog;

/// The hasher of the shim's maps, which can be built in a `static`
/// initialiser: FxHash (the keys are addresses and fact ids, already
/// mixed; SipHash was most of a locked call's cost).
type Fixed = core::hash::BuildHasherDefault<rustc_hash::FxHasher>;
