//! Causal stability, stable snapshots and pruning.
//!
//! Invariant: the stable point only moves forward, to a prefix every
//! member's latest lane descends from; pruning never passes it.

use super::{Event, Mark, Replica};
use crate::dag::SlotIdx;
use crate::law::Law;
use crate::snapshot::{Snapshot, SnapshotHeader, Tip};

impl<L: Law> Replica<L> {
    // ---- internals: stability, snapshots, pruning ------------------------

    /// Moves the stable snapshot point as far as causal stability allows.
    pub(super) fn advance_stability(&mut self) {
        if self.marks.is_empty() {
            return;
        }
        let stable_end =
            if self.config.bugs.prune_past_stable() { self.lane_index() } else { self.stable_prefix_end() };
        let ready = self.marks.partition_point(|mark| mark.lane_index <= stable_end);
        if ready == 0 {
            return;
        }
        let marks: Vec<Mark> = self.marks.drain(..ready).collect();
        let mut parent = self.registry.newest_point().expect("genesis is always recorded").1;
        let mut position = self.stable_index;
        let mut newest_base = None;
        for mark in marks {
            while position < mark.lane_index {
                let slot = self.dag.slot(self.order[(position - self.prune_index) as usize]);
                let tip = Tip { author: slot.lane.author, seq: slot.lane.seq, lamport: slot.lane.lamport, id: slot.id };
                self.stable_tips.insert(tip.author, tip);
                position += 1;
            }
            let header = SnapshotHeader {
                parent,
                lane_index: mark.lane_index,
                chain_hash: mark.chain,
                state_digest: mark.digest,
                max_lamport: self.stable_tips.values().map(|tip| tip.lamport).max().unwrap_or(0),
                tips: self.stable_tips.values().copied().collect(),
            };
            parent = header.id();
            self.registry.record(mark.lane_index, parent);
            if self.checkpoints.iter().any(|checkpoint| checkpoint.lane_index == mark.lane_index) {
                newest_base = Some(header);
            }
            self.stable_index = mark.lane_index;
            self.dag.set_stable_key(self.key(self.order[(mark.lane_index - self.prune_index - 1) as usize]));
        }
        if let Some(header) = newest_base {
            self.commit_base(header);
        }
    }

    /// 1-based lane index where the causally stable prefix ends: every lane up
    /// to it is an ancestor of (or is) every member's latest held lane. The
    /// DAG keeps those "reached" marks up to date as lanes arrive; this scans
    /// forward from where the last scan stopped.
    pub(super) fn stable_prefix_end(&mut self) -> u64 {
        let mut scan = self.reached_scan.max(self.stable_index);
        while scan < self.lane_index() {
            let idx = self.order[(scan - self.prune_index) as usize];
            if !self.dag.reached_by_all(idx) {
                break;
            }
            scan += 1;
        }
        self.reached_scan = scan;
        scan
    }

    /// Makes the checkpoint at `header.lane_index` the stable base snapshot.
    pub(super) fn commit_base(&mut self, header: SnapshotHeader) {
        let keep_from = self.checkpoints.partition_point(|checkpoint| checkpoint.lane_index < header.lane_index);
        self.checkpoints.drain(..keep_from);
        let base = &self.checkpoints[0];
        assert_eq!(base.lane_index, header.lane_index, "a base snapshot sits on a checkpoint");
        assert_eq!(base.chain, header.chain_hash, "the checkpoint and the mark describe one prefix");
        let snapshot = Snapshot::new(&self.law, header, &base.state);
        let (lane_index, id) = (snapshot.header.lane_index, snapshot.id);
        self.registry.commit(snapshot);
        self.events.push_back(Event::SnapshotCommitted { lane_index, id });
        if self.config.prune {
            self.prune_to_base();
        }
    }

    /// Drops lane bodies at or below the base snapshot (never past it).
    pub(super) fn prune_to_base(&mut self) {
        let base = self.checkpoints[0].lane_index;
        let count = (base - self.prune_index) as usize;
        if count == 0 {
            return;
        }
        let snapshot = self.registry.latest().expect("a base snapshot was just committed");
        assert_eq!(snapshot.header.lane_index, base, "prune only to the committed stable snapshot");
        let pruned: Vec<SlotIdx> = self.order.drain(..count).collect();
        self.dag.prune(&pruned, &snapshot.header.tips);
        self.prune_index = base;
        self.applied -= count;
        self.metrics.lanes_pruned += count as u64;
        self.events.push_back(Event::Pruned { lane_index: base, lanes: count as u64 });
    }
}
