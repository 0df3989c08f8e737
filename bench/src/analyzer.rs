//! The analyzer on synthetic traces: 100 k and 1 M lock-order facts over
//! 100 k locks (a lock hierarchy, mostly acyclic, with a few inversions
//! planted), timed with their peak RSS. Issue 17: 1 M facts in under 2 s
//! and 500 MB.

use crate::measure::run_allowing;
use crate::{Ctx, Table};
use anyhow::Result;
use holdcheck_format::{Held, LockKind, LockRef, Mode, Record, TRACE_VERSION};
use std::io::Write;
use std::path::Path;
use std::process::Command;

/// Issue 17's budget for 1 M facts.
const MILLION_FACTS_SECS: f64 = 2.0;
const MILLION_FACTS_MB: f64 = 500.0;

/// Inversions planted in every synthetic trace: each one potential deadlock.
const PLANTED: usize = 10;
/// Locks in each planted ring (one thread per edge).
const RING: u64 = 64;

/// Writes a trace of `facts` lock-order facts over `locks` locks, plus
/// `rings` rings of `RING` locks of their own.
fn synthetic(dir: &Path, facts: usize, locks: u64, rings: u64) -> Result<()> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let mut f = std::io::BufWriter::new(std::fs::File::create(dir.join("holdcheck.1000.0.trace"))?);
    let lock = |i: u64| LockRef {
        addr: 0x1000_0000 + i * 64,
        gen: 0,
    };
    f.write_all(
        &Record::Header {
            version: TRACE_VERSION,
            pid: 1000,
            ppid: 1,
            exe: "/synthetic".into(),
            cmdline: vec![],
            call_clock_res_ns: None,
        }
        .to_line(),
    )?;
    for i in 0..locks {
        f.write_all(
            &Record::Lock {
                lock: lock(i),
                kind: LockKind::Mutex,
                writer_preferring: false,
                recursive: false,
                file: None,
                init: None,
            }
            .to_line(),
        )?;
    }
    for s in 0..64u64 {
        f.write_all(
            &Record::Stack {
                id: s + 1,
                frames: vec![0x40_1000 + s * 16, 0x40_2000],
            }
            .to_line(),
        )?;
    }
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for k in 0..facts {
        // Held a lower lock, acquires a higher one: a hierarchy.
        let a = next() % (locks - 1);
        let b = a + 1 + next() % (locks - a - 1).min(1000);
        let (held, want) = if k < PLANTED {
            (b, a) // the wrong way round, planted
        } else {
            (a, b)
        };
        // The planted ones each at their own code sites (distinct bugs).
        let site = if k < PLANTED {
            0x40_8000 + k as u64 * 64
        } else {
            0x40_1234
        };
        if k < PLANTED {
            // ... and the right way round, by another thread.
            f.write_all(&order(1, lock(a), lock(b), site + 16))?;
        }
        f.write_all(&order(2 + (k as u32 % 64), lock(held), lock(want), site))?;
    }
    for r in 0..rings {
        let base = locks + r * RING;
        for i in 0..RING {
            let tid = 10_000 + (r * RING + i) as u32;
            let (from, to) = (lock(base + i), lock(base + (i + 1) % RING));
            f.write_all(&order(tid, from, to, 0x40_9000 + r * 64))?;
        }
    }
    f.flush()?;
    Ok(())
}

fn order(tid: u32, held: LockRef, want: LockRef, site: u64) -> Vec<u8> {
    Record::LockOrder {
        tid,
        lock: want,
        mode: Mode::Write,
        try_lock: false,
        held: vec![Held {
            lock: held,
            mode: Mode::Write,
            site,
            stack: None,
        }],
        stack: 1 + (tid as u64 % 64),
        phase: 0,
    }
    .to_line()
}

pub fn bench(ctx: &Ctx, t: &mut Table) -> Result<()> {
    let holdcheck = ctx.root.join("target/release/holdcheck");
    t.section("analyzer: holdcheck report on synthetic traces (lock-order facts over a lock hierarchy, 10 inversions planted; the last rows add rings of 64 locks, one thread per edge)");
    t.header(&[
        "facts",
        "locks",
        "trace MB",
        "seconds",
        "peak RSS MB",
        "found",
        "budget",
    ]);
    let sizes: &[(usize, u64, u64)] = if ctx.quick {
        &[(100_000, 100_000, 0), (100_000, 100_000, 10)]
    } else {
        &[
            (100_000, 100_000, 0),
            (1_000_000, 100_000, 0),
            (1_000_000, 100_000, 10),
        ]
    };
    for &(facts, locks, rings) in sizes {
        let dir = ctx.work.join(format!("synthetic-{facts}-{rings}"));
        synthetic(&dir, facts, locks, rings)?;
        let mb = crate::measure::dir_bytes(&dir) as f64 / 1e6;
        let out = ctx.work.join("synthetic-report.json");
        let mut c = Command::new(&holdcheck);
        c.args(["report", "--format", "json", "-o"])
            .arg(&out)
            .arg(&dir);
        // Exit status 1: findings (the planted ones).
        let m = run_allowing(&mut c, &[0, 1])?;
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out)?)?;
        // Cycles found, merged or not, and how many pass through a planted
        // inversion (the only way a cycle can exist in the hierarchy; a
        // long one may chain several facts through one inversion).
        let cycles: Vec<&serde_json::Value> = report["findings"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|f| f["kind"] == "potential-deadlock")
            .collect();
        let found: u64 = cycles
            .iter()
            .map(|f| f["occurrences"].as_u64().unwrap_or(1))
            .sum();
        let planted_sites: Vec<String> = (0..PLANTED as u64)
            .map(|k| format!("{:#x}", 0x40_8000 + k * 64))
            .collect();
        let through = cycles
            .iter()
            .filter(|f| {
                f["edges"].as_array().into_iter().flatten().any(|e| {
                    e["held_at"]["pc"]
                        .as_str()
                        .is_some_and(|pc| planted_sites.iter().any(|p| p == pc))
                })
            })
            .count();
        // Rings found whole: a finding of RING nodes through a ring's site.
        let whole_rings = cycles
            .iter()
            .filter(|f| {
                f["nodes"]
                    .as_array()
                    .is_some_and(|n| n.len() == RING as usize)
                    && f["edges"][0]["held_at"]["pc"]
                        .as_str()
                        .is_some_and(|pc| pc.starts_with("0x409"))
            })
            .count();
        let rings_found = if rings > 0 {
            format!("; {whole_rings} of {rings} rings of {RING} locks")
        } else {
            String::new()
        };
        let secs = m.wall.as_secs_f64();
        let mb_rss = m.max_rss_kb as f64 / 1024.0;
        let budget = (facts >= 1_000_000).then(|| {
            (
                format!("< {MILLION_FACTS_SECS} s, < {MILLION_FACTS_MB} MB"),
                secs < MILLION_FACTS_SECS && mb_rss < MILLION_FACTS_MB,
            )
        });
        t.row(
            &[
                facts.to_string(),
                locks.to_string(),
                format!("{mb:.0}"),
                format!("{secs:.2}"),
                format!("{mb_rss:.0}"),
                format!("{found} cycles ({through} shown through a planted inversion; {PLANTED} planted{rings_found})"),
            ],
            budget,
        );
    }
    Ok(())
}
