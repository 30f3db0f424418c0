//! Sync sessions and the per-node [`Syncer`] that runs them.
//!
//! Invariant: a session never changes the replica except through
//! `insert_bytes` and `install_snapshot`, which verify everything, so a
//! malicious or corrupt peer can waste bandwidth but not corrupt state.

use super::bloom::Bloom;
use super::wire::{
    self, CompactSummary, MAX_BATCH_BYTES, Message, Summary, SummaryEntry, WireError, WireSnapshot, WireStatus,
};
use crate::bugs::Bugs;
use crate::dag::Inserted;
use crate::dag::OrderKey;
use crate::error::LaneError;
use crate::hash::LaneId;
use crate::lane::NodeId;
use crate::law::Law;
use crate::replica::Replica;
use crate::snapshot::{Snapshot, SnapshotError, Tip};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Most sessions open at once per node; a Hello beyond it is refused.
pub const MAX_OPEN_SESSIONS: usize = 1024;
/// Closed sessions remembered so duplicated messages are ignored.
const RECENT_SESSIONS: usize = 256;

/// Planted bug `global_session_ids`: one session counter for every syncer
/// in the process, so ids depend on what else ran before (never read
/// without the bug).
static NEXT_SESSION_IN_PROCESS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Which side of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Role {
    /// Sent the Hello.
    Initiator,
    /// Answered it.
    Responder,
}

/// What an open session waits for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Expect {
    /// The initiator waits for `InSync` or `Delta`.
    Reply,
    /// The responder waits for `Lanes`.
    Lanes,
    /// The initiator asked for lanes a compact summary hid and waits for `Supply`.
    Supply,
}

/// Which summary a node states in handshakes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SummaryMode {
    /// Always the exact per-author summary.
    Exact,
    /// Always heads plus a Bloom filter.
    Compact,
    /// Exact up to this many members, compact above.
    Auto {
        /// Largest membership summarised exactly.
        max_exact_members: usize,
    },
}

impl Default for SummaryMode {
    fn default() -> Self {
        Self::Auto { max_exact_members: 64 }
    }
}

/// How a session ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Hashes matched at the handshake.
    InSync,
    /// Lanes were exchanged; `more` means a batch was cut at the size limit.
    Synced {
        /// Sync again to get the rest.
        more: bool,
    },
}

/// Counters of one session, from this side's point of view.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SessionMetrics {
    /// Datagram bytes sent.
    pub bytes_sent: u64,
    /// Datagram bytes received.
    pub bytes_received: u64,
    /// Lanes sent.
    pub lanes_sent: u64,
    /// Lanes received.
    pub lanes_received: u64,
    /// Received lanes this side lacked.
    pub lanes_missing: u64,
    /// Canonical bytes of the received lanes this side lacked.
    pub bytes_missing: u64,
    /// Received lanes this side already held.
    pub lanes_redundant: u64,
    /// Received lanes refused (bad lane, fork evidence).
    pub lanes_rejected: u64,
    /// Snapshots sent.
    pub snapshots_sent: u64,
    /// Snapshots installed.
    pub snapshots_installed: u64,
    /// Request/response exchanges (counted by the initiator).
    pub round_trips: u64,
    /// Compact summaries (heads + Bloom filter) received from the peer.
    pub compact_summaries: u64,
    /// Need/supply steps: lanes a Bloom false positive hid, asked for again.
    pub supplies: u64,
}

impl SessionMetrics {
    /// Adds another session's counters.
    pub fn add(&mut self, other: &Self) {
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.lanes_sent += other.lanes_sent;
        self.lanes_received += other.lanes_received;
        self.lanes_missing += other.lanes_missing;
        self.bytes_missing += other.bytes_missing;
        self.lanes_redundant += other.lanes_redundant;
        self.lanes_rejected += other.lanes_rejected;
        self.snapshots_sent += other.snapshots_sent;
        self.snapshots_installed += other.snapshots_installed;
        self.round_trips += other.round_trips;
        self.compact_summaries += other.compact_summaries;
        self.supplies += other.supplies;
    }
}

/// What the syncer tells its driver.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SyncEvent {
    /// A session finished.
    Completed {
        /// The peer.
        peer: NodeId,
        /// Session id.
        session: u64,
        /// Which side this node was.
        role: Role,
        /// How it ended.
        outcome: Outcome,
        /// Its counters.
        metrics: SessionMetrics,
    },
    /// A session ended without finishing (abandoned by the driver, or refused).
    Failed {
        /// The peer.
        peer: NodeId,
        /// Session id.
        session: u64,
        /// Why.
        reason: String,
        /// Counters so far.
        metrics: SessionMetrics,
    },
    /// A datagram could not be decoded.
    BadMessage {
        /// Sender.
        peer: NodeId,
        /// Why.
        error: WireError,
    },
    /// A peer holds a different lane at an `(author, seq)` this node holds.
    ForkSuspected {
        /// The peer.
        peer: NodeId,
        /// The author whose chain forked.
        author: NodeId,
        /// Where.
        seq: u64,
    },
    /// The peer's snapshot chain disagrees with this node's: the histories
    /// diverged (corruption or a bug). Never silently repaired.
    Diverged {
        /// The peer.
        peer: NodeId,
        /// The refused snapshot's error.
        error: SnapshotError,
    },
    /// A received lane was refused.
    LaneRejected {
        /// The peer.
        peer: NodeId,
        /// Why.
        error: LaneError,
    },
}

#[derive(Clone, Debug)]
struct Session {
    role: Role,
    expect: Expect,
    metrics: SessionMetrics,
    more: bool,
    /// The initiator's compact summary, kept by a responder to answer `need`.
    peer_summary: Option<CompactSummary>,
}

/// Runs every sync session of one node. Cloning forks it (a fuzz harness
/// feeds each input to a fresh copy of one receiver).
#[derive(Clone, Debug)]
pub struct Syncer {
    node: NodeId,
    next_session: u64,
    open: BTreeMap<(NodeId, u64), Session>,
    recent: VecDeque<(NodeId, u64)>,
    recent_set: BTreeSet<(NodeId, u64)>,
    outbox: VecDeque<(NodeId, Vec<u8>)>,
    events: VecDeque<SyncEvent>,
    bugs: Bugs,
    mode: SummaryMode,
    bloom_bits_per_lane: usize,
}

impl Syncer {
    /// A syncer for `node`.
    pub fn new(node: NodeId) -> Self {
        Self {
            node,
            next_session: 0,
            open: BTreeMap::new(),
            recent: VecDeque::new(),
            recent_set: BTreeSet::new(),
            outbox: VecDeque::new(),
            events: VecDeque::new(),
            bugs: Bugs::NONE,
            mode: SummaryMode::default(),
            bloom_bits_per_lane: super::bloom::BITS_PER_LANE,
        }
    }

    /// Which summary this node states (default: exact up to 64 members).
    pub fn set_summary_mode(&mut self, mode: SummaryMode) {
        self.mode = mode;
    }

    /// Bloom filter size of compact summaries (default 10 bits per lane,
    /// about 1% false positives). Small values make false positives common,
    /// which tests use to exercise the fallback.
    pub fn set_bloom_bits_per_lane(&mut self, bits: usize) {
        self.bloom_bits_per_lane = bits.max(1);
    }

    /// Planted bugs (effective only with the `planted-bugs` feature).
    pub fn set_bugs(&mut self, bugs: Bugs) {
        self.bugs = bugs;
    }

    /// Open sessions: peer, session id, role and what each waits for.
    pub fn open_sessions(&self) -> impl Iterator<Item = (NodeId, u64, Role, Expect)> + '_ {
        self.open.iter().map(|((peer, id), session)| (*peer, *id, session.role, session.expect))
    }

    /// Whether a session with `peer` is open.
    pub fn is_syncing_with(&self, peer: NodeId) -> bool {
        self.open.keys().any(|(open_peer, _)| *open_peer == peer)
    }

    /// The next datagram to send, as `(destination, bytes)`. Honour the
    /// write-ahead rule before sending it.
    #[must_use]
    pub fn poll_transmit(&mut self) -> Option<(NodeId, Vec<u8>)> {
        self.outbox.pop_front()
    }

    /// The next event.
    #[must_use]
    pub fn poll_event(&mut self) -> Option<SyncEvent> {
        self.events.pop_front()
    }

    /// Starts a session with `peer`; returns its id.
    pub fn initiate<L: Law>(&mut self, peer: NodeId, replica: &mut Replica<L>) -> u64 {
        let next = if self.bugs.global_session_ids() {
            NEXT_SESSION_IN_PROCESS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        } else {
            self.next_session
        };
        self.next_session += 1;
        let id = (u64::from(self.node.0) << 40) | next;
        let status = WireStatus::from(&replica.status());
        let hello = Message::Hello { session: id, status, summary: self.summary_of(replica, id) };
        let mut session = Session {
            role: Role::Initiator,
            expect: Expect::Reply,
            metrics: SessionMetrics::default(),
            more: false,
            peer_summary: None,
        };
        self.send(peer, &hello, &mut session.metrics);
        self.open.insert((peer, id), session);
        id
    }

    /// Ends an open session without finishing it (the driver's timeout).
    pub fn abandon(&mut self, peer: NodeId, session: u64, reason: &str) {
        let open = if self.bugs.abandon_keeps_session() {
            // Planted bug: the session is reported failed but left open.
            self.open.get(&(peer, session)).cloned()
        } else {
            self.open.remove(&(peer, session))
        };
        if let Some(open) = open {
            self.remember(peer, session);
            self.events.push_back(SyncEvent::Failed {
                peer,
                session,
                reason: reason.to_owned(),
                metrics: open.metrics,
            });
        }
    }

    /// Handles one datagram from `peer`.
    pub fn handle<L: Law>(&mut self, peer: NodeId, bytes: &[u8], replica: &mut Replica<L>) {
        let message = match wire::decode(bytes) {
            Ok(message) => message,
            Err(error) => {
                self.events.push_back(SyncEvent::BadMessage { peer, error });
                return;
            }
        };
        let key = (peer, message.session());
        if self.recent_set.contains(&key) {
            return;
        }
        let received = bytes.len() as u64;
        let events_before = self.events.len();
        self.dispatch(peer, message, received, replica);
        // A completed session is what ends a replaced node's rejoin.
        if self.events.iter().skip(events_before).any(|event| matches!(event, SyncEvent::Completed { .. })) {
            replica.synced_with(peer);
        }
    }

    fn dispatch<L: Law>(&mut self, peer: NodeId, message: Message, received: u64, replica: &mut Replica<L>) {
        let key = (peer, message.session());
        match message {
            Message::Hello { session, status, summary } => {
                if !self.open.contains_key(&key) {
                    self.answer_hello(peer, session, received, &status, &summary, replica);
                }
            }
            Message::InSync { session } => self.finish_in_sync(peer, session, received),
            Message::Delta { session, status: _, summary, snapshot, lanes, more } => {
                self.finish_delta(peer, session, received, &summary, snapshot, lanes, more, replica);
            }
            Message::Lanes { session, snapshot, lanes, more, need } => {
                self.finish_lanes(peer, session, received, snapshot, lanes, more, &need, replica);
            }
            Message::Supply { session, lanes } => self.finish_supply(peer, session, received, &lanes, replica),
        }
    }

    // ---- the steps -------------------------------------------------------

    fn answer_hello<L: Law>(
        &mut self,
        peer: NodeId,
        session: u64,
        received: u64,
        theirs: &WireStatus,
        their_summary: &Summary,
        replica: &mut Replica<L>,
    ) {
        let mut metrics = SessionMetrics { bytes_received: received, ..SessionMetrics::default() };
        if self.open.len() >= MAX_OPEN_SESSIONS {
            self.events.push_back(SyncEvent::Failed {
                peer,
                session,
                reason: "too many open sessions".into(),
                metrics,
            });
            return;
        }
        let ours = WireStatus::from(&replica.status());
        let in_sync = if self.bugs.in_sync_by_lane_index() {
            // Planted bug: equal lane counts are taken for equal histories,
            // without comparing the hashes.
            ours.lane_index == theirs.lane_index
        } else {
            ours.in_sync_with(theirs)
        };
        if in_sync {
            self.send(peer, &Message::InSync { session }, &mut metrics);
            self.remember(peer, session);
            let outcome = Outcome::InSync;
            self.events.push_back(SyncEvent::Completed { peer, session, role: Role::Responder, outcome, metrics });
            return;
        }
        if let Err(error) = check_snapshot_chain(replica, theirs) {
            self.events.push_back(SyncEvent::Diverged { peer, error });
        }
        let summary = self.summary_of(replica, session);
        let delta = self.delta_for(peer, replica, their_summary);
        metrics.compact_summaries += u64::from(matches!(their_summary, Summary::Compact(_)));
        metrics.lanes_sent = delta.count;
        metrics.snapshots_sent = u64::from(delta.snapshot.is_some());
        let more = delta.more;
        let message =
            Message::Delta { session, status: ours, summary, snapshot: delta.snapshot, lanes: delta.lanes, more };
        self.send(peer, &message, &mut metrics);
        let peer_summary = match their_summary {
            Summary::Compact(compact) => Some(compact.clone()),
            Summary::Exact(_) => None,
        };
        self.open.insert(
            (peer, session),
            Session { role: Role::Responder, expect: Expect::Lanes, metrics, more, peer_summary },
        );
    }

    fn finish_in_sync(&mut self, peer: NodeId, session: u64, received: u64) {
        let Some(mut open) = self.take_open(peer, session, Expect::Reply) else { return };
        open.metrics.bytes_received += received;
        open.metrics.round_trips += 1;
        let outcome = Outcome::InSync;
        self.events.push_back(SyncEvent::Completed {
            peer,
            session,
            role: Role::Initiator,
            outcome,
            metrics: open.metrics,
        });
    }

    #[allow(clippy::too_many_arguments, reason = "one argument per message field; a struct would only rename them")]
    fn finish_delta<L: Law>(
        &mut self,
        peer: NodeId,
        session: u64,
        received: u64,
        their_summary: &Summary,
        snapshot: Option<WireSnapshot>,
        lanes: Vec<u8>,
        more: bool,
        replica: &mut Replica<L>,
    ) {
        let Some(mut open) = self.take_open(peer, session, Expect::Reply) else { return };
        open.metrics.bytes_received += received;
        open.metrics.round_trips += 1;
        self.apply(peer, snapshot, &lanes, replica, &mut open.metrics);
        let delta = self.delta_for(peer, replica, their_summary);
        open.metrics.lanes_sent += delta.count;
        open.metrics.snapshots_sent += u64::from(delta.snapshot.is_some());
        let need = match their_summary {
            // Planted bug `bloom_skips_supply`: a compact summary is trusted
            // like an exact one, so lanes its Bloom filter hid are never asked for.
            Summary::Compact(compact) if !self.bugs.bloom_skips_supply() => still_missing(replica, &compact.heads),
            Summary::Compact(_) | Summary::Exact(_) => Vec::new(),
        };
        let asking = !need.is_empty();
        open.metrics.compact_summaries += u64::from(matches!(their_summary, Summary::Compact(_)));
        open.metrics.supplies += u64::from(asking);
        let reply = Message::Lanes { session, snapshot: delta.snapshot, lanes: delta.lanes, more: delta.more, need };
        self.send(peer, &reply, &mut open.metrics);
        open.more = more || delta.more;
        if asking {
            // A compact summary hid lanes: wait for them (one bounded extra step).
            open.expect = Expect::Supply;
            self.recent_set.remove(&(peer, session));
            self.open.insert((peer, session), open);
            return;
        }
        let outcome = Outcome::Synced { more: open.more };
        self.events.push_back(SyncEvent::Completed {
            peer,
            session,
            role: Role::Initiator,
            outcome,
            metrics: open.metrics,
        });
    }

    #[allow(clippy::too_many_arguments, reason = "one argument per message field; a struct would only rename them")]
    fn finish_lanes<L: Law>(
        &mut self,
        peer: NodeId,
        session: u64,
        received: u64,
        snapshot: Option<WireSnapshot>,
        lanes: Vec<u8>,
        more: bool,
        need: &[LaneId],
        replica: &mut Replica<L>,
    ) {
        let Some(mut open) = self.take_open(peer, session, Expect::Lanes) else { return };
        open.metrics.bytes_received += received;
        self.apply(peer, snapshot, &lanes, replica, &mut open.metrics);
        if !need.is_empty() {
            let (supply, count) = supply(replica, need, open.peer_summary.as_ref());
            open.metrics.lanes_sent += count;
            self.send(peer, &Message::Supply { session, lanes: supply }, &mut open.metrics);
        }
        let outcome = Outcome::Synced { more: more || open.more };
        self.events.push_back(SyncEvent::Completed {
            peer,
            session,
            role: Role::Responder,
            outcome,
            metrics: open.metrics,
        });
    }

    fn finish_supply<L: Law>(
        &mut self,
        peer: NodeId,
        session: u64,
        received: u64,
        lanes: &[u8],
        replica: &mut Replica<L>,
    ) {
        let Some(mut open) = self.take_open(peer, session, Expect::Supply) else { return };
        open.metrics.bytes_received += received;
        open.metrics.round_trips += 1;
        self.apply(peer, None, lanes, replica, &mut open.metrics);
        let outcome = Outcome::Synced { more: open.more };
        self.events.push_back(SyncEvent::Completed {
            peer,
            session,
            role: Role::Initiator,
            outcome,
            metrics: open.metrics,
        });
    }

    // ---- helpers ---------------------------------------------------------

    /// The summary this node states, per its mode.
    fn summary_of<L: Law>(&self, replica: &mut Replica<L>, session: u64) -> Summary {
        let compact = match self.mode {
            SummaryMode::Exact => false,
            SummaryMode::Compact => true,
            SummaryMode::Auto { max_exact_members } => replica.config().members.len() > max_exact_members,
        };
        if !compact {
            return Summary::Exact(summary(replica, &self.bugs));
        }
        let stable_key = replica.stable_key();
        let above: Vec<LaneId> = replica
            .canonical_lanes()
            .filter(|(id, lane)| Some((lane.lamport, lane.author, *id)) > stable_key)
            .map(|(id, _)| id)
            .collect();
        // The salt varies per session so a false positive does not repeat.
        let mut bloom =
            Bloom::with_capacity(above.len(), self.bloom_bits_per_lane, session ^ 0x5c5_b100_u64.rotate_left(17));
        for id in &above {
            bloom.insert(id);
        }
        Summary::Compact(CompactSummary { stable_key, heads: replica.heads().iter().copied().collect(), bloom })
    }

    /// The lanes a peer with `theirs` lacks, by the kind of summary it sent.
    fn delta_for<L: Law>(&mut self, peer: NodeId, replica: &mut Replica<L>, theirs: &Summary) -> Delta {
        match theirs {
            Summary::Exact(entries) => {
                let forks = self.detect_forks(peer, replica, entries);
                build_delta(replica, entries, &forks, self.bugs)
            }
            Summary::Compact(compact) => build_delta_compact(replica, compact, self.bugs),
        }
    }

    fn send(&mut self, peer: NodeId, message: &Message, metrics: &mut SessionMetrics) {
        let bytes = wire::encode(message);
        metrics.bytes_sent += bytes.len() as u64;
        self.outbox.push_back((peer, bytes));
    }

    fn take_open(&mut self, peer: NodeId, session: u64, expect: Expect) -> Option<Session> {
        let open = self.open.get(&(peer, session))?;
        if open.expect != expect {
            return None;
        }
        let open = self.open.remove(&(peer, session));
        self.remember(peer, session);
        open
    }

    fn remember(&mut self, peer: NodeId, session: u64) {
        if self.recent_set.insert((peer, session)) {
            self.recent.push_back((peer, session));
        }
        while self.recent.len() > RECENT_SESSIONS {
            if let Some(old) = self.recent.pop_front() {
                self.recent_set.remove(&old);
            }
        }
    }

    fn apply<L: Law>(
        &mut self,
        peer: NodeId,
        snapshot: Option<WireSnapshot>,
        batch: &[u8],
        replica: &mut Replica<L>,
        metrics: &mut SessionMetrics,
    ) {
        if let Some(snapshot) = snapshot {
            let boundary: Vec<Tip> = snapshot.boundary.iter().map(|tip| Tip::from(*tip)).collect();
            let installed = Snapshot::from_bytes(&snapshot.bytes).and_then(|s| replica.install_snapshot(&s, &boundary));
            match installed {
                Ok(true) => metrics.snapshots_installed += 1,
                Ok(false) => {}
                Err(error) => self.events.push_back(SyncEvent::Diverged { peer, error }),
            }
        }
        let lanes = match super::batch::decode_batch_lanes::<L::Op>(batch, &self.bugs) {
            Ok(lanes) => lanes,
            Err(error) => {
                let error = WireError::Malformed { reason: format!("lane batch: {error}") };
                self.events.push_back(SyncEvent::BadMessage { peer, error });
                return;
            }
        };
        for (id, lane, canonical_len) in lanes {
            metrics.lanes_received += 1;
            match replica.insert_with_known_id(id, lane) {
                Ok(Inserted::Admitted(_) | Inserted::Pending) => {
                    metrics.lanes_missing += 1;
                    metrics.bytes_missing += canonical_len as u64;
                }
                Ok(Inserted::Duplicate) => {
                    // Planted bug `panic_on_redundant_lane`: an assertion that a
                    // peer only sends lanes this node lacks, which concurrent
                    // sessions and retries after a lost reply make false.
                    assert!(!self.bugs.panic_on_redundant_lane(), "a delta repeated lane {id}, which this node holds");
                    metrics.lanes_redundant += 1;
                }
                Err(error) => {
                    metrics.lanes_rejected += 1;
                    self.events.push_back(SyncEvent::LaneRejected { peer, error });
                }
            }
        }
    }

    /// Compares the peer's summary with what this node holds at the same
    /// seqs; a different tip prefix is a fork. Returns the dots to send as
    /// evidence.
    fn detect_forks<L: Law>(
        &mut self,
        peer: NodeId,
        replica: &Replica<L>,
        theirs: &[SummaryEntry],
    ) -> Vec<(NodeId, u64)> {
        let mut forks = Vec::new();
        for entry in theirs {
            if entry.seq == 0 {
                continue;
            }
            let Some(ours) = replica.lane_at(entry.author, entry.seq) else { continue };
            if ours.prefix_u64() != entry.tip {
                self.events.push_back(SyncEvent::ForkSuspected { peer, author: entry.author, seq: entry.seq });
                forks.push((entry.author, entry.seq));
            }
        }
        forks
    }
}

/// This replica's exact summary.
fn summary<L: Law>(replica: &Replica<L>, bugs: &Bugs) -> Vec<SummaryEntry> {
    let me = replica.node();
    replica
        .author_tips()
        .into_iter()
        .map(|(author, (seq, id))| {
            // Planted bug `summary_claims_extra_lane`: this node's own entry
            // states the seq it will author next, one above what it holds.
            let seq = seq + u64::from(author == me && bugs.summary_claims_extra_lane());
            SummaryEntry { author, seq, tip: id.prefix_u64() }
        })
        .collect()
}

/// The handshake's divergence check: where both nodes passed the same
/// snapshot point, the ids must be equal.
fn check_snapshot_chain<L: Law>(replica: &Replica<L>, theirs: &WireStatus) -> Result<(), SnapshotError> {
    match replica.snapshots().id_at(theirs.snapshot_index) {
        Some(ours) if ours != theirs.snapshot_id => {
            Err(SnapshotError::Diverged { lane_index: theirs.snapshot_index, ours, theirs: theirs.snapshot_id })
        }
        _ => Ok(()),
    }
}

/// Lanes a compact summary may hide: above the peer's stable point, not
/// ancestors of its heads, and not (it seems) in its Bloom filter; plus every
/// candidate ancestor of a lane sent, so a Bloom false positive never leaves
/// a sent lane without its parent. In canonical order, cut at the batch limit.
fn build_delta_compact<L: Law>(replica: &mut Replica<L>, theirs: &CompactSummary, bugs: Bugs) -> Delta {
    let floor = theirs.stable_key;
    let candidates: Vec<(OrderKey, LaneId, Vec<LaneId>)> = replica
        .canonical_lanes()
        .filter(|(id, lane)| Some((lane.lamport, lane.author, *id)) > floor)
        .map(|(id, lane)| ((lane.lamport, lane.author, id), id, lane.parents.clone()))
        .collect();
    let parents: BTreeMap<LaneId, &Vec<LaneId>> = candidates.iter().map(|(_, id, parents)| (*id, parents)).collect();
    // Ancestors of the peer's heads that this node holds: the peer holds them.
    let mut known: BTreeSet<LaneId> = BTreeSet::new();
    let mut stack: Vec<LaneId> = theirs.heads.iter().copied().filter(|id| parents.contains_key(id)).collect();
    while let Some(id) = stack.pop() {
        if known.insert(id) {
            stack.extend(parents.get(&id).into_iter().flat_map(|ps| ps.iter()).filter(|p| parents.contains_key(p)));
        }
    }
    let mut send: BTreeSet<LaneId> = candidates
        .iter()
        .map(|(_, id, _)| *id)
        .filter(|id| !known.contains(id) && !theirs.bloom.may_contain(id))
        .collect();
    let mut stack: Vec<LaneId> = send.iter().copied().collect();
    while let Some(id) = stack.pop() {
        for parent in parents.get(&id).into_iter().flat_map(|ps| ps.iter()) {
            if parents.contains_key(parent) && !known.contains(parent) && send.insert(*parent) {
                stack.push(*parent);
            }
        }
    }
    let replica = &*replica;
    let lanes: Vec<(OrderKey, LaneId, &crate::Lane<L::Op>)> = candidates
        .iter()
        .filter(|(_, id, _)| send.contains(id))
        .filter_map(|(key, id, _)| replica.lane(id).map(|lane| (*key, *id, lane)))
        .collect();
    let (lanes, count, more) = write_batch(&lanes, bugs);
    Delta { snapshot: None, lanes, count, more }
}

/// Ids a peer's heads name that this node still lacks, plus parents its
/// pending lanes wait for: what to ask a compact-summary peer for.
fn still_missing<L: Law>(replica: &Replica<L>, their_heads: &[LaneId]) -> Vec<LaneId> {
    let mut need: BTreeSet<LaneId> = their_heads.iter().copied().filter(|id| !replica.holds(id)).collect();
    need.extend(replica.missing_parents());
    need.into_iter().take(MAX_NEED).collect()
}

/// Most lane ids one `need` may name.
const MAX_NEED: usize = 4096;

/// The needed lanes and their ancestors above the peer's stable point.
fn supply<L: Law>(replica: &mut Replica<L>, need: &[LaneId], theirs: Option<&CompactSummary>) -> (Vec<u8>, u64) {
    let floor = theirs.and_then(|summary| summary.stable_key);
    let mut chosen: BTreeSet<LaneId> = BTreeSet::new();
    let mut stack: Vec<LaneId> = need.iter().copied().take(MAX_NEED).collect();
    while let Some(id) = stack.pop() {
        let Some(lane) = replica.lane(&id) else { continue };
        if Some((lane.lamport, lane.author, id)) <= floor || !chosen.insert(id) {
            continue;
        }
        stack.extend(lane.parents.iter().copied());
    }
    let replica = &*replica;
    let mut lanes: Vec<(OrderKey, LaneId, &crate::Lane<L::Op>)> = chosen
        .iter()
        .filter_map(|id| replica.lane(id).map(|lane| ((lane.lamport, lane.author, *id), *id, lane)))
        .collect();
    lanes.sort_unstable_by_key(|entry| entry.0);
    let (batch, count, _) = write_batch(&lanes, Bugs::NONE);
    (batch, count)
}

struct Delta {
    snapshot: Option<WireSnapshot>,
    /// The lanes as one wire batch.
    lanes: Vec<u8>,
    /// How many lanes the batch holds.
    count: u64,
    more: bool,
}

/// The lanes a peer with summary `theirs` lacks, in canonical order, cut at
/// [`MAX_BATCH_BYTES`]; with the snapshot first when some of them were
/// pruned here. `forks` adds this node's lane at each forked dot as evidence.
fn build_delta<L: Law>(
    replica: &mut Replica<L>,
    theirs: &[SummaryEntry],
    forks: &[(NodeId, u64)],
    bugs: Bugs,
) -> Delta {
    let their_seq: BTreeMap<NodeId, u64> = theirs.iter().map(|entry| (entry.author, entry.seq)).collect();
    let held = replica.version_vector();
    let behind_prune = held.iter().any(|(author, seq)| {
        let after = their_seq.get(author).copied().unwrap_or(0);
        after < *seq && replica.lanes_after(*author, after).is_none()
    });
    let mut floor = their_seq.clone();
    let snapshot = behind_prune.then(|| {
        let (snapshot, boundary) = replica.snapshot_transfer();
        for tip in &snapshot.header.tips {
            let entry = floor.entry(tip.author).or_insert(0);
            *entry = (*entry).max(tip.seq);
        }
        WireSnapshot { bytes: snapshot.to_bytes(), boundary: boundary.into_iter().map(Into::into).collect() }
    });
    let replica = &*replica;
    let mut keyed: Vec<(OrderKey, LaneId, &crate::Lane<L::Op>)> = Vec::new();
    for (author, seq) in &held {
        let after = floor.get(author).copied().unwrap_or(0);
        if after >= *seq {
            continue;
        }
        for (id, lane) in replica.lanes_after(*author, after).unwrap_or_default() {
            keyed.push(((lane.lamport, lane.author, id), id, lane));
        }
    }
    for (author, seq) in forks {
        if let Some(lane) = replica.lane_at(*author, *seq).and_then(|id| replica.lane(&id).map(|lane| (id, lane))) {
            keyed.push(((0, *author, LaneId::ZERO), lane.0, lane.1));
        }
    }
    keyed.sort_unstable_by_key(|entry| entry.0);
    let (lanes, count, more) = write_batch(&keyed, bugs);
    Delta { snapshot, lanes, count, more }
}

/// Writes canonical-order lanes into one batch, cut at [`MAX_BATCH_BYTES`];
/// returns the batch, how many lanes it holds, and whether some did not fit.
fn write_batch<O: crate::Op>(lanes: &[(OrderKey, LaneId, &crate::Lane<O>)], bugs: Bugs) -> (Vec<u8>, u64, bool) {
    let mut writer = super::batch::BatchWriter::new();
    let mut take = lanes.len();
    for (index, (_, id, lane)) in lanes.iter().enumerate() {
        if writer.len() > MAX_BATCH_BYTES && writer.count() > 0 {
            take = index;
            break;
        }
        writer.push(*id, lane);
    }
    let more = take < lanes.len();
    if bugs.delta_skips_last() && !more && take > 0 {
        let mut writer = super::batch::BatchWriter::new();
        for (_, id, lane) in &lanes[..take - 1] {
            writer.push(*id, lane);
        }
        return (writer.finish(), (take - 1) as u64, false);
    }
    let count = writer.count();
    (writer.finish(), count, more)
}

/// A bundle file: everything `replica` holds (and its snapshot, if it
/// pruned), for carrying to an air-gapped peer whose state is unknown.
pub fn bundle<L: Law>(replica: &mut Replica<L>) -> Vec<u8> {
    let snapshot = (replica.prune_index() > 0).then(|| {
        let (snapshot, boundary) = replica.snapshot_transfer();
        WireSnapshot { bytes: snapshot.to_bytes(), boundary: boundary.into_iter().map(Into::into).collect() }
    });
    let lanes: Vec<(LaneId, &crate::Lane<L::Op>)> = replica.canonical_lanes().collect();
    let lanes = super::batch::encode_batch(&lanes);
    wire::encode(&Message::Lanes { session: 0, snapshot, lanes, more: false, need: Vec::new() })
}

/// Applies a bundle file: verifies and installs its snapshot, then inserts
/// its lanes; returns what it brought, and what went wrong on the way
/// (a refused snapshot, refused lanes) as the events a session would raise,
/// for the driver to report like any other (they name `from`, the node the
/// bundle came from).
pub fn apply_bundle<L: Law>(
    bytes: &[u8],
    from: NodeId,
    replica: &mut Replica<L>,
) -> Result<(SessionMetrics, Vec<SyncEvent>), WireError> {
    let Message::Lanes { snapshot, lanes, .. } = wire::decode(bytes)? else {
        return Err(WireError::Malformed { reason: "a bundle holds one Lanes message".into() });
    };
    let mut metrics = SessionMetrics { bytes_received: bytes.len() as u64, ..SessionMetrics::default() };
    let mut syncer = Syncer::new(replica.node());
    syncer.apply(from, snapshot, &lanes, replica, &mut metrics);
    Ok((metrics, syncer.events.into_iter().collect()))
}
