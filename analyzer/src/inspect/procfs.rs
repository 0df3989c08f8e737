//! What /proc says of a process and its threads, read-only.

use crate::report::FileLockInfo;
use anyhow::{bail, Context, Result};
use holdcheck_format::Mode;
use std::collections::HashMap;
use std::fs;
use std::io::ErrorKind;
use std::path::Path;

pub use holdcheck_waitfor::syscall::{parse as parse_syscall, Syscall};

#[derive(Debug, Clone)]
pub struct Task {
    pub tid: u32,
    pub name: String,
    /// R, S, D, T, Z, … from /proc/PID/task/TID/stat.
    pub state: char,
    pub syscall: Syscall,
    pub wchan: String,
    /// The kernel stack, where readable (root).
    pub kernel_stack: Vec<String>,
    /// Context switches so far (voluntary + involuntary).
    pub switches: u64,
    /// When it last ran (`se.exec_start`), in ms on the scheduler's clock
    /// of its CPU ([`SchedClocks`]), if the kernel shows scheduler
    /// statistics.
    pub last_ran_ms: Option<f64>,
    /// When it started, in ms on the boot clock (`stat`'s start time): no
    /// wait of it is older.
    pub started_ms: Option<f64>,
    /// The CPU it last ran on: `se.exec_start` is on that CPU's clock.
    pub cpu: Option<u32>,
}

/// The scheduler's clock of each CPU against the boot clock. `se.exec_start`
/// is read off the clock of the CPU the task last ran on, and in a virtual
/// machine those clocks disagree with each other and with `/proc/uptime`
/// by up to seconds (1 s between two CPUs and 9 s against the boot clock
/// seen here). Measured by running this thread on each CPU in turn: just
/// after it is scheduled there, its own `se.exec_start` is that CPU's now.
pub struct SchedClocks {
    /// CPU → boot clock minus that CPU's scheduler clock, in ms.
    offsets: HashMap<u32, f64>,
}

impl SchedClocks {
    pub fn calibrate() -> SchedClocks {
        let mut offsets = HashMap::new();
        // SAFETY: cpu_set_t is plain data; the calls change and restore
        // this thread's own affinity.
        unsafe {
            let mut saved: libc::cpu_set_t = std::mem::zeroed();
            let size = std::mem::size_of::<libc::cpu_set_t>();
            if libc::sched_getaffinity(0, size, &mut saved) == 0 {
                for cpu in 0..libc::CPU_SETSIZE as usize {
                    if !libc::CPU_ISSET(cpu, &saved) {
                        continue;
                    }
                    let mut one: libc::cpu_set_t = std::mem::zeroed();
                    libc::CPU_SET(cpu, &mut one);
                    if libc::sched_setaffinity(0, size, &one) != 0 {
                        continue;
                    }
                    libc::sched_yield();
                    if let Some(sched) = exec_start_ms("/proc/thread-self/sched") {
                        offsets.insert(cpu as u32, boot_clock_ms() - sched);
                    }
                }
                libc::sched_setaffinity(0, size, &saved);
            }
        }
        SchedClocks { offsets }
    }

    /// When a task last ran, on the boot clock; never before it started.
    pub fn last_ran_ms(&self, t: &Task) -> Option<f64> {
        let offset = t
            .cpu
            .and_then(|c| self.offsets.get(&c).copied())
            // A CPU this thread may not run on: the others' mean.
            .or_else(|| {
                (!self.offsets.is_empty())
                    .then(|| self.offsets.values().sum::<f64>() / self.offsets.len() as f64)
            })?;
        let ran = t.last_ran_ms? + offset;
        Some(ran.max(t.started_ms.unwrap_or(f64::MIN)))
    }
}

fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|e| {
        let what = path.display();
        match e.kind() {
            ErrorKind::PermissionDenied => anyhow::anyhow!(
                "cannot read {what}: permission denied; inspect needs ptrace access to the process: \
                 run as its user with kernel.yama.ptrace_scope=0, or as root"
            ),
            _ => anyhow::anyhow!("cannot read {what}: {e}"),
        }
    })
}

/// The first value of the line that starts with `key` in a /proc file of
/// `key value…` lines (`status`, `fdinfo`).
pub fn key_value<'a>(text: &'a str, key: &str) -> Option<&'a str> {
    text.lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)
}

/// The id to read a process's memory, maps and descriptors through: its
/// pid, or, when its main thread has exited (a zombie leader, after
/// `pthread_exit` in main) and left those empty, one of its live threads.
pub fn via(pid: u32) -> u32 {
    use std::sync::{Mutex, OnceLock};
    static SEEN: OnceLock<Mutex<HashMap<u32, u32>>> = OnceLock::new();
    let seen = SEEN.get_or_init(Default::default);
    if let Some(&t) = seen.lock().unwrap_or_else(|e| e.into_inner()).get(&pid) {
        return t;
    }
    let state = |tid: u32| {
        fs::read_to_string(format!("/proc/{pid}/task/{tid}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .map(|(_, r)| r.trim_start().chars().next())
            })
            .flatten()
    };
    let through = if state(pid) == Some('Z') {
        tids(pid)
            .unwrap_or_default()
            .into_iter()
            .find(|&t| t != pid && state(t).is_some_and(|c| c != 'Z'))
            .unwrap_or(pid)
    } else {
        pid
    };
    seen.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(pid, through);
    through
}

/// The children of a process (of all its threads), sorted.
pub fn children(pid: u32) -> Vec<u32> {
    let mut kids: Vec<u32> = tids(pid)
        .unwrap_or_default()
        .into_iter()
        .flat_map(|t| {
            fs::read_to_string(format!("/proc/{pid}/task/{t}/children"))
                .unwrap_or_default()
                .split_whitespace()
                .filter_map(|c| c.parse::<u32>().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    kids.sort_unstable();
    kids.dedup();
    kids
}

/// The process a thread id belongs to, for any live thread of the host
/// (`/proc/TID` resolves a thread that /proc does not list).
pub fn process_of_tid(tid: u32) -> Option<u32> {
    let status = fs::read_to_string(format!("/proc/{tid}/status")).ok()?;
    key_value(&status, "Tgid:")?.parse().ok()
}

/// Whether thread `tid` has exited: no such thread; a thread of another
/// process than `process` (when given) now, its id reused; or one that is
/// a zombie or dead (a main thread that exited while others run, a
/// process not reaped yet).
pub fn thread_exited(tid: u32, process: Option<u32>) -> bool {
    let Ok(status) = fs::read_to_string(format!("/proc/{tid}/status")) else {
        return !Path::new(&format!("/proc/{tid}")).exists();
    };
    let tgid = key_value(&status, "Tgid:").and_then(|t| t.parse::<u32>().ok());
    process.is_some_and(|p| tgid != Some(p))
        || matches!(key_value(&status, "State:"), Some("Z" | "X"))
}

/// Whether process `pid` sees thread ids as this one does (its PID
/// namespace is ours): the tids in its memory are then the ones /proc
/// lists here.
pub fn same_pid_namespace(pid: u32) -> bool {
    match (
        fs::read_link(format!("/proc/{pid}/ns/pid")),
        fs::read_link("/proc/self/ns/pid"),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// Fails with a clear message when the process is gone.
pub fn check_exists(pid: u32) -> Result<()> {
    if !Path::new(&format!("/proc/{pid}")).exists() {
        bail!("no process {pid} (it exited, or the pid is wrong)");
    }
    Ok(())
}

/// The state letter of a `stat` line: after the parenthesised name,
/// which may hold spaces.
fn state_of(stat: &str) -> char {
    let after_name = stat.rsplit_once(')').map_or("", |(_, r)| r);
    after_name.trim_start().chars().next().unwrap_or('?')
}

/// Reads one thread. A thread that exited meanwhile yields None.
pub fn task(pid: u32, tid: u32) -> Result<Option<Task>> {
    let dir = format!("/proc/{pid}/task/{tid}");
    if !Path::new(&dir).exists() {
        return Ok(None);
    }
    let read_stat = || fs::read_to_string(format!("{dir}/stat")).ok();
    let read_syscall = || match read(Path::new(&format!("{dir}/syscall"))) {
        Ok(s) => Ok(Some(parse_syscall(&s))),
        // A thread that ends while it is read is skipped, not an error.
        Err(_) if !Path::new(&dir).exists() => Ok(None),
        Err(e) => Err(e),
    };
    let Some(mut stat) = read_stat() else {
        return Ok(None);
    };
    let Some(mut syscall) = read_syscall()? else {
        return Ok(None);
    };
    // A sleeping thread that woke between the two reads (a wait with a
    // short timeout) reads as sleeping and "running": both are read again,
    // a few times, for a pair from one moment.
    for _ in 0..4 {
        if syscall != Syscall::Running || state_of(&stat) == 'R' {
            break;
        }
        let (Some(st), Some(sc)) = (read_stat(), read_syscall()?) else {
            return Ok(None);
        };
        (stat, syscall) = (st, sc);
    }
    // The state follows the parenthesised name, which may hold spaces;
    // the start time (in clock ticks since boot) is the 20th field after.
    let after_name = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let state = state_of(&stat);
    // SAFETY: no preconditions.
    let ticks_per_s = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let started_ms = fields
        .get(19)
        .and_then(|t| t.parse::<f64>().ok())
        .map(|ticks| ticks * 1000.0 / ticks_per_s);
    let cpu = fields.get(36).and_then(|c| c.parse::<u32>().ok());
    let status = fs::read_to_string(format!("{dir}/status")).unwrap_or_default();
    let switches = status
        .lines()
        .filter(|l| {
            l.starts_with("voluntary_ctxt_switches") || l.starts_with("nonvoluntary_ctxt_switches")
        })
        .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum();
    let last_ran_ms = exec_start_ms(&format!("{dir}/sched"));
    Ok(Some(Task {
        tid,
        name: fs::read_to_string(format!("{dir}/comm"))
            .unwrap_or_default()
            .trim_end()
            .to_string(),
        state,
        syscall,
        wchan: fs::read_to_string(format!("{dir}/wchan")).unwrap_or_default(),
        kernel_stack: fs::read_to_string(format!("{dir}/stack"))
            .map(|s| s.lines().map(|l| l.trim().to_string()).collect())
            .unwrap_or_default(),
        switches,
        last_ran_ms,
        started_ms,
        cpu,
    }))
}

pub fn tids(pid: u32) -> Result<Vec<u32>> {
    let mut v: Vec<u32> = fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("cannot list the threads of {pid}"))?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    v.sort_unstable();
    Ok(v)
}

/// `se.exec_start` of a task's `sched` file: when it last ran, in ms on the
/// scheduler's clock.
fn exec_start_ms(sched: &str) -> Option<f64> {
    fs::read_to_string(sched).ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("se.exec_start"))
            .and_then(|l| l.split(':').nth(1)?.trim().parse::<f64>().ok())
    })
}

/// Milliseconds since boot on the boot clock (`/proc/uptime`), the clock
/// of a task's start time.
pub fn boot_clock_ms() -> f64 {
    fs::read_to_string("/proc/uptime")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |s| s * 1000.0)
}

/// What an fd of a process is: `socket:[123]`, `pipe:[45]`, a path.
pub fn fd_target(pid: u32, fd: u64) -> Option<String> {
    fs::read_link(format!("/proc/{}/fd/{fd}", via(pid)))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

/// The inode in `socket:[N]` or `pipe:[N]`.
pub fn bracket_inode(target: &str, kind: &str) -> Option<u64> {
    target
        .strip_prefix(kind)?
        .strip_prefix(":[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// A row of /proc/net/netlink.
#[derive(Debug, Clone)]
pub struct NetlinkSocket {
    pub protocol: u32,
    pub port: u32,
    pub rmem: u64,
    pub drops: u64,
    pub inode: u64,
}

pub fn netlink_sockets() -> Vec<NetlinkSocket> {
    let text = fs::read_to_string("/proc/net/netlink").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 {
                return None;
            }
            Some(NetlinkSocket {
                protocol: f[1].parse().ok()?,
                port: f[2].parse().ok()?,
                rmem: f[4].parse().ok()?,
                drops: f[8].parse().ok()?,
                inode: f[9].parse().ok()?,
            })
        })
        .collect()
}

/// The host's socket tables, read once per snapshot: every blocked call
/// on a socket is named from them.
pub struct Sockets {
    pub netlink: Vec<NetlinkSocket>,
    pub tcp: Vec<TcpSocket>,
    /// Listening unix sockets: inode and path.
    pub unix_listeners: Vec<(u64, String)>,
}

impl Sockets {
    pub fn read() -> Sockets {
        Sockets {
            netlink: netlink_sockets(),
            tcp: tcp_sockets(),
            unix_listeners: unix_listeners(),
        }
    }
}

/// A row of /proc/net/tcp or tcp6.
#[derive(Debug, Clone)]
pub struct TcpSocket {
    /// `127.0.0.1:8080`, `[::1]:8080`: as the shim names TCP ends.
    pub local: String,
    pub remote: String,
    pub inode: u64,
    /// In state LISTEN: its queue holds connections, not bytes.
    pub listening: bool,
}

/// The listening unix sockets: inode and path (`/run/x.sock`,
/// `@abstract`, empty when unbound), from /proc/net/unix (flag
/// `__SO_ACCEPTCON`).
pub fn unix_listeners() -> Vec<(u64, String)> {
    const ACCEPTCON: u32 = 0x10000;
    let text = fs::read_to_string("/proc/net/unix").unwrap_or_default();
    text.lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let flags = u32::from_str_radix(f.get(3)?, 16).ok()?;
            (flags & ACCEPTCON != 0).then(|| {
                Some((
                    f.get(6)?.parse::<u64>().ok()?,
                    f.get(7).map_or_else(String::new, |p| p.to_string()),
                ))
            })?
        })
        .collect()
}

/// Decodes the kernel's hex address (`0100007F:1F90`; the address in
/// native-endian 32-bit words).
pub fn tcp_address(hex: &str) -> Option<String> {
    let (addr, port) = hex.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words: Option<Vec<[u8; 4]>> = (0..addr.len() / 8)
        .map(|i| {
            u32::from_str_radix(&addr[i * 8..i * 8 + 8], 16)
                .ok()
                .map(u32::to_ne_bytes)
        })
        .collect();
    let bytes: Vec<u8> = words?.concat();
    match bytes.len() {
        4 => Some(format!(
            "{}:{port}",
            std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3])
        )),
        16 => {
            let a: [u8; 16] = bytes.try_into().ok()?;
            Some(format!("[{}]:{port}", std::net::Ipv6Addr::from(a)))
        }
        _ => None,
    }
}

pub fn tcp_sockets() -> Vec<TcpSocket> {
    let mut out = Vec::new();
    for file in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = fs::read_to_string(file).unwrap_or_default();
        for l in text.lines().skip(1) {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 10 {
                continue;
            }
            if let (Some(local), Some(remote), Ok(inode)) =
                (tcp_address(f[1]), tcp_address(f[2]), f[9].parse())
            {
                out.push(TcpSocket {
                    local,
                    remote,
                    inode,
                    listening: f[3] == "0A",
                });
            }
        }
    }
    out
}

/// Which processes hold an fd to `target` (`socket:[N]`, `pipe:[N]`), with
/// the access mode of each (fdinfo `flags` & `O_ACCMODE`: 0 read, 1 write,
/// 2 both).
pub fn holders_of(target: &str) -> HashMap<u32, Vec<u32>> {
    let mut out: HashMap<u32, Vec<u32>> = HashMap::new();
    let Ok(procs) = fs::read_dir("/proc") else {
        return out;
    };
    for p in procs.filter_map(|e| e.ok()) {
        let Some(pid) = p.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // A zombie leader's descriptors are read through a live thread
        // (its own directory is empty); only it needs looking up.
        let mut dir = format!("/proc/{pid}");
        let Ok(mut fds) = fs::read_dir(format!("{dir}/fd")) else {
            continue;
        };
        if fds.next().is_none() {
            dir = format!("/proc/{}", via(pid));
            match fs::read_dir(format!("{dir}/fd")) {
                Ok(d) => fds = d,
                Err(_) => continue,
            }
        } else {
            fds = match fs::read_dir(format!("{dir}/fd")) {
                Ok(d) => d,
                Err(_) => continue,
            };
        }
        for fd in fds.filter_map(|e| e.ok()) {
            if fs::read_link(fd.path()).is_ok_and(|l| l.to_string_lossy() == target) {
                let access = fs::read_to_string(format!(
                    "{dir}/fdinfo/{}",
                    fd.file_name().to_string_lossy()
                ))
                .ok()
                .and_then(|s| u32::from_str_radix(key_value(&s, "flags:")?, 8).ok())
                .map_or(2, |f| f & 3);
                out.entry(pid).or_default().push(access);
            }
        }
    }
    out
}

/// The process's executable path.
pub fn exe(pid: u32) -> String {
    fs::read_link(format!("/proc/{pid}/exe"))
        .map(|p| p.to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn cmdline(pid: u32) -> Vec<String> {
    fs::read(format!("/proc/{pid}/cmdline"))
        .unwrap_or_default()
        .split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

/// One line of /proc/locks.
struct ProcLock {
    /// The lock address as the shim names it (device and inode).
    addr: u64,
    dev: u64,
    ino: u64,
    pid: u32,
    /// `POSIX`, `FLOCK`, `OFDLCK`, `LEASE`.
    kind: String,
    mode: Mode,
    /// A byte range (`0 EOF` for a whole file, and for every flock).
    start: String,
    end: String,
    /// A waiter's line ("->" after the number).
    waiter: bool,
}

fn proc_locks() -> Vec<ProcLock> {
    let text = fs::read_to_string("/proc/locks").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            // "1: FLOCK  ADVISORY  WRITE 5561 fe:00:1234 0 EOF"
            let mut it = l.split_whitespace().skip(1).peekable();
            let waiter = it.peek() == Some(&"->");
            if waiter {
                it.next();
            }
            let kind = it.next()?.to_string();
            let _advisory = it.next()?;
            let mode = match it.next()? {
                "WRITE" => Mode::Write,
                "READ" => Mode::Read,
                _ => return None,
            };
            let pid: u32 = it.next()?.parse().ok()?;
            let mut dev = it.next()?.split(':');
            let major = u32::from_str_radix(dev.next()?, 16).ok()?;
            let minor = u32::from_str_radix(dev.next()?, 16).ok()?;
            let ino: u64 = dev.next()?.parse().ok()?;
            let dev = libc::makedev(major, minor);
            Some(ProcLock {
                addr: holdcheck_format::file_lock_addr(dev, ino),
                dev,
                ino,
                pid,
                kind,
                mode,
                start: it.next().unwrap_or("0").to_string(),
                end: it.next().unwrap_or("EOF").to_string(),
                waiter,
            })
        })
        .collect()
}

/// The file lock a thread blocked in flock/fcntl on `fd` waits for, from
/// /proc/locks (a waiter's line of its process on that file).
pub fn file_lock_wait(pid: u32, _tid: u32, fd: u64) -> Option<(u64, Mode)> {
    let st = fs::metadata(format!("/proc/{}/fd/{fd}", via(pid))).ok()?;
    use std::os::unix::fs::MetadataExt;
    let addr = holdcheck_format::file_lock_addr(st.dev(), st.ino());
    proc_locks()
        .into_iter()
        .find(|l| l.addr == addr && l.pid == pid && l.waiter)
        .map(|l| (addr, l.mode))
}

/// The processes holding a file lock (granted, not waiting), with modes.
pub fn file_lock_holders(addr: u64) -> Vec<(u32, Mode)> {
    proc_locks()
        .into_iter()
        .filter(|l| l.addr == addr && !l.waiter)
        .map(|l| (l.pid, l.mode))
        .collect()
}

/// The file locks a process holds (granted), each named by the path of an
/// fd of the process on that file where it has one: a lock no one waits
/// for is still a lock it holds (sqlite's, between statements).
pub fn held_file_locks(pid: u32) -> Vec<FileLockInfo> {
    use std::os::unix::fs::MetadataExt;
    let mine: Vec<ProcLock> = proc_locks()
        .into_iter()
        .filter(|l| l.pid == pid && !l.waiter)
        .collect();
    if mine.is_empty() {
        return Vec::new();
    }
    let mut paths: HashMap<(u64, u64), String> = HashMap::new();
    let dir = format!("/proc/{}/fd", via(pid));
    for e in fs::read_dir(&dir).into_iter().flatten().flatten() {
        if let (Ok(st), Ok(target)) = (fs::metadata(e.path()), fs::read_link(e.path())) {
            paths
                .entry((st.dev(), st.ino()))
                .or_insert_with(|| target.to_string_lossy().into_owned());
        }
    }
    // A file mapped after its descriptor was closed keeps its lock (the
    // JVM's hsperfdata file): named by the mapping.
    for (key, path) in
        mapped_files(&fs::read_to_string(format!("/proc/{}/maps", via(pid))).unwrap_or_default())
    {
        paths.entry(key).or_insert(path);
    }
    mine.into_iter()
        .map(|l| FileLockInfo {
            pid,
            path: paths
                .get(&(l.dev, l.ino))
                .cloned()
                .unwrap_or_else(|| format!("inode {}", l.ino)),
            kind: l.kind,
            mode: match l.mode {
                Mode::Write => "write",
                Mode::Read => "read",
            }
            .to_string(),
            range: (l.start != "0" || l.end != "EOF").then(|| format!("{}-{}", l.start, l.end)),
        })
        .collect()
}

/// The files of /proc/PID/maps lines, by (device, inode).
fn mapped_files(maps: &str) -> Vec<((u64, u64), String)> {
    maps.lines()
        .filter_map(|line| {
            let mut f = line.split_whitespace();
            let (_range, _perms, _offset) = (f.next()?, f.next()?, f.next()?);
            let (major, minor) = f.next()?.split_once(':')?;
            let ino: u64 = f.next()?.parse().ok()?;
            let path = f.collect::<Vec<_>>().join(" ");
            if ino == 0 || !path.starts_with('/') {
                return None;
            }
            let dev = libc::makedev(
                u32::from_str_radix(major, 16).ok()?,
                u32::from_str_radix(minor, 16).ok()?,
            );
            Some(((dev, ino), path))
        })
        .collect()
}

/// A numeric field of /proc/PID/stat after the command name: 0 is the
/// state, 1 the parent, 2 the process group.
fn stat_field(pid: u32, n: usize) -> Option<u32> {
    fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')?
                .1
                .split_whitespace()
                .nth(n)?
                .parse()
                .ok()
        })
}

pub fn ppid(pid: u32) -> u32 {
    stat_field(pid, 1).unwrap_or(0)
}

/// The live processes of a process group, zombies left out.
pub fn group_members(pgid: u32) -> Vec<u32> {
    let mut v: Vec<u32> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|&pid| stat_field(pid, 2) == Some(pgid))
        .filter(|&pid| {
            fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| Some(s.rsplit_once(')')?.1.split_whitespace().next()? != "Z"))
                .unwrap_or(false)
        })
        .collect();
    v.sort_unstable();
    v
}

/// [`runtime_blind_spot`] of a JVM or Python, known from the process's
/// mappings and executable's name.
fn runtime_by_maps(pid: u32, maps: &str, exe_name: &str) -> Option<String> {
    if maps.contains("/libjvm.so") {
        return Some(format!(
            "pid {pid} runs a JVM: its monitors and java.util.concurrent locks are not visible here; \
             `jstack {pid}` (or `jcmd {pid} Thread.print`) prints every Java thread with the locks it holds and waits for"
        ));
    }
    if exe_name.starts_with("python") {
        return Some(format!(
            "pid {pid} runs Python: the GIL and the threading module's locks are not visible here; \
             `py-spy dump --pid {pid}` prints every Python thread's stack"
        ));
    }
    // A program that embeds Python (Debian's unbound links it for its
    // Python modules, and runs none unless configured to) is not said to
    // run it.
    if maps.contains("/libpython3") {
        return Some(format!(
            "pid {pid} has Python's library loaded: if it runs Python code, the GIL and the threading \
             module's locks are not visible here; `py-spy dump --pid {pid}` prints every Python thread's stack"
        ));
    }
    None
}

/// What inspect cannot see in a process that runs a language runtime with
/// locks of its own (they are not glibc's, and no futex names them), and
/// what shows them.
pub fn runtime_blind_spot(pid: u32) -> Option<String> {
    let maps = fs::read_to_string(format!("/proc/{}/maps", via(pid))).unwrap_or_default();
    let exe = fs::read_link(format!("/proc/{pid}/exe")).ok();
    let exe_name = exe
        .as_ref()
        .and_then(|e| e.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if let Some(said) = runtime_by_maps(pid, &maps, &exe_name) {
        return Some(said);
    }
    let data = exe.and_then(|e| fs::read(format!("/proc/{pid}/root{}", e.display())).ok())?;
    use object::{Object, ObjectSymbol};
    let file = object::File::parse(&*data).ok()?;
    if file.section_by_name(".go.buildinfo").is_some() {
        return Some(format!(
            "pid {pid} is a Go program: the Go runtime's locks, channels and goroutines are not visible here \
             (a thread shows only the system call it is in); `kill -QUIT {pid}` prints every goroutine's stack \
             on its stderr and ends it (unless it handles SIGQUIT), and a net/http/pprof endpoint shows them at \
             /debug/pprof/goroutine?debug=2"
        ));
    }
    // Rust's standard library: its panic entry point, or (stripped) the
    // paths of its sources that its panic messages carry, in its
    // read-only data (the whole file when that has no section table). A
    // C++ program that links Rust code has it too: it is not called a
    // Rust program (its pthread locks are seen as any).
    let rodata = file
        .section_by_name(".rodata")
        .and_then(|s| object::ObjectSection::data(&s).ok())
        .unwrap_or(&data);
    let rust = file.symbols().chain(file.dynamic_symbols()).any(|s| {
        s.name()
            .is_ok_and(|n| n == "rust_begin_unwind" || n == "__rust_alloc")
    }) || memchr::memmem::find(rodata, b"/library/std/src/").is_some();
    rust.then(|| {
        format!(
            "pid {pid} has Rust's standard library in it (a Rust program, or Rust code in another's, as \
             Chromium has): its std::sync::Mutex, RwLock and Condvar (and parking_lot's locks) wait on \
             futexes that record no holder, so a thread blocked in one shows its futex wait, not which thread \
             holds the lock; `gdb -p {pid} -batch -ex 'thread apply all bt'` shows every thread's frames, \
             those that hold the guards among them"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn python_is_said_to_run_only_in_python() {
        let lib =
            "7f00-7f01 r-xp 00000000 fd:01 77 /usr/lib/x86_64-linux-gnu/libpython3.11.so.1.0\n";
        let python = runtime_by_maps(7, "", "python3.11").unwrap();
        assert!(python.starts_with("pid 7 runs Python"), "{python}");
        // unbound links libpython for modules it runs only when told to.
        let embedded = runtime_by_maps(7, lib, "unbound").unwrap();
        assert!(
            embedded.starts_with("pid 7 has Python's library loaded: if it runs Python code"),
            "{embedded}"
        );
        assert_eq!(runtime_by_maps(7, "", "unbound"), None);
    }

    #[test]
    fn mapped_files_are_read_by_device_and_inode() {
        let maps = "\
7f00-7f01 rw-s 00000000 fd:01 10018819                   /tmp/hsperfdata_root/42
7f02-7f03 r--p 00000000 00:00 0 \n\
7f04-7f05 rw-p 00000000 00:00 0                          [heap]
7f06-7f07 r--s 00000000 08:02 77                         /tmp/a b (deleted)
";
        assert_eq!(
            mapped_files(maps),
            [
                (
                    (libc::makedev(0xfd, 1), 10018819),
                    "/tmp/hsperfdata_root/42".to_string()
                ),
                ((libc::makedev(8, 2), 77), "/tmp/a b (deleted)".to_string()),
            ]
        );
    }

    #[test]
    fn tcp_addresses_decode() {
        assert_eq!(
            tcp_address("0100007F:1F90").as_deref(),
            Some("127.0.0.1:8080")
        );
        assert_eq!(
            tcp_address("00000000000000000000000001000000:0016").as_deref(),
            Some("[::1]:22")
        );
        assert_eq!(tcp_address("zz"), None);
    }

    #[test]
    fn bracket_inodes() {
        assert_eq!(bracket_inode("socket:[46230]", "socket"), Some(46230));
        assert_eq!(bracket_inode("pipe:[7]", "pipe"), Some(7));
        assert_eq!(bracket_inode("/dev/null", "pipe"), None);
    }
}
