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
        let bytes = source.snapshot_transfer().to_bytes();
        let decoded = Snapshot::from_bytes(&bytes).unwrap();
        let mut restored = crate::support::replica(1, authors);
        restored.install_snapshot(&decoded).unwrap();
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
fn the_stable_key_is_at_or_past_the_last_lane_of_the_newest_stable_snapshot() {
    let lanes = history(21, 3, 300);
    let (replica, _) = replay(0, 3, &lanes);
    let latest = replica.snapshots().latest().unwrap();
    assert!(latest.header.lane_index > 0, "a 300-step history with pulls must stabilise some prefix");
    let snapshot_last = latest.header.tips.iter().map(|tip| (tip.lamport, tip.author, tip.id)).max();
    let stable = replica.stable_key().expect("a committed stable snapshot means a stable prefix");
    assert!(Some(stable) >= snapshot_last, "stable key {stable:?} is below the snapshot's last lane {snapshot_last:?}");
}

#[test]
fn a_lone_member_is_stable_up_to_its_last_snapshot_point_and_its_stamp() {
    // One member, one chain: lane n has stamp n, and everything held is
    // stable, so the stable point is the last snapshot point (every 16).
    let mut replica = crate::support::replica(0, 1);
    assert_eq!((replica.stable_key(), replica.stable_max_lamport()), (None, 0));
    for key in 0..20 {
        replica.create_lane(vec![scx_engine::WorldOp::Add { key, delta: 1 }]).unwrap();
    }
    let _ = replica.status();
    assert_eq!(replica.snapshots().latest().map(|snapshot| snapshot.header.lane_index), Some(16));
    assert_eq!(replica.stable_max_lamport(), 16);
    assert_eq!(replica.stable_key().map(|key| key.0), Some(16));
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
        match fresh.install_snapshot(&decoded) {
            Ok(_) => panic!("tampered byte {position} was accepted"),
            Err(error) => assert!(matches!(error, SnapshotError::DigestMismatch { .. } | SnapshotError::Decode(_))),
        }
        assert_eq!(fresh.status(), before);
    }
}

// ---- the boundary in the header ---------------------------------------------

/// Inserts `lanes` into `replica` in the order of `rng`'s shuffle (lanes
/// whose ancestry is missing wait), asking for the status at random points
/// so stability advances at different moments.
fn deliver_shuffled(replica: &mut Replica<World>, lanes: &[scx_engine::Lane<scx_engine::WorldOp>], rng: &mut Rng) {
    let mut order: Vec<usize> = (0..lanes.len()).collect();
    // Shuffle within windows: lanes arrive out of order, but not all of a
    // history's ancestry waits until the end.
    for window in order.chunks_mut(24) {
        rng.shuffle(window);
    }
    for index in order {
        let _ = replica.insert(lanes[index].clone());
        if rng.below(7) == 0 {
            let _ = replica.status();
        }
    }
    let _ = replica.status();
}

/// The boundary of the prefix of `canonical` (a whole history in canonical
/// order) that ends at `lane_index`, by its definition: the lanes of the
/// prefix that are not their author's last lane in it, but that a lane
/// outside it names as a parent; sorted by author and seq.
fn boundary_by_definition(
    canonical: &[scx_engine::Lane<scx_engine::WorldOp>],
    lane_index: u64,
) -> Vec<scx_engine::Tip> {
    use std::collections::BTreeMap;
    let (inside, outside) = canonical.split_at(lane_index as usize);
    let by_id: BTreeMap<scx_engine::LaneId, &scx_engine::Lane<scx_engine::WorldOp>> =
        inside.iter().map(|lane| (lane.id(), lane)).collect();
    let mut last_seq: BTreeMap<scx_engine::NodeId, u64> = BTreeMap::new();
    for lane in inside {
        let seq = last_seq.entry(lane.author).or_default();
        *seq = (*seq).max(lane.seq);
    }
    let mut boundary = BTreeMap::new();
    for parent in outside.iter().flat_map(|lane| &lane.parents) {
        if let Some(lane) = by_id.get(parent)
            && last_seq[&lane.author] != lane.seq
        {
            let tip = scx_engine::Tip { author: lane.author, seq: lane.seq, lamport: lane.lamport, id: *parent };
            boundary.insert((lane.author, lane.seq), tip);
        }
    }
    boundary.into_values().collect()
}

#[test]
fn replicas_reaching_one_stable_prefix_by_different_orders_compute_one_header_boundary_included() {
    // The claim the header's boundary rests on: when a prefix becomes
    // stable at a node, the node holds every lane that names a non-tip lane
    // of it, so the boundary (hence the id) is the same on every node,
    // whenever and in whatever order the lanes arrived. Replicas of one
    // history (with pulls between authors, so lanes name other authors'
    // heads) get the lanes in different orders, with stability checked at
    // different moments, one of them pruning, one of them starting from a
    // peer's snapshot; every snapshot point they share must have one id.
    let mut boundaries = 0;
    for seed in 0..12u64 {
        let authors = 3 + (seed % 2) as u32;
        let lanes = history(seed, authors, 400);
        let (mut reference, _) = replay(0, authors, &lanes);
        let mut replicas = Vec::new();
        for order in 0..3u64 {
            let mut config = crate::support::config(order as u32 % authors, authors);
            config.prune = order == 2;
            let mut replica = Replica::new(World, config);
            deliver_shuffled(&mut replica, &lanes, &mut Rng::new(seed * 31 + order));
            replicas.push(replica);
        }
        // A replica that starts from the reference's snapshot and gets the rest.
        let mut restored = crate::support::replica(1, authors);
        restored.install_snapshot(reference.snapshot_transfer()).unwrap();
        deliver_shuffled(&mut restored, &lanes, &mut Rng::new(seed * 31 + 9));
        replicas.push(restored);
        // And one from a snapshot of the first half, so that many later
        // lanes name lanes it never held (covered by the snapshot).
        let (half, _) = replay(0, authors, &lanes[..lanes.len() / 2]);
        let mut restored = crate::support::replica(2 % authors, authors);
        restored.install_snapshot(half.snapshot_transfer()).unwrap();
        deliver_shuffled(&mut restored, &lanes, &mut Rng::new(seed * 31 + 10));
        replicas.push(restored);
        let expected = reference.status();
        for (index, replica) in replicas.iter_mut().enumerate() {
            assert_eq!(replica.status().chain_hash, expected.chain_hash, "seed {seed} replica {index}");
            for (lane_index, id) in replica.snapshots().lineage() {
                if let Some(theirs) = reference.snapshots().id_at(lane_index) {
                    assert_eq!(id, theirs, "seed {seed} replica {index}: snapshot ids differ at lane {lane_index}");
                }
            }
            let latest = replica.snapshots().latest().unwrap();
            if let Some(full) =
                reference.snapshots().latest().filter(|s| s.header.lane_index == latest.header.lane_index)
            {
                assert_eq!(latest.header, full.header, "seed {seed} replica {index}");
            }
        }
        // Every replica's newest header against the definition, computed
        // here from the whole history in canonical order.
        let canonical: Vec<scx_engine::Lane<scx_engine::WorldOp>> =
            reference.canonical_lanes().map(|(_, lane)| lane.clone()).collect();
        for (index, replica) in std::iter::once(&reference).chain(&replicas).enumerate() {
            let header = &replica.snapshots().latest().unwrap().header;
            let expected = boundary_by_definition(&canonical, header.lane_index);
            assert_eq!(header.boundary, expected, "seed {seed} replica {index} at lane {}", header.lane_index);
        }
        boundaries += reference.snapshots().latest().unwrap().header.boundary.len();
        let shared = replicas.iter().filter(|replica| replica.snapshots().lineage().count() > 2).count();
        assert!(shared >= 3, "seed {seed}: the replicas passed several snapshot points");
    }
    assert!(boundaries > 0, "some prefix has a boundary, or the test shows nothing about it");
}

#[test]
fn the_boundary_is_covered_by_the_snapshot_id() {
    let lanes = history(5, 3, 400);
    let (source, _) = replay(0, 3, &lanes);
    let honest = source.snapshot_transfer().clone();
    let front = honest.header.tips.iter().find(|tip| tip.seq > 2).copied().unwrap();
    let mut header = honest.header.clone();
    header.boundary.retain(|tip| (tip.author, tip.seq) != (front.author, 1));
    header.boundary.push(scx_engine::Tip { author: front.author, seq: 1, lamport: 1, id: scx_engine::LaneId([9; 32]) });
    header.boundary.sort_by_key(|tip| (tip.author, tip.seq));
    assert_ne!(header.id(), honest.id, "another boundary, another id");
    let forged = Snapshot { id: honest.id, header: header.clone(), state: honest.state.clone() };
    let mut fresh = crate::support::replica(1, 3);
    assert!(matches!(fresh.install_snapshot(&forged), Err(SnapshotError::IdMismatch { .. })), "the id covers it");
    // Re-sealed, it is another snapshot at the same point: a replica that
    // passed the point refuses it, and one that took it diverges from the
    // honest chain, which any handshake with an honest node surfaces.
    let resealed = Snapshot { id: header.id(), header, state: honest.state.clone() };
    let (mut passed, _) = replay(2, 3, &lanes);
    assert!(matches!(passed.install_snapshot(&resealed), Err(SnapshotError::Diverged { .. })));
    let mut fooled = crate::support::replica(1, 3);
    assert_eq!(fooled.install_snapshot(&resealed), Ok(true));
    assert_ne!(fooled.snapshots().id_at(honest.header.lane_index), source.snapshots().id_at(honest.header.lane_index));
    // The handshake surfaces it: the honest answerer sees another id at a
    // snapshot point it passed.
    let mut net = crate::net::Cluster::new(3, 5, true);
    net.replicas[0] = source;
    net.replicas[1] = fooled;
    net.sync(1, 0, &crate::net::Faults::NONE);
    let diverged = net.events.iter().any(|(node, event)| {
        *node == 0
            && matches!(event, scx_engine::protocol::SyncEvent::Diverged { error: SnapshotError::Diverged { lane_index, .. }, .. }
                if *lane_index == honest.header.lane_index)
    });
    assert!(diverged, "the handshake did not surface the divergent snapshot chain: {:?}", net.events);
}

/// A header over one author's chain of three lanes (seqs 1..=3, stamps
/// 1..=3) with `boundary`.
fn header_with(boundary: Vec<scx_engine::Tip>) -> scx_engine::SnapshotHeader {
    let tip = scx_engine::Tip { author: scx_engine::NodeId(0), seq: 3, lamport: 3, id: scx_engine::LaneId([3; 32]) };
    scx_engine::SnapshotHeader {
        parent: scx_engine::SnapshotId::ZERO,
        lane_index: 3,
        chain_hash: scx_engine::ChainHash::ZERO,
        state_digest: scx_engine::StateDigest::ZERO,
        max_lamport: 3,
        tips: vec![tip],
        boundary,
    }
}

#[test]
fn a_boundary_that_cannot_be_covered_non_tip_lanes_is_refused_rule_by_rule() {
    use scx_engine::{LaneId, NodeId, Tip};
    let lane = |author, seq, lamport, byte| Tip { author: NodeId(author), seq, lamport, id: LaneId([byte; 32]) };
    assert_eq!(header_with(vec![lane(0, 1, 1, 1), lane(0, 2, 2, 2)]).check_consistent(), Ok(()));
    let cases = [
        (vec![lane(0, 2, 2, 2), lane(0, 1, 1, 1)], "entries must ascend by author and seq"),
        (vec![lane(0, 1, 1, 1), lane(0, 1, 1, 2)], "entries must ascend by author and seq"),
        (vec![lane(1, 1, 1, 1)], "its author is not on the frontier"),
        (vec![lane(0, 3, 2, 1)], "its seq is not below its author's tip"),
        (vec![lane(0, 0, 1, 1)], "its seq is not below its author's tip"),
        (vec![lane(0, 2, 1, 1)], "its stamp is below its seq"),
        (vec![lane(0, 1, 3, 1)], "its stamp is not below its author's tip's by the seq gap"),
        (vec![lane(0, 1, 1, 3)], "its id appears twice"),
        (vec![lane(0, 1, 1, 1), lane(0, 2, 2, 1)], "its id appears twice"),
    ];
    for (boundary, expected) in cases {
        let header = header_with(boundary.clone());
        match header.check_consistent() {
            Err(SnapshotError::BadBoundary { rule, .. }) => assert_eq!(rule, expected, "{boundary:?}"),
            other => panic!("{boundary:?}: expected {expected:?}, got {other:?}"),
        }
    }
}

#[test]
fn peer_numbers_that_would_wrap_are_overflow_errors() {
    use scx_engine::{LaneId, NodeId, Tip};
    // A boundary stamp near u64::MAX plus its seq gap to the tip wraps.
    let mut header = header_with(vec![Tip { author: NodeId(0), seq: 1, lamport: u64::MAX - 1, id: LaneId([1; 32]) }]);
    header.tips[0].lamport = u64::MAX;
    header.max_lamport = u64::MAX;
    assert!(matches!(
        header.check_boundary(),
        Err(SnapshotError::Overflow { what: "a boundary stamp plus its seq gap to the tip", .. })
    ));
    // Tips' seqs whose sum wraps to the claimed lane index.
    let mut header = header_with(Vec::new());
    header.tips.push(Tip { author: NodeId(1), seq: u64::MAX - 1, lamport: 1, id: LaneId([4; 32]) });
    header.lane_index = 3u64.wrapping_add(u64::MAX - 1);
    assert!(matches!(
        header.check_consistent(),
        Err(SnapshotError::Overflow { what: "the sum of the tips' seqs", .. })
    ));
}

#[test]
fn a_decoded_header_keeps_its_boundary_in_canonical_order() {
    let lanes = history(5, 3, 400);
    let (source, _) = replay(0, 3, &lanes);
    let mut header = source.snapshot_transfer().header.clone();
    let front = header.tips.iter().find(|tip| tip.seq > 2).copied().unwrap();
    header.boundary = vec![
        scx_engine::Tip { author: front.author, seq: 2, lamport: 2, id: scx_engine::LaneId([2; 32]) },
        scx_engine::Tip { author: front.author, seq: 1, lamport: 1, id: scx_engine::LaneId([1; 32]) },
    ];
    let mut bytes = Vec::new();
    header.encode(&mut bytes);
    let refused = scx_engine::SnapshotHeader::decode(&mut scx_engine::codec::Reader::new(&bytes));
    assert!(refused.is_err(), "a boundary out of order has a second encoding, so it is refused");
    header.boundary.reverse();
    let mut bytes = Vec::new();
    header.encode(&mut bytes);
    let decoded = scx_engine::SnapshotHeader::decode(&mut scx_engine::codec::Reader::new(&bytes)).unwrap();
    assert_eq!(decoded, header);
}

#[test]
fn installing_over_held_lanes_drops_the_covered_bodies_keeps_the_rest_and_recomputes_the_heads() {
    // A replica holding the first quarter of a history installs the stable
    // snapshot of a peer that holds the first half: the lanes the snapshot
    // covers (those at or below its tips) leave the DAG as pruned
    // references, the others stay with their bodies, and the heads are the
    // frontier of what remains (held lanes and tips that no held lane names).
    let mut tips_held_before = 0;
    for seed in 0..8u64 {
        let authors = 3;
        let lanes = history(seed, authors, 400);
        let (half, _) = replay(0, authors, &lanes[..lanes.len() / 2]);
        let snapshot = half.snapshot_transfer().clone();
        let quarter = &lanes[..lanes.len() / 4];
        let mut restored = crate::support::replica(1, authors);
        for lane in quarter {
            restored.insert(lane.clone()).expect("an honest prefix");
        }
        let tips = &snapshot.header.tips;
        tips_held_before += tips.iter().filter(|tip| restored.lane(&tip.id).is_some()).count();
        assert_eq!(restored.install_snapshot(&snapshot), Ok(true), "seed {seed}: the snapshot is newer");
        for lane in quarter {
            let covered = tips.iter().any(|tip| tip.author == lane.author && lane.seq <= tip.seq);
            let id = lane.id();
            assert_eq!(restored.lane(&id).is_some(), !covered, "seed {seed}: lane {:?}/{}", lane.author, lane.seq);
            assert!(restored.holds(&id) || !tips.iter().any(|tip| tip.id == id), "seed {seed}: a tip stays named");
        }
        let held: Vec<(scx_engine::LaneId, Vec<scx_engine::LaneId>)> =
            restored.canonical_lanes().map(|(id, lane)| (id, lane.parents.clone())).collect();
        let mut frontier: std::collections::BTreeSet<scx_engine::LaneId> =
            held.iter().map(|(id, _)| *id).chain(tips.iter().map(|tip| tip.id)).collect();
        for parent in held.iter().flat_map(|(_, parents)| parents) {
            frontier.remove(parent);
        }
        assert_eq!(restored.heads(), &frontier, "seed {seed}: the heads after the install");
    }
    assert!(tips_held_before > 0, "some snapshot tip was a held lane before its install");
}

#[test]
fn a_lane_naming_a_lane_its_receiver_pruned_still_puts_it_in_later_boundaries() {
    // A replica that starts from a snapshot holds the lanes after it; a
    // held lane naming a non-tip lane of the snapshot (a boundary lane,
    // never held here) keeps that lane in the boundary of every later
    // prefix it stays outside. Members A, B, C (0, 1, 2); lamports in
    // brackets. C writes c1..c40 alone [1..40]; A writes a1 [1], a2 [2]; C
    // gets a1 only and writes x over c40 and a1 [41].
    let lane = |author: u32, seq: u64, parents: &[&scx_engine::Lane<scx_engine::WorldOp>]| {
        let lamport = parents.iter().map(|parent| parent.lamport).max().unwrap_or(0) + 1;
        let ids = parents.iter().map(|parent| parent.id()).collect();
        scx_engine::Lane::new(
            scx_engine::NodeId(author),
            seq,
            lamport,
            ids,
            vec![scx_engine::WorldOp::Add { key: author, delta: 1 }],
        )
    };
    let a1 = lane(0, 1, &[]);
    let a2 = lane(0, 2, &[&a1]);
    let mut c = vec![lane(2, 1, &[])];
    for seq in 2..=40 {
        c.push(lane(2, seq, &[&c[c.len() - 1]]));
    }
    let x = lane(2, 41, &[&c[39], &a1]);
    // A and C catch up; B has seen up to c20. Stable: a1, c1, a2, c2..c20
    // (22 lanes), so the snapshot at 16 is the newest: a1 is in its boundary.
    let a3 = lane(0, 3, &[&a2, &x]);
    let b1 = lane(1, 1, &[&a2, &c[19]]);
    let c42 = lane(2, 42, &[&x, &a2]);
    let mut source = crate::support::replica(0, 3);
    let first: Vec<&scx_engine::Lane<scx_engine::WorldOp>> =
        [&a1, &a2].into_iter().chain(&c).chain([&x, &a3, &b1, &c42]).collect();
    for lane in &first {
        source.insert((*lane).clone()).unwrap();
    }
    let _ = source.status();
    let snapshot = source.snapshot_transfer().clone();
    assert_eq!(snapshot.header.lane_index, 16);
    assert!(snapshot.header.boundary.iter().any(|tip| tip.id == a1.id()), "a1 is a boundary lane at 16");
    // Then everyone catches up: stable up to b2 (47 lanes), so the snapshot
    // at 32 is committed, with x (index 44) outside it, naming a1.
    let b2 = lane(1, 2, &[&b1, &a3, &c42]);
    let a4 = lane(0, 4, &[&a3, &b2]);
    let c43 = lane(2, 43, &[&c42, &a4]);
    let all: Vec<&scx_engine::Lane<scx_engine::WorldOp>> = first.into_iter().chain([&b2, &a4, &c43]).collect();
    let mut reference = crate::support::replica(1, 3);
    let mut restored = crate::support::replica(1, 3);
    restored.install_snapshot(&snapshot).unwrap();
    for lane in &all {
        reference.insert((*lane).clone()).unwrap();
        let _ = restored.insert((*lane).clone());
    }
    let _ = (reference.status(), restored.status());
    let (expected, actual) = (reference.snapshots().latest().unwrap(), restored.snapshots().latest().unwrap());
    assert_eq!(expected.header.lane_index, 32);
    assert!(expected.header.boundary.iter().any(|tip| tip.id == a1.id()), "a1 is a boundary lane at 32 too");
    assert_eq!(actual.header, expected.header);
}
