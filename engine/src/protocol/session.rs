//! Sync sessions and the per-node [`Syncer`] that runs them.
//!
//! Invariant: a session never changes the replica except through
//! `insert_bytes` and `install_snapshot`, which verify everything, so a
//! malicious or corrupt peer can waste bandwidth but not corrupt state.

use super::delta::{still_missing, supply};
use super::events::{Expect, Outcome, Role, SessionMetrics, SyncEvent};
use super::summary::{SummaryMode, check_snapshot_chain};
use super::wire::{self, CompactSummary, Message, Summary, WireError, WireSnapshot, WireStatus};
use crate::bugs::Bugs;
use crate::dag::Inserted;
use crate::hash::LaneId;
use crate::lane::NodeId;
use crate::law::Law;
use crate::replica::Replica;
use crate::snapshot::Snapshot;
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Most sessions open at once per node; a Hello beyond it is refused.
pub const MAX_OPEN_SESSIONS: usize = 1024;
/// Closed sessions remembered so duplicated messages are ignored.
const RECENT_SESSIONS: usize = 256;

/// Planted bug `global_session_ids`: one session counter for every syncer
/// in the process, so ids depend on what else ran before (never read
/// without the bug).
static NEXT_SESSION_IN_PROCESS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

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
    pub(super) events: VecDeque<SyncEvent>,
    pub(super) bugs: Bugs,
    pub(super) mode: SummaryMode,
    pub(super) bloom_bits_per_lane: usize,
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

    pub(super) fn apply<L: Law>(
        &mut self,
        peer: NodeId,
        snapshot: Option<WireSnapshot>,
        batch: &[u8],
        replica: &mut Replica<L>,
        metrics: &mut SessionMetrics,
    ) {
        if let Some(snapshot) = snapshot {
            let installed = Snapshot::from_bytes(&snapshot.bytes).and_then(|s| replica.install_snapshot(&s));
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
}
