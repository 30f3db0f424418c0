//! Causal stability, stable snapshots and pruning.
//!
//! Invariant: the stable point only moves forward, to a prefix every
//! member's latest lane descends from; pruning never passes it. A stable
//! snapshot's header names the prefix's boundary as every honest node that
//! reaches the same prefix computes it.

use super::{Event, Mark, Replica};
use crate::dag::{OrderKey, SlotIdx};
use crate::lane::NodeId;
use crate::law::Law;
use crate::snapshot::{Snapshot, SnapshotHeader, Tip};
use std::collections::BTreeMap;

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
        let mut boundaries = self.boundaries(&marks).into_iter();
        let mut parent = self.registry.newest_point().expect("genesis is always recorded").1;
        let mut position = self.stable_index;
        let mut newest_base = None;
        for mark in marks {
            while position < mark.lane_index {
                let slot = self.dag.slot(self.order[(position - self.prune_index) as usize]);
                let tip = slot.tip();
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
                boundary: boundaries.next().expect("one boundary per mark"),
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

    /// The boundary of each mark's prefix `P`: the lanes of `P` that are not
    /// its per-author tips but that held lanes outside `P` name as parents.
    ///
    /// Why every honest node finds the same set: when `P` is stable here,
    /// each member's latest held lane descends from all of `P`. A lane that
    /// names a non-tip `p` of `P` was written while `p` was a head at its
    /// author, so before the author held `p`'s successor, hence before the
    /// author's latest lane here: it is an ancestor of a held lane, and held.
    ///
    /// One scan over the lanes above the first mark: the lane `x` naming `p`
    /// puts `p` in the boundary of each mark whose prefix holds `p`'s
    /// successor in its author's chain (so `p` is not a tip there) but not
    /// `x`. Lanes inside the first prefix are inside every prefix.
    fn boundaries(&self, marks: &[Mark]) -> Vec<Vec<Tip>> {
        let last_keys: Vec<OrderKey> =
            marks.iter().map(|mark| self.key(self.order[(mark.lane_index - self.prune_index - 1) as usize])).collect();
        let mut sets: Vec<BTreeMap<(NodeId, u64), Tip>> = vec![BTreeMap::new(); marks.len()];
        let Some(first) = marks.first() else { return Vec::new() };
        // The marks whose prefix holds a key: those ending at or after it.
        let holding = |key: OrderKey| last_keys.partition_point(|last| *last < key);
        // The marks whose prefix leaves the current lane out; the lanes come
        // in canonical order, so it only grows.
        let mut end = 0;
        let start = (first.lane_index - self.prune_index) as usize;
        for &idx in self.order.iter().skip(start) {
            let child = self.dag.slot(idx);
            let child_key = self.key_of(child);
            while end < last_keys.len() && last_keys[end] < child_key {
                end += 1;
            }
            // The walk starts past the first prefix, so `end` is at least 1.
            let last_mark_below = last_keys[end - 1];
            let mut consider = |tip: Tip, key: Option<OrderKey>| {
                // A shortcut: the chain rule makes a lane's own-author parent
                // its predecessor, whose successor is the lane itself; and
                // with no mark between the parent and this lane (most parents
                // are a few lanes back) there is nothing to add.
                if tip.author == child.author || key.is_some_and(|key| key > last_mark_below) {
                    return;
                }
                // A pruned parent is inside every prefix.
                let from = key.map_or(0, holding);
                let start = match self.dag.chain_after(tip.author, tip.seq).map(|mut after| after.next()) {
                    // The successor was pruned: it is inside every prefix.
                    None => from,
                    Some(Some(successor)) => holding(self.key(successor)).max(from),
                    // No successor is held: `p` is its author's tip in every prefix.
                    Some(None) => return,
                };
                for set in sets.iter_mut().take(end).skip(start) {
                    set.insert((tip.author, tip.seq), tip);
                }
            };
            // Admitted parents by slot; when one was pruned, each by id.
            let mut pruned_parent = child.named_pruned;
            for &parent in &child.parent_slots {
                if pruned_parent {
                    break;
                }
                match self.dag.try_slot(parent) {
                    Some(slot) => consider(slot.tip(), Some(self.key_of(slot))),
                    None => pruned_parent = true,
                }
            }
            if pruned_parent {
                for parent in &child.lane.parents {
                    match (self.dag.get(parent), self.dag.pruned_ref(parent)) {
                        (Some(slot), _) => consider(slot.tip(), Some(self.key_of(slot))),
                        (None, Some(tip)) => consider(*tip, None),
                        (None, None) => {}
                    }
                }
            }
        }
        sets.into_iter().map(|set| set.into_values().collect()).collect()
    }

    /// 1-based lane index where the causally stable prefix ends: every lane up
    /// to it is an ancestor of (or is) every member's latest held lane. The
    /// DAG keeps those "reached" marks up to date as lanes arrive; this scans
    /// the order (applied or not) forward from where the last scan stopped.
    pub(super) fn stable_prefix_end(&mut self) -> u64 {
        let mut scan = self.reached_scan.max(self.stable_index);
        let end = self.prune_index + self.order.len() as u64;
        while scan < end {
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
