//! Heap held by a `CampaignAggregate` after 10,000 and after 1,000,000
//! records (target: the same), measured with a counting allocator, never
//! by timing. Records are synthetic (4 scenarios, every verdict, values
//! over their whole range from the first thousands of seeds) and made one
//! at a time, so the only thing that could grow is the aggregate. A second
//! pass streams 1,000,000 JSON lines through `ResultsReader` (generated on
//! the fly, no file) and reports the peak heap of the whole pipeline.
//! Run: `cargo bench -p scx-reports --bench aggregate_memory`
//! (`SCX_BENCH_RECORDS=100000` for a quick pass).

#![allow(unsafe_code, reason = "the counting allocator below; nothing else")]

use scx_reports::model::{FaultRecord, Metrics, RunRecord, Verdict, ViolationRecord};
use scx_reports::{CampaignAggregate, ResultsReader};
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{BufReader, Read};
use std::sync::atomic::{AtomicUsize, Ordering};

struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator; the
// counters are plain atomics.
#[allow(
    unsafe_code,
    reason = "a counting global allocator must implement the unsafe GlobalAlloc trait; it only forwards to System"
)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let now = CURRENT.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
        PEAK.fetch_max(now, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        CURRENT.fetch_sub(layout.size(), Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn mix(seed: u64, purpose: u64) -> u64 {
    let mut z = seed.wrapping_add(purpose.wrapping_mul(0x9e37_79b9_7f4a_7c15)).wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

const SCENARIOS: [(&str, &str, &str); 4] = [
    ("partition-heal-mesh", "1a2b3c4d5e6f7081", "scenarios/partition-heal-mesh.toml"),
    ("partition-heal-mesh", "99aa88bb77cc66dd", "scenarios/partition-heal-mesh-v2.toml"),
    ("crash-torn-writes", "0f1e2d3c4b5a6978", "scenarios/crash-torn-writes.toml"),
    ("p2p-gossip", "a0b1c2d3e4f50617", "scenarios/p2p-gossip.toml"),
];

/// Seeds that run each scenario with each verdict and checker, three
/// times (4 scenarios × 16 rolls × 3: ten fails over three checkers, the
/// three inconclusive verdicts, three passes), converging at the cap.
const COVERING_SEEDS: u64 = 4 * 16 * 3;

/// A run as a campaign reports it: convergence quantised to the 100 ms
/// sample interval and bounded by the 150 s settle bound (a run that has
/// not converged by then fails), some runs with nothing healed.
fn record(seed: u64) -> RunRecord {
    // The first seeds walk every scenario, verdict and checker in turn, and
    // pass at the largest convergence time: every bounded entry an aggregate
    // keeps (a failure group per scenario with its examples, the slowest
    // runs, the first failures) is full of its smallest keys long before the
    // 10,000th record, so later records are only counted, and growth after
    // that would be a leak rather than a list still filling.
    let covering = seed < COVERING_SEEDS;
    let scenario_index = if covering { seed % 4 } else { mix(seed, 1) % 4 };
    let (scenario, hash, path) = SCENARIOS[scenario_index as usize];
    let roll = if covering { seed / 4 % 16 } else { mix(seed, 2) % 1_000 };
    let checker = if covering { roll % 3 } else { mix(seed, 8) % 3 };
    let status = match roll {
        0..=9 => Verdict::Fail,
        10 => Verdict::Timeout,
        11 => Verdict::HarnessError,
        12 => Verdict::NothingTested,
        _ => Verdict::Pass,
    };
    let converged = status == Verdict::Pass;
    let healed = covering || !mix(seed, 3).is_multiple_of(5);
    let after_heal_ms = if covering { 150_000 } else { 100 * (1 + mix(seed, 4) % 1_500) };
    let after_write_ms = (after_heal_ms + 100 * (mix(seed, 5) % 20)).min(150_000);
    RunRecord {
        scx_version: "0.1.0".into(),
        scenario: scenario.into(),
        scenario_path: path.into(),
        scenario_hash: hash.into(),
        seed,
        status,
        trace_hash: format!("{:016x}{:016x}", mix(seed, 6), mix(seed, 7)),
        converged_at_ms: converged.then_some(60_000 + after_heal_ms),
        converged_after_last_heal_ms: (converged && healed).then_some(after_heal_ms),
        converged_after_last_write_ms: converged.then_some(after_write_ms),
        last_heal_at_ms: healed.then_some(60_000),
        last_write_at_ms: Some(60_000),
        sample_interval_ms: 100,
        duration_ms: 60_000,
        settle_ms: 30_000,
        quiescent_at_ms: 60_000,
        ended_at_ms: 62_000 + after_heal_ms,
        violations: match status {
            Verdict::Fail => vec![ViolationRecord {
                checker: ["durability", "convergence", "forks"][checker as usize].into(),
                kind: "always".into(),
                message: format!("an acknowledged lane is gone after a crash (seed {seed})"),
                at_ms: 30_000,
                node: Some(2),
            }],
            _ => Vec::new(),
        },
        note: match status {
            Verdict::Timeout => Some("ran longer than 10s of wall-clock time".into()),
            Verdict::HarnessError => Some("panic in the harness".into()),
            Verdict::NothingTested => Some("no write was acknowledged".into()),
            _ => None,
        },
        metrics: Metrics {
            bytes_sent: 100_000 + mix(seed, 9) % 900_000,
            bytes_missing: 80_000 + mix(seed, 10) % 100_000,
            round_trips: 100 + mix(seed, 11) % 5_000,
            lanes: mix(seed, 12) % 2_000,
            messages_sent: mix(seed, 13) % 50_000,
            messages_dropped: mix(seed, 14) % 500,
            crashes: mix(seed, 15) % 3,
            ..Metrics::default()
        },
        coverage: [("partition-healed", mix(seed, 16) % 3), ("crash-recovered", mix(seed, 17) % 2)]
            .into_iter()
            .map(|(name, count)| (name.to_owned(), count))
            .collect(),
        faults: vec![FaultRecord {
            kind: "partition".into(),
            start_ms: 5_000,
            end_ms: Some(20_000),
            nodes: vec![0, 1],
            groups: Vec::new(),
        }],
        reproduce: format!("scx run {path} --seed {seed}  # scx 0.1.0, scenario {hash}"),
    }
}

/// JSON lines of `record(start..end)`, made as they are read.
struct JsonLines {
    next: u64,
    end: u64,
    line: Vec<u8>,
    at: usize,
}

impl Read for JsonLines {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if self.at == self.line.len() {
            if self.next == self.end {
                return Ok(0);
            }
            self.line.clear();
            serde_json::to_writer(&mut self.line, &record(self.next)).map_err(std::io::Error::other)?;
            self.line.push(b'\n');
            self.next += 1;
            self.at = 0;
        }
        let n = out.len().min(self.line.len() - self.at);
        out[..n].copy_from_slice(&self.line[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn live() -> usize {
    CURRENT.load(Ordering::Relaxed)
}

fn kib(bytes: usize) -> String {
    format!("{bytes} bytes ({:.1} KiB)", bytes as f64 / 1024.0)
}

fn main() {
    let total: u64 = std::env::var("SCX_BENCH_RECORDS").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
    let early = total.min(10_000);

    let before = live();
    let mut aggregate = CampaignAggregate::new("memory");
    for seed in 0..early {
        aggregate.add(&record(seed));
    }
    let after_early = live() - before;
    PEAK.store(live(), Ordering::Relaxed);
    for seed in early..total {
        aggregate.add(&record(seed));
    }
    let after_all = live() - before;
    let peak = PEAK.load(Ordering::Relaxed) - before;
    println!("records fed one at a time: {}", aggregate.runs());
    println!("aggregate heap after {early:>9} records: {}", kib(after_early));
    println!("aggregate heap after {total:>9} records: {}", kib(after_all));
    println!("peak heap while feeding the rest (aggregate + one record): {}", kib(peak));
    let verdict = if after_all == after_early { "the same: met" } else { "DIFFERENT" };
    println!("target: the aggregate holds as many bytes after {total} records as after {early}: {verdict}");
    drop(aggregate);

    let before = live();
    PEAK.store(before, Ordering::Relaxed);
    let lines = JsonLines { next: 0, end: total, line: Vec::new(), at: 0 };
    let mut streamed = CampaignAggregate::new("streamed");
    for result in ResultsReader::new(BufReader::with_capacity(1 << 16, lines), "generated.jsonl") {
        streamed.add(&result.expect("generated lines parse"));
    }
    let held = live() - before;
    println!(
        "streamed {} JSON lines through ResultsReader: peak heap {}, held at the end {}",
        streamed.runs(),
        kib(PEAK.load(Ordering::Relaxed) - before),
        kib(held)
    );
}
