//! Receiving: what a message brings, its snapshot part (assembled per
//! peer into a transfer, installed when the whole state has arrived and
//! verifies) and then its lanes, and the transfer a node states in its
//! handshakes.
//!
//! Invariant: a receiver holds at most one partial transfer per peer and
//! [`MAX_SNAPSHOT_TRANSFERS`] in all, each at most
//! [`MAX_SNAPSHOT_STATE_BYTES`](crate::snapshot::MAX_SNAPSHOT_STATE_BYTES)
//! of verified chunks; a chunk that does not match its offer is never
//! stored; an offer other than the one under way from a peer replaces it.

use super::events::{SessionMetrics, SyncEvent};
use super::session::Syncer;
use super::transfer::{MAX_SNAPSHOT_TRANSFERS, SnapshotOffer};
use super::wire::{SnapshotWant, WireError, WireSnapshot};
use crate::dag::Inserted;
use crate::hash::{LaneId, SnapshotId};
use crate::lane::NodeId;
use crate::law::Law;
use crate::replica::Replica;
use crate::snapshot::{Snapshot, SnapshotError};
use std::collections::BTreeMap;

impl Syncer {
    /// The snapshot transfer from `peer` to state in a handshake.
    pub(super) fn receiving<L: Law>(&mut self, peer: NodeId, replica: &Replica<L>) -> Option<SnapshotWant> {
        let stable_index = replica.snapshots().newest_point().map_or(0, |(index, _)| index);
        self.transfers.want(peer, stable_index)
    }

    /// Takes what a message brought: its snapshot part (installed when it
    /// completes a transfer), then its lanes, whose ids and dots go to
    /// `carried` when asked for (lanes the peer holds, whether or not this
    /// node admits them). Returns whether a snapshot transfer
    /// from `peer` is still under way (the session says `more`).
    pub(super) fn apply<L: Law>(
        &mut self,
        peer: NodeId,
        (snapshot, batch): (Option<WireSnapshot>, &[u8]),
        replica: &mut Replica<L>,
        metrics: &mut SessionMetrics,
        carried: Option<&mut Vec<(LaneId, NodeId, u64)>>,
    ) -> bool {
        if let Some(part) = snapshot {
            metrics.snapshot_chunks_received += 1;
            let installed = match self.transfers.receive(peer, part, replica) {
                Ok(Arrival::Complete(snapshot)) => replica.install_snapshot(&snapshot),
                Ok(Arrival::Partial | Arrival::Ignored) => Ok(false),
                Err(error) => Err(error),
            };
            match installed {
                Ok(true) => metrics.snapshots_installed += 1,
                Ok(false) => {}
                Err(error) => self.events.push_back(SyncEvent::Diverged { peer, error }),
            }
        }
        let assembling = self.transfers.in_progress(peer);
        let lanes = match super::batch::decode_batch_lanes::<L::Op>(batch, &self.bugs) {
            Ok(lanes) => lanes,
            Err(error) => {
                let error = WireError::Malformed { reason: format!("lane batch: {error}") };
                self.events.push_back(SyncEvent::BadMessage { peer, error });
                return assembling;
            }
        };
        if let Some(carried) = carried {
            carried.extend(lanes.iter().map(|(id, lane, _)| (*id, lane.author, lane.seq)));
        }
        let (mut canonical_bytes, mut lacked_bytes) = (0_u64, 0_u64);
        for (id, lane, canonical_len) in lanes {
            metrics.lanes_received += 1;
            canonical_bytes += canonical_len as u64;
            match replica.insert_with_known_id(id, lane) {
                Ok(Inserted::Admitted(_) | Inserted::Pending) => {
                    metrics.lanes_missing += 1;
                    metrics.bytes_missing += canonical_len as u64;
                    lacked_bytes += canonical_len as u64;
                }
                Ok(Inserted::Duplicate) => {
                    // Planted bug `panic_on_redundant_lane`: an assertion that a
                    // peer only sends lanes this node lacks, which concurrent
                    // sessions and retries after a lost reply make false.
                    assert!(!self.bugs.panic_on_redundant_lane(), "a delta repeated lane {id}, which this node holds");
                    metrics.lanes_redundant += 1;
                }
                Err(error) => {
                    metrics.lanes_rejected += 1;
                    self.events.push_back(SyncEvent::LaneRejected { peer, error });
                }
            }
        }
        if canonical_bytes > 0 {
            let batch_bytes = super::wire::lane_batch_bytes(batch);
            metrics.bytes_received_lanes += batch_bytes;
            metrics.bytes_received_lanes_needed += needed_share(batch_bytes, lacked_bytes, canonical_bytes);
        }
        assembling
    }

    /// The transfer from `peer` under way, as `(snapshot, chunks missing,
    /// chunks in all)` (a bundle reports one it could not finish).
    pub(super) fn transfer_progress(&self, peer: NodeId) -> Option<(crate::SnapshotId, u64, u64)> {
        self.transfers.progress(peer)
    }
}

/// The share of a batch's `batch_bytes` that carried lanes this side
/// lacked: weighted by canonical bytes, since a batch's encoding does not
/// attribute its bytes to single lanes. Rounded down, so it never exceeds
/// the batch.
fn needed_share(batch_bytes: u64, lacked_bytes: u64, canonical_bytes: u64) -> u64 {
    debug_assert!(lacked_bytes <= canonical_bytes, "the lacked lanes are some of the batch's");
    let share = u128::from(batch_bytes) * u128::from(lacked_bytes) / u128::from(canonical_bytes.max(1));
    // At most `batch_bytes`, since `lacked_bytes <= canonical_bytes`.
    u64::try_from(share).unwrap_or(batch_bytes)
}

/// What a received part did.
#[derive(Debug)]
pub(super) enum Arrival {
    /// Nothing: a chunk of a snapshot not being assembled from this peer (a
    /// stale or another snapshot), one already held, or a snapshot not newer
    /// than this node's stable point.
    Ignored,
    /// The chunk was stored; others are missing.
    Partial,
    /// The last chunk arrived: the snapshot, every chunk verified.
    Complete(Box<Snapshot>),
}

/// A snapshot being assembled from one peer.
#[derive(Clone, Debug)]
struct Transfer {
    offer: SnapshotOffer,
    chunks: Vec<Option<Vec<u8>>>,
    missing: u64,
    /// The transfers' clock when a chunk last arrived.
    touched: u64,
}

impl Transfer {
    fn new(offer: SnapshotOffer, touched: u64) -> Self {
        let count = offer.chunk_count();
        // `verify` bounded the count by `MAX_CHUNKS`.
        let chunks = vec![None; count as usize];
        Self { offer, chunks, missing: count, touched }
    }

    fn first_missing(&self) -> u32 {
        let index = self.chunks.iter().position(Option::is_none).unwrap_or(self.chunks.len());
        // At most `MAX_CHUNKS` chunks, which fits a u32 (asserted above).
        u32::try_from(index).unwrap_or(u32::MAX)
    }

    fn assemble(self) -> Snapshot {
        let mut state = Vec::with_capacity(self.offer.state_len as usize);
        for chunk in self.chunks.into_iter().flatten() {
            state.extend_from_slice(&chunk);
        }
        Snapshot { id: self.offer.id, header: self.offer.header, state }
    }
}

/// The snapshot transfers a node receives, one per peer at most.
#[derive(Clone, Debug, Default)]
pub(super) struct Transfers {
    by_peer: BTreeMap<NodeId, Transfer>,
    /// Counts stored chunks, to find the transfer that progressed least recently.
    clock: u64,
}

impl Transfers {
    /// What to state to `peer`: the transfer from it that is still useful
    /// (newer than `stable_index`); outdated ones are dropped.
    pub(super) fn want(&mut self, peer: NodeId, stable_index: u64) -> Option<SnapshotWant> {
        let transfer = self.by_peer.get(&peer)?;
        if transfer.offer.header.lane_index <= stable_index {
            self.by_peer.remove(&peer);
            return None;
        }
        let offer = &transfer.offer;
        let chunk = transfer.first_missing();
        Some(SnapshotWant { id: offer.id, state_len: offer.state_len, chunk_bytes: offer.chunk_bytes, chunk })
    }

    /// Whether a transfer from `peer` is under way.
    pub(super) fn in_progress(&self, peer: NodeId) -> bool {
        self.by_peer.contains_key(&peer)
    }

    /// The chunks missing from `peer`'s transfer and how many it has in
    /// all, with its snapshot id.
    pub(super) fn progress(&self, peer: NodeId) -> Option<(SnapshotId, u64, u64)> {
        self.by_peer.get(&peer).map(|t| (t.offer.id, t.missing, t.chunks.len() as u64))
    }

    /// Takes one part from `peer`: starts a transfer on an offer that is
    /// valid and newer than what `replica` holds, and stores a chunk that
    /// matches the transfer's offer. A chunk-only part names its snapshot by
    /// id; the sender sends one only for the offer the receiver stated.
    pub(super) fn receive<L: Law>(
        &mut self,
        peer: NodeId,
        part: WireSnapshot,
        replica: &mut Replica<L>,
    ) -> Result<Arrival, SnapshotError> {
        if let Some(bytes) = &part.offer
            && !self.start(peer, part.id, bytes, replica)?
        {
            return Ok(Arrival::Ignored);
        }
        let Some(transfer) = self.by_peer.get_mut(&peer).filter(|transfer| transfer.offer.id == part.id) else {
            return Ok(Arrival::Ignored);
        };
        let index = u64::from(part.chunk_index);
        transfer.offer.check_chunk(index, &part.chunk)?;
        // `check_chunk` put the index below the chunk count.
        let slot = &mut transfer.chunks[part.chunk_index as usize];
        if slot.is_some() {
            return Ok(Arrival::Ignored);
        }
        *slot = Some(part.chunk);
        transfer.missing -= 1;
        self.clock += 1;
        transfer.touched = self.clock;
        if transfer.missing > 0 {
            return Ok(Arrival::Partial);
        }
        // Just found under this key.
        let transfer = self.by_peer.remove(&peer).expect("the transfer was just updated");
        Ok(Arrival::Complete(Box::new(transfer.assemble())))
    }

    /// Starts (or keeps) the transfer `offer` describes; false when it is
    /// not worth assembling (not newer than this node's stable point). An
    /// offer other than the one under way from this peer replaces it,
    /// whatever its age: the peer offers what it holds now, and a stale or
    /// forged offer kept instead could wedge the transfer.
    fn start<L: Law>(
        &mut self,
        peer: NodeId,
        id: SnapshotId,
        bytes: &[u8],
        replica: &mut Replica<L>,
    ) -> Result<bool, SnapshotError> {
        let offer = SnapshotOffer::from_bytes(bytes)?;
        if offer.id != id {
            return Err(SnapshotError::BadOffer { id, rule: "the offer names another snapshot than its part" });
        }
        let same = |transfer: &Transfer| {
            let current = &transfer.offer;
            (current.id, current.state_len, current.chunk_bytes) == (offer.id, offer.state_len, offer.chunk_bytes)
        };
        if self.by_peer.get(&peer).is_some_and(same) {
            return Ok(true);
        }
        offer.verify()?;
        if !replica.check_offer(offer.id, &offer.header)? {
            return Ok(false);
        }
        if !self.by_peer.contains_key(&peer) && self.by_peer.len() >= MAX_SNAPSHOT_TRANSFERS {
            let stalest = self.by_peer.iter().min_by_key(|(_, transfer)| transfer.touched).map(|(peer, _)| *peer);
            if let Some(stalest) = stalest {
                self.by_peer.remove(&stalest);
            }
        }
        self.clock += 1;
        self.by_peer.insert(peer, Transfer::new(offer, self.clock));
        Ok(true)
    }
}
