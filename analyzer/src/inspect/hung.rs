//! Whether a process group is hung as a whole, seen from outside: `run`
//! watches its command this way, with no thread inside it, so it covers a
//! single-threaded program (no watchdog), a static binary or a set-uid one
//! (no shim) alike.
//!
//! Hung means: every thread of every process of the group is blocked, has
//! not moved for several looks, and each waits for something only another
//! thread of the group could give (a lock or condition variable of its
//! own process with no timeout, a pipe whose other end only the group
//! holds, a child of the group, a file lock held in the group). A thread
//! that could be woken from outside (a socket, a terminal, a timeout, a
//! process-shared futex, a signal its process catches) or is running,
//! stopped or in disk I/O means the group is not hung: an idle server is
//! never called hung.

use super::procfs;
use super::procfs::Syscall;
use super::users::WATCHDOG_THREAD;
use super::wait::is_file_lock_wait;
use std::collections::HashMap;

/// Looks (half a second apart) in a row with no thread moving before the
/// waits are judged: longer than the shim's watchdog takes to see a
/// deadlock (one interval, 1 s) and end the run itself, with its stacks.
const STILL_LOOKS: u32 = 6;

#[derive(Default)]
pub struct GroupWatch {
    /// Each thread's scheduler counts and system call at the last look.
    last: HashMap<u32, String>,
    /// Looks in a row at which nothing moved.
    still: u32,
}

impl GroupWatch {
    /// One look at the group; true once it is hung.
    pub fn hung(&mut self, pgid: u32) -> bool {
        let members = procfs::group_members(pgid);
        let mut now: HashMap<u32, String> = HashMap::new();
        // pid, tid, scheduler state, system call line.
        let mut threads: Vec<(u32, u32, String, String)> = Vec::new();
        // A thread that cannot be read (a set-uid process, one that just
        // ended) may be doing anything: the group is not known to be hung.
        let mut unread = false;
        for &pid in &members {
            for tid in procfs::tids(pid).unwrap_or_default() {
                let dir = format!("/proc/{pid}/task/{tid}");
                let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).ok();
                // The shim's own thread wakes by itself: not the program's.
                if read("comm").is_some_and(|c| c.trim() == WATCHDOG_THREAD) {
                    continue;
                }
                let (Some(stat), Some(call)) = (read("stat"), read("syscall")) else {
                    unread = true;
                    continue;
                };
                // Absent without CONFIG_SCHED_INFO: the state and the call
                // line (with its stack pointer and pc) still move.
                let sched = read("schedstat").unwrap_or_default();
                let state = stat
                    .rsplit_once(')')
                    .and_then(|(_, r)| r.split_whitespace().next())
                    .unwrap_or("?")
                    .to_string();
                now.insert(tid, format!("{state} {sched} {call}"));
                threads.push((pid, tid, state, call));
            }
        }
        let moved = unread || now.is_empty() || now != self.last;
        self.last = now;
        self.still = if moved { 0 } else { self.still + 1 };
        self.still >= STILL_LOOKS
            && threads.iter().all(|(pid, tid, state, call)| {
                state == "S" && closed_wait(*pid, *tid, &procfs::parse_syscall(call), &members)
            })
    }
}

/// Whether a sleeping thread's system call (as its /proc `syscall` line
/// says) is a wait only the processes `members` can end.
pub(super) fn closed_wait(pid: u32, tid: u32, call: &Syscall, members: &[u32]) -> bool {
    let &Syscall::In { nr, args } = call else {
        return false;
    };
    // A process that catches a signal can be woken from outside: its
    // handler may post, write or unlock. Not glibc's own SIGCANCEL and
    // SIGSETXID, nor the faults' signals (SIGILL, SIGBUS, SIGFPE,
    // SIGSEGV): their handlers are crash and stack-overflow handlers
    // (Rust's std installs the last two in every program), and nobody
    // wakes a thread by sending a fault.
    const GLIBC_SIGNALS: u64 = 1 << 31 | 1 << 32;
    const FAULTS: u64 = 1 << (libc::SIGILL - 1)
        | 1 << (libc::SIGBUS - 1)
        | 1 << (libc::SIGFPE - 1)
        | 1 << (libc::SIGSEGV - 1);
    let catches = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| u64::from_str_radix(procfs::key_value(&s, "SigCgt:")?, 16).ok())
        .is_none_or(|mask| mask & !(GLIBC_SIGNALS | FAULTS) != 0);
    if catches {
        return false;
    }
    let inside = |p: u32| members.contains(&p);
    const PRIVATE: u64 = 128;
    match nr {
        // futex: WAIT, WAIT_BITSET, LOCK_PI, LOCK_PI2 with no timeout, on
        // a word only this process can wake: a private futex, or one in a
        // private mapping (pthread_join's, on the thread's tid word).
        202 => {
            [0, 9, 6, 13].contains(&(args[1] & 0x7f))
                && args[3] == 0
                && (args[1] & PRIVATE != 0 || in_private_mapping(pid, args[0]))
        }
        // read/write(v) on a pipe whose other end only the group holds.
        0 | 1 | 19 | 20 => {
            let Some(target) = procfs::fd_target(pid, args[0]) else {
                return false;
            };
            if procfs::bracket_inode(&target, "pipe").is_none() {
                return false;
            }
            // The other end: writers (for a read) or readers (for a write).
            let want = if nr == 0 || nr == 19 { [1, 2] } else { [0, 2] };
            let holders = procfs::holders_of(&target);
            holders
                .iter()
                .filter(|(_, modes)| modes.iter().any(|m| want.contains(m)))
                .all(|(p, _)| inside(*p))
        }
        // wait4 without WNOHANG, for children all in the group.
        61 if args[2] & 1 == 0 => {
            let children = procfs::children(pid);
            !children.is_empty() && children.iter().all(|c| inside(*c))
        }
        _ if is_file_lock_wait(nr, &args) => procfs::file_lock_wait(pid, tid, args[0])
            .map(|(addr, _)| procfs::file_lock_holders(addr))
            .is_some_and(|h| !h.is_empty() && h.iter().all(|(p, _)| inside(*p))),
        _ => false,
    }
}

/// Whether `addr` lies in a private mapping of the process (`rw-p`): no
/// other process shares the word.
fn in_private_mapping(pid: u32, addr: u64) -> bool {
    let maps =
        std::fs::read_to_string(format!("/proc/{}/maps", procfs::via(pid))).unwrap_or_default();
    maps.lines().any(|l| {
        let mut f = l.split_whitespace();
        let (Some(range), Some(perms)) = (f.next(), f.next()) else {
            return false;
        };
        let Some((a, b)) = range.split_once('-') else {
            return false;
        };
        let (Ok(a), Ok(b)) = (u64::from_str_radix(a, 16), u64::from_str_radix(b, 16)) else {
            return false;
        };
        (a..b).contains(&addr) && perms.ends_with('p')
    })
}
