//! Programs with many more lock instances than lock classes
//! (`examples/c/manylocks.c`): a lock per object, and ThreadSanitizer's
//! deadlock detector stress test in C. Each runs natively and under the
//! shim, alternating, at one length and at four times it: ns per step
//! (median and spread), peak RSS and trace bytes. The trace and the
//! shim's memory must not grow with run time (issue 17). The same for a
//! queue whose every wait makes its own semaphore or condition variable
//! (`examples/c/perwait.c`, as Python's `threading.Condition` does), and
//! for many semaphores alive at once while the process idles.

use crate::measure::{dir_bytes, median, run, trace_dir, under_shim, Measured};
use crate::{Ctx, Table};
use anyhow::{Context, Result};
use std::path::Path;
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

/// One length of one case, native and under the shim alternating.
struct Runs {
    native: Vec<f64>,
    shim: Vec<f64>,
    /// Peak RSS (kB) of the last runs, native and under the shim.
    rss: (u64, u64),
    /// The last shim run's trace.
    bytes: u64,
}

/// Runs `exe args` natively and under the shim, `ctx.runs` times each,
/// alternating; `value` reads one run's figure.
fn alternate(
    ctx: &Ctx,
    exe: &Path,
    args: &[&str],
    value: impl Fn(&Measured) -> Result<f64>,
) -> Result<Runs> {
    let mut r = Runs {
        native: Vec::new(),
        shim: Vec::new(),
        rss: (0, 0),
        bytes: 0,
    };
    let name = format!("classes-{}", args.join("-"));
    for _ in 0..ctx.runs {
        let m = run(Command::new(exe).args(args))?;
        r.native.push(value(&m)?);
        r.rss.0 = m.max_rss_kb;
        let traces = trace_dir(&ctx.work, &name)?;
        let mut c = Command::new(exe);
        c.args(args);
        under_shim(&mut c, &ctx.shim, &traces);
        let m = run(&mut c)?;
        r.shim.push(value(&m)?);
        r.rss.1 = m.max_rss_kb;
        r.bytes = dir_bytes(&traces);
    }
    Ok(r)
}

/// [`alternate`] of `exe mode N` at two lengths N.
fn at_lengths(
    ctx: &Ctx,
    exe: &Path,
    mode: &str,
    lengths: [u64; 2],
    value: impl Fn(&Measured) -> Result<f64> + Copy,
) -> Result<[(u64, Runs); 2]> {
    let one = |n: u64| alternate(ctx, exe, &[mode, &n.to_string()], value).map(|r| (n, r));
    Ok([one(lengths[0])?, one(lengths[1])?])
}

/// The rows of one case at two lengths: the ratio budget, and the longer
/// run with no more trace or memory than the shorter (a little slack for
/// the allocator and the trace's last records). `extra`: a budget of the
/// case's own (its text and whether the run met it).
fn rows(
    t: &mut Table,
    case: &str,
    lengths: [(u64, Runs); 2],
    extra: impl Fn(&Runs) -> Option<(String, bool)>,
) {
    let mut first: Option<(u64, u64)> = None;
    for (n, mut r) in lengths {
        let (nm, sm) = (median(&mut r.native), median(&mut r.shim));
        let ratio = sm / nm;
        let delta = r.rss.1.saturating_sub(r.rss.0);
        let flat = first.is_none_or(|(d0, b0)| delta <= d0 + 1024 && r.bytes <= b0 + 64 * 1024);
        first.get_or_insert((delta, r.bytes));
        let (what, met) = match extra(&r) {
            Some((what, met)) => (format!("{RATIO_BUDGET}x, {what}"), met),
            None => (format!("{RATIO_BUDGET}x, trace and memory flat"), true),
        };
        t.row(
            &[
                case.to_string(),
                n.to_string(),
                format!("{nm:.1} ({})", spread(&r.native)),
                format!("{sm:.1} ({})", spread(&r.shim)),
                format!("{ratio:.2}x"),
                format!("{}/{}", r.rss.0, r.rss.1),
                r.bytes.to_string(),
            ],
            Some((what, ratio <= RATIO_BUDGET && flat && met)),
        );
    }
}

fn header(t: &mut Table, case: &str, length: &str, unit: &str) {
    t.header(&[
        case,
        length,
        &format!("native {unit}"),
        &format!("shim {unit}"),
        "ratio",
        "RSS native/shim",
        "trace bytes",
        "budget",
    ]);
}

pub fn bench(ctx: &Ctx, t: &mut Table) -> Result<()> {
    let exe = ctx.examples.join("manylocks");
    t.section(&format!(
        "many locks, few classes: ns per step (median of {} runs, range), peak RSS (kB) and trace bytes (of the last run), by run length",
        ctx.runs
    ));
    header(t, "case", "steps", "ns");
    let base: u64 = if ctx.quick { 50_000 } else { 250_000 };
    for mode in ["--objects", "--stress"] {
        let steps = |m: &Measured| ns_per_step(&m.stdout);
        let lengths = at_lengths(ctx, &exe, mode, [base, base * 4], steps)?;
        let stress = mode == "--stress";
        rows(t, mode.trim_start_matches('-'), lengths, |r| {
            stress.then(|| {
                (
                    "trace < 5 MB and flat".to_string(),
                    r.bytes < STRESS_TRACE_BUDGET,
                )
            })
        });
    }
    per_wait(ctx, t)?;
    alive_objects(ctx, t)
}

/// `perwait alive N S`: what it printed, the CPU ms spent idle and the
/// peak RSS (kB).
fn idle_cpu_and_rss(m: &Measured) -> Result<(f64, u64)> {
    let text = String::from_utf8_lossy(&m.stdout);
    let mut w = text.split_whitespace().skip(2);
    let mut next = || w.next().context("perwait alive printed too little");
    Ok((
        next()?.parse().context("idle CPU")?,
        next()?.parse().context("peak RSS")?,
    ))
}

/// Semaphores alive at once, then the process idle: the watchdog's looks
/// read the waiting threads' channels, not every channel the process has,
/// so the idle CPU must not grow with the objects; the memory kept per
/// object is shown.
fn alive_objects(ctx: &Ctx, t: &mut Table) -> Result<()> {
    let exe = ctx.examples.join("perwait");
    let idle_s: u64 = if ctx.quick { 1 } else { 3 };
    t.section(&format!(
        "semaphores alive at once, then {idle_s} s idle (`perwait alive`): CPU ms spent idle, peak RSS (kB), the shim's bytes per semaphore"
    ));
    t.header(&[
        "semaphores",
        "native idle ms",
        "shim idle ms",
        "RSS native/shim",
        "bytes per semaphore",
        "budget",
    ]);
    let base: u64 = if ctx.quick { 20_000 } else { 100_000 };
    let mut first: Option<f64> = None;
    for n in [base, base * 2] {
        let args = ["alive".to_string(), n.to_string(), idle_s.to_string()];
        let native = idle_cpu_and_rss(&run(Command::new(&exe).args(&args))?)?;
        let traces = trace_dir(&ctx.work, &format!("alive-{n}"))?;
        let mut c = Command::new(&exe);
        c.args(&args);
        under_shim(&mut c, &ctx.shim, &traces);
        let shim = idle_cpu_and_rss(&run(&mut c)?)?;
        let per = shim.1.saturating_sub(native.1) * 1024 / n;
        // At most 10 ms a second of idle more at twice the objects.
        let budget = first.map(|f| {
            (
                "idle CPU flat in the objects".to_string(),
                shim.0 <= f + 10.0 * idle_s as f64,
            )
        });
        first.get_or_insert(shim.0);
        t.row(
            &[
                n.to_string(),
                format!("{:.0}", native.0),
                format!("{:.0}", shim.0),
                format!("{}/{}", native.1, shim.1),
                per.to_string(),
            ],
            budget,
        );
    }
    Ok(())
}

/// A queue whose waits each make their own object: ms per run, peak RSS
/// and trace bytes, at one length and ten times it.
fn per_wait(ctx: &Ctx, t: &mut Table) -> Result<()> {
    let exe = ctx.examples.join("perwait");
    t.section(&format!(
        "an object made per wait (`perwait`, a producer and a consumer through 4 slots): ms per run (median of {} runs, range), peak RSS (kB) and trace bytes (of the last run), by items",
        ctx.runs
    ));
    header(t, "object", "items", "ms");
    let base: u64 = if ctx.quick { 5_000 } else { 20_000 };
    for object in ["sem", "cond"] {
        let ms = |m: &Measured| Ok(m.wall.as_secs_f64() * 1e3);
        let lengths = at_lengths(ctx, &exe, object, [base, base * 10], ms)?;
        rows(t, object, lengths, |_| None);
    }
    Ok(())
}
