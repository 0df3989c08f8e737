//! Which of two threads' facts could have happened at the same time, as far
//! as thread starts and joins tell: a lock order taken before a thread was
//! created comes before everything that thread does; everything a thread
//! did comes before what its joiner does after the join.
//!
//! A thread's facts carry its phase (`holdcheck_format::PHASES`): phase `k`
//! runs from its `k`-th create or join to the next, and the last phase
//! holds all later ones. The relation is between (thread, phase) pairs,
//! and only what the records prove is used: a merged phase orders nothing
//! after its first sync.

use holdcheck_format::PHASES;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};

/// A start or a join that orders two threads' facts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Sync {
    /// `thread` was created (by `by`) after the earlier fact.
    Start { thread: u32, by: u32 },
    /// `thread` was joined (by `by`) before the later fact.
    Join { thread: u32, by: u32 },
}

/// A thread and one of its phases.
type Phase = (u32, u32);

type Answers = HashMap<(Phase, Phase), Option<Vec<Sync>>>;

/// The starts and joins of one process's threads.
#[derive(Debug, Default)]
pub struct Threads {
    /// Each thread's creator and the creator's sync number of the create.
    starts: HashMap<u32, (u32, u32)>,
    /// Per thread: its creates and joins, (sync number, other thread).
    children: HashMap<u32, Vec<(u32, u32)>>,
    /// Per joined thread: its joiners, (joiner, the joiner's sync number).
    joined_by: HashMap<u32, Vec<(u32, u32)>>,
    /// Answers already worked out: (from, to) → the path, if ordered.
    cache: RefCell<Answers>,
}

/// Most (thread, phase) states one ordering query visits.
const MAX_VISITS: usize = 100_000;

impl Threads {
    pub fn started(&mut self, tid: u32, parent: u32, seq: u32) {
        self.starts.insert(tid, (parent, seq));
        self.children.entry(parent).or_default().push((seq, tid));
        self.cache.get_mut().clear();
    }

    pub fn joined(&mut self, tid: u32, joined: u32, seq: u32) {
        self.joined_by.entry(joined).or_default().push((tid, seq));
        self.cache.get_mut().clear();
    }

    /// The starts and joins that put everything thread `a` did in phase
    /// `pa` before everything `b` did in phase `pb`, or None when they are
    /// not ordered that way (or are one thread: program order is not what
    /// this answers).
    pub fn before(&self, a: Phase, b: Phase) -> Option<Vec<Sync>> {
        if a.0 == b.0 {
            return None;
        }
        if let Some(r) = self.cache.borrow().get(&(a, b)) {
            return r.clone();
        }
        let r = self.search(a, b);
        self.cache.borrow_mut().insert((a, b), r.clone());
        r
    }

    /// Breadth-first over (thread, phase): a phase leads to the thread's
    /// next phase, to the first phase of a thread it created at its end,
    /// and (from any phase) to the phase of each joiner after the join.
    fn search(&self, from: Phase, to: Phase) -> Option<Vec<Sync>> {
        let last = PHASES - 1;
        // The earliest phase reached in each thread, and how.
        let mut reached: HashMap<u32, (u32, Vec<Sync>)> = HashMap::new();
        let mut queue = VecDeque::new();
        reached.insert(from.0, (from.1, Vec::new()));
        queue.push_back(from);
        let mut visits = 0;
        while let Some((t, p)) = queue.pop_front() {
            visits += 1;
            if visits > MAX_VISITS {
                return None;
            }
            let path = match reached.get(&t) {
                Some((q, path)) if *q == p => path.clone(),
                _ => continue, // reached earlier since
            };
            let mut next: Vec<((u32, u32), Sync)> = Vec::new();
            for &(seq, child) in self.children.get(&t).into_iter().flatten() {
                // The create ends phase `seq` when that phase is exact; in
                // the merged last phase only the phases before it surely
                // came first.
                let ends = if seq < last { seq } else { last - 1 };
                if p <= ends {
                    next.push((
                        (child, 0),
                        Sync::Start {
                            thread: child,
                            by: t,
                        },
                    ));
                }
            }
            for &(joiner, seq) in self.joined_by.get(&t).into_iter().flatten() {
                if seq < last {
                    next.push((
                        (joiner, seq + 1),
                        Sync::Join {
                            thread: t,
                            by: joiner,
                        },
                    ));
                }
            }
            for ((u, q), how) in next {
                if u == to.0 && q <= to.1 {
                    let mut path = path.clone();
                    path.push(how);
                    return Some(path);
                }
                let better = reached.get(&u).is_none_or(|(r, _)| q < *r);
                if better {
                    let mut path = path.clone();
                    path.push(how);
                    reached.insert(u, (q, path));
                    queue.push_back((u, q));
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_init_phase_comes_before_the_thread_it_starts() {
        let mut t = Threads::default();
        t.started(2, 1, 0);
        // Main's phase 0 (before the create) is before the worker.
        assert_eq!(
            t.before((1, 0), (2, 0)),
            Some(vec![Sync::Start { thread: 2, by: 1 }])
        );
        // What main does after the create is not.
        assert_eq!(t.before((1, 1), (2, 0)), None);
        assert_eq!(t.before((2, 0), (1, 1)), None);
    }

    #[test]
    fn a_joined_thread_comes_before_the_next_one() {
        let mut t = Threads::default();
        t.started(2, 1, 0);
        t.joined(1, 2, 1);
        t.started(3, 1, 2);
        assert_eq!(
            t.before((2, 0), (3, 0)),
            Some(vec![
                Sync::Join { thread: 2, by: 1 },
                Sync::Start { thread: 3, by: 1 }
            ])
        );
        assert_eq!(t.before((3, 0), (2, 0)), None);
        // Two workers started before either is joined overlap.
        let mut t = Threads::default();
        t.started(2, 1, 0);
        t.started(3, 1, 1);
        t.joined(1, 2, 2);
        assert_eq!(t.before((2, 0), (3, 0)), None);
        assert_eq!(t.before((3, 0), (2, 0)), None);
    }

    #[test]
    fn the_merged_last_phase_orders_only_what_came_before_it() {
        let mut t = Threads::default();
        let last = PHASES - 1;
        t.started(2, 1, last + 3);
        assert!(t.before((1, last - 1), (2, 0)).is_some());
        assert_eq!(t.before((1, last), (2, 0)), None);
        t.joined(1, 3, last + 5);
        assert_eq!(t.before((3, 0), (1, last)), None);
    }
}
