//! Goal: bad lanes are refused with a typed error and leave the replica
//! exactly as it was. Method: tamper with bytes, ids, stamps, chains and
//! parents of otherwise valid lanes and compare the status before and after.

use crate::support::{history, replay};
use scx_engine::lane::LaneShapeError;
use scx_engine::{Inserted, Lane, LaneError, LaneId, NodeId, WorldOp};

fn base() -> (Vec<Lane<WorldOp>>, scx_engine::Replica<scx_engine::World>) {
    let lanes = history(3, 3, 40);
    let (replica, _) = replay(0, 3, &lanes);
    (lanes, replica)
}

#[test]
fn tampered_bytes_never_panic_and_never_change_state() {
    let (lanes, mut replica) = base();
    let before = replica.status();
    let mut fresh = replica_with_all_but_last(&lanes);
    let fresh_before = fresh.status();
    let bytes = lanes.last().unwrap().to_bytes();
    for position in 0..bytes.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut tampered = bytes.clone();
            tampered[position] ^= flip;
            let _ = replica.insert_bytes(&tampered);
            if let Err(error) = fresh.insert_claimed(lanes.last().unwrap().id(), &tampered) {
                assert!(!error.to_string().is_empty());
            }
        }
    }
    assert_eq!(replica.status(), before, "the full replica holds every valid lane already");
    assert_eq!(fresh.status(), fresh_before, "no tampered copy of the missing lane was accepted");
}

fn replica_with_all_but_last(lanes: &[Lane<WorldOp>]) -> scx_engine::Replica<scx_engine::World> {
    replay(0, 3, &lanes[..lanes.len() - 1]).0
}

#[test]
fn a_wrong_claimed_id_is_refused() {
    let (lanes, _) = base();
    let mut replica = replica_with_all_but_last(&lanes);
    let bytes = lanes.last().unwrap().to_bytes();
    let error = replica.insert_claimed(LaneId([7; 32]), &bytes).unwrap_err();
    assert!(matches!(error, LaneError::IdMismatch { .. }), "{error}");
}

#[test]
fn a_forged_lamport_is_refused() {
    let (_, mut replica) = base();
    let before = replica.status();
    let mut lane = replica.prepare_lane(vec![WorldOp::Add { key: 1, delta: 1 }]);
    lane.lamport += 5;
    let error = replica.insert(lane).unwrap_err();
    assert!(matches!(error, LaneError::BadLamport { .. }), "{error}");
    assert_eq!(replica.status(), before);
}

#[test]
fn a_lane_skipping_its_own_chain_is_refused() {
    let (_, mut replica) = base();
    let mut lane = replica.prepare_lane(vec![]);
    // Drop the own-author parent: the chain no longer links.
    let own = replica.author_tips()[&NodeId(0)].1;
    lane.parents.retain(|parent| *parent != own);
    lane.lamport = 1 + lane.parents.iter().map(|id| replica.lane(id).unwrap().lamport).max().unwrap_or(0);
    let error = replica.insert(lane).unwrap_err();
    assert!(matches!(error, LaneError::BrokenChain { .. }), "{error}");
}

#[test]
fn a_lane_with_a_forged_parent_waits_and_is_never_applied() {
    // A parent id nobody holds: the lane can only wait. Since ids are hashes of
    // content that includes the parents, a cycle cannot be built either: a lane
    // naming a descendant as its parent names an id that cannot exist yet.
    let (_, mut replica) = base();
    let before = replica.status();
    let mut lane = replica.prepare_lane(vec![WorldOp::Add { key: 1, delta: 1 }]);
    lane.parents.push(LaneId([0xee; 32]));
    lane.parents.sort();
    assert_eq!(replica.insert(lane.clone()).unwrap(), Inserted::Pending);
    assert_eq!(replica.status(), before);
    assert_eq!(replica.pending_lanes(), 1);
    // A "cycle": a lane whose parent is the pending lane itself, and vice versa, cannot both exist;
    // the child of the forged lane waits too and nothing is applied.
    let child = Lane::new(NodeId(0), lane.seq + 1, lane.lamport + 1, vec![lane.id()], vec![]);
    assert_eq!(replica.insert(child).unwrap(), Inserted::Pending);
    assert_eq!(replica.status(), before);
    assert_eq!((replica.metrics().lanes_pended, replica.metrics().lanes_released), (2, 0));
}

#[test]
fn lanes_that_waited_are_counted_pended_then_released() {
    let mut author = crate::support::replica(0, 3);
    let lanes: Vec<Lane<WorldOp>> =
        (0..3).map(|n| author.create_lane(vec![WorldOp::Add { key: n, delta: 1 }]).unwrap().1).collect();
    let mut replica = crate::support::replica(1, 3);
    // The two children first: they wait; their ancestor releases both.
    assert_eq!(replica.insert(lanes[2].clone()).unwrap(), Inserted::Pending);
    assert_eq!(replica.insert(lanes[1].clone()).unwrap(), Inserted::Pending);
    assert!(matches!(replica.insert(lanes[0].clone()).unwrap(), Inserted::Admitted(ids) if ids.len() == 3));
    assert_eq!((replica.metrics().lanes_pended, replica.metrics().lanes_released), (2, 2));
}

#[test]
fn a_fork_is_kept_as_evidence_and_surfaced() {
    let (_, mut replica) = base();
    let first = replica.prepare_lane(vec![WorldOp::Add { key: 1, delta: 1 }]);
    let second = replica.prepare_lane(vec![WorldOp::Add { key: 1, delta: 2 }]);
    replica.insert(first.clone()).unwrap();
    let before = replica.status();
    let error = replica.insert(second.clone()).unwrap_err();
    assert!(matches!(error, LaneError::Fork { .. }), "{error}");
    let (proofs, seen) = replica.forks();
    assert_eq!(seen, 1);
    assert_eq!(proofs[0].kept, first.id());
    assert_eq!(proofs[0].other, second.id());
    assert_eq!(Lane::<WorldOp>::decode(&proofs[0].other_bytes).unwrap().1, second);
    assert!(matches!(replica.poll_event(), Some(scx_engine::Event::Fork(_))));
    assert_eq!(replica.status(), before, "neither lane was silently replaced");
}

#[test]
fn fork_proofs_are_capped_but_every_fork_is_counted() {
    // One more fork than the proofs kept: the count goes on, the list stops
    // at its cap, and the proofs kept are the first ones found.
    let (_, mut replica) = base();
    let cap = scx_engine::dag::MAX_FORK_PROOFS;
    let mut others = Vec::new();
    for round in 0..=cap as i64 {
        let kept = replica.prepare_lane(vec![WorldOp::Add { key: 1, delta: round }]);
        let other = replica.prepare_lane(vec![WorldOp::Add { key: 1, delta: -round - 1 }]);
        replica.insert(kept).unwrap();
        assert!(matches!(replica.insert(other.clone()), Err(LaneError::Fork { .. })));
        others.push(other.id());
    }
    let (proofs, seen) = replica.forks();
    assert_eq!(seen, cap as u64 + 1);
    assert_eq!(proofs.len(), cap);
    let kept: Vec<LaneId> = proofs.iter().map(|proof| proof.other).collect();
    assert_eq!(kept, others[..cap]);
}

#[test]
fn a_waiting_lane_released_as_a_fork_is_surfaced_with_its_proof() {
    // Author 1's second seq twice, both waiting for author 1's first lane:
    // when it arrives it releases both, one is admitted and the other is
    // refused as a fork on release, and must still come with its proof.
    let op = |delta| vec![WorldOp::Add { key: 1, delta }];
    let first = Lane::new(NodeId(1), 1, 1, vec![], op(1));
    let one = Lane::new(NodeId(1), 2, 2, vec![first.id()], op(3));
    let two = Lane::new(NodeId(1), 2, 2, vec![first.id()], op(4));
    let mut replica = crate::support::replica(0, 3);
    assert_eq!(replica.insert(one.clone()).unwrap(), Inserted::Pending);
    assert_eq!(replica.insert(two.clone()).unwrap(), Inserted::Pending);
    while replica.poll_event().is_some() {}
    replica.insert(first).unwrap();
    let events: Vec<scx_engine::Event> = std::iter::from_fn(|| replica.poll_event()).collect();
    let proofs: Vec<_> = events
        .iter()
        .filter_map(|event| match event {
            scx_engine::Event::Fork(proof) => Some((proof.kept, proof.other)),
            _ => None,
        })
        .collect();
    assert_eq!(proofs.len(), 1, "{events:?}");
    let (kept, other) = proofs[0];
    assert!([(one.id(), two.id()), (two.id(), one.id())].contains(&(kept, other)), "{events:?}");
    assert!(!events.iter().any(|event| matches!(event, scx_engine::Event::Rejected { .. })), "{events:?}");
    assert_eq!((replica.forks().1, replica.pending_lanes(), replica.held_lanes()), (1, 0, 2));
}

#[test]
fn shape_errors_are_typed() {
    let (_, mut replica) = base();
    let mut lane = replica.prepare_lane(vec![]);
    lane.seq = 0;
    let error = replica.insert(lane).unwrap_err();
    assert!(matches!(error, LaneError::Shape { shape: LaneShapeError::SeqZero, .. }), "{error}");
}

#[test]
fn the_pending_set_is_bounded() {
    let lanes = history(9, 2, 40);
    let mut config = crate::support::config(0, 2);
    config.max_pending = 3;
    let mut replica = scx_engine::Replica::new(scx_engine::World, config);
    let mut full = 0;
    for lane in lanes.iter().skip(1).rev() {
        if let Err(LaneError::PendingFull { limit, .. }) = replica.insert(lane.clone()) {
            assert_eq!(limit, 3);
            full += 1;
        }
    }
    assert!(full > 0);
    assert!(replica.pending_lanes() <= 3);
}
