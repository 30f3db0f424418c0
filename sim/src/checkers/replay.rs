//! Always: a node's chain hash and digest equal a from-scratch replay of
//! the lanes it holds (from its own base snapshot, verified, when it pruned).
//! This catches state that depends on arrival order or on a skipped rollback.

use crate::world::World;
use scx_engine::{NodeId, Replica, ReplicaConfig};

/// Replays `replica`'s history into a fresh replica and compares.
pub fn check_node(world: &World, node: u32, replica: &mut Replica<scx_engine::World>) {
    let status = replica.status();
    let mut config = ReplicaConfig::new(NodeId(u32::MAX), replica.config().members.iter().copied());
    config.snapshot_interval = replica.config().snapshot_interval;
    config.checkpoint_interval = replica.config().checkpoint_interval;
    config.max_pending = usize::MAX;
    let mut fresh = Replica::new(scx_engine::World, config);
    if replica.prune_index() > 0 {
        let (snapshot, boundary) = replica.snapshot_transfer();
        let (snapshot, boundary) = (snapshot.clone(), boundary);
        if let Err(error) = fresh.install_snapshot(&snapshot, &boundary) {
            let message = format!("n{node}'s own base snapshot does not verify: {error}");
            world.violate("replay", "always", Some(node), message);
            return;
        }
    }
    let lanes: Vec<_> = replica.canonical_lanes().map(|(_, lane)| lane.clone()).collect();
    for lane in lanes {
        let _ = fresh.insert(lane);
    }
    let replayed = fresh.status();
    if replayed.chain_hash != status.chain_hash || replayed.state_digest != status.state_digest {
        let message = format!(
            "n{node} holds chain {} digest {} at lane index {}, but replaying its lanes gives chain {} digest {} at {}",
            status.chain_hash.short(),
            status.state_digest.short(),
            status.lane_index,
            replayed.chain_hash.short(),
            replayed.state_digest.short(),
            replayed.lane_index
        );
        world.violate("replay", "always", Some(node), message);
    }
}
