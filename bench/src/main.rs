//! `cargo run --release -p holdcheck-bench [-- RUNS]`: runs the lockbench
//! example natively and under the shim, alternating, RUNS times each (default
//! 7), and prints the median ns per operation, the difference and the
//! ratio, against the budgets of DESIGN.md.

use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

/// DESIGN.md: an uncontended pair adds at most 10 ns.
const PAIR_BUDGET_NS: f64 = 10.0;
/// DESIGN.md: a lock-heavy program runs at most 1.5× native.
const HEAVY_BUDGET_RATIO: f64 = 1.5;

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn run(bench: &Path, shim: Option<&Path>, trace_dir: &Path) -> Result<BTreeMap<String, f64>> {
    let mut cmd = Command::new(bench);
    if let Some(shim) = shim {
        cmd.env("LD_PRELOAD", shim)
            .env("HOLDCHECK_DIR", trace_dir)
            .env("HOLDCHECK_OPTIONS", "verbosity=0");
    }
    let out = cmd
        .output()
        .with_context(|| format!("cannot run {}", bench.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            bench.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut m = BTreeMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        if let Some((k, v)) = line.split_once(' ') {
            m.insert(k.to_string(), v.trim().parse::<f64>()?);
        }
    }
    Ok(m)
}

fn main() -> Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(7);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf();
    let target = root.join("target");
    let out = target.join("bench-examples");
    let st = Command::new("sh")
        .arg(root.join("examples/build.sh"))
        .arg(&out)
        .status()?;
    if !st.success() {
        bail!("examples/build.sh failed");
    }
    let bench = out.join("lockbench");
    let shim: PathBuf = target.join("release/libholdcheck.so");
    if !shim.is_file() {
        bail!(
            "{} is missing: run `cargo build --release` first",
            shim.display()
        );
    }
    let trace_dir = target.join("bench-traces");
    let _ = std::fs::remove_dir_all(&trace_dir);
    std::fs::create_dir_all(&trace_dir)?;

    let mut native: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    let mut shimmed: BTreeMap<String, Vec<f64>> = BTreeMap::new();
    for _ in 0..runs {
        // Alternate, so drift on a noisy machine hits both sides alike.
        for (k, v) in run(&bench, None, &trace_dir)? {
            native.entry(k).or_default().push(v);
        }
        for (k, v) in run(&bench, Some(&shim), &trace_dir)? {
            shimmed.entry(k).or_default().push(v);
        }
    }
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    println!("lockbench, median of {runs} runs each, native vs LD_PRELOAD=libholdcheck.so ({cpu}, {} cores)", std::thread::available_parallelism().map_or(0, |n| n.get()));
    println!(
        "{:<24} {:>10} {:>10} {:>10} {:>8}  budget",
        "case (ns/op)", "native", "shim", "delta", "ratio"
    );
    let mut ok = true;
    for (k, v) in native.iter_mut() {
        let n = median(v);
        let s = median(shimmed.get_mut(k).context("case missing under the shim")?);
        let (budget, met) = if k.ends_with("_pair") {
            let per_pair = if k == "nested_pair" { 2.0 } else { 1.0 };
            (
                format!("+{} ns per pair", PAIR_BUDGET_NS * per_pair),
                s - n <= PAIR_BUDGET_NS * per_pair,
            )
        } else {
            (
                format!("{HEAVY_BUDGET_RATIO}x"),
                s / n <= HEAVY_BUDGET_RATIO,
            )
        };
        ok &= met;
        println!(
            "{k:<24} {n:>10.2} {s:>10.2} {:>+10.2} {:>7.2}x  {budget}: {}",
            s - n,
            s / n,
            if met { "met" } else { "MISSED" }
        );
    }
    println!(
        "{}",
        if ok {
            "all budgets met"
        } else {
            "some budgets missed"
        }
    );
    Ok(())
}
