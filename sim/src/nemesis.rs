//! The nemesis: executes the fault schedule at its simulated times.
//!
//! Partitions and network changes go to the network model; crashes drop the
//! node's unsynced writes (tearing the last one when asked) and kill it in
//! madsim, restarts re-run its boot, which recovers from its disk; pauses
//! freeze it in madsim; clock skew shifts its timers.

use crate::rng::SimRng;
use crate::spec::{FaultKind, FaultSpec};
use crate::trace::Event;
use crate::world::{Life, World, lock, now_ns};
use madsim::runtime::Handle;
use madsim::task::NodeId as MadsimNode;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Start,
    Heal,
}

/// Runs the schedule; `nodes` are the madsim ids of the SCX nodes.
pub async fn run(world: Arc<World>, nodes: Vec<MadsimNode>) {
    let mut steps: Vec<(Duration, Step, usize)> = Vec::new();
    for (index, fault) in world.spec.faults.iter().enumerate() {
        steps.push((fault.start, Step::Start, index));
        if let Some(end) = fault.end {
            steps.push((end, Step::Heal, index));
        }
    }
    // Heals before starts at one instant, so a fault ending as another begins never overlaps it.
    steps.sort_by_key(|(at, step, index)| (*at, std::cmp::Reverse(*step), *index));
    let mut rng = SimRng::new(world.spec.seed, "nemesis", 0);
    let handle = Handle::current();
    for (at, step, index) in steps {
        let now = Duration::from_nanos(now_ns());
        if at > now {
            madsim::time::sleep(at - now).await;
        }
        let fault = &world.spec.faults[index];
        match step {
            Step::Start => start(&world, &handle, &nodes, fault, &mut rng),
            Step::Heal => heal(&world, &handle, &nodes, fault),
        }
    }
}

fn start(world: &World, handle: &Handle, nodes: &[MadsimNode], fault: &FaultSpec, rng: &mut SimRng) {
    tracing::info!(t_ms = now_ns() / 1_000_000, fault = fault.kind.name(), nodes = ?fault.kind.nodes(), "fault started");
    world.record(Event::Fault { name: fault.kind.name(), healed: false, nodes: fault.kind.nodes() });
    match &fault.kind {
        FaultKind::Crash { nodes: crashed, tear } => {
            for &node in crashed {
                crash(world, handle, nodes[node as usize], node, *tear, rng);
            }
        }
        FaultKind::Pause { nodes: paused } => {
            for &node in paused {
                if world.life(node) == Life::Up {
                    handle.pause(nodes[node as usize]);
                    lock(&world.life)[node as usize] = Life::Paused;
                }
            }
        }
        FaultKind::ClockSkew { nodes: skewed, offset_ms } => {
            for &node in skewed {
                lock(&world.skew_ns)[node as usize] = offset_ms * 1_000_000;
            }
        }
        kind => lock(&world.network).start(kind),
    }
}

fn heal(world: &World, handle: &Handle, nodes: &[MadsimNode], fault: &FaultSpec) {
    tracing::info!(t_ms = now_ns() / 1_000_000, fault = fault.kind.name(), nodes = ?fault.kind.nodes(), "fault healed");
    world.record(Event::Fault { name: fault.kind.name(), healed: true, nodes: fault.kind.nodes() });
    match &fault.kind {
        FaultKind::Crash { nodes: crashed, .. } => {
            for &node in crashed {
                if world.life(node) == Life::Down {
                    lock(&world.life)[node as usize] = Life::Up;
                    handle.restart(nodes[node as usize]);
                }
            }
        }
        FaultKind::Pause { nodes: paused } => {
            for &node in paused {
                if world.life(node) == Life::Paused {
                    lock(&world.life)[node as usize] = Life::Up;
                    handle.resume(nodes[node as usize]);
                }
            }
        }
        FaultKind::ClockSkew { nodes: skewed, .. } => {
            for &node in skewed {
                lock(&world.skew_ns)[node as usize] = 0;
            }
        }
        kind => lock(&world.network).heal(kind),
    }
}

/// Crashes `node`: its unsynced writes are lost (the last one torn when
/// `tear`), its tasks die and its sockets close.
fn crash(world: &World, handle: &Handle, id: MadsimNode, node: u32, tear: bool, rng: &mut SimRng) {
    if world.life(node) == Life::Down {
        return;
    }
    if world.life(node) == Life::Paused {
        handle.resume(id);
    }
    let disk = &world.disks[node as usize];
    let unsynced = disk.unsynced_bytes();
    let tear_bytes = (tear && unsynced > 1).then(|| 1 + rng.below(unsynced - 1) as usize);
    let lost = disk.crash(tear_bytes);
    // Kill before restart, always: a restart without a kill keeps the old sockets.
    handle.kill(id);
    lock(&world.life)[node as usize] = Life::Down;
    lock(&world.cores)[node as usize] = None;
    let mut metrics = lock(&world.metrics);
    metrics.crashes += 1;
    metrics.unsynced_bytes_lost += lost;
    drop(metrics);
    tracing::info!(
        t_ms = now_ns() / 1_000_000,
        node,
        unsynced_bytes_lost = lost,
        torn = tear_bytes.is_some(),
        "crashed"
    );
    world.record(Event::Crash { node, unsynced_bytes: lost, torn: tear_bytes.is_some() });
}
