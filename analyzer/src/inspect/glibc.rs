//! What glibc keeps in a lock's memory, and which futex word a blocked
//! thread sleeps on (x86_64).
//!
//! Layouts (`bits/struct_mutex.h`, `bits/struct_rwlock.h`) are ABI: fixed
//! "for binary compatibility". Which futex word a waiter sleeps on is the
//! rwlock algorithm of glibc 2.25 and later. Measured here on 2.36:
//!
//! | blocked in | futex word | value |
//! | --- | --- | --- |
//! | mutex lock | m+0 (`__lock`) | 2 |
//! | wrlock, a writer holds | rw+12 (`__writers_futex`) | 3 |
//! | rdlock, a writer holds / wrlock, readers hold | rw+8 (`__wrphase_futex`) | 3 / 2 |
//! | rdlock behind a queued writer (writer-preferring) | rw+0 (`__readers`) | readers |
//! | pthread_join | the thread's tid word | its tid |
//!
//! A process-shared mutex is waited on without `FUTEX_PRIVATE_FLAG`, and its
//! owner field may hold a thread of another process.

use super::memory;
use super::procfs::via;
use anyhow::{bail, Result};
use holdcheck_format::{LockKind, Mode};
use std::collections::HashSet;

/// Versions whose lock layouts and futex protocol this reads.
const KNOWN: std::ops::RangeInclusive<u32> = 25..=41;

/// The target's glibc version (`2.36`), from the banner in its libc.so.6.
pub fn version(pid: u32) -> Result<String> {
    let maps = std::fs::read_to_string(format!("/proc/{}/maps", via(pid)))?;
    let Some(path) = maps
        .lines()
        .filter_map(|l| l.split_whitespace().nth(5))
        .find(|p| p.contains("/libc.so.6") || p.contains("/libc-2."))
    else {
        bail!("it does not use glibc (no libc.so.6 mapped), so lock owners cannot be read");
    };
    // Through the process's root, in case it runs in a container.
    let bytes =
        std::fs::read(format!("/proc/{}/root{path}", via(pid))).or_else(|_| std::fs::read(path))?;
    let banner = b"release version ";
    let at = bytes
        .windows(banner.len())
        .position(|w| w == banner)
        .ok_or_else(|| anyhow::anyhow!("no version banner in {path}"))?;
    let rest = &bytes[at + banner.len()..];
    let end = rest
        .iter()
        .position(|&b| !(b.is_ascii_digit() || b == b'.'))
        .unwrap_or(0);
    Ok(String::from_utf8_lossy(&rest[..end])
        .trim_end_matches('.')
        .to_string())
}

/// Whether this glibc's lock layouts are known; the message says why not.
pub fn check(version: &str) -> Result<()> {
    let minor = version
        .strip_prefix("2.")
        .and_then(|m| m.split('.').next()?.parse::<u32>().ok());
    match minor {
        Some(m) if KNOWN.contains(&m) => Ok(()),
        _ => bail!(
            "its glibc {version} has lock layouts unknown to this holdcheck (it reads glibc 2.{}..2.{}), \
             so lock owners cannot be read",
            KNOWN.start(),
            KNOWN.end()
        ),
    }
}

/// What a thread blocked in `futex(uaddr, op, val)` waits for.
#[derive(Debug, Clone, PartialEq)]
pub enum FutexWait {
    Lock {
        addr: u64,
        kind: LockKind,
        /// The mode it wants.
        mode: Mode,
        /// The thread holding it for writing, if the lock says.
        owner: Option<u32>,
        /// Readers holding it (rwlock), whose tids are recorded nowhere.
        readers: u32,
    },
    /// A mutex whose owner thread, of process `process`, exited holding
    /// it: nobody can release it.
    Orphaned { addr: u64, owner: u32, process: u32 },
    /// pthread_join: waits for thread `tid` to exit.
    Join { tid: u32 },
    /// pthread_cond_wait on the condition variable at `addr` (laid out as
    /// glibc's, with this thread counted among its waiters).
    Cond { addr: u64 },
    /// sem_wait on the semaphore at `addr` (likewise).
    Semaphore { addr: u64 },
    /// pthread_barrier_wait on the barrier at `addr`: `arrived` of its
    /// `count` threads are in this round; a private barrier's threads
    /// still to come can only be this process's.
    Barrier {
        addr: u64,
        arrived: u32,
        count: u32,
        private: bool,
    },
    /// Another futex, or one whose object is not told apart: not a lock.
    Other,
}

// A pthread mutex's fields (glibc's `struct __pthread_mutex_s`, the same
// in every version inspect reads): offsets of the 32-bit words, and the
// `__kind` bit of a process-shared one.
const MUTEX_LOCK: usize = 0;
const MUTEX_COUNT: usize = 4;
const MUTEX_OWNER: usize = 8;
const MUTEX_NUSERS: usize = 12;
const MUTEX_KIND: usize = 16;
/// `__list`, 16 bytes: empty unless the mutex is robust.
const MUTEX_LIST: core::ops::Range<usize> = 24..40;
const MUTEX_SIZE: usize = 40;
const PSHARED_BIT: u32 = 128;

/// `__kind` bits of a robust and of a priority-inheritance mutex, whose
/// lock word holds its owner's tid (the kernel reads it there).
const KIND_ROBUST: u32 = 16;
const KIND_PI: u32 = 32;
/// `__kind` bits of lock elision (`PTHREAD_MUTEX_ELISION_NP`, `_NO_ELISION_NP`).
const ELISION_BITS: u32 = 0x300;

const FUTEX_WAIT: u64 = 0;
const FUTEX_LOCK_PI: u64 = 6;
const FUTEX_WAIT_BITSET: u64 = 9;
const FUTEX_LOCK_PI2: u64 = 13;
const FUTEX_PRIVATE_FLAG: u64 = 128;
/// A lock word's bit for "a thread waits", and its bits of the owner's tid
/// (futex(2), robust and PI futexes).
const FUTEX_WAITERS: u32 = 0x8000_0000;
const FUTEX_TID_MASK: u32 = 0x3fff_ffff;

/// A futex wait that is glibc's mutex lock: the mutex's 40 bytes and the
/// thread it names as its owner.
struct MutexWait {
    m: Vec<u8>,
    owner: u32,
}

impl MutexWait {
    fn kind(&self) -> u32 {
        memory::u32_at(&self.m, MUTEX_KIND)
    }
}

/// Whether `futex(uaddr, op, val)` is glibc locking a mutex, by each of
/// its protocols, and the owner it names:
/// - a normal, recursive, error-checking or adaptive mutex: `FUTEX_WAIT`
///   on `__lock` with 2 (`FUTEX_WAIT_BITSET` when timed), the owner in
///   `__owner`;
/// - a robust one: the same calls with the owner's tid and
///   `FUTEX_WAITERS`, the word it waits on;
/// - a priority-inheritance one: `FUTEX_LOCK_PI`, the owner's tid in the
///   word, kept there by the kernel.
///
/// The last two only where `__kind` says so and `__owner` agrees (glibc
/// sets it once the lock is taken). A timed wait on a word of 2 is an
/// rwlock's too: as a mutex's, only where `__kind` is a plain kind and
/// `__nusers` counts the owner.
fn mutex_wait(pid: u32, uaddr: u64, op: u64, val: u64) -> Option<MutexWait> {
    let cmd = op & 0x7f;
    let val = val as u32;
    let waits = cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET;
    let robust = waits && val & FUTEX_WAITERS != 0;
    let pi = cmd == FUTEX_LOCK_PI || cmd == FUTEX_LOCK_PI2;
    if !(robust || pi || waits && val == 2) {
        return None;
    }
    let m = memory::read(pid, uaddr, MUTEX_SIZE).ok()?;
    let recorded = memory::u32_at(&m, MUTEX_OWNER);
    if !robust && !pi {
        let plain = memory::u32_at(&m, MUTEX_KIND) & !(PSHARED_BIT | ELISION_BITS) <= 3;
        let counted = memory::u32_at(&m, MUTEX_NUSERS) >= 1;
        let timed = cmd == FUTEX_WAIT_BITSET;
        return (!timed || plain && counted).then_some(MutexWait { m, owner: recorded });
    }
    let (needed, owner) = if robust {
        (KIND_ROBUST, val & FUTEX_TID_MASK)
    } else {
        (KIND_PI, memory::u32_at(&m, MUTEX_LOCK) & FUTEX_TID_MASK)
    };
    let w = MutexWait { m, owner };
    (w.kind() & needed != 0 && owner != 0 && recorded == owner).then_some(w)
}

fn rwlock_at(pid: u32, base: u64) -> Option<Vec<u8>> {
    let b = memory::read(pid, base, 56).ok()?;
    let flags = memory::u32_at(&b, 48);
    let shared = memory::u32_at(&b, 28);
    (flags <= 2 && shared <= 1).then_some(b)
}

/// Resolves a futex wait to the lock it belongs to, checking each candidate
/// against the layouts (an owner must be a thread of the process).
pub fn classify(
    pid: u32,
    tids: &HashSet<u32>,
    uaddr: u64,
    op: u64,
    val: u64,
    timed: bool,
) -> FutexWait {
    let cmd = op & 0x7f;
    if cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET {
        let word = memory::read_u32(pid, uaddr).ok();
        if tids.contains(&(val as u32)) && word == Some(val as u32) {
            return FutexWait::Join { tid: val as u32 };
        }
    }
    let mutex = mutex_wait(pid, uaddr, op, val);
    if let Some(MutexWait { m, owner }) = &mutex {
        if let Some(process) = exited_owner_process(pid, m) {
            return FutexWait::Orphaned {
                addr: uaddr,
                owner: *owner,
                process,
            };
        }
    }
    // Its owner a thread here, or of the process sharing it with this one.
    let owned = |w: MutexWait| {
        (tids.contains(&w.owner) || shared_mutex_owner(pid, uaddr, op, val).is_some()).then_some(
            FutexWait::Lock {
                addr: uaddr,
                kind: LockKind::Mutex,
                mode: Mode::Write,
                owner: Some(w.owner),
                readers: 0,
            },
        )
    };
    // An untimed mutex lock and the kernel's PI lock are no other object's
    // waits; a timed one on a word of 2 may be an rwlock's: those first.
    if cmd != FUTEX_WAIT_BITSET {
        return mutex
            .and_then(owned)
            .or_else(|| barrier_wait(pid, uaddr, op, val))
            .unwrap_or(FutexWait::Other);
    }
    if let Some(rw) = rwlock_wait(pid, tids, uaddr, val as u32) {
        return rw;
    }
    if let Some(lock) = mutex.and_then(owned) {
        return lock;
    }
    cond_or_semaphore(pid, tids.len() as u32, uaddr, op, val, timed)
}

/// A `FUTEX_WAIT_BITSET` on one of an rwlock's futex words, as glibc's
/// rwlock waits: the lock, the mode wanted and who holds it.
fn rwlock_wait(pid: u32, tids: &HashSet<u32>, uaddr: u64, val: u32) -> Option<FutexWait> {
    let owner_of = |b: &[u8]| {
        let w = memory::u32_at(b, 24);
        tids.contains(&w).then_some(w)
    };
    let readers_of = |b: &[u8]| memory::u32_at(b, 0) >> 3;
    // A writer waiting for a writer: __writers_futex.
    if val == 3 {
        if let Some(b) = rwlock_at(pid, uaddr.wrapping_sub(12)) {
            if let Some(o) = owner_of(&b) {
                return Some(FutexWait::Lock {
                    addr: uaddr - 12,
                    kind: LockKind::Rwlock,
                    mode: Mode::Write,
                    owner: Some(o),
                    readers: 0,
                });
            }
        }
    }
    // __wrphase_futex: a reader behind a writer (3), a writer behind
    // readers (2).
    if let Some(b) = rwlock_at(pid, uaddr.wrapping_sub(8)) {
        if val == 3 {
            if let Some(o) = owner_of(&b) {
                return Some(FutexWait::Lock {
                    addr: uaddr - 8,
                    kind: LockKind::Rwlock,
                    mode: Mode::Read,
                    owner: Some(o),
                    readers: 0,
                });
            }
        } else if val == 2 && readers_of(&b) > 0 {
            return Some(FutexWait::Lock {
                addr: uaddr - 8,
                kind: LockKind::Rwlock,
                mode: Mode::Write,
                owner: None,
                readers: readers_of(&b),
            });
        }
    }
    // __readers: a reader queued behind a writer on a writer-preferring lock.
    if let Some(b) = rwlock_at(pid, uaddr) {
        if memory::u32_at(&b, 48) == 2 && readers_of(&b) > 0 {
            return Some(FutexWait::Lock {
                addr: uaddr,
                kind: LockKind::Rwlock,
                mode: Mode::Read,
                owner: None,
                readers: readers_of(&b),
            });
        }
    }
    None
}

// glibc's `struct __pthread_cond_s` (2.25 and later): byte offsets.
const COND_G_REFS: u64 = 16;
const COND_WREFS: u64 = 36;
const COND_G_SIGNALS: u64 = 40;
const COND_SIZE: usize = 48;
/// `__wrefs`: bit 0 process-shared, waiters counted from bit 3.
const WREFS_SHARED: u32 = 1;
// glibc's `struct new_sem` (64-bit): the value, the waiters, `private`
// (FUTEX_SHARED, 128, for a process-shared one).
const SEM_NWAITERS: usize = 4;
const SEM_PRIVATE: usize = 8;
const SEM_PAD: usize = 12;
const FUTEX_CLOCK_REALTIME: u64 = 256;

/// A `FUTEX_WAIT_BITSET` on a word of 0 is glibc's condition variable wait
/// (on `__g_signals[g]`) or its semaphore wait (on the value). Told by the
/// memory around the word: a condition variable that counts waiters in
/// `__wrefs` and in the group's `__g_refs` (no more than it has started,
/// in `__wseq`), or a semaphore that counts them in its own, its padding
/// zero; either shared exactly when the wait is not private, and with no
/// more waiters than the process has threads when private. An untimed
/// wait of glibc's names the realtime clock (Rust's std's condition
/// variable, a futex word of its own that may read 0, waits on the
/// monotonic one). Where both layouts or neither fit, it is not said which.
fn cond_or_semaphore(
    pid: u32,
    threads: u32,
    uaddr: u64,
    op: u64,
    val: u64,
    timed: bool,
) -> FutexWait {
    if val != 0 || !(timed || op & FUTEX_CLOCK_REALTIME != 0) {
        return FutexWait::Other;
    }
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let counted = |waiters: u32| waiters >= 1 && (!private || waiters <= threads);
    let cond = [0, 1].into_iter().find_map(|g| {
        let base = uaddr.checked_sub(COND_G_SIGNALS + 4 * g)?;
        let b = memory::read(pid, base, COND_SIZE).ok()?;
        let wseq = u64::from_ne_bytes(b[0..8].try_into().expect("8 bytes"));
        let refs = memory::u32_at(&b, (COND_G_REFS + 4 * g) as usize);
        let wrefs = memory::u32_at(&b, COND_WREFS as usize);
        let waiters = wrefs >> 3;
        let shared = wrefs & WREFS_SHARED != 0;
        (refs >= 2 && counted(waiters) && wseq >> 1 >= waiters as u64 && shared != private)
            .then_some(base)
    });
    let sem = memory::read(pid, uaddr, 16).ok().and_then(|b| {
        let shared = match memory::u32_at(&b, SEM_PRIVATE) {
            0 => false,
            128 => true,
            _ => return None,
        };
        (counted(memory::u32_at(&b, SEM_NWAITERS))
            && memory::u32_at(&b, SEM_PAD) == 0
            && shared != private)
            .then_some(uaddr)
    });
    match (cond, sem) {
        (Some(addr), None) => FutexWait::Cond { addr },
        (None, Some(addr)) => FutexWait::Semaphore { addr },
        _ => FutexWait::Other,
    }
}

// glibc's `struct pthread_barrier` (2.23 and later): `in`, then
// `current_round`, the futex word its waiters wait on with the round they
// read, then `count`, `shared` (glibc's FUTEX_PRIVATE, 0, or FUTEX_SHARED,
// 128) and `out`.
const BARRIER_ROUND: u64 = 4;
const BARRIER_SIZE: usize = 20;

/// An untimed `FUTEX_WAIT` on a barrier's `current_round` (see
/// [`barrier_at`]).
fn barrier_wait(pid: u32, uaddr: u64, op: u64, val: u64) -> Option<FutexWait> {
    let addr = uaddr.checked_sub(BARRIER_ROUND)?;
    let b = memory::read(pid, addr, BARRIER_SIZE).ok()?;
    let (arrived, count) = barrier_at(&b, op, val)?;
    Some(FutexWait::Barrier {
        addr,
        arrived,
        count,
        private: op & FUTEX_PRIVATE_FLAG != 0,
    })
}

/// The threads arrived in the round a barrier's waiter waits for the end
/// of, and its count, where `b` is laid out as a glibc barrier waited on
/// by `futex(&current_round, op, val)`: the round is the one waited with,
/// more threads entered it than it had, fewer than its count (the last one
/// in ends it), none left it, and it is shared exactly when the wait is.
fn barrier_at(b: &[u8], op: u64, val: u64) -> Option<(u32, u32)> {
    let at = |i: usize| memory::u32_at(b, 4 * i);
    let (entered, round, count, shared, out) = (at(0), at(1), at(2), at(3), at(4));
    let private = op & FUTEX_PRIVATE_FLAG != 0;
    let shared_ok = match shared {
        0 => private,
        128 => !private,
        _ => false,
    };
    let arrived = entered.checked_sub(round)?;
    (round as u64 == val
        && count >= 2
        && round % count == 0
        && arrived >= 1
        && arrived < count
        && out <= round
        && shared_ok)
        .then_some((arrived, count))
}

/// The process of the thread that holds the mutex `m` (its 40 bytes, read
/// from process `pid`), locked and contended, when that thread has exited.
/// Only a mutex laid out exactly as glibc leaves a locked one passes
/// (`__lock` 2, `__nusers` 1, `__kind` normal, recursive, error-checking
/// or adaptive, shared or not, `__count` 0 but for a recursive one,
/// `__list` empty): a word that only looks like a lock must not name a
/// thread that exited. The owner is read as a tid of this PID namespace;
/// of another namespace, or a shared mutex's owner whose process is gone
/// too (its process unknown), nothing is said.
fn exited_owner_process(pid: u32, m: &[u8]) -> Option<u32> {
    use super::procfs;
    let (lock, count, owner, nusers, kind) = (
        memory::u32_at(m, MUTEX_LOCK),
        memory::u32_at(m, MUTEX_COUNT),
        memory::u32_at(m, MUTEX_OWNER),
        memory::u32_at(m, MUTEX_NUSERS),
        memory::u32_at(m, MUTEX_KIND),
    );
    let list_empty = m[MUTEX_LIST].iter().all(|&b| b == 0);
    let shared = kind & PSHARED_BIT != 0;
    let kind = kind & !PSHARED_BIT;
    let counted = if kind == 1 { count >= 1 } else { count == 0 };
    if lock != 2
        || owner == 0
        || nusers != 1
        || kind > 3
        || !counted
        || !list_empty
        || !procfs::same_pid_namespace(pid)
    {
        return None;
    }
    if shared {
        // A zombie is still listed, with its process.
        let process = procfs::process_of_tid(owner)?;
        procfs::thread_exited(owner, None).then_some(process)
    } else {
        procfs::thread_exited(owner, Some(pid)).then_some(pid)
    }
}

/// The owner of a process-shared mutex that a futex wait of process `pid`
/// sleeps on, when a thread of another process owns it: (its tid, its
/// process). glibc marks such a mutex in `__kind` (`PTHREAD_MUTEX_PSHARED_BIT`)
/// and waits on it without `FUTEX_PRIVATE_FLAG`; its owner (see
/// [`mutex_wait`]) is a tid of whichever process locked it.
pub fn shared_mutex_owner(pid: u32, uaddr: u64, op: u64, val: u64) -> Option<(u32, u32)> {
    if op & FUTEX_PRIVATE_FLAG != 0 {
        return None;
    }
    let w = mutex_wait(pid, uaddr, op, val)?;
    let owner = w.owner;
    if w.kind() & PSHARED_BIT == 0 || owner == 0 {
        return None;
    }
    let process = super::procfs::process_of_tid(owner)?;
    (process != pid).then_some((owner, process))
}

/// Whether the rwlock at `addr` is writer-preferring.
pub fn writer_preferring(pid: u32, addr: u64) -> bool {
    memory::read_u32(pid, addr + 48).is_ok_and(|f| f == 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn robust_and_pi_mutex_waits_name_the_owner_in_the_lock_word() {
        let me = std::process::id();
        let mutex = |lock: u32, owner: u32, kind: u32| {
            let mut m = Box::new([0u8; MUTEX_SIZE]);
            for (at, v) in [(MUTEX_LOCK, lock), (MUTEX_OWNER, owner), (MUTEX_KIND, kind)] {
                m[at..at + 4].copy_from_slice(&v.to_ne_bytes());
            }
            m
        };
        let owner_of = |m: &[u8; MUTEX_SIZE], op: u64, val: u32| {
            mutex_wait(me, m.as_ptr() as u64, op, val as u64).map(|w| w.owner)
        };
        let tid = 4242;
        let robust = mutex(tid | FUTEX_WAITERS, tid, KIND_ROBUST);
        assert_eq!(
            owner_of(&robust, FUTEX_WAIT, tid | FUTEX_WAITERS),
            Some(tid)
        );
        // Not robust by its kind, or an owner field that disagrees: no.
        let plain = mutex(tid | FUTEX_WAITERS, tid, 0);
        assert_eq!(owner_of(&plain, FUTEX_WAIT, tid | FUTEX_WAITERS), None);
        let other = mutex(tid | FUTEX_WAITERS, 7, KIND_ROBUST);
        assert_eq!(owner_of(&other, FUTEX_WAIT, tid | FUTEX_WAITERS), None);
        // A tid with no waiters bit is a join's wait, not a lock's.
        assert_eq!(owner_of(&robust, FUTEX_WAIT, tid), None);

        let pi = mutex(tid | FUTEX_WAITERS, tid, KIND_PI | PSHARED_BIT);
        for op in [
            FUTEX_LOCK_PI,
            FUTEX_LOCK_PI2,
            FUTEX_LOCK_PI | FUTEX_PRIVATE_FLAG,
        ] {
            assert_eq!(owner_of(&pi, op, 0), Some(tid));
        }
        assert_eq!(owner_of(&robust, FUTEX_LOCK_PI, 0), None);
        let unowned = mutex(0, 0, KIND_PI);
        assert_eq!(owner_of(&unowned, FUTEX_LOCK_PI, 0), None);

        // A normal mutex: its owner field, as before.
        let normal = mutex(2, tid, 0);
        assert_eq!(owner_of(&normal, FUTEX_WAIT, 2), Some(tid));
        assert_eq!(owner_of(&normal, FUTEX_WAIT, 1), None);
    }

    #[test]
    fn only_a_locked_mutex_layout_names_an_exited_owner() {
        let me = std::process::id();
        // A tid above any pid_max: no such thread.
        let gone = 0x3fff_fff0u32;
        let mutex = |lock: u32, count: u32, owner: u32, nusers: u32, kind: u32| {
            let mut m = [0u8; MUTEX_SIZE];
            for (at, v) in [
                (MUTEX_LOCK, lock),
                (MUTEX_COUNT, count),
                (MUTEX_OWNER, owner),
                (MUTEX_NUSERS, nusers),
                (MUTEX_KIND, kind),
            ] {
                m[at..at + 4].copy_from_slice(&v.to_ne_bytes());
            }
            m
        };
        assert_eq!(exited_owner_process(me, &mutex(2, 0, gone, 1, 0)), Some(me));
        assert_eq!(exited_owner_process(me, &mutex(2, 3, gone, 1, 1)), Some(me));
        // Not locked and contended, counted wrongly, robust, not a kind,
        // or held by a thread that runs: nothing said.
        assert_eq!(exited_owner_process(me, &mutex(1, 0, gone, 1, 0)), None);
        assert_eq!(exited_owner_process(me, &mutex(2, 0, gone, 2, 0)), None);
        assert_eq!(exited_owner_process(me, &mutex(2, 1, gone, 1, 0)), None);
        assert_eq!(exited_owner_process(me, &mutex(2, 0, gone, 1, 16)), None);
        assert_eq!(exited_owner_process(me, &mutex(2, 0, gone, 1, 7)), None);
        assert_eq!(exited_owner_process(me, &mutex(2, 0, me, 1, 0)), None);
        let mut listed = mutex(2, 0, gone, 1, 0);
        listed[MUTEX_LIST.start] = 1;
        assert_eq!(exited_owner_process(me, &listed), None);
        // A shared mutex whose owner's process is gone too: unknown.
        assert_eq!(exited_owner_process(me, &mutex(2, 0, gone, 1, 128)), None);
    }

    #[test]
    fn a_barrier_wait_is_read_with_its_arrivals() {
        let barrier = |words: [u32; 5]| {
            words
                .iter()
                .flat_map(|w| w.to_ne_bytes())
                .collect::<Vec<u8>>()
        };
        let private = FUTEX_WAIT | FUTEX_PRIVATE_FLAG;
        // One of two in round 0, private; three of four in round 8, shared.
        assert_eq!(
            barrier_at(&barrier([1, 0, 2, 0, 0]), private, 0),
            Some((1, 2))
        );
        assert_eq!(
            barrier_at(&barrier([11, 8, 4, 128, 8]), FUTEX_WAIT, 8),
            Some((3, 4))
        );
        // Waited with another round, shared unlike the wait, a round that
        // is complete or not a multiple of the count, more left than
        // passed, a count of one, or nobody in: not a barrier's wait.
        for (words, op, val) in [
            ([1, 0, 2, 0, 0], private, 2),
            ([1, 0, 2, 128, 0], private, 0),
            ([1, 0, 2, 0, 0], FUTEX_WAIT, 0),
            ([2, 0, 2, 0, 0], private, 0),
            ([4, 3, 2, 0, 0], private, 3),
            ([3, 2, 2, 0, 4], private, 2),
            ([1, 0, 1, 0, 0], private, 0),
            ([0, 0, 2, 0, 0], private, 0),
        ] {
            assert_eq!(barrier_at(&barrier(words), op, val), None, "{words:?}");
        }
    }

    #[test]
    fn known_versions() {
        assert!(check("2.36").is_ok());
        assert!(check("2.41").is_ok());
        let e = check("2.17").unwrap_err().to_string();
        assert!(e.contains("glibc 2.17") && e.contains("unknown"), "{e}");
        assert!(check("").is_err());
    }

    #[test]
    fn this_process_glibc_is_read() {
        let v = version(std::process::id()).unwrap();
        assert!(v.starts_with("2."), "{v}");
    }
}
