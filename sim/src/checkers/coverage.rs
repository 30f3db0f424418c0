//! Sometimes: proof that the faults bit. A run counts what its faults did
//! (datagrams dropped by partitions, unsynced bytes lost to crashes, torn
//! tails recovered, snapshots committed and installed, corrupt inputs
//! refused...); each scenario expects some of these effects (declared in
//! `[coverage]`, or following from its faults), and a campaign in which an
//! expected effect never happened in any seed did not test what it claims,
//! so it fails.

use scx_reports::model::Metrics as RunMetrics;
use std::collections::BTreeMap;

/// One effect a fault can have.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Effect {
    /// Its name in scenarios, records and reports.
    pub name: &'static str,
    /// What it means.
    pub what: &'static str,
}

/// Every effect the harness counts, by name.
pub const EFFECTS: &[Effect] = &[
    Effect { name: "messages-dropped", what: "datagrams the network lost, for any reason" },
    Effect { name: "partition-drops", what: "datagrams a partition dropped" },
    Effect { name: "sessions-abandoned", what: "sync sessions that timed out" },
    Effect { name: "crashes", what: "nodes that crashed" },
    Effect { name: "crashes-mid-operation", what: "crashes that landed inside a write or an fsync" },
    Effect { name: "unsynced-bytes-lost", what: "bytes written but not synced when a node crashed" },
    Effect { name: "torn-tails-recovered", what: "recoveries that truncated a torn record" },
    Effect { name: "rot-detected", what: "recoveries that found a rotten record (a flipped bit) and rejoined" },
    Effect { name: "rollbacks", what: "late lanes that forced a rollback and replay" },
    Effect { name: "conflicts", what: "concurrent writes the law resolved" },
    Effect { name: "snapshots-committed", what: "stable snapshots committed" },
    Effect { name: "lanes-pruned", what: "lanes pruned below a stable snapshot" },
    Effect { name: "snapshots-installed", what: "snapshots installed from a peer (catch-up behind the prune point)" },
    Effect { name: "corrupt-inputs-rejected", what: "datagrams, bundles or snapshots refused as corrupt" },
    Effect { name: "reads", what: "reads checked against the model" },
    Effect { name: "compact-summaries", what: "compact summaries (heads + Bloom filter) used by sessions" },
    Effect { name: "bloom-supplies", what: "need/supply steps fetching lanes a Bloom false positive hid" },
    Effect { name: "pending-lanes-released", what: "lanes that waited for their ancestry and were released" },
    Effect { name: "rejoins", what: "replaced nodes (empty disks) that rejoined and wrote again" },
    Effect { name: "hostile-inputs-rejected", what: "bad inputs from a hostile node that honest nodes refused" },
    Effect { name: "forks-surfaced", what: "lanes refused as a fork (a second lane at one seq of an author's chain)" },
    Effect {
        name: "pruning-stalled",
        what: "a member stayed down and the live nodes held lanes they could not prune (stability waits for it)",
    },
];

/// The effects a run reached, with their counts.
pub fn reached(metrics: &RunMetrics) -> BTreeMap<&'static str, u64> {
    BTreeMap::from([
        ("messages-dropped", metrics.messages_dropped),
        ("partition-drops", metrics.partition_drops),
        ("sessions-abandoned", metrics.sessions_abandoned),
        ("crashes", metrics.crashes),
        ("crashes-mid-operation", metrics.crashes_mid_operation),
        ("unsynced-bytes-lost", metrics.unsynced_bytes_lost),
        ("torn-tails-recovered", metrics.torn_tails_recovered),
        ("rot-detected", metrics.rot_detected),
        ("rollbacks", metrics.rollbacks),
        ("conflicts", metrics.conflicts),
        ("snapshots-committed", metrics.snapshots),
        ("lanes-pruned", metrics.lanes_pruned),
        ("snapshots-installed", metrics.snapshots_installed),
        ("corrupt-inputs-rejected", metrics.corrupt_inputs_rejected),
        ("reads", metrics.reads),
        ("compact-summaries", metrics.compact_summaries),
        ("bloom-supplies", metrics.bloom_supplies),
        ("pending-lanes-released", metrics.lanes_released),
        ("rejoins", metrics.rejoins),
        ("pruning-stalled", metrics.pruning_stalled),
        ("hostile-inputs-rejected", metrics.hostile_inputs_rejected),
        ("forks-surfaced", metrics.forks),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_effect_is_counted_and_named_once() {
        let counted = reached(&RunMetrics::default());
        let named: Vec<&str> = EFFECTS.iter().map(|effect| effect.name).collect();
        assert_eq!(counted.keys().copied().collect::<Vec<_>>(), {
            let mut sorted = named.clone();
            sorted.sort_unstable();
            sorted
        });
        assert_eq!(named.len(), counted.len());
    }
}
