//! The trace file of this process and the tables that deduplicate facts.
//!
//! Everything here runs on slow paths only (a fact not seen before), under one
//! internal lock (a futex, never a pthread lock, so the shim never sees its
//! own locking; see `sync`), taken through [`recorder`].
//!
//! Records are written outside that lock, in batches: a record is appended
//! to a pending buffer, and the thread that releases the lock with records
//! pending writes them (and whatever others append meanwhile) unless
//! another thread is writing already. A program's first seconds make most
//! of its facts at once (`manylocks --stress`: 4 000 records in 70 ms, on 4
//! threads): one `write` each, made under the lock, kept the other threads
//! asleep on it. Before an exec, an abort and at exit, [`drain`] waits
//! for the batch in flight.

use crate::config;
use crate::stack::{self, Stack};
use crate::sync::ForkMutex;
use crate::sys;
use crate::Fixed;
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use holdcheck_format::{LockKind, LockRef, Record, TRACE_PREFIX, TRACE_SUFFIX, TRACE_VERSION};
use rustix::fd::{BorrowedFd, OwnedFd};
use rustix::fs::{Mode, OFlags};
use std::collections::{HashMap, HashSet};

pub struct Recorder {
    /// The open trace file and the pid it belongs to; a different pid (fork,
    /// vfork, posix_spawn) opens a new one.
    file: Option<(TraceFd, u32)>,
    pub path: Option<String>,
    /// Fact (without its thread) → the threads that recorded it, at most
    /// THREADS_PER_FACT: a thread per task must not make the trace grow
    /// with the number of threads, but the analysis needs a few distinct
    /// threads per fact (a cycle needs another thread at each edge).
    fact_threads: HashMap<u64, Vec<u32>, Fixed>,
    /// Lock-order fact by class → instances written (at most
    /// [`SAMPLES_PER_CLASS_FACT`], and one more for each of the first
    /// [`THREADS_PER_FACT`] threads) and those threads.
    class_samples: HashMap<u64, (u32, [u32; THREADS_PER_FACT]), Fixed>,
    stacks: HashSet<u64, Fixed>,
    locks: HashSet<LockRef, Fixed>,
    threads: HashMap<u32, String, Fixed>,
    /// pthread_t → tid of the threads that started or recorded something,
    /// so a name set from another thread reaches the right record and a
    /// join knows whom it joined.
    pthreads: HashMap<libc::pthread_t, u32, Fixed>,
    /// Size of `pthreads` at which the exited threads are forgotten.
    pthreads_prune_at: usize,
    modules: HashSet<(String, u64), Fixed>,
    /// Held-across-call statistics: (fact id, [count, max_ns, written
    /// count, written max_ns]).
    stats: Vec<(u64, [u64; 4])>,
    /// Fact id → its place in `stats`.
    stat_of: HashMap<u64, usize, Fixed>,
    /// Per-thread fact keys → the place of their fact's statistics (see
    /// `facts::fact_identity`): a call counted is one lookup.
    aliases: HashMap<u64, usize, Fixed>,
    partial_said: HashSet<&'static str, Fixed>,
    /// Why the trace could not be created, for `open`.
    open_error: Option<String>,
    /// Records not written yet (whole lines), and whether a thread is
    /// writing a batch now (see the module's comment).
    pending: Vec<u8>,
    flushing: bool,
    /// The buffer of the batch written last, for the next batch.
    spare: Vec<u8>,
}

/// Distinct threads recorded per fact.
pub const THREADS_PER_FACT: usize = 4;

/// Instances written per lock-order fact by class: the evidence a class
/// finding shows, and the instance-level facts a cycle through locks of
/// one class needs (a ring of 64 locks of one array, each taken with the
/// next at the same sites, is 63 instances of one fact and one of
/// another). A longer cycle through one class is predicted by class.
pub const SAMPLES_PER_CLASS_FACT: u32 = 64;

static RECORDER: ForkMutex<Recorder> = ForkMutex::new(Recorder::new());

/// The recorder, locked; its records are written when the guard is dropped.
pub fn recorder() -> Rec {
    Rec(Some(RECORDER.lock()))
}

/// [`recorder`] if nobody holds it.
pub fn try_recorder() -> Option<Rec> {
    RECORDER.try_lock().map(|g| Rec(Some(g)))
}

/// The trace descriptor of the parent, in a fork child (nothing pending
/// is written: it is the parent's).
pub fn inherited_fd() -> Option<i32> {
    RECORDER.try_lock().and_then(|r| r.raw_fd())
}

/// In a fork child: a recorder of its own.
///
/// # Safety
/// As [`ForkMutex::reset`].
pub unsafe fn reset_in_child() {
    forget_written_stacks();
    RECORDER.reset(Recorder::new());
}

/// The locked recorder. Dropped, it writes what is pending, unless another
/// thread is writing (which then writes it too).
pub struct Rec(Option<std::sync::MutexGuard<'static, Recorder>>);

impl core::ops::Deref for Rec {
    type Target = Recorder;
    fn deref(&self) -> &Recorder {
        self.0
            .as_ref()
            .expect("a Rec holds its guard until dropped")
    }
}

impl core::ops::DerefMut for Rec {
    fn deref_mut(&mut self) -> &mut Recorder {
        self.0
            .as_mut()
            .expect("a Rec holds its guard until dropped")
    }
}

impl Drop for Rec {
    fn drop(&mut self) {
        if let Some(g) = self.0.take() {
            flush(g);
        }
    }
}

/// Writes the pending records, each batch outside the lock, until none is
/// left; nothing when another thread is at it. Releases the lock.
fn flush(mut g: std::sync::MutexGuard<'static, Recorder>) {
    if g.pending.is_empty() || g.flushing {
        return;
    }
    g.flushing = true;
    loop {
        let Some(opened) = g.file.as_ref().map(|(f, _)| f.opened()) else {
            g.pending = Vec::new();
            g.flushing = false;
            return;
        };
        let spare = core::mem::take(&mut g.spare);
        let batch = core::mem::replace(&mut g.pending, spare);
        drop(g);
        // Checked to still be the trace outside the lock (a system call
        // the threads appending need not wait for); reopened under it if
        // the program closed it.
        let fd = match opened {
            Some(o) if TraceFd::still(o) => Some(o.0),
            _ => RECORDER.lock().checked_fd(),
        };
        // SAFETY: the trace's descriptor, just checked to be it; only the
        // one thread flushing uses it meanwhile (the recorder closes it
        // only in a fork child, a process of its own).
        let written = fd.map(|fd| sys::write_all(unsafe { BorrowedFd::borrow_raw(fd) }, &batch));
        g = RECORDER.lock();
        match written {
            Some(Ok(())) => {}
            failed => {
                if let Some(Err(e)) = failed {
                    g.failed(&e.to_string());
                }
                // (None: `checked_fd` said why.)
                g.pending = Vec::new();
                g.flushing = false;
                return;
            }
        }
        // The buffer is kept for the next records (unless a burst made it
        // large): a batch appended while this one was written does not
        // grow a buffer from nothing.
        if batch.capacity() <= 1 << 20 {
            let mut empty = batch;
            empty.clear();
            if g.pending.capacity() == 0 {
                g.pending = empty;
            } else {
                g.spare = empty;
            }
        }
        if g.pending.is_empty() {
            g.flushing = false;
            return;
        }
    }
}

/// Waits until the records made so far are written: by this thread, or by
/// the one writing a batch now (at most about a second, never for ever).
/// Before an exec or an abort, which end the other threads, and at exit.
pub fn drain() {
    for _ in 0..1000 {
        let g = RECORDER.lock();
        if !g.flushing {
            return flush(g);
        }
        drop(g);
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

impl Recorder {
    pub const fn new() -> Self {
        Recorder {
            file: None,
            path: None,
            fact_threads: HashMap::with_hasher(Fixed::new()),
            class_samples: HashMap::with_hasher(Fixed::new()),
            stacks: HashSet::with_hasher(Fixed::new()),
            locks: HashSet::with_hasher(Fixed::new()),
            threads: HashMap::with_hasher(Fixed::new()),
            pthreads: HashMap::with_hasher(Fixed::new()),
            pthreads_prune_at: 1024,
            modules: HashSet::with_hasher(Fixed::new()),
            stats: Vec::new(),
            stat_of: HashMap::with_hasher(Fixed::new()),
            aliases: HashMap::with_hasher(Fixed::new()),
            partial_said: HashSet::with_hasher(Fixed::new()),
            open_error: None,
            pending: Vec::new(),
            flushing: false,
            spare: Vec::new(),
        }
    }

    /// Whether thread `tid`'s instance of fact `base` (a key without the
    /// thread) is to be written, and its identity: the thread's own while
    /// the fact has fewer than [`THREADS_PER_FACT`] threads, else that of
    /// the first thread that recorded it (so statistics add up there).
    pub fn thread_fact(&mut self, base: u64, tid: u32) -> (u64, bool) {
        let own = holdcheck_format::mix(base, tid as u64) | 1;
        let threads = self.fact_threads.entry(base).or_default();
        if threads.contains(&tid) {
            return (own, false);
        }
        if threads.len() < THREADS_PER_FACT {
            threads.push(tid);
            return (own, true);
        }
        (holdcheck_format::mix(base, threads[0] as u64) | 1, false)
    }

    /// Whether thread `tid` may write one more instance of the lock-order
    /// fact by class `key` (and claims it): while the fact has fewer than
    /// [`SAMPLES_PER_CLASS_FACT`], or from a thread it has none from yet.
    pub fn class_sample(&mut self, key: u64, tid: u32) -> bool {
        let (n, threads) = self
            .class_samples
            .entry(key)
            .or_insert((0, [0; THREADS_PER_FACT]));
        let known = threads.contains(&tid);
        let free = threads.iter().position(|&t| t == 0);
        if *n >= SAMPLES_PER_CLASS_FACT && (known || free.is_none()) {
            return false;
        }
        *n += 1;
        if let (false, Some(i)) = (known, free) {
            threads[i] = tid;
        }
        true
    }

    /// Whether [`Recorder::thread_fact`] would write thread `tid`'s
    /// instance of fact `base` now (without claiming it): a fact the trace
    /// already has needs no stack unwound for it.
    pub fn would_write(&self, base: u64, tid: u32) -> bool {
        self.fact_threads
            .get(&base)
            .is_none_or(|threads| !threads.contains(&tid) && threads.len() < THREADS_PER_FACT)
    }

    /// Writes the module table if this trace has none yet (a record with a
    /// code address and no stack needs it to be symbolised).
    pub fn ensure_modules(&mut self) {
        self.ensure_file();
        if self.modules.is_empty() {
            self.write_modules(stack::modules());
        }
    }

    /// Writes the modules this trace does not have yet.
    fn write_modules(&mut self, mods: Vec<stack::Module>) {
        for m in mods {
            if self.modules.insert((m.path.clone(), m.base)) {
                self.write(&Record::Module {
                    path: m.path,
                    base: m.base,
                    segments: m.segments,
                });
            }
        }
    }

    /// Writes a stack record unless it is already in the trace.
    pub fn stack(&mut self, st: &Stack, mut modules: Option<Vec<stack::Module>>) -> u64 {
        self.ensure_file();
        if modules.is_none() && self.modules.is_empty() {
            // A new trace (first stack, or a fork child's) needs them all.
            modules = Some(stack::modules());
        }
        if let Some(mods) = modules {
            self.write_modules(mods);
        }
        let id = st.id();
        if self.stacks.insert(id) {
            self.write(&Record::Stack {
                id,
                frames: st.frames().to_vec(),
            });
        }
        if let Some((_, pid)) = &self.file {
            WRITTEN_STACKS[id as usize % WRITTEN_STACKS.len()].store(id, Ordering::Relaxed);
            WRITTEN_STACKS_PID.store(*pid, Ordering::Relaxed);
        }
        id
    }

    /// Writes a lock's metadata unless it is already in the trace.
    ///
    /// # Safety
    /// `lock.addr` must point at a live lock of `kind`.
    pub unsafe fn lock(&mut self, lock: LockRef, kind: LockKind) {
        if self.locks.insert(lock) {
            // SAFETY: as this function's.
            self.write(&unsafe { lock_record(lock, kind) });
        }
    }

    /// Whether this trace has no record of `lock` yet (not claimed): its
    /// record can be made before the recorder is locked again to write it
    /// ([`Prepared`]).
    pub fn unwritten(&self, lock: LockRef) -> bool {
        !self.locks.contains(&lock)
    }

    /// Writes what was prepared outside the lock: the record of each of its
    /// locks this trace still has none of, then its fact.
    ///
    /// # Safety
    /// As [`Recorder::lock`], for each of the prepared locks.
    pub unsafe fn write_prepared(&mut self, p: &Prepared) {
        self.ensure_file();
        if self.file.is_none() {
            return;
        }
        for (lock, kind, line) in &p.locks {
            if !self.locks.insert(*lock) {
                continue;
            }
            match line {
                Some(range) => self.pending.extend_from_slice(&p.lines[range.clone()]),
                // Known when it was prepared, and no more (the tables of a
                // fork child's new trace are empty).
                // SAFETY: as this function's.
                None => self.write(&unsafe { lock_record(*lock, *kind) }),
            }
        }
        self.pending.extend_from_slice(&p.lines[p.fact.clone()]);
    }

    /// Writes the thread's name the first time the thread records
    /// something (a later rename is seen by the `pthread_setname_np` and
    /// `prctl` hooks).
    pub fn thread(&mut self, tid: u32) {
        if self.threads.contains_key(&tid) {
            return;
        }
        let name = sys::thread_name(None);
        // SAFETY: pthread_self has no preconditions.
        self.remember_pthread(unsafe { libc::pthread_self() }, tid);
        self.name_thread(tid, name);
    }

    /// Maps a pthread handle to its thread. Detached threads are never
    /// joined: when the map has grown, the threads that are gone are
    /// forgotten (a join of one of them then orders nothing, which only
    /// makes the analysis more careful).
    fn remember_pthread(&mut self, handle: libc::pthread_t, tid: u32) {
        if self.pthreads.len() >= self.pthreads_prune_at {
            self.pthreads
                .retain(|_, t| rustix::fs::stat(format!("/proc/self/task/{t}").as_str()).is_ok());
            self.pthreads_prune_at = (self.pthreads.len() * 2).max(1024);
        }
        self.pthreads.insert(handle, tid);
    }

    /// Thread `tid` (this one) was created by `parent` at the end of its
    /// phase `seq`.
    pub fn started(&mut self, tid: u32, parent: u32, seq: u32, stack: u64) {
        // SAFETY: pthread_self has no preconditions.
        let handle = unsafe { libc::pthread_self() };
        self.remember_pthread(handle, tid);
        self.write(&Record::ThreadStart {
            tid,
            parent,
            seq,
            handle: handle as u64,
            stack: (stack != 0).then_some(stack),
        });
    }

    /// The thread behind a handle about to be joined (it cannot be reused
    /// before the join returns).
    pub fn pthread_tid(&self, handle: libc::pthread_t) -> Option<u32> {
        self.pthreads.get(&handle).copied()
    }

    /// Thread `tid` joined `joined` at the end of its phase `seq`.
    pub fn joined(&mut self, tid: u32, handle: libc::pthread_t, joined: u32, seq: u32) {
        self.pthreads.remove(&handle);
        self.write(&Record::ThreadJoined { tid, joined, seq });
    }

    pub fn name_thread(&mut self, tid: u32, name: String) {
        if self.threads.get(&tid) != Some(&name) {
            self.threads.insert(tid, name.clone());
            self.write(&Record::Thread { tid, name });
        }
    }

    /// `pthread_setname_np(thread, name)` succeeded: if that thread already
    /// recorded facts under its old name, record the new one.
    pub fn renamed(&mut self, thread: libc::pthread_t, name: &str) {
        let Some(&tid) = self.pthreads.get(&thread) else {
            return; // its first fact will read the new name
        };
        // A pthread_t is reused after join: only a live task keeps the name.
        if rustix::fs::stat(format!("/proc/self/task/{tid}").as_str()).is_err() {
            self.pthreads.remove(&thread);
            return;
        }
        self.name_thread(tid, name.to_string());
    }

    /// Counts one held-across-call and writes its statistics when they grew
    /// enough (count a power of two, or the longest call doubled), so the
    /// trace stays small and is never far behind.
    /// A per-thread key of a fact (it changes with the lock epoch) stands
    /// for the fact `id`.
    pub fn alias_fact(&mut self, key: u64, id: u64) {
        let stats = &mut self.stats;
        let at = *self.stat_of.entry(id).or_insert_with(|| {
            stats.push((id, [0; 4]));
            stats.len() - 1
        });
        self.aliases.insert(key, at);
    }

    /// Counts `calls` calls of the held-across-call fact `key` stands for,
    /// the longest `ns` long. Written when the count passes a power of
    /// two, and at each doubling of the longest beyond 1 ms.
    pub fn call_stats(&mut self, key: u64, calls: u64, ns: u64) {
        let Some(&at) = self.aliases.get(&key) else {
            return;
        };
        let (id, s) = &mut self.stats[at];
        let id = *id;
        let before = s[0];
        s[0] += calls;
        s[1] = s[1].max(ns);
        // A power of two in (before, after]: the highest bit moved.
        let crossed = s[0].checked_ilog2() != before.checked_ilog2();
        if crossed || s[1] >= s[3].saturating_mul(2).max(1_000_000) {
            let (count, max_ns) = (s[0], s[1]);
            s[2] = count;
            s[3] = max_ns;
            self.write(&Record::CallStats { id, count, max_ns });
        }
    }

    /// Writes every statistic not yet on disk (at exit).
    pub fn flush_stats(&mut self) {
        let pending: Vec<(u64, u64, u64)> = self
            .stats
            .iter_mut()
            .filter(|(_, s)| s[0] != s[2] || s[1] != s[3])
            .map(|(id, s)| {
                s[2] = s[0];
                s[3] = s[1];
                (*id, s[0], s[1])
            })
            .collect();
        for (id, count, max_ns) in pending {
            self.write(&Record::CallStats { id, count, max_ns });
        }
    }

    /// Says once per reason that the analysis of this process is partial.
    pub fn partial(&mut self, reason: &'static str) {
        if self.partial_said.insert(reason) {
            self.write(&Record::Partial {
                reason: reason.to_string(),
            });
        }
    }

    /// Appends a record, written when the recorder is released (see
    /// [`recorder`]).
    pub fn write(&mut self, rec: &Record) {
        self.ensure_file();
        if self.file.is_none() {
            return;
        }
        // Serialised in place: no line of its own to allocate. A record
        // that cannot be serialised (none fails) is left out.
        let _ = rec.write_line(&mut self.pending);
    }

    /// [`Self::write`] from a thread that may be a vfork child's (an
    /// exec's record): the child's trace gets it, not its parent's.
    pub fn write_as_own_process(&mut self, rec: &Record) {
        self.ensure_own_file();
        self.write(rec);
    }

    /// Whether a thread is writing a batch of records now.
    pub fn flushing(&self) -> bool {
        self.flushing
    }

    /// The trace's descriptor, checked to still be the trace (reopened if
    /// the program closed it); None when there is none, or no more.
    fn checked_fd(&mut self) -> Option<i32> {
        use rustix::fd::AsRawFd;
        let path = self.path.clone().unwrap_or_default();
        let (fd, _) = self.file.as_mut()?;
        match fd.checked(&path) {
            Ok(fd) => Some(fd.as_raw_fd()),
            Err(why) => {
                self.failed(&why);
                None
            }
        }
    }

    /// The trace cannot be written: recording stops.
    fn failed(&mut self, why: &str) {
        let path = self.path.clone().unwrap_or_default();
        if let Some((fd, _)) = self.file.take() {
            fd.abandon();
        }
        config::go_passive(&format!("cannot write trace {path}: {why}"));
    }

    /// Opens this process's trace file if it has none (or the pid changed:
    /// a fork child starts its own trace, with all tables empty).
    fn ensure_file(&mut self) {
        // Each record is written after this check: a system call each was
        // a tenth of the cost of a program's first facts.
        if matches!(&self.file, Some((_, p)) if sys::still_process(*p)) {
            return;
        }
        self.ensure_own_file();
    }

    /// [`Self::ensure_file`], asking the kernel which process this is: a
    /// vfork child (which shares its parent's memory, and so its mark)
    /// writes to a trace of its own.
    fn ensure_own_file(&mut self) {
        let pid = sys::getpid();
        if matches!(&self.file, Some((_, p)) if *p == pid) {
            sys::mark_process(pid);
            return;
        }
        if self.file.is_some() || self.path.is_some() {
            *self = Recorder::new();
            forget_written_stacks();
            crate::locks::EPOCH.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
        }
        if !config::active() {
            return;
        }
        match open_trace(pid) {
            Ok((fd, path)) => {
                sys::mark_process(pid);
                self.file = Some((TraceFd::new(fd), pid));
                self.path = Some(path);
                let exe = std::fs::read_link("/proc/self/exe")
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_default();
                let cmdline = sys::read_small("/proc/self/cmdline")
                    .unwrap_or_default()
                    .split(|&b| b == 0)
                    .filter(|s| !s.is_empty())
                    .map(|s| String::from_utf8_lossy(s).into_owned())
                    .collect();
                self.write(&Record::Header {
                    version: TRACE_VERSION,
                    pid,
                    ppid: rustix::process::getppid().map_or(0, |p| p.as_raw_nonzero().get() as u32),
                    exe,
                    cmdline,
                    call_clock_res_ns: Some(crate::sys::coarse_resolution_ns()),
                });
            }
            Err(why) => {
                config::go_passive(&why);
                self.open_error = Some(why);
            }
        }
    }

    /// Opens the trace file now (at start-up) rather than at the first fact.
    /// Returns why it could not, if it could not.
    pub fn open(&mut self) -> Result<(), String> {
        self.ensure_file();
        match self.open_error.take() {
            Some(why) => Err(why),
            None => Ok(()),
        }
    }

    /// The descriptor of this trace (in a fork child: the parent's, which
    /// the child inherited).
    pub fn raw_fd(&self) -> Option<i32> {
        use rustix::fd::AsRawFd;
        self.file
            .as_ref()
            .and_then(|(f, _)| f.fd.as_ref())
            .map(|fd| fd.as_raw_fd())
    }

    pub fn path(&self) -> Option<&str> {
        self.path.as_deref()
    }
}

/// The trace's descriptor, kept out of the program's way: on a high number
/// (a daemon that closes its descriptors and opens a file must not get
/// this one's number), close-on-exec, and checked to still be the trace
/// (device and inode) before every write. A program that closed it and
/// reused the number owns that descriptor now: it is forgotten, never
/// written or closed, and the trace is reopened by its path.
pub struct TraceFd {
    fd: Option<OwnedFd>,
    dev: u64,
    ino: u64,
}

impl TraceFd {
    fn new(fd: OwnedFd) -> Self {
        let fd = high(fd);
        let (dev, ino) = rustix::fs::fstat(&fd).map_or((0, 0), |st| (st.st_dev, st.st_ino));
        TraceFd {
            fd: Some(fd),
            dev,
            ino,
        }
    }

    fn is_ours(&self, fd: &OwnedFd) -> bool {
        use rustix::fd::AsRawFd;
        Self::still((fd.as_raw_fd(), self.dev, self.ino))
    }

    /// The descriptor's number and the file it was opened as, for
    /// [`TraceFd::still`] outside the recorder's lock.
    fn opened(&self) -> Option<(i32, u64, u64)> {
        use rustix::fd::AsRawFd;
        Some((self.fd.as_ref()?.as_raw_fd(), self.dev, self.ino))
    }

    /// Whether descriptor `fd` is still the file (`dev`, `ino`) it was
    /// opened as.
    fn still((fd, dev, ino): (i32, u64, u64)) -> bool {
        // SAFETY: fstat of a number the program may have closed or reused
        // reads nothing of it but its metadata (or fails).
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        rustix::fs::fstat(fd).is_ok_and(|st| st.st_dev == dev && st.st_ino == ino)
    }

    /// The descriptor, if it still is the trace, or the trace reopened.
    fn checked(&mut self, path: &str) -> Result<&OwnedFd, String> {
        if let Some(fd) = self.fd.take() {
            if self.is_ours(&fd) {
                return Ok(self.fd.insert(fd));
            }
            core::mem::forget(fd); // the program's descriptor now
        }
        let flags = OFlags::WRONLY | OFlags::APPEND | OFlags::NOFOLLOW | OFlags::CLOEXEC;
        let fd = rustix::fs::open(path, flags, Mode::empty())
            .map_err(|e| format!("the program closed it, and it cannot be reopened: {e}"))?;
        if !self.is_ours(&fd) {
            return Err("the program closed it, and another file has its name now".into());
        }
        Ok(self.fd.insert(high(fd)))
    }

    /// Gives up the descriptor without closing it if it may not be ours.
    fn abandon(mut self) {
        if let Some(fd) = self.fd.take() {
            if !self.is_ours(&fd) {
                core::mem::forget(fd);
            }
        }
    }
}

/// The same file on a descriptor near the top of the program's range.
fn high(fd: OwnedFd) -> OwnedFd {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1024)
        .min(1 << 20) as u32;
    for min in [limit.saturating_sub(32), limit / 2, 256] {
        if min <= 3 {
            continue;
        }
        if let Ok(h) = rustix::io::fcntl_dupfd_cloexec(&fd, min as i32) {
            return h; // `fd` is closed on return
        }
    }
    fd
}

/// Creates `DIR/holdcheck.<pid>.<n>.trace`, mode 0600, never following a
/// symlink and never reusing a file (an exec keeps the pid: n counts up).
fn open_trace(pid: u32) -> Result<(OwnedFd, String), String> {
    let cfg = config::get();
    let dir = &cfg.dir;
    if cfg.dir_is_default {
        match rustix::fs::mkdir(dir.as_str(), Mode::from_raw_mode(0o700)) {
            Ok(()) | Err(rustix::io::Errno::EXIST) => {}
            Err(e) => return Err(format!("cannot create trace directory {dir}: {e}")),
        }
        let st = rustix::fs::lstat(dir.as_str()).map_err(|e| format!("cannot stat {dir}: {e}"))?;
        // SAFETY: getuid has no preconditions.
        let uid = unsafe { libc::getuid() };
        let is_dir = st.st_mode & libc::S_IFMT == libc::S_IFDIR;
        if !is_dir || st.st_uid != uid || st.st_mode & 0o022 != 0 {
            return Err(format!(
                "default trace directory {dir} is not a private directory of uid {uid}; set HOLDCHECK_DIR"
            ));
        }
    }
    for n in 0..10_000u32 {
        let path = format!("{dir}/{TRACE_PREFIX}{pid}.{n}{TRACE_SUFFIX}");
        let flags = OFlags::WRONLY
            | OFlags::CREATE
            | OFlags::EXCL
            | OFlags::NOFOLLOW
            | OFlags::APPEND
            | OFlags::CLOEXEC;
        match rustix::fs::open(path.as_str(), flags, Mode::from_raw_mode(0o600)) {
            Ok(fd) => return Ok((fd, path)),
            Err(rustix::io::Errno::EXIST) => continue,
            Err(e) => return Err(format!("cannot create trace file {path}: {e}")),
        }
    }
    Err(format!(
        "cannot create a trace file in {dir}: too many files for pid {pid}"
    ))
}

/// The record of a lock.
///
/// # Safety
/// As [`Recorder::lock`].
unsafe fn lock_record(lock: LockRef, kind: LockKind) -> Record {
    // SAFETY: as this function's.
    let p = unsafe { crate::locks::props(lock.addr as usize, kind) };
    Record::Lock {
        lock,
        kind,
        writer_preferring: p.writer_preferring,
        recursive: p.recursive,
        file: (kind == LockKind::File)
            .then(|| crate::filelocks::path_of(lock.addr as usize))
            .flatten(),
        init: crate::locks::init_site(lock.addr as usize),
    }
}

/// A fact and the records of its locks, serialised before the recorder is
/// locked to write them ([`Recorder::write_prepared`]): while a program
/// makes its first facts on several threads at once, the others wait on
/// the recorder for a copy, not for a serialisation (`manylocks --stress`
/// spends its first seconds so).
pub struct Prepared {
    lines: Vec<u8>,
    /// Each lock of the fact, with its record's place in `lines` if it
    /// was made.
    locks: Vec<(LockRef, LockKind, Option<core::ops::Range<usize>>)>,
    fact: core::ops::Range<usize>,
}

impl Prepared {
    /// `fact`, with the records of its `locks` that are `unwritten` (see
    /// [`Recorder::unwritten`]).
    ///
    /// # Safety
    /// As [`Recorder::lock`], for each of `locks`.
    pub unsafe fn new(fact: &Record, locks: &[(LockRef, LockKind, bool)]) -> Prepared {
        let mut lines = Vec::with_capacity(256 * (locks.len() + 1));
        let mut prepared = Vec::with_capacity(locks.len());
        for &(lock, kind, unwritten) in locks {
            let mut line = None;
            if unwritten {
                let start = lines.len();
                // SAFETY: as this function's. A record that cannot be
                // serialised (none fails) is left out.
                if unsafe { lock_record(lock, kind) }
                    .write_line(&mut lines)
                    .is_ok()
                {
                    line = Some(start..lines.len());
                }
            }
            prepared.push((lock, kind, line));
        }
        let start = lines.len();
        let _ = fact.write_line(&mut lines);
        Prepared {
            fact: start..lines.len(),
            lines,
            locks: prepared,
        }
    }
}

/// Some of the stacks this process's trace has, by id (direct-mapped): a
/// fact whose stack is one of them takes no lock for it. Without it, each
/// of a program's first facts, made on several threads at once, also
/// waited on the recorder for its stack (`manylocks --stress`: 2 000
/// facts, 3 stacks). Emptied with the tables; `WRITTEN_STACKS_PID` is the
/// process they are of (a fork child's trace has none of them).
static WRITTEN_STACKS: [AtomicU64; 64] = [const { AtomicU64::new(0) }; 64];
static WRITTEN_STACKS_PID: AtomicU32 = AtomicU32::new(0);

/// Forgets [`WRITTEN_STACKS`] (new tables, for a new trace).
fn forget_written_stacks() {
    WRITTEN_STACKS_PID.store(0, Ordering::Relaxed);
    for s in &WRITTEN_STACKS {
        s.store(0, Ordering::Relaxed);
    }
}

/// Captures a stack and writes it (with any new modules) to the trace.
pub fn record_stack(depth: usize) -> u64 {
    let st = stack::capture(depth);
    let modules = stack::modules_changed().then(stack::modules);
    let id = st.id();
    let pid = WRITTEN_STACKS_PID.load(Ordering::Relaxed);
    if modules.is_none()
        && WRITTEN_STACKS[id as usize % WRITTEN_STACKS.len()].load(Ordering::Relaxed) == id
        && pid != 0
        && sys::still_process(pid)
    {
        return id;
    }
    recorder().stack(&st, modules)
}
