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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionMetrics {
    /// Datagram bytes sent.
    pub bytes_sent: u64,
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
