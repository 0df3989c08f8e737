//! The shim's memory and trace over a long run: peak RSS and trace size of
//! the lock-heavy program natively and under the shim, at one run length
//! and at four times it. Both must grow with the number of distinct facts
//! (the same here), not with run time.

use crate::measure::{dir_bytes, run, trace_dir, under_shim};
use crate::{Ctx, Table};
use anyhow::Result;
use std::process::Command;

pub fn bench(ctx: &Ctx, t: &mut Table) -> Result<()> {
    let bench = ctx.examples.join("lockbench");
    let base: u64 = if ctx.quick { 1_000_000 } else { 5_000_000 };
    t.section("memory: peak RSS (kB) and trace size (bytes) of lockbench --heavy, by run length");
    t.header(&[
        "iterations",
        "native RSS",
        "shim RSS",
        "delta",
        "trace bytes",
        "budget",
    ]);
    let mut first: Option<(u64, u64)> = None;
    for n in [base, base * 4] {
        let native = run(Command::new(&bench).args(["--heavy", &n.to_string()]))?;
        let traces = trace_dir(&ctx.work, &format!("memory-{n}"))?;
        let mut c = Command::new(&bench);
        c.args(["--heavy", &n.to_string()]);
        under_shim(&mut c, &ctx.shim, &traces);
        let shim = run(&mut c)?;
        let delta = shim.max_rss_kb.saturating_sub(native.max_rss_kb);
        let bytes = dir_bytes(&traces);
        // The longer run may not need more: a little slack for the
        // allocator and the page cache of the trace.
        let budget = first.map(|(d0, b0)| {
            (
                "no growth with run time".to_string(),
                delta <= d0 + 512 && bytes <= b0 + 4096,
            )
        });
        first.get_or_insert((delta, bytes));
        t.row(
            &[
                n.to_string(),
                native.max_rss_kb.to_string(),
                shim.max_rss_kb.to_string(),
                format!("+{delta}"),
                bytes.to_string(),
            ],
            budget,
        );
    }
    Ok(())
}
