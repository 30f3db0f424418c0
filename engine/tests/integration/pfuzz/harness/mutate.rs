//! Mutators. Most inputs are decoded, changed at the level of one field
//! (session ids, counts, seqs, Lamport stamps near `u64::MAX`, parent
//! back-references, summary entries, Bloom bits and sizes, snapshot header
//! fields, boundary lanes, state bytes) and encoded again, with snapshot ids
//! and digests re-sealed so the change gets past the checks that only
//! catch accidents. The rest are byte flips, inserts, truncations and
//! splices, which exercise the decoders themselves.

use super::Choices;
use super::corpus::{Case, Corpus};
use scx_engine::codec::{Reader, put_varint};
use scx_engine::lane::Op;
use scx_engine::protocol::{self, Bloom, CompactSummary, Message, Summary, SummaryEntry, WireSnapshot};
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
    let Ok(mut message) = protocol::decode(&case.bytes) else { return case.bytes.clone() };
    let rounds = 1 + ch.below(3);
    for _ in 0..rounds {
        mutate_message(&mut message, case, corpus, ch);
    }
    protocol::encode(&message)
}

fn mutate_message(message: &mut Message, case: &Case, corpus: &Corpus, ch: &mut impl Choices) {
    if ch.one_in(24) {
        change_kind(message, ch);
        return;
    }
    match message {
        Message::Hello { session, status, summary } => match ch.below(8) {
            0 => mutate_session(session, case, ch),
            1 | 2 => mutate_status(status, case, ch),
            _ => mutate_summary(summary, case, corpus, ch),
        },
        Message::InSync { session } => mutate_session(session, case, ch),
        Message::Delta { session, status, summary, snapshot, lanes, more } => match ch.below(16) {
            0 => mutate_session(session, case, ch),
            1 => mutate_status(status, case, ch),
            2..=4 => mutate_summary(summary, case, corpus, ch),
            5..=8 => mutate_snapshot(snapshot, case, corpus, ch),
            9 => *more = !*more,
            _ => *lanes = mutate_batch(lanes, case, corpus, ch),
        },
        Message::Lanes { session, snapshot, lanes, more, need } => match ch.below(16) {
            0 => mutate_session(session, case, ch),
            1..=4 => mutate_snapshot(snapshot, case, corpus, ch),
            5 => *more = !*more,
            6..=8 => mutate_ids(need, case, corpus, ch),
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
        _ => Message::Lanes { session, snapshot, lanes, more: false, need: Vec::new() },
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

fn mutate_status(status: &mut protocol::WireStatus, case: &Case, ch: &mut impl Choices) {
    let ours = &case.base.status;
    match ch.below(7) {
        0 => status.lane_index = interesting(ch, status.lane_index),
        1 => status.snapshot_index = interesting(ch, status.snapshot_index),
        2 => status.snapshot_id = SnapshotId(random_id(ch)),
        3 => status.chain_hash = scx_engine::ChainHash(random_id(ch)),
        4 => status.state_digest = scx_engine::StateDigest(random_id(ch)),
        5 => {
            // Claim the receiver's own hashes: a spoofed "in sync".
            status.chain_hash = ours.chain_hash;
            status.state_digest = ours.state_digest;
        }
        _ => {
            status.snapshot_index = ours.snapshot_index;
            status.snapshot_id = SnapshotId(random_id(ch));
        }
    }
}

fn mutate_summary(summary: &mut Summary, case: &Case, corpus: &Corpus, ch: &mut impl Choices) {
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
                    .map(|id| SummaryEntry { author: NodeId(0), seq: 1, tip: id.prefix_u64() })
                    .collect(),
            ),
        };
        return;
    }
    match summary {
        Summary::Exact(entries) => mutate_entries(entries, case, ch),
        Summary::Compact(compact) => mutate_compact(compact, case, corpus, ch),
    }
}

fn mutate_entries(entries: &mut Vec<SummaryEntry>, case: &Case, ch: &mut impl Choices) {
    let pick = ch.index(entries.len());
    match ch.below(10) {
        0 if !entries.is_empty() => {
            entries.remove(pick);
        }
        1 if !entries.is_empty() => entries.push(entries[pick]),
        2 => entries.push(SummaryEntry { author: some_author(ch), seq: interesting(ch, 1), tip: ch.next_u64() }),
        3 if !entries.is_empty() => entries[pick].seq = interesting(ch, entries[pick].seq),
        4 if !entries.is_empty() => entries[pick].tip = ch.next_u64(),
        5 if !entries.is_empty() => entries[pick].author = some_author(ch),
        6 => entries.reverse(),
        7 => entries.clear(),
        8 => {
            let count = ch.below(MAX_BLOW_UP);
            for i in 0..count {
                entries.push(SummaryEntry { author: NodeId(i as u32), seq: interesting(ch, i), tip: ch.next_u64() });
            }
        }
        _ => {
            // The receiver's own tips with one seq bumped: an exact summary
            // that claims a lane nobody holds.
            if let Some((author, seq, id)) = case.base.held.last() {
                entries.push(SummaryEntry { author: *author, seq: seq + ch.below(3), tip: id.prefix_u64() });
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

fn mutate_snapshot(snapshot: &mut Option<WireSnapshot>, case: &Case, corpus: &Corpus, ch: &mut impl Choices) {
    let Some(wire) = snapshot else {
        if !corpus.snapshots.is_empty() {
            *snapshot = Some(corpus.snapshots[ch.index(corpus.snapshots.len())].clone());
        }
        return;
    };
    match ch.below(10) {
        0 => *snapshot = None,
        1..=3 => {
            // The boundary is in the header: mutate it there, re-sealing
            // the id most of the time.
            if let Ok(mut decoded) = Snapshot::from_bytes(&wire.bytes) {
                let tips = decoded.header.tips.clone();
                mutate_boundary(&mut decoded.header.boundary, &tips, case, corpus, ch);
                if !ch.one_in(10) {
                    decoded.id = decoded.header.id();
                }
                wire.bytes = decoded.to_bytes();
            }
        }
        4 => {
            let at = ch.index(wire.bytes.len());
            if let Some(byte) = wire.bytes.get_mut(at) {
                *byte ^= 1 << ch.below(8);
            }
        }
        _ => {
            if let Ok(mut decoded) = Snapshot::from_bytes(&wire.bytes) {
                mutate_snapshot_fields(&mut decoded, case, corpus, ch);
                wire.bytes = decoded.to_bytes();
            }
        }
    }
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

fn mutate_snapshot_fields(snapshot: &mut Snapshot, case: &Case, corpus: &Corpus, ch: &mut impl Choices) {
    let header = &mut snapshot.header;
    let mut state_changed = false;
    match ch.below(12) {
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
        8 => {
            let at = ch.index(snapshot.state.len());
            if let Some(byte) = snapshot.state.get_mut(at) {
                *byte ^= 1 << ch.below(8);
            }
            state_changed = true;
        }
        9 => {
            let len = ch.index(snapshot.state.len() + 1);
            snapshot.state.truncate(len);
            state_changed = true;
        }
        10 => {
            // Another snapshot's state (or the genesis state) under this header.
            snapshot.state = match corpus.snapshots.get(ch.index(corpus.snapshots.len())) {
                Some(other) => Snapshot::from_bytes(&other.bytes).map(|s| s.state).unwrap_or_default(),
                None => Vec::new(),
            };
            state_changed = true;
        }
        _ => {
            header.lane_index = interesting(ch, header.lane_index);
            header.max_lamport = u64::MAX - ch.below(2);
        }
    }
    // Re-seal most of the time, so the forgery passes the id and digest checks.
    if state_changed && !ch.one_in(5) {
        snapshot.header.state_digest = hash::state_digest(&snapshot.state);
    }
    if !ch.one_in(10) {
        snapshot.id = snapshot.header.id();
    }
}

// ---- lane batches ----------------------------------------------------------

#[derive(Clone, Debug)]
enum ParentRef {
    /// Distance back to an earlier lane of the batch.
    Back(u64),
    Id(LaneId),
}

#[derive(Clone, Debug)]
struct BatchLane {
    author: u32,
    seq: u64,
    lamport: u64,
    parents: Vec<ParentRef>,
    ops: Vec<WorldOp>,
}

/// Parses a batch into its lanes, keeping back-references as written.
fn parse_batch(bytes: &[u8]) -> Option<Vec<BatchLane>> {
    let mut reader = Reader::new(bytes);
    if reader.byte("version").ok()? != protocol::BATCH_FORMAT_VERSION {
        return None;
    }
    let mut lanes = Vec::new();
    while reader.remaining() > 0 {
        let author = reader.varint_u32("author").ok()?;
        let seq = reader.varint("seq").ok()?;
        let lamport = reader.varint("lamport").ok()?;
        let parent_count = reader.count("parents", 256, 1).ok()?;
        let mut parents = Vec::with_capacity(parent_count);
        for _ in 0..parent_count {
            match reader.varint("parent").ok()? {
                0 => parents.push(ParentRef::Id(LaneId(reader.array32("id").ok()?))),
                back => parents.push(ParentRef::Back(back)),
            }
        }
        let op_count = reader.count("ops", 4096, 1).ok()?;
        let mut ops = Vec::with_capacity(op_count);
        for _ in 0..op_count {
            ops.push(WorldOp::decode(&mut reader).ok()?);
        }
        lanes.push(BatchLane { author, seq, lamport, parents, ops });
    }
    Some(lanes)
}

fn write_batch(lanes: &[BatchLane]) -> Vec<u8> {
    let mut out = vec![protocol::BATCH_FORMAT_VERSION];
    for lane in lanes {
        put_varint(&mut out, u64::from(lane.author));
        put_varint(&mut out, lane.seq);
        put_varint(&mut out, lane.lamport);
        put_varint(&mut out, lane.parents.len() as u64);
        for parent in &lane.parents {
            match parent {
                ParentRef::Back(back) => put_varint(&mut out, *back),
                ParentRef::Id(id) => {
                    put_varint(&mut out, 0);
                    out.extend_from_slice(id.as_bytes());
                }
            }
        }
        put_varint(&mut out, lane.ops.len() as u64);
        for op in &lane.ops {
            op.encode(&mut out);
        }
    }
    out
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
    write_batch(&lanes)
}

fn mutate_lane_list(lanes: &mut Vec<BatchLane>, case: &Case, corpus: &Corpus, ch: &mut impl Choices) {
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
                let spliced: Vec<BatchLane> = others.drain(from..).collect();
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
            let author = interesting_u32(ch, 0);
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

fn mutate_lane(lane: &mut BatchLane, index: u64, case: &Case, corpus: &Corpus, ch: &mut impl Choices) {
    match ch.below(12) {
        0 => lane.author = interesting_u32(ch, lane.author),
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
            let first = lane.parents[0].clone();
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
            lane.author = interesting_u32(ch, lane.author);
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
