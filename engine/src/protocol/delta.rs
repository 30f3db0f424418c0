//! Deltas: what a peer lacks, from its summary. With an exact summary that
//! is every lane above its per-author seqs (and the snapshot first when some
//! were pruned here); with a compact one, the lanes above its stable point
//! its heads and Bloom filter do not account for, plus the need/supply
//! fallback for false positives. Lanes are written in canonical order into
//! one batch, cut at the size limit. A delta that carries a snapshot part
//! which does not complete the peer's transfer carries no lanes (they
//! would only wait for the snapshot) and says `more`.

use super::batch::{BatchWriter, EMPTY_BATCH};
use super::events::SyncEvent;
use super::session::Syncer;
use super::summary::{MAX_SUMMARY_HEADS, StatedIn};
use super::transfer::{OfferCache, part_for};
use super::wire::{CompactSummary, MAX_BATCH_BYTES, SnapshotWant, Summary, SummaryEntry, WireSnapshot};
use crate::bugs::Bugs;
use crate::dag::OrderKey;
use crate::hash::LaneId;
use crate::lane::NodeId;
use crate::law::Law;
use crate::replica::{LaneRef, Replica};
use crate::snapshot::SnapshotError;
use std::collections::{BTreeMap, BTreeSet};

/// Most lane ids one `need` may name.
pub(super) const MAX_NEED: usize = 4096;

impl Syncer {
    /// The lanes a peer with `theirs` (`stated_in` its Hello or Delta)
    /// lacks, by the kind of summary it sent; `our_hello` is the exact
    /// summary this node's Hello stated, when `theirs` answers it (the seqs
    /// a Delta's exact summary does not name, see `unlike`), and
    /// `want` is the snapshot transfer the peer stated.
    pub(super) fn delta_for<L: Law>(
        &mut self,
        (peer, session): (NodeId, u64),
        replica: &mut Replica<L>,
        (theirs, stated_in, our_hello): (&Summary, StatedIn, &[SummaryEntry]),
        want: Option<SnapshotWant>,
    ) -> Delta {
        match theirs {
            Summary::Exact(entries) => {
                let forks = self.detect_forks((peer, session), replica, entries);
                let source = SnapshotSource { offers: &mut self.offers, chunk_bytes: self.chunk_bytes, want };
                let (delta, refused) =
                    build_delta(replica, (entries, our_hello), &forks, source, (&mut self.batch, self.bugs));
                if let Some(error) = refused {
                    self.events.push_back(SyncEvent::Diverged { peer, error });
                }
                delta
            }
            Summary::Compact(compact) => build_delta_compact(replica, compact, stated_in, (&mut self.batch, self.bugs)),
        }
    }
}

/// Where a delta takes this node's snapshot from for a peer behind its
/// prune point, and which part the peer asked for.
pub(super) struct SnapshotSource<'a> {
    /// The latest snapshot's offer, computed once.
    pub(super) offers: &'a mut OfferCache,
    /// Chunk size to offer.
    pub(super) chunk_bytes: u64,
    /// The transfer the peer stated.
    pub(super) want: Option<SnapshotWant>,
}

/// Lanes a compact summary may hide: above the peer's stable point, not
/// ancestors of its heads (with a Delta's, the lanes it carried), and
/// (unless the summary, `stated_in` a Delta, names every head it does not
/// carry and this node holds them all) not in its Bloom filter. A lane
/// whose parent a false positive hid waits at the peer until the parent
/// comes (by the need/supply step, or a later session). In canonical order,
/// cut at the batch limit; `carried` lists the ids of the lanes sent.
pub(super) fn build_delta_compact<L: Law>(
    replica: &mut Replica<L>,
    theirs: &CompactSummary,
    stated_in: StatedIn<'_>,
    (writer, bugs): (&mut BatchWriter, Bugs),
) -> Delta {
    let (heads, heads_complete) = match stated_in {
        StatedIn::Hello => (theirs.heads.clone(), false),
        StatedIn::Delta { carried } => {
            // A Delta names the newest `MAX_SUMMARY_HEADS` heads, and below
            // that every head it does not carry.
            let mut heads = theirs.heads.clone();
            heads.extend_from_slice(carried);
            (heads, theirs.heads.len() < MAX_SUMMARY_HEADS)
        }
    };
    let lanes = replica.lanes_unknown_to(theirs.stable_key, &heads, heads_complete, |id| theirs.bloom.may_contain(id));
    let (batch, count, more) = write_batch(writer, &lanes, bugs);
    // `write_batch` writes a prefix of the lanes.
    let mut carried: Vec<LaneId> = lanes.iter().take(count as usize).map(|(_, id, _)| *id).collect();
    carried.sort_unstable();
    Delta { snapshot: None, lanes: batch, count, more, carried }
}

/// Ids a peer's heads name that this node still lacks, plus parents its
/// pending lanes wait for: what to ask a compact-summary peer for.
pub(super) fn still_missing<L: Law>(replica: &Replica<L>, their_heads: &[LaneId]) -> Vec<LaneId> {
    let mut need: BTreeSet<LaneId> = their_heads.iter().copied().filter(|id| !replica.holds(id)).collect();
    need.extend(replica.missing_parents());
    need.into_iter().take(MAX_NEED).collect()
}

/// The needed lanes and their ancestors above the peer's stable point.
pub(super) fn supply<L: Law>(
    replica: &mut Replica<L>,
    need: &[LaneId],
    theirs: Option<&CompactSummary>,
    writer: &mut BatchWriter,
) -> (Vec<u8>, u64) {
    let floor = theirs.and_then(|summary| summary.stable_key);
    let mut chosen: BTreeSet<LaneId> = BTreeSet::new();
    let mut stack: Vec<LaneId> = need.iter().copied().take(MAX_NEED).collect();
    while let Some(id) = stack.pop() {
        let Some(lane) = replica.lane(&id) else { continue };
        if Some((lane.lamport, lane.author, id)) <= floor || !chosen.insert(id) {
            continue;
        }
        stack.extend(lane.parents.iter().copied());
    }
    let replica = &*replica;
    let mut lanes: Vec<(OrderKey, LaneId, &crate::Lane<L::Op>)> = chosen
        .iter()
        .filter_map(|id| replica.lane(id).map(|lane| ((lane.lamport, lane.author, *id), *id, lane)))
        .collect();
    lanes.sort_unstable_by_key(|entry| entry.0);
    let (batch, count, _) = write_batch(writer, &lanes, Bugs::NONE);
    (batch, count)
}

pub(super) struct Delta {
    /// A part of this node's snapshot, for a peer behind its prune point.
    pub(super) snapshot: Option<WireSnapshot>,
    /// The lanes as one wire batch.
    pub(super) lanes: Vec<u8>,
    /// How many lanes the batch holds.
    pub(super) count: u64,
    /// Lanes or snapshot chunks did not fit: sync again.
    pub(super) more: bool,
    /// The ids of the lanes the batch holds, sorted, for a compact summary
    /// to leave out the heads among them (empty for an exact summary's).
    pub(super) carried: Vec<LaneId>,
}

/// The lanes a peer with summary `theirs` lacks, in canonical order, cut at
/// [`MAX_BATCH_BYTES`]; with a part of the snapshot first when some of them
/// were pruned here (no lanes until the part completes the peer's
/// transfer). For an author `theirs` does not name, the peer holds at
/// least the seq `unnamed` gives (the seqs this node's Hello stated, when
/// `theirs` is a Delta's; nothing otherwise). `forks` adds this node's lane
/// at each forked dot as evidence. Also returns why the snapshot could not
/// be offered, if it could not.
pub(super) fn build_delta<L: Law>(
    replica: &mut Replica<L>,
    (theirs, unnamed): (&[SummaryEntry], &[SummaryEntry]),
    forks: &[(NodeId, u64)],
    source: SnapshotSource<'_>,
    (writer, bugs): (&mut BatchWriter, Bugs),
) -> (Delta, Option<SnapshotError>) {
    let mut their_seq: BTreeMap<NodeId, u64> = unnamed.iter().map(|entry| (entry.author, entry.seq)).collect();
    their_seq.extend(theirs.iter().map(|entry| (entry.author, entry.seq)));
    let held = replica.version_vector();
    // Each author's lanes above the peer's seq, `None` where some were
    // pruned here; without such an author they are the delta's lanes.
    let above: Vec<Option<Vec<LaneRef<'_, L::Op>>>> = held
        .iter()
        .map(|(author, seq)| (*author, *seq, their_seq.get(author).copied().unwrap_or(0)))
        .filter(|(_, seq, after)| after < seq)
        .map(|(author, _, after)| replica.lanes_after(author, after))
        .collect();
    let behind_prune = above.iter().any(Option::is_none);
    if !behind_prune {
        let lanes = above.into_iter().flatten().flatten();
        return (batch_of(replica, lanes, forks, (writer, bugs)), None);
    }
    // Some lanes the peer lacks were pruned here: a part of the snapshot
    // goes first, and the lanes above it once the part completes the
    // peer's transfer.
    let mut floor = their_seq;
    let latest = replica.snapshot_transfer();
    let (offer, offer_bytes) = match source.offers.offer(latest, source.chunk_bytes) {
        Ok(offer) => offer,
        // Lanes above the prune point still go; the peer cannot use
        // them until it gets a snapshot from someone.
        Err(error) => return (lanes_above(replica, (&held, &floor), forks, (writer, bugs)), Some(error)),
    };
    let (part, completes) = part_for(latest, offer, offer_bytes, source.want);
    if !completes {
        let lanes = EMPTY_BATCH.to_vec();
        return (Delta { snapshot: Some(part), lanes, count: 0, more: true, carried: Vec::new() }, None);
    }
    for tip in &latest.header.tips {
        let entry = floor.entry(tip.author).or_insert(0);
        *entry = (*entry).max(tip.seq);
    }
    let delta = lanes_above(replica, (&held, &floor), forks, (writer, bugs));
    (Delta { snapshot: Some(part), ..delta }, None)
}

/// Each author's held lanes above `floor`, and the fork evidence, in
/// canonical order as one batch.
fn lanes_above<L: Law>(
    replica: &Replica<L>,
    (held, floor): (&BTreeMap<NodeId, u64>, &BTreeMap<NodeId, u64>),
    forks: &[(NodeId, u64)],
    (writer, bugs): (&mut BatchWriter, Bugs),
) -> Delta {
    let lanes = held.iter().flat_map(|(author, seq)| {
        let after = floor.get(author).copied().unwrap_or(0);
        let above = if after >= *seq { None } else { replica.lanes_after(*author, after) };
        above.unwrap_or_default()
    });
    batch_of(replica, lanes, forks, (writer, bugs))
}

/// `lanes` (each author's, author by author) and the fork evidence, in
/// canonical order as one batch.
fn batch_of<'a, L: Law>(
    replica: &'a Replica<L>,
    lanes: impl Iterator<Item = LaneRef<'a, L::Op>>,
    forks: &[(NodeId, u64)],
    (writer, bugs): (&mut BatchWriter, Bugs),
) -> Delta {
    let mut keyed: Vec<(OrderKey, LaneId, &crate::Lane<L::Op>)> =
        lanes.map(|(id, lane)| ((lane.lamport, lane.author, id), id, lane)).collect();
    for (author, seq) in forks {
        if let Some(lane) = replica.lane_at(*author, *seq).and_then(|id| replica.lane(&id).map(|lane| (id, lane))) {
            keyed.push(((0, *author, LaneId::ZERO), lane.0, lane.1));
        }
    }
    keyed.sort_unstable_by_key(|entry| entry.0);
    let (lanes, count, more) = write_batch(writer, &keyed, bugs);
    Delta { snapshot: None, lanes, count, more, carried: Vec::new() }
}

/// Writes canonical-order lanes into one batch, cut at [`MAX_BATCH_BYTES`],
/// with `writer` (the syncer's, reused: it is empty between batches);
/// returns the batch, how many lanes it holds, and whether some did not fit.
fn write_batch<O: crate::Op>(
    writer: &mut BatchWriter,
    lanes: &[(OrderKey, LaneId, &crate::Lane<O>)],
    bugs: Bugs,
) -> (Vec<u8>, u64, bool) {
    let lanes = &lanes[..bugs.delta_candidates(lanes.len())];
    let mut take = lanes.len();
    for (index, (_, id, lane)) in lanes.iter().enumerate() {
        if !writer.push_within(*id, lane, MAX_BATCH_BYTES) {
            take = index;
            break;
        }
    }
    debug_assert!(writer.len() <= MAX_BATCH_BYTES, "a batch never exceeds its limit");
    let more = take < lanes.len();
    let count = writer.count();
    (writer.take(), count, more)
}
