//! memcached on loopback and a load client for it: set/get requests whose
//! every answer is checked. Used by the benchmark (`programs`) and, through
//! `#[path]`, by the test that memcached runs unharmed under the shim
//! (`tests/programs.rs`): one client, so both load it the same way.
//! Only std, anyhow and libc, which both crates have.

use anyhow::{bail, Result};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Keys per client: a daemon's working set.
pub const KEYS: usize = 1000;

/// A free TCP port on loopback.
pub fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

/// A running memcached; killed when dropped, if still running.
pub struct Memcached(Child);

impl Memcached {
    /// Starts `memcached -t threads` on `127.0.0.1:port`; `configure` adds
    /// to its command (the shim's environment). Returns once it listens.
    pub fn start(port: u16, threads: u32, configure: impl FnOnce(&mut Command)) -> Result<Self> {
        let mut c = Command::new("memcached");
        c.args([
            "-t",
            &threads.to_string(),
            "-m",
            "256",
            "-U",
            "0",
            "-l",
            "127.0.0.1",
        ])
        .args(["-p", &port.to_string()]);
        // SAFETY: no preconditions.
        if unsafe { libc::geteuid() } == 0 {
            c.args(["-u", "root"]);
        }
        configure(&mut c);
        let child = c.stdout(Stdio::null()).stderr(Stdio::piped()).spawn()?;
        let mut m = Memcached(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(st) = m.0.try_wait()? {
                bail!("memcached exited before it listened on {port}: {st}");
            }
            if Instant::now() > deadline {
                bail!("memcached did not start listening on {port}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(m)
    }

    /// CPU time it has used so far (user and system, all threads), from
    /// `/proc/PID/stat`: on a loaded 2-core machine a steadier measure of
    /// what the shim costs it than the load's wall time.
    pub fn cpu_time(&self) -> Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.0.id()))?;
        // Fields after the command name (which may hold spaces): utime and
        // stime are the 12th and 13th of them, in clock ticks.
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
        let f: Vec<&str> = rest.split_whitespace().collect();
        let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
        let (Some(u), Some(s)) = (ticks(11), ticks(12)) else {
            bail!("cannot read the CPU time of memcached from /proc");
        };
        // SAFETY: no preconditions.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        Ok(Duration::from_nanos((u + s) * 1_000_000_000 / hz))
    }

    /// Ends it as an operator would (SIGTERM) and returns its exit status
    /// and what it wrote on stderr.
    pub fn stop(mut self) -> Result<(ExitStatus, String)> {
        // SAFETY: the pid is our child's, not yet reaped.
        unsafe { libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(st) = self.0.try_wait()? {
                break st;
            }
            if Instant::now() > deadline {
                bail!("memcached did not end within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        let mut err = String::new();
        if let Some(mut e) = self.0.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut e, &mut err);
        }
        Ok((status, err))
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `clients` connections, each `ops` set+get pairs of its own `KEYS` keys;
/// every get must return what was set. Returns the wall time of the load.
pub fn load(port: u16, clients: usize, ops: usize) -> Result<Duration> {
    let start = Instant::now();
    let workers: Vec<_> = (0..clients)
        .map(|c| std::thread::spawn(move || client(port, c, ops)))
        .collect();
    for w in workers {
        match w.join() {
            Ok(r) => r?,
            Err(_) => bail!("a load client panicked"),
        }
    }
    Ok(start.elapsed())
}

fn client(port: u16, c: usize, ops: usize) -> Result<()> {
    let s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut w = s.try_clone()?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    for i in 0..ops {
        let key = format!("k{c}-{}", i % KEYS);
        let val = format!("value-{c}-{i}-{}", "x".repeat(i % 64));
        write!(w, "set {key} 0 0 {}\r\n{val}\r\n", val.len())?;
        line.clear();
        r.read_line(&mut line)?;
        if line != "STORED\r\n" {
            bail!("set {key}: {line:?}");
        }
        write!(w, "get {key}\r\n")?;
        let mut got = Vec::new();
        for _ in 0..3 {
            line.clear();
            r.read_line(&mut line)?;
            got.push(line.clone());
        }
        if got[1] != format!("{val}\r\n") || got[2] != "END\r\n" {
            bail!("get {key}: {got:?}");
        }
    }
    Ok(())
}
