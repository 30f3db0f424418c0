//! Sync sessions and the per-node [`Syncer`] that runs them.
//!
//! Invariant: a session never changes the replica except through
//! `insert_bytes` and `install_snapshot`, which verify everything, so a
//! malicious or corrupt peer can waste bandwidth but not corrupt state.
//! Every datagram it sends is within [`wire::MAX_MESSAGE_BYTES`].

use super::batch::BatchWriter;
use super::delta::{still_missing, supply};
use super::events::{Expect, Outcome, Role, SessionMetrics, SyncEvent};
use super::receive::Transfers;
use super::summary::{MAX_BLOOM_BITS_PER_LANE, StatedIn, SummaryMode, check_snapshot_chain, unlike, with_carried};
use super::transfer::{MAX_CHUNK_BYTES, MIN_CHUNK_BYTES, OfferCache};
use super::wire::{
    self, CompactSummary, HelloStatus, Message, SnapshotWant, Summary, SummaryEntry, WireSnapshot, WireStatus,
};
use crate::bugs::Bugs;
use crate::hash::{LaneId, SnapshotId, snapshot_tag};
use crate::lane::NodeId;
use crate::law::Law;
use crate::replica::Replica;
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
    /// The exact summary an initiator's Hello stated (empty for a compact
    /// one, and for a responder): an exact Delta summary names only the
    /// authors the responder wants, and holds at least these seqs of the rest.
    stated: Vec<SummaryEntry>,
    /// The snapshot point the Hello stated. At the initiator: its own
    /// lane index and id (the id goes in the Lanes message when the Delta
    /// asks for it). At a responder: present only when the Hello's tag
    /// differed from this node's snapshot at that lane index, which is
    /// paired with this node's id there; the initiator's id is awaited in
    /// the Lanes message and checked against the registry.
    snapshot_point: Option<(u64, SnapshotId)>,
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
    /// Snapshots being assembled from peers.
    pub(super) transfers: Transfers,
    /// This node's latest snapshot as an offer.
    pub(super) offers: OfferCache,
    /// Chunk size this node offers snapshots in.
    pub(super) chunk_bytes: u64,
    /// The writer of every lane batch this node sends, kept between
    /// batches for its buffers (empty between them).
    pub(super) batch: BatchWriter,
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
            transfers: Transfers::default(),
            offers: OfferCache::default(),
            chunk_bytes: MAX_CHUNK_BYTES,
            batch: BatchWriter::new(),
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
        self.bloom_bits_per_lane = bits.clamp(1, MAX_BLOOM_BITS_PER_LANE);
    }

    /// Chunk size this node offers its snapshots in (default and largest
    /// [`MAX_CHUNK_BYTES`], smallest [`MIN_CHUNK_BYTES`], a power of two;
    /// raised as needed so a snapshot has at most `MAX_CHUNKS` chunks).
    /// Small chunks make multi-chunk transfers of small states, which tests
    /// use.
    pub fn set_snapshot_chunk_bytes(&mut self, bytes: u64) {
        self.chunk_bytes = bytes.clamp(MIN_CHUNK_BYTES, MAX_CHUNK_BYTES).next_power_of_two();
    }

    /// Planted bugs for the harness's hunts: no effect unless the crate is
    /// built with feature `planted-bugs` (hidden from the documented API).
    #[doc(hidden)]
    pub fn set_bugs(&mut self, bugs: Bugs) {
        self.bugs = bugs;
    }

    /// Open sessions: peer, session id, role and what each waits for.
    pub fn open_sessions(&self) -> impl Iterator<Item = (NodeId, u64, Role, Expect)> + '_ {
        self.open.iter().map(|((peer, id), session)| (*peer, *id, session.role, session.expect))
    }

    /// The counters of the open sessions, added up.
    pub fn open_metrics(&self) -> SessionMetrics {
        let mut total = SessionMetrics::default();
        for session in self.open.values() {
            total.add(&session.metrics);
        }
        total
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
        // Sessions are keyed by (peer, id) on both sides, so the ids two
        // peers pick for each other only need to differ: the lower node's
        // are even, the higher's odd. A small id is a short varint, and every
        // message carries it (the node's id in the high bits made it six or
        // seven bytes).
        let id = (next << 1) | u64::from(self.node > peer);
        let full = replica.status();
        let status = HelloStatus::new(&full, id);
        let receiving = self.receiving(peer, replica);
        let summary = self.summary_of(replica, id, StatedIn::Hello);
        let stated = match &summary {
            Summary::Exact(entries) => entries.clone(),
            Summary::Compact(_) => Vec::new(),
        };
        let hello = Message::Hello { session: id, status, summary, receiving };
        let mut session = Session {
            role: Role::Initiator,
            expect: Expect::Reply,
            metrics: SessionMetrics::default(),
            more: false,
            peer_summary: None,
            stated,
            snapshot_point: Some((full.snapshot_index, full.snapshot_id)),
        };
        if self.send(peer, id, &hello, &mut session.metrics) {
            self.open.insert((peer, id), session);
        }
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
        // A session that brought everything the peer holds is what ends a
        // replaced node's rejoin: one cut at the batch limit, or with a
        // snapshot still arriving, brought only part of it.
        let whole = self.events.iter().skip(events_before).any(|event| {
            matches!(event, SyncEvent::Completed { outcome: Outcome::InSync | Outcome::Synced { more: false }, .. })
        });
        if whole && !self.transfers.in_progress(peer) {
            replica.synced_with(peer);
        }
    }

    fn dispatch<L: Law>(&mut self, peer: NodeId, message: Message, received: u64, replica: &mut Replica<L>) {
        let key = (peer, message.session());
        match message {
            Message::Hello { session, status, summary, receiving } => {
                if !self.open.contains_key(&key) {
                    self.answer_hello(peer, session, received, (&status, &summary, receiving), replica);
                }
            }
            Message::InSync { session } => self.finish_in_sync(peer, session, received),
            Message::Delta { session, status: _, summary, receiving, snapshot, lanes, more, snapshot_asked } => {
                let reply = Reply { summary, receiving, snapshot, lanes, more, snapshot_asked };
                self.finish_delta(peer, session, received, reply, replica);
            }
            Message::Lanes { session, snapshot, lanes, more, need, snapshot_id } => {
                let last = LastLanes { snapshot, lanes, more, need, snapshot_id };
                self.finish_lanes(peer, session, received, last, replica);
            }
            Message::Supply { session, lanes } => self.finish_supply(peer, session, received, &lanes, replica),
        }
    }

    // ---- the steps -------------------------------------------------------

    /// `hello` is the initiator's status, summary and stated transfer.
    fn answer_hello<L: Law>(
        &mut self,
        peer: NodeId,
        session: u64,
        received: u64,
        hello: (&HelloStatus, &Summary, Option<SnapshotWant>),
        replica: &mut Replica<L>,
    ) {
        let (theirs, their_summary, their_want) = hello;
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
        let ours = HelloStatus::new(&replica.status(), session);
        let in_sync = self.bugs.in_sync(&ours, theirs);
        if in_sync {
            self.send(peer, session, &Message::InSync { session }, &mut metrics);
            self.remember(peer, session);
            let outcome = Outcome::InSync;
            self.events.push_back(SyncEvent::Completed { peer, session, role: Role::Responder, outcome, metrics });
            return;
        }
        // The chains are checked on full ids once the Lanes message brings
        // the initiator's; a tag equal to this node's id's there says they
        // agree (salted, as summary tips are, so a collision does not last).
        let snapshot_point = match replica.snapshots().id_at(theirs.snapshot_index) {
            Some(ours) if snapshot_tag(session, &ours) != theirs.snapshot_tag => Some((theirs.snapshot_index, ours)),
            _ => None,
        };
        let snapshot_asked = snapshot_point.is_some();
        let delta = self.delta_for((peer, session), replica, (their_summary, StatedIn::Hello, &[]), their_want);
        let stated_in = StatedIn::Delta { carried: &delta.carried };
        let summary = match (self.summary_of(replica, session, stated_in), their_summary) {
            (Summary::Exact(ours), Summary::Exact(theirs)) => {
                Summary::Exact(unlike(&ours, theirs, delta.snapshot.is_none()))
            }
            (ours, _) => ours,
        };
        let receiving = self.receiving(peer, replica);
        metrics.compact_summaries += u64::from(matches!(their_summary, Summary::Compact(_)));
        metrics.lanes_sent = delta.count;
        count_part(&delta.snapshot, &mut metrics);
        let more = delta.more;
        let (snapshot, lanes) = (delta.snapshot, delta.lanes);
        let status = WireStatus::default();
        let message = Message::Delta { session, status, summary, receiving, snapshot, lanes, more, snapshot_asked };
        if !self.send(peer, session, &message, &mut metrics) {
            return;
        }
        let peer_summary = match their_summary {
            Summary::Compact(compact) => Some(compact.clone()),
            Summary::Exact(_) => None,
        };
        self.open.insert(
            (peer, session),
            Session {
                role: Role::Responder,
                expect: Expect::Lanes,
                metrics,
                more,
                peer_summary,
                stated: Vec::new(),
                snapshot_point,
            },
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

    fn finish_delta<L: Law>(
        &mut self,
        peer: NodeId,
        session: u64,
        received: u64,
        reply: Reply,
        replica: &mut Replica<L>,
    ) {
        let Some(mut open) = self.take_open(peer, session, Expect::Reply) else { return };
        let Reply { summary: their_summary, receiving: their_want, snapshot, lanes, more, snapshot_asked } = reply;
        let their_summary = &their_summary;
        open.metrics.bytes_received += received;
        open.metrics.round_trips += 1;
        let mut carried = Vec::new();
        let assembling = self.apply(peer, (snapshot, &lanes), replica, &mut open.metrics, Some(&mut carried));
        let floor = match their_summary {
            Summary::Exact(_) => with_carried(&open.stated, &carried),
            Summary::Compact(_) => Vec::new(),
        };
        let carried: Vec<LaneId> = carried.into_iter().map(|(id, ..)| id).collect();
        let stated_in = StatedIn::Delta { carried: &carried };
        let delta = self.delta_for((peer, session), replica, (their_summary, stated_in, &floor), their_want);
        open.metrics.lanes_sent += delta.count;
        count_part(&delta.snapshot, &mut open.metrics);
        let need = match their_summary {
            // Planted bug `bloom_skips_supply`: a compact summary is trusted
            // like an exact one, so lanes its Bloom filter hid are never asked for.
            Summary::Compact(compact) if !self.bugs.bloom_skips_supply() => still_missing(replica, &compact.heads),
            Summary::Compact(_) | Summary::Exact(_) => Vec::new(),
        };
        let asking = !need.is_empty();
        open.metrics.compact_summaries += u64::from(matches!(their_summary, Summary::Compact(_)));
        open.metrics.supplies += u64::from(asking);
        let snapshot_id = open.snapshot_point.filter(|_| snapshot_asked).map(|(_, id)| id);
        let reply = Message::Lanes {
            session,
            snapshot: delta.snapshot,
            lanes: delta.lanes,
            more: delta.more,
            need,
            snapshot_id,
        };
        let sent = self.send(peer, session, &reply, &mut open.metrics);
        open.more = more || delta.more || assembling;
        if !sent {
            return;
        }
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

    fn finish_lanes<L: Law>(
        &mut self,
        peer: NodeId,
        session: u64,
        received: u64,
        last: LastLanes,
        replica: &mut Replica<L>,
    ) {
        let Some(mut open) = self.take_open(peer, session, Expect::Lanes) else { return };
        let LastLanes { snapshot, lanes, more, need, snapshot_id } = last;
        open.metrics.bytes_received += received;
        // Only the point this node asked about is checked: an id sent
        // unasked names no point.
        if let (Some((lane_index, _)), Some(theirs)) = (open.snapshot_point, snapshot_id)
            && let Err(error) = check_snapshot_chain(replica, lane_index, theirs)
        {
            self.events.push_back(SyncEvent::Diverged { peer, error });
        }
        let assembling = self.apply(peer, (snapshot, &lanes), replica, &mut open.metrics, None);
        if !need.is_empty() {
            let (supply, count) = supply(replica, &need, open.peer_summary.as_ref(), &mut self.batch);
            open.metrics.lanes_sent += count;
            if !self.send(peer, session, &Message::Supply { session, lanes: supply }, &mut open.metrics) {
                return;
            }
        }
        let outcome = Outcome::Synced { more: more || open.more || assembling };
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
        self.apply(peer, (None, lanes), replica, &mut open.metrics, None);
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

    /// Queues `message` for `peer`. The parts of every message the syncer
    /// builds have limits that add up to less than one datagram (asserted in
    /// `wire.rs`), so encoding cannot fail; if it did, that would be a bug:
    /// debug builds stop on it, release builds fail the session and send
    /// nothing a peer would refuse. Returns whether it was queued.
    fn send(&mut self, peer: NodeId, session: u64, message: &Message, metrics: &mut SessionMetrics) -> bool {
        match wire::encode(message) {
            Ok(bytes) => {
                let parts = wire::Parts::of(message, bytes.len());
                metrics.bytes_sent += bytes.len() as u64;
                metrics.bytes_sent_handshake += parts.handshake;
                metrics.bytes_sent_summary += parts.summary;
                metrics.bytes_sent_lanes += parts.lanes;
                metrics.bytes_sent_other += parts.other;
                self.outbox.push_back((peer, bytes));
                true
            }
            Err(error) => {
                if cfg!(debug_assertions) {
                    panic!("the syncer built a {} message over the size limit: {error}", message.kind());
                }
                self.open.remove(&(peer, session));
                self.remember(peer, session);
                let reason = format!("could not send a {} message: {error}", message.kind());
                self.events.push_back(SyncEvent::Failed { peer, session, reason, metrics: *metrics });
                false
            }
        }
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
}

/// The fields of a Delta the initiator acts on.
struct Reply {
    summary: Summary,
    receiving: Option<SnapshotWant>,
    snapshot: Option<WireSnapshot>,
    lanes: Vec<u8>,
    more: bool,
    snapshot_asked: bool,
}

/// The fields of a Lanes message the responder acts on.
struct LastLanes {
    snapshot: Option<WireSnapshot>,
    lanes: Vec<u8>,
    more: bool,
    need: Vec<LaneId>,
    snapshot_id: Option<SnapshotId>,
}

/// Counts a snapshot part sent: a transfer (re)started when it carries the
/// offer, and a chunk.
fn count_part(part: &Option<WireSnapshot>, metrics: &mut SessionMetrics) {
    if let Some(part) = part {
        metrics.snapshots_sent += u64::from(part.offer.is_some());
        metrics.snapshot_chunks_sent += 1;
    }
}
