//! Campaigns: many seeds of many scenarios, in parallel, with results
//! independent of `--jobs`, shards and finishing order.
//!
//! Each seed runs on a fresh OS thread (`runner::run`), a bounded pool of
//! workers hands out seeds, and results are sorted by (scenario, seed)
//! before anyone sees them, so a results file is byte-identical however the
//! work was split.

use crate::plan;
use crate::record::{RunRecord, ViolationRecord};
use crate::runner::{self, RunOptions};
use crate::scenario::Scenario;
use crate::shard::{SeedRange, Shard};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// One scenario of a campaign.
#[derive(Clone, Debug)]
pub struct CampaignScenario {
    /// The path as given (it appears in reproduce commands).
    pub path: String,
    /// The parsed scenario.
    pub scenario: Scenario,
}

/// What a campaign runs.
#[derive(Clone, Debug)]
pub struct Campaign {
    /// The scenarios.
    pub scenarios: Vec<CampaignScenario>,
    /// Seeds; `None` uses each scenario's own default seeds.
    pub seeds: Option<SeedRange>,
    /// This process's shard.
    pub shard: Shard,
    /// Parallel seeds.
    pub jobs: usize,
    /// Run each seed twice and compare trace hashes.
    pub check_determinism: bool,
    /// Seeds that failed before, by scenario path: they run first.
    pub replay_first: Vec<(String, u64)>,
}

impl Campaign {
    /// Every (scenario index, seed) this shard runs, in output order.
    pub fn work(&self) -> Vec<(usize, u64)> {
        let mut work = Vec::new();
        if self.shard.index == 1 {
            for (path, seed) in &self.replay_first {
                if let Some(index) = self.scenarios.iter().position(|entry| entry.path == *path) {
                    work.push((index, *seed));
                }
            }
        }
        for (index, entry) in self.scenarios.iter().enumerate() {
            let range =
                self.seeds.unwrap_or(SeedRange { start: entry.scenario.seeds.start, end: entry.scenario.seeds.end });
            work.extend(range.seeds(self.shard).map(|seed| (index, seed)));
        }
        let mut seen = std::collections::BTreeSet::new();
        work.retain(|item| seen.insert(*item));
        work
    }
}

/// Runs one seed of one scenario and returns its record.
pub fn run_seed(entry: &CampaignScenario, seed: u64, check_determinism: bool) -> RunRecord {
    let spec = plan::resolve(&entry.scenario, seed, None);
    let outcome = runner::run(&spec, RunOptions::default());
    let hash = entry.scenario.content_hash();
    let mut record = crate::record::from_outcome(&outcome, &entry.path, &hash);
    if check_determinism {
        let again = runner::run(&spec, RunOptions::default());
        if again.trace_hash != outcome.trace_hash {
            record.status = crate::record::Verdict::Fail;
            record.violations.push(ViolationRecord {
                checker: "determinism".into(),
                kind: "always".into(),
                message: format!("the same seed gave trace hashes {} and {}", outcome.trace_hash, again.trace_hash),
                at_ms: 0,
                node: None,
            });
        }
    }
    record
}

/// Runs the campaign's work on `jobs` workers; `keep_going` is asked before
/// each seed starts (a wall-clock budget), `progress` after each finishes.
/// Returns the records of the seeds that ran, in output order.
pub fn run(
    campaign: &Campaign,
    keep_going: &(dyn Fn() -> bool + Sync),
    progress: &(dyn Fn(&RunRecord) + Sync),
) -> Vec<RunRecord> {
    let work = campaign.work();
    let results: Mutex<Vec<Option<RunRecord>>> = Mutex::new(vec![None; work.len()]);
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..campaign.jobs.max(1).min(work.len().max(1)) {
            scope.spawn(|| {
                loop {
                    if !keep_going() {
                        return;
                    }
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&(scenario, seed)) = work.get(index) else { return };
                    let record = run_seed(&campaign.scenarios[scenario], seed, campaign.check_determinism);
                    progress(&record);
                    results.lock().expect("a worker panicked while holding the results")[index] = Some(record);
                }
            });
        }
    });
    results.into_inner().expect("no worker panicked holding the results").into_iter().flatten().collect()
}

/// Sorts records into output order (scenario path, then seed) and drops
/// duplicates (a retried shard may have written a seed twice).
pub fn normalise(records: &mut Vec<RunRecord>) {
    records.sort_by(|a, b| (&a.scenario_path, a.seed).cmp(&(&b.scenario_path, b.seed)));
    records.dedup_by(|a, b| a.scenario_path == b.scenario_path && a.seed == b.seed);
}

/// Reads a failures file: lines `<scenario path> seed <N> # why`; blank
/// lines and `#` comments are skipped. A malformed line is an error naming it.
pub fn read_failures(text: &str, file: &str) -> Result<Vec<(String, u64)>, String> {
    let mut seeds = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.split('#').next().unwrap_or_default().trim();
        if line.is_empty() {
            continue;
        }
        let mut words = line.split_whitespace();
        match (words.next(), words.next(), words.next().map(str::parse::<u64>), words.next()) {
            (Some(path), Some("seed"), Some(Ok(seed)), None) => seeds.push((path.to_owned(), seed)),
            _ => return Err(format!("{file}:{}: expected `<scenario> seed <N> # why`, found `{line}`", number + 1)),
        }
    }
    Ok(seeds)
}

/// The failures-file lines for failing `records` not already listed.
pub fn new_failure_lines(records: &[RunRecord], listed: &[(String, u64)]) -> Vec<String> {
    records
        .iter()
        .filter(|record| !record.passed())
        .filter(|record| !listed.iter().any(|(path, seed)| *path == record.scenario_path && *seed == record.seed))
        .map(|record| {
            let why = record.violations.first().map_or_else(String::new, |v| {
                let message: String = v.message.chars().take(120).collect();
                format!("{}: {}", v.checker, message.replace('\n', " "))
            });
            format!("{} seed {} # {why}", record.scenario_path, record.seed)
        })
        .collect()
}
