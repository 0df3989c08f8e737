//! The report as SARIF 2.1.0, for code-scanning UIs (GitHub's among them):
//! one result per finding, located at its blocking call or acquisition,
//! with the cycle's other sites as related locations linked from the
//! message, one code flow per finding (a thread flow per thread: what it
//! acquired, then what it waited for), and a fingerprint from its
//! signature.
//!
//! What code scanning needs of it: file locations relative to the
//! repository (`%SRCROOT%`, from `--source-root` or the git top level), at
//! least one location per result with a start line, and messages that are
//! the same in every run of the same build, so an alert is matched across
//! runs: no addresses, thread ids, pids, ports or inodes in them.

use super::labels::{node_label, stable, stable_node_label, thread_name};
use super::*;
use serde_json::{json, Value};
use std::path::Path;

/// Where the report's paths are relative to.
#[derive(Default)]
pub struct Options<'a> {
    /// The source tree: files under it are `%SRCROOT%`-relative.
    pub source_root: Option<&'a Path>,
}

const SRCROOT: &str = "%SRCROOT%";
/// GitHub keeps 1000 locations of a result (and shows 100).
const MAX_LOCATIONS: usize = 100;
/// GitHub accepts 10 000 thread flow locations per result.
const MAX_FLOW_LOCATIONS: usize = 1000;

struct Locator<'a> {
    root: Option<&'a Path>,
}

impl Locator<'_> {
    /// A frame's file as an artifact: relative to the source root when
    /// under it, else an absolute `file://` URI; a relative path from
    /// another build tree (glibc's `./nptl/...`) names no file here.
    fn artifact(&self, file: &str) -> Option<Value> {
        let path = Path::new(file);
        if !path.is_absolute() {
            return None;
        }
        if let Some(rel) = self.root.and_then(|r| path.strip_prefix(r).ok()) {
            return Some(json!({ "uri": uri_path(&rel.to_string_lossy()), "uriBaseId": SRCROOT }));
        }
        Some(json!({ "uri": format!("file://{}", uri_path(file)) }))
    }

    fn location(&self, f: &Frame, message: Option<&str>) -> Option<Value> {
        let artifact = self.artifact(f.file.as_ref()?)?;
        let mut loc = json!({
            "physicalLocation": {
                "artifactLocation": artifact,
                "region": { "startLine": f.line.unwrap_or(1).max(1) }
            }
        });
        if let Some(m) = message {
            loc["message"] = json!({ "text": m });
        }
        Some(loc)
    }

    /// A result's primary location: its site; without a source file, the
    /// program's module (code scanning wants one location per result).
    fn primary(&self, f: &Finding) -> Value {
        let site = f.location.as_ref();
        if let Some(l) = site.and_then(|l| self.location(l, None)) {
            return l;
        }
        let module = site
            .and_then(|l| l.module.clone())
            .or_else(|| f.processes.first().map(|p| p.exe.clone()))
            .filter(|m| m.starts_with('/'))
            .unwrap_or_else(|| "/unknown".to_string());
        json!({
            "physicalLocation": {
                "artifactLocation": { "uri": format!("file://{}", uri_path(&module)) },
                "region": { "startLine": 1 }
            }
        })
    }
}

/// Percent-encodes what a URI path cannot hold.
fn uri_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' | b'+' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn level(kind: &str) -> &'static str {
    match kind {
        DEADLOCK | POTENTIAL_DEADLOCK => "error",
        _ => "warning",
    }
}

/// Each kind's rule: a short and a full description, and help.
fn rules() -> Vec<Value> {
    let rule = |id: &str, short: &str, full: &str, help: &str| {
        json!({
            "id": id,
            "name": id.split('-').map(|w| {
                let mut c = w.chars();
                c.next().map(|f| f.to_uppercase().chain(c).collect::<String>()).unwrap_or_default()
            }).collect::<String>(),
            "shortDescription": { "text": short },
            "fullDescription": { "text": full },
            "help": { "text": help, "markdown": help },
            "defaultConfiguration": { "level": level(id) },
            "properties": { "tags": ["concurrency", "deadlock"] },
        })
    };
    vec![
        rule(
            DEADLOCK,
            "Threads wait on each other for ever (observed)",
            "Threads of the program waited on each other in a cycle, through locks and kernel queues, and none could go on: the program was hung when holdcheck saw it.",
            "Each thread's part shows the lock it holds (where it took it) and what it waits for. Break the cycle: take the locks in one order everywhere, or release the lock before the blocking call (see 'What it finds' in holdcheck's README).",
        ),
        rule(
            POTENTIAL_DEADLOCK,
            "A cycle of locks and kernel queues that can deadlock",
            "Threads took locks, and made blocking calls on kernel queues while holding locks, in orders that form a cycle: run at the same time, they can wait on each other for ever. The run itself did not hang.",
            "Take the cycle's locks in one order everywhere, or do not hold a lock across a send or receive whose other end needs it. A stress run (`holdcheck run --repeat N`) shows whether it hangs.",
        ),
        rule(
            LOCK_ORDER_INVERSION,
            "Locks taken in opposite orders, by paths this run did not overlap",
            "Two locks were taken in opposite orders, but this run could not deadlock on them: one thread took both orders, or a thread start or join put them one after the other. Two threads running these paths at once can deadlock.",
            "Take the locks in one order everywhere; `--serialized-inversions warn` reports these without failing the run.",
        ),
        rule(
            STALL,
            "A wait chain older than the threshold",
            "Threads waited longer than the stall threshold behind a lock whose holder was itself blocked (in a call, or on another lock).",
            "The root holder's stack shows what it is blocked in while the others wait behind it.",
        ),
        rule(
            HANG,
            "Threads blocked when the command was ended, that no other finding explains",
            "The command was ended (timeout, interrupt, or every thread blocked for good) with threads blocked in waits that no other finding explains; each thread's wait and stack are listed, with the chain from a join to the thread it waits for.",
            "Look at what each blocked thread waits for and who should have ended that wait.",
        ),
        rule(
            MISUSE,
            "A lock used against its rules",
            "A lock was unlocked when not held, relocked, destroyed while held, used after destroy, waited on while not held, or left held by a thread that exited.",
            "The stack shows the call that broke the rule (and, for a lock left held, where it was taken).",
        ),
        rule(
            HAZARD,
            "A lock held across a blocking call",
            "A lock was held across a call that can block for ever on a kernel queue (a send into a full queue, a receive from an empty one). No cycle was seen, but anything that needs the lock to unblock the call would deadlock.",
            "Release the lock before the call, or make the call non-blocking.",
        ),
        rule(
            STALLED_CALL,
            "A call blocked past the threshold",
            "A call made while holding a lock (or waiting for a reply to a request) stayed blocked longer than the stall threshold.",
            "The stack shows the call; the held locks are listed with where they were taken.",
        ),
    ]
}

/// The words for an edge's later step: what the thread did next while
/// holding the edge's lock (or after the edge's queue call).
fn next_step(f: &Finding, e: &EdgeInfo) -> String {
    let from = stable_node_label(&f.nodes[e.from]);
    let to = stable_node_label(&f.nodes[e.to]);
    // A queue the thread drains or feeds, without the cycle's direction.
    let queue = match &f.nodes[e.from] {
        NodeInfo::Channel { .. } => from.rsplit_once(" (").map_or(from.as_str(), |q| q.0),
        _ => from.as_str(),
    };
    let call = e
        .call
        .as_deref()
        .map(|c| format!("{c}() "))
        .unwrap_or_default();
    match e.relation.as_str() {
        "held-across-call" | "queue-wait" => format!("blocks in {call}on {to}"),
        "drain" => format!("receives {call}from {queue}, then acquires {to}"),
        "produce" => format!("sends {call}to {queue}, then acquires {to}"),
        "exited-holding" => "exits holding it".to_string(),
        _ if f.kind == DEADLOCK || !f.thread_states.is_empty() => format!("waits to acquire {to}"),
        _ => format!("then acquires {to}"),
    }
}

/// A finding's title in words that are the same in every run: each node
/// by its stable label, then whatever number is left masked.
fn stable_title(f: &Finding) -> String {
    let mut text = f.title.clone();
    for n in &f.nodes {
        text = text.replace(&node_label(n), &stable_node_label(n));
        if let NodeInfo::Channel { description, .. } = n {
            let kind = stable_node_label(n);
            let kind = kind.rsplit_once(" (").map_or(kind.as_str(), |k| k.0);
            text = text.replace(description.as_str(), kind);
        }
    }
    stable(&text)
}

/// What an edge's thread did, in order, where: it acquired the held lock
/// (at its site), then made the edge's call or next acquisition (at the
/// program's frame of the edge's stack).
fn edge_steps(f: &Finding, e: &EdgeInfo) -> Vec<(Frame, String)> {
    let mut steps = Vec::new();
    if let Some(h) = &e.held_at {
        let from = stable_node_label(&f.nodes[e.from]);
        steps.push((h.clone(), format!("acquires {from}")));
    }
    if let Some(site) = f
        .stacks
        .get(e.stack)
        .and_then(|s| crate::symbolize::program_frame(&s.frames))
    {
        steps.push((site, next_step(f, e)));
    }
    steps
}

/// One thread flow per thread of the finding's edges: each lock it held
/// (where it took it), then what it did holding it. Threads in name order,
/// so two runs give the same flows.
fn code_flows(loc: &Locator, f: &Finding) -> Vec<Value> {
    let mut threads: Vec<&ThreadRef> = f.edges.iter().map(|e| &e.thread).collect();
    threads.sort_by(|a, b| (&a.name, a.tid).cmp(&(&b.name, b.tid)));
    threads.dedup_by(|a, b| a.pid == b.pid && a.tid == b.tid);
    let mut flows = Vec::new();
    let mut budget = MAX_FLOW_LOCATIONS;
    for t in threads {
        let mut steps = Vec::new();
        for e in f.edges.iter().filter(|e| &e.thread == t) {
            for (frame, what) in edge_steps(f, e) {
                steps.extend(loc.location(&frame, Some(&what)));
            }
        }
        steps.truncate(budget);
        budget -= steps.len();
        if steps.is_empty() {
            continue;
        }
        flows.push(json!({
            "message": { "text": format!("thread {}", thread_name(t)) },
            "locations": steps
                .into_iter()
                .map(|l| json!({ "location": l }))
                .collect::<Vec<_>>(),
        }));
    }
    // A finding without edges (a hang, a stall seen from outside): each
    // thread where it is blocked.
    if flows.is_empty() {
        for s in &f.thread_states {
            let Some(st) = s.stack.and_then(|i| f.stacks.get(i)) else {
                continue;
            };
            let what = stable(&format!(
                "blocked: {}",
                s.waiting.as_deref().unwrap_or("running")
            ));
            let Some(l) = crate::symbolize::program_frame(&st.frames)
                .and_then(|fr| loc.location(&fr, Some(&what)))
            else {
                continue;
            };
            if budget == 0 {
                break;
            }
            budget -= 1;
            flows.push(json!({
                "message": { "text": format!("thread {}", thread_name(&s.thread)) },
                "locations": [{ "location": l }],
            }));
        }
    }
    if flows.is_empty() {
        return Vec::new();
    }
    vec![json!({ "message": { "text": stable_title(f) }, "threadFlows": flows })]
}

/// The cycle's other sites, each with an id the message links to, sorted
/// so two runs list them alike.
fn related(loc: &Locator, f: &Finding) -> Vec<Value> {
    let mut v: Vec<(String, u32, String, Value)> = Vec::new();
    let mut add = |fr: &Frame, what: String| {
        if let Some(l) = loc.location(fr, Some(&what)) {
            let key = (fr.file.clone().unwrap_or_default(), fr.line.unwrap_or(0));
            if !v
                .iter()
                .any(|x| x.0 == key.0 && x.1 == key.1 && x.2 == what)
            {
                v.push((key.0, key.1, what, l));
            }
        }
    };
    for e in &f.edges {
        let who = thread_name(&e.thread);
        for (frame, what) in edge_steps(f, e) {
            add(&frame, format!("thread {who} {what}"));
        }
    }
    v.sort_by(|a, b| (&a.0, a.1, &a.2).cmp(&(&b.0, b.1, &b.2)));
    v.truncate(MAX_LOCATIONS);
    v.into_iter()
        .enumerate()
        .map(|(i, (_, _, _, mut l))| {
            l["id"] = json!(i + 1);
            l
        })
        .collect()
}

pub fn render(r: &Report, o: &Options) -> String {
    let loc = Locator {
        root: o.source_root,
    };
    let results: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            let related = related(&loc, f);
            // The message links each related site: "[thread x acquires …](1)".
            let mut text = stable_title(f);
            if !related.is_empty() {
                let links: Vec<String> = related
                    .iter()
                    .map(|l| {
                        format!(
                            "[{}]({})",
                            l["message"]["text"].as_str().unwrap_or("site"),
                            l["id"]
                        )
                    })
                    .collect();
                text = format!("{text}. Sites: {}.", links.join("; "));
            }
            let mut result = json!({
                "ruleId": f.kind,
                "level": level(&f.kind),
                "message": { "text": text },
                "locations": [loc.primary(f)],
                "partialFingerprints": { "holdcheck/v1": f.signature },
            });
            if !related.is_empty() {
                result["relatedLocations"] = json!(related);
            }
            let flows = code_flows(&loc, f);
            if !flows.is_empty() {
                result["codeFlows"] = json!(flows);
            }
            // `confirm`'s verdict, for a CI that gates on confirmed ones.
            if let Some(c) = &f.confirmation {
                result["properties"] = json!({
                    "holdcheck/confirmation": c.verdict,
                    "holdcheck/prediction": c.of,
                });
            }
            result
        })
        .collect();
    let mut run = json!({
        "tool": { "driver": {
            "name": "holdcheck",
            "version": env!("CARGO_PKG_VERSION"),
            "rules": rules(),
        }},
        "results": results,
    });
    if let Some(root) = o.source_root {
        let mut uri = format!("file://{}", uri_path(&root.to_string_lossy()));
        if !uri.ends_with('/') {
            uri.push('/');
        }
        run["originalUriBaseIds"] = json!({ SRCROOT: { "uri": uri } });
    }
    // What `inspect` saw of every thread and queue: in the run's property
    // bag, as the JSON report has it (SARIF has no place of its own for it).
    if let Some(i) = &r.inspect {
        run["properties"] = json!({ "holdcheck/inspect": i });
    }
    if !r.warnings.is_empty() {
        run["invocations"] = json!([{
            "executionSuccessful": true,
            "toolExecutionNotifications": r
                .warnings
                .iter()
                .map(|w| json!({ "level": "warning", "message": { "text": w } }))
                .collect::<Vec<_>>(),
        }]);
    }
    let sarif = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [run],
    });
    serde_json::to_string_pretty(&sarif).expect("SARIF serialises") + "\n"
}
