//! Goal: a snapshot of any size allowed reaches a peer behind the sender's
//! prune point, every datagram stays within the message limit, and a
//! transfer survives damaged, lost, repeated and reordered chunks without
//! ever installing a bad one. Method: small clusters of real replicas and
//! syncers over a scripted network that can drop, repeat, reorder or
//! damage each datagram; a law whose state encoding is as large as asked
//! (for states above one message); the World law with 1 KiB chunks for
//! transfers of many chunks; bundles whose parts are rearranged.

use crate::support::{Rng, random_ops};
use scx_engine::codec::{DecodeError, DecodeErrorKind, Reader, put_varint};
use scx_engine::law::{Applied, LaneContext, Law};
use scx_engine::protocol::{self, Message, Outcome, SnapshotOffer, SnapshotWant, SyncEvent, Syncer, WireSnapshot};
use scx_engine::{NodeId, Op, Replica, ReplicaConfig, SnapshotError, World};

// ---- a law with a state as large as asked --------------------------------

/// Grows the state's encoding by `bytes`.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Grow {
    bytes: u32,
}

impl Op for Grow {
    fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, u64::from(self.bytes));
    }

    fn decode(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        Ok(Self { bytes: reader.varint_u32("grow bytes")? })
    }
}

/// A state whose canonical encoding is `len` bytes derived from a hash of
/// every lane applied: cheap to clone and to replay, as large as asked to
/// encode (the digest covers every byte).
#[derive(Clone, Debug, PartialEq, Eq)]
struct BlobState {
    len: u64,
    seed: [u8; 32],
}

#[derive(Clone, Debug)]
struct Blob;

/// Largest blob state a test builds.
const MAX_BLOB_BYTES: u64 = 64 << 20;

fn blob_bytes(seed: &[u8; 32], len: u64) -> Vec<u8> {
    let mut bytes = vec![0; len as usize];
    blake3::Hasher::new().update(seed).finalize_xof().fill(&mut bytes);
    bytes
}

impl Law for Blob {
    type Op = Grow;
    type State = BlobState;
    type EncodeCache = ();

    fn genesis(&self) -> BlobState {
        BlobState { len: 0, seed: [0; 32] }
    }

    fn apply(&self, state: &mut BlobState, lane: &LaneContext<'_>, op: &Grow) -> Applied {
        let mut hasher = blake3::Hasher::new();
        hasher.update(&state.seed).update(lane.id.as_bytes()).update(&op.bytes.to_le_bytes());
        state.seed = *hasher.finalize().as_bytes();
        state.len = (state.len + u64::from(op.bytes)).min(MAX_BLOB_BYTES);
        Applied::default()
    }

    fn encode_state(&self, state: &BlobState, out: &mut Vec<u8>) {
        out.extend_from_slice(&state.seed);
        put_varint(out, state.len);
        out.extend_from_slice(&blob_bytes(&state.seed, state.len));
    }

    fn decode_state(&self, reader: &mut Reader<'_>) -> Result<BlobState, DecodeError> {
        let seed = reader.array32("blob seed")?;
        let len = reader.count("blob", MAX_BLOB_BYTES, 1)?;
        if reader.take(len, "blob")? != blob_bytes(&seed, len as u64) {
            return Err(reader.error(DecodeErrorKind::Invalid { what: "blob", rule: "bytes follow from the seed" }));
        }
        Ok(BlobState { len: len as u64, seed })
    }
}

// ---- a scripted network ----------------------------------------------------

/// Replicas and syncers of any law, over a network whose every datagram
/// `fate` may change and decides how many copies arrive (0: lost).
struct Net<L: Law> {
    replicas: Vec<Replica<L>>,
    syncers: Vec<Syncer>,
    events: Vec<(usize, SyncEvent)>,
    largest_datagram: usize,
}

impl<L: Law> Net<L> {
    /// `nodes` nodes of which the first `members` are members, pruning.
    fn new(law: L, nodes: u32, members: u32) -> Self {
        let replicas = (0..nodes)
            .map(|node| {
                let mut config = ReplicaConfig::new(NodeId(node), (0..members).map(NodeId));
                config.snapshot_interval = 16;
                config.checkpoint_interval = 4;
                config.prune = true;
                Replica::new(law.clone(), config)
            })
            .collect();
        let syncers = (0..nodes).map(|node| Syncer::new(NodeId(node))).collect();
        Self { replicas, syncers, events: Vec::new(), largest_datagram: 0 }
    }

    /// One session from `a` to `b` until nothing is in flight; returns the
    /// initiator's outcome if it completed. Sessions left open are abandoned.
    fn session(&mut self, a: usize, b: usize, fate: &mut dyn FnMut(&mut Vec<u8>) -> usize) -> Option<Outcome> {
        let session = self.syncers[a].initiate(NodeId(b as u32), &mut self.replicas[a]);
        let mut in_flight: Vec<(usize, usize, Vec<u8>)> = Vec::new();
        let events_before = self.events.len();
        loop {
            for node in [a, b] {
                while let Some((to, bytes)) = self.syncers[node].poll_transmit() {
                    self.largest_datagram = self.largest_datagram.max(bytes.len());
                    in_flight.push((node, to.0 as usize, bytes));
                }
                while let Some(event) = self.syncers[node].poll_event() {
                    self.events.push((node, event));
                }
            }
            if in_flight.is_empty() {
                break;
            }
            let (from, to, mut bytes) = in_flight.remove(0);
            for _ in 0..fate(&mut bytes) {
                self.syncers[to].handle(NodeId(from as u32), &bytes, &mut self.replicas[to]);
            }
        }
        for (node, peer) in [(a, b), (b, a)] {
            let open: Vec<u64> = self.syncers[node].open_sessions().map(|(_, id, _, _)| id).collect();
            for id in open {
                self.syncers[node].abandon(NodeId(peer as u32), id, "test: session over");
            }
            while let Some(event) = self.syncers[node].poll_event() {
                self.events.push((node, event));
            }
        }
        self.events[events_before..].iter().find_map(|(node, event)| match event {
            SyncEvent::Completed { session: id, role: protocol::Role::Initiator, outcome, .. }
                if *node == a && *id == session =>
            {
                Some(*outcome)
            }
            _ => None,
        })
    }

    /// A round of concurrent sessions in both directions between `a` and
    /// `b` over a network that delivers datagrams in random order, loses
    /// `loss`%, repeats `duplicate`% and holds `delay`% back to the next
    /// round (where they meet sessions long closed, or still open). Open
    /// sessions are abandoned at the end of the round.
    fn faulty_round(&mut self, a: usize, b: usize, rng: &mut Rng, late: &mut Vec<(usize, usize, Vec<u8>)>) {
        let (loss, duplicate, delay) = (20, 30, 15);
        self.syncers[a].initiate(NodeId(b as u32), &mut self.replicas[a]);
        self.syncers[b].initiate(NodeId(a as u32), &mut self.replicas[b]);
        let mut in_flight = std::mem::take(late);
        loop {
            for node in [a, b] {
                while let Some((to, bytes)) = self.syncers[node].poll_transmit() {
                    self.largest_datagram = self.largest_datagram.max(bytes.len());
                    in_flight.push((node, to.0 as usize, bytes));
                }
                while let Some(event) = self.syncers[node].poll_event() {
                    self.events.push((node, event));
                }
            }
            if in_flight.is_empty() {
                break;
            }
            let (from, to, bytes) = in_flight.remove(rng.below(in_flight.len() as u64) as usize);
            let roll = rng.below(100);
            if roll < loss {
                continue;
            }
            if roll < loss + delay {
                late.push((from, to, bytes));
                continue;
            }
            let copies = if rng.below(100) < duplicate { 2 } else { 1 };
            for _ in 0..copies {
                self.syncers[to].handle(NodeId(from as u32), &bytes, &mut self.replicas[to]);
            }
        }
        for (node, peer) in [(a, b), (b, a)] {
            let open: Vec<u64> = self.syncers[node].open_sessions().map(|(_, id, _, _)| id).collect();
            for id in open {
                self.syncers[node].abandon(NodeId(peer as u32), id, "test: round over");
            }
            while let Some(event) = self.syncers[node].poll_event() {
                self.events.push((node, event));
            }
        }
    }

    fn in_sync(&mut self, a: usize, b: usize) -> bool {
        let (x, y) = (self.replicas[a].status(), self.replicas[b].status());
        (x.chain_hash, x.state_digest) == (y.chain_hash, y.state_digest)
    }

    fn snapshot_errors(&self) -> Vec<&SnapshotError> {
        self.events
            .iter()
            .filter_map(|(_, event)| match event {
                SyncEvent::Diverged { error, .. } => Some(error),
                _ => None,
            })
            .collect()
    }

    fn bad_messages(&self) -> usize {
        self.events.iter().filter(|(_, event)| matches!(event, SyncEvent::BadMessage { .. })).count()
    }
}

fn deliver(_: &mut Vec<u8>) -> usize {
    1
}

/// A member that wrote `lanes` lanes growing a blob state by `bytes` each
/// (so its snapshots prune), and an observer that holds nothing.
fn blob_writer(lanes: usize, bytes: u32) -> Net<Blob> {
    let mut net = Net::new(Blob, 2, 1);
    for _ in 0..lanes {
        net.replicas[0].create_lane(vec![Grow { bytes }]).unwrap();
    }
    net.replicas[0].status();
    net
}

// ---- P4: a state above one message ------------------------------------------

#[test]
fn a_state_larger_than_one_message_reaches_a_peer_behind_the_prune_point() {
    // The hole (issue 11, P4): a Delta carried the whole snapshot, the
    // decoder refuses datagrams over the limit, so once the state passed
    // about 11 MiB every catch-up was dropped at the receiver, for ever,
    // and the sender never knew. 40 lanes of 640 KiB: the snapshot at lane
    // 32 holds a 20 MiB state.
    let mut net = blob_writer(40, 640 << 10);
    let snapshot = net.replicas[0].snapshots().latest().unwrap().clone();
    assert_eq!(net.replicas[0].prune_index(), 32, "the writer pruned its stable prefix");
    assert!(snapshot.state.len() > protocol::MAX_MESSAGE_BYTES, "the state is larger than one message");
    let mut sessions = 0;
    while !net.in_sync(1, 0) {
        sessions += 1;
        assert!(sessions <= 32, "the observer did not catch up in {sessions} sessions");
        let outcome = net.session(1, 0, &mut deliver);
        let caught_up = net.in_sync(1, 0);
        assert_eq!(outcome, Some(Outcome::Synced { more: !caught_up }), "session {sessions}");
    }
    assert!(net.largest_datagram <= protocol::MAX_MESSAGE_BYTES, "a datagram of {} bytes", net.largest_datagram);
    assert_eq!((net.bad_messages(), net.snapshot_errors().len()), (0, 0), "{:?}", net.events);
    assert_eq!(net.replicas[1].snapshots().latest().map(|s| s.id), Some(snapshot.id));
    assert_eq!(net.replicas[1].status(), net.replicas[0].status());
}

#[test]
fn every_session_of_a_chunked_transfer_is_bounded_and_says_more() {
    let mut net = blob_writer(40, 640 << 10);
    let chunks = SnapshotOffer::of(net.replicas[0].snapshots().latest().unwrap(), protocol::MAX_CHUNK_BYTES)
        .unwrap()
        .chunk_count();
    assert_eq!(chunks, 21, "20 MiB and a bit, in 1 MiB chunks");
    let mut messages = 0;
    let mut count = |bytes: &mut Vec<u8>| {
        messages += 1;
        assert!(bytes.len() <= protocol::MAX_MESSAGE_BYTES);
        1
    };
    for session in 1..chunks {
        assert_eq!(net.session(1, 0, &mut count), Some(Outcome::Synced { more: true }), "session {session}");
    }
    // The last chunk comes with the lanes above the snapshot.
    assert_eq!(net.session(1, 0, &mut count), Some(Outcome::Synced { more: false }));
    assert!(net.in_sync(0, 1));
    assert_eq!(messages, 3 * chunks, "Hello, Delta and Lanes in each session, nothing more");
    let totals = net.events.iter().fold(protocol::SessionMetrics::default(), |mut total, (node, event)| {
        if let (1, SyncEvent::Completed { metrics, .. }) = (node, event) {
            total.add(metrics);
        }
        total
    });
    assert_eq!(totals.snapshot_chunks_received, chunks, "every chunk once");
    assert_eq!(totals.snapshots_installed, 1);
    let sent = net.events.iter().fold(protocol::SessionMetrics::default(), |mut total, (node, event)| {
        if let (0, SyncEvent::Completed { metrics, .. }) = (node, event) {
            total.add(metrics);
        }
        total
    });
    assert_eq!(
        (sent.snapshots_sent, sent.snapshot_chunks_sent),
        (1, chunks),
        "the offer once, then only the chunks the receiver asked for"
    );
}

#[test]
fn encode_refuses_a_datagram_over_the_limit() {
    let lanes = vec![protocol::BATCH_FORMAT_VERSION; protocol::MAX_MESSAGE_BYTES];
    let message = Message::Supply { session: 1, lanes };
    assert!(matches!(protocol::encode(&message), Err(protocol::WireError::TooLarge { .. })));
    let fits = Message::Supply { session: 1, lanes: vec![protocol::BATCH_FORMAT_VERSION; protocol::MAX_BATCH_BYTES] };
    assert!(protocol::encode(&fits).unwrap().len() <= protocol::MAX_MESSAGE_BYTES);
}

// ---- transfers of many chunks ---------------------------------------------

/// Two members that wrote over many keys (a state of several KiB) until
/// both pruned, and an observer (node 2, not a member) that holds nothing;
/// every syncer offers 1 KiB chunks.
fn world_pair(seed: u64) -> Net<World> {
    let mut net = Net::new(World, 3, 2);
    for syncer in &mut net.syncers {
        syncer.set_snapshot_chunk_bytes(1024);
    }
    let mut rng = Rng::new(seed);
    for _ in 0..400 {
        for node in 0..2 {
            for _ in 0..3 {
                let ops = random_ops(&mut rng, &mut net.replicas[node], 600);
                net.replicas[node].create_lane(ops).unwrap();
            }
        }
        net.session(0, 1, &mut deliver);
        let pruned = net.replicas[0].prune_index() > 0 && net.replicas[1].prune_index() > 0;
        if pruned && offer_of(&net.replicas[0]).chunk_count() >= 4 {
            return net;
        }
    }
    panic!("the pair never pruned a state of four chunks");
}

fn offer_of<L: Law>(replica: &Replica<L>) -> SnapshotOffer {
    SnapshotOffer::of(replica.snapshots().latest().unwrap(), 1024).unwrap()
}

/// The transfer of `offer` stated with chunk `chunk` missing.
fn want_of(offer: &SnapshotOffer, chunk: u32) -> SnapshotWant {
    SnapshotWant { id: offer.id, state_len: offer.state_len, chunk_bytes: offer.chunk_bytes, chunk }
}

/// The snapshot part a datagram carries, if any.
fn part_of(bytes: &[u8]) -> Option<WireSnapshot> {
    match protocol::decode(bytes) {
        Ok(Message::Delta { snapshot, .. } | Message::Lanes { snapshot, .. }) => snapshot,
        _ => None,
    }
}

/// The transfer a Hello states.
fn stated(bytes: &[u8]) -> Option<Option<SnapshotWant>> {
    match protocol::decode(bytes) {
        Ok(Message::Hello { receiving, .. }) => Some(receiving),
        _ => None,
    }
}

/// Sessions from `a` to `b` until they are in sync (at most `limit`).
fn sync_until_in_sync<L: Law>(net: &mut Net<L>, a: usize, b: usize, limit: usize) -> usize {
    for sessions in 1..=limit {
        net.session(a, b, &mut deliver);
        if net.in_sync(a, b) {
            return sessions;
        }
    }
    panic!("{a} and {b} not in sync after {limit} sessions");
}

#[test]
fn a_corrupt_chunk_is_refused_and_asked_for_again() {
    let mut net = world_pair(1);
    let offer = offer_of(&net.replicas[0]);
    // The second chunk arrives damaged (the datagram re-sealed, as a bug in
    // the sender's memory would leave it): refused, never stored.
    let mut damaged = 0;
    let mut damage = |bytes: &mut Vec<u8>| {
        let Some(mut part) = part_of(bytes).filter(|part| part.chunk_index == 1) else { return 1 };
        part.chunk[0] ^= 0x10;
        let Ok(Message::Delta { session, status, summary, receiving, lanes, more, snapshot_asked, .. }) =
            protocol::decode(bytes)
        else {
            return 1;
        };
        let snapshot = Some(part);
        let forged = Message::Delta { session, status, summary, receiving, snapshot, lanes, more, snapshot_asked };
        *bytes = protocol::encode(&forged).unwrap();
        damaged += 1;
        1
    };
    net.session(2, 0, &mut deliver);
    assert_eq!(net.session(2, 0, &mut damage), Some(Outcome::Synced { more: true }));
    assert_eq!(damaged, 1);
    let refused: Vec<_> = net.snapshot_errors().into_iter().cloned().collect();
    assert!(
        matches!(refused.as_slice(), [SnapshotError::BadChunk { index: 1, rule, .. }] if rule.contains("chaining value")),
        "{refused:?}"
    );
    assert_eq!(net.replicas[2].prune_index(), 0, "nothing was installed");
    // The next Hello asks for chunk 1 again, and the transfer completes.
    let mut asked = None;
    let mut look = |bytes: &mut Vec<u8>| {
        asked = asked.or(stated(bytes).flatten());
        1
    };
    net.session(2, 0, &mut look);
    assert_eq!(asked, Some(want_of(&offer, 1)));
    sync_until_in_sync(&mut net, 2, 0, offer.chunk_count() as usize + 2);
    assert_eq!(net.replicas[2].snapshots().latest().map(|s| s.id), Some(offer.id));
    assert_eq!(net.bad_messages(), 0);
}

#[test]
fn an_interrupted_transfer_resumes_from_the_lowest_missing_chunk() {
    let mut net = world_pair(2);
    let offer = offer_of(&net.replicas[0]);
    let count = offer.chunk_count();
    for _ in 0..3 {
        net.session(2, 0, &mut deliver);
    }
    // Interrupted: two sessions whose replies are all lost.
    let mut lose_replies = |bytes: &mut Vec<u8>| usize::from(part_of(bytes).is_none() && stated(bytes).is_some());
    for _ in 0..2 {
        assert_eq!(net.session(2, 0, &mut lose_replies), None, "the session could not complete");
    }
    // The next session states the transfer under way, and the sender
    // resumes there: no offer again, no chunk twice.
    let mut asked = None;
    let mut offers = 0;
    let mut look = |bytes: &mut Vec<u8>| {
        asked = asked.or(stated(bytes).flatten());
        offers += usize::from(part_of(bytes).is_some_and(|part| part.offer.is_some()));
        1
    };
    net.session(2, 0, &mut look);
    assert_eq!(asked, Some(want_of(&offer, 3)));
    assert_eq!(offers, 0, "a resumed transfer does not start over");
    sync_until_in_sync(&mut net, 2, 0, count as usize);
    let chunks_received: u64 = net
        .events
        .iter()
        .filter_map(|(node, event)| match (node, event) {
            (2, SyncEvent::Completed { metrics, .. }) => Some(metrics.snapshot_chunks_received),
            _ => None,
        })
        .sum();
    assert_eq!(chunks_received, count, "each chunk arrived once");
    assert_eq!(net.replicas[2].status(), net.replicas[0].status());
}

#[test]
fn a_transfer_to_a_responder_travels_in_lanes_messages() {
    let mut net = world_pair(3);
    let count = offer_of(&net.replicas[1]).chunk_count() as usize;
    // Node 1 initiates; node 2, behind its prune point, is the responder
    // and states its transfer in each Delta.
    for _ in 0..count + 2 {
        net.session(1, 2, &mut deliver);
        if net.in_sync(1, 2) {
            break;
        }
    }
    assert!(net.in_sync(1, 2));
    assert_eq!(net.snapshot_errors().len(), 0);
}

#[test]
fn duplicated_reordered_late_and_lost_datagrams_still_complete_the_transfer() {
    // Concurrent sessions in both directions carry chunks in Deltas and in
    // Lanes messages at once; some arrive twice, late (after their session
    // closed, or into the next one) or never.
    let mut net = world_pair(9);
    let count = offer_of(&net.replicas[0]).chunk_count();
    let (mut rng, mut late) = (Rng::new(10), Vec::new());
    let mut rounds = 0;
    while !net.in_sync(2, 0) {
        rounds += 1;
        assert!(rounds < 20 * count, "no convergence under loss, duplication, delay and reordering");
        net.faulty_round(2, 0, &mut rng, &mut late);
    }
    assert!(net.replicas[2].prune_index() > 0, "node 2 stands on the snapshot");
    assert_eq!((net.bad_messages(), net.snapshot_errors().len()), (0, 0), "honest faults raise no snapshot error");
    assert!(net.largest_datagram <= protocol::MAX_MESSAGE_BYTES);
}

// ---- bundles: parts in any order -------------------------------------------

/// The snapshot parts of a bundle, and its lane datagrams.
fn bundle_parts(bytes: &[u8]) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
    protocol::read_bundle(bytes)
        .unwrap()
        .into_iter()
        .map(<[u8]>::to_vec)
        .partition(|datagram| part_of(datagram).is_some())
}

#[test]
fn chunks_after_the_offer_may_come_in_any_order_and_more_than_once() {
    let mut net = world_pair(4);
    let bundle = protocol::bundle_in_chunks(&mut net.replicas[0], 1024);
    let (parts, lanes) = bundle_parts(&bundle);
    assert!(parts.len() >= 4 && part_of(&parts[0]).unwrap().offer.is_some());
    let mut shuffled = vec![parts[0].clone()];
    let mut rest = parts[1..].to_vec();
    Rng::new(5).shuffle(&mut rest);
    shuffled.extend(rest.iter().cloned());
    shuffled.extend(rest.iter().take(2).cloned());
    shuffled.push(parts[0].clone());
    shuffled.extend(lanes);
    let file = protocol::write_bundle(&shuffled);
    let (metrics, events) = protocol::apply_bundle(&file, NodeId(0), &mut net.replicas[2]).unwrap();
    assert_eq!(metrics.snapshots_installed, 1, "{events:?}");
    assert_eq!(metrics.bytes_received, file.len() as u64, "a bundle's bytes are all received");
    assert!(events.is_empty(), "{events:?}");
    assert!(net.in_sync(2, 0));
}

#[test]
fn a_bundle_missing_a_chunk_installs_nothing_and_says_so() {
    let mut net = world_pair(6);
    let bundle = protocol::bundle_in_chunks(&mut net.replicas[0], 1024);
    let (mut parts, lanes) = bundle_parts(&bundle);
    let before = net.replicas[2].status();
    parts.remove(2);
    parts.extend(lanes);
    let (metrics, events) =
        protocol::apply_bundle(&protocol::write_bundle(&parts), NodeId(0), &mut net.replicas[2]).unwrap();
    assert_eq!(metrics.snapshots_installed, 0);
    assert!(
        events.iter().any(|event| matches!(
            event,
            SyncEvent::Diverged { error: SnapshotError::Incomplete { missing: 1, .. }, .. }
        )),
        "{events:?}"
    );
    assert_eq!(net.replicas[2].prune_index(), 0);
    assert_eq!(net.replicas[2].snapshots().latest().map(|s| s.header.lane_index), Some(before.snapshot_index));
}

#[test]
fn a_chunk_from_a_different_snapshot_is_never_installed() {
    let mut net = world_pair(7);
    let older = protocol::bundle_in_chunks(&mut net.replicas[0], 1024);
    let older_offer = offer_of(&net.replicas[0]);
    // The pair writes on until a newer snapshot is stable.
    let mut rng = Rng::new(8);
    let mut rounds = 0;
    while offer_of(&net.replicas[0]).id == older_offer.id {
        rounds += 1;
        assert!(rounds <= 200, "no newer stable snapshot after {rounds} rounds of writes");
        for node in 0..2 {
            let ops = random_ops(&mut rng, &mut net.replicas[node], 600);
            net.replicas[node].create_lane(ops).unwrap();
        }
        net.session(0, 1, &mut deliver);
    }
    let newer = protocol::bundle_in_chunks(&mut net.replicas[0], 1024);
    let (old_parts, _) = bundle_parts(&older);
    let (new_parts, new_lanes) = bundle_parts(&newer);
    // The older offer, then chunk 1 of the newer snapshot twice: under its
    // own id (a snapshot not being assembled: ignored) and relabelled with
    // the older id (refused against the older manifest); then the older
    // snapshot's true chunks.
    let relabel = |datagram: &[u8], id| {
        let Ok(Message::Lanes { session, snapshot: Some(mut part), lanes, more, need, snapshot_id }) =
            protocol::decode(datagram)
        else {
            panic!("a bundle part is a Lanes message")
        };
        part.id = id;
        part.offer = None;
        protocol::encode(&Message::Lanes { session, snapshot: Some(part), lanes, more, need, snapshot_id }).unwrap()
    };
    let mut sequence = vec![old_parts[0].clone(), relabel(&new_parts[1], offer_of(&net.replicas[0]).id)];
    sequence.push(relabel(&new_parts[1], older_offer.id));
    sequence.extend(old_parts[1..].iter().cloned());
    let mut observer = net.replicas[2].clone();
    let (metrics, events) =
        protocol::apply_bundle(&protocol::write_bundle(&sequence), NodeId(0), &mut observer).unwrap();
    let refused: Vec<SnapshotError> = events
        .iter()
        .filter_map(|event| match event {
            SyncEvent::Diverged { error, .. } => Some(error.clone()),
            _ => None,
        })
        .collect();
    assert!(matches!(refused.as_slice(), [SnapshotError::BadChunk { index: 1, .. }]), "{refused:?}");
    assert_eq!(metrics.snapshots_installed, 1, "the older snapshot's own chunks complete it");
    assert_eq!(observer.snapshots().latest().map(|s| s.id), Some(older_offer.id));
    // A newer bundle then takes the observer on.
    let mut rest = new_parts;
    rest.extend(new_lanes);
    protocol::apply_bundle(&protocol::write_bundle(&rest), NodeId(0), &mut observer).unwrap();
    let (ours, theirs) = (observer.status(), net.replicas[0].status());
    assert_eq!((ours.chain_hash, ours.state_digest), (theirs.chain_hash, theirs.state_digest));
}

#[test]
fn a_receiver_keeps_one_transfer_per_peer_and_a_bounded_number_in_all() {
    let net = world_pair(13);
    let mut receiver = net.replicas[2].clone();
    let mut receiver_syncer = Syncer::new(NodeId(2));
    let peers: Vec<NodeId> = (0..protocol::MAX_SNAPSHOT_TRANSFERS as u32 + 1).map(|i| NodeId(10 + i)).collect();
    // Each peer (a copy of member 0) starts a transfer: its Lanes reply to
    // the receiver's Delta carries the offer and chunk 0.
    for peer in &peers {
        let mut sender = net.replicas[0].clone();
        let mut syncer = Syncer::new(*peer);
        syncer.set_snapshot_chunk_bytes(1024);
        syncer.initiate(NodeId(2), &mut sender);
        for _ in 0..3 {
            while let Some((_, bytes)) = syncer.poll_transmit() {
                receiver_syncer.handle(*peer, &bytes, &mut receiver);
            }
            while let Some((_, bytes)) = receiver_syncer.poll_transmit() {
                syncer.handle(NodeId(2), &bytes, &mut sender);
            }
        }
        while receiver_syncer.poll_event().is_some() {}
    }
    assert_eq!(receiver.prune_index(), 0, "no transfer is complete");
    // The receiver states a transfer to every peer but the first, whose
    // transfer (the one that progressed least recently) made room.
    let stated: Vec<bool> = peers
        .iter()
        .map(|peer| {
            receiver_syncer.initiate(*peer, &mut receiver);
            let (_, hello) = receiver_syncer.poll_transmit().unwrap();
            stated(&hello).unwrap().is_some()
        })
        .collect();
    let mut expected = vec![true; peers.len()];
    expected[0] = false;
    assert_eq!(stated, expected);
}
