//! The benchmark suite of DESIGN.md's budgets:
//!
//! ```text
//! cargo build --release && cargo run --release -p holdcheck-bench [-- OPTIONS]
//!   --quick          shorter inputs and fewer runs
//!   --runs N         runs per measurement (default 7; medians are quoted)
//!   --only SECTION   micro, tools, programs, memory, classes, analyzer,
//!                    callgrind
//!   --check          only the callgrind counts of the fast paths, against
//!                    bench/callgrind-baseline.txt: exit 1 on >20% growth
//! ```
//!
//! It prints one Markdown table per section (what BENCHMARKS.md quotes),
//! each row with its budget, met or MISSED. Exit status 1 if a budget is
//! missed.

mod analyzer;
mod callgrind;
mod classes;
mod measure;
mod memcached;
mod memory;
mod micro;
mod programs;
mod tools;

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;

/// What every section needs.
pub struct Ctx {
    pub root: PathBuf,
    pub examples: PathBuf,
    pub shim: PathBuf,
    /// A preload that only forwards lockbench's calls to glibc (`floor.c`):
    /// what interposing alone costs. None when it could not be built.
    pub floor: Option<PathBuf>,
    /// Scratch space: traces, inputs, outputs.
    pub work: PathBuf,
    pub runs: usize,
    pub quick: bool,
}

/// Markdown output, and whether every budget was met.
#[derive(Default)]
pub struct Table {
    pub missed: Vec<String>,
}

impl Table {
    pub fn section(&mut self, title: &str) {
        println!("\n### {title}\n");
    }
    pub fn header(&mut self, cols: &[&str]) {
        println!("| {} |", cols.join(" | "));
        println!("|{}", " --- |".repeat(cols.len()));
    }
    /// A row; the last column is the budget and whether it was met.
    pub fn row(&mut self, cells: &[String], budget: Option<(String, bool)>) {
        let b = match budget {
            Some((what, true)) => format!("{what}: met"),
            Some((what, false)) => {
                self.missed.push(format!("{}: {what}", cells[0]));
                format!("{what}: **MISSED**")
            }
            None => "-".to_string(),
        };
        println!("| {} | {b} |", cells.join(" | "));
    }
    pub fn note(&mut self, text: &str) {
        println!("\n{text}");
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cpu}, {} cores, Linux {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        kernel.trim()
    )
}

fn setup(quick: bool, runs: usize) -> Result<Ctx> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .context("bench/ has a parent")?
        .to_path_buf();
    let target = root.join("target");
    let examples = target.join("bench-examples");
    let st = Command::new("sh")
        .arg(root.join("examples/build.sh"))
        .arg(&examples)
        .status()?;
    if !st.success() {
        bail!("examples/build.sh failed");
    }
    let shim = target.join("release/libholdcheck.so");
    if !shim.is_file() || !target.join("release/holdcheck").is_file() {
        bail!("run `cargo build --release` first");
    }
    let work = target.join("bench-work");
    std::fs::create_dir_all(&work)?;
    let floor = build_floor(&root, &work);
    Ok(Ctx {
        root,
        examples,
        shim,
        floor,
        work,
        runs,
        quick,
    })
}

/// Builds `bench/floor.c` into the scratch space; None (said) if it fails.
fn build_floor(root: &Path, work: &Path) -> Option<PathBuf> {
    let out = work.join("libfloor.so");
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let built = Command::new(&cc)
        .args(["-O2", "-shared", "-fPIC", "-o"])
        .arg(&out)
        .arg(root.join("bench/floor.c"))
        .arg("-ldl")
        .status()
        .is_ok_and(|s| s.success());
    if !built {
        eprintln!("holdcheck-bench: {cc} could not build bench/floor.c; the micro table has no floor column");
        return None;
    }
    Some(out)
}

/// The sections, in the order they run.
#[derive(Clone, Copy, PartialEq, clap::ValueEnum)]
enum Section {
    Micro,
    Tools,
    Programs,
    Memory,
    Classes,
    Analyzer,
    Callgrind,
}

/// The costs of the shim and the analyzer against native runs, checked
/// against DESIGN.md's budgets; one Markdown table per section.
#[derive(clap::Parser)]
#[command(name = "holdcheck-bench")]
struct Args {
    /// Shorter inputs and fewer runs.
    #[arg(long)]
    quick: bool,
    /// Runs per measurement (medians are quoted); default 7, 3 with --quick.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    runs: Option<u64>,
    /// Only this section.
    #[arg(long, value_name = "SECTION")]
    only: Option<Section>,
    /// Only the callgrind counts of the fast paths, against
    /// bench/callgrind-baseline.txt: exit 1 on more than 20% growth.
    #[arg(long, conflicts_with = "only")]
    check: bool,
}

fn main() -> Result<()> {
    let args = <Args as clap::Parser>::parse();
    let quick = args.quick;
    let runs = args.runs.map_or(if quick { 3 } else { 7 }, |n| n as usize);
    let ctx = setup(quick, runs)?;
    let mut t = Table::default();

    if args.check {
        callgrind::bench(&ctx, &mut t)?;
        return finish(&t);
    }
    let want = |s: Section| args.only.is_none_or(|o| o == s);
    println!(
        "holdcheck benchmarks{}: {}",
        if quick { " (quick)" } else { "" },
        machine()
    );
    if want(Section::Micro) {
        micro::bench(&ctx, &mut t)?;
    }
    if want(Section::Tools) {
        tools::bench(&ctx, &mut t)?;
    }
    if want(Section::Programs) {
        programs::bench(&ctx, &mut t)?;
    }
    if want(Section::Memory) {
        memory::bench(&ctx, &mut t)?;
    }
    if want(Section::Classes) {
        classes::bench(&ctx, &mut t)?;
    }
    if want(Section::Analyzer) {
        analyzer::bench(&ctx, &mut t)?;
    }
    if want(Section::Callgrind) {
        if let Err(e) = callgrind::bench(&ctx, &mut t) {
            t.note(&format!("callgrind: {e:#}"));
        }
    }
    finish(&t)
}

fn finish(t: &Table) -> Result<()> {
    if t.missed.is_empty() {
        println!("\nall budgets met");
        Ok(())
    } else {
        println!("\nbudgets missed: {}", t.missed.join("; "));
        std::process::exit(1);
    }
}
