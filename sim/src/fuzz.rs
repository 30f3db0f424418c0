//! Campaigns: many seeds of many scenarios, in flat memory, with results
//! streamed in one canonical order.
//!
//! The unit of work is an [`Item`]: one seed of one scenario. Items are
//! ordered by (seed, scenario path), and that order is everything:
//! - **execution** walks it lazily (seed-major, so a wall-clock budget gives
//!   every scenario seeds, and ten million seeds cost nothing to plan),
//!   after the seeds of a failures file, which run first;
//! - **output** is written in it: a small reorder buffer holds records that
//!   finished early, and workers wait when it is full, so memory does not
//!   grow with the campaign and a results file is byte-identical whatever
//!   `--jobs`, shards or finishing order (`scx merge` sorts shards the same way);
//! - **resume** merge-walks it against an earlier results file.
//!
//! Invariant: a seed's record depends only on (scenario, seed); each seed
//! runs on a fresh OS thread under a wall-clock watchdog, and the campaign
//! keeps no per-seed state once a record is written.

use crate::checkers;
use crate::plan;
use crate::record::{self, CampaignManifest, ManifestInvariant, ManifestScenario, ManifestSeed, RunRecord};
use crate::runner::{self, Ending, RunOptions};
use crate::scenario::Scenario;
use crate::shard::{SeedRange, Shard};
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

/// Records a worker may finish ahead of the oldest unwritten one, per job,
/// before it waits: the reorder buffer's bound.
const AHEAD_PER_JOB: u64 = 64;
/// Records between two returns of free heap pages to the OS.
const TRIM_EVERY_RECORDS: u64 = 256;
/// How often waiting threads look at the stop flags.
const POLL: Duration = Duration::from_millis(50);

/// One scenario of a campaign.
#[derive(Clone, Debug)]
pub struct CampaignScenario {
    /// The path, normalised (it appears in records and reproduce commands).
    pub path: String,
    /// The parsed scenario.
    pub scenario: Scenario,
    /// Its content hash.
    pub hash: String,
}

impl CampaignScenario {
    /// A campaign scenario from its normalised path and parsed content.
    pub fn new(path: String, scenario: Scenario) -> Self {
        let hash = scenario.content_hash();
        Self { path, scenario, hash }
    }
}

/// One seed of one scenario. Ordered by seed, then by scenario (whose
/// indexes follow the scenarios' paths), which is the results order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Item {
    /// The seed.
    pub seed: u64,
    /// Index into [`Campaign::scenarios`].
    pub scenario: usize,
}

/// What a campaign runs.
#[derive(Clone, Debug)]
pub struct Campaign {
    /// The scenarios, sorted by path, each path once.
    scenarios: Vec<CampaignScenario>,
    /// Seeds; `None` uses each scenario's own default seeds.
    pub seeds: Option<SeedRange>,
    /// This process's shard.
    pub shard: Shard,
    /// Parallel seeds.
    pub jobs: usize,
    /// Run each seed twice and compare trace hashes.
    pub check_determinism: bool,
    /// Wall-clock limit per seed run.
    pub seed_timeout: Duration,
    /// Seeds of a failures file that run first (shard 1 only), sorted.
    extras: Vec<Item>,
}

impl Campaign {
    /// A campaign over `scenarios` (sorted by path here; a path given twice
    /// runs once). `replay_first` names seeds by scenario path; those of
    /// scenarios not in the campaign are ignored.
    pub fn new(
        mut scenarios: Vec<CampaignScenario>,
        seeds: Option<SeedRange>,
        shard: Shard,
        replay_first: &[(String, u64)],
    ) -> Self {
        scenarios.sort_by(|a, b| a.path.cmp(&b.path));
        scenarios.dedup_by(|a, b| a.path == b.path);
        let mut campaign = Self {
            scenarios,
            seeds,
            shard,
            jobs: 1,
            check_determinism: false,
            seed_timeout: Duration::from_secs(300),
            extras: Vec::new(),
        };
        if shard.index == 1 {
            let mut extras: Vec<Item> =
                replay_first.iter().filter_map(|(path, seed)| campaign.item_of(path, *seed)).collect();
            extras.sort_unstable();
            extras.dedup();
            campaign.extras = extras;
        }
        campaign
    }

    /// The scenarios, sorted by path.
    pub fn scenarios(&self) -> &[CampaignScenario] {
        &self.scenarios
    }

    /// The seeds scenario `index` runs (before sharding).
    pub fn range(&self, index: usize) -> SeedRange {
        self.seeds.unwrap_or_else(|| {
            let seeds = &self.scenarios[index].scenario.seeds;
            SeedRange { start: seeds.start, end: seeds.end }
        })
    }

    /// The item for a scenario path and seed, if the path is one of ours.
    pub fn item_of(&self, path: &str, seed: u64) -> Option<Item> {
        let scenario = self.scenarios.binary_search_by(|entry| entry.path.as_str().cmp(path)).ok()?;
        Some(Item { seed, scenario })
    }

    /// Whether `item` is part of this shard's plan (its range and shard),
    /// as opposed to a failures-file seed outside it.
    pub fn in_plan(&self, item: Item) -> bool {
        self.range(item.scenario).owns(self.shard, item.seed)
    }

    /// Whether `item` runs first because a failures file named it.
    pub fn is_extra(&self, item: Item) -> bool {
        self.extras.binary_search(&item).is_ok()
    }

    /// Whether `item` belongs to this campaign at all.
    pub fn contains(&self, item: Item) -> bool {
        self.in_plan(item) || self.is_extra(item)
    }

    /// How many seed runs this shard plans, without enumerating them.
    pub fn planned(&self) -> u64 {
        let main: u64 = (0..self.scenarios.len()).map(|index| self.range(index).count(self.shard)).sum();
        main + self.extras.iter().filter(|item| !self.in_plan(**item)).count() as u64
    }

    /// Seeds planned per scenario (its plan plus its failures-file extras).
    pub fn planned_for(&self, index: usize) -> u64 {
        let extras = self.extras.iter().filter(|item| item.scenario == index && !self.in_plan(**item)).count();
        self.range(index).count(self.shard) + extras as u64
    }

    /// Every item of this shard in results order, lazily.
    pub fn output_order(&self) -> impl Iterator<Item = Item> + '_ {
        MergeSorted { a: self.plan_order().peekable(), b: self.extras.iter().copied().peekable() }
    }

    /// The manifest that heads this shard's results file.
    pub fn manifest(&self) -> CampaignManifest {
        CampaignManifest {
            format: CampaignManifest::FORMAT,
            scx_version: crate::record::SCX_VERSION.to_owned(),
            shard: self.shard.to_string(),
            scenarios: (self.scenarios.iter().enumerate())
                .map(|(index, entry)| ManifestScenario {
                    path: entry.path.clone(),
                    hash: entry.hash.clone(),
                    seeds: self.range(index).to_string(),
                    params: entry.scenario.parameters(),
                })
                .collect(),
            // Determinism is checked only when asked (each seed runs twice).
            invariants: (crate::checkers::INVARIANTS.iter())
                .filter(|(name, _, _)| *name != "determinism" || self.check_determinism)
                .map(|(name, kind, property)| ManifestInvariant {
                    name: (*name).to_owned(),
                    kind: (*kind).to_owned(),
                    property: (*property).to_owned(),
                })
                .collect(),
            // Only seeds outside the plan: a plan seed that failed earlier and
            // runs first again changes no file, so it changes no manifest.
            replayed_first: (self.extras.iter())
                .filter(|item| !self.in_plan(**item))
                .map(|item| ManifestSeed { scenario: self.scenarios[item.scenario].path.clone(), seed: item.seed })
                .collect(),
        }
    }

    /// Items in execution order: failures-file seeds first (minus
    /// `extras_done`), then the plan, minus the ascending stream `done` (the
    /// records of an earlier results file, when resuming).
    pub fn execution_order<'a>(
        &'a self,
        extras_done: &[Item],
        done: impl Iterator<Item = Item> + 'a,
    ) -> impl Iterator<Item = Item> + 'a {
        let extras: Vec<Item> = self.extras.iter().copied().filter(|item| !extras_done.contains(item)).collect();
        let plan = self.plan_order().filter(|item| !self.is_extra(*item));
        extras.into_iter().chain(Without::new(plan, done))
    }

    fn plan_order(&self) -> PlanOrder {
        plan_order((0..self.scenarios.len()).map(|index| self.range(index)), self.shard)
    }
}

/// The items `shard` owes of scenarios with seed `ranges` (indexed as the
/// ranges are) plus `extras` (ascending), in results order, lazily: what a
/// results file of that shard holds when it is complete.
pub fn shard_order(ranges: &[SeedRange], shard: Shard, extras: Vec<Item>) -> impl Iterator<Item = Item> + use<> {
    MergeSorted { a: plan_order(ranges.iter().copied(), shard).peekable(), b: extras.into_iter().peekable() }
}

fn plan_order(ranges: impl Iterator<Item = SeedRange>, shard: Shard) -> PlanOrder {
    let mut sources: Vec<Box<dyn Iterator<Item = u64> + Send>> = Vec::new();
    let mut heap = BinaryHeap::new();
    for (index, range) in ranges.enumerate() {
        let mut seeds = range.seeds(shard);
        if let Some(seed) = seeds.next() {
            heap.push(Reverse(Item { seed, scenario: index }));
        }
        sources.push(Box::new(seeds));
    }
    PlanOrder { sources, heap }
}

/// A k-way merge of the scenarios' seed sequences: items ascending.
struct PlanOrder {
    sources: Vec<Box<dyn Iterator<Item = u64> + Send>>,
    heap: BinaryHeap<Reverse<Item>>,
}

impl Iterator for PlanOrder {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        let Reverse(item) = self.heap.pop()?;
        if let Some(seed) = self.sources[item.scenario].next() {
            self.heap.push(Reverse(Item { seed, scenario: item.scenario }));
        }
        Some(item)
    }
}

/// The sorted union of two ascending streams, each item once.
struct MergeSorted<A: Iterator<Item = Item>, B: Iterator<Item = Item>> {
    a: std::iter::Peekable<A>,
    b: std::iter::Peekable<B>,
}

impl<A: Iterator<Item = Item>, B: Iterator<Item = Item>> Iterator for MergeSorted<A, B> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        match (self.a.peek().copied(), self.b.peek().copied()) {
            (Some(a), Some(b)) if a == b => {
                self.b.next();
                self.a.next()
            }
            (Some(a), Some(b)) if b < a => self.b.next(),
            (Some(_), _) => self.a.next(),
            (None, _) => self.b.next(),
        }
    }
}

/// The items of an ascending stream that are not in another ascending stream.
pub struct Without<I: Iterator<Item = Item>, D: Iterator<Item = Item>> {
    items: I,
    done: std::iter::Peekable<D>,
}

impl<I: Iterator<Item = Item>, D: Iterator<Item = Item>> Without<I, D> {
    /// `items` minus `done`; both ascending.
    pub fn new(items: I, done: D) -> Self {
        Self { items, done: done.peekable() }
    }
}

impl<I: Iterator<Item = Item>, D: Iterator<Item = Item>> Iterator for Without<I, D> {
    type Item = Item;

    fn next(&mut self) -> Option<Item> {
        for item in self.items.by_ref() {
            while self.done.next_if(|done| *done < item).is_some() {}
            if self.done.next_if_eq(&item).is_none() {
                return Some(item);
            }
        }
        None
    }
}

/// Why a campaign stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stopped {
    /// Every planned seed ran.
    Completed,
    /// The wall-clock budget (`--duration`) ended first.
    Budget,
    /// A signal asked it to stop.
    Interrupted,
}

/// How a campaign is steered from outside: the stop flag (set by signal
/// handlers) and the wall-clock budget.
pub struct Control<'a> {
    /// Set when the campaign must stop now; in-flight seeds are abandoned.
    pub stop: Arc<AtomicBool>,
    /// Asked before each seed starts; `false` ends the campaign after the
    /// seeds in flight.
    pub keep_going: &'a (dyn Fn() -> bool + Sync),
}

/// Runs one seed of the campaign; `None` when the campaign was stopped
/// before the run finished (its record would be incomplete).
pub fn run_seed(campaign: &Campaign, item: Item, stop: &Arc<AtomicBool>) -> Option<RunRecord> {
    let entry = &campaign.scenarios[item.scenario];
    let spec = plan::resolve(&entry.scenario, item.seed, None);
    let options = RunOptions { stop: Some(stop.clone()), ..RunOptions::default() };
    let outcome = runner::run_watched(&spec, options.clone(), campaign.seed_timeout);
    if outcome.ending == Ending::Interrupted {
        return None;
    }
    let mut record = record::from_outcome(&outcome, &entry.path, &entry.hash);
    if campaign.check_determinism && matches!(outcome.ending, Ending::Finished | Ending::NothingTested { .. }) {
        let again = runner::run_watched(&spec, options, campaign.seed_timeout);
        if again.ending == Ending::Interrupted {
            return None;
        }
        if let Some(violation) = checkers::determinism::check(&outcome, &again) {
            record.status = record::Verdict::Fail;
            record.violations.push(record::violation_record(&violation));
        }
    }
    Some(record)
}

/// Hands out items in execution order, holding workers back while the
/// reorder buffer is full.
struct Dispatcher<I> {
    items: Mutex<I>,
    /// Plan items handed out (failures-file seeds excluded: they run first
    /// and may be written last).
    dispatched: AtomicU64,
    /// Plan items written.
    written: AtomicU64,
    room: Condvar,
    ahead: u64,
}

impl<I: Iterator<Item = Item>> Dispatcher<I> {
    fn next(&self, campaign: &Campaign, control: &Control<'_>) -> Option<Item> {
        let mut items = self.items.lock().expect("no worker panics holding the dispatcher");
        loop {
            if control.stop.load(Ordering::Relaxed) || !(control.keep_going)() {
                return None;
            }
            let dispatched = self.dispatched.load(Ordering::Relaxed);
            if dispatched < self.written.load(Ordering::Relaxed) + self.ahead {
                break;
            }
            items = self.room.wait_timeout(items, POLL).expect("no worker panics holding the dispatcher").0;
        }
        let item = items.next()?;
        if !campaign.is_extra(item) {
            self.dispatched.fetch_add(1, Ordering::Relaxed);
        }
        Some(item)
    }
}

/// Runs `execution` on the campaign's workers and hands each record to
/// `sink` on the calling thread, in `expected` order (the same items,
/// ascending). Records that finish early wait in a bounded buffer. When the
/// campaign stops early, the records that finished are still handed over,
/// ascending, and in-flight seeds are abandoned.
pub fn run(
    campaign: &Campaign,
    execution: impl Iterator<Item = Item> + Send,
    expected: impl Iterator<Item = Item>,
    control: &Control<'_>,
    sink: &mut dyn FnMut(Item, RunRecord) -> anyhow::Result<()>,
) -> anyhow::Result<Stopped> {
    let jobs = campaign.jobs.max(1);
    let dispatcher = Dispatcher {
        items: Mutex::new(execution),
        dispatched: AtomicU64::new(0),
        written: AtomicU64::new(0),
        room: Condvar::new(),
        ahead: AHEAD_PER_JOB * jobs as u64,
    };
    let exhausted = AtomicBool::new(false);
    let (sender, receiver) = mpsc::channel::<(Item, Option<RunRecord>)>();
    std::thread::scope(|scope| -> anyhow::Result<Stopped> {
        for _ in 0..jobs {
            let sender = sender.clone();
            let (dispatcher, exhausted) = (&dispatcher, &exhausted);
            scope.spawn(move || {
                while let Some(item) = dispatcher.next(campaign, control) {
                    let record = run_seed(campaign, item, &control.stop);
                    if sender.send((item, record)).is_err() {
                        return;
                    }
                }
                if !control.stop.load(Ordering::Relaxed) && (control.keep_going)() {
                    exhausted.store(true, Ordering::Relaxed);
                }
            });
        }
        drop(sender);
        let written = collect(campaign, expected, &receiver, &dispatcher, sink);
        // On an error, stop the workers before the scope waits for them.
        if written.is_err() {
            control.stop.store(true, Ordering::Relaxed);
        }
        written?;
        Ok(if control.stop.load(Ordering::Relaxed) {
            Stopped::Interrupted
        } else if exhausted.load(Ordering::Relaxed) {
            Stopped::Completed
        } else {
            Stopped::Budget
        })
    })
}

/// The collector: receives records, writes them in order.
fn collect<I: Iterator<Item = Item>>(
    campaign: &Campaign,
    expected: impl Iterator<Item = Item>,
    receiver: &mpsc::Receiver<(Item, Option<RunRecord>)>,
    dispatcher: &Dispatcher<I>,
    sink: &mut dyn FnMut(Item, RunRecord) -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    let mut expected = expected.peekable();
    let mut buffer: BTreeMap<Item, RunRecord> = BTreeMap::new();
    let mut hand_over = |item: Item, record: RunRecord| -> anyhow::Result<()> {
        sink(item, record)?;
        if !campaign.is_extra(item) {
            dispatcher.written.fetch_add(1, Ordering::Relaxed);
            dispatcher.room.notify_all();
        }
        Ok(())
    };
    loop {
        while let Some(next) = expected.peek().copied() {
            let Some(record) = buffer.remove(&next) else { break };
            expected.next();
            hand_over(next, record)?;
            if dispatcher.written.load(Ordering::Relaxed).is_multiple_of(TRIM_EVERY_RECORDS) {
                crate::heap::release_free_memory();
            }
        }
        match receiver.recv_timeout(POLL) {
            Ok((item, Some(record))) => {
                buffer.insert(item, record);
            }
            Ok((_, None)) | Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
    }
    // Stopped early: what finished is still written, ascending.
    for (item, record) in std::mem::take(&mut buffer) {
        hand_over(item, record)?;
    }
    Ok(())
}

/// Runs the whole campaign and returns every record in results order: for
/// tests and small campaigns (it holds every record in memory).
pub fn run_to_vec(campaign: &Campaign) -> anyhow::Result<Vec<RunRecord>> {
    let stop = Arc::new(AtomicBool::new(false));
    let control = Control { stop, keep_going: &|| true };
    let mut records = Vec::new();
    let execution = campaign.execution_order(&[], std::iter::empty());
    fuzz_run_into(campaign, execution, &control, &mut records)?;
    Ok(records)
}

fn fuzz_run_into(
    campaign: &Campaign,
    execution: impl Iterator<Item = Item> + Send,
    control: &Control<'_>,
    records: &mut Vec<RunRecord>,
) -> anyhow::Result<Stopped> {
    run(campaign, execution, campaign.output_order(), control, &mut |_, record| {
        records.push(record);
        Ok(())
    })
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

/// The failures-file line for a record that did not pass.
pub fn failure_line(record: &RunRecord) -> String {
    let why = match (record.violations.first(), &record.note) {
        (Some(violation), _) => {
            let message: String = violation.message.chars().take(120).collect();
            format!("{}: {}", violation.checker, message.replace('\n', " "))
        }
        (None, Some(note)) => format!("{}: {}", record.status.name(), note.chars().take(120).collect::<String>()),
        (None, None) => record.status.name().to_owned(),
    };
    format!("{} seed {} # {why}", record.scenario_path, record.seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn campaign(ranges: &[(&str, u64, u64)], shard: Shard, extras: &[(&str, u64)]) -> Campaign {
        let scenarios = ranges
            .iter()
            .map(|(path, start, end)| {
                let text = format!(
                    "name = \"{path}\"\nduration = \"1s\"\nsettle = \"1s\"\nseeds = \"{start}..{end}\"\n[cluster]\nnodes = 2\ntopology = \"mesh\"\n"
                );
                CampaignScenario::new((*path).to_owned(), Scenario::from_toml(&text, path).expect("a valid scenario"))
            })
            .collect();
        let extras: Vec<(String, u64)> = extras.iter().map(|(path, seed)| ((*path).to_owned(), *seed)).collect();
        Campaign::new(scenarios, None, shard, &extras)
    }

    #[test]
    fn output_order_is_seed_major_and_sorted_by_path_whatever_the_argument_order() {
        let c = campaign(&[("b.toml", 0, 3), ("a.toml", 1, 4)], Shard::ALL, &[]);
        let order: Vec<(u64, &str)> =
            c.output_order().map(|item| (item.seed, c.scenarios()[item.scenario].path.as_str())).collect();
        assert_eq!(order, [(0, "b.toml"), (1, "a.toml"), (1, "b.toml"), (2, "a.toml"), (2, "b.toml"), (3, "a.toml")]);
        assert_eq!(c.planned(), 6);
    }

    #[test]
    fn failures_file_seeds_run_first_and_are_written_in_order() {
        let c = campaign(&[("a.toml", 0, 4)], Shard::ALL, &[("a.toml", 9), ("a.toml", 2), ("z.toml", 1)]);
        let execution: Vec<u64> = c.execution_order(&[], std::iter::empty()).map(|item| item.seed).collect();
        assert_eq!(execution, [2, 9, 0, 1, 3], "extras first, each seed once, unknown scenarios ignored");
        let output: Vec<u64> = c.output_order().map(|item| item.seed).collect();
        assert_eq!(output, [0, 1, 2, 3, 9]);
        assert_eq!(c.planned(), 5);
    }

    #[test]
    fn resuming_skips_what_is_done_wherever_it_is() {
        let c = campaign(&[("a.toml", 0, 6)], Shard::ALL, &[]);
        let done = [0, 1, 4].map(|seed| Item { seed, scenario: 0 });
        let rest: Vec<u64> = c.execution_order(&[], done.into_iter()).map(|item| item.seed).collect();
        assert_eq!(rest, [2, 3, 5]);
    }

    #[test]
    fn ten_million_seeds_plan_lazily() {
        let mut c = campaign(&[("a.toml", 0, 1)], Shard::new(2, 3).unwrap(), &[]);
        c.seeds = Some(SeedRange { start: 0, end: 10_000_000 });
        assert_eq!(c.planned(), 3_333_333);
        assert_eq!(c.output_order().take(3).map(|item| item.seed).collect::<Vec<_>>(), [1, 4, 7]);
    }
}
