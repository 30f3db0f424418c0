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
//! A driver runs one [`Node`] per SCX node: it feeds inputs
//! ([`Node::handle_datagram`], [`Node::handle_timeout`], [`Node::write`],
//! [`Node::apply_bundle`]) and after each one drains [`Node::poll`] until it
//! returns `None`:
//!
//! - [`Output::Persist`]: write it durably, then call [`Node::persisted`]. Until
//!   then `poll` yields nothing that came after it (write-ahead by
//!   construction: no lane leaves the node, and no write is acknowledged,
//!   before it is durable; the engine asserts it).
//! - [`Output::Transmit`]: send the datagram.
//! - [`Output::Event`]: report it.
//!
//! Then it waits for the next datagram, write or [`Node::poll_timeout`]. A
//! persist that fails means the node's memory is ahead of its disk: drop the
//! node and [`Node::recover`] a new one from the log. The full contract is in
//! [`node`].
//!
//! ```
//! use scx_engine::node::{Node, NodeConfig, Output, PersistOp};
//! use scx_engine::{NodeId, World, WorldOp};
//!
//! let mut node = Node::new(World, NodeConfig::new(NodeId(0), [NodeId(0), NodeId(1)]), 0);
//! let mut log = Vec::new();
//! node.write(0, vec![WorldOp::Add { key: 1, delta: 2 }]).unwrap();
//! let mut acknowledged = 0;
//! while let Some(output) = node.poll() {
//!     match output {
//!         Output::Persist(persist) => {
//!             if let PersistOp::Append { records, .. } = &persist.op {
//!                 log.extend(records.iter().cloned()); // a real driver appends and fsyncs
//!             }
//!             node.persisted(persist.token);
//!         }
//!         Output::Transmit(_) => {} // a real driver sends it
//!         Output::Event(_) => acknowledged += 1,
//!     }
//! }
//! assert_eq!((log.len(), acknowledged), (1, 1));
//! ```
//!
//! The [`Replica`] (lanes, order, replay, snapshots) and the [`protocol`]'s
//! `Syncer` are the node's parts; tests and fuzzers drive them directly.
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
//! - [`log`]: the durable log's record format and its recovery policy.
//! - [`node`]: one node: replica, sessions, log writes and timers, sans-IO.
//! - `bugs` (hidden): planted bugs for the harness, compiled out without
//!   feature `planted-bugs`.

// The planted-bug switches are the harness's, not the engine's API: every
// one is compiled to `false` without feature `planted-bugs`.
#[doc(hidden)]
pub mod bugs;
pub mod codec;
pub mod dag;
pub mod error;
pub mod hash;
pub mod lane;
pub mod law;
pub mod log;
pub mod members;
pub mod node;
pub mod protocol;
pub mod replica;
pub mod snapshot;
pub mod world;

pub use dag::{ForkProof, Inserted, LanePool};
pub use error::LaneError;
pub use hash::{ChainHash, Fingerprint, LaneId, SnapshotId, StateDigest};
pub use lane::{Dot, Lane, NodeId, Op};
pub use law::{Applied, LaneContext, Law};
pub use members::{Members, Peers};
pub use node::{Node, NodeConfig, NodeEvent, Output};
pub use replica::{Event, Replica, ReplicaConfig, ReplicaMetrics, Status};
pub use snapshot::{Snapshot, SnapshotError, SnapshotHeader, SnapshotRegistry, Tip};
pub use world::{World, WorldOp, WorldState};
