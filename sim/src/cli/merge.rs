//! `scx merge`: shard results joined into the file one machine would have
//! written, streamed (a k-way merge of sorted files, flat memory).
//!
//! Every input opens with its campaign manifest (`crate::manifest`): inputs
//! that are not shards of one campaign (another scx version, scenario,
//! content hash, seed range or shard count) are an error before anything is
//! written. The merge writes the whole campaign's manifest, then the
//! records in the order `scx fuzz` writes them, (seed, scenario path). Each
//! record must be one its file's shard runs. Two records of one seed and
//! scenario that differ are a conflict (a failing shard must never vanish
//! behind a passing copy): an error. An exact duplicate (a retried shard) is
//! kept once, with a warning. Runs the campaign planned but no input holds
//! are missing: listed by shard, and an error (the output is removed) unless
//! `--allow-missing`.

use super::BadInput;
use super::args::MergeArgs;
use crate::fuzz::Item;
use crate::manifest::{self, Plan, Shards};
use crate::record::RunRecord;
use anyhow::Context as _;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Lines, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// How many missing runs of one shard are named one by one.
const NAMED_MISSING: usize = 3;

/// One input being read.
struct Input {
    path: PathBuf,
    lines: Lines<BufReader<File>>,
    number: usize,
    plan: Plan,
}

/// A record with where it came from.
struct Located {
    item: Item,
    line: String,
    record: RunRecord,
    input: usize,
    number: usize,
}

impl Input {
    /// Opens `path` and reads its manifest.
    fn open(path: &Path) -> anyhow::Result<Self> {
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut lines = BufReader::new(file).lines();
        let first = lines.next().transpose().with_context(|| format!("reading {}", path.display()))?;
        let at = || format!("{}:1", path.display());
        let first = first.ok_or_else(|| BadInput(format!("{}: is empty, not a results file", path.display())))?;
        let manifest = manifest::from_line(&first).map_err(|error| {
            BadInput(format!(
                "{}: not a campaign manifest ({error}); merge results files written by scx fuzz of this version",
                at()
            ))
        })?;
        let plan = Plan::new(manifest).map_err(|error| BadInput(format!("{}: {error}", at())))?;
        Ok(Self { path: path.to_path_buf(), lines, number: 1, plan })
    }

    fn next(&mut self, index: usize) -> anyhow::Result<Option<Located>> {
        loop {
            let Some(line) = self.lines.next() else { return Ok(None) };
            self.number += 1;
            let line = line.with_context(|| format!("reading {}", self.path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let at = || format!("{}:{}", self.path.display(), self.number);
            let record: RunRecord = serde_json::from_str(&line)
                .map_err(|error| BadInput(format!("{}: not a result record: {error}", at())))?;
            let manifest = &self.plan.manifest;
            let item = self.plan.item_of(&record.scenario_path, record.seed).ok_or_else(|| {
                BadInput(format!(
                    "{}: {} is not a scenario of the campaign its manifest names",
                    at(),
                    record.scenario_path
                ))
            })?;
            let entry = &manifest.scenarios[item.scenario];
            if record.scx_version != manifest.scx_version || record.scenario_hash != entry.hash {
                return Err(BadInput(format!(
                    "{}: the record was written by scx {} on scenario content {}, but its manifest says scx {} and content {}; merge results of one version and one content",
                    at(),
                    record.scx_version,
                    record.scenario_hash,
                    manifest.scx_version,
                    entry.hash
                ))
                .into());
            }
            if !self.plan.owns(item) {
                return Err(BadInput(format!(
                    "{}: {} seed {} is not a run of shard {} (seeds {})",
                    at(),
                    record.scenario_path,
                    record.seed,
                    self.plan.shard,
                    entry.seeds
                ))
                .into());
            }
            return Ok(Some(Located { item, line, record, input: index, number: self.number }));
        }
    }
}

/// Runs of the campaign no input holds, by shard.
#[derive(Default)]
struct Missing {
    count: u64,
    named: Vec<Item>,
    last: Option<Item>,
}

impl Missing {
    fn add(&mut self, item: Item) {
        self.count += 1;
        if self.named.len() < NAMED_MISSING {
            self.named.push(item);
        }
        self.last = Some(item);
    }
}

/// Runs `scx merge`. If it fails after it began writing `--out`, the
/// partial file is removed: a merge cut short by a conflict or missing runs
/// must not look like a campaign's results.
pub(super) fn run(args: &MergeArgs) -> anyhow::Result<ExitCode> {
    let mut writing = false;
    let result = merge(args, &mut writing);
    if result.is_err()
        && writing
        && let Some(out) = &args.out
    {
        let _ = std::fs::remove_file(out);
    }
    result
}

fn merge(args: &MergeArgs, writing: &mut bool) -> anyhow::Result<ExitCode> {
    if let Some(out) = &args.out
        && args
            .inputs
            .iter()
            .any(|input| crate::scenario::normalise_path(input) == crate::scenario::normalise_path(out))
    {
        return Err(BadInput(format!("--out {} is also an input; write the merge elsewhere", out.display())).into());
    }
    let mut inputs = Vec::new();
    for path in &args.inputs {
        inputs.push(Input::open(path)?);
    }
    let named: Vec<(String, Plan)> =
        inputs.iter().map(|input| (input.path.display().to_string(), input.plan.clone())).collect();
    let shards = Shards::join(&named).map_err(BadInput)?;
    let mut heap = BinaryHeap::new();
    let mut pending: BTreeMap<usize, Located> = BTreeMap::new();
    for (index, input) in inputs.iter_mut().enumerate() {
        if let Some(located) = input.next(index)? {
            heap.push(Reverse((located.item, index)));
            pending.insert(index, located);
        }
    }
    let mut sink: Box<dyn Write> = match &args.out {
        Some(path) => {
            let file = File::create(path).with_context(|| format!("creating {}", path.display()))?;
            *writing = true;
            Box::new(BufWriter::new(file))
        }
        None => Box::new(BufWriter::new(io::stdout())),
    };
    writeln!(sink, "{}", manifest::to_line(&shards.whole.manifest)).context("writing the merged results")?;
    let mut plan = shards.whole_order().peekable();
    let mut missing: BTreeMap<u64, Missing> = BTreeMap::new();
    let mut last: Option<Located> = None;
    let (mut written, mut failed, mut duplicates) = (0u64, 0u64, 0u64);
    while let Some(Reverse((_, index))) = heap.pop() {
        let located = pending.remove(&index).expect("every input in the heap has its next record pending");
        if let Some(next) = inputs[index].next(index)? {
            if next.item <= located.item {
                return Err(BadInput(format!(
                    "{}:{}: records are out of order or repeated (seed {} of {} after seed {} of {}); merge results written by scx fuzz",
                    inputs[index].path.display(),
                    next.number,
                    next.item.seed,
                    next.record.scenario_path,
                    located.item.seed,
                    located.record.scenario_path
                ))
                .into());
            }
            heap.push(Reverse((next.item, index)));
            pending.insert(index, next);
        }
        if let Some(previous) = &last
            && previous.item == located.item
        {
            if previous.record != located.record {
                return Err(BadInput(format!(
                    "{}:{} and {}:{} disagree about {} seed {} ({} vs {}); a seed's record depends only on the seed, so one of the runs is wrong",
                    inputs[previous.input].path.display(),
                    previous.number,
                    inputs[located.input].path.display(),
                    located.number,
                    located.record.scenario_path,
                    located.item.seed,
                    previous.record.status.name(),
                    located.record.status.name()
                ))
                .into());
            }
            duplicates += 1;
            eprintln!(
                "warning: {}:{} repeats {} seed {} (kept once)",
                inputs[located.input].path.display(),
                located.number,
                located.record.scenario_path,
                located.item.seed
            );
            continue;
        }
        // Every record is of its shard's plan, so of the whole one: what the
        // walk passes on the way to it, no input holds.
        while let Some(owed) = plan.next_if(|owed| *owed < located.item) {
            missing.entry(shards.first.shard_running(owed)).or_default().add(owed);
        }
        plan.next_if_eq(&located.item);
        writeln!(sink, "{}", located.line).context("writing the merged results")?;
        written += 1;
        failed += u64::from(!located.record.passed());
        last = Some(located);
    }
    for owed in plan {
        missing.entry(shards.first.shard_running(owed)).or_default().add(owed);
    }
    sink.flush().context("writing the merged results")?;
    let lacking: u64 = missing.values().map(|missing| missing.count).sum();
    let summary = format!(
        "merged {written} records from {} files: {} passed, {failed} did not pass{}",
        args.inputs.len(),
        written - failed,
        if duplicates > 0 { format!("; {duplicates} exact duplicates dropped") } else { String::new() }
    );
    if lacking > 0 {
        let report = missing_report(&shards, &missing, &inputs, lacking);
        if !args.allow_missing {
            return Err(BadInput(format!(
                "{report}\nresume each incomplete shard (scx fuzz ... --shard K/N --resume --out FILE) and merge again, or pass --allow-missing to merge what ran"
            ))
            .into());
        }
        eprintln!("warning: {report}");
    }
    eprintln!("{summary}");
    Ok(ExitCode::SUCCESS)
}

/// Which runs no input holds, shard by shard.
fn missing_report(shards: &Shards, missing: &BTreeMap<u64, Missing>, inputs: &[Input], lacking: u64) -> String {
    let count = shards.first.shard.count;
    let scenarios = &shards.whole.manifest.scenarios;
    let name = |item: &Item| format!("{} seed {}", scenarios[item.scenario].path, item.seed);
    let mut report = format!("the merge lacks {lacking} runs of the campaign:");
    for (index, missing) in missing {
        let files: Vec<String> = (inputs.iter())
            .filter(|input| input.plan.shard.index == *index)
            .map(|input| input.path.display().to_string())
            .collect();
        if files.is_empty() {
            report += &format!("\n  shard {index}/{count}: no results file given ({} runs)", missing.count);
            continue;
        }
        let mut seeds: Vec<String> = missing.named.iter().map(name).collect();
        if missing.count > missing.named.len() as u64 {
            let last = missing.last.as_ref().map(name).unwrap_or_default();
            seeds.push(format!("... {last}"));
        }
        report += &format!(
            "\n  shard {index}/{count} ({}): {} of {} runs missing: {}",
            files.join(", "),
            missing.count,
            shards.first.owed_by(*index) + if *index == 1 { shards.whole.extras.len() as u64 } else { 0 },
            seeds.join(", ")
        );
    }
    report
}
