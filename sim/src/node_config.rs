//! The engine configuration of one node, from the run plan alone: its
//! replica (members, snapshot and checkpoint intervals, pruning, planted
//! bugs), its sync cadence with a per-node phase drawn from the seed, and
//! its peer plan by topology. The simulator's nodes and real mode's `scx
//! node` processes both build their `NodeConfig` here, so a real node syncs
//! exactly as its simulated twin does.

use crate::rng::SimRng;
use crate::spec::{RunSpec, Topology};
use scx_engine::node::{NodeConfig, PeerPlan, SyncConfig};
use scx_engine::{Members, NodeId, Peers, ReplicaConfig};

/// Whom the node syncs with on its own, by topology: the mesh and hubs go
/// round the others in turn, a p2p node draws a random other one, clients
/// and leaves sync with their server or hub; a server and air-gapped nodes
/// only answer (air-gapped lanes travel by courier).
pub fn peer_plan(spec: &RunSpec, node: u32, boot: u32) -> PeerPlan {
    let nodes = spec.nodes;
    if nodes < 2 {
        return PeerPlan::Answer;
    }
    // Every other node from the one after this one round, sharing the
    // member list: a per-node copy made memory grow with nodes².
    let others = Peers::others_of(Members::range(nodes), NodeId(node));
    match &spec.topology {
        Topology::Mesh => PeerPlan::RoundRobin(others),
        Topology::PeerToPeer => {
            let seed = SimRng::new(spec.seed, "peer-choice", u64::from(node) << 32 | u64::from(boot)).next_u64();
            PeerPlan::Random { peers: others, seed }
        }
        Topology::AirGapped => PeerPlan::Answer,
        Topology::ClientServer { server } if *server == node => PeerPlan::Answer,
        Topology::ClientServer { server } => PeerPlan::RoundRobin(vec![NodeId(*server)].into()),
        Topology::Edge { hubs } if hubs.contains(&node) => {
            let mut others: Vec<NodeId> = hubs.iter().copied().filter(|hub| *hub != node).map(NodeId).collect();
            if others.is_empty() {
                return PeerPlan::Answer;
            }
            // The first hub a hub syncs with is the one after it.
            let len = others.len();
            others.rotate_left(1 % len);
            PeerPlan::RoundRobin(others.into())
        }
        Topology::Edge { hubs } => match hubs.get(node as usize % hubs.len().max(1)) {
            Some(hub) => PeerPlan::RoundRobin(vec![NodeId(*hub)].into()),
            None => PeerPlan::Answer,
        },
    }
}

/// The engine configuration of `node` at its `boot`-th start (1 is the
/// first); `rejoining` when it boots as a replacement.
pub fn node_config(spec: &RunSpec, node: u32, boot: u32, rejoining: bool) -> NodeConfig {
    // One shared member list for the whole cluster (not one set per node).
    let mut replica = ReplicaConfig { members: Members::range(spec.nodes), ..ReplicaConfig::new(NodeId(node), []) };
    replica.snapshot_interval = spec.snapshot_interval;
    replica.checkpoint_interval = spec.snapshot_interval.min(32);
    replica.prune = spec.prune;
    replica.bugs = crate::bugs::engine_bugs(spec.bug);
    // A replacement rejoins until every other node synced with it.
    replica.rejoining = rejoining;
    let interval_ns = spec.sync_interval.as_nanos().max(1) as u64;
    // Each node ticks at its own phase, so the cluster does not sync in lockstep.
    let phase_ns = SimRng::new(spec.seed, "sync-phase", u64::from(node)).below(interval_ns);
    let sync = SyncConfig {
        peers: peer_plan(spec, node, boot),
        interval_ns,
        phase_ns,
        session_timeout_ns: spec.session_timeout.as_nanos() as u64,
    };
    NodeConfig { replica, sync, ..NodeConfig::new(NodeId(node), []) }
}
