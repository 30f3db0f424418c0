//! What a compact-summary peer lacks: the held lanes above its stable point
//! that neither its heads nor its Bloom filter account for.
//!
//! When the peer named all its heads (a Delta's summary does) and this
//! node holds every one of them, their ancestry above the floor is exactly
//! what the peer holds there, and the Bloom filter is not consulted: no
//! false positive can hide a lane. That is the usual case for the
//! initiator's Lanes, built after the Delta brought it the responder's
//! lanes. Otherwise the filter decides.
//!
//! A lane's ancestors are not sent on the strength of the lane alone: when
//! the peer's heads are lanes this node lacks (which is usual: they are what
//! the peer has to give), nothing marks their ancestry known, and sending
//! every ancestor of each lane sent would repeat most of the history above
//! the stable point (more than half the lanes of the 100-peer gossip
//! scenario's deltas). An ancestor a false positive hides reaches the peer
//! as the need/supply step asks for it, or in a later session, whose filter
//! has another salt; until then the lanes above it wait in the peer's
//! pending set.
//!
//! The walk runs over arena slots, not ids: each lane above the floor gets
//! a byte of marks in a window of slot indices, so a session costs one pass
//! over the lanes above the floor and one visit per parent edge, with no id
//! comparisons. The window spans the candidates' slot indices, so it is
//! never larger than the arena.

use super::Replica;
use crate::dag::{OrderKey, SlotIdx};
use crate::hash::LaneId;
use crate::lane::Lane;
use crate::law::Law;

/// The lane is above the peer's floor.
const CANDIDATE: u8 = 1;
/// The lane is an ancestor of (or is) one of the peer's heads.
const KNOWN: u8 = 2;
/// The lane goes to the peer.
const SEND: u8 = 4;

/// Marks for a window of slot indices.
struct Marks {
    base: SlotIdx,
    marks: Vec<u8>,
}

impl Marks {
    fn over(candidates: &[SlotIdx]) -> Self {
        let base = candidates.iter().copied().min().unwrap_or(0);
        let top = candidates.iter().copied().max().unwrap_or(0);
        let len = if candidates.is_empty() { 0 } else { (top - base) as usize + 1 };
        let mut marks = Marks { base, marks: vec![0; len] };
        for idx in candidates {
            *marks.at(*idx).expect("every candidate is inside the window") |= CANDIDATE;
        }
        marks
    }

    fn at(&mut self, idx: SlotIdx) -> Option<&mut u8> {
        let offset = usize::try_from(idx.checked_sub(self.base)?).ok()?;
        self.marks.get_mut(offset)
    }

    /// Sets `flag` on a candidate that has none of `unless`; says whether it did.
    fn claim(&mut self, idx: SlotIdx, flag: u8, unless: u8) -> bool {
        match self.at(idx) {
            Some(mark) if *mark & CANDIDATE != 0 && *mark & (flag | unless) == 0 => {
                *mark |= flag;
                true
            }
            _ => false,
        }
    }
}

impl<L: Law> Replica<L> {
    /// Held lanes with an order key above `floor`, in canonical order, that
    /// are neither ancestors of `their_heads` (through lanes above the floor)
    /// nor, unless `heads_complete` says the heads are all the peer's and
    /// this node holds each of them, reported by `peer_may_hold`.
    pub(crate) fn lanes_unknown_to(
        &mut self,
        floor: Option<OrderKey>,
        their_heads: &[LaneId],
        heads_complete: bool,
        peer_may_hold: impl Fn(&LaneId) -> bool,
    ) -> Vec<(OrderKey, LaneId, &Lane<L::Op>)> {
        self.materialize();
        let dag = &self.dag;
        let true_key = |idx: SlotIdx| {
            let slot = dag.slot(idx);
            (slot.lamport, slot.author, slot.id)
        };
        // Every ordering (planted bugs included) sorts by lamport first, so
        // lanes below the floor's lamport are skipped by a binary search.
        let start = match floor {
            Some((lamport, ..)) => self.order.partition_point(|idx| dag.slot(*idx).lane.lamport < lamport),
            None => 0,
        };
        let candidates: Vec<SlotIdx> =
            self.order[start..].iter().copied().filter(|idx| Some(true_key(*idx)) > floor).collect();
        let mut marks = Marks::over(&candidates);
        let mut stack: Vec<SlotIdx> = their_heads.iter().filter_map(|id| dag.index_of(id)).collect();
        let exact = heads_complete && stack.len() == their_heads.len();
        while let Some(idx) = stack.pop() {
            if marks.claim(idx, KNOWN, 0) {
                stack.extend(dag.slot(idx).parent_slots.iter().copied());
            }
        }
        for idx in &candidates {
            if exact || !peer_may_hold(&dag.slot(*idx).id) {
                marks.claim(*idx, SEND, KNOWN);
            }
        }
        candidates
            .into_iter()
            .filter(|idx| marks.at(*idx).is_some_and(|mark| *mark & SEND != 0))
            .map(|idx| {
                let slot = dag.slot(idx);
                (true_key(idx), slot.id, &*slot.lane)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lane::NodeId;
    use crate::replica::ReplicaConfig;
    use crate::world::{World, WorldOp};
    use proptest::prelude::*;
    use std::collections::{BTreeMap, BTreeSet};

    /// The definition the slot walk implements, over ids.
    fn by_ids(
        lanes: &[(OrderKey, LaneId, Vec<LaneId>)],
        floor: Option<OrderKey>,
        heads: &[LaneId],
        heads_complete: bool,
        may_hold: impl Fn(&LaneId) -> bool,
    ) -> Vec<LaneId> {
        let above: BTreeMap<LaneId, &Vec<LaneId>> =
            lanes.iter().filter(|(key, ..)| Some(*key) > floor).map(|(_, id, parents)| (*id, parents)).collect();
        let mut known = BTreeSet::new();
        let mut stack: Vec<LaneId> = heads.iter().copied().filter(|id| above.contains_key(id)).collect();
        while let Some(id) = stack.pop() {
            if known.insert(id) {
                stack.extend(above[&id].iter().filter(|parent| above.contains_key(*parent)));
            }
        }
        let all_ids: BTreeSet<LaneId> = lanes.iter().map(|(_, id, _)| *id).collect();
        let exact = heads_complete && heads.iter().all(|id| all_ids.contains(id));
        let send: BTreeSet<LaneId> =
            above.keys().copied().filter(|id| !known.contains(id) && (exact || !may_hold(id))).collect();
        lanes.iter().filter(|(key, id, _)| Some(*key) > floor && send.contains(id)).map(|(_, id, _)| *id).collect()
    }

    /// Four authors write in `steps`: each step one author writes, and
    /// sometimes another learns all it holds, so lanes get parents across
    /// authors. Returns the authors' replicas and one that holds every lane.
    fn history(steps: &[(u32, u32, bool)]) -> (Vec<Replica<World>>, Replica<World>) {
        let members: Vec<NodeId> = (0..4).map(NodeId).collect();
        let config = |node| ReplicaConfig { prune: false, ..ReplicaConfig::new(NodeId(node), members.clone()) };
        let mut authors: Vec<Replica<World>> = (0..4).map(|node| Replica::new(World, config(node))).collect();
        let mut all = Replica::new(World, config(0));
        for (value, (author, learner, share)) in steps.iter().enumerate() {
            let ops = vec![WorldOp::Add { key: value as u32 % 3, delta: 1 }];
            let (_, lane) = authors[*author as usize].create_lane(ops).expect("authors write");
            all.insert(lane).expect("the full replica admits every lane");
            if *share && author != learner {
                let lanes: Vec<_> = authors[*author as usize].canonical_lanes().map(|(_, lane)| lane.clone()).collect();
                for lane in lanes {
                    let _ = authors[*learner as usize].insert(lane);
                }
            }
        }
        (authors, all)
    }

    proptest! {
        #[test]
        fn the_slot_walk_sends_what_the_id_definition_sends(
            steps in proptest::collection::vec((0u32..4, 0u32..4, any::<bool>()), 1..60),
            floor_at in any::<prop::sample::Index>(),
            use_floor in any::<bool>(),
            head_picks in proptest::collection::vec(any::<prop::sample::Index>(), 0..4),
            bloom_mod in 1u8..5,
            heads_complete in any::<bool>(),
            a_head_not_held in any::<bool>(),
        ) {
            let (_, mut all) = history(&steps);
            let lanes: Vec<(OrderKey, LaneId, Vec<LaneId>)> = all
                .canonical_lanes()
                .map(|(id, lane)| ((lane.lamport, lane.author, id), id, lane.parents.clone()))
                .collect();
            let floor = use_floor.then(|| floor_at.get(&lanes).0);
            let mut heads: Vec<LaneId> = head_picks.iter().map(|pick| pick.get(&lanes).1).collect();
            if a_head_not_held {
                heads.push(LaneId::ZERO);
            }
            let may_hold = |id: &LaneId| id.as_bytes()[0].is_multiple_of(bloom_mod);
            let expected = by_ids(&lanes, floor, &heads, heads_complete, may_hold);
            let walked: Vec<LaneId> = all
                .lanes_unknown_to(floor, &heads, heads_complete, may_hold)
                .into_iter()
                .map(|(_, id, _)| id)
                .collect();
            prop_assert_eq!(walked, expected);
        }

        #[test]
        fn a_peers_complete_heads_held_here_give_exactly_what_it_lacks_whatever_its_filter_says(
            steps in proptest::collection::vec((0u32..4, 0u32..4, any::<bool>()), 1..60),
            peer in 0usize..4,
        ) {
            let (authors, mut all) = history(&steps);
            let heads: Vec<LaneId> = authors[peer].heads().iter().copied().collect();
            let lacked: Vec<LaneId> =
                all.canonical_lanes().map(|(id, _)| id).filter(|id| !authors[peer].holds(id)).collect();
            // A filter that claims every lane: only the heads can tell.
            let sent: Vec<LaneId> =
                all.lanes_unknown_to(None, &heads, true, |_| true).into_iter().map(|(_, id, _)| id).collect();
            prop_assert_eq!(sent, lacked);
        }
    }
}
