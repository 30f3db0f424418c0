//! Admission: the checks a lane passes on its way into the DAG (shape,
//! membership, duplicates, forks, stamp, chain, stable point).

use super::{Existing, ForkProof, Inserted, LaneDag, MAX_FORK_PROOFS, Slot, SlotIdx};
use crate::error::LaneError;
use crate::hash::LaneId;
use crate::lane::{Dot, Lane, MAX_LAMPORT, Op};
use std::sync::Arc;

impl<O: Op> LaneDag<O> {
    /// Inserts a lane whose id the caller computed from its canonical bytes.
    pub(crate) fn insert(&mut self, id: LaneId, lane: Lane<O>) -> Result<Inserted, LaneError> {
        lane.check_shape().map_err(|shape| LaneError::Shape { id, shape })?;
        // Stability counts members only: a non-member's lane could always
        // arrive inside a prefix some node already holds stable.
        if !self.members.is_empty() && !self.members.contains(lane.author) {
            return Err(LaneError::NotAMember { id, author: lane.author });
        }
        if self.by_id.contains_key(&id) || self.pending.contains_key(&id) {
            return Ok(Inserted::Duplicate);
        }
        if let Some(tip) = self.pruned_refs.get(&id) {
            let frontier = self.pruned_tips.get(&tip.author) == Some(tip);
            if frontier || (tip.author, tip.seq, tip.lamport) == (lane.author, lane.seq, lane.lamport) {
                return Ok(Inserted::Duplicate);
            }
            // A boundary reference (which no snapshot id covers) misnames this
            // lane, so it was forged: the lane, which its id hashes, wins.
            // Its dot no longer names a known lane (no rescan: a hostile
            // sender could make every lane of a batch pay one).
            let dot = Dot { author: tip.author, seq: tip.seq };
            self.pruned_refs.remove(&id);
            if self.pruned_dots.get(&dot) == Some(&id) {
                self.pruned_dots.remove(&dot);
            }
        }
        if let Some(existing) = self.existing_at(lane.dot()) {
            return match existing {
                Existing::Covered => Ok(Inserted::Duplicate),
                Existing::Lane(kept) => Err(self.record_fork(lane.dot(), kept, id, &lane)),
            };
        }
        let missing: Vec<LaneId> = lane.parents.iter().filter(|parent| !self.holds(parent)).copied().collect();
        if !missing.is_empty() {
            return self.park(id, lane, missing);
        }
        let mut admitted = Vec::new();
        self.admit(id, lane)?;
        admitted.push(id);
        self.release(id, &mut admitted);
        Ok(Inserted::Admitted(admitted))
    }

    pub(super) fn existing_at(&self, dot: Dot) -> Option<Existing> {
        let chain = self.chains.get(&dot.author)?;
        if dot.seq > chain.seq_held() {
            return None;
        }
        if dot.seq <= chain.pruned_seq {
            let tip = self.pruned_tips.get(&dot.author).filter(|tip| tip.seq == dot.seq);
            let known = tip.or_else(|| self.pruned_dots.get(&dot).and_then(|id| self.pruned_refs.get(id)));
            return Some(known.map_or(Existing::Covered, |tip| Existing::Lane(tip.id)));
        }
        if self.bugs.fork_deduped_by_dot() {
            // Planted bug: a held dot is taken for the lane arriving (lanes
            // deduplicated by dot, not by id), so a fork is never seen.
            return Some(Existing::Covered);
        }
        let idx = chain.slots[(dot.seq - chain.pruned_seq - 1) as usize];
        Some(Existing::Lane(self.slot(idx).id))
    }

    pub(super) fn record_fork(&mut self, dot: Dot, kept: LaneId, other: LaneId, lane: &Lane<O>) -> LaneError {
        let known = self.forks.iter().any(|proof| proof.other == other);
        if !known {
            self.forks_seen += 1;
            if self.forks.len() < MAX_FORK_PROOFS {
                self.forks.push(ForkProof { dot, kept, other, other_bytes: lane.to_bytes() });
            }
        }
        LaneError::Fork { dot, kept, other }
    }

    /// Validates a lane whose parents are all held and adds it to the DAG.
    pub(super) fn admit(&mut self, id: LaneId, lane: Lane<O>) -> Result<(), LaneError> {
        let parents = self.check_ancestry(id, &lane)?;
        if let Some(stable) = self.stable_key
            && (lane.lamport, lane.author, id) <= stable
        {
            return Err(LaneError::BeforeStablePoint { id, lamport: lane.lamport, stable_max_lamport: stable.0 });
        }
        let idx = self.slots.next_index();
        for parent in &lane.parents {
            self.heads.remove(parent);
        }
        self.heads.insert(id);
        if let Some(journal) = &mut self.journal {
            journal.push(lane.to_bytes());
        }
        self.chains.entry(lane.author).or_default().slots.push_back(idx);
        self.by_id.insert(id, idx);
        let author = lane.author;
        let named_pruned = parents.len() != lane.parents.len();
        let lane = match &self.pool {
            Some(pool) => pool.share(id, lane),
            None => Arc::new(lane),
        };
        let pushed = self.slots.push(Slot {
            id,
            author,
            seq: lane.seq,
            lamport: lane.lamport,
            lane,
            parent_slots: parents.into_boxed_slice(),
            named_pruned,
            reached: Box::default(),
            reached_count: 0,
        });
        debug_assert_eq!(pushed, idx, "the arena hands out the index announced");
        self.fresh.push(idx);
        if self.members.contains(author) {
            let bit = self.reach_bit(author);
            self.mark_reached(idx, bit);
        }
        Ok(())
    }

    /// Checks the Lamport rule and the author-chain rule against held parents
    /// and returns the admitted parents' slots.
    fn check_ancestry(&self, id: LaneId, lane: &Lane<O>) -> Result<Vec<SlotIdx>, LaneError> {
        let mut parent_slots = Vec::with_capacity(lane.parents.len());
        let mut max_lamport = 0;
        let mut own_previous = Vec::new();
        for parent in &lane.parents {
            let (dot, lamport) = if let Some(&idx) = self.by_id.get(parent) {
                parent_slots.push(idx);
                let slot = self.slot(idx);
                (slot.dot(), slot.lamport)
            } else {
                let tip = self.pruned_refs.get(parent).expect("admit is called only when every parent is held");
                (Dot { author: tip.author, seq: tip.seq }, tip.lamport)
            };
            max_lamport = max_lamport.max(lamport);
            if dot.author == lane.author {
                own_previous.push(dot.seq);
            }
        }
        // Checked: a pruned tip's stamp comes from a peer's snapshot.
        let expected = max_lamport
            .checked_add(1)
            .filter(|expected| *expected <= MAX_LAMPORT)
            .ok_or(LaneError::StampOverflow { id, parent_lamport: max_lamport })?;
        if lane.lamport != expected {
            return Err(LaneError::BadLamport { id, lamport: lane.lamport, expected });
        }
        let chain_ok = match lane.seq {
            1 => own_previous.is_empty(),
            seq => own_previous == [seq - 1],
        };
        if !chain_ok {
            return Err(LaneError::BrokenChain { id, dot: lane.dot(), own_parents: own_previous });
        }
        Ok(parent_slots)
    }
}

#[cfg(test)]
mod tests {
    use crate::bugs::Bugs;
    use crate::dag::LaneDag;
    use crate::error::LaneError;
    use crate::hash::LaneId;
    use crate::lane::{Lane, MAX_LAMPORT, NodeId};
    use crate::snapshot::Tip;
    use crate::world::WorldOp;

    /// A DAG whose only history is a pruned tip of member 1 with `lamport`,
    /// put straight into the DAG, past the snapshot checks that bound a
    /// verified tip's stamp: the DAG's own arithmetic must not rely on them.
    fn dag_over_a_tip(lamport: u64) -> (LaneDag<WorldOp>, Tip) {
        let members = [NodeId(0), NodeId(1)].into();
        let mut dag = LaneDag::new(16, false, &members, crate::dag::IdHashKey::new(0), Bugs::NONE);
        let tip = Tip { author: NodeId(1), seq: 1, lamport, id: LaneId([7; 32]) };
        dag.cover(&[tip], &[]);
        (dag, tip)
    }

    #[test]
    fn a_parent_stamp_with_no_stamp_left_above_it_is_a_typed_refusal_not_a_wrap() {
        for parent_lamport in [u64::MAX, MAX_LAMPORT] {
            let (mut dag, tip) = dag_over_a_tip(parent_lamport);
            let child = Lane::new(NodeId(0), 1, MAX_LAMPORT, vec![tip.id], vec![]);
            let id = child.id();
            let error = dag.insert(id, child).unwrap_err();
            assert_eq!(error, LaneError::StampOverflow { id, parent_lamport });
            assert_eq!(dag.held_len(), 0);
        }
    }

    #[test]
    fn a_child_one_stamp_below_the_limit_is_admitted() {
        let (mut dag, tip) = dag_over_a_tip(MAX_LAMPORT - 1);
        let child = Lane::new(NodeId(0), 1, MAX_LAMPORT, vec![tip.id], vec![]);
        assert!(matches!(dag.insert(child.id(), child), Ok(crate::dag::Inserted::Admitted(_))));
    }
}
