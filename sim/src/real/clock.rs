//! Real mode's clocks: the only place in `sim/src` outside the campaign's
//! progress bar that reads the wall clock, because real mode runs on it,
//! outside any simulation. A run has one epoch (Unix nanoseconds, chosen by
//! `scx cluster` and handed to every `scx node`), and every timestamp of a
//! real run is nanoseconds since it, so the logs of processes on one
//! machine line up.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The run's epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Epoch {
    unix_ns: u64,
}

impl Epoch {
    /// Now.
    #[allow(clippy::disallowed_methods, reason = "real mode runs on the wall clock, outside any simulation")]
    pub fn now() -> Self {
        Self { unix_ns: unix_ns(SystemTime::now()) }
    }

    /// The epoch at `unix_ns` nanoseconds after 1970.
    pub fn from_unix_ns(unix_ns: u64) -> Self {
        Self { unix_ns }
    }

    /// Nanoseconds after 1970.
    pub fn unix_ns(&self) -> u64 {
        self.unix_ns
    }

    /// Nanoseconds since the epoch (0 before it).
    #[allow(clippy::disallowed_methods, reason = "real mode runs on the wall clock, outside any simulation")]
    pub fn elapsed_ns(&self) -> u64 {
        unix_ns(SystemTime::now()).saturating_sub(self.unix_ns)
    }

    /// How long until `at_ns` after the epoch (zero if past).
    pub fn until(&self, at_ns: u64) -> Duration {
        Duration::from_nanos(at_ns.saturating_sub(self.elapsed_ns()))
    }
}

fn unix_ns(time: SystemTime) -> u64 {
    // Cannot truncate before the year 2554.
    time.duration_since(UNIX_EPOCH).map_or(0, |since| since.as_nanos() as u64)
}

/// The monotonic clock tokio's timers use.
#[allow(clippy::disallowed_methods, reason = "real mode runs on the wall clock, outside any simulation")]
pub fn monotonic_now() -> tokio::time::Instant {
    tokio::time::Instant::now()
}
