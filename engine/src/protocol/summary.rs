//! Summaries: what a node states it holds in a handshake (exact per-author
//! entries, or the compact stable point, heads and Bloom filter), and what
//! a peer's summary reveals (forks, a diverged snapshot chain).

use super::bloom::Bloom;
use super::events::SyncEvent;
use super::session::Syncer;
use super::wire::{CompactSummary, Summary, SummaryEntry, WireStatus};
use crate::bugs::Bugs;
use crate::hash::LaneId;
use crate::lane::NodeId;
use crate::law::Law;
use crate::replica::Replica;
use crate::snapshot::SnapshotError;

/// Which summary a node states in handshakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SummaryMode {
    /// Always the exact per-author summary.
    Exact,
    /// Always heads plus a Bloom filter.
    Compact,
    /// Exact up to this many members, compact above.
    Auto {
        /// Largest membership summarised exactly.
        max_exact_members: usize,
    },
}

impl Default for SummaryMode {
    fn default() -> Self {
        Self::Auto { max_exact_members: 64 }
    }
}
impl Syncer {
    /// The summary this node states, per its mode.
    pub(super) fn summary_of<L: Law>(&self, replica: &mut Replica<L>, session: u64) -> Summary {
        let compact = match self.mode {
            SummaryMode::Exact => false,
            SummaryMode::Compact => true,
            SummaryMode::Auto { max_exact_members } => replica.config().members.len() > max_exact_members,
        };
        if !compact {
            return Summary::Exact(summary(replica, &self.bugs));
        }
        let stable_key = replica.stable_key();
        let above: Vec<LaneId> = replica
            .canonical_lanes()
            .filter(|(id, lane)| Some((lane.lamport, lane.author, *id)) > stable_key)
            .map(|(id, _)| id)
            .collect();
        // The salt varies per session so a false positive does not repeat.
        let mut bloom =
            Bloom::with_capacity(above.len(), self.bloom_bits_per_lane, session ^ 0x5c5_b100_u64.rotate_left(17));
        for id in &above {
            bloom.insert(id);
        }
        Summary::Compact(CompactSummary { stable_key, heads: replica.heads().iter().copied().collect(), bloom })
    }

    /// Compares the peer's summary with what this node holds at the same
    /// seqs; a different tip prefix is a fork. Returns the dots to send as
    /// evidence.
    pub(super) fn detect_forks<L: Law>(
        &mut self,
        peer: NodeId,
        replica: &Replica<L>,
        theirs: &[SummaryEntry],
    ) -> Vec<(NodeId, u64)> {
        let mut forks = Vec::new();
        for entry in theirs {
            if entry.seq == 0 {
                continue;
            }
            let Some(ours) = replica.lane_at(entry.author, entry.seq) else { continue };
            if ours.prefix_u64() != entry.tip {
                self.events.push_back(SyncEvent::ForkSuspected { peer, author: entry.author, seq: entry.seq });
                forks.push((entry.author, entry.seq));
            }
        }
        forks
    }
}

/// This replica's exact summary.
fn summary<L: Law>(replica: &Replica<L>, bugs: &Bugs) -> Vec<SummaryEntry> {
    let me = replica.node();
    replica
        .author_tips()
        .into_iter()
        .map(|(author, (seq, id))| {
            // Planted bug `summary_claims_extra_lane`: this node's own entry
            // states the seq it will author next, one above what it holds.
            let seq = seq + u64::from(author == me && bugs.summary_claims_extra_lane());
            SummaryEntry { author, seq, tip: id.prefix_u64() }
        })
        .collect()
}

/// The handshake's divergence check: where both nodes passed the same
/// snapshot point, the ids must be equal.
pub(super) fn check_snapshot_chain<L: Law>(replica: &Replica<L>, theirs: &WireStatus) -> Result<(), SnapshotError> {
    match replica.snapshots().id_at(theirs.snapshot_index) {
        Some(ours) if ours != theirs.snapshot_id => {
            Err(SnapshotError::Diverged { lane_index: theirs.snapshot_index, ours, theirs: theirs.snapshot_id })
        }
        _ => Ok(()),
    }
}
