//! Goal: a node whose disk was lost comes back without forking its own
//! chain: it authors nothing until it has synced with every other member,
//! then continues after the highest seq it learned back. A majority is not
//! enough: a lane only one peer received may sit outside it.
//! Method: the in-memory `Cluster` bench; node 0 writes, spreads its lanes,
//! is replaced by an empty replica with `rejoining` set, and syncs.

use crate::net::{Cluster, Faults};
use crate::support::config;
use scx_engine::protocol::Outcome;
use scx_engine::{Dot, LaneError, NodeId, Replica, World, WorldOp};

fn add(key: u32) -> Vec<WorldOp> {
    vec![WorldOp::Add { key, delta: 1 }]
}

fn replace_node_0(cluster: &mut Cluster, nodes: u32) {
    let mut rejoining = config(0, nodes);
    rejoining.rejoining = true;
    cluster.replicas[0] = Replica::new(World, rejoining);
}

#[test]
fn a_replaced_node_authors_nothing_until_every_peer_synced_then_continues_its_chain() {
    let mut cluster = Cluster::new(5, 11, false);
    cluster.write(0, 3);
    cluster.copy_all(0, 1);
    cluster.copy_all(0, 2);
    replace_node_0(&mut cluster, 5);
    assert!(cluster.replicas[0].is_rejoining());
    let refused = cluster.replicas[0].create_lane(add(1));
    assert_eq!(refused.unwrap_err(), LaneError::Rejoining { synced: 0, needed: 4 });
    cluster.sync(0, 1, &Faults::NONE);
    cluster.sync(0, 3, &Faults::NONE);
    cluster.sync(0, 2, &Faults::NONE);
    assert!(cluster.replicas[0].is_rejoining(), "three of four others are a majority, not every peer");
    assert!(matches!(cluster.replicas[0].create_lane(add(2)), Err(LaneError::Rejoining { synced: 3, needed: 4 })));
    cluster.sync(0, 1, &Faults::NONE);
    assert!(cluster.replicas[0].is_rejoining(), "a second session with the same peer is not another peer");
    cluster.sync(4, 0, &Faults::NONE);
    assert!(!cluster.replicas[0].is_rejoining(), "a session the peer started counts too");
    assert_eq!(cluster.replicas[0].version_vector().get(&NodeId(0)), Some(&3), "its chain came back");
    let (_, lane) = cluster.replicas[0].create_lane(add(3)).unwrap();
    assert_eq!(lane.seq, 4, "no seq is reused");
}

#[test]
fn a_lane_only_one_peer_holds_comes_back_before_the_node_authors_again_5_nodes() {
    let mut cluster = Cluster::new(5, 12, false);
    cluster.write(0, 3);
    for peer in 1..4 {
        cluster.copy_all(0, peer);
    }
    // The fourth lane reached one peer only, outside the majority 1, 2, 3.
    cluster.write(0, 1);
    cluster.copy_all(0, 4);
    let fourth = cluster.replicas[4]
        .clone()
        .canonical_lanes()
        .find_map(|(id, lane)| (lane.author == NodeId(0) && lane.seq == 4).then_some(id))
        .unwrap();
    replace_node_0(&mut cluster, 5);
    for peer in 1..4 {
        cluster.sync(0, peer, &Faults::NONE);
    }
    assert_eq!(cluster.replicas[0].version_vector().get(&NodeId(0)), Some(&3));
    assert!(
        cluster.replicas[0].create_lane(add(1)).is_err(),
        "authoring now would reuse seq 4, which n4 holds: the node forks its own chain"
    );
    cluster.sync(4, 0, &Faults::NONE);
    assert!(!cluster.replicas[0].is_rejoining());
    assert_eq!(cluster.replicas[0].version_vector().get(&NodeId(0)), Some(&4), "the lane only n4 held came back");
    assert!(cluster.replicas[0].lane(&fourth).is_some());
    let (_, lane) = cluster.replicas[0].create_lane(add(2)).unwrap();
    assert_eq!(lane.seq, 5, "no seq is reused");
}

#[test]
fn a_replica_that_is_not_rejoining_authors_at_once() {
    let mut replica = Replica::new(World, config(0, 3));
    assert!(!replica.is_rejoining());
    assert_eq!(replica.create_lane(add(1)).unwrap().1.seq, 1);
}

#[test]
fn a_session_cut_at_the_batch_limit_does_not_end_the_rejoin_a_whole_one_does() {
    // Lanes of about 300 KB each (removes naming many dots): sixteen of
    // them pass one batch's byte limit, so n1's delta is cut.
    let heavy = |lane: u32| -> Vec<WorldOp> {
        let seen: Vec<Dot> = (1000..1100).map(|seq| Dot { author: NodeId(7), seq }).collect();
        (0..1000).map(|key| WorldOp::Remove { key: lane * 1000 + key, element: 1, seen: seen.clone() }).collect()
    };
    let mut cluster = Cluster::new(2, 13, false);
    for lane in 0..16 {
        cluster.replicas[1].create_lane(heavy(lane)).unwrap();
    }
    replace_node_0(&mut cluster, 2);
    let mut sessions = 0;
    loop {
        let (outcome, _) = cluster.sync(0, 1, &Faults::NONE).expect("a session without faults completes");
        sessions += 1;
        if matches!(outcome, Outcome::Synced { more: false } | Outcome::InSync) {
            break;
        }
        assert!(cluster.replicas[0].is_rejoining(), "session {sessions} brought part of n1's lanes: {outcome:?}");
        assert!(sessions < 100, "the sessions never finish");
    }
    assert!(sessions > 1, "the lanes fit one batch: the test does not cut a session");
    assert!(!cluster.replicas[0].is_rejoining(), "the last session brought the rest");
}

#[test]
fn only_other_members_count_towards_a_rejoin() {
    let mut rejoining = config(0, 3);
    rejoining.rejoining = true;
    let mut replica = Replica::new(World, rejoining);
    replica.synced_with(NodeId(0));
    replica.synced_with(NodeId(7));
    replica.synced_with(NodeId(1));
    assert!(matches!(replica.create_lane(add(1)), Err(LaneError::Rejoining { synced: 1, needed: 2 })));
    replica.synced_with(NodeId(2));
    assert!(!replica.is_rejoining());
}

#[test]
fn a_node_with_no_other_member_has_no_one_to_wait_for() {
    let mut alone = config(0, 1);
    alone.rejoining = true;
    let mut replica = Replica::new(World, alone);
    assert!(!replica.is_rejoining());
    assert_eq!(replica.create_lane(add(1)).unwrap().1.seq, 1);
}

#[test]
fn an_own_lane_waiting_for_its_parent_keeps_the_node_rejoining() {
    let mut cluster = Cluster::new(3, 14, false);
    cluster.write(0, 3);
    let own: Vec<_> = cluster.replicas[0].clone().canonical_lanes().map(|(_, lane)| lane.clone()).collect();
    replace_node_0(&mut cluster, 3);
    // Seq 3 arrives before seqs 1 and 2: held, but its seq does not show yet.
    let third = own.iter().find(|lane| lane.seq == 3).unwrap().clone();
    cluster.replicas[0].insert(third).unwrap();
    assert_eq!(cluster.replicas[0].pending_lanes(), 1);
    cluster.replicas[0].synced_with(NodeId(1));
    cluster.replicas[0].synced_with(NodeId(2));
    assert!(cluster.replicas[0].is_rejoining(), "authoring now would reuse seq 3, which n0 itself holds pending");
    for lane in own.iter().filter(|lane| lane.seq < 3) {
        cluster.replicas[0].insert(lane.clone()).unwrap();
    }
    cluster.replicas[0].synced_with(NodeId(1));
    cluster.replicas[0].synced_with(NodeId(2));
    assert!(!cluster.replicas[0].is_rejoining());
    assert_eq!(cluster.replicas[0].create_lane(add(9)).unwrap().1.seq, 4);
}
