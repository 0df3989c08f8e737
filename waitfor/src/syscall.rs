//! A thread's system call as `/proc/PID/task/TID/syscall` shows it, and
//! the calls among them that wait on a kernel queue: what `holdcheck
//! inspect` reads of a hung process, and what the shim's watchdog checks a
//! wait left published after its call against.

use holdcheck_format::Direction;

/// A thread's system call, from /proc/PID/task/TID/syscall.
#[derive(Debug, Clone, PartialEq)]
pub enum Syscall {
    /// On a CPU.
    Running,
    /// Blocked, but not in a system call (a page fault, a signal stop).
    Elsewhere,
    /// Blocked in system call `nr` with these arguments.
    In { nr: u64, args: [u64; 6] },
}

pub fn parse(line: &str) -> Syscall {
    let line = line.trim();
    if line == "running" {
        return Syscall::Running;
    }
    let mut it = line.split_whitespace();
    let nr = it.next().unwrap_or("-1");
    let Ok(nr) = nr.parse::<i64>() else {
        return Syscall::Elsewhere;
    };
    if nr < 0 {
        return Syscall::Elsewhere;
    }
    let mut args = [0u64; 6];
    for a in args.iter_mut() {
        *a = it
            .next()
            .and_then(|x| u64::from_str_radix(x.trim_start_matches("0x"), 16).ok())
            .unwrap_or(0);
    }
    Syscall::In {
        nr: nr as u64,
        args,
    }
}

/// How a futex call of operation `op` takes its timeout (its fourth
/// argument, NULL for none).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum FutexTimeout {
    /// The operation waits with no timeout, or does not wait.
    Untimed,
    /// A `struct timespec *` counted from the call's start.
    Relative,
    /// A `struct timespec *` deadline, on the realtime clock or the
    /// monotonic one.
    Deadline { realtime: bool },
}

/// The timeout of each futex operation that waits (futex(2)).
pub fn futex_timeout(op: u64) -> FutexTimeout {
    const FUTEX_WAIT: u64 = 0;
    const FUTEX_LOCK_PI: u64 = 6;
    const FUTEX_WAIT_BITSET: u64 = 9;
    const FUTEX_WAIT_REQUEUE_PI: u64 = 11;
    const FUTEX_LOCK_PI2: u64 = 13;
    const FUTEX_CLOCK_REALTIME: u64 = 256;
    let realtime = op & FUTEX_CLOCK_REALTIME != 0;
    match op & 0x7f {
        FUTEX_WAIT => FutexTimeout::Relative,
        FUTEX_WAIT_BITSET | FUTEX_WAIT_REQUEUE_PI | FUTEX_LOCK_PI2 => {
            FutexTimeout::Deadline { realtime }
        }
        // Its deadline is on the realtime clock, flag or not.
        FUTEX_LOCK_PI => FutexTimeout::Deadline { realtime: true },
        _ => FutexTimeout::Untimed,
    }
}

/// Whether `s` is a futex wait or lock given a timeout: a lock wait that
/// ends by itself at a deadline, as glibc's `pthread_mutex_timedlock` and
/// its kin make.
pub fn is_timed_futex_wait(s: &Syscall) -> bool {
    const FUTEX: u64 = 202;
    matches!(s, Syscall::In { nr: FUTEX, args }
        if futex_timeout(args[1]) != FutexTimeout::Untimed && args[3] != 0)
}

/// The system calls (x86_64) that wait on a kernel queue: (name, direction).
pub fn channel_call(nr: u64) -> Option<(&'static str, Direction)> {
    Some(match nr {
        0 => ("read", Direction::Recv),
        1 => ("write", Direction::Send),
        19 => ("readv", Direction::Recv),
        20 => ("writev", Direction::Send),
        43 => ("accept", Direction::Recv),
        288 => ("accept4", Direction::Recv),
        44 => ("sendto", Direction::Send),
        45 => ("recvfrom", Direction::Recv),
        46 => ("sendmsg", Direction::Send),
        47 => ("recvmsg", Direction::Recv),
        299 => ("recvmmsg", Direction::Recv),
        307 => ("sendmmsg", Direction::Send),
        _ => return None,
    })
}

/// Whether `s` is the system call that the library function `call` makes
/// (glibc's `send` and `recv` are `sendto` and `recvfrom` on x86_64), on
/// descriptor `fd`.
pub fn is_call_on(s: &Syscall, call: &str, fd: i32) -> bool {
    let Syscall::In { nr, args } = s else {
        return false;
    };
    let made = match call {
        "send" => "sendto",
        "recv" => "recvfrom",
        other => other,
    };
    // The descriptor is an int: the register's upper half is not its.
    channel_call(*nr).is_some_and(|(name, _)| name == made) && args[0] as u32 == fd as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_lines_parse() {
        assert_eq!(parse("running\n"), Syscall::Running);
        assert_eq!(parse("-1 0x7ffd 0x7f00\n"), Syscall::Elsewhere);
        let s =
            parse("202 0x55a6a682214c 0x189 0x3 0x0 0x0 0xffffffff 0x7f9ae67f5dc0 0x7f9ae687fe96");
        assert_eq!(
            s,
            Syscall::In {
                nr: 202,
                args: [0x55a6a682214c, 0x189, 3, 0, 0, 0xffffffff]
            }
        );
    }

    #[test]
    fn a_call_is_its_system_call_on_its_descriptor() {
        let recv = parse("45 0x5 0x7ffd1000 0x1 0x0 0x0 0x0 0x7ffd0f00 0x7f0012");
        assert!(is_call_on(&recv, "recv", 5));
        assert!(is_call_on(&recv, "recvfrom", 5));
        assert!(!is_call_on(&recv, "recv", 6), "another descriptor");
        assert!(!is_call_on(&recv, "read", 5), "another call");
        assert!(!is_call_on(&recv, "send", 5));
        let high = parse("0 0xffffffff00000007 0x7ffd1000 0x1 0x0 0x0 0x0 0x1 0x2");
        assert!(is_call_on(&high, "read", 7));
        assert!(!is_call_on(&parse("running"), "recv", 5));
        assert!(!is_call_on(&parse("-1 0x7ffd 0x7f00"), "recv", 5));
        assert!(!is_call_on(
            &parse("230 0x1 0x0 0x7ffd 0x0 0x0 0x0 0x1 0x2"),
            "recv",
            1
        ));
    }
}
