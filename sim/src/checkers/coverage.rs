//! Sometimes: proof that the faults bit. A run counts what its faults did
//! (datagrams dropped by partitions, writes lost to crashes, rollbacks,
//! snapshots installed from peers); a campaign that never reaches one of
//! them did not test what it claims to.

use scx_reports::model::Metrics as RunMetrics;
use std::collections::BTreeMap;

/// The "sometimes" properties a run reached, by name.
pub fn reached(metrics: &RunMetrics) -> BTreeMap<&'static str, u64> {
    BTreeMap::from([
        ("messages-dropped", metrics.messages_dropped),
        ("sessions-abandoned", metrics.sessions_abandoned),
        ("crashes", metrics.crashes),
        ("unsynced-bytes-lost", metrics.unsynced_bytes_lost),
        ("rollbacks", metrics.rollbacks),
        ("snapshots-committed", metrics.snapshots),
        ("snapshots-installed", metrics.snapshots_installed),
        ("snapshots-rejected", metrics.snapshots_rejected),
        ("conflicts", metrics.conflicts),
    ])
}
