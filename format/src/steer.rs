//! The plan `holdcheck confirm` gives the shim (a small text file named by
//! `HOLDCHECK_CONFIRM`) and the page of shared state the shims of a run
//! steer by and the analyzer reads afterwards.
//!
//! The plan, one item per line, fields separated by tabs:
//!
//! ```text
//! holdcheck-confirm 1
//! state   /path/of/the/state/page
//! park_ms 1000            how long a thread waits at its site at most
//! blocked_ms 100          how long a call must last to count as blocked
//! edge    lock|call|park  HELD_MODULE HELD_OFFSET|- -  MODULE OFFSET [MODULE OFFSET]
//! ```
//!
//! An edge's places are code addresses as module path + offset from its
//! load base (as reports give them): the site (its first frame, and its
//! caller's when given), and where the lock held across it was taken.

use core::sync::atomic::{AtomicU32, AtomicU64};

/// At most this many edges in a plan (the state page has a slot each).
pub const MAX_EDGES: usize = 16;
/// The state page's size: the file the analyzer makes is this long.
pub const STATE_BYTES: usize = 4096;
pub const STATE_MAGIC: u64 = 0x686f_6c64_7374_6572; // "holdster"
const HEADER: &str = "holdcheck-confirm 1";

/// What the shim does at an edge's site.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum EdgeKind {
    /// A lock-order edge: park before the acquisition, the held lock held.
    Lock,
    /// A blocking call made with a lock held (or a wait on a queue): mark
    /// it while it lasts, and let it block.
    Call,
    /// A queue's drainer (or producer) at its acquisition of the lock:
    /// park before it, whatever it holds.
    Park,
}

impl EdgeKind {
    fn word(self) -> &'static str {
        match self {
            EdgeKind::Lock => "lock",
            EdgeKind::Call => "call",
            EdgeKind::Park => "park",
        }
    }
}

/// A code address as a module's path and an offset from its load base.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Place {
    pub module: String,
    pub offset: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlanEdge {
    pub kind: EdgeKind,
    /// Where the lock held across the site was taken (lock and call edges
    /// that hold one).
    pub held: Option<Place>,
    /// The site: its first frame, then its caller's (at most two).
    pub frames: Vec<Place>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    pub state: String,
    pub park_ms: u64,
    pub blocked_ms: u64,
    pub edges: Vec<PlanEdge>,
}

impl Plan {
    pub fn render(&self) -> String {
        let mut out = format!(
            "{HEADER}\nstate\t{}\npark_ms\t{}\nblocked_ms\t{}\n",
            self.state, self.park_ms, self.blocked_ms
        );
        for e in &self.edges {
            out.push_str("edge\t");
            out.push_str(e.kind.word());
            match &e.held {
                Some(h) => out.push_str(&format!("\t{}\t{:#x}", h.module, h.offset)),
                None => out.push_str("\t-\t-"),
            }
            for f in &e.frames {
                out.push_str(&format!("\t{}\t{:#x}", f.module, f.offset));
            }
            out.push('\n');
        }
        out
    }

    pub fn parse(text: &str) -> Result<Plan, String> {
        let mut lines = text.lines();
        if lines.next() != Some(HEADER) {
            return Err("not a holdcheck confirm plan".into());
        }
        let mut plan = Plan {
            state: String::new(),
            park_ms: 1000,
            blocked_ms: 100,
            edges: Vec::new(),
        };
        let number = |v: &str, what: &str| {
            v.parse::<u64>()
                .map_err(|_| format!("{what} {v} is not a number"))
        };
        for line in lines {
            let f: Vec<&str> = line.split('\t').collect();
            match f.as_slice() {
                ["state", p] => plan.state = p.to_string(),
                ["park_ms", v] => plan.park_ms = number(v, "park_ms")?,
                ["blocked_ms", v] => plan.blocked_ms = number(v, "blocked_ms")?,
                ["edge", kind, hm, ho, rest @ ..]
                    if (2..=4).contains(&rest.len()) && rest.len() % 2 == 0 =>
                {
                    let kind = match *kind {
                        "lock" => EdgeKind::Lock,
                        "call" => EdgeKind::Call,
                        "park" => EdgeKind::Park,
                        k => return Err(format!("unknown edge kind {k}")),
                    };
                    let held = (*hm != "-").then(|| place(hm, ho)).transpose()?;
                    let frames = rest
                        .chunks(2)
                        .map(|c| place(c[0], c[1]))
                        .collect::<Result<Vec<_>, _>>()?;
                    plan.edges.push(PlanEdge { kind, held, frames });
                }
                [""] => {}
                _ => return Err(format!("cannot read the line '{line}'")),
            }
        }
        if plan.edges.is_empty() || plan.edges.len() > MAX_EDGES {
            return Err(format!(
                "{} edges (a plan has 1 to {MAX_EDGES})",
                plan.edges.len()
            ));
        }
        if plan.state.is_empty() {
            return Err("no state file".into());
        }
        Ok(plan)
    }
}

fn place(module: &str, offset: &str) -> Result<Place, String> {
    let offset = u64::from_str_radix(offset.trim_start_matches("0x"), 16)
        .map_err(|_| format!("bad offset {offset}"))?;
    Ok(Place {
        module: module.to_string(),
        offset,
    })
}

/// One edge's slot in the state page.
#[repr(C)]
pub struct Slot {
    /// pid << 32 | tid of the thread there now, 0 when none.
    pub occupant: AtomicU64,
    /// When it got there (CLOCK_MONOTONIC: the same in every process).
    pub since_ns: AtomicU64,
    /// The lock it holds and the one it is about to take (lock edges).
    pub held: AtomicU64,
    pub wanted: AtomicU64,
    /// [`FREE`], [`PARKED`] or [`IN_CALL`].
    pub state: AtomicU32,
    /// Times a thread reached the site, was parked there, gave up waiting.
    pub reached: AtomicU32,
    pub parked: AtomicU32,
    pub timeouts: AtomicU32,
    /// The last thread to reach the site (pid << 32 | tid).
    pub last: AtomicU64,
    /// How long the park that ended in the release waited.
    pub waited_ns: AtomicU64,
    /// At its last give-up, a thread of its process that was waiting for
    /// a lock the parked thread held (pid << 32 | tid), and that lock's
    /// address: what kept the others from their sites.
    pub blocker: AtomicU64,
    pub blocker_lock: AtomicU64,
}

pub const FREE: u32 = 0;
pub const PARKED: u32 = 1;
pub const IN_CALL: u32 = 2;

/// The state page: all atomics, valid for any bytes (a zeroed file is a
/// fresh state).
#[repr(C)]
pub struct State {
    pub magic: AtomicU64,
    /// Set once every edge was ready and the parked threads went on.
    pub go: AtomicU32,
    pub _pad: AtomicU32,
    pub released_ns: AtomicU64,
    pub slots: [Slot; MAX_EDGES],
}

const _: () = assert!(core::mem::size_of::<State>() <= STATE_BYTES);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_reads_back_as_written() {
        let plan = Plan {
            state: "/tmp/x/state".into(),
            park_ms: 500,
            blocked_ms: 80,
            edges: vec![
                PlanEdge {
                    kind: EdgeKind::Lock,
                    held: Some(Place {
                        module: "/bin/a b".into(),
                        offset: 0x35c,
                    }),
                    frames: vec![
                        Place {
                            module: "/bin/a b".into(),
                            offset: 0x2e2,
                        },
                        Place {
                            module: "/lib/x.so".into(),
                            offset: 0x10,
                        },
                    ],
                },
                PlanEdge {
                    kind: EdgeKind::Park,
                    held: None,
                    frames: vec![Place {
                        module: "/bin/a b".into(),
                        offset: 0x319,
                    }],
                },
            ],
        };
        assert_eq!(Plan::parse(&plan.render()), Ok(plan));
    }

    #[test]
    fn a_bad_plan_is_refused_with_its_line() {
        assert!(Plan::parse("something else\n").is_err());
        let e = Plan::parse("holdcheck-confirm 1\nstate\t/s\nedge\tjump\t-\t-\tm\t0x1\n");
        assert_eq!(e, Err("unknown edge kind jump".into()));
        let e = Plan::parse("holdcheck-confirm 1\nstate\t/s\n");
        assert!(e.unwrap_err().contains("0 edges"));
        let e = Plan::parse("holdcheck-confirm 1\nedge\tlock\t-\t-\tm\tzz\n");
        assert_eq!(e, Err("bad offset zz".into()));
    }
}
