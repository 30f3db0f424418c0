//! Snapshot transfer and install: what a peer behind this node's prune
//! point receives, and how a verified snapshot from a peer replaces the
//! held prefix.
//!
//! Invariant: a snapshot is installed only after its id, its digest and its
//! tips and boundary agree with what this node holds; otherwise nothing
//! changes and the error says why.

use super::{Checkpoint, Event, Replica, replay::decode_state};
use crate::dag::OrderKey;
use crate::hash::SnapshotId;
use crate::lane::NodeId;
use crate::law::Law;
use crate::snapshot::{Snapshot, SnapshotError, SnapshotHeader, Tip};
use std::collections::BTreeMap;

impl<L: Law> Replica<L> {
    /// The newest full snapshot: what a peer behind this node's prune point
    /// receives. Its header names the boundary the lanes that follow need.
    pub fn snapshot_transfer(&self) -> &Snapshot {
        self.registry.latest().expect("the genesis snapshot is always committed")
    }

    /// Whether a snapshot with this id and header could be installed, before
    /// its state arrives: `Ok(false)` when it is not newer than this node's
    /// stable point, an error when it diverges from this node's snapshot
    /// chain, does not add up, or contradicts a lane this node holds.
    pub fn check_offer(&mut self, id: SnapshotId, header: &SnapshotHeader) -> Result<bool, SnapshotError> {
        self.materialize();
        if let Some(ours) = self.registry.id_at(header.lane_index)
            && ours != id
        {
            return Err(SnapshotError::Diverged { lane_index: header.lane_index, ours, theirs: id });
        }
        if header.lane_index <= self.stable_index {
            return Ok(false);
        }
        header.check_consistent()?;
        self.check_tips_against_held(header)?;
        let covered: BTreeMap<NodeId, u64> = header.tips.iter().map(|tip| (tip.author, tip.seq)).collect();
        let last = last_key(&header.tips);
        for &idx in &self.order {
            let slot = self.dag.slot(idx);
            let is_covered = covered.get(&slot.author).is_some_and(|seq| slot.seq <= *seq);
            if !is_covered && Some((slot.lamport, slot.author, slot.id)) <= last {
                return Err(SnapshotError::ContradictsHistory { lane_index: header.lane_index, lane: slot.id });
            }
        }
        Ok(true)
    }

    /// Replaces the held prefix with a verified snapshot from a peer (used
    /// when this node is behind the peer's prune point); its header's
    /// boundary names the covered lanes later lanes may name. Lanes this
    /// node holds above the snapshot are kept and replayed on top. Returns
    /// false when the snapshot is not newer than this node's.
    pub fn install_snapshot(&mut self, snapshot: &Snapshot) -> Result<bool, SnapshotError> {
        if !self.check_offer(snapshot.id, &snapshot.header)? {
            return Ok(false);
        }
        let state = if self.config.bugs.unverified_snapshot() {
            decode_state(&self.law, &snapshot.state)?
        } else {
            snapshot.verify(&self.law)?
        };
        // Planted bug `snapshot_drops_boundary`: the boundary is taken for
        // redundant with the frontier, so held lanes that name a covered
        // lane other than a tip wait for it forever.
        let boundary = if self.config.bugs.snapshot_drops_boundary() { &[] } else { &snapshot.header.boundary[..] };
        self.rebase_on(snapshot, boundary, state);
        Ok(true)
    }

    /// Refuses a snapshot whose frontier or boundary names a different lane
    /// (or another Lamport stamp) at an `(author, seq)` this node holds: a
    /// fork, which is evidence to surface, never a reason to drop held lanes.
    pub(super) fn check_tips_against_held(&self, header: &SnapshotHeader) -> Result<(), SnapshotError> {
        for tip in header.tips.iter().chain(&header.boundary) {
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

/// Order key of the last lane of a prefix with these tips: the last lane of
/// a topological order has no child in the prefix, so it is a tip.
pub(super) fn last_key(tips: &[Tip]) -> Option<OrderKey> {
    tips.iter().map(|tip| (tip.lamport, tip.author, tip.id)).max()
}
