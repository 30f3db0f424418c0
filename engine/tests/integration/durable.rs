//! Goal: a node loses no lane it made durable, whatever a crash tears, and
//! recovers the same hashes; compaction after pruning recovers too; rot
//! makes it rejoin; write-ahead holds without any simulator.
//! Method: a `Node` driven by `driver::Driver` on a `MemStore`: its persists
//! are written (or held back, as a slow fsync), the store is crashed at
//! every tear length of its unsynced tail, and a node recovered from it is
//! compared with the node before the crash.

use crate::driver::{Cluster, Driver, node_config, syncing_config};
use crate::support::{config, history};
use scx_engine::codec::Reader;
use scx_engine::log::{FRAME_BYTES, LOG_HEADER, Record, RecordKind};
use scx_engine::node::{NodeEvent, Output, PersistOp, RecoveryError};
use scx_engine::{LaneError, NodeId, Snapshot, WorldOp};
use scx_store::{MemStore, Store};

fn pruning(node: u32, members: u32) -> scx_engine::ReplicaConfig {
    let mut config = config(node, members);
    config.prune = true;
    config
}

fn reopen(store: MemStore, replica: scx_engine::ReplicaConfig) -> Driver {
    Driver::open(node_config(replica), store).expect("a log the node wrote recovers").0
}

fn written(events: &[NodeEvent<WorldOp>]) -> usize {
    events.iter().filter(|event| matches!(event, NodeEvent::Written { .. })).count()
}

#[test]
fn a_crash_at_any_tear_keeps_every_persisted_lane_and_the_same_hashes() {
    let lanes = history(17, 2, 120);
    let split = lanes.len() * 3 / 4;
    let mut driver = Driver::fresh(config(0, 2));
    driver.receive(NodeId(1), &lanes[..split]);
    let synced = driver.node.status();
    // The rest arrives while the disk is slow: the persists are written but
    // never synced when the crash comes.
    driver.hold_persists();
    driver.receive(NodeId(1), &lanes[split..]);
    assert!(driver.sent.is_empty());
    for persist in std::mem::take(&mut driver.held) {
        let PersistOp::Append { records, .. } = persist.op else { panic!("received lanes are appended") };
        for record in records {
            driver.store.append(record.kind, &record.payload).unwrap();
        }
    }
    let unsynced = driver.store.unsynced_len();
    assert!(unsynced > 0);
    for tear in (0..unsynced).step_by(7) {
        let mut recovered = reopen(driver.crashed_store(Some(tear)), config(0, 2));
        let status = recovered.node.status();
        assert!(status.lane_index >= synced.lane_index, "tear {tear}: a persisted lane was lost");
    }
    let mut recovered = reopen(driver.crashed_store(None), config(0, 2));
    assert_eq!(recovered.node.status(), synced);
}

#[test]
fn a_write_is_acknowledged_only_after_its_persist_and_survives_a_crash() {
    let mut driver = Driver::fresh(config(0, 2));
    driver.hold_persists();
    driver.write(vec![WorldOp::Add { key: 1, delta: 1 }]);
    assert_eq!(written(&driver.events), 0, "acknowledged before it was durable");
    assert_eq!(driver.held.len(), 1);
    assert_eq!(driver.node.persists_unacknowledged(), 1);
    driver.release_persists();
    assert_eq!(written(&driver.events), 1);
    for key in 0..19 {
        driver.write(vec![WorldOp::Add { key, delta: 1 }]);
    }
    assert_eq!(written(&driver.events), 20);
    let before = driver.node.status();
    let mut recovered = reopen(driver.crashed_store(None), config(0, 2));
    assert_eq!(recovered.node.status(), before);
}

/// Goal: write-ahead is the engine's, not the driver's: however the
/// driver polls, no datagram comes out while a persist before it is not
/// acknowledged, and everything comes out in order once it is.
#[test]
fn no_datagram_leaves_while_a_persist_before_it_is_unacknowledged() {
    let mut peer = Driver::fresh(config(1, 2));
    for key in 0..5 {
        peer.write(vec![WorldOp::Add { key, delta: 1 }]);
    }
    // A session from node 0: the peer's delta brings lanes (a persist) and
    // wants an answer (a datagram).
    let mut initiator = scx_engine::Node::new(scx_engine::World, syncing_config(config(0, 2), &[1]), 0);
    let tick = initiator.poll_timeout().unwrap();
    initiator.handle_timeout(tick);
    let hello = match initiator.poll() {
        Some(Output::Transmit(transmit)) => transmit,
        other => panic!("a hello comes first, got {other:?}"),
    };
    while initiator.poll().is_some() {}
    peer.node.handle_datagram(tick, NodeId(0), &hello.bytes);
    peer.drain();
    let (_, delta) = peer.sent.pop().expect("the peer answers with a delta");
    initiator.handle_datagram(tick, NodeId(1), &delta);
    let Some(Output::Persist(persist)) = initiator.poll() else { panic!("the delta's lanes are persisted first") };
    for _ in 0..3 {
        assert_eq!(initiator.poll(), None, "nothing may follow an unacknowledged persist");
    }
    initiator.persisted(persist.token);
    let mut rest = Vec::new();
    while let Some(output) = initiator.poll() {
        rest.push(output);
    }
    assert!(matches!(rest.first(), Some(Output::Transmit(_))), "the lanes message follows: {rest:?}");
    assert_eq!(initiator.status().lane_index, 5);
}

#[test]
fn persists_may_be_pipelined_but_are_acknowledged_in_order() {
    let mut node = scx_engine::Node::new(scx_engine::World, node_config(config(0, 2)), 0);
    node.write(0, vec![WorldOp::Add { key: 1, delta: 1 }]).unwrap();
    node.write(0, vec![WorldOp::Add { key: 2, delta: 1 }]).unwrap();
    let first = match node.poll() {
        Some(Output::Persist(persist)) => persist,
        other => panic!("{other:?}"),
    };
    assert_eq!(node.poll(), None, "the first write's acknowledgement waits for its persist");
    node.persisted(first.token);
    let mut second = None;
    let mut acknowledged = 0;
    while let Some(output) = node.poll() {
        match output {
            Output::Persist(persist) => second = Some(persist),
            Output::Event(NodeEvent::Written { .. }) => acknowledged += 1,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(acknowledged, 1, "only the first write is durable");
    node.persisted(second.expect("the second write's persist").token);
    assert!(matches!(node.poll(), Some(Output::Event(NodeEvent::Written { .. }))));
}

#[test]
fn compaction_after_pruning_recovers_the_same_state() {
    let lanes = history(23, 2, 400);
    let mut driver = Driver::fresh(pruning(0, 2));
    for chunk in lanes.chunks(25) {
        driver.receive(NodeId(1), chunk);
    }
    let before = driver.node.status();
    assert!(driver.node.replica().prune_index() > 0, "the history must stabilise and prune");
    assert_eq!(driver.log()[0].kind, RecordKind::Snapshot, "the log was compacted");
    let log_bytes = driver.store.durable_bytes().len();
    let log = driver.log();
    let count = |kind| log.iter().filter(|record| record.kind == kind).count() as u64;
    let (snapshots, lane_records, commits) =
        (count(RecordKind::Snapshot), count(RecordKind::Lane), count(RecordKind::Commit));
    let (mut recovered, report) =
        Driver::open(node_config(pruning(0, 2)), driver.store.clone()).expect("a log the node wrote recovers");
    assert_eq!(recovered.node.status(), before);
    assert_eq!((report.snapshots, report.lanes, report.torn_tail_bytes), (snapshots, lane_records, 0), "{report:?}");
    assert!(snapshots >= 1 && lane_records > 0 && report.commits_checked <= commits, "{report:?}");
    assert!(!report.corruption_detected);
    let unpruned_bytes: usize = lanes.iter().map(|lane| lane.to_bytes().len() + FRAME_BYTES).sum();
    assert!(log_bytes < unpruned_bytes, "compaction shrinks the log ({log_bytes} vs {unpruned_bytes})");
}

#[test]
fn a_corrupt_snapshot_record_is_a_recovery_error() {
    let lanes = history(29, 2, 400);
    let mut driver = Driver::fresh(pruning(0, 2));
    driver.receive(NodeId(1), &lanes);
    let records = driver.log();
    assert_eq!(records[0].kind, RecordKind::Snapshot);
    // Corrupt the snapshot's state but keep the record's checksum valid, as
    // a bug above the storage layer would.
    let mut snapshot = records[0].payload.clone();
    let state_end = Snapshot::decode(&mut Reader::new(&snapshot)).unwrap().to_bytes().len();
    snapshot[state_end - 3] ^= 0x04;
    let mut rewritten = vec![Record { kind: RecordKind::Snapshot, payload: snapshot }];
    rewritten.extend(records[1..].iter().cloned());
    let mut store = MemStore::new();
    store.replace(&rewritten).unwrap();
    match Driver::open(node_config(pruning(0, 2)), store) {
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
    use scx_engine::Lane;
    let b1 = Lane::new(NodeId(1), 1, 1, vec![], vec![WorldOp::Add { key: 0, delta: 1 }]);
    let a1 = Lane::new(NodeId(0), 1, 2, vec![b1.id()], vec![WorldOp::Add { key: 0, delta: 2 }]);
    let b2 = Lane::new(NodeId(1), 2, 3, vec![a1.id(), b1.id()], vec![WorldOp::Add { key: 0, delta: 4 }]);
    let mut replica = pruning(0, 2);
    (replica.snapshot_interval, replica.checkpoint_interval) = (1, 1);
    let mut driver = Driver::fresh(replica.clone());
    driver.receive(NodeId(1), &[b1, a1]);
    // b1 is stable (both members hold it): snapshot at 1, pruned.
    assert_eq!(driver.node.status().snapshot_index, 1);
    // b2 makes a1 stable too.
    driver.receive(NodeId(1), &[b2]);
    let flushed = driver.node.status();
    assert_eq!(flushed.lane_index, 3);
    let mut recovered = reopen(driver.crashed_store(None), replica);
    let status = recovered.node.status();
    assert_eq!(
        (status.lane_index, status.chain_hash, status.state_digest),
        (3, flushed.chain_hash, flushed.state_digest)
    );
}

/// Byte offsets of each record's payload in a log image.
fn payload_offsets(image: &[u8]) -> Vec<(usize, usize)> {
    let mut offsets = Vec::new();
    let mut at = LOG_HEADER.len();
    while at + FRAME_BYTES <= image.len() {
        let length = u32::from_le_bytes(image[at..at + 4].try_into().unwrap()) as usize;
        offsets.push((at + FRAME_BYTES, length));
        at += FRAME_BYTES + length;
    }
    offsets
}

/// Three nodes that sync by round robin: `recovered` as node 0, and two
/// peers holding `lanes`.
fn rejoin_cluster(recovered: Driver, lanes: &[scx_engine::Lane<WorldOp>]) -> Cluster {
    let mut peers = Vec::new();
    for node in 1..3 {
        let mut peer = Driver::fresh(config(node, 3));
        peer.receive(NodeId(0), lanes);
        peers.push(peer);
    }
    let mut drivers = vec![recovered];
    drivers.extend(peers);
    Cluster { drivers }
}

/// Goal: a latent fault (one flipped bit in a durable record) is never
/// served and never mistaken for a torn write: the node drops the record and
/// everything after it, and rejoins (authors nothing) until every peer
/// synced with it; a crash while rejoining does not end the rejoin.
#[test]
fn a_rotten_record_makes_the_node_rejoin_until_peers_synced_even_across_crashes() {
    let mut driver = Driver::fresh(config(0, 3));
    for key in 0..20 {
        driver.write(vec![WorldOp::Add { key, delta: 1 }]);
    }
    let held = driver.node.status();
    let lanes: Vec<_> = driver.node.replica().clone().canonical_lanes().map(|(_, lane)| lane.clone()).collect();
    let offsets = payload_offsets(driver.store.durable_bytes());
    assert_eq!(offsets.len(), 20, "one record per lane");
    let syncing = || syncing_config(config(0, 3), &[1, 2]);
    for (record, bit) in [(0usize, 0u8), (7, 3), (19, 7)] {
        let mut store = driver.store.clone();
        let (start, length) = offsets[record];
        store.corrupt(start + length / 2, 1 << bit);
        let (mut rotten, report) = Driver::open(syncing(), store).unwrap();
        assert!(report.corruption_detected, "record {record}: the flipped bit was not noticed");
        assert_eq!(report.lanes, record as u64, "record {record}: only the records before the rot are replayed");
        assert!(rotten.node.is_rejoining());
        let refused = rotten.node.write(0, vec![WorldOp::Add { key: 99, delta: 1 }]);
        assert!(matches!(refused, Err(LaneError::Rejoining { .. })), "{refused:?}");

        // A crash before the rejoin ends: the log remembers it.
        let (again, report) = Driver::open(syncing(), rotten.crashed_store(None)).unwrap();
        assert!(!report.corruption_detected, "the rotten record was truncated away");
        assert!(again.node.is_rejoining(), "record {record}: a crash ended the rejoin");

        // Peers bring the lanes back; the last of the two completes it.
        let mut cluster = rejoin_cluster(again, &lanes);
        cluster.sync(0);
        assert!(cluster.drivers[0].node.is_rejoining(), "one of two peers is not every peer");
        cluster.sync(0);
        let again = &mut cluster.drivers[0];
        assert!(!again.node.is_rejoining());
        assert!(again.events.contains(&NodeEvent::Rejoined));
        assert_eq!(again.node.status(), held);
        let (mut rejoined, _) = Driver::open(syncing(), again.crashed_store(None)).unwrap();
        assert!(!rejoined.node.is_rejoining(), "the end of the rejoin was not recorded");
        rejoined.write(vec![WorldOp::Add { key: 99, delta: 1 }]);
        assert_eq!(rejoined.node.status().lane_index, held.lane_index + 1);
    }
}

/// Goal: a torn write is not rot: the node keeps authoring after it.
#[test]
fn a_torn_write_is_not_taken_for_rot() {
    let mut driver = Driver::fresh(config(0, 3));
    for key in 0..5 {
        driver.write(vec![WorldOp::Add { key, delta: 1 }]);
    }
    driver.store.append(RecordKind::Lane, &[7; 40]).unwrap();
    let (mut recovered, report) = Driver::open(node_config(config(0, 3)), driver.crashed_store(Some(20))).unwrap();
    assert_eq!((report.torn_tail_bytes, report.corruption_detected), (20, false));
    assert!(!recovered.node.is_rejoining());
    recovered.write(vec![WorldOp::Add { key: 9, delta: 1 }]);
}

/// Goal: compaction (after pruning, or installing a snapshot) keeps the
/// rejoin record, so a crash after it still finds the node rejoining.
#[test]
fn compaction_while_rejoining_keeps_the_rejoin_record() {
    let lanes = history(31, 2, 400);
    let mut rejoining = pruning(0, 2);
    rejoining.rejoining = true;
    let mut driver = Driver::fresh(rejoining);
    assert!(driver.node.is_rejoining());
    for chunk in lanes.chunks(25) {
        driver.receive(NodeId(1), chunk);
    }
    assert!(driver.node.replica().prune_index() > 0, "the history must stabilise, prune and compact");
    assert_eq!(driver.log()[0].kind, RecordKind::Snapshot, "the log was compacted");
    let (reopened, _) = Driver::open(syncing_config(pruning(0, 2), &[1]), driver.crashed_store(None)).unwrap();
    assert!(reopened.node.is_rejoining(), "compaction dropped the rejoin record");
    let mut peer = Driver::fresh(pruning(1, 2));
    peer.receive(NodeId(0), &lanes);
    let mut cluster = Cluster { drivers: vec![reopened, peer] };
    cluster.sync(0);
    assert!(!cluster.drivers[0].node.is_rejoining());
    let (done, _) = Driver::open(node_config(pruning(0, 2)), cluster.drivers[0].crashed_store(None)).unwrap();
    assert!(!done.node.is_rejoining(), "the end of the rejoin was not recorded");
}

/// Goal: cutting a rotten log and remembering why are one step: a crash
/// right after recovery's load (before the node could record anything)
/// still opens the node rejoining.
#[test]
fn a_crash_right_after_the_rotten_log_was_cut_still_rejoins() {
    let mut driver = Driver::fresh(config(0, 3));
    for key in 0..10 {
        driver.write(vec![WorldOp::Add { key, delta: 1 }]);
    }
    let (start, length) = payload_offsets(driver.store.durable_bytes())[4];
    let mut store = driver.store.clone();
    store.corrupt(start + length / 2, 0x10);
    let recovered = store.load().unwrap();
    assert_eq!(recovered.records.len(), 4);
    store.crash(None);
    let (reopened, report) = Driver::open(node_config(config(0, 3)), store).unwrap();
    assert!(!report.corruption_detected, "the log was already cut");
    assert!(reopened.node.is_rejoining(), "the cut erased why the log is shorter");
}

#[test]
fn a_log_missing_a_lane_that_later_lanes_name_is_a_recovery_error() {
    let lanes = history(31, 2, 120);
    let mut driver = Driver::fresh(config(0, 2));
    driver.receive(NodeId(1), &lanes);
    let records = driver.log();
    let first_lane = records.iter().position(|record| record.kind == RecordKind::Lane).expect("lanes were logged");
    let mut rewritten = records.clone();
    rewritten.remove(first_lane);
    let mut store = MemStore::new();
    store.replace(&rewritten).unwrap();
    match Driver::open(node_config(config(0, 2)), store) {
        Ok(_) => panic!("a log whose lanes name a lane it lacks was recovered"),
        Err(error) => assert!(matches!(error, RecoveryError::DanglingLanes { count } if count > 0), "{error}"),
    }
}

#[test]
fn a_log_torn_inside_its_header_is_a_tear_and_an_empty_log_is_none() {
    let mut driver = Driver::fresh(config(0, 2));
    driver.write(vec![WorldOp::Add { key: 1, delta: 1 }]);
    let intact = driver.store.durable_bytes().to_vec();
    let empty = scx_engine::log::decode_log(&[]);
    assert_eq!((empty.defect, empty.records.len(), empty.valid_bytes), (None, 0, 0));
    // A crash while the header itself was written: any strict prefix of it.
    let header = LOG_HEADER.len();
    for cut in 1..header {
        let recovered = scx_engine::log::decode_log(&intact[..cut]);
        assert_eq!(recovered.defect, Some(scx_engine::log::TailDefect::Truncated), "cut at {cut}");
        assert_eq!((recovered.valid_bytes, recovered.torn_tail_bytes), (0, cut as u64), "cut at {cut}");
        assert!(recovered.records.is_empty());
    }
}

#[test]
fn a_log_that_is_not_ours_to_cut_is_refused_not_repaired() {
    let lanes = history(32, 2, 40);
    let mut driver = Driver::fresh(config(0, 2));
    driver.receive(NodeId(1), &lanes);
    let intact = driver.store.durable_bytes().to_vec();
    // A record of a kind this version does not know, checksum valid (a newer
    // writer), and a log that does not start with our header.
    let mut newer = intact.clone();
    let head = [1, 0, 0, 0, 0xee];
    newer.extend_from_slice(&head);
    newer.extend_from_slice(&scx_engine::log::frame_checksum(&head, &[7]).to_le_bytes());
    newer.push(7);
    let mut foreign = intact.clone();
    foreign[0] ^= 0xff;
    for (what, image) in [("unknown record kind", newer), ("foreign header", foreign)] {
        let recovered = scx_engine::log::decode_log(&image);
        assert!(recovered.defect.is_some_and(|defect| !defect.is_repairable()), "{what}: {:?}", recovered.defect);
        match scx_engine::Node::recover(scx_engine::World, node_config(config(0, 2)), &recovered, 0) {
            Ok(_) => panic!("{what}: the node opened on a log it must not cut"),
            Err(error) => assert!(matches!(error, RecoveryError::UnrepairableTail { .. }), "{what}: {error}"),
        }
    }
    // The intact log itself recovers.
    let recovered = scx_engine::log::decode_log(&intact);
    assert!(scx_engine::Node::recover(scx_engine::World, node_config(config(0, 2)), &recovered, 0).is_ok());
}
