//! The workload: seeded writes at each node. Each lane carries a few ops
//! over the key space; a share of them hit a small set of hot keys that every
//! node writes, so concurrent lanes conflict for real.

use crate::rng::SimRng;
use crate::spec::WorkloadSpec;
use scx_engine::{WorldOp, WorldState};

/// The ops of one lane, built from the author's current state so puts and
/// removes carry what the author saw (the law's conflict detection needs it).
pub fn next_ops(rng: &mut SimRng, spec: &WorkloadSpec, state: &WorldState) -> Vec<WorldOp> {
    let keys = u64::from(spec.keys.max(1));
    let hot_keys = (keys / 20).max(1);
    (0..spec.ops_per_lane.max(1))
        .map(|_| {
            let key = if rng.chance(spec.conflict_ratio) { rng.below(hot_keys) } else { rng.below(keys) } as u32;
            match rng.below(10) {
                0..=3 => state.put(key, rng.below(1_000_000)),
                4..=6 => WorldOp::Add { key, delta: rng.below(201) as i64 - 100 },
                7 | 8 => WorldOp::Insert { key, element: rng.below(16) },
                _ => state.remove(key, rng.below(16)),
            }
        })
        .collect()
}

/// Simulated seconds until the next lane at `ops_per_sec` ops per second.
pub fn next_delay_secs(rng: &mut SimRng, spec: &WorkloadSpec) -> f64 {
    let lanes_per_sec = spec.ops_per_sec / f64::from(spec.ops_per_lane.max(1));
    if lanes_per_sec <= 0.0 { f64::INFINITY } else { rng.exponential(1.0 / lanes_per_sec) }
}
