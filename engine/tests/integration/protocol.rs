//! Goal: one session makes two replicas equal, in both directions, with and
//! without pruning and snapshot transfer; the protocol costs one round trip
//! when in sync and two when divergent; lost, duplicated and reordered
//! datagrams never corrupt state; bad bytes never panic.
//! Method: the in-memory `Cluster` bench with seeded histories and faults.

use crate::net::{Cluster, Faults};
use crate::support::Rng;
use proptest::prelude::*;
use scx_engine::protocol::{self, Message, Outcome, SyncEvent, WireError};
use scx_engine::{Dot, NodeId, WorldOp};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(40))]

    #[test]
    fn one_session_converges_divergent_replicas(
        seed: u64, shared in 0usize..80, a_new in 0usize..40, b_new in 0usize..40, prune: bool, backwards: bool,
    ) {
        let mut cluster = Cluster::new(2, seed, prune);
        cluster.write(0, shared);
        cluster.copy_all(0, 1);
        cluster.write(0, a_new);
        cluster.write(1, b_new);
        let (from, to) = if backwards { (1, 0) } else { (0, 1) };
        let (outcome, metrics) = cluster.sync(from, to, &Faults::NONE).expect("a clean network completes");
        prop_assert_eq!(cluster.status(0), cluster.status(1));
        prop_assert_eq!(cluster.status(0).lane_index, (shared + a_new + b_new) as u64);
        let in_sync = a_new == 0 && b_new == 0;
        prop_assert_eq!(outcome == Outcome::InSync, in_sync);
        prop_assert_eq!(metrics.round_trips, 1, "the initiator counts one request/response");
    }

    #[test]
    fn pairwise_syncs_in_random_order_converge(seed: u64, nodes in 2u32..6, rounds in 1usize..6) {
        let mut cluster = Cluster::new(nodes, seed, seed % 2 == 0);
        let mut rng = Rng::new(seed);
        for _ in 0..rounds {
            for node in 0..nodes as usize {
                cluster.write(node, rng.below(12) as usize);
            }
            for _ in 0..nodes * 2 {
                let a = rng.below(u64::from(nodes)) as usize;
                let b = (a + 1 + rng.below(u64::from(nodes) - 1) as usize) % nodes as usize;
                cluster.sync(a, b, &Faults::NONE);
            }
        }
        // A final ring of syncs, twice around, spreads everything.
        for _ in 0..2 {
            for a in 0..nodes as usize {
                cluster.sync(a, (a + 1) % nodes as usize, &Faults::NONE);
            }
        }
        let expected = cluster.status(0);
        for node in 1..nodes as usize {
            prop_assert_eq!(cluster.status(node), expected.clone());
        }
    }

    #[test]
    fn faulty_networks_never_corrupt_and_retries_converge(seed: u64, loss in 0u64..40, duplicate in 0u64..40) {
        let mut cluster = Cluster::new(3, seed, seed % 3 == 0);
        let faults = Faults { loss, duplicate, reorder: true };
        let mut rng = Rng::new(seed);
        for _ in 0..6 {
            for node in 0..3 {
                cluster.write(node, rng.below(20) as usize);
            }
            for _ in 0..6 {
                let a = rng.below(3) as usize;
                cluster.sync(a, (a + 1 + rng.below(2) as usize) % 3, &faults);
            }
        }
        for round in 0..50 {
            let done = (0..3).all(|node| cluster.status(node) == cluster.status(0));
            if done {
                break;
            }
            cluster.sync(round % 3, (round + 1) % 3, &Faults::NONE);
        }
        let expected = cluster.status(0);
        prop_assert_eq!(cluster.status(1), expected.clone());
        prop_assert_eq!(cluster.status(2), expected);
        for (_, event) in &cluster.events {
            let harmless = !matches!(event, SyncEvent::BadMessage { .. } | SyncEvent::Diverged { .. } | SyncEvent::LaneRejected { .. } | SyncEvent::ForkSuspected { .. });
            prop_assert!(harmless, "unexpected event {:?}", event);
        }
    }

    #[test]
    fn the_decoder_never_panics_on_random_bytes(bytes: Vec<u8>) {
        let _ = protocol::decode(&bytes);
        let _ = protocol::decode_batch::<scx_engine::WorldOp>(&bytes);
    }

    #[test]
    fn lane_batches_round_trip_any_history(seed: u64, authors in 1u32..5, steps in 1usize..150) {
        let lanes = crate::support::history(seed, authors, steps);
        let (mut replica, _) = crate::support::replay(0, authors, &lanes);
        let ordered: Vec<_> = replica.canonical_lanes().map(|(id, lane)| (id, lane.clone())).collect();
        let refs: Vec<_> = ordered.iter().map(|(id, lane)| (*id, lane)).collect();
        let batch = protocol::encode_batch(&refs);
        let decoded = protocol::decode_batch::<scx_engine::WorldOp>(&batch).unwrap();
        let canonical: Vec<Vec<u8>> = ordered.iter().map(|(_, lane)| lane.to_bytes()).collect();
        prop_assert!(batch.len() <= canonical.iter().map(Vec::len).sum::<usize>() + 8);
        prop_assert_eq!(decoded, canonical);
    }

    #[test]
    fn the_syncer_survives_mutated_datagrams(seed: u64, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
        let mut cluster = Cluster::new(2, seed, false);
        cluster.write(0, 30);
        cluster.write(1, 10);
        let before = cluster.status(1);
        let session = cluster.syncers[0].initiate(NodeId(1), &mut cluster.replicas[0]);
        let (_, mut hello) = cluster.syncers[0].poll_transmit().unwrap();
        for (position, flip) in &flips {
            let at = position % hello.len();
            hello[at] ^= flip | 1;
        }
        cluster.syncers[1].handle(NodeId(0), &hello, &mut cluster.replicas[1]);
        prop_assert_eq!(cluster.status(1), before, "a hello never changes the responder's state");
        let _ = session;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(32))]

    #[test]
    fn compact_summaries_converge_divergent_replicas(
        seed: u64, shared in 0usize..60, a_new in 0usize..30, b_new in 0usize..30, prune: bool,
    ) {
        let mut cluster = Cluster::compact(2, seed, prune, 10);
        cluster.write(0, shared);
        cluster.copy_all(0, 1);
        cluster.write(0, a_new);
        cluster.write(1, b_new);
        cluster.sync(1, 0, &Faults::NONE).expect("a clean network completes");
        // The initiator always ends with everything: the need step covers what
        // the responder's Bloom hid. The responder may need its own session.
        prop_assert_eq!(cluster.status(1).lane_index, (shared + a_new + b_new) as u64);
        cluster.sync(0, 1, &Faults::NONE);
        prop_assert_eq!(cluster.status(0), cluster.status(1));
    }

    #[test]
    fn saturated_blooms_never_lose_a_lane(seed: u64, nodes in 2u32..5, rounds in 1usize..5) {
        // One bit per lane: most lookups are false positives, so the closure
        // over ancestors, the heads check and the need step do the work.
        let mut cluster = Cluster::compact(nodes, seed, false, 1);
        let mut rng = Rng::new(seed);
        let mut written = 0;
        for _ in 0..rounds {
            for node in 0..nodes as usize {
                let lanes = rng.below(15) as usize;
                cluster.write(node, lanes);
                written += lanes;
            }
            for _ in 0..nodes * 2 {
                let a = rng.below(u64::from(nodes)) as usize;
                let b = (a + 1 + rng.below(u64::from(nodes) - 1) as usize) % nodes as usize;
                cluster.sync(a, b, &Faults::NONE);
            }
        }
        for _ in 0..3 {
            for a in 0..nodes as usize {
                cluster.sync(a, (a + 1) % nodes as usize, &Faults::NONE);
            }
        }
        let expected = cluster.status(0);
        prop_assert_eq!(expected.lane_index, written as u64);
        for node in 1..nodes as usize {
            prop_assert_eq!(cluster.status(node), expected.clone());
        }
    }
}

#[test]
fn a_compact_session_stays_within_four_messages() {
    let mut cluster = Cluster::compact(3, 9, false, 1);
    cluster.write(0, 40);
    cluster.write(1, 40);
    cluster.write(2, 40);
    cluster.copy_all(2, 0);
    let before = cluster.events.len();
    cluster.delivered.clear();
    cluster.sync(0, 1, &Faults::NONE).unwrap();
    assert_eq!(
        cluster.delivered,
        ["hello", "delta", "lanes", "supply"],
        "a saturated Bloom hides lanes; one need step recovers them"
    );
    let sent: u64 = cluster.events[before..]
        .iter()
        .filter_map(|(_, event)| match event {
            SyncEvent::Completed { metrics, .. } => Some(metrics.lanes_sent),
            _ => None,
        })
        .sum();
    assert!(sent > 0);
    let initiator = cluster.replicas[0].status();
    assert_eq!(initiator.lane_index, 120, "the initiator holds everything after one session");
    assert!(cluster.syncers.iter().all(|syncer| syncer.open_sessions().count() == 0), "no session is left open");
}

#[test]
fn in_sync_costs_one_round_trip_and_few_bytes() {
    let mut cluster = Cluster::new(2, 1, false);
    cluster.write(0, 1000);
    cluster.copy_all(0, 1);
    let mark = cluster.events.len();
    let (outcome, metrics) = cluster.sync(0, 1, &Faults::NONE).unwrap();
    assert_eq!(outcome, Outcome::InSync);
    assert_eq!(metrics.round_trips, 1);
    assert!(metrics.bytes_sent <= 256, "hello was {} bytes", metrics.bytes_sent);
    assert!(metrics.bytes_received <= 256, "in-sync reply was {} bytes", metrics.bytes_received);
    assert_eq!(metrics.bytes_sent_handshake + metrics.bytes_sent_summary, metrics.bytes_sent, "a hello is both");
    assert!(metrics.bytes_sent_summary > 0 && metrics.bytes_sent_lanes == 0);
    let totals = cluster.session_totals(mark);
    assert_eq!(totals.lanes_sent, 0);
}

#[test]
fn a_peer_far_behind_receives_only_missing_lanes_at_low_overhead() {
    let mut cluster = Cluster::new(2, 2, false);
    cluster.write(0, 2000);
    let mark = cluster.events.len();
    let (_, initiator) = cluster.sync(1, 0, &Faults::NONE).unwrap();
    let totals = cluster.session_totals(mark);
    assert_eq!(initiator.lanes_missing, 2000);
    assert_eq!(totals.lanes_redundant, 0);
    let ratio = totals.bytes_sent as f64 / totals.bytes_missing as f64;
    assert!(ratio <= 1.10, "wire bytes / missing bytes = {ratio:.3}");
    assert_eq!(cluster.status(0), cluster.status(1));
}

#[test]
fn a_peer_behind_the_prune_point_gets_the_snapshot() {
    let mut cluster = Cluster::new(3, 3, true);
    // Nodes 0 and 1 write and sync until a prefix is stable and pruned; node
    // 2 holds nothing and writes nothing until it syncs, so it is the only
    // member... it blocks stability. So node 2 writes once first, shares it,
    // and then misses everything.
    cluster.write(2, 1);
    cluster.copy_all(2, 0);
    cluster.copy_all(2, 1);
    let mut rng = Rng::new(3);
    for _ in 0..40 {
        cluster.write(0, 5);
        cluster.write(1, 5);
        cluster.sync(0, 1, &Faults::NONE);
        // Node 2's stand-in: let nodes 0 and 1 see a lane of node 2 that
        // descends from their work, so the prefix becomes stable.
        if rng.below(4) == 0 {
            cluster.sync(2, 0, &Faults::NONE);
            cluster.write(2, 1);
            cluster.sync(2, 0, &Faults::NONE);
        }
    }
    cluster.sync(0, 1, &Faults::NONE);
    assert!(cluster.replicas[0].prune_index() > 0, "node 0 must have pruned");
    let mut fresh = Cluster::new(3, 4, true);
    std::mem::swap(&mut fresh.replicas[0], &mut cluster.replicas[0]);
    let (_, metrics) = fresh.sync(1, 0, &Faults::NONE).unwrap();
    assert_eq!(metrics.snapshots_installed, 1);
    assert_eq!(fresh.status(0), fresh.status(1));
}

#[test]
fn a_lost_reply_leaves_the_session_waiting_and_a_retry_converges() {
    let mut cluster = Cluster::new(2, 5, false);
    cluster.write(0, 20);
    cluster.write(1, 20);
    let session = cluster.syncers[0].initiate(NodeId(1), &mut cluster.replicas[0]);
    let (_, hello) = cluster.syncers[0].poll_transmit().unwrap();
    cluster.syncers[1].handle(NodeId(0), &hello, &mut cluster.replicas[1]);
    let (_, _lost_delta) = cluster.syncers[1].poll_transmit().unwrap();
    let waiting: Vec<_> = cluster.syncers[0].open_sessions().collect();
    assert_eq!(waiting.len(), 1);
    assert_eq!(waiting[0].3, protocol::Expect::Reply);
    cluster.syncers[0].abandon(NodeId(1), session, "timeout");
    assert!(matches!(cluster.syncers[0].poll_event(), Some(SyncEvent::Failed { .. })));
    cluster.sync(0, 1, &Faults::NONE).unwrap();
    assert_eq!(cluster.status(0), cluster.status(1));
}

#[test]
fn a_forked_author_is_detected_from_the_summary() {
    let mut cluster = Cluster::new(2, 6, false);
    cluster.write(0, 5);
    cluster.copy_all(0, 1);
    // Node 0 equivocates: two different lanes with one seq go to two peers.
    let first = cluster.replicas[0].prepare_lane(vec![scx_engine::WorldOp::Add { key: 1, delta: 1 }]);
    let second = cluster.replicas[0].prepare_lane(vec![scx_engine::WorldOp::Add { key: 1, delta: 2 }]);
    cluster.replicas[0].insert(first).unwrap();
    cluster.replicas[1].insert(second).unwrap();
    cluster.sync(0, 1, &Faults::NONE);
    let suspected = cluster.events.iter().any(|(_, event)| matches!(event, SyncEvent::ForkSuspected { .. }));
    assert!(suspected, "equal seqs with different tips are a fork");
    let (proofs, _) = cluster.replicas[0].forks();
    assert_eq!(proofs.len(), 1, "the evidence lane reached the other side and was kept as a proof");
}

#[test]
fn wrong_version_oversized_truncated_damaged_and_trailing_bytes_are_typed_errors() {
    let message = Message::InSync { session: 7 };
    let mut bytes = protocol::encode(&message).unwrap();
    assert_eq!(protocol::decode(&bytes).unwrap(), message);
    bytes[0] = 9;
    assert_eq!(protocol::decode(&bytes), Err(WireError::UnknownVersion { found: 9 }));
    let mut bytes = protocol::encode(&message).unwrap();
    bytes.push(0);
    assert!(matches!(protocol::decode(&bytes), Err(WireError::Checksum { .. })), "trailing bytes change the body");
    protocol::reseal(&mut bytes);
    assert_eq!(protocol::decode(&bytes), Err(WireError::TrailingBytes { count: 1 }));
    assert_eq!(protocol::decode(&[]), Err(WireError::Empty));
    let huge = vec![protocol::PROTOCOL_VERSION; protocol::MAX_MESSAGE_BYTES + 1];
    assert!(matches!(protocol::decode(&huge), Err(WireError::TooLarge { .. })));
    assert_eq!(protocol::decode(&bytes[..2]), Err(WireError::Truncated { bytes: 2 }));
    let mut body_cut = bytes[..protocol::ENVELOPE_BYTES + 1].to_vec();
    protocol::reseal(&mut body_cut);
    assert!(matches!(protocol::decode(&body_cut), Err(WireError::Malformed { .. })));
}

#[test]
fn every_single_bit_flip_of_a_lanes_message_is_refused_as_damage() {
    let history = crate::support::history(4, 2, 6);
    let lanes: Vec<(scx_engine::LaneId, scx_engine::Lane<scx_engine::WorldOp>)> =
        history.into_iter().map(|lane| (lane.id(), lane)).collect();
    let refs: Vec<(scx_engine::LaneId, &scx_engine::Lane<scx_engine::WorldOp>)> =
        lanes.iter().map(|(id, lane)| (*id, lane)).collect();
    let message = Message::Lanes {
        session: 1,
        snapshot: None,
        lanes: protocol::encode_batch(&refs),
        more: false,
        need: Vec::new(),
        snapshot_id: None,
    };
    let bytes = protocol::encode(&message).unwrap();
    for bit in protocol::ENVELOPE_BYTES * 8..bytes.len() * 8 {
        let mut damaged = bytes.clone();
        damaged[bit / 8] ^= 1 << (bit % 8);
        assert!(
            matches!(protocol::decode(&damaged), Err(WireError::Checksum { .. })),
            "bit {bit}: a damaged lane must never decode (it would be a forged lane with a valid id)"
        );
    }
}

/// Each side's metrics of the sessions completed since `mark`.
fn side_totals(cluster: &Cluster, mark: usize, side: usize) -> protocol::SessionMetrics {
    let mut total = protocol::SessionMetrics::default();
    for (node, event) in &cluster.events[mark..] {
        if let SyncEvent::Completed { metrics, .. } = event
            && *node == side
        {
            total.add(metrics);
        }
    }
    total
}

#[test]
fn what_one_side_counts_as_sent_the_other_counts_as_received() {
    let mut cluster = Cluster::new(2, 11, false);
    cluster.write(0, 300);
    cluster.write(1, 200);
    let mark = cluster.events.len();
    let (outcome, _) = cluster.sync(0, 1, &Faults::NONE).unwrap();
    assert!(matches!(outcome, Outcome::Synced { .. }), "{outcome:?}");
    let (initiator, answerer) = (side_totals(&cluster, mark, 0), side_totals(&cluster, mark, 1));
    assert!(initiator.bytes_sent > 0 && answerer.bytes_sent > 0);
    assert_eq!(initiator.bytes_sent, answerer.bytes_received, "initiator to answerer");
    assert_eq!(answerer.bytes_sent, initiator.bytes_received, "answerer to initiator");
    assert_eq!(initiator.lanes_sent, answerer.lanes_received);
    assert_eq!(answerer.lanes_sent, initiator.lanes_received);
    assert_eq!((initiator.lanes_received, answerer.lanes_received), (200, 300), "each got what it lacked");
    assert_eq!(initiator.round_trips, 1 + u64::from(matches!(outcome, Outcome::Synced { more: true })));
}

#[test]
fn lanes_a_node_already_holds_are_counted_redundant() {
    // Node 2 holds node 0's lanes too; node 1 syncs with both at once, so
    // both deltas carry them and the second copy of each is redundant.
    let mut cluster = Cluster::new(3, 12, false);
    cluster.write(0, 40);
    cluster.copy_all(0, 2);
    let mark = cluster.events.len();
    cluster.syncers[1].initiate(NodeId(0), &mut cluster.replicas[1]);
    cluster.syncers[1].initiate(NodeId(2), &mut cluster.replicas[1]);
    assert!(cluster.syncers[1].is_syncing_with(NodeId(0)) && cluster.syncers[1].is_syncing_with(NodeId(2)));
    assert!(!cluster.syncers[0].is_syncing_with(NodeId(2)), "no session between 0 and 2");
    cluster.drive(&Faults::NONE);
    assert!(!cluster.syncers[1].is_syncing_with(NodeId(0)), "the completed session is closed");
    let node1 = side_totals(&cluster, mark, 1);
    assert_eq!(node1.lanes_received, 80, "both peers sent the 40 lanes");
    assert_eq!(node1.lanes_redundant, 40, "the second copy of each lane was redundant");
    assert_eq!(cluster.replicas[1].held_lanes(), 40);
    // The byte breakdown: the batch that came first was needed, the other not.
    let (node0, node2) = (side_totals(&cluster, mark, 0), side_totals(&cluster, mark, 2));
    let batches = [node0.bytes_sent_lanes, node2.bytes_sent_lanes];
    assert_eq!(node1.bytes_received_lanes, batches[0] + batches[1], "node 1 received both batches");
    assert!(batches.contains(&node1.bytes_received_lanes_needed), "one whole batch was needed: {node1:?}");
}

/// Adds up every session's counters, including the ones still open.
fn all_sessions(cluster: &Cluster) -> Vec<protocol::SessionMetrics> {
    let mut all: Vec<protocol::SessionMetrics> = cluster
        .events
        .iter()
        .filter_map(|(_, event)| match event {
            SyncEvent::Completed { metrics, .. } | SyncEvent::Failed { metrics, .. } => Some(*metrics),
            _ => None,
        })
        .collect();
    all.extend(cluster.syncers.iter().map(protocol::Syncer::open_metrics));
    all
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The breakdown of the bytes sent, as the simulator reports it: each
    /// session's kinds add up to its bytes sent, and across the cluster the
    /// lane bytes receivers found needed are at most the lane bytes sent
    /// (all of them arrive on a network that loses nothing).
    #[test]
    fn the_bytes_sent_break_down_exactly_by_what_they_carried(
        seed: u64, writes in proptest::collection::vec((0usize..3, 0usize..12), 1..6),
        starts in proptest::collection::vec((0usize..3, 1usize..3), 1..8), loss in 0u64..20, compact: bool,
    ) {
        let mut cluster = if compact { Cluster::compact(3, seed, false, 4) } else { Cluster::new(3, seed, false) };
        for (node, lanes) in writes {
            cluster.write(node, lanes);
        }
        // Sessions started together, so some cross and deliver a lane twice.
        for (from, step) in starts {
            let to = (from + step) % 3;
            cluster.syncers[from].initiate(NodeId(to as u32), &mut cluster.replicas[from]);
        }
        cluster.drive(&Faults { loss, duplicate: 10, reorder: true });
        let sessions = all_sessions(&cluster);
        for metrics in &sessions {
            let kinds = metrics.bytes_sent_handshake
                + metrics.bytes_sent_summary
                + metrics.bytes_sent_lanes
                + metrics.bytes_sent_other;
            prop_assert_eq!(kinds, metrics.bytes_sent, "{:?}", metrics);
            prop_assert!(metrics.bytes_received_lanes_needed <= metrics.bytes_received_lanes);
        }
        let total = sessions.iter().fold(protocol::SessionMetrics::default(), |mut total, metrics| {
            total.add(metrics);
            total
        });
        prop_assert!(total.bytes_received_lanes_needed <= total.bytes_sent_lanes, "{:?}", total);
        prop_assert!(total.bytes_received_lanes <= total.bytes_sent_lanes, "a batch is taken once per session");
        if loss == 0 {
            prop_assert_eq!(total.bytes_received_lanes, total.bytes_sent_lanes, "every batch arrived");
        }
        prop_assert_eq!(total.bytes_missing > 0, total.bytes_received_lanes_needed > 0);
    }
}

#[test]
fn session_metrics_add_field_by_field() {
    let one = protocol::SessionMetrics {
        bytes_sent: 1,
        bytes_sent_handshake: 16,
        bytes_sent_summary: 17,
        bytes_sent_lanes: 18,
        bytes_sent_other: 19,
        bytes_received_lanes: 20,
        bytes_received_lanes_needed: 21,
        bytes_received: 2,
        lanes_sent: 3,
        lanes_received: 4,
        lanes_missing: 5,
        bytes_missing: 6,
        lanes_redundant: 7,
        lanes_rejected: 8,
        snapshots_sent: 9,
        snapshot_chunks_sent: 10,
        snapshot_chunks_received: 11,
        snapshots_installed: 12,
        round_trips: 13,
        compact_summaries: 14,
        supplies: 15,
    };
    let mut total = one;
    total.add(&one);
    total.add(&one);
    let tripled = protocol::SessionMetrics {
        bytes_sent: 3,
        bytes_sent_handshake: 48,
        bytes_sent_summary: 51,
        bytes_sent_lanes: 54,
        bytes_sent_other: 57,
        bytes_received_lanes: 60,
        bytes_received_lanes_needed: 63,
        bytes_received: 6,
        lanes_sent: 9,
        lanes_received: 12,
        lanes_missing: 15,
        bytes_missing: 18,
        lanes_redundant: 21,
        lanes_rejected: 24,
        snapshots_sent: 27,
        snapshot_chunks_sent: 30,
        snapshot_chunks_received: 33,
        snapshots_installed: 36,
        round_trips: 39,
        compact_summaries: 42,
        supplies: 45,
    };
    assert_eq!(total, tripled);
}

#[test]
fn bytes_balance_across_a_compact_session_with_a_supply_step() {
    // One Bloom bit per lane: false positives hide lanes, so sessions take
    // the need/supply step; its bytes count on both sides too.
    let mut supplied = false;
    for seed in 0..20 {
        let mut cluster = Cluster::compact(2, seed, false, 1);
        cluster.write(0, 30);
        cluster.write(1, 30);
        let mark = cluster.events.len();
        cluster.sync(0, 1, &Faults::NONE).expect("the session completes");
        let (initiator, answerer) = (side_totals(&cluster, mark, 0), side_totals(&cluster, mark, 1));
        assert_eq!(initiator.bytes_sent, answerer.bytes_received, "seed {seed}: initiator to answerer");
        assert_eq!(answerer.bytes_sent, initiator.bytes_received, "seed {seed}: answerer to initiator");
        supplied |= initiator.supplies > 0;
    }
    assert!(supplied, "no session took the supply step, so this test shows nothing about it");
}

#[test]
fn a_duplicated_datagram_of_a_closed_session_is_ignored() {
    let mut cluster = Cluster::new(2, 13, false);
    cluster.write(0, 20);
    cluster.write(1, 20);
    let every_datagram_twice = Faults { loss: 0, duplicate: 100, reorder: false };
    let mark = cluster.events.len();
    cluster.sync(0, 1, &every_datagram_twice).expect("the session completes");
    let completed = |side| {
        cluster.events[mark..]
            .iter()
            .filter(|(node, event)| *node == side && matches!(event, SyncEvent::Completed { .. }))
            .count()
    };
    assert_eq!((completed(0), completed(1)), (1, 1), "a second copy opened or completed another session");
    assert_eq!(cluster.status(0), cluster.status(1));
}

#[test]
fn a_compact_summary_sizes_its_filter_to_the_lanes_above_the_stable_point() {
    let mut cluster = Cluster::compact(2, 14, false, 8);
    cluster.write(0, 500);
    cluster.syncers[0].initiate(NodeId(1), &mut cluster.replicas[0]);
    let (_, hello) = cluster.syncers[0].poll_transmit().expect("a hello goes out");
    let Ok(Message::Hello { summary: protocol::Summary::Compact(compact), .. }) = protocol::decode(&hello) else {
        panic!("a compact-mode node says hello with a compact summary");
    };
    // 500 lanes at 8 bits each, none of them stable yet.
    assert!(compact.bloom.bits.len() >= 500, "a {}-byte filter for 500 lanes", compact.bloom.bits.len());
    assert!(compact.bloom.bits.len() <= 500 * 2, "a {}-byte filter for 500 lanes", compact.bloom.bits.len());
}

/// Both sides' outcomes of the sessions completed since `mark`: (initiator, responder).
fn outcomes(cluster: &Cluster, mark: usize) -> (Vec<Outcome>, Vec<Outcome>) {
    let of = |role| {
        cluster.events[mark..]
            .iter()
            .filter_map(|(_, event)| match event {
                SyncEvent::Completed { role: r, outcome, .. } if *r == role => Some(*outcome),
                _ => None,
            })
            .collect()
    };
    (of(protocol::Role::Initiator), of(protocol::Role::Responder))
}

#[test]
fn both_sides_say_more_whichever_direction_was_cut() {
    // Lanes of about 300 KB each (removes naming many dots): sixteen of them
    // pass one batch's byte limit, so the writer's delta is cut.
    let heavy = |lane: u32| -> Vec<WorldOp> {
        let seen: Vec<Dot> = (1000..1100).map(|seq| Dot { author: NodeId(7), seq }).collect();
        (0..1000).map(|key| WorldOp::Remove { key: lane * 1000 + key, element: 1, seen: seen.clone() }).collect()
    };
    let cut = Outcome::Synced { more: true };
    for writer in [0, 1] {
        let mut cluster = Cluster::new(2, 21, false);
        for lane in 0..16 {
            cluster.replicas[writer].create_lane(heavy(lane)).unwrap();
        }
        let batch: usize = cluster.replicas[writer].canonical_lanes().map(|(_, lane)| lane.to_bytes().len()).sum();
        assert!(batch > protocol::MAX_BATCH_BYTES, "the backlog ({batch} B) must not fit one batch");
        let mark = cluster.events.len();
        cluster.sync(0, 1, &Faults::NONE).expect("a clean network completes");
        // The initiator's reply (writer 1) or its own delta (writer 0) was
        // cut; the responder's own delta (writer 1) or the initiator's (0).
        assert_eq!(outcomes(&cluster, mark), (vec![cut], vec![cut]), "writer {writer}");
        let mut sessions = 1;
        while cluster.status(0) != cluster.status(1) {
            sessions += 1;
            assert!(sessions <= 4, "writer {writer}: no convergence in four sessions");
            cluster.sync(0, 1, &Faults::NONE).expect("a clean network completes");
        }
        let mark = cluster.events.len();
        cluster.sync(0, 1, &Faults::NONE).expect("a clean network completes");
        assert_eq!(outcomes(&cluster, mark), (vec![Outcome::InSync], vec![Outcome::InSync]), "writer {writer}");
    }
}
