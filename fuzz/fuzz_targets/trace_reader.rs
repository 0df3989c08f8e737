//! Any bytes as a trace file: the analyzer reads, models, analyses and
//! renders them in every format without panicking. The input may hold
//! several traces (processes), separated by a line `--next-trace--`.

#![no_main]

use holdcheck::{findings, model::Model, report, trace};
use libfuzzer_sys::fuzz_target;
use std::path::Path;

const SEPARATOR: &[u8] = b"\n--next-trace--\n";

fn split(data: &[u8]) -> Vec<&[u8]> {
    let mut parts = Vec::new();
    let mut rest = data;
    while let Some(at) = rest.windows(SEPARATOR.len()).position(|w| w == SEPARATOR) {
        parts.push(&rest[..at]);
        rest = &rest[at + SEPARATOR.len()..];
    }
    parts.push(rest);
    parts
}

fuzz_target!(|data: &[u8]| {
    let traces: Vec<trace::TraceFile> = split(data)
        .into_iter()
        .enumerate()
        .map(|(i, bytes)| {
            let name = format!("holdcheck.{}.0.trace", 4242 + i);
            trace::read_from(Path::new(&name), bytes).expect("reading memory cannot fail")
        })
        .collect();
    let mut model = Model::build(&traces);
    let r = findings::analyse(&mut model);
    let _ = report::text::render(&r);
    let _ = serde_json::to_string(&r).expect("a report always serialises");
    let _ = report::graph::dot(&r);
    let _ = report::sarif::render(&r, &Default::default());
    let _ = report::svg::svg(&r);
    let _ = report::html::render(&r);
});
