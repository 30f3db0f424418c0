//! Harness throughput and scale (issue 5), measured in one run:
//! 1. seeds/s for 5 nodes, 60 s simulated, faults on, checkers on (one core);
//! 2. cost per delivered message vs a bare madsim send/recv loop, the two
//!    measured in alternating blocks in one run;
//! 3. peak memory of a 1,000-node run;
//! 4. sync intervals a 100-node p2p cluster needs to converge after a heal.
//!
//! Run: `cargo bench -p scx-sim --bench harness` (SCX_BENCH_QUICK=1 for a short pass).
//! Wall-clock reads are the point of a benchmark; none reaches a simulation.
#![allow(clippy::disallowed_methods, reason = "a benchmark measures wall time outside the simulations")]

use madsim::net::Endpoint;
use madsim::runtime::{Handle, Runtime};
use scx_sim::runner::{RunOptions, run};
use scx_sim::spec::{FaultKind, FaultSpec, RunSpec, Topology};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn five_node_faulty(seed: u64) -> RunSpec {
    let mut spec = RunSpec::basic("bench-5-nodes", seed, 5);
    spec.duration = Duration::from_secs(50);
    spec.settle = Duration::from_secs(10);
    spec.network.loss = 0.01;
    spec.network.duplicate = 0.01;
    spec.workload.ops_per_sec = 10.0;
    let secs = Duration::from_secs;
    spec.faults = vec![
        FaultSpec {
            start: secs(10),
            end: Some(secs(20)),
            kind: FaultKind::Partition { groups: vec![vec![0, 1], vec![2, 3, 4]] },
        },
        FaultSpec {
            start: secs(25),
            end: Some(secs(30)),
            kind: FaultKind::Crash { nodes: vec![(seed % 5) as u32], tear: true, rot: false },
        },
        FaultSpec { start: secs(35), end: Some(secs(40)), kind: FaultKind::Loss { probability: 0.3 } },
    ];
    spec
}

/// Bare madsim: 5 nodes, each sending `per_node` 100-byte datagrams to random
/// peers through a spawned delivery task (as SCX nodes do), with receive
/// loops. Returns (messages delivered, wall seconds).
fn bare_madsim(per_node: u64) -> (u64, f64) {
    let started = Instant::now();
    let runtime = Runtime::with_seed_and_config(1, madsim::Config::default());
    let delivered = runtime.block_on(async move {
        let handle = Handle::current();
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let addr = |i: u32| -> SocketAddr { format!("10.9.0.{}:7000", i + 1).parse().expect("valid address") };
        for i in 0..5u32 {
            let counter = counter.clone();
            handle
                .create_node()
                .name(format!("b{i}"))
                .ip(addr(i).ip())
                .init(move || {
                    let counter = counter.clone();
                    async move {
                        let endpoint = Endpoint::bind(addr(i)).await.expect("bind");
                        for _ in 0..4 {
                            let (endpoint, counter) = (endpoint.clone(), counter.clone());
                            madsim::task::spawn(async move {
                                while endpoint.recv_from_raw(1).await.is_ok() {
                                    counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                                }
                            });
                        }
                        for n in 0..per_node {
                            let to = addr((i + 1 + (n % 4) as u32) % 5);
                            let endpoint = endpoint.clone();
                            madsim::task::spawn(async move {
                                madsim::time::sleep(Duration::from_millis(1 + n % 20)).await;
                                let _ = endpoint.send_to_raw(to, 1, Box::new(vec![0u8; 100])).await;
                            });
                            madsim::time::sleep(Duration::from_millis(10)).await;
                        }
                        std::future::pending::<()>().await;
                    }
                })
                .build();
        }
        madsim::time::sleep(Duration::from_millis(10 * per_node + 200)).await;
        counter.load(std::sync::atomic::Ordering::Relaxed)
    });
    (delivered, started.elapsed().as_secs_f64())
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0)
}

fn main() {
    let quick = std::env::var_os("SCX_BENCH_QUICK").is_some();

    // 1 and 2, interleaved: a block of SCX seeds, then a block of bare
    // madsim, and again, so that the machine's noise falls on both alike.
    // Both sides divide by the messages delivered to a receiver.
    let (rounds, seeds_per_round, bare_per_node) = if quick { (3, 2, 400) } else { (8, 5, 2_000) };
    let (mut scx_wall, mut scx_delivered, mut passed) = (0.0f64, 0u64, 0u64);
    let (mut bare_wall, mut bare_delivered) = (0.0f64, 0u64);
    let mut round_ratios = Vec::new();
    for round in 0..rounds {
        let started = Instant::now();
        let mut delivered = 0;
        for seed in round * seeds_per_round..(round + 1) * seeds_per_round {
            let outcome = run(&five_node_faulty(seed), RunOptions::default());
            delivered += outcome.metrics.messages_delivered;
            passed += u64::from(outcome.passed());
        }
        let wall = started.elapsed().as_secs_f64();
        let (bare, bare_seconds) = bare_madsim(bare_per_node);
        round_ratios.push((wall / delivered as f64) / (bare_seconds / bare as f64));
        (scx_wall, scx_delivered) = (scx_wall + wall, scx_delivered + delivered);
        (bare_wall, bare_delivered) = (bare_wall + bare_seconds, bare_delivered + bare);
    }
    let seeds = rounds * seeds_per_round;
    let seeds_per_sec = seeds as f64 / scx_wall;
    println!(
        "1. 5 nodes, 60 s simulated, faults on, checkers on: {seeds} seeds in {scx_wall:.2} s = {seeds_per_sec:.1} seeds/s on one core ({passed} passed; target >= 40)"
    );
    let scx_ns = scx_wall * 1e9 / scx_delivered as f64;
    let bare_ns = bare_wall * 1e9 / bare_delivered as f64;
    round_ratios.sort_by(f64::total_cmp);
    println!(
        "2. cost per delivered message, {rounds} rounds interleaved: SCX {scx_ns:.0} ns (engine, protocol, checkers included; {scx_delivered} messages), bare madsim {bare_ns:.0} ns ({bare_delivered} messages): ratio {:.2}x, rounds {:.2}x to {:.2}x (target <= 3x)",
        scx_ns / bare_ns,
        round_ratios[0],
        round_ratios[round_ratios.len() - 1]
    );

    // 4. 100-node p2p convergence after a heal, in sync intervals.
    let mut intervals = Vec::new();
    for seed in 0..if quick { 3 } else { 11 } {
        let mut spec = RunSpec::basic("bench-100-p2p", seed, 100);
        spec.topology = Topology::PeerToPeer;
        spec.sync_interval = Duration::from_millis(200);
        spec.sample_interval = Duration::from_millis(20);
        spec.duration = Duration::from_secs(4);
        spec.settle = Duration::from_secs(20);
        spec.workload.ops_per_sec = 1.0;
        let minority: Vec<u32> = (0..30).collect();
        let majority: Vec<u32> = (30..100).collect();
        spec.faults = vec![FaultSpec {
            start: Duration::from_secs(1),
            end: Some(Duration::from_secs(4)),
            kind: FaultKind::Partition { groups: vec![minority, majority] },
        }];
        let outcome = run(&spec, RunOptions::default());
        if let Some(ms) = outcome.converged_after_last_write_ms() {
            intervals.push(ms as f64 / 200.0);
        }
    }
    intervals.sort_by(f64::total_cmp);
    let median = intervals.get(intervals.len() / 2).copied().unwrap_or(f64::NAN);
    println!(
        "4. 100-node p2p, one random peer per 200 ms: converged {:.1} sync intervals after the heal (median of {}; all: {intervals:?}; target <= 10)",
        median,
        intervals.len()
    );

    // 3. 1,000 nodes in one run.
    let before = peak_rss_mib();
    let started = Instant::now();
    let mut spec = RunSpec::basic("bench-1000-nodes", 1, 1000);
    spec.topology = Topology::PeerToPeer;
    spec.sync_interval = Duration::from_millis(500);
    spec.sample_interval = Duration::from_millis(500);
    spec.duration = Duration::from_secs(5);
    spec.settle = Duration::from_secs(30);
    spec.workload.ops_per_sec = 0.2;
    let outcome = run(&spec, RunOptions::default());
    println!(
        "3. 1,000 nodes, p2p, 5 s of writes + settle: {} in {:.1} s wall, converged {:?} ms after the last write; peak RSS {:.0} MiB (before: {before:.0} MiB; target <= 8 GiB)",
        if outcome.passed() { "passed" } else { "FAILED" },
        started.elapsed().as_secs_f64(),
        outcome.converged_after_last_write_ms(),
        peak_rss_mib()
    );
}
