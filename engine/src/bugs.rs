//! Planted bugs: deliberate defects the simulation harness must find.
//!
//! Each switch only has an effect when the crate is built with the
//! `planted-bugs` feature (the harness's tests enable it); in any other
//! build every check below is `false` at compile time, so a production build
//! cannot carry a planted bug by configuration.

/// Whether this build carries the planted-bug switches at all.
pub const COMPILED: bool = cfg!(feature = "planted-bugs");

/// Which planted bugs are on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bugs {
    /// Late lanes are applied where they arrive, not in canonical order.
    pub arrival_order_merge: bool,
    /// The whole held order is treated as stable, so snapshots and pruning
    /// pass the real stable point.
    pub prune_past_stable: bool,
    /// Every delta leaves out the last lane the peer lacks.
    pub delta_skips_last: bool,
    /// Snapshots are installed without checking their state digest.
    pub unverified_snapshot: bool,
    /// The world's add-wins set merges as remove-wins: a remove deletes
    /// every tag of the element, concurrent inserts included (a law bug).
    pub remove_wins_set: bool,
    /// Lanes with equal Lamport stamps are ordered by author descending: still
    /// a topological order, but not the canonical one. Only the replica's
    /// order uses it; admission and snapshot boundaries keep the true key.
    pub author_descending_ties: bool,
    /// The chain step hashes `id ‖ previous` instead of `previous ‖ id`.
    pub swapped_chain_step: bool,
    /// Write-ahead broken: the durable replica appends but never syncs, so
    /// lanes are acknowledged and sent before they are durable.
    pub lazy_sync: bool,
    /// Store recovery: after a torn tail is truncated, the last intact
    /// record before it is dropped too, although its checksum verified.
    pub recovery_drops_last_record: bool,
    /// Store recovery: a torn tail (a crash mid-write) is treated as
    /// corruption, and recovery refuses to open the log.
    pub recovery_refuses_torn_tail: bool,
    /// Store recovery: a record that rotted on disk (complete, checksum
    /// wrong) is taken for a torn write, so the node does not rejoin and
    /// authors again at seqs it already used and acknowledged.
    pub rot_taken_for_tear: bool,
    /// Store usage: commit records are padded past the store's record
    /// limit, so a healthy disk refuses every one of them.
    pub oversized_commit_record: bool,
    /// Pending set: when an arriving lane completes the ancestry of several
    /// waiting lanes, only the first is released; the others wait forever.
    pub pending_releases_one: bool,
    /// Fork evidence: a second lane at a held `(author, seq)` is taken for a
    /// duplicate of the held one (dedup by dot, not by id): no proof is kept.
    pub fork_deduped_by_dot: bool,
    /// Stability: a lane counts as causally stable once every member but one
    /// reached it (this node is taken to have reached every lane it holds).
    pub stability_one_member_short: bool,
    /// Materialisation: `Replica::state` answers from the last replay,
    /// without the lanes admitted since (`author_tips` does include them).
    pub stale_read: bool,
    /// Rollback: a late lane rolls back to the checkpoint at or before its
    /// own lane index instead of the one before it, so a checkpoint sitting
    /// exactly there replays the displaced lane twice and skips the late one.
    pub rollback_one_lane_late: bool,
    /// Checkpoint thinning: the stable base checkpoint is thinned like the
    /// others, so after a long unstable stretch a deep rollback finds no
    /// checkpoint at or below its target.
    pub thinning_drops_base: bool,
    /// Exact summary: this node's own entry states one seq more than it
    /// holds (the seq it will author next): a peer never sends it that lane,
    /// and one that holds it sees a different tip there.
    pub summary_claims_extra_lane: bool,
    /// Bloom fallback: the initiator never asks (`need`) for the lanes a
    /// compact summary's false positives hid.
    pub bloom_skips_supply: bool,
    /// Handshake: a responder answers "in sync" when the lane indexes
    /// match, without comparing the hashes.
    pub in_sync_by_lane_index: bool,
    /// Snapshot install: the boundary tips beside a snapshot are dropped, so
    /// held lanes naming a covered lane that is not a tip wait forever.
    pub snapshot_drops_boundary: bool,
    /// Batch back-references: a back-reference is resolved to the lane one
    /// before the one it names (the batch's first lane at index 0).
    pub backref_off_by_one: bool,
    /// Session lifecycle: abandoning a session reports it failed but does
    /// not remove it, so open sessions fill up and new ones are refused.
    pub abandon_keeps_session: bool,
    /// Determinism: session ids come from a process-global counter instead
    /// of the syncer's own, so two runs of one seed in one process differ.
    pub global_session_ids: bool,
    /// An engine assertion that a received batch never carries a lane
    /// already held, which concurrent sessions and retries make false.
    pub panic_on_redundant_lane: bool,
}

impl Bugs {
    /// No bug: the engine as it should be.
    pub const NONE: Self = Self {
        arrival_order_merge: false,
        prune_past_stable: false,
        delta_skips_last: false,
        unverified_snapshot: false,
        remove_wins_set: false,
        author_descending_ties: false,
        swapped_chain_step: false,
        lazy_sync: false,
        recovery_drops_last_record: false,
        recovery_refuses_torn_tail: false,
        rot_taken_for_tear: false,
        oversized_commit_record: false,
        pending_releases_one: false,
        fork_deduped_by_dot: false,
        stability_one_member_short: false,
        stale_read: false,
        rollback_one_lane_late: false,
        thinning_drops_base: false,
        summary_claims_extra_lane: false,
        bloom_skips_supply: false,
        in_sync_by_lane_index: false,
        snapshot_drops_boundary: false,
        backref_off_by_one: false,
        abandon_keeps_session: false,
        global_session_ids: false,
        panic_on_redundant_lane: false,
    };

    pub(crate) fn arrival_order_merge(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.arrival_order_merge
    }

    pub(crate) fn prune_past_stable(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.prune_past_stable
    }

    pub(crate) fn delta_skips_last(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.delta_skips_last
    }

    pub(crate) fn unverified_snapshot(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.unverified_snapshot
    }

    pub(crate) fn remove_wins_set(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.remove_wins_set
    }

    pub(crate) fn author_descending_ties(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.author_descending_ties
    }

    pub(crate) fn swapped_chain_step(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.swapped_chain_step
    }

    pub(crate) fn lazy_sync(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.lazy_sync
    }

    pub(crate) fn recovery_drops_last_record(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.recovery_drops_last_record
    }

    pub(crate) fn recovery_refuses_torn_tail(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.recovery_refuses_torn_tail
    }

    pub(crate) fn rot_taken_for_tear(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.rot_taken_for_tear
    }

    pub(crate) fn oversized_commit_record(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.oversized_commit_record
    }

    pub(crate) fn pending_releases_one(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.pending_releases_one
    }

    pub(crate) fn fork_deduped_by_dot(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.fork_deduped_by_dot
    }

    pub(crate) fn stability_one_member_short(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.stability_one_member_short
    }

    pub(crate) fn stale_read(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.stale_read
    }

    pub(crate) fn rollback_one_lane_late(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.rollback_one_lane_late
    }

    pub(crate) fn thinning_drops_base(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.thinning_drops_base
    }

    pub(crate) fn summary_claims_extra_lane(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.summary_claims_extra_lane
    }

    /// The seq an exact summary states for `author`, holding `seq` (planted
    /// bug `summary_claims_extra_lane`: one more for this node's own entry).
    pub(crate) fn stated_seq(&self, author: crate::NodeId, me: crate::NodeId, seq: u64) -> u64 {
        seq + u64::from(author == me && self.summary_claims_extra_lane())
    }

    /// Whether compaction keeps a pending record of `kind` (planted bug
    /// `oversized_commit_record`: commit records, which the image makes
    /// redundant, are kept).
    pub(crate) fn compaction_keeps(&self, kind: crate::log::RecordKind) -> bool {
        self.oversized_commit_record() && kind == crate::log::RecordKind::Commit
    }

    /// A commit record's payload `encoded` (planted bug
    /// `oversized_commit_record`: padded to a fixed slot sized as the record
    /// limit plus the frame, so the payload alone is past the limit; `vec!`
    /// of zeros maps pages lazily, so the padding costs nothing until the
    /// store refuses it).
    pub(crate) fn commit_payload(&self, encoded: Vec<u8>) -> Vec<u8> {
        if !self.oversized_commit_record() {
            return encoded;
        }
        let mut padded = vec![0; crate::log::MAX_RECORD_BYTES + crate::log::FRAME_BYTES];
        padded[..encoded.len()].copy_from_slice(&encoded);
        padded
    }

    /// The recovered records recovery trusts (planted bug
    /// `recovery_drops_last_record`: after a torn tail, the last intact
    /// record is distrusted as if the tear had reached it).
    pub(crate) fn trusted_records<'a>(
        &self,
        records: &'a [crate::log::Record],
        torn_tail_bytes: u64,
    ) -> &'a [crate::log::Record] {
        if self.recovery_drops_last_record() && torn_tail_bytes > 0 {
            return records.split_last().map_or(records, |(_, intact)| intact);
        }
        records
    }

    /// The author a lane sorts by among equal stamps (planted bug
    /// `author_descending_ties`: authors descending).
    pub(crate) fn tie_author(&self, author: crate::NodeId) -> crate::NodeId {
        if self.author_descending_ties() { crate::NodeId(u32::MAX - author.0) } else { author }
    }

    /// The 1-based lane index a late lane rolls back to, given the lanes
    /// before it (planted bug `rollback_one_lane_late`: one further, so a
    /// checkpoint sitting there already holds the lane it displaced).
    pub(crate) fn rollback_target(&self, before_fresh: u64) -> u64 {
        before_fresh + u64::from(self.rollback_one_lane_late())
    }

    /// Whether a responder answers "in sync" (planted bug
    /// `in_sync_by_lane_index`: equal lane counts are taken for equal
    /// histories, without comparing the hashes).
    pub(crate) fn in_sync(&self, ours: &crate::protocol::HelloStatus, theirs: &crate::protocol::HelloStatus) -> bool {
        if self.in_sync_by_lane_index() { ours.lane_index == theirs.lane_index } else { ours.in_sync_with(theirs) }
    }

    /// How many of a delta's `candidates` lanes it may carry (planted bug
    /// `delta_skips_last`: all but the last).
    pub(crate) fn delta_candidates(&self, candidates: usize) -> usize {
        if self.delta_skips_last() { candidates.saturating_sub(1) } else { candidates }
    }

    pub(crate) fn bloom_skips_supply(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.bloom_skips_supply
    }

    pub(crate) fn in_sync_by_lane_index(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.in_sync_by_lane_index
    }

    pub(crate) fn snapshot_drops_boundary(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.snapshot_drops_boundary
    }

    pub(crate) fn backref_off_by_one(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.backref_off_by_one
    }

    pub(crate) fn abandon_keeps_session(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.abandon_keeps_session
    }

    pub(crate) fn global_session_ids(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.global_session_ids
    }

    pub(crate) fn panic_on_redundant_lane(&self) -> bool {
        cfg!(feature = "planted-bugs") && self.panic_on_redundant_lane
    }
}
