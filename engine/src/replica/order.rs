//! The canonical order: held lanes sorted by `(lamport, author, id)`, and
//! the merge of newly admitted lanes into it.
//!
//! Invariant: the order is sorted after every merge, and a merge never
//! reaches into the stable prefix; a lane that sorts inside the applied
//! suffix rolls the state back to before it.

use super::Replica;
use super::replay::apply_lane;
use crate::dag::{Slot, SlotIdx};
use crate::hash::LaneId;
use crate::lane::NodeId;
use crate::law::Law;

impl<L: Law> Replica<L> {
    pub(super) fn key(&self, idx: SlotIdx) -> (u64, NodeId, LaneId) {
        self.key_of(self.dag.slot(idx))
    }

    /// [`Replica::key`] of a slot at hand.
    pub(super) fn key_of(&self, slot: &Slot<L::Op>) -> (u64, NodeId, LaneId) {
        (slot.lamport, self.config.bugs.tie_author(slot.author), slot.id)
    }

    /// Merges newly admitted lanes into the canonical order and rewinds the
    /// applied position to the first one.
    ///
    /// A burst of lanes usually arrives in canonical order already (a log, a
    /// peer's batch, lanes authored in turn): one pass over their keys finds
    /// that, and is the sortedness check of an append. After a burst every
    /// key is a cache miss, so passes are what this costs.
    pub(super) fn merge_fresh(&mut self, mut fresh: Vec<SlotIdx>) {
        let arrival = self.config.bugs.arrival_order_merge().then(|| fresh.clone());
        let presorted = self.strictly_ascending(&fresh);
        if !presorted {
            fresh.sort_unstable_by_key(|idx| self.key(*idx));
        }
        let first = self.key(fresh[0]);
        let rank = self.order.partition_point(|idx| self.key(*idx) < first);
        let stable_rank = (self.stable_index - self.prune_index) as usize;
        assert!(rank >= stable_rank, "admission keeps new lanes above the stable prefix");
        if rank == self.order.len() {
            // Sorted after an append: where the lanes meet the order, and the lanes.
            let joined = self.order.last().is_none_or(|last| self.key(*last) < first);
            assert!(
                joined && (presorted || self.strictly_ascending(&fresh)),
                "the canonical order is strictly sorted after a merge"
            );
            self.order.extend(fresh);
        } else {
            let tail = self.order.split_off(rank);
            let mut merged = Vec::with_capacity(tail.len() + fresh.len());
            let (mut a, mut b) = (tail.into_iter().peekable(), fresh.into_iter().peekable());
            while let (Some(x), Some(y)) = (a.peek(), b.peek()) {
                if self.key(*x) < self.key(*y) {
                    merged.extend(a.next());
                } else {
                    merged.extend(b.next());
                }
            }
            merged.extend(a);
            merged.extend(b);
            self.order.extend(merged);
            // Sorted after every merge: the merged suffix, and where it meets the rest.
            let checked_from = rank.saturating_sub(1);
            assert!(
                self.strictly_ascending(&self.order[checked_from..]),
                "the canonical order is strictly sorted after a merge"
            );
        }
        self.reached_scan = self.reached_scan.min(self.prune_index + rank as u64);
        if rank < self.applied {
            // The state to restore is the one after the `rank` lanes that
            // still precede the first fresh lane.
            let before_fresh = self.prune_index + rank as u64;
            let target = self.config.bugs.rollback_target(before_fresh);
            match arrival {
                Some(arrival) => self.apply_in_arrival_order(&arrival),
                None => self.rollback_to(target),
            }
        }
        self.stability_dirty = true;
    }

    /// Whether the lanes' keys strictly ascend.
    fn strictly_ascending(&self, lanes: &[SlotIdx]) -> bool {
        lanes.windows(2).all(|pair| self.key(pair[0]) < self.key(pair[1]))
    }

    /// Planted bug: applies the late lanes on top of the current state in
    /// the order they arrived, instead of rolling back and replaying.
    pub(super) fn apply_in_arrival_order(&mut self, arrival: &[SlotIdx]) {
        let Self { law, config, dag, state, chain, conflicts, .. } = self;
        for (offset, idx) in arrival.iter().enumerate() {
            let lane_index = self.prune_index + self.applied as u64 + offset as u64 + 1;
            apply_lane(law, &config.bugs, dag.slot(*idx), lane_index, state, chain, conflicts);
        }
        self.applied = self.order.len();
        self.digest = None;
    }
}
