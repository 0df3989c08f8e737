//! Instruction counts of the fast paths, under callgrind: what the shim
//! adds to one uncontended mutex lock/unlock pair (in a process with
//! threads and in one without), to one socket round trip (a
//! blocking-capable send and receive made again, with no lock held and
//! under one) and to one steady condition-variable signal under two locks,
//! with no noise.
//! `--check` compares them with the committed baselines
//! (bench/callgrind-baseline.txt) and fails if one grew by more than 20%.

use crate::measure::{have, run, trace_dir, under_shim};
use crate::{Ctx, Table};
use anyhow::{bail, Context, Result};
use std::process::Command;

/// Growth over the baseline that fails `--check`.
const ALLOWED_GROWTH: f64 = 1.20;

/// The cases: lockbench's mode, and the baseline file's key.
const CASES: [(&str, &str, &str); 5] = [
    (
        "mutex lock/unlock pair",
        "--pairs",
        "mutex_pair_added_instructions",
    ),
    (
        "the same, the process single-threaded",
        "--single-pairs",
        "single_thread_mutex_pair_added_instructions",
    ),
    (
        "socket round trip (send and recv)",
        "--roundtrips",
        "socket_roundtrip_added_instructions",
    ),
    (
        "socket round trip under a mutex",
        "--locked-roundtrips",
        "socket_roundtrip_locked_added_instructions",
    ),
    (
        "steady signal under two locks, a lock made and destroyed beside it",
        "--signals",
        "signal_churn_added_instructions",
    ),
];

/// Total instructions of `lockbench MODE n`.
fn instructions(ctx: &Ctx, mode: &str, n: u64, shim: bool) -> Result<u64> {
    let out = ctx.work.join(format!("callgrind{mode}.{n}.{shim}.out"));
    let traces = trace_dir(&ctx.work, "callgrind-traces")?;
    let mut c = Command::new("valgrind");
    c.args(["-q", "--tool=callgrind"])
        .arg(format!("--callgrind-out-file={}", out.display()))
        .arg(ctx.examples.join("lockbench"))
        .args([mode, &n.to_string()]);
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

/// Instructions per iteration, without the fixed costs (start-up, the
/// first facts): the difference of two runs of different lengths.
fn per_iteration(ctx: &Ctx, mode: &str, shim: bool) -> Result<f64> {
    let (a, b) = (100_000, 300_000);
    let (ia, ib) = (
        instructions(ctx, mode, a, shim)?,
        instructions(ctx, mode, b, shim)?,
    );
    Ok((ib as f64 - ia as f64) / (b - a) as f64)
}

fn baseline(ctx: &Ctx, key: &str) -> Result<f64> {
    let path = ctx.root.join("bench/callgrind-baseline.txt");
    let text = std::fs::read_to_string(&path)
        .with_context(|| format!("cannot read {}", path.display()))?;
    text.lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(' '))
        .and_then(|v| v.trim().parse().ok())
        .with_context(|| format!("{}: no {key} line", path.display()))
}

/// Measures each case against its baseline.
pub fn bench(ctx: &Ctx, t: &mut Table) -> Result<()> {
    if !have("valgrind") {
        bail!("valgrind is not installed (apt-get install valgrind)");
    }
    t.section("instructions the shim adds to a fast path (callgrind, exact, per iteration)");
    t.header(&[
        "case", "native", "shim", "added", "baseline", "limit", "budget",
    ]);
    for (name, mode, key) in CASES {
        let native = per_iteration(ctx, mode, false)?;
        let shim = per_iteration(ctx, mode, true)?;
        let added = shim - native;
        let base = baseline(ctx, key)?;
        t.row(
            &[
                name.to_string(),
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
    }
    Ok(())
}
