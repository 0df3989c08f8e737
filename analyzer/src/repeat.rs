//! `holdcheck run --repeat N`: a stress run. The command runs N times, each
//! with its own trace directory (`run-K` under one base directory), and the
//! findings of all runs are merged by signature: each distinct finding is
//! reported once, with in how many runs it was found.

use crate::report::{Finding, RepeatInfo, Report, Summary};
use crate::run::{self, Ending, RunOptions};
use anyhow::Result;
use std::collections::BTreeMap;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex};

/// Runs the command `n` times and merges the reports. `once` runs it once
/// in the given trace directory and analyses that run.
pub fn repeat(
    opts: &RunOptions,
    n: u32,
    once: impl Fn(&RunOptions) -> Result<(Report, Ending)>,
) -> Result<Report> {
    let base = run::trace_dir(opts.out.as_deref())?;
    let mut progress = Progress::new(n);
    let mut merged: Option<Report> = None;
    let mut endings: BTreeMap<String, u32> = BTreeMap::new();
    let mut runs = 0;
    let (mut processes_per_run, mut threads_per_run) = (0, 0);
    for k in 1..=n {
        let this = RunOptions {
            command: opts.command.clone(),
            out: Some(base.join(format!("run-{k}"))),
            timeout: opts.timeout,
            keep_running: opts.keep_running,
            output: progress.output(),
            env: opts.env.clone(),
            released: None,
        };
        let (report, ending) = once(&this)?;
        runs = k;
        processes_per_run = processes_per_run.max(report.processes.len());
        threads_per_run =
            threads_per_run.max(report.processes.iter().map(|p| p.threads.len()).sum());
        *endings.entry(ending.info().0.to_string()).or_default() += 1;
        let total = merge(&mut merged, report, k);
        progress.ran(k, &ending, total);
        if ending == Ending::Interrupted {
            break;
        }
    }
    progress.finish();
    let mut report = merged.expect("at least one run");
    if let Some(r) = report.run.as_mut() {
        r.trace_dir = base.display().to_string();
        r.repeat = Some(RepeatInfo {
            runs,
            asked: n,
            endings,
            processes_per_run,
            threads_per_run,
        });
    }
    Ok(report)
}

/// The stress run's progress: one line per run in a log; on a terminal, a
/// bar on one line, shown from the start and rewritten in place. The
/// command shares the terminal, so its output would land on the bar's
/// line: when holdcheck's output and error are both the terminal, the
/// command's go through a pseudo-terminal of ours (it still sees a
/// terminal) and are relayed, the bar cleared before and drawn again after
/// each line. Otherwise the bar is cleared while a run runs.
struct Progress {
    n: u32,
    bar: Option<Arc<Mutex<Bar>>>,
    relay: Option<Relay>,
}

struct Bar {
    line: String,
    /// The command's output ended mid-line: the bar waits for its end.
    mid_line: bool,
}

impl Bar {
    fn draw(&self) {
        if !self.mid_line {
            let mut e = std::io::stderr().lock();
            let _ = write!(e, "\r\x1b[2K{}", self.line);
            let _ = e.flush();
        }
    }
}

struct Relay {
    slave: Arc<OwnedFd>,
    done: std::sync::mpsc::Receiver<()>,
}

impl Progress {
    fn new(n: u32) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress {
                n,
                bar: None,
                relay: None,
            };
        }
        let bar = Arc::new(Mutex::new(Bar {
            line: bar_line(0, n, 0),
            mid_line: false,
        }));
        let relay = if std::io::stdout().is_terminal() {
            Relay::start(bar.clone())
        } else {
            None
        };
        bar.lock().unwrap_or_else(|e| e.into_inner()).draw();
        Progress {
            n,
            bar: Some(bar),
            relay,
        }
    }

    /// Where the next run's output goes: the relay's terminal, if any.
    fn output(&self) -> Option<Arc<OwnedFd>> {
        match (&self.bar, &self.relay) {
            (_, Some(r)) => Some(r.slave.clone()),
            (Some(_), None) => {
                // No relay: the run's output starts on a clean line.
                eprint!("\r\x1b[2K");
                None
            }
            (None, None) => None,
        }
    }

    fn ran(&mut self, k: u32, ending: &Ending, findings: usize) {
        match &self.bar {
            Some(bar) => {
                let mut b = bar.lock().unwrap_or_else(|e| e.into_inner());
                b.line = bar_line(k, self.n, findings);
                b.draw();
            }
            None => eprintln!(
                "holdcheck: run {k}/{}: the command {ending}; {findings} distinct finding(s) so far",
                self.n
            ),
        }
    }

    /// The relay drained, the bar's line ended.
    fn finish(&mut self) {
        if let Some(r) = self.relay.take() {
            let Relay { slave, done } = r;
            drop(slave);
            // Its last reads end once no process holds the terminal open;
            // one that lingers (a daemon of the command's) is not waited for.
            let _ = done.recv_timeout(std::time::Duration::from_secs(2));
        }
        if self.bar.is_some() {
            eprintln!();
        }
    }
}

fn bar_line(k: u32, n: u32, findings: usize) -> String {
    let width = 30;
    let done = (k as usize * width) / n.max(1) as usize;
    format!(
        "[{}{}] {k}/{n} runs, {findings} distinct finding{}",
        "#".repeat(done),
        " ".repeat(width - done),
        if findings == 1 { "" } else { "s" }
    )
}

impl Relay {
    /// A pseudo-terminal like ours (size, modes) and the thread that
    /// copies what the command writes to it onto our output.
    fn start(bar: Arc<Mutex<Bar>>) -> Option<Relay> {
        let (mut master, mut slave) = (-1, -1);
        // SAFETY: openpty writes the two descriptors; the terminal
        // settings and size are read from our stderr, a terminal.
        let slave = unsafe {
            let mut modes: libc::termios = std::mem::zeroed();
            let mut size: libc::winsize = std::mem::zeroed();
            let modes_ok = libc::tcgetattr(2, &mut modes) == 0;
            let size_ok = libc::ioctl(2, libc::TIOCGWINSZ, &mut size) == 0;
            if libc::openpty(
                &mut master,
                &mut slave,
                std::ptr::null_mut(),
                if modes_ok { &modes } else { std::ptr::null() },
                if size_ok { &size } else { std::ptr::null() },
            ) != 0
            {
                return None;
            }
            libc::fcntl(master, libc::F_SETFD, libc::FD_CLOEXEC);
            libc::fcntl(slave, libc::F_SETFD, libc::FD_CLOEXEC);
            OwnedFd::from_raw_fd(slave)
        };
        // SAFETY: openpty returned it, and nothing else owns it.
        let mut master = std::fs::File::from(unsafe { OwnedFd::from_raw_fd(master) });
        let (tx, done) = std::sync::mpsc::channel();
        std::thread::Builder::new()
            .name("holdcheck-relay".into())
            .spawn(move || {
                let mut buf = [0u8; 4096];
                // EIO once every end of the terminal is closed.
                while let Ok(n @ 1..) = master.read(&mut buf) {
                    let chunk = &buf[..n];
                    let mut b = bar.lock().unwrap_or_else(|e| e.into_inner());
                    if !b.mid_line {
                        eprint!("\r\x1b[2K");
                    }
                    let mut out = std::io::stdout().lock();
                    let _ = out.write_all(chunk);
                    let _ = out.flush();
                    b.mid_line = !chunk.ends_with(b"\n");
                    b.draw();
                }
                let _ = tx.send(());
            })
            .ok()?;
        Some(Relay {
            slave: Arc::new(slave),
            done,
        })
    }
}

/// Adds run `k`'s report to the merged one; returns the number of distinct
/// findings so far.
fn merge(merged: &mut Option<Report>, mut report: Report, k: u32) -> usize {
    for f in report.findings.iter_mut() {
        f.runs = Some(1);
    }
    for w in report.warnings.iter_mut() {
        *w = format!("run {k}: {w}");
    }
    let Some(m) = merged.as_mut() else {
        let n = report.findings.len();
        *merged = Some(report);
        return n;
    };
    for f in report.findings {
        match m.findings.iter_mut().find(|g| g.signature == f.signature) {
            Some(g) => add_run(g, f),
            None => m.findings.push(f),
        }
    }
    m.processes.extend(report.processes);
    m.warnings.extend(report.warnings);
    m.untraced.extend(report.untraced);
    m.partial |= report.partial;
    m.run = report.run;
    sort_by_weight(&mut m.findings);
    m.summary = Summary::of(&m.findings);
    m.findings.len()
}

fn add_run(g: &mut Finding, f: Finding) {
    g.runs = Some(g.runs.unwrap_or(1) + 1);
    // Within one run: the most any run saw.
    g.occurrences = g.occurrences.max(f.occurrences);
}

/// Deadlocks first, then potential deadlocks, stalls, misuse, hazards, stalled
/// calls; within a kind, the most frequent first.
fn sort_by_weight(findings: &mut [Finding]) {
    findings.sort_by_key(|f| {
        (
            crate::report::weight(&f.kind),
            std::cmp::Reverse(f.runs.unwrap_or(1)),
        )
    });
}
