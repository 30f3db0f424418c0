//! Engine throughput: in-order replay, random-order insertion, late lanes.
//! Targets (issue 3): replay >= 2,000,000 ops/s on one core; insert + order
//! of 100,000 shuffled lanes >= 300,000 lanes/s. Run: `cargo bench -p scx-engine --bench engine`.

mod support;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use scx_engine::{Replica, World};
use support::{Rng, config, lanes};

const LANES: usize = 100_000;

fn replay(c: &mut Criterion) {
    let mut all = Vec::with_capacity(LANES);
    lanes(LANES, |lane| all.push(lane));
    let mut group = c.benchmark_group("replay");
    group.sample_size(10);
    group.throughput(Throughput::Elements((LANES * 4) as u64));
    group.bench_function("insert in order + status (100k lanes x 4 ops)", |b| {
        b.iter_batched(
            || all.clone(),
            |lanes| {
                let mut replica = Replica::new(World, config(0));
                for lane in lanes {
                    replica.insert(lane).unwrap();
                }
                (replica.status(), replica)
            },
            BatchSize::LargeInput,
        );
    });
    group.bench_function("status only: order, replay, chain, digest (100k lanes x 4 ops)", |b| {
        b.iter_batched(
            || {
                let mut replica = Replica::new(World, config(0));
                for lane in &all {
                    replica.insert(lane.clone()).unwrap();
                }
                replica
            },
            |mut replica| {
                let status = replica.status();
                (status, replica)
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();

    let mut shuffled = all.clone();
    let mut rng = Rng(99);
    for i in (1..shuffled.len()).rev() {
        let j = (rng.next() % (i as u64 + 1)) as usize;
        shuffled.swap(i, j);
    }
    let mut group = c.benchmark_group("random order");
    group.sample_size(10);
    group.throughput(Throughput::Elements(LANES as u64));
    group.bench_function("insert shuffled + status (100k lanes)", |b| {
        b.iter_batched(
            || shuffled.clone(),
            |lanes| {
                let mut replica = Replica::new(World, config(0));
                for lane in lanes {
                    replica.insert(lane).unwrap();
                }
                (replica.status(), replica)
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();

    let mut group = c.benchmark_group("late lane");
    group.sample_size(20);
    let base = &all[..10_000];
    // The late lane's author is a fifth member (admission refuses
    // non-members) that wrote nothing before, so nothing is stable yet and
    // the late lane is admitted, not refused as sorting inside the stable prefix.
    let late_config = || {
        let mut config = config(0);
        config.members = (0..5).map(scx_engine::NodeId).collect();
        config
    };
    let mut replica = Replica::new(World, late_config());
    for lane in base {
        replica.insert(lane.clone()).unwrap();
    }
    // A concurrent lane by a fifth author over the lane 51 from the tip: it
    // sorts about 50 lanes before the tip, so it forces a rollback.
    let anchor = &base[base.len() - 51];
    let late = scx_engine::Lane::new(
        scx_engine::NodeId(4),
        1,
        anchor.lamport + 1,
        vec![anchor.id()],
        vec![scx_engine::WorldOp::Add { key: 1, delta: 1 }],
    );
    group.bench_function("one lane 50 before the tip of 10k: rollback + suffix replay", |b| {
        b.iter_batched(
            || {
                let mut replica = Replica::new(World, late_config());
                for lane in base {
                    replica.insert(lane.clone()).unwrap();
                }
                let _ = replica.status();
                replica
            },
            |mut replica| {
                replica.insert(late.clone()).unwrap();
                let status = replica.status();
                (status, replica)
            },
            BatchSize::LargeInput,
        );
    });
    group.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
