//! One SCX node inside madsim: a short poll loop around the engine's
//! [`Node`]. Inputs go in (datagrams from the receive tasks, writes from the
//! workload task, timeouts from the timer the node asks for), and
//! [`drive`] drains the outputs: each persist is written to the node's
//! disk and acknowledged, each datagram handed to the network, each event
//! turned into observations. The engine holds back transmits and events
//! until the persists before them are acknowledged (write-ahead by
//! construction), so when the disk dies under a persist, nothing after it
//! leaves the node.

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
use scx_engine::node::{NodeEvent, Output};
use scx_engine::protocol::{Outcome, Role, SyncEvent};
use scx_engine::{LaneError, Node, NodeId, Replica, SnapshotError, WorldState};
use scx_model::{Frontier, ModelValue, RegisterValue};
use scx_store::Store;
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

/// The node's clock: simulated time plus its skew, from an epoch one
/// largest skew before the run starts, so it never goes below zero.
pub fn local_now_ns(world: &World, node: u32) -> u64 {
    local_ns(world, node, now_ns())
}

fn local_ns(world: &World, node: u32, sim_ns: u64) -> u64 {
    let epoch = crate::scenario::MAX_CLOCK_SKEW.as_nanos() as i64;
    // Cannot go negative: |skew| <= MAX_CLOCK_SKEW (validated), and the
    // scenario's limits keep the sum far inside i64.
    (sim_ns as i64 + epoch + world.skew(node)) as u64
}

/// Simulated time at which the node's clock reads `local_ns` (now if that
/// is in the past).
fn sim_ns_at(world: &World, node: u32, local: u64) -> u64 {
    let now = now_ns();
    now + local.saturating_sub(local_ns(world, node, now))
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
    if world.spec.topology == Topology::AirGapped {
        madsim::task::spawn(courier_loop(world.clone(), core.clone()));
    }
    workload_loop(world, core).await;
}

/// Recovers the node from its disk, makes what recovery must record durable,
/// and tells the checkers what it recovered.
fn boot(world: &Arc<World>, node: u32, endpoint: Endpoint) -> Option<NodeCore> {
    let boot = {
        let mut boots = lock(&world.boots);
        boots[node as usize] += 1;
        boots[node as usize]
    };
    let mut disk = world.disks[node as usize].clone();
    let recovered = disk.load().map_err(|error| error.to_string());
    let rejoining = lock(&world.rejoining)[node as usize];
    let config = crate::node_config::node_config(&world.spec, node, boot, rejoining);
    let opened = recovered.and_then(|recovered| {
        let opened = Node::recover(scx_engine::World, config, &recovered, local_now_ns(world, node));
        opened.map_err(|error| error.to_string())
    });
    let (mut engine, report) = match opened {
        Ok(opened) => opened,
        Err(error) => {
            world.observe(Observation::RecoveryFailed { node, error });
            return None;
        }
    };
    engine.share_lanes(&world.lanes);
    let mut core = NodeCore {
        index: node,
        node: engine,
        disk,
        rng: SimRng::new(world.spec.seed, "node", u64::from(node) << 32 | u64::from(boot)),
        endpoint,
        timer_armed_ns: None,
    };
    // Recovery's own writes (the rejoin record) go first; a crash armed for
    // this instant may land on them: a crash, not a recovery that failed.
    if !drive(world, &mut core) {
        return None;
    }
    let status = status_view(&mut core.node);
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
    if core.node.is_rejoining() {
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
    world.observe(Observation::Booted {
        node,
        boot,
        frontier: frontier(core.node.replica()),
        status,
        torn_tail_bytes: report.torn_tail_bytes,
        corruption_detected: report.corruption_detected,
        rejoining: core.node.is_rejoining(),
    });
    Some(core)
}

async fn receive_loop(world: Arc<World>, core: Arc<Mutex<NodeCore>>, endpoint: Endpoint) {
    loop {
        let Ok((payload, from)) = endpoint.recv_from_raw(TAG).await else { continue };
        let (Ok(bytes), Some(from)) = (payload.downcast::<Vec<u8>>(), node_of(from)) else { continue };
        let mut core = lock(&core);
        let me = core.index;
        world.record(Event::Deliver { from, to: me, bytes: bytes.len() as u32 });
        lock(&world.metrics).messages_delivered += 1;
        let core = &mut *core;
        let forgeries = lock(&world.hostile)[from as usize].as_ref().map(|hostile| hostile.forgeries_in(&bytes));
        let forgeries = forgeries.unwrap_or_default();
        let was_open = |core: &NodeCore, forgery: &Forgery| {
            core.node
                .open_sessions()
                .any(|(peer, session, _, expect)| (peer.0, session, expect) == (from, forgery.session, forgery.expect))
        };
        let applying: Vec<Forgery> = forgeries.into_iter().filter(|forgery| was_open(core, forgery)).collect();
        core.node.handle_datagram(local_now_ns(&world, me), NodeId(from), &bytes);
        let applied: Vec<Forgery> = applying.into_iter().filter(|forgery| !was_open(core, forgery)).collect();
        for forgery in applied {
            // The step was open, the datagram (which decodes whole) took
            // it, so its batch was applied: a held lane at the dot makes
            // the twin a fork the engine must surface.
            let held = core.node.replica().lane_at(forgery.dot.author, forgery.dot.seq);
            world.observe(Observation::ForgeryApplied {
                node: me,
                from,
                dot: forgery.dot,
                forged: forgery.forged,
                held,
            });
        }
        drive(&world, core);
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
        if core.node.is_rejoining() {
            // A replacement neither writes nor serves reads until it rejoined.
            continue;
        }
        if !write_lane(&world, &mut core, &mut rng, &spec) {
            return;
        }
        let key = workload::read_key(&mut rng, &spec);
        read(&world, &mut core, key);
        drive(&world, &mut core);
    }
    std::future::pending::<()>().await;
}

/// Authors one lane and makes it durable; `false` when the node's disk
/// died under the write (then it was never acknowledged).
fn write_lane(world: &Arc<World>, core: &mut NodeCore, rng: &mut SimRng, spec: &crate::spec::WorkloadSpec) -> bool {
    let ops = workload::next_ops(rng, spec, core.node.state());
    let now = local_now_ns(world, core.index);
    if let Err(error) = core.node.write(now, ops) {
        world.observe(Observation::WriteRefused { node: core.index, error: error.to_string() });
    }
    // The acknowledgement (`Written`) comes out once the lane is durable.
    drive(world, core)
}

/// Reads one key, as an application would, and shows the checkers what
/// it returned and what the node held.
fn read(world: &World, core: &mut NodeCore, key: u32) {
    let value = read_value(core.node.state(), key);
    let frontier = frontier(core.node.replica());
    lock(&world.metrics).reads += 1;
    world.observe(Observation::Read { node: core.index, key, value, frontier });
}

/// One key of the engine's state, in the model's shape.
pub fn read_value(state: &WorldState, key: u32) -> ModelValue {
    ModelValue {
        register: state
            .registers
            .get(&key)
            .map(|register| RegisterValue { value: register.value, writer: register.writer }),
        counter: state.counters.get(&key).copied(),
        set: state.sets.get(&key).map(|set| set.by_element()).unwrap_or_default(),
    }
}

/// What the replica holds, as per-author tips.
pub fn frontier(replica: &Replica<scx_engine::World>) -> Frontier {
    replica.author_tips()
}

/// The node's hashes and position.
pub fn status_view(node: &mut Node<scx_engine::World>) -> StatusView {
    let status = node.status();
    StatusView { lane_index: status.lane_index, chain_hash: status.chain_hash, state_digest: status.state_digest }
}

/// Wakes the node when its clock reaches `at_ns` (simulated time), for
/// [`Node::handle_timeout`]. A timer that finds an earlier one armed since
/// still hands the node its timeout, which is harmless (it acts only on what
/// is due), and re-arms.
async fn timer(world: Arc<World>, node: u32, at_ns: u64) {
    madsim::time::sleep(Duration::from_nanos(at_ns.saturating_sub(now_ns()))).await;
    let Some(core) = world.core(node) else { return };
    let mut core = lock(&core);
    if core.timer_armed_ns == Some(at_ns) {
        core.timer_armed_ns = None;
    }
    let now = local_now_ns(&world, node);
    core.node.handle_timeout(now);
    drive(&world, &mut core);
}

/// Arms a timer for the node's next timeout, unless one at or before it is armed.
fn arm_timer(world: &Arc<World>, core: &mut NodeCore) {
    let Some(local) = core.node.poll_timeout() else { return };
    // madsim's timers have a 1 ms floor; an earlier wake-up would only spin.
    let at_ns = sim_ns_at(world, core.index, local).max(now_ns() + 1_000_000);
    if core.timer_armed_ns.is_some_and(|armed| armed <= at_ns) {
        return;
    }
    core.timer_armed_ns = Some(at_ns);
    madsim::task::spawn(timer(world.clone(), core.index, at_ns));
}

/// Carries bundle files (air-gapped topology: no network, a courier at
/// every tick of the node's clock) to a random peer.
async fn courier_loop(world: Arc<World>, core: Arc<Mutex<NodeCore>>) {
    let interval = world.spec.sync_interval.as_nanos().max(1) as u64;
    let node = lock(&core).index;
    let phase = SimRng::new(world.spec.seed, "sync-phase", u64::from(node)).below(interval);
    loop {
        // Ticks fall on multiples of the interval of the node's own clock, so
        // a skewed clock shifts when this node's courier leaves.
        let local = local_now_ns(&world, node) + phase;
        let wait = (interval - local % interval).max(1_000_000);
        madsim::time::sleep(Duration::from_nanos(wait)).await;
        let mut core = lock(&core);
        carry_bundle(&world, &mut core);
    }
}

/// Carries a bundle file of everything this node holds to a random peer.
fn carry_bundle(world: &Arc<World>, core: &mut NodeCore) {
    let nodes = world.spec.nodes;
    if nodes < 2 {
        return;
    }
    let peer = (core.index + 1 + core.rng.below(u64::from(nodes - 1)) as u32) % nodes;
    let Some(target) = world.core(peer) else { return };
    if world.life(peer) != Life::Up {
        return;
    }
    let mut bundle = core.node.bundle();
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
    let applied = target.node.apply_bundle(local_now_ns(world, peer), NodeId(from), &bundle);
    let lanes = applied.as_ref().map_or(0, |metrics| metrics.lanes_missing);
    world.record(Event::Bundle { from, to: peer, lanes });
    // What the bundle's snapshot and lanes raised comes out of the target's
    // outputs, reported like a session's.
    if let Err(error) = applied {
        world.observe(Observation::Warning {
            node: peer,
            peer: Some(from),
            warning: EngineWarning::BadMessage(error.to_string()),
        });
    }
    drive(world, &mut target);
}

/// Whether the node's disk died under it (its crash point was an IO
/// operation of this step); if so the node goes down now, and the caller
/// must do nothing more: not acknowledge, not transmit.
fn crash_landed(world: &World, node: u32) -> bool {
    let Some(effect) = world.disks[node as usize].crashed() else { return false };
    world.take_down(node, effect);
    true
}

/// Drains the node's outputs: each persist is written to the disk and
/// acknowledged, each datagram sent, each event reported; then arms the
/// node's next timer. Returns `false` when the disk died under a persist
/// (the node is down, and nothing after the persist left it) or refused one
/// (the node is wedged: its memory is ahead of its disk, so the engine keeps
/// everything after the persist back, and the checkers were told).
pub fn drive(world: &Arc<World>, core: &mut NodeCore) -> bool {
    let node = core.index;
    while let Some(output) = core.node.poll() {
        match output {
            Output::Persist(persist) => {
                let written = scx_store::persist(&mut core.disk, &persist.op);
                if crash_landed(world, node) {
                    return false;
                }
                if let Err(error) = written {
                    world.observe(Observation::StoreFailed { node, error: error.to_string() });
                    return false;
                }
                core.node.persisted(persist.token);
            }
            Output::Transmit(transmit) => send(world, &core.endpoint, node, transmit.to.0, transmit.bytes),
            Output::Event(event) => report(world, core, event),
        }
    }
    arm_timer(world, core);
    true
}

/// What the node told its driver, as observations.
fn report(world: &Arc<World>, core: &mut NodeCore, event: NodeEvent<scx_engine::WorldOp>) {
    let node = core.index;
    match event {
        NodeEvent::Written { id, lane } => {
            let seq = lane.seq;
            let ops = lane.ops.len() as u32;
            lock(&world.metrics).lanes += 1;
            tracing::trace!(t_ms = now_ns() / 1_000_000, node, seq, ops, "wrote a lane");
            world.record(Event::Write { node, seq, ops });
            world.observe(Observation::Wrote { node, id, lane });
        }
        NodeEvent::Replica(event) => replica_event(world, core, event),
        NodeEvent::Sync(event) => sync_event(world, core, event),
        NodeEvent::SessionStarted { peer, session } => {
            let status = status_view(&mut core.node);
            world.observe(Observation::SessionStarted { node, peer: peer.0, session, status });
        }
        NodeEvent::Rejoined => world.rejoined(node),
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
            let replica = core.node.replica();
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

fn sync_event(world: &Arc<World>, core: &mut NodeCore, event: SyncEvent) {
    let node = core.index;
    match event {
        SyncEvent::Completed { peer, session, role, outcome, metrics } => {
            world.count_bytes(&metrics);
            let mut totals = lock(&world.metrics);
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
            let status = (outcome == Outcome::InSync).then(|| status_view(&mut core.node));
            world.observe(Observation::SessionEnded {
                node,
                peer: peer.0,
                session,
                initiator: role == Role::Initiator,
                in_sync: outcome == Outcome::InSync,
                status,
                lanes_received: metrics.lanes_missing,
            });
            if metrics.lanes_missing > 0 && !core.node.is_rejoining() && core.rng.chance(READ_AFTER_SYNC_SHARE) {
                // Read what the session brought, as an application would.
                let key = workload::read_key(&mut core.rng, &world.spec.workload);
                read(world, core, key);
            }
        }
        SyncEvent::Failed { peer, metrics, .. } => {
            world.count_bytes(&metrics);
            let mut totals = lock(&world.metrics);
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
