//! `scx fuzz`: a campaign's outputs, checked before the work and written as
//! the work goes.
//!
//! - Every output path is checked (and created) before the first seed runs,
//!   and none may be an input.
//! - Results stream to `--out` (or stdout) one flushed line per seed, in
//!   the campaign's order, so a kill at any moment leaves a valid, sorted
//!   file. A new campaign truncates an older file at once; `--resume`
//!   merges the old file with the new records into a sibling file and
//!   renames it over the old one at the end.
//! - JUnit XML, the failures file and the summary are fed record by record
//!   and keep bounded state.
//! - SIGINT and SIGTERM stop the campaign: in-flight seeds are abandoned,
//!   what finished is written, the summary printed, and the exit code is
//!   130 or 143.

use super::BadInput;
use super::args::FuzzArgs;
use super::output::{self, CampaignProgress};
use crate::fuzz::{self, Campaign, CampaignScenario, Item, Stopped};
use crate::record::RunRecord;
use crate::scenario::normalise_path;
use crate::shard::{Shard, ShardArg};
use anyhow::Context as _;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Runs `scx fuzz`.
pub(super) fn run(args: &FuzzArgs) -> anyhow::Result<ExitCode> {
    let mut scenarios = Vec::new();
    for path in &args.scenarios {
        let scenario = super::load(path)?;
        scenarios.push(CampaignScenario::new(normalise_path(path), scenario));
    }
    let (shard, shard_source) = resolve_shard(args.shard, |name| std::env::var(name).ok())?;
    let seeds = match (args.seeds, args.count) {
        (Some(range), _) => Some(range),
        (None, Some(0)) => return Err(BadInput("--count must be at least 1".into()).into()),
        (None, Some(count)) => Some(crate::shard::SeedRange { start: 0, end: count }),
        (None, None) => None,
    };
    if args.resume && args.out.is_none() {
        return Err(BadInput("--resume needs --out: the results file to continue".into()).into());
    }
    let listed = match &args.failures {
        Some(path) if path.exists() => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let listed = fuzz::read_failures(&text, &path.display().to_string()).map_err(BadInput)?;
            listed.into_iter().map(|(scenario, seed)| (normalise_path(Path::new(&scenario)), seed)).collect()
        }
        _ => Vec::new(),
    };
    let mut campaign = Campaign::new(scenarios, seeds, shard, &listed);
    campaign.jobs = args.jobs.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from)).max(1);
    campaign.check_determinism = args.check_determinism;
    campaign.seed_timeout = args.timeout;
    check_outputs(args)?;
    eprintln!(
        "campaign: {} scenario{}, seeds {}, shard {shard} ({shard_source}); runs planned: {}",
        campaign.scenarios().len(),
        if campaign.scenarios().len() == 1 { "" } else { "s" },
        seeds.map_or_else(|| "from each scenario".to_owned(), |range| range.to_string()),
        campaign.planned()
    );
    let earlier = match (&args.out, args.resume) {
        // A retried shard's first attempt may have died before writing:
        // resuming nothing is starting, so one command serves every attempt.
        (Some(out), true) if !out.exists() => {
            eprintln!("nothing to resume at {}: starting the campaign there", out.display());
            None
        }
        (Some(out), true) => Some(Earlier::scan(out, &campaign)?),
        _ => None,
    };
    let mut sinks = Sinks::open(args, &campaign, listed, earlier.as_ref())?;
    let stop = Arc::new(AtomicBool::new(false));
    let signals = Signals::register(&stop)?;
    let progress = CampaignProgress::start(campaign.planned(), args.duration);
    if let Some(earlier) = &earlier {
        progress.resumed(earlier.records);
        eprintln!(
            "resuming {}: {} records kept{}",
            earlier.path.display(),
            earlier.records,
            if earlier.torn_bytes > 0 {
                format!(", a torn last line of {} bytes dropped", earlier.torn_bytes)
            } else {
                String::new()
            }
        );
    }
    let done = || earlier.as_ref().map(|earlier| earlier.items(&campaign)).transpose();
    let execution = campaign.execution_order(
        earlier.as_ref().map_or(&[][..], |earlier| &earlier.extras_done),
        done()?.into_iter().flatten(),
    );
    let expected = fuzz::Without::new(campaign.output_order(), done()?.into_iter().flatten());
    let keep_going = || progress.keep_going();
    let control = fuzz::Control { stop: stop.clone(), keep_going: &keep_going };
    let stopped = fuzz::run(&campaign, execution, expected, &control, &mut |item, record| {
        progress.finished(&record);
        sinks.write(item, record)
    })?;
    progress.finish();
    let summary = sinks.finish(&campaign, stopped, progress.elapsed_secs())?;
    eprint!("{summary}");
    Ok(match signals.received() {
        Some(code) => ExitCode::from(code),
        None => sinks.exit_code(&campaign),
    })
}

/// The shard to run and where it came from. Engine variables are read only
/// with `--shard auto`; without `--shard`, one that is set earns a note,
/// since every pod of an engine would then run the whole campaign.
fn resolve_shard(arg: Option<ShardArg>, get: impl Fn(&str) -> Option<String>) -> anyhow::Result<(Shard, String)> {
    match arg {
        Some(ShardArg::Fixed(shard)) => Ok((shard, "from --shard".into())),
        Some(ShardArg::Auto) => {
            match Shard::from_env(&get).map_err(|error| BadInput(format!("--shard auto: {error}")))? {
                Some((shard, source)) => Ok((shard, format!("from {source}"))),
                None => Err(BadInput(
                    "--shard auto found none of SCX_SHARD, JOB_COMPLETION_INDEX or SLURM_ARRAY_TASK_ID set; \
                 give --shard K/N or run it under a scale-out engine"
                        .into(),
                )
                .into()),
            }
        }
        None => {
            let set = Shard::env_names_set(&get);
            if !set.is_empty() {
                eprintln!(
                    "note: {} set but --shard not given, so this runs the whole campaign; pass --shard auto to run one shard",
                    set.join(", ")
                );
            }
            Ok((Shard::ALL, "no --shard".into()))
        }
    }
}

/// Refuses outputs that would overwrite an input or each other, before any
/// seed runs.
fn check_outputs(args: &FuzzArgs) -> anyhow::Result<()> {
    let outputs: Vec<(&str, &PathBuf)> =
        [("--out", &args.out), ("--junit", &args.junit), ("--failures", &args.failures)]
            .into_iter()
            .filter_map(|(flag, path)| path.as_ref().map(|path| (flag, path)))
            .collect();
    for (flag, path) in &outputs {
        if path.is_dir() {
            return Err(BadInput(format!("{flag} {}: is a directory; give a file", path.display())).into());
        }
        for input in &args.scenarios {
            if same_file(path, input) {
                return Err(BadInput(format!(
                    "{flag} {} is the scenario file {}; writing there would destroy it",
                    path.display(),
                    input.display()
                ))
                .into());
            }
        }
    }
    for (index, (flag, path)) in outputs.iter().enumerate() {
        for (other_flag, other) in &outputs[index + 1..] {
            if same_file(path, other) {
                return Err(BadInput(format!("{flag} and {other_flag} both name {}", path.display())).into());
            }
        }
    }
    if let Some(dir) = &args.report {
        if dir.is_file() {
            return Err(BadInput(format!("--report {}: is a file; give a directory", dir.display())).into());
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating the report directory {}", dir.display()))?;
    }
    Ok(())
}

/// Whether two paths name one file: equal after normalisation, or the same
/// file on disk.
pub(super) fn same_file(a: &Path, b: &Path) -> bool {
    if normalise_path(a) == normalise_path(b) {
        return true;
    }
    match (std::fs::canonicalize(a), std::fs::canonicalize(b)) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

/// An earlier results file being resumed: validated once, then read again
/// as streams (never held in memory).
struct Earlier {
    path: PathBuf,
    /// Whether its first line, the manifest, is whole.
    manifest: bool,
    /// Good records in it.
    records: u64,
    /// Bytes of a torn last line, dropped.
    torn_bytes: u64,
    /// Length of the good part.
    good_len: u64,
    /// Failures-file seeds it already holds.
    extras_done: Vec<Item>,
}

impl Earlier {
    /// Reads `path` once: every line must be a record of this campaign, in
    /// order; a torn last line is dropped.
    fn scan(path: &Path, campaign: &Campaign) -> anyhow::Result<Self> {
        let file = File::open(path).with_context(|| format!("opening {} to resume it", path.display()))?;
        let mut reader = BufReader::new(file);
        let mut earlier = Self {
            path: path.to_path_buf(),
            manifest: false,
            records: 0,
            torn_bytes: 0,
            good_len: 0,
            extras_done: Vec::new(),
        };
        let mut previous: Option<Item> = None;
        let mut line = String::new();
        for number in 1.. {
            line.clear();
            let read = reader.read_line(&mut line).with_context(|| format!("reading {}", path.display()))?;
            if read == 0 {
                break;
            }
            if !line.ends_with('\n') {
                // The last write was cut short: drop it.
                earlier.torn_bytes = read as u64;
                break;
            }
            if number == 1 {
                check_manifest(path, &line, campaign)?;
                earlier.manifest = true;
                continue;
            }
            let item = parse_line(path, number, &line, campaign)?;
            if previous.is_some_and(|previous| previous >= item) {
                return Err(BadInput(format!(
                    "{}:{number}: records are out of order; a results file is sorted by seed and scenario",
                    path.display()
                ))
                .into());
            }
            previous = Some(item);
            if campaign.is_extra(item) {
                earlier.extras_done.push(item);
            }
            earlier.records += 1;
            earlier.good_len += read as u64;
        }
        Ok(earlier)
    }

    /// The items it holds, ascending (a fresh stream of the file; a read
    /// error ends it, and the copy of the records reports that error).
    fn items(&self, campaign: &Campaign) -> anyhow::Result<impl Iterator<Item = Item> + use<>> {
        Ok(earlier_records(self, campaign)?.map_while(|result| result.ok().map(|(item, _)| item)))
    }
}

/// The first line of a file being resumed: the manifest of this campaign.
fn check_manifest(path: &Path, line: &str, campaign: &Campaign) -> anyhow::Result<()> {
    let found = crate::manifest::from_line(line).map_err(|error| {
        BadInput(format!(
            "{}:1: not a campaign manifest ({error}): the file was not written by this scx fuzz; start a new campaign instead of --resume",
            path.display()
        ))
    })?;
    match crate::manifest::difference(&found, &campaign.manifest(), true) {
        None => Ok(()),
        Some(why) => Err(BadInput(format!(
            "{}:1: the file is another campaign's ({why}); start a new campaign instead of --resume",
            path.display()
        ))
        .into()),
    }
}

/// The item of one results line, checked to belong to `campaign`.
fn parse_line(path: &Path, number: usize, line: &str, campaign: &Campaign) -> anyhow::Result<Item> {
    let record: RunRecord = serde_json::from_str(line.trim_end())
        .map_err(|error| BadInput(format!("{}:{number}: not a result record: {error}", path.display())))?;
    let item = campaign.item_of(&record.scenario_path, record.seed).filter(|item| campaign.contains(*item));
    let entry = item.map(|item| &campaign.scenarios()[item.scenario]);
    match (item, entry) {
        (Some(item), Some(entry))
            if entry.hash == record.scenario_hash && record.scx_version == crate::record::SCX_VERSION =>
        {
            Ok(item)
        }
        (Some(_), Some(entry)) => Err(BadInput(format!(
            "{}:{number}: {} seed {} was run by scx {} on scenario {}, but this campaign is scx {} on scenario {}; start a new campaign instead of --resume",
            path.display(),
            record.scenario_path,
            record.seed,
            record.scx_version,
            record.scenario_hash,
            crate::record::SCX_VERSION,
            entry.hash
        ))
        .into()),
        _ => Err(BadInput(format!(
            "{}:{number}: {} seed {} is not part of this campaign (scenarios, seeds or shard differ); start a new campaign instead of --resume",
            path.display(),
            record.scenario_path,
            record.seed
        ))
        .into()),
    }
}

/// Where a campaign's results go, record by record.
struct Sinks {
    /// The results file (or stdout).
    results: Box<dyn Write>,
    /// When resuming: the sibling file being written, the final path, and
    /// the earlier records not yet copied.
    resume: Option<Resume>,
    junit: Option<Junit>,
    failures: Option<Failures>,
    report: Option<PathBuf>,
    png: bool,
    /// The campaign's statistics for `--report`, in bounded memory.
    aggregate: Option<scx_reports::CampaignAggregate>,
    tally: output::Tally,
}

struct Resume {
    partial: PathBuf,
    target: PathBuf,
    earlier: std::iter::Peekable<EarlierRecords>,
}

impl Sinks {
    fn open(
        args: &FuzzArgs,
        campaign: &Campaign,
        listed: Vec<(String, u64)>,
        earlier: Option<&Earlier>,
    ) -> anyhow::Result<Self> {
        let mut resume = None;
        let results: Box<dyn Write> = match (&args.out, earlier) {
            (Some(out), Some(earlier)) => {
                let partial = sibling(out, "partial");
                let file = File::create(&partial).with_context(|| format!("creating {}", partial.display()))?;
                // The campaign borrows nothing from here on: collect the stream's
                // owner by re-opening inside a 'static iterator.
                let records = earlier_records(earlier, campaign)?;
                resume = Some(Resume { partial, target: out.clone(), earlier: records.peekable() });
                Box::new(BufWriter::new(file))
            }
            (Some(out), None) => {
                let file = File::create(out).with_context(|| format!("creating the results file {}", out.display()))?;
                Box::new(BufWriter::new(file))
            }
            (None, _) => Box::new(BufWriter::new(io::stdout())),
        };
        let mut results = results;
        let describe = || args.out.as_ref().map_or_else(|| "stdout".to_owned(), |out| out.display().to_string());
        writeln!(results, "{}", crate::manifest::to_line(&campaign.manifest()))
            .and_then(|()| results.flush())
            .with_context(|| format!("writing results to {}", describe()))?;
        let junit = args.junit.as_ref().map(|path| Junit::create(path)).transpose()?;
        let failures = args.failures.as_ref().map(|path| Failures { path: path.clone(), listed, added: 0 });
        let report_name = args.out.as_ref().map_or_else(|| "campaign".to_owned(), |out| out.display().to_string());
        let aggregate = args.report.as_ref().map(|_| {
            let mut aggregate = scx_reports::CampaignAggregate::new(report_name);
            aggregate.add_manifest(&campaign.manifest());
            aggregate
        });
        let mut sinks = Self {
            results,
            resume,
            junit,
            failures,
            report: args.report.clone(),
            png: args.png,
            aggregate,
            tally: output::Tally::new(campaign.scenarios().len()),
        };
        sinks.tally.planned = campaign.planned();
        Ok(sinks)
    }

    /// Writes one record (after any earlier records that sort before it).
    fn write(&mut self, item: Item, record: RunRecord) -> anyhow::Result<()> {
        self.copy_earlier(Some(item))?;
        self.emit(item, &record, None)?;
        self.tally.new_records += 1;
        if !record.passed()
            && let Some(failures) = &mut self.failures
        {
            failures.add(&record)?;
        }
        Ok(())
    }

    /// Copies earlier records that sort before `until` (all when `None`).
    fn copy_earlier(&mut self, until: Option<Item>) -> anyhow::Result<()> {
        loop {
            let Some(resume) = &mut self.resume else { return Ok(()) };
            let next = match resume.earlier.peek() {
                None => return Ok(()),
                Some(Ok((item, _))) if until.is_some_and(|until| *item >= until) => return Ok(()),
                Some(_) => resume.earlier.next(),
            };
            let Some(Ok((item, line))) = next else {
                return next.map_or(Ok(()), |result| result.map(|_| ()));
            };
            let record: RunRecord = serde_json::from_str(&line)?;
            self.emit(item, &record, Some(&line))?;
        }
    }

    fn emit(&mut self, item: Item, record: &RunRecord, line: Option<&str>) -> anyhow::Result<()> {
        let path = self.resume.as_ref().map(|resume| resume.partial.clone());
        let describe = || path.as_ref().map_or_else(|| "stdout".to_owned(), |path| path.display().to_string());
        match line {
            Some(line) => writeln!(self.results, "{line}"),
            None => writeln!(self.results, "{}", serde_json::to_string(record)?),
        }
        .and_then(|()| self.results.flush())
        .with_context(|| format!("writing results to {}", describe()))?;
        self.tally.add(item, record);
        if let Some(junit) = &mut self.junit {
            junit.add(record)?;
        }
        if let Some(aggregate) = &mut self.aggregate {
            aggregate.add(record);
        }
        Ok(())
    }

    fn finish(&mut self, campaign: &Campaign, stopped: Stopped, elapsed_secs: f64) -> anyhow::Result<String> {
        self.copy_earlier(None)?;
        self.results.flush().context("flushing the results")?;
        if let Some(resume) = self.resume.take() {
            std::fs::rename(&resume.partial, &resume.target)
                .with_context(|| format!("replacing {} with {}", resume.target.display(), resume.partial.display()))?;
        }
        if let Some(junit) = self.junit.take() {
            junit.finish(&self.tally)?;
        }
        if let Some(failures) = &self.failures
            && failures.added > 0
        {
            eprintln!("{} new failing seeds recorded in {}", failures.added, failures.path.display());
        }
        if let (Some(dir), Some(aggregate)) = (&self.report, self.aggregate.take()) {
            let speed = scx_reports::Speed { runs: self.tally.new_records, secs: elapsed_secs, jobs: campaign.jobs };
            let options = scx_reports::ReportOptions { title: None, png: self.png, speed: Some(speed) };
            let files = scx_reports::write_campaign_report(&[aggregate], dir, &options)?;
            eprintln!("report: {}", files.html.display());
        }
        let summary = self.tally.summary(campaign, stopped, elapsed_secs);
        output::append_step_summary(&self.tally, campaign.shard);
        Ok(summary)
    }

    fn exit_code(&self, campaign: &Campaign) -> ExitCode {
        if self.tally.all_passed()
            && self.tally.unrun_scenarios(campaign).is_empty()
            && self.tally.coverage_failures(campaign).is_empty()
            && self.tally.total() > 0
        {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        }
    }
}

/// The records of an earlier results file with their items, as a stream
/// that owns its file.
type EarlierRecords = Box<dyn Iterator<Item = anyhow::Result<(Item, String)>> + Send>;

/// The earlier records as a stream that owns its file.
fn earlier_records(earlier: &Earlier, campaign: &Campaign) -> anyhow::Result<EarlierRecords> {
    // Items are resolved now, against this campaign, into owned values.
    let path = earlier.path.clone();
    let file = File::open(&path).with_context(|| format!("opening {}", path.display()))?;
    let scenarios: Vec<(String, String)> =
        campaign.scenarios().iter().map(|entry| (entry.path.clone(), entry.hash.clone())).collect();
    let skip = usize::from(earlier.manifest);
    let lines = BufReader::new(file).lines().skip(skip).take(earlier.records as usize);
    Ok(Box::new(lines.enumerate().map(move |(index, line)| {
        let index = index + skip;
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        let record: RunRecord = serde_json::from_str(&line)
            .map_err(|error| BadInput(format!("{}:{}: not a result record: {error}", path.display(), index + 1)))?;
        let scenario = scenarios
            .binary_search_by(|(scenario, _)| scenario.as_str().cmp(&record.scenario_path))
            .map_err(|_| BadInput(format!("{}:{}: changed while being resumed", path.display(), index + 1)))?;
        Ok((Item { seed: record.seed, scenario }, line))
    })))
}

/// `path` with an extra extension, in the same directory (so a rename is atomic).
fn sibling(path: &Path, extension: &str) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{extension}"));
    path.with_file_name(name)
}

/// JUnit XML, streamed: test cases go to a sibling file as they come, and
/// the counts the header needs are written around them at the end.
struct Junit {
    path: PathBuf,
    body_path: PathBuf,
    body: BufWriter<File>,
}

impl Junit {
    fn create(path: &Path) -> anyhow::Result<Self> {
        let body_path = sibling(path, "partial");
        let body = File::create(&body_path).with_context(|| format!("creating {}", body_path.display()))?;
        // Fail now, not after the campaign, if the target cannot be written.
        File::create(path).with_context(|| format!("creating the JUnit file {}", path.display()))?;
        Ok(Self { path: path.to_path_buf(), body_path, body: BufWriter::new(body) })
    }

    fn add(&mut self, record: &RunRecord) -> anyhow::Result<()> {
        self.body
            .write_all(output::junit_case(record).as_bytes())
            .with_context(|| format!("writing {}", self.body_path.display()))
    }

    fn finish(mut self, tally: &output::Tally) -> anyhow::Result<()> {
        self.body.flush().with_context(|| format!("writing {}", self.body_path.display()))?;
        drop(self.body);
        let (head, tail) = output::junit_frame(tally.total(), tally.not_passed());
        let write = || -> io::Result<()> {
            let mut out = BufWriter::new(File::create(&self.path)?);
            out.write_all(head.as_bytes())?;
            io::copy(&mut File::open(&self.body_path)?, &mut out)?;
            out.write_all(tail.as_bytes())?;
            out.flush()?;
            std::fs::remove_file(&self.body_path)
        };
        write().with_context(|| format!("writing the JUnit file {}", self.path.display()))
    }
}

/// The failures file: new failing seeds are appended as they are found.
struct Failures {
    path: PathBuf,
    listed: Vec<(String, u64)>,
    added: u64,
}

impl Failures {
    fn add(&mut self, record: &RunRecord) -> anyhow::Result<()> {
        if self.listed.iter().any(|(path, seed)| *path == record.scenario_path && *seed == record.seed) {
            return Ok(());
        }
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .with_context(|| format!("opening the failures file {}", self.path.display()))?;
        writeln!(file, "{}", fuzz::failure_line(record))
            .with_context(|| format!("writing the failures file {}", self.path.display()))?;
        self.added += 1;
        Ok(())
    }
}

/// SIGINT and SIGTERM: the first sets the stop flag; a second one exits at once.
struct Signals {
    interrupt: Arc<AtomicBool>,
    terminate: Arc<AtomicBool>,
}

impl Signals {
    fn register(stop: &Arc<AtomicBool>) -> anyhow::Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let signals = Self { interrupt: Arc::new(AtomicBool::new(false)), terminate: Arc::new(AtomicBool::new(false)) };
        for (signal, flag, code) in [(SIGINT, &signals.interrupt, 130), (SIGTERM, &signals.terminate, 143)] {
            // A second signal while stopping exits at once (the order of registration matters).
            signal_hook::flag::register_conditional_shutdown(signal, code, stop.clone())
                .context("installing a signal handler")?;
            signal_hook::flag::register(signal, stop.clone()).context("installing a signal handler")?;
            signal_hook::flag::register(signal, flag.clone()).context("installing a signal handler")?;
        }
        Ok(signals)
    }

    /// The exit code of the signal received, if one was.
    fn received(&self) -> Option<u8> {
        if self.interrupt.load(Ordering::Relaxed) {
            Some(130)
        } else if self.terminate.load(Ordering::Relaxed) {
            Some(143)
        } else {
            None
        }
    }
}
