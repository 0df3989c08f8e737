//! Real programs from Debian's packages, natively and under the shim, with
//! their outputs compared: `pigz -p 2` compressing a file of a few hundred
//! MB, and `memcached -t 2` under a loopback load of set/get requests from
//! this benchmark's own client.

use crate::measure::{have, median, run, under_shim};
use crate::memcached::{free_port, load, Memcached, KEYS};
use crate::{Ctx, Table};
use anyhow::{bail, Context, Result};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

/// DESIGN.md: real programs run at most 1.05× native.
const PROGRAM_BUDGET: f64 = 1.05;

/// A compressible file of `mb` MB (text lines with pseudo-random words),
/// made once.
fn data_file(work: &Path, mb: usize) -> Result<PathBuf> {
    let path = work.join(format!("pigz-input-{mb}mb.txt"));
    if path.exists() {
        return Ok(path);
    }
    let words = [
        "lock", "queue", "netlink", "thread", "wait", "alarm", "send", "recv", "holder", "writer",
        "reader", "deadlock", "port", "table", "stack", "daemon",
    ];
    let mut f = std::io::BufWriter::new(std::fs::File::create(&path)?);
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut written = 0;
    while written < mb << 20 {
        let mut line = String::new();
        for _ in 0..12 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            line.push_str(words[(x % words.len() as u64) as usize]);
            line.push(if x.is_multiple_of(7) { '\n' } else { ' ' });
        }
        line.push_str(&format!("{}\n", x % 100_000));
        written += line.len();
        f.write_all(line.as_bytes())?;
    }
    f.flush()?;
    Ok(path)
}

fn pigz(ctx: &Ctx, t: &mut Table) -> Result<()> {
    let mb = if ctx.quick { 32 } else { 256 };
    let input = data_file(&ctx.work, mb)?;
    let traces = crate::measure::trace_dir(&ctx.work, "pigz")?;
    let make = |shim: bool| {
        let mut c = Command::new("pigz");
        c.args(["-p", "2", "-c"]).arg(&input);
        if shim {
            under_shim(&mut c, &ctx.shim, &traces);
        }
        c
    };
    let (mut n, mut s) = (Vec::new(), Vec::new());
    let mut outputs: [Option<Vec<u8>>; 2] = [None, None];
    for _ in 0..ctx.runs.min(5) {
        for (i, shim) in [false, true].into_iter().enumerate() {
            let m = run(&mut make(shim))?;
            (if shim { &mut s } else { &mut n }).push(m.wall.as_secs_f64());
            outputs[i] = Some(m.stdout);
        }
    }
    let same = outputs[0] == outputs[1];
    if !same {
        bail!("pigz wrote different output under the shim");
    }
    let (n, s) = (median(&mut n), median(&mut s));
    t.row(
        &[
            format!("pigz -p 2, {mb} MB"),
            format!("{n:.3}"),
            format!("{s:.3}"),
            format!("{:.3}x", s / n),
            "identical".into(),
        ],
        Some((format!("{PROGRAM_BUDGET}x"), s / n <= PROGRAM_BUDGET)),
    );
    Ok(())
}

fn memcached(ctx: &Ctx, t: &mut Table) -> Result<()> {
    let ops = if ctx.quick { 5_000 } else { 40_000 };
    let clients = 2;
    let traces = crate::measure::trace_dir(&ctx.work, "memcached")?;
    // Wall time of the load and CPU time memcached spent on it.
    let (mut n, mut s) = (Vec::new(), Vec::new());
    let (mut n_cpu, mut s_cpu) = (Vec::new(), Vec::new());
    for _ in 0..ctx.runs.min(5) {
        for shim in [false, true] {
            let port = free_port()?;
            let server = Memcached::start(port, 2, |c| {
                if shim {
                    under_shim(c, &ctx.shim, &traces);
                }
            })
            .context("memcached")?;
            // Warm-up, not timed: the working set is stored once, and the
            // shim records each distinct lock order and call site (a cost
            // bounded by the distinct facts, measured apart below).
            load(port, clients, 2 * KEYS)?;
            let cpu_before = server.cpu_time()?;
            let d = load(port, clients, ops)?.as_secs_f64();
            let cpu = (server.cpu_time()? - cpu_before).as_secs_f64();
            (if shim { &mut s } else { &mut n }).push(d);
            (if shim { &mut s_cpu } else { &mut n_cpu }).push(cpu);
            let (status, _) = server.stop()?;
            if !status.success() {
                bail!("memcached ended with {status} (shim: {shim})");
            }
        }
    }
    let (n, s) = (median(&mut n), median(&mut s));
    t.row(
        &[
            format!("memcached -t 2, {clients} clients x {ops} set+get"),
            format!("{n:.3}"),
            format!("{s:.3}"),
            format!("{:.3}x", s / n),
            "every get right".into(),
        ],
        Some((format!("{PROGRAM_BUDGET}x"), s / n <= PROGRAM_BUDGET)),
    );
    let (n, s) = (median(&mut n_cpu), median(&mut s_cpu));
    t.row(
        &[
            "the same, memcached's CPU time (user+sys)".into(),
            format!("{n:.3}"),
            format!("{s:.3}"),
            format!("{:.3}x", s / n),
            "-".into(),
        ],
        None,
    );
    Ok(())
}

pub fn bench(ctx: &Ctx, t: &mut Table) -> Result<()> {
    t.section(&format!(
        "real programs, seconds (median of {} runs each, alternating) and ratio",
        ctx.runs.min(5)
    ));
    t.header(&["program", "native s", "shim s", "ratio", "output", "budget"]);
    for (name, f) in [
        ("pigz", pigz as fn(&Ctx, &mut Table) -> Result<()>),
        ("memcached", memcached),
    ] {
        if !have(name) {
            t.note(&format!(
                "{name} is not installed (apt-get install {name}): left out"
            ));
            continue;
        }
        f(ctx, t)?;
    }
    Ok(())
}
