//! Goal: a campaign aggregate gives the figures of its records whatever
//! their order or split. Method: an independent brute force (every value
//! kept and sorted, counts in plain maps) over a varied synthetic campaign
//! of 10,000 runs: counts, sums, lists and extremes must match exactly,
//! percentiles within the stated precision (0.1%, never below) and exactly
//! where HDR is exact (below 2,048; multiples of the 100 ms sample
//! interval up to 1,024 intervals). Then: merging halves or shuffled
//! thirds equals the whole; one scenario name with two hashes (or two
//! paths) gives two rows; non-pass verdicts are counted and listed apart
//! from engine failures; keys beyond MAX_SCENARIOS pool in one row.

use crate::support::{SCENARIOS, aggregate, mix, record, temp, varied};
use scx_reports::aggregate::{
    CountMetric, EXAMPLES_PER_GROUP, FAILURES_LISTED, FailureGroup, FailureKind, MAX_SCENARIOS, SLOWEST_LISTED,
    SLOWEST_PER_SCENARIO, bytes_ratio_thousandths,
};
use scx_reports::distribution::Distribution;
use scx_reports::model::{RunRecord, Verdict};
use scx_reports::{CampaignAggregate, ReportOptions, write_campaign_report};
use std::collections::BTreeMap;

const RUNS: u64 = 10_000;

fn exact_rank(sorted: &[u64], per_ten_thousand: u64) -> u64 {
    sorted[(sorted.len() as u64 * per_ten_thousand).div_ceil(10_000).max(1) as usize - 1]
}

/// `distribution` against the brute-force `values`: exact count, min, max
/// and mean; percentiles never below the exact value, at most 1/1024 above
/// it, and equal when the exact value is below `exact_below`.
fn assert_matches(distribution: &Distribution, values: &[u64], exact_below: u64, what: &str) {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    assert_eq!(distribution.count(), sorted.len() as u64, "{what}: count");
    assert_eq!(distribution.min(), sorted.first().copied(), "{what}: min");
    assert_eq!(distribution.max(), sorted.last().copied(), "{what}: max");
    if sorted.is_empty() {
        return;
    }
    let mean = sorted.iter().map(|v| u128::from(*v)).sum::<u128>() as f64 / sorted.len() as f64;
    assert_eq!(distribution.mean(), Some(mean), "{what}: mean");
    for p in [1, 1_000, 2_500, 5_000, 7_500, 9_000, 9_500, 9_900, 9_990, 10_000] {
        let (got, want) = (distribution.percentile(p).unwrap(), exact_rank(&sorted, p));
        assert!(got >= want && (got - want) * 1024 <= want, "{what} p{p}: {got} against {want}");
        if want < exact_below.max(2048) {
            assert_eq!(got, want, "{what} p{p} is exact");
        }
    }
}

/// A message's shape, computed apart from the crate's: split into runs of
/// word and non-word characters, and a word run with a digit becomes `#`.
fn pattern(message: &str) -> String {
    let chars: Vec<char> = message.chars().collect();
    let word = |c: &char| c.is_ascii_alphanumeric() || *c == '_';
    chars
        .chunk_by(|a, b| word(a) == word(b))
        .map(|run| if run.iter().any(char::is_ascii_digit) { "#".to_owned() } else { run.iter().collect() })
        .collect()
}

type Groups = BTreeMap<(Verdict, String, String), (u64, Vec<u64>)>;

/// Non-passing runs by (verdict, checker, message pattern): their count
/// and the first seeds, by brute force.
fn brute_force_groups(records: &[&RunRecord]) -> Groups {
    let mut groups: Groups = BTreeMap::new();
    let mut failing: Vec<&&RunRecord> = records.iter().filter(|r| !r.passed()).collect();
    failing.sort_by_key(|r| (r.seed, r.scenario_path.clone()));
    for record in failing {
        let (checker, detail) = match record.violations.first() {
            Some(v) => (v.checker.clone(), v.message.clone()),
            None => (String::new(), record.note.clone().unwrap_or_default()),
        };
        let entry = groups.entry((record.status, checker, pattern(&detail))).or_default();
        entry.0 += 1;
        if entry.1.len() < EXAMPLES_PER_GROUP {
            entry.1.push(record.seed);
        }
    }
    groups
}

fn got_groups(groups: Vec<(&FailureKind, &FailureGroup)>) -> Groups {
    (groups.into_iter())
        .map(|(k, g)| {
            let seeds = g.examples().iter().map(|row| row.seed).collect();
            ((k.verdict, k.checker.clone(), k.message.clone()), (g.runs, seeds))
        })
        .collect()
}

/// The `limit` slowest (ms, seed), slowest first, by brute force.
fn slowest(records: &[&RunRecord], pick: fn(&RunRecord) -> Option<u64>, limit: usize) -> Vec<(u64, u64)> {
    let mut slow: Vec<(u64, u64)> = records.iter().filter_map(|r| pick(r).map(|ms| (ms, r.seed))).collect();
    slow.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    slow.truncate(limit);
    slow
}

/// Every figure of one scenario (or all) by brute force.
fn check_scenario(stats: &scx_reports::aggregate::ScenarioStats, records: &[&RunRecord], what: &str) {
    let values = |pick: fn(&RunRecord) -> Option<u64>| records.iter().filter_map(|r| pick(r)).collect::<Vec<u64>>();
    // Convergence after the last heal: multiples of 100 up to 150,000 ms.
    let heal = values(|r| r.converged_after_last_heal_ms);
    assert!(heal.iter().any(|v| *v > 102_400), "the test reaches past the exact range");
    assert_matches(stats.after_last_heal_ms(), &heal, 102_401, &format!("{what} after the last heal"));
    assert_matches(stats.after_last_write_ms(), &values(|r| r.converged_after_last_write_ms), 0, what);
    assert_matches(stats.bytes_ratio_thousandths(), &values(|r| bytes_ratio_thousandths(&r.metrics)), 0, what);
    assert_matches(stats.round_trips(), &values(|r| Some(r.metrics.round_trips)), 0, what);
    for metric in CountMetric::ALL {
        let per_run: Vec<u64> = records.iter().map(|r| metric.of(&r.metrics)).collect();
        assert_matches(stats.count(metric), &per_run, 0, &format!("{what} {}", metric.name()));
    }
    let (groups, other) = stats.failure_groups();
    assert!(other.is_none(), "{what}: six groups fit");
    assert_eq!(got_groups(groups), brute_force_groups(records), "{what}: failure groups");
    let count = |verdict| records.iter().filter(|r| r.status == verdict).count() as u64;
    let v = stats.verdicts();
    assert_eq!(
        [v.pass, v.fail, v.timeout, v.harness_error, v.nothing_tested],
        [Verdict::Pass, Verdict::Fail, Verdict::Timeout, Verdict::HarnessError, Verdict::NothingTested].map(count),
        "{what}: verdicts"
    );
    assert_eq!(stats.converged(), records.iter().filter(|r| r.converged_at_ms.is_some()).count() as u64);
    let sum = |pick: fn(&RunRecord) -> u64| records.iter().map(|r| pick(r)).sum::<u64>();
    let m = stats.metrics();
    assert_eq!(m.lanes, sum(|r| r.metrics.lanes), "{what}: lanes");
    assert_eq!(m.messages_sent, sum(|r| r.metrics.messages_sent));
    assert_eq!(m.messages_dropped, sum(|r| r.metrics.messages_dropped));
    assert_eq!(m.crashes, sum(|r| r.metrics.crashes));
    assert_eq!(m.rollbacks, sum(|r| r.metrics.rollbacks));
    assert_eq!(m.conflicts, sum(|r| r.metrics.conflicts));
    assert_eq!(m.sessions_abandoned, sum(|r| r.metrics.sessions_abandoned));
    assert_eq!(m.snapshots_installed, sum(|r| r.metrics.snapshots_installed));
    assert_eq!(m.snapshots_rejected, sum(|r| r.metrics.snapshots_rejected));
    assert_eq!(m.unsynced_bytes_lost, sum(|r| r.metrics.unsynced_bytes_lost));
    let mut coverage: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for record in records {
        for (name, count) in &record.coverage {
            let entry = coverage.entry(name).or_default();
            *entry = (entry.0 + count, entry.1 + u64::from(*count > 0));
        }
    }
    let (named, other) = stats.coverage();
    assert_eq!(other, None);
    let got: BTreeMap<&str, (u64, u64)> = named.into_iter().map(|(n, c)| (n, (c.total, c.seeds_reached))).collect();
    assert_eq!(got, coverage, "{what}: coverage");
}

#[test]
fn aggregate_equals_brute_force_within_the_stated_precision_10k_runs_4_scenarios() {
    let records: Vec<RunRecord> = (0..RUNS).map(varied).collect();
    let aggregate = aggregate("varied", &records);
    assert_eq!(aggregate.runs(), RUNS);
    assert_eq!(aggregate.seeds(), Some((0, RUNS - 1)));
    assert_eq!(aggregate.versions().0, [("0.1.0", RUNS - RUNS.div_ceil(3)), ("0.1.1", RUNS.div_ceil(3))]);
    check_scenario(&aggregate.overall_stats(), &records.iter().collect::<Vec<_>>(), "overall");
    let scenarios: Vec<_> = aggregate.scenarios().collect();
    assert_eq!(scenarios.len(), SCENARIOS.len());
    for (key, stats) in scenarios {
        let mine: Vec<&RunRecord> = records
            .iter()
            .filter(|r| {
                (&r.scenario, &r.scenario_hash, &r.scenario_path)
                    == (&key.scenario, &key.scenario_hash, &key.scenario_path)
            })
            .collect();
        check_scenario(stats, &mine, &key.scenario_path);
        let heal = |r: &RunRecord| r.converged_after_last_heal_ms;
        let write = |r: &RunRecord| r.converged_after_last_write_ms;
        let got = |runs: &[scx_reports::aggregate::SlowRun]| runs.iter().map(|s| (s.ms, s.seed)).collect::<Vec<_>>();
        assert_eq!(got(stats.slowest_after_last_heal()), slowest(&mine, heal, SLOWEST_PER_SCENARIO));
        assert_eq!(got(stats.slowest_after_last_write()), slowest(&mine, write, SLOWEST_PER_SCENARIO));
        let first = mine.iter().map(|r| r.seed).min().unwrap();
        assert_eq!(stats.parameters().unwrap().seed, first, "parameters of the smallest seed");
    }

    let mut failing: Vec<&RunRecord> = records.iter().filter(|r| r.status == Verdict::Fail).collect();
    failing.sort_by_key(|r| (r.seed, r.scenario_path.clone()));
    let listed: Vec<(u64, &str)> = aggregate.failures().iter().map(|f| (f.seed, f.reproduce.as_str())).collect();
    let want: Vec<(u64, &str)> = failing.iter().take(FAILURES_LISTED).map(|r| (r.seed, r.reproduce.as_str())).collect();
    assert_eq!(listed, want, "the first failures by seed");
    let (groups, other) = aggregate.failure_groups();
    assert!(other.is_none());
    let groups = got_groups(groups);
    assert_eq!(groups, brute_force_groups(&records.iter().collect::<Vec<_>>()));
    assert_eq!(groups.len(), 6, "one group per checker and per inconclusive note, whatever the numbers: {groups:?}");
    let mut slow: Vec<(u64, u64)> =
        records.iter().filter_map(|r| r.converged_after_last_write_ms.map(|ms| (ms, r.seed))).collect();
    slow.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let got: Vec<(u64, u64)> = aggregate.slowest_after_last_write().iter().map(|s| (s.ms, s.seed)).collect();
    assert_eq!(got, slow[..SLOWEST_LISTED]);
    let mut slow: Vec<(u64, u64)> =
        records.iter().filter_map(|r| r.converged_after_last_heal_ms.map(|ms| (ms, r.seed))).collect();
    slow.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let got: Vec<(u64, u64)> = aggregate.slowest_after_last_heal().iter().map(|s| (s.ms, s.seed)).collect();
    assert_eq!(got, slow[..SLOWEST_LISTED]);
}

#[test]
fn merging_halves_or_shuffled_thirds_equals_the_whole_10k_runs() {
    let records: Vec<RunRecord> = (0..RUNS).map(varied).collect();
    let whole = aggregate("c", &records);
    let half = records.len() / 2;
    let mut left = aggregate("c", &records[..half]);
    left.merge(&aggregate("c", &records[half..]));
    assert!(left == whole, "halves merged differ from the whole");
    let mut shuffled: Vec<&RunRecord> = records.iter().collect();
    shuffled.sort_by_key(|r| mix(r.seed, 99));
    let thirds: Vec<CampaignAggregate> =
        shuffled.chunks(shuffled.len().div_ceil(3)).map(|c| aggregate("c", c.iter().copied())).collect();
    let mut grouped = thirds[2].clone();
    let mut first_two = thirds[1].clone();
    first_two.merge(&thirds[0]);
    grouped.merge(&first_two);
    assert!(grouped == whole, "shuffled thirds merged in another grouping differ from the whole");
    let mut with_empty = whole.clone();
    with_empty.merge(&CampaignAggregate::new("empty"));
    assert!(with_empty == whole, "merging nothing changes nothing");
}

#[test]
fn scenarios_with_one_name_and_two_hashes_or_paths_are_separate_rows() {
    let records: Vec<RunRecord> = (0..400).map(varied).collect();
    let aggregate = aggregate("varied", &records);
    let keys: Vec<(&str, &str, &str)> = aggregate
        .scenarios()
        .map(|(k, _)| (k.scenario.as_str(), k.scenario_hash.as_str(), k.scenario_path.as_str()))
        .collect();
    let mut want = SCENARIOS.to_vec();
    want.sort();
    assert_eq!(keys, want);
    for (key, stats) in aggregate.scenarios() {
        let runs = records
            .iter()
            .filter(|r| r.scenario_hash == key.scenario_hash && r.scenario_path == key.scenario_path)
            .count();
        assert_eq!(stats.verdicts().runs(), runs as u64, "{}", key.scenario_path);
    }
    let dir = temp("same-name");
    let files = write_campaign_report(&[aggregate], &dir, &ReportOptions::default()).unwrap();
    let markdown = std::fs::read_to_string(files.markdown).unwrap();
    for (name, hash, path) in SCENARIOS {
        assert!(markdown.contains(&format!("| {name} | `{path}` | `{hash}` |")), "a row for {path}:\n{markdown}");
    }
}

#[test]
fn timeouts_harness_errors_and_nothing_tested_are_counted_apart_from_engine_failures() {
    let mut records = Vec::new();
    for (seed, status, note) in [
        (1, Verdict::Pass, None),
        (2, Verdict::Fail, None),
        (3, Verdict::Timeout, Some("ran longer than 10s")),
        (4, Verdict::Timeout, Some("ran longer than 10s")),
        (5, Verdict::HarnessError, Some("panic in the harness")),
        (6, Verdict::NothingTested, Some("no live node at the end")),
    ] {
        let mut r = record(seed, (status == Verdict::Pass).then_some(300));
        r.status = status;
        r.note = note.map(str::to_owned);
        if status != Verdict::Fail {
            r.violations.clear();
        }
        records.push(r);
    }
    let aggregate = aggregate("mixed", &records);
    let v = aggregate.verdicts();
    assert_eq!((v.pass, v.fail, v.timeout, v.harness_error, v.nothing_tested), (1, 1, 2, 1, 1));
    assert_eq!(v.inconclusive(), 4);
    assert_eq!(aggregate.failures().iter().map(|f| f.seed).collect::<Vec<_>>(), [2]);
    assert_eq!(
        aggregate.inconclusive().iter().map(|f| (f.seed, f.verdict)).collect::<Vec<_>>(),
        [(3, Verdict::Timeout), (4, Verdict::Timeout), (5, Verdict::HarnessError), (6, Verdict::NothingTested)]
    );
    assert_eq!(aggregate.inconclusive()[2].detail, "panic in the harness");
    let dir = temp("verdicts");
    let files = write_campaign_report(&[aggregate], &dir, &ReportOptions::default()).unwrap();
    let markdown = std::fs::read_to_string(&files.markdown).unwrap();
    assert!(markdown.contains("### Engine failures (1)"), "{markdown}");
    assert!(markdown.contains("### Inconclusive runs (4): 2 timeout, 1 harness error, 1 nothing tested"), "{markdown}");
    assert!(
        markdown.contains(
            "| timeout | - | ran longer than # | 2 | 3, 4 | `scx run scenarios/synthetic.toml --seed 3`; `scx run scenarios/synthetic.toml --seed 4` |"
        ),
        "two timeouts are one group with both seeds:\n{markdown}"
    );
    assert!(markdown.contains("| 6 | synthetic | nothing-tested | - | no live node at the end |"));
    assert!(markdown.contains("| mixed | 6 | 1 | 1 | 2 | 1 | 1 |"), "the overview counts each verdict:\n{markdown}");
    let html = std::fs::read_to_string(&files.html).unwrap();
    assert!(html.contains("Inconclusive runs (4): 2 timeout, 1 harness error, 1 nothing tested"));
}

#[test]
fn scenario_keys_beyond_the_limit_pool_in_one_row_whatever_the_order() {
    let extra = 5;
    let keys = MAX_SCENARIOS as u64 + extra;
    let records: Vec<RunRecord> = (0..keys * 2)
        .map(|seed| {
            let mut r = record(seed, Some(100));
            r.scenario = format!("s{:05}", seed % keys);
            r
        })
        .collect();
    let forward = aggregate("many", &records);
    let backward = aggregate("many", records.iter().rev());
    assert!(forward == backward);
    let kept: Vec<String> = forward.scenarios().map(|(k, _)| k.scenario.clone()).collect();
    assert_eq!(kept.len(), MAX_SCENARIOS);
    assert_eq!((kept.first().unwrap().as_str(), kept.last().unwrap().as_str()), ("s00000", "s00999"));
    assert_eq!(forward.scenarios_overflow().unwrap().verdicts().runs(), extra * 2);
    let dir = temp("overflow");
    let files = write_campaign_report(&[forward], &dir, &ReportOptions::default()).unwrap();
    let html = std::fs::read_to_string(files.html).unwrap();
    assert!(html.contains("other scenarios (beyond the first 1000 by name, hash and path), pooled"));
}
