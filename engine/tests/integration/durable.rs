//! Goal: recovery loses no lane that was synced, whatever the crash tears,
//! and reproduces the same hashes; compaction after pruning recovers too.
//! Method: a durable replica on a `MemStore`, crashed at every tear length of
//! its unsynced tail, reopened and compared with the replica before the crash.

use crate::support::{config, history};
use scx_engine::durable::{DurableError, DurableReplica, RecoveryError};
use scx_engine::store::{MemStore, RecordKind, Store};
use scx_engine::{LaneError, NodeId, World, WorldOp};

fn open(store: MemStore, prune: bool) -> DurableReplica<World, MemStore> {
    let mut config = config(0, 2);
    config.prune = prune;
    DurableReplica::open(World, config, store).expect("a clean log recovers").0
}

#[test]
fn a_crash_at_any_tear_keeps_every_synced_lane_and_the_same_hashes() {
    let lanes = history(17, 2, 120);
    let split = lanes.len() * 3 / 4;
    let mut durable = open(MemStore::new(), false);
    for lane in &lanes[..split] {
        durable.replica().insert(lane.clone()).unwrap();
    }
    durable.flush().unwrap();
    let synced = durable.replica().status();
    for lane in &lanes[split..] {
        durable.replica().insert(lane.clone()).unwrap();
    }
    let _ = durable.replica().take_journal();
    for lane in &lanes[split..] {
        durable.store().append(RecordKind::Lane, &lane.to_bytes()).unwrap();
    }
    let unsynced = durable.store().unsynced_len();
    assert!(unsynced > 0);
    for tear in (0..unsynced).step_by(7) {
        let mut store = durable.store().clone();
        store.crash(Some(tear));
        let (mut recovered, report) = DurableReplica::open(World, config(0, 2), store).unwrap();
        let status = recovered.replica().status();
        assert!(status.lane_index >= synced.lane_index, "tear {tear}: a synced lane was lost");
        if report.torn_tail_bytes == 0 || tear == 0 {
            assert!(status.lane_index >= synced.lane_index);
        }
    }
    let mut store = durable.store().clone();
    store.crash(None);
    let (mut recovered, _) = DurableReplica::open(World, config(0, 2), store).unwrap();
    assert_eq!(recovered.replica().status(), synced);
}

#[test]
fn own_writes_are_durable_when_create_lane_returns() {
    let mut durable = open(MemStore::new(), false);
    for key in 0..20 {
        durable.create_lane(vec![WorldOp::Add { key, delta: 1 }]).unwrap();
    }
    let before = durable.replica().status();
    let mut store = durable.store().clone();
    store.crash(None);
    let mut recovered = open(store, false);
    assert_eq!(recovered.replica().status(), before);
}

#[test]
fn compaction_after_pruning_recovers_the_same_state() {
    let lanes = history(23, 2, 400);
    let mut durable = open(MemStore::new(), true);
    for chunk in lanes.chunks(25) {
        for lane in chunk {
            durable.replica().insert(lane.clone()).unwrap();
        }
        durable.replica().status();
        durable.flush().unwrap();
    }
    let before = durable.replica().status();
    assert!(durable.replica().prune_index() > 0, "the history must stabilise and prune");
    let log_bytes = durable.store().durable_bytes().len();
    let mut recovered = open(durable.store().clone(), true);
    assert_eq!(recovered.replica().status(), before);
    let unpruned_bytes: usize = lanes.iter().map(|lane| lane.to_bytes().len() + 9).sum();
    assert!(log_bytes < unpruned_bytes, "compaction shrinks the log ({log_bytes} vs {unpruned_bytes})");
}

#[test]
fn a_corrupt_snapshot_record_is_a_recovery_error() {
    let lanes = history(29, 2, 400);
    let mut durable = open(MemStore::new(), true);
    for lane in &lanes {
        durable.replica().insert(lane.clone()).unwrap();
    }
    durable.replica().status();
    durable.flush().unwrap();
    let bytes = durable.store().durable_bytes().to_vec();
    let records = scx_engine::store::decode_log(&bytes).records;
    assert_eq!(records[0].kind, RecordKind::Snapshot);
    // Corrupt the snapshot's state but keep the record's checksum valid, as
    // a bug above the storage layer would.
    let mut snapshot = records[0].payload.clone();
    let decoded = scx_engine::durable::decode_snapshot_record(&snapshot).unwrap();
    let state_end = decoded.to_bytes().len();
    snapshot[state_end - 3] ^= 0x04;
    let mut rewritten: Vec<(RecordKind, Vec<u8>)> = vec![(RecordKind::Snapshot, snapshot)];
    rewritten.extend(records[1..].iter().map(|record| (record.kind, record.payload.clone())));
    let mut store = MemStore::new();
    store.replace(&rewritten).unwrap();
    let mut config = config(0, 2);
    config.prune = true;
    match DurableReplica::open(World, config, store) {
        Ok(_) => panic!("a snapshot whose state does not match its digest was recovered"),
        Err(error) => assert!(matches!(error, RecoveryError::Snapshot { .. }), "{error}"),
    }
}

/// Regression (found by the model-based property in `model/tests`): a flush
/// whose compaction listed the held lanes materialised them first, which
/// advanced the stable point and pruned past the snapshot the compaction had
/// already taken; the lanes between the two were missing from the log and
/// the node could not recover (`DanglingLanes`).
#[test]
fn compaction_keeps_lanes_that_become_stable_while_it_runs() {
    use scx_engine::{Lane, NodeId};
    let b1 = Lane::new(NodeId(1), 1, 1, vec![], vec![WorldOp::Add { key: 0, delta: 1 }]);
    let a1 = Lane::new(NodeId(0), 1, 2, vec![b1.id()], vec![WorldOp::Add { key: 0, delta: 2 }]);
    let b2 = Lane::new(NodeId(1), 2, 3, vec![a1.id(), b1.id()], vec![WorldOp::Add { key: 0, delta: 4 }]);
    let mut config = config(0, 2);
    (config.snapshot_interval, config.checkpoint_interval, config.prune) = (1, 1, true);
    let mut durable = DurableReplica::open(World, config.clone(), MemStore::new()).unwrap().0;
    durable.replica().insert(b1).unwrap();
    durable.replica().insert(a1).unwrap();
    // b1 is stable (both members hold it): snapshot at 1, pruned.
    assert_eq!(durable.replica().status().snapshot_index, 1);
    // b2 makes a1 stable too, but nothing has materialised it yet.
    durable.replica().insert(b2).unwrap();
    durable.flush().unwrap();
    let flushed = durable.replica().status();
    assert_eq!(flushed.lane_index, 3);
    let mut store = durable.store().clone();
    store.crash(None);
    let (mut recovered, _) = DurableReplica::open(World, config, store).expect("a flushed log recovers");
    let status = recovered.replica().status();
    assert_eq!(
        (status.lane_index, status.chain_hash, status.state_digest),
        (3, flushed.chain_hash, flushed.state_digest)
    );
}

/// Byte offsets of each record's payload in a log image.
fn payload_offsets(image: &[u8]) -> Vec<(usize, usize)> {
    let mut offsets = Vec::new();
    let mut at = scx_engine::store::LOG_HEADER.len();
    while at + scx_engine::store::FRAME_BYTES <= image.len() {
        let length = u32::from_le_bytes(image[at..at + 4].try_into().unwrap()) as usize;
        offsets.push((at + scx_engine::store::FRAME_BYTES, length));
        at += scx_engine::store::FRAME_BYTES + length;
    }
    offsets
}

/// Goal: a latent fault (one flipped bit in a durable record) is never
/// served and never mistaken for a torn write: the node drops the record and
/// everything after it, and rejoins (authors nothing) until a majority of
/// its peers synced with it; a crash while rejoining does not end the rejoin.
#[test]
fn a_rotten_record_makes_the_node_rejoin_until_peers_synced_even_across_crashes() {
    let mut durable = DurableReplica::open(World, config(0, 3), MemStore::new()).unwrap().0;
    for key in 0..20 {
        durable.create_lane(vec![WorldOp::Add { key, delta: 1 }]).unwrap();
    }
    let held = durable.replica().status();
    let offsets = payload_offsets(durable.store().durable_bytes());
    assert_eq!(offsets.len(), 20, "one record per lane");
    for (record, bit) in [(0usize, 0u8), (7, 3), (19, 7)] {
        let mut store = durable.store().clone();
        let (start, length) = offsets[record];
        store.corrupt(start + length / 2, 1 << bit);
        let (mut rotten, report) = DurableReplica::open(World, config(0, 3), store).unwrap();
        assert!(report.corruption_detected, "record {record}: the flipped bit was not noticed");
        assert_eq!(report.lanes, record as u64, "record {record}: only the records before the rot are replayed");
        assert!(rotten.replica().is_rejoining());
        let refused = rotten.create_lane(vec![WorldOp::Add { key: 99, delta: 1 }]);
        assert!(matches!(refused, Err(DurableError::Lane(LaneError::Rejoining { .. }))), "{refused:?}");

        // A crash before the rejoin ends: the log remembers it.
        let mut store = rotten.store().clone();
        store.crash(None);
        let (mut again, report) = DurableReplica::open(World, config(0, 3), store).unwrap();
        assert!(!report.corruption_detected, "the rotten record was truncated away");
        assert!(again.replica().is_rejoining(), "record {record}: a crash ended the rejoin");

        // Peers bring the lanes back; a majority of them (2 of 2) completes it.
        for lane in durable.replica().canonical_lanes().map(|(_, lane)| lane.clone()).collect::<Vec<_>>() {
            again.replica().insert(lane).unwrap();
        }
        again.replica().synced_with(NodeId(1));
        assert!(again.replica().is_rejoining(), "one of two peers is not a majority");
        again.replica().synced_with(NodeId(2));
        assert!(!again.replica().is_rejoining());
        again.flush().unwrap();
        assert_eq!(again.replica().status(), held);
        let mut store = again.store().clone();
        store.crash(None);
        let (mut rejoined, _) = DurableReplica::open(World, config(0, 3), store).unwrap();
        assert!(!rejoined.replica().is_rejoining(), "the end of the rejoin was not recorded");
        rejoined.create_lane(vec![WorldOp::Add { key: 99, delta: 1 }]).unwrap();
        assert_eq!(rejoined.replica().status().lane_index, held.lane_index + 1);
    }
}

/// Goal: a torn write is not rot: the node keeps authoring after it.
#[test]
fn a_torn_write_is_not_taken_for_rot() {
    let mut durable = DurableReplica::open(World, config(0, 3), MemStore::new()).unwrap().0;
    for key in 0..5 {
        durable.create_lane(vec![WorldOp::Add { key, delta: 1 }]).unwrap();
    }
    durable.store().append(RecordKind::Lane, &[7; 40]).unwrap();
    let mut store = durable.store().clone();
    store.crash(Some(20));
    let (mut recovered, report) = DurableReplica::open(World, config(0, 3), store).unwrap();
    assert_eq!((report.torn_tail_bytes, report.corruption_detected), (20, false));
    assert!(!recovered.replica().is_rejoining());
    recovered.create_lane(vec![WorldOp::Add { key: 9, delta: 1 }]).unwrap();
}

/// Goal: compaction (after pruning, or installing a snapshot) keeps the
/// rejoin record, so a crash after it still finds the node rejoining.
#[test]
fn compaction_while_rejoining_keeps_the_rejoin_record() {
    let lanes = history(31, 2, 400);
    let mut rejoining = config(0, 2);
    rejoining.prune = true;
    rejoining.rejoining = true;
    let mut durable = DurableReplica::open(World, rejoining, MemStore::new()).unwrap().0;
    assert!(durable.replica().is_rejoining());
    for chunk in lanes.chunks(25) {
        for lane in chunk {
            durable.replica().insert(lane.clone()).unwrap();
        }
        durable.replica().status();
        durable.flush().unwrap();
    }
    assert!(durable.replica().prune_index() > 0, "the history must stabilise, prune and compact");
    let records = scx_engine::store::decode_log(durable.store().durable_bytes()).records;
    assert_eq!(records[0].kind, RecordKind::Snapshot, "the log was compacted");
    let mut store = durable.store().clone();
    store.crash(None);
    let mut config = config(0, 2);
    config.prune = true;
    let (mut reopened, _) = DurableReplica::open(World, config.clone(), store).unwrap();
    assert!(reopened.replica().is_rejoining(), "compaction dropped the rejoin record");
    reopened.replica().synced_with(NodeId(1));
    assert!(!reopened.replica().is_rejoining());
    reopened.flush().unwrap();
    let mut store = reopened.store().clone();
    store.crash(None);
    let (mut done, _) = DurableReplica::open(World, config, store).unwrap();
    assert!(!done.replica().is_rejoining(), "the end of the rejoin was not recorded");
}

/// Goal: cutting a rotten log and remembering why are one step: a crash
/// right after recovery's load (before the replica could record anything)
/// still opens the node rejoining.
#[test]
fn a_crash_right_after_the_rotten_log_was_cut_still_rejoins() {
    let mut durable = DurableReplica::open(World, config(0, 3), MemStore::new()).unwrap().0;
    for key in 0..10 {
        durable.create_lane(vec![WorldOp::Add { key, delta: 1 }]).unwrap();
    }
    let (start, length) = payload_offsets(durable.store().durable_bytes())[4];
    let mut store = durable.store().clone();
    store.corrupt(start + length / 2, 0x10);
    let recovered = store.load().unwrap();
    assert_eq!(recovered.records.len(), 4);
    store.crash(None);
    let (mut reopened, report) = DurableReplica::open(World, config(0, 3), store).unwrap();
    assert!(!report.corruption_detected, "the log was already cut");
    assert!(reopened.replica().is_rejoining(), "the cut erased why the log is shorter");
}
