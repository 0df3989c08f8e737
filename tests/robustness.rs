//! The analyzer on bad input: truncated, corrupted, mixed-version and
//! hostile traces give warnings that name the file and offset, the rest is
//! analysed, and nothing panics, hangs or blows up.
//!
//! `mutated_traces_never_panic_the_analyzer` is a fuzzer in the small
//! (`cargo fuzz` needs a nightly toolchain, which CI does not have): a real
//! trace mutated thousands of ways with a fixed seed, each run through the
//! reader, the model, the analysis and every renderer, in bounded time.

mod support;

use holdcheck::{findings, model::Model, report, trace};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use support::*;

/// A real trace: warnd --light under the shim.
fn real_trace() -> Vec<u8> {
    let r = run_example("warnd", &["--light"], 60);
    let files = trace::trace_files(&r.trace_dir).unwrap();
    std::fs::read(&files[0]).unwrap()
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// One mutation of a trace.
fn mutate(base: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut v = base.to_vec();
    let lines: Vec<&[u8]> = base.split_inclusive(|&b| b == b'\n').collect();
    match rng.below(9) {
        0 => {
            for _ in 0..1 + rng.below(8) {
                let i = rng.below(v.len());
                v[i] = rng.next() as u8;
            }
        }
        1 => v.truncate(rng.below(v.len())),
        2 => {
            let l = lines[rng.below(lines.len())];
            let at = rng.below(v.len());
            v.splice(at..at, l.iter().copied());
        }
        3 => {
            let mut ls = lines.clone();
            for i in (1..ls.len()).rev() {
                ls.swap(i, rng.below(i + 1));
            }
            v = ls.concat();
        }
        4 => {
            // A number made huge, negative or fractional.
            let s = String::from_utf8_lossy(&v).into_owned();
            let huge = ["18446744073709551615", "-1", "1e308", "4294967296", "0.5"];
            let digits: Vec<usize> = s
                .char_indices()
                .filter(|(_, c)| c.is_ascii_digit())
                .map(|(i, _)| i)
                .collect();
            if let Some(&i) = digits.get(rng.below(digits.len())) {
                let mut s = s;
                s.replace_range(i..i + 1, huge[rng.below(huge.len())]);
                v = s.into_bytes();
            }
        }
        5 => {
            // A lock-order record holding thousands of locks.
            let held: Vec<String> = (0..5000)
                .map(|i| {
                    format!(
                        r#"{{"lock":{{"addr":{},"gen":0}},"mode":"write","site":1}}"#,
                        4096 + i * 64
                    )
                })
                .collect();
            v.extend(format!(
                r#"{{"t":"lock_order","tid":7,"lock":{{"addr":8,"gen":0}},"mode":"write","held":[{}],"stack":1}}"#,
                held.join(",")
            ).bytes());
            v.push(b'\n');
        }
        6 => {
            // An observation whose edges name nodes that do not exist.
            v.extend(br#"{"t":"observed","kind":"deadlock","title":"x","nodes":[],"edges":[{"from":3,"to":9,"tid":1,"relation":"drain"}],"threads":[]}"#);
            v.push(b'\n');
        }
        7 => {
            // A second header, of another pid and another version.
            v.extend(br#"{"t":"header","version":1,"pid":99,"ppid":1,"exe":"/x","cmdline":[]}"#);
            v.push(b'\n');
        }
        _ => {
            let at = rng.below(v.len());
            v.splice(at..at, b"\n{\"t\":\"stack\",\"id\":".iter().copied());
        }
    }
    v
}

/// Reads, models, analyses and renders a trace directory in every format.
fn analyse_everything(dir: &Path) -> usize {
    let traces = trace::read_dirs(&[dir.to_path_buf()]).unwrap();
    let model = Model::build(&traces);
    let r = findings::analyse(&model);
    let _ = report::text::render(&r);
    let _ = serde_json::to_string(&r).unwrap();
    let _ = report::graph::dot(&r);
    let _ = report::sarif::render(&r);
    let _ = report::html::render(&r);
    r.findings.len()
}

#[test]
fn mutated_traces_never_panic_the_analyzer() {
    let base = real_trace();
    let dir = work_dir("fuzz");
    let file = dir.join("holdcheck.4242.0.trace");
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let start = Instant::now();
    let mut runs = 0;
    // Bounded by count and by time: CI gets the same few thousand cases.
    while runs < 1500 && start.elapsed() < Duration::from_secs(40) {
        let input = mutate(&base, &mut rng);
        std::fs::write(&file, &input).unwrap();
        let outcome = std::panic::catch_unwind(|| analyse_everything(&dir));
        if outcome.is_err() {
            let keep = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("fuzz-crash.trace");
            std::fs::write(&keep, &input).unwrap();
            panic!(
                "the analyzer panicked on mutation {runs}; input kept in {}",
                keep.display()
            );
        }
        runs += 1;
    }
    assert!(runs >= 500, "only {runs} cases in the time bound");
}

#[test]
fn damaged_traces_are_named_with_file_and_offset_and_the_rest_analysed() {
    let base = real_trace();
    let dir = work_dir("damaged");
    // The good trace with a corrupt line in the middle and a truncated
    // last record, next to a trace of an unknown version.
    let mut bad = Vec::new();
    let lines: Vec<&[u8]> = base.split_inclusive(|&b| b == b'\n').collect();
    let mid = lines.len() / 2;
    bad.extend(lines[..mid].concat());
    bad.extend(b"{\"t\":\"lock_order\",\"tid\":\n");
    bad.extend(lines[mid..].concat());
    bad.extend(b"{\"t\":\"thread\",\"tid\":1,\"na");
    std::fs::write(dir.join("holdcheck.4242.0.trace"), &bad).unwrap();
    std::fs::write(
        dir.join("holdcheck.4243.0.trace"),
        br#"{"t":"header","version":999,"pid":4243,"ppid":1,"exe":"/x","cmdline":[]}
"#,
    )
    .unwrap();
    let (code, out, err) = holdcheck(
        &["report", "--format", "json", dir.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(code, 1, "the warnd finding is still found: {err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(findings(&r, "potential-deadlock").len(), 1);
    let warnings: Vec<&str> = r["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    let has = |what: &str| warnings.iter().any(|w| w.contains(what));
    assert!(
        has("holdcheck.4242.0.trace:") && has("bad record skipped"),
        "{warnings:?}"
    );
    assert!(has("truncated last record ignored"), "{warnings:?}");
    assert!(
        warnings
            .iter()
            .all(|w| !w.contains("4242.0") || w.contains("offset")),
        "{warnings:?}"
    );
    assert!(has("version 999"), "{warnings:?}");
}

#[test]
fn a_trace_naming_hostile_module_files_is_analysed_without_opening_them() {
    let base = real_trace();
    let dir = work_dir("hostile");
    let fifo = dir.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    // Every module replaced by a FIFO (opening it would block for ever) or
    // /dev/zero (reading it would never end).
    let text = String::from_utf8(base).unwrap();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if line.starts_with(r#"{"t":"module""#) {
            let path = if i % 2 == 0 {
                fifo.to_str().unwrap()
            } else {
                "/dev/zero"
            };
            let rest = line.split_once(r#","base""#).unwrap().1;
            out.push_str(&format!(r#"{{"t":"module","path":"{path}","base"{rest}"#));
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    std::fs::write(dir.join("holdcheck.4242.0.trace"), out).unwrap();
    let start = Instant::now();
    let (code, _, err) = holdcheck(
        &["report", "--format", "text", dir.to_str().unwrap()],
        Duration::from_secs(60),
    );
    assert_eq!(code, 1, "{err}");
    assert!(start.elapsed() < Duration::from_secs(20));
}
