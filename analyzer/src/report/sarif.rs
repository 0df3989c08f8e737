//! The report as SARIF 2.1.0, for code-scanning UIs: one result per
//! finding, located at its blocking call or acquisition, with the other
//! sites of the cycle as related locations, fingerprinted by signature.

use super::*;
use serde_json::{json, Value};

fn location(f: &Frame, message: Option<&str>) -> Option<Value> {
    let file = f.file.as_ref()?;
    let uri = if file.starts_with('/') {
        format!("file://{file}")
    } else {
        file.clone()
    };
    let mut loc = json!({
        "physicalLocation": {
            "artifactLocation": { "uri": uri },
            "region": { "startLine": f.line.unwrap_or(1).max(1) }
        }
    });
    if let Some(m) = message {
        loc["message"] = json!({ "text": m });
    }
    Some(loc)
}

fn level(kind: &str) -> &'static str {
    match kind {
        DEADLOCK | POTENTIAL_DEADLOCK => "error",
        _ => "warning",
    }
}

pub fn render(r: &Report) -> String {
    let rules: Vec<Value> = [
        (DEADLOCK, "Threads wait on each other for ever (observed)"),
        (
            POTENTIAL_DEADLOCK,
            "A cycle of locks and kernel queues that can deadlock",
        ),
        (
            LOCK_ORDER_INVERSION,
            "Locks taken in opposite orders, by paths this run did not overlap",
        ),
        (STALL, "A wait chain older than the threshold"),
        (
            HANG,
            "Threads blocked when the command was ended, that no other finding explains",
        ),
        (
            MISUSE,
            "A lock used against its rules: unlocked when not held, relocked, destroyed while held or used after destroy, waited on unheld, or left held by an exited thread",
        ),
        (HAZARD, "A lock held across a blocking call"),
        (STALLED_CALL, "A call blocked past the threshold"),
    ]
    .iter()
    .map(|(id, text)| json!({ "id": id, "shortDescription": { "text": text } }))
    .collect();
    let results: Vec<Value> = r
        .findings
        .iter()
        .map(|f| {
            let mut related = Vec::new();
            for e in &f.edges {
                let what = format!("T{} {}: {}", e.thread.tid, e.thread.name, e.relation);
                if let Some(fr) = crate::symbolize::program_frame(&f.stacks[e.stack].frames) {
                    related.extend(location(&fr, Some(&what)));
                }
                if let Some(h) = &e.held_at {
                    related.extend(location(
                        h,
                        Some(&format!("T{} acquires the lock it holds", e.thread.tid)),
                    ));
                }
            }
            let locations: Vec<Value> = f
                .location
                .as_ref()
                .and_then(|l| location(l, None))
                .into_iter()
                .collect();
            json!({
                "ruleId": f.kind,
                "level": level(&f.kind),
                "message": { "text": f.title },
                "locations": locations,
                "relatedLocations": related,
                "partialFingerprints": { "holdcheck/v1": f.signature },
            })
        })
        .collect();
    let mut run = json!({
        "tool": { "driver": {
            "name": "holdcheck",
            "version": env!("CARGO_PKG_VERSION"),
            "rules": rules,
        }},
        "results": results,
    });
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
