//! Lock identity and metadata.
//!
//! A lock is (address, generation): `init` and `destroy` start a new
//! generation, so an address reused for another lock is another node. The
//! table is touched only on slow paths (a new fact) and by init/destroy; the
//! fast path never looks a lock up.

use crate::sync::ForkMutex;
use core::sync::atomic::{AtomicU64, Ordering};
use holdcheck_format::{LockKind, LockRef};
use std::collections::HashMap;

/// Bumped whenever a known lock changes generation; per-thread caches of
/// recorded facts include it, so they never match a fact of an older lock.
pub static EPOCH: AtomicU64 = AtomicU64::new(1);

pub static TABLE: ForkMutex<Option<HashMap<usize, u32>>> = ForkMutex::new(None);

/// The current identity of the lock at `addr`.
pub fn lock_ref(addr: usize) -> LockRef {
    let mut t = TABLE.lock();
    let gen = *t.get_or_insert_with(HashMap::new).entry(addr).or_insert(0);
    LockRef {
        addr: addr as u64,
        gen,
    }
}

/// `init` or `destroy` of the lock at `addr`: later uses are a new lock.
pub fn new_generation(addr: usize) {
    let mut t = TABLE.lock();
    if let Some(gen) = t.as_mut().and_then(|m| m.get_mut(&addr)) {
        *gen += 1;
        EPOCH.fetch_add(1, Ordering::Relaxed);
    }
}

pub fn epoch() -> u64 {
    EPOCH.load(Ordering::Relaxed)
}

/// What glibc 2.36 keeps in a lock's memory that the analysis needs.
pub struct LockProps {
    pub writer_preferring: bool,
    pub recursive: bool,
}

/// Reads a lock's kind from its memory (glibc 2.36, x86_64 layouts:
/// `pthread_mutex_t.__kind` at 16, `pthread_rwlock_t.__flags` at 48).
///
/// # Safety
/// `addr` must point at a live lock of `kind`.
pub unsafe fn props(addr: usize, kind: LockKind) -> LockProps {
    match kind {
        LockKind::Mutex => {
            let k = core::ptr::read_volatile((addr + 16) as *const i32);
            LockProps {
                writer_preferring: false,
                // PTHREAD_MUTEX_RECURSIVE_NP, also with the robust,
                // priority and process-shared bits set.
                recursive: k & 3 == 1,
            }
        }
        LockKind::File => LockProps {
            writer_preferring: false,
            recursive: false,
        },
        LockKind::Rwlock => {
            let flags = core::ptr::read_volatile((addr + 48) as *const u32);
            LockProps {
                // Only PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP (2) makes
                // glibc block new readers behind a waiting writer;
                // PREFER_WRITER_NP (1) behaves as PREFER_READER.
                writer_preferring: flags == 2,
                recursive: false,
            }
        }
    }
}
