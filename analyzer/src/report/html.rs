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
         pre{background:#f6f6f6;padding:.8em;white-space:pre-wrap;overflow-wrap:anywhere;font-size:85%}\n\
         pre.source{white-space:pre;overflow-x:auto}\n\
         #index li{margin:.2em 0}\n\
         </style></head><body>\n<h1>holdcheck report</h1>\n",
    );
    let s = &r.summary;
    out.push_str("<table id=\"summary\"><tr><th>kind</th><th>findings</th></tr>\n");
    for (k, n) in [
        (DEADLOCK, s.deadlock),
        (POTENTIAL_DEADLOCK, s.potential_deadlock),
        (LOCK_ORDER_INVERSION, s.lock_order_inversion),
        (STALL, s.stall),
        (HANG, s.hang),
        (MISUSE, s.misuse),
        (HAZARD, s.hazard),
        (STALLED_CALL, s.stalled_call),
    ] {
        let _ = writeln!(out, "<tr><td>{k}</td><td>{n}</td></tr>");
    }
    out.push_str("</table>\n");
    // An index of the findings, each a link to its section.
    if !r.findings.is_empty() {
        out.push_str("<ol id=\"index\">\n");
        for (i, f) in r.findings.iter().enumerate() {
            let _ = writeln!(
                out,
                "<li><a href=\"#finding-{i}\">{}</a>: {}</li>",
                esc(&f.kind.replace('-', " ")),
                esc(&f.title)
            );
        }
        out.push_str("</ol>\n");
    }
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
    if let Some(i) = &r.inspect {
        inspect_overview(&mut out, i);
    }
    for (i, f) in r.findings.iter().enumerate() {
        let _ = writeln!(
            out,
            "<div class=\"finding {}\" id=\"finding-{i}\">\n<h2>{}</h2>\n<p>{}</p>",
            esc(&f.kind),
            esc(&f.kind.replace('-', " ")),
            esc(&f.title)
        );
        match svg::finding_svg(f, i) {
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

/// What `holdcheck inspect` saw of every thread and queue, as the text
/// report's overview has it.
fn inspect_overview(out: &mut String, i: &InspectInfo) {
    let _ = writeln!(
        out,
        "<h2>Threads</h2>\n<p>Processes {}, glibc {}, {} samples {} ms apart.</p>",
        i.pids
            .iter()
            .map(|p| p.to_string())
            .collect::<Vec<_>>()
            .join(", "),
        esc(i.glibc.as_deref().unwrap_or("?")),
        i.samples,
        i.interval_ms
    );
    for n in &i.not_visible {
        let _ = writeln!(out, "<p class=\"not-visible\">not visible: {}</p>", esc(n));
    }
    out.push_str(
        "<table id=\"threads\"><tr><th>pid</th><th>tid</th><th>name</th><th>state</th>\
         <th>blocked in</th><th>no progress</th><th>wchan</th></tr>\n",
    );
    for t in &i.tasks {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            t.pid,
            t.tid,
            esc(&t.name),
            esc(&t.state),
            esc(&labels::task_doing(t)),
            t.no_progress_ms.map(|ms| format!("{ms} ms")).unwrap_or_default(),
            esc(&t.wchan)
        );
    }
    out.push_str("</table>\n");
    if !i.queues.is_empty() {
        out.push_str(
            "<h2>Queues</h2>\n<table id=\"queues\"><tr><th>queue</th><th>Rmem</th><th>drops</th>\
             <th>receiving end held by</th></tr>\n",
        );
        for q in &i.queues {
            let owners: Vec<String> = q.owner_pids.iter().map(|p| format!("pid {p}")).collect();
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&q.description),
                q.rmem.map(|r| r.to_string()).unwrap_or_default(),
                q.drops.map(|d| d.to_string()).unwrap_or_default(),
                if owners.is_empty() {
                    "?".to_string()
                } else {
                    owners.join(", ")
                }
            );
        }
        out.push_str("</table>\n");
    }
    if !i.file_locks.is_empty() {
        out.push_str(
            "<h2>File locks held</h2>\n<table id=\"file-locks\"><tr><th>pid</th><th>file</th>\
             <th>kind</th><th>mode</th><th>bytes</th></tr>\n",
        );
        for l in &i.file_locks {
            let _ = writeln!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                l.pid,
                esc(&l.path),
                esc(&l.kind),
                esc(&l.mode),
                esc(l.range.as_deref().unwrap_or("all"))
            );
        }
        out.push_str("</table>\n");
    }
}
