//! The report as pictures, drawn here (no Graphviz): one SVG per finding,
//! in the SVG report and in the HTML page. A cycle is a ring: its nodes on a
//! circle in the cycle's order, each arrow bending outward along the ring,
//! its label beside its own arc. A stall, a hang or a hazard is a fan into
//! its root: the waiters in a column, arrows into what they wait for, the
//! root with its waiter count. Locks are boxes, kernel queues are rounded.
//! Every label and node is inside the picture, which is only as big as
//! what it shows.

use super::labels::{edge_action, node_label, thread_name};
use super::*;
use std::fmt::Write;

/// The pictures' text: 13 px Arial or its metric twin (Liberation Sans),
/// whose widths `text_width` knows; another sans-serif is close enough.
const FONT: f64 = 13.0;
const FAMILY: &str = "Arial, Liberation Sans, Helvetica, sans-serif";
const LINE_H: f64 = 16.0;
const NODE_CHARS: usize = 30;
const MARGIN: f64 = 12.0;
/// At most this many lines of one arrow's label (one per thread).
const LABEL_LINES: usize = 4;

struct Node {
    x: f64,
    y: f64,
    w: f64,
    h: f64,
    lines: Vec<String>,
    queue: bool,
}

impl Node {
    fn new(n: &NodeInfo) -> Node {
        let lines = wrap(&node_label(n), NODE_CHARS);
        let widest = lines.iter().map(|l| text_width(l)).fold(0.0, f64::max);
        Node {
            x: 0.0,
            y: 0.0,
            w: widest + 24.0,
            h: lines.len() as f64 * LINE_H + 14.0,
            lines,
            queue: matches!(n, NodeInfo::Channel { .. }),
        }
    }

    /// Where the segment from the centre towards `(tx, ty)` leaves the box.
    fn border(&self, tx: f64, ty: f64) -> (f64, f64) {
        let (dx, dy) = (tx - self.x, ty - self.y);
        if dx == 0.0 && dy == 0.0 {
            return (self.x, self.y);
        }
        let sx = if dx != 0.0 {
            (self.w / 2.0 + 3.0) / dx.abs()
        } else {
            f64::INFINITY
        };
        let sy = if dy != 0.0 {
            (self.h / 2.0 + 3.0) / dy.abs()
        } else {
            f64::INFINITY
        };
        let s = sx.min(sy);
        (self.x + dx * s, self.y + dy * s)
    }
}

/// One arrow (all the edges between two nodes) with its label.
struct Arrow {
    from: usize,
    to: usize,
    lines: Vec<String>,
}

/// Everything drawn, with the extent it covers.
#[derive(Default)]
struct Canvas {
    body: String,
    min: (f64, f64),
    max: (f64, f64),
    started: bool,
}

impl Canvas {
    fn cover(&mut self, x0: f64, y0: f64, x1: f64, y1: f64) {
        if !self.started {
            self.min = (x0, y0);
            self.max = (x1, y1);
            self.started = true;
        }
        self.min = (self.min.0.min(x0), self.min.1.min(y0));
        self.max = (self.max.0.max(x1), self.max.1.max(y1));
    }

    /// Arrow `k` along path `d`, covering the box of `points` (its ends
    /// and the points it bends towards).
    fn arrow(&mut self, k: usize, d: &str, colour: &str, points: &[(f64, f64)]) {
        let _ = writeln!(
            self.body,
            "<path class=\"edge\" data-edge=\"{k}\" d=\"{d}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.6\" marker-end=\"url(#{MARKER}-{})\"/>",
            colour.trim_start_matches('#')
        );
        let xs = points.iter().map(|p| p.0);
        let ys = points.iter().map(|p| p.1);
        self.cover(
            xs.clone().fold(f64::INFINITY, f64::min),
            ys.clone().fold(f64::INFINITY, f64::min),
            xs.fold(f64::NEG_INFINITY, f64::max),
            ys.fold(f64::NEG_INFINITY, f64::max),
        );
    }

    /// Lines of text from `(x, y)` (the first line's top), anchored.
    fn text(&mut self, x: f64, y: f64, lines: &[String], anchor: &str, attrs: &str) {
        let w = lines.iter().map(|l| text_width(l)).fold(0.0, f64::max);
        let x0 = match anchor {
            "start" => x,
            "end" => x - w,
            _ => x - w / 2.0,
        };
        self.cover(x0, y, x0 + w, y + lines.len() as f64 * LINE_H);
        let _ = write!(
            self.body,
            "<text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" font-family=\"{FAMILY}\" font-size=\"{FONT}\"{attrs}>",
            y + FONT
        );
        for (i, l) in lines.iter().enumerate() {
            let dy = if i == 0 { 0.0 } else { LINE_H };
            let _ = write!(
                self.body,
                "<tspan x=\"{x:.1}\" dy=\"{dy}\">{}</tspan>",
                escape(l)
            );
        }
        self.body.push_str("</text>\n");
    }

    fn node(&mut self, n: &Node, root: bool) {
        let (x0, y0) = (n.x - n.w / 2.0, n.y - n.h / 2.0);
        let rx = if n.queue { n.h / 2.0 } else { 3.0 };
        let stroke = if root { 2.5 } else { 1.2 };
        let _ = writeln!(
            self.body,
            "<rect class=\"node\" x=\"{x0:.1}\" y=\"{y0:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"{rx:.1}\" fill=\"{}\" stroke=\"#333\" stroke-width=\"{stroke}\"/>",
            n.w,
            n.h,
            if n.queue { "#eef4ff" } else { "#fff8e8" }
        );
        self.cover(x0, y0, x0 + n.w, y0 + n.h);
        let top = n.y - n.lines.len() as f64 * LINE_H / 2.0 - 2.0;
        self.text(n.x, top, &n.lines, "middle", "");
    }
}

/// The width of a line of text in the pictures' font, from Arial's advance
/// widths (in thousandths of an em).
fn text_width(s: &str) -> f64 {
    let em: u32 = s
        .chars()
        .map(|c| match c {
            'i' | 'j' | 'l' | '\'' | '|' => 222,
            ' ' | '.' | ',' | ':' | ';' | '!' | 'f' | 't' | '/' | '\\' | '[' | ']' | 'I' => 278,
            '(' | ')' | '-' | 'r' | '{' | '}' | '`' => 333,
            '"' => 355,
            '*' => 389,
            'c' | 'k' | 's' | 'v' | 'x' | 'y' | 'z' | 'J' => 500,
            '#'
            | '$'
            | '_'
            | '0'..='9'
            | 'a'
            | 'b'
            | 'd'
            | 'e'
            | 'g'
            | 'h'
            | 'n'
            | 'o'
            | 'p'
            | 'q'
            | 'u'
            | 'L' => 556,
            '+' | '<' | '>' | '=' | '~' => 584,
            'F' | 'T' | 'Z' => 611,
            'w' | 'C' | 'D' | 'H' | 'N' | 'R' | 'U' => 722,
            'G' | 'O' | 'Q' => 778,
            'm' | 'M' => 833,
            'W' => 944,
            '%' => 889,
            '@' => 1015,
            c if c.is_ascii_uppercase() => 667,
            _ => 600,
        })
        .sum();
    em as f64 * FONT / 1000.0
}

/// Splits a label into lines of at most `width` characters, at spaces.
fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in s.split(' ') {
        match lines.last_mut() {
            Some(l) if l.chars().count() + 1 + word.chars().count() <= width => {
                l.push(' ');
                l.push_str(word);
            }
            _ => lines.push(word.to_string()),
        }
    }
    lines
}

/// What an edge's thread does, with the thread's name.
fn edge_words(f: &Finding, e: &EdgeInfo) -> String {
    format!("{}: {}", thread_name(&e.thread), edge_action(f, e))
}

/// The finding's arrows: one per pair of nodes, labelled with each thread.
fn arrows(f: &Finding) -> Vec<Arrow> {
    let mut out: Vec<Arrow> = Vec::new();
    for e in &f.edges {
        let words = edge_words(f, e);
        match out.iter_mut().find(|a| a.from == e.from && a.to == e.to) {
            Some(a) => {
                if !a.lines.contains(&words) {
                    a.lines.push(words);
                }
            }
            None => out.push(Arrow {
                from: e.from,
                to: e.to,
                lines: vec![words],
            }),
        }
    }
    for a in &mut out {
        if a.lines.len() > LABEL_LINES {
            let more = a.lines.len() - (LABEL_LINES - 1);
            a.lines.truncate(LABEL_LINES - 1);
            a.lines.push(format!("… and {more} more threads"));
        }
        let wrapped: Vec<String> = a.lines.iter().flat_map(|l| wrap(l, 36)).collect();
        a.lines = wrapped;
    }
    out
}

fn is_ring(f: &Finding) -> bool {
    matches!(
        f.kind.as_str(),
        DEADLOCK | POTENTIAL_DEADLOCK | LOCK_ORDER_INVERSION
    ) && !f.nodes.is_empty()
}

/// A quadratic arrow from `a` to `b` bending by `bend` to its left (as
/// drawn: outward for a ring drawn clockwise), its label beside its middle.
fn curve(c: &mut Canvas, k: usize, a: &Node, b: &Node, bend: f64, lines: &[String], colour: &str) {
    let (dx, dy) = (b.x - a.x, b.y - a.y);
    let len = (dx * dx + dy * dy).sqrt().max(1.0);
    let (nx, ny) = (dy / len, -dx / len);
    let (mx, my) = ((a.x + b.x) / 2.0 + nx * bend, (a.y + b.y) / 2.0 + ny * bend);
    let (sx, sy) = a.border(mx, my);
    let (ex, ey) = b.border(mx, my);
    // The control point that makes the curve pass through (mx, my).
    let (cx, cy) = (2.0 * mx - (sx + ex) / 2.0, 2.0 * my - (sy + ey) / 2.0);
    let d = format!("M{sx:.1},{sy:.1} Q{cx:.1},{cy:.1} {ex:.1},{ey:.1}");
    c.arrow(k, &d, colour, &[(sx, sy), (ex, ey), (mx, my)]);
    label(c, k, mx, my, nx, ny, lines);
}

/// A label beside a point of its arrow, on the side `(nx, ny)` points to.
fn label(c: &mut Canvas, k: usize, x: f64, y: f64, nx: f64, ny: f64, lines: &[String]) {
    const GAP: f64 = 6.0;
    let h = lines.len() as f64 * LINE_H;
    let anchor = if nx > 0.35 {
        "start"
    } else if nx < -0.35 {
        "end"
    } else {
        "middle"
    };
    let lx = x + nx * GAP;
    let top = if ny > 0.35 {
        y + GAP
    } else if ny < -0.35 {
        y - GAP - h
    } else {
        y - h / 2.0
    };
    c.text(
        lx,
        top,
        lines,
        anchor,
        &format!(" class=\"edge-label\" data-edge=\"{k}\""),
    );
}

const MARKER: &str = "holdcheck-arrow";

/// The ring of a cycle: node `i` at angle `-90° + 360° i / n`, clockwise.
fn ring(f: &Finding, c: &mut Canvas) {
    let mut nodes: Vec<Node> = f.nodes.iter().map(Node::new).collect();
    let n = nodes.len();
    let extent = nodes.iter().map(|n| n.w.max(n.h)).fold(0.0, f64::max);
    let radius = if n == 1 {
        0.0
    } else {
        (extent + 140.0) / (2.0 * (std::f64::consts::PI / n as f64).sin())
    };
    for (i, node) in nodes.iter_mut().enumerate() {
        let angle = if n == 2 {
            // Side by side: the two arrows are the ring's top and bottom.
            std::f64::consts::PI * (1.0 - i as f64)
        } else {
            -std::f64::consts::FRAC_PI_2 + 2.0 * std::f64::consts::PI * i as f64 / n as f64
        };
        node.x = radius * angle.cos();
        node.y = radius * angle.sin();
    }
    let colour = if f.kind == LOCK_ORDER_INVERSION {
        "#c60"
    } else {
        "#d00"
    };
    for (k, a) in arrows(f).iter().enumerate() {
        if a.from == a.to {
            self_loop(c, k, &nodes[a.from], (0.0, 0.0), &a.lines, colour);
        } else {
            let chord = {
                let (p, q) = (&nodes[a.from], &nodes[a.to]);
                ((q.x - p.x).powi(2) + (q.y - p.y).powi(2)).sqrt()
            };
            curve(
                c,
                k,
                &nodes[a.from],
                &nodes[a.to],
                chord * 0.18,
                &a.lines,
                colour,
            );
        }
    }
    for node in &nodes {
        c.node(node, false);
    }
}

/// An arrow from a node back to itself (a self-deadlock: a thread that
/// waits for a lock it holds), drawn away from `centre`.
fn self_loop(
    c: &mut Canvas,
    k: usize,
    n: &Node,
    centre: (f64, f64),
    lines: &[String],
    colour: &str,
) {
    let (mut ux, mut uy) = (n.x - centre.0, n.y - centre.1);
    let len = (ux * ux + uy * uy).sqrt();
    if len < 1.0 {
        (ux, uy) = (0.0, -1.0); // above the node
    } else {
        (ux, uy) = (ux / len, uy / len);
    }
    let (px, py) = (-uy, ux);
    let reach = 70.0;
    let (bx, by) = n.border(n.x + ux * 100.0, n.y + uy * 100.0);
    let spread = 18.0;
    let (sx, sy) = (bx + px * spread, by + py * spread);
    let (ex, ey) = (bx - px * spread, by - py * spread);
    let (c1x, c1y) = (sx + ux * reach + px * 40.0, sy + uy * reach + py * 40.0);
    let (c2x, c2y) = (ex + ux * reach - px * 40.0, ey + uy * reach - py * 40.0);
    let d = format!("M{sx:.1},{sy:.1} C{c1x:.1},{c1y:.1} {c2x:.1},{c2y:.1} {ex:.1},{ey:.1}");
    c.arrow(k, &d, colour, &[(sx, sy), (c1x, c1y), (c2x, c2y)]);
    // The loop's apex, where its label goes.
    let (ax, ay) = (bx + ux * reach * 0.75, by + uy * reach * 0.75);
    label(c, k, ax, ay, ux, uy, lines);
}

/// A fan into the root: each node in a column by its distance (in edges)
/// to the node most edges lead to; arrows run right, into the root.
fn fan(f: &Finding, c: &mut Canvas) {
    let mut nodes: Vec<Node> = f.nodes.iter().map(Node::new).collect();
    let n = nodes.len();
    let mut into = vec![0usize; n];
    for e in &f.edges {
        if e.to < n {
            into[e.to] += 1;
        }
    }
    let root = (0..n)
        .max_by_key(|&i| (into[i], std::cmp::Reverse(i)))
        .unwrap_or(0);
    // Distance to the root along the edges, by relaxation (a few nodes).
    let mut depth = vec![usize::MAX; n];
    depth[root] = 0;
    for _ in 0..n {
        for e in &f.edges {
            if e.from < n && e.to < n && depth[e.to] != usize::MAX {
                depth[e.from] = depth[e.from].min(depth[e.to] + 1);
            }
        }
    }
    for d in depth.iter_mut() {
        if *d == usize::MAX {
            *d = 1;
        }
    }
    let columns = depth.iter().copied().max().unwrap_or(0);
    let col_w = nodes.iter().map(|n| n.w).fold(0.0, f64::max) + 230.0;
    for col in 0..=columns {
        let members: Vec<usize> = (0..n).filter(|&i| depth[i] == col).collect();
        let total: f64 = members.iter().map(|&i| nodes[i].h + 40.0).sum();
        let mut y = -total / 2.0;
        for &i in &members {
            nodes[i].x = -(col as f64) * col_w;
            nodes[i].y = y + nodes[i].h / 2.0;
            y += nodes[i].h + 40.0;
        }
    }
    for (k, a) in arrows(f).iter().enumerate() {
        if a.from >= n || a.to >= n {
            continue;
        }
        if a.from == a.to {
            let centre = (nodes[a.from].x + 1.0, nodes[a.from].y + 1.0);
            self_loop(c, k, &nodes[a.from], centre, &a.lines, "#333");
        } else {
            // Straight (a slight bend keeps two opposite arrows apart).
            curve(c, k, &nodes[a.from], &nodes[a.to], 8.0, &a.lines, "#333");
        }
    }
    for (i, node) in nodes.iter().enumerate() {
        c.node(node, i == root && n > 1);
    }
    if f.kind == STALL {
        waiters(f, c, &nodes[0], nodes.len() > 1);
    }
}

/// A stall's waiters, fanned into the lock they wait for: a few by name,
/// the rest counted.
fn waiters(f: &Finding, c: &mut Canvas, lock: &Node, has_root: bool) {
    const SHOWN: usize = 3;
    // The root holder is the first thread state; the others wait.
    let waiting: Vec<&ThreadState> = f.thread_states.iter().skip(usize::from(has_root)).collect();
    let count = f.waiters.map_or(waiting.len(), |w| w as usize);
    if count == 0 {
        return;
    }
    let mut names: Vec<String> = waiting
        .iter()
        .take(SHOWN)
        .map(|s| thread_name(&s.thread))
        .collect();
    if count > names.len() {
        let more = count - names.len();
        names.push(format!("… and {more} more"));
    }
    let boxes: Vec<Node> = names
        .iter()
        .map(|name| {
            let w = text_width(name) + 20.0;
            Node {
                x: 0.0,
                y: 0.0,
                w,
                h: LINE_H + 10.0,
                lines: vec![name.clone()],
                queue: false,
            }
        })
        .collect();
    let widest = boxes.iter().map(|b| b.w).fold(0.0, f64::max);
    let gap = 14.0;
    let total: f64 = boxes.iter().map(|b| b.h + gap).sum::<f64>() - gap;
    let x = lock.x - lock.w / 2.0 - 150.0 - widest / 2.0;
    let mut y = lock.y - total / 2.0;
    for (k, mut b) in boxes.into_iter().enumerate() {
        b.x = x;
        b.y = y + b.h / 2.0;
        y += b.h + gap;
        let (sx, sy) = b.border(lock.x, lock.y);
        let (ex, ey) = lock.border(b.x, b.y);
        let _ = writeln!(
            c.body,
            "<path class=\"edge waiter\" data-waiter=\"{k}\" d=\"M{sx:.1},{sy:.1} L{ex:.1},{ey:.1}\" fill=\"none\" stroke=\"#777\" stroke-width=\"1.2\" marker-end=\"url(#{MARKER}-333)\"/>"
        );
        let _ = writeln!(
            c.body,
            "<rect class=\"thread\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" rx=\"8\" fill=\"#f4f4f4\" stroke=\"#777\"/>",
            b.x - b.w / 2.0,
            b.y - b.h / 2.0,
            b.w,
            b.h
        );
        c.cover(
            b.x - b.w / 2.0,
            b.y - b.h / 2.0,
            b.x + b.w / 2.0,
            b.y + b.h / 2.0,
        );
        c.text(b.x, b.y - LINE_H / 2.0 - 2.0, &b.lines, "middle", "");
    }
    let text = format!(
        "{count} thread{} wait{} for it",
        if count == 1 { "" } else { "s" },
        if count == 1 { "s" } else { "" }
    );
    c.text(
        lock.x,
        lock.y + lock.h / 2.0 + 6.0,
        &[text],
        "middle",
        " class=\"caption\"",
    );
}

/// One finding's picture as an SVG document. `id` keeps the arrowheads of
/// several pictures in one page apart.
pub fn finding_svg(f: &Finding, id: usize) -> Result<String, String> {
    if f.nodes.is_empty() {
        return Err("no graph: the finding has no nodes".into());
    }
    let mut c = Canvas::default();
    if is_ring(f) {
        ring(f, &mut c);
    } else {
        fan(f, &mut c);
    }
    let (w, h) = (
        c.max.0 - c.min.0 + 2.0 * MARGIN,
        c.max.1 - c.min.1 + 2.0 * MARGIN,
    );
    let (ox, oy) = (MARGIN - c.min.0, MARGIN - c.min.1);
    let mut defs = String::new();
    for colour in ["d00", "c60", "333"] {
        let _ = write!(
            defs,
            "<marker id=\"{MARKER}-{colour}\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\"><path d=\"M0,0 L10,5 L0,10 z\" fill=\"#{colour}\"/></marker>"
        );
    }
    let body = c.body.replace(MARKER, &format!("{MARKER}{id}"));
    let defs = defs.replace(MARKER, &format!("{MARKER}{id}"));
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"finding-graph\" width=\"{w:.0}\" height=\"{h:.0}\" viewBox=\"0 0 {w:.0} {h:.0}\">\n<defs>{defs}</defs>\n<g transform=\"translate({ox:.1},{oy:.1})\">\n{body}</g>\n</svg>"
    ))
}

/// The whole report as one SVG picture: every finding's picture, one under
/// the other with its title.
pub fn svg(r: &Report) -> Result<String, String> {
    const TITLE: f64 = 28.0;
    let mut body = String::new();
    let (mut y, mut width) = (0.0f64, 320.0f64);
    if r.findings.is_empty() {
        body.push_str(
            "<text x=\"8\" y=\"20\" font-family=\"Arial, Liberation Sans, Helvetica, sans-serif\">holdcheck: no findings</text>\n",
        );
        y = TITLE;
    }
    for (k, f) in r.findings.iter().enumerate() {
        let one = finding_svg(f, k)?;
        let w = svg_dimension(&one, "width").unwrap_or(600.0);
        let h = svg_dimension(&one, "height").unwrap_or(400.0);
        let title = wrap(&format!("{}: {}", f.kind, f.title), 100);
        for (i, line) in title.iter().enumerate() {
            let _ = writeln!(
                body,
                "<text x=\"8\" y=\"{:.0}\" font-family=\"{FAMILY}\" font-size=\"14\">{}</text>",
                y + 20.0 + i as f64 * 18.0,
                escape(line)
            );
        }
        let top = y + TITLE + (title.len() - 1) as f64 * 18.0;
        // A nested <svg> takes its own x, y.
        let at = one.replacen("<svg", &format!("<svg x=\"0\" y=\"{top:.0}\""), 1);
        body.push_str(&at);
        body.push('\n');
        y = top + h;
        let longest = title.iter().map(|l| text_width(l)).fold(0.0, f64::max);
        width = width.max(w).max(longest * 14.0 / FONT + 16.0);
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width:.0}\" height=\"{y:.0}\" viewBox=\"0 0 {width:.0} {y:.0}\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n{body}</svg>\n"
    ))
}

/// A number attribute of an SVG root tag (`width="978"`).
fn svg_dimension(svg: &str, name: &str) -> Option<f64> {
    let tag = &svg[svg.find("<svg")?..];
    let tag = &tag[..tag.find('>')?];
    let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
    tag[start..].split('"').next()?.parse().ok()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
