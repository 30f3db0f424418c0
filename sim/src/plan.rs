//! Resolving a scenario and a seed into the one `RunSpec` that runs.
//!
//! Swarm mode (TigerBeetle's `options_swarm`): when a scenario enables it,
//! the seed also picks a fault mix: how many faults, of which kinds, when,
//! on which nodes and how strong, and scales loss, duplication and
//! reordering, so each seed explores a different corner. Every swarm fault
//! heals inside the faulty phase, so convergence is still required.

use crate::rng::SimRng;
use crate::scenario::{MAX_RUN_TIME, Scenario};
use crate::spec::{
    BundleSpec, FaultKind, FaultSpec, Hostility, Latency, NetworkSpec, PlantedBug, RunSpec, Topology, WorkloadSpec,
};
use std::time::Duration;

/// The plan for `scenario` at `seed`.
pub fn resolve(scenario: &Scenario, seed: u64, bug: Option<PlantedBug>) -> RunSpec {
    let mut spec = RunSpec {
        name: scenario.name.clone(),
        seed,
        nodes: scenario.nodes,
        topology: scenario.topology.clone(),
        sync_interval: scenario.sync_interval,
        session_timeout: scenario.session_timeout,
        duration: scenario.duration,
        settle: scenario.settle,
        network: NetworkSpec {
            latency: scenario.latency.clone(),
            loss: scenario.loss,
            duplicate: scenario.duplicate,
            reorder: scenario.reorder,
            corrupt: scenario.corrupt,
        },
        workload: WorkloadSpec {
            ops_per_sec: scenario.ops_per_sec,
            ops_per_lane: scenario.ops_per_lane,
            keys: scenario.keys,
            conflict_ratio: scenario.conflict_ratio,
        },
        faults: scenario
            .faults
            .iter()
            .map(|fault| FaultSpec { start: fault.at, end: fault.end(), kind: fault.kind.clone() })
            .collect(),
        bundles: scenario.bundles.iter().map(|b| BundleSpec { at: b.at, from: b.from, to: b.to }).collect(),
        snapshot_interval: scenario.snapshot_interval,
        prune: scenario.prune,
        sample_interval: scenario.sample_interval,
        bug,
    };
    if scenario.swarm {
        swarm(&mut spec, scenario);
    }
    // Validation bounded every time of the scenario and swarm faults heal
    // inside the faulty phase, so the run's clock sums stay small.
    assert!(spec.run_time() <= MAX_RUN_TIME, "a validated scenario's run fits MAX_RUN_TIME");
    spec
}

/// Adds a seeded fault mix to `spec`.
fn swarm(spec: &mut RunSpec, scenario: &Scenario) {
    let mut rng = SimRng::new(spec.seed, "swarm", 0);
    // Air-gapped nodes send no datagrams: their network noise would change nothing.
    if spec.topology != Topology::AirGapped {
        let scale = |rng: &mut SimRng, p: f64| if rng.chance(0.5) { p * 2.0 * rng.unit() } else { 0.0 };
        spec.network.loss = scale(&mut rng, spec.network.loss.max(0.02)).min(0.5);
        spec.network.duplicate = scale(&mut rng, spec.network.duplicate.max(0.02)).min(0.5);
        spec.network.reorder = scale(&mut rng, spec.network.reorder.max(0.05)).min(0.5);
    }
    let count = 1 + rng.below(u64::from(scenario.swarm_max_faults)) as usize;
    let mut busy: Vec<(u32, Duration, Duration)> = spec
        .faults
        .iter()
        .filter_map(|fault| match &fault.kind {
            FaultKind::Crash { nodes, .. } | FaultKind::Pause { nodes } => {
                Some((nodes.clone(), fault.start, fault.end.unwrap_or(Duration::MAX)))
            }
            _ => None,
        })
        .flat_map(|(nodes, start, end)| nodes.into_iter().map(move |node| (node, start, end)))
        .collect();
    let forever_down = spec.faults.iter().any(|fault| fault.end.is_none() && fault.kind.downed().is_some());
    for _ in 0..count {
        let Some(kind) = rng.pick(&scenario.swarm_kinds).cloned() else { return };
        let duration_ms = spec.duration.as_millis().max(2) as u64;
        let start = Duration::from_millis(rng.below(duration_ms / 2));
        let end = start + Duration::from_millis(1 + rng.below(duration_ms / 2));
        let nodes = pick_nodes(&mut rng, spec.nodes);
        let fault_kind = match kind.as_str() {
            "partition" => swarm_partition(&mut rng, spec.nodes),
            "crash" | "pause" => {
                let free: Vec<u32> = nodes
                    .into_iter()
                    .filter(|node| !busy.iter().any(|(n, s, e)| n == node && *s < end && start < *e))
                    .collect();
                if free.is_empty() {
                    continue;
                }
                busy.extend(free.iter().map(|node| (*node, start, end)));
                if kind == "crash" {
                    // Half the swarm's crashes tear, and a quarter leave a
                    // rotten disk where a rotten node can rejoin (mesh, p2p).
                    let tear = rng.chance(0.5);
                    // Not beside a node the scenario keeps down for good:
                    // a rotten node waits for every other one to sync.
                    let rot = rng.chance(0.25)
                        && matches!(spec.topology, Topology::Mesh | Topology::PeerToPeer)
                        && !forever_down;
                    FaultKind::Crash { nodes: free, tear, rot }
                } else {
                    FaultKind::Pause { nodes: free }
                }
            }
            "clock-skew" => FaultKind::ClockSkew { nodes, offset_ms: rng.below(2_001) as i64 - 1_000 },
            "hostile" => {
                // One hostile node at a time, with a seeded mix of behaviours.
                let node = rng.below(u64::from(spec.nodes)) as u32;
                let mut behaviours: Vec<Hostility> = Hostility::ALL.into_iter().filter(|_| rng.chance(0.5)).collect();
                if behaviours.is_empty() {
                    behaviours.push(*rng.pick(&Hostility::ALL).expect("there are behaviours"));
                }
                FaultKind::Hostile { nodes: vec![node], behaviours }
            }
            "latency" => {
                let max = Duration::from_millis(20 + rng.below(480));
                FaultKind::Latency { latency: Latency::LongTail { min: Duration::from_millis(1), max } }
            }
            _ => FaultKind::Loss { probability: 0.1 + 0.6 * rng.unit() },
        };
        spec.faults.push(FaultSpec { start, end: Some(end), kind: fault_kind });
    }
}

fn pick_nodes(rng: &mut SimRng, nodes: u32) -> Vec<u32> {
    let count = 1 + rng.below(u64::from(nodes.div_ceil(2)).max(1)) as u32;
    let mut all: Vec<u32> = (0..nodes).collect();
    rng.shuffle(&mut all);
    let mut picked: Vec<u32> = all.into_iter().take(count as usize).collect();
    picked.sort_unstable();
    picked
}

fn swarm_partition(rng: &mut SimRng, nodes: u32) -> FaultKind {
    let minority = pick_nodes(rng, nodes);
    let majority: Vec<u32> = (0..nodes).filter(|node| !minority.contains(node)).collect();
    if majority.is_empty() || rng.chance(0.3) {
        let to: Vec<u32> = (0..nodes).filter(|node| !minority.contains(node)).collect();
        if to.is_empty() {
            return FaultKind::Partition { groups: vec![minority] };
        }
        return FaultKind::OneWay { from: minority, to };
    }
    FaultKind::Partition { groups: vec![minority, majority] }
}
