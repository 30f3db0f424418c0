//! Goal: snapshots and pruning never change the outcome. Method: replicas of
//! the same history with and without pruning, and a replica restored from a
//! peer's snapshot plus the suffix, must reach the same hashes as a full
//! replay; snapshot ids agree across replicas, and tampered snapshots are
//! refused.

use crate::support::{Rng, config, history, replay};
use proptest::prelude::*;
use scx_engine::{Event, Replica, Snapshot, SnapshotError, World};

fn pruning_replica(node: u32, members: u32) -> Replica<World> {
    let mut config = config(node, members);
    config.prune = true;
    Replica::new(World, config)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn pruned_and_unpruned_replicas_agree(seed: u64, authors in 1u32..4, steps in 50usize..250) {
        let lanes = history(seed, authors, steps);
        let (full, expected) = replay(0, authors, &lanes);
        let mut pruned = pruning_replica(0, authors);
        let mut rng = Rng::new(seed);
        for lane in &lanes {
            pruned.insert(lane.clone()).unwrap();
            if rng.below(5) == 0 {
                let _ = pruned.status();
            }
        }
        prop_assert_eq!(pruned.status(), expected.clone());
        prop_assert!(pruned.held_lanes() <= full.held_lanes());
        // Every snapshot point both passed has one id.
        for (index, id) in pruned.snapshots().lineage() {
            if let Some(theirs) = full.snapshots().id_at(index) {
                prop_assert_eq!(theirs, id);
            }
        }
        // Duplicates of pruned lanes are recognised, not re-applied.
        for lane in &lanes {
            let _ = pruned.insert(lane.clone());
        }
        prop_assert_eq!(pruned.status(), expected);
    }

    #[test]
    fn snapshot_plus_suffix_equals_full_replay(seed: u64, authors in 1u32..4, steps in 60usize..250) {
        let lanes = history(seed, authors, steps);
        let (mut source, expected) = replay(0, authors, &lanes);
        let (snapshot, boundary) = source.snapshot_transfer();
        let bytes = snapshot.to_bytes();
        let decoded = Snapshot::from_bytes(&bytes).unwrap();
        let mut restored = crate::support::replica(1, authors);
        restored.install_snapshot(&decoded, &boundary).unwrap();
        let suffix: Vec<_> = source.canonical_lanes().map(|(_, lane)| lane.clone()).collect();
        for lane in suffix {
            let _ = restored.insert(lane);
        }
        prop_assert_eq!(restored.status(), expected.clone());
        prop_assert_eq!(source.status(), expected);
    }
}

#[test]
fn stability_commits_snapshots_when_every_member_has_seen_the_prefix() {
    let lanes = history(21, 3, 300);
    let (mut replica, status) = replay(0, 3, &lanes);
    let mut committed = 0;
    while let Some(event) = replica.poll_event() {
        if let Event::SnapshotCommitted { lane_index, .. } = event {
            assert_eq!(lane_index % 16, 0);
            committed += 1;
        }
    }
    assert!(committed > 0, "a 300-step history with pulls must stabilise some prefix");
    let latest = replica.snapshots().latest().unwrap();
    assert!(latest.header.lane_index <= status.lane_index);
    assert!(latest.verify(&World).is_ok());
}

#[test]
fn a_lone_member_that_never_writes_blocks_stability() {
    // Member 2 exists but never writes: nothing is causally stable.
    let lanes = history(4, 2, 200);
    let (replica, _) = replay(0, 3, &lanes);
    assert_eq!(replica.snapshots().latest().unwrap().header.lane_index, 0);
}

#[test]
fn tampered_snapshots_are_refused() {
    let lanes = history(8, 2, 200);
    let (replica, _) = replay(0, 2, &lanes);
    let snapshot = replica.snapshots().latest().unwrap().clone();
    assert!(snapshot.header.lane_index > 0);
    let bytes = snapshot.to_bytes();
    for position in 0..bytes.len() {
        let mut tampered = bytes.clone();
        tampered[position] ^= 0x01;
        let Ok(decoded) = Snapshot::from_bytes(&tampered) else { continue };
        let mut fresh = crate::support::replica(1, 2);
        let before = fresh.status();
        match fresh.install_snapshot(&decoded, &[]) {
            Ok(_) => panic!("tampered byte {position} was accepted"),
            Err(error) => assert!(matches!(error, SnapshotError::DigestMismatch { .. } | SnapshotError::Decode(_))),
        }
        assert_eq!(fresh.status(), before);
    }
}
