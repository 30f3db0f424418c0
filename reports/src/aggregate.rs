//! Campaign figures in bounded memory. A [`CampaignAggregate`] takes one
//! record at a time and keeps counts, HDR histograms, sums and short
//! bounded lists, per scenario and for the campaign; two aggregates merge
//! into the aggregate of both record sets.
//!
//! Invariants: memory depends on the number of distinct scenarios (at most
//! [`MAX_SCENARIOS`] kept apart, the rest pooled in one overflow row) and on
//! the range of the values, never on the number of records. Every part is
//! order-independent: adding records in any order, or merging aggregates of
//! any split of them in any grouping, gives equal aggregates. Bounded
//! collections keep the smallest keys (scenarios by name, hash and path;
//! failures by seed and path), never the first ones seen, so that holds.

use crate::distribution::Distribution;
use crate::model::{CampaignManifest, FaultRecord, ManifestInvariant, Metrics, RunRecord, Verdict};
use serde::Serialize;
use std::collections::BTreeMap;

/// Scenarios kept apart; records of scenario keys beyond the smallest
/// this many (by name, hash, path) are pooled in one overflow row. A
/// scenario costs mostly its nine histograms (four figures and five
/// counters per run): about 8 KiB for each doubling of a histogram's
/// largest value above 2,048 (72 KiB for convergence times up to 262 s;
/// 350 KB a scenario in `benches/aggregate_memory.rs`), plus at most
/// [`MAX_SCENARIO_FAILURE_GROUPS`] × [`EXAMPLES_PER_GROUP`] failure rows,
/// so this bounds an aggregate to a few hundred megabytes in the worst case.
pub const MAX_SCENARIOS: usize = 1_000;
/// Coverage names kept apart per scenario; the rest are pooled.
pub const MAX_COVERAGE_NAMES: usize = 64;
/// Tool versions kept apart; the rest are pooled.
pub const MAX_VERSIONS: usize = 32;
/// (verdict, checker, message pattern) groups of non-passing runs kept
/// apart in a campaign.
pub const MAX_FAILURE_GROUPS: usize = 256;
/// Such groups kept apart per scenario.
pub const MAX_SCENARIO_FAILURE_GROUPS: usize = 8;
/// Runs listed as examples of one failure group, with their reproduce
/// commands.
pub const EXAMPLES_PER_GROUP: usize = 3;
/// Engine failures listed one by one (the smallest by seed, then path),
/// and as many inconclusive runs.
pub const FAILURES_LISTED: usize = 20;
/// Slowest runs to converge listed, after the last heal and after the
/// last write.
pub const SLOWEST_LISTED: usize = 10;
/// Slowest runs listed per scenario, after the last heal and after the
/// last write.
pub const SLOWEST_PER_SCENARIO: usize = 3;
/// Faults of a scenario's representative run kept for its parameters.
pub const MAX_FAULTS_SHOWN: usize = 16;
/// Characters of a violation message or note kept for a listed run.
pub const MAX_DETAIL_CHARS: usize = 500;

// `scx fuzz` feeds an aggregate from its collector thread.
const _: () = {
    const fn send<T: Send>() {}
    send::<CampaignAggregate>();
};

/// Bytes ratios are recorded as integers of this many parts per unit.
const RATIO_SCALE: u64 = 1_000;

/// Merging the figures of another part of a campaign.
trait Merge {
    fn merge(&mut self, other: &Self);
}

/// A map that keeps at most `limit` keys, the smallest ones; values of
/// larger keys are merged into one overflow value. Keeping the smallest
/// keys (not the first seen) makes the result independent of order.
#[derive(Clone, Debug, PartialEq, Eq)]
struct BoundedMap<K, V> {
    kept: BTreeMap<K, V>,
    overflow: Option<V>,
    limit: usize,
}

impl<K: Ord + Clone, V: Default + Merge> BoundedMap<K, V> {
    fn new(limit: usize) -> Self {
        assert!(limit > 0, "a bounded map keeps at least one key");
        Self { kept: BTreeMap::new(), overflow: None, limit }
    }

    /// The value for `key`: its own, or the overflow value when `key` is
    /// not among the `limit` smallest keys seen.
    fn slot(&mut self, key: &K) -> &mut V {
        if !self.kept.contains_key(key) && self.kept.len() >= self.limit {
            // Full: the key stays out unless it is smaller than the largest kept.
            let largest_is_smaller = self.kept.last_key_value().is_some_and(|(largest, _)| largest < key);
            if largest_is_smaller {
                return self.overflow.get_or_insert_with(V::default);
            }
            // Full and non-empty (limit > 0), so there is a last entry.
            let (_, evicted) = self.kept.pop_last().expect("a full map has a last entry");
            self.overflow.get_or_insert_with(V::default).merge(&evicted);
        }
        self.kept.entry(key.clone()).or_default()
    }

    fn merge(&mut self, other: &Self) {
        for (key, value) in &other.kept {
            self.slot(key).merge(value);
        }
        if let Some(overflow) = &other.overflow {
            self.overflow.get_or_insert_with(V::default).merge(overflow);
        }
    }
}

/// The `LIMIT` smallest items seen, ascending. The limit is part of the
/// type, so an empty list is a `Default` and two lists always agree on it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(transparent)]
struct Smallest<T, const LIMIT: usize> {
    items: Vec<T>,
}

impl<T, const LIMIT: usize> Default for Smallest<T, LIMIT> {
    fn default() -> Self {
        Self { items: Vec::new() }
    }
}

impl<T: Ord + Clone, const LIMIT: usize> Smallest<T, LIMIT> {
    fn offer(&mut self, item: T) {
        if self.items.len() >= LIMIT && self.items.last().is_some_and(|last| *last <= item) {
            return;
        }
        let at = self.items.partition_point(|kept| *kept <= item);
        self.items.insert(at, item);
        self.items.truncate(LIMIT);
    }

    /// The items kept, ascending.
    fn items(&self) -> &[T] {
        &self.items
    }
}

impl<T: Ord + Clone, const LIMIT: usize> Merge for Smallest<T, LIMIT> {
    fn merge(&mut self, other: &Self) {
        for item in &other.items {
            self.offer(item.clone());
        }
    }
}

/// Runs by verdict.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VerdictCounts {
    /// Every invariant held.
    pub pass: u64,
    /// An invariant of the engine was violated.
    pub fail: u64,
    /// The run did not finish in time.
    pub timeout: u64,
    /// The harness itself failed.
    pub harness_error: u64,
    /// Nothing was tested.
    pub nothing_tested: u64,
}

impl VerdictCounts {
    fn add(&mut self, verdict: Verdict) {
        *match verdict {
            Verdict::Pass => &mut self.pass,
            Verdict::Fail => &mut self.fail,
            Verdict::Timeout => &mut self.timeout,
            Verdict::HarnessError => &mut self.harness_error,
            Verdict::NothingTested => &mut self.nothing_tested,
        } += 1;
    }

    /// Every run.
    pub fn runs(&self) -> u64 {
        self.pass + self.fail + self.inconclusive()
    }

    /// Runs that say nothing about the engine: timeouts, harness errors and
    /// runs that tested nothing.
    pub fn inconclusive(&self) -> u64 {
        self.timeout + self.harness_error + self.nothing_tested
    }
}

impl Merge for VerdictCounts {
    fn merge(&mut self, other: &Self) {
        self.pass += other.pass;
        self.fail += other.fail;
        self.timeout += other.timeout;
        self.harness_error += other.harness_error;
        self.nothing_tested += other.nothing_tested;
    }
}

/// Adds every counter of `run` to `total`, saturating.
fn add_metrics(total: &mut Metrics, run: &Metrics) {
    // Destructured so that a new counter does not compile until it is summed.
    let Metrics {
        bytes_sent,
        bytes_missing,
        bytes_sent_handshake,
        bytes_sent_summary,
        bytes_sent_lanes_needed,
        bytes_sent_lanes_redundant,
        bytes_sent_other,
        round_trips,
        sessions,
        sessions_abandoned,
        lanes,
        messages_sent,
        messages_dropped,
        messages_delivered,
        forks,
        conflicts,
        snapshots,
        rollbacks,
        crashes,
        snapshots_rejected,
        snapshots_installed,
        unsynced_bytes_lost,
        crashes_mid_operation,
        torn_writes,
        torn_tails_recovered,
        partition_drops,
        lanes_pruned,
        corrupt_inputs_rejected,
        reads,
        compact_summaries,
        bloom_supplies,
        lanes_pended,
        lanes_released,
        rejoins,
        pruning_stalled,
        hostile_datagrams,
        hostile_inputs_rejected,
        rot_detected,
    } = *run;
    for (sum, value) in [
        (&mut total.bytes_sent, bytes_sent),
        (&mut total.bytes_missing, bytes_missing),
        (&mut total.bytes_sent_handshake, bytes_sent_handshake),
        (&mut total.bytes_sent_summary, bytes_sent_summary),
        (&mut total.bytes_sent_lanes_needed, bytes_sent_lanes_needed),
        (&mut total.bytes_sent_lanes_redundant, bytes_sent_lanes_redundant),
        (&mut total.bytes_sent_other, bytes_sent_other),
        (&mut total.round_trips, round_trips),
        (&mut total.sessions, sessions),
        (&mut total.sessions_abandoned, sessions_abandoned),
        (&mut total.lanes, lanes),
        (&mut total.messages_sent, messages_sent),
        (&mut total.messages_dropped, messages_dropped),
        (&mut total.messages_delivered, messages_delivered),
        (&mut total.forks, forks),
        (&mut total.conflicts, conflicts),
        (&mut total.snapshots, snapshots),
        (&mut total.rollbacks, rollbacks),
        (&mut total.crashes, crashes),
        (&mut total.snapshots_rejected, snapshots_rejected),
        (&mut total.snapshots_installed, snapshots_installed),
        (&mut total.unsynced_bytes_lost, unsynced_bytes_lost),
        (&mut total.crashes_mid_operation, crashes_mid_operation),
        (&mut total.torn_writes, torn_writes),
        (&mut total.torn_tails_recovered, torn_tails_recovered),
        (&mut total.partition_drops, partition_drops),
        (&mut total.lanes_pruned, lanes_pruned),
        (&mut total.corrupt_inputs_rejected, corrupt_inputs_rejected),
        (&mut total.reads, reads),
        (&mut total.compact_summaries, compact_summaries),
        (&mut total.bloom_supplies, bloom_supplies),
        (&mut total.lanes_pended, lanes_pended),
        (&mut total.lanes_released, lanes_released),
        (&mut total.rejoins, rejoins),
        (&mut total.pruning_stalled, pruning_stalled),
        (&mut total.hostile_datagrams, hostile_datagrams),
        (&mut total.hostile_inputs_rejected, hostile_inputs_rejected),
        (&mut total.rot_detected, rot_detected),
    ] {
        *sum = sum.saturating_add(value);
    }
}

/// A "sometimes" property's counter over many runs.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CoverageCount {
    /// The counter summed over runs.
    pub total: u64,
    /// Runs (seeds) in which the counter was above zero.
    pub seeds_reached: u64,
}

impl Merge for CoverageCount {
    fn merge(&mut self, other: &Self) {
        self.total = self.total.saturating_add(other.total);
        self.seeds_reached += other.seeds_reached;
    }
}

/// A map made on first use merges like the map, absent or not.
impl<K: Ord + Clone, V: Default + Merge + Clone> Merge for Option<BoundedMap<K, V>> {
    fn merge(&mut self, other: &Self) {
        match (self.as_mut(), other) {
            (Some(mine), Some(theirs)) => mine.merge(theirs),
            (None, Some(theirs)) => *self = Some(theirs.clone()),
            (_, None) => {}
        }
    }
}

/// A key seen, with nothing to count (a bounded set).
impl Merge for () {
    fn merge(&mut self, _: &Self) {}
}

impl Merge for u64 {
    fn merge(&mut self, other: &Self) {
        *self += other;
    }
}

/// Which scenario runs belong to: two files with one name, or one name
/// with two contents, are different scenarios.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ScenarioKey {
    /// Scenario name.
    pub scenario: String,
    /// Short content hash.
    pub scenario_hash: String,
    /// The file, as given on the command line.
    pub scenario_path: String,
}

impl ScenarioKey {
    /// The key of a record.
    pub fn of(record: &RunRecord) -> Self {
        Self {
            scenario: record.scenario.clone(),
            scenario_hash: record.scenario_hash.clone(),
            scenario_path: record.scenario_path.clone(),
        }
    }
}

/// A scenario's parameters as one run (its smallest seed) reported them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ScenarioParameters {
    /// The run's seed.
    pub seed: u64,
    /// Faulty phase (ms).
    pub duration_ms: u64,
    /// Settle bound (ms).
    pub settle_ms: u64,
    /// The run's first faults (at most [`MAX_FAULTS_SHOWN`]).
    pub faults: Vec<FaultRecord>,
    /// How many faults the run had.
    pub faults_total: usize,
}

impl ScenarioParameters {
    fn of(record: &RunRecord) -> Self {
        Self {
            seed: record.seed,
            duration_ms: record.duration_ms,
            settle_ms: record.settle_ms,
            faults: record.faults.iter().take(MAX_FAULTS_SHOWN).cloned().collect(),
            faults_total: record.faults.len(),
        }
    }

    /// The order that picks one run per scenario whatever the order runs
    /// arrive in: the smallest seed, then the smallest parameters.
    fn precedes(&self, other: &Self) -> bool {
        let key = |p: &Self| (p.seed, p.duration_ms, p.settle_ms, p.faults_total);
        key(self) < key(other)
    }
}

/// Figures of one scenario's runs (or of the pooled overflow).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ScenarioStats {
    verdicts: VerdictCounts,
    converged: u64,
    after_last_heal_ms: Distribution,
    after_last_write_ms: Distribution,
    bytes_ratio_thousandths: Distribution,
    round_trips: Distribution,
    /// Smallest and largest sample interval (ms).
    sample_interval_ms: Option<(u64, u64)>,
    metrics: Metrics,
    coverage: Option<BoundedMap<String, CoverageCount>>,
    parameters: Option<ScenarioParameters>,
    /// Per fault kind, the runs that had one (a swarm draws its own mix each seed).
    fault_kinds: Option<BoundedMap<String, u64>>,
    /// Per run, each of [`CountMetric::ALL`], in that order.
    counts: [Distribution; CountMetric::ALL.len()],
    /// Non-passing runs by verdict, checker and message pattern.
    failure_groups: Option<BoundedMap<FailureKind, FailureGroup>>,
    slowest_after_last_heal: Smallest<SlowRun, SLOWEST_PER_SCENARIO>,
    slowest_after_last_write: Smallest<SlowRun, SLOWEST_PER_SCENARIO>,
}

/// Fault kinds kept apart per scenario; the rest are pooled.
pub const MAX_FAULT_KINDS: usize = 32;

/// A counter of a run whose distribution over runs a report shows (the
/// rest are only summed): how often the faults bit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CountMetric {
    /// Datagrams dropped.
    MessagesDropped,
    /// Crashes.
    Crashes,
    /// Rollbacks forced by late lanes.
    Rollbacks,
    /// Sessions abandoned.
    SessionsAbandoned,
    /// Conflicts resolved by the law.
    Conflicts,
}

impl CountMetric {
    /// Every one, in the order pages show them.
    pub const ALL: [Self; 5] =
        [Self::MessagesDropped, Self::Crashes, Self::Rollbacks, Self::SessionsAbandoned, Self::Conflicts];

    /// Its name on pages, a plural noun ("crashes").
    pub fn name(self) -> &'static str {
        match self {
            Self::MessagesDropped => "datagrams dropped",
            Self::Crashes => "crashes",
            Self::Rollbacks => "rollbacks",
            Self::SessionsAbandoned => "sessions abandoned",
            Self::Conflicts => "conflicts",
        }
    }

    /// Its name in chart ids and file names.
    pub fn id(self) -> &'static str {
        match self {
            Self::MessagesDropped => "dropped",
            Self::Crashes => "crashes",
            Self::Rollbacks => "rollbacks",
            Self::SessionsAbandoned => "sessions-abandoned",
            Self::Conflicts => "conflicts",
        }
    }

    /// Its value in a run's counters.
    pub fn of(self, metrics: &Metrics) -> u64 {
        match self {
            Self::MessagesDropped => metrics.messages_dropped,
            Self::Crashes => metrics.crashes,
            Self::Rollbacks => metrics.rollbacks,
            Self::SessionsAbandoned => metrics.sessions_abandoned,
            Self::Conflicts => metrics.conflicts,
        }
    }
}

// `counts` is indexed by discriminant, so ALL lists the metrics in that order.
const _: () = {
    let mut index = 0;
    while index < CountMetric::ALL.len() {
        assert!(CountMetric::ALL[index] as usize == index);
        index += 1;
    }
};

impl ScenarioStats {
    fn add(&mut self, record: &RunRecord) {
        self.verdicts.add(record.status);
        self.converged += u64::from(record.converged_at_ms.is_some());
        self.add_convergence(record);
        if let Some(thousandths) = bytes_ratio_thousandths(&record.metrics) {
            self.bytes_ratio_thousandths.record(thousandths);
        }
        self.round_trips.record(record.metrics.round_trips);
        for (distribution, metric) in self.counts.iter_mut().zip(CountMetric::ALL) {
            distribution.record(metric.of(&record.metrics));
        }
        let interval = record.sample_interval_ms;
        self.sample_interval_ms =
            Some(self.sample_interval_ms.map_or((interval, interval), |(lo, hi)| (lo.min(interval), hi.max(interval))));
        add_metrics(&mut self.metrics, &record.metrics);
        if record.status != Verdict::Pass {
            let row = FailureRow::of(record);
            let groups = self.failure_groups.get_or_insert_with(|| BoundedMap::new(MAX_SCENARIO_FAILURE_GROUPS));
            groups.slot(&FailureKind::of(&row)).merge(&FailureGroup::of(row));
        }
        self.add_context(record);
    }

    /// Convergence times and the slowest runs.
    fn add_convergence(&mut self, record: &RunRecord) {
        if let Some(ms) = record.converged_after_last_heal_ms {
            self.after_last_heal_ms.record(ms);
            self.slowest_after_last_heal.offer(SlowRun::of(record, ms));
        }
        if let Some(ms) = record.converged_after_last_write_ms {
            self.after_last_write_ms.record(ms);
            self.slowest_after_last_write.offer(SlowRun::of(record, ms));
        }
    }

    /// What the run says about the scenario: coverage, parameters, faults.
    fn add_context(&mut self, record: &RunRecord) {
        let coverage = self.coverage.get_or_insert_with(|| BoundedMap::new(MAX_COVERAGE_NAMES));
        for (name, count) in &record.coverage {
            coverage.slot(name).merge(&CoverageCount { total: *count, seeds_reached: u64::from(*count > 0) });
        }
        let parameters = ScenarioParameters::of(record);
        if self.parameters.as_ref().is_none_or(|kept| parameters.precedes(kept)) {
            self.parameters = Some(parameters);
        }
        let kinds = self.fault_kinds.get_or_insert_with(|| BoundedMap::new(MAX_FAULT_KINDS));
        let mut seen: Vec<&str> = record.faults.iter().map(|fault| fault.kind.as_str()).collect();
        seen.sort_unstable();
        seen.dedup();
        for kind in seen {
            *kinds.slot(&kind.to_owned()) += 1;
        }
    }

    /// Per run, the counter `metric`.
    pub fn count(&self, metric: CountMetric) -> &Distribution {
        &self.counts[metric as usize]
    }

    /// Non-passing runs grouped by (verdict, checker, message pattern), in
    /// that order; and the pooled rest beyond [`MAX_SCENARIO_FAILURE_GROUPS`].
    pub fn failure_groups(&self) -> (Vec<(&FailureKind, &FailureGroup)>, Option<&FailureGroup>) {
        match &self.failure_groups {
            Some(map) => (map.kept.iter().collect(), map.overflow.as_ref()),
            None => (Vec::new(), None),
        }
    }

    /// The [`SLOWEST_PER_SCENARIO`] runs slowest to converge after the last heal.
    pub fn slowest_after_last_heal(&self) -> &[SlowRun] {
        self.slowest_after_last_heal.items()
    }

    /// The [`SLOWEST_PER_SCENARIO`] runs slowest to converge after the last write.
    pub fn slowest_after_last_write(&self) -> &[SlowRun] {
        self.slowest_after_last_write.items()
    }

    /// Per fault kind, how many runs had at least one (and the runs of
    /// kinds past [`MAX_FAULT_KINDS`], pooled).
    pub fn fault_kinds(&self) -> (Vec<(&str, u64)>, Option<u64>) {
        match &self.fault_kinds {
            Some(map) => (map.kept.iter().map(|(name, runs)| (name.as_str(), *runs)).collect(), map.overflow),
            None => (Vec::new(), None),
        }
    }

    /// Runs by verdict.
    pub fn verdicts(&self) -> VerdictCounts {
        self.verdicts
    }

    /// Runs that converged.
    pub fn converged(&self) -> u64 {
        self.converged
    }

    /// Convergence after the last heal (ms).
    pub fn after_last_heal_ms(&self) -> &Distribution {
        &self.after_last_heal_ms
    }

    /// Convergence after the last write (ms).
    pub fn after_last_write_ms(&self) -> &Distribution {
        &self.after_last_write_ms
    }

    /// Bytes sent per byte of missing lanes, in thousandths.
    pub fn bytes_ratio_thousandths(&self) -> &Distribution {
        &self.bytes_ratio_thousandths
    }

    /// Round trips per run.
    pub fn round_trips(&self) -> &Distribution {
        &self.round_trips
    }

    /// Smallest and largest sample interval of the runs (ms).
    pub fn sample_interval_ms(&self) -> Option<(u64, u64)> {
        self.sample_interval_ms
    }

    /// Counters summed over the runs.
    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Coverage counters by name (the first [`MAX_COVERAGE_NAMES`] names),
    /// and the pooled rest.
    pub fn coverage(&self) -> (Vec<(&str, CoverageCount)>, Option<CoverageCount>) {
        match &self.coverage {
            Some(map) => (map.kept.iter().map(|(name, count)| (name.as_str(), *count)).collect(), map.overflow),
            None => (Vec::new(), None),
        }
    }

    /// The parameters of the scenario's smallest seed.
    pub fn parameters(&self) -> Option<&ScenarioParameters> {
        self.parameters.as_ref()
    }
}

impl Merge for ScenarioStats {
    fn merge(&mut self, other: &Self) {
        self.verdicts.merge(&other.verdicts);
        self.converged += other.converged;
        self.after_last_heal_ms.merge(&other.after_last_heal_ms);
        self.after_last_write_ms.merge(&other.after_last_write_ms);
        self.bytes_ratio_thousandths.merge(&other.bytes_ratio_thousandths);
        self.round_trips.merge(&other.round_trips);
        self.sample_interval_ms = match (self.sample_interval_ms, other.sample_interval_ms) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (mine, theirs) => mine.or(theirs),
        };
        add_metrics(&mut self.metrics, &other.metrics);
        for (mine, theirs) in self.counts.iter_mut().zip(&other.counts) {
            mine.merge(theirs);
        }
        self.failure_groups.merge(&other.failure_groups);
        self.slowest_after_last_heal.merge(&other.slowest_after_last_heal);
        self.slowest_after_last_write.merge(&other.slowest_after_last_write);
        self.coverage.merge(&other.coverage);
        self.fault_kinds.merge(&other.fault_kinds);
        if let Some(theirs) = &other.parameters
            && self.parameters.as_ref().is_none_or(|kept| theirs.precedes(kept))
        {
            self.parameters = Some(theirs.clone());
        }
    }
}

/// Bytes sent per byte of missing lanes in thousandths (rounded to
/// nearest), if any lanes were missing.
pub fn bytes_ratio_thousandths(metrics: &Metrics) -> Option<u64> {
    let missing = u128::from(metrics.bytes_missing);
    (missing > 0).then(|| {
        let thousandths = (u128::from(metrics.bytes_sent) * u128::from(RATIO_SCALE) + missing / 2) / missing;
        u64::try_from(thousandths).unwrap_or(u64::MAX)
    })
}

fn truncated(text: &str) -> String {
    match text.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// One non-passing run, listed with what reproduces it.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FailureRow {
    /// The seed.
    pub seed: u64,
    /// Scenario file.
    pub scenario_path: String,
    /// Scenario name.
    pub scenario: String,
    /// Scenario content hash.
    pub scenario_hash: String,
    /// Its verdict.
    pub verdict: Verdict,
    /// The first violation's checker, if any.
    pub checker: Option<String>,
    /// The first violation's message, or the run's note (at most
    /// [`MAX_DETAIL_CHARS`] characters).
    pub detail: String,
    /// The command that reproduces the run.
    pub reproduce: String,
}

impl FailureRow {
    fn of(record: &RunRecord) -> Self {
        let violation = record.violations.first();
        let detail = violation.map(|v| v.message.as_str()).or(record.note.as_deref()).unwrap_or_default();
        Self {
            seed: record.seed,
            scenario_path: record.scenario_path.clone(),
            scenario: record.scenario.clone(),
            scenario_hash: record.scenario_hash.clone(),
            verdict: record.status,
            checker: violation.map(|v| v.checker.clone()),
            detail: truncated(detail),
            reproduce: record.reproduce.clone(),
        }
    }
}

/// Non-passing runs of one verdict, first checker and message pattern.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FailureGroup {
    /// How many runs.
    pub runs: u64,
    /// The smallest [`EXAMPLES_PER_GROUP`] by (seed, path), with what
    /// reproduces each.
    examples: Smallest<FailureRow, EXAMPLES_PER_GROUP>,
}

impl FailureGroup {
    fn of(row: FailureRow) -> Self {
        let mut group = Self { runs: 1, examples: Smallest::default() };
        group.examples.offer(row);
        group
    }

    /// The first runs of the group by (seed, path), at most
    /// [`EXAMPLES_PER_GROUP`].
    pub fn examples(&self) -> &[FailureRow] {
        self.examples.items()
    }
}

impl Merge for FailureGroup {
    fn merge(&mut self, other: &Self) {
        self.runs += other.runs;
        self.examples.merge(&other.examples);
    }
}

/// One converged run and how long it took.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SlowRun {
    /// Milliseconds to converge (after the last heal or write).
    pub ms: u64,
    /// The seed.
    pub seed: u64,
    /// Scenario file.
    pub scenario_path: String,
    /// Scenario name.
    pub scenario: String,
    /// The command that reproduces the run.
    pub reproduce: String,
}

impl SlowRun {
    fn of(record: &RunRecord, ms: u64) -> Self {
        Self {
            ms,
            seed: record.seed,
            scenario_path: record.scenario_path.clone(),
            scenario: record.scenario.clone(),
            reproduce: record.reproduce.clone(),
        }
    }
}

impl Ord for SlowRun {
    /// Slowest first, then by seed and path.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        other
            .ms
            .cmp(&self.ms)
            .then_with(|| self.seed.cmp(&other.seed))
            .then_with(|| self.scenario_path.cmp(&other.scenario_path))
            .then_with(|| self.scenario.cmp(&other.scenario))
            .then_with(|| self.reproduce.cmp(&other.reproduce))
    }
}

impl PartialOrd for SlowRun {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// What groups non-passing runs: the verdict, the first violation's
/// checker and its message with numbers and ids masked, so twenty runs
/// that "did not converge" at twenty different times are one group.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct FailureKind {
    /// The verdict.
    pub verdict: Verdict,
    /// The first violation's checker; empty when the run has none.
    pub checker: String,
    /// The first violation's message (or the run's note) as a pattern:
    /// every word holding a digit (a number, a node `n3`, a lane id) is `#`.
    pub message: String,
}

impl FailureKind {
    fn of(row: &FailureRow) -> Self {
        Self {
            verdict: row.verdict,
            checker: row.checker.clone().unwrap_or_default(),
            message: message_pattern(&row.detail),
        }
    }
}

/// `text` with every word (a run of ASCII letters, digits and `_`) that
/// holds a digit replaced by `#`: what stays is the message's shape.
pub fn message_pattern(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.bytes().any(|b| b.is_ascii_digit()) {
            out.push('#');
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_ascii_alphanumeric() || c == '_' {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

/// A campaign's figures, fed one record at a time, in memory bounded
/// independently of the number of records. See the module docs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CampaignAggregate {
    name: String,
    verdicts: VerdictCounts,
    seeds: Option<(u64, u64)>,
    versions: BoundedMap<String, u64>,
    scenarios: BoundedMap<ScenarioKey, ScenarioStats>,
    failure_groups: BoundedMap<FailureKind, FailureGroup>,
    failures: Smallest<FailureRow, FAILURES_LISTED>,
    inconclusive: Smallest<FailureRow, FAILURES_LISTED>,
    slowest_after_last_heal: Smallest<SlowRun, SLOWEST_LISTED>,
    slowest_after_last_write: Smallest<SlowRun, SLOWEST_LISTED>,
    /// Scenario parameters by content hash, from the campaign manifests.
    parameters: BoundedMap<String, Parameters>,
    /// The invariants the manifests say every run was checked against.
    invariants: BoundedMap<ManifestInvariant, ()>,
}

/// Invariants kept (a campaign has about fifteen).
pub const MAX_INVARIANTS: usize = 64;

/// One scenario's parameters, dotted key to value (a manifest's `params`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Parameters(BTreeMap<String, String>);

impl Merge for Parameters {
    fn merge(&mut self, other: &Self) {
        // One content hash has one set of parameters: keep whichever is known.
        if self.0.is_empty() {
            self.0.clone_from(&other.0);
        }
    }
}

impl CampaignAggregate {
    /// An empty campaign; `name` is shown in legends and headings.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            verdicts: VerdictCounts::default(),
            seeds: None,
            versions: BoundedMap::new(MAX_VERSIONS),
            scenarios: BoundedMap::new(MAX_SCENARIOS),
            failure_groups: BoundedMap::new(MAX_FAILURE_GROUPS),
            failures: Smallest::default(),
            inconclusive: Smallest::default(),
            slowest_after_last_heal: Smallest::default(),
            slowest_after_last_write: Smallest::default(),
            parameters: BoundedMap::new(MAX_SCENARIOS),
            invariants: BoundedMap::new(MAX_INVARIANTS),
        }
    }

    /// Takes the scenario parameters a results file's manifest lists.
    pub fn add_manifest(&mut self, manifest: &CampaignManifest) {
        for scenario in &manifest.scenarios {
            self.parameters.slot(&scenario.hash).merge(&Parameters(scenario.params.clone()));
        }
        for invariant in &manifest.invariants {
            self.invariants.slot(invariant);
        }
    }

    /// The invariants checked in every run, by name (empty when no
    /// results file had a manifest; past [`MAX_INVARIANTS`], the first ones).
    pub fn invariants(&self) -> Vec<&ManifestInvariant> {
        self.invariants.kept.keys().collect()
    }

    /// The parameters of the scenario with content `hash`, if a manifest
    /// listed them.
    pub fn scenario_parameters(&self, hash: &str) -> Option<&BTreeMap<String, String>> {
        self.parameters.kept.get(hash).map(|parameters| &parameters.0).filter(|parameters| !parameters.is_empty())
    }

    /// Adds one run.
    pub fn add(&mut self, record: &RunRecord) {
        self.verdicts.add(record.status);
        self.seeds =
            Some(self.seeds.map_or((record.seed, record.seed), |(lo, hi)| (lo.min(record.seed), hi.max(record.seed))));
        *self.versions.slot(&record.scx_version) += 1;
        self.scenarios.slot(&ScenarioKey::of(record)).add(record);
        if record.status != Verdict::Pass {
            let row = FailureRow::of(record);
            self.failure_groups.slot(&FailureKind::of(&row)).merge(&FailureGroup::of(row.clone()));
            if record.status == Verdict::Fail {
                self.failures.offer(row);
            } else {
                self.inconclusive.offer(row);
            }
        }
        if let Some(ms) = record.converged_after_last_heal_ms {
            self.slowest_after_last_heal.offer(SlowRun::of(record, ms));
        }
        if let Some(ms) = record.converged_after_last_write_ms {
            self.slowest_after_last_write.offer(SlowRun::of(record, ms));
        }
    }

    /// Adds every run of `other` (a shard, another results file); the name
    /// stays this one's.
    pub fn merge(&mut self, other: &CampaignAggregate) {
        self.verdicts.merge(&other.verdicts);
        self.seeds = match (self.seeds, other.seeds) {
            (Some((a, b)), Some((c, d))) => Some((a.min(c), b.max(d))),
            (mine, theirs) => mine.or(theirs),
        };
        self.versions.merge(&other.versions);
        self.scenarios.merge(&other.scenarios);
        self.failure_groups.merge(&other.failure_groups);
        self.failures.merge(&other.failures);
        self.inconclusive.merge(&other.inconclusive);
        self.slowest_after_last_heal.merge(&other.slowest_after_last_heal);
        self.slowest_after_last_write.merge(&other.slowest_after_last_write);
        self.parameters.merge(&other.parameters);
        self.invariants.merge(&other.invariants);
    }

    /// Shown in legends and headings.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Runs by verdict.
    pub fn verdicts(&self) -> VerdictCounts {
        self.verdicts
    }

    /// Every run added.
    pub fn runs(&self) -> u64 {
        self.verdicts.runs()
    }

    /// Smallest and largest seed.
    pub fn seeds(&self) -> Option<(u64, u64)> {
        self.seeds
    }

    /// Tool versions with their runs, ascending; and runs of versions
    /// beyond the first [`MAX_VERSIONS`].
    pub fn versions(&self) -> (Vec<(&str, u64)>, u64) {
        (self.versions.kept.iter().map(|(v, n)| (v.as_str(), *n)).collect(), self.versions.overflow.unwrap_or(0))
    }

    /// Scenarios in key order (name, hash, path): at most [`MAX_SCENARIOS`].
    pub fn scenarios(&self) -> impl Iterator<Item = (&ScenarioKey, &ScenarioStats)> {
        self.scenarios.kept.iter()
    }

    /// Runs of scenarios beyond the [`MAX_SCENARIOS`] smallest keys, pooled.
    pub fn scenarios_overflow(&self) -> Option<&ScenarioStats> {
        self.scenarios.overflow.as_ref()
    }

    /// Every scenario's figures pooled: counts, distributions, sums.
    pub fn overall_stats(&self) -> ScenarioStats {
        let mut all = ScenarioStats::default();
        for stats in self.scenarios.kept.values().chain(&self.scenarios.overflow) {
            all.merge(stats);
        }
        all.parameters = None;
        all
    }

    /// Non-passing runs grouped by (verdict, first checker), in that
    /// order; and the pooled rest beyond [`MAX_FAILURE_GROUPS`] groups.
    pub fn failure_groups(&self) -> (Vec<(&FailureKind, &FailureGroup)>, Option<&FailureGroup>) {
        (self.failure_groups.kept.iter().collect(), self.failure_groups.overflow.as_ref())
    }

    /// The first [`FAILURES_LISTED`] engine failures by (seed, path).
    pub fn failures(&self) -> &[FailureRow] {
        &self.failures.items
    }

    /// The first [`FAILURES_LISTED`] timeouts, harness errors and runs that
    /// tested nothing, by (seed, path).
    pub fn inconclusive(&self) -> &[FailureRow] {
        &self.inconclusive.items
    }

    /// The [`SLOWEST_LISTED`] runs slowest to converge after the last heal.
    pub fn slowest_after_last_heal(&self) -> &[SlowRun] {
        &self.slowest_after_last_heal.items
    }

    /// The [`SLOWEST_LISTED`] runs slowest to converge after the last write.
    pub fn slowest_after_last_write(&self) -> &[SlowRun] {
        &self.slowest_after_last_write.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    struct Sum(u64);

    impl Merge for Sum {
        fn merge(&mut self, other: &Self) {
            self.0 += other.0;
        }
    }

    #[test]
    fn bounded_maps_keep_the_smallest_keys_in_any_order() {
        let keys: Vec<u64> = (0..50).map(|i| i * 37 % 50).collect();
        let fill = |keys: &[u64]| {
            let mut map: BoundedMap<u64, Sum> = BoundedMap::new(10);
            for key in keys {
                map.slot(key).merge(&Sum(*key + 1));
            }
            map
        };
        let forward = fill(&keys);
        let mut backward: Vec<u64> = keys.clone();
        backward.reverse();
        assert_eq!(forward.kept, fill(&backward).kept);
        assert_eq!(forward.kept.keys().copied().collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());
        assert_eq!(forward.overflow, Some(Sum((11..=50).sum())));
        let mut merged = fill(&keys[..20]);
        merged.merge(&fill(&keys[20..]));
        assert_eq!((merged.kept, merged.overflow), (forward.kept, forward.overflow));
    }

    #[test]
    fn smallest_keeps_the_least_items_sorted() {
        let mut smallest = Smallest::<_, 3>::default();
        for item in [9, 4, 7, 1, 8, 4] {
            smallest.offer(item);
        }
        assert_eq!(smallest.items, [1, 4, 4]);
    }

    #[test]
    fn ratios_are_rounded_thousandths() {
        let metrics = |sent, missing| Metrics { bytes_sent: sent, bytes_missing: missing, ..Metrics::default() };
        assert_eq!(bytes_ratio_thousandths(&metrics(1, 3)), Some(333));
        assert_eq!(bytes_ratio_thousandths(&metrics(2, 3)), Some(667));
        assert_eq!(bytes_ratio_thousandths(&metrics(5, 0)), None);
        assert_eq!(bytes_ratio_thousandths(&metrics(u64::MAX, 1)), Some(u64::MAX));
    }

    #[test]
    fn message_patterns_mask_numbers_and_ids_but_keep_words() {
        assert_eq!(
            message_pattern(
                "live nodes did not converge within the settle bound of 20000 ms after the last heal at 8400 ms"
            ),
            "live nodes did not converge within the settle bound of # ms after the last heal at # ms"
        );
        assert_eq!(
            message_pattern("n3 acknowledged lane 9f2c01ab (seq 4) but holds a different lane"),
            "# acknowledged lane # (seq #) but holds a different lane"
        );
        assert_eq!(message_pattern("n12's snapshot: no_digits here, é2"), "#'s snapshot: no_digits here, é#");
        assert_eq!(message_pattern(""), "");
    }

    #[test]
    fn details_are_cut_on_a_character_boundary() {
        let long = "é".repeat(MAX_DETAIL_CHARS + 5);
        assert_eq!(truncated(&long).chars().count(), MAX_DETAIL_CHARS + 1);
        assert_eq!(truncated("short"), "short");
    }
}
