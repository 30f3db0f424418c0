//! The sync protocol against Automerge's (issue 4), side by side in one run.
//!
//! Both systems hold the same logical history: one Automerge change = one
//! SCX lane of 4 small puts over 100 keys. Each case starts a fresh session
//! (SCX: one `Syncer` session; Automerge: fresh `sync::State`s) and runs it
//! to quiescence. Printed per system: wire bytes, messages, round trips
//! (messages / 2, rounded up), and the bytes of the lanes/changes each side
//! was actually missing. Run: `cargo bench -p scx-engine --bench protocol`.

use automerge::sync::{Message as AmMessage, State, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ROOT};
use scx_engine::protocol::{SyncEvent, Syncer};
use scx_engine::{NodeId, Replica, ReplicaConfig, World, WorldOp};

struct Figures {
    wire_bytes: u64,
    messages: u64,
    missing_bytes: u64,
}

impl Figures {
    fn round_trips(&self) -> u64 {
        self.messages.div_ceil(2)
    }
}

fn replica(node: u32) -> Replica<World> {
    let mut config = ReplicaConfig::new(NodeId(node), [NodeId(0), NodeId(1)]);
    config.snapshot_interval = 1024;
    config.checkpoint_interval = 64;
    Replica::new(World, config)
}

fn puts(seed: u64, state: &scx_engine::WorldState) -> Vec<(u32, u64, WorldOp)> {
    (0..4u64)
        .map(|i| {
            let mixed = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15).rotate_left((i * 13) as u32) ^ i;
            let key = (mixed % 100) as u32;
            let value = mixed >> 40;
            (key, value, state.put(key, value))
        })
        .collect()
}

/// Writes one change/lane to both systems' documents of one side.
fn write(scx: &mut Replica<World>, am: &mut AutoCommit, seed: u64) {
    let ops = puts(seed, scx.state());
    for (key, value, _) in &ops {
        am.put(ROOT, format!("k{key}"), *value as i64).expect("a put on the root map");
    }
    am.commit();
    scx.create_lane(ops.into_iter().map(|(_, _, op)| op).collect()).expect("an own lane");
}

struct Case {
    name: &'static str,
    shared: u64,
    a_new: u64,
    b_new: u64,
}

fn build(case: &Case) -> (Replica<World>, Replica<World>, AutoCommit, AutoCommit) {
    let (mut scx_a, mut scx_b) = (replica(0), replica(1));
    let mut am_a = AutoCommit::new().with_actor(ActorId::from(&[0xaa][..]));
    for seed in 0..case.shared {
        write(&mut scx_a, &mut am_a, seed);
    }
    let lanes: Vec<_> = scx_a.canonical_lanes().map(|(_, lane)| lane.clone()).collect();
    for lane in lanes {
        scx_b.insert(lane).expect("shared lanes are valid");
    }
    let mut am_b = am_a.fork().with_actor(ActorId::from(&[0xbb][..]));
    for seed in 0..case.a_new {
        write(&mut scx_a, &mut am_a, 1_000_000 + seed);
    }
    for seed in 0..case.b_new {
        write(&mut scx_b, &mut am_b, 2_000_000 + seed);
    }
    (scx_a, scx_b, am_a, am_b)
}

fn sync_scx(a: &mut Replica<World>, b: &mut Replica<World>) -> Figures {
    let (mut syncer_a, mut syncer_b) = (Syncer::new(NodeId(0)), Syncer::new(NodeId(1)));
    let mut figures = Figures { wire_bytes: 0, messages: 0, missing_bytes: 0 };
    // The side that is behind asks (as a node catching up would).
    syncer_b.initiate(NodeId(0), b);
    loop {
        let mut moved = false;
        while let Some((_, bytes)) = syncer_b.poll_transmit() {
            figures.wire_bytes += bytes.len() as u64;
            figures.messages += 1;
            syncer_a.handle(NodeId(1), &bytes, a);
            moved = true;
        }
        while let Some((_, bytes)) = syncer_a.poll_transmit() {
            figures.wire_bytes += bytes.len() as u64;
            figures.messages += 1;
            syncer_b.handle(NodeId(0), &bytes, b);
            moved = true;
        }
        if !moved {
            break;
        }
    }
    for syncer in [&mut syncer_a, &mut syncer_b] {
        while let Some(event) = syncer.poll_event() {
            if let SyncEvent::Completed { metrics, .. } = event {
                figures.missing_bytes += metrics.bytes_missing;
            }
        }
    }
    assert_eq!(a.status(), b.status(), "SCX replicas converge in one session");
    figures
}

fn sync_automerge(a: &mut AutoCommit, b: &mut AutoCommit) -> Figures {
    let missing_bytes: u64 = a
        .get_changes_added(b)
        .iter()
        .chain(b.get_changes_added(a).iter())
        .map(|change| change.raw_bytes().len() as u64)
        .sum();
    let (mut state_a, mut state_b) = (State::new(), State::new());
    let mut figures = Figures { wire_bytes: 0, messages: 0, missing_bytes };
    loop {
        let mut moved = false;
        if let Some(message) = b.sync().generate_sync_message(&mut state_b) {
            let bytes = message.encode();
            figures.wire_bytes += bytes.len() as u64;
            figures.messages += 1;
            a.sync()
                .receive_sync_message(&mut state_a, AmMessage::decode(&bytes).expect("own encoding"))
                .expect("valid sync");
            moved = true;
        }
        if let Some(message) = a.sync().generate_sync_message(&mut state_a) {
            let bytes = message.encode();
            figures.wire_bytes += bytes.len() as u64;
            figures.messages += 1;
            b.sync()
                .receive_sync_message(&mut state_b, AmMessage::decode(&bytes).expect("own encoding"))
                .expect("valid sync");
            moved = true;
        }
        if !moved {
            break;
        }
    }
    assert_eq!(a.get_heads(), b.get_heads(), "Automerge documents converge");
    figures
}

fn main() {
    let cases = [
        Case { name: "(a) in sync, 1,000 shared", shared: 1_000, a_new: 0, b_new: 0 },
        Case { name: "(b) one peer 10,000 behind", shared: 0, a_new: 10_000, b_new: 0 },
        Case { name: "(c) both 100 new, 1,000 shared", shared: 1_000, a_new: 100, b_new: 100 },
        Case { name: "(d) both 100 new, 10,000 shared", shared: 10_000, a_new: 100, b_new: 100 },
        Case { name: "(e) one peer 1 behind, 10,000 shared", shared: 10_000, a_new: 1, b_new: 0 },
    ];
    println!(
        "{:<38} | {:>12} {:>5} {:>12} {:>7} | {:>12} {:>5} {:>12} {:>7}",
        "case", "SCX wire B", "RT", "missing B", "ratio", "Automerge B", "RT", "missing B", "ratio"
    );
    for case in &cases {
        let (mut scx_a, mut scx_b, mut am_a, mut am_b) = build(case);
        let scx = sync_scx(&mut scx_a, &mut scx_b);
        let am = sync_automerge(&mut am_a, &mut am_b);
        let ratio = |f: &Figures| {
            if f.missing_bytes == 0 {
                "-".to_owned()
            } else {
                format!("{:.3}", f.wire_bytes as f64 / f.missing_bytes as f64)
            }
        };
        println!(
            "{:<38} | {:>12} {:>5} {:>12} {:>7} | {:>12} {:>5} {:>12} {:>7}",
            case.name,
            scx.wire_bytes,
            scx.round_trips(),
            scx.missing_bytes,
            ratio(&scx),
            am.wire_bytes,
            am.round_trips(),
            am.missing_bytes,
            ratio(&am)
        );
    }
}
