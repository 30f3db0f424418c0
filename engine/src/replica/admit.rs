//! Admission: lanes in (from peers, logs or this node's own writes), the
//! rejoin gate on authoring, and materialisation on demand.
//!
//! Invariant: a lane is admitted only through the DAG's checks (id, chain,
//! stamp, ancestry), and every refusal or fork it finds becomes an event.

use super::{Event, Replica};
use crate::dag::Inserted;
use crate::error::LaneError;
use crate::hash::{self, LaneId};
use crate::lane::{Lane, MAX_PARENTS, NodeId};
use crate::law::Law;

impl<L: Law> Replica<L> {
    // ---- inputs --------------------------------------------------------

    /// Inserts a lane from a peer or a log. Idempotent; missing ancestry
    /// parks it; a bad lane is refused and changes nothing.
    pub fn insert(&mut self, lane: Lane<L::Op>) -> Result<Inserted, LaneError> {
        self.scratch.clear();
        lane.encode(&mut self.scratch);
        let id = hash::lane_id(&self.scratch);
        self.insert_with_id(id, lane)
    }

    /// Decodes and inserts canonical lane bytes.
    pub fn insert_bytes(&mut self, bytes: &[u8]) -> Result<Inserted, LaneError> {
        let (id, lane) = Lane::decode(bytes)?;
        self.insert_with_id(id, lane)
    }

    /// Inserts canonical lane bytes that arrived with a claimed id.
    pub fn insert_claimed(&mut self, claimed: LaneId, bytes: &[u8]) -> Result<Inserted, LaneError> {
        let (actual, lane) = Lane::decode(bytes)?;
        if actual != claimed {
            return Err(LaneError::IdMismatch { claimed, actual });
        }
        self.insert_with_id(actual, lane)
    }

    /// Inserts a lane whose id the caller computed from its canonical bytes.
    pub(crate) fn insert_with_known_id(&mut self, id: LaneId, lane: Lane<L::Op>) -> Result<Inserted, LaneError> {
        self.insert_with_id(id, lane)
    }

    /// Builds this node's next lane over its current heads without admitting
    /// it and without checking the lane limits: use [`Self::try_prepare_lane`]
    /// for a lane that will be logged. Tests use this one to forge lanes.
    pub fn prepare_lane(&self, ops: Vec<L::Op>) -> Lane<L::Op> {
        let me = self.config.node;
        let own_tip = self.dag.author_tip(me);
        // Saturating, never wrapping: a seq or stamp past its limit makes a
        // lane that `check_shape` refuses (see `try_prepare_lane`).
        let seq = own_tip.map_or(1, |(seq, _, _)| seq.saturating_add(1));
        let mut parents: Vec<LaneId> = Vec::with_capacity(self.dag.heads().len() + 1);
        if let Some((_, id, _)) = own_tip {
            parents.push(id);
        }
        // Newest heads first, so a capped parent list keeps the freshest ones;
        // the rest stay heads and are merged by a later lane.
        let mut others: Vec<(u64, LaneId)> = self
            .dag
            .heads()
            .iter()
            .filter(|id| Some(**id) != own_tip.map(|(_, id, _)| id))
            .map(|id| (self.lamport_of(id), *id))
            .collect();
        others.sort_unstable_by(|a, b| b.cmp(a));
        parents.extend(others.into_iter().take(MAX_PARENTS - parents.len()).map(|(_, id)| id));
        let lamport = parents.iter().map(|id| self.lamport_of(id)).max().unwrap_or(0).saturating_add(1);
        let lamport = lamport.max(self.stable_max_lamport().saturating_add(1));
        Lane::new(me, seq, lamport, parents, ops)
    }

    /// Builds this node's next lane over its current heads without admitting
    /// it: the caller makes it durable first, then inserts it. Ops that would
    /// make a lane over a limit (too many ops, more than
    /// [`crate::lane::MAX_LANE_BYTES`]) are refused here, before anything is
    /// logged, since admission would refuse the lane, and recovery its record.
    pub fn try_prepare_lane(&self, ops: Vec<L::Op>) -> Result<Lane<L::Op>, LaneError> {
        let lane = self.prepare_lane(ops);
        lane.check_shape().map_err(|shape| LaneError::Shape { id: lane.id(), shape })?;
        Ok(lane)
    }

    /// Authors and admits this node's next lane (no durability: see
    /// `DurableReplica` for write-ahead).
    pub fn create_lane(&mut self, ops: Vec<L::Op>) -> Result<(LaneId, Lane<L::Op>), LaneError> {
        self.check_may_author()?;
        let lane = self.try_prepare_lane(ops)?;
        let id = lane.id();
        self.insert_with_id(id, lane.clone())?;
        Ok((id, lane))
    }

    /// Refuses to author while rejoining (see [`super::ReplicaConfig::rejoining`]).
    pub fn check_may_author(&self) -> Result<(), LaneError> {
        match &self.rejoin_peers {
            Some(peers) => Err(LaneError::Rejoining { synced: peers.len(), needed: self.rejoin_quorum() }),
            None => Ok(()),
        }
    }

    /// Whether this replaced node is still learning its history back: it
    /// may not author lanes (and should not serve reads) until it has synced
    /// with every other member. A lane it acknowledged before its disk was
    /// lost, and that no peer received, is gone; one any peer holds comes
    /// back before it authors, so its seqs are never reused. (A majority is
    /// not enough: a lane only one peer received may sit outside it, and the
    /// node would author that lane's seq again, forking its own chain.)
    pub fn is_rejoining(&self) -> bool {
        self.rejoin_peers.is_some()
    }

    /// A sync session with `peer` brought everything `peer` holds (the
    /// syncer calls this). It counts towards the rejoin only if `peer` is
    /// another member and none of this node's own lanes wait for ancestry
    /// (their seqs would look free).
    pub fn synced_with(&mut self, peer: NodeId) {
        let quorum = self.rejoin_quorum();
        let member = peer != self.config.node && self.config.members.contains(peer);
        if !member || self.dag.pending_by(self.config.node) {
            return;
        }
        if let Some(peers) = &mut self.rejoin_peers {
            peers.insert(peer);
            if peers.len() >= quorum {
                self.rejoin_peers = None;
            }
        }
    }

    /// Every other member: any one of them may hold a lane this node
    /// acknowledged and no one else received.
    pub(super) fn rejoin_quorum(&self) -> usize {
        self.config.members.len() - usize::from(self.config.members.contains(self.config.node))
    }

    /// Orders, replays and checks stability now (getters do it on demand).
    pub fn materialize(&mut self) {
        let fresh = self.dag.take_fresh();
        if !fresh.is_empty() {
            self.merge_fresh(fresh);
        }
        if self.applied < self.order.len() {
            self.replay();
        }
        if self.stability_dirty {
            self.stability_dirty = false;
            self.advance_stability();
        }
    }

    pub(super) fn insert_with_id(&mut self, id: LaneId, lane: Lane<L::Op>) -> Result<Inserted, LaneError> {
        let outcome = self.dag.insert(id, lane);
        match &outcome {
            Ok(Inserted::Pending) => self.metrics.lanes_pended += 1,
            // The first admitted lane is the one inserted; the rest waited for it.
            Ok(Inserted::Admitted(ids)) => self.metrics.lanes_released += ids.len().saturating_sub(1) as u64,
            _ => {}
        }
        for (id, error) in self.dag.take_rejected() {
            // A released lane refused as a fork is fork evidence too.
            let proof = match &error {
                LaneError::Fork { .. } => self.dag.forks().iter().find(|proof| proof.other == id).cloned(),
                _ => None,
            };
            self.events.push_back(match proof {
                Some(proof) => Event::Fork(proof),
                None => Event::Rejected { id, error },
            });
        }
        if let Err(LaneError::Fork { .. }) = &outcome
            && let Some(proof) = self.dag.forks().last()
            && proof.other == id
        {
            self.events.push_back(Event::Fork(proof.clone()));
        }
        outcome
    }

    pub(super) fn lamport_of(&self, id: &LaneId) -> u64 {
        match self.dag.get(id) {
            Some(slot) => slot.lamport,
            None => self.dag.pruned_ref(id).map_or(0, |tip| tip.lamport),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::error::LaneError;
    use crate::hash::LaneId;
    use crate::lane::{LaneShapeError, MAX_LAMPORT, MAX_SEQ, NodeId};
    use crate::snapshot::Tip;
    use crate::world::{World, WorldOp};
    use crate::{Replica, ReplicaConfig};

    /// A replica whose own chain ends at a pruned tip with `seq` and
    /// `lamport`, put straight into its DAG (past the snapshot checks).
    fn replica_over_own_tip(seq: u64, lamport: u64) -> Replica<World> {
        let mut replica = Replica::new(World, ReplicaConfig::new(NodeId(0), [NodeId(0), NodeId(1)]));
        replica.dag.cover(&[Tip { author: NodeId(0), seq, lamport, id: LaneId([3; 32]) }], &[]);
        replica
    }

    #[test]
    fn authoring_over_an_own_tip_at_the_limits_is_a_typed_error_never_a_wrapped_seq_or_stamp() {
        let cases = [
            (u64::MAX, 5, LaneShapeError::SeqTooLarge { seq: u64::MAX }),
            (MAX_SEQ, MAX_SEQ, LaneShapeError::SeqTooLarge { seq: MAX_SEQ + 1 }),
            (5, u64::MAX, LaneShapeError::LamportTooLarge { lamport: u64::MAX }),
            (5, MAX_LAMPORT, LaneShapeError::LamportTooLarge { lamport: MAX_LAMPORT + 1 }),
        ];
        for (seq, lamport, expected) in cases {
            let mut replica = replica_over_own_tip(seq, lamport);
            let ops = vec![WorldOp::Add { key: 1, delta: 1 }];
            let error = replica.try_prepare_lane(ops.clone()).unwrap_err();
            assert!(matches!(&error, LaneError::Shape { shape, .. } if *shape == expected), "{error}");
            let error = replica.create_lane(ops).unwrap_err();
            assert!(matches!(&error, LaneError::Shape { shape, .. } if *shape == expected), "{error}");
            assert_eq!(replica.held_lanes(), 0);
        }
    }
}
