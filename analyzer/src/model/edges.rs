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
    /// Sealed: each edge's range of `evidence`.
    index: FxHashMap<Key, (u32, u32)>,
    /// Sealed: the edges in order.
    keys: Vec<Key>,
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
        // Each position's edge, the sealed part's from its ranges.
        let sealed = self.evidence.len() - self.pending.len();
        let mut at: Vec<(Key, u32)> = Vec::with_capacity(self.evidence.len());
        for k in &self.keys {
            let (s, e) = self.index[k];
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
        let mut start = 0;
        for i in 1..=at.len() {
            if i == at.len() || at[i].0 != at[start].0 {
                self.keys.push(at[start].0);
                self.index.insert(at[start].0, (pos(start), pos(i)));
                start = i;
            }
        }
    }

    /// The evidence of an edge.
    pub fn get(&self, key: &Key) -> Option<&[Evidence]> {
        debug_assert!(self.pending.is_empty(), "edges read before seal");
        let &(s, e) = self.index.get(key)?;
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
        self.keys.iter().map(|k| (*k, &self[k]))
    }

    /// Forgets edges (their evidence stays, unreachable).
    pub(super) fn remove(&mut self, gone: &std::collections::HashSet<Key>) {
        if gone.is_empty() {
            return;
        }
        self.keys.retain(|k| !gone.contains(k));
        self.index.retain(|k, _| !gone.contains(k));
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
    use super::permute;

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
