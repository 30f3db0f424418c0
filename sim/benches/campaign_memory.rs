//! Campaign memory against campaign length (issue "A million seeds on one
//! machine"): peak RSS of `scx fuzz` over 100 and over 10,000 seeds of one
//! scenario must differ by less than 10%, because a campaign streams its
//! results and frees each seed's world.
//!
//! Each campaign runs as its own `scx` process under a fresh intermediate
//! process, whose `getrusage(RUSAGE_CHILDREN)` gives exactly that
//! campaign's peak RSS. Wall time is printed as seeds/s.
//!
//! Run: `cargo bench -p scx-sim --bench campaign_memory`
//! (`SCX_BENCH_SCENARIO=scenarios/partition-heal-mesh.toml`,
//! `SCX_BENCH_SEEDS=100,10000` to choose; defaults shown are quickstart
//! and 100,10000).
#![allow(clippy::disallowed_methods, reason = "a benchmark measures wall time outside the simulations")]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

fn main() {
    if let Ok(count) = std::env::var("SCX_BENCH_CHILD_SEEDS") {
        measure_one(&count);
        return;
    }
    let scenario = std::env::var("SCX_BENCH_SCENARIO").unwrap_or_else(|_| "scenarios/quickstart.toml".to_owned());
    let counts = std::env::var("SCX_BENCH_SEEDS").unwrap_or_else(|_| "100,10000".to_owned());
    let mut peaks = Vec::new();
    for count in counts.split(',') {
        let output = Command::new(std::env::current_exe().expect("the bench knows its path"))
            .env("SCX_BENCH_CHILD_SEEDS", count)
            .env("SCX_BENCH_SCENARIO", &scenario)
            .output()
            .expect("the bench re-runs itself");
        let line = String::from_utf8_lossy(&output.stdout).trim().to_owned();
        assert!(output.status.success(), "{line} {}", String::from_utf8_lossy(&output.stderr));
        println!("{line}");
        let peak: u64 =
            line.split("peak_rss_kib=").nth(1).and_then(|rest| rest.split(' ').next()?.parse().ok()).unwrap();
        peaks.push((count.to_owned(), peak));
    }
    if let (Some((first_count, first)), Some((last_count, last))) = (peaks.first(), peaks.last()) {
        let growth = (*last as f64 / *first as f64 - 1.0) * 100.0;
        println!("peak RSS, {last_count} seeds against {first_count}: {growth:+.1}% (target: under 10%)");
    }
}

/// In the intermediate process: one campaign as a child, then its peak RSS.
fn measure_one(count: &str) {
    let scenario = std::env::var("SCX_BENCH_SCENARIO").expect("set by the parent");
    let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let out = std::env::temp_dir().join(format!("scx-campaign-memory-{}.jsonl", std::process::id()));
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_scx"))
        .args(["fuzz", &scenario, "--count", count, "--out"])
        .arg(&out)
        .current_dir(&workspace)
        .status()
        .expect("scx runs");
    let secs = started.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&out);
    assert!(status.success(), "the campaign failed: {status}");
    let seeds: f64 = count.parse().expect("a seed count");
    println!("{scenario} {count} seeds: peak_rss_kib={} {:.1} seeds/s", children_peak_rss_kib(), seeds / secs);
}

/// Peak RSS of the waited-for children, in KiB (Linux reports KiB).
fn children_peak_rss_kib() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    #[allow(unsafe_code, reason = "getrusage fills a struct we own; the only way to read a child's peak RSS")]
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_CHILDREN is a valid selector.
    let usage = unsafe {
        assert_eq!(libc::getrusage(libc::RUSAGE_CHILDREN, usage.as_mut_ptr()), 0);
        usage.assume_init()
    };
    usage.ru_maxrss
}
