//! The shim's own system calls. They go straight to the kernel (`rustix`),
//! never through libc's `write`/`read`, which the shim itself interposes.

use rustix::fd::{AsFd, OwnedFd};
use rustix::fs::{Mode, OFlags};

/// Prints `holdcheck: <msg>` on stderr in one write.
pub fn say(msg: &str) {
    let mut line = Vec::with_capacity(msg.len() + 12);
    line.extend_from_slice(b"holdcheck: ");
    line.extend_from_slice(msg.as_bytes());
    if !msg.ends_with('\n') {
        line.push(b'\n');
    }
    say_bytes(&line);
}

/// Says `msg` to the person at the terminal, not into the program's
/// output (a test that checks its child's stderr must not find it there):
/// on the controlling terminal, and only while this process is in its
/// foreground (a background job that writes to it may be stopped, `stty
/// tostop`). Without a terminal (a daemon, a CI job), nothing.
pub fn say_to_terminal(msg: &str) {
    use rustix::fs::{open, Mode, OFlags};
    let flags = OFlags::WRONLY | OFlags::NOCTTY | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let Ok(tty) = open("/dev/tty", flags, Mode::empty()) else {
        return;
    };
    if rustix::termios::tcgetpgrp(&tty).ok() == Some(rustix::process::getpgrp()) {
        let _ = write_all(&tty, format!("holdcheck: {msg}\n").as_bytes());
    }
}

/// Writes raw bytes to stderr, ignoring failure (there is nobody to tell),
/// but only while descriptor 2 is still the stderr the program started
/// with: a daemon that closed it and opened a file of its own on it must
/// not find the shim's messages in its data.
pub fn say_bytes(bytes: &[u8]) {
    let now = stderr_identity();
    let first = *STDERR_AT_START.get_or_init(|| now);
    if now.is_some() && now == first {
        let _ = write_all(rustix::stdio::stderr(), bytes);
    }
}

/// What descriptor 2 was when the shim started (device, inode).
static STDERR_AT_START: std::sync::OnceLock<Option<(u64, u64)>> = std::sync::OnceLock::new();

/// Notes what stderr is, at start-up (and in a child after exec, which
/// starts anew).
pub fn note_stderr() {
    let _ = STDERR_AT_START.get_or_init(stderr_identity);
}

/// What descriptor 2 is now (device, inode), if it is open.
fn stderr_identity() -> Option<(u64, u64)> {
    rustix::fs::fstat(rustix::stdio::stderr())
        .ok()
        .map(|st| (st.st_dev, st.st_ino))
}

pub fn write_all(fd: impl AsFd, mut bytes: &[u8]) -> rustix::io::Result<()> {
    while !bytes.is_empty() {
        match rustix::io::write(&fd, bytes) {
            Ok(0) => return Err(rustix::io::Errno::NOSPC),
            Ok(n) => bytes = &bytes[n..],
            Err(rustix::io::Errno::INTR) => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads a small file (a /proc entry) whole.
/// A thread's name (`comm`): this thread's (None) or thread `tid`'s of
/// this process; empty when it cannot be read (the thread is gone).
pub fn thread_name(tid: Option<u32>) -> String {
    let path = match tid {
        None => "/proc/thread-self/comm".to_string(),
        Some(t) => format!("/proc/self/task/{t}/comm"),
    };
    read_small(&path)
        .map(|b| String::from_utf8_lossy(&b).trim_end().to_string())
        .unwrap_or_default()
}

pub fn read_small(path: &str) -> Option<Vec<u8>> {
    let fd: OwnedFd =
        rustix::fs::open(path, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty()).ok()?;
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match rustix::io::read(&fd, &mut buf) {
            Ok(0) => return Some(out),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(rustix::io::Errno::INTR) => continue,
            Err(_) => return Some(out),
        }
        if out.len() > 1 << 20 {
            return Some(out);
        }
    }
}

pub fn gettid() -> u32 {
    rustix::thread::gettid().as_raw_nonzero().get() as u32
}

/// The current pid from the kernel (not a cached value: vfork and raw
/// `clone` children must see their own).
pub fn getpid() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

/// A word in a page the kernel empties in a fork child (`MADV_WIPEONFORK`,
/// Linux 4.14), however the child was made (glibc's fork, a raw `clone`):
/// while it holds a pid, this is still that process, known without a
/// system call. A child that shares this memory (vfork) reads its
/// parent's pid there: a write that must know (an exec's) asks [`getpid`].
static PROCESS_MARK: core::sync::atomic::AtomicPtr<core::sync::atomic::AtomicU32> =
    core::sync::atomic::AtomicPtr::new(core::ptr::null_mut());

/// Notes that this process is `pid`, for [`still_process`] (made on first
/// use; without it, `still_process` asks the kernel).
pub fn mark_process(pid: u32) {
    use core::sync::atomic::Ordering;
    let mut mark = PROCESS_MARK.load(Ordering::Acquire);
    if mark.is_null() {
        use rustix::mm::{madvise, mmap_anonymous, munmap, Advice, MapFlags, ProtFlags};
        let size = 4096;
        let flags = ProtFlags::READ | ProtFlags::WRITE;
        // SAFETY: a new anonymous mapping, nobody else's memory.
        let Ok(page) =
            (unsafe { mmap_anonymous(core::ptr::null_mut(), size, flags, MapFlags::PRIVATE) })
        else {
            return;
        };
        // SAFETY: the mapping just made.
        if unsafe { madvise(page, size, Advice::LinuxWipeOnFork) }.is_err() {
            // SAFETY: as above; not published.
            let _ = unsafe { munmap(page, size) };
            return;
        }
        mark = page.cast();
        // Written under the recorder's lock only: no other thread maps one.
        PROCESS_MARK.store(mark, Ordering::Release);
    }
    // SAFETY: the page is never unmapped once published.
    unsafe { (*mark).store(pid, Ordering::Relaxed) };
}

/// Whether this is still process `pid` (as [`mark_process`] noted it).
#[inline]
pub fn still_process(pid: u32) -> bool {
    use core::sync::atomic::Ordering;
    let mark = PROCESS_MARK.load(Ordering::Acquire);
    if mark.is_null() {
        return getpid() == pid;
    }
    // SAFETY: the page is never unmapped once published.
    unsafe { (*mark).load(Ordering::Relaxed) == pid }
}

/// glibc's clock_gettime, not rustix's: rustix parses the vDSO from the
/// auxiliary vector itself, and under Valgrind (which maps no vDSO where
/// the auxv says) that read faults and would take the program down.
pub fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: t is a valid out-parameter.
    unsafe { libc::clock_gettime(clock, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// The monotonic clock to a few milliseconds (the kernel's tick, read from
/// the vDSO without the timer's arithmetic): the start of a blocking call,
/// measured against the watchdog's thresholds (seconds) and the longest
/// call under a lock (milliseconds matter, nanoseconds do not).
pub fn coarse_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC_COARSE)
}

/// The tick of [`coarse_ns`] (4 ms on a kernel built with `HZ=250`): a
/// call it times took what it measured give or take this.
pub fn coarse_resolution_ns() -> u64 {
    let mut t = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: t is a valid out-parameter.
    unsafe { libc::clock_getres(libc::CLOCK_MONOTONIC_COARSE, &mut t) };
    t.tv_sec as u64 * 1_000_000_000 + t.tv_nsec as u64
}

/// Saves `errno` on creation and restores it on drop: bookkeeping must never
/// change what the interposed call reports.
pub struct ErrnoGuard(i32);

impl ErrnoGuard {
    pub fn save() -> Self {
        // SAFETY: __errno_location is always valid for the calling thread.
        ErrnoGuard(unsafe { *libc::__errno_location() })
    }
}

impl Drop for ErrnoGuard {
    fn drop(&mut self) {
        // SAFETY: as above.
        unsafe { *libc::__errno_location() = self.0 }
    }
}

/// Reads a u32 of this process's memory without faulting on a bad address.
pub fn read_own_u32(addr: usize) -> Option<u32> {
    let mut v = 0u32;
    let local = libc::iovec {
        iov_base: &mut v as *mut u32 as *mut libc::c_void,
        iov_len: 4,
    };
    let remote = libc::iovec {
        iov_base: addr as *mut libc::c_void,
        iov_len: 4,
    };
    // SAFETY: valid iovecs; the kernel checks the remote address.
    let pid = crate::sys::getpid() as libc::pid_t;
    let n = unsafe { libc::process_vm_readv(pid, &local, 1, &remote, 1, 0) };
    (n == 4).then_some(v)
}

extern "C" {
    /// glibc's own "this process has one thread" (sys/single_threaded.h):
    /// true until the first `pthread_create`, and again in a fork child.
    static __libc_single_threaded: core::ffi::c_char;
}

/// Whether the process has one thread, as glibc sees it (it skips its
/// locks' atomics then).
#[inline(always)]
pub fn single_threaded() -> bool {
    // SAFETY: a byte glibc exports for exactly this reading.
    unsafe { core::ptr::read_volatile(&raw const __libc_single_threaded) != 0 }
}
