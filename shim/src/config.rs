//! Configuration from the environment, in the manner of `TSAN_OPTIONS`:
//! `HOLDCHECK_DIR` (trace directory) and `HOLDCHECK_OPTIONS=key=value:…`.
//! A bad value is named in one line on stderr and its default is kept.

use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::OnceLock;

const NOT_YET: u8 = 0;
const ON: u8 = 1;
const OFF: u8 = 2;
/// On, and `holdcheck confirm` steers: the lock hooks take their slow
/// path (bit 0 set: active, as ON).
const STEER: u8 = 3;
/// On, and acquisitions record more than the held stack's entry (see
/// [`extras`]): the lock hooks take their slow path too. Folded into the
/// state so that their fast path tests one byte.
const ON_EXTRAS: u8 = 5;

/// Whether the shim records. Off after an internal failure (the program runs
/// on, every call passed through) or for set-uid programs.
static STATE: AtomicU8 = AtomicU8::new(NOT_YET);
static LOADING: AtomicBool = AtomicBool::new(false);

pub struct Config {
    /// Where trace files go.
    pub dir: String,
    /// Whether `dir` is the default (then it must be private to this user).
    pub dir_is_default: bool,
    /// 0: silent; 1: say where the trace went at exit, on the terminal;
    /// 2: the same on stderr.
    pub verbosity: u8,
    /// Frames kept per stack.
    pub stack_depth: usize,
    /// How often the watchdog looks, in milliseconds.
    pub watchdog_ms: u64,
    /// Age at which a wait chain is a stall and a call a stalled call.
    pub stall_ms: u64,
    /// `ended_stall_ms`: a wait chain that lasted this long but ended
    /// before `stall_ms` is still reported, once it ended (0: off).
    pub ended_stall_ms: u64,
    /// `on_deadlock=abort`: abort (leaving a core) after reporting a deadlock.
    pub abort_on_deadlock: bool,
    /// `hold_ms`: a lock held longer is a misuse (0: off).
    pub hold_ms: u64,
    /// `held_stacks=1`: every acquisition's whole stack is recorded, so a
    /// report shows where each held lock was taken, callers and all (as
    /// TSan's `second_deadlock_stack`); it unwinds on every lock.
    pub held_stacks: bool,
}

/// Bits of [`extras`].
pub const EXTRA_HOLD_TIME: u8 = 1;
pub const EXTRA_HELD_STACKS: u8 = 2;
static EXTRAS: AtomicU8 = AtomicU8::new(0);

/// What an acquisition records beyond the held-stack entry: its time
/// (`hold_ms`), its stack (`held_stacks=1`). One load on the fast path;
/// 0 by default.
#[inline(always)]
pub fn extras() -> u8 {
    EXTRAS.load(Ordering::Relaxed)
}

/// The hold-time threshold in ns (0: off), for the lock hooks' fast path.
static HOLD_NS: core::sync::atomic::AtomicU64 = core::sync::atomic::AtomicU64::new(0);

/// The hold-time threshold in ns, 0 when off (the default).
#[inline(always)]
pub fn hold_ns() -> u64 {
    HOLD_NS.load(Ordering::Relaxed)
}

static CONFIG: OnceLock<Config> = OnceLock::new();

#[inline(always)]
pub fn active() -> bool {
    if STATE.load(Ordering::Relaxed) & 1 != 0 {
        return true; // ON or STEER
    }
    not_on()
}

/// Recording, and nothing asks the lock hooks for more than their fast
/// path (no steering, no [`extras`]): the one test of the lock hooks' fast
/// path, in place of [`active`]'s.
#[inline(always)]
pub fn plainly_on() -> bool {
    STATE.load(Ordering::Relaxed) == ON
}

/// Whether `holdcheck confirm` steers this run, once [`active`] said
/// the shim is on: the byte that test read (`steer::on` is another).
#[inline(always)]
pub fn steering() -> bool {
    STATE.load(Ordering::Relaxed) == STEER
}

#[cold]
fn not_on() -> bool {
    STATE.load(Ordering::Relaxed) != OFF && first_use()
}

#[cfg(test)]
pub fn force_active_for_tests() {
    STATE.store(ON, Ordering::Relaxed);
}

#[cold]
fn first_use() -> bool {
    // A hook called while the configuration is being read (getenv is not
    // hooked, but be safe) passes through.
    if LOADING.swap(true, Ordering::Acquire) {
        return false;
    }
    // SAFETY: getauxval has no preconditions.
    let secure = unsafe { libc::getauxval(libc::AT_SECURE) } != 0;
    let _ = get();
    let on = !secure;
    let on_as = if crate::steer::on() {
        STEER
    } else if extras() != 0 {
        ON_EXTRAS
    } else {
        ON
    };
    let _ = STATE.compare_exchange(
        NOT_YET,
        if on { on_as } else { OFF },
        Ordering::AcqRel,
        Ordering::Relaxed,
    );
    LOADING.store(false, Ordering::Release);
    STATE.load(Ordering::Relaxed) & 1 != 0
}

/// Turns recording off for good, after saying why in one line.
pub fn go_passive(why: &str) {
    if STATE.swap(OFF, Ordering::AcqRel) != OFF {
        crate::sys::say(&format!("{why}; recording stops, the program runs on"));
    }
}

pub fn get() -> &'static Config {
    CONFIG.get_or_init(load)
}

fn load() -> Config {
    let mut cfg = Config {
        dir: String::new(),
        dir_is_default: false,
        verbosity: 1,
        stack_depth: 32,
        watchdog_ms: 1000,
        stall_ms: 5000,
        ended_stall_ms: 1000,
        abort_on_deadlock: false,
        hold_ms: 0,
        held_stacks: false,
    };
    match std::env::var("HOLDCHECK_DIR") {
        Ok(d) if !d.is_empty() => cfg.dir = d,
        _ => {
            // SAFETY: getuid has no preconditions.
            let uid = unsafe { libc::getuid() };
            cfg.dir = format!("/tmp/holdcheck-{uid}");
            cfg.dir_is_default = true;
            // The unit tests' binary is itself under the shim: its traces
            // go to the build directory, not to the machine's /tmp.
            #[cfg(test)]
            if let Some(deps) = std::env::current_exe().ok().and_then(|e| {
                e.parent()
                    .and_then(|p| p.parent())
                    .map(|p| p.join("holdcheck-unit-traces"))
            }) {
                cfg.dir = deps.to_string_lossy().into_owned();
            }
        }
    }
    if let Ok(opts) = std::env::var("HOLDCHECK_OPTIONS") {
        for problem in apply_options(&mut cfg, &opts) {
            crate::sys::say(&problem);
        }
    }
    crate::steer::load();
    HOLD_NS.store(cfg.hold_ms.saturating_mul(1_000_000), Ordering::Relaxed);
    EXTRAS.store(
        if cfg.hold_ms != 0 { EXTRA_HOLD_TIME } else { 0 }
            | if cfg.held_stacks {
                EXTRA_HELD_STACKS
            } else {
                0
            },
        Ordering::Relaxed,
    );
    cfg
}

/// Applies `key=value:key=value`; returns one message per bad entry.
fn apply_options(cfg: &mut Config, opts: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for item in opts.split([':', ',']).filter(|s| !s.trim().is_empty()) {
        let Some((key, value)) = item.split_once('=') else {
            problems.push(format!(
                "HOLDCHECK_OPTIONS: '{item}' is not key=value; ignored"
            ));
            continue;
        };
        let (key, value) = (key.trim(), value.trim());
        match key {
            "verbosity" => match value.parse::<u8>() {
                Ok(v) if v <= 2 => cfg.verbosity = v,
                _ => problems.push(format!(
                    "HOLDCHECK_OPTIONS: verbosity={value} is not 0, 1 or 2; keeping {}",
                    cfg.verbosity
                )),
            },
            "stack_depth" => match value.parse::<usize>() {
                Ok(v) if (1..=crate::stack::MAX_FRAMES).contains(&v) => cfg.stack_depth = v,
                _ => problems.push(format!(
                    "HOLDCHECK_OPTIONS: stack_depth={value} is not a number from 1 to {}; keeping {}",
                    crate::stack::MAX_FRAMES,
                    cfg.stack_depth
                )),
            },
            "watchdog_ms" => match value.parse::<u64>() {
                Ok(v) if (10..=3_600_000).contains(&v) => cfg.watchdog_ms = v,
                _ => problems.push(format!(
                    "HOLDCHECK_OPTIONS: watchdog_ms={value} is not a number from 10 to 3600000; keeping {}",
                    cfg.watchdog_ms
                )),
            },
            "stall_ms" => match value.parse::<u64>() {
                Ok(v) if (1..=86_400_000).contains(&v) => cfg.stall_ms = v,
                _ => problems.push(format!(
                    "HOLDCHECK_OPTIONS: stall_ms={value} is not a number from 1 to 86400000; keeping {}",
                    cfg.stall_ms
                )),
            },
            "on_deadlock" => match value {
                "report" => cfg.abort_on_deadlock = false,
                "abort" => cfg.abort_on_deadlock = true,
                _ => problems.push(format!(
                    "HOLDCHECK_OPTIONS: on_deadlock={value} is not report or abort; keeping {}",
                    if cfg.abort_on_deadlock { "abort" } else { "report" }
                )),
            },
            "ended_stall_ms" => match value.parse::<u64>() {
                Ok(v) if v <= 86_400_000 => cfg.ended_stall_ms = v,
                _ => problems.push(format!(
                    "HOLDCHECK_OPTIONS: ended_stall_ms={value} is not a number from 0 (off) to 86400000; keeping {}",
                    cfg.ended_stall_ms
                )),
            },
            "hold_ms" => match value.parse::<u64>() {
                Ok(v) if v <= 86_400_000 => cfg.hold_ms = v,
                _ => problems.push(format!(
                    "HOLDCHECK_OPTIONS: hold_ms={value} is not a number from 0 (off) to 86400000; keeping {}",
                    cfg.hold_ms
                )),
            },
            "held_stacks" => match value {
                "0" => cfg.held_stacks = false,
                "1" => cfg.held_stacks = true,
                _ => problems.push(format!(
                    "HOLDCHECK_OPTIONS: held_stacks={value} is not 0 or 1; keeping {}",
                    cfg.held_stacks as u8
                )),
            },
            _ => problems.push(format!(
                "HOLDCHECK_OPTIONS: unknown option '{key}' ignored (known: verbosity, stack_depth, watchdog_ms, stall_ms, ended_stall_ms, on_deadlock, hold_ms, held_stacks)"
            )),
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> Config {
        Config {
            dir: String::new(),
            dir_is_default: false,
            verbosity: 1,
            stack_depth: 32,
            watchdog_ms: 1000,
            stall_ms: 5000,
            ended_stall_ms: 1000,
            abort_on_deadlock: false,
            hold_ms: 0,
            held_stacks: false,
        }
    }

    #[test]
    fn good_options_apply() {
        let mut c = fresh();
        assert!(apply_options(
            &mut c,
            "verbosity=0:stack_depth=8:watchdog_ms=200:stall_ms=1500:ended_stall_ms=0:on_deadlock=abort:hold_ms=250"
        )
        .is_empty());
        assert_eq!(c.hold_ms, 250);
        assert_eq!(c.ended_stall_ms, 0);
        assert_eq!(c.verbosity, 0);
        assert_eq!(c.stack_depth, 8);
        assert_eq!(c.watchdog_ms, 200);
        assert_eq!(c.stall_ms, 1500);
        assert!(c.abort_on_deadlock);
    }

    #[test]
    fn bad_options_are_named_and_ignored() {
        let mut c = fresh();
        let p = apply_options(
            &mut c,
            "verbosity=9:colour=red:stack_depth=0:junk:watchdog_ms=1:on_deadlock=panic:ended_stall_ms=x",
        );
        assert_eq!(p.len(), 7, "{p:?}");
        assert!(p[6].contains("ended_stall_ms=x"));
        assert!(p[4].contains("watchdog_ms=1 "));
        assert!(p[5].contains("on_deadlock=panic"));
        assert!(p[0].contains("verbosity=9"));
        assert!(p[1].contains("'colour'"));
        assert!(p[2].contains("stack_depth=0"));
        assert!(p[3].contains("'junk'"));
        assert_eq!(c.verbosity, 1);
        assert_eq!(c.stack_depth, 32);
    }
}
