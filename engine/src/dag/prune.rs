//! Pruning and snapshot cover: dropping a stable prefix's bodies, keeping a
//! [`Tip`] for every pruned lane a held or future lane may still name, and
//! the boundary a snapshot carries.

use super::{LaneDag, SlotIdx};
use crate::hash::LaneId;
use crate::lane::{Dot, NodeId, Op};
use crate::snapshot::Tip;
use std::collections::{BTreeMap, BTreeSet};

impl<O: Op> LaneDag<O> {
    /// Drops the bodies of `pruned` (a causally closed prefix, in canonical
    /// order) and keeps a [`Tip`] for every pruned lane a remaining or future
    /// lane may name.
    pub(crate) fn prune(&mut self, pruned: &[SlotIdx], tips: &[Tip]) {
        let mut removed = BTreeMap::new();
        for &idx in pruned {
            let slot = self.slots.take(idx).expect("only live slots are pruned");
            self.by_id.remove(&slot.id);
            let chain = self.chains.get_mut(&slot.author).expect("an admitted lane has a chain");
            let front = chain.slots.pop_front();
            assert_eq!(front, Some(idx), "a pruned prefix is causally closed, so it takes chain fronts");
            chain.pruned_seq = slot.seq;
            removed.insert(slot.id, slot.tip());
        }
        self.rebuild_refs(tips, &[], &removed);
    }

    /// Drops everything at or below `tips` (an installed snapshot's
    /// frontier), keeps `boundary` (covered lanes the sender's held lanes
    /// name) and returns the admitted lanes that remain.
    pub(crate) fn cover(&mut self, tips: &[Tip], boundary: &[Tip]) -> Vec<SlotIdx> {
        let mut removed = BTreeMap::new();
        let covered_seq: BTreeMap<NodeId, u64> = tips.iter().map(|tip| (tip.author, tip.seq)).collect();
        for (author, chain) in &mut self.chains {
            let cover = covered_seq.get(author).copied().unwrap_or(0);
            while let Some(&idx) = chain.slots.front() {
                let slot = self.slots.get(idx).expect("chains hold live slots");
                if slot.seq > cover {
                    break;
                }
                let id = slot.id;
                removed.insert(id, slot.tip());
                chain.slots.pop_front();
                self.by_id.remove(&id);
                self.heads.remove(&id);
                self.slots.take(idx);
            }
            chain.pruned_seq = chain.pruned_seq.max(cover);
        }
        for tip in tips {
            let chain = self.chains.entry(tip.author).or_default();
            if chain.slots.is_empty() {
                chain.pruned_seq = chain.pruned_seq.max(tip.seq);
            }
        }
        self.rebuild_refs(tips, boundary, &removed);
        self.recompute_heads(tips);
        let mut remaining: Vec<SlotIdx> = self.chains.values().flat_map(|chain| chain.slots.iter().copied()).collect();
        remaining.sort_unstable();
        remaining
    }

    fn rebuild_refs(&mut self, tips: &[Tip], boundary: &[Tip], removed: &BTreeMap<LaneId, Tip>) {
        let mut refs: BTreeMap<LaneId, Tip> = tips.iter().chain(boundary).map(|tip| (tip.id, *tip)).collect();
        // Pending lanes were parked counting their held parents as present,
        // so those parents stay named too (the map is sorted: no order leaks).
        let admitted = self.slots.iter().map(|slot| &slot.lane.parents);
        let pending = self.pending.values().map(|pending| &pending.lane.parents);
        for parent in admitted.chain(pending).flatten() {
            if let Some(tip) = removed.get(parent).or_else(|| self.pruned_refs.get(parent)) {
                refs.insert(*parent, *tip);
            }
        }
        self.pruned_dots.clear();
        for tip in refs.values() {
            self.pruned_dots.entry(Dot { author: tip.author, seq: tip.seq }).or_insert(tip.id);
        }
        self.pruned_refs = refs;
        for tip in tips {
            self.pruned_tips.insert(tip.author, *tip);
        }
    }

    fn recompute_heads(&mut self, tips: &[Tip]) {
        let mut heads: BTreeSet<LaneId> = self.by_id.keys().copied().collect();
        heads.extend(tips.iter().map(|tip| tip.id));
        for slot in self.slots.iter() {
            for parent in &slot.lane.parents {
                heads.remove(parent);
            }
        }
        self.heads = heads;
    }
}
