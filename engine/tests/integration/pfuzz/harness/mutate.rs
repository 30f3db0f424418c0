//! Mutators. Most inputs are decoded, changed at the level of one field
//! (session ids, counts, seqs, Lamport stamps near `u64::MAX`, parent
//! back-references, summary entries, Bloom bits and sizes, stated snapshot
//! transfers, snapshot header fields, boundary lanes, offers and their
//! chunk manifests, chunk indexes and bytes, state bytes) and encoded
//! again, with snapshot ids and digests re-sealed so the change gets past
//! the checks that only catch accidents. Bundles are mutated one datagram
//! at a time or as a sequence (parts dropped, repeated, reordered). The
//! rest are byte flips, inserts, truncations and splices, which exercise
//! the decoders themselves.

use super::Choices;
use super::corpus::{Case, Corpus, Delivery};
use scx_engine::protocol::{
    self, BatchLane, Bloom, CompactSummary, Message, ParentRef, SnapshotOffer, SnapshotWant, Summary, SummaryEntry,
    WireSnapshot,
};
use scx_engine::{Dot, LaneId, NodeId, Snapshot, SnapshotId, Tip, WorldOp, hash};

/// Largest collection a "blow up" mutation builds (entries, tips, ids, lanes).
const MAX_BLOW_UP: u64 = 3000;

/// What a mutation did, for statistics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Strategy {
    /// The valid message, unchanged.
    Verbatim,
    /// Decoded, fields changed, encoded again.
    Structured,
    /// Bytes changed.
    Bytes,
    /// Structured, then bytes.
    Both,
}

/// Builds one input from `case`.
pub(crate) fn mutate(case: &Case, corpus: &Corpus, ch: &mut impl Choices) -> (Vec<u8>, Strategy) {
    match ch.below(16) {
        0 => (case.bytes.clone(), Strategy::Verbatim),
        1..=10 => (structured(case, corpus, ch), Strategy::Structured),
        11..=13 => (bytes(case.bytes.clone(), corpus, ch), Strategy::Bytes),
        _ => {
            let structured = structured(case, corpus, ch);
            (bytes(structured, corpus, ch), Strategy::Both)
        }
    }
}

// ---- numbers ---------------------------------------------------------------

/// A value near `current` or at an edge of the u64 range.
pub(crate) fn interesting(ch: &mut impl Choices, current: u64) -> u64 {
    match ch.below(14) {
        0 => 0,
        1 => 1,
        2 => current.wrapping_sub(1),
        3 => current.wrapping_add(1),
        4 => u64::MAX,
        5 => u64::MAX - 1,
        6 => 1 << 63,
        7 => u64::from(u32::MAX),
        8 => 1 << 32,
        9 => current.wrapping_mul(2),
        10 => current ^ (1 << ch.below(64)),
        11 => current.wrapping_add(ch.below(16)),
        12 => ch.below(64),
        _ => ch.next_u64(),
    }
}

fn interesting_u32(ch: &mut impl Choices, current: u32) -> u32 {
    match ch.below(6) {
        0 => 0,
        1 => u32::MAX,
        2 => current.wrapping_add(1),
        3 => 70 + ch.below(4) as u32,
        4 => ch.below(4) as u32,
        _ => ch.next_u64() as u32,
    }
}

fn random_id(ch: &mut impl Choices) -> [u8; 32] {
    let mut id = [0u8; 32];
    for chunk in id.chunks_mut(8) {
        chunk.copy_from_slice(&ch.next_u64().to_le_bytes());
    }
    id
}

/// A lane id: a real one (held by the receiver, or any honest one), or junk.
fn some_lane_id(case: &Case, corpus: &Corpus, ch: &mut impl Choices) -> LaneId {
    let universe = &corpus.universes[case.universe];
    match ch.below(4) {
        0 if !case.base.held.is_empty() => case.base.held[ch.index(case.base.held.len())].2,
        1 if !universe.lanes.is_empty() => {
            let skip = ch.index(universe.lanes.len());
            *universe.lanes.iter().nth(skip).expect("skip is below the length")
        }
        2 => LaneId::ZERO,
        _ => LaneId(random_id(ch)),
    }
}

fn some_author(ch: &mut impl Choices) -> NodeId {
    let near = ch.below(3) as u32;
    NodeId(interesting_u32(ch, near))
}

// ---- messages --------------------------------------------------------------

fn structured(case: &Case, corpus: &Corpus, ch: &mut impl Choices) -> Vec<u8> {
    if case.delivery == Delivery::Bundle {
        return structured_bundle(case, corpus, ch);
    }
    let Ok(mut message) = protocol::decode(&case.bytes) else { return case.bytes.clone() };
    let rounds = 1 + ch.below(3);
    for _ in 0..rounds {
        mutate_message(&mut message, case, corpus, ch);
    }
    protocol::encode(&message).unwrap_or_else(|_| case.bytes.clone())
}

/// A bundle with one datagram changed field by field, or its datagrams
/// dropped, repeated or reordered (a courier's lost or shuffled parts).
fn structured_bundle(case: &Case, corpus: &Corpus, ch: &mut impl Choices) -> Vec<u8> {
    let Ok(datagrams) = protocol::read_bundle(&case.bytes) else { return case.bytes.clone() };
    let mut datagrams: Vec<Vec<u8>> = datagrams.into_iter().map(<[u8]>::to_vec).collect();
    let pick = ch.index(datagrams.len());
    match ch.below(8) {
        0 if !datagrams.is_empty() => {
            datagrams.remove(pick);
        }
        1 if !datagrams.is_empty() => {
            let copy = datagrams[pick].clone();
            datagrams.insert(ch.index(datagrams.len() + 1), copy);
        }
        2 if datagrams.len() > 1 => {
            let other = ch.index(datagrams.len());
            datagrams.swap(pick, other);
        }
        3 => datagrams.reverse(),
        _ if !datagrams.is_empty() => {
            if let Ok(mut message) = protocol::decode(&datagrams[pick]) {
                for _ in 0..1 + ch.below(3) {
                    mutate_message(&mut message, case, corpus, ch);
                }
                if let Ok(bytes) = protocol::encode(&message) {
                    datagrams[pick] = bytes;
                }
            }
        }
        _ => {}
    }
    protocol::write_bundle(&datagrams)
}

fn mutate_message(message: &mut Message, case: &Case, corpus: &Corpus, ch: &mut impl Choices) {
    if ch.one_in(24) {
        change_kind(message, ch);
        return;
    }
    match message {
        Message::Hello { session, status, summary, receiving } => match ch.below(9) {
            0 => mutate_session(session, case, ch),
            1 | 2 => mutate_status(status, *session, case, ch),
            3 => mutate_want(receiving, corpus, ch),
            _ => mutate_summary(summary, *session, case, corpus, ch),
        },
        Message::InSync { session } => mutate_session(session, case, ch),
        Message::Delta { session, status: _, summary, receiving, snapshot, lanes, more, snapshot_asked } => {
            match ch.below(17) {
                0 => mutate_session(session, case, ch),
                1 => *snapshot_asked = !*snapshot_asked,
                2..=4 => mutate_summary(summary, *session, case, corpus, ch),
                5..=8 => mutate_snapshot(snapshot, case, corpus, ch),
                9 => *more = !*more,
                10 => mutate_want(receiving, corpus, ch),
                _ => *lanes = mutate_batch(lanes, case, corpus, ch),
            }
        }
        Message::Lanes { session, snapshot, lanes, more, need, snapshot_id } => match ch.below(17) {
            0 => mutate_session(session, case, ch),
            1..=4 => mutate_snapshot(snapshot, case, corpus, ch),
            5 => *more = !*more,
            6..=8 => mutate_ids(need, case, corpus, ch),
            9 => mutate_snapshot_id(snapshot_id, case, ch),
            _ => *lanes = mutate_batch(lanes, case, corpus, ch),
        },
        Message::Supply { session, lanes } => match ch.below(8) {
            0 => mutate_session(session, case, ch),
            _ => *lanes = mutate_batch(lanes, case, corpus, ch),
        },
    }
}

/// Turns a message into another kind, keeping what fields carry over.
fn change_kind(message: &mut Message, ch: &mut impl Choices) {
    let session = message.session();
    let (snapshot, lanes) = match message {
        Message::Delta { snapshot, lanes, .. } | Message::Lanes { snapshot, lanes, .. } => {
            (snapshot.take(), std::mem::take(lanes))
        }
        Message::Supply { lanes, .. } => (None, std::mem::take(lanes)),
        _ => (None, vec![protocol::BATCH_FORMAT_VERSION]),
    };
    *message = match ch.below(3) {
        0 => Message::InSync { session },
        1 => Message::Supply { session, lanes },
        _ => Message::Lanes { session, snapshot, lanes, more: false, need: Vec::new(), snapshot_id: None },
    };
}

fn mutate_session(session: &mut u64, case: &Case, ch: &mut impl Choices) {
    let open: Vec<u64> = case.receiver_syncer.open_sessions().map(|(_, id, _, _)| id).collect();
    *session = match ch.below(4) {
        0 if !open.is_empty() => open[ch.index(open.len())],
        1 => *session ^ (1 << 40),
        _ => interesting(ch, *session),
    };
}

fn mutate_status(status: &mut protocol::HelloStatus, session: u64, case: &Case, ch: &mut impl Choices) {
    let ours = &case.base.status;
    match ch.below(7) {
        0 => status.lane_index = interesting(ch, status.lane_index),
        1 => status.snapshot_index = interesting(ch, status.snapshot_index),
        2 => status.snapshot_tag = ch.next_u64() as u32,
        3 => {
            let bytes = random_id(ch);
            let length = status.fingerprint.0.len();
            status.fingerprint.0.copy_from_slice(&bytes[..length]);
        }
        4 => status.lane_index = ours.lane_index,
        5 => {
            // Claim the receiver's own position: a spoofed "in sync".
            *status = protocol::HelloStatus::new(ours, session);
        }
        _ => {
            // The receiver's snapshot point with another id's tag: a
            // diverged chain, whose id the Lanes message may bring.
            status.snapshot_index = ours.snapshot_index;
            status.snapshot_tag = hash::snapshot_tag(session, &SnapshotId(random_id(ch)));
        }
    }
}

fn mutate_snapshot_id(snapshot_id: &mut Option<SnapshotId>, case: &Case, ch: &mut impl Choices) {
    *snapshot_id = match ch.below(3) {
        0 => None,
        1 => Some(case.base.status.snapshot_id),
        _ => Some(SnapshotId(random_id(ch))),
    };
}

fn mutate_summary(summary: &mut Summary, session: u64, case: &Case, corpus: &Corpus, ch: &mut impl Choices) {
    if ch.one_in(16) {
        *summary = match summary {
            Summary::Exact(_) => Summary::Compact(CompactSummary {
                stable_key: None,
                heads: Vec::new(),
                bloom: Bloom { salt: ch.next_u64(), bits: vec![0xff; ch.index(64)] },
            }),
            Summary::Compact(compact) => Summary::Exact(
                compact
                    .heads
                    .iter()
                    .map(|id| SummaryEntry { author: NodeId(0), seq: 1, tip: hash::tip_tag(session, id) })
                    .collect(),
            ),
        };
        return;
    }
    match summary {
        Summary::Exact(entries) => mutate_entries(entries, session, case, ch),
        Summary::Compact(compact) => mutate_compact(compact, case, corpus, ch),
    }
}

fn mutate_entries(entries: &mut Vec<SummaryEntry>, session: u64, case: &Case, ch: &mut impl Choices) {
    let pick = ch.index(entries.len());
    match ch.below(10) {
        0 if !entries.is_empty() => {
            entries.remove(pick);
        }
        1 if !entries.is_empty() => entries.push(entries[pick]),
        2 => entries.push(SummaryEntry { author: some_author(ch), seq: interesting(ch, 1), tip: ch.next_u64() as u32 }),
        3 if !entries.is_empty() => entries[pick].seq = interesting(ch, entries[pick].seq),
        4 if !entries.is_empty() => entries[pick].tip = ch.next_u64() as u32,
        5 if !entries.is_empty() => entries[pick].author = some_author(ch),
        6 => entries.reverse(),
        7 => entries.clear(),
        8 => {
            let count = ch.below(MAX_BLOW_UP);
            for i in 0..count {
                let tip = ch.next_u64() as u32;
                entries.push(SummaryEntry { author: NodeId(i as u32), seq: interesting(ch, i), tip });
            }
        }
        _ => {
            // The receiver's own tips with one seq bumped: an exact summary
            // that claims a lane nobody holds.
            if let Some((author, seq, id)) = case.base.held.last() {
                entries.push(SummaryEntry { author: *author, seq: seq + ch.below(3), tip: hash::tip_tag(session, id) });
            }
        }
    }
}

fn mutate_compact(compact: &mut CompactSummary, case: &Case, corpus: &Corpus, ch: &mut impl Choices) {
    match ch.below(12) {
        0 => compact.stable_key = None,
        1 => {
            let lamport = interesting(ch, compact.stable_key.map_or(1, |key| key.0));
            compact.stable_key = Some((lamport, some_author(ch), some_lane_id(case, corpus, ch)));
        }
        2 if !compact.heads.is_empty() => {
            let at = ch.index(compact.heads.len());
            compact.heads.remove(at);
        }
        3 => compact.heads.push(some_lane_id(case, corpus, ch)),
        4 => {
            let count = ch.below(MAX_BLOW_UP);
            for _ in 0..count {
                compact.heads.push(some_lane_id(case, corpus, ch));
            }
        }
        5 => compact.bloom.salt = ch.next_u64(),
        6 => compact.bloom.bits.clear(),
        7 => compact.bloom.bits.iter_mut().for_each(|byte| *byte = 0xff),
        8 => compact.bloom.bits.iter_mut().for_each(|byte| *byte = 0),
        9 if !compact.bloom.bits.is_empty() => {
            let at = ch.index(compact.bloom.bits.len());
            compact.bloom.bits[at] ^= 1 << ch.below(8);
        }
        10 => {
            let len = match ch.below(4) {
                0 => 1,
                1 => 3,
                2 => compact.bloom.bits.len() / 2,
                _ => ch.below(1 << 16) as usize,
            };
            compact.bloom.bits.resize(len, 0xa5);
        }
        _ => compact.heads.clear(),
    }
}

fn mutate_ids(ids: &mut Vec<LaneId>, case: &Case, corpus: &Corpus, ch: &mut impl Choices) {
    match ch.below(5) {
        0 => ids.push(some_lane_id(case, corpus, ch)),
        1 if !ids.is_empty() => {
            ids.push(ids[0]);
        }
        2 => {
            let count = ch.below(MAX_BLOW_UP * 2);
            for _ in 0..count {
                ids.push(some_lane_id(case, corpus, ch));
            }
        }
        3 => ids.clear(),
        _ => ids.extend(case.base.held.iter().map(|(_, _, id)| *id)),
    }
}

// ---- snapshots -------------------------------------------------------------

/// A stated transfer: none, another snapshot's, or another chunk.
fn mutate_want(want: &mut Option<SnapshotWant>, corpus: &Corpus, ch: &mut impl Choices) {
    let offers: Vec<SnapshotOffer> = corpus
        .snapshots
        .iter()
        .filter_map(|part| part.offer.as_deref().and_then(|bytes| SnapshotOffer::from_bytes(bytes).ok()))
        .collect();
    match ch.below(6) {
        0 => *want = None,
        1 => {
            // A real offer's transfer, at some chunk.
            *want = offers.get(ch.index(offers.len())).map(|offer| SnapshotWant {
                id: offer.id,
                state_len: offer.state_len,
                chunk_bytes: offer.chunk_bytes,
                chunk: ch.below(offer.chunk_count() + 1) as u32,
            });
        }
        2 | 3 => match want {
            Some(want) => want.chunk = interesting_u32(ch, want.chunk),
            None => {
                let id = SnapshotId(random_id(ch));
                *want = Some(SnapshotWant { id, state_len: ch.below(1 << 16), chunk_bytes: 1024, chunk: 1 });
            }
        },
        4 => {
            if let Some(want) = want {
                want.state_len = interesting(ch, want.state_len);
                want.chunk_bytes = interesting(ch, want.chunk_bytes);
            }
        }
        _ => {
            if let Some(want) = want {
                want.id = SnapshotId(random_id(ch));
            }
        }
    }
}

fn mutate_snapshot(snapshot: &mut Option<WireSnapshot>, case: &Case, corpus: &Corpus, ch: &mut impl Choices) {
    let Some(part) = snapshot else {
        if !corpus.snapshots.is_empty() {
            *snapshot = Some(corpus.snapshots[ch.index(corpus.snapshots.len())].clone());
        }
        return;
    };
    let other = corpus.snapshots.get(ch.index(corpus.snapshots.len()));
    match ch.below(16) {
        0 => *snapshot = None,
        1 => part.id = other.map_or(SnapshotId(random_id(ch)), |other| other.id),
        2 => part.offer = None,
        3 => part.offer = other.and_then(|other| other.offer.clone()),
        4 => part.chunk_index = interesting_u32(ch, part.chunk_index),
        5 => {
            let at = ch.index(part.chunk.len());
            if let Some(byte) = part.chunk.get_mut(at) {
                *byte ^= 1 << ch.below(8);
            }
        }
        6 => {
            let len = ch.index(part.chunk.len() + 2);
            part.chunk.resize(len, 0x5a);
        }
        7 => {
            // Another part's chunk, possibly of another snapshot, under this index.
            if let Some(other) = other {
                part.chunk = other.chunk.clone();
            }
        }
        8 => {
            // Another part whole, keeping this one's offer (a chunk from a
            // different snapshot, or of the same snapshot at another index).
            if let Some(other) = other {
                let offer = part.offer.take();
                *part = other.clone();
                part.offer = offer;
            }
        }
        9 if part.offer.is_some() => {
            if let Some(bytes) = part.offer.as_mut() {
                let at = ch.index(bytes.len());
                if let Some(byte) = bytes.get_mut(at) {
                    *byte ^= 1 << ch.below(8);
                }
            }
        }
        _ => mutate_offer(part, case, corpus, ch),
    }
}

/// Decodes the part's offer, changes one field, and re-seals the id (and,
/// for a forged state, the digest and manifest) most of the time.
fn mutate_offer(part: &mut WireSnapshot, case: &Case, corpus: &Corpus, ch: &mut impl Choices) {
    let Some(Ok(mut offer)) = part.offer.as_deref().map(SnapshotOffer::from_bytes) else { return };
    let whole_state = part.chunk_index == 0 && offer.chunk_count() == 1;
    let header = &mut offer.header;
    let mut state = None;
    match ch.below(18) {
        0 => header.lane_index = interesting(ch, header.lane_index),
        1 => header.max_lamport = interesting(ch, header.max_lamport),
        2 => header.parent = SnapshotId(random_id(ch)),
        3 => header.chain_hash = scx_engine::ChainHash(random_id(ch)),
        4 | 5 if !header.tips.is_empty() => {
            let at = ch.index(header.tips.len());
            mutate_tip(&mut header.tips[at], case, corpus, ch);
            if ch.one_in(2) {
                header.max_lamport = header.max_lamport.max(header.tips[at].lamport);
            }
            if ch.one_in(2) {
                header.tips.sort_by_key(|tip| tip.author);
            }
        }
        6 if !header.tips.is_empty() => {
            let at = ch.index(header.tips.len());
            header.tips.remove(at);
        }
        7 => {
            // Consistent forgery: a lane index that matches the tips.
            header.lane_index = header.tips.iter().fold(0u64, |sum, tip| sum.wrapping_add(tip.seq));
        }
        8..=10 => mutate_boundary(&mut header.boundary, &header.tips, case, corpus, ch),
        11 => offer.state_len = interesting(ch, offer.state_len),
        12 => offer.chunk_bytes = [0, 1, 512, 1024, 1000, 4096, 1 << 20, 1 << 21, u64::MAX][ch.index(9)],
        13 => match ch.below(4) {
            0 => offer.manifest.clear(),
            1 => offer.manifest.push(random_id(ch)),
            2 if !offer.manifest.is_empty() => {
                let at = ch.index(offer.manifest.len());
                offer.manifest[at][ch.index(32)] ^= 1 << ch.below(8);
            }
            _ => offer.manifest.reverse(),
        },
        14..=16 if whole_state => {
            // A forged state, travelling whole in this part.
            let mut forged = part.chunk.clone();
            match ch.below(3) {
                0 => {
                    let at = ch.index(forged.len());
                    if let Some(byte) = forged.get_mut(at) {
                        *byte ^= 1 << ch.below(8);
                    }
                }
                1 => forged.truncate(ch.index(forged.len() + 1)),
                // Another snapshot's state (or the genesis state) under this header.
                _ => {
                    let whole = corpus.snapshots.iter().filter(|other| other.offer.is_some() && other.chunk_index == 0);
                    let whole: Vec<&WireSnapshot> = whole.collect();
                    forged = whole.get(ch.index(whole.len())).map(|other| other.chunk.clone()).unwrap_or_default();
                }
            }
            state = Some(forged);
        }
        _ => {
            header.lane_index = interesting(ch, header.lane_index);
            header.max_lamport = u64::MAX - ch.below(2);
        }
    }
    if let Some(forged) = state {
        // Re-seal most of the time, so the forgery passes the digest check.
        if !ch.one_in(5) {
            offer.header.state_digest = hash::state_digest(&forged);
        }
        let snapshot = Snapshot { id: offer.id, header: offer.header.clone(), state: forged };
        if let Ok(resealed) = SnapshotOffer::of(&snapshot, offer.chunk_bytes) {
            let first = resealed.chunk_range(0).map(|range| range.end as usize).unwrap_or(0);
            part.chunk = snapshot.state[..first.min(snapshot.state.len())].to_vec();
            offer = resealed;
        }
    }
    if !ch.one_in(10) {
        offer.id = offer.header.id();
        if !ch.one_in(10) {
            part.id = offer.id;
        }
    }
    part.offer = Some(offer.to_bytes());
}

fn mutate_tip(tip: &mut Tip, case: &Case, corpus: &Corpus, ch: &mut impl Choices) {
    match ch.below(5) {
        0 => tip.author = some_author(ch),
        1 => tip.seq = interesting(ch, tip.seq),
        2 => tip.lamport = interesting(ch, tip.lamport),
        3 => tip.id = some_lane_id(case, corpus, ch),
        _ => {
            tip.lamport = u64::MAX - ch.below(2);
            tip.seq = interesting(ch, tip.seq);
        }
    }
}

fn mutate_boundary(boundary: &mut Vec<Tip>, tips: &[Tip], case: &Case, corpus: &Corpus, ch: &mut impl Choices) {
    let pick = ch.index(boundary.len());
    match ch.below(7) {
        0 if !boundary.is_empty() => {
            boundary.remove(pick);
        }
        1 if !boundary.is_empty() => boundary.push(boundary[pick]),
        2 if !boundary.is_empty() => mutate_tip(&mut boundary[pick], case, corpus, ch),
        3 => {
            let count = ch.below(MAX_BLOW_UP);
            for i in 0..count {
                let author = NodeId(ch.below(4) as u32);
                let id = some_lane_id(case, corpus, ch);
                boundary.push(Tip { author, seq: i + 1, lamport: interesting(ch, i + 1), id });
            }
        }
        4 => boundary.clear(),
        5 if !tips.is_empty() => {
            // A well-formed entry below a tip (the header's rules hold), naming
            // some lane: only what the receiver holds can refute it.
            let front = tips[ch.index(tips.len())];
            if front.seq > 1 {
                let seq = 1 + ch.below(front.seq - 1);
                let tip = Tip { author: front.author, seq, lamport: seq, id: some_lane_id(case, corpus, ch) };
                boundary.retain(|other| (other.author, other.seq) != (tip.author, tip.seq));
                boundary.push(tip);
                boundary.sort_by_key(|tip| (tip.author, tip.seq));
            }
        }
        _ => {
            let mut tip = Tip {
                author: NodeId(ch.below(3) as u32),
                seq: 1 + ch.below(40),
                lamport: 1 + ch.below(40),
                id: some_lane_id(case, corpus, ch),
            };
            mutate_tip(&mut tip, case, corpus, ch);
            boundary.push(tip);
            if ch.one_in(2) {
                boundary.sort_by_key(|tip| (tip.author, tip.seq));
            }
        }
    }
}

// ---- lane batches ----------------------------------------------------------

// Batches are edited as the engine reads them (`protocol::read_batch`):
// lanes with parents as written, back-references not yet resolved.
type Batch = Vec<BatchLane<WorldOp>>;

fn parse_batch(bytes: &[u8]) -> Option<Batch> {
    protocol::read_batch(bytes).ok()
}

fn mutate_batch(batch: &[u8], case: &Case, corpus: &Corpus, ch: &mut impl Choices) -> Vec<u8> {
    let Some(mut lanes) = parse_batch(batch) else { return batch.to_vec() };
    let rounds = 1 + ch.below(2);
    for _ in 0..rounds {
        if lanes.is_empty() || ch.one_in(6) {
            mutate_lane_list(&mut lanes, case, corpus, ch);
        } else {
            let at = ch.index(lanes.len());
            mutate_lane(&mut lanes[at], at as u64, case, corpus, ch);
        }
    }
    protocol::write_batch(&lanes)
}

fn mutate_lane_list(lanes: &mut Batch, case: &Case, corpus: &Corpus, ch: &mut impl Choices) {
    let pick = ch.index(lanes.len());
    match ch.below(8) {
        0 if !lanes.is_empty() => {
            lanes.remove(pick);
        }
        1 if !lanes.is_empty() => {
            let lane = lanes[pick].clone();
            lanes.insert(ch.index(lanes.len() + 1), lane);
        }
        2 if lanes.len() > 1 => {
            let other = ch.index(lanes.len());
            lanes.swap(pick, other);
        }
        3 => lanes.reverse(),
        4 => lanes.truncate(pick),
        5 if !corpus.batches.is_empty() => {
            // Splice lanes of another batch in: their back-references now
            // point at different lanes.
            let other = &corpus.batches[ch.index(corpus.batches.len())];
            if let Some(mut others) = parse_batch(other) {
                let from = ch.index(others.len());
                let spliced: Batch = others.drain(from..).collect();
                let at = ch.index(lanes.len() + 1);
                lanes.splice(at..at, spliced);
            }
        }
        6 if !lanes.is_empty() => {
            let count = ch.below(MAX_BLOW_UP / 4);
            let lane = lanes[pick].clone();
            lanes.extend(std::iter::repeat_n(lane, count as usize));
        }
        _ => {
            // A new lane by some author on top of a lane of the batch or one the receiver holds.
            let parents = if lanes.is_empty() || ch.one_in(2) {
                vec![ParentRef::Id(some_lane_id(case, corpus, ch))]
            } else {
                vec![ParentRef::Back(1 + ch.below(lanes.len() as u64))]
            };
            let author = NodeId(interesting_u32(ch, 0));
            lanes.push(BatchLane {
                author,
                seq: 1 + ch.below(3),
                lamport: 1 + ch.below(64),
                parents,
                ops: vec![WorldOp::Add { key: 1, delta: 1 }],
            });
        }
    }
}

fn mutate_lane(lane: &mut BatchLane<WorldOp>, index: u64, case: &Case, corpus: &Corpus, ch: &mut impl Choices) {
    match ch.below(12) {
        0 => lane.author = NodeId(interesting_u32(ch, lane.author.0)),
        1 => lane.seq = interesting(ch, lane.seq),
        2 | 3 => lane.lamport = interesting(ch, lane.lamport),
        4 if !lane.parents.is_empty() => {
            let at = ch.index(lane.parents.len());
            lane.parents[at] = match &lane.parents[at] {
                ParentRef::Back(back) => match ch.below(3) {
                    0 => ParentRef::Back(back.wrapping_add(1)),
                    1 => ParentRef::Back(back.saturating_sub(1).max(1)),
                    _ => ParentRef::Back(interesting(ch, *back).max(1)),
                },
                ParentRef::Id(_) if index > 0 && ch.one_in(2) => ParentRef::Back(1 + ch.below(index)),
                ParentRef::Id(_) => ParentRef::Id(some_lane_id(case, corpus, ch)),
            };
        }
        5 if !lane.parents.is_empty() => {
            let at = ch.index(lane.parents.len());
            lane.parents.remove(at);
        }
        6 => lane.parents.push(ParentRef::Id(some_lane_id(case, corpus, ch))),
        7 if !lane.parents.is_empty() => {
            let first = lane.parents[0];
            lane.parents.push(first);
        }
        8 => lane.parents.reverse(),
        9 if !lane.ops.is_empty() => {
            let at = ch.index(lane.ops.len());
            mutate_op(&mut lane.ops[at], ch);
        }
        10 => lane.ops.clear(),
        _ => {
            // Consistent forgery: another author's lane at seq 1 on the same parents.
            lane.author = NodeId(interesting_u32(ch, lane.author.0));
            lane.seq = 1;
        }
    }
}

fn mutate_op(op: &mut WorldOp, ch: &mut impl Choices) {
    match op {
        WorldOp::Put { key, value, seen } => match ch.below(3) {
            0 => *key = interesting_u32(ch, *key),
            1 => *value = interesting(ch, *value),
            _ => *seen = Some(Dot { author: some_author(ch), seq: interesting(ch, 1) }),
        },
        WorldOp::Add { key, delta } => match ch.below(2) {
            0 => *key = interesting_u32(ch, *key),
            _ => *delta = [i64::MIN, i64::MAX, -1, 0][ch.index(4)],
        },
        WorldOp::Insert { key, element } => match ch.below(2) {
            0 => *key = interesting_u32(ch, *key),
            _ => *element = interesting(ch, *element),
        },
        WorldOp::Remove { key, element, seen } => match ch.below(3) {
            0 => *key = interesting_u32(ch, *key),
            1 => *element = interesting(ch, *element),
            _ => seen.push(Dot { author: some_author(ch), seq: interesting(ch, 1) }),
        },
    }
}

// ---- bytes -----------------------------------------------------------------

fn bytes(mut bytes: Vec<u8>, corpus: &Corpus, ch: &mut impl Choices) -> Vec<u8> {
    let rounds = 1 + ch.below(6);
    for _ in 0..rounds {
        // Past the version byte, mostly: a wrong version is one cheap check.
        let at = if bytes.len() > 1 && !ch.one_in(64) { 1 + ch.index(bytes.len() - 1) } else { 0 };
        match ch.below(8) {
            0 | 1 if !bytes.is_empty() => bytes[at] ^= 1 << ch.below(8),
            2 if !bytes.is_empty() => bytes[at] = [0, 1, 0x7f, 0x80, 0xff][ch.index(5)],
            3 => bytes.insert(at.min(bytes.len()), ch.next_u64() as u8),
            4 if !bytes.is_empty() => {
                let end = (at + 1 + ch.index(8)).min(bytes.len());
                bytes.drain(at..end);
            }
            5 => bytes.truncate(at),
            6 if !corpus.cases.is_empty() => {
                let other = &corpus.cases[ch.index(corpus.cases.len())].bytes;
                let from = ch.index(other.len());
                let to = (from + 1 + ch.index(64)).min(other.len());
                let at = at.min(bytes.len());
                bytes.splice(at..at, other[from..to].iter().copied());
            }
            _ if bytes.len() > 2 => {
                // A varint-looking run: many continuation bytes.
                let end = (at + 1 + ch.index(10)).min(bytes.len());
                bytes[at..end].iter_mut().for_each(|byte| *byte |= 0x80);
            }
            _ => {}
        }
    }
    // Damage in transit is refused at the wire checksum; mostly reseal, so
    // the damaged body reaches the decoder and the session logic.
    if !ch.one_in(8) {
        protocol::reseal(&mut bytes);
    }
    bytes
}
