//! Snapshot transfer and install: what a peer behind this node's prune
//! point receives, and how a verified snapshot from a peer replaces the
//! held prefix.
//!
//! Invariant: a snapshot is installed only after its id, its digest and its
//! tips and boundary agree with what this node holds; otherwise nothing
//! changes and the error says why.

use super::{Checkpoint, Event, Replica, replay::decode_state};
use crate::dag::OrderKey;
use crate::hash::LaneId;
use crate::lane::NodeId;
use crate::law::Law;
use crate::snapshot::{Snapshot, SnapshotError, Tip};
use std::collections::BTreeMap;

impl<L: Law> Replica<L> {
    /// The newest full snapshot and its boundary: the covered lanes that
    /// held lanes above it name as parents. A peer behind this node's prune
    /// point needs both to accept the lanes that follow.
    pub fn snapshot_transfer(&self) -> (&Snapshot, Vec<Tip>) {
        let snapshot = self.registry.latest().expect("the genesis snapshot is always committed");
        let last = last_key(&snapshot.header.tips);
        let boundary = self.dag.boundary(|tip| Some((tip.lamport, tip.author, tip.id)) <= last);
        (snapshot, boundary)
    }

    /// Replaces the held prefix with a verified snapshot from a peer (used
    /// when this node is behind the peer's prune point) and the covered lanes
    /// the peer's lanes name (`boundary`, from [`Replica::snapshot_transfer`]).
    /// Lanes this node holds above the snapshot are kept and replayed on top.
    /// Returns false when the snapshot is not newer than this node's.
    pub fn install_snapshot(&mut self, snapshot: &Snapshot, boundary: &[Tip]) -> Result<bool, SnapshotError> {
        self.materialize();
        let header = &snapshot.header;
        if let Some(ours) = self.registry.id_at(header.lane_index)
            && ours != snapshot.id
        {
            return Err(SnapshotError::Diverged { lane_index: header.lane_index, ours, theirs: snapshot.id });
        }
        if header.lane_index <= self.stable_index {
            return Ok(false);
        }
        header.check_consistent()?;
        self.check_tips_against_held(&header.tips, boundary)?;
        let state = if self.config.bugs.unverified_snapshot() {
            decode_state(&self.law, &snapshot.state)?
        } else {
            snapshot.verify(&self.law)?
        };
        let covered: BTreeMap<NodeId, u64> = header.tips.iter().map(|tip| (tip.author, tip.seq)).collect();
        for &idx in &self.order {
            let slot = self.dag.slot(idx);
            let is_covered = covered.get(&slot.lane.author).is_some_and(|seq| slot.lane.seq <= *seq);
            if !is_covered && Some((slot.lane.lamport, slot.lane.author, slot.id)) <= last_key(&header.tips) {
                return Err(SnapshotError::ContradictsHistory { lane_index: header.lane_index, lane: slot.id });
            }
        }
        // Planted bug `snapshot_drops_boundary`: the boundary is taken for
        // redundant with the frontier, so held lanes that name a covered
        // lane other than a tip wait for it forever.
        let boundary = if self.config.bugs.snapshot_drops_boundary() { &[] } else { boundary };
        self.rebase_on(snapshot, boundary, state);
        Ok(true)
    }

    /// Refuses a snapshot whose frontier or boundary names a different lane
    /// (or another Lamport stamp) at an `(author, seq)` this node holds: a
    /// fork, which is evidence to surface, never a reason to drop held lanes.
    pub(super) fn check_tips_against_held(&self, tips: &[Tip], boundary: &[Tip]) -> Result<(), SnapshotError> {
        check_boundary(tips, boundary)?;
        for tip in tips.iter().chain(boundary) {
            let Some(ours) = self.lane_at(tip.author, tip.seq) else { continue };
            if ours != tip.id || self.lamport_of(&ours) != tip.lamport {
                return Err(SnapshotError::ForkedTip { author: tip.author, seq: tip.seq, ours, theirs: tip.id });
            }
        }
        Ok(())
    }

    /// Rebuilds on a verified snapshot: covered lanes go, the rest replay on top.
    pub(super) fn rebase_on(&mut self, snapshot: &Snapshot, boundary: &[Tip], state: L::State) {
        let header = &snapshot.header;
        let remaining = self.dag.cover(&header.tips, boundary);
        if let Some(last) = last_key(&header.tips) {
            self.dag.set_stable_key(last);
        }
        self.prune_index = header.lane_index;
        self.stable_index = header.lane_index;
        self.stable_tips = header.tips.iter().map(|tip| (tip.author, *tip)).collect();
        self.reached_scan = header.lane_index;
        self.order.clear();
        self.applied = 0;
        self.marks.clear();
        self.checkpoints = vec![Checkpoint {
            lane_index: header.lane_index,
            state: state.clone(),
            chain: header.chain_hash,
            conflicts: 0,
        }];
        self.state = state;
        self.chain = header.chain_hash;
        self.conflicts = 0;
        self.digest = Some(header.state_digest);
        self.registry.commit(snapshot.clone());
        self.events.push_back(Event::SnapshotInstalled { lane_index: header.lane_index, id: snapshot.id });
        let _ = self.dag.take_fresh();
        let mut order = remaining;
        order.sort_unstable_by_key(|idx| self.key(*idx));
        self.order = order;
        let _released = self.dag.release_waiting_on_refs();
        let fresh = self.dag.take_fresh();
        if !fresh.is_empty() {
            self.merge_fresh(fresh);
        }
        self.stability_dirty = true;
        self.materialize();
    }
}

/// Boundary tips travel beside a snapshot and no hash covers them, so each
/// must at least be a lane the snapshot covers: an author of the frontier, a
/// seq and a Lamport stamp no higher than that author's tip (equal to the
/// tip itself at its seq), and one entry per id, the frontier's included.
pub(super) fn check_boundary(tips: &[Tip], boundary: &[Tip]) -> Result<(), SnapshotError> {
    let frontier: BTreeMap<NodeId, &Tip> = tips.iter().map(|tip| (tip.author, tip)).collect();
    let mut seen: BTreeMap<LaneId, &Tip> = tips.iter().map(|tip| (tip.id, tip)).collect();
    for tip in boundary {
        let covered = frontier.get(&tip.author).is_some_and(|front| {
            let same = front.id == tip.id || front.seq == tip.seq;
            if same { *front == tip } else { tip.seq < front.seq && tip.lamport < front.lamport && tip.seq > 0 }
        });
        let unique = seen.insert(tip.id, tip).is_none_or(|other| other == tip);
        if !covered || !unique {
            return Err(SnapshotError::BadBoundary { author: tip.author, seq: tip.seq, id: tip.id });
        }
    }
    Ok(())
}

/// Order key of the last lane of a prefix with these tips: the last lane of
/// a topological order has no child in the prefix, so it is a tip.
pub(super) fn last_key(tips: &[Tip]) -> Option<OrderKey> {
    tips.iter().map(|tip| (tip.lamport, tip.author, tip.id)).max()
}
