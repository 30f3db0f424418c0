//! Eventually: after the last fault heals, every live node reaches the same
//! chain hash and state digest within the settle bound, and that state is
//! the oracle's replay of every acknowledged lane they should hold.

use crate::world::{Life, World, lock};
use scx_engine::{ChainHash, StateDigest};

/// What a convergence probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Probe {
    /// Live nodes still differ (or one is paused).
    Apart,
    /// All live nodes agree, and the oracle agrees.
    Converged,
    /// All live nodes agree on a state the oracle does not reach.
    WrongState(String),
}

/// Probes the live nodes now.
pub fn probe(world: &World) -> Probe {
    let mut agreed: Option<(ChainHash, StateDigest, u64)> = None;
    let mut live = Vec::new();
    for node in 0..world.spec.nodes {
        match world.life(node) {
            Life::Down => continue,
            Life::Paused => return Probe::Apart,
            Life::Up => {}
        }
        let Some(core) = world.core(node) else { return Probe::Apart };
        let status = lock(&core).durable.replica().status();
        let key = (status.chain_hash, status.state_digest, status.lane_index);
        match agreed {
            None => agreed = Some(key),
            Some(seen) if seen != key => return Probe::Apart,
            Some(_) => {}
        }
        live.push(node);
    }
    let Some((chain, digest, lane_index)) = agreed else { return Probe::Converged };
    let held_by_live = |id: &scx_engine::LaneId| {
        live.iter().any(|node| world.core(*node).is_some_and(|core| lock(&core).durable.replica().holds(id)))
    };
    let expected = lock(&world.oracle).replay(world.spec.nodes, world.spec.snapshot_interval, |id, acked| {
        live.contains(&acked.author) || held_by_live(id)
    });
    if expected.chain_hash == chain && expected.state_digest == digest {
        Probe::Converged
    } else if expected.lane_index > lane_index {
        // Agreement without everything acknowledged: lanes still in flight
        // from a node that is down at the moment count as not yet converged.
        Probe::Apart
    } else {
        Probe::WrongState(format!(
            "live nodes agree on chain {} digest {} at lane index {lane_index}, but the oracle's replay of the acknowledged lanes gives chain {} digest {} at {}",
            chain.short(),
            digest.short(),
            expected.chain_hash.short(),
            expected.state_digest.short(),
            expected.lane_index
        ))
    }
}
