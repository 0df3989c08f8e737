//! The report as a graph: DOT (for Graphviz) and SVG (rendered here, no
//! Graphviz needed). Locks are boxes, kernel queues are ellipses, edges are
//! labelled with the thread and the call; a cycle's edges are red.

use super::labels::node_label;
use super::*;

/// Escapes a string for a DOT double-quoted label.
fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

fn edge_label(e: &EdgeInfo) -> String {
    let who = if e.thread.name.is_empty() {
        format!("T{} (pid {})", e.thread.tid, e.thread.pid)
    } else {
        format!("T{} {} (pid {})", e.thread.tid, e.thread.name, e.thread.pid)
    };
    let what = match (e.relation.as_str(), &e.call) {
        ("held-across-call", Some(c)) => format!("{c}()"),
        ("lock-order", _) => "then acquires".to_string(),
        ("drain", _) => "drains, then acquires".to_string(),
        ("produce", _) => "feeds, then acquires".to_string(),
        ("waits-behind", _) => "queued behind a writer".to_string(),
        ("queue-wait", _) => "serves it, first waits on".to_string(),
        ("exit-wait", _) => "exits only after".to_string(),
        (r, _) => r.to_string(),
    };
    format!("{who}: {what}")
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
            esc(&edge_label(e))
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

/// One finding's graph as SVG, laid out here (layout-rs).
pub fn finding_svg(f: &Finding) -> Result<String, String> {
    if f.nodes.is_empty() {
        return Err("no graph: the finding has no nodes".into());
    }
    let dot = finding_dot(f);
    // The layout library panics on graphs it cannot lay out: a report is
    // still made, with a message for that picture.
    std::panic::catch_unwind(|| {
        let mut parser = layout::gv::DotParser::new(&dot);
        let graph = parser
            .process()
            .map_err(|e| format!("cannot lay out the graph: {e}"))?;
        let mut builder = layout::gv::GraphBuilder::new();
        builder.visit_graph(&graph);
        let mut visual = builder.get();
        let mut svg = layout::backends::svg::SVGWriter::new();
        visual.do_it(false, false, false, &mut svg);
        Ok(svg.finalize())
    })
    .unwrap_or_else(|_| Err("cannot lay out the graph".into()))
}

/// A number attribute of an SVG root tag (`width="978"`).
fn svg_dimension(svg: &str, name: &str) -> Option<f64> {
    let tag = &svg[svg.find("<svg")?..];
    let tag = &tag[..tag.find('>')?];
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    tag[start..].split('"').next()?.parse().ok()
}

/// The whole report as one SVG picture: every finding's graph, one under
/// the other with its title, laid out here (no Graphviz needed).
pub fn svg(r: &Report) -> Result<String, String> {
    const TITLE: f64 = 28.0;
    let mut body = String::new();
    let (mut y, mut width) = (0.0f64, 320.0f64);
    if r.findings.is_empty() {
        body.push_str(
            "<text x=\"8\" y=\"20\" font-family=\"sans-serif\">holdcheck: no findings</text>\n",
        );
        y = TITLE;
    }
    for f in &r.findings {
        let one = finding_svg(f)?;
        let w = svg_dimension(&one, "width").unwrap_or(600.0);
        let h = svg_dimension(&one, "height").unwrap_or(400.0);
        let title = format!("{}: {}", f.kind, f.title);
        body.push_str(&format!(
            "<text x=\"8\" y=\"{:.0}\" font-family=\"sans-serif\" font-size=\"14\">{}</text>\n",
            y + 20.0,
            escape(&title)
        ));
        // A nested <svg> (without its XML declaration) takes its own x, y.
        let root = &one[one.find("<svg").unwrap_or(0)..];
        let at = root.replacen("<svg", &format!("<svg x=\"0\" y=\"{:.0}\"", y + TITLE), 1);
        body.push_str(&at);
        body.push('\n');
        y += TITLE + h;
        width = width.max(w);
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{y:.0}\" viewBox=\"0 0 {width:.0} {y:.0}\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{body}</svg>\n"
    ))
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}
