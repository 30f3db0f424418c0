//! One SCX node inside madsim: boot (recover from its disk), receive
//! datagrams, write its workload, and sync on its clock by topology.
//!
//! Every step that changes the replica ends in [`pump`]: flush the replica to
//! the disk (the write-ahead rule), then hand datagrams to the network, then
//! report events. Nothing leaves a node before it is durable there.

use crate::checkers;
use crate::network::Fate;
use crate::rng::SimRng;
use crate::spec::{PlantedBug, Topology};
use crate::storage::SimDisk;
use crate::trace::{DropReason, Event};
use crate::workload;
use crate::world::{Life, World, lock, now_ns};
use madsim::net::Endpoint;
use scx_engine::durable::DurableReplica;
use scx_engine::protocol::{self, Outcome, Role, SyncEvent, Syncer};
use scx_engine::{LaneError, NodeId, ReplicaConfig, SnapshotError};
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The madsim tag SCX datagrams travel under.
const TAG: u64 = 0x5c5;
/// Receive loops per node: each madsim receive costs 1 ms of simulated time,
/// so one loop caps a node at about 1000 datagrams per simulated second.
const RECEIVE_TASKS: usize = 4;
const PORT: u16 = 7000;

/// The node's address.
pub fn address(node: u32) -> SocketAddr {
    let [_, a, b, c] = node.to_be_bytes();
    SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(10, a, b, c), PORT))
}

/// The node an address belongs to.
pub fn node_of(address: SocketAddr) -> Option<u32> {
    match address {
        SocketAddr::V4(v4) if v4.port() == PORT => {
            let [_, a, b, c] = v4.ip().octets();
            Some(u32::from_be_bytes([0, a, b, c]))
        }
        _ => None,
    }
}

/// A node's state while it is up.
pub struct NodeCore {
    /// The node.
    pub index: u32,
    /// Replica and disk.
    pub durable: DurableReplica<scx_engine::World, SimDisk>,
    /// Sync sessions.
    pub syncer: Syncer,
    rng: SimRng,
    open_since: BTreeMap<(NodeId, u64), u64>,
    rotation: u32,
    endpoint: Endpoint,
}

impl std::fmt::Debug for NodeCore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeCore").field("index", &self.index).field("durable", &self.durable).finish_non_exhaustive()
    }
}

impl NodeCore {
    /// The peer to sync with now, by topology.
    fn pick_peer(&mut self, world: &World) -> Option<u32> {
        let nodes = world.spec.nodes;
        let me = self.index;
        if nodes < 2 {
            return None;
        }
        let random_other = |rng: &mut SimRng| (me + 1 + rng.below(u64::from(nodes - 1)) as u32) % nodes;
        match &world.spec.topology {
            Topology::Mesh => {
                self.rotation = self.rotation % (nodes - 1) + 1;
                Some((me + self.rotation) % nodes)
            }
            Topology::PeerToPeer | Topology::AirGapped => Some(random_other(&mut self.rng)),
            Topology::ClientServer { server } => (me != *server).then_some(*server),
            Topology::Edge { hubs } => {
                if hubs.contains(&me) {
                    let others: Vec<u32> = hubs.iter().copied().filter(|hub| *hub != me).collect();
                    self.rotation = self.rotation.wrapping_add(1);
                    others.get(self.rotation as usize % others.len().max(1)).copied()
                } else {
                    hubs.get(me as usize % hubs.len().max(1)).copied()
                }
            }
        }
    }
}

fn replica_config(world: &World, node: u32) -> ReplicaConfig {
    let spec = &world.spec;
    let mut config = ReplicaConfig::new(NodeId(node), (0..spec.nodes).map(NodeId));
    config.snapshot_interval = spec.snapshot_interval;
    config.checkpoint_interval = spec.snapshot_interval.min(32);
    config.prune = spec.prune;
    config.bugs = crate::bugs::engine_bugs(spec.bug);
    config
}

/// The node's main task (madsim re-runs it on every restart).
pub async fn main(world: Arc<World>, node: u32) {
    let endpoint = match Endpoint::bind(address(node)).await {
        Ok(endpoint) => endpoint,
        Err(error) => panic!("n{node}: bind failed after a clean kill: {error}"),
    };
    let Some(core) = boot(&world, node, endpoint.clone()) else {
        std::future::pending::<()>().await;
        return;
    };
    let core = Arc::new(Mutex::new(core));
    lock(&world.cores)[node as usize] = Some(core.clone());
    for _ in 0..RECEIVE_TASKS {
        madsim::task::spawn(receive_loop(world.clone(), core.clone(), endpoint.clone()));
    }
    madsim::task::spawn(workload_loop(world.clone(), core.clone()));
    sync_loop(world, core).await;
}

/// Recovers the node from its disk and checks nothing it acknowledged was lost.
fn boot(world: &Arc<World>, node: u32, endpoint: Endpoint) -> Option<NodeCore> {
    let boot = {
        let mut boots = lock(&world.boots);
        boots[node as usize] += 1;
        boots[node as usize]
    };
    let disk = world.disks[node as usize].clone();
    let opened = DurableReplica::open(scx_engine::World, replica_config(world, node), disk);
    let (mut durable, report) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            world.violate("recovery", "always", Some(node), format!("n{node} could not recover its log: {error}"));
            return None;
        }
    };
    durable.set_lazy_sync(world.spec.bug == Some(PlantedBug::SendBeforeDurable));
    let status = durable.replica().status();
    tracing::info!(
        t_ms = now_ns() / 1_000_000,
        node,
        boot,
        lanes = report.lanes,
        torn_tail_bytes = report.torn_tail_bytes,
        lane_index = status.lane_index,
        "booted from its log"
    );
    if report.torn_tail_bytes > 0 {
        lock(&world.metrics).torn_tails_recovered += 1;
    }
    if boot > 1 {
        world.record(Event::Recover {
            node,
            lanes: report.lanes,
            torn_tail_bytes: report.torn_tail_bytes,
            lane_index: status.lane_index,
        });
        checkers::durability::check_node(world, node, durable.replica());
    }
    let mut syncer = Syncer::new(NodeId(node));
    syncer.set_bugs(crate::bugs::engine_bugs(world.spec.bug));
    Some(NodeCore {
        index: node,
        durable,
        syncer,
        rng: SimRng::new(world.spec.seed, "node", u64::from(node) << 32 | u64::from(boot)),
        open_since: BTreeMap::new(),
        rotation: 0,
        endpoint,
    })
}

async fn receive_loop(world: Arc<World>, core: Arc<Mutex<NodeCore>>, endpoint: Endpoint) {
    loop {
        let Ok((payload, from)) = endpoint.recv_from_raw(TAG).await else { continue };
        let (Ok(bytes), Some(from)) = (payload.downcast::<Vec<u8>>(), node_of(from)) else { continue };
        let mut core = lock(&core);
        let me = core.index;
        world.record(Event::Deliver { from, to: me, bytes: bytes.len() as u32 });
        let core = &mut *core;
        core.syncer.handle(NodeId(from), &bytes, core.durable.replica());
        pump(&world, core);
    }
}

async fn workload_loop(world: Arc<World>, core: Arc<Mutex<NodeCore>>) {
    let spec = world.spec.workload.clone();
    let mut rng = {
        let core = lock(&core);
        SimRng::new(
            world.spec.seed,
            "workload",
            u64::from(core.index) << 32 | u64::from(lock(&world.boots)[core.index as usize]),
        )
    };
    loop {
        let delay = workload::next_delay_secs(&mut rng, &spec);
        if !delay.is_finite() {
            break;
        }
        madsim::time::sleep(Duration::from_secs_f64(delay.min(3600.0))).await;
        if now_ns() >= world.spec.duration.as_nanos() as u64 {
            break;
        }
        let mut core = lock(&core);
        let ops = workload::next_ops(&mut rng, &spec, core.durable.replica().state());
        let op_count = ops.len() as u32;
        let index = core.index;
        let created = core.durable.create_lane(ops);
        if crash_landed(&world, index) {
            // The write died with the node: not acknowledged.
            return;
        }
        match created {
            Ok((id, lane)) => {
                lock(&world.authored).insert(id);
                let seq = lane.seq;
                lock(&world.oracle).ack(index, id, lane, now_ns());
                lock(&world.metrics).lanes += 1;
                tracing::trace!(t_ms = now_ns() / 1_000_000, node = index, seq, ops = op_count, "wrote a lane");
                world.record(Event::Write { node: index, seq, ops: op_count });
            }
            Err(error) => world.violate("write", "always", Some(index), format!("n{index} could not write: {error}")),
        }
        pump(&world, &mut core);
    }
    std::future::pending::<()>().await;
}

async fn sync_loop(world: Arc<World>, core: Arc<Mutex<NodeCore>>) {
    let interval = world.spec.sync_interval.as_nanos().max(1) as u64;
    let node = lock(&core).index;
    // Each node ticks at its own phase, so the cluster does not sync in lockstep.
    let phase = SimRng::new(world.spec.seed, "sync-phase", u64::from(node)).below(interval) as i64;
    loop {
        // Ticks fall on multiples of the interval of the node's own clock, so
        // a skewed clock shifts when this node syncs.
        let local = now_ns() as i64 + world.skew(node) + phase;
        let next_local = (local.div_euclid(interval as i64) + 1) * interval as i64;
        let wait = (next_local - local).max(1_000_000) as u64;
        madsim::time::sleep(Duration::from_nanos(wait)).await;
        let mut core = lock(&core);
        expire_sessions(&world, &mut core);
        if world.spec.topology == Topology::AirGapped {
            carry_bundle(&world, &mut core);
            continue;
        }
        let Some(peer) = core.pick_peer(&world) else { continue };
        if core.syncer.is_syncing_with(NodeId(peer)) {
            continue;
        }
        let core = &mut *core;
        let session = core.syncer.initiate(NodeId(peer), core.durable.replica());
        core.open_since.insert((NodeId(peer), session), now_ns());
        pump(&world, core);
    }
}

fn expire_sessions(world: &World, core: &mut NodeCore) {
    let now = now_ns();
    let timeout = world.spec.session_timeout.as_nanos() as u64;
    let open: Vec<(NodeId, u64)> = core.syncer.open_sessions().map(|(peer, id, _, _)| (peer, id)).collect();
    core.open_since.retain(|key, _| open.contains(key));
    for key in open {
        let since = *core.open_since.entry(key).or_insert(now);
        if now.saturating_sub(since) > timeout {
            core.syncer.abandon(key.0, key.1, "timeout");
        }
    }
}

/// Carries a bundle file of everything this node holds to a random peer
/// (air-gapped topology: no network, a courier at every tick).
fn carry_bundle(world: &Arc<World>, core: &mut NodeCore) {
    let Some(peer) = core.pick_peer(world) else { return };
    let Some(target) = world.core(peer) else { return };
    if world.life(peer) != Life::Up {
        return;
    }
    let mut bundle = protocol::bundle(core.durable.replica());
    let from = core.index;
    // A bundle file can be corrupted on its way like a datagram can.
    let corrupted = {
        let mut network = lock(&world.network);
        network.roll_corruption() && network.corrupt_snapshot(&mut bundle)
    };
    if corrupted {
        world.record(Event::Corrupt { from, to: peer });
    }
    let mut target = lock(&target);
    let metrics = protocol::apply_bundle(&bundle, target.durable.replica());
    world.record(Event::Bundle { from, to: peer, lanes: metrics.map_or(0, |m| m.lanes_missing) });
    pump(world, &mut target);
}

/// Whether the node's disk died under it (its crash point was an IO
/// operation of this step); if so the node goes down now, and the caller
/// must do nothing more: not acknowledge, not transmit.
fn crash_landed(world: &World, node: u32) -> bool {
    let Some(effect) = world.disks[node as usize].crashed() else { return false };
    crate::nemesis::take_down(world, node, effect);
    true
}

/// Flushes to disk, then transmits, then reports: the write-ahead rule.
/// Nothing is transmitted unless the flush succeeded.
pub fn pump(world: &Arc<World>, core: &mut NodeCore) {
    let node = core.index;
    let flushed = core.durable.flush();
    if crash_landed(world, node) {
        return;
    }
    match flushed {
        Ok(events) => {
            for event in events {
                if let scx_engine::Event::SnapshotCommitted { lane_index, id } = event {
                    tracing::debug!(t_ms = now_ns() / 1_000_000, node, lane_index, id = %id.short(), "committed a stable snapshot");
                    lock(&world.metrics).snapshots += 1;
                    world.record(Event::Snapshot { node, lane_index });
                }
            }
        }
        Err(error) => {
            world.violate("write", "always", Some(node), format!("n{node} could not sync its log: {error}"));
            return;
        }
    }
    while let Some((to, bytes)) = core.syncer.poll_transmit() {
        send(world, &core.endpoint, node, to.0, bytes);
    }
    while let Some(event) = core.syncer.poll_event() {
        report(world, core, event);
    }
}

fn report(world: &Arc<World>, core: &mut NodeCore, event: SyncEvent) {
    let node = core.index;
    match event {
        SyncEvent::Completed { peer, session, role, outcome, metrics } => {
            core.open_since.remove(&(peer, session));
            let mut totals = lock(&world.metrics);
            totals.bytes_sent += metrics.bytes_sent;
            totals.bytes_missing += metrics.bytes_missing;
            totals.round_trips += metrics.round_trips;
            totals.snapshots_installed += metrics.snapshots_installed;
            if role == Role::Initiator {
                totals.sessions += 1;
            }
            drop(totals);
            tracing::debug!(
                t_ms = now_ns() / 1_000_000,
                node,
                peer = peer.0,
                role = ?role,
                in_sync = outcome == Outcome::InSync,
                lanes_missing = metrics.lanes_missing,
                bytes_sent = metrics.bytes_sent,
                "session completed"
            );
            world.record(Event::Session {
                node,
                peer: peer.0,
                initiator: role == Role::Initiator,
                in_sync: outcome == Outcome::InSync,
                lanes_received: metrics.lanes_missing,
            });
        }
        SyncEvent::Failed { peer, session, metrics, .. } => {
            core.open_since.remove(&(peer, session));
            let mut totals = lock(&world.metrics);
            totals.bytes_sent += metrics.bytes_sent;
            totals.bytes_missing += metrics.bytes_missing;
            totals.sessions_abandoned += 1;
            drop(totals);
            tracing::debug!(t_ms = now_ns() / 1_000_000, node, peer = peer.0, "session abandoned");
            world.record(Event::SessionTimeout { node, peer: peer.0 });
        }
        SyncEvent::LaneRejected { error: LaneError::Fork { dot, kept, other }, .. } => {
            checkers::forks::check(world, node, dot, kept, other);
        }
        SyncEvent::ForkSuspected { .. } | SyncEvent::LaneRejected { .. } | SyncEvent::BadMessage { .. } => {}
        SyncEvent::Diverged { peer, error } => match error {
            SnapshotError::Diverged { .. } | SnapshotError::ContradictsHistory { .. } => {
                world.violate("snapshot-chain", "always", Some(node), format!("n{node} and n{}: {error}", peer.0))
            }
            _ => lock(&world.metrics).snapshots_rejected += 1,
        },
    }
}

/// Hands a datagram to the network model, which drops, delays, duplicates
/// or corrupts it, and to madsim, which moves it.
pub fn send(world: &Arc<World>, endpoint: &Endpoint, from: u32, to: u32, mut bytes: Vec<u8>) {
    lock(&world.metrics).messages_sent += 1;
    world.record(Event::Send { from, to, bytes: bytes.len() as u32 });
    let fate = lock(&world.network).fate(from, to);
    let (delays, corrupted) = match fate {
        Fate::Dropped(reason) => {
            lock(&world.metrics).messages_dropped += 1;
            world.record(Event::Drop { from, to, reason });
            return;
        }
        Fate::Deliver { delays, corrupted } => (delays, corrupted),
    };
    if corrupted && lock(&world.network).corrupt_snapshot(&mut bytes) {
        world.record(Event::Corrupt { from, to });
    }
    if delays.len() > 1 {
        world.record(Event::Duplicate { from, to });
    }
    let copies = delays.len();
    for (copy, delay) in delays.into_iter().enumerate() {
        let bytes = if copy + 1 == copies { std::mem::take(&mut bytes) } else { bytes.clone() };
        let (world, endpoint) = (world.clone(), endpoint.clone());
        madsim::task::spawn(async move {
            madsim::time::sleep(delay).await;
            if lock(&world.network).is_blocked(from, to) {
                lock(&world.metrics).messages_dropped += 1;
                world.record(Event::Drop { from, to, reason: DropReason::Partition });
                return;
            }
            if world.life(to) == Life::Down {
                world.record(Event::Drop { from, to, reason: DropReason::ReceiverDown });
                return;
            }
            let _ = endpoint.send_to_raw(address(to), TAG, Box::new(bytes)).await;
        });
    }
}
