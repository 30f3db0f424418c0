//! Engine bugs the protocol fuzzer found, each reproduced by the smallest
//! input that showed it, with the behaviour the fix gives.

use scx_engine::protocol::{self, Message, SnapshotOffer, WireSnapshot};
use scx_engine::{LaneId, NodeId, Replica, ReplicaConfig, Snapshot, SnapshotError, SnapshotHeader, World, WorldOp};

fn config(node: u32, prune: bool) -> ReplicaConfig {
    let mut config = ReplicaConfig::new(NodeId(node), [NodeId(0), NodeId(1)]);
    config.snapshot_interval = 16;
    config.checkpoint_interval = 4;
    config.prune = prune;
    config
}

fn copy(from: &mut Replica<World>, to: &mut Replica<World>) {
    let lanes: Vec<_> = from.canonical_lanes().map(|(_, lane)| lane.clone()).collect();
    for lane in lanes {
        let _ = to.insert(lane);
    }
}

/// Node 0 of a pair of members that wrote and exchanged lanes until node 0
/// pruned a stable prefix.
fn pruned_member(delta: i64) -> Replica<World> {
    pruned_member_and_lanes(delta).0
}

/// The same, with every lane either member wrote, in order.
fn pruned_member_and_lanes(delta: i64) -> (Replica<World>, Vec<scx_engine::Lane<WorldOp>>) {
    let mut a = Replica::new(World, config(0, true));
    let mut b = Replica::new(World, config(1, true));
    let mut written = Vec::new();
    for round in 0..40 {
        written.push(a.create_lane(vec![WorldOp::Add { key: 1, delta }]).unwrap().1);
        written.push(b.create_lane(vec![WorldOp::Add { key: 2, delta: round }]).unwrap().1);
        copy(&mut a, &mut b);
        copy(&mut b, &mut a);
        if a.prune_index() > 0 {
            return (a, written);
        }
    }
    panic!("the pair never pruned");
}

/// A receiver holding `count` lanes node 0 wrote alone: other lanes at the
/// same dots than the pruned member's history.
fn lone_chain(count: usize) -> Replica<World> {
    let mut writer = Replica::new(World, config(0, false));
    for _ in 0..count {
        writer.create_lane(vec![WorldOp::Insert { key: 9, element: 9 }]).unwrap();
    }
    let mut receiver = Replica::new(World, config(2, false));
    copy(&mut writer, &mut receiver);
    receiver
}

fn held(replica: &mut Replica<World>) -> Vec<LaneId> {
    replica.canonical_lanes().map(|(id, _)| id).collect()
}

#[test]
fn a_snapshot_naming_another_lane_at_a_held_dot_is_refused() {
    // Found by the fuzzer: a snapshot from another history, re-sealed, was
    // installed over a receiver that held a different lane at one of its
    // tips' dots; the receiver's lanes were silently replaced (a fork
    // resolved by whoever sent a snapshot first).
    let (mut sender, written) = pruned_member_and_lanes(1);
    let snapshot = sender.snapshot_transfer().clone();
    let tip = snapshot.header.tips.iter().find(|tip| tip.author == NodeId(0)).copied().unwrap();
    let mut receiver = lone_chain(tip.seq as usize + 3);
    let ours = receiver.lane_at(NodeId(0), tip.seq).unwrap();
    assert_ne!(ours, tip.id, "the two histories differ at the tip's dot");
    let before = held(&mut receiver);
    let status = receiver.status();

    // Through the protocol: a bundle of the pruned history.
    let bundle = protocol::bundle(&mut sender);
    let (metrics, _) = protocol::apply_bundle(&bundle, NodeId(0), &mut receiver).unwrap();
    assert_eq!(metrics.snapshots_installed, 0, "a snapshot that forks a held lane is not installed");
    assert!(before.iter().all(|id| receiver.holds(id)), "no held lane was dropped");
    assert_eq!(receiver.lane_at(NodeId(0), tip.seq), Some(ours));

    // And directly: a typed error naming both lanes.
    let mut receiver = lone_chain(tip.seq as usize + 3);
    match receiver.install_snapshot(&snapshot) {
        Err(SnapshotError::ForkedTip { author, seq, ours: held, theirs }) => {
            assert_eq!((author, seq, held, theirs), (NodeId(0), tip.seq, ours, tip.id));
        }
        other => panic!("expected a forked tip, got {other:?}"),
    }
    assert_eq!(receiver.status(), status);

    // A boundary lane that forks a held lane is refused alike: the
    // receiver holds node 0's first lane, and a re-sealed header names
    // another lane at that dot.
    let mut receiver = Replica::new(World, config(2, false));
    receiver.insert(written[0].clone()).unwrap();
    let status = receiver.status();
    let first = scx_engine::Tip { author: NodeId(0), seq: 1, lamport: written[0].lamport, id: LaneId([7; 32]) };
    let forged = resealed(&snapshot, |header| {
        header.boundary.retain(|tip| (tip.author, tip.seq) != (NodeId(0), 1));
        header.boundary.insert(0, first);
    });
    let (metrics, events) = protocol::apply_bundle(&snapshot_bundle(&forged), NodeId(0), &mut receiver).unwrap();
    assert_eq!(metrics.snapshots_installed, 0, "a boundary lane that forks a held lane is refused");
    assert!(
        events.iter().any(|event| matches!(
            event,
            protocol::SyncEvent::Diverged { error: SnapshotError::ForkedTip { seq: 1, .. }, .. }
        )),
        "{events:?}"
    );
    assert_eq!(receiver.status(), status);
}

/// `snapshot` with its header changed by `forge` and its id re-sealed.
fn resealed(snapshot: &Snapshot, forge: impl FnOnce(&mut SnapshotHeader)) -> Snapshot {
    let mut header = snapshot.header.clone();
    forge(&mut header);
    Snapshot { id: header.id(), header, state: snapshot.state.clone() }
}

/// A bundle of `snapshot` alone, in one chunk, and no lanes.
fn snapshot_bundle(snapshot: &Snapshot) -> Vec<u8> {
    let offer = SnapshotOffer::of(snapshot, protocol::MAX_CHUNK_BYTES).unwrap();
    assert_eq!(offer.chunk_count(), 1, "a small state travels in one chunk");
    let part =
        WireSnapshot { id: snapshot.id, offer: Some(offer.to_bytes()), chunk_index: 0, chunk: snapshot.state.clone() };
    let message = Message::Lanes {
        session: 0,
        snapshot: Some(part),
        lanes: vec![protocol::BATCH_FORMAT_VERSION],
        more: false,
        need: Vec::new(),
        snapshot_id: None,
    };
    protocol::write_bundle(&[protocol::encode(&message).unwrap()])
}

#[test]
fn a_forged_boundary_tip_naming_a_later_lane_does_not_wedge_the_receiver() {
    // Found by the fuzzer when boundary tips travelled beside the snapshot,
    // which no hash covered (now the header names them, and a forged one
    // takes a re-sealed header, which a peer behind the prune point has to
    // trust). A forged one that names the id of a real lane above the
    // snapshot, under another dot, made the receiver think it held that
    // lane: the real lane was dropped as a duplicate when it came, its
    // descendants waited forever, and honest sessions never converged.
    let mut sender = pruned_member(1);
    let snapshot = sender.snapshot_transfer().clone();
    let (later, _) = sender.canonical_lanes().next().map(|(id, lane)| (id, lane.clone())).unwrap();
    let forged = resealed(&snapshot, |header| {
        header.boundary.retain(|tip| (tip.author, tip.seq) != (NodeId(0), 1));
        header.boundary.insert(0, scx_engine::Tip { author: NodeId(0), seq: 1, lamport: 1, id: later });
    });
    let mut receiver = Replica::new(World, config(2, true));
    let (metrics, _) = protocol::apply_bundle(&snapshot_bundle(&forged), NodeId(0), &mut receiver).unwrap();
    assert_eq!(metrics.snapshots_installed, 1, "the forged header is well formed");
    // The honest rest arrives.
    protocol::apply_bundle(&protocol::bundle(&mut sender), sender.node(), &mut receiver).unwrap();
    assert!(receiver.lane(&later).is_some(), "the real lane is admitted, not taken for the forged reference");
    assert_eq!(receiver.pending_lanes(), 0);
    assert_eq!(receiver.status().chain_hash, sender.status().chain_hash);

    // Found next: a boundary entry carrying a frontier tip's id under
    // another author overrode the tip, and the author's next lane failed its
    // chain check forever. One id, one entry, the frontier's included.
    let snapshot = sender.snapshot_transfer().clone();
    let mut renamed = snapshot.header.tips[1];
    renamed.author = snapshot.header.tips[0].author;
    renamed.seq = 1;
    renamed.lamport = 1;
    let forged = resealed(&snapshot, |header| {
        header.boundary.retain(|tip| (tip.author, tip.seq) != (renamed.author, 1));
        header.boundary.insert(0, renamed);
    });
    let mut receiver = Replica::new(World, config(2, true));
    assert!(matches!(
        receiver.install_snapshot(&forged),
        Err(SnapshotError::BadBoundary { rule: "its id appears twice", .. })
    ));
}

#[test]
fn a_lane_by_an_author_outside_the_membership_is_refused() {
    // Found by the fuzzer: a forged lane by a non-member (author u32::MAX,
    // seq 1, on an old parent) was admitted by a receiver whose stable
    // point was still low, while an honest peer whose stable point had
    // passed it refused it as sorting inside the stable prefix. Stability
    // only counts members, so a non-member's lane can always arrive "late":
    // the two could never converge again.
    let forged = scx_engine::Lane::new(NodeId(u32::MAX), 1, 1, vec![], vec![WorldOp::Add { key: 3, delta: 1 }]);
    let mut behind = Replica::new(World, config(1, false));
    behind.create_lane(vec![WorldOp::Add { key: 1, delta: 1 }]).unwrap();
    let status = behind.status();
    match behind.insert(forged.clone()) {
        Err(scx_engine::LaneError::NotAMember { author, .. }) => assert_eq!(author, NodeId(u32::MAX)),
        other => panic!("expected a non-member refusal, got {other:?}"),
    }
    assert_eq!(behind.status(), status);
    // Through the protocol: the forged lane in a bundle is refused alike.
    let batch = protocol::encode_batch(&[(forged.id(), &forged)]);
    let datagram = protocol::encode(&Message::Lanes {
        session: 0,
        snapshot: None,
        lanes: batch,
        more: false,
        need: vec![],
        snapshot_id: None,
    });
    let bundle = protocol::write_bundle(&[datagram.unwrap()]);
    let (metrics, _) = protocol::apply_bundle(&bundle, NodeId(0), &mut behind).unwrap();
    assert_eq!((metrics.lanes_rejected, metrics.lanes_missing), (1, 0));
    assert!(!behind.holds(&forged.id()));
}

#[test]
fn a_snapshot_header_that_does_not_add_up_is_refused() {
    // Found by the fuzzer: a re-sealed snapshot claiming lane index u64::MAX
    // (its id and digest recomputed, so both checks passed) was installed;
    // the lane index then wrapped around as lanes replayed on top, and the
    // receiver's status no longer matched a replay of what it held. An
    // honest prefix holds each author's lanes 1..=seq exactly once, so its
    // lane index is the sum of its tips' seqs, its largest stamp is its
    // tips' largest, and no stamp exceeds the lane count.
    // A wrapping sum of seqs is refused as an overflow (checked arithmetic
    // on a peer's numbers), not as a sum that merely differs.
    let mut sender = pruned_member(1);
    let honest = sender.snapshot_transfer().clone();
    type Forge = fn(&mut scx_engine::SnapshotHeader);
    let forgeries: [(&str, Forge, bool); 4] = [
        ("lane index u64::MAX", |h| h.lane_index = u64::MAX, false),
        ("lane index off by one", |h| h.lane_index += 1, false),
        ("max lamport u64::MAX", |h| h.max_lamport = u64::MAX, false),
        (
            "tip seq near u64::MAX",
            |h| {
                h.tips[0].seq = u64::MAX - 1;
                h.lane_index = h.tips.iter().fold(0u64, |sum, tip| sum.wrapping_add(tip.seq));
            },
            true,
        ),
    ];
    for (name, forge, wraps) in forgeries {
        let forged = resealed(&honest, forge);
        let mut receiver = Replica::new(World, config(2, true));
        let (metrics, _) = protocol::apply_bundle(&snapshot_bundle(&forged), NodeId(0), &mut receiver).unwrap();
        assert_eq!(metrics.snapshots_installed, 0, "{name}: installed");
        let refused = receiver.install_snapshot(&forged);
        if wraps {
            assert!(matches!(refused, Err(SnapshotError::Overflow { .. })), "{name}: {refused:?}");
        } else {
            assert!(matches!(refused, Err(SnapshotError::Inconsistent { .. })), "{name}: {refused:?}");
        }
        assert_eq!(receiver.status().lane_index, 0, "{name}");
    }
    let mut receiver = Replica::new(World, config(2, true));
    assert_eq!(receiver.install_snapshot(&honest), Ok(true), "the honest header adds up");
    protocol::apply_bundle(&protocol::bundle(&mut sender), sender.node(), &mut receiver).unwrap();
    assert_eq!(receiver.status().chain_hash, sender.status().chain_hash);
}

#[test]
fn a_pending_lane_naming_a_lane_a_snapshot_covers_is_admitted_without_a_panic() {
    // Found by the fuzzer (a Delta whose snapshot was corrupted on the way,
    // then an honest retry): a pending lane was parked counting a parent
    // the receiver held as present; installing a snapshot dropped that
    // parent without keeping a reference for the pending lane, so releasing
    // the lane later hit "admit is called only when every parent is held".
    // Honest three-node traffic does the same: a lane from a third node,
    // above the snapshot, naming a covered lane the snapshot sender's own
    // lanes do not name.
    let (sender, written) = pruned_member_and_lanes(1);
    let snapshot = sender.snapshot_transfer().clone();
    let first = written[0].clone();
    let tip = snapshot.header.tips.iter().find(|tip| tip.author == NodeId(1)).copied().unwrap();
    let named = snapshot.header.tips.iter().chain(&snapshot.header.boundary);
    assert!(named.clone().all(|t| t.id != first.id()), "the first lane is no tip and not on the boundary");
    let mut receiver = Replica::new(World, config(2, true));
    receiver.insert(first.clone()).unwrap();
    let waiting = scx_engine::Lane::new(
        NodeId(1),
        tip.seq + 1,
        tip.lamport.max(first.lamport) + 1,
        vec![first.id(), tip.id],
        vec![WorldOp::Add { key: 4, delta: 1 }],
    );
    assert_eq!(receiver.insert(waiting.clone()).unwrap(), scx_engine::Inserted::Pending);
    assert_eq!(receiver.install_snapshot(&snapshot), Ok(true));
    assert!(receiver.lane(&waiting.id()).is_some(), "the lane is released onto the snapshot");
    assert_eq!(receiver.pending_lanes(), 0);
}

#[test]
fn a_durable_receiver_recovers_after_installing_a_peer_snapshot() {
    // Found while writing the fuzzer's oracle: a snapshot installed from a
    // peer (by sync or bundle) was never written to the durable log, so the
    // lanes admitted on top of it named parents the log did not hold and
    // recovery after a crash failed with dangling lanes.
    use crate::driver::{Driver, node_config};
    for prune in [true, false] {
        let mut sender = pruned_member(1);
        let mut durable = Driver::fresh(config(2, prune));
        let metrics = durable.node.apply_bundle(0, sender.node(), &protocol::bundle(&mut sender)).unwrap();
        assert_eq!(metrics.snapshots_installed, 1);
        durable.drain();
        let before = durable.node.status();
        match Driver::open(node_config(config(2, prune)), durable.crashed_store(None)) {
            Ok((mut again, _)) => assert_eq!(again.node.status(), before, "prune {prune}"),
            Err(error) => panic!("prune {prune}: recovery after a snapshot install failed: {error}"),
        }
    }
}

#[test]
fn covered_lanes_against_a_large_boundary_are_found_by_dot_not_by_scan() {
    // Found reading the paths the fuzzer reaches: a lane at a covered dot
    // was checked against the pruned references by a linear scan, so one
    // message with many boundary tips and many covered lanes cost their
    // product (minutes for a message well under the size limit). Lookups by
    // dot make it linear. (A header now names at most one boundary lane
    // per dot below each tip; this one names every such dot, with ids
    // nobody wrote, and 40,000 lanes arrive at covered dots.)
    let mut sender = pruned_member(1);
    let honest = sender.snapshot_transfer().clone();
    let front = honest.header.tips.iter().find(|tip| tip.author == NodeId(0)).copied().unwrap();
    let snapshot = resealed(&honest, |header| {
        header.boundary.retain(|tip| tip.author != NodeId(0));
        let forged = (1..front.seq).map(|seq| {
            let mut id = [0xbd; 32];
            id[..8].copy_from_slice(&seq.to_le_bytes());
            scx_engine::Tip { author: NodeId(0), seq, lamport: seq, id: LaneId(id) }
        });
        header.boundary.splice(0..0, forged);
    });
    let mut receiver = Replica::new(World, config(2, true));
    assert_eq!(receiver.install_snapshot(&snapshot), Ok(true));
    let mut covered = 0;
    for i in 0..40_000u64 {
        let lane = scx_engine::Lane::new(
            NodeId(0),
            2 + i % (front.seq - 2),
            1,
            vec![],
            vec![WorldOp::Add { key: 0, delta: i as i64 }],
        );
        match receiver.insert(lane) {
            Ok(scx_engine::Inserted::Duplicate) | Err(scx_engine::LaneError::Fork { .. }) => covered += 1,
            other => panic!("a lane at a covered dot: {other:?}"),
        }
    }
    assert_eq!(covered, 40_000);
    protocol::apply_bundle(&protocol::bundle(&mut sender), sender.node(), &mut receiver).unwrap();
    assert_eq!(receiver.status().chain_hash, sender.status().chain_hash);
}
