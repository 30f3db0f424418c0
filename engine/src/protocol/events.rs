//! What the [`Syncer`](super::Syncer) reports: which side a node was, what
//! an open session waits for, how sessions end, their counters, and the
//! events a driver drains with `poll_event`.

use super::wire::WireError;
use crate::error::LaneError;
use crate::lane::NodeId;
use crate::snapshot::SnapshotError;

/// Which side of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Sent the Hello.
    Initiator,
    /// Answered it.
    Responder,
}

/// What an open session waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The initiator waits for `InSync` or `Delta`.
    Reply,
    /// The responder waits for `Lanes`.
    Lanes,
    /// The initiator asked for lanes a compact summary hid and waits for `Supply`.
    Supply,
}

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Hashes matched at the handshake.
    InSync,
    /// Lanes were exchanged; `more` means a batch was cut at the size limit
    /// or a snapshot transfer is under way.
    Synced {
        /// Sync again to get the rest.
        more: bool,
    },
}

/// Counters of one session, from this side's point of view.
///
/// The bytes sent are broken down by what they carried, on this side:
/// `bytes_sent_handshake + bytes_sent_summary + bytes_sent_lanes +
/// bytes_sent_other == bytes_sent` for every session (asserted as each
/// datagram is queued). Whether a lane batch was needed only its receiver
/// knows: it counts `bytes_received_lanes_needed`, the share of each
/// batch's bytes that carried lanes it lacked (weighted by their canonical
/// bytes). Summed over a cluster, the needed share of the lane bytes sent
/// is the receivers' `bytes_received_lanes_needed`, and the rest of
/// `bytes_sent_lanes` brought nothing (held already, refused, lost or late).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionMetrics {
    /// Datagram bytes sent.
    pub bytes_sent: u64,
    /// Of `bytes_sent`: what frames a session: envelopes, session ids,
    /// statuses, stated transfers, flags and empty lane batches (all of a
    /// Hello and an InSync but the summary).
    pub bytes_sent_handshake: u64,
    /// Of `bytes_sent`: summaries (exact per-author entries, or a compact
    /// summary's stable point, heads and Bloom filter).
    pub bytes_sent_summary: u64,
    /// Of `bytes_sent`: lane batches that hold lanes (Delta, Lanes and
    /// Supply), with their length prefixes.
    pub bytes_sent_lanes: u64,
    /// Of `bytes_sent`: everything else: snapshot parts (offers and
    /// chunks) and need lists.
    pub bytes_sent_other: u64,
    /// Datagram bytes of lane batches received that hold lanes (as the
    /// sender counts them in `bytes_sent_lanes`).
    pub bytes_received_lanes: u64,
    /// Of `bytes_received_lanes`: each batch's bytes times the share of its
    /// lanes' canonical bytes that this side lacked (rounded down).
    pub bytes_received_lanes_needed: u64,
    /// Datagram bytes received.
    pub bytes_received: u64,
    /// Lanes sent.
    pub lanes_sent: u64,
    /// Lanes received.
    pub lanes_received: u64,
    /// Received lanes this side lacked.
    pub lanes_missing: u64,
    /// Canonical bytes of the received lanes this side lacked.
    pub bytes_missing: u64,
    /// Received lanes this side already held.
    pub lanes_redundant: u64,
    /// Received lanes refused (bad lane, fork evidence).
    pub lanes_rejected: u64,
    /// Snapshot transfers started (parts sent with the snapshot's offer).
    pub snapshots_sent: u64,
    /// Snapshot chunks sent.
    pub snapshot_chunks_sent: u64,
    /// Snapshot chunks received (verified or not).
    pub snapshot_chunks_received: u64,
    /// Snapshots installed.
    pub snapshots_installed: u64,
    /// Request/response exchanges (counted by the initiator).
    pub round_trips: u64,
    /// Compact summaries (heads + Bloom filter) received from the peer.
    pub compact_summaries: u64,
    /// Need/supply steps: lanes a Bloom false positive hid, asked for again.
    pub supplies: u64,
}

impl SessionMetrics {
    /// Adds another session's counters.
    pub fn add(&mut self, other: &Self) {
        self.bytes_sent += other.bytes_sent;
        self.bytes_sent_handshake += other.bytes_sent_handshake;
        self.bytes_sent_summary += other.bytes_sent_summary;
        self.bytes_sent_lanes += other.bytes_sent_lanes;
        self.bytes_sent_other += other.bytes_sent_other;
        self.bytes_received_lanes += other.bytes_received_lanes;
        self.bytes_received_lanes_needed += other.bytes_received_lanes_needed;
        self.bytes_received += other.bytes_received;
        self.lanes_sent += other.lanes_sent;
        self.lanes_received += other.lanes_received;
        self.lanes_missing += other.lanes_missing;
        self.bytes_missing += other.bytes_missing;
        self.lanes_redundant += other.lanes_redundant;
        self.lanes_rejected += other.lanes_rejected;
        self.snapshots_sent += other.snapshots_sent;
        self.snapshot_chunks_sent += other.snapshot_chunks_sent;
        self.snapshot_chunks_received += other.snapshot_chunks_received;
        self.snapshots_installed += other.snapshots_installed;
        self.round_trips += other.round_trips;
        self.compact_summaries += other.compact_summaries;
        self.supplies += other.supplies;
    }
}

/// What the syncer tells its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncEvent {
    /// A session finished.
    Completed {
        /// The peer.
        peer: NodeId,
        /// Session id.
        session: u64,
        /// Which side this node was.
        role: Role,
        /// How it ended.
        outcome: Outcome,
        /// Its counters.
        metrics: SessionMetrics,
    },
    /// A session ended without finishing (abandoned by the driver, or refused).
    Failed {
        /// The peer.
        peer: NodeId,
        /// Session id.
        session: u64,
        /// Why.
        reason: String,
        /// Counters so far.
        metrics: SessionMetrics,
    },
    /// A datagram could not be decoded.
    BadMessage {
        /// Sender.
        peer: NodeId,
        /// Why.
        error: WireError,
    },
    /// A peer holds a different lane at an `(author, seq)` this node holds.
    ForkSuspected {
        /// The peer.
        peer: NodeId,
        /// The author whose chain forked.
        author: NodeId,
        /// Where.
        seq: u64,
    },
    /// A snapshot problem, never silently repaired: the peer's snapshot
    /// chain disagrees with this node's (the histories diverged), a snapshot
    /// or chunk from the peer was refused (corruption, forgery or a bug), or
    /// this node's snapshot is too large to offer the peer.
    Diverged {
        /// The peer.
        peer: NodeId,
        /// The refused snapshot's error.
        error: SnapshotError,
    },
    /// A received lane was refused.
    LaneRejected {
        /// The peer.
        peer: NodeId,
        /// Why.
        error: LaneError,
    },
}
