//! The report as one self-contained HTML page: a summary table, and for each
//! finding its graph (inline SVG), its text with stacks, and the source
//! lines around its location where the file is readable. Nothing is fetched.

use super::*;
use std::fmt::Write;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A few lines of source around `line`, if the file is readable.
fn source_excerpt(file: &str, line: u32) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    let lines: Vec<&str> = text.lines().collect();
    let at = line.checked_sub(1)? as usize;
    if at >= lines.len() {
        return None;
    }
    let (from, to) = (at.saturating_sub(3), (at + 4).min(lines.len()));
    let mut out = String::new();
    for (i, l) in lines[from..to].iter().enumerate() {
        let n = from + i + 1;
        let mark = if n == line as usize { "&gt;" } else { " " };
        let _ = writeln!(out, "{mark}{n:5}  {}", esc(l));
    }
    Some(out)
}

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    out.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>holdcheck report</title>\n<style>\n\
         body{font-family:sans-serif;margin:2em;max-width:70em}\n\
         table{border-collapse:collapse}td,th{border:1px solid #999;padding:.3em .8em}\n\
         .finding{border:1px solid #ccc;border-radius:6px;padding:1em;margin:1.5em 0}\n\
         .deadlock h2,.potential-deadlock h2{color:#b00}.graph svg{max-width:100%;height:auto}\n\
         pre{background:#f6f6f6;padding:.8em;overflow-x:auto;font-size:85%}\n\
         </style></head><body>\n<h1>holdcheck report</h1>\n",
    );
    let s = &r.summary;
    out.push_str("<table id=\"summary\"><tr><th>kind</th><th>findings</th></tr>\n");
    for (k, n) in [
        (DEADLOCK, s.deadlock),
        (POTENTIAL_DEADLOCK, s.potential_deadlock),
        (LOCK_ORDER_INVERSION, s.lock_order_inversion),
        (STALL, s.stall),
        (MISUSE, s.misuse),
        (HAZARD, s.hazard),
        (STALLED_CALL, s.stalled_call),
    ] {
        let _ = writeln!(out, "<tr><td>{k}</td><td>{n}</td></tr>");
    }
    out.push_str("</table>\n");
    if let Some(run) = &r.run {
        let _ = writeln!(
            out,
            "<p>Command <code>{}</code>: {}{}.</p>",
            esc(&run.command.join(" ")),
            esc(&run.ending),
            run.code.map(|c| format!(" ({c})")).unwrap_or_default()
        );
    }
    for w in &r.warnings {
        let _ = writeln!(out, "<p class=\"warning\">warning: {}</p>", esc(w));
    }
    for (i, f) in r.findings.iter().enumerate() {
        let _ = writeln!(
            out,
            "<div class=\"finding {}\" id=\"finding-{i}\">\n<h2>{}</h2>\n<p>{}</p>",
            esc(&f.kind),
            esc(&f.kind.replace('-', " ")),
            esc(&f.title)
        );
        match graph::finding_svg(f) {
            Ok(svg) => {
                let _ = writeln!(out, "<div class=\"graph\">{svg}</div>");
            }
            Err(e) => {
                let _ = writeln!(out, "<p>{}</p>", esc(&e));
            }
        }
        if let Some(loc) = &f.location {
            if let (Some(file), Some(line)) = (&loc.file, loc.line) {
                if let Some(src) = source_excerpt(file, line) {
                    let _ = writeln!(
                        out,
                        "<p>{}:{line}</p><pre class=\"source\">{src}</pre>",
                        esc(file)
                    );
                }
            }
        }
        let _ = writeln!(out, "<pre>{}</pre>\n</div>", esc(&text::finding(f)));
    }
    out.push_str("</body></html>\n");
    out
}
