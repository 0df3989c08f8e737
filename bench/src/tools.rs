//! The lock-heavy program (lockbench --heavy) as a whole: native, under the
//! shim, built with ThreadSanitizer, and under Valgrind's DRD and Helgrind
//! (with fewer iterations: they are slow), as ratios to native at the same
//! iteration count.

use crate::measure::{have, median, run, under_shim};
use crate::{Ctx, Table};
use anyhow::{bail, Result};
use std::path::Path;
use std::process::Command;

fn seconds(ctx: &Ctx, mut make: impl FnMut() -> Command) -> Result<f64> {
    let mut v = Vec::new();
    for _ in 0..ctx.runs.min(5) {
        v.push(run(&mut make())?.wall.as_secs_f64());
    }
    Ok(median(&mut v))
}

fn tsan_build(ctx: &Ctx) -> Result<std::path::PathBuf> {
    let out = ctx.work.join("lockbench-tsan");
    let src = ctx.root.join("examples/c/lockbench.c");
    let st = Command::new("cc")
        .args([
            "-std=gnu11",
            "-O1",
            "-g",
            "-pthread",
            "-fsanitize=thread",
            "-o",
        ])
        .arg(&out)
        .arg(&src)
        .status()?;
    if !st.success() {
        bail!("cannot build lockbench with -fsanitize=thread");
    }
    Ok(out)
}

pub fn bench(ctx: &Ctx, t: &mut Table) -> Result<()> {
    let bench = ctx.examples.join("lockbench");
    let traces = crate::measure::trace_dir(&ctx.work, "tools")?;
    let big = if ctx.quick { 2_000_000 } else { 10_000_000 };
    let small = if ctx.quick { 50_000 } else { 200_000 };
    let heavy = |exe: &Path, n: u64| {
        let mut c = Command::new(exe);
        c.args(["--heavy", &n.to_string()]);
        c
    };
    t.section(&format!(
        "lock-heavy program (lockbench --heavy: 2 threads, {big} lock/unlock iterations each; Valgrind tools with {small}), seconds and ratio to native"
    ));
    t.header(&[
        "tool",
        "iterations",
        "native s",
        "tool s",
        "ratio",
        "budget",
    ]);
    let native = seconds(ctx, || heavy(&bench, big))?;
    let shim = seconds(ctx, || {
        let mut c = heavy(&bench, big);
        under_shim(&mut c, &ctx.shim, &traces);
        c
    })?;
    t.row(
        &[
            "holdcheck shim".into(),
            big.to_string(),
            format!("{native:.3}"),
            format!("{shim:.3}"),
            format!("{:.2}x", shim / native),
        ],
        Some(("1.5x".into(), shim / native <= 1.5)),
    );
    match tsan_build(ctx) {
        Ok(tsan) => {
            let s = seconds(ctx, || heavy(&tsan, big))?;
            t.row(
                &[
                    "ThreadSanitizer (gcc -fsanitize=thread)".into(),
                    big.to_string(),
                    format!("{native:.3}"),
                    format!("{s:.3}"),
                    format!("{:.2}x", s / native),
                ],
                None,
            );
        }
        Err(e) => t.note(&format!("ThreadSanitizer: {e}")),
    }
    if have("valgrind") {
        let native_small = seconds(ctx, || heavy(&bench, small))?;
        for tool in ["drd", "helgrind"] {
            let s = seconds(ctx, || {
                let mut c = Command::new("valgrind");
                c.args(["-q", &format!("--tool={tool}")])
                    .arg(&bench)
                    .args(["--heavy", &small.to_string()]);
                c
            })?;
            t.row(
                &[
                    format!("valgrind --tool={tool}"),
                    small.to_string(),
                    format!("{native_small:.3}"),
                    format!("{s:.3}"),
                    format!("{:.0}x", s / native_small),
                ],
                None,
            );
        }
    } else {
        t.note("valgrind is not installed (apt-get install valgrind): DRD and Helgrind left out");
    }
    Ok(())
}
