//! Recovery: a node rebuilt from the records its driver loaded from the log.
//!
//! Invariant: recovery replays exactly the durable records, verifies every
//! snapshot (id and digest) and every lane (id = hash of content), and checks
//! that the replay reaches every committed snapshot id again; anything else
//! is a [`RecoveryError`], never a silently different state. After rot (a
//! durable record damaged) or on a replacement, the node opens rejoining,
//! and the log records it, so a crash cannot make it forget.

use super::persist::{REJOIN_STARTED, decode_commit, decode_rejoin, decode_snapshot_record};
use super::{Node, NodeConfig, Output, Persist, PersistOp, PersistToken};
use crate::bugs::Bugs;
use crate::codec::DecodeError;
use crate::error::LaneError;
use crate::hash::SnapshotId;
use crate::law::Law;
use crate::log::{Record, RecordKind, Recovered, TailDefect};
use crate::replica::Replica;
use crate::snapshot::SnapshotError;

/// Why recovery failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecoveryError {
    /// A record that passed its checksum does not decode.
    #[error("record {record}: {error}")]
    Record {
        /// Index of the record in the log.
        record: usize,
        /// What was wrong.
        error: DecodeError,
    },
    /// A snapshot record failed verification.
    #[error("snapshot record {record}: {error}")]
    Snapshot {
        /// Index of the record in the log.
        record: usize,
        /// What was wrong.
        error: SnapshotError,
    },
    /// A lane record was refused by the replica.
    #[error("lane record {record}: {error}")]
    Lane {
        /// Index of the record in the log.
        record: usize,
        /// What was wrong.
        error: LaneError,
    },
    /// Lanes in the log whose ancestry is not in the log: the log was
    /// written parents first, so this is corruption.
    #[error("{count} logged lanes name parents that are not in the log")]
    DanglingLanes {
        /// How many lanes wait for missing parents.
        count: usize,
    },
    /// The log has a defect that must be refused rather than truncated (a
    /// foreign or newer log): not ours to replay. A store refuses these on
    /// load already; this covers a driver that hands over a raw decode.
    #[error("the log has an unrepairable defect after byte {valid_bytes}: {defect:?}")]
    UnrepairableTail {
        /// What was wrong.
        defect: TailDefect,
        /// Length of the intact prefix.
        valid_bytes: u64,
    },
    /// Replaying the log did not reach a snapshot id it committed before.
    #[error("replay reached snapshot {found:?} at lane index {lane_index}, but {committed} was committed there")]
    CommitMismatch {
        /// Where.
        lane_index: u64,
        /// The committed id.
        committed: SnapshotId,
        /// What the replay produced.
        found: Option<SnapshotId>,
    },
}

/// What recovery found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RecoveryReport {
    /// Lane records replayed.
    pub lanes: u64,
    /// Snapshot records installed.
    pub snapshots: u64,
    /// Commit records checked.
    pub commits_checked: u64,
    /// Bytes of torn or corrupt tail dropped.
    pub torn_tail_bytes: u64,
    /// A record that had been durable failed its checksum (rot, not a torn
    /// write): it and everything after it were dropped, and the node opened
    /// rejoining (it authors nothing until every other member synced with
    /// it, so it learns back what it acknowledged).
    pub corruption_detected: bool,
}

impl<L: Law> Node<L> {
    /// Rebuilds a node from the records its store loaded (`recovered`, see
    /// `scx_store::Store::load`), at `now_ns` on its clock. If the node opens
    /// rejoining and the log does not say so yet, its first output is the
    /// persist that records it.
    pub fn recover(
        law: L,
        mut config: NodeConfig,
        recovered: &Recovered,
        now_ns: u64,
    ) -> Result<(Self, RecoveryReport), RecoveryError> {
        config.replica.journal = true;
        let bugs = config.replica.bugs;
        if let Some(defect) = recovered.defect.filter(|defect| !may_replay_past(*defect, &bugs)) {
            return Err(RecoveryError::UnrepairableTail { defect, valid_bytes: recovered.valid_bytes });
        }
        // Rot may have taken acknowledged lanes with it, own lanes included:
        // the node must learn its chain back from every peer before it
        // authors, or it would reuse their seqs.
        let rotted = recovered.defect.is_some_and(TailDefect::is_corruption) && !bugs.rot_taken_for_tear();
        // A crash while rejoining must not end the rejoin: the log says so.
        let rejoin_recorded = last_rejoin_record(&recovered.records, &bugs)?;
        config.replica.rejoining |= rotted || rejoin_recorded;
        let mut report = RecoveryReport {
            torn_tail_bytes: recovered.torn_tail_bytes,
            corruption_detected: rotted,
            ..RecoveryReport::default()
        };
        let mut replica = Replica::new(law, config.replica.clone());
        let records = bugs.trusted_records(&recovered.records, recovered.torn_tail_bytes);
        let commits = replay_records(&mut replica, records, &mut report)?;
        replica.materialize();
        if replica.pending_lanes() > 0 {
            return Err(RecoveryError::DanglingLanes { count: replica.pending_lanes() });
        }
        for (lane_index, committed) in commits {
            if lane_index < replica.prune_index() {
                continue;
            }
            let found = replica.snapshots().id_at(lane_index);
            if found != Some(committed) {
                return Err(RecoveryError::CommitMismatch { lane_index, committed, found });
            }
            report.commits_checked += 1;
        }
        // What recovery replayed is durable already; what it announced is old news.
        let _ = replica.take_journal();
        while replica.poll_event().is_some() {}
        let rejoining = replica.is_rejoining();
        let mut node = Self::new_parts(replica, &config, rejoin_recorded, now_ns);
        if rejoining && !rejoin_recorded {
            let record = Record { kind: RecordKind::Rejoin, payload: REJOIN_STARTED.to_vec() };
            let op = PersistOp::Append { records: vec![record], sync: true };
            node.outputs.push_back(Output::Persist(Persist { token: PersistToken(0), op }));
            node.next_token = 1;
            node.rejoin_recorded = true;
        }
        Ok((node, report))
    }
}

/// Replays the log's records into `replica`; returns the commit records.
fn replay_records<L: Law>(
    replica: &mut Replica<L>,
    records: &[Record],
    report: &mut RecoveryReport,
) -> Result<Vec<(u64, SnapshotId)>, RecoveryError> {
    let mut commits = Vec::new();
    for (index, record) in records.iter().enumerate() {
        match record.kind {
            RecordKind::Lane => {
                replica.insert_bytes(&record.payload).map_err(|error| RecoveryError::Lane { record: index, error })?;
                report.lanes += 1;
            }
            RecordKind::Snapshot => {
                let snapshot = decode_snapshot_record(&record.payload)
                    .map_err(|error| RecoveryError::Snapshot { record: index, error })?;
                replica
                    .install_snapshot(&snapshot)
                    .map_err(|error| RecoveryError::Snapshot { record: index, error })?;
                report.snapshots += 1;
            }
            RecordKind::Rejoin => {}
            RecordKind::Commit => commits
                .push(decode_commit(&record.payload).map_err(|error| RecoveryError::Record { record: index, error })?),
        }
    }
    Ok(commits)
}

/// Whether the last rejoin record of the log says the node is rejoining.
fn last_rejoin_record(records: &[Record], bugs: &Bugs) -> Result<bool, RecoveryError> {
    let Some((index, record)) = records.iter().enumerate().rev().find(|(_, record)| record.kind == RecordKind::Rejoin)
    else {
        return Ok(false);
    };
    decode_rejoin(&record.payload, bugs).map_err(|error| RecoveryError::Record { record: index, error })
}

/// Whether recovery may replay the intact prefix of a log whose tail has
/// `defect`: yes for a torn or corrupt tail, which the store truncated.
fn may_replay_past(defect: TailDefect, bugs: &Bugs) -> bool {
    // Planted bug `recovery_refuses_torn_tail`: any defect is corruption,
    // so a crash that tore a write leaves a node that cannot start.
    defect.is_repairable() && !bugs.recovery_refuses_torn_tail()
}
