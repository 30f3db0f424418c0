//! One SCX node inside madsim: boot (recover from its disk), receive
//! datagrams, write its workload, and sync on its clock by topology.
//!
//! Every step that changes the replica ends in [`pump`]: flush the replica to
//! the disk (the write-ahead rule), then hand datagrams to the network, then
//! report events. Nothing leaves a node before it is durable there.

use crate::hostile::Forgery;
use crate::network::Fate;
use crate::node_state::NodeCore;
use crate::observation::{EngineWarning, Observation, StatusView};
use crate::rng::SimRng;
use crate::spec::Topology;
use crate::trace::{DropReason, Event};
use crate::workload;
use crate::world::{Life, World, lock, now_ns};
use madsim::net::Endpoint;
use scx_engine::durable::DurableReplica;
use scx_engine::protocol::{self, Outcome, Role, SyncEvent, Syncer};
use scx_engine::{LaneError, NodeId, Replica, ReplicaConfig, SnapshotError, WorldState};
use scx_model::{Frontier, ModelValue, RegisterValue};
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
/// Share of the sessions that brought lanes after which a node reads a key
/// (every read forces a replay; reading after every one doubled the cost of
/// a run for little more evidence than reads after writes give).
const READ_AFTER_SYNC_SHARE: f64 = 0.25;

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

/// The peer to sync with now, by topology.
fn pick_peer(core: &mut NodeCore, world: &World) -> Option<u32> {
    let nodes = world.spec.nodes;
    let me = core.index;
    if nodes < 2 {
        return None;
    }
    let random_other = |rng: &mut SimRng| (me + 1 + rng.below(u64::from(nodes - 1)) as u32) % nodes;
    match &world.spec.topology {
        Topology::Mesh => {
            core.rotation = core.rotation % (nodes - 1) + 1;
            Some((me + core.rotation) % nodes)
        }
        Topology::PeerToPeer | Topology::AirGapped => Some(random_other(&mut core.rng)),
        Topology::ClientServer { server } => (me != *server).then_some(*server),
        Topology::Edge { hubs } => {
            if hubs.contains(&me) {
                let others: Vec<u32> = hubs.iter().copied().filter(|hub| *hub != me).collect();
                core.rotation = core.rotation.wrapping_add(1);
                others.get(core.rotation as usize % others.len().max(1)).copied()
            } else {
                hubs.get(me as usize % hubs.len().max(1)).copied()
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
    // A replacement rejoins until a majority of peers synced with it.
    config.rejoining = lock(&world.rejoining)[node as usize];
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

/// Recovers the node from its disk and tells the checkers what it recovered.
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
        // A crash armed for this instant landed on recovery's own writes
        // (the rejoin record): a crash, not a recovery that failed.
        Err(_) if crash_landed(world, node) => return None,
        Err(error) => {
            world.observe(Observation::RecoveryFailed { node, error: error.to_string() });
            return None;
        }
    };
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
    if report.corruption_detected {
        lock(&world.metrics).rot_detected += 1;
    }
    if durable.replica().is_rejoining() {
        world.awaits_rejoin(node);
    }
    if boot > 1 {
        world.record(Event::Recover {
            node,
            lanes: report.lanes,
            torn_tail_bytes: report.torn_tail_bytes,
            lane_index: status.lane_index,
        });
    }
    let replica = durable.replica();
    world.observe(Observation::Booted {
        node,
        boot,
        frontier: frontier(replica),
        status: status_view(replica),
        torn_tail_bytes: report.torn_tail_bytes,
        corruption_detected: report.corruption_detected,
        rejoining: replica.is_rejoining(),
    });
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
        let forgeries = lock(&world.hostile)[from as usize].as_ref().map(|hostile| hostile.forgeries_in(&bytes));
        let forgeries = forgeries.unwrap_or_default();
        let was_open = |core: &NodeCore, forgery: &Forgery| {
            core.syncer
                .open_sessions()
                .any(|(peer, session, _, expect)| (peer.0, session, expect) == (from, forgery.session, forgery.expect))
        };
        let applying: Vec<Forgery> = forgeries.into_iter().filter(|forgery| was_open(core, forgery)).collect();
        core.syncer.handle(NodeId(from), &bytes, core.durable.replica());
        let applied: Vec<Forgery> = applying.into_iter().filter(|forgery| !was_open(core, forgery)).collect();
        for forgery in applied {
            // The step was open, the datagram (which decodes whole) took
            // it, so its batch was applied: a held lane at the dot makes
            // the twin a fork the engine must surface.
            let held = core.durable.replica().lane_at(forgery.dot.author, forgery.dot.seq);
            world.observe(Observation::ForgeryApplied {
                node: me,
                from,
                dot: forgery.dot,
                forged: forgery.forged,
                held,
            });
        }
        pump(&world, core);
    }
}

/// Writes lanes at the workload's rate (a Poisson process on an absolute
/// schedule, so a wake-up writes every lane that is due and madsim's 1 ms
/// floor does not lower the rate), and reads a key after each write.
async fn workload_loop(world: Arc<World>, core: Arc<Mutex<NodeCore>>) {
    let spec = world.spec.workload.clone();
    let node = lock(&core).index;
    let boot = lock(&world.boots)[node as usize];
    let mut rng = SimRng::new(world.spec.seed, "workload", u64::from(node) << 32 | u64::from(boot));
    let end_ns = world.spec.duration.as_nanos() as u64;
    let mut due_ns = now_ns() as f64;
    loop {
        let gap = workload::next_delay_secs(&mut rng, &spec);
        if !gap.is_finite() {
            break;
        }
        due_ns += gap * 1e9;
        if due_ns >= end_ns as f64 {
            break;
        }
        let now = now_ns();
        if due_ns > now as f64 {
            madsim::time::sleep(Duration::from_nanos(due_ns as u64 - now).max(workload::MIN_SLEEP)).await;
        }
        if now_ns() >= end_ns {
            break;
        }
        let mut core = lock(&core);
        if core.durable.replica().is_rejoining() {
            // A replacement neither writes nor serves reads until it rejoined.
            continue;
        }
        if !write_lane(&world, &mut core, &mut rng, &spec) {
            return;
        }
        let key = workload::read_key(&mut rng, &spec);
        read(&world, &mut core, key);
        pump(&world, &mut core);
    }
    std::future::pending::<()>().await;
}

/// Authors one lane; `false` when the node's disk died under the write.
fn write_lane(world: &World, core: &mut NodeCore, rng: &mut SimRng, spec: &crate::spec::WorkloadSpec) -> bool {
    let ops = workload::next_ops(rng, spec, core.durable.replica().state());
    let op_count = ops.len() as u32;
    let index = core.index;
    let created = core.durable.create_lane(ops);
    if crash_landed(world, index) {
        // The write died with the node: not acknowledged.
        return false;
    }
    match created {
        Ok((id, lane)) => {
            let seq = lane.seq;
            lock(&world.metrics).lanes += 1;
            tracing::trace!(t_ms = now_ns() / 1_000_000, node = index, seq, ops = op_count, "wrote a lane");
            world.record(Event::Write { node: index, seq, ops: op_count });
            world.observe(Observation::Wrote { node: index, id, lane });
        }
        Err(error) => world.observe(Observation::StoreFailed { node: index, error: error.to_string() }),
    }
    true
}

/// Reads one key, as an application would, and shows the checkers what
/// it returned and what the node held.
fn read(world: &World, core: &mut NodeCore, key: u32) {
    let replica = core.durable.replica();
    let value = read_value(replica.state(), key);
    let frontier = frontier(replica);
    lock(&world.metrics).reads += 1;
    world.observe(Observation::Read { node: core.index, key, value, frontier });
}

/// One key of the engine's state, in the model's shape.
fn read_value(state: &WorldState, key: u32) -> ModelValue {
    ModelValue {
        register: state
            .registers
            .get(&key)
            .map(|register| RegisterValue { value: register.value, writer: register.writer }),
        counter: state.counters.get(&key).copied(),
        set: state.sets.get(&key).cloned().unwrap_or_default(),
    }
}

/// What the replica holds, as per-author tips.
fn frontier(replica: &Replica<scx_engine::World>) -> Frontier {
    replica.author_tips()
}

/// The replica's hashes and position.
pub fn status_view(replica: &mut Replica<scx_engine::World>) -> StatusView {
    let status = replica.status();
    StatusView { lane_index: status.lane_index, chain_hash: status.chain_hash, state_digest: status.state_digest }
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
        let Some(peer) = pick_peer(&mut core, &world) else { continue };
        if core.syncer.is_syncing_with(NodeId(peer)) {
            continue;
        }
        let core = &mut *core;
        let session = core.syncer.initiate(NodeId(peer), core.durable.replica());
        // The hello just computed the status: asking again costs no replay.
        let status = status_view(core.durable.replica());
        core.open_since.insert((NodeId(peer), session), now_ns());
        world.observe(Observation::SessionStarted { node, peer, session, status });
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
    let Some(peer) = pick_peer(core, world) else { return };
    let Some(target) = world.core(peer) else { return };
    if world.life(peer) != Life::Up {
        return;
    }
    let mut bundle = protocol::bundle(core.durable.replica());
    let from = core.index;
    // A bundle file can be corrupted on its way like a datagram can (its
    // checksum refuses it), or, half the time when it carries a snapshot,
    // before it was sealed: a writer's memory error in the snapshot's state,
    // which only the snapshot's own digest can catch.
    let corrupted = {
        let mut network = lock(&world.network);
        network.roll_corruption()
            && match crate::hostile::bad_snapshot(&bundle, &mut core.rng).filter(|_| core.rng.chance(0.5)) {
                Some(damaged) => {
                    bundle = damaged;
                    true
                }
                None => network.corrupt(&mut bundle),
            }
    };
    if corrupted {
        world.record(Event::Corrupt { from, to: peer });
    }
    let mut target = lock(&target);
    let applied = protocol::apply_bundle(&bundle, NodeId(from), target.durable.replica());
    let lanes = applied.as_ref().map_or(0, |(metrics, _)| metrics.lanes_missing);
    world.record(Event::Bundle { from, to: peer, lanes });
    match applied {
        // What the bundle's snapshot and lanes raised is reported like a session's.
        Ok((_, events)) => {
            for event in events {
                report(world, &mut target, event);
            }
        }
        Err(error) => world.observe(Observation::Warning {
            node: peer,
            peer: Some(from),
            warning: EngineWarning::BadMessage(error.to_string()),
        }),
    }
    pump(world, &mut target);
}

/// Whether the node's disk died under it (its crash point was an IO
/// operation of this step); if so the node goes down now, and the caller
/// must do nothing more: not acknowledge, not transmit.
fn crash_landed(world: &World, node: u32) -> bool {
    let Some(effect) = world.disks[node as usize].crashed() else { return false };
    world.take_down(node, effect);
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
                replica_event(world, core, event);
            }
        }
        Err(error) => {
            world.observe(Observation::StoreFailed { node, error: error.to_string() });
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

/// What the replica told its driver, as observations.
fn replica_event(world: &World, core: &mut NodeCore, event: scx_engine::Event) {
    let node = core.index;
    match event {
        scx_engine::Event::SnapshotCommitted { lane_index, id } => {
            tracing::debug!(t_ms = now_ns() / 1_000_000, node, lane_index, id = %id.short(), "committed a stable snapshot");
            lock(&world.metrics).snapshots += 1;
            world.record(Event::Snapshot { node, lane_index });
            let replica = core.durable.replica();
            // The registry holds every snapshot the replica passed; the one just committed is among them.
            let header = replica
                .snapshots()
                .latest()
                .filter(|latest| latest.header.id() == id)
                .map(|latest| (latest.header.chain_hash, latest.header.state_digest));
            if let Some((chain_hash, state_digest)) = header {
                let frontier = frontier(replica);
                world.observe(Observation::SnapshotCommitted {
                    node,
                    lane_index,
                    id,
                    chain_hash,
                    state_digest,
                    frontier,
                });
            }
        }
        scx_engine::Event::Fork(proof) => {
            world.observe(Observation::ForkEvidence { node, dot: proof.dot, kept: proof.kept, other: proof.other });
        }
        scx_engine::Event::Rejected { id, error } => world.observe(Observation::Warning {
            node,
            peer: None,
            warning: EngineWarning::LaneRejected(format!("pending lane {} released but invalid: {error}", id.short())),
        }),
        scx_engine::Event::Pruned { .. } | scx_engine::Event::SnapshotInstalled { .. } => {}
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
            totals.compact_summaries += metrics.compact_summaries;
            totals.bloom_supplies += metrics.supplies;
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
            let status = (outcome == Outcome::InSync).then(|| status_view(core.durable.replica()));
            world.observe(Observation::SessionEnded {
                node,
                peer: peer.0,
                session,
                initiator: role == Role::Initiator,
                in_sync: outcome == Outcome::InSync,
                status,
                lanes_received: metrics.lanes_missing,
            });
            if !core.durable.replica().is_rejoining() {
                world.rejoined(node);
            }
            if metrics.lanes_missing > 0
                && !core.durable.replica().is_rejoining()
                && core.rng.chance(READ_AFTER_SYNC_SHARE)
            {
                // Read what the session brought, as an application would.
                let key = workload::read_key(&mut core.rng, &world.spec.workload);
                read(world, core, key);
            }
        }
        SyncEvent::Failed { peer, session, metrics, .. } => {
            core.open_since.remove(&(peer, session));
            let mut totals = lock(&world.metrics);
            totals.bytes_sent += metrics.bytes_sent;
            totals.bytes_missing += metrics.bytes_missing;
            totals.compact_summaries += metrics.compact_summaries;
            totals.bloom_supplies += metrics.supplies;
            totals.sessions_abandoned += 1;
            drop(totals);
            tracing::debug!(t_ms = now_ns() / 1_000_000, node, peer = peer.0, "session abandoned");
            world.record(Event::SessionTimeout { node, peer: peer.0 });
        }
        SyncEvent::LaneRejected { error: LaneError::Fork { dot, kept, other }, .. } => {
            world.observe(Observation::ForkEvidence { node, dot, kept, other });
        }
        SyncEvent::LaneRejected { peer, error } => world.observe(Observation::Warning {
            node,
            peer: Some(peer.0),
            warning: EngineWarning::LaneRejected(error.to_string()),
        }),
        SyncEvent::ForkSuspected { peer, author, seq } => world.observe(Observation::Warning {
            node,
            peer: Some(peer.0),
            warning: EngineWarning::ForkSuspected { author: author.0, seq },
        }),
        SyncEvent::BadMessage { peer, error } => world.observe(Observation::Warning {
            node,
            peer: Some(peer.0),
            warning: EngineWarning::BadMessage(error.to_string()),
        }),
        SyncEvent::Diverged { peer, error } => match error {
            SnapshotError::Diverged { .. } | SnapshotError::ContradictsHistory { .. } => {
                world.observe(Observation::SnapshotChainDiverged { node, peer: peer.0, error: error.to_string() });
            }
            _ => {
                lock(&world.metrics).snapshots_rejected += 1;
                world.observe(Observation::Warning {
                    node,
                    peer: Some(peer.0),
                    warning: EngineWarning::SnapshotRejected(error.to_string()),
                });
            }
        },
    }
}

/// Hands a datagram to the network model, which drops, delays, duplicates
/// or corrupts it, and to madsim, which moves it.
pub fn send(world: &Arc<World>, endpoint: &Endpoint, from: u32, to: u32, mut bytes: Vec<u8>) {
    if let Some(hostile) = lock(&world.hostile)[from as usize].as_mut() {
        let (tampered, how) = hostile.tamper(bytes);
        bytes = tampered;
        if let crate::hostile::Tampered::By(behaviour) = how {
            lock(&world.metrics).hostile_datagrams += 1;
            world.record(Event::Hostile { from, to, behaviour: behaviour.name() });
        }
    }
    lock(&world.metrics).messages_sent += 1;
    world.record(Event::Send { from, to, bytes: bytes.len() as u32 });
    let fate = lock(&world.network).fate(from, to);
    let (delays, corrupted) = match fate {
        Fate::Dropped(reason) => {
            let mut metrics = lock(&world.metrics);
            metrics.messages_dropped += 1;
            metrics.partition_drops += u64::from(reason == DropReason::Partition);
            drop(metrics);
            world.record(Event::Drop { from, to, reason });
            return;
        }
        Fate::Deliver { delays, corrupted } => (delays, corrupted),
    };
    if corrupted && lock(&world.network).corrupt(&mut bytes) {
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
                let mut metrics = lock(&world.metrics);
                metrics.messages_dropped += 1;
                metrics.partition_drops += 1;
                drop(metrics);
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
