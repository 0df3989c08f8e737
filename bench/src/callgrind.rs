//! Instruction counts of the uncontended fast path, under callgrind: what
//! the shim adds to one mutex lock/unlock pair, with no noise. `--check`
//! compares it with the committed baseline (bench/callgrind-baseline.txt)
//! and fails if it grew by more than 20%.

use crate::measure::{have, run, trace_dir, under_shim};
use crate::{Ctx, Table};
use anyhow::{bail, Context, Result};
use std::process::Command;

/// Growth over the baseline that fails `--check`.
const ALLOWED_GROWTH: f64 = 1.20;

/// Total instructions of `lockbench --pairs n`.
fn instructions(ctx: &Ctx, n: u64, shim: bool) -> Result<u64> {
    let out = ctx.work.join(format!("callgrind.{n}.{shim}.out"));
    let traces = trace_dir(&ctx.work, "callgrind-traces")?;
    let mut c = Command::new("valgrind");
    c.args(["-q", "--tool=callgrind"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(ctx.examples.join("lockbench"))
        .args(["--pairs", &n.to_string()]);
    if shim {
        under_shim(&mut c, &ctx.shim, &traces);
    }
    run(&mut c)?;
    let text = std::fs::read_to_string(&out)?;
    text.lines()
        .find_map(|l| {
            l.strip_prefix("summary: ")
                .or_else(|| l.strip_prefix("totals: "))
        })
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .context("no instruction total in the callgrind output")
}

/// Instructions per pair, without the fixed costs (start-up, the first
/// facts): the difference of two runs of different lengths.
fn per_pair(ctx: &Ctx, shim: bool) -> Result<f64> {
    let (a, b) = (100_000, 300_000);
    let (ia, ib) = (instructions(ctx, a, shim)?, instructions(ctx, b, shim)?);
    Ok((ib as f64 - ia as f64) / (b - a) as f64)
}

pub fn baseline(ctx: &Ctx) -> Result<f64> {
    let path = ctx.root.join("bench/callgrind-baseline.txt");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix("mutex_pair_added_instructions "))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("{}: no mutex_pair_added_instructions line", path.display()))
}

/// Measures; returns the instructions the shim adds per pair.
pub fn bench(ctx: &Ctx, t: &mut Table) -> Result<f64> {
    if !have("valgrind") {
        bail!("valgrind is not installed (apt-get install valgrind)");
    }
    let native = per_pair(ctx, false)?;
    let shim = per_pair(ctx, true)?;
    let added = shim - native;
    let base = baseline(ctx)?;
    t.section("instructions per uncontended mutex lock/unlock pair (callgrind, exact)");
    t.header(&[
        "case", "native", "shim", "added", "baseline", "limit", "budget",
    ]);
    t.row(
        &[
            "mutex lock/unlock pair".to_string(),
            format!("{native:.1}"),
            format!("{shim:.1}"),
            format!("{added:.1}"),
            format!("{base:.1}"),
            format!("{:.1}", base * ALLOWED_GROWTH),
        ],
        Some((
            format!(
                "at most {:.0}% over the baseline",
                (ALLOWED_GROWTH - 1.0) * 100.0
            ),
            added <= base * ALLOWED_GROWTH,
        )),
    );
    Ok(added)
}
