//! The nemesis: executes the fault schedule at its simulated times.
//!
//! Partitions and network changes go to the network model. A crash is armed
//! on the node's disk at one of its next IO operations, drawn from the seed
//! (see `storage.rs`): the node dies inside a write or an fsync, losing its
//! unsynced bytes or tearing them. A node that does no IO for a while is
//! crashed between steps instead. Restarts re-run its boot, which recovers
//! from its disk; pauses freeze it in madsim; clock skew shifts its timers.

use crate::hostile::Hostile;
use crate::rng::SimRng;
use crate::spec::{FaultKind, FaultSpec};
use crate::storage::CrashPoint;
use crate::trace::Event;
use crate::world::{Life, World, lock, now_ns};
use madsim::runtime::Handle;
use scx_engine::NodeId;
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Step {
    Start,
    Heal,
}

/// A crash lands at one of the node's next this-many IO operations.
const CRASH_OPS_AHEAD: u64 = 4;
/// A node that does no IO for this long after its crash was armed is
/// crashed between steps.
const CRASH_DEADLINE: Duration = Duration::from_millis(250);

/// Runs the schedule.
pub async fn run(world: Arc<World>) {
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
            Step::Start => start(&world, &handle, fault, &mut rng),
            Step::Heal => heal(&world, &handle, fault),
        }
    }
}

fn start(world: &Arc<World>, handle: &Handle, fault: &FaultSpec, rng: &mut SimRng) {
    tracing::info!(t_ms = now_ns() / 1_000_000, fault = fault.kind.name(), nodes = ?fault.kind.nodes(), "fault started");
    world.record(Event::Fault { name: fault.kind.name(), healed: false, nodes: fault.kind.nodes() });
    match &fault.kind {
        FaultKind::Crash { nodes: crashed, tear, .. } => {
            for &node in crashed {
                arm_crash(world, node, *tear, rng);
            }
        }
        FaultKind::Replace { nodes: replaced } => {
            for &node in replaced {
                arm_crash(world, node, false, rng);
            }
        }
        FaultKind::Hostile { nodes: hostile, behaviours } => {
            for &node in hostile {
                let stream = SimRng::new(world.spec.seed, "hostile", (u64::from(node) << 32) | (now_ns() / 1_000_000));
                lock(&world.hostile)[node as usize] = Some(Hostile::new(NodeId(node), behaviours.clone(), stream));
            }
        }
        FaultKind::Pause { nodes: paused } => {
            for &node in paused {
                if world.life(node) == Life::Up {
                    handle.pause(world.madsim_node(node));
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

fn heal(world: &World, handle: &Handle, fault: &FaultSpec) {
    tracing::info!(t_ms = now_ns() / 1_000_000, fault = fault.kind.name(), nodes = ?fault.kind.nodes(), "fault healed");
    world.record(Event::Fault { name: fault.kind.name(), healed: true, nodes: fault.kind.nodes() });
    match &fault.kind {
        FaultKind::Crash { nodes: crashed, rot, .. } => {
            for &node in crashed {
                restart(world, handle, node, false, *rot);
            }
        }
        FaultKind::Replace { nodes: replaced } => {
            for &node in replaced {
                restart(world, handle, node, true, false);
            }
        }
        FaultKind::Hostile { nodes: hostile, .. } => {
            for &node in hostile {
                lock(&world.hostile)[node as usize] = None;
            }
        }
        FaultKind::Pause { nodes: paused } => {
            for &node in paused {
                if world.life(node) == Life::Paused {
                    lock(&world.life)[node as usize] = Life::Up;
                    handle.resume(world.madsim_node(node));
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

/// Restarts a crashed node; a replacement (`wipe`) gets an empty disk and
/// rejoins before it writes, and a `rot`ten disk has a bit flipped in one
/// durable record. A crash that has not landed yet lands now, so the
/// restart always follows a crash.
fn restart(world: &World, handle: &Handle, node: u32, wipe: bool, rot: bool) {
    if world.life(node) != Life::Down {
        let effect = world.disks[node as usize].crash_now();
        world.take_down(node, effect);
    }
    if world.life(node) != Life::Down {
        return;
    }
    let disk = &world.disks[node as usize];
    if wipe {
        disk.wipe();
        world.replaced(node);
    }
    disk.restart();
    if rot {
        rot_disk(world, node);
    }
    lock(&world.life)[node as usize] = Life::Up;
    handle.restart(world.madsim_node(node));
}

/// A bit of `node`'s durable log flips while it is down. The world learns
/// what the other nodes held, so lanes only this disk had may die with it.
fn rot_disk(world: &World, node: u32) {
    let mut rng = SimRng::new(world.spec.seed, "rot", (u64::from(node) << 32) | (now_ns() / 1_000_000));
    if let Some((record, offset)) = world.disks[node as usize].rot(&mut rng) {
        world.record(Event::Rot { node, record, offset });
        world.rotted(node);
    }
}

/// Arms a crash at one of `node`'s next IO operations (drawn from the seed)
/// and a deadline after which it crashes between steps.
fn arm_crash(world: &Arc<World>, node: u32, tear: bool, rng: &mut SimRng) {
    if world.life(node) == Life::Down {
        return;
    }
    // Cannot truncate: both are below a million.
    let point = CrashPoint {
        at_op: 1 + rng.below(CRASH_OPS_AHEAD) as u32,
        tear_ppm: tear.then(|| rng.below(1_000_000) as u32),
    };
    let arming = world.disks[node as usize].arm(point);
    let world = world.clone();
    madsim::task::spawn(async move {
        madsim::time::sleep(CRASH_DEADLINE).await;
        if world.life(node) != Life::Down && world.disks[node as usize].is_armed_by(arming) {
            let effect = world.disks[node as usize].crash_now();
            world.take_down(node, effect);
        }
    });
}
