//! Summaries: what a node states it holds in a handshake (exact per-author
//! entries, or the compact stable point, heads and Bloom filter), and what
//! a peer's summary reveals (forks, a diverged snapshot chain).

use super::bloom::Bloom;
use super::events::SyncEvent;
use super::session::Syncer;
use super::wire::{CompactSummary, Summary, SummaryEntry};
use crate::bugs::Bugs;
use crate::hash::{LaneId, SnapshotId, tip_tag};
use crate::lane::NodeId;
use crate::law::Law;
use crate::replica::Replica;
use crate::snapshot::SnapshotError;
use std::collections::BTreeMap;

/// Most authors an exact summary names; a node that holds lanes of more
/// states a compact summary instead.
pub const MAX_EXACT_ENTRIES: usize = 1 << 16;
/// Most heads a compact summary names: the newest ones (the Bloom filter
/// still covers the lanes the rest would have accounted for).
pub const MAX_SUMMARY_HEADS: usize = 1 << 12;
/// Most bytes of a compact summary's Bloom filter; above that many lanes
/// the filter fills up and false positives (and supply steps) rise.
pub const MAX_SUMMARY_BLOOM_BYTES: usize = 2 << 20;
/// Most Bloom bits per lane a syncer may be set to.
pub const MAX_BLOOM_BITS_PER_LANE: usize = 64;
/// Most bytes a summary this node states takes on the wire.
pub const MAX_SUMMARY_BYTES: usize = (2 << 20) + (256 << 10);
/// Bytes of one exact entry at most: author and seq as varints, the tip
/// tag's four bytes.
const MAX_ENTRY_BYTES: usize = 5 + 10 + 4;

const _: () = assert!(MAX_SUMMARY_BLOOM_BYTES.is_power_of_two(), "Bloom filters round up to powers of two");
const _: () = assert!(1 + 10 + MAX_EXACT_ENTRIES * MAX_ENTRY_BYTES <= MAX_SUMMARY_BYTES, "the largest exact summary");
const _: () = assert!(
    1 + (1 + 10 + 5 + 32) + (10 + MAX_SUMMARY_HEADS * 32) + (10 + 10 + MAX_SUMMARY_BLOOM_BYTES) <= MAX_SUMMARY_BYTES,
    "the largest compact summary"
);

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

/// Which message a summary goes in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StatedIn<'a> {
    /// The initiator's Hello.
    Hello,
    /// The responder's Delta, which carries the lanes `carried` (sorted):
    /// held by the responder, so the initiator counts them with its heads,
    /// and a compact summary leaves out the heads among them.
    Delta {
        /// The ids of the lanes the Delta carries, sorted.
        carried: &'a [LaneId],
    },
}

impl Syncer {
    /// The summary this node states in `stated_in`, per its mode, within
    /// [`MAX_SUMMARY_BYTES`].
    ///
    /// A compact summary names its heads only in a Delta, where the
    /// initiator asks for the ones it lacks (the need step), and, holding
    /// them all, knows exactly what the responder holds. A responder would
    /// gain nothing from the initiator's: it sends the lanes the Bloom
    /// filter says the initiator lacks, and every ancestor of the
    /// initiator's heads is a lane the filter reports. So a Hello's compact
    /// summary is the stable point and the filter (heads were two thirds of
    /// it in the 100-peer gossip scenario), and a Delta's leaves out the
    /// heads it carries as lanes, unless the list was cut at
    /// [`MAX_SUMMARY_HEADS`] (the initiator reads a shorter list as all of
    /// the heads it does not carry).
    pub(super) fn summary_of<L: Law>(
        &self,
        replica: &mut Replica<L>,
        session: u64,
        stated_in: StatedIn<'_>,
    ) -> Summary {
        let compact = match self.mode {
            SummaryMode::Exact => false,
            SummaryMode::Compact => true,
            SummaryMode::Auto { max_exact_members } => replica.config().members.len() > max_exact_members,
        };
        if !compact && replica.authors_held() <= MAX_EXACT_ENTRIES {
            return Summary::Exact(summary(replica, &self.bugs, session));
        }
        let stable_key = replica.stable_key();
        let above: Vec<LaneId> = replica
            .canonical_lanes()
            .filter(|(id, lane)| Some((lane.lamport, lane.author, *id)) > stable_key)
            .map(|(id, _)| id)
            .collect();
        // The salt varies per session so a false positive does not repeat.
        // The capacity is capped so the filter stays within its limit (the
        // bits per lane are at most `MAX_BLOOM_BITS_PER_LANE`).
        let capacity = above.len().min(MAX_SUMMARY_BLOOM_BYTES * 8 / self.bloom_bits_per_lane.max(1));
        // The session id itself: a short varint on the wire (a constant
        // mixed in made it seven bytes and varied nothing more).
        let salt = session;
        let mut bloom = Bloom::with_capacity(capacity, self.bloom_bits_per_lane, salt);
        for id in &above {
            bloom.insert(id);
        }
        debug_assert!(bloom.bits.len() <= MAX_SUMMARY_BLOOM_BYTES, "a summary's filter stays within its limit");
        let carried = match stated_in {
            StatedIn::Hello => return Summary::Compact(CompactSummary { stable_key, heads: Vec::new(), bloom }),
            StatedIn::Delta { carried } => carried,
        };
        let mut heads: Vec<(u64, LaneId)> =
            replica.heads().iter().map(|id| (replica.lane(id).map_or(0, |lane| lane.lamport), *id)).collect();
        if heads.len() > MAX_SUMMARY_HEADS {
            heads.sort_unstable_by(|a, b| b.cmp(a));
            heads.truncate(MAX_SUMMARY_HEADS);
            heads.sort_unstable_by_key(|(_, id)| *id);
        } else {
            heads.retain(|(_, id)| carried.binary_search(id).is_err());
        }
        let heads = heads.into_iter().map(|(_, id)| id).collect();
        Summary::Compact(CompactSummary { stable_key, heads, bloom })
    }

    /// Compares the peer's summary (stated in `session`) with what this
    /// node holds at the same seqs; a different tip tag is a fork. Returns
    /// the dots to send as evidence.
    pub(super) fn detect_forks<L: Law>(
        &mut self,
        (peer, session): (NodeId, u64),
        replica: &Replica<L>,
        theirs: &[SummaryEntry],
    ) -> Vec<(NodeId, u64)> {
        let mut forks = Vec::new();
        for entry in theirs {
            if entry.seq == 0 {
                continue;
            }
            let Some(ours) = replica.lane_at(entry.author, entry.seq) else { continue };
            if tip_tag(session, &ours) != entry.tip {
                self.events.push_back(SyncEvent::ForkSuspected { peer, author: entry.author, seq: entry.seq });
                forks.push((entry.author, entry.seq));
            }
        }
        forks
    }
}

/// The entries of a Delta's exact summary to an initiator that stated the
/// exact summary `theirs`: `ours` without the entries equal to the
/// initiator's, with seq 0 for an author it stated and this node holds
/// nothing of. The initiator reads an author the Delta does not name as
/// holding what its own Hello stated, so this is the full summary, sent as
/// a difference: between peers that gossip, most authors stand level (most
/// of a full summary in an eight-peer gossip). Sorted by author, at most
/// [`MAX_EXACT_ENTRIES`] (what an honest initiator states).
///
/// With `omit_ahead` (a Delta without a snapshot part), authors this node
/// is ahead on are left out too: the initiator has nothing of theirs to
/// send, it learns this node holds the lanes the Delta carries
/// ([`with_carried`]), and it could not check the tip of a seq it lacks
/// for a fork (this node checked the initiator's tip at the lower seq). A
/// snapshot part would raise what the initiator holds past both, so then
/// every differing entry is named.
pub(super) fn unlike(ours: &[SummaryEntry], theirs: &[SummaryEntry], omit_ahead: bool) -> Vec<SummaryEntry> {
    let stated: BTreeMap<NodeId, SummaryEntry> = theirs.iter().map(|entry| (entry.author, *entry)).collect();
    let ours: BTreeMap<NodeId, SummaryEntry> = ours.iter().map(|entry| (entry.author, *entry)).collect();
    let ahead = |author: &NodeId, mine: &SummaryEntry| mine.seq > stated.get(author).map_or(0, |entry| entry.seq);
    let mut named: BTreeMap<NodeId, SummaryEntry> = ours
        .iter()
        .filter(|(author, mine)| stated.get(author) != Some(*mine) && !(omit_ahead && ahead(author, mine)))
        .map(|(a, mine)| (*a, *mine))
        .collect();
    for author in stated.keys() {
        if named.len() >= MAX_EXACT_ENTRIES {
            break;
        }
        if !ours.contains_key(author) {
            named.insert(*author, SummaryEntry { author: *author, seq: 0, tip: 0 });
        }
    }
    named.into_values().collect()
}

/// What an initiator reads a Delta's exact summary against: the entries
/// its Hello `stated`, each raised to the highest seq of the author's lanes
/// the Delta carried (`carried`: id, author, seq), which the responder
/// holds (and left out of its summary when it was ahead, see [`unlike`]).
/// Raised by every lane carried, admitted here or not (it may be pruned
/// already, or wait for a parent): a responder that lies about one only
/// keeps lanes from itself.
pub(super) fn with_carried(stated: &[SummaryEntry], carried: &[(LaneId, NodeId, u64)]) -> Vec<SummaryEntry> {
    let mut floor: BTreeMap<NodeId, SummaryEntry> = stated.iter().map(|entry| (entry.author, *entry)).collect();
    for (_, author, seq) in carried {
        let entry = floor.entry(*author).or_insert(SummaryEntry { author: *author, seq: 0, tip: 0 });
        entry.seq = entry.seq.max(*seq);
    }
    floor.into_values().collect()
}

/// This replica's exact summary in session `session` (which salts the tips).
fn summary<L: Law>(replica: &Replica<L>, bugs: &Bugs, session: u64) -> Vec<SummaryEntry> {
    let me = replica.node();
    replica
        .author_tips_ascending()
        .map(|(author, (seq, id))| SummaryEntry {
            author,
            seq: bugs.stated_seq(author, me, seq),
            tip: tip_tag(session, &id),
        })
        .collect()
}

/// The handshake's divergence check: where both nodes passed the same
/// snapshot point (the peer's at `lane_index` is `theirs`), the ids must
/// be equal.
pub(super) fn check_snapshot_chain<L: Law>(
    replica: &Replica<L>,
    lane_index: u64,
    theirs: SnapshotId,
) -> Result<(), SnapshotError> {
    match replica.snapshots().id_at(lane_index) {
        Some(ours) if ours != theirs => Err(SnapshotError::Diverged { lane_index, ours, theirs }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::world::{World, WorldOp};
    use crate::{Lane, NodeId, ReplicaConfig};

    #[test]
    fn a_delta_summary_names_what_differs_from_the_hello() {
        let entry = |author, seq, tip| SummaryEntry { author: NodeId(author), seq, tip };
        let ours = [entry(0, 5, 50), entry(1, 3, 30), entry(2, 7, 70), entry(3, 2, 20)];
        let theirs = [entry(0, 5, 50), entry(1, 4, 41), entry(2, 7, 71), entry(3, 1, 10), entry(9, 2, 90)];
        assert_eq!(
            unlike(&ours, &theirs, false),
            [entry(1, 3, 30), entry(2, 7, 70), entry(3, 2, 20), entry(9, 0, 0)],
            "level on 0; behind on 1, forked at 2's seq 7, ahead on 3, nothing of 9"
        );
        assert_eq!(
            unlike(&ours, &theirs, true),
            [entry(1, 3, 30), entry(2, 7, 70), entry(9, 0, 0)],
            "without a snapshot part, the author this node is ahead on is left out"
        );
        assert_eq!(unlike(&ours, &[], false), ours, "an initiator that holds nothing learns all this node holds");
        assert_eq!(unlike(&ours, &[], true), [], "nor anything it is ahead on, when the lanes go with the Delta");
        assert_eq!(unlike(&ours, &ours, false), [], "level everywhere: nothing to name");
    }

    #[test]
    fn the_largest_exact_entry_encodes_to_exactly_max_entry_bytes() {
        let largest = SummaryEntry { author: NodeId(u32::MAX), seq: u64::MAX, tip: u32::MAX };
        assert_eq!(postcard::to_allocvec(&largest).map(|bytes| bytes.len()), Ok(MAX_ENTRY_BYTES));
    }

    #[test]
    fn a_compact_summary_keeps_the_newest_max_summary_heads_sorted_by_id() {
        let authors = MAX_SUMMARY_HEADS as u32 + 1;
        let mut replica = Replica::new(World, ReplicaConfig::new(NodeId(0), (0..authors).map(NodeId)));
        let op = |key| vec![WorldOp::Add { key, delta: 1 }];
        for author in 1..authors {
            replica.insert(Lane::new(NodeId(author), 1, 1, Vec::new(), op(author))).unwrap();
        }
        // One head stamped above the rest: the cap must keep it.
        let first = Lane::new(NodeId(1), 1, 1, Vec::new(), op(1)).id();
        let newest = Lane::new(NodeId(1), 2, 2, vec![first], op(1));
        replica.insert(newest.clone()).unwrap();
        let heads = |replica: &mut Replica<World>| {
            let mut syncer = Syncer::new(NodeId(0));
            syncer.set_summary_mode(SummaryMode::Compact);
            match syncer.summary_of(replica, 1, StatedIn::Delta { carried: &[] }) {
                Summary::Compact(compact) => compact.heads,
                Summary::Exact(_) => panic!("a compact syncer states a compact summary"),
            }
        };
        // Heads: authors 2.. at stamp 1, and author 1's second lane.
        assert_eq!(replica.heads().len(), MAX_SUMMARY_HEADS);
        assert_eq!(heads(&mut replica).len(), MAX_SUMMARY_HEADS, "exactly at the cap, nothing is dropped");
        replica.insert(Lane::new(NodeId(0), 1, 1, Vec::new(), op(0))).unwrap();
        let capped = heads(&mut replica);
        assert_eq!(replica.heads().len(), MAX_SUMMARY_HEADS + 1);
        assert_eq!(capped.len(), MAX_SUMMARY_HEADS, "one head over the cap is dropped");
        assert!(capped.contains(&newest.id()), "the newest head is kept");
        assert!(capped.windows(2).all(|pair| pair[0] < pair[1]), "heads are sorted by id");
    }
}
