//! The report as a graph in DOT, for Graphviz (the pictures drawn here are
//! `svg.rs`). Locks are boxes, kernel queues are ellipses, edges are
//! labelled with the thread and the call; a cycle's edges are red.

use super::labels::{edge_action, node_label};
use super::*;

/// Escapes a string for a DOT double-quoted label.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn edge_label(f: &Finding, e: &EdgeInfo) -> String {
    let who = if e.thread.name.is_empty() {
        format!("T{} (pid {})", e.thread.tid, e.thread.pid)
    } else {
        format!("T{} {} (pid {})", e.thread.tid, e.thread.name, e.thread.pid)
    };
    format!("{who}: {}", edge_action(f, e))
}

/// The statements of one finding's graph, node ids prefixed by `prefix`.
fn body(f: &Finding, prefix: &str, out: &mut String) {
    let cycle = f.kind == DEADLOCK || f.kind == POTENTIAL_DEADLOCK;
    for (i, n) in f.nodes.iter().enumerate() {
        let shape = match n {
            NodeInfo::Lock { .. } => "box",
            NodeInfo::Channel { .. } => "ellipse",
        };
        out.push_str(&format!(
            "  {prefix}{i} [shape={shape}, label=\"{}\"];\n",
            esc(&node_label(n))
        ));
    }
    let mut seen = std::collections::HashSet::new();
    for e in &f.edges {
        if !seen.insert((e.from, e.to, e.thread.tid)) {
            continue;
        }
        let colour = if cycle { "red" } else { "black" };
        out.push_str(&format!(
            "  {prefix}{} -> {prefix}{} [label=\"{}\", color={colour}];\n",
            e.from,
            e.to,
            esc(&edge_label(f, e))
        ));
    }
}

/// One finding as a DOT digraph.
pub fn finding_dot(f: &Finding) -> String {
    let mut out = String::from("digraph finding {\n");
    body(f, "n", &mut out);
    out.push_str("}\n");
    out
}

/// The whole report as DOT: one cluster per finding.
pub fn dot(r: &Report) -> String {
    let mut out = String::from("digraph holdcheck {\n  rankdir=LR;\n");
    for (k, f) in r.findings.iter().enumerate() {
        out.push_str(&format!(
            "  subgraph cluster_{k} {{\n  label=\"{}: {}\";\n",
            esc(&f.kind),
            esc(&f.title)
        ));
        body(f, &format!("f{k}_"), &mut out);
        out.push_str("  }\n");
    }
    out.push_str("}\n");
    out
}
