//! Building a campaign report for 100,000 seed results (target: under 10 s):
//! each record is fed through a `CampaignAggregate`, from a results file
//! read line by line and from records in memory, and the report rendered
//! from the aggregate. Run: `cargo bench -p scx-reports --bench report_100k`.

use criterion::{Criterion, criterion_group, criterion_main};
use scx_reports::model::{Metrics, RunRecord, Verdict, ViolationRecord};
use scx_reports::{CampaignAggregate, ReportOptions, write_campaign_report};

fn records(count: u64) -> Vec<RunRecord> {
    (0..count)
        .map(|seed| {
            let mixed = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 20;
            let failed = mixed % 97 == 0;
            RunRecord {
                scx_version: "0.1.0".into(),
                scenario: "bench".into(),
                scenario_path: "scenarios/bench.toml".into(),
                scenario_hash: "0123456789abcdef".into(),
                seed,
                status: if failed { Verdict::Fail } else { Verdict::Pass },
                trace_hash: format!("{mixed:064x}"),
                converged_at_ms: ((!failed).then_some(100 + mixed % 3000)).map(|ms| ms + 10_000),
                converged_after_last_heal_ms: (!failed).then_some(100 + mixed % 3000),
                converged_after_last_write_ms: (!failed).then_some(100 + mixed % 3000),
                last_heal_at_ms: Some(10_000),
                last_write_at_ms: Some(10_000),
                sample_interval_ms: 100,
                duration_ms: 60_000,
                settle_ms: 30_000,
                quiescent_at_ms: 60_000,
                ended_at_ms: 62_000,
                violations: if failed {
                    vec![ViolationRecord {
                        checker: "convergence".into(),
                        kind: "eventually".into(),
                        message: "did not converge".into(),
                        at_ms: 90_000,
                        node: None,
                    }]
                } else {
                    Vec::new()
                },
                note: None,
                metrics: Metrics {
                    bytes_sent: 100_000 + mixed % 50_000,
                    bytes_missing: 80_000,
                    round_trips: 400 + mixed % 100,
                    lanes: 500,
                    ..Metrics::default()
                },
                coverage: Default::default(),
                faults: Vec::new(),
                reproduce: format!("scx run scenarios/bench.toml --seed {seed}"),
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let dir = std::env::temp_dir().join(format!("scx-report-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let results = dir.join("results.jsonl");
    let records = records(100_000);
    let lines: Vec<String> = records.iter().map(|record| serde_json::to_string(record).unwrap()).collect();
    std::fs::write(&results, lines.join("\n")).unwrap();
    drop(lines);
    let mut group = c.benchmark_group("report");
    group.sample_size(10);
    group.bench_function("read 100k results (JSON lines) into an aggregate and write the campaign report", |b| {
        b.iter(|| {
            let mut campaign = CampaignAggregate::new("bench");
            scx_reports::read_results_into(&results, &mut campaign).unwrap();
            write_campaign_report(&[campaign], &dir.join("out"), &ReportOptions::default()).unwrap()
        });
    });
    group.bench_function("feed 100k records to an aggregate and write the campaign report", |b| {
        b.iter(|| {
            let mut campaign = CampaignAggregate::new("bench");
            for record in &records {
                campaign.add(record);
            }
            write_campaign_report(&[campaign], &dir.join("out"), &ReportOptions::default()).unwrap()
        });
    });
    group.finish();
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, bench);
criterion_main!(benches);
