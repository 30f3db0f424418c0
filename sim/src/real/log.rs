//! A real node's observation log: one JSON object per line, stamped with
//! wall-clock nanoseconds since the run's epoch, flushed per line so a
//! SIGKILL loses at most the line being written. `scx node` writes it;
//! `collect.rs` reads it back into the simulator's [`Observation`]s.
//!
//! Invariant: every entry converts to plain observation values (ids,
//! hashes, frontiers, lanes as their canonical bytes), never to anything
//! that needs the live node; a lane is logged as its canonical encoding,
//! so its id is recomputed on the way back in, not trusted.

use crate::observation::{EngineWarning, StatusView};
use scx_engine::protocol::SessionMetrics;
use scx_engine::{ChainHash, Dot, Lane, LaneId, NodeId, SnapshotId, StateDigest, WorldOp};
use scx_model::{Frontier, ModelValue, RegisterValue};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// One line of a node's log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Line {
    /// Wall-clock nanoseconds since the run's epoch.
    pub t_ns: u64,
    /// The node that wrote it.
    pub node: u32,
    /// What happened.
    #[serde(flatten)]
    pub entry: Entry,
}

/// What a node logs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum Entry {
    /// It recovered its log and started (`boot` 1 is the first start).
    Booted {
        /// How many times it started on this data directory.
        boot: u32,
        /// Lanes recovered.
        lanes: u64,
        /// What it holds.
        frontier: Vec<Tip>,
        /// Its hashes.
        status: Status,
        /// Bytes of a torn tail recovery cut.
        torn_tail_bytes: u64,
        /// Recovery found a rotten record.
        corruption_detected: bool,
        /// It refuses to author until it rejoined.
        rejoining: bool,
    },
    /// It could not recover its log.
    RecoveryFailed {
        /// Why.
        error: String,
    },
    /// It authored a lane (not yet durable): the model may need it if the
    /// node dies between the lane's fsync and its acknowledgement.
    Authored {
        /// The lane's canonical bytes, hex.
        lane: String,
    },
    /// It acknowledged a lane (durable).
    Wrote {
        /// The lane's canonical bytes, hex.
        lane: String,
    },
    /// It refused a write of the workload's.
    WriteRefused {
        /// Why.
        error: String,
    },
    /// Its store refused a persist.
    StoreFailed {
        /// Why.
        error: String,
    },
    /// It read a key.
    Read {
        /// The key.
        key: u32,
        /// What the read returned.
        value: Value,
        /// What it held.
        frontier: Vec<Tip>,
    },
    /// It started a session.
    SessionStarted {
        /// The peer.
        peer: u32,
        /// The session id.
        session: u64,
        /// Its status at the hello.
        status: Status,
    },
    /// A session ended at this node.
    SessionEnded {
        /// The peer.
        peer: u32,
        /// The session id (the initiator's numbering).
        session: u64,
        /// It started it.
        initiator: bool,
        /// It ended "in sync".
        in_sync: bool,
        /// Its status when it ended in sync.
        status: Option<Status>,
        /// The session's counters.
        metrics: Metrics,
    },
    /// A session was abandoned.
    SessionFailed {
        /// The peer.
        peer: u32,
        /// The session's counters.
        metrics: Metrics,
    },
    /// The engine raised a warning.
    Warning {
        /// The peer, if one.
        peer: Option<u32>,
        /// `bad-message`, `fork-suspected`, `lane-rejected`, `snapshot-rejected`.
        warning: String,
        /// The engine's account.
        detail: String,
        /// For a suspected fork: (author, seq).
        at: Option<(u32, u64)>,
    },
    /// It holds proof of a fork.
    ForkEvidence {
        /// Where.
        dot: Dot,
        /// The lane it kept.
        kept: LaneId,
        /// The other lane.
        other: LaneId,
    },
    /// A peer's snapshot chain disagrees with its own.
    SnapshotChainDiverged {
        /// The peer.
        peer: u32,
        /// The engine's account.
        error: String,
    },
    /// It committed a stable snapshot.
    SnapshotCommitted {
        /// Lane index.
        lane_index: u64,
        /// Id.
        id: SnapshotId,
        /// Chain hash.
        chain_hash: ChainHash,
        /// State digest.
        state_digest: StateDigest,
        /// What it held.
        frontier: Vec<Tip>,
    },
    /// It finished rejoining.
    Rejoined,
    /// Its status at sample `k` (at `k` sample intervals after the epoch).
    Sample {
        /// The sample's index.
        k: u64,
        /// Its hashes.
        status: Status,
        /// What it holds.
        frontier: Vec<Tip>,
    },
    /// Its state when the supervisor stopped it.
    Final {
        /// Its hashes.
        status: Status,
        /// What it holds.
        frontier: Vec<Tip>,
        /// (lane index, id) of every snapshot point.
        lineage: Vec<(u64, SnapshotId)>,
        /// Its newest snapshot's own verification error, if any.
        latest_snapshot_error: Option<String>,
        /// The replica's counters.
        replica: ReplicaCounters,
    },
}

/// A node's hashes and position.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Status {
    /// Lanes in its canonical order.
    pub lane_index: u64,
    /// Chain hash at the tip.
    pub chain_hash: ChainHash,
    /// State digest.
    pub state_digest: StateDigest,
    /// Lane index of its newest snapshot.
    pub snapshot_index: u64,
}

impl Status {
    /// As the checkers see it.
    pub fn view(&self) -> StatusView {
        StatusView { lane_index: self.lane_index, chain_hash: self.chain_hash, state_digest: self.state_digest }
    }
}

/// One author's tip: (author, seq, lane).
pub type Tip = (u32, u64, LaneId);

/// A frontier as the log holds it.
pub fn tips(frontier: &Frontier) -> Vec<Tip> {
    frontier.iter().map(|(author, (seq, id))| (author.0, *seq, *id)).collect()
}

/// A frontier back from the log.
pub fn frontier(tips: &[Tip]) -> Frontier {
    tips.iter().map(|(author, seq, id)| (NodeId(*author), (*seq, *id))).collect()
}

/// A session's counters, as the record's metrics add them up.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Metrics {
    /// Datagram bytes sent.
    pub bytes_sent: u64,
    /// Bytes of lanes the receiver lacked.
    pub bytes_missing: u64,
    /// Of `bytes_sent`: frames (`SessionMetrics::bytes_sent_handshake`).
    #[serde(default)]
    pub bytes_sent_handshake: u64,
    /// Of `bytes_sent`: summaries.
    #[serde(default)]
    pub bytes_sent_summary: u64,
    /// Of `bytes_sent`: lane batches.
    #[serde(default)]
    pub bytes_sent_lanes: u64,
    /// Of `bytes_sent`: snapshot parts and need lists.
    #[serde(default)]
    pub bytes_sent_other: u64,
    /// Of the lane-batch bytes received, the share of lanes this node lacked.
    #[serde(default)]
    pub bytes_received_lanes_needed: u64,
    /// Lanes this node lacked that the session brought.
    pub lanes_missing: u64,
    /// Round trips.
    pub round_trips: u64,
    /// Snapshots installed.
    pub snapshots_installed: u64,
    /// Compact summaries used.
    pub compact_summaries: u64,
    /// Need/supply steps.
    pub supplies: u64,
}

impl From<&SessionMetrics> for Metrics {
    fn from(metrics: &SessionMetrics) -> Self {
        Self {
            bytes_sent: metrics.bytes_sent,
            bytes_missing: metrics.bytes_missing,
            bytes_sent_handshake: metrics.bytes_sent_handshake,
            bytes_sent_summary: metrics.bytes_sent_summary,
            bytes_sent_lanes: metrics.bytes_sent_lanes,
            bytes_sent_other: metrics.bytes_sent_other,
            bytes_received_lanes_needed: metrics.bytes_received_lanes_needed,
            lanes_missing: metrics.lanes_missing,
            round_trips: metrics.round_trips,
            snapshots_installed: metrics.snapshots_installed,
            compact_summaries: metrics.compact_summaries,
            supplies: metrics.supplies,
        }
    }
}

/// The replica's own counters at the end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaCounters {
    /// Rollbacks.
    pub rollbacks: u64,
    /// Conflicts the law resolved.
    pub conflicts: u64,
    /// Lanes pruned.
    pub lanes_pruned: u64,
    /// Lanes that waited for their ancestry.
    pub lanes_pended: u64,
    /// Pending lanes released.
    pub lanes_released: u64,
}

/// One key's value, as the model shapes it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Value {
    /// The register: (value, writer).
    pub register: Option<(u64, Dot)>,
    /// The counter.
    pub counter: Option<i64>,
    /// The set: element → the insert tags that keep it.
    pub set: Vec<(u64, Vec<Dot>)>,
}

impl From<&ModelValue> for Value {
    fn from(value: &ModelValue) -> Self {
        Self {
            register: value.register.map(|register| (register.value, register.writer)),
            counter: value.counter,
            set: value.set.iter().map(|(element, dots)| (*element, dots.iter().copied().collect())).collect(),
        }
    }
}

impl Value {
    /// The model's value.
    pub fn model(&self) -> ModelValue {
        ModelValue {
            register: self.register.map(|(value, writer)| RegisterValue { value, writer }),
            counter: self.counter,
            set: self
                .set
                .iter()
                .map(|(element, dots)| (*element, dots.iter().copied().collect::<BTreeSet<Dot>>()))
                .collect::<BTreeMap<_, _>>(),
        }
    }
}

/// A lane as its canonical bytes in hex.
pub fn lane_hex(lane: &Lane<WorldOp>) -> String {
    scx_engine::hash::hex(&lane.to_bytes())
}

/// A lane back from hex: its id is recomputed from the bytes.
pub fn lane_from_hex(text: &str) -> Option<(LaneId, Lane<WorldOp>)> {
    let bytes = (0..text.len())
        .step_by(2)
        .map(|at| text.get(at..at + 2).and_then(|pair| u8::from_str_radix(pair, 16).ok()))
        .collect::<Option<Vec<u8>>>()?;
    Lane::decode(&bytes).ok()
}

/// A warning as the log names it.
pub fn warning_entry(peer: Option<u32>, warning: &EngineWarning) -> Entry {
    let (name, detail, at) = match warning {
        EngineWarning::BadMessage(error) => ("bad-message", error.clone(), None),
        EngineWarning::ForkSuspected { author, seq } => ("fork-suspected", String::new(), Some((*author, *seq))),
        EngineWarning::LaneRejected(error) => ("lane-rejected", error.clone(), None),
        EngineWarning::SnapshotRejected(error) => ("snapshot-rejected", error.clone(), None),
    };
    Entry::Warning { peer, warning: name.to_owned(), detail, at }
}

/// A logged warning back as the engine's.
pub fn warning_of(name: &str, detail: &str, at: Option<(u32, u64)>) -> EngineWarning {
    match (name, at) {
        ("fork-suspected", Some((author, seq))) => EngineWarning::ForkSuspected { author, seq },
        ("lane-rejected", _) => EngineWarning::LaneRejected(detail.to_owned()),
        ("snapshot-rejected", _) => EngineWarning::SnapshotRejected(detail.to_owned()),
        _ => EngineWarning::BadMessage(detail.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_line_round_trips_through_json() {
        let id = LaneId([7; 32]);
        let line = Line {
            t_ns: 12,
            node: 1,
            entry: Entry::Read {
                key: 3,
                value: Value { register: Some((5, Dot { author: NodeId(1), seq: 2 })), counter: Some(-4), set: vec![] },
                frontier: vec![(1, 2, id)],
            },
        };
        let text = serde_json::to_string(&line).unwrap();
        assert!(text.contains("\"kind\":\"read\""), "{text}");
        assert_eq!(serde_json::from_str::<Line>(&text).unwrap(), line);
    }

    #[test]
    fn a_lane_round_trips_through_hex_and_bad_hex_is_refused() {
        let lane = Lane::new(NodeId(0), 1, 1, vec![], vec![WorldOp::Add { key: 1, delta: 2 }]);
        let (id, back) = lane_from_hex(&lane_hex(&lane)).unwrap();
        assert_eq!((id, &back), (lane.id(), &lane));
        assert!(lane_from_hex("zz").is_none());
        assert!(lane_from_hex("0").is_none());
    }
}
