//! The graph's edges and their evidence, built for a million facts: while
//! traces are read each piece of evidence is appended to one vector with
//! its edge, and [`Edges::seal`] groups it by edge once. No edge owns an
//! allocation, and nothing is looked up per fact but the two nodes.

use super::Evidence;
use rustc_hash::FxHashMap;

/// An edge: (from node, to node).
pub type Key = (usize, usize);

#[derive(Debug, Default)]
pub struct Edges {
    /// Every piece of evidence. Sealed: grouped by edge in key order, each
    /// edge's in the order it was read.
    evidence: Vec<Evidence>,
    /// The edges of the evidence appended since the last seal.
    pending: Vec<Key>,
    /// Sealed: each edge's place in `keys` (and `ranges`).
    index: FxHashMap<Key, u32>,
    /// Sealed: the edges in order, and beside each its range of
    /// `evidence`, so that a walk over every edge looks nothing up.
    keys: Vec<Key>,
    ranges: Vec<(u32, u32)>,
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
        self.drop_unreachable();
        // Each position's edge, the sealed part's from its ranges.
        let sealed = self.evidence.len() - self.pending.len();
        let mut at: Vec<(Key, u32)> = Vec::with_capacity(self.evidence.len());
        for (k, &(s, e)) in self.keys.iter().zip(&self.ranges) {
            at.extend((s..e).map(|p| (*k, p)));
        }
        debug_assert_eq!(at.len(), sealed);
        let pos = |p: usize| u32::try_from(p).expect("fewer than 4 G pieces of evidence");
        at.extend(
            std::mem::take(&mut self.pending)
                .into_iter()
                .enumerate()
                .map(|(i, k)| (k, pos(sealed + i))),
        );
        // Positions break ties: an edge's evidence stays in read order.
        at.sort_unstable();
        let mut order: Vec<u32> = at.iter().map(|&(_, p)| p).collect();
        permute(&mut self.evidence, &mut order);
        self.index.clear();
        self.keys.clear();
        self.ranges.clear();
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

    /// Drops the sealed evidence no edge reaches any more (that of edges
    /// [`Edges::remove`]d), so that a seal after a removal permutes only
    /// what is left. Nothing to do otherwise (the analysis seals once,
    /// then removes).
    fn drop_unreachable(&mut self) {
        let sealed = self.evidence.len() - self.pending.len();
        let reachable: usize = self.ranges.iter().map(|&(s, e)| (e - s) as usize).sum();
        if reachable == sealed {
            return;
        }
        let mut keep = vec![false; sealed];
        for &(s, e) in &self.ranges {
            keep[s as usize..e as usize].fill(true);
        }
        // Kept positions before each position: its new place.
        let mut before = Vec::with_capacity(sealed + 1);
        let mut n = 0u32;
        for &k in &keep {
            before.push(n);
            n += k as u32;
        }
        for r in &mut self.ranges {
            *r = (before[r.0 as usize], before[r.0 as usize] + (r.1 - r.0));
        }
        let mut i = 0;
        self.evidence.retain(|_| {
            i += 1;
            i > sealed || keep[i - 1]
        });
    }

    /// The evidence of an edge.
    pub fn get(&self, key: &Key) -> Option<&[Evidence]> {
        debug_assert!(self.pending.is_empty(), "edges read before seal");
        let &i = self.index.get(key)?;
        let (s, e) = self.ranges[i as usize];
        Some(&self.evidence[s as usize..e as usize])
    }

    pub fn contains_key(&self, key: &Key) -> bool {
        self.index.contains_key(key)
    }

    /// The edges, in order.
    pub fn keys(&self) -> &[Key] {
        &self.keys
    }

    /// The edges with their evidence, in order.
    pub fn iter(&self) -> impl Iterator<Item = (Key, &[Evidence])> {
        debug_assert!(self.pending.is_empty(), "edges read before seal");
        self.keys
            .iter()
            .zip(&self.ranges)
            .map(|(k, &(s, e))| (*k, &self.evidence[s as usize..e as usize]))
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

impl std::ops::Index<&Key> for Edges {
    type Output = [Evidence];
    fn index(&self, key: &Key) -> &[Evidence] {
        self.get(key).expect("an edge of the model")
    }
}

/// Puts `v[order[i]]` at `i` for every `i`, in place (a million pieces of
/// evidence are not copied); `order` is used up.
fn permute<T>(v: &mut [T], order: &mut [u32]) {
    const DONE: u32 = u32::MAX;
    for i in 0..order.len() {
        let mut cur = i;
        // Follow i's cycle: each step puts one element in its place.
        while order[cur] != DONE {
            let src = order[cur] as usize;
            order[cur] = DONE;
            if src == i {
                break;
            }
            v.swap(cur, src);
            cur = src;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{permute, Edges};
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
            let got: Vec<u32> = e[k].iter().map(|x| x.tid).collect();
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

    #[test]
    fn permute_puts_each_element_where_the_order_says() {
        let mut v: Vec<u32> = (0..10).map(|i| i * 10).collect();
        let order = [3u32, 0, 9, 1, 2, 8, 4, 7, 5, 6];
        let mut o = order;
        permute(&mut v, &mut o);
        let want: Vec<u32> = order.iter().map(|&i| i * 10).collect();
        assert_eq!(v, want);
    }
}
