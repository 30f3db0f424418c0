//! What the command line prints and writes: run summaries, trace files,
//! campaign progress and summaries, JUnit XML and the CI step summary.

use crate::fuzz::{Campaign, Item, Stopped};
use crate::record::{RunRecord, Verdict};
use crate::runner::RunOutcome;
use crate::shard::Shard;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// GitHub drops a step summary over 1 MiB whole; stay well below.
const STEP_SUMMARY_BUDGET_BYTES: usize = 512 << 10;
/// Failures listed in summaries before "N more".
const FAILURES_LISTED: usize = 20;

/// The human summary of one run.
pub(super) fn summary(record: &RunRecord, outcome: &RunOutcome) -> String {
    let mut out = String::new();
    let m = &record.metrics;
    let _ = writeln!(
        out,
        "{}  {} seed {}  (scx {}, scenario {})",
        record.status.name().to_uppercase(),
        record.scenario,
        record.seed,
        record.scx_version,
        record.scenario_hash
    );
    if let Some(note) = &record.note {
        let _ = writeln!(out, "  {note}");
    }
    let _ = writeln!(out, "  {}; run stopped at {} ms", convergence_line(record), record.ended_at_ms);
    if let Some(sample) = outcome.samples.last() {
        let _ = writeln!(out, "  {}", agreement_line(sample));
    }
    for fault in &record.faults {
        let end = fault.end_ms.map_or_else(|| "never".to_owned(), |end| format!("{end} ms"));
        let _ =
            writeln!(out, "  fault {:<18} {} ms .. {end}  nodes {}", fault.kind, fault.start_ms, fault.nodes_text());
    }
    let ratio = if m.bytes_missing > 0 { m.bytes_sent as f64 / m.bytes_missing as f64 } else { 0.0 };
    let _ = writeln!(
        out,
        "  {} lanes, {} sessions ({} abandoned), {} round trips; {} bytes sent for {} bytes of missing lanes ({ratio:.2}x)",
        m.lanes, m.sessions, m.sessions_abandoned, m.round_trips, m.bytes_sent, m.bytes_missing
    );
    if let Some(kinds) = m.bytes_by_kind().filter(|_| m.bytes_sent > 0) {
        let shares: Vec<String> = kinds
            .iter()
            .map(|(kind, bytes)| {
                format!("{} {bytes} ({:.0}%)", kind.name(), 100.0 * *bytes as f64 / m.bytes_sent as f64)
            })
            .collect();
        let _ = writeln!(out, "  bytes sent: {}", shares.join(", "));
    }
    let _ = writeln!(
        out,
        "  {} messages, {} dropped; {} crashes; {} snapshots; {} rollbacks; {} conflicts",
        m.messages_sent, m.messages_dropped, m.crashes, m.snapshots, m.rollbacks, m.conflicts
    );
    let _ = writeln!(out, "  trace {}", record.trace_hash);
    for violation in &record.violations {
        let node = violation.node.map_or_else(String::new, |node| format!(" at n{node}"));
        let _ = writeln!(
            out,
            "  VIOLATION {} ({}){node} at {} ms: {}",
            violation.checker, violation.kind, violation.at_ms, violation.message
        );
    }
    if !record.passed() {
        let _ = writeln!(out, "  reproduce: {}", record.reproduce);
    }
    out
}

/// "converged at T ms: A ms after the last heal (at H ms), B ms after the
/// last write (at W ms), sampled every S ms", or why not.
fn convergence_line(record: &RunRecord) -> String {
    let Some(at) = record.converged_at_ms else { return "did not converge".to_owned() };
    let mut parts = Vec::new();
    if let (Some(after), Some(heal)) = (record.converged_after_last_heal_ms, record.last_heal_at_ms) {
        parts.push(format!("{after} ms after the last heal (at {heal} ms)"));
    }
    if let (Some(after), Some(write)) = (record.converged_after_last_write_ms, record.last_write_at_ms) {
        parts.push(format!("{after} ms after the last write (at {write} ms)"));
    }
    let after = if parts.is_empty() { String::new() } else { format!(": {}", parts.join(", ")) };
    format!("converged at {at} ms{after}; sampled every {} ms", record.sample_interval_ms)
}

/// How many live nodes agree on the final chain hash, naming the outliers
/// (one line for a thousand nodes).
fn agreement_line(sample: &crate::runner::Sample) -> String {
    const OUTLIERS_NAMED: usize = 8;
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    let mut down = Vec::new();
    for (index, node) in sample.nodes.iter().enumerate() {
        if node.chain.is_empty() {
            down.push(index);
        } else {
            groups.entry(node.chain.as_str()).or_default().push(index);
        }
    }
    let names = |nodes: &[usize]| -> String {
        let mut named: Vec<String> = nodes.iter().take(OUTLIERS_NAMED).map(|node| format!("n{node}")).collect();
        if nodes.len() > OUTLIERS_NAMED {
            named.push(format!("and {} more", nodes.len() - OUTLIERS_NAMED));
        }
        named.join(" ")
    };
    let mut ranked: Vec<(&str, Vec<usize>)> = groups.into_iter().collect();
    ranked.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then(a.0.cmp(b.0)));
    let mut line = match ranked.split_first() {
        None => "no live node".to_owned(),
        Some(((chain, nodes), [])) => format!("all {} live nodes hold chain {chain}", nodes.len()),
        Some(((chain, nodes), rest)) => {
            let others: Vec<String> =
                rest.iter().map(|(chain, nodes)| format!("{} on {chain}", names(nodes))).collect();
            format!("{} live nodes hold chain {chain}; apart: {}", nodes.len(), others.join("; "))
        }
    };
    if !down.is_empty() {
        let _ = write!(line, "; down: {}", names(&down));
    }
    line
}

/// The trace of a run in the report model: record, samples, traffic, events.
pub(super) fn trace_of(record: &RunRecord, outcome: &RunOutcome) -> scx_reports::model::Trace {
    use scx_reports::model::{NodeSample, Sample, TraceEvent, TrafficSample};
    scx_reports::model::Trace {
        record: record.clone(),
        nodes: outcome.spec.nodes,
        samples: outcome
            .samples
            .iter()
            .map(|sample| Sample {
                t_ms: sample.at_ns / 1_000_000,
                nodes: sample
                    .nodes
                    .iter()
                    .map(|node| NodeSample {
                        up: node.life != crate::world::Life::Down,
                        paused: node.life == crate::world::Life::Paused,
                        partitioned: node.partitioned,
                        lane_index: node.lane_index,
                        state_hash: node.chain.clone(),
                    })
                    .collect(),
            })
            .collect(),
        traffic: outcome
            .samples
            .iter()
            .map(|sample| TrafficSample {
                t_ms: sample.at_ns / 1_000_000,
                bytes_sent: sample.bytes_sent,
                bytes_missing: sample.bytes_missing,
            })
            .collect(),
        events: outcome
            .events
            .iter()
            .map(|stamped| TraceEvent {
                t_ms: stamped.at_ns / 1_000_000,
                node: stamped.event.node(),
                kind: stamped.event.kind().to_owned(),
                detail: stamped.event.to_string(),
            })
            .collect(),
        events_total: outcome.events_total,
    }
}

/// Writes the trace of a run as JSON.
pub(super) fn write_trace(path: &Path, trace: &scx_reports::model::Trace) -> anyhow::Result<()> {
    let mut file = BufWriter::new(File::create(path)?);
    serde_json::to_writer(&mut file, trace)?;
    file.flush()?;
    Ok(())
}

/// Progress of a campaign on stderr (hidden when stderr is not a terminal)
/// and its wall-clock budget. The only wall clock in scx: it bounds the
/// campaign and never reaches a simulation.
pub(super) struct CampaignProgress {
    bar: ProgressBar,
    started: Instant,
    budget: Option<Duration>,
    failed: AtomicU64,
    first_failure: Mutex<Option<String>>,
}

impl CampaignProgress {
    #[allow(
        clippy::disallowed_methods,
        reason = "the campaign's wall-clock budget and seeds/s, outside any simulation"
    )]
    pub(super) fn start(total: u64, budget: Option<Duration>) -> Self {
        let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
        if !io::stderr().is_terminal() {
            bar.set_draw_target(ProgressDrawTarget::hidden());
        }
        bar.set_style(
            ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} seeds  {per_sec}  {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        Self { bar, started: Instant::now(), budget, failed: AtomicU64::new(0), first_failure: Mutex::new(None) }
    }

    pub(super) fn keep_going(&self) -> bool {
        self.budget.is_none_or(|budget| self.started.elapsed() < budget)
    }

    pub(super) fn finished(&self, record: &RunRecord) {
        if !record.passed() {
            let failed = self.failed.fetch_add(1, Ordering::Relaxed) + 1;
            self.bar.set_message(format!("{failed} did not pass"));
            let mut first = self.first_failure.lock().expect("progress lock");
            if first.is_none() {
                *first = Some(record.reproduce.clone());
                self.bar.println(format!("first failure: {}", record.reproduce));
            }
        }
        self.bar.inc(1);
    }

    /// Counts records kept from an earlier results file as done.
    pub(super) fn resumed(&self, records: u64) {
        self.bar.inc(records);
    }

    pub(super) fn finish(&self) {
        self.bar.finish_and_clear();
    }

    pub(super) fn elapsed_secs(&self) -> f64 {
        self.started.elapsed().as_secs_f64()
    }
}

/// What a campaign has written so far, in bounded memory: counts by
/// verdict and by scenario, the first failures, and the CI summary rows.
pub(super) struct Tally {
    /// Seeds the campaign plans.
    pub(super) planned: u64,
    /// Records this invocation ran (the rest came from an earlier file).
    pub(super) new_records: u64,
    by_verdict: BTreeMap<Verdict, u64>,
    per_scenario: Vec<u64>,
    /// Per scenario, per effect: seeds in which it happened.
    effects: Vec<BTreeMap<String, u64>>,
    failures: Vec<String>,
    step_rows: String,
    step_rows_left_out: u64,
}

impl Tally {
    pub(super) fn new(scenarios: usize) -> Self {
        Self {
            planned: 0,
            new_records: 0,
            by_verdict: BTreeMap::new(),
            per_scenario: vec![0; scenarios],
            effects: vec![BTreeMap::new(); scenarios],
            failures: Vec::new(),
            step_rows: String::new(),
            step_rows_left_out: 0,
        }
    }

    pub(super) fn add(&mut self, item: Item, record: &RunRecord) {
        *self.by_verdict.entry(record.status).or_default() += 1;
        self.per_scenario[item.scenario] += 1;
        for (effect, count) in &record.coverage {
            if *count > 0 {
                *self.effects[item.scenario].entry(effect.clone()).or_default() += 1;
            }
        }
        if record.passed() {
            return;
        }
        let why = record.violations.first().map_or(record.status.name(), |violation| violation.checker.as_str());
        if self.failures.len() < FAILURES_LISTED {
            self.failures.push(format!("  {} {why}: {}", record.status.name().to_uppercase(), record.reproduce));
        }
        let row = format!("| {} | {} | {why} | `{}` |\n", record.scenario, record.seed, record.reproduce);
        if self.step_rows_left_out == 0 && self.step_rows.len() + row.len() <= STEP_SUMMARY_BUDGET_BYTES {
            self.step_rows.push_str(&row);
        } else {
            self.step_rows_left_out += 1;
        }
    }

    /// Records written, old and new.
    pub(super) fn total(&self) -> u64 {
        self.by_verdict.values().sum()
    }

    /// Records that did not pass.
    pub(super) fn not_passed(&self) -> u64 {
        self.total() - self.count(Verdict::Pass)
    }

    fn count(&self, verdict: Verdict) -> u64 {
        self.by_verdict.get(&verdict).copied().unwrap_or(0)
    }

    pub(super) fn all_passed(&self) -> bool {
        self.not_passed() == 0
    }

    /// Scenarios that planned seeds but ran none (a budget that ended early).
    pub(super) fn unrun_scenarios(&self, campaign: &Campaign) -> Vec<String> {
        (0..self.per_scenario.len())
            .filter(|index| self.per_scenario[*index] == 0 && campaign.planned_for(*index) > 0)
            .map(|index| {
                format!("{} ran 0 of {} planned seeds", campaign.scenarios()[index].path, campaign.planned_for(index))
            })
            .collect()
    }

    /// Expected effects that never happened in any seed of a scenario that
    /// ran: "scenario: `effect` never happened in N seeds".
    pub(super) fn coverage_failures(&self, campaign: &Campaign) -> Vec<String> {
        let mut failures = Vec::new();
        for (index, entry) in campaign.scenarios().iter().enumerate() {
            let seeds = self.per_scenario[index];
            if seeds == 0 {
                continue;
            }
            for effect in entry.scenario.expected_effects() {
                if !self.effects[index].contains_key(&effect) {
                    let what = crate::checkers::coverage::EFFECTS
                        .iter()
                        .find(|known| known.name == effect)
                        .map_or("", |known| known.what);
                    failures.push(format!("{}: `{effect}` ({what}) never happened in {seeds} seeds", entry.path));
                }
            }
        }
        failures
    }

    /// The summary printed on stderr at the end.
    pub(super) fn summary(&self, campaign: &Campaign, stopped: Stopped, elapsed_secs: f64) -> String {
        let mut out = String::new();
        let total = self.total();
        let mut counts = format!("{} passed, {} failed", self.count(Verdict::Pass), self.count(Verdict::Fail));
        for (verdict, what) in [
            (Verdict::Timeout, "timed out"),
            (Verdict::HarnessError, "harness errors"),
            (Verdict::NothingTested, "tested nothing"),
        ] {
            if self.count(verdict) > 0 {
                let _ = write!(counts, ", {} {what}", self.count(verdict));
            }
        }
        let rate = self.new_records as f64 / elapsed_secs.max(1e-9);
        let resumed = if total > self.new_records {
            format!(" ({} new, {} from the earlier results)", self.new_records, total - self.new_records)
        } else {
            String::new()
        };
        let _ = writeln!(
            out,
            "{total} seeds run{resumed} (of {} planned, shard {}): {counts}; {rate:.1} seeds/s",
            self.planned, campaign.shard
        );
        match stopped {
            Stopped::Completed => {}
            Stopped::Budget => {
                let _ = writeln!(out, "the --duration budget ended after {total} of {} planned seeds", self.planned);
            }
            Stopped::Interrupted => {
                let _ = writeln!(
                    out,
                    "interrupted after {total} of {} planned seeds; the results written so far are valid, continue with --resume",
                    self.planned
                );
            }
        }
        if total == 0 {
            let _ = writeln!(out, "NOT TESTED: no seed ran");
        }
        for unrun in self.unrun_scenarios(campaign) {
            let _ = writeln!(out, "NOT TESTED: scenario {unrun}");
        }
        if stopped == Stopped::Interrupted {
            let _ = writeln!(out, "coverage not judged: the campaign was interrupted");
        } else {
            for failure in self.coverage_failures(campaign) {
                let _ = writeln!(out, "COVERAGE: {failure}");
            }
        }
        for failure in &self.failures {
            let _ = writeln!(out, "{failure}");
        }
        let listed = self.failures.len() as u64;
        if self.not_passed() > listed {
            let _ = writeln!(out, "  {} more in the results file", self.not_passed() - listed);
        }
        out
    }
}

/// Appends a Markdown summary to `$GITHUB_STEP_SUMMARY` when CI sets it.
pub(super) fn append_step_summary(tally: &Tally, shard: Shard) {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") else { return };
    let mut out = format!(
        "## scx fuzz (shard {shard})\n\n{} seeds: {} passed, {} did not pass\n\n",
        tally.total(),
        tally.count(Verdict::Pass),
        tally.not_passed()
    );
    if !tally.step_rows.is_empty() {
        out.push_str("| scenario | seed | why | reproduce |\n| --- | --- | --- | --- |\n");
        out.push_str(&tally.step_rows);
    }
    if tally.step_rows_left_out > 0 {
        let _ = writeln!(out, "\n{} more in the artifact", tally.step_rows_left_out);
    }
    if let Ok(mut file) = std::fs::OpenOptions::new().append(true).create(true).open(path) {
        let _ = file.write_all(out.as_bytes());
    }
}

/// One JUnit test case (one seed), on one line; quick-xml escapes the
/// attribute values and the text.
pub(super) fn junit_case(record: &RunRecord) -> String {
    let name = format!("{} seed {}", record.scenario, record.seed);
    let mut writer = quick_xml::Writer::new(Vec::from(&b"    "[..]));
    let element = writer
        .create_element("testcase")
        .with_attribute(("classname", record.scenario_path.as_str()))
        .with_attribute(("name", name.as_str()));
    let written = if record.passed() {
        element.write_empty().map(|_| ())
    } else {
        let message = match (record.violations.first(), &record.note) {
            (Some(violation), _) => format!("{}: {}", violation.checker, violation.message),
            (None, Some(note)) => format!("{}: {note}", record.status.name()),
            (None, None) => record.status.name().to_owned(),
        };
        element
            .write_inner_content(|inner| {
                inner
                    .create_element("failure")
                    .with_attribute(("message", message.as_str()))
                    .write_text_content(quick_xml::events::BytesText::new(&record.reproduce))
                    .map(|_| ())
            })
            .map(|_| ())
    };
    written.expect("writing XML into memory cannot fail");
    let mut out = String::from_utf8(writer.into_inner()).expect("XML written from strings is UTF-8");
    out.push('\n');
    out
}

/// The JUnit XML before and after the test cases.
pub(super) fn junit_frame(tests: u64, failures: u64) -> (String, String) {
    let (tests, failures) = (tests.to_string(), failures.to_string());
    let mut writer = quick_xml::Writer::new(Vec::new());
    let head = [
        quick_xml::events::Event::Decl(quick_xml::events::BytesDecl::new("1.0", Some("UTF-8"), None)),
        quick_xml::events::Event::Text(quick_xml::events::BytesText::new("\n")),
        quick_xml::events::Event::Start(quick_xml::events::BytesStart::new("testsuites").with_attributes([
            ("name", "scx fuzz"),
            ("tests", tests.as_str()),
            ("failures", failures.as_str()),
        ])),
        quick_xml::events::Event::Text(quick_xml::events::BytesText::new("\n  ")),
        quick_xml::events::Event::Start(quick_xml::events::BytesStart::new("testsuite").with_attributes([
            ("name", "scx"),
            ("tests", tests.as_str()),
            ("failures", failures.as_str()),
        ])),
        quick_xml::events::Event::Text(quick_xml::events::BytesText::new("\n")),
    ];
    for event in head {
        writer.write_event(event).expect("writing XML into memory cannot fail");
    }
    let head = String::from_utf8(writer.into_inner()).expect("XML written from strings is UTF-8");
    (head, "  </testsuite>\n</testsuites>\n".to_owned())
}
