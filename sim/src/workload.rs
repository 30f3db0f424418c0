//! The workload: seeded writes at each node. Each lane carries a few ops
//! over the key space; a share of them hit a small set of hot keys that every
//! node writes, so concurrent lanes conflict for real.
//!
//! Lanes arrive as a Poisson process: a node sleeps an exponential gap, then
//! writes one lane. madsim sleeps at least [`MIN_SLEEP`], so gaps shorter
//! than that are stretched and a node writes only [`written_share`] of the
//! rate asked; the scenario limit `MAX_LANES_PER_SEC_PER_NODE` keeps that
//! share above 99.5%.

use crate::rng::SimRng;
use crate::spec::WorkloadSpec;
use scx_engine::{WorldOp, WorldState};
use std::time::Duration;

/// madsim's shortest sleep: a node wakes, and so writes a lane, at most once per millisecond.
pub const MIN_SLEEP: Duration = Duration::from_millis(1);

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

/// The key a read looks at: hot keys as often as writes hit them, so reads
/// see the conflicts.
pub fn read_key(rng: &mut SimRng, spec: &WorkloadSpec) -> u32 {
    let keys = u64::from(spec.keys.max(1));
    let hot_keys = (keys / 20).max(1);
    // Cannot truncate: both bounds are u32 values.
    (if rng.chance(spec.conflict_ratio) { rng.below(hot_keys) } else { rng.below(keys) }) as u32
}

/// Simulated seconds until the next lane at `ops_per_sec` ops per second.
pub fn next_delay_secs(rng: &mut SimRng, spec: &WorkloadSpec) -> f64 {
    let lanes_per_sec = spec.ops_per_sec / f64::from(spec.ops_per_lane.max(1));
    if lanes_per_sec <= 0.0 { f64::INFINITY } else { rng.exponential(1.0 / lanes_per_sec) }
}

/// The share of `lanes_per_sec` a node really writes. With exponential gaps
/// of mean 1/λ each stretched to at least d = [`MIN_SLEEP`], the mean gap is
/// d + e^(-λd)/λ, so the share is 1 / (λd + e^(-λd)): 99.5% at 100 lanes/s,
/// 93% at 300, 73% at 1,000.
pub fn written_share(lanes_per_sec: f64) -> f64 {
    let x = lanes_per_sec * MIN_SLEEP.as_secs_f64();
    if x <= 0.0 { 1.0 } else { 1.0 / (x + libm::exp(-x)) }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lanes a node writes in `seconds` at `ops_per_sec` (lanes of one op),
    /// waking as the node's loop does: after `max(gap, MIN_SLEEP)`.
    fn simulated_lanes(ops_per_sec: f64, seconds: f64) -> f64 {
        let spec = WorkloadSpec { ops_per_sec, ops_per_lane: 1, keys: 100, conflict_ratio: 0.3 };
        let mut rng = SimRng::new(7, "workload-test", 0);
        let (mut now, mut lanes) = (0.0, 0.0);
        loop {
            now += next_delay_secs(&mut rng, &spec).max(MIN_SLEEP.as_secs_f64());
            if now >= seconds {
                return lanes;
            }
            lanes += 1.0;
        }
    }

    #[test]
    fn the_written_share_matches_a_node_waking_at_most_once_a_millisecond() {
        for lanes_per_sec in [10.0, 100.0, 300.0, 1_000.0, 3_000.0] {
            let seconds = 200_000.0 / lanes_per_sec;
            let share = simulated_lanes(lanes_per_sec, seconds) / (lanes_per_sec * seconds);
            let expected = written_share(lanes_per_sec);
            assert!((share - expected).abs() < 0.01, "{lanes_per_sec} lanes/s: wrote {share}, expected {expected}");
        }
        assert!(written_share(100.0) > 0.995);
        assert!(written_share(1_000.0) < 0.75, "the old silent cap: about 730 of 1,000 lanes/s");
    }
}
