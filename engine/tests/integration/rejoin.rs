//! Goal: a node whose disk was lost comes back without forking its own
//! chain: it authors nothing until it has synced with a majority of the
//! other members, then continues after the highest seq it learned back.
//! Method: the in-memory `Cluster` bench; node 0 writes, spreads its lanes,
//! is replaced by an empty replica with `rejoining` set, and syncs.

use crate::net::{Cluster, Faults};
use crate::support::config;
use scx_engine::{LaneError, NodeId, Replica, World, WorldOp};

fn add(key: u32) -> Vec<WorldOp> {
    vec![WorldOp::Add { key, delta: 1 }]
}

#[test]
fn a_replaced_node_authors_nothing_until_a_majority_synced_then_continues_its_chain() {
    let mut cluster = Cluster::new(5, 11, false);
    cluster.write(0, 3);
    cluster.copy_all(0, 1);
    cluster.copy_all(0, 2);
    let mut rejoining = config(0, 5);
    rejoining.rejoining = true;
    cluster.replicas[0] = Replica::new(World, rejoining);
    assert!(cluster.replicas[0].is_rejoining());
    let refused = cluster.replicas[0].create_lane(add(1));
    assert_eq!(refused.unwrap_err(), LaneError::Rejoining { synced: 0, needed: 3 });
    cluster.sync(0, 1, &Faults::NONE);
    cluster.sync(0, 3, &Faults::NONE);
    assert!(cluster.replicas[0].is_rejoining(), "two of four others are not a majority");
    assert!(matches!(cluster.replicas[0].create_lane(add(2)), Err(LaneError::Rejoining { synced: 2, needed: 3 })));
    cluster.sync(4, 0, &Faults::NONE);
    assert!(!cluster.replicas[0].is_rejoining(), "a session the peer started counts too");
    assert_eq!(cluster.replicas[0].version_vector().get(&NodeId(0)), Some(&3), "its chain came back");
    let (_, lane) = cluster.replicas[0].create_lane(add(3)).unwrap();
    assert_eq!(lane.seq, 4, "no seq is reused");
}

#[test]
fn a_replica_that_is_not_rejoining_authors_at_once() {
    let mut replica = Replica::new(World, config(0, 3));
    assert!(!replica.is_rejoining());
    assert_eq!(replica.create_lane(add(1)).unwrap().1.seq, 1);
}
