//! The timeout of a blocked system call, read from its arguments: a thread
//! in a timed wait returns by itself, and a hung process's report must not
//! show twenty idle pool threads as blocked like the one that is stuck.
//! Only what the arguments say: a socket call under `SO_RCVTIMEO` or a
//! timerfd read has a timeout this cannot see, and stays untimed.

use super::{memory, procfs::via};
use crate::report::CallTimeout;
use holdcheck_waitfor::syscall::{futex_timeout, FutexTimeout};

// x86_64 system call numbers.
const POLL: u64 = 7;
const SELECT: u64 = 23;
const NANOSLEEP: u64 = 35;
const RT_SIGTIMEDWAIT: u64 = 128;
const RESTART_SYSCALL: u64 = 219;
const FUTEX: u64 = 202;
const SEMTIMEDOP: u64 = 220;
const CLOCK_NANOSLEEP: u64 = 230;
const EPOLL_WAIT: u64 = 232;
const MQ_TIMEDSEND: u64 = 242;
const MQ_TIMEDRECEIVE: u64 = 243;
const PSELECT6: u64 = 270;
const PPOLL: u64 = 271;
const EPOLL_PWAIT: u64 = 281;
const EPOLL_PWAIT2: u64 = 441;

/// A clock a deadline is on.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Clock {
    Realtime,
    Monotonic,
}

/// What a call's timeout argument is.
#[derive(Debug, PartialEq)]
enum Arg {
    /// None: the call waits for as long as it takes.
    Untimed,
    /// Milliseconds, an `int` argument (negative: untimed).
    Millis(i64),
    /// A `struct timespec *` counted from the call's start (NULL: untimed).
    Timespec(u64),
    /// A `struct timeval *` counted from the call's start (NULL: untimed).
    Timeval(u64),
    /// A `struct timespec *` deadline on a clock (NULL: untimed).
    Deadline(u64, Clock),
}

/// Which argument of call `nr` holds its timeout, and how.
fn timeout_arg(nr: u64, args: &[u64; 6]) -> Arg {
    match nr {
        POLL | EPOLL_WAIT | EPOLL_PWAIT => {
            Arg::Millis(args[if nr == POLL { 2 } else { 3 }] as i32 as i64)
        }
        PPOLL => Arg::Timespec(args[2]),
        EPOLL_PWAIT2 => Arg::Timespec(args[3]),
        SELECT => Arg::Timeval(args[4]),
        PSELECT6 => Arg::Timespec(args[4]),
        NANOSLEEP => Arg::Timespec(args[0]),
        CLOCK_NANOSLEEP => {
            let clock = match args[0] as i32 {
                libc::CLOCK_REALTIME => Clock::Realtime,
                _ => Clock::Monotonic,
            };
            // TIMER_ABSTIME
            if args[1] & 1 != 0 {
                Arg::Deadline(args[2], clock)
            } else {
                Arg::Timespec(args[2])
            }
        }
        RT_SIGTIMEDWAIT => Arg::Timespec(args[2]),
        SEMTIMEDOP => Arg::Timespec(args[3]),
        MQ_TIMEDSEND | MQ_TIMEDRECEIVE => Arg::Deadline(args[4], Clock::Realtime),
        FUTEX => match futex_timeout(args[1]) {
            FutexTimeout::Relative => Arg::Timespec(args[3]),
            FutexTimeout::Deadline { realtime: true } => Arg::Deadline(args[3], Clock::Realtime),
            FutexTimeout::Deadline { realtime: false } => Arg::Deadline(args[3], Clock::Monotonic),
            FutexTimeout::Untimed => Arg::Untimed,
        },
        _ => Arg::Untimed,
    }
}

/// What a thread in `restart_syscall` resumed, by where it sleeps.
#[derive(Clone, Copy, PartialEq, Debug)]
pub(super) enum Resumed {
    Futex,
    Sleep,
    /// A poll, ppoll or select.
    Poll,
    Call,
}

pub(super) fn resumed(wchan: &str) -> Resumed {
    if wchan.contains("futex") {
        Resumed::Futex
    } else if wchan.contains("nanosleep") {
        Resumed::Sleep
    } else if wchan.contains("poll") || wchan.contains("select") {
        Resumed::Poll
    } else {
        Resumed::Call
    }
}

impl Resumed {
    fn words(self) -> &'static str {
        match self {
            Resumed::Futex => "a timed futex wait",
            Resumed::Sleep => "a sleep",
            Resumed::Poll => "a poll or select",
            Resumed::Call => "a call",
        }
    }

    /// Whether the call is sure to have a timeout: a futex wait or a sleep
    /// is resumed so only with one (an untimed wait restarts as itself); a
    /// poll or select is resumed so either way.
    fn timed(self) -> bool {
        matches!(self, Resumed::Futex | Resumed::Sleep)
    }
}

/// `restart_syscall`, said with what it resumed.
pub(super) fn resumed_call(wchan: &str) -> String {
    format!(
        "restart_syscall ({} resumed after a signal)",
        resumed(wchan).words()
    )
}

/// The timeout of call `nr` (with `args`) that a thread of `pid` is
/// blocked in, None when it has none or it cannot be read.
pub(super) fn timeout_of(pid: u32, nr: u64, args: &[u64; 6], wchan: &str) -> Option<CallTimeout> {
    let sleep = matches!(nr, NANOSLEEP | CLOCK_NANOSLEEP);
    let pair = |addr: u64| -> Option<(i64, i64)> {
        if addr == 0 {
            return None;
        }
        let b = memory::read(pid, addr, 16).ok()?;
        let at = |o: usize| i64::from_ne_bytes(b[o..o + 8].try_into().expect("8 bytes"));
        Some((at(0), at(8)))
    };
    let ns = |(s, frac): (i64, i64), unit: i64| -> Option<i128> {
        (s >= 0 && (0..1_000_000_000 / unit).contains(&frac))
            .then(|| s as i128 * 1_000_000_000 + (frac * unit) as i128)
    };
    let after = |ns: i128| CallTimeout {
        after_ms: Some((ns / 1_000_000).min(u64::MAX as i128) as u64),
        left_ms: None,
        sleep,
    };
    if nr == RESTART_SYSCALL {
        // A call a signal interrupted (a debugger's attach is one), resumed
        // with its timeout kept in the kernel.
        let what = resumed(wchan);
        // A futex wait's registers still hold its arguments: its deadline.
        if what == Resumed::Futex {
            if let Some(t) = timeout_of(pid, FUTEX, args, "") {
                return Some(t);
            }
        }
        return what.timed().then_some(CallTimeout {
            left_ms: None,
            after_ms: None,
            sleep: what == Resumed::Sleep,
        });
    }
    match timeout_arg(nr, args) {
        Arg::Untimed => None,
        Arg::Millis(ms) => (ms >= 0).then(|| after(ms as i128 * 1_000_000)),
        Arg::Timespec(p) => pair(p).and_then(|t| ns(t, 1)).map(after),
        Arg::Timeval(p) => pair(p).and_then(|t| ns(t, 1_000)).map(after),
        Arg::Deadline(p, clock) => {
            let deadline = ns(pair(p)?, 1)?;
            let left = deadline - now_ns(pid, clock)?;
            Some(CallTimeout {
                after_ms: None,
                left_ms: Some((left / 1_000_000).clamp(i64::MIN as i128, i64::MAX as i128) as i64),
                sleep,
            })
        }
    }
}

/// The time on `clock` as process `pid` sees it: its time namespace may
/// move the monotonic clock (`/proc/PID/timens_offsets`).
fn now_ns(pid: u32, clock: Clock) -> Option<i128> {
    let id = match clock {
        Clock::Realtime => libc::CLOCK_REALTIME,
        Clock::Monotonic => libc::CLOCK_MONOTONIC,
    };
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-parameter.
    if unsafe { libc::clock_gettime(id, &mut ts) } != 0 {
        return None;
    }
    let mut now = ts.tv_sec as i128 * 1_000_000_000 + ts.tv_nsec as i128;
    if clock == Clock::Monotonic {
        // Unreadable (an older kernel, no right): no namespace of its own.
        if let Ok(offsets) = std::fs::read_to_string(format!("/proc/{}/timens_offsets", via(pid))) {
            now += monotonic_offset(&offsets)?;
        }
    }
    Some(now)
}

/// The monotonic clock's offset in a `timens_offsets` file, in ns.
fn monotonic_offset(text: &str) -> Option<i128> {
    for line in text.lines() {
        let mut f = line.split_whitespace();
        if f.next() == Some("monotonic") {
            let s: i128 = f.next()?.parse().ok()?;
            let ns: i128 = f.next()?.parse().ok()?;
            return Some(s * 1_000_000_000 + ns);
        }
    }
    Some(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn me() -> u32 {
        std::process::id()
    }

    #[test]
    fn a_wait_without_a_timeout_has_none() {
        let none = [0u64; 6];
        assert_eq!(timeout_of(me(), FUTEX, &none, ""), None);
        let mut poll = [0u64; 6];
        poll[2] = (-1i32) as u32 as u64;
        assert_eq!(timeout_of(me(), POLL, &poll, ""), None);
        // A read has no timeout argument.
        assert_eq!(timeout_of(me(), 0, &[3, 0x1000, 10, 0, 0, 0], ""), None);
        // A poll resumed after a signal may have had none.
        assert_eq!(
            timeout_of(me(), RESTART_SYSCALL, &none, "poll_schedule_timeout"),
            None
        );
        let futex = timeout_of(me(), RESTART_SYSCALL, &none, "futex_do_wait").unwrap();
        assert_eq!((futex.left_ms, futex.after_ms), (None, None));
    }

    #[test]
    fn a_relative_timeout_is_read_from_the_callers_memory() {
        let ts = libc::timespec {
            tv_sec: 5,
            tv_nsec: 250_000_000,
        };
        // FUTEX_WAIT|FUTEX_PRIVATE_FLAG: relative.
        let args = [0x1000, 128, 0, &ts as *const _ as u64, 0, 0];
        let t = timeout_of(me(), FUTEX, &args, "").unwrap();
        assert_eq!((t.after_ms, t.left_ms, t.sleep), (Some(5250), None, false));
        let tv = libc::timeval {
            tv_sec: 2,
            tv_usec: 500_000,
        };
        let args = [4, 0, 0, 0, &tv as *const _ as u64, 0];
        assert_eq!(
            timeout_of(me(), SELECT, &args, "").unwrap().after_ms,
            Some(2500)
        );
        let mut poll = [0u64; 6];
        poll[2] = 1500;
        assert_eq!(
            timeout_of(me(), POLL, &poll, "").unwrap().after_ms,
            Some(1500)
        );
        let args = [&ts as *const _ as u64, 0, 0, 0, 0, 0];
        assert!(timeout_of(me(), NANOSLEEP, &args, "").unwrap().sleep);
    }

    #[test]
    fn a_deadline_is_time_left_on_its_clock() {
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid out-parameter.
        unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) };
        let deadline = libc::timespec {
            tv_sec: now.tv_sec + 30,
            tv_nsec: now.tv_nsec,
        };
        // FUTEX_WAIT_BITSET|FUTEX_PRIVATE_FLAG, on the monotonic clock
        // (pthread_cond_timedwait of a condvar set to CLOCK_MONOTONIC).
        let args = [
            0x1000,
            137,
            0,
            &deadline as *const _ as u64,
            0,
            u32::MAX as u64,
        ];
        let left = timeout_of(me(), FUTEX, &args, "").unwrap().left_ms.unwrap();
        assert!((29_000..=30_000).contains(&left), "{left}");
        // The same numbers read on the realtime clock are long past.
        let args = [0x1000, 137 | 256, 0, &deadline as *const _ as u64, 0, 0];
        assert!(timeout_of(me(), FUTEX, &args, "").unwrap().left_ms.unwrap() < 0);
        // A damaged timespec is no timeout at all.
        let bad = libc::timespec {
            tv_sec: 1,
            tv_nsec: 2_000_000_000,
        };
        let args = [0x1000, 137, 0, &bad as *const _ as u64, 0, 0];
        assert_eq!(timeout_of(me(), FUTEX, &args, ""), None);
    }

    #[test]
    fn a_time_namespace_moves_the_monotonic_clock() {
        let text = "monotonic 3600 5\nboottime 0 0\n";
        assert_eq!(monotonic_offset(text), Some(3_600_000_000_005));
        assert_eq!(monotonic_offset(""), Some(0));
    }
}
