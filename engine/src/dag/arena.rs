//! The arena of admitted lanes: slots stored inline, one after another in
//! admission order, addressed by an index that is never reused.
//!
//! Replay, the order merge and stability walk slots in canonical order,
//! which is mostly admission order: inline slots make that walk a stream
//! through one array instead of a pointer chase to a box per lane (a
//! cache miss per lane once the history outgrows the cache).
//!
//! Invariants:
//! - The slot with index `i` sits at position `i - base`; `base` only grows.
//! - Pruned slots are `None`; a run of them at the front is dropped once it
//!   is at least half the array, so the array stays within twice the span
//!   from the oldest live slot to the newest, and dropping costs O(1)
//!   amortized per slot.

use super::{Slot, SlotIdx};

#[derive(Clone, Debug)]
pub(super) struct Arena<O> {
    slots: Vec<Option<Slot<O>>>,
    /// Index of `slots[0]`.
    base: SlotIdx,
    /// Length of the run of pruned slots at the front.
    pruned_front: usize,
}

impl<O> Arena<O> {
    pub(super) fn new() -> Self {
        Self { slots: Vec::new(), base: 0, pruned_front: 0 }
    }

    /// The index the next pushed slot gets.
    pub(super) fn next_index(&self) -> SlotIdx {
        self.base + super::slot_idx(self.slots.len())
    }

    pub(super) fn push(&mut self, slot: Slot<O>) -> SlotIdx {
        let idx = self.next_index();
        self.slots.push(Some(slot));
        idx
    }

    fn position(&self, idx: SlotIdx) -> Option<usize> {
        usize::try_from(idx.checked_sub(self.base)?).ok()
    }

    /// The live slot at `idx`, if any.
    pub(super) fn get(&self, idx: SlotIdx) -> Option<&Slot<O>> {
        self.slots.get(self.position(idx)?)?.as_ref()
    }

    pub(super) fn get_mut(&mut self, idx: SlotIdx) -> Option<&mut Slot<O>> {
        let position = self.position(idx)?;
        self.slots.get_mut(position)?.as_mut()
    }

    /// Removes the live slot at `idx` and returns it.
    pub(super) fn take(&mut self, idx: SlotIdx) -> Option<Slot<O>> {
        let position = self.position(idx)?;
        let slot = self.slots.get_mut(position)?.take();
        if position == self.pruned_front {
            self.drop_pruned_front();
        }
        slot
    }

    /// Live slots in index order.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Slot<O>> {
        self.slots.iter().flatten()
    }

    pub(super) fn iter_mut(&mut self) -> impl Iterator<Item = &mut Slot<O>> {
        self.slots.iter_mut().flatten()
    }

    /// Extends the pruned run at the front past the slot just taken, and
    /// drops it once it is at least half the array: each position is passed
    /// once and moved O(1) times on average.
    fn drop_pruned_front(&mut self) {
        self.pruned_front += self.slots[self.pruned_front..].iter().take_while(|slot| slot.is_none()).count();
        if self.pruned_front * 2 >= self.slots.len() {
            self.slots.drain(..self.pruned_front);
            self.base += super::slot_idx(self.pruned_front);
            self.pruned_front = 0;
        }
    }

    /// Positions held by the array (live and pruned), for tests.
    #[cfg(test)]
    pub(super) fn span(&self) -> usize {
        self.slots.len()
    }
}

#[cfg(test)]
mod tests {
    use super::Arena;
    use crate::dag::Slot;
    use crate::hash::LaneId;
    use crate::lane::{Lane, NodeId};
    use std::sync::Arc;

    fn slot(n: u8) -> Slot<u8> {
        let lane = Lane { parents: Vec::new(), author: NodeId(0), seq: u64::from(n) + 1, lamport: 1, ops: vec![n] };
        Slot {
            id: LaneId([n; 32]),
            author: lane.author,
            seq: lane.seq,
            lamport: lane.lamport,
            lane: Arc::new(lane),
            parent_slots: Box::default(),
            named_pruned: false,
            reached: Box::default(),
            reached_count: 0,
        }
    }

    #[test]
    fn indices_survive_pruning_and_the_pruned_front_is_released() {
        let mut arena = Arena::new();
        let indices: Vec<_> = (0..100).map(|n| arena.push(slot(n))).collect();
        assert_eq!(indices, (0..100).collect::<Vec<_>>());
        // Out of order, as a stable prefix in canonical order may be: the
        // slots behind the front first, while the front stays live.
        for idx in 1..60 {
            assert_eq!(arena.take(idx).map(|slot| slot.id), Some(LaneId([idx as u8; 32])));
        }
        assert_eq!(arena.span(), 100, "nothing is dropped while the front is live");
        assert_eq!(arena.take(0).map(|slot| slot.id), Some(LaneId([0; 32])));
        assert_eq!(arena.span(), 40, "taking the front drops the whole pruned run of 60");
        for idx in 0..60 {
            assert!(arena.get(idx).is_none(), "pruned slot {idx} is gone");
            assert!(arena.take(idx).is_none(), "a pruned slot is taken once");
        }
        for idx in 60..100 {
            assert_eq!(arena.get(idx).map(|slot| slot.lane.ops[0]), Some(idx as u8), "slot {idx} keeps its index");
        }
        assert_eq!(arena.push(slot(100)), 100, "indices are never reused");
        assert_eq!(arena.iter().count(), 41);
        assert!(arena.get(u64::MAX).is_none());
    }
}
