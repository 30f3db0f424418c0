//! Scale (issue "Performance", part 1): the shipped
//! `scenarios/large/large-p2p-10k.toml` (p2p gossip, about 250 lanes written
//! in 5 s, then up to 60 s of settle) at 1,000, 3,000 and 10,000 nodes,
//! the rate per node scaled so the cluster writes as many lanes at every
//! size. Prints each run's verdict, wall time, peak RSS, messages and bytes
//! per message, and the growth exponent of peak memory,
//! log(mem_last / mem_first) / log(nodes_last / nodes_first) (target: at
//! most 1.1 from 1,000 to 10,000 nodes).
//!
//! Each size runs in its own process (this bench re-runs itself), so each
//! peak RSS (`VmHWM`) is that run's alone. The parent kills a child whose
//! RSS passes `SCX_BENCH_RSS_LIMIT_GIB` (default 18) and reports it.
//!
//! Run: `cargo bench -p scx-sim --bench scale` (`SCX_BENCH_NODES=1000,3000`
//! to choose the sizes; `SCX_BENCH_SEED` for another seed). Wall times are
//! those of this machine as it is: the figures in BENCHMARKS.md say how
//! busy it was.
#![allow(clippy::disallowed_methods, reason = "a benchmark measures wall time outside the simulations")]

use scx_sim::runner::{RunOptions, run};
use scx_sim::scenario::Scenario;
use scx_sim::spec::RunSpec;
use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The scenario measured, relative to the workspace.
const SCENARIO: &str = "scenarios/large/large-p2p-10k.toml";

/// The scenario's plan at `nodes` nodes: the rate per node scaled by the
/// scenario's nodes over `nodes`, so the cluster writes as many lanes.
fn scale_spec(nodes: u32, seed: u64) -> RunSpec {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(SCENARIO);
    let scenario = Scenario::from_path(&path).unwrap_or_else(|error| panic!("{SCENARIO}: {error}"));
    let mut spec = scx_sim::plan::resolve(&scenario, seed, None);
    assert!(spec.faults.is_empty(), "{SCENARIO} has faults naming nodes, which this bench cannot scale");
    spec.workload.ops_per_sec *= f64::from(spec.nodes) / f64::from(nodes);
    spec.name = format!("{}@{nodes}", spec.name);
    spec.nodes = nodes;
    spec
}

fn status_kib(pid: &str, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|line| line.strip_prefix(field))?.trim().trim_end_matches("kB").trim().parse().ok()
}

/// CPU seconds this process used, user and system: on a machine shared with
/// other work the wall time says how busy it was, this says what the run cost.
fn cpu_seconds() -> f64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    #[allow(unsafe_code, reason = "getrusage fills a struct we own; the only way to read the process's CPU time")]
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_SELF is a valid selector.
    let usage = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr()), 0);
        usage.assume_init()
    };
    let seconds = |time: libc::timeval| time.tv_sec as f64 + time.tv_usec as f64 / 1e6;
    seconds(usage.ru_utime) + seconds(usage.ru_stime)
}

/// In the child: one run, then one `RESULT` line.
fn measure_one(nodes: u32, seed: u64) {
    let spec = scale_spec(nodes, seed);
    let started = Instant::now();
    let outcome = run(&spec, RunOptions::default());
    let wall = started.elapsed().as_secs_f64();
    let metrics = outcome.metrics;
    println!(
        "RESULT nodes={nodes} passed={} wall_s={wall:.1} cpu_s={:.1} peak_rss_kib={} lanes={} messages={} bytes_sent={} converged_after_write_ms={}",
        outcome.passed(),
        cpu_seconds(),
        status_kib("self", "VmHWM:").unwrap_or(0),
        metrics.lanes,
        metrics.messages_sent,
        metrics.bytes_sent,
        outcome.converged_after_last_write_ms().map_or_else(|| "none".to_owned(), |ms| ms.to_string()),
    );
}

fn field<'a>(line: &'a str, name: &str) -> Option<&'a str> {
    line.split(' ').find_map(|part| part.strip_prefix(name)?.strip_prefix('='))
}

/// In the parent: runs one size as a child, killing it above the RSS limit.
fn run_child(nodes: u32, seed: u64, limit_kib: u64) -> Option<String> {
    let mut child = Command::new(std::env::current_exe().expect("the bench knows its path"))
        .env("SCX_BENCH_CHILD_NODES", nodes.to_string())
        .env("SCX_BENCH_SEED", seed.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the bench re-runs itself");
    let pid = child.id().to_string();
    let mut most_kib = 0;
    loop {
        if child.try_wait().expect("the child can be waited for").is_some() {
            break;
        }
        let rss = status_kib(&pid, "VmRSS:").unwrap_or(0);
        most_kib = most_kib.max(rss);
        if rss > limit_kib {
            let _ = child.kill();
            let _ = child.wait();
            println!("{nodes} nodes: killed at {:.1} GiB of RSS (limit {:.1} GiB)", gib(rss), gib(limit_kib));
            return None;
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let mut output = String::new();
    child.stdout.take().expect("piped").read_to_string(&mut output).expect("utf-8 output");
    let line = output.lines().find(|line| line.starts_with("RESULT"))?.to_owned();
    Some(line)
}

fn gib(kib: u64) -> f64 {
    kib as f64 / (1024.0 * 1024.0)
}

fn main() {
    let seed = std::env::var("SCX_BENCH_SEED").ok().and_then(|seed| seed.parse().ok()).unwrap_or(0);
    if let Some(nodes) = std::env::var("SCX_BENCH_CHILD_NODES").ok().and_then(|nodes| nodes.parse().ok()) {
        measure_one(nodes, seed);
        return;
    }
    let sizes: Vec<u32> = std::env::var("SCX_BENCH_NODES")
        .unwrap_or_else(|_| "1000,3000,10000".to_owned())
        .split(',')
        .map(|size| size.trim().parse().expect("SCX_BENCH_NODES is a list of node counts"))
        .collect();
    let limit_gib: f64 =
        std::env::var("SCX_BENCH_RSS_LIMIT_GIB").ok().and_then(|limit| limit.parse().ok()).unwrap_or(18.0);
    let limit_kib = (limit_gib * 1024.0 * 1024.0) as u64;
    println!(
        "| nodes | verdict | wall | CPU | peak RSS | lanes | messages | bytes sent | bytes/message | converged after last write |"
    );
    println!("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let mut peaks = Vec::new();
    for nodes in sizes {
        let Some(line) = run_child(nodes, seed, limit_kib) else { continue };
        let number = |name| field(&line, name).and_then(|value| value.parse::<u64>().ok()).unwrap_or(0);
        let (peak_kib, messages, bytes) = (number("peak_rss_kib"), number("messages"), number("bytes_sent"));
        println!(
            "| {nodes} | {} | {} s | {} s | {:.2} GiB | {} | {messages} | {bytes} | {:.0} | {} ms |",
            if field(&line, "passed") == Some("true") { "pass" } else { "FAIL" },
            field(&line, "wall_s").unwrap_or("?"),
            field(&line, "cpu_s").unwrap_or("?"),
            gib(peak_kib),
            number("lanes"),
            bytes as f64 / messages.max(1) as f64,
            field(&line, "converged_after_write_ms").unwrap_or("?"),
        );
        peaks.push((nodes, peak_kib));
    }
    if let (Some(&(first_nodes, first)), Some(&(last_nodes, last))) = (peaks.first(), peaks.last())
        && last_nodes > first_nodes
    {
        let exponent = (last as f64 / first as f64).ln() / (f64::from(last_nodes) / f64::from(first_nodes)).ln();
        println!(
            "peak memory grows as nodes^{exponent:.2} from {first_nodes} to {last_nodes} nodes (target: at most 1.1 from 1,000 to 10,000)"
        );
    }
}
