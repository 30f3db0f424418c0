//! `scx merge`: shard results joined into the file one machine would have
//! written, streamed (a k-way merge of sorted files, flat memory).
//!
//! Records are ordered by (seed, scenario path), the order `scx fuzz`
//! writes. Two records of one seed and scenario that differ are a conflict
//! (a failing shard must never vanish behind a passing copy): an error. An
//! exact duplicate (a retried shard) is kept once, with a warning. Records of
//! different scx versions, or one scenario path with two content hashes, do
//! not belong in one campaign: an error.

use super::BadInput;
use super::args::MergeArgs;
use crate::record::RunRecord;
use anyhow::Context as _;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, Lines, Write};
use std::path::PathBuf;
use std::process::ExitCode;

/// One input being read.
struct Input {
    path: PathBuf,
    lines: Lines<BufReader<File>>,
    number: usize,
}

/// A record with where it came from.
struct Located {
    key: (u64, String),
    line: String,
    record: RunRecord,
    input: usize,
    number: usize,
}

impl Input {
    fn next(&mut self, index: usize) -> anyhow::Result<Option<Located>> {
        loop {
            let Some(line) = self.lines.next() else { return Ok(None) };
            self.number += 1;
            let line = line.with_context(|| format!("reading {}", self.path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let record: RunRecord = serde_json::from_str(&line).map_err(|error| {
                BadInput(format!("{}:{}: not a result record: {error}", self.path.display(), self.number))
            })?;
            let key = (record.seed, record.scenario_path.clone());
            return Ok(Some(Located { key, line, record, input: index, number: self.number }));
        }
    }
}

/// Runs `scx merge`.
pub(super) fn run(args: &MergeArgs) -> anyhow::Result<ExitCode> {
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
        let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        inputs.push(Input { path: path.clone(), lines: BufReader::new(file).lines(), number: 0 });
    }
    let mut heap = BinaryHeap::new();
    let mut pending: BTreeMap<usize, Located> = BTreeMap::new();
    for (index, input) in inputs.iter_mut().enumerate() {
        if let Some(located) = input.next(index)? {
            heap.push(Reverse((located.key.clone(), index)));
            pending.insert(index, located);
        }
    }
    let mut sink: Box<dyn Write> = match &args.out {
        Some(path) => {
            Box::new(BufWriter::new(File::create(path).with_context(|| format!("creating {}", path.display()))?))
        }
        None => Box::new(BufWriter::new(io::stdout())),
    };
    let mut checks = Checks::default();
    let mut last: Option<Located> = None;
    let (mut written, mut failed, mut duplicates) = (0u64, 0u64, 0u64);
    while let Some(Reverse((_, index))) = heap.pop() {
        let located = pending.remove(&index).expect("every input in the heap has its next record pending");
        if let Some(next) = inputs[index].next(index)? {
            if next.key < located.key {
                return Err(BadInput(format!(
                    "{}:{}: records are out of order (seed {} of {} after seed {} of {}); merge results written by scx fuzz",
                    inputs[index].path.display(),
                    next.number,
                    next.key.0,
                    next.key.1,
                    located.key.0,
                    located.key.1
                ))
                .into());
            }
            heap.push(Reverse((next.key.clone(), index)));
            pending.insert(index, next);
        }
        checks.check(&located, &inputs)?;
        if let Some(previous) = &last
            && previous.key == located.key
        {
            if previous.record != located.record {
                return Err(BadInput(format!(
                    "{}:{} and {}:{} disagree about {} seed {} ({} vs {}); a seed's record depends only on the seed, so one of the runs is wrong",
                    inputs[previous.input].path.display(),
                    previous.number,
                    inputs[located.input].path.display(),
                    located.number,
                    located.key.1,
                    located.key.0,
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
                located.key.1,
                located.key.0
            );
            continue;
        }
        writeln!(sink, "{}", located.line).context("writing the merged results")?;
        written += 1;
        failed += u64::from(!located.record.passed());
        last = Some(located);
    }
    sink.flush().context("writing the merged results")?;
    eprintln!(
        "merged {written} records from {} files: {} passed, {failed} did not pass{}",
        args.inputs.len(),
        written - failed,
        if duplicates > 0 { format!("; {duplicates} exact duplicates dropped") } else { String::new() }
    );
    Ok(ExitCode::SUCCESS)
}

/// One campaign: one scx version, one content per scenario path.
#[derive(Default)]
struct Checks {
    version: Option<(String, String)>,
    hashes: BTreeMap<String, (String, String)>,
}

impl Checks {
    fn check(&mut self, located: &Located, inputs: &[Input]) -> anyhow::Result<()> {
        let at = format!("{}:{}", inputs[located.input].path.display(), located.number);
        let record = &located.record;
        let (version, version_at) =
            self.version.get_or_insert_with(|| (record.scx_version.clone(), at.clone())).clone();
        if version != record.scx_version {
            return Err(BadInput(format!(
                "{at} was written by scx {} but {version_at} by scx {version}; merge results of one version",
                record.scx_version
            ))
            .into());
        }
        let (hash, hash_at) = self
            .hashes
            .entry(record.scenario_path.clone())
            .or_insert_with(|| (record.scenario_hash.clone(), at.clone()))
            .clone();
        if hash != record.scenario_hash {
            return Err(BadInput(format!(
                "{at} ran {} with content {} but {hash_at} with content {hash}; the scenario changed between shards",
                record.scenario_path, record.scenario_hash
            ))
            .into());
        }
        Ok(())
    }
}
