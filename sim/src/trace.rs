//! The event trace of a run: every send, delivery, drop, fault, crash,
//! write, session and snapshot, stamped with simulated time.
//!
//! Invariant: the trace hash is a blake3 over a canonical binary encoding of
//! the events in the order they happened, so two runs of one seed agree on
//! it exactly when they did the same things at the same simulated times
//! (the determinism self-check compares it). Events are kept for printing up
//! to a cap; the hash always covers all of them.

use scx_engine::codec::put_varint;
use std::fmt;

/// Events kept in memory for `scx replay` and reports; later ones are only hashed.
pub const MAX_KEPT_EVENTS: usize = 200_000;

/// Why a message did not arrive.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// Random loss.
    Loss,
    /// A partition separated sender and receiver.
    Partition,
    /// The receiver was down when the message arrived.
    ReceiverDown,
}

/// One thing that happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// A node handed a datagram to the network.
    Send { from: u32, to: u32, bytes: u32 },
    /// The network delivered a datagram.
    Deliver { from: u32, to: u32, bytes: u32 },
    /// The network dropped a datagram.
    Drop { from: u32, to: u32, reason: DropReason },
    /// The network duplicated a datagram.
    Duplicate { from: u32, to: u32 },
    /// The network flipped a byte of a datagram.
    Corrupt { from: u32, to: u32 },
    /// A fault started or healed.
    Fault { name: &'static str, healed: bool, nodes: Vec<u32> },
    /// A node crashed, losing `unsynced_bytes` (the last write torn if `torn`).
    Crash { node: u32, unsynced_bytes: u64, torn: bool },
    /// A crashed node's disk rotted before it restarted: one bit of the
    /// durable record at `offset` flipped (the record is the `record`-th).
    Rot { node: u32, record: u64, offset: u64 },
    /// A node restarted and recovered this many lanes from its log.
    Recover { node: u32, lanes: u64, torn_tail_bytes: u64, lane_index: u64 },
    /// A node wrote and acknowledged a lane.
    Write { node: u32, seq: u64, ops: u32 },
    /// A sync session finished.
    Session { node: u32, peer: u32, initiator: bool, in_sync: bool, lanes_received: u64 },
    /// A sync session was abandoned.
    SessionTimeout { node: u32, peer: u32 },
    /// A node committed a stable snapshot.
    Snapshot { node: u32, lane_index: u64 },
    /// A bundle file was carried between air-gapped nodes.
    Bundle { from: u32, to: u32, lanes: u64 },
    /// A checker reported a violation.
    Violation { checker: &'static str, node: Option<u32> },
    /// A hostile node rewrote a datagram it sent.
    Hostile { from: u32, to: u32, behaviour: &'static str },
}

impl Event {
    fn tag(&self) -> u8 {
        match self {
            Self::Send { .. } => 1,
            Self::Deliver { .. } => 2,
            Self::Drop { .. } => 3,
            Self::Duplicate { .. } => 4,
            Self::Corrupt { .. } => 5,
            Self::Fault { .. } => 6,
            Self::Crash { .. } => 7,
            Self::Recover { .. } => 8,
            Self::Write { .. } => 9,
            Self::Session { .. } => 10,
            Self::SessionTimeout { .. } => 11,
            Self::Snapshot { .. } => 12,
            Self::Bundle { .. } => 13,
            Self::Violation { .. } => 14,
            Self::Hostile { .. } => 15,
            Self::Rot { .. } => 16,
        }
    }

    /// The node the event happened at, if one.
    pub fn node(&self) -> Option<u32> {
        match self {
            Self::Send { from, .. }
            | Self::Duplicate { from, .. }
            | Self::Corrupt { from, .. }
            | Self::Hostile { from, .. } => Some(*from),
            Self::Deliver { to, .. } | Self::Drop { to, .. } => Some(*to),
            Self::Crash { node, .. }
            | Self::Rot { node, .. }
            | Self::Recover { node, .. }
            | Self::Write { node, .. }
            | Self::Session { node, .. }
            | Self::SessionTimeout { node, .. }
            | Self::Snapshot { node, .. } => Some(*node),
            Self::Bundle { to, .. } => Some(*to),
            Self::Violation { node, .. } => *node,
            Self::Fault { .. } => None,
        }
    }

    /// A short kind name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Send { .. } => "send",
            Self::Deliver { .. } => "deliver",
            Self::Drop { .. } => "drop",
            Self::Duplicate { .. } => "duplicate",
            Self::Corrupt { .. } => "corrupt",
            Self::Fault { healed: false, .. } => "fault",
            Self::Fault { healed: true, .. } => "heal",
            Self::Crash { .. } => "crash",
            Self::Rot { .. } => "rot",
            Self::Recover { .. } => "recover",
            Self::Write { .. } => "write",
            Self::Session { .. } => "session",
            Self::SessionTimeout { .. } => "session-timeout",
            Self::Snapshot { .. } => "snapshot",
            Self::Bundle { .. } => "bundle",
            Self::Violation { .. } => "violation",
            Self::Hostile { .. } => "hostile",
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        out.push(self.tag());
        let mut put = |value: u64| put_varint(out, value);
        match self {
            Self::Send { from, to, bytes } | Self::Deliver { from, to, bytes } => {
                put(u64::from(*from));
                put(u64::from(*to));
                put(u64::from(*bytes));
            }
            Self::Drop { from, to, reason } => {
                put(u64::from(*from));
                put(u64::from(*to));
                put(*reason as u64);
            }
            Self::Duplicate { from, to } | Self::Corrupt { from, to } => {
                put(u64::from(*from));
                put(u64::from(*to));
            }
            Self::Fault { name, healed, nodes } => {
                put(name.len() as u64);
                put(u64::from(*healed));
                put(nodes.len() as u64);
                for node in nodes {
                    put(u64::from(*node));
                }
                out.extend_from_slice(name.as_bytes());
            }
            Self::Crash { node, unsynced_bytes, torn } => {
                put(u64::from(*node));
                put(*unsynced_bytes);
                put(u64::from(*torn));
            }
            Self::Rot { node, record, offset } => {
                put(u64::from(*node));
                put(*record);
                put(*offset);
            }
            Self::Recover { node, lanes, torn_tail_bytes, lane_index } => {
                put(u64::from(*node));
                put(*lanes);
                put(*torn_tail_bytes);
                put(*lane_index);
            }
            Self::Write { node, seq, ops } => {
                put(u64::from(*node));
                put(*seq);
                put(u64::from(*ops));
            }
            Self::Session { node, peer, initiator, in_sync, lanes_received } => {
                put(u64::from(*node));
                put(u64::from(*peer));
                put(u64::from(*initiator));
                put(u64::from(*in_sync));
                put(*lanes_received);
            }
            Self::SessionTimeout { node, peer } => {
                put(u64::from(*node));
                put(u64::from(*peer));
            }
            Self::Snapshot { node, lane_index } => {
                put(u64::from(*node));
                put(*lane_index);
            }
            Self::Bundle { from, to, lanes } => {
                put(u64::from(*from));
                put(u64::from(*to));
                put(*lanes);
            }
            Self::Violation { checker, node } => {
                put(node.map_or(0, |node| u64::from(node) + 1));
                out.extend_from_slice(checker.as_bytes());
            }
            Self::Hostile { from, to, behaviour } => {
                put(u64::from(*from));
                put(u64::from(*to));
                out.extend_from_slice(behaviour.as_bytes());
            }
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Send { from, to, bytes } => write!(f, "n{from} -> n{to} {bytes} B"),
            Self::Deliver { from, to, bytes } => write!(f, "n{from} -> n{to} {bytes} B delivered"),
            Self::Drop { from, to, reason } => write!(f, "n{from} -> n{to} dropped ({reason:?})"),
            Self::Duplicate { from, to } => write!(f, "n{from} -> n{to} duplicated"),
            Self::Corrupt { from, to } => write!(f, "n{from} -> n{to} corrupted"),
            Self::Fault { name, healed, nodes } => {
                write!(f, "{name} {} nodes {nodes:?}", if *healed { "healed" } else { "started" })
            }
            Self::Crash { node, unsynced_bytes, torn } => {
                write!(f, "n{node} crashed, {unsynced_bytes} unsynced bytes lost{}", if *torn { " (torn)" } else { "" })
            }
            Self::Rot { node, record, offset } => {
                write!(f, "n{node}'s disk rotted: a bit of record {record} flipped (log byte {offset})")
            }
            Self::Recover { node, lanes, torn_tail_bytes, lane_index } => write!(
                f,
                "n{node} recovered {lanes} lanes (lane index {lane_index}, {torn_tail_bytes} torn bytes truncated)"
            ),
            Self::Write { node, seq, ops } => write!(f, "n{node} wrote lane seq {seq} ({ops} ops)"),
            Self::Session { node, peer, initiator, in_sync, lanes_received } => write!(
                f,
                "n{node} {} n{peer}: {}",
                if *initiator { "synced with" } else { "answered" },
                if *in_sync { "in sync".to_owned() } else { format!("{lanes_received} lanes received") }
            ),
            Self::SessionTimeout { node, peer } => write!(f, "n{node} abandoned a session with n{peer}"),
            Self::Snapshot { node, lane_index } => write!(f, "n{node} committed snapshot at lane index {lane_index}"),
            Self::Bundle { from, to, lanes } => write!(f, "bundle of {lanes} lanes carried n{from} -> n{to}"),
            Self::Hostile { from, to, behaviour } => {
                write!(f, "n{from} -> n{to} rewritten by a hostile node ({behaviour})")
            }
            Self::Violation { checker, node } => match node {
                Some(node) => write!(f, "{checker} violated at n{node}"),
                None => write!(f, "{checker} violated"),
            },
        }
    }
}

/// An event with its simulated time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stamped {
    /// Simulated time in nanoseconds since the run started.
    pub at_ns: u64,
    /// What happened.
    pub event: Event,
}

/// Bytes of events the trace collects before it hashes them: blake3 hashes
/// a long input many chunks at a time, and the events' own few bytes each
/// cost a call of their own. The hash is of the same bytes either way.
const HASH_BATCH_BYTES: usize = 16 * 1024;

/// The trace of one run.
#[derive(Debug)]
pub struct Trace {
    hasher: blake3::Hasher,
    /// Bytes for the hasher not yet given to it, in order.
    pending: Vec<u8>,
    kept: Vec<Stamped>,
    total: u64,
    keep: bool,
}

impl Trace {
    /// An empty trace; `keep` stores events for printing (the hash is always kept).
    pub fn new(keep: bool) -> Self {
        let pending = Vec::with_capacity(HASH_BATCH_BYTES + 256);
        Self { hasher: blake3::Hasher::new(), pending, kept: Vec::new(), total: 0, keep }
    }

    /// Records `event` at `at_ns`.
    pub fn record(&mut self, at_ns: u64, event: Event) {
        put_varint(&mut self.pending, at_ns);
        event.encode(&mut self.pending);
        self.hash_pending_if_long();
        self.total += 1;
        if self.keep && self.kept.len() < MAX_KEPT_EVENTS {
            self.kept.push(Stamped { at_ns, event });
        }
    }

    /// Folds bytes that are not an event (each node's hashes at a sample)
    /// into the trace hash, so the determinism check covers node state too.
    pub fn absorb(&mut self, bytes: &[u8]) {
        put_varint(&mut self.pending, bytes.len() as u64);
        self.pending.extend_from_slice(bytes);
        self.hash_pending_if_long();
    }

    fn hash_pending_if_long(&mut self) {
        if self.pending.len() >= HASH_BATCH_BYTES {
            self.hasher.update(&self.pending);
            self.pending.clear();
        }
    }

    /// The hash of every event so far.
    pub fn hash(&self) -> String {
        let mut hasher = self.hasher.clone();
        hasher.update(&self.pending);
        hasher.finalize().to_hex().to_string()
    }

    /// Events recorded.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Kept events.
    pub fn events(&self) -> &[Stamped] {
        &self.kept
    }

    /// Takes the kept events.
    pub fn take_events(&mut self) -> Vec<Stamped> {
        std::mem::take(&mut self.kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_depends_on_time_order_and_content() {
        let hash = |events: &[(u64, Event)]| {
            let mut trace = Trace::new(false);
            for (at, event) in events {
                trace.record(*at, event.clone());
            }
            trace.hash()
        };
        let a = Event::Send { from: 0, to: 1, bytes: 10 };
        let b = Event::Write { node: 1, seq: 1, ops: 4 };
        let base = hash(&[(1, a.clone()), (2, b.clone())]);
        assert_eq!(base, hash(&[(1, a.clone()), (2, b.clone())]));
        assert_ne!(base, hash(&[(2, b.clone()), (1, a.clone())]));
        assert_ne!(base, hash(&[(1, a.clone()), (3, b.clone())]));
        assert_ne!(base, hash(&[(1, a), (2, Event::Write { node: 1, seq: 2, ops: 4 })]));
    }
}
