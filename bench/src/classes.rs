//! Programs with many more lock instances than lock classes
//! (`examples/c/manylocks.c`): a lock per object, and ThreadSanitizer's
//! deadlock detector stress test in C. Each runs natively and under the
//! shim, alternating, at one length and at four times it: ns per step
//! (median and spread), peak RSS and trace bytes. The trace and the
//! shim's memory must not grow with run time (issue 17).

use crate::measure::{dir_bytes, median, run, trace_dir, under_shim};
use crate::{Ctx, Table};
use anyhow::{Context, Result};
use std::process::Command;

/// Issue 17: both shapes at most 1.5× native.
const RATIO_BUDGET: f64 = 1.5;
/// Issue 17: the stress test's trace under 5 MB.
const STRESS_TRACE_BUDGET: u64 = 5 << 20;

fn ns_per_step(out: &[u8]) -> Result<f64> {
    let text = String::from_utf8_lossy(out);
    text.split_whitespace()
        .nth(1)
        .context("manylocks printed nothing")?
        .parse()
        .context("manylocks output")
}

fn spread(v: &[f64]) -> String {
    let lo = v.iter().cloned().fold(f64::INFINITY, f64::min);
    let hi = v.iter().cloned().fold(0.0, f64::max);
    format!("{lo:.0}-{hi:.0}")
}

pub fn bench(ctx: &Ctx, t: &mut Table) -> Result<()> {
    let exe = ctx.examples.join("manylocks");
    t.section(&format!(
        "many locks, few classes: ns per step (median of {} runs, range), peak RSS (kB) and trace bytes (of the last run), by run length",
        ctx.runs
    ));
    t.header(&[
        "case",
        "steps",
        "native ns",
        "shim ns",
        "ratio",
        "RSS native/shim",
        "trace bytes",
        "budget",
    ]);
    let base: u64 = if ctx.quick { 50_000 } else { 250_000 };
    for mode in ["--objects", "--stress"] {
        let mut first: Option<(u64, u64)> = None;
        for n in [base, base * 4] {
            let (mut native, mut shim) = (Vec::new(), Vec::new());
            let (mut rss_n, mut rss_s, mut bytes) = (0, 0, 0);
            for _ in 0..ctx.runs {
                let m = run(Command::new(&exe).args([mode, &n.to_string()]))?;
                native.push(ns_per_step(&m.stdout)?);
                rss_n = m.max_rss_kb;
                let traces = trace_dir(&ctx.work, &format!("classes{mode}-{n}"))?;
                let mut c = Command::new(&exe);
                c.args([mode, &n.to_string()]);
                under_shim(&mut c, &ctx.shim, &traces);
                let m = run(&mut c)?;
                shim.push(ns_per_step(&m.stdout)?);
                rss_s = m.max_rss_kb;
                bytes = dir_bytes(&traces);
            }
            let (nm, sm) = (median(&mut native), median(&mut shim));
            let ratio = sm / nm;
            let delta = rss_s.saturating_sub(rss_n);
            // The longer run: no more trace or memory than the shorter
            // (a little slack for the allocator and the trace's last
            // records), and the ratio budget.
            let flat = first.is_none_or(|(d0, b0)| delta <= d0 + 1024 && bytes <= b0 + 64 * 1024);
            first.get_or_insert((delta, bytes));
            let small = mode != "--stress" || bytes < STRESS_TRACE_BUDGET;
            let what = if mode == "--stress" {
                format!("{RATIO_BUDGET}x, trace < 5 MB and flat")
            } else {
                format!("{RATIO_BUDGET}x, trace and memory flat")
            };
            t.row(
                &[
                    mode.trim_start_matches('-').to_string(),
                    n.to_string(),
                    format!("{nm:.1} ({})", spread(&native)),
                    format!("{sm:.1} ({})", spread(&shim)),
                    format!("{ratio:.2}x"),
                    format!("{rss_n}/{rss_s}"),
                    bytes.to_string(),
                ],
                Some((what, ratio <= RATIO_BUDGET && flat && small)),
            );
        }
    }
    Ok(())
}
