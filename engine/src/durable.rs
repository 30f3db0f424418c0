//! A replica bound to a durable store: write-ahead logging and recovery.
//!
//! Every admitted lane is appended to the store in admission order (parents
//! first). Own lanes are synced before they are admitted, so an
//! acknowledged write survives any crash; received lanes are synced by
//! [`DurableReplica::flush`], which the driver calls before transmitting
//! (the write-ahead rule). A committed stable snapshot appends a commit
//! record; with pruning, the log is compacted to the snapshot, its boundary
//! and the lanes above it.
//!
//! Invariant: recovery replays exactly the durable records, verifies every
//! snapshot (id and digest) and every lane (id = hash of content), and checks
//! that the replay reaches every committed snapshot id again; anything else
//! is a [`RecoveryError`], never a silently different state.

use crate::bugs::Bugs;
use crate::codec::{DecodeError, Reader, put_varint};
use crate::hash::SnapshotId;
use crate::law::Law;
use crate::replica::{Event, Replica, ReplicaConfig};
use crate::snapshot::{Snapshot, SnapshotError};
use crate::store::{FRAME_BYTES, MAX_RECORD_BYTES, Record, RecordKind, Store, StoreError, TailDefect};
use crate::{Lane, LaneError, LaneId};

/// Why a durable operation failed.
#[derive(Debug, thiserror::Error)]
pub enum DurableError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The lane was refused.
    #[error(transparent)]
    Lane(#[from] LaneError),
}

/// Why recovery failed.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
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
    /// The store returned a log whose tail defect it must refuse rather
    /// than truncate (a foreign or newer log): not ours to replay.
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
    /// write): it and everything after it were dropped, and the replica
    /// opened rejoining (it authors nothing until a majority of its peers
    /// synced with it, so it learns back what it acknowledged).
    pub corruption_detected: bool,
}

/// A replica whose every admitted lane is in a durable log.
#[derive(Debug)]
pub struct DurableReplica<L: Law, S: Store> {
    replica: Replica<L>,
    store: S,
    unsynced: bool,
    /// The log's last rejoin record says the node is rejoining.
    rejoin_recorded: bool,
}

impl<L: Law, S: Store> DurableReplica<L, S> {
    /// Opens `store` and recovers the replica it describes.
    pub fn open(law: L, mut config: ReplicaConfig, mut store: S) -> Result<(Self, RecoveryReport), RecoveryError> {
        config.journal = true;
        let bugs = config.bugs;
        let recovered = store.load()?;
        if let Some(defect) = recovered.defect.filter(|defect| !may_replay_past(*defect, &bugs)) {
            return Err(RecoveryError::UnrepairableTail { defect, valid_bytes: recovered.valid_bytes });
        }
        // Rot (a durable record damaged) may have taken acknowledged lanes
        // with it, own lanes included: the node must learn its chain back
        // from a majority before it authors, or it would reuse their seqs.
        let rotted = recovered.defect.is_some_and(TailDefect::is_corruption) && !bugs.rot_taken_for_tear();
        // A crash while rejoining must not end the rejoin: the log says so.
        let rejoin_recorded = last_rejoin_record(&recovered.records, &bugs)?;
        config.rejoining |= rotted || rejoin_recorded;
        let mut report = RecoveryReport {
            torn_tail_bytes: recovered.torn_tail_bytes,
            corruption_detected: rotted,
            ..RecoveryReport::default()
        };
        let mut replica = Replica::new(law, config);
        let mut commits = Vec::new();
        // Every record the store returned passed its checksum: the torn
        // tail was cut away behind the last of them.
        let mut records = recovered.records.as_slice();
        if bugs.recovery_drops_last_record() && recovered.torn_tail_bytes > 0 {
            // Planted bug: the record before a torn tail is distrusted as if
            // the tear had reached it, and is dropped although it verified.
            records = records.split_last().map_or(records, |(_, intact)| intact);
        }
        for (index, record) in records.iter().enumerate() {
            match record.kind {
                RecordKind::Lane => {
                    replica
                        .insert_bytes(&record.payload)
                        .map_err(|error| RecoveryError::Lane { record: index, error })?;
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
                RecordKind::Commit => {
                    commits.push(
                        decode_commit(&record.payload)
                            .map_err(|error| RecoveryError::Record { record: index, error })?,
                    );
                }
            }
        }
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
        let _ = replica.take_journal();
        while replica.poll_event().is_some() {}
        let mut durable = Self { replica, store, unsynced: false, rejoin_recorded };
        if durable.replica.is_rejoining() && !rejoin_recorded {
            durable.store.append(RecordKind::Rejoin, &[1])?;
            durable.store.sync()?;
            durable.rejoin_recorded = true;
        }
        Ok((durable, report))
    }

    /// The replica (read and sync through it; call [`Self::flush`] after).
    pub fn replica(&mut self) -> &mut Replica<L> {
        &mut self.replica
    }

    /// The store.
    pub fn store(&mut self) -> &mut S {
        &mut self.store
    }

    /// Authors a lane: built, appended and synced, then admitted. When this
    /// returns, the write is acknowledged and survives any crash.
    pub fn create_lane(&mut self, ops: Vec<L::Op>) -> Result<(LaneId, Lane<L::Op>), DurableError> {
        self.replica.check_may_author()?;
        self.flush_journal()?;
        let lane = self.replica.prepare_lane(ops);
        let bytes = lane.to_bytes();
        self.store.append(RecordKind::Lane, &bytes)?;
        self.unsynced = true;
        if !self.lazy_sync() {
            self.store.sync()?;
            self.unsynced = false;
        }
        let id = crate::hash::lane_id(&bytes);
        self.replica.insert_with_known_id(id, lane.clone())?;
        // The lane is in the log already; do not journal it twice.
        let journal = self.replica.take_journal();
        debug_assert_eq!(journal.len(), 1, "an own lane admits only itself");
        Ok((id, lane))
    }

    /// Appends every newly admitted lane and commit, compacts after pruning,
    /// and syncs: afterwards everything the replica holds is durable. Call it
    /// before transmitting anything.
    pub fn flush(&mut self) -> Result<Vec<Event>, StoreError> {
        self.flush_journal()?;
        let mut events = Vec::new();
        let mut compact = false;
        while let Some(event) = self.replica.poll_event() {
            match &event {
                Event::SnapshotCommitted { lane_index, id } => {
                    let bugs = self.replica.config().bugs;
                    self.store.append(RecordKind::Commit, &encode_commit(*lane_index, id, &bugs))?;
                    self.unsynced = true;
                }
                // The log's lanes name the installed prefix only through the
                // snapshot: rewrite it as after pruning, snapshot first.
                Event::Pruned { .. } | Event::SnapshotInstalled { .. } => compact = true,
                _ => {}
            }
            events.push(event);
        }
        if compact {
            self.compact()?;
        }
        if self.rejoin_recorded && !self.replica.is_rejoining() {
            self.store.append(RecordKind::Rejoin, &[0])?;
            self.unsynced = true;
            self.rejoin_recorded = false;
        }
        if self.unsynced && !self.lazy_sync() {
            self.store.sync()?;
            self.unsynced = false;
        }
        Ok(events)
    }

    /// Planted bug `lazy_sync`: appends are left unsynced, so lanes leave
    /// the node (and writes are acknowledged) before they are durable.
    fn lazy_sync(&self) -> bool {
        self.replica.config().bugs.lazy_sync()
    }

    fn flush_journal(&mut self) -> Result<(), StoreError> {
        for bytes in self.replica.take_journal() {
            self.store.append(RecordKind::Lane, &bytes)?;
            self.unsynced = true;
        }
        Ok(())
    }

    /// Rewrites the log as: latest snapshot, then the held
    /// lanes in canonical order.
    fn compact(&mut self) -> Result<(), StoreError> {
        // Materialise before taking the snapshot: listing the lanes below
        // would, and lanes admitted since the last replay can advance the
        // stable point and prune past a snapshot taken first, leaving the
        // lanes between the two out of the log. Snapshots this commits are
        // recorded by the next flush.
        self.replica.materialize();
        let snapshot = self.replica.snapshot_transfer();
        let mut records = vec![(RecordKind::Snapshot, encode_snapshot_record(snapshot))];
        let base = snapshot.header.lane_index;
        // At the prune point, or above it when a stable snapshot followed an
        // installed one without pruning; lanes it covers are skipped on recovery.
        let pruned = self.replica.prune_index();
        assert!(base >= pruned, "compaction never reaches below the prune point");
        records.extend(self.replica.canonical_lanes().map(|(_, lane)| (RecordKind::Lane, lane.to_bytes())));
        assert_eq!(self.replica.prune_index(), pruned, "listing the lanes did not move the prune point");
        if self.rejoin_recorded {
            records.push((RecordKind::Rejoin, vec![1]));
        }
        self.store.replace(&records)?;
        self.unsynced = false;
        Ok(())
    }
}

/// Encodes a snapshot for the log (its header names the boundary).
pub fn encode_snapshot_record(snapshot: &Snapshot) -> Vec<u8> {
    snapshot.to_bytes()
}

/// Decodes and verifies the id of a snapshot record (the digest is verified on install).
pub fn decode_snapshot_record(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    Snapshot::from_bytes(bytes)
}

/// Whether the last rejoin record of the log says the node is rejoining.
fn last_rejoin_record(records: &[Record], bugs: &Bugs) -> Result<bool, RecoveryError> {
    let Some((index, record)) = records.iter().enumerate().rev().find(|(_, record)| record.kind == RecordKind::Rejoin)
    else {
        return Ok(false);
    };
    decode_rejoin(&record.payload, bugs).map_err(|error| RecoveryError::Record { record: index, error })
}

fn decode_rejoin(bytes: &[u8], bugs: &Bugs) -> Result<bool, DecodeError> {
    let mut reader = Reader::new(bytes);
    let flag = reader.byte("rejoin flag")?;
    reader.finish()?;
    match flag {
        0 => Ok(false),
        1 => Ok(true),
        // Rot found by an earlier recovery, before the node could record its rejoin.
        2 => Ok(!bugs.rot_taken_for_tear()),
        tag => {
            Err(DecodeError { offset: 0, kind: crate::codec::DecodeErrorKind::UnknownTag { what: "rejoin flag", tag } })
        }
    }
}

/// Whether recovery may replay the intact prefix of a log whose tail has
/// `defect`: yes for a torn or corrupt tail, which the store truncated.
fn may_replay_past(defect: TailDefect, bugs: &Bugs) -> bool {
    // Planted bug `recovery_refuses_torn_tail`: any defect is corruption,
    // so a crash that tore a write leaves a node that cannot start.
    defect.is_repairable() && !bugs.recovery_refuses_torn_tail()
}

fn encode_commit(lane_index: u64, id: &SnapshotId, bugs: &Bugs) -> Vec<u8> {
    let mut out = Vec::with_capacity(42);
    put_varint(&mut out, lane_index);
    out.extend_from_slice(id.as_bytes());
    if bugs.oversized_commit_record() {
        // Planted bug: commit records are padded to a fixed slot for
        // rewriting in place, sized as the record limit plus the frame, so
        // the payload alone is past the limit. (`vec!` of zeros maps pages
        // lazily: the padding costs nothing until the store refuses it.)
        let mut padded = vec![0; MAX_RECORD_BYTES + FRAME_BYTES];
        padded[..out.len()].copy_from_slice(&out);
        return padded;
    }
    out
}

fn decode_commit(bytes: &[u8]) -> Result<(u64, SnapshotId), DecodeError> {
    let mut reader = Reader::new(bytes);
    let lane_index = reader.varint("commit lane index")?;
    let id = SnapshotId(reader.array32("commit snapshot id")?);
    reader.finish()?;
    Ok((lane_index, id))
}
