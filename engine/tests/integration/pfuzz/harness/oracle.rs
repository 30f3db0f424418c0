//! The oracle: what must hold after every input, however hostile.
//!
//! Cheap checks run after every input: no panic, the version vector never
//! shrinks, every lane the receiver held is still held (or covered by a
//! snapshot that names the same lane at its dot), and `status()` answers.
//! An input that leaves the receiver's hashes, held count, pending count and
//! prune point as they were stops there. One that changed them (about a
//! third) gets the rest: every held id is the hash of its lane's canonical
//! bytes, every parent is held (causal closure), the canonical order
//! ascends; and, on every `full_every`-th such input (default: all of them),
//! `status()` equals a replay of the held lanes on a fresh replica (from the
//! receiver's own verified base snapshot when it stands on one), and honest
//! sessions with the honest sender converge, so a hostile input cannot
//! wedge the receiver. At the default this costs about 150 µs per input.
//!
//! Lanes carry no signatures, so a structurally valid forged lane is
//! admitted like any other, and a peer behind the prune point has to trust
//! a snapshot's content where it holds nothing to check it against. The
//! oracle therefore demands convergence unless the input made the receiver
//! hold a forged lane at a dot where an honest lane exists (a fork, which
//! must then be surfaced as evidence) or install a forged snapshot (the
//! trust boundary; it must still not contradict a lane the receiver held).

use super::corpus::{Base, Corpus, Delivery};
use super::mutate::{Strategy, mutate};
use super::{Choices, Rng};
use scx_engine::protocol::{self, Message, SnapshotOffer, SyncEvent, Syncer, WireSnapshot};
use scx_engine::{LaneId, NodeId, Replica, Status, World};
use std::collections::{BTreeMap, BTreeSet};

/// How much checking each input gets.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Checks {
    /// Replay and convergence checks on every n-th input that changed the receiver (1 = all).
    pub(crate) full_every: u64,
}

/// Counters of a campaign.
#[derive(Clone, Debug, Default)]
pub(crate) struct Stats {
    pub(crate) inputs: u64,
    /// Inputs that passed the wire decoder.
    pub(crate) decoded: u64,
    /// Inputs that changed the receiver's held set, pending set or hashes.
    pub(crate) changed: u64,
    pub(crate) full_checks: u64,
    pub(crate) converged: u64,
    /// Honest sessions that could not converge because of a surfaced fork.
    pub(crate) forks_surfaced: u64,
    /// Forged snapshots installed (the trust boundary).
    pub(crate) forged_snapshots: u64,
    /// Forged lanes the receiver admitted (valid lanes nobody honest wrote).
    pub(crate) forged_lanes: u64,
    pub(crate) by_strategy: BTreeMap<&'static str, u64>,
    pub(crate) by_kind: BTreeMap<&'static str, u64>,
    pub(crate) events: BTreeMap<&'static str, u64>,
}

impl Stats {
    /// Adds another campaign's counters.
    pub(crate) fn add(&mut self, other: &Self) {
        self.inputs += other.inputs;
        self.decoded += other.decoded;
        self.changed += other.changed;
        self.full_checks += other.full_checks;
        self.converged += other.converged;
        self.forks_surfaced += other.forks_surfaced;
        self.forged_snapshots += other.forged_snapshots;
        self.forged_lanes += other.forged_lanes;
        for (map, theirs) in [
            (&mut self.by_strategy, &other.by_strategy),
            (&mut self.by_kind, &other.by_kind),
            (&mut self.events, &other.events),
        ] {
            for (key, count) in theirs {
                *map.entry(key).or_insert(0) += count;
            }
        }
    }
}

/// Runs one input drawn from `ch`: picks a case, mutates its message,
/// delivers it and checks the receiver. Returns what broke.
pub(crate) fn run_input(
    corpus: &Corpus,
    ch: &mut impl Choices,
    checks: Checks,
    stats: &mut Stats,
) -> Result<(), String> {
    let case = &corpus.cases[ch.index(corpus.cases.len())];
    let (bytes, strategy) = mutate(case, corpus, ch);
    let repeat = ch.below(8);
    let from = if ch.one_in(32) { NodeId(ch.below(4) as u32) } else { case.from };
    // With `full_every` above 1, a changed input also gets the full checks
    // once in 64 rolls, so no kind of change goes unchecked for long.
    let full_roll = ch.next_u64();
    stats.inputs += 1;
    *stats.by_kind.entry(case.kind).or_insert(0) += 1;
    *stats.by_strategy.entry(strategy_name(strategy)).or_insert(0) += 1;
    let message = decode_input(case.delivery, &bytes);
    stats.decoded += u64::from(!message.is_empty());
    if std::env::var_os("SCX_FUZZ_VERBOSE").is_some() {
        eprintln!("pfuzz: {} ({} bytes, from {from}, repeat {repeat}): {}", case.name, bytes.len(), describe(&message));
    }

    let mut receiver = case.receiver.clone();
    let mut syncer = case.receiver_syncer.clone();
    deliver(case.delivery, from, &bytes, &mut receiver, &mut syncer);
    match repeat {
        0 => deliver(case.delivery, from, &bytes, &mut receiver, &mut syncer),
        1 => deliver(case.delivery, case.from, &case.bytes, &mut receiver, &mut syncer),
        _ => {}
    }
    let mut events = Vec::new();
    drain(&mut syncer, &mut events);
    for event in &events {
        *stats.events.entry(event_name(event)).or_insert(0) += 1;
    }
    let context = |problem: String| format!("{}: {} input: {problem}", case.name, strategy_name(strategy));

    let status = receiver.status();
    check_never_shrinks(&case.base, &receiver).map_err(context)?;
    let changed = status != case.base.status
        || receiver.pending_lanes() != case.base.pending
        || receiver.held_lanes() != case.base.held_count
        || receiver.prune_index() != case.base.prune_index;
    if !changed {
        return Ok(());
    }
    stats.changed += 1;
    check_held_lanes(&mut receiver).map_err(context)?;
    let universe = &corpus.universes[case.universe];
    let forged: Vec<(NodeId, u64, LaneId)> = receiver
        .canonical_lanes()
        .filter(|(id, _)| !universe.lanes.contains(id))
        .map(|(id, lane)| (lane.author, lane.seq, id))
        .collect();
    stats.forged_lanes += forged.len() as u64;
    let full = stats.changed.is_multiple_of(checks.full_every) || full_roll.is_multiple_of(64);
    if !full {
        return Ok(());
    }
    stats.full_checks += 1;
    check_replay(&mut receiver).map_err(context)?;

    // The trust boundary: the receiver installed a forged snapshot the input carried.
    let carried = message.iter().filter_map(carried_snapshot).filter(|(_, id)| !universe.snapshots.contains(id));
    if carried.into_iter().any(|(lane_index, id)| receiver.snapshots().id_at(lane_index) == Some(id)) {
        stats.forged_snapshots += 1;
        return Ok(());
    }
    let mut peer = case.peer.clone();
    let mut peer_syncer = case.peer_syncer.clone();
    let (converged, suspected) = converge(&mut receiver, &mut syncer, &mut peer, &mut peer_syncer);
    check_held_lanes(&mut receiver).map_err(|problem| context(format!("after honest sessions: {problem}")))?;
    check_held_lanes(&mut peer).map_err(|problem| context(format!("the honest peer, after sessions: {problem}")))?;
    if converged {
        stats.converged += 1;
        return Ok(());
    }
    // Pending forged lanes may have been admitted during the sessions.
    let forks_an_honest_dot = |replica: &mut Replica<World>| {
        replica
            .canonical_lanes()
            .any(|(id, lane)| universe.dots.get(&(lane.author, lane.seq)).is_some_and(|h| *h != id))
    };
    let fork = forks_an_honest_dot(&mut receiver) || forks_an_honest_dot(&mut peer);
    let surfaced = suspected || receiver.forks().1 > 0 || peer.forks().1 > 0;
    if fork && surfaced {
        stats.forks_surfaced += 1;
        return Ok(());
    }
    let (ours, theirs) = (receiver.status(), peer.status());
    let only = |a: &mut Replica<World>, b: &Replica<World>| -> Vec<String> {
        a.canonical_lanes()
            .filter(|(id, _)| !b.holds(id))
            .map(|(id, lane)| format!("{}:{}@{} {}", lane.author.0, lane.seq, lane.lamport, id.short()))
            .collect()
    };
    let (only_ours, only_theirs) = (only(&mut receiver, &peer), only(&mut peer, &receiver));
    let waits: Vec<String> = receiver.missing_parents().iter().map(|id| id.short()).collect();
    Err(context(format!(
        "honest sessions did not converge (fork {fork}, surfaced {surfaced}, {} forged lanes): receiver {} lanes {}, \
         peer {} lanes {}; receiver pending {}, peer pending {}; only the receiver holds {only_ours:?}, only the \
         peer {only_theirs:?}, the receiver waits for {waits:?}",
        forged.len(),
        ours.lane_index,
        ours.chain_hash,
        theirs.lane_index,
        theirs.chain_hash,
        receiver.pending_lanes(),
        peer.pending_lanes(),
    )))
}

/// A deterministic campaign: inputs `first..first + count` of `seed`.
/// Stops at the first broken invariant or panic and says how to replay it.
pub(crate) fn campaign(corpus: &Corpus, seed: u64, first: u64, count: u64, checks: Checks) -> Result<Stats, String> {
    let mut stats = Stats::default();
    for index in first..first + count {
        let mut rng = Rng::new(super::input_seed(seed, index));
        let outcome =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run_input(corpus, &mut rng, checks, &mut stats)));
        let problem = match outcome {
            Ok(Ok(())) => continue,
            Ok(Err(problem)) => problem,
            Err(panic) => {
                let text = panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_default();
                format!("panic: {text}")
            }
        };
        return Err(format!(
            "input {index} of seed {seed} failed: {problem}\n  replay: SCX_FUZZ_SEED={seed} SCX_FUZZ_FIRST={index} \
             SCX_FUZZ_INPUTS=1 cargo test -p scx-engine --release --test integration pfuzz::hostile -- --nocapture"
        ));
    }
    Ok(stats)
}

fn deliver(delivery: Delivery, from: NodeId, bytes: &[u8], replica: &mut Replica<World>, syncer: &mut Syncer) {
    match delivery {
        Delivery::Handle => syncer.handle(from, bytes, replica),
        Delivery::Bundle => {
            let _ = protocol::apply_bundle(bytes, from, replica);
        }
    }
}

fn drain(syncer: &mut Syncer, events: &mut Vec<SyncEvent>) {
    while syncer.poll_transmit().is_some() {}
    while let Some(event) = syncer.poll_event() {
        events.push(event);
    }
}

/// The messages an input holds: the datagram, or a bundle's datagrams
/// (empty when nothing decodes).
pub(crate) fn decode_input(delivery: Delivery, bytes: &[u8]) -> Vec<Message> {
    match delivery {
        Delivery::Handle => protocol::decode(bytes).ok().into_iter().collect(),
        Delivery::Bundle => protocol::read_bundle(bytes)
            .map(|datagrams| datagrams.into_iter().filter_map(|datagram| protocol::decode(datagram).ok()).collect())
            .unwrap_or_default(),
    }
}

/// Lane index and id of the snapshot whose offer a message carries.
fn carried_snapshot(message: &Message) -> Option<(u64, scx_engine::SnapshotId)> {
    let (Message::Delta { snapshot: Some(snapshot), .. } | Message::Lanes { snapshot: Some(snapshot), .. }) = message
    else {
        return None;
    };
    let offer = SnapshotOffer::from_bytes(snapshot.offer.as_deref()?).ok()?;
    Some((offer.header.lane_index, offer.id))
}

/// The version vector never shrinks and every lane held before is still
/// held, or covered by a snapshot that does not name another lane at its dot.
pub(crate) fn check_never_shrinks(base: &Base, replica: &Replica<World>) -> Result<(), String> {
    let now = replica.version_vector();
    for (author, seq) in &base.version_vector {
        let held = now.get(author).copied().unwrap_or(0);
        if held < *seq {
            return Err(format!("version vector shrank: {author} from {seq} to {held}"));
        }
    }
    for (author, seq, id) in &base.held {
        if replica.holds(id) {
            continue;
        }
        let covered = now.get(author).is_some_and(|held| held >= seq);
        match replica.lane_at(*author, *seq) {
            Some(other) if other != *id => {
                return Err(format!("held lane {id} at {author}:{seq} was replaced by {other}"));
            }
            _ if !covered => return Err(format!("held lane {id} at {author}:{seq} was lost")),
            _ => {}
        }
    }
    Ok(())
}

/// Every held lane's id is the hash of its canonical bytes, every parent is
/// held, and the canonical order is strictly increasing by `(lamport, author, id)`.
fn check_held_lanes(replica: &mut Replica<World>) -> Result<(), String> {
    let mut problems = Vec::new();
    let mut parents: Vec<LaneId> = Vec::new();
    let mut previous = None;
    for (id, lane) in replica.canonical_lanes() {
        if lane.id() != id {
            problems.push(format!("lane {id} hashes to {}", lane.id()));
        }
        let key = (lane.lamport, lane.author, id);
        if previous.is_some_and(|previous| previous >= key) {
            problems.push(format!("canonical order goes backwards at {id}"));
        }
        previous = Some(key);
        parents.extend(lane.parents.iter().copied());
    }
    let missing: BTreeSet<LaneId> = parents.into_iter().filter(|parent| !replica.holds(parent)).collect();
    if let Some(parent) = missing.first() {
        problems.push(format!("{} parents are not held, e.g. {parent}", missing.len()));
    }
    match problems.first() {
        Some(problem) => Err(problem.clone()),
        None => Ok(()),
    }
}

/// `status()` equals a replay of the held lanes on a fresh replica, from the
/// receiver's own base snapshot when it stands on one.
fn check_replay(replica: &mut Replica<World>) -> Result<(), String> {
    let status = replica.status();
    let mut fresh = Replica::new(World, replica.config().clone());
    if replica.prune_index() > 0 {
        let snapshot = replica.snapshot_transfer().clone();
        fresh
            .install_snapshot(&snapshot)
            .map_err(|error| format!("the receiver's own base snapshot does not install: {error}"))?;
    }
    let lanes: Vec<_> = replica.canonical_lanes().map(|(_, lane)| lane.clone()).collect();
    for lane in lanes {
        fresh.insert(lane).map_err(|error| format!("a held lane does not replay: {error}"))?;
    }
    let replayed = fresh.status();
    if !same_position(&replayed, &status) {
        return Err(format!(
            "status is lane {} chain {} digest {}, a replay gives lane {} chain {} digest {}",
            status.lane_index,
            status.chain_hash,
            status.state_digest,
            replayed.lane_index,
            replayed.chain_hash,
            replayed.state_digest,
        ));
    }
    Ok(())
}

fn same_position(a: &Status, b: &Status) -> bool {
    a.lane_index == b.lane_index && a.chain_hash == b.chain_hash && a.state_digest == b.state_digest
}

/// Alternating honest sessions (receiver first) until both sides have equal
/// hashes, with the driver's timeouts between sessions. Returns whether they
/// converged and whether a fork was suspected on the way.
fn converge(
    receiver: &mut Replica<World>,
    receiver_syncer: &mut Syncer,
    peer: &mut Replica<World>,
    peer_syncer: &mut Syncer,
) -> (bool, bool) {
    let mut suspected = false;
    let (r, p) = (receiver.node(), peer.node());
    for round in 0..8 {
        if same_position(&receiver.status(), &peer.status()) {
            return (true, suspected);
        }
        let mut nodes = [(r, &mut *receiver, &mut *receiver_syncer), (p, &mut *peer, &mut *peer_syncer)];
        if round % 2 == 1 {
            nodes.swap(0, 1);
        }
        let [(_, a, a_syncer), (b_node, b, b_syncer)] = &mut nodes;
        a_syncer.initiate(*b_node, a);
        let mut in_flight: Vec<(usize, Vec<u8>)> = Vec::new();
        for _ in 0..64 {
            while let Some((_, bytes)) = a_syncer.poll_transmit() {
                in_flight.push((1, bytes));
            }
            while let Some((_, bytes)) = b_syncer.poll_transmit() {
                in_flight.push((0, bytes));
            }
            if in_flight.is_empty() {
                break;
            }
            let (to, bytes) = in_flight.remove(0);
            if to == 1 {
                let from = a.node();
                b_syncer.handle(from, &bytes, b);
            } else {
                let from = b.node();
                a_syncer.handle(from, &bytes, a);
            }
        }
        for (_, _, syncer) in nodes.iter_mut() {
            let open: Vec<(NodeId, u64)> = syncer.open_sessions().map(|(peer, id, _, _)| (peer, id)).collect();
            for (peer, id) in open {
                syncer.abandon(peer, id, "fuzz: timeout");
            }
            while let Some(event) = syncer.poll_event() {
                // A fork surfaces as a suspicion from a summary, or as a
                // snapshot refused for naming another lane at a held dot.
                suspected |= matches!(
                    event,
                    SyncEvent::ForkSuspected { .. }
                        | SyncEvent::Diverged { error: scx_engine::SnapshotError::ForkedTip { .. }, .. }
                );
            }
        }
    }
    (same_position(&receiver.status(), &peer.status()), suspected)
}

fn strategy_name(strategy: Strategy) -> &'static str {
    match strategy {
        Strategy::Verbatim => "verbatim",
        Strategy::Structured => "structured",
        Strategy::Bytes => "bytes",
        Strategy::Both => "structured+bytes",
    }
}

fn event_name(event: &SyncEvent) -> &'static str {
    match event {
        SyncEvent::Completed { .. } => "completed",
        SyncEvent::Failed { .. } => "failed",
        SyncEvent::BadMessage { .. } => "bad-message",
        SyncEvent::ForkSuspected { .. } => "fork-suspected",
        SyncEvent::Diverged { .. } => "diverged",
        SyncEvent::LaneRejected { .. } => "lane-rejected",
    }
}

/// A short account of the messages of an input, for replaying it by hand.
fn describe(messages: &[Message]) -> String {
    if messages.is_empty() {
        return "undecodable".into();
    }
    messages.iter().map(describe_one).collect::<Vec<_>>().join(" | ")
}

fn describe_one(message: &Message) -> String {
    let snapshot = |snapshot: &Option<WireSnapshot>| match snapshot {
        None => "no snapshot".to_owned(),
        Some(part) => {
            let offer = match part.offer.as_deref().map(SnapshotOffer::from_bytes) {
                None => "no offer".to_owned(),
                Some(Ok(offer)) => format!(
                    "offer at lane {} max lamport {} state {} B in {} B chunks, tips {:?} boundary {:?}",
                    offer.header.lane_index,
                    offer.header.max_lamport,
                    offer.state_len,
                    offer.chunk_bytes,
                    offer.header.tips.iter().map(|t| (t.author.0, t.seq, t.lamport, t.id.short())).collect::<Vec<_>>(),
                    offer
                        .header
                        .boundary
                        .iter()
                        .map(|t| (t.author.0, t.seq, t.lamport, t.id.short()))
                        .collect::<Vec<_>>(),
                ),
                Some(Err(error)) => format!("bad offer: {error}"),
            };
            format!("snapshot {} chunk {} ({} B), {offer}", part.id.short(), part.chunk_index, part.chunk.len())
        }
    };
    let lanes = |batch: &[u8]| match protocol::decode_batch::<scx_engine::WorldOp>(batch) {
        Ok(lanes) => lanes
            .iter()
            .map(|bytes| match scx_engine::Lane::<scx_engine::WorldOp>::decode(bytes) {
                Ok((id, lane)) => format!("{}:{}@{} {}", lane.author.0, lane.seq, lane.lamport, id.short()),
                Err(error) => format!("bad lane {error}"),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Err(error) => format!("bad batch: {error}"),
    };
    match message {
        Message::Delta { session, snapshot: s, lanes: l, more, .. } => {
            format!("delta {session:#x} more {more} {}; lanes [{}]", snapshot(s), lanes(l))
        }
        Message::Lanes { session, snapshot: s, lanes: l, more, need, .. } => {
            format!("lanes {session:#x} more {more} need {} {}; lanes [{}]", need.len(), snapshot(s), lanes(l))
        }
        Message::Supply { session, lanes: l } => format!("supply {session:#x} lanes [{}]", lanes(l)),
        other => format!("{other:?}").chars().take(400).collect(),
    }
}
