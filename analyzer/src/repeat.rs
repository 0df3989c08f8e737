//! `holdcheck run --repeat N`: a stress run. The command runs N times, each
//! with its own trace directory (`run-K` under one base directory), and the
//! findings of all runs are merged by signature: each distinct finding is
//! reported once, with in how many runs it was found.

use crate::report::{Finding, RepeatInfo, Report, Summary};
use crate::run::{self, Ending, RunOptions};
use anyhow::Result;
use std::collections::BTreeMap;
use std::io::IsTerminal;

/// Runs the command `n` times and merges the reports. `once` runs it once
/// in the given trace directory and analyses that run.
pub fn repeat(
    opts: &RunOptions,
    n: u32,
    once: impl Fn(&RunOptions) -> Result<(Report, Ending)>,
) -> Result<Report> {
    let base = run::trace_dir(opts.out.as_deref())?;
    let terminal = std::io::stderr().is_terminal();
    let mut merged: Option<Report> = None;
    let mut endings: BTreeMap<String, u32> = BTreeMap::new();
    let mut runs = 0;
    for k in 1..=n {
        let this = RunOptions {
            command: opts.command.clone(),
            out: Some(base.join(format!("run-{k}"))),
            timeout: opts.timeout,
            keep_running: opts.keep_running,
        };
        let (report, ending) = once(&this)?;
        runs = k;
        *endings.entry(ending.info().0.to_string()).or_default() += 1;
        let total = merge(&mut merged, report, k);
        progress(terminal, k, n, &ending, total);
        if ending == Ending::Interrupted {
            break;
        }
    }
    if terminal {
        eprintln!();
    }
    let mut report = merged.expect("at least one run");
    if let Some(r) = report.run.as_mut() {
        r.trace_dir = base.display().to_string();
        r.repeat = Some(RepeatInfo {
            runs,
            asked: n,
            endings,
        });
    }
    Ok(report)
}

/// One line per run in a log; one line rewritten in place on a terminal.
fn progress(terminal: bool, k: u32, n: u32, ending: &Ending, findings: usize) {
    if terminal {
        let width = 30;
        let done = (k as usize * width) / n as usize;
        eprint!(
            "\r[{}{}] {k}/{n} runs, {findings} distinct finding(s)",
            "#".repeat(done),
            " ".repeat(width - done)
        );
    } else {
        eprintln!(
            "holdcheck: run {k}/{n}: the command {ending}; {findings} distinct finding(s) so far"
        );
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
