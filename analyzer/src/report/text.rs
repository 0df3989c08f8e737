//! The text report, in the style of the sanitizers' reports: a headline per
//! finding, each thread's part with symbolised stacks, a SUMMARY line, and a
//! closing count.

use super::labels::*;
use super::*;
use std::fmt::Write;

/// Frames shown per stack in text (JSON has them all).
const TEXT_FRAMES: usize = 16;
const RULE: &str = "==================";

fn frame_line(i: usize, f: &Frame) -> String {
    let mut s = format!("    #{i} {}", f.pc);
    match &f.function {
        Some(func) => {
            let _ = write!(s, " in {func}");
            if let Some(file) = &f.file {
                let _ = write!(s, " {file}");
                if let Some(l) = f.line {
                    let _ = write!(s, ":{l}");
                }
            } else if let (Some(m), Some(o)) = (&f.module, &f.offset) {
                let _ = write!(s, " ({m}+{o})");
            }
        }
        None => {
            if let (Some(m), Some(o)) = (&f.module, &f.offset) {
                let _ = write!(s, " ({m}+{o})");
            }
        }
    }
    if f.inlined {
        s.push_str(" (inlined)");
    }
    s
}

fn stack_lines(out: &mut String, frames: &[Frame]) {
    if frames.is_empty() {
        out.push_str("    <no stack recorded>\n");
    }
    for (i, f) in frames.iter().take(TEXT_FRAMES).enumerate() {
        out.push_str(&frame_line(i, f));
        out.push('\n');
    }
    if frames.len() > TEXT_FRAMES {
        let _ = writeln!(out, "    ... {} more frames", frames.len() - TEXT_FRAMES);
    }
}

fn site(f: &Option<Frame>) -> String {
    f.as_ref()
        .map(|f| f.short())
        .unwrap_or_else(|| "an unknown site".to_string())
}

/// `, acquired at f file:line`, or nothing when the site is unknown.
fn acquired_at(f: &Option<Frame>) -> String {
    f.as_ref()
        .map(|f| format!(", acquired at {}", f.short()))
        .unwrap_or_default()
}

fn channel_of(n: &NodeInfo) -> String {
    match n {
        NodeInfo::Channel { description, .. } => description.clone(),
        other => node_label(other),
    }
}

fn edge_text(out: &mut String, f: &Finding, e: &EdgeInfo, aliases: Option<&[String]>) {
    let from = &f.nodes[e.from];
    let to = &f.nodes[e.to];
    let who = thread_label(&e.thread);
    // A node by its alias when the cycle line defined them.
    let name = |n: &NodeInfo| {
        let i = if std::ptr::eq(n, from) { e.from } else { e.to };
        aliases.and_then(|a| a.get(i).cloned())
    };
    let label = |n: &NodeInfo| name(n).unwrap_or_else(|| node_label(n));
    // What it waits for, in the mode it wants (the node's mode is the
    // cycle's, which may be another).
    let wanted = |n: &NodeInfo| match (n, &e.wanted_mode) {
        (NodeInfo::Lock { kind, .. }, Some(m)) => {
            let what =
                name(n).unwrap_or_else(|| format!("{kind} {}", lock_what(n).unwrap_or_default()));
            with_mode(what, kind, Some(m))
        }
        (n, _) => label(n),
    };
    match e.relation.as_str() {
        "exited-holding" => {
            let _ = writeln!(
                out,
                "  {who} exited holding {}{}",
                label(from),
                acquired_at(&e.held_at)
            );
            let _ = writeln!(
                out,
                "  and nothing can release it now: every later locker of it waits for ever.\n"
            );
            let _ = to;
        }
        "lock-order" => {
            let _ = writeln!(
                out,
                "  {who} holds {}{}",
                label(from),
                acquired_at(&e.held_at)
            );
            // A live finding's thread waits; a predicted one's took it.
            if f.kind == DEADLOCK || !f.thread_states.is_empty() {
                let _ = writeln!(out, "  and waits to acquire {}:", wanted(to));
            } else {
                let _ = writeln!(out, "  and then acquires {}:", wanted(to));
            }
        }
        "held-across-call" => {
            let _ = writeln!(
                out,
                "  {who} holds {}{}",
                label(from),
                acquired_at(&e.held_at)
            );
            let stats = match (e.count, e.max_ns) {
                (Some(c), Some(ns)) => format!(
                    " [{c} call{}, longest {}]",
                    if c == 1 { "" } else { "s" },
                    call_duration(ns, e.max_ns_tick)
                ),
                _ => String::new(),
            };
            let _ = writeln!(
                out,
                "  and blocks in {}() on {}{stats}:",
                e.call.as_deref().unwrap_or("a call"),
                label(to)
            );
        }
        "drain" | "produce" if f.kind == DEADLOCK => {
            let side = if e.relation == "drain" {
                "drains"
            } else {
                "feeds"
            };
            let _ = writeln!(
                out,
                "  {who} {side} {} and waits for {}, so the queue does not move:",
                channel_of(from),
                wanted(to)
            );
        }
        "drain" => {
            let _ = writeln!(
                out,
                "  {who} drains {} and, between receives, acquires {} at {}",
                channel_of(from),
                wanted(to),
                site(&e.acquired_at)
            );
            out.push_str("  so the queue stays full while it waits; it receives at:\n");
        }
        "queue-wait" => {
            let side = if matches!(from, NodeInfo::Channel { direction, .. } if direction == "send")
            {
                "drains"
            } else {
                "feeds"
            };
            let _ = writeln!(
                out,
                "  {who} {side} {} and, in between, blocks on {}",
                channel_of(from),
                label(to)
            );
            out.push_str("  so the queue does not move while it waits; it blocks at:\n");
        }
        "exit-wait" => {
            let _ = writeln!(
                out,
                "  {who} must end for {} to come, and first blocks on {}:",
                channel_of(from),
                label(to)
            );
        }
        "thread-end" => {
            let at = match &e.acquired_at {
                Some(f) => format!(" at {}", f.short()),
                None => String::new(),
            };
            let _ = writeln!(
                out,
                "  {who} must end for its join to return, and first {} {}{at}{}",
                if matches!(to, NodeInfo::Lock { .. }) {
                    "acquires"
                } else {
                    "blocks on"
                },
                wanted(to),
                if f.stacks[e.stack].frames.is_empty() {
                    "."
                } else {
                    ":"
                }
            );
        }
        "barrier-arrival" => {
            let _ = writeln!(
                out,
                "  {who} must arrive at {} for its waiters to go on, and first waits for {}{}",
                channel_of(from),
                wanted(to),
                if f.stacks[e.stack].frames.is_empty() {
                    "."
                } else {
                    ":"
                }
            );
        }
        "unlock-not-held" | "relock-ignored" | "destroy-locked" | "use-destroyed"
        | "cond-wait-unheld" | "cond-two-mutexes" | "held-too-long" => {
            let _ = writeln!(out, "  {who} {}:", f.stacks[e.stack].what);
        }
        "waits-behind" => {
            let _ = writeln!(
                out,
                "  {who} waits for {} behind a queued writer (a writer-preferring rwlock lets no new reader in):",
                wanted(to)
            );
        }
        _ => {
            let _ = writeln!(
                out,
                "  {who} feeds {} and, between sends, acquires {} at {}",
                channel_of(from),
                wanted(to),
                site(&e.acquired_at)
            );
            out.push_str("  so nothing arrives while it waits; it sends at:\n");
        }
    }
    // A thread's end is known from the site alone (said above).
    if !(matches!(e.relation.as_str(), "thread-end" | "barrier-arrival")
        && f.stacks[e.stack].frames.is_empty())
    {
        stack_lines(out, &f.stacks[e.stack].frames);
    }
    held_stack_text(out, f, e);
    out.push('\n');
}

/// The held lock's acquisition, when its stack says more than its site:
/// the program's frames that took it are not those of the later call
/// (a lock taken through a wrapper, in a caller's caller).
fn held_stack_text(out: &mut String, f: &Finding, e: &EdgeInfo) {
    let Some(held) = e.held_stack.map(|i| &f.stacks[i]) else {
        return;
    };
    let program = |frames: &[Frame]| -> Vec<Frame> {
        frames.iter().filter(|f| !f.wrapper).cloned().collect()
    };
    if held.what.contains("lock wrapper") {
        let _ = writeln!(
            out,
            "  (it took the lock it holds in a lock wrapper; HOLDCHECK_OPTIONS=held_stacks=1 records the wrapper's callers)"
        );
        return;
    }
    let (h, later) = (program(&held.frames), program(&f.stacks[e.stack].frames));
    let told =
        h.len() <= 1 || (h.len() <= later.len() && h[1..] == later[later.len() - h.len() + 1..]);
    if told {
        return;
    }
    let _ = writeln!(
        out,
        "  It took {}:",
        held.what.trim_end_matches(" acquired")
    );
    stack_lines(out, &held.frames);
}

fn thread_state_text(out: &mut String, f: &Finding, t: &ThreadState) {
    // Another thread waits on a futex no holder of which can be read: this
    // one may hold it.
    let unread = f.thread_states.iter().find_map(|o| {
        let what = o.unread_wait.as_deref()?;
        (o.thread.tid != t.thread.tid).then_some((what, &o.thread))
    });
    let holds = match (t.holds.is_empty(), t.holds_unseen, unread) {
        (true, false, _) => "holds no lock".to_string(),
        (true, true, None) => "holds no lock another thread waits for".to_string(),
        (true, true, Some((UNREADABLE_LOCKS, other))) => format!(
            "holds no lock holdcheck could read (the futex {} waits on may be a lock it holds)",
            thread_short(other)
        ),
        (true, true, Some(("futex", other))) => format!(
            "holds no pthread lock another thread waits for ({} waits on a futex holdcheck cannot read: who holds it, if anyone, is unknown)",
            thread_short(other)
        ),
        (true, true, Some(("semaphore", other))) => format!(
            "holds no pthread lock another thread waits for (whether it holds the semaphore {} waits on, or would post it, is unknown)",
            thread_short(other)
        ),
        (true, true, Some((what, other))) => format!(
            "holds no pthread lock another thread waits for (whether it holds the {what} {} waits on is unknown)",
            thread_short(other)
        ),
        (false, _, _) => format!("holds {}", t.holds.join(", ")),
    };
    if t.waiting.as_deref() == Some(holdcheck_format::EXITED) {
        let _ = writeln!(out, "  {} {holds}, and has exited", thread_label(&t.thread));
        return;
    }
    let waits = match &t.waiting {
        Some(w) if w.starts_with("lock ") => format!("waits for {w}"),
        Some(w) => format!("is blocked in {w}"),
        None => "is running".to_string(),
    };
    let reply = if t.awaiting_reply {
        " waiting for a reply"
    } else {
        ""
    };
    let _ = writeln!(
        out,
        "  {} {holds}, and {waits}{reply} for {}",
        thread_label(&t.thread),
        duration(t.waited_ms * 1_000_000)
    );
    if let Some(i) = t.stack {
        // A stack its edge printed above is not printed twice.
        let shown = (f.kind == DEADLOCK || f.kind == POTENTIAL_DEADLOCK)
            && f.edges.iter().any(|e| e.stack == i);
        if shown {
            out.push_str("    (its stack is above)\n");
        } else {
            stack_lines(out, &f.stacks[i].frames);
        }
    }
    out.push('\n');
}

/// Longest cycle line written out in full; a longer one is written with
/// aliases (`M0 -> Q1 -> M0`, as TSan names mutexes), each then defined.
const CYCLE_LINE: usize = 120;

/// `  Cycle: rwlock alarm_lock (write) -> netlink … (send) -> …`.
/// Returns the aliases it defined.
fn cycle_text(out: &mut String, nodes: &[NodeInfo]) -> Option<Vec<String>> {
    let labels: Vec<String> = nodes.iter().map(node_label).collect();
    let ring = |names: &[String]| {
        let mut v = names.to_vec();
        v.extend(names.first().cloned());
        v.join(" -> ")
    };
    let full = ring(&labels);
    if full.chars().count() <= CYCLE_LINE {
        let _ = writeln!(out, "  Cycle: {full}");
        return None;
    }
    let aliases: Vec<String> = nodes
        .iter()
        .enumerate()
        .map(|(i, n)| match n {
            NodeInfo::Lock { .. } => format!("M{i}"),
            NodeInfo::Channel { .. } => format!("Q{i}"),
        })
        .collect();
    let _ = writeln!(out, "  Cycle: {}", ring(&aliases));
    for (a, l) in aliases.iter().zip(&labels) {
        let _ = writeln!(out, "    {a} = {l}");
    }
    Some(aliases)
}

/// Where its threads were created, as TSan shows it: threads made by one
/// call (the same creator and stack) are one entry.
fn creations_text(out: &mut String, f: &Finding) {
    let frames_of = |c: &ThreadCreation| c.stack.and_then(|i| f.stacks.get(i)).map(|s| &s.frames);
    let mut groups: Vec<(&ThreadCreation, Vec<&ThreadRef>)> = Vec::new();
    for c in &f.created {
        let same = groups.iter_mut().find(|(g, _)| {
            g.by == c.by
                && frames_of(g).map(|v| frame_keys(v)) == frames_of(c).map(|v| frame_keys(v))
        });
        match same {
            Some((_, threads)) => threads.push(&c.thread),
            None => groups.push((c, vec![&c.thread])),
        }
    }
    for (c, threads) in groups {
        let who: Vec<String> = threads.iter().map(|t| thread_short(t)).collect();
        let _ = writeln!(
            out,
            "  {} {} (pid {}) {} created by {} at:",
            if threads.len() == 1 {
                "Thread"
            } else {
                "Threads"
            },
            who.join(", "),
            c.thread.pid,
            if threads.len() == 1 { "was" } else { "were" },
            thread_short(&c.by)
        );
        match frames_of(c) {
            Some(frames) => stack_lines(out, frames),
            None => out.push_str("    <no stack recorded>\n"),
        }
        out.push('\n');
    }
}

/// A stack by its functions (addresses differ between processes).
fn frame_keys(frames: &[Frame]) -> Vec<(Option<&str>, Option<u32>)> {
    frames
        .iter()
        .map(|f| (f.function.as_deref(), f.line))
        .collect()
}

/// Renders one finding.
pub fn finding(f: &Finding) -> String {
    finding_of(f, None)
}

/// Renders one finding of a stress run of `made` runs.
fn finding_of(f: &Finding, made: Option<u32>) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{RULE}");
    let pids: BTreeSet<u32> = f.threads.iter().map(|t| t.pid).collect();
    let pids: Vec<String> = pids.iter().map(|p| p.to_string()).collect();
    let _ = writeln!(
        out,
        "WARNING: holdcheck: {} (pid {})",
        f.kind.replace('-', " "),
        pids.join(", ")
    );
    let _ = writeln!(out, "  {}", f.title);
    if let Some(runs) = f.runs {
        let _ = match made {
            Some(m) => writeln!(out, "  (found in {runs} of {m} runs)"),
            None => writeln!(
                out,
                "  (found in {runs} run{} of the stress run)",
                if runs == 1 { "" } else { "s" }
            ),
        };
    }
    if f.occurrences > 1 {
        let _ = writeln!(
            out,
            "  (the same code, {} times: one is shown)",
            f.occurrences
        );
    }
    if let Some(c) = &f.confirmation {
        confirmation_headline(&mut out, c);
    }
    out.push('\n');
    let mut aliases = None;
    // A wait on a lock whose owner exited is a deadlock with no cycle.
    let cyclic = f.edges.iter().any(|e| e.relation != "exited-holding");
    if cyclic
        && (f.kind == DEADLOCK || f.kind == POTENTIAL_DEADLOCK || f.kind == LOCK_ORDER_INVERSION)
    {
        aliases = cycle_text(&mut out, &f.nodes);
        for v in &f.variants {
            let _ = writeln!(out, "  Also:  {v}");
        }
        // A class's role, by the locks that played it in this run.
        for n in &f.nodes {
            if let NodeInfo::Lock { class: Some(c), .. } = n {
                let _ = writeln!(
                    out,
                    "  The {}-addressed of two, in this run: {}",
                    c.role,
                    c.instances.join(", ")
                );
            }
        }
        out.push('\n');
    }
    if f.processes.len() > 1 {
        out.push_str("  Processes:\n");
        for p in &f.processes {
            let cmd = match (p.cmdline.is_empty(), p.exe.is_empty()) {
                (false, _) => p.cmdline.join(" "),
                (true, false) => p.exe.clone(),
                // Neither traced nor read (a process that has exited).
                (true, true) => "(its command is not known)".to_string(),
            };
            let _ = writeln!(out, "    pid {}: {cmd}", p.pid);
        }
        out.push('\n');
        // Which process each queue of the cycle belongs to.
        let mut queues = Vec::new();
        for n in &f.nodes {
            if let NodeInfo::Channel {
                description,
                receivers,
                ..
            } = n
            {
                if !receivers.is_empty() && !queues.iter().any(|(d, _)| d == description) {
                    let who: Vec<String> = receivers.iter().map(thread_label).collect();
                    queues.push((description.clone(), who.join(", ")));
                }
            }
        }
        if !queues.is_empty() {
            out.push_str("  Queues:\n");
            for (d, who) in queues {
                let _ = writeln!(out, "    {d}: received by {who}");
            }
            out.push('\n');
        }
    }
    if f.kind == MISUSE {
        for e in &f.edges {
            edge_text(&mut out, f, e, aliases.as_deref());
        }
    }
    if f.kind == HAZARD {
        // One block for the call; the threads that made it are listed.
        if let Some(e) = f.edges.first() {
            edge_text(&mut out, f, e, aliases.as_deref());
        }
        let shown = f.edges.first().map(|e| &e.thread);
        let others: Vec<String> = f
            .threads
            .iter()
            .filter(|t| Some(*t) != shown)
            .map(thread_label)
            .collect();
        if !others.is_empty() {
            let _ = writeln!(out, "  Also seen in: {}\n", others.join(", "));
        }
    } else if f.kind == POTENTIAL_DEADLOCK || f.kind == DEADLOCK || f.kind == LOCK_ORDER_INVERSION {
        for e in &f.edges {
            edge_text(&mut out, f, e, aliases.as_deref());
        }
    }
    if f.serialized.is_some() {
        out.push_str("  Two threads running these code paths at the same time can deadlock.\n\n");
    }
    if !f.thread_states.is_empty() {
        out.push_str("  Threads:\n");
        // Threads in the same state with the same stack (1500 readers
        // queued on one lock) are one entry with their count.
        let key = |t: &ThreadState| {
            let frames: Vec<&str> = t
                .stack
                .map(|i| {
                    f.stacks[i]
                        .frames
                        .iter()
                        .map(|fr| fr.function.as_deref().unwrap_or("?"))
                        .collect()
                })
                .unwrap_or_default();
            (
                t.holds.clone(),
                t.waiting.clone(),
                t.thread.name.clone(),
                frames,
            )
        };
        let mut shown: Vec<(usize, Vec<String>)> = Vec::new();
        for (i, t) in f.thread_states.iter().enumerate() {
            let k = key(t);
            match shown
                .iter_mut()
                .find(|(j, _)| *j != 0 && key(&f.thread_states[*j]) == k)
            {
                Some((_, more)) => more.push(format!("T{}", t.thread.tid)),
                None => shown.push((i, Vec::new())),
            }
        }
        for (i, more) in shown {
            thread_state_text(&mut out, f, &f.thread_states[i]);
            if !more.is_empty() {
                let listed: Vec<&str> = more.iter().take(8).map(String::as_str).collect();
                let _ = writeln!(
                    out,
                    "  … and {} more thread{} in the same state with the same stack: {}{}\n",
                    more.len(),
                    if more.len() == 1 { "" } else { "s" },
                    listed.join(", "),
                    if more.len() > listed.len() {
                        ", …"
                    } else {
                        ""
                    }
                );
            }
        }
    }
    creations_text(&mut out, f);
    if let Some(c) = &f.confirmation {
        confirmation_steps(&mut out, f, c);
    }
    let loc = f.location.as_ref().map(|l| l.short()).unwrap_or_default();
    let _ = writeln!(out, "SUMMARY: holdcheck: {} {loc}", f.kind).map(|_| ());
    if out.ends_with(" \n") {
        out.truncate(out.len() - 2);
        out.push('\n');
    }
    let _ = writeln!(out, "{RULE}");
    out
}

use std::collections::BTreeSet;

fn tries(n: u32) -> String {
    format!("{n} tr{}", if n == 1 { "y" } else { "ies" })
}

/// `holdcheck confirm`'s verdict, under the title.
fn confirmation_headline(out: &mut String, c: &Confirmation) {
    let _ = match c.reproduced_in {
        Some(t) => writeln!(
            out,
            "  CONFIRMED in try {t}: the predicted deadlock (signature {}) happened {}",
            c.of,
            if c.released {
                "once its threads were steered to its sites and let go together"
            } else {
                "while its threads were steered toward its sites"
            }
        ),
        None if c.tries == 0 => writeln!(
            out,
            "  NOT STEERED: this cycle cannot be steered (the warning above says why)"
        ),
        None => writeln!(
            out,
            "  NOT REPRODUCED in {}: steered toward this cycle, no try deadlocked",
            tries(c.tries)
        ),
    };
}

/// What each edge's site saw while `confirm` steered.
fn confirmation_steps(out: &mut String, f: &Finding, c: &Confirmation) {
    if c.tries == 0 {
        return;
    }
    let _ = writeln!(
        out,
        "  {}:",
        if c.reproduced_in.is_some() {
            "How it was reproduced (each site of the prediction)"
        } else {
            "What the tries reached (each site of the prediction)"
        }
    );
    let times = |n: u32| format!("{n} time{}", if n == 1 { "" } else { "s" });
    for s in &c.steps {
        let site = s
            .site
            .as_ref()
            .map(frame_brief)
            .unwrap_or_else(|| "?".into());
        let held = s
            .held_at
            .as_ref()
            .map(|h| format!(", holding the lock taken in {}", frame_brief(h)))
            .unwrap_or_default();
        let who = s
            .thread
            .as_ref()
            .map(|t| format!(" (last by {})", thread_short(t)))
            .unwrap_or_default();
        let what = if s.reached == 0 {
            "never reached".to_string()
        } else if s.action == "block" {
            format!("reached {}{who}: let block in its call", times(s.reached))
        } else {
            let mut w = format!(
                "reached {}{who}, parked {}",
                times(s.reached),
                times(s.parked)
            );
            if s.gave_up > 0 {
                let _ = write!(w, ", gave up waiting for the others {}", times(s.gave_up));
            }
            match s.waited_ms {
                Some(0) => w.push_str("; arrived last and let the others go"),
                Some(ms) => {
                    let _ = write!(w, "; waited {} for the others", duration(ms * 1_000_000));
                }
                None => {}
            }
            w
        };
        let _ = writeln!(out, "    #{} {site}{held}: {what}", s.edge + 1);
        if let Some(k) = &s.kept_apart_by {
            let _ = writeln!(
                out,
                "       while it waited, {} waited for the lock {}, which it held",
                thread_short(&k.thread),
                k.name.as_ref().unwrap_or(&k.lock)
            );
        }
    }
    // A try that crashed or failed says more than any count.
    let odd: Vec<&String> = c
        .endings
        .iter()
        .filter(|e| *e != "exited 0" && *e != "deadlocked" && *e != "hung" && *e != "timed-out")
        .collect();
    if !odd.is_empty() {
        let _ = writeln!(
            out,
            "  The command ended badly in {} of {}: {}",
            tries(odd.len() as u32),
            tries(c.endings.len() as u32),
            odd.iter()
                .map(|e| e.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    if c.reproduced_in.is_none() {
        if let Some(s) = &f.serialized {
            let _ = writeln!(out, "  As expected: {}.", serialized_reason(s));
        } else if let Some(k) = c.steps.iter().find_map(|s| s.kept_apart_by.as_ref()) {
            let own = f.nodes.iter().any(
                |n| matches!(n, NodeInfo::Lock { name: Some(x), .. } if Some(x) == k.name.as_ref()),
            );
            out.push_str(if own {
                "  A lock of the cycle held by a parked thread kept another from its site: \
                 it takes that lock on another path first, so the orders cannot meet here.\n"
            } else {
                "  A lock held by a parked thread kept another from its site: taken around \
                 both orders (a gate lock), it serializes them, and they cannot deadlock.\n"
            });
        } else if c.steps.iter().any(|s| s.reached == 0) {
            out.push_str(
                "  A site never reached in these runs cannot close the cycle: the path to it \
                 may depend on input or timing this command does not give.\n",
            );
        } else {
            out.push_str(
                "  Every site was reached, never all at once: something the shim does not see \
                 (a barrier, an atomic flag, a condition) may keep these threads apart.\n",
            );
        }
    }
    let _ = writeln!(out, "  Traces: {}\n", c.trace_dir);
}

/// The threads and queues `holdcheck inspect` saw.
fn inspect_text(out: &mut String, i: &InspectInfo) {
    let _ = writeln!(
        out,
        "holdcheck inspect: pid {}, glibc {}, {} samples {} ms apart",
        i.pid,
        i.glibc.as_deref().unwrap_or("?"),
        i.samples,
        i.interval_ms
    );
    for t in &i.tasks {
        let what = match (&t.blocked_in, t.no_progress_ms) {
            (Some(b), Some(ms)) => {
                let timeout = t
                    .timeout
                    .as_ref()
                    .map(|c| format!(", {}", call_timeout(c)))
                    .unwrap_or_default();
                format!(
                    "blocked in {b}, no progress for {}{timeout}",
                    duration(ms * 1_000_000)
                )
            }
            _ => task_doing(t),
        };
        let _ = writeln!(
            out,
            "  T{} \"{}\" [{}] {what} (wchan {})",
            t.tid, t.name, t.state, t.wchan
        );
    }
    for n in &i.not_visible {
        let _ = writeln!(out, "  not visible: {n}");
    }
    for l in &i.file_locks {
        let range = l
            .range
            .as_ref()
            .map(|r| format!(", bytes {r}"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  pid {} holds a {} {} lock on {}{range}",
            l.pid, l.kind, l.mode, l.path
        );
    }
    for q in &i.queues {
        let mut extra = Vec::new();
        if let Some(r) = q.rmem {
            extra.push(format!("Rmem {r}"));
        }
        if let Some(d) = q.drops {
            extra.push(format!("drops {d}"));
        }
        let owners: Vec<String> = q.owner_pids.iter().map(|p| p.to_string()).collect();
        extra.push(format!(
            "receiving end held by pid {}",
            if owners.is_empty() {
                "?".into()
            } else {
                owners.join(", ")
            }
        ));
        let _ = writeln!(out, "  queue {}: {}", q.description, extra.join(", "));
    }
    out.push('\n');
}

/// The one-line summary that ends the text report (and that `-o FILE`
/// still prints on stderr).
pub fn summary_line(r: &Report) -> String {
    let s = &r.summary;
    let threads: usize = r.processes.iter().map(|p| p.threads.len()).sum();
    // Only the kinds found, heaviest first: "1 deadlock, 2 stalls".
    let counts = [
        (s.deadlock, "deadlock", "deadlocks"),
        (
            s.potential_deadlock,
            "potential deadlock",
            "potential deadlocks",
        ),
        (
            s.lock_order_inversion,
            "lock-order inversion",
            "lock-order inversions",
        ),
        (s.stall, "stall", "stalls"),
        (s.hang, "hang", "hangs"),
        (s.misuse, "misuse", "misuses"),
        (s.hazard, "hazard", "hazards"),
        (s.stalled_call, "stalled call", "stalled calls"),
    ];
    let found: Vec<String> = counts
        .iter()
        .filter(|c| c.0 > 0)
        .map(|&(n, one, many)| format!("{n} {}", if n == 1 { one } else { many }))
        .collect();
    let found = if found.is_empty() {
        "no findings".to_string()
    } else {
        found.join(", ")
    };
    let repeat = r.run.as_ref().and_then(|r| r.repeat.as_ref());
    // Threads are those the shim saw take part in something, said so: not
    // every thread there was ("18 processes (14 threads)" of a postgres
    // run read as a count gone wrong); none is not said as "0 threads".
    let counts = |procs: usize, threads: usize, sep: &str, end: &str| {
        let procs = format!("{procs} process{}", if procs == 1 { "" } else { "es" });
        match threads {
            0 => procs,
            1 => format!("{procs}{sep}1 thread seen{end}"),
            n => format!("{procs}{sep}{n} threads seen{end}"),
        }
    };
    let scope = match repeat {
        Some(p) => format!(
            "in {} run{}{} (per run: {})",
            p.runs,
            if p.runs == 1 { "" } else { "s" },
            if p.runs < p.asked {
                format!(" of {} asked", p.asked)
            } else {
                String::new()
            },
            counts(p.processes_per_run, p.threads_per_run, ", ", "")
        ),
        None => format!("in {}", counts(r.processes.len(), threads, " (", ")")),
    };
    format!(
        "holdcheck: {found} {scope}{}\n",
        if r.partial {
            "; analysis partial, see warnings"
        } else if r
            .inspect
            .as_ref()
            .is_some_and(|i| !i.not_visible.is_empty())
        {
            "; some locks are not visible here, see above"
        } else {
            ""
        }
    )
}

/// `holdcheck confirm`'s count: how many predictions a steered run made
/// happen.
pub fn confirm_line(r: &Report) -> String {
    let steered: Vec<&Confirmation> = r
        .findings
        .iter()
        .filter_map(|f| f.confirmation.as_ref())
        .collect();
    let confirmed = steered.iter().filter(|c| c.reproduced_in.is_some()).count();
    let n = steered.len();
    let unsteered = steered.iter().filter(|c| c.tries == 0).count();
    format!(
        "holdcheck: {confirmed} of {n} predicted deadlock{} confirmed (made to happen){}\n",
        if n == 1 { "" } else { "s" },
        match (n - confirmed - unsteered, unsteered) {
            (0, 0) => String::new(),
            (not, 0) => format!(", {not} not reproduced"),
            (not, un) => format!(", {not} not reproduced, {un} not steered"),
        }
    )
}

/// Control characters that a traced program put in its thread names,
/// command line or paths are shown escaped (`\x1b`), never sent to the
/// reader's terminal: they could rewrite what the report says.
pub fn printable(text: String) -> String {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c.is_control() && c != '\n' && c != '\t' {
            let _ = write!(out, "\\x{:02x}", c as u32);
        } else {
            out.push(c);
        }
    }
    out
}

pub fn render(r: &Report) -> String {
    let mut out = String::new();
    if let Some(i) = &r.inspect {
        inspect_text(&mut out, i);
    }
    for w in &r.warnings {
        let _ = writeln!(out, "holdcheck: warning: {w}");
    }
    for u in &r.untraced {
        let _ = writeln!(
            out,
            "holdcheck: warning: pid {} started `{}` ({}) without the shim, so it is not traced: {}",
            u.pid,
            if u.argv.is_empty() {
                u.program.clone()
            } else {
                u.argv.join(" ")
            },
            u.call,
            u.reason
        );
    }
    let made = r
        .run
        .as_ref()
        .and_then(|r| r.repeat.as_ref())
        .map(|p| p.runs);
    for f in &r.findings {
        out.push_str(&finding_of(f, made));
    }
    out.push_str(&summary_line(r));
    if r.confirm.is_some() {
        out.push_str(&confirm_line(r));
    }
    if let Some(rep) = r.run.as_ref().and_then(|r| r.repeat.as_ref()) {
        let endings: Vec<String> = rep
            .endings
            .iter()
            .map(|(e, n)| format!("{n} {e}"))
            .collect();
        let _ = writeln!(
            out,
            "holdcheck: {} of {} runs made ({})",
            rep.runs,
            rep.asked,
            endings.join(", ")
        );
    }
    if r.suppressed + r.baselined > 0 {
        let _ = writeln!(
            out,
            "holdcheck: {} finding(s) suppressed, {} already in the baseline",
            r.suppressed, r.baselined
        );
    }
    for rule in &r.unmatched_suppressions {
        let _ = writeln!(out, "holdcheck: suppression matched nothing: {rule}");
    }
    printable(out)
}

/// The rendered text with colour, for a terminal: each finding's headline
/// (red for a deadlock, yellow for the others), its cycle and its SUMMARY
/// line. Only where the text is already made safe (`printable`).
pub fn coloured(text: &str) -> String {
    const RED: &str = "\x1b[1;31m";
    const YELLOW: &str = "\x1b[1;33m";
    const CYAN: &str = "\x1b[36m";
    const BOLD: &str = "\x1b[1m";
    const RESET: &str = "\x1b[0m";
    let mut out = String::with_capacity(text.len() + 256);
    for line in text.split_inclusive('\n') {
        let (body, nl) = match line.strip_suffix('\n') {
            Some(b) => (b, "\n"),
            None => (line, ""),
        };
        let colour = if let Some(kind) = body.strip_prefix("WARNING: holdcheck: ") {
            Some(
                if kind.starts_with("deadlock") || kind.starts_with("potential deadlock") {
                    RED
                } else {
                    YELLOW
                },
            )
        } else if body.starts_with("SUMMARY: ") {
            Some(BOLD)
        } else if body.starts_with("  Cycle: ") {
            Some(CYAN)
        } else {
            None
        };
        match colour {
            Some(c) => {
                out.push_str(c);
                out.push_str(body);
                out.push_str(RESET);
                out.push_str(nl);
            }
            None => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod printable_tests {
    use super::printable;

    #[test]
    fn control_characters_are_escaped_and_lines_kept() {
        assert_eq!(
            printable("T1 \"x\u{1b}[2Jy\"\n\tz\u{9b}".to_string()),
            "T1 \"x\\x1b[2Jy\"\n\tz\\x9b"
        );
        assert_eq!(printable("plain\n".to_string()), "plain\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(500), "500 ns");
        assert_eq!(duration(60_640), "60.6 µs");
        assert_eq!(duration(2_500_000), "2.5 ms");
        assert_eq!(duration(1_826_400_000), "1826 ms");
        assert_eq!(duration(15_250_000_000), "15.2 s");
    }
}
