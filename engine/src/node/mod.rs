//! One SCX node, sans-IO: the replica, its sync sessions, its durable log and
//! its timers behind one surface, in the shape of quinn-proto's `Connection`
//! and str0m's `Rtc`.
//!
//! # Run-loop contract
//!
//! The driver owns the socket, the disk and the clock. It feeds the node
//! inputs and drains its outputs:
//!
//! ```text
//! inputs                                   outputs (one queue, in order)
//!   handle_datagram(now, from, bytes)  ──▶   poll() → Persist   write it durably, then persisted(token)
//!   handle_timeout(now)                      poll() → Transmit  send it
//!   write(now, ops)                          poll() → Event     report it
//!   apply_bundle(now, from, bytes)           poll() → None      wait for the next input or
//!                                                                poll_timeout()
//! ```
//!
//! 1. After every input, call [`Node::poll`] until it returns `None`.
//! 2. A [`Persist`] must be made durable (appended and synced, or the log
//!    replaced atomically: [`PersistOp`]) before the driver calls
//!    [`Node::persisted`] with its token. Acknowledge persists in the order
//!    they were yielded.
//! 3. **Write-ahead, by construction:** while a yielded persist is not
//!    acknowledged, `poll` yields no [`Transmit`] and no [`NodeEvent`] that
//!    came after it; it returns `None` until `persisted`. So no lane leaves
//!    the node, and no write is acknowledged ([`NodeEvent::Written`]), before
//!    it is durable. The engine asserts this.
//! 4. When `poll` is drained, call [`Node::poll_timeout`] and call
//!    [`Node::handle_timeout`] once the clock reaches it (earlier is harmless).
//! 5. If a persist cannot be made durable, the node's memory is ahead of its
//!    disk: drop the node, and recover a new one from the store with
//!    [`Node::recover`]. Nothing it did after that persist left it.
//!
//! Time is a `u64` of nanoseconds on the node's own clock, from an epoch the
//! driver chooses. It may jump (a skewed clock is the driver's business): the
//! node never assumes it is monotonic, it only compares.
//!
//! The node materialises its state after every input, so events such as
//! [`crate::Event::SnapshotCommitted`] come out of the input that caused
//! them, not out of some later getter.

use crate::error::LaneError;
use crate::hash::LaneId;
use crate::lane::{Lane, NodeId};
use crate::law::Law;
use crate::log::Record;
use crate::protocol::{self, Expect, Role, SessionMetrics, SummaryMode, SyncEvent, Syncer, WireError};
use crate::replica::{Event, Replica, ReplicaConfig, Status};
use std::collections::VecDeque;

mod persist;
mod recover;
mod timers;

pub use recover::{RecoveryError, RecoveryReport};
pub use timers::{PeerPlan, SyncConfig};

/// How a node is set up.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    /// The replica: this node, the members, snapshot and checkpoint
    /// intervals, pruning, whether it rejoins.
    pub replica: ReplicaConfig,
    /// When and with whom it syncs, and when a session is abandoned.
    pub sync: SyncConfig,
    /// Which summary it states in handshakes.
    pub summary: SummaryMode,
}

impl NodeConfig {
    /// Defaults for `node` in a cluster of `members`, syncing with no one on
    /// its own (see [`SyncConfig`]).
    pub fn new(node: NodeId, members: impl IntoIterator<Item = NodeId>) -> Self {
        Self {
            replica: ReplicaConfig::new(node, members),
            sync: SyncConfig::default(),
            summary: SummaryMode::default(),
        }
    }
}

/// Identifies one [`Persist`], for [`Node::persisted`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PersistToken(u64);

/// Something the driver must make durable before it acknowledges it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use = "a persist must be written and acknowledged, or nothing after it is released"]
pub struct Persist {
    /// Pass it to [`Node::persisted`] once the write is durable.
    pub token: PersistToken,
    /// What to write.
    pub op: PersistOp,
}

/// A write to the node's log, in the format of [`crate::log`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PersistOp {
    /// Append these records, then (when `sync`) make the log durable.
    Append {
        /// The records, in order.
        records: Vec<Record>,
        /// Sync after appending. Always true, except under the planted bug
        /// `lazy_sync` (built only with feature `planted-bugs`).
        sync: bool,
    },
    /// Replace the whole log with these records, atomically and durably
    /// (compaction after pruning or a snapshot install).
    Replace {
        /// The new log's records, in order.
        records: Vec<Record>,
    },
}

/// A datagram to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The peer.
    pub to: NodeId,
    /// The datagram (see [`crate::protocol::encode`]).
    pub bytes: Vec<u8>,
}

/// What a node tells its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeEvent<O> {
    /// An own write is durable: acknowledged, it survives any crash.
    Written {
        /// The lane's id.
        id: LaneId,
        /// The lane.
        lane: Lane<O>,
    },
    /// The replica's news: a snapshot committed or installed, a prune, fork
    /// evidence, a released lane refused.
    Replica(Event),
    /// A sync session's news: completed, failed, refused input, forks.
    Sync(SyncEvent),
    /// This node started a sync session (its timer chose the peer).
    SessionStarted {
        /// The peer.
        peer: NodeId,
        /// The session's id.
        session: u64,
    },
    /// The node finished rejoining (it may author again).
    Rejoined,
}

/// One output of [`Node::poll`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[must_use]
pub enum Output<O> {
    /// Write this durably, then [`Node::persisted`].
    Persist(Persist),
    /// Send this.
    Transmit(Transmit),
    /// Report this.
    Event(NodeEvent<O>),
}

/// One SCX node: replica, sync sessions, durable log and timers (see the
/// module's run-loop contract).
#[derive(Clone, Debug)]
pub struct Node<L: Law> {
    replica: Replica<L>,
    syncer: Syncer,
    sync: SyncConfig,
    outputs: VecDeque<Output<L::Op>>,
    next_token: u64,
    /// Persists yielded and not yet acknowledged, oldest first.
    unacked: VecDeque<PersistToken>,
    /// The log's last rejoin record says the node is rejoining.
    rejoin_recorded: bool,
    timers: timers::Timers,
}

impl<L: Law> Node<L> {
    /// A node with an empty log (a fresh member, or a replacement when
    /// `config.replica.rejoining`), at `now_ns` on its clock.
    pub fn new(law: L, config: NodeConfig, now_ns: u64) -> Self {
        let empty = crate::log::Recovered::default();
        // An empty log has nothing to verify or refuse.
        let (node, _) = Self::recover(law, config, &empty, now_ns).expect("an empty log always recovers");
        node
    }

    // ---- getters -------------------------------------------------------

    /// This node.
    pub fn id(&self) -> NodeId {
        self.replica.node()
    }

    /// The replica, for reading (lanes, frontier, snapshots, forks).
    pub fn replica(&self) -> &Replica<L> {
        &self.replica
    }

    /// Keeps this node's lanes in `pool`, shared with the other nodes of the
    /// process that were given it: a driver running many nodes in one
    /// process holds each lane once. Changes nothing the node outputs.
    pub fn share_lanes(&mut self, pool: &crate::LanePool<L::Op>) {
        self.replica.share_lanes(pool);
    }

    /// Hashes and positions at the tip.
    pub fn status(&mut self) -> Status {
        self.replica.status()
    }

    /// The state at the tip: what a read sees.
    pub fn state(&mut self) -> &L::State {
        self.replica.state()
    }

    /// Whether this node is still rejoining (it may not author yet).
    pub fn is_rejoining(&self) -> bool {
        self.replica.is_rejoining()
    }

    /// Open sessions: peer, session id, role and what each waits for.
    pub fn open_sessions(&self) -> impl Iterator<Item = (NodeId, u64, Role, Expect)> + '_ {
        self.syncer.open_sessions()
    }

    /// The counters of the sessions still open, added up: what a driver
    /// that stops counts besides the sessions that ended (a responder's
    /// Delta, say, whose Lanes never came).
    pub fn open_session_metrics(&self) -> SessionMetrics {
        self.syncer.open_metrics()
    }

    /// Persists yielded and not yet acknowledged: while there are any,
    /// [`Node::poll`] holds back transmits and events.
    pub fn persists_unacknowledged(&self) -> usize {
        self.unacked.len()
    }

    /// A bundle file of everything this node holds, for a courier to an
    /// air-gapped peer.
    pub fn bundle(&mut self) -> Vec<u8> {
        protocol::bundle(&mut self.replica)
    }

    // ---- inputs --------------------------------------------------------

    /// A datagram from `from` arrived.
    pub fn handle_datagram(&mut self, now_ns: u64, from: NodeId, bytes: &[u8]) {
        self.syncer.handle(from, bytes, &mut self.replica);
        self.timers.track_sessions(now_ns, &self.syncer);
        self.collect();
    }

    /// The clock reached (or passed) [`Node::poll_timeout`]: abandon
    /// sessions that waited too long, and start the next sync when due.
    pub fn handle_timeout(&mut self, now_ns: u64) {
        for (peer, session) in self.timers.expired(now_ns, &self.sync) {
            self.syncer.abandon(peer, session, "timeout");
        }
        let started = match self.timers.tick(now_ns, &self.sync) {
            Some(peer) if !self.syncer.is_syncing_with(peer) => {
                Some((peer, self.syncer.initiate(peer, &mut self.replica)))
            }
            _ => None,
        };
        self.timers.track_sessions(now_ns, &self.syncer);
        self.collect();
        if let Some((peer, session)) = started {
            self.outputs.push_back(Output::Event(NodeEvent::SessionStarted { peer, session }));
        }
    }

    /// Authors a lane of `ops`. It is acknowledged, durable, when
    /// [`NodeEvent::Written`] comes out of [`Node::poll`] (after its persist).
    pub fn write(&mut self, _now_ns: u64, ops: Vec<L::Op>) -> Result<LaneId, LaneError> {
        let (id, lane) = self.replica.create_lane(ops)?;
        self.collect_after(Some(NodeEvent::Written { id, lane }));
        Ok(id)
    }

    /// Applies a bundle file from `from`: verifies and installs its snapshot,
    /// inserts its lanes. What it raised (a refused snapshot, refused lanes)
    /// comes out as events.
    pub fn apply_bundle(&mut self, _now_ns: u64, from: NodeId, bytes: &[u8]) -> Result<SessionMetrics, WireError> {
        let applied = protocol::apply_bundle(bytes, from, &mut self.replica);
        let metrics = applied.map(|(metrics, events)| {
            self.outputs.extend(events.into_iter().map(|event| Output::Event(NodeEvent::Sync(event))));
            metrics
        });
        self.collect();
        metrics
    }

    /// The persist with `token` is durable.
    ///
    /// # Panics
    /// If `token` is not the oldest persist yielded and not yet acknowledged:
    /// a driver bug (persists are acknowledged in order, once).
    pub fn persisted(&mut self, token: PersistToken) {
        let oldest = self.unacked.pop_front();
        assert_eq!(oldest, Some(token), "persists are acknowledged once each, in the order they were yielded");
    }

    // ---- outputs -------------------------------------------------------

    /// The next output, or `None` when there is none, or when what comes
    /// next must wait for an unacknowledged persist (write-ahead).
    pub fn poll(&mut self) -> Option<Output<L::Op>> {
        let blocked = !self.unacked.is_empty();
        match self.outputs.front()? {
            Output::Persist(persist) => self.unacked.push_back(persist.token),
            _ if blocked => return None,
            _ => {}
        }
        let output = self.outputs.pop_front();
        if matches!(output, Some(Output::Transmit(_))) {
            assert!(self.unacked.is_empty(), "write-ahead: no transmit while a persist is unacknowledged");
        }
        output
    }

    /// When the node next needs [`Node::handle_timeout`], on its clock.
    pub fn poll_timeout(&self) -> Option<u64> {
        self.timers.next_timeout(&self.sync)
    }

    // ---- internals -----------------------------------------------------

    /// After an input: materialise, then queue what must be persisted, then
    /// the datagrams, then the events, in that order.
    fn collect(&mut self) {
        self.collect_after(None);
    }

    /// As [`Self::collect`], with `written` (an own write's acknowledgement)
    /// first among the events, so no event names the lane before it.
    fn collect_after(&mut self, written: Option<NodeEvent<L::Op>>) {
        if !self.replica.config().bugs.stale_read() {
            // Planted bug `stale_read` keeps the replica lazy, so reads are
            // served from the last replay.
            self.replica.materialize();
        }
        let (ops, events, rejoined) = self.persist_ops();
        for op in ops {
            let token = PersistToken(self.next_token);
            self.next_token += 1;
            self.outputs.push_back(Output::Persist(Persist { token, op }));
        }
        self.outputs.extend(written.map(Output::Event));
        while let Some((to, bytes)) = self.syncer.poll_transmit() {
            self.outputs.push_back(Output::Transmit(Transmit { to, bytes }));
        }
        self.outputs.extend(events.into_iter().map(Output::Event));
        while let Some(event) = self.syncer.poll_event() {
            self.outputs.push_back(Output::Event(NodeEvent::Sync(event)));
        }
        if rejoined {
            self.outputs.push_back(Output::Event(NodeEvent::Rejoined));
        }
    }

    fn new_parts(replica: Replica<L>, config: &NodeConfig, rejoin_recorded: bool, now_ns: u64) -> Self {
        let mut syncer = Syncer::new(replica.node());
        syncer.set_summary_mode(config.summary);
        syncer.set_bugs(replica.config().bugs);
        Self {
            replica,
            syncer,
            sync: config.sync.clone(),
            outputs: VecDeque::new(),
            next_token: 0,
            unacked: VecDeque::new(),
            rejoin_recorded,
            timers: timers::Timers::new(now_ns, &config.sync),
        }
    }
}
