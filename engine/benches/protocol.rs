//! The sync protocol against Automerge's (issue 4), side by side in one run.
//!
//! Both systems hold the same logical history: one Automerge change = one
//! SCX lane of 4 small puts over 100 keys. Each case starts a fresh session
//! (SCX: one `Syncer` session; Automerge: fresh `sync::State`s) and runs it
//! to quiescence. Printed per system: wire bytes, messages, round trips
//! (messages / 2, rounded up), and the bytes of the lanes/changes each side
//! was actually missing. Then the compressors a batch could use, on the
//! columns of case (b) and of prefixes of it: the measurement that picked
//! zstd. Run: `cargo bench -p scx-engine --bench protocol`.

#![allow(clippy::disallowed_methods, reason = "a benchmark measures the compressors' wall time")]

use automerge::sync::{Message as AmMessage, State, SyncDoc};
use automerge::transaction::Transactable;
use automerge::{ActorId, AutoCommit, ROOT};
use scx_engine::protocol::{SyncEvent, Syncer};
use scx_engine::{NodeId, Replica, ReplicaConfig, World, WorldOp};
use std::time::{Duration, Instant};

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
    compressors();
}

/// The columns of a batch of the first `count` lanes of case (b), raw.
fn columns(count: usize) -> Vec<u8> {
    let (mut scx_a, ..) = build(&Case { name: "", shared: 0, a_new: count as u64, b_new: 0 });
    let lanes: Vec<_> = scx_a.canonical_lanes().map(|(id, lane)| (id, lane.clone())).collect();
    let refs: Vec<_> = lanes.iter().map(|(id, lane)| (*id, lane)).collect();
    let batch = scx_engine::protocol::encode_batch(&refs);
    // A compressed batch: version, codec 1, raw length, zstd frame.
    assert_eq!(batch[1], 1, "a batch of {count} lanes is compressed");
    let mut reader = scx_engine::codec::Reader::new(&batch[2..]);
    let raw_len = reader.varint("raw length").expect("the batch's own encoding") as usize;
    zstd::bulk::decompress(&batch[2 + reader.offset()..], raw_len).expect("the batch's own encoding")
}

/// Mean time of `f` over enough calls to fill about 200 ms.
fn time<T>(mut f: impl FnMut() -> T) -> (T, Duration) {
    let start = Instant::now();
    let mut out = f();
    let once = start.elapsed().max(Duration::from_nanos(100));
    let calls = (Duration::from_millis(200).as_nanos() / once.as_nanos()).clamp(1, 10_000) as u32;
    let start = Instant::now();
    for _ in 0..calls {
        out = f();
    }
    (out, start.elapsed() / calls)
}

fn compressors() {
    println!();
    println!("{:<28} | {:<36} | 100 lanes: bytes, compress", "compressor", "(b): bytes, compress, decompress");
    let bodies: Vec<Vec<u8>> = [10_000, 100].into_iter().map(columns).collect();
    type Compress = fn(&[u8]) -> Vec<u8>;
    type Decompress = fn(&[u8], usize) -> Vec<u8>;
    let candidates: [(&str, Compress, Decompress); 6] = [
        ("zstd 3 (chosen)", |b| zstd::bulk::compress(b, 3).unwrap(), |c, n| zstd::bulk::decompress(c, n).unwrap()),
        ("zstd 1", |b| zstd::bulk::compress(b, 1).unwrap(), |c, n| zstd::bulk::decompress(c, n).unwrap()),
        (
            "deflate 6 (miniz_oxide)",
            |b| miniz_oxide::deflate::compress_to_vec(b, 6),
            |c, _| miniz_oxide::inflate::decompress_to_vec(c).unwrap(),
        ),
        (
            "deflate 1 (miniz_oxide)",
            |b| miniz_oxide::deflate::compress_to_vec(b, 1),
            |c, _| miniz_oxide::inflate::decompress_to_vec(c).unwrap(),
        ),
        ("lz4 (lz4_flex)", lz4_flex::compress, |c, n| lz4_flex::decompress(c, n).unwrap()),
        (
            "zstd fastest (ruzstd)",
            |b| ruzstd::encoding::compress_to_vec(b, ruzstd::encoding::CompressionLevel::Fastest),
            |c, n| zstd::bulk::decompress(c, n).unwrap(),
        ),
    ];
    for (name, compress, decompress) in candidates {
        let (big, compress_time) = time(|| compress(&bodies[0]));
        let (_, decompress_time) = time(|| decompress(&big, bodies[0].len()));
        let (small, small_time) = time(|| compress(&bodies[1]));
        println!(
            "{:<28} | {:>10} B {:>10.2?} {:>10.2?} | {:>6} B of {} {:>9.1?}",
            name,
            big.len(),
            compress_time,
            decompress_time,
            small.len(),
            bodies[1].len(),
            small_time,
        );
    }
}
