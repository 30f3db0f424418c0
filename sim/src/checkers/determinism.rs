//! Always: a seed determines its run. The same seed run twice gives the
//! same trace hash, which covers every event and every node's hashes at
//! every sample.

use crate::record::ViolationRecord;
use crate::runner::RunOutcome;

/// Compares two runs of one seed; a violation when their traces differ.
pub fn check(first: &RunOutcome, second: &RunOutcome) -> Option<ViolationRecord> {
    (first.trace_hash != second.trace_hash).then(|| ViolationRecord {
        checker: "determinism".into(),
        kind: "always".into(),
        message: format!(
            "the same seed gave trace hashes {} and {} ({} and {} events)",
            first.trace_hash, second.trace_hash, first.events_total, second.events_total
        ),
        at_ms: 0,
        node: None,
    })
}
