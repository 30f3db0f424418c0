//! A hostile node: its engine stays honest, but what it sends is rewritten
//! on the way out, before the network model (which never decodes). It
//! keeps its own identity: lanes are not signed, so impersonating another
//! author is out of scope; it sends invalid lanes, snapshots with wrong
//! state, lanes out of order, lying summaries, stale datagrams, garbage and
//! oversized datagrams, and it equivocates (two lanes at one seq of its own
//! chain). Honest nodes must refuse what is bad, release what is only early,
//! surface every fork they are shown, keep converging among themselves and
//! lose nothing.
//!
//! Invariant: every choice comes from the hostile node's own seeded stream;
//! nothing here touches a replica. Every forged twin it sends is remembered
//! (by the digest of the datagram that carries it) so the receiver's runtime
//! can tell the checkers a fork was put in front of an honest engine.

use crate::rng::SimRng;
use crate::spec::Hostility;
use scx_engine::protocol::{self, Expect, Message, Summary};
use scx_engine::{Dot, Lane, LaneId, NodeId, WorldOp};
use std::collections::VecDeque;

/// Datagrams remembered for replays.
const REMEMBERED: usize = 64;
/// Share of datagrams a hostile node tampers with (the rest go out honest,
/// so it stays a member the others keep syncing with).
const TAMPER_SHARE: f64 = 0.5;

/// Share of the snapshots it attaches that a node hostile to snapshots
/// tampers with.
const SNAPSHOT_TAMPER_SHARE: f64 = 0.9;

/// One hostile node's state while the fault lasts.
#[derive(Debug)]
pub struct Hostile {
    me: NodeId,
    behaviours: Vec<Hostility>,
    rng: SimRng,
    sent: VecDeque<Vec<u8>>,
    oversized_sent: bool,
    forgeries: VecDeque<Forgery>,
}

/// A forged twin a hostile node sent: the datagram carrying it, the session
/// step that datagram answers, and the fork it makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forgery {
    /// blake3 of the datagram as it left the node.
    pub digest: [u8; 32],
    /// The session it belongs to.
    pub session: u64,
    /// The step the receiver must be waiting for to apply its lanes.
    pub expect: Expect,
    /// The forked `(author, seq)`.
    pub dot: Dot,
    /// The twin's id (the honest lane travels first in the same batch).
    pub forged: LaneId,
}

/// What tampering did, for the trace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tampered {
    /// Sent as is.
    Honest,
    /// Rewritten by this behaviour.
    By(Hostility),
}

impl Hostile {
    /// A hostile node with these behaviours and its own random stream.
    pub fn new(me: NodeId, behaviours: Vec<Hostility>, rng: SimRng) -> Self {
        Self { me, behaviours, rng, sent: VecDeque::new(), oversized_sent: false, forgeries: VecDeque::new() }
    }

    /// The forged twins `datagram` carries, if this node sent it (and it
    /// arrived unchanged).
    pub fn forgeries_in(&self, datagram: &[u8]) -> Vec<Forgery> {
        if self.forgeries.is_empty() {
            return Vec::new();
        }
        let digest = *blake3::hash(datagram).as_bytes();
        self.forgeries.iter().filter(|forgery| forgery.digest == digest).copied().collect()
    }

    /// The datagram to send instead of `honest` (the node's own, encoded).
    pub fn tamper(&mut self, honest: Vec<u8>) -> (Vec<u8>, Tampered) {
        if self.sent.len() >= REMEMBERED {
            self.sent.pop_front();
        }
        self.sent.push_back(honest.clone());
        // Snapshots travel rarely (to a peer behind the prune point); a node
        // hostile to them tampers with nearly every one it attaches.
        if self.behaviours.contains(&Hostility::BadSnapshots)
            && self.rng.chance(SNAPSHOT_TAMPER_SHARE)
            && let Some(bytes) = bad_snapshot(&honest, &mut self.rng)
        {
            return (bytes, Tampered::By(Hostility::BadSnapshots));
        }
        if !self.rng.chance(TAMPER_SHARE) {
            return (honest, Tampered::Honest);
        }
        let Some(&behaviour) = self.rng.pick(&self.behaviours) else { return (honest, Tampered::Honest) };
        let tampered = match behaviour {
            Hostility::InvalidLanes => self.invalid_lanes(&honest),
            Hostility::BadSnapshots => bad_snapshot(&honest, &mut self.rng),
            Hostility::ReorderLanes => reorder_lanes(&honest),
            Hostility::LyingSummaries => lying_summary(&honest, &mut self.rng),
            Hostility::Replays => {
                let index = self.rng.below(self.sent.len() as u64) as usize;
                self.sent.get(index).cloned()
            }
            Hostility::Garbage => Some(self.garbage()),
            Hostility::Oversized if !self.oversized_sent => {
                // Once per fault: a datagram is allocated whole.
                self.oversized_sent = true;
                Some(vec![protocol::PROTOCOL_VERSION; protocol::MAX_MESSAGE_BYTES + 1])
            }
            Hostility::Oversized => None,
            Hostility::Equivocate => self.equivocate(&honest),
        };
        match tampered {
            Some(bytes) => (bytes, Tampered::By(behaviour)),
            None => (honest, Tampered::Honest),
        }
    }

    /// A batch in which one lane breaks a rule of validity.
    fn invalid_lanes(&mut self, honest: &[u8]) -> Option<Vec<u8>> {
        let choice = self.rng.below(4);
        let salt = self.rng.next_u64();
        rewrite_batch(honest, |lanes| {
            let Some(lane) = lanes.last_mut() else { return false };
            match choice {
                // A stamp its parents do not imply.
                0 => lane.lamport = lane.lamport.wrapping_add(1 + salt % 1_000),
                // A seq that does not extend the author's chain.
                1 => lane.seq = lane.seq.wrapping_add(2),
                // A parent nobody has: the lane can only wait.
                2 => {
                    let mut unknown = [0u8; 32];
                    unknown[..8].copy_from_slice(&salt.to_le_bytes());
                    lane.parents.push(LaneId(unknown));
                    lane.parents.sort_unstable();
                }
                // An author outside the membership.
                _ => lane.author = NodeId(u32::MAX - (salt % 7) as u32),
            }
            true
        })
    }

    /// The batch with a forged twin right after one of the node's own
    /// lanes: same author, seq, parents and stamp, other operations. Both
    /// are valid; together they are a fork. The honest lane travels first,
    /// so an honest receiver keeps it and must surface the twin as evidence.
    fn equivocate(&mut self, honest: &[u8]) -> Option<Vec<u8>> {
        let message = protocol::decode(honest).ok()?;
        let (session, expect) = match &message {
            Message::Delta { session, .. } => (*session, Expect::Reply),
            Message::Lanes { session, .. } => (*session, Expect::Lanes),
            Message::Supply { session, .. } => (*session, Expect::Supply),
            Message::Hello { .. } | Message::InSync { .. } => return None,
        };
        let me = self.me;
        let delta = 1 + (self.rng.next_u64() % 1_000) as i64;
        let mut twin_of = None;
        let bytes = rewrite_batch(honest, |lanes| {
            let Some(index) = lanes.iter().rposition(|lane| lane.author == me) else { return false };
            let mut twin = lanes[index].clone();
            twin.ops = vec![WorldOp::Add { key: 0, delta }];
            if twin.ops == lanes[index].ops {
                twin.ops = vec![WorldOp::Add { key: 0, delta: delta + 1 }];
            }
            twin_of = Some((twin.dot(), twin.id()));
            lanes.insert(index + 1, twin);
            true
        })?;
        let (dot, forged) = twin_of?;
        // Only a datagram the receiver will decode and apply whole counts
        // as a fork put in front of it.
        if bytes.len() > protocol::MAX_MESSAGE_BYTES || !decodes_whole(&bytes) {
            return None;
        }
        if self.forgeries.len() >= REMEMBERED {
            self.forgeries.pop_front();
        }
        let digest = *blake3::hash(&bytes).as_bytes();
        self.forgeries.push_back(Forgery { digest, session, expect, dot, forged });
        Some(bytes)
    }

    fn garbage(&mut self) -> Vec<u8> {
        let length = 1 + self.rng.below(256) as usize;
        let mut bytes: Vec<u8> = (0..length).map(|_| self.rng.next_u64() as u8).collect();
        bytes[0] = protocol::PROTOCOL_VERSION;
        if self.rng.chance(0.5) {
            // Past the checksum, so the decoder itself meets the garbage.
            protocol::reseal(&mut bytes);
        }
        bytes
    }
}

/// Decodes the lanes of a Delta, Lanes or Supply, lets `change` rewrite
/// them, and re-encodes the message; `None` when it carries no lanes.
fn rewrite_batch(honest: &[u8], change: impl FnOnce(&mut Vec<Lane<WorldOp>>) -> bool) -> Option<Vec<u8>> {
    let mut message = protocol::decode(honest).ok()?;
    let batch = match &mut message {
        Message::Delta { lanes, .. } | Message::Lanes { lanes, .. } | Message::Supply { lanes, .. } => lanes,
        Message::Hello { .. } | Message::InSync { .. } => return None,
    };
    let encoded = protocol::decode_batch::<WorldOp>(batch).ok()?;
    let mut lanes: Vec<Lane<WorldOp>> =
        encoded.iter().filter_map(|bytes| Lane::decode(bytes).ok().map(|(_, lane)| lane)).collect();
    if lanes.is_empty() || !change(&mut lanes) {
        return None;
    }
    let ids: Vec<LaneId> = lanes.iter().map(Lane::id).collect();
    let refs: Vec<(LaneId, &Lane<WorldOp>)> = ids.iter().copied().zip(lanes.iter()).collect();
    *batch = protocol::encode_batch(&refs);
    protocol::encode(&message).ok()
}

/// Whether `datagram` decodes, batch and lanes included.
fn decodes_whole(datagram: &[u8]) -> bool {
    let Ok(message) = protocol::decode(datagram) else { return false };
    match &message {
        Message::Delta { lanes, .. } | Message::Lanes { lanes, .. } | Message::Supply { lanes, .. } => {
            protocol::decode_batch::<WorldOp>(lanes).is_ok()
        }
        Message::Hello { .. } | Message::InSync { .. } => true,
    }
}

/// The batch with its lanes in reverse order: children before parents.
fn reorder_lanes(honest: &[u8]) -> Option<Vec<u8>> {
    rewrite_batch(honest, |lanes| {
        if lanes.len() < 2 {
            return false;
        }
        lanes.reverse();
        true
    })
}

/// The attached snapshot chunk (in a datagram, or in one datagram of a
/// bundle file) with one bit of its state flipped; the offer (and the
/// digest and chunk manifest in it) is left as it was, and the datagram is
/// re-sealed.
pub(crate) fn bad_snapshot(honest: &[u8], rng: &mut SimRng) -> Option<Vec<u8>> {
    let Ok(datagrams) = protocol::read_bundle(honest) else { return damage_chunk(honest, rng) };
    let mut datagrams: Vec<Vec<u8>> = datagrams.into_iter().map(<[u8]>::to_vec).collect();
    let carrying: Vec<usize> = (0..datagrams.len()).filter(|at| carried_chunk(&datagrams[*at]) > 0).collect();
    let at = match carrying.as_slice() {
        [] => return None,
        [only] => *only,
        many => many[rng.below(many.len() as u64) as usize],
    };
    datagrams[at] = damage_chunk(&datagrams[at], rng)?;
    Some(protocol::write_bundle(&datagrams))
}

/// Bytes of the snapshot chunk a datagram carries (0 for none).
fn carried_chunk(datagram: &[u8]) -> usize {
    match protocol::decode(datagram) {
        Ok(Message::Delta { snapshot: Some(part), .. } | Message::Lanes { snapshot: Some(part), .. }) => {
            part.chunk.len()
        }
        _ => 0,
    }
}

/// The datagram with one bit of its snapshot chunk flipped.
fn damage_chunk(datagram: &[u8], rng: &mut SimRng) -> Option<Vec<u8>> {
    let mut message = protocol::decode(datagram).ok()?;
    let part = match &mut message {
        Message::Delta { snapshot: Some(part), .. } | Message::Lanes { snapshot: Some(part), .. } => part,
        _ => return None,
    };
    if part.chunk.is_empty() {
        return None;
    }
    let position = rng.below(part.chunk.len() as u64) as usize;
    part.chunk[position] ^= 1 << rng.below(8);
    protocol::encode(&message).ok()
}

/// A hello whose exact summary claims one lane more of some author.
fn lying_summary(honest: &[u8], rng: &mut SimRng) -> Option<Vec<u8>> {
    let mut message = protocol::decode(honest).ok()?;
    let Message::Hello { summary: Summary::Exact(entries), .. } = &mut message else { return None };
    let count = entries.len() as u64;
    let entry = entries.get_mut(rng.below(count) as usize)?;
    entry.seq += 1;
    entry.tip = rng.next_u64() as u32;
    protocol::encode(&message).ok()
}
