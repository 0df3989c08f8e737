//! Micro cases: lockbench's ns per operation, natively and under the shim,
//! alternating runs.

use crate::measure::{fixed_layout, median, run, under_shim};
use crate::{Ctx, Table};
use anyhow::{Context, Result};
use std::collections::BTreeMap;
use std::process::Command;

/// DESIGN.md: an uncontended pair adds at most 10 ns.
const PAIR_BUDGET_NS: f64 = 10.0;
/// A single-threaded process keeps glibc's single-thread path: a pair
/// adds at most 2 ns (issue 17).
const SINGLE_THREAD_BUDGET_NS: f64 = 2.0;
/// A steady condition-variable signal under locks, with a lock made and
/// destroyed alongside, runs at most 1.3x native (issue 17).
const STEADY_SIGNAL_BUDGET_RATIO: f64 = 1.3;
/// A socket round trip (a send and a receive) adds at most 100 ns, 200
/// ns under a lock (issue 17).
const SOCKET_BUDGET_NS: f64 = 100.0;
const SOCKET_LOCKED_BUDGET_NS: f64 = 200.0;
/// DESIGN.md: a lock-heavy program runs at most 1.5× native.
const HEAVY_BUDGET_RATIO: f64 = 1.5;

fn parse(out: &[u8]) -> Result<BTreeMap<String, f64>> {
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(out).lines() {
        if let Some((k, v)) = line.split_once(' ') {
            m.insert(k.to_string(), v.trim().parse::<f64>()?);
        }
    }
    Ok(m)
}

pub fn bench(ctx: &Ctx, t: &mut Table) -> Result<()> {
    let bench = ctx.examples.join("lockbench");
    let iters = if ctx.quick { "1000000" } else { "5000000" };
    let traces = crate::measure::trace_dir(&ctx.work, "micro")?;
    let mut native: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut shimmed: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut floor: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for _ in 0..ctx.runs {
        for (k, v) in parse(&run(fixed_layout(Command::new(&bench).arg(iters)))?.stdout)? {
            native.entry(k).or_default().push(v);
        }
        if let Some(so) = &ctx.floor {
            let mut cmd = Command::new(&bench);
            cmd.arg(iters).env("LD_PRELOAD", so);
            for (k, v) in parse(&run(fixed_layout(&mut cmd))?.stdout)? {
                floor.entry(k).or_default().push(v);
            }
        }
        let mut cmd = Command::new(&bench);
        cmd.arg(iters);
        fixed_layout(&mut cmd);
        under_shim(&mut cmd, &ctx.shim, &traces);
        for (k, v) in parse(&run(&mut cmd)?.stdout)? {
            shimmed.entry(k).or_default().push(v);
        }
    }
    t.section(&format!(
        "lockbench: ns per operation, median of {} runs each, each run the fastest of 5 passes (single_thread_mutex_pair runs while the process has one thread; then an idle helper thread keeps both runs multi-threaded, and under the shim its watchdog runs)",
        ctx.runs
    ));
    t.note("floor: the same runs under a preload whose hooks only forward lockbench's calls to glibc (`bench/floor.c`), what interposing alone costs; delta and ratio are the shim's against native. Every run has the same address layout (as under `setarch -R`): by process, a random layout made a native socket round trip 2.73 or 3.13 us.");
    t.header(&[
        "case", "native", "floor", "shim", "delta", "ratio", "budget",
    ]);
    for (k, v) in native.iter_mut() {
        let n = median(v);
        let s = median(shimmed.get_mut(k).context("case missing under the shim")?);
        let f = floor
            .get_mut(k)
            .map_or("-".to_string(), |v| format!("{:.2}", median(v)));
        let pairs = match k.as_str() {
            "nested_pair" | "nested_pair_object_churn" => Some(2.0),
            "nested4_pair" => Some(4.0),
            "mutex_pair" | "rwlock_read_pair" | "rwlock_write_pair" => Some(1.0),
            _ => None,
        };
        let budget = match (pairs, k.as_str()) {
            (_, "signal_churn_pair") => Some((
                format!("{STEADY_SIGNAL_BUDGET_RATIO}x"),
                s / n <= STEADY_SIGNAL_BUDGET_RATIO,
            )),
            (_, "socket_roundtrip") => {
                Some((format!("+{SOCKET_BUDGET_NS} ns"), s - n <= SOCKET_BUDGET_NS))
            }
            (_, "socket_roundtrip_locked") => Some((
                format!("+{SOCKET_LOCKED_BUDGET_NS} ns"),
                s - n <= SOCKET_LOCKED_BUDGET_NS,
            )),
            (_, "single_thread_mutex_pair") => Some((
                format!("+{SINGLE_THREAD_BUDGET_NS} ns"),
                s - n <= SINGLE_THREAD_BUDGET_NS,
            )),
            (Some(p), _) => Some((
                format!("+{} ns", PAIR_BUDGET_NS * p),
                s - n <= PAIR_BUDGET_NS * p,
            )),
            (None, "lock_heavy_2_threads") => Some((
                format!("{HEAVY_BUDGET_RATIO}x"),
                s / n <= HEAVY_BUDGET_RATIO,
            )),
            _ => None,
        };
        t.row(
            &[
                k.clone(),
                format!("{n:.2}"),
                f,
                format!("{s:.2}"),
                format!("{:+.2}", s - n),
                format!("{:.2}x", s / n),
            ],
            budget,
        );
    }
    Ok(())
}
