//! # The SCX sync engine
//!
//! Nodes share no state; they share causality. Each node holds a DAG of
//! hash-identified *lanes* (units of change), replays them in one canonical
//! order through a *law* (the replicated state machine), and so reaches the
//! same state and the same hashes as every node holding the same lanes.
//!
//! The engine is sans-IO: pure, deterministic state machines with no async,
//! no clock, no threads and no randomness of its own. The driver (the
//! simulator, or a real transport) owns IO and time.
//!
//! ## Run-loop contract
//!
//! After every input (`insert`, `create_lane`, `install_snapshot`), the
//! driver drains [`Replica::poll_event`] until it returns `None`. State and
//! hashes are materialised lazily: any getter that needs them
//! ([`Replica::status`], [`Replica::state`]) orders and replays first, so
//! inserting a burst of lanes and then asking once costs one replay.
//!
//! ## Map
//! - [`lane`]: lanes, ids and the canonical lane encoding.
//! - [`codec`]: canonical varint encoding and the located decode error.
//! - [`hash`]: lane ids, chain hashes, state digests, snapshot ids.
//! - [`law`], [`world`]: the law trait and the built-in world law.
//! - [`dag`]: lane history, pending set, author chains, fork evidence.
//! - [`replica`]: canonical order, replay, snapshots, stability, pruning.
//! - [`snapshot`]: snapshot format, verification and the registry.
//! - [`protocol`]: the sync protocol: sessions, the syncer, the wire codec.
//! - [`store`]: the durable record log (memory and file).
//! - [`durable`]: a replica bound to a store: write-ahead and recovery.
//! - [`bugs`]: planted bugs for the harness (feature `planted-bugs`).

pub mod bugs;
pub mod codec;
pub mod dag;
pub mod durable;
pub mod error;
pub mod hash;
pub mod lane;
pub mod law;
pub mod protocol;
pub mod replica;
pub mod snapshot;
pub mod store;
pub mod world;

pub use dag::{ForkProof, Inserted};
pub use error::LaneError;
pub use hash::{ChainHash, LaneId, SnapshotId, StateDigest};
pub use lane::{Dot, Lane, NodeId, Op};
pub use law::{Applied, LaneContext, Law};
pub use replica::{Event, Replica, ReplicaConfig, ReplicaMetrics, Status};
pub use snapshot::{Snapshot, SnapshotError, SnapshotHeader, SnapshotRegistry, Tip};
pub use world::{World, WorldOp, WorldState};
