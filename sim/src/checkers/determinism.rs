//! Always: a seed determines its run. The same seed run twice gives the
//! same trace hash, which covers every event and every node's hashes at
//! every sample.

use super::{Kind, Violation};
use crate::runner::RunOutcome;

/// Compares two runs of one seed; a violation when their traces differ.
pub fn check(first: &RunOutcome, second: &RunOutcome) -> Option<Violation> {
    (first.trace_hash != second.trace_hash).then(|| Violation {
        checker: "determinism",
        kind: Kind::Always.name(),
        message: format!(
            "the same seed gave trace hashes {} and {} ({} and {} events)",
            first.trace_hash, second.trace_hash, first.events_total, second.events_total
        ),
        at_ns: 0,
        node: None,
    })
}
