//! The graph's edges and their evidence, built for a million facts: while
//! traces are read each piece of evidence is appended to one vector with
//! its edge, and [`Edges::seal`] groups the positions by edge once. No edge
//! owns an allocation, nothing is looked up per fact but the two nodes, and
//! no piece of evidence moves once appended: moving a million of them into
//! their edge's order took 0.27 s of a 1.6 s report (a cache miss each).

use super::Evidence;
use rustc_hash::FxHashMap;

/// An edge: (from node, to node).
pub type Key = (usize, usize);

#[derive(Debug, Default)]
pub struct Edges {
    /// Every piece of evidence, in the order it was read.
    evidence: Vec<Evidence>,
    /// The edges of the evidence appended since the last seal (the last
    /// `pending.len()` of `evidence`).
    pending: Vec<Key>,
    /// Sealed: positions in `evidence`, grouped by edge in key order, each
    /// edge's in the order it was read.
    order: Vec<u32>,
    /// Sealed: each edge's place in `keys` (and `ranges`).
    index: FxHashMap<Key, u32>,
    /// Sealed: the edges in order, and beside each its range of `order`,
    /// so that a walk over every edge looks nothing up.
    keys: Vec<Key>,
    ranges: Vec<(u32, u32)>,
}

/// The evidence of one edge, in the order it was read.
#[derive(Debug, Clone, Copy)]
pub struct Evidences<'a> {
    all: &'a [Evidence],
    at: &'a [u32],
}

impl<'a> Evidences<'a> {
    pub fn iter(&self) -> impl Iterator<Item = &'a Evidence> + Clone + 'a {
        let all = self.all;
        self.at.iter().map(move |&p| &all[p as usize])
    }
}

impl Edges {
    /// Appends evidence for `key`; it is seen once [`Edges::seal`]ed.
    pub(super) fn push(&mut self, key: Key, e: Evidence) {
        self.evidence.push(e);
        self.pending.push(key);
    }

    /// Groups the evidence appended since the last seal with its edge's.
    pub(super) fn seal(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let sealed = self.evidence.len() - self.pending.len();
        let pos = |p: usize| u32::try_from(p).expect("fewer than 4 G pieces of evidence");
        // Each sealed position with its edge (a removed edge's evidence
        // stays in `evidence`, reached by nothing), then the new ones.
        let mut at: Vec<(Key, u32)> = Vec::with_capacity(self.order.len() + self.pending.len());
        for (k, &(s, e)) in self.keys.iter().zip(&self.ranges) {
            at.extend(self.order[s as usize..e as usize].iter().map(|&p| (*k, p)));
        }
        at.extend(
            std::mem::take(&mut self.pending)
                .into_iter()
                .enumerate()
                .map(|(i, k)| (k, pos(sealed + i))),
        );
        // Positions break ties: an edge's evidence stays in read order.
        at.sort_unstable();
        self.order = at.iter().map(|&(_, p)| p).collect();
        let edges = 1 + at.windows(2).filter(|w| w[0].0 != w[1].0).count();
        self.index = FxHashMap::with_capacity_and_hasher(edges, Default::default());
        self.keys = Vec::with_capacity(edges);
        self.ranges = Vec::with_capacity(edges);
        let mut start = 0;
        for i in 1..=at.len() {
            if i == at.len() || at[i].0 != at[start].0 {
                self.index.insert(at[start].0, pos(self.keys.len()));
                self.keys.push(at[start].0);
                self.ranges.push((pos(start), pos(i)));
                start = i;
            }
        }
    }

    fn evidences(&self, &(s, e): &(u32, u32)) -> Evidences<'_> {
        Evidences {
            all: &self.evidence,
            at: &self.order[s as usize..e as usize],
        }
    }

    /// The evidence of an edge.
    pub fn get(&self, key: &Key) -> Option<Evidences<'_>> {
        debug_assert!(self.pending.is_empty(), "edges read before seal");
        let &i = self.index.get(key)?;
        Some(self.evidences(&self.ranges[i as usize]))
    }

    pub fn contains_key(&self, key: &Key) -> bool {
        self.index.contains_key(key)
    }

    /// The edges, in order.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The edges with their evidence, in order.
    pub fn iter(&self) -> impl Iterator<Item = (Key, Evidences<'_>)> {
        debug_assert!(self.pending.is_empty(), "edges read before seal");
        self.keys
            .iter()
            .zip(&self.ranges)
            .map(|(k, r)| (*k, self.evidences(r)))
    }

    /// Forgets edges (their evidence stays, unreachable).
    pub(super) fn remove(&mut self, gone: &std::collections::HashSet<Key>) {
        if gone.is_empty() {
            return;
        }
        (self.keys, self.ranges) = self
            .keys
            .iter()
            .zip(&self.ranges)
            .filter(|(k, _)| !gone.contains(k))
            .map(|(k, r)| (*k, *r))
            .unzip();
        // The edges after a removed one moved up.
        self.index = self
            .keys
            .iter()
            .enumerate()
            .map(|(i, k)| (*k, i as u32))
            .collect();
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::Edges;
    use crate::model::{Evidence, Relation};

    fn ev(tid: u32) -> Evidence {
        Evidence::bare(1, tid, Relation::LockOrder, 0)
    }

    fn tids(e: &Edges) -> Vec<((usize, usize), Vec<u32>)> {
        e.iter()
            .map(|(k, ev)| (k, ev.iter().map(|x| x.tid).collect()))
            .collect()
    }

    #[test]
    fn evidence_is_grouped_by_edge_in_read_order_across_seals_and_removals() {
        let mut e = Edges::default();
        for (k, tid) in [((2, 3), 1), ((0, 1), 2), ((2, 3), 3)] {
            e.push(k, ev(tid));
        }
        e.seal();
        assert_eq!(tids(&e), vec![((0, 1), vec![2]), ((2, 3), vec![1, 3])]);
        e.push((1, 2), ev(4));
        e.push((0, 1), ev(5));
        e.seal();
        let all = vec![
            ((0, 1), vec![2, 5]),
            ((1, 2), vec![4]),
            ((2, 3), vec![1, 3]),
        ];
        assert_eq!(tids(&e), all);
        // The walk and the lookup agree, edge by edge.
        for (k, t) in &all {
            let got: Vec<u32> = e.get(k).unwrap().iter().map(|x| x.tid).collect();
            assert_eq!(&got, t);
        }
        e.remove(&[(1, 2)].into_iter().collect());
        assert_eq!(tids(&e), vec![all[0].clone(), all[2].clone()]);
        assert!(e.get(&(1, 2)).is_none());
        // Sealed again after a removal: the rest keep their evidence.
        e.push((2, 3), ev(6));
        e.seal();
        assert_eq!(
            tids(&e),
            vec![((0, 1), vec![2, 5]), ((2, 3), vec![1, 3, 6])]
        );
    }
}
