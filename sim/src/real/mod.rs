//! Real mode: the same engine `Node`s as real processes. `scx node` runs
//! one node over framed TCP on loopback with a real file store and real
//! fsync ([`process`]); `scx cluster` starts a plan's nodes as processes
//! behind a userspace fault proxy ([`proxy`]), carries out the schedule on
//! the wall clock with SIGKILL restarts and SIGSTOP pauses ([`cluster`],
//! [`children`]), and then replays the nodes' observation logs into the
//! simulator's checkers ([`collect`]), so a real run ends in the same
//! `RunRecord` and report as a simulated one.
//!
//! A real run is not deterministic: the seed still drives the fault
//! schedule, the proxy's fate draws and every node's workload, but the
//! operating system schedules the processes. Which scenario keys real mode
//! honours is [`honoured`]'s; docs/SCENARIOS.md lists them.
//!
//! Invariant: plain tokio, tokio-util and nix are used here and nowhere
//! else in the crate, and the wall clock is read only in [`clock`]; the
//! simulator's code never reaches this module.

pub mod children;
pub mod clock;
pub mod cluster;
pub mod collect;
mod events;
pub mod honoured;
pub mod log;
pub mod process;
pub mod proxy;
pub mod timeline;
pub mod transport;

use std::path::Path;

/// What a real run can fail with, besides a verdict.
#[derive(Debug, thiserror::Error)]
pub enum RealError {
    /// An operating-system call failed.
    #[error("cannot {what} {path}: {source}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// On which file, directory or address.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// A node's store refused a persist (its memory is ahead of its disk).
    #[error(transparent)]
    Store(#[from] scx_store::StoreError),
}

/// A mapper from an IO error to [`RealError::Io`] on `path`.
pub(crate) fn io_error<'a>(what: &'static str, path: &'a Path) -> impl FnOnce(std::io::Error) -> RealError + 'a {
    move |source| RealError::Io { what, path: path.display().to_string(), source }
}

/// The note every real run's record carries.
pub const REAL_NOTE: &str = "real mode: processes over TCP on 127.0.0.1 with real fsync; not deterministic \
(the seed drives the fault schedule and the workload, the OS the rest), so there is no trace hash";
